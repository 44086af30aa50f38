package checkpoint

import (
	"bytes"
	"errors"
	"testing"

	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
)

func TestCheckResume(t *testing.T) {
	const opt, mod = "dspy.teleprompt.MIPROv2", "demo.RandomSearch"
	hash := bytes.Repeat([]byte{0xab}, 32)
	other := bytes.Repeat([]byte{0x01}, 32)
	cases := []struct {
		name     string
		edit     func(cp *v1.Checkpoint)
		opt, mod string
		versions []uint32
		hash     []byte
		want     string // "" = may resume
	}{
		{"running resumes", nil, opt, mod, []uint32{1}, hash, ""},
		{"paused resumes", func(cp *v1.Checkpoint) { cp.Status = v1.SessionStatus_SESSION_STATUS_PAUSED }, opt, mod, []uint32{1}, nil, ""},
		{"one of several versions", func(cp *v1.Checkpoint) { cp.SamplerFormat.Version = 3 }, opt, mod, []uint32{1, 3}, hash, ""},
		{"no trainset check", nil, opt, mod, []uint32{1}, nil, ""},
		{"completed", func(cp *v1.Checkpoint) { cp.Status = v1.SessionStatus_SESSION_STATUS_COMPLETED }, "x", "y", nil, other,
			`session "s1" is already terminal: status=completed`},
		{"failed", func(cp *v1.Checkpoint) { cp.Status = v1.SessionStatus_SESSION_STATUS_FAILED }, opt, mod, []uint32{1}, nil,
			`session "s1" is already terminal: status=failed`},
		{"cancelled", func(cp *v1.Checkpoint) { cp.Status = v1.SessionStatus_SESSION_STATUS_CANCELLED }, opt, mod, []uint32{1}, nil,
			`session "s1" is already terminal: status=cancelled`},
		{"optimizer before sampler", nil, "dspy.teleprompt.COPRO", "other", nil, other,
			`resume mismatch for session "s1": reason=optimizer expected=dspy.teleprompt.COPRO got=dspy.teleprompt.MIPROv2`},
		{"sampler module", nil, opt, "other.Sampler", nil, other,
			`resume mismatch for session "s1": reason=sampler_format expected=other.Sampler got=demo.RandomSearch`},
		{"sampler version", nil, opt, mod, []uint32{2}, other,
			`resume mismatch for session "s1": reason=sampler_version expected=2 got=1`},
		{"sampler versions", nil, opt, mod, []uint32{3, 2, 10}, other,
			`resume mismatch for session "s1": reason=sampler_version expected=[2,3,10] got=1`},
		{"no accepted version", nil, opt, mod, nil, nil,
			`resume mismatch for session "s1": reason=sampler_version expected=[] got=1`},
		{"trainset hash", nil, opt, mod, []uint32{1}, other,
			`resume mismatch for session "s1": reason=trainset_hash expected=` + string(bytes.Repeat([]byte("01"), 32)) +
				` got=` + string(bytes.Repeat([]byte("ab"), 32))},
		{"empty hash is a hash", nil, opt, mod, []uint32{1}, []byte{},
			`resume mismatch for session "s1": reason=trainset_hash expected= got=` + string(bytes.Repeat([]byte("ab"), 32))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cp := validCheckpoint(t)
			if c.edit != nil {
				c.edit(cp)
			}
			err := CheckResume(cp, c.opt, c.mod, c.versions, c.hash)
			if c.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("allowed, want %s", c.want)
			}
			if err.Error() != c.want {
				t.Fatalf("got  %s\nwant %s", err, c.want)
			}
		})
	}
}

func TestCheckResumeErrorTypes(t *testing.T) {
	cp := validCheckpoint(t)
	cp.Status = v1.SessionStatus_SESSION_STATUS_CANCELLED
	var at *AlreadyTerminal
	if err := CheckResume(cp, "", "", nil, nil); !errors.As(err, &at) || at.SessionID != "s1" || at.Status != "cancelled" {
		t.Fatalf("terminal: %#v", err)
	}
	cp = validCheckpoint(t)
	var rm *ResumeMismatch
	err := CheckResume(cp, cp.Optimizer, cp.SamplerFormat.Module, []uint32{2}, nil)
	if !errors.As(err, &rm) {
		t.Fatalf("%T is not a *ResumeMismatch", err)
	}
	if rm.SessionID != "s1" || rm.Reason != ReasonSamplerVersion || rm.Expected != uint32(2) || rm.Got != uint32(1) {
		t.Fatalf("fields: %#v", rm)
	}
	err = CheckResume(cp, cp.Optimizer, cp.SamplerFormat.Module, []uint32{1}, make([]byte, 32))
	if !errors.As(err, &rm) || rm.Reason != ReasonTrainsetHash || !bytes.Equal(rm.Got.([]byte), cp.TrainsetHash) {
		t.Fatalf("trainset: %#v", err)
	}
}

// A refusal of Decode carries the session id read and names the field.
func TestDecodeRefusalFields(t *testing.T) {
	cp := validCheckpoint(t)
	cp.SamplerFormat.Version = 0
	_, err := Decode(marshal(t, cp))
	var rm *ResumeMismatch
	if !errors.As(err, &rm) {
		t.Fatalf("%T", err)
	}
	if rm.SessionID != "s1" || rm.Field != "sampler_format.version" || rm.Detail == "" {
		t.Fatalf("%#v", rm)
	}
	if err.Error() != "checkpoint_shape: sampler_format.version: "+rm.Detail {
		t.Fatalf("message %q", err.Error())
	}
}
