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
		dir      string
		want     string // "" = may resume
	}{
		{"running resumes", nil, opt, mod, []uint32{1}, hash, "higher", ""},
		{"paused resumes", func(cp *v1.Checkpoint) { cp.Status = v1.SessionStatus_SESSION_STATUS_PAUSED }, opt, mod, []uint32{1}, nil, "", ""},
		{"one of several versions", func(cp *v1.Checkpoint) { cp.SamplerFormat.Version = 3 }, opt, mod, []uint32{1, 3}, hash, "", ""},
		{"no trainset check", nil, opt, mod, []uint32{1}, nil, "", ""},
		{"lower resumes lower", func(cp *v1.Checkpoint) { cp.Direction = v1.Direction_DIRECTION_LOWER }, opt, mod, []uint32{1}, hash, "lower", ""},
		{"no direction check", func(cp *v1.Checkpoint) { cp.Direction = v1.Direction_DIRECTION_LOWER }, opt, mod, []uint32{1}, hash, "", ""},
		{"completed", func(cp *v1.Checkpoint) { cp.Status = v1.SessionStatus_SESSION_STATUS_COMPLETED }, "x", "y", nil, other, "lower",
			`session "s1" is already terminal: status=completed`},
		{"failed", func(cp *v1.Checkpoint) { cp.Status = v1.SessionStatus_SESSION_STATUS_FAILED }, opt, mod, []uint32{1}, nil, "lower",
			`session "s1" is already terminal: status=failed`},
		{"cancelled", func(cp *v1.Checkpoint) { cp.Status = v1.SessionStatus_SESSION_STATUS_CANCELLED }, opt, mod, []uint32{1}, nil, "lower",
			`session "s1" is already terminal: status=cancelled`},
		{"optimizer before sampler", nil, "dspy.teleprompt.COPRO", "other", nil, other, "lower",
			`cannot resume session "s1": optimizer: the checkpoint was written by optimizer dspy.teleprompt.MIPROv2; this run is dspy.teleprompt.COPRO. Resume with dspy.teleprompt.MIPROv2, or start a new session.`},
		{"sampler module", nil, opt, "other.Sampler", nil, other, "lower",
			`cannot resume session "s1": sampler_format: the checkpoint's sampler is demo.RandomSearch; this run's is other.Sampler. Resume with sampler demo.RandomSearch, or start a new session.`},
		{"sampler version", nil, opt, mod, []uint32{2}, other, "lower",
			`cannot resume session "s1": sampler_version: the checkpoint holds sampler state version 1; this run accepts 2. Accept version 1 if the sampler can read it, or start a new session.`},
		{"sampler versions", nil, opt, mod, []uint32{3, 2, 10}, other, "lower",
			`cannot resume session "s1": sampler_version: the checkpoint holds sampler state version 1; this run accepts [2,3,10]. Accept version 1 if the sampler can read it, or start a new session.`},
		{"no accepted version", nil, opt, mod, nil, nil, "lower",
			`cannot resume session "s1": sampler_version: the checkpoint holds sampler state version 1; this run accepts []. Accept version 1 if the sampler can read it, or start a new session.`},
		{"trainset hash", nil, opt, mod, []uint32{1}, other, "lower",
			`cannot resume session "s1": trainset_hash: the checkpoint was made on the trainset with hash ` + string(bytes.Repeat([]byte("ab"), 32)) +
				`; this run's hash is ` + string(bytes.Repeat([]byte("01"), 32)) + `. Pass the same trainset, or start a new session.`},
		{"empty hash is a hash", nil, opt, mod, []uint32{1}, []byte{}, "",
			`cannot resume session "s1": trainset_hash: the checkpoint was made on the trainset with hash ` + string(bytes.Repeat([]byte("ab"), 32)) +
				`; this run's hash is . Pass the same trainset, or start a new session.`},
		{"direction", nil, opt, mod, []uint32{1}, hash, "lower",
			`cannot resume session "s1": direction: the checkpoint's scores are better when higher; this run's are better when lower. Resume with direction higher, or start a new session.`},
		{"direction lower", func(cp *v1.Checkpoint) { cp.Direction = v1.Direction_DIRECTION_LOWER }, opt, mod, []uint32{1}, nil, "higher",
			`cannot resume session "s1": direction: the checkpoint's scores are better when lower; this run's are better when higher. Resume with direction lower, or start a new session.`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cp := validCheckpoint(t)
			if c.edit != nil {
				c.edit(cp)
			}
			err := CheckResume(cp, c.opt, c.mod, c.versions, c.hash, c.dir)
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
	if err := CheckResume(cp, "", "", nil, nil, ""); !errors.As(err, &at) || at.SessionID != "s1" || at.Status != "cancelled" {
		t.Fatalf("terminal: %#v", err)
	}
	cp = validCheckpoint(t)
	var rm *ResumeMismatch
	err := CheckResume(cp, cp.Optimizer, cp.SamplerFormat.Module, []uint32{2}, nil, "")
	if !errors.As(err, &rm) {
		t.Fatalf("%T is not a *ResumeMismatch", err)
	}
	if rm.SessionID != "s1" || rm.Reason != ReasonSamplerVersion || rm.Expected != uint32(2) || rm.Got != uint32(1) {
		t.Fatalf("fields: %#v", rm)
	}
	err = CheckResume(cp, cp.Optimizer, cp.SamplerFormat.Module, []uint32{1}, make([]byte, 32), "")
	if !errors.As(err, &rm) || rm.Reason != ReasonTrainsetHash || !bytes.Equal(rm.Got.([]byte), cp.TrainsetHash) {
		t.Fatalf("trainset: %#v", err)
	}
	err = CheckResume(cp, cp.Optimizer, cp.SamplerFormat.Module, []uint32{1}, nil, "lower")
	if !errors.As(err, &rm) || rm.Reason != ReasonDirection || rm.Expected != "lower" || rm.Got != "higher" {
		t.Fatalf("direction: %#v", err)
	}
	cp.Direction = 2
	err = CheckResume(cp, cp.Optimizer, cp.SamplerFormat.Module, []uint32{1}, nil, "lower")
	if !errors.As(err, &rm) || rm.Reason != ReasonCheckpointShape || rm.Field != "direction" {
		t.Fatalf("unknown direction: %#v", err)
	}
	if err := CheckResume(cp, cp.Optimizer, cp.SamplerFormat.Module, []uint32{1}, nil, ""); err != nil {
		t.Fatalf("direction not asked: %v", err)
	}
}

// A refusal of Decode carries the session id read and names the field.
func TestDecodeRefusalFields(t *testing.T) {
	cp := validCheckpoint(t)
	cp.SamplerFormat.Version = 0
	_, err := Decode(sealed(t, cp))
	var rm *ResumeMismatch
	if !errors.As(err, &rm) {
		t.Fatalf("%T", err)
	}
	if rm.SessionID != "s1" || rm.Field != "sampler_format.version" || rm.Detail == "" || rm.Rule != RuleSamplerFormatVersionMin {
		t.Fatalf("%#v", rm)
	}
	if err.Error() != "checkpoint_shape: sampler_format.version: "+rm.Detail+" (rule sampler_format.version.min)" {
		t.Fatalf("message %q", err.Error())
	}
}
