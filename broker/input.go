package broker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/kgo"
)

// inputLine is one line of a sample input file: a JSON object with the
// record's key (a string, or absent for none), value (any JSON; a string
// is written as its text, anything else as JSON) and optional string
// headers.
type inputLine struct {
	Key     *string           `json:"key"`
	Value   json.RawMessage   `json:"value"`
	Headers map[string]string `json:"headers"`
}

// ProduceFile writes every line of the JSON-lines file at path to topic on
// the cluster at addrs, and returns how many records it wrote. Lines that
// are empty or start with '#' are skipped. The whole file is checked
// before anything is written, so a bad line writes nothing.
func ProduceFile(ctx context.Context, addrs []string, topic, path string) (int, error) {
	recs, err := ReadFile(path, topic)
	if err != nil {
		return 0, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return 0, fmt.Errorf("writing %s to %s: %w", path, topic, err)
	}
	return len(recs), nil
}

// ReadFile reads the JSON-lines file at path (see ProduceFile) as records
// for topic, without partitions or timestamps.
func ReadFile(path, topic string) ([]*kgo.Record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading input: %w", err)
	}
	var recs []*kgo.Record
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		var in inputLine
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			return nil, fmt.Errorf("%s:%d: want {\"key\": ..., \"value\": ..., \"headers\": {...}}: %w", path, n, err)
		}
		r := &kgo.Record{Topic: topic}
		if in.Key != nil {
			r.Key = []byte(*in.Key)
		}
		var s string
		switch {
		case len(in.Value) == 0 || string(in.Value) == "null":
		case json.Unmarshal(in.Value, &s) == nil:
			r.Value = []byte(s)
		default:
			r.Value = append([]byte(nil), in.Value...)
		}
		for k, v := range in.Headers {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return recs, nil
}
