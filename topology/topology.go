package topology

import (
	"time"

	"github.com/google/cel-go/cel"

	"github.com/exactly-dev/exactly/format"
)

// Format is how a source or sink turns the bytes of a record key or value
// into a value that expressions see, and back: the name of a format in
// [format.Standard] and its options, which the parser checked there
// (format: NAME, or format: {name: NAME, OPTION: VALUE...}).
type Format struct {
	Name    string
	Options format.Options // nil: none (json, string and bytes take none)
}

// The formats of package format. See [format.JSON], [format.String] and
// [format.Bytes].
var (
	FormatJSON   = Format{Name: format.JSON}
	FormatString = Format{Name: format.String}
	FormatBytes  = Format{Name: format.Bytes}
)

// Equal reports whether f and g are the same format with the same
// options. The zero Format is json's.
func (f Format) Equal(g Format) bool {
	return f.name() == g.name() && f.Options.Equal(g.Options)
}

// Is reports whether f is the format called name without options.
func (f Format) Is(name string) bool { return f.name() == name && len(f.Options) == 0 }

func (f Format) name() string {
	if f.Name == "" {
		return format.JSON
	}
	return f.Name
}

// String is the format's name, followed by its options in parentheses.
func (f Format) String() string {
	if len(f.Options) == 0 {
		return f.name()
	}
	return f.name() + " (" + f.Options.String() + ")"
}

// Kind says what a node does.
type Kind string

const (
	KindSource      Kind = "source"
	KindFilter      Kind = "filter"
	KindMap         Kind = "map"
	KindFlatMap     Kind = "flat_map"
	KindKey         Kind = "key"
	KindRoute       Kind = "route"
	KindSetHeaders  Kind = "set_headers"
	KindDropHeaders Kind = "drop_headers"
	KindJoin        Kind = "join"
	KindAggregate   Kind = "aggregate"
	KindDedupe      Kind = "dedupe"
	KindSink        Kind = "sink"
)

// Names of the variables every expression may use. The runtime binds them
// for each record.
const (
	VarKey       = "key"       // dyn: decoded key, null when the record has none
	VarValue     = "value"     // dyn: decoded value, null for a tombstone
	VarHeaders   = "headers"   // map(string, string): last value wins for repeated names
	VarTimestamp = "timestamp" // google.protobuf.Timestamp: the record timestamp
	VarTopic     = "topic"     // string: source topic
	VarPartition = "partition" // int: source partition
	VarOffset    = "offset"    // int: source offset
	// VarTable is the matched table row's value in a join's output
	// (dyn; null when a left join finds no row). Only join outputs see
	// it.
	VarTable = "table"
	// VarOther is the value of the other stream's record in a
	// stream-stream join's output (dyn; null for a record of this
	// stream that found no match, in left and outer joins). Only those
	// outputs see it; value is this stream's record (null for an
	// unmatched record of the other stream, in outer joins).
	VarOther = "other"
)

// Pos is a place in a topology file.
type Pos struct {
	File      string
	Line, Col int
}

// Expr is one CEL expression, parsed, type-checked and compiled once when the
// topology loads.
type Expr struct {
	Text    string
	Pos     Pos
	Program cel.Program
	Type    *cel.Type // the checked output type
	// CostTracked: the program counts its cost as it runs and stops at
	// limits.max_eval_cost. False when the checker proved the expression
	// never costs more than that.
	CostTracked bool
}

// HeaderExpr sets one output header.
type HeaderExpr struct {
	Name string
	Expr *Expr
}

// Route is one branch of a route step. Branches are tried in order; the first
// whose When is true (or that has no When) receives the record.
type Route struct {
	When *Expr // nil: default branch
	To   *Node
}

// AggFunc is the function of one aggregate column.
type AggFunc string

const (
	AggCount AggFunc = "count" // records (with of: records where of is not null)
	AggSum   AggFunc = "sum"
	AggMin   AggFunc = "min"
	AggMax   AggFunc = "max"
	AggAvg   AggFunc = "avg"
	AggFirst AggFunc = "first" // of of the first record
	AggLast  AggFunc = "last"  // of of the last record
	// AggCountDistinct counts the distinct non-null values of of, in a
	// per-group set of at most MaxDistinct values.
	AggCountDistinct AggFunc = "count_distinct"
)

// MaxDistinct bounds the set a count_distinct column keeps per group: a
// record that would add a value beyond it fails (a bad record), so one
// group's row never grows without bound.
const MaxDistinct = 10000

// Emit says when an aggregate step outputs its rows.
type Emit string

