package topology

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// WindowKind is the kind of an event-time window.
type WindowKind string

const (
	// Tumbling windows are fixed-size, adjacent and non-overlapping:
	// [k*size, (k+1)*size).
	Tumbling WindowKind = "tumbling"
	// Hopping windows are fixed-size and start every Advance, so they
	// overlap when Advance < Size and a record falls in Size/Advance of
	// them.
	Hopping WindowKind = "hopping"
	// Session windows group the records of a key separated by at most
	// Gap (records exactly Gap apart share a session, as in Kafka Streams
	// and Flink); a record that bridges two sessions merges them. A
	// session closes once stream time passes its last record plus Gap
	// plus Grace.
	Session WindowKind = "session"
)

// EmitOnClose outputs one final row per window once it closes (stream time
// passed its end plus grace), like SQL's EMIT ON WINDOW CLOSE.
const EmitOnClose Emit = "on_close"

// LatePolicy says what happens to a record whose window already closed.
type LatePolicy string

const (
	LateDrop       LatePolicy = "drop"
	LateDeadLetter LatePolicy = "dead_letter"
	// LateSink sends late records, as they reached the aggregate, to
	// the sink Window.LateTo (late: {to: SINK}).
	LateSink LatePolicy = "sink"
)

// lateRef is a window's late: {to: SINK}, resolved when the graph is
// linked.
type lateRef struct {
	w    *Window
	step string // the YAML path of the aggregate step, e.g. steps[2]
	to   ref
}

// Window is an aggregate's event-time window.
type Window struct {
	Kind    WindowKind
	Size    time.Duration // tumbling and hopping
	Advance time.Duration // hopping; equals Size for tumbling
	Gap     time.Duration // session
	// Grace is how long after its end a window still accepts late
	// records, in stream time. Default 0.
	Grace time.Duration
	// Time gives a record's event time: a timestamp, an RFC 3339 string,
	// a "YYYY-MM-DD HH:MM:SS" string (UTC) or epoch milliseconds. nil:
	// the record timestamp.
	Time *Expr
	// IdleTimeout, when positive, advances a task's stream time by wall
	// clock once it has received nothing for that long, so windows close
	// and final results appear without new data. The price: a record that
	// arrives after such an advance, with an event time the wall clock
	// already passed, is late.
	IdleTimeout time.Duration
	// UpstreamIdle matters only after a repartition: the event time of a
	// task reading a repartition topic is the minimum over the upstream
	// partitions writing into it, and an upstream partition that has sent
	// no record for this long (wall clock) while its reader is caught up
	// stops holding it back until it sends again. Default 1s.
	UpstreamIdle time.Duration
	// Late is the policy for records of closed windows; they are always
	// counted. Default drop.
	Late LatePolicy
	// LateTo is the sink of late records with LateSink. It receives only
	// them (unless it also names the aggregate in its from).
	LateTo *Node
}

// DefaultUpstreamIdle is Window.UpstreamIdle's default.
const DefaultUpstreamIdle = time.Second

