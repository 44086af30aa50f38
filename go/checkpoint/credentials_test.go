package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
	"google.golang.org/protobuf/proto"
)

// The cases of FORMAT.md §10, shared by every implementation's tests.
type credentialCases struct {
	Rule struct {
		SecretWords   []string `json:"secret_words"`
		KeyQualifiers []string `json:"key_qualifiers"`
		HeadWords     []string `json:"head_words"`
		QueryNames    []string `json:"query_names"`
		Shapes        [][]any  `json:"shapes"`
	} `json:"rule"`
	Keys    [][]any `json:"keys"`
	Texts   [][]any `json:"texts"`
	Terms   []map[string]any
	Options []map[string]any
}

var (
	casesBlock = regexp.MustCompile("(?s)<!-- credential-cases:begin -->\\s*```json\\n(.*?)```\\s*<!-- credential-cases:end -->")
	repeatSpec = regexp.MustCompile(`\{([^{}*]+)\*(\d+)\}`)
)

func loadCredentialCases(t *testing.T) *credentialCases {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "FORMAT.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := casesBlock.FindSubmatch(doc)
	if m == nil {
		t.Fatal("FORMAT.md §10 has no credential cases")
	}
	dec := json.NewDecoder(bytes.NewReader(m[1]))
	dec.UseNumber()
	var c credentialCases
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if len(c.Keys) == 0 || len(c.Texts) == 0 || len(c.Terms) == 0 || len(c.Options) == 0 {
		t.Fatal("empty credential cases")
	}
	return &c
}

// expand writes out "{s*n}" (s repeated n times) in every string of a case.
func expand(v any) any {
	switch x := v.(type) {
	case string:
		return repeatSpec.ReplaceAllStringFunc(x, func(spec string) string {
			m := repeatSpec.FindStringSubmatch(spec)
			n, _ := strconv.Atoi(m[2])
			return strings.Repeat(m[1], n)
		})
	case []any:
		out := make([]any, len(x))
		for i, item := range x {
			out[i] = expand(item)
		}
		return out
	case map[string]any:
		out := make(Map, 0, len(x))
		for k, item := range x {
			out = append(out, MapEntry{expand(k), expand(item)})
		}
		return out
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	}
	return v
}

