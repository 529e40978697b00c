#!/usr/bin/env python3
"""Writes vectors.json: Avro records in the Confluent wire format, made by
confluent-kafka-python's AvroSerializer (Avro binary by fastavro), for the
Go tests of format's avro codec to decode and to match byte for byte.

Run once, by hand; the output is committed and CI needs neither package:
    python3 -m venv --system-site-packages /tmp/avrovenv   # Debian's python3
    apt-get install python3-confluent-kafka                # 1.7.0 here
    /tmp/avrovenv/bin/pip install fastavro requests
    /tmp/avrovenv/bin/python gen_vectors.py > vectors.json
Debian has no python3-fastavro package, hence the venv.
"""
import datetime
import decimal
import json
import sys

import fastavro
import confluent_kafka
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

ORDER = {
    "type": "record", "name": "Order", "namespace": "shop", "fields": [
        {"name": "id", "type": "long"},
        {"name": "category", "type": "string"},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID", "SHIPPED"]}},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "qty", "type": "int"},
        {"name": "price", "type": "float"},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "attrs", "type": {"type": "map", "values": "long"}},
        {"name": "micros", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "fx", "type": {"type": "fixed", "name": "Fx", "size": 4, "logicalType": "decimal", "precision": 8, "scale": 3}},
    ]}

SCALARS = {
    "type": "record", "name": "Scalars", "fields": [
        {"name": "a", "type": "long"},
        {"name": "b", "type": "long"},
        {"name": "c", "type": "double"},
        {"name": "d", "type": "boolean"},
        {"name": "e", "type": "bytes"},
        {"name": "f", "type": ["null", "long", "string"]},
        {"name": "g", "type": {"type": "array", "items": ["null", "double"]}},
    ]}

UTC = datetime.timezone.utc


def order(note):
    return {
        "id": 42, "category": "books", "amount": decimal.Decimal("-1234.50"),
        "ts": datetime.datetime.fromtimestamp(1700000000.123, UTC).replace(microsecond=123000),
        "day": datetime.date(2024, 2, 29), "ref": "7d2b5c0e-4a3f-4b65-9d1c-2f6b8a1e0c11",
        "status": "PAID", "note": note, "qty": 3, "price": 2.5, "tags": ["a", "b"],
        "attrs": {"x": 1},
        "micros": datetime.datetime(2023, 11, 14, 22, 13, 20, 123456, UTC),
        "fx": decimal.Decimal("-0.001"),
    }


VECTORS = [
    ("order", "orders", 101, ORDER, order(None)),
    ("order_note", "orders", 101, ORDER, order("gift")),
    ("string_key", "orders", 102, "string", "k1"),
    ("scalars", "s", 103, SCALARS, {"a": -1, "b": 2**62, "c": -0.5, "d": True, "e": b"\x00\xff",
                                     "f": "x", "g": [None, 1.25]}),
]


class FakeRegistry:
    """Answers the serializer's register_schema with a fixed id."""
    def __init__(self, schema_id):
        self.schema_id = schema_id

    def register_schema(self, subject, schema):
        return self.schema_id


def main():
    out = []
    for name, topic, sid, schema, value in VECTORS:
        field = MessageField.KEY if name.endswith("_key") else MessageField.VALUE
        # confluent-kafka 1.7 takes a primitive schema as its bare name.
        text = schema if isinstance(schema, str) else json.dumps(schema)
        ser = AvroSerializer(FakeRegistry(sid), text)
        b = ser(value, SerializationContext(topic, field))
        # Check the bytes decode back with fastavro itself.
        import io
        fastavro.schemaless_reader(io.BytesIO(b[5:]), fastavro.parse_schema(schema))
        out.append({"name": name, "topic": topic, "id": sid, "schema": json.dumps(schema), "hex": b.hex()})
    json.dump({"generator": "confluent-kafka %s, fastavro %s" % (confluent_kafka.version()[0], fastavro.__version__),
               "vectors": out}, sys.stdout, indent=1)
    sys.stdout.write("\n")


main()
