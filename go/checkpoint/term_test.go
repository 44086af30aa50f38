package checkpoint

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"math/big"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
)

func bigPow(base, exp int64) *big.Int {
	return new(big.Int).Exp(big.NewInt(base), big.NewInt(exp), nil)
}

func deepList(depth int) any {
	var v any = "leaf"
	for i := 1; i < depth; i++ {
		v = []any{v}
	}
	return v
}

// The Go counterparts of the edge values of the terms_edge vector
// (tests/vectors/generate.py, EDGE_VALUES), in order.
func edgeValues() []MapEntry {
	bigPositive := new(big.Int).Add(bigPow(2, 200), big.NewInt(12345))
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	return []MapEntry{
		{"null", nil},
		{"true", true},
		{"false", false},
		{"zero", 0},
		{"int64_min", int64(math.MinInt64)},
		{"int64_max", int64(math.MaxInt64)},
		{"just_above_int64", uint64(1) << 63},
		{"just_below_int64", new(big.Int).Sub(big.NewInt(math.MinInt64), big.NewInt(1))},
		{"big_positive", bigPositive},
		{"big_negative", new(big.Int).Neg(bigPow(2, 130))},
		{"float_zero", 0.0},
		{"float_negative_zero", math.Copysign(0, -1)},
		{"float_inf", math.Inf(1)},
		{"float_negative_inf", math.Inf(-1)},
		{"float_min_subnormal", 5e-324},
		{"float_one", 1.0},
		{"empty_string", ""},
		{"unicode", "naïve, 漢字, 𝄞🎉 (beyond the BMP)"},
		{"empty_bytes", []byte{}},
		{"all_bytes", allBytes},
		{"atom", Atom("ok")},
		{"empty_list", []any{}},
		{"empty_tuple", Tuple{}},
		{"empty_map", map[string]any{}},
		{"list_of_kinds", []any{1, 1.0, true, "1", []byte("1"), Atom("one"), nil}},
		{"tuple", Tuple{Atom("error"), "timeout", 30}},
		{"map_mixed_keys", Map{
			{1, "int"}, {"1", "str"}, {false, "bool"}, {2.5, "float"}, {nil, "null"},
			{Tuple{1, 2}, "tuple"}, {[]byte("k"), "b"},
		}},
		{"nested_map", map[string]any{"model": map[string]any{"name": "gpt", "params": map[string]any{"top_p": 0.9, "stop": []any{"\n", "###"}}}}},
		{"deep_24", deepList(24)},
	}
}

// ToTerm of Go values gives the bytes the Python library wrote in the
// terms_edge vector.
func TestToTermMatchesVector(t *testing.T) {
	cp, err := Decode(readVector(t, "valid/terms_edge.binpb"))
	if err != nil {
		t.Fatal(err)
	}
	edges := edgeValues()
	if len(cp.OptimizerOpts) != len(edges) {
		t.Fatalf("vector has %d options, the test knows %d", len(cp.OptimizerOpts), len(edges))
	}
	for i, e := range edges {
		opt := cp.OptimizerOpts[i]
		if opt.Key != e.Key {
			t.Fatalf("option %d is %q, want %q", i, opt.Key, e.Key)
		}
		got := marshal(t, mustTerm(t, e.Value))
		want := marshal(t, opt.Value)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: ToTerm gives %x, the vector holds %x", e.Key, got, want)
		}
		// And back: FromTerm then ToTerm is the identity on canonical Terms.
		native, err := FromTerm(opt.Value)
		if err != nil {
			t.Fatalf("%s: FromTerm: %v", e.Key, err)
		}
		if again := marshal(t, mustTerm(t, native)); !bytes.Equal(again, want) {
			t.Errorf("%s: round trip gives %x, want %x", e.Key, again, want)
		}
	}
}

func termHex(t *testing.T, v any) string {
	t.Helper()
	return hex.EncodeToString(marshal(t, mustTerm(t, v)))
}

