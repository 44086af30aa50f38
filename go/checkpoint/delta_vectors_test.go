package checkpoint

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
)

type deltaManifest struct {
	Cases []struct {
		Name, Description, Base, Delta, Result string
		Refused                                *struct {
			Stage, Rule, Field string
		}
	} `json:"cases"`
}

func loadDeltaManifest(t testing.TB) *deltaManifest {
	t.Helper()
	path := filepath.Join(vectorsDir, "delta", "manifest.json")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		t.Skip("tests/vectors/delta/manifest.json does not exist")
	}
	var m deltaManifest
	loadJSON(t, path, &m)
	if len(m.Cases) == 0 {
		t.Fatal("the delta manifest lists no case")
	}
	return &m
}

// Every delta vector: read (or refused at stage "read"), re-encoded to its
// own bytes, applied to its base: the result's bytes, or the refusal's rule
// and path (stage "apply": an *InvalidDelta; "result": checkpoint_shape).
func TestDeltaVectors(t *testing.T) {
	for _, c := range loadDeltaManifest(t).Cases {
		t.Run(c.Name, func(t *testing.T) {
			if (c.Refused == nil) == (c.Result == "") {
				t.Fatalf("the case has both or neither of result and refused")
			}
			base, err := Decode(readVector(t, "delta", c.Base))
			if err != nil {
				t.Fatalf("base refused: %v", err)
			}
			in := readVector(t, "delta", c.Delta)
			d, err := DecodeDelta(in)
			if c.Refused != nil && c.Refused.Stage == "read" {
				if err == nil {
					t.Fatalf("accepted a delta refused at reading (%s)", c.Description)
				}
				deltaRefusal(t, err, c.Refused.Rule, c.Refused.Field)
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			out, err := EncodeDelta(d)
			if err != nil {
				t.Fatalf("EncodeDelta: %v", err)
			}
			if !bytes.Equal(out, in) {
				t.Fatalf("re-encoding differs:\n got %x\nwant %x", out, in)
			}
			_, got, err := ApplyDelta(base, d)
			if c.Refused == nil {
				if err != nil {
					t.Fatalf("ApplyDelta: %v", err)
				}
				if want := readVector(t, "delta", c.Result); !bytes.Equal(got, want) {
					t.Fatalf("applied bytes differ:\n got %x\nwant %x", got, want)
				}
				return
			}
			if err == nil {
				t.Fatalf("applied a delta refused at stage %q (%s)", c.Refused.Stage, c.Description)
			}
			switch c.Refused.Stage {
			case "apply":
				deltaRefusal(t, err, c.Refused.Rule, c.Refused.Field)
			case "result":
				if f := shapeField(t, err); f != c.Refused.Field || ruleOf(t, err) != c.Refused.Rule {
					t.Fatalf("%v, want rule %q at %q", err, c.Refused.Rule, c.Refused.Field)
				}
				if c.Refused.Rule != "" && !strings.HasSuffix(err.Error(), " (rule "+c.Refused.Rule+")") {
					t.Fatalf("message %q", err.Error())
				}
			default:
				t.Fatalf("unknown stage %q", c.Refused.Stage)
			}
		})
	}
}

// FuzzDecodeDelta feeds arbitrary bytes to DecodeDelta, as they are and
// sealed with their trailer: it must never panic, must refuse with an
// *InvalidDelta naming a path and a rule, and what it accepts must re-encode
// to the very same bytes (FORMAT.md §13.1), unless the writer's credential
// screen refuses its head. Applying it to its vector's base must not panic
// either. Seeds: the delta vectors and their bodies.
func FuzzDecodeDelta(f *testing.F) {
	m := loadDeltaManifest(f)
	var bases [][]byte
	for _, c := range m.Cases {
		b := readVector(f, "delta", c.Delta)
		f.Add(b)
		if len(b) >= TrailerSize {
			f.Add(b[:len(b)-TrailerSize])
		}
		bases = append(bases, readVector(f, "delta", c.Base))
	}
	var decoded []*v1.Checkpoint
	for _, b := range bases {
		if cp, err := Decode(b); err == nil {
			decoded = append(decoded, cp)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, in := range [][]byte{data, seal(data)} {
			d, err := DecodeDelta(in)
			if err != nil {
				var id *InvalidDelta
				if !errors.As(err, &id) || id.Path == "" || id.Detail == "" || id.Rule == "" {
					t.Fatalf("refusal is not an *InvalidDelta naming a path and a rule: %#v", err)
				}
				continue
			}
			out, err := EncodeDelta(d)
			var ic *InvalidCheckpoint
			if errors.As(err, &ic) && ic.Rule == "" && strings.HasPrefix(ic.Path, "head.") {
				continue // a credential in the head
			}
			if err != nil {
				t.Fatalf("EncodeDelta refused a decoded delta: %v", err)
			}
			if !bytes.Equal(out, in) {
				t.Fatalf("EncodeDelta(DecodeDelta(b)) != b:\n got %x\nwant %x", out, in)
			}
			for _, base := range decoded {
				if _, _, err := ApplyDelta(base, d); err != nil && !strings.Contains(err.Error(), ": ") {
					t.Fatalf("refusal without a path: %v", err)
				}
			}
		}
	})
}
