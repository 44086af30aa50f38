package checkpoint

import (
	"encoding/hex"
	"math"
	"math/big"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// The examples of the trainset vectors (tests/vectors/generate.py) as Go
// values: HashTrainset must give the Python library's digests.
func TestHashTrainsetNativeMatchesVectors(t *testing.T) {
	qa := []any{
		map[string]any{"question": "2+2?", "answer": "4"},
		map[string]any{"question": "capital?", "answer": "Paris"},
	}
	natives := map[string][]any{
		"empty":             {},
		"qa":                qa,
		"qa_unsorted_input": qa,
		"qa_reordered":      {qa[1], qa[0]},
		"int_one":           {map[string]any{"x": 1}},
		"float_one":         {map[string]any{"x": 1.0}},
		"bool_true":         {map[string]any{"x": true}},
		"string_one":        {map[string]any{"x": "1"}},
		"kinds": {
			map[string]any{
				"id":   new(big.Int).Exp(big.NewInt(2), big.NewInt(70), nil),
				"neg":  int64(math.MinInt64),
				"blob": []byte{0x00, 0xff},
				"tags": []any{"a", Atom("b")},
			},
			Map{{"pair", Tuple{1, "one"}}, {"nothing", nil}, {"inf", math.Inf(-1)}, {"nz", math.Copysign(0, -1)}},
		},
		"unicode": {map[string]any{"text": "Grüße, 世界 𝄞"}},
	}
	seen := 0
	for _, v := range loadManifest(t).Trainset {
		examples, ok := natives[v.Name]
		if !ok {
			t.Errorf("trainset vector %s has no Go counterpart in this test", v.Name)
			continue
		}
		seen++
		digest, err := HashTrainset(examples)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		if got := hex.EncodeToString(digest[:]); got != v.Sha256 {
			t.Errorf("%s: digest %s, want %s", v.Name, got, v.Sha256)
		}
	}
	if seen != len(natives) {
		t.Errorf("%d of %d Go trainsets found in the manifest", seen, len(natives))
	}
}

func TestHashTrainsetSensitivity(t *testing.T) {
	digest := func(examples ...any) string {
		d, err := HashTrainset(examples)
		if err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(d[:])
	}
	distinct := map[string]string{}
	for name, d := range map[string]string{
		"int":       digest(1),
		"float":     digest(1.0),
		"bool":      digest(true),
		"string":    digest("1"),
		"atom":      digest(Atom("1")),
		"bytes":     digest([]byte("1")),
		"list":      digest([]any{1}),
		"tuple":     digest(Tuple{1}),
		"two":       digest(1, 2),
		"two swap":  digest(2, 1),
		"one list":  digest([]any{1, 2}),
		"neg zero":  digest(math.Copysign(0, -1)),
		"pos zero":  digest(0.0),
		"nothing":   digest(),
		"null":      digest(nil),
		"empty map": digest(map[string]any{}),
	} {
		if other, dup := distinct[d]; dup {
			t.Errorf("%s and %s hash alike", name, other)
		}
		distinct[d] = name
	}
	// The digest is stable across map insertion orders.
	a := digest(Map{{"a", 1}, {"b", 2}})
	b := digest(Map{{"b", 2}, {"a", 1}})
	if a != b || a != digest(map[string]any{"a": 1, "b": 2}) {
		t.Errorf("map order changed the digest")
	}
}

func TestHashTrainsetRefusals(t *testing.T) {
	_, err := HashTrainset([]any{1, 2, 3, map[string]any{"meta": []any{make(chan int)}}})
	if err == nil || invalidPath(t, err) != `trainset[3]["meta"][0]` {
		t.Fatalf("%v", err)
	}
	if !strings.Contains(err.Error(), "chan int") {
		t.Fatalf("message does not name the type: %v", err)
	}
	_, err = HashTrainset([]any{math.NaN()})
	if err == nil || invalidPath(t, err) != "trainset[0]" {
		t.Fatalf("%v", err)
	}
}

func TestDecodeTrainsetTermRefusals(t *testing.T) {
	list := func(items ...[]byte) []byte {
		var body []byte
		for _, it := range items {
			body = protowire.AppendBytes(protowire.AppendTag(body, 1, protowire.BytesType), it)
		}
		return protowire.AppendBytes(protowire.AppendTag(nil, 9, protowire.BytesType), body)
	}
	cases := []struct {
		name string
		in   []byte
		path string
	}{
		{"not protobuf", []byte{0xff}, "<input>"},
		{"not a list", []byte{0x18, 0x02}, "<input>"},
		{"no kind", nil, "<input>"},
		{"tuple", []byte{0x52, 0x00}, "<input>"},
		{"NaN item", list([]byte{0x18, 0x02}, append([]byte{0x29}, 1, 0, 0, 0, 0, 0, 0xf8, 0x7f)), "items[1].float_value"},
		{"item without kind", list([]byte{}), "items[0]"},
		{"duplicate key", list(marshal(t, unsortedMapTerm(t, [2]any{"a", 1}, [2]any{"a", 2}))), "items[0].map_value.entries[1].key"},
		{"bigint in range", list([]byte{0x22, 0x01, 0x05}), "items[0].bigint_value"},
		{"too deep", list(marshal(t, mustTerm(t, deepList(24))), nestedListTerm(25)), "items[1]" + strings.Repeat(".list_value.items[0]", 24)},
		{"oversized", make([]byte, MaxInputSize+1), "<input>"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeTrainsetTerm(c.in)
			if err == nil {
				t.Fatalf("accepted")
			}
			if got := invalidPath(t, err); got != c.path {
				t.Fatalf("path %q, want %q (%v)", got, c.path, err)
			}
		})
	}
	// Map entries in any order are accepted and sorted.
	got, err := DecodeTrainsetTerm(list(marshal(t, unsortedMapTerm(t, [2]any{"question", "q"}, [2]any{"answer", "a"}))))
	if err != nil {
		t.Fatal(err)
	}
	m := got[0].(Map)
	if len(m) != 2 || m[0].Key != "answer" || m[1].Key != "question" {
		t.Fatalf("%#v", m)
	}
}
