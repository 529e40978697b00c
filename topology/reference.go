package topology

import (
	"strings"
)

//go:generate go test . -run TestReferenceIsGenerated -update

// The reference of the pipeline file is this package's documentation,
// doc.go, which the README calls the full schema. It is generated from
// the tables below, the same tables the decoder takes its keys from, and
// from the operations' specs (opSpecs): a key the decoder accepts has its
// line here, or it does not exist. TestReferenceIsGenerated fails when
// doc.go differs from what these tables produce; go generate rewrites it.

// keyDoc documents one key of a mapping of the pipeline file.
type keyDoc struct {
	key      string
	required bool
	text     string // the rest of the key's line in the reference
}

// keysOf returns the keys ds document, in their order: the keys the
// decoder accepts for that mapping.
func keysOf(ds []keyDoc) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.key
	}
	return out
}

var topDocs = []keyDoc{
	{key: "name", required: true, text: "the pipeline name, 1 to 200 of a-z A-Z 0-9 . _ -. It is the consumer group and the transactional id prefix."},
	{key: "group", text: "the consumer group, same characters; defaults to name."},
	{key: "guarantee", text: "exactly_once (default: outputs, changelog writes and input offsets in one transaction), at_least_once (outputs and changelog writes acknowledged before offsets are committed: a crash may process records twice, and apply them to state twice) or at_most_once (offsets committed before processing: a crash may lose the records in flight, never doubles them)."},
	{key: "commit_interval", text: "a Go duration (100ms, 2s) greater than 0 and at most 1m; absent or 0 leaves the daemon's setting in force."},
	{key: "on_error", text: "what a bad record (one that cannot be decoded, evaluated or encoded, or is too large) does: dead_letter (written unchanged, with headers naming the error and its source, in the same transaction; needs dead_letter_topic), skip (dropped and counted) or stop (the default without a dead-letter topic: the pipeline stops with an error naming the record, which is processed again on restart)."},
	{key: "dead_letter_topic", text: "where bad records go (created when missing); on_error then defaults to dead_letter."},
	{key: "limits", text: "a mapping of limits, each optional (see below)."},
	{key: "sources", required: true, text: "a non-empty list of sources."},
	{key: "steps", text: "a list of steps."},
	{key: "sinks", required: true, text: "a non-empty list of sinks."},
}

var limitDocs = []keyDoc{
	{key: "max_input_bytes", text: "key plus value of an input record; larger is a bad record."},
	{key: "max_output_bytes", text: "of an output record; default and most: what its topic's max.message.bytes takes."},
	{key: "max_eval_cost", text: "CEL cost of one evaluation; expressions the checker proves cheaper run without counting."},
}

var sourceDocs = []keyDoc{
	{key: "name", required: true},
	{key: "topic", required: true, text: `a Kafka topic name, 1 to 249 of a-z A-Z 0-9 . _ -, other than "." and "..".`},
	{key: "format", text: "how record values are decoded (sources) or encoded (sinks): json (the default), string or bytes. See [Format]. The long form format: {name: json} is the same; it is where a format's options go (format: {name: NAME, OPTION: VALUE...}). json, string and bytes take none; an unknown name, an option the format does not take or a bad option value is an error at that key. avro (Confluent wire format, schemas in the registry of the registry.urls setting) takes schema or schema_file (a source's reader schema, a sink's schema to register), subject, version (a number or latest) and subject_strategy (topic_name, record_name or topic_record_name); see package format's Avro. protobuf and json_schema (the same wire format, the registry's .proto files and JSON Schemas) take the same options, and protobuf also message (the message type a sink writes, default the file's first); see package format's Protobuf and JSONSchema."},
	{key: "key_format", text: "the same for record keys; string by default."},
	{key: "table", text: "true reads the topic as a table: the latest value per key (a null value deletes the key), kept in a store per partition that the topic itself backs (no changelog of its own); join steps look rows up in it, a table-table join reads it with from, and other steps may read its changes with from (see Tables and their changes)."},
	{key: "global", text: "with table: true, every instance reads the whole topic (every partition) into memory before it processes anything and keeps it current; joins with a global table need no co-partitioning, for small dimension tables."},
}

