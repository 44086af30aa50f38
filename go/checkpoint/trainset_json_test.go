package checkpoint

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

type trainsetJSONCase struct {
	Name    string  `json:"name"`
	Format  string  `json:"format"`
	Text    *string `json:"text"`
	TextHex string  `json:"text_hex"`
	Digest  string  `json:"digest"`
	Error   bool    `json:"error"`
	Line    int     `json:"line"`
}

func loadTrainsetJSONCases(t *testing.T) []trainsetJSONCase {
	t.Helper()
	var file struct {
		Cases []trainsetJSONCase `json:"cases"`
	}
	loadJSON(t, filepath.Join(vectorsDir, "trainset-json", "cases.json"), &file)
	if len(file.Cases) < 100 {
		t.Fatalf("only %d cases", len(file.Cases))
	}
	return file.Cases
}

func (c trainsetJSONCase) input(t *testing.T) []byte {
	if c.Text != nil {
		return []byte(*c.Text)
	}
	b, err := hex.DecodeString(c.TextHex)
	if err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	return b
}

// Every case of tests/vectors/trainset-json/cases.json: the digest, or a
// refusal naming the byte offset (and the line of JSON Lines).
func TestHashTrainsetJSONCases(t *testing.T) {
	for _, c := range loadTrainsetJSONCases(t) {
		hash := HashTrainsetJSON
		if c.Format == "jsonl" {
			hash = HashTrainsetJSONL
		}
		input := c.input(t)
		digest, err := hash(input)
		if c.Error {
			var refused *TrainsetJSONError
			if !errors.As(err, &refused) {
				t.Errorf("%s: want a *TrainsetJSONError, got digest %x, err %v", c.Name, digest, err)
				continue
			}
			if refused.Line != c.Line || refused.Offset < 0 || refused.Offset > len(input) {
				t.Errorf("%s: want line %d, got %q", c.Name, c.Line, refused.Error())
			}
			prefix := "byte " + strconv.Itoa(refused.Offset) + ": "
			if c.Line > 0 {
				prefix = "line " + strconv.Itoa(c.Line) + ", " + prefix
			}
			if !strings.HasPrefix(refused.Error(), prefix) {
				t.Errorf("%s: message %q does not start with %q", c.Name, refused.Error(), prefix)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		if got := hex.EncodeToString(digest[:]); got != c.Digest {
			t.Errorf("%s: digest %s, want %s", c.Name, got, c.Digest)
		}
	}
}

// The numbers become the Go values HashTrainset hashes the same way.
func TestHashTrainsetJSONNumbers(t *testing.T) {
	big64 := new(big.Int).Lsh(big.NewInt(1), 64)
	for text, want := range map[string]any{
		"[1]":                      int64(1),
		"[-0]":                     int64(0),
		"[1.0]":                    1.0,
		"[-0.0]":                   math.Copysign(0, -1),
		"[18446744073709551616]":   big64,
		"[9223372036854775807]":    int64(math.MaxInt64),
		"[-9223372036854775808]":   int64(math.MinInt64),
		"[9007199254740993.0]":     float64(1 << 53),
		"[5e-324]":                 math.SmallestNonzeroFloat64,
		"[1.7976931348623157e308]": math.MaxFloat64,
		"[1e-400]":                 0.0,
	} {
		got, err := HashTrainsetJSON([]byte(text))
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		expected, err := HashTrainset([]any{want})
		if err != nil {
			t.Fatal(err)
		}
		if got != expected {
			t.Errorf("%s: digest differs from HashTrainset(%v)", text, want)
		}
	}
}

func TestHashTrainsetJSONErrorPositions(t *testing.T) {
	for _, c := range []struct {
		text   string
		jsonl  bool
		offset int
		line   int
	}{
		{`[{"a": 1, "a": 2}]`, false, 10, 0},
		{`["日本", x]`, false, 11, 0},
		{"\"é\"\n\n[1, x]", true, 10, 3},
		{"[\"\xff\"]", false, 2, 0},
		{"1\n\"\xff\"", true, 3, 2},
	} {
		hash := HashTrainsetJSON
		if c.jsonl {
			hash = HashTrainsetJSONL
		}
		_, err := hash([]byte(c.text))
		var refused *TrainsetJSONError
		if !errors.As(err, &refused) || refused.Offset != c.offset || refused.Line != c.line {
			t.Errorf("%q: want byte %d line %d, got %v", c.text, c.offset, c.line, err)
		}
	}
}

func TestHashTrainsetJSONSizeLimit(t *testing.T) {
	big := make([]byte, MaxInputSize+1)
	for _, hash := range []func([]byte) ([32]byte, error){HashTrainsetJSON, HashTrainsetJSONL} {
		_, err := hash(big)
		var refused *TrainsetJSONError
		if !errors.As(err, &refused) || !strings.Contains(refused.Detail, "more than the limit") {
			t.Errorf("want a size refusal, got %v", err)
		}
	}
}

// Text encoding/json writes hashes as the values it came from.
func TestHashTrainsetJSONOfMarshalledValues(t *testing.T) {
	examples := []any{
		map[string]any{"q": "Grüße 𝄞 \u2028 <&>", "n": 3, "f": 0.25, "l": []any{nil, true, -7, 1e300}},
		"\x00\x1f\"\\",
		[]any{},
		map[string]any{},
	}
	text, err := json.Marshal(examples)
	if err != nil {
		t.Fatal(err)
	}
	got, err := HashTrainsetJSON(text)
	if err != nil {
		t.Fatal(err)
	}
	want, err := HashTrainset(examples)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("%s: digest differs", text)
	}
}

func FuzzHashTrainsetJSON(f *testing.F) {
	f.Add([]byte(`[1, 2.5, "x", {"a": [null, true]}]`))
	f.Add([]byte("1\n\"\\ud83d\\ude00\"\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, hash := range []func([]byte) ([32]byte, error){HashTrainsetJSON, HashTrainsetJSONL} {
			if _, err := hash(data); err != nil {
				var refused *TrainsetJSONError
				if !errors.As(err, &refused) {
					t.Fatalf("%q: not a *TrainsetJSONError: %v", data, err)
				}
			}
		}
	})
}
