package checkpoint

import (
	"bytes"
	"errors"
	"testing"

	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
	"google.golang.org/protobuf/proto"
)

// MergeDelta makes, on every delta vector ApplyDelta accepts, the checkpoint
// of the same bytes; it refuses the vectors refused at stage "apply" with the
// same rule and path (leaving the base unchanged), and it does not check the
// result: the vectors refused at stage "result" merge, and Validate then
// refuses what ApplyDelta refuses.
func TestMergeDeltaMatchesApplyDelta(t *testing.T) {
	merged := 0
	for _, c := range loadDeltaManifest(t).Cases {
		if c.Refused != nil && c.Refused.Stage == "read" {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			raw := readVector(t, "delta", c.Base)
			base, err := Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			d, err := DecodeDelta(readVector(t, "delta", c.Delta))
			if err != nil {
				t.Fatal(err)
			}
			_, want, applyErr := ApplyDelta(base, d)
			err = MergeDelta(base, d)
			if c.Refused != nil && c.Refused.Stage == "apply" {
				deltaRefusal(t, err, c.Refused.Rule, c.Refused.Field)
				if again, _ := Encode(base); !bytes.Equal(again, raw) {
					t.Fatal("a refused merge changed the base")
				}
				return
			}
			if err != nil {
				t.Fatalf("MergeDelta: %v", err)
			}
			merged++
			if c.Refused == nil {
				got, err := Encode(base)
				if err != nil {
					t.Fatalf("Encode of the merge: %v", err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("merged bytes differ from ApplyDelta's:\n got %x\nwant %x", got, want)
				}
				return
			}
			var rm *ResumeMismatch
			if !errors.As(applyErr, &rm) {
				t.Fatalf("ApplyDelta: %v", applyErr)
			}
			verr := Validate(base)
			var ic *InvalidCheckpoint
			if rm.Rule != "" && (!errors.As(verr, &ic) || ic.Path != rm.Field || ic.Rule != rm.Rule) {
				t.Fatalf("Validate of the merge: %v, ApplyDelta: %v", verr, applyErr)
			}
		})
	}
	if merged < 3 {
		t.Fatalf("only %d vectors merged", merged)
	}
}

// A head without progress drops the base's trial entries; the next delta
// counts its base trials from 0.
func TestMergeDeltaHeadWithoutProgress(t *testing.T) {
	base := validCheckpoint(t)
	if len(base.GetProgress().GetTrialLog()) == 0 {
		t.Fatal("the base has no trial entries")
	}
	head := proto.Clone(base).(*v1.Checkpoint)
	head.Progress = nil
	d := &v1.CheckpointDelta{Format: DeltaFormatV1, BaseGeneration: 1, BaseTrials: uint64(len(base.Progress.TrialLog)), Head: head}
	if err := MergeDelta(base, d); err != nil {
		t.Fatal(err)
	}
	if base.Progress != nil {
		t.Fatalf("the progress is kept: %v", base.Progress)
	}
	next := proto.Clone(head).(*v1.Checkpoint)
	next.Progress = &v1.Progress{}
	d2 := &v1.CheckpointDelta{Format: DeltaFormatV1, BaseGeneration: 2, BaseTrials: 1, Head: next}
	var id *InvalidDelta
	if err := MergeDelta(base, d2); !errors.As(err, &id) || id.Rule != RuleDeltaBaseTrials || id.Path != "base_trials" {
		t.Fatalf("want delta.base_trials, got %v", err)
	}
	d2.BaseTrials = 0
	if err := MergeDelta(base, d2); err != nil {
		t.Fatal(err)
	}
	if base.Progress == nil || len(base.Progress.TrialLog) != 0 {
		t.Fatalf("progress %v", base.Progress)
	}
}
