// Package topology turns a pipeline description written in YAML into a
// validated graph of sources, steps and sinks, with every CEL expression
// parsed, type-checked and compiled. It knows nothing about Kafka clients:
// the runtime takes a *Topology and wires it to topics.
//
// Use [Load] or [Parse] ([LoadContext] and [ParseContext] stop when their
// context is done). Either returns a valid [Topology] or an [Errors] value
// listing every problem in the file, each as file:line:col: key: message,
// where key is the YAML path of the offending value (for example
// steps[1].filter or sources[0].format). A file is at most [MaxFileBytes]
// long and holds at most [MaxNodes] sources, steps and sinks.
//
// This reference is generated from the tables the decoder reads its keys
// from (reference.go and the operations' specs in ops.go); edit those and
// run go generate.
//
// # Example
//
//	name: orders-enrich
//	commit_interval: 100ms
//	sources:
//	  - name: orders
//	    topic: orders
//	steps:
//	  - name: paid
//	    filter: value.status == "paid"
//	  - name: shape
//	    map: '{"id": value.id, "customer": value.customer, "total": value.price * double(value.qty)}'
//	  - name: rekey
//	    key: value.customer
//	  - name: tag
//	    set_headers:
//	      origin: '"exactly"'
//	  - name: split
//	    route:
//	      - when: value.total >= 100.0
//	        to: big
//	      - to: small
//	sinks:
//	  - name: big
//	    topic: big-orders
//	  - name: small
//	    topic: small-orders
//
// # Top level
//
//   - name (required): the pipeline name, 1 to 200 of a-z A-Z 0-9 . _ -. It
//     is the consumer group and the transactional id prefix.
//   - group: the consumer group, same characters; defaults to name.
//   - guarantee: exactly_once (default: outputs, changelog writes and input
//     offsets in one transaction), at_least_once (outputs and changelog
//     writes acknowledged before offsets are committed: a crash may process
//     records twice, and apply them to state twice) or at_most_once
//     (offsets committed before processing: a crash may lose the records in
//     flight, never doubles them).
//   - commit_interval: a Go duration (100ms, 2s) greater than 0 and at most
//     1m; absent or 0 leaves the daemon's setting in force.
//   - on_error: what a bad record (one that cannot be decoded, evaluated or
//     encoded, or is too large) does: dead_letter (written unchanged, with
//     headers naming the error and its source, in the same transaction;
//     needs dead_letter_topic), skip (dropped and counted) or stop (the
//     default without a dead-letter topic: the pipeline stops with an error
//     naming the record, which is processed again on restart).
//   - dead_letter_topic: where bad records go (created when missing);
//     on_error then defaults to dead_letter.
//   - limits: a mapping of limits, each optional (see below).
//   - sources (required): a non-empty list of sources.
//   - steps: a list of steps.
//   - sinks (required): a non-empty list of sinks.
//
// The limits mapping takes:
//
//   - max_input_bytes: key plus value of an input record; larger is a bad
//     record.
//   - max_output_bytes: of an output record; default and most: what its
//     topic's max.message.bytes takes.
//   - max_eval_cost: CEL cost of one evaluation; expressions the checker
//     proves cheaper run without counting.
//
// Node names (of sources, steps and sinks alike) are required, unique
// across the whole file, and made of 1 to 100 of a-z A-Z 0-9 . _ -.
//
// # Sources and sinks
//
// A source reads a topic. It takes:
//
//   - name (required)
//   - topic (required): a Kafka topic name, 1 to 249 of a-z A-Z 0-9 . _ -,
//     other than "." and "..".
//   - format: how record values are decoded (sources) or encoded (sinks):
//     json (the default), string or bytes. See [Format]. The long form
//     format: {name: json} is the same; it is where a format's options go
//     (format: {name: NAME, OPTION: VALUE...}). json, string and bytes take
//     none; an unknown name, an option the format does not take or a bad
//     option value is an error at that key. avro (Confluent wire format,
//     schemas in the registry of the registry.urls setting) takes schema or
//     schema_file (a source's reader schema, a sink's schema to register),
//     subject, version (a number or latest) and subject_strategy
//     (topic_name, record_name or topic_record_name); see package format's
//     Avro. protobuf and json_schema (the same wire format, the registry's
//     .proto files and JSON Schemas) take the same options, and protobuf
//     also message (the message type a sink writes, default the file's
//     first); see package format's Protobuf and JSONSchema.
//   - key_format: the same for record keys; string by default.
//   - table: true reads the topic as a table: the latest value per key (a
//     null value deletes the key), kept in a store per partition that the
//     topic itself backs (no changelog of its own); join steps look rows up
//     in it, a table-table join reads it with from, and other steps may
//     read its changes with from (see Tables and their changes).
//   - global: with table: true, every instance reads the whole topic (every
//     partition) into memory before it processes anything and keeps it
//     current; joins with a global table need no co-partitioning, for small
//     dimension tables.
//
// A sink writes a topic. It takes:
//
//   - name (required)
//   - topic (required): as a source's.
//   - format: as a source's.
//   - key_format: as a source's.
//   - from: the input (see Connections).
//
// A sink may not write a topic a source reads, since the pipeline would
// consume its own output forever. Several sources may read the same topic
// (to decode it two ways, say): each record of the topic then enters
// through all of them.
//
// # Steps
//
// A step has a name, an optional from, and exactly one operation:
//
//   - filter: a bool expression; records for which it is false are dropped.
//   - map: an expression whose result becomes the record value.
//   - flat_map: a list expression; each element becomes the value of one
//     output record (an empty list drops the record).
//   - key: an expression whose result becomes the record key.
//   - route: a non-empty list of branches, each with an optional when (a
//     bool expression) and a to (the name of a step or sink); see below.
//   - set_headers: a mapping from header name to an expression yielding
//     string or bytes; each sets that header on the record.
//   - drop_headers: a non-empty list of header names; every header with one
//     of them is removed from the record.
//   - join: a stream-table join, a mapping with table (the name of a table
//     source, or of an aggregate step without a window: see Tables and
//     their changes), type (inner, the default: a record whose key has no
//     row is dropped; left: it is output with table null) and output (an
//     expression over the record's variables and table, the row's value,
//     whose result becomes the value). The lookup is the record key as read
//     (bytes) in the table as the task has it when the record is processed:
//     after a start or a rebalance the table partition is caught up to its
//     high watermark before any record of that partition is joined; a row
//     that changes later does not make earlier records join again (a table
//     that steps also read with from is caught up to the group's committed
//     offset instead, and its later records apply as they are read again).
//     Partition p of the input and of the table is one task: an input keyed
//     as read from one topic needs the table's partition count; otherwise
//     (a key step upstream) the records go through the step's repartition
//     topic first, keyed as the table's keys are. A join step whose from is
//     a table source is a table-table join: type may also be outer, value
//     is the from table's row and table the other's (either null where a
//     side has none), and the output is an upsert stream: on every change
//     of either table, the key's joined row, or a tombstone when it stops
//     existing (an output of null means no row). With on (an expression
//     over the from row giving the other table's key; inner or left only),
//     it is a foreign-key join, keyed as the from table, through the step's
//     subscription and response topics; otherwise the tables join on their
//     keys and must be co-partitioned. The tables of a table-table join are
//     restored up to the group's committed offsets. With stream (the name
//     of another source or step) instead of table it is a stream-stream
//     windowed join on the record key and the record timestamp (event
//     time): a record of the step's input (value) joins each record of the
//     other stream (other) with the same key whose time is at most within
//     before or after its own (or before and after separately, Go
//     durations); type is inner, left (unmatched input records are output
//     with other null) or outer (unmatched records of both, the missing
//     side null). Both sides wait in a changelog-backed store. The task's
//     event-time clock is the minimum over the two sides of the latest time
//     each has read; a record more than grace (default 0) behind it is late
//     (dropped, counted). Unmatched records are output only once their
//     window closes (the clock passed their time plus within plus grace),
//     then leave the store with tombstones. idle_timeout (default off): a
//     side that sent nothing for that long (wall clock) stops holding the
//     clock back, and when both are quiet the clock moves on by wall clock.
//     ttl (default off, at least 1s; stream-stream joins only): a record
//     buffered that long (wall clock) leaves the store, unmatched. Both
//     sides keyed as their topics were written must be co-partitioned;
//     after a key step on either side both go through the step's
//     repartition topic, keyed by the join key.
//   - aggregate: keeps one row per group and outputs it as records change
//     it; see Aggregates below.
//   - dedupe: drops records whose id was seen before, within a ttl; see
//     below.
//
// A route's branches take:
//
//   - when: a bool expression; a branch without when matches everything, so
//     it may only be the last one (the default).
//   - to (required): the name of a step or sink.
//
// Branches are tried in order and the record goes to the first that
// matches. A record that matches no branch is dropped.
//
// Expressions whose type is only known per record (value.x is dyn) are
// accepted wherever a type is required and checked as records flow.
//
// A dedupe step's seen ids live in a changelog-backed store and expire once
// stream time passes ttl; records with one id must share a partition (one
// Kafka key). It takes:
//
//   - id (required): an expression: records of one id are duplicates.
//   - ttl (required): a Go duration, at most 720h: how long an id is
//     remembered.
//   - time: event time, as a window's; default the record timestamp.
//   - keep: first (the default: the first record of an id passes and later
//     ones within ttl are dropped) or last (every record later in event
//     time than all before it of its id passes, stale copies are dropped).
//
// # Aggregates
//
// An aggregate step is SQL's GROUP BY, kept up to date as records arrive:
// it holds one row per distinct group value and outputs the row each time
// it changes.
//
//	name: user-totals
//	sources:
//	  - name: events
//	    topic: events
//	steps:
//	  - name: per-user
//	    aggregate:
//	      group_by:
//	        user_id: value.user_id
//	      columns:
//	        purchase_count: {fn: count, where: 'value.amount > 0'}
//	        refund_count: {fn: count, where: 'value.amount < 0'}
//	        net_spend: {fn: sum, of: value.amount, scale: 2}
//	sinks:
//	  - name: totals
//	    topic: user-totals
//
// is, in SQL,
//
//	SELECT value.user_id AS user_id,
//	       COUNT(*) FILTER (WHERE value.amount > 0) AS purchase_count,
//	       COUNT(*) FILTER (WHERE value.amount < 0) AS refund_count,
//	       SUM(value.amount) AS net_spend  -- printed with 2 decimals
//	FROM events GROUP BY value.user_id
//
// An aggregate takes:
//
//   - group_by (required): either one expression, whose group column is
//     then named key, or a non-empty mapping from group column name to
//     expression, for a group of several values (GROUP BY a, b).
//   - columns (required): a non-empty mapping from column name to column
//     (see below).
//   - emit: on_update (the default) outputs the row once per input record
//     that changed it; on_commit outputs each changed row once per
//     transaction, as it stands at commit; on_close (windows only) outputs
//     one final row per window once it closes.
//   - window: a window (see Windows).
//
// A column takes:
//
//   - fn (required): count, count_distinct, sum, min, max, avg, first or
//     last. first and last keep of from the first and the last record
//     counted. count_distinct counts the distinct non-null values of of
//     (COUNT(DISTINCT of)), 1.5 and 1.50 being one value, in a set per
//     group of at most 10000 values: a record that would add one more fails
//     as a bad record. On a table's changes only count, count_distinct, sum
//     and avg may be used (see Tables and their changes).
//   - of: the expression to aggregate; required except for count. count
//     without of counts records (COUNT(*)); with of, the records where of
//     is not null (COUNT(of)). For sum, min, max and avg of must be a
//     number (int, uint or double); for first and last it may be anything.
//   - where: a bool expression; only the records for which it is true count
//     for this column (COUNT(*) FILTER (WHERE ...)).
//   - scale: for sum, min, max and avg only, an integer from 0 to 18: the
//     number of decimal places the column prints, as in NUMERIC(p, scale).
//     Without it a sum keeps the scale of its inputs (100.00 + 20.00 is
//     120.00).
//
// Tables and their changes: the records of a table source (not global), the
// rows of an aggregate step without a window and the rows of a table-table
// join on the key are changes of a table, each the new row of its key (a
// null value: the row was deleted) carrying the row it replaced. An
// aggregate without a window that reads changes retracts, as Kafka Streams'
// groupBy().aggregate(adder, subtractor) does: it subtracts the old row
// from its old group and adds the new row to its new group, and deletes (a
// tombstone) a group left without rows. Only count, count_distinct, sum and
// avg may be used there: min, max, first and last cannot subtract a row,
// and are an error naming the column. A filter of changes keeps a row while
// it qualifies, deletes it (a tombstone) once it stops, and outputs nothing
// for a row that never qualified: SQL's HAVING after an aggregate. A map
// maps both rows; set_headers and drop_headers pass them on. Every other
// step and every sink reads the new rows as a stream (a deleted row: a null
// value). A join's table may also be an aggregate step without a window:
// the record key, as a group value, is looked up in the aggregate's rows
// (both go through repartition topics keyed by group).
//
// Column names, of group and aggregate columns alike, are a letter or _
// followed by up to 63 letters, digits or _, and are unique across both
// kinds, since together they form the output row. A single-expression
// group_by takes the name key, so no aggregate column may then be named
// key.
//
// Each output record has as key the group value when there is one group
// column (a map from group column name to value otherwise), and as value a
// map of every group column and aggregate column.
//
// The rows live in a state store named after the step and backed by the
// changelog topic <pipeline>-<step>-changelog, where <pipeline> is the
// pipeline name. Unless group_by is exactly the expression key and records
// are still partitioned by it (they come from a single topic, and no key
// step or repartitioning aggregate step lies upstream), records first go
// through the repartition topic <pipeline>-<step>-repartition, so that each
// group is handled in one place. Both names are reserved for every
// aggregate step: no source or sink may use them, and they must fit Kafka's
// limit of 249 characters.
//
// # Windows
//
// An aggregate may take a window, which adds window_start and window_end to
// its rows and keys:
//
//	window:
//	  tumbling: 1m                     # or hopping: {size: 5m, advance: 1m}, or session: {gap: 30s}
//	  time: value.event_ts             # event time; default the record timestamp
//	  grace: 10s                       # default 0
//	  idle_timeout: 30s                # default off: advance an idle task's time by wall clock
//	  upstream_idle: 1s                # default 1s: see below
//	  late: drop                       # or dead_letter (needs dead_letter_topic), or {to: SINK}
//
// A window takes exactly one of tumbling, hopping and session, and:
//
//   - tumbling: a Go duration: windows of that size, one after another.
//   - hopping: a mapping with size and advance (Go durations, size a
//     multiple of advance): windows of size starting every advance.
//   - session: a mapping with gap (a Go duration): a key's records at most
//     gap apart share one window.
//   - time: an expression giving the event time: a timestamp, an RFC 3339
//     string, a "YYYY-MM-DD HH:MM:SS" string (UTC) or epoch milliseconds;
//     default the record timestamp.
//   - grace: a Go duration, default 0: how long after its end a window
//     still takes late records.
//   - idle_timeout: a Go duration, default off: a task that gets no record
//     for that long advances its stream time by the wall clock, so its
//     windows close when input stops.
//   - upstream_idle: a Go duration, default 1s: see below.
//   - late: what a record for an already closed window does: drop (the
//     default, counted), dead_letter (needs dead_letter_topic) or {to:
//     SINK} (written to that sink of the pipeline).
//
// A tumbling or hopping window closes when the task's stream time reaches
// its end plus grace; a session (records at most gap apart, so records
// exactly gap apart share one) when stream time passes its last record plus
// gap plus grace. on_commit emits, once per transaction, the latest row of
// every window changed in it, closed or not. A task reading a source
// partition takes that partition's highest event time as stream time; a
// task behind the repartition topic takes the minimum over the upstream
// partitions' watermarks (see the processor package), where an upstream
// partition that sent nothing for upstream_idle while its reader is caught
// up does not count until it sends again.
//
// # Connections
//
// from names the input of a step or sink: one node name or a list of names,
// whose records are merged (fan-in). from may name sources and steps, but
// not sinks (which have no output) nor route steps (which send records only
// to their branch targets: name the node in a to of the route instead). A
// route target may still have a from of its own to receive records from
// other nodes too.
//
// Without from:
//
//   - a step that is a route target receives only what the route sends it;
//   - otherwise the first step reads the only source (with several sources,
//     from is required) and any other step reads the step before it in the
//     list, unless that step is a route, which is an error;
//   - a sink that is a route target receives only what the route sends it;
//   - otherwise a sink reads the last step in the list, or the only source
//     when there are no steps; if that would be a route, or one of several
//     sources, from is required.
//
// The graph must have no cycle, every source and step must feed some node,
// and every sink must be reachable from a source.
//
// # Expressions
//
// Expressions are CEL (https://cel.dev), checked against the environment
// returned by [NewEnv]. They see the variables key, value, headers,
// timestamp, topic, partition and offset (see [VarKey] and the following
// constants), the CEL standard library and the cel-go extensions for
// strings, math, encoders (base64) and lists. Numbers of different types
// compare naturally (value.price > 10 works whether price is an int or a
// double), +, -, * and / mix an int or uint with a double into a double
// (value.price * 1.5 works when price was written as 10; int with int stays
// integer arithmetic, int with uint needs a conversion), and timestamp
// accessors use UTC unless given a time zone.
//
// Avro and Protobuf decimals are values of the type decimal, exact: they
// compare by value with any number on either side (value.amount > 100, 100
// == value.amount, value.amount in [0, 10]); +, -, * with a decimal, int or
// uint are exact, / rounds half-even to 34 significant digits keeping the
// dividend's decimal places (120.50 / 4 is 30.125), a double on either side
// gives a double. decimal(x) makes one from a string, int, uint or double
// (its shortest text); double(d), int(d) (toward zero) and string(d)
// convert back. A decimal an expression returns leaves the pipeline as the
// same exact number.
//
// # YAML
//
// Anchors, aliases and merge keys work as usual, for instance to share
// settings between sources:
//
//	sources:
//	  - &raw {name: clicks, topic: clicks, format: bytes, key_format: bytes}
//	  - {<<: *raw, name: views, topic: views}
//
// Keys set next to a merge key win over merged ones. Duplicate keys are
// errors.
//
// YAML rules apply before CEL sees the text: quote expressions that start
// with a YAML indicator ('"paid"', '{"id": value.id}', '[1, 2]') or contain
// ": ", or use a block scalar (|) for long ones.
package topology