// window decodes an aggregate's window.
func (p *parser) window(v *yaml.Node, key string) *Window {
	f := p.mapping(v, key, "window", windowKeys)
	if f == nil {
		return nil
	}
	w := &Window{Late: LateDrop, UpstreamIdle: DefaultUpstreamIdle}
	var kinds []string
	for _, k := range f.order {
		if k == "tumbling" || k == "hopping" || k == "session" {
			kinds = append(kinds, k)
		}
	}
	switch len(kinds) {
	case 0:
		p.errorf(f.pos, key, "window needs one of tumbling, hopping, session")
		return nil
	case 1:
	default:
		p.errorf(p.pos(f.keys[kinds[1]]), key, "window has several kinds (%s); pick one", fmt.Sprint(kinds))
	}
	w.Kind = WindowKind(kinds[0])
	kv := f.vals[kinds[0]]
	kkey := sub(key, kinds[0])
	switch w.Kind {
	case Tumbling:
		w.Size = p.duration(kv, kkey)
		w.Advance = w.Size
	case Hopping:
		if hf := p.mapping(kv, kkey, "hopping", []string{"size", "advance"}); hf != nil {
			if x := hf.require("size"); x != nil {
				w.Size = p.duration(x, sub(kkey, "size"))
			}
			if x := hf.require("advance"); x != nil {
				w.Advance = p.duration(x, sub(kkey, "advance"))
			}
			if w.Size > 0 && w.Advance > w.Size {
				p.errorf(hf.pos, kkey, "advance %s is larger than size %s: records between windows would be lost; use a tumbling window or a smaller advance", w.Advance, w.Size)
			}
			if w.Size > 0 && w.Advance > 0 && w.Advance <= w.Size && w.Size%w.Advance != 0 {
				p.errorf(hf.pos, kkey, "size %s is not a multiple of advance %s", w.Size, w.Advance)
			}
		}
	case Session:
		if sf := p.mapping(kv, kkey, "session", []string{"gap"}); sf != nil {
			if x := sf.require("gap"); x != nil {
				w.Gap = p.duration(x, sub(kkey, "gap"))
			}
		}
	}
	if x := f.get("grace"); x != nil {
		w.Grace = p.durationZero(x, sub(key, "grace"))
	}
	if x := f.get("idle_timeout"); x != nil {
		w.IdleTimeout = p.durationZero(x, sub(key, "idle_timeout"))
	}
	if x := f.get("upstream_idle"); x != nil {
		w.UpstreamIdle = p.duration(x, sub(key, "upstream_idle"))
	}
	if x := f.get("time"); x != nil {
		w.Time = p.expr(x, sub(key, "time"), wantAny, "time")
	}
	if x := f.get("late"); x != nil {
		lkey := sub(key, "late")
		if x.Kind == yaml.MappingNode {
			if lf := p.mapping(x, lkey, "late", []string{"to"}); lf != nil {
				if to := lf.require("to"); to != nil {
					if name, ok := p.str(to, sub(lkey, "to")); ok {
						w.Late = LateSink
						step, _, _ := strings.Cut(key, ".")
						p.lateTo = append(p.lateTo, lateRef{w: w, step: step, to: ref{name: name, pos: p.pos(to), key: sub(lkey, "to")}})
					}
				}
			}
		} else if s, ok := p.str(x, lkey); ok {
			switch LatePolicy(s) {
			case LateDrop:
			case LateDeadLetter:
				w.Late = LateDeadLetter
				p.lateDLQ = append(p.lateDLQ, keyed{x, lkey})
			default:
				p.errorf(p.pos(x), lkey, "unknown late policy %q (want drop, dead_letter or {to: SINK})", s)
			}
		}
	}
	return w
}

// duration decodes a Go duration of 1ms to 30 days: event time has
// millisecond resolution, so a shorter window, advance or gap would be
// 0ms at run time.
func (p *parser) duration(v *yaml.Node, key string) time.Duration {
	d, _ := p.parseDuration(v, key, time.Millisecond)
	return d
}

// durationZero decodes a Go duration of 0 to 30 days.
func (p *parser) durationZero(v *yaml.Node, key string) time.Duration {
	d, _ := p.parseDuration(v, key, 0)
	return d
}

// parseDuration decodes a Go duration of least to 30 days; out of range,
// the message names the range, whichever side the value is on.
func (p *parser) parseDuration(v *yaml.Node, key string, least time.Duration) (time.Duration, bool) {
	s, ok := p.str(v, key)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		p.errorf(p.pos(v), key, "invalid duration %q: want a Go duration such as 1m or 30s", s)
		return 0, false
	case d < least || d > 30*24*time.Hour:
		from := "0"
		if least > 0 {
			from = least.String()
		}
		p.errorf(p.pos(v), key, "%s is out of range: want %s to 720h", s, from)
		return 0, false
	}
	return d, true
}

// checkLateDeadLetter rejects late: dead_letter without a dead-letter
// topic.
func (p *parser) checkLateDeadLetter(t *Topology) {
	if t.DeadLetterTopic != "" {
		return
	}
	for _, x := range p.lateDLQ {
		p.errorf(p.pos(x.node), x.key, "late: dead_letter needs the pipeline's dead_letter_topic")
	}
}

// keyed is a YAML value and its key path, for checks made after decoding.
type keyed struct {
	node *yaml.Node
	key  string
}
