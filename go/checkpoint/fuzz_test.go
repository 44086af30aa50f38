package checkpoint

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to Decode: it must never panic, must
// refuse with a checkpoint_shape ResumeMismatch naming a field and a rule, and what it
// accepts must re-encode canonically (a second round trip is the identity).
// It also runs DecodeTrainsetTerm on the same bytes. Seeds: every vector.
func FuzzDecode(f *testing.F) {
	m := loadManifest(f)
	for _, v := range m.Valid {
		f.Add(readVector(f, v.Binpb))
	}
	for _, v := range m.Unknown {
		f.Add(readVector(f, v.Binpb))
	}
	for _, v := range m.Invalid {
		f.Add(readVector(f, v.Binpb))
	}
	for _, v := range m.Trainset {
		f.Add(readVector(f, v.Input))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cp, err := Decode(data)
		if err != nil {
			var rm *ResumeMismatch
			if !errors.As(err, &rm) || rm.Reason != ReasonCheckpointShape || rm.Field == "" || rm.Detail == "" || rm.Rule == "" {
				t.Fatalf("refusal is not a checkpoint_shape naming a field and a rule: %#v", err)
			}
		} else {
			out, err := Encode(cp)
			if err != nil {
				t.Fatalf("Encode refused a decoded checkpoint: %v", err)
			}
			cp2, err := Decode(out)
			if err != nil {
				t.Fatalf("canonical bytes refused: %v", err)
			}
			out2, err := Encode(cp2)
			if err != nil || !bytes.Equal(out, out2) {
				t.Fatalf("canonical encoding is not stable: %v", err)
			}
		}
		examples, err := DecodeTrainsetTerm(data)
		if err != nil {
			var ic *InvalidCheckpoint
			if !errors.As(err, &ic) || ic.Path == "" || ic.Rule == "" {
				t.Fatalf("trainset refusal without a path or a rule: %#v", err)
			}
			return
		}
		if _, err := HashTrainset(examples); err != nil {
			t.Fatalf("HashTrainset refused decoded examples: %v", err)
		}
	})
}