var sinkDocs = []keyDoc{
	{key: "name", required: true},
	{key: "topic", required: true, text: "as a source's."},
	{key: "format", text: "as a source's."},
	{key: "key_format", text: "as a source's."},
	{key: "from", text: "the input (see Connections)."},
}

var branchDocs = []keyDoc{
	{key: "when", text: "a bool expression; a branch without when matches everything, so it may only be the last one (the default)."},
	{key: "to", required: true, text: "the name of a step or sink."},
}

var aggregateDocs = []keyDoc{
	{key: "group_by", required: true, text: "either one expression, whose group column is then named key, or a non-empty mapping from group column name to expression, for a group of several values (GROUP BY a, b)."},
	{key: "columns", required: true, text: "a non-empty mapping from column name to column (see below)."},
	{key: "emit", text: "on_update (the default) outputs the row once per input record that changed it; on_commit outputs each changed row once per transaction, as it stands at commit; on_close (windows only) outputs one final row per window once it closes."},
	{key: "window", text: "a window (see Windows)."},
}

var columnDocs = []keyDoc{
	{key: "fn", required: true, text: "count, count_distinct, sum, min, max, avg, first or last. first and last keep of from the first and the last record counted. count_distinct counts the distinct non-null values of of (COUNT(DISTINCT of)), 1.5 and 1.50 being one value, in a set per group of at most 10000 values: a record that would add one more fails as a bad record. On a table's changes only count, count_distinct, sum and avg may be used (see Tables and their changes)."},
	{key: "of", text: "the expression to aggregate; required except for count. count without of counts records (COUNT(*)); with of, the records where of is not null (COUNT(of)). For sum, min, max and avg of must be a number (int, uint or double); for first and last it may be anything."},
	{key: "where", text: "a bool expression; only the records for which it is true count for this column (COUNT(*) FILTER (WHERE ...))."},
	{key: "scale", text: "for sum, min, max and avg only, an integer from 0 to 18: the number of decimal places the column prints, as in NUMERIC(p, scale). Without it a sum keeps the scale of its inputs (100.00 + 20.00 is 120.00)."},
}

var windowDocs = []keyDoc{
	{key: "tumbling", text: "a Go duration: windows of that size, one after another."},
	{key: "hopping", text: "a mapping with size and advance (Go durations, size a multiple of advance): windows of size starting every advance."},
	{key: "session", text: "a mapping with gap (a Go duration): a key's records at most gap apart share one window."},
	{key: "time", text: `an expression giving the event time: a timestamp, an RFC 3339 string, a "YYYY-MM-DD HH:MM:SS" string (UTC) or epoch milliseconds; default the record timestamp.`},
	{key: "grace", text: "a Go duration, default 0: how long after its end a window still takes late records."},
	{key: "idle_timeout", text: "a Go duration, default off: a task that gets no record for that long advances its stream time by the wall clock, so its windows close when input stops."},
	{key: "upstream_idle", text: "a Go duration, default 1s: see below."},
	{key: "late", text: "what a record for an already closed window does: drop (the default, counted), dead_letter (needs dead_letter_topic) or {to: SINK} (written to that sink of the pipeline)."},
}

var dedupeDocs = []keyDoc{
	{key: "id", required: true, text: "an expression: records of one id are duplicates."},
	{key: "ttl", required: true, text: "a Go duration, at most 720h: how long an id is remembered."},
	{key: "time", text: "event time, as a window's; default the record timestamp."},
	{key: "keep", text: "first (the default: the first record of an id passes and later ones within ttl are dropped) or last (every record later in event time than all before it of its id passes, stale copies are dropped)."},
}

