package processor

import (
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/cockroachdb/apd/v3"

	"github.com/exactly-dev/exactly/format"
	"github.com/exactly-dev/exactly/topology"
)

// Aggregates sum decimals exactly: every number is turned into a decimal
// from its shortest text (149.99, not 149.990000000000009094947...), and
// added in apd's arbitrary-precision decimal arithmetic, so a sum of money
// never drifts the way binary floating point does. A column's scale rounds
// the printed result half-even to that many places, like NUMERIC(p, s).

// decCtx has room for any sum of int64 and float64 inputs.
var decCtx = apd.BaseContext.WithPrecision(60)

// toDecimal turns a numeric value into a decimal.
func toDecimal(v any) (*apd.Decimal, error) {
	d := new(apd.Decimal)
	switch v := v.(type) {
	case int64:
		d.SetInt64(v)
	case uint64:
		if _, _, err := d.SetString(strconv.FormatUint(v, 10)); err != nil {
			return nil, err
		}
	case float64:
		if _, _, err := d.SetString(strconv.FormatFloat(v, 'g', -1, 64)); err != nil {
			return nil, fmt.Errorf("%v is not a finite number", v)
		}
	case format.Number:
		if _, _, err := d.SetString(string(v)); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("want a number, got %T", v)
	}
	return d, nil
}

func parseDecimal(s string) (*apd.Decimal, error) {
	d, _, err := apd.NewFromString(s)
	return d, err
}

// decimalOut prints d with scale places (scale < 0: exactly as it is).
func decimalOut(d *apd.Decimal, scale int) (format.Number, error) {
	if scale >= 0 {
		q := new(apd.Decimal)
		c := decCtx
		c.Rounding = apd.RoundHalfEven
		if _, err := c.Quantize(q, d, int32(-scale)); err != nil {
			return "", err
		}
		d = q
	}
	return format.Number(d.Text('f')), nil
}

// acc is one column's accumulator for one group. Its encoded form goes to
// the store and the changelog, so it holds exact decimals as strings.
type acc struct {
	N   int64  // records counted (count), or non-null values seen (sum, avg, min, max), or distinct values (count_distinct)
	Sum string // sum and avg: exact decimal
	V   any    // min, max, first, last: the value
	// D is count_distinct's set: each distinct value (see distinctKey)
	// with the number of rows holding it, so that a retracted row
	// removes its value only when no other row holds it. Changed in
	// place (copying a set of thousands per record would cost more than
	// the record): a copy of the acc shares it, and foldSigned's undo
	// puts back the one entry a record changed.
	D map[string]int64
}

func (a *acc) toMap() map[string]any {
	m := map[string]any{"n": a.N}
	if a.Sum != "" {
		m["s"] = a.Sum
	}
	if a.V != nil {
		m["v"] = a.V
	}
	if a.D != nil {
		d := make(map[string]any, len(a.D))
		for k, n := range a.D {
			d[k] = n
		}
		m["d"] = d
	}
	return m
}

func accFromMap(m map[string]any) acc {
	var a acc
	a.N, _ = m["n"].(int64)
	a.Sum, _ = m["s"].(string)
	a.V = m["v"]
	if d, ok := m["d"].(map[string]any); ok {
		a.D = make(map[string]int64, len(d))
		for k, n := range d {
			a.D[k], _ = n.(int64)
		}
	}
	return a
}

