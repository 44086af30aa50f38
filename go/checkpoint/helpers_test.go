package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func f64(f float64) *float64 { return &f }
func u64(n uint64) *uint64   { return &n }
func str(s string) *string   { return &s }

func mustTerm(t *testing.T, v any) *v1.Term {
	t.Helper()
	term, err := ToTerm(v)
	if err != nil {
		t.Fatalf("ToTerm(%#v): %v", v, err)
	}
	return term
}

// mustEncode is Encode(cp), failing the test if Encode refuses cp.
func mustEncode(t *testing.T, cp *v1.Checkpoint) []byte {
	t.Helper()
	b, err := Encode(cp)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustTermMap(t *testing.T, m Map) *v1.TermMap {
	t.Helper()
	return mustTerm(t, m).GetMapValue()
}

// validCheckpoint builds a valid checkpoint with two trials (one ok and best,
// one error), options, an artifact and a terminal reason.
func validCheckpoint(t *testing.T) *v1.Checkpoint {
	t.Helper()
	return &v1.Checkpoint{
		Format:    FormatV1,
		SessionId: "s1",
		Optimizer: "dspy.teleprompt.MIPROv2",
		OptimizerOpts: []*v1.OptionEntry{
			{Key: "num_trials", Value: mustTerm(t, 10)},
			{Key: "metric", Value: mustTerm(t, Atom("accuracy"))},
			{Key: "num_trials", Value: mustTerm(t, 12)},
		},
		ProgramModule: str("demo.Program"),
		TrainsetHash:  bytes.Repeat([]byte{0xab}, 32),
		CreatedAt:     &timestamppb.Timestamp{Seconds: 1700000000, Nanos: 123456000},
		UpdatedAt:     &timestamppb.Timestamp{Seconds: 1700000100},
		Progress: &v1.Progress{
			TrialLog: []*v1.TrialLogEntry{
				{TrialIdx: 0, CandidateId: str("c0"), Score: f64(0.0), Status: v1.TrialStatus_TRIAL_STATUS_OK,
					Stats: mustTermMap(t, Map{{"tokens", 120}, {"latency_ms", 3.5}}), DurationMs: 42},
				{TrialIdx: 1, Status: v1.TrialStatus_TRIAL_STATUS_ERROR,
					Error: mustTermMap(t, Map{{"message", "boom"}}), ErrorClass: str("RuntimeError")},
			},
			BestScore:    f64(0.0),
			BestTrialIdx: u64(0),
			Attempts:     3,
			Completed:    1,
			Errors:       1,
			StartedAt:    &timestamppb.Timestamp{Seconds: 1700000000},
		},
		BestProgramArtifact: mustTermMap(t, Map{{"instructions", "be brief"}, {Atom("demos"), []any{}}}),
		SamplerBlob:         []byte{1, 2, 3},
		SamplerFormat:       &v1.SamplerFormat{Module: "demo.RandomSearch", Version: 1},
		Status:              v1.SessionStatus_SESSION_STATUS_RUNNING,
		TerminalReason:      mustTerm(t, Tuple{Atom("error"), nil}),
	}
}

// shapeField returns the Field of a checkpoint_shape refusal, failing the
// test for any other error.
func shapeField(t *testing.T, err error) string {
	t.Helper()
	var rm *ResumeMismatch
	if !errors.As(err, &rm) {
		t.Fatalf("error %v (%T) is not a *ResumeMismatch", err, err)
	}
	if rm.Reason != ReasonCheckpointShape {
		t.Fatalf("reason %q, want checkpoint_shape", rm.Reason)
	}
	return rm.Field
}

func marshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var goNaN = math.NaN() // 0x7FF8000000000001

// dropUnknown removes unknown fields from m and every message inside it.
func dropUnknown(m protoreflect.Message) {
	m.SetUnknown(nil)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				dropUnknown(l.Get(i).Message())
			}
		case fd.Message() != nil && !fd.IsMap():
			dropUnknown(v.Message())
		}
		return true
	})
}

// sealed is the checkpoint bytes of m: its deterministic encoding and the
// checksum trailer, whether or not m is valid.
func sealed(t *testing.T, m proto.Message) []byte {
	t.Helper()
	return seal(marshal(t, m))
}

// seal appends the checksum trailer to a copy of body.
func seal(body []byte) []byte { return appendTrailer(bytes.Clone(body)) }

// stringConstants returns the values of the constants of file (a source file
// of this package), failing unless each is a string constant named prefix*.
func stringConstants(t *testing.T, file, prefix string) []string {
	t.Helper()
	parsed, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, decl := range parsed.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !strings.HasPrefix(name.Name, prefix) || !ok || lit.Kind != token.STRING {
					t.Fatalf("%s holds %s, not a %s* string constant", file, name.Name, prefix)
				}
				id, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, id)
			}
		}
	}
	return out
}

// loadJSON parses the JSON file at path into v, failing the test if it
// cannot be read or parsed.
func loadJSON(t testing.TB, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
}

// specRuleIDs returns the ids of the rules file spec/<name>, in its order.
func specRuleIDs(t *testing.T, name string) []string {
	t.Helper()
	var spec struct {
		Rules []struct{ ID string } `json:"rules"`
	}
	loadJSON(t, filepath.Join("..", "..", "spec", name), &spec)
	ids := make([]string, len(spec.Rules))
	for i, r := range spec.Rules {
		ids[i] = r.ID
	}
	return ids
}

// sameIDs fails unless the constants of file and the ids of the rules file
// are the same set, once each; it sorts both.
func sameIDs(t *testing.T, file string, consts, ids []string) {
	t.Helper()
	sort.Strings(consts)
	sort.Strings(ids)
	if strings.Join(consts, "\n") != strings.Join(ids, "\n") {
		t.Fatalf("%s holds\n%v\nthe rules file lists\n%v", file, consts, ids)
	}
}
