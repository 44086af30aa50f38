package checkpoint

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
)

// vectorsDir holds the golden vectors shared by every implementation.
var vectorsDir = filepath.Join("..", "..", "tests", "vectors")

type manifest struct {
	Valid []struct {
		Name, Binpb, JSON, Description string
	} `json:"valid"`
	Unknown []struct {
		Name, Binpb, Description string
		KnownOnly                string `json:"known_only"`
	} `json:"unknown"`
	Invalid []struct {
		Name, Binpb, Field, Rule, Description string
		ProtobufLevel                         bool `json:"protobuf_level"`
	} `json:"invalid"`
	Canonicalize []struct {
		Name, Input, Canonical, Description string
	} `json:"canonicalize"`
	Trainset []struct {
		Name, Input, Sha256, Description string
	} `json:"trainset"`
}

func loadManifest(t testing.TB) *manifest {
	t.Helper()
	var m manifest
	loadJSON(t, filepath.Join(vectorsDir, "manifest.json"), &m)
	if len(m.Valid) == 0 || len(m.Invalid) == 0 || len(m.Unknown) == 0 || len(m.Canonicalize) == 0 || len(m.Trainset) == 0 {
		t.Fatalf("the manifest lists no vectors of some kind: %d valid, %d unknown, %d invalid, %d canonicalize, %d trainset",
			len(m.Valid), len(m.Unknown), len(m.Invalid), len(m.Canonicalize), len(m.Trainset))
	}
	return &m
}

// readVector returns the bytes of the file tests/vectors/<elem...>.
func readVector(t testing.TB, elem ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{vectorsDir}, elem...)...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustRoundTrip decodes in, failing the test unless it is a checkpoint that
// re-encodes to the very same bytes; it returns the checkpoint.
func mustRoundTrip(t *testing.T, in []byte) *v1.Checkpoint {
	t.Helper()
	cp, err := Decode(in)
	if err != nil {
		t.Fatalf("refused: %v", err)
	}
	out, err := Encode(cp)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if !bytes.Equal(out, in) {
		t.Fatalf("re-encoding differs:\n got %x\nwant %x", out, in)
	}
	return cp
}

func TestValidVectors(t *testing.T) {
	for _, v := range loadManifest(t).Valid {
		t.Run(v.Name, func(t *testing.T) {
			cp := mustRoundTrip(t, readVector(t, v.Binpb))
			// The JSON form names the same checkpoint.
			fromJSON := &v1.Checkpoint{}
			if err := protojson.Unmarshal(readVector(t, v.JSON), fromJSON); err != nil {
				t.Fatalf("reading %s: %v", v.JSON, err)
			}
			if !proto.Equal(fromJSON, cp) {
				t.Fatalf("%s and %s hold different checkpoints", v.JSON, v.Binpb)
			}
			if err := Validate(fromJSON); err != nil {
				t.Fatalf("JSON form refused: %v", err)
			}
		})
	}
}

func TestUnknownFieldVectors(t *testing.T) {
	for _, v := range loadManifest(t).Unknown {
		t.Run(v.Name, func(t *testing.T) {
			in := readVector(t, v.Binpb)
			// The Go runtime keeps unknown fields: the re-encoding is the input.
			cp := mustRoundTrip(t, in)
			// Without its unknown fields it is the known-only encoding.
			known := readVector(t, v.KnownOnly)
			stripped := proto.Clone(cp)
			dropUnknown(stripped.ProtoReflect())
			kb, err := Encode(stripped.(*v1.Checkpoint))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(known, kb) {
				t.Fatalf("known-only encoding differs:\n got %x\nwant %x", kb, known)
			}
			if bytes.Equal(known, in) {
				t.Fatalf("the vector has no unknown fields")
			}
			// The known-only bytes are themselves a valid checkpoint.
			if _, err := Decode(known); err != nil {
				t.Fatalf("known-only bytes refused: %v", err)
			}
		})
	}
}

// The canonicalize vectors: the canonical bytes are a checkpoint that
// re-encodes to itself; an input in another encoding is no checkpoint at
// all (Decode never rewrites, FORMAT.md §2.6).
func TestCanonicalizeVectors(t *testing.T) {
	for _, v := range loadManifest(t).Canonicalize {
		t.Run(v.Name, func(t *testing.T) {
			in, want := readVector(t, v.Input), readVector(t, v.Canonical)
			if _, err := Decode(in); (err == nil) != bytes.Equal(in, want) {
				t.Fatalf("Decode of the input: %v (the input is canonical: %v)", err, bytes.Equal(in, want))
			}
			mustRoundTrip(t, want)
		})
	}
}

func TestInvalidVectors(t *testing.T) {
	for _, v := range loadManifest(t).Invalid {
		t.Run(v.Name, func(t *testing.T) {
			in := readVector(t, v.Binpb)
			_, err := Decode(in)
			if err == nil {
				t.Fatalf("accepted an invalid checkpoint (%s)", v.Description)
			}
			if got := shapeField(t, err); got != v.Field {
				t.Fatalf("field %q, want %q: %v", got, v.Field, err)
			}
			want := vectorRule(t, v.Name, v.Rule)
			var rm *ResumeMismatch
			if !errors.As(err, &rm) || rm.Rule != want {
				t.Fatalf("rule %q, want %q: %v", rm.Rule, want, err)
			}
			if suffix := " (rule " + want + ")"; !strings.HasSuffix(err.Error(), suffix) {
				t.Fatalf("message %q does not end with %q", err.Error(), suffix)
			}
			// A plain protobuf parser (reading overlong varints as the
			// reference's runtime does) refuses exactly the protobuf-level vectors.
			md := (&v1.Checkpoint{}).ProtoReflect().Descriptor()
			perr := unmarshalOptions.Unmarshal(maskOverlongVarints(in, md), &v1.Checkpoint{})
			if (perr != nil) != v.ProtobufLevel {
				t.Fatalf("plain parse error %v, but protobuf_level is %v", perr, v.ProtobufLevel)
			}
		})
	}
}

func TestTrainsetVectors(t *testing.T) {
	for _, v := range loadManifest(t).Trainset {
		t.Run(v.Name, func(t *testing.T) {
			examples, err := DecodeTrainsetTerm(readVector(t, v.Input))
			if err != nil {
				t.Fatal(err)
			}
			digest, err := HashTrainset(examples)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(digest[:]); got != v.Sha256 {
				t.Fatalf("digest %s, want %s", got, v.Sha256)
			}
		})
	}
}