func TestToTermIntegers(t *testing.T) {
	cases := []struct {
		v    any
		want string
	}{
		{0, "1800"},
		{-1, "1801"},
		{1, "1802"},
		{int64(math.MaxInt64), "18feffffffffffffffff01"},
		{int64(math.MinInt64), "18ffffffffffffffffff01"},
		{uint64(math.MaxInt64), "18feffffffffffffffff01"},
		{int8(-3), "1805"},
		{uint8(200), "189003"},
		{uint64(1) << 63, "2209008000000000000000"},        // 2^63
		{uint64(math.MaxUint64), "220900ffffffffffffffff"}, // 2^64-1
		{new(big.Int).Sub(big.NewInt(math.MinInt64), big.NewInt(1)), "2209ff7fffffffffffffff"}, // -2^63-1
		{new(big.Int).Neg(bigPow(2, 64)), "2209ff0000000000000000"},                            // -2^64
		{bigPow(2, 64), "2209010000000000000000"},
		{big.NewInt(5), "180a"},   // a big.Int in int64 range is an int_value
		{*big.NewInt(-5), "1809"}, // also by value
	}
	for _, c := range cases {
		if got := termHex(t, c.v); got != c.want {
			t.Errorf("%T %v: %s, want %s", c.v, c.v, got, c.want)
		}
	}
}

func TestBigintBytesRoundTrip(t *testing.T) {
	// Every value around the byte boundaries encodes minimally and decodes back.
	for bits := 60; bits < 140; bits++ {
		for _, delta := range []int64{-1, 0, 1} {
			for _, sign := range []int{1, -1} {
				n := new(big.Int).Add(bigPow(2, int64(bits)), big.NewInt(delta))
				if sign < 0 {
					n.Neg(n)
				}
				b := BigintBytes(n)
				if BigintFromBytes(b).Cmp(n) != 0 {
					t.Fatalf("%v: %x decodes to %v", n, b, BigintFromBytes(b))
				}
				if msg := checkBigint(b); n.IsInt64() != (msg != "") {
					t.Fatalf("%v: %x: check says %q", n, b, msg)
				}
			}
		}
	}
}

func TestToTermFloats(t *testing.T) {
	cases := []struct {
		v    any
		want string
	}{
		{0.0, "290000000000000000"},
		{math.Copysign(0, -1), "290000000000000080"},
		{math.Inf(1), "29000000000000f07f"},
		{math.Inf(-1), "29000000000000f0ff"},
		{float32(1.5), "29000000000000f83f"},
	}
	for _, c := range cases {
		if got := termHex(t, c.v); got != c.want {
			t.Errorf("%v: %s, want %s", c.v, got, c.want)
		}
	}
	// -0.0 stays distinct from 0.0 through a round trip.
	back, err := FromTerm(mustTerm(t, math.Copysign(0, -1)))
	if err != nil || !math.Signbit(back.(float64)) {
		t.Fatalf("-0.0 came back as %v (%v)", back, err)
	}
}

func invalidPath(t *testing.T, err error) string {
	t.Helper()
	var ic *InvalidCheckpoint
	if !errors.As(err, &ic) {
		t.Fatalf("error %v (%T) is not an *InvalidCheckpoint", err, err)
	}
	return ic.Path
}

