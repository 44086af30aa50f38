package checkpoint

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"sort"
	"strconv"
	"unicode/utf8"

	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Atom is a symbol (an Elixir atom): a name, distinct from a string. It maps
// to a Term's atom_value.
type Atom string

// Tuple is a fixed-size ordered sequence. It maps to a Term's tuple_value;
// a []any maps to list_value.
type Tuple []any

// MapEntry is one key-value pair of a Map.
type MapEntry struct {
	Key   any
	Value any
}

// Map is a map whose keys may be any value ToTerm accepts (lists, maps,
// tuples…). ToTerm sorts its entries by the canonical bytes of their keys and
// refuses duplicates; FromTerm returns maps as a Map in that order.
type Map []MapEntry

// ToTerm converts a Go value to its canonical Term:
//
//	nil                               null_value
//	bool                              bool_value
//	int, int8…int64, uint…uint64      int_value, or bigint_value outside int64
//	*big.Int, big.Int                 int_value, or bigint_value outside int64
//	float64, float32                  float_value (NaN refused)
//	string                            string_value (must be valid UTF-8)
//	[]byte                            bytes_value
//	Atom                              atom_value (must be valid UTF-8)
//	[]any                             list_value
//	Tuple                             tuple_value
//	Map, map[string]any               map_value, entries sorted by key bytes
//	*v1.Term                          itself, validated and copied
//
// Anything else, NaN, a duplicate map key and nesting deeper than
// MaxTermDepth are refused with an *InvalidCheckpoint whose Path names the
// offending element, e.g. `value[3]["meta"][0]` (a duplicate key: the map's
// path).
func ToTerm(v any) (*v1.Term, error) {
	t, err := toTerm(v, "value", 1)
	if err != nil {
		return nil, err
	}
	return t, nil
}