func refusedPath(t *testing.T, err error) string {
	t.Helper()
	var ic *InvalidCheckpoint
	if !errors.As(err, &ic) {
		t.Fatalf("error %v (%T) is not an *InvalidCheckpoint", err, err)
	}
	return ic.Path
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func asStrings(xs []string) string { return strings.Join(xs, ",") }

func TestCredentialRuleIsTheOneOfFormatMD(t *testing.T) {
	c := loadCredentialCases(t)
	for _, pair := range []struct {
		name      string
		got, want []string
	}{
		{"secret_words", sortedKeys(secretWords), c.Rule.SecretWords},
		{"key_qualifiers", sortedKeys(keyQualifiers), c.Rule.KeyQualifiers},
		{"head_words", sortedKeys(headWords), c.Rule.HeadWords},
		{"query_names", sortedKeys(queryNames), c.Rule.QueryNames},
	} {
		if asStrings(pair.got) != asStrings(pair.want) {
			t.Errorf("%s: %v, FORMAT.md has %v", pair.name, pair.got, pair.want)
		}
	}
	if len(secretShapes) != len(c.Rule.Shapes) {
		t.Fatalf("%d shapes, FORMAT.md has %d", len(secretShapes), len(c.Rule.Shapes))
	}
	for i, s := range c.Rule.Shapes {
		group, _ := s[2].(json.Number).Int64()
		got := secretShapes[i]
		if got.name != s[0] || got.pattern != s[1] || int64(got.group) != group {
			t.Errorf("shape %d: %q %q %d, FORMAT.md has %v", i, got.name, got.pattern, got.group, s)
		}
	}
}

func TestCredentialKeys(t *testing.T) {
	for _, k := range loadCredentialCases(t).Keys {
		key, want := k[0].(string), k[1].(bool)
		if got := CredentialKey(key); got != want {
			t.Errorf("CredentialKey(%q) = %v, want %v (words %v)", key, got, want, keyWords(key))
		}
	}
}

func TestCredentialTexts(t *testing.T) {
	for i, tc := range loadCredentialCases(t).Texts {
		text, want := expand(tc[0]).(string), expand(tc[1]).(string)
		if got := RedactText(text); got != want {
			t.Errorf("text %d: RedactText(%q) = %q, want %q", i, text, got, want)
		}
		if HasSecret(text) != (text != want) || HasSecret(want) || RedactText(want) != want {
			t.Errorf("text %d: HasSecret disagrees or redaction is not idempotent", i)
		}
		// As a candidate id.
		cp := validCheckpoint(t)
		cp.Progress.TrialLog[0].CandidateId = str(text)
		_, err := Encode(cp)
		if text == want {
			if err != nil {
				t.Errorf("text %d: Encode refused a harmless candidate id: %v", i, err)
			}
			continue
		}
		if p := refusedPath(t, err); p != "progress.trial_log[0].candidate_id" {
			t.Errorf("text %d: refused at %q", i, p)
		}
		if strings.Contains(err.Error(), text) {
			t.Errorf("text %d: the refusal quotes the secret: %v", i, err)
		}
		out, err := EncodeRedacted(cp)
		if err != nil {
			t.Fatalf("text %d: EncodeRedacted: %v", i, err)
		}
		if cp.Progress.TrialLog[0].GetCandidateId() != text {
			t.Errorf("text %d: EncodeRedacted changed its argument", i)
		}
		back, err := Decode(out)
		if err != nil {
			t.Fatal(err)
		}
		if got := back.Progress.TrialLog[0].GetCandidateId(); got != want {
			t.Errorf("text %d: redacted candidate id %q, want %q", i, got, want)
		}
	}
}

func checkTermCase(t *testing.T, name string, cp *v1.Checkpoint, at string, redacted any, get func(*v1.Checkpoint) proto.Message) {
	t.Helper()
	_, err := Encode(cp)
	if at == "" {
		if err != nil {
			t.Errorf("%s: refused: %v", name, err)
		}
		return
	}
	if p := refusedPath(t, err); p != at {
		t.Errorf("%s: refused at %q, want %q", name, p, at)
	}
	if _, err := Decode(sealed(t, cp)); err != nil {
		t.Errorf("%s: Decode screens: %v", name, err)
	}
	out, err := EncodeRedacted(cp)
	if redacted == nil {
		if err == nil {
			t.Errorf("%s: a secret inside a key was redacted", name)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s: EncodeRedacted: %v", name, err)
	}
	back, err := Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	want := mustTerm(t, redacted)
	var got proto.Message = get(back)
	if m, ok := got.(*v1.TermMap); ok {
		got = &v1.Term{Kind: &v1.Term_MapValue{MapValue: m}}
	}
	if !proto.Equal(got, want) {
		t.Errorf("%s: redacted to %v, want %v", name, got, want)
	}
	again, err := Encode(back)
	if err != nil || !bytes.Equal(again, out) {
		t.Errorf("%s: the redacted checkpoint does not pass the screen unchanged: %v", name, err)
	}
}

func TestCredentialTerms(t *testing.T) {
	for i, tc := range loadCredentialCases(t).Terms {
		value := expand(tc["term"])
		at, _ := tc["at"].(string)
		redacted := expand(tc["redacted"])
		name := fmt.Sprintf("term %d", i)

		cp := validCheckpoint(t)
		cp.TerminalReason = mustTerm(t, value)
		where := ""
		if at != "" {
			where = "terminal_reason." + at
		}
		checkTermCase(t, name+" as terminal_reason", cp, where, redacted,
			func(c *v1.Checkpoint) proto.Message { return c.GetTerminalReason() })

		if m, ok := value.(Map); ok {
			cp := validCheckpoint(t)
			cp.Progress.TrialLog[0].Stats = mustTermMap(t, m)
			where := ""
			if at != "" {
				where = "progress.trial_log[0].stats." + strings.TrimPrefix(at, "map_value.")
			}
			checkTermCase(t, name+" as stats", cp, where, redacted,
				func(c *v1.Checkpoint) proto.Message { return c.GetProgress().GetTrialLog()[0].GetStats() })
		}
	}
}

func TestCredentialOptions(t *testing.T) {
	for i, tc := range loadCredentialCases(t).Options {
		key := expand(tc["key"]).(string)
		at, _ := tc["at"].(string)
		cp := validCheckpoint(t)
		cp.OptimizerOpts = []*v1.OptionEntry{{Key: key, Value: mustTerm(t, expand(tc["value"]))}}
		checkTermCase(t, fmt.Sprintf("option %d", i), cp, at, expand(tc["redacted"]),
			func(c *v1.Checkpoint) proto.Message { return c.GetOptimizerOpts()[0].GetValue() })
	}
}

func TestCommonNamesAndValuesPass(t *testing.T) {
	harmless := Map{
		{"tokens", 120}, {"max_tokens", 512}, {"num_tokens", 7}, {"prompt_tokens", 100},
		{"token_count", 3}, {"token_type", "bpe"}, {"tokenizer", "cl100k_base"},
		{"temperature", 0.7}, {"keyboard", "qwerty"}, {"author", "someone"}, {"key", "value"},
		{"url", "https://api.example.com/v1/chat?model=gpt&stream=true"},
		{"sha256", strings.Repeat("9e", 32)},
		{"prompt", "Answer with the key fact. Use the Bearer scheme. x = 1; y = 2"},
		{"api_key", nil}, {"password", Redacted}, {"secret", 42}, {"auth", false},
	}
	cp := validCheckpoint(t)
	cp.OptimizerOpts = append(cp.OptimizerOpts, &v1.OptionEntry{Key: "lm", Value: mustTerm(t, harmless)})
	cp.Progress.TrialLog[0].Stats = mustTermMap(t, harmless)
	cp.BestProgramArtifact = mustTermMap(t, Map{{"demos", []any{harmless}}})
	cp.TerminalReason = mustTerm(t, harmless)
	b, err := Encode(cp)
	if err != nil {
		t.Fatal(err)
	}
	if err := Screen(cp); err != nil {
		t.Fatal(err)
	}
	redacted, err := EncodeRedacted(cp)
	if err != nil || !bytes.Equal(redacted, b) {
		t.Fatalf("redaction changed a checkpoint without credentials: %v", err)
	}
}

func TestScreenAndRedactInPlace(t *testing.T) {
	cp := validCheckpoint(t)
	cp.OptimizerOpts = append(cp.OptimizerOpts, &v1.OptionEntry{Key: "Authorization", Value: mustTerm(t, "Bearer "+strings.Repeat("t0", 12))})
	cp.Progress.TrialLog[1].Error = mustTermMap(t, Map{{"message", "GET /v1?key=" + strings.Repeat("k1", 10) + " failed"}})
	if p := refusedPath(t, Screen(cp)); p != "optimizer_opts[3].key" {
		t.Fatalf("refused at %q", p)
	}
	if err := Redact(cp); err != nil {
		t.Fatal(err)
	}
	if got := cp.OptimizerOpts[3].GetValue().GetStringValue(); got != Redacted {
		t.Errorf("option redacted to %q", got)
	}
	if got := cp.Progress.TrialLog[1].Error.Entries[0].Value.GetStringValue(); got != "GET /v1?key=[redacted] failed" {
		t.Errorf("error redacted to %q", got)
	}
	if err := Screen(cp); err != nil {
		t.Fatal(err)
	}
	cp.TerminalReason = mustTerm(t, Map{{"sk-" + strings.Repeat("a1", 12), 1}})
	if p := refusedPath(t, Redact(cp)); p != "terminal_reason.map_value.entries[0].key.string_value" {
		t.Errorf("a secret in a key refused at %q", p)
	}
}