func TestToTermRefusals(t *testing.T) {
	cycle := []any{nil}
	cycle[0] = cycle
	cases := []struct {
		name string
		v    any
		path string
	}{
		{"NaN", math.NaN(), "value"},
		{"NaN float32", []any{float32(math.NaN())}, "value[0]"},
		{"NaN in map", map[string]any{"meta": []any{1, math.NaN()}}, `value["meta"][1]`},
		{"NaN as key", Map{{math.NaN(), 1}}, "value[NaN]"},
		{"duplicate key", Map{{"a", 1}, {"b", 2}, {"a", 3}}, "value"},
		{"duplicate nested key", []any{Map{{1, "x"}, {int64(1), "y"}}}, "value[0]"},
		{"unsupported type", []any{struct{}{}}, "value[0]"},
		{"unsupported map", map[int]any{1: 2}, "value"},
		{"nil big.Int", (*big.Int)(nil), "value"},
		{"bad UTF-8", []any{"ok", "\xff"}, "value[1]"},
		{"bad UTF-8 atom", Atom("\xc3"), "value"},
		{"too deep", deepList(25), "value" + strings.Repeat("[0]", 24)},
		{"cycle", cycle, "value" + strings.Repeat("[0]", 24)},
		{"term without kind", []any{&v1.Term{}}, "value[0]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ToTerm(c.v)
			if err == nil {
				t.Fatalf("accepted")
			}
			if got := invalidPath(t, err); got != c.path {
				t.Fatalf("path %q, want %q (%v)", got, c.path, err)
			}
		})
	}
	if _, err := ToTerm(deepList(24)); err != nil {
		t.Fatalf("depth 24 refused: %v", err)
	}
}

func TestToTermMaps(t *testing.T) {
	// Entries are sorted by the canonical bytes of their keys whatever the input order.
	a := mustTerm(t, Map{{"b", 2}, {"a", 1}, {1, 0}, {Atom("a"), 3}})
	b := mustTerm(t, Map{{Atom("a"), 3}, {1, 0}, {"a", 1}, {"b", 2}})
	if !bytes.Equal(marshal(t, a), marshal(t, b)) {
		t.Fatalf("insertion order changed the bytes")
	}
	var prev []byte
	for i, e := range a.GetMapValue().GetEntries() {
		kb := marshal(t, e.Key)
		if i > 0 && bytes.Compare(prev, kb) >= 0 {
			t.Fatalf("entries not strictly increasing at %d", i)
		}
		prev = kb
	}
	// A string and an atom of the same text, 1 and 1.0 and true, are distinct keys.
	if _, err := ToTerm(Map{{"a", 1}, {Atom("a"), 2}, {1, 3}, {1.0, 4}, {true, 5}}); err != nil {
		t.Fatal(err)
	}
	// map[string]any gives the same bytes as the equivalent Map.
	m := mustTerm(t, map[string]any{"question": "2+2?", "answer": "4"})
	o := mustTerm(t, Map{{"question", "2+2?"}, {"answer", "4"}})
	if !bytes.Equal(marshal(t, m), marshal(t, o)) {
		t.Fatalf("map[string]any and Map differ")
	}
	// Map keys of a map can be lists and maps.
	if _, err := ToTerm(Map{{[]any{1, 2}, "list key"}, {Map{{"k", "v"}}, "map key"}}); err != nil {
		t.Fatal(err)
	}
}

func TestFromTerm(t *testing.T) {
	v := Map{{"s", "x"}, {"l", []any{int64(1), 2.5, nil, true, []byte{0}, Atom("a"), Tuple{"t"}}}, {"big", bigPow(2, 70)}}
	term := mustTerm(t, v)
	got, err := FromTerm(term)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := got.(Map)
	if !ok || len(m) != 3 {
		t.Fatalf("FromTerm gave %#v", got)
	}
	// Canonical order: "big" < "l" < "s" (same length prefix: 32 len, then text).
	if m[0].Key != "l" && m[0].Key != "s" && m[0].Key != "big" {
		t.Fatalf("unexpected keys %#v", m)
	}
	for _, e := range m {
		switch e.Key {
		case "big":
			if e.Value.(*big.Int).Cmp(bigPow(2, 70)) != 0 {
				t.Fatalf("big came back as %v", e.Value)
			}
		case "l":
			want := []any{int64(1), 2.5, nil, true, []byte{0}, Atom("a"), Tuple{"t"}}
			if !reflect.DeepEqual(e.Value, want) {
				t.Fatalf("list came back as %#v", e.Value)
			}
		case "s":
			if e.Value != "x" {
				t.Fatalf("s came back as %#v", e.Value)
			}
		}
	}
}