func toTerm(v any, path string, level int) (*v1.Term, *InvalidCheckpoint) {
	if level > MaxTermDepth {
		return nil, invalid(RuleTermDepth, path, "value nested deeper than "+strconv.Itoa(MaxTermDepth))
	}
	switch x := v.(type) {
	case nil:
		return &v1.Term{Kind: &v1.Term_NullValue{NullValue: &v1.TermNull{}}}, nil
	case bool:
		return &v1.Term{Kind: &v1.Term_BoolValue{BoolValue: x}}, nil
	case int:
		return intTerm(int64(x)), nil
	case int8:
		return intTerm(int64(x)), nil
	case int16:
		return intTerm(int64(x)), nil
	case int32:
		return intTerm(int64(x)), nil
	case int64:
		return intTerm(x), nil
	case uint:
		return uintTerm(uint64(x)), nil
	case uint8:
		return intTerm(int64(x)), nil
	case uint16:
		return intTerm(int64(x)), nil
	case uint32:
		return intTerm(int64(x)), nil
	case uint64:
		return uintTerm(x), nil
	case *big.Int:
		if x == nil {
			return nil, invalid("", path, "nil *big.Int")
		}
		return bigTerm(x), nil
	case big.Int:
		return bigTerm(&x), nil
	case float64:
		return floatTerm(x, path)
	case float32:
		return floatTerm(float64(x), path)
	case string:
		if !utf8.ValidString(x) {
			return nil, invalid(RuleWireUTF8, path, "string is not valid UTF-8")
		}
		return &v1.Term{Kind: &v1.Term_StringValue{StringValue: x}}, nil
	case []byte:
		return &v1.Term{Kind: &v1.Term_BytesValue{BytesValue: bytes.Clone(nonNil(x))}}, nil
	case Atom:
		if !utf8.ValidString(string(x)) {
			return nil, invalid(RuleWireUTF8, path, "atom is not valid UTF-8")
		}
		return &v1.Term{Kind: &v1.Term_AtomValue{AtomValue: string(x)}}, nil
	case []any:
		items, err := toItems(x, path, level)
		if err != nil {
			return nil, err
		}
		return &v1.Term{Kind: &v1.Term_ListValue{ListValue: &v1.TermList{Items: items}}}, nil
	case Tuple:
		items, err := toItems(x, path, level)
		if err != nil {
			return nil, err
		}
		return &v1.Term{Kind: &v1.Term_TupleValue{TupleValue: &v1.TermList{Items: items}}}, nil
	case Map:
		return toMapTerm(x, path, level)
	case map[string]any:
		m := make(Map, 0, len(x))
		for k, val := range x {
			m = append(m, MapEntry{Key: k, Value: val})
		}
		return toMapTerm(m, path, level)
	case *v1.Term:
		if x == nil {
			return nil, invalid(RuleTermKind, path, "nil *Term")
		}
		// A Term given as a value is re-normalized: maps sorted, duplicates refused.
		return canonicalTerm(x, path, level)
	default:
		return nil, invalid("", path, fmt.Sprintf("unsupported type %T", v))
	}
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func intTerm(n int64) *v1.Term {
	return &v1.Term{Kind: &v1.Term_IntValue{IntValue: n}}
}

func uintTerm(n uint64) *v1.Term {
	if n <= math.MaxInt64 {
		return intTerm(int64(n))
	}
	return bigTerm(new(big.Int).SetUint64(n))
}

func bigTerm(n *big.Int) *v1.Term {
	if n.IsInt64() {
		return intTerm(n.Int64())
	}
	return &v1.Term{Kind: &v1.Term_BigintValue{BigintValue: BigintBytes(n)}}
}

func floatTerm(f float64, path string) (*v1.Term, *InvalidCheckpoint) {
	if math.IsNaN(f) {
		return nil, invalid(RuleFloatNaN, path, "NaN is not allowed")
	}
	return &v1.Term{Kind: &v1.Term_FloatValue{FloatValue: f}}, nil
}

func toItems(xs []any, path string, level int) ([]*v1.Term, *InvalidCheckpoint) {
	items := make([]*v1.Term, len(xs))
	for i, x := range xs {
		t, err := toTerm(x, index(path, i), level+1)
		if err != nil {
			return nil, err
		}
		items[i] = t
	}
	return items, nil
}

type keyedEntry struct {
	key   []byte
	entry *v1.TermMapEntry
	pos   int
}

func toMapTerm(m Map, path string, level int) (*v1.Term, *InvalidCheckpoint) {
	entries := make([]keyedEntry, len(m))
	for i, e := range m {
		p := path + "[" + showKey(e.Key) + "]"
		k, err := toTerm(e.Key, p, level+1)
		if err != nil {
			return nil, err
		}
		val, err := toTerm(e.Value, p, level+1)
		if err != nil {
			return nil, err
		}
		kb, merr := marshalOptions.Marshal(k)
		if merr != nil {
			return nil, invalid("", p, "cannot encode key: "+merr.Error())
		}
		entries[i] = keyedEntry{key: kb, entry: &v1.TermMapEntry{Key: k, Value: val}, pos: i}
	}
	out, dup := sortEntries(entries)
	if dup >= 0 {
		return nil, invalid(RuleTermMapOrder, path, "duplicate map key "+showKey(m[dup].Key))
	}
	return &v1.Term{Kind: &v1.Term_MapValue{MapValue: &v1.TermMap{Entries: out}}}, nil
}

// sortEntries sorts entries by key bytes. When two keys are equal it returns
// the original position of the later one of the first such pair (in input
// order), else -1.
func sortEntries(entries []keyedEntry) ([]*v1.TermMapEntry, int) {
	sort.SliceStable(entries, func(i, j int) bool { return bytes.Compare(entries[i].key, entries[j].key) < 0 })
	dup := -1
	for i := 1; i < len(entries); i++ {
		if bytes.Equal(entries[i-1].key, entries[i].key) {
			later := entries[i].pos // stable sort: entries[i] came later in the input
			if dup < 0 || later < dup {
				dup = later
			}
		}
	}
	if dup >= 0 {
		return nil, dup
	}
	out := make([]*v1.TermMapEntry, len(entries))
	for i, e := range entries {
		out[i] = e.entry
	}
	return out, -1
}

func showKey(k any) string {
	switch x := k.(type) {
	case string:
		return strconv.Quote(x)
	case Atom:
		return ":" + string(x)
	case []byte:
		return fmt.Sprintf("%x", x)
	case *big.Int:
		if x != nil {
			return x.String()
		}
	}
	if k == nil {
		return "nil"
	}
	rv := reflect.ValueOf(k)
	switch rv.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return fmt.Sprint(k)
	}
	return fmt.Sprintf("%T", k)
}

