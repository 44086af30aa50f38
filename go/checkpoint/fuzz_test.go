package checkpoint

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to Decode, both as they are and as a
// body sealed with its trailer (so that mutations reach the grammar): it
// must never panic, must refuse with a checkpoint_shape ResumeMismatch
// naming a field and a rule, and what it accepts must re-encode to the very
// same bytes (FORMAT.md §2: encode(decode(b)) == b). It also runs
// DecodeTrainsetTerm on the same bytes. Seeds: every vector, and the
// bodies of the checkpoints among them.
func FuzzDecode(f *testing.F) {
	m := loadManifest(f)
	add := func(b []byte) {
		f.Add(b)
		if len(b) >= TrailerSize {
			f.Add(b[:len(b)-TrailerSize])
		}
	}
	for _, v := range m.Valid {
		add(readVector(f, v.Binpb))
	}
	for _, v := range m.Unknown {
		add(readVector(f, v.Binpb))
	}
	for _, v := range m.Invalid {
		add(readVector(f, v.Binpb))
	}
	for _, v := range m.Canonicalize {
		f.Add(readVector(f, v.Input))
	}
	for _, v := range m.Trainset {
		f.Add(readVector(f, v.Input))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, in := range [][]byte{data, seal(data)} {
			cp, err := Decode(in)
			if err != nil {
				var rm *ResumeMismatch
				if !errors.As(err, &rm) || rm.Reason != ReasonCheckpointShape || rm.Field == "" || rm.Detail == "" || rm.Rule == "" {
					t.Fatalf("refusal is not a checkpoint_shape naming a field and a rule: %#v", err)
				}
				continue
			}
			out, err := Encode(cp)
			if err != nil {
				t.Fatalf("Encode refused a decoded checkpoint: %v", err)
			}
			if !bytes.Equal(out, in) {
				t.Fatalf("encode(decode(b)) != b:\n got %x\nwant %x", out, in)
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