// update folds v (the column's `of` value, nil for count(*)) into a.
// It reports whether a changed.
func (a *acc) update(fn topology.AggFunc, v any, hasOf bool) (bool, error) {
	if v == nil && (hasOf || fn != topology.AggCount) {
		// SQL: aggregates skip nulls; COUNT(expr) counts non-null
		// values.
		if fn != topology.AggFirst && fn != topology.AggLast {
			return false, nil
		}
	}
	switch fn {
	case topology.AggCount:
		a.N++
		return true, nil
	case topology.AggSum, topology.AggAvg:
		if x, ok := fixedOf(v); ok {
			if s, ok := parseFixed([]byte(a.Sum)); ok || a.Sum == "" {
				if sum, ok := s.add(x); ok {
					a.Sum = sum.text()
					a.N++
					return true, nil
				}
			}
		}
		d, err := toDecimal(v)
		if err != nil {
			return false, err
		}
		sum := new(apd.Decimal)
		if a.Sum != "" {
			if sum, err = parseDecimal(a.Sum); err != nil {
				return false, fmt.Errorf("corrupt state: %w", err)
			}
		}
		if _, err := decCtx.Add(sum, sum, d); err != nil {
			return false, err
		}
		a.Sum = sum.Text('f')
		a.N++
		return true, nil
	case topology.AggMin, topology.AggMax:
		if a.N == 0 {
			a.V, a.N = normalize(v), 1
			return true, nil
		}
		c, err := compare(v, a.V)
		if err != nil {
			return false, err
		}
		a.N++
		if fn == topology.AggMin && c < 0 || fn == topology.AggMax && c > 0 {
			a.V = normalize(v)
		}
		return true, nil
	case topology.AggFirst:
		if a.N > 0 {
			return false, nil
		}
		a.V, a.N = normalize(v), 1
		return true, nil
	case topology.AggLast:
		a.V = normalize(v)
		a.N++
		return true, nil
	case topology.AggCountDistinct:
		k, err := distinctKey(v)
		if err != nil {
			return false, err
		}
		if _, seen := a.D[k]; !seen && len(a.D) >= topology.MaxDistinct {
			return false, fmt.Errorf("count_distinct holds %d distinct values for this group, its limit: the set is kept in the group's row, so it is bounded; count fewer values (a coarser of) or group more finely", topology.MaxDistinct)
		}
		if a.D == nil {
			a.D = map[string]int64{}
		}
		a.D[k]++
		a.N = int64(len(a.D))
		return true, nil
	}
	return false, fmt.Errorf("unknown aggregate function %q", fn)
}

// retract takes v (the column's of value of a row that changed or left
// the group) back out of a: the inverse of update, for the functions that
// have one (topology refuses the others on a table's changes).
func (a *acc) retract(fn topology.AggFunc, v any, hasOf bool) error {
	if v == nil && (hasOf || fn != topology.AggCount) {
		return nil // update skipped it
	}
	switch fn {
	case topology.AggCount:
		a.N--
		return nil
	case topology.AggSum, topology.AggAvg:
		d, err := toDecimal(v)
		if err != nil {
			return err
		}
		sum := new(apd.Decimal)
		if a.Sum != "" {
			if sum, err = parseDecimal(a.Sum); err != nil {
				return fmt.Errorf("corrupt state: %w", err)
			}
		}
		if _, err := decCtx.Sub(sum, sum, d); err != nil {
			return err
		}
		a.N--
		a.Sum = sum.Text('f')
		if a.N <= 0 {
			a.Sum = "" // no values left: SUM is NULL again
		}
		return nil
	case topology.AggCountDistinct:
		k, err := distinctKey(v)
		if err != nil {
			return err
		}
		if a.D[k] == 0 {
			return nil // never added (the state was reset): nothing to take out
		}
		if a.D[k]--; a.D[k] <= 0 {
			delete(a.D, k)
		}
		a.N = int64(len(a.D))
		return nil
	}
	return fmt.Errorf("aggregate function %s cannot take a row back out (it has no inverse); this is a bug: validation refuses it on a table's changes", fn)
}

// distinctKey is the text count_distinct keeps for v: equal values give
// equal texts, as SQL's DISTINCT compares them (1.5 and 1.50 are one
// number; "1" the string is not 1 the number).
func distinctKey(v any) (string, error) {
	switch x := v.(type) {
	case int64, uint64, float64, format.Number:
		d, err := toDecimal(x)
		if err != nil {
			return "", err
		}
		d.Reduce(d)
		return "n" + d.Text('f'), nil
	case string:
		return "s" + x, nil
	case time.Time:
		return "t" + x.UTC().Format(time.RFC3339Nano), nil
	}
	b, err := format.EncodeJSON(normalize(v))
	if err != nil {
		return "", fmt.Errorf("count_distinct of %T: %w", v, err)
	}
	return "j" + string(b), nil
}

// normalize turns values that do not survive JSON (timestamps, exact
// numbers) into ones that do; numbers become exact decimal strings marked
// as such, so min and max stay exact.
func normalize(v any) any {
	switch v := v.(type) {
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case time.Duration:
		return v.String()
	case int64, uint64, float64, format.Number:
		d, err := toDecimal(v)
		if err != nil {
			return v
		}
		return map[string]any{"dec": d.Text('f')}
	}
	return v
}