const (
	// EmitOnUpdate outputs the row once per input record that changed it.
	EmitOnUpdate Emit = "on_update"
	// EmitOnCommit outputs each changed row once per transaction, as it
	// stands when the transaction commits.
	EmitOnCommit Emit = "on_commit"
)

// GroupColumn is one column of an aggregate step's group_by.
type GroupColumn struct {
	Name string
	Expr *Expr
}

// Column is one aggregate column of an aggregate step.
type Column struct {
	Name  string
	Func  AggFunc
	Of    *Expr // nil for count without of
	Where *Expr // nil: every record
	Scale int   // decimal places of the output, 0 to 18; -1 when not set
	// OfPath is set when Of only selects a field of the value
	// (value.a.b: ["a", "b"]); a sum or avg without scale then reads
	// the number's text from the input's bytes, to keep its decimal
	// places as SQL's NUMERIC does.
	OfPath []string

	// fnPos and fnKey locate fn, for checks made once the graph is
	// linked.
	fnPos Pos
	fnKey string
}

// Aggregate is what an aggregate step computes: one row per distinct group
// value, holding the group columns and the aggregate columns.
type Aggregate struct {
	GroupBy []GroupColumn // in file order; a single-expression group_by is one column named "key"
	Columns []Column      // in file order
	Emit    Emit          // default on_update
	// Window, when set, makes the aggregate windowed: one row per group
	// and window, with window_start and window_end columns.
	Window *Window
	// GroupByKey is true when group_by is the single expression key
	// (exactly, after trimming spaces) and records are still partitioned
	// by that key where they reach the step, so no repartition is needed:
	// no key step and no repartitioning aggregate step lies between the
	// step and its sources, which all read the same topic. Otherwise
	// records must go through the repartition topic (see
	// [RepartitionTopic]).
	GroupByKey bool
	// Retract: some input is a table's changes (see [Node.Changes]), so
	// a change of an input row subtracts the old row's contribution
	// from its old group before adding the new row's to its new group,
	// as Kafka Streams' groupBy().aggregate(adder, subtractor) does; a
	// group left without rows is deleted (a tombstone). Only invertible
	// functions are allowed (count, count_distinct, sum, avg). Never
	// with a window.
	Retract bool
}

// Node is one vertex of the graph: a source, a step or a sink.
type Node struct {
	Name string
	Kind Kind
	Pos  Pos // position of the node's mapping in the file

	// Sources and sinks.
	Topic string
	// Table: a source read as a table (the latest value per key; a null
	// value deletes the key), which joins look rows up in.
	Table bool
	// Global: a table every instance reads whole (every partition), for
	// small dimension tables: joins with it need no co-partitioning.
	Global bool
	// Changes: the node outputs a table's changes rather than a stream
	// of events: each record is the new row of its key (a null value: the
	// row was deleted) and carries the row it replaced, so that a reader
	// can undo the old row. Table sources (not global), aggregate steps
	// without a window, and filter, map, set_headers and drop_headers
	// steps whose inputs all output changes do. A filter of changes
	// deletes (a tombstone) a row that stops qualifying, as SQL's HAVING
	// does after GROUP BY. Other steps read the new rows as a stream.
	Changes   bool
	Format    Format // value format, default json
	KeyFormat Format // key format, default string

	// filter, map, flat_map and key steps.
	Expr *Expr
	// set_headers steps, sorted by header name.
	Headers []HeaderExpr
	// drop_headers steps: the header names to remove.
	DropHeaders []string
	// join steps.
	Join *Join
	// route steps.
	Routes []Route
	// aggregate steps.
	Aggregate *Aggregate
	// dedupe steps.
	Dedupe *Dedupe

	// Inputs are the nodes whose records flow into this node, in file
	// order. Outputs are the nodes this node feeds (for a route step: its
	// targets in branch order, duplicates removed).
	Inputs  []*Node
	Outputs []*Node
}

