#!/usr/bin/env python3
"""Writes vectors.json: records serialized by Confluent's Python client
(confluent-kafka >= 2, with its protobuf and json extras), the test
vectors of the protobuf and json_schema formats (format/registry_test.go).

Run from this directory (protoc from Debian's protobuf-compiler on PATH):

    python3 -m venv /tmp/venv
    /tmp/venv/bin/pip install 'confluent-kafka[schemaregistry,protobuf,json]'
    /tmp/venv/bin/python gen.py

Debian's python3-confluent-kafka (1.7) is too old: it writes protobuf
message indexes as unsigned varints (the deprecated format) where every
current serializer writes zig-zag ones.

Both formats register through one mock registry, so shop.proto gets id 1
and order.schema.json id 2; the Go tests seed their fake registry alike.
"""
import datetime
import decimal
import json
import os
import subprocess
import tempfile

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2, wrappers_pb2  # noqa: F401 (pool)
from confluent_kafka.schema_registry._sync.mock_schema_registry_client import MockSchemaRegistryClient
from confluent_kafka.schema_registry.confluent.type import decimal_pb2
from confluent_kafka.schema_registry.confluent.type.decimal_utils import to_proto_decimal
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext


def message_classes():
    with tempfile.TemporaryDirectory() as d:
        dec = descriptor_pb2.FileDescriptorSet()
        decimal_pb2.DESCRIPTOR.CopyToProto(dec.file.add())
        with open(os.path.join(d, "decimal.pb"), "wb") as f:
            f.write(dec.SerializeToString())
        out = os.path.join(d, "shop.pb")
        subprocess.run(["protoc", "-I", ".", "-I", "/usr/include",
                        "--descriptor_set_in=" + os.path.join(d, "decimal.pb"),
                        "--descriptor_set_out=" + out, "shop.proto"], check=True)
        with open(out, "rb") as f:
            fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.Default()
    pool.Add(fds.file[0])
    get = lambda n: message_factory.GetMessageClass(pool.FindMessageTypeByName(n))
    return get("shop.Order"), get("shop.Order.Line"), get("shop.Refund")


def main():
    client = MockSchemaRegistryClient({"url": "mock://vectors"})
    Order, Line, Refund = message_classes()
    ctx = SerializationContext("orders", MessageField.VALUE)
    conf = {"auto.register.schemas": True, "use.deprecated.format": False}
    vectors = []

    def proto(name, msg):
        ser = ProtobufSerializer(type(msg), client, conf)
        vectors.append({"name": name, "format": "protobuf", "hex": ser(msg, ctx).hex()})

    full = Order(
        order_id="o-1", quantity=3, price=19.5, status=1,
        coupon=wrappers_pb2.StringValue(value="WELCOME"),
        lines=[Line(sku="a", qty=2), Line(sku="b", qty=-1)],
        tags={"gift": 1}, blob=b"\x00\xff", big=18446744073709551615,
        ratio=0.25, note="leave at door",
        total=to_proto_decimal(decimal.Decimal("-1234.50")),
        card="4111", delta=-7,
        wait=duration_pb2.Duration(seconds=90, nanos=500000000),
        points=wrappers_pb2.Int64Value(value=0),
    )
    full.placed_at.FromDatetime(datetime.datetime(2024, 3, 1, 12, 30, 15, 250000))
    full.extra.update({"channel": "web", "score": 1.5, "flags": [True, None]})
    proto("order_full", full)
    proto("order_empty", Order())
    proto("order_line", Line(sku="z", qty=9))
    proto("refund", Refund(order_id="o-1", amount=1950))

    with open("order.schema.json") as f:
        schema = f.read()
    jser = JSONSerializer(schema, client, conf={"auto.register.schemas": True})
    jctx = SerializationContext("orders-json", MessageField.VALUE)
    for name, obj in [
        ("json_full", {"order_id": "o-1", "quantity": 3, "price": 19.5, "status": "PAID",
                       "tags": ["gift", "rush"], "coupon": None}),
        ("json_min", {"order_id": "o-2", "quantity": 1, "price": 2}),
    ]:
        vectors.append({"name": name, "format": "json_schema", "hex": jser(obj, jctx).hex()})

    with open("vectors.json", "w") as f:
        json.dump(vectors, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