func denormalize(v any) (any, bool) {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		if s, ok := m["dec"].(string); ok {
			d, err := parseDecimal(s)
			return d, err == nil
		}
	}
	return v, false
}

var errIncomparable = errors.New("min and max compare numbers with numbers and strings with strings")

func compare(v, stored any) (int, error) {
	sv, isDec := denormalize(stored)
	if isDec {
		d, err := toDecimal(v)
		if err != nil {
			return 0, errIncomparable
		}
		return d.Cmp(sv.(*apd.Decimal)), nil
	}
	vs, ok1 := v.(string)
	ss, ok2 := sv.(string)
	if !ok1 || !ok2 {
		return 0, errIncomparable
	}
	switch {
	case vs < ss:
		return -1, nil
	case vs > ss:
		return 1, nil
	}
	return 0, nil
}

// result is the column's output value.
func (a *acc) result(c *topology.Column) (any, error) {
	switch c.Func {
	case topology.AggCount, topology.AggCountDistinct:
		return a.N, nil
	case topology.AggSum, topology.AggAvg:
		if a.N == 0 {
			return nil, nil // SQL: SUM and AVG of no values are NULL
		}
		if c.Func == topology.AggSum && c.Scale < 0 {
			// The stored text is the decimal's own ('f' form).
			return format.Number(a.Sum), nil
		}
		d, err := parseDecimal(a.Sum)
		if err != nil {
			return nil, err
		}
		if c.Func == topology.AggAvg {
			q := new(apd.Decimal)
			ctx := apd.BaseContext.WithPrecision(34)
			if _, err := ctx.Quo(q, d, apd.New(a.N, 0)); err != nil {
				return nil, err
			}
			d = q
			if c.Scale < 0 {
				d.Reduce(d)
			}
		}
		return decimalOut(d, c.Scale)
	case topology.AggMin, topology.AggMax:
		if a.N == 0 {
			return nil, nil
		}
		v, isDec := denormalize(a.V)
		if isDec {
			return wholeAsInt(decimalOut(v.(*apd.Decimal), c.Scale))
		}
		return v, nil
	}
	v, isDec := denormalize(a.V)
	if isDec {
		return wholeAsInt(decimalOut(v.(*apd.Decimal), -1))
	}
	return v, nil
}

// wholeAsInt makes a min, max, first or last that is a whole number
// written without a point (of an int, or a scale-0 decimal) an int, as
// SQL's MAX of an int is an int: a sink's int field holds it (an Avro
// union with null and a Protobuf int64 take no decimal), and JSON writes
// it the same. One with places ("2.50", "2.00") stays exact.
func wholeAsInt(n format.Number, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	if i, perr := strconv.ParseInt(string(n), 10, 64); perr == nil {
		return i, nil
	}
	return n, nil
}

// merge folds other, the accumulator of a later session of the same
// group, into a: sessions merge when a record bridges them.
func (a *acc) merge(fn topology.AggFunc, o *acc) error {
	if o.N == 0 {
		return nil
	}
	switch fn {
	case topology.AggCount:
		a.N += o.N
	case topology.AggSum, topology.AggAvg:
		sum, err := parseDecimal(o.Sum)
		if err != nil {
			return err
		}
		if a.Sum != "" {
			mine, err := parseDecimal(a.Sum)
			if err != nil {
				return err
			}
			if _, err := decCtx.Add(sum, sum, mine); err != nil {
				return err
			}
		}
		a.Sum, a.N = sum.Text('f'), a.N+o.N
	case topology.AggMin, topology.AggMax:
		if a.N == 0 {
			*a = *o
			return nil
		}
		v, _ := denormalize(o.V)
		if d, ok := v.(*apd.Decimal); ok {
			v = format.Number(d.Text('f'))
		}
		if _, err := a.update(fn, v, true); err != nil {
			return err
		}
		a.N += o.N - 1
	case topology.AggFirst:
		if a.N == 0 {
			*a = *o
		}
	case topology.AggLast:
		a.V, a.N = o.V, a.N+o.N
	case topology.AggCountDistinct:
		d := maps.Clone(a.D)
		if d == nil {
			d = map[string]int64{}
		}
		for k, n := range o.D {
			d[k] += n
		}
		a.D, a.N = d, int64(len(d))
	}
	return nil
}
