package main

import (
	"fmt"
	"strings"

	"github.com/exactly-dev/exactly/topology"
)

// Input topics the tool preloads.
const (
	bytesTopic = "bench-bytes" // values of random printable bytes
	jsonTopic  = "bench-json"  // JSON values {"id","amount","user","pad"}
	emptyTopic = "bench-empty" // the restore pipeline's source: nothing to process
)

// The restore mode (f) reuses one pipeline name, so every run restores the
// one preloaded changelog; it consumes nothing, so its group's offsets do
// not matter.
const (
	restorePipeline = "bench-f"
	aggStep         = "agg"
)

// mode is one thing the tool measures.
type mode struct {
	id    string
	title string
	// guarantee of the pipeline; "" for the baseline.
	guarantee string
	// input topic; the restore mode reads the changelog instead.
	input string
	// partner is the mode whose commit interval this one runs at.
	partner string
	// yaml is the pipeline, nil for the baseline.
	yaml func(name, out string) string
}

func (m *mode) baseline() bool    { return m.yaml == nil }
func (m *mode) restore() bool     { return m.id == "f" }
func (m *mode) exactlyOnce() bool { return m.guarantee == "exactly_once" }

var modes = []*mode{
	{id: "a", title: "baseline: franz-go copy loop", input: bytesTopic, partner: "b"},
	{id: "b", title: "pass-through (bytes)", guarantee: "exactly_once", input: bytesTopic, yaml: passThrough},
	{id: "c", title: "JSON filter+map (CEL)", guarantee: "exactly_once", input: jsonTopic, yaml: filterMap},
	{id: "d", title: "keyed count+sum", guarantee: "exactly_once", input: jsonTopic, yaml: aggregate("exactly_once", jsonTopic)},
	{id: "e", title: "keyed count+sum", guarantee: "at_least_once", input: jsonTopic, partner: "d", yaml: aggregate("at_least_once", jsonTopic)},
	{id: "f", title: "restore changelog", guarantee: "exactly_once", input: emptyTopic, yaml: aggregate("exactly_once", emptyTopic)},
	{id: "g", title: "Avro filter+map (CEL)", guarantee: "exactly_once", input: avroTopic, partner: "c", yaml: filterMapAvro},
}

func allModes() []string {
	var ids []string
	for _, m := range modes {
		ids = append(ids, m.id)
	}
	return ids
}

func modeByID(id string) *mode {
	for _, m := range modes {
		if m.id == id {
			return m
		}
	}
	return nil
}

// runName is the pipeline name (and consumer group) of one run: index 0
// is the warm-up.
func runName(m *mode, index int) string {
	if m.restore() {
		return restorePipeline
	}
	if index == 0 {
		return "bench-" + m.id + "-w"
	}
	return fmt.Sprintf("bench-%s-%d", m.id, index)
}

func outTopic(name string) string { return name + "-out" }

func passThrough(name, out string) string {
	return strings.Join([]string{
		"name: " + name,
		"guarantee: exactly_once",
		"sources:",
		"  - {name: in, topic: " + bytesTopic + ", format: bytes, key_format: bytes}",
		"sinks:",
		"  - {name: out, topic: " + out + ", format: bytes, key_format: bytes}",
		"",
	}, "\n")
}

// filterMap keeps about 90% of the records (amounts run from 0.1 to
// 999.9) and reshapes them.
func filterMap(name, out string) string {
	return strings.Join([]string{
		"name: " + name,
		"guarantee: exactly_once",
		"sources:",
		"  - {name: in, topic: " + jsonTopic + "}",
		"steps:",
		"  - name: big",
		"    filter: value.amount >= 100.0",
		"  - name: shape",
		`    map: '{"id": value.id, "user": value.user, "cents": int(value.amount * 100.0)}'`,
		"sinks:",
		"  - {name: out, topic: " + out + "}",
		"",
	}, "\n")
}

// aggregate counts and sums per record key. The input is partitioned by
// key, so there is no repartition topic.
func aggregate(guarantee, input string) func(name, out string) string {
	return func(name, out string) string {
		return strings.Join([]string{
			"name: " + name,
			"guarantee: " + guarantee,
			"sources:",
			"  - {name: in, topic: " + input + "}",
			"steps:",
			"  - name: " + aggStep,
			"    aggregate:",
			"      group_by: key",
			"      columns:",
			"        n: {fn: count}",
			"        total: {fn: sum, of: value.amount}",
			"sinks:",
			"  - {name: out, topic: " + out + "}",
			"",
		}, "\n")
	}
}

var restoreChangelog = topology.ChangelogTopic(restorePipeline, aggStep)