// Join is a stream-table join: each record of the step's input looks up
// the row of its key in a table source, as the task has the table when
// the record is processed, and the output expression makes the record's
// new value from both. When the step reads from a table source (Left),
// it is a table-table join instead (ttjoin.go): a change on either table
// makes the joined row of its key again, an upsert stream.
//
// With Stream set instead of Table it is a stream-stream windowed join:
// a record of the step's input (this stream) and one of Stream with the
// same key join when the other's event time lies within Before before
// and After after its own; both sides wait in changelog-backed buffers
// until their window closes (processor/streamjoin.go).
type Join struct {
	Table *Node    // a source with Table set, or an aggregate step without a window (its rows); nil for a stream-stream join
	Type  JoinType // default JoinInner
	// TypePos is where type is given (zero when it is not), for errors
	// about the type that only the linked graph finds.
	TypePos Pos
	// Left is the table source a table-table join reads from; nil for a
	// stream-table join.
	Left *Node
	// On (table-table joins only): a foreign-key join. The expression,
	// over a Left row (value, key), gives the key of Table's row it
	// joins (encoded as Table's keys are); null joins no row. Without
	// it, the tables join on their own keys.
	On     *Expr
	Output *Expr // over value, key, headers... and table (or other)

	// Stream is the other stream of a stream-stream join (a source or
	// a step); nil otherwise.
	Stream *Node
	// Before and After bound the other stream's event time relative to
	// this stream's record: other.time in [time-Before, time+After].
	// within: D sets both to D.
	Before, After time.Duration
	// Grace is how far behind the task's event-time clock a record may
	// be and still join (default 0); a record further behind is late
	// (dropped, counted).
	Grace time.Duration
	// IdleTimeout, when positive: a side that sent the task nothing for
	// this long (wall clock) stops holding event time back, and when
	// both are quiet that long the clock moves on by wall clock, so
	// unmatched rows still come out when input stops. 0: off.
	IdleTimeout time.Duration
	// TTL, when positive, bounds how long (wall clock) a record stays
	// buffered whatever event time does; 0: no bound but the window.
	TTL time.Duration
	// Repartition: the records reaching the join are not keyed as read
	// from one topic (a key step upstream), so they go through
	// <pipeline>-<step>-repartition first, keyed as the table's keys are
	// and with the table topic's partition count. Never for a global
	// table.
	Repartition bool
}

// StreamJoin reports whether n is a stream-stream join step.
func (n *Node) StreamJoin() bool { return n.Join != nil && n.Join.Stream != nil }

// JoinType says what a join does with a record whose key has no row.
type JoinType string

const (
	// JoinInner drops a record without a row.
	JoinInner JoinType = "inner"
	// JoinLeft outputs it with table null.
	JoinLeft JoinType = "left"
	// JoinOuter (table-table and stream-stream joins only) makes a row
	// when either side has one, the missing side null.
	JoinOuter JoinType = "outer"
)

// Dedupe drops records whose id was already seen within TTL of record
// time: the first record with an id passes, later ones within TTL of it
// are dropped. Ids are remembered in a changelog-backed store, and expire
// (removed from store and changelog) once stream time passes TTL.
type Dedupe struct {
	ID  *Expr
	TTL time.Duration
	// Time gives a record's event time, as a window's time does; nil:
	// the record timestamp. The TTL and expiry run on this time.
	Time *Expr
	// Keep says which record of an id passes: KeepFirst (the default)
	// passes the first and drops the others seen within the TTL;
	// KeepLast passes every record later (in event time) than all
	// before it of its id, and drops stale ones (retries and
	// out-of-order copies of an older version).
	Keep string
}

// Dedupe.Keep values.
const (
	KeepFirst = "first"
	KeepLast  = "last"
)

// Guarantee is a pipeline's delivery guarantee.
type Guarantee string

const (
	// ExactlyOnce (the default) writes outputs, changelog records and
	// input offsets in one transaction: a crash never loses or doubles an
	// effect for a read_committed reader.
	ExactlyOnce Guarantee = "exactly_once"
	// AtLeastOnce produces outputs and changelog records and waits for
	// the broker's acknowledgement before committing input offsets: a
	// crash may process records again (duplicates), never loses them.
	AtLeastOnce Guarantee = "at_least_once"
	// AtMostOnce commits input offsets before processing: a crash may
	// lose the records in flight, never duplicates them.
	AtMostOnce Guarantee = "at_most_once"
)

// Topology is a validated pipeline graph.
type Topology struct {
	File      string
	Name      string
	Group     string    // consumer group; defaults to Name
	Guarantee Guarantee // default ExactlyOnce
	// OnError is the bad-record policy: dead_letter when DeadLetterTopic
	// is set, else stop, unless on_error says otherwise.
	OnError         ErrorPolicy
	DeadLetterTopic string
	Limits          Limits
	CommitInterval  time.Duration // 0: use the daemon setting
	Sources         []*Node       // file order
	Steps           []*Node       // topological order (every node after its inputs)
	Sinks           []*Node       // file order
	// Plan is how the pipeline runs: stores, internal topics, tasks.
	Plan *Plan
}