// unsortedMapTerm builds a map Term with entries in the given order.
func unsortedMapTerm(t *testing.T, pairs ...[2]any) *v1.Term {
	entries := make([]*v1.TermMapEntry, len(pairs))
	for i, p := range pairs {
		entries[i] = &v1.TermMapEntry{Key: mustTerm(t, p[0]), Value: mustTerm(t, p[1])}
	}
	return &v1.Term{Kind: &v1.Term_MapValue{MapValue: &v1.TermMap{Entries: entries}}}
}

func TestFromTermLenientOrder(t *testing.T) {
	unsorted := unsortedMapTerm(t, [2]any{"question", "q"}, [2]any{"answer", "a"})
	if err := ValidateTerm(unsorted); err == nil || invalidPath(t, err) != "term.map_value.entries[1].key" {
		t.Fatalf("ValidateTerm: %v", err)
	}
	c, err := CanonicalTerm(unsorted)
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidateTerm(c); err != nil {
		t.Fatalf("canonical copy refused: %v", err)
	}
	if want := marshal(t, mustTerm(t, map[string]any{"question": "q", "answer": "a"})); !bytes.Equal(marshal(t, c), want) {
		t.Fatalf("canonical copy differs")
	}
	dup := &v1.Term{Kind: &v1.Term_ListValue{ListValue: &v1.TermList{Items: []*v1.Term{
		mustTerm(t, 1),
		unsortedMapTerm(t, [2]any{"b", 1}, [2]any{"a", 2}, [2]any{"b", 3}),
	}}}}
	_, err = FromTerm(dup)
	if err == nil || invalidPath(t, err) != "term.list_value.items[1].map_value.entries[2].key" {
		t.Fatalf("duplicate: %v", err)
	}
	nan := &v1.Term{Kind: &v1.Term_TupleValue{TupleValue: &v1.TermList{Items: []*v1.Term{
		{Kind: &v1.Term_FloatValue{FloatValue: math.NaN()}},
	}}}}
	if _, err := FromTerm(nan); err == nil || invalidPath(t, err) != "term.tuple_value.items[0].float_value" {
		t.Fatalf("NaN: %v", err)
	}
	noValue := &v1.Term{Kind: &v1.Term_MapValue{MapValue: &v1.TermMap{Entries: []*v1.TermMapEntry{{Key: mustTerm(t, 1)}}}}}
	if _, err := FromTerm(noValue); err == nil || invalidPath(t, err) != "term.map_value.entries[0]" {
		t.Fatalf("entry without value: %v", err)
	}
}

// A stats map counts as one level: its values may be 23 deep, not 24.
func TestTermMapFieldDepth(t *testing.T) {
	cp := validCheckpoint(t)
	cp.Progress.TrialLog[0].Stats = mustTermMap(t, Map{{"trace", deepList(23)}})
	if _, err := Encode(cp); err != nil {
		t.Fatalf("depth 23 under stats refused: %v", err)
	}
	deep := mustTerm(t, deepList(24))
	cp.Progress.TrialLog[0].Stats = &v1.TermMap{Entries: []*v1.TermMapEntry{{Key: mustTerm(t, "trace"), Value: deep}}}
	_, err := Decode(sealed(t, cp))
	want := "progress.trial_log[0].stats.entries[0].value" + strings.Repeat(".list_value.items[0]", 23)
	if err == nil || shapeField(t, err) != want {
		t.Fatalf("depth 24 under stats: %v, want %s", err, want)
	}
	if _, err := ToTerm(Map{{"trace", deepList(24)}}); err == nil {
		t.Fatalf("ToTerm built a map of depth 25")
	}
}