var (
	topKeys       = keysOf(topDocs)
	limitKeys     = keysOf(limitDocs)
	sourceKeys    = keysOf(sourceDocs)
	sinkKeys      = keysOf(sinkDocs)
	branchKeys    = keysOf(branchDocs)
	aggregateKeys = keysOf(aggregateDocs)
	columnKeys    = keysOf(columnDocs)
	windowKeys    = keysOf(windowDocs)
	dedupeKeys    = keysOf(dedupeDocs)
)

// The reference's prose, between the generated lists. Paragraphs are
// separated by blank lines and wrapped when written; lines starting with
// a tab are code, written as they are.
const (
	refIntro = `Package topology turns a pipeline description written in YAML into a validated graph of sources, steps and sinks, with every CEL expression parsed, type-checked and compiled. It knows nothing about Kafka clients: the runtime takes a *Topology and wires it to topics.

Use [Load] or [Parse] ([LoadContext] and [ParseContext] stop when their context is done). Either returns a valid [Topology] or an [Errors] value listing every problem in the file, each as file:line:col: key: message, where key is the YAML path of the offending value (for example steps[1].filter or sources[0].format). A file is at most [MaxFileBytes] long and holds at most [MaxNodes] sources, steps and sinks.

This reference is generated from the tables the decoder reads its keys from (reference.go and the operations' specs in ops.go); edit those and run go generate.

# Example

	name: orders-enrich
	commit_interval: 100ms
	sources:
	  - name: orders
	    topic: orders
	steps:
	  - name: paid
	    filter: value.status == "paid"
	  - name: shape
	    map: '{"id": value.id, "customer": value.customer, "total": value.price * double(value.qty)}'
	  - name: rekey
	    key: value.customer
	  - name: tag
	    set_headers:
	      origin: '"exactly"'
	  - name: split
	    route:
	      - when: value.total >= 100.0
	        to: big
	      - to: small
	sinks:
	  - name: big
	    topic: big-orders
	  - name: small
	    topic: small-orders

# Top level`

	refAfterTop = `Node names (of sources, steps and sinks alike) are required, unique across the whole file, and made of 1 to 100 of a-z A-Z 0-9 . _ -.

# Sources and sinks

A source reads a topic. It takes:`

	refSink = `A sink writes a topic. It takes:`

	refAfterSinks = `A sink may not write a topic a source reads, since the pipeline would consume its own output forever. Several sources may read the same topic (to decode it two ways, say): each record of the topic then enters through all of them.

# Steps

A step has a name, an optional from, and exactly one operation:`

	refAfterSteps = `A route's branches take:`

	refAfterBranches = `Branches are tried in order and the record goes to the first that matches. A record that matches no branch is dropped.

Expressions whose type is only known per record (value.x is dyn) are accepted wherever a type is required and checked as records flow.

A dedupe step's seen ids live in a changelog-backed store and expire once stream time passes ttl; records with one id must share a partition (one Kafka key). It takes:`

	refAggregates = `# Aggregates

An aggregate step is SQL's GROUP BY, kept up to date as records arrive: it holds one row per distinct group value and outputs the row each time it changes.

	name: user-totals
	sources:
	  - name: events
	    topic: events
	steps:
	  - name: per-user
	    aggregate:
	      group_by:
	        user_id: value.user_id
	      columns:
	        purchase_count: {fn: count, where: 'value.amount > 0'}
	        refund_count: {fn: count, where: 'value.amount < 0'}
	        net_spend: {fn: sum, of: value.amount, scale: 2}
	sinks:
	  - name: totals
	    topic: user-totals

is, in SQL,

	SELECT value.user_id AS user_id,
	       COUNT(*) FILTER (WHERE value.amount > 0) AS purchase_count,
	       COUNT(*) FILTER (WHERE value.amount < 0) AS refund_count,
	       SUM(value.amount) AS net_spend  -- printed with 2 decimals
	FROM events GROUP BY value.user_id

An aggregate takes:`

	refColumns = `A column takes:`

	refAfterColumns = `Tables and their changes: the records of a table source (not global), the rows of an aggregate step without a window and the rows of a table-table join on the key are changes of a table, each the new row of its key (a null value: the row was deleted) carrying the row it replaced. An aggregate without a window that reads changes retracts, as Kafka Streams' groupBy().aggregate(adder, subtractor) does: it subtracts the old row from its old group and adds the new row to its new group, and deletes (a tombstone) a group left without rows. Only count, count_distinct, sum and avg may be used there: min, max, first and last cannot subtract a row, and are an error naming the column. A filter of changes keeps a row while it qualifies, deletes it (a tombstone) once it stops, and outputs nothing for a row that never qualified: SQL's HAVING after an aggregate. A map maps both rows; set_headers and drop_headers pass them on. Every other step and every sink reads the new rows as a stream (a deleted row: a null value). A join's table may also be an aggregate step without a window: the record key, as a group value, is looked up in the aggregate's rows (both go through repartition topics keyed by group).

Column names, of group and aggregate columns alike, are a letter or _ followed by up to 63 letters, digits or _, and are unique across both kinds, since together they form the output row. A single-expression group_by takes the name key, so no aggregate column may then be named key.

Each output record has as key the group value when there is one group column (a map from group column name to value otherwise), and as value a map of every group column and aggregate column.

The rows live in a state store named after the step and backed by the changelog topic <pipeline>-<step>-changelog, where <pipeline> is the pipeline name. Unless group_by is exactly the expression key and records are still partitioned by it (they come from a single topic, and no key step or repartitioning aggregate step lies upstream), records first go through the repartition topic <pipeline>-<step>-repartition, so that each group is handled in one place. Both names are reserved for every aggregate step: no source or sink may use them, and they must fit Kafka's limit of 249 characters.

# Windows

An aggregate may take a window, which adds window_start and window_end to its rows and keys:

	window:
	  tumbling: 1m                     # or hopping: {size: 5m, advance: 1m}, or session: {gap: 30s}
	  time: value.event_ts             # event time; default the record timestamp
	  grace: 10s                       # default 0
	  idle_timeout: 30s                # default off: advance an idle task's time by wall clock
	  upstream_idle: 1s                # default 1s: see below
	  late: drop                       # or dead_letter (needs dead_letter_topic), or {to: SINK}

A window takes exactly one of tumbling, hopping and session, and:`

	refAfterWindows = `A tumbling or hopping window closes when the task's stream time reaches its end plus grace; a session (records at most gap apart, so records exactly gap apart share one) when stream time passes its last record plus gap plus grace. on_commit emits, once per transaction, the latest row of every window changed in it, closed or not. A task reading a source partition takes that partition's highest event time as stream time; a task behind the repartition topic takes the minimum over the upstream partitions' watermarks (see the processor package), where an upstream partition that sent nothing for upstream_idle while its reader is caught up does not count until it sends again.

# Connections

from names the input of a step or sink: one node name or a list of names, whose records are merged (fan-in). from may name sources and steps, but not sinks (which have no output) nor route steps (which send records only to their branch targets: name the node in a to of the route instead). A route target may still have a from of its own to receive records from other nodes too.

Without from:

  - a step that is a route target receives only what the route sends it;
  - otherwise the first step reads the only source (with several sources, from is required) and any other step reads the step before it in the list, unless that step is a route, which is an error;
  - a sink that is a route target receives only what the route sends it;
  - otherwise a sink reads the last step in the list, or the only source when there are no steps; if that would be a route, or one of several sources, from is required.

The graph must have no cycle, every source and step must feed some node, and every sink must be reachable from a source.

# Expressions

Expressions are CEL (https://cel.dev), checked against the environment returned by [NewEnv]. They see the variables key, value, headers, timestamp, topic, partition and offset (see [VarKey] and the following constants), the CEL standard library and the cel-go extensions for strings, math, encoders (base64) and lists. Numbers of different types compare naturally (value.price > 10 works whether price is an int or a double), +, -, * and / mix an int or uint with a double into a double (value.price * 1.5 works when price was written as 10; int with int stays integer arithmetic, int with uint needs a conversion), and timestamp accessors use UTC unless given a time zone.

Avro and Protobuf decimals are values of the type decimal, exact: they compare by value with any number on either side (value.amount > 100, 100 == value.amount, value.amount in [0, 10]); +, -, * with a decimal, int or uint are exact, / rounds half-even to 34 significant digits keeping the dividend's decimal places (120.50 / 4 is 30.125), a double on either side gives a double. decimal(x) makes one from a string, int, uint or double (its shortest text); double(d), int(d) (toward zero) and string(d) convert back. A decimal an expression returns leaves the pipeline as the same exact number.

# YAML

Anchors, aliases and merge keys work as usual, for instance to share settings between sources:

	sources:
	  - &raw {name: clicks, topic: clicks, format: bytes, key_format: bytes}
	  - {<<: *raw, name: views, topic: views}

Keys set next to a merge key win over merged ones. Duplicate keys are errors.

YAML rules apply before CEL sees the text: quote expressions that start with a YAML indicator ('"paid"', '{"id": value.id}', '[1, 2]') or contain ": ", or use a block scalar (|) for long ones.`
)