// BigintBytes returns the minimal two's-complement big-endian bytes of n
// (FORMAT.md §3.3), at least one byte.
func BigintBytes(n *big.Int) []byte {
	// Bits needed including the sign bit.
	var mag *big.Int
	if n.Sign() < 0 {
		mag = new(big.Int).Neg(n)
		mag.Sub(mag, big.NewInt(1)) // -n-1 >= 0
	} else {
		mag = n
	}
	size := mag.BitLen()/8 + 1
	out := make([]byte, size)
	if n.Sign() >= 0 {
		n.FillBytes(out)
		return out
	}
	// Two's complement of a negative n: 2^(8*size) + n.
	v := new(big.Int).Lsh(big.NewInt(1), uint(8*size))
	v.Add(v, n)
	v.FillBytes(out)
	return out
}

// BigintFromBytes decodes two's-complement big-endian bytes (no minimality check).
func BigintFromBytes(b []byte) *big.Int {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return n
}

// FromTerm converts a Term to Go values: null → nil, bool → bool,
// int_value → int64, bigint_value → *big.Int, float_value → float64,
// string_value → string, bytes_value → []byte, atom_value → Atom,
// list_value → []any, tuple_value → Tuple, map_value → Map (entries in
// canonical key order).
//
// The Term checks of FORMAT.md §7 apply (kind set, no NaN, minimal bigints,
// depth, keys and values present), except that map entries may come in any
// order: they are sorted, and duplicate keys (equal canonical bytes) are
// refused. Errors are *InvalidCheckpoint with a path from t, named "term"
// (e.g. `term.list_value.items[2].map_value.entries[1].key`).
func FromTerm(t *v1.Term) (any, error) {
	c, err := canonicalTerm(t, "term", 1)
	if err != nil {
		return nil, err
	}
	return fromCanonical(c), nil
}

