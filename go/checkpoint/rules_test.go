package checkpoint

import (
	"errors"
	"math"
	"strings"
	"testing"

	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
)

// The constants of rules.go are exactly the ids of the rules file, once each.
func TestRuleConstantsAreTheSpecIDs(t *testing.T) {
	consts := stringConstants(t, "rules.go", "Rule")
	ids := specRuleIDs(t, "checkpoint-rules-v1.json")
	if len(ids) == 0 {
		t.Fatal("the rules file lists no rule")
	}
	sameIDs(t, "rules.go", consts, ids)
}

// vectorRule is the rule the manifest names for an invalid vector.
func vectorRule(t *testing.T, name, rule string) string {
	t.Helper()
	if rule == "" {
		t.Fatalf("the manifest names no rule for %s", name)
	}
	return rule
}

// ruleOf returns the rule of a refusal, failing on any other error.
func ruleOf(t *testing.T, err error) string {
	t.Helper()
	var ic *InvalidCheckpoint
	if errors.As(err, &ic) {
		return ic.Rule
	}
	var rm *ResumeMismatch
	if errors.As(err, &rm) && rm.Reason == ReasonCheckpointShape {
		return rm.Rule
	}
	t.Fatalf("error %v (%T) is no refusal of a checkpoint", err, err)
	return ""
}

// Encode, the Term checks, the size limit and the parser name their rule;
// a credential and an argument with no checkpoint form name none.
func TestRefusalRules(t *testing.T) {
	nan := math.NaN()
	deep := any(1)
	for i := 0; i < MaxTermDepth; i++ {
		deep = []any{deep}
	}
	cases := []struct {
		name string
		run  func() error
		rule string
	}{
		{"encode", func() error {
			cp := validCheckpoint(t)
			cp.Progress.Completed = 7
			_, err := Encode(cp)
			return err
		}, RuleCountersCompleted},
		{"validate", func() error {
			cp := validCheckpoint(t)
			cp.Optimizer = ""
			return Validate(cp)
		}, RuleOptimizerRequired},
		{"encode invalid UTF-8", func() error {
			cp := validCheckpoint(t)
			cp.SessionId = "\xff"
			_, err := Encode(cp)
			return err
		}, RuleWireUTF8},
		{"too large", func() error {
			_, err := Decode(make([]byte, MaxInputSize+1))
			return err
		}, RuleInputTooLarge},
		{"no trailer", func() error { _, err := Decode([]byte{0x0a, 0x05}); return err }, RuleInputTrailer},
		{"grammar", func() error { _, err := Decode(seal([]byte{0x0a, 0x05})); return err }, RuleWireTruncated},
		{"nil checkpoint", func() error { _, err := Encode(nil); return err }, ""},
		{"ToTerm NaN", func() error { _, err := ToTerm([]any{nan}); return err }, RuleFloatNaN},
		{"ToTerm depth", func() error { _, err := ToTerm(deep); return err }, RuleTermDepth},
		{"ToTerm duplicate key", func() error {
			_, err := ToTerm(Map{{Key: "a", Value: 1}, {Key: "a", Value: 2}})
			return err
		}, RuleTermMapOrder},
		{"ValidateTerm no kind", func() error { return ValidateTerm(&v1.Term{}) }, RuleTermKind},
		{"FromTerm bigint", func() error {
			_, err := FromTerm(&v1.Term{Kind: &v1.Term_BigintValue{BigintValue: []byte{1}}})
			return err
		}, RuleTermBigint},
		{"trainset parse", func() error { _, err := DecodeTrainsetTerm([]byte{0xff}); return err }, RuleInputMalformed},
		{"record_trial NaN", func() error {
			cp := validCheckpoint(t)
			_, err := RecordTrial(cp, Trial{Score: &nan})
			return err
		}, RuleFloatNaN},
		{"record_trial status", func() error {
			cp := validCheckpoint(t)
			_, err := RecordTrial(cp, Trial{Status: v1.TrialStatus(9)})
			return err
		}, ""},
		{"ToTerm type", func() error { _, err := ToTerm(struct{}{}); return err }, ""},
		{"credential", func() error {
			cp := validCheckpoint(t)
			cp.OptimizerOpts = append(cp.OptimizerOpts, &v1.OptionEntry{Key: "api_key", Value: mustTerm(t, "x")})
			_, err := Encode(cp)
			return err
		}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.run()
			if err == nil {
				t.Fatal("accepted")
			}
			if got := ruleOf(t, err); got != c.rule {
				t.Fatalf("rule %q, want %q: %v", got, c.rule, err)
			}
			hasSuffix := strings.HasSuffix(err.Error(), " (rule "+c.rule+")")
			if hasSuffix != (c.rule != "") || strings.Contains(err.Error(), "(rule )") {
				t.Fatalf("message %q for rule %q", err.Error(), c.rule)
			}
		})
	}
}