// reference returns doc.go as the tables make it.
func reference() string {
	var w refWriter
	w.prose(refIntro)
	w.keys(topDocs)
	w.prose("The limits mapping takes:")
	w.keys(limitDocs)
	w.prose(refAfterTop)
	w.keys(sourceDocs)
	w.prose(refSink)
	w.keys(sinkDocs)
	w.prose(refAfterSinks)
	var ops []keyDoc
	for _, s := range opSpecs {
		ops = append(ops, keyDoc{key: string(s.kind), text: s.doc})
	}
	w.keys(ops)
	w.prose(refAfterSteps)
	w.keys(branchDocs)
	w.prose(refAfterBranches)
	w.keys(dedupeDocs)
	w.prose(refAggregates)
	w.keys(aggregateDocs)
	w.prose(refColumns)
	w.keys(columnDocs)
	w.prose(refAfterColumns)
	w.keys(windowDocs)
	w.prose(refAfterWindows)
	w.b.WriteString("package topology\n")
	return w.b.String()
}

// refWriter writes the reference as a Go package comment, wrapped at
// refWidth columns.
type refWriter struct {
	b       strings.Builder
	started bool
}

const refWidth = 76

func (w *refWriter) blank() {
	if w.started {
		w.b.WriteString("//\n")
	}
	w.started = true
}