// CanonicalTerm returns a copy of t in canonical form (map entries sorted by
// key bytes), refusing what FromTerm refuses. Unknown fields are kept.
func CanonicalTerm(t *v1.Term) (*v1.Term, error) {
	c, err := canonicalTerm(t, "term", 1)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// canonicalTerm checks t like checkTerm, but accepts map entries in any
// order: it returns a copy with entries sorted and refuses duplicate keys.
func canonicalTerm(t *v1.Term, path string, level int) (*v1.Term, *InvalidCheckpoint) {
	if err := checkTermNode(t, path, level); err != nil {
		return nil, err
	}
	out := &v1.Term{}
	out.ProtoReflect().SetUnknown(bytes.Clone(t.ProtoReflect().GetUnknown()))
	switch k := t.GetKind().(type) {
	case *v1.Term_ListValue:
		items, err := canonicalItems(k.ListValue.GetItems(), join(path, "list_value"), level)
		if err != nil {
			return nil, err
		}
		out.Kind = &v1.Term_ListValue{ListValue: withUnknown(&v1.TermList{Items: items}, k.ListValue)}
	case *v1.Term_TupleValue:
		items, err := canonicalItems(k.TupleValue.GetItems(), join(path, "tuple_value"), level)
		if err != nil {
			return nil, err
		}
		out.Kind = &v1.Term_TupleValue{TupleValue: withUnknown(&v1.TermList{Items: items}, k.TupleValue)}
	case *v1.Term_MapValue:
		m, err := canonicalMap(k.MapValue, join(path, "map_value"), level+1)
		if err != nil {
			return nil, err
		}
		out.Kind = &v1.Term_MapValue{MapValue: m}
	case *v1.Term_NullValue:
		out.Kind = &v1.Term_NullValue{NullValue: withUnknown(&v1.TermNull{}, k.NullValue)}
	case *v1.Term_BigintValue:
		out.Kind = &v1.Term_BigintValue{BigintValue: bytes.Clone(k.BigintValue)}
	case *v1.Term_BytesValue:
		out.Kind = &v1.Term_BytesValue{BytesValue: bytes.Clone(nonNil(k.BytesValue))}
	default: // scalars without references
		out.Kind = k
	}
	return out, nil
}

type unknownCarrier interface {
	comparable
	ProtoReflect() protoreflect.Message
}

func withUnknown[M unknownCarrier](dst, src M) M {
	var zero M
	if src != zero {
		if u := src.ProtoReflect().GetUnknown(); len(u) > 0 {
			dst.ProtoReflect().SetUnknown(bytes.Clone(u))
		}
	}
	return dst
}

func canonicalItems(items []*v1.Term, path string, level int) ([]*v1.Term, *InvalidCheckpoint) {
	out := make([]*v1.Term, len(items))
	for i, it := range items {
		c, err := canonicalTerm(it, index(path+".items", i), level+1)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

func canonicalMap(m *v1.TermMap, path string, level int) (*v1.TermMap, *InvalidCheckpoint) {
	entries := make([]keyedEntry, len(m.GetEntries()))
	for i, e := range m.GetEntries() {
		p := index(path+".entries", i)
		if e.GetKey() == nil {
			return nil, invalid(RuleTermMapKeyRequired, p, "map entry has no key")
		}
		k, err := canonicalTerm(e.GetKey(), p+".key", level)
		if err != nil {
			return nil, err
		}
		if e.GetValue() == nil {
			return nil, invalid(RuleTermMapValueRequired, p, "map entry has no value")
		}
		v, err := canonicalTerm(e.GetValue(), p+".value", level)
		if err != nil {
			return nil, err
		}
		kb, merr := marshalOptions.Marshal(k)
		if merr != nil {
			return nil, invalid("", p+".key", "cannot encode key: "+merr.Error())
		}
		entries[i] = keyedEntry{key: kb, entry: withUnknown(&v1.TermMapEntry{Key: k, Value: v}, e), pos: i}
	}
	out, dup := sortEntries(entries)
	if dup >= 0 {
		return nil, invalid(RuleTermMapOrder, index(path+".entries", dup)+".key", "duplicate map key")
	}
	return withUnknown(&v1.TermMap{Entries: out}, m), nil
}

func fromCanonical(t *v1.Term) any {
	switch k := t.GetKind().(type) {
	case *v1.Term_NullValue:
		return nil
	case *v1.Term_BoolValue:
		return k.BoolValue
	case *v1.Term_IntValue:
		return k.IntValue
	case *v1.Term_BigintValue:
		return BigintFromBytes(k.BigintValue)
	case *v1.Term_FloatValue:
		return k.FloatValue
	case *v1.Term_StringValue:
		return k.StringValue
	case *v1.Term_BytesValue:
		return k.BytesValue
	case *v1.Term_AtomValue:
		return Atom(k.AtomValue)
	case *v1.Term_ListValue:
		return fromItems(k.ListValue.GetItems())
	case *v1.Term_TupleValue:
		return Tuple(fromItems(k.TupleValue.GetItems()))
	case *v1.Term_MapValue:
		m := make(Map, len(k.MapValue.GetEntries()))
		for i, e := range k.MapValue.GetEntries() {
			m[i] = MapEntry{Key: fromCanonical(e.GetKey()), Value: fromCanonical(e.GetValue())}
		}
		return m
	}
	panic("unreachable: term checked before conversion")
}

func fromItems(items []*v1.Term) []any {
	out := make([]any, len(items))
	for i, it := range items {
		out[i] = fromCanonical(it)
	}
	return out
}

// FromTermMap converts a TermMap (the type of stats, errors and the
// best-program artifact) to a Map, as FromTerm converts a map Term. Errors
// are *InvalidCheckpoint with a path named "term.map_value" (e.g.
// `term.map_value.entries[1].key`).
func FromTermMap(m *v1.TermMap) (Map, error) {
	if m == nil {
		return nil, invalid("", "term", "no map")
	}
	v, err := FromTerm(&v1.Term{Kind: &v1.Term_MapValue{MapValue: m}})
	if err != nil {
		return nil, err
	}
	return v.(Map), nil
}
