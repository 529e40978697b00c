package format

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// TestAvroVectors decodes records that confluent-kafka-python and
// fastavro wrote (testdata/avro/gen_vectors.py) and checks that encoding
// the decoded value gives the same bytes.
func TestAvroVectors(t *testing.T) {
	data, err := os.ReadFile("testdata/avro/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Vectors []struct {
			Name, Topic, Schema, Hex string
			ID                       int
		}
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	note := orderValue()
	note["note"] = "gift"
	want := map[string]any{
		"order":      orderValue(),
		"order_note": note,
		"string_key": "k1",
		"scalars": map[string]any{"a": int64(-1), "b": int64(1) << 62, "c": -0.5, "d": true,
			"e": []byte{0, 0xff}, "f": "x", "g": []any{nil, 1.25}},
	}
	reg := srfake.New()
	defer reg.Close()
	seeded := map[int]bool{}
	for _, v := range file.Vectors {
		if !seeded[v.ID] {
			reg.SeedSchema(v.Name, 1, v.ID, sr.Schema{Schema: v.Schema})
			seeded[v.ID] = true
		}
	}
	s := newTestSchemas(t, reg)
	if len(file.Vectors) != len(want) {
		t.Fatalf("%d vectors, want %d", len(file.Vectors), len(want))
	}
	for _, v := range file.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			b, err := hex.DecodeString(v.Hex)
			if err != nil {
				t.Fatal(err)
			}
			c := newAvroCodec(t, s, PartValue, nil)
			got, err := c.Decode(v.Topic, NoHeaders, b)
			if err != nil {
				t.Fatalf("Decode(%s) = %v", v.Hex, err)
			}
			if !reflect.DeepEqual(got, want[v.Name]) {
				t.Fatalf("Decode(%s) =\n%#v\nwant\n%#v", v.Name, got, want[v.Name])
			}
			// The subject seeded for this id: encode with it.
			subject := v.Name
			for _, w := range file.Vectors {
				if w.ID == v.ID {
					subject = w.Name
					break
				}
			}
			enc := newAvroCodec(t, s, PartValue, Options{"subject": subject, "version": 1})
			out, err := enc.Encode(v.Topic, NoHeaders, got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, b) {
				t.Errorf("Encode(Decode(x)) =\n%x\nwant the Python bytes\n%x", out, b)
			}
		})
	}
}

// FuzzAvroDecode: no payload panics or hangs the decoder, and whatever
// decodes encodes back to a value that decodes equal.
func FuzzAvroDecode(f *testing.F) {
	data, err := os.ReadFile("testdata/avro/vectors.json")
	if err != nil {
		f.Fatal(err)
	}
	var file struct{ Vectors []struct{ Hex string } }
	if err := json.Unmarshal(data, &file); err != nil {
		f.Fatal(err)
	}
	for _, v := range file.Vectors {
		b, _ := hex.DecodeString(v.Hex)
		f.Add(b[5:])
	}
	s, err := avroParse(orderV1)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeAvro(s, b)
		if err != nil {
			return
		}
		out, err := encodeAvro(s, v)
		if err != nil {
			t.Fatalf("decoded %#v, which does not encode: %v", v, err)
		}
		again, err := decodeAvro(s, out)
		if err != nil || !reflect.DeepEqual(again, v) {
			t.Fatalf("re-decoded %#v, %v, want %#v", again, err, v)
		}
	})
}