// prose writes paragraphs, code blocks (lines starting with a tab) and
// bullets (lines starting with "  - ").
func (w *refWriter) prose(s string) {
	for _, para := range strings.Split(s, "\n\n") {
		w.blank()
		lines := strings.Split(para, "\n")
		switch {
		case strings.HasPrefix(lines[0], "\t"):
			for _, l := range lines {
				w.b.WriteString("//" + l + "\n")
			}
		case strings.HasPrefix(lines[0], "  - "):
			for _, l := range lines {
				w.wrap("//   - ", "//     ", strings.TrimPrefix(l, "  - "))
			}
		default:
			w.wrap("// ", "// ", strings.Join(lines, " "))
		}
	}
}

// keys writes one bullet per key.
func (w *refWriter) keys(ds []keyDoc) {
	w.blank()
	for _, d := range ds {
		line := d.key
		if d.required {
			line += " (required)"
		}
		if d.text != "" {
			line += ": " + d.text
		}
		w.wrap("//   - ", "//     ", line)
	}
}

// wrap writes text's words in lines of at most refWidth columns, the first
// after first, the rest after rest.
func (w *refWriter) wrap(first, rest, text string) {
	prefix, n := first, 0
	for _, word := range strings.Fields(text) {
		switch {
		case n == 0:
			w.b.WriteString(prefix + word)
			n = len(prefix) + len(word)
		case n+1+len(word) > refWidth:
			w.b.WriteString("\n" + rest + word)
			n = len(rest) + len(word)
		default:
			w.b.WriteString(" " + word)
			n += 1 + len(word)
		}
	}
	w.b.WriteString("\n")
}
