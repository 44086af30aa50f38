package checkpoint

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	running   = v1.SessionStatus_SESSION_STATUS_RUNNING
	paused    = v1.SessionStatus_SESSION_STATUS_PAUSED
	completed = v1.SessionStatus_SESSION_STATUS_COMPLETED
	failed    = v1.SessionStatus_SESSION_STATUS_FAILED
	cancelled = v1.SessionStatus_SESSION_STATUS_CANCELLED
)

var oldStamp = &timestamppb.Timestamp{Seconds: 1700000000}

// freshCheckpoint is a valid session in status s with no trials.
func freshCheckpoint(t *testing.T, s v1.SessionStatus) *v1.Checkpoint {
	t.Helper()
	cp := validCheckpoint(t)
	cp.Progress = &v1.Progress{StartedAt: oldStamp}
	cp.TerminalReason = nil
	cp.Status = s
	cp.UpdatedAt = proto.Clone(oldStamp).(*timestamppb.Timestamp)
	return cp
}

type transition struct {
	name string
	do   func(cp *v1.Checkpoint) error
}

var transitions = []transition{
	{"record_trial", func(cp *v1.Checkpoint) error { _, err := RecordTrial(cp, Trial{Score: f64(1)}); return err }},
	{"pause", Pause},
	{"resume", Resume},
	{"complete", func(cp *v1.Checkpoint) error { return Complete(cp, nil) }},
	{"fail", func(cp *v1.Checkpoint) error { return Fail(cp, nil) }},
	{"cancel", func(cp *v1.Checkpoint) error { return Cancel(cp, nil) }},
}

// TestTransitionTable checks every cell of the table of FORMAT.md §9.
func TestTransitionTable(t *testing.T) {
	const refused, terminal = v1.SessionStatus(-1), v1.SessionStatus(-2)
	table := map[v1.SessionStatus][]v1.SessionStatus{
		//         record   pause    resume   complete   fail    cancel
		running:   {running, paused, refused, completed, failed, cancelled},
		paused:    {refused, refused, running, refused, refused, cancelled},
		completed: {terminal, terminal, terminal, terminal, terminal, terminal},
		failed:    {terminal, terminal, terminal, terminal, terminal, terminal},
		cancelled: {terminal, terminal, terminal, terminal, terminal, terminal},
	}
	actions := []string{"record a trial", "pause", "resume", "complete", "fail", "cancel"}
	for from, row := range table {
		for i, tr := range transitions {
			name := fmt.Sprintf("%s/%s", StatusName(from), tr.name)
			cp := freshCheckpoint(t, from)
			before := proto.Clone(cp)
			err := tr.do(cp)
			switch want := row[i]; want {
			case refused:
				var it *InvalidTransition
				if !errors.As(err, &it) {
					t.Fatalf("%s: error %v, want *InvalidTransition", name, err)
				}
				msg := fmt.Sprintf(`session "s1" cannot %s while %s`, actions[i], StatusName(from))
				if it.Error() != msg || it.Status != StatusName(from) || it.Action != actions[i] || it.SessionID != "s1" {
					t.Errorf("%s: %+v %q, want %q", name, it, it.Error(), msg)
				}
				if !proto.Equal(cp, before) {
					t.Errorf("%s: a refused transition changed the checkpoint", name)
				}
			case terminal:
				var at *AlreadyTerminal
				if !errors.As(err, &at) {
					t.Fatalf("%s: error %v, want *AlreadyTerminal", name, err)
				}
				msg := fmt.Sprintf(`session "s1" is already terminal: status=%s`, StatusName(from))
				if at.Error() != msg {
					t.Errorf("%s: %q, want %q", name, at.Error(), msg)
				}
				if !proto.Equal(cp, before) {
					t.Errorf("%s: a refused transition changed the checkpoint", name)
				}
			default:
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if cp.GetStatus() != want {
					t.Errorf("%s: status %s, want %s", name, StatusName(cp.GetStatus()), StatusName(want))
				}
				if proto.Equal(cp.GetUpdatedAt(), oldStamp) {
					t.Errorf("%s: updated_at not set", name)
				}
				if err := Validate(cp); err != nil {
					t.Errorf("%s: result is not valid: %v", name, err)
				}
				if IsTerminal(want) != IsTerminal(cp.GetStatus()) {
					t.Errorf("%s: IsTerminal disagrees", name)
				}
			}
		}
	}
}

func TestTransitionUnspecifiedStatus(t *testing.T) {
	cp := freshCheckpoint(t, v1.SessionStatus_SESSION_STATUS_UNSPECIFIED)
	err := Pause(cp)
	if err == nil || err.Error() != `session "s1" cannot pause while unspecified` {
		t.Fatalf("Pause of an unspecified session: %v", err)
	}
	if err := Pause(nil); err == nil {
		t.Fatal("Pause(nil) succeeded")
	}
}

func TestRecordTrialCounts(t *testing.T) {
	cp := freshCheckpoint(t, running)
	trials := []Trial{
		{Score: f64(0.5), CandidateID: str("a"), Stats: map[string]any{"tokens": 10}, DurationMs: 7},
		{Status: v1.TrialStatus_TRIAL_STATUS_ERROR, Error: Map{{"message", "boom"}}, ErrorClass: str("RuntimeError")},
		{Status: v1.TrialStatus_TRIAL_STATUS_OK},
		{Score: f64(0.25)},
		{Error: errors.New("late"), Status: v1.TrialStatus_TRIAL_STATUS_ERROR, SamplerBlob: []byte{9}},
	}
	for i, tr := range trials {
		idx, err := RecordTrial(cp, tr)
		if err != nil {
			t.Fatalf("trial %d: %v", i, err)
		}
		if idx != uint64(i) || cp.GetProgress().GetTrialLog()[i].GetTrialIdx() != uint64(i) {
			t.Errorf("trial %d got index %d", i, idx)
		}
	}
	pr := cp.GetProgress()
	if pr.GetAttempts() != 5 || pr.GetCompleted() != 3 || pr.GetErrors() != 2 {
		t.Errorf("counts %d/%d/%d, want 5/3/2", pr.GetAttempts(), pr.GetCompleted(), pr.GetErrors())
	}
	if pr.GetBestScore() != 0.5 || pr.GetBestTrialIdx() != 0 {
		t.Errorf("best %v at %d, want 0.5 at 0", pr.GetBestScore(), pr.GetBestTrialIdx())
	}
	first := pr.GetTrialLog()[0]
	if first.GetCandidateId() != "a" || first.GetDurationMs() != 7 || first.GetStatus() != v1.TrialStatus_TRIAL_STATUS_OK {
		t.Errorf("first entry %v", first)
	}
	stats, err := FromTermMap(first.GetStats())
	if err != nil || fmt.Sprint(stats) != fmt.Sprint(Map{{"tokens", int64(10)}}) {
		t.Errorf("stats %v, %v", stats, err)
	}
	last := pr.GetTrialLog()[4]
	if last.GetErrorClass() != "*errors.errorString" {
		t.Errorf("error_class %q", last.GetErrorClass())
	}
	errMap, _ := FromTermMap(last.GetError())
	if fmt.Sprint(errMap) != fmt.Sprint(Map{{"class", "*errors.errorString"}, {"message", "late"}}) {
		t.Errorf("error %v", errMap)
	}
	if string(cp.GetSamplerBlob()) != "\x09" {
		t.Errorf("sampler blob %v", cp.GetSamplerBlob())
	}
	if proto.Equal(cp.GetUpdatedAt(), oldStamp) {
		t.Error("updated_at not set")
	}
	if _, err := Encode(cp); err != nil {
		t.Errorf("Encode after trials: %v", err)
	}
}

func TestRecordTrialBest(t *testing.T) {
	negZero := math.Copysign(0, -1)
	cases := []struct {
		name    string
		trials  []Trial
		score   *float64
		bestIdx uint64
	}{
		{"none without a score", []Trial{{}, {Status: v1.TrialStatus_TRIAL_STATUS_OK}}, nil, 0},
		{"error never best", []Trial{{Score: f64(9), Status: v1.TrialStatus_TRIAL_STATUS_ERROR}, {Score: f64(1)}}, f64(1), 1},
		{"first of equals stays", []Trial{{Score: f64(2)}, {Score: f64(2)}}, f64(2), 0},
		{"strictly greater wins", []Trial{{Score: f64(2)}, {Score: f64(3)}}, f64(3), 1},
		{"lower stays out", []Trial{{Score: f64(2)}, {Score: f64(-1)}}, f64(2), 0},
		{"-0.0 does not beat 0.0", []Trial{{Score: f64(0)}, {Score: &negZero}}, f64(0), 0},
		{"first score is best", []Trial{{}, {Score: f64(-5)}}, f64(-5), 1},
		{"-inf is a score", []Trial{{Score: f64(math.Inf(-1))}}, f64(math.Inf(-1)), 0},
	}
	for _, c := range cases {
		cp := freshCheckpoint(t, running)
		for _, tr := range c.trials {
			if _, err := RecordTrial(cp, tr); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
		pr := cp.GetProgress()
		if c.score == nil {
			if pr.BestScore != nil || pr.BestTrialIdx != nil {
				t.Errorf("%s: best %v at %v, want none", c.name, pr.GetBestScore(), pr.GetBestTrialIdx())
			}
			continue
		}
		if pr.BestScore == nil || *pr.BestScore != *c.score || math.Signbit(*pr.BestScore) != math.Signbit(*c.score) ||
			pr.GetBestTrialIdx() != c.bestIdx {
			t.Errorf("%s: best %v at %d, want %v at %d", c.name, pr.GetBestScore(), pr.GetBestTrialIdx(), *c.score, c.bestIdx)
		}
	}
}

func TestRecordTrialBestLower(t *testing.T) {
	negZero := math.Copysign(0, -1)
	cases := []struct {
		name    string
		trials  []Trial
		score   float64
		bestIdx uint64
	}{
		{"first score is best", []Trial{{}, {Score: f64(5)}}, 5, 1},
		{"strictly lower wins", []Trial{{Score: f64(2)}, {Score: f64(1)}}, 1, 1},
		{"greater stays out", []Trial{{Score: f64(2)}, {Score: f64(3)}}, 2, 0},
		{"first of equals stays", []Trial{{Score: f64(2)}, {Score: f64(2)}}, 2, 0},
		{"-0.0 does not beat 0.0", []Trial{{Score: f64(0)}, {Score: &negZero}}, 0, 0},
		{"error never best", []Trial{{Score: f64(3)}, {Score: f64(-9), Status: v1.TrialStatus_TRIAL_STATUS_ERROR}}, 3, 0},
		{"-inf beats everything", []Trial{{Score: f64(-1e308)}, {Score: f64(math.Inf(-1))}}, math.Inf(-1), 1},
	}
	for _, c := range cases {
		cp := freshCheckpoint(t, running)
		cp.Direction = v1.Direction_DIRECTION_LOWER
		for _, tr := range c.trials {
			if _, err := RecordTrial(cp, tr); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
		pr := cp.GetProgress()
		if pr.BestScore == nil || math.Float64bits(*pr.BestScore) != math.Float64bits(c.score) || pr.GetBestTrialIdx() != c.bestIdx {
			t.Errorf("%s: best %v at %d, want %v at %d", c.name, pr.GetBestScore(), pr.GetBestTrialIdx(), c.score, c.bestIdx)
		}
		if _, err := Encode(cp); err != nil {
			t.Errorf("%s: Encode: %v", c.name, err)
		}
	}
}

func TestRecordTrialUnknownDirection(t *testing.T) {
	cp := freshCheckpoint(t, running)
	cp.Direction = 2
	before := proto.Clone(cp)
	_, err := RecordTrial(cp, Trial{Score: f64(1)})
	var ic *InvalidCheckpoint
	if !errors.As(err, &ic) || ic.Path != "direction" {
		t.Fatalf("error %v, want an *InvalidCheckpoint at direction", err)
	}
	if !proto.Equal(cp, before) {
		t.Fatal("a refused trial changed the checkpoint")
	}
}

func TestRecordTrialRefusals(t *testing.T) {
	cases := []struct {
		trial Trial
		path  string
	}{
		{Trial{Score: f64(math.NaN())}, "score"},
		{Trial{Status: v1.TrialStatus(7)}, "status"},
		{Trial{Stats: map[string]any{"x": math.NaN()}}, `stats["x"]`},
		{Trial{Stats: 42}, "stats"},
		{Trial{Error: []any{1}}, "error"},
		{Trial{CandidateID: str("\xff")}, "candidate_id"},
		{Trial{ErrorClass: str("\xff")}, "error_class"},
		{Trial{CandidateID: str("key sk-proj-abcdefghijklmnopqrstuvwxyz0123456789")}, "candidate_id"},
		{Trial{Stats: Map{{"api_key", "abc123"}}}, "stats.entries[0].key"},
		{Trial{Error: map[string]any{"message": "password=hunter2hunter2"}}, "error.entries[0].value.string_value"},
		{Trial{BestProgramArtifact: Map{{"token", "abc"}}}, "best_program_artifact.entries[0].key"},
		{Trial{Stats: &v1.TermMap{Entries: []*v1.TermMapEntry{{Key: mustTerm(t, "a")}}}}, "stats.entries[0]"},
	}
	for i, c := range cases {
		cp := freshCheckpoint(t, running)
		before := proto.Clone(cp)
		_, err := RecordTrial(cp, c.trial)
		var ic *InvalidCheckpoint
		if !errors.As(err, &ic) {
			t.Errorf("case %d: error %v (%T), want *InvalidCheckpoint", i, err, err)
			continue
		}
		if ic.Path != c.path {
			t.Errorf("case %d: path %q, want %q (%v)", i, ic.Path, c.path, err)
		}
		if !proto.Equal(cp, before) {
			t.Errorf("case %d: a refused trial changed the checkpoint", i)
		}
	}
}

func TestRecordTrialRedacts(t *testing.T) {
	cp := freshCheckpoint(t, running)
	stats := mustTermMap(t, Map{{"note", "password=hunter2hunter2"}, {"api_key", "abc123"}})
	before := proto.Clone(stats)
	_, err := RecordTrial(cp, Trial{
		Stats:               stats,
		CandidateID:         str("c sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"),
		BestProgramArtifact: Map{{"instructions", "be brief"}},
		RedactSecrets:       true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(stats, before) {
		t.Error("redaction changed the caller's stats")
	}
	if err := Screen(cp); err != nil {
		t.Errorf("a secret is left after redaction: %v", err)
	}
	entry := cp.GetProgress().GetTrialLog()[0]
	if !strings.Contains(entry.GetCandidateId(), Redacted) {
		t.Errorf("candidate_id %q not redacted", entry.GetCandidateId())
	}
	art, _ := FromTermMap(cp.GetBestProgramArtifact())
	if fmt.Sprint(art) != fmt.Sprint(Map{{"instructions", "be brief"}}) {
		t.Errorf("artifact %v", art)
	}
}

func TestTerminalReason(t *testing.T) {
	cp := freshCheckpoint(t, paused)
	if err := Cancel(cp, Map{{"by", "user"}}); err != nil {
		t.Fatal(err)
	}
	got, err := FromTerm(cp.GetTerminalReason())
	if err != nil || fmt.Sprint(got) != fmt.Sprint(Map{{"by", "user"}}) {
		t.Errorf("terminal_reason %v, %v", got, err)
	}
	cp = freshCheckpoint(t, running)
	cp.TerminalReason = mustTerm(t, "stale")
	if err := Complete(cp, nil); err != nil || cp.TerminalReason != nil {
		t.Errorf("Complete without a reason: %v, reason %v", err, cp.GetTerminalReason())
	}
	for _, reason := range []any{math.NaN(), struct{}{}, "password=hunter2hunter2"} {
		cp = freshCheckpoint(t, running)
		before := proto.Clone(cp)
		err := Fail(cp, reason)
		var ic *InvalidCheckpoint
		if !errors.As(err, &ic) || !strings.HasPrefix(ic.Path, "reason") {
			t.Errorf("Fail(%v): %v, want *InvalidCheckpoint at reason…", reason, err)
		}
		if !proto.Equal(cp, before) {
			t.Errorf("Fail(%v) refused but changed the checkpoint", reason)
		}
	}
	cp = freshCheckpoint(t, running)
	if err := Fail(cp, mustTerm(t, Tuple{Atom("error"), "oom"})); err != nil || cp.GetStatus() != failed {
		t.Errorf("Fail with a *Term reason: %v", err)
	}
}

func TestFromTermMap(t *testing.T) {
	m := mustTermMap(t, Map{{"b", 2}, {"a", []any{1.5, nil}}})
	got, err := FromTermMap(m)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := FromTerm(&v1.Term{Kind: &v1.Term_MapValue{MapValue: m}})
	if fmt.Sprint(got) != fmt.Sprint(want) || len(got) != 2 || got[0].Key != "a" {
		t.Errorf("FromTermMap %v, want %v", got, want)
	}
	empty, err := FromTermMap(&v1.TermMap{})
	if err != nil || empty == nil || len(empty) != 0 {
		t.Errorf("empty map: %#v, %v", empty, err)
	}
	bad := &v1.TermMap{Entries: []*v1.TermMapEntry{{Key: mustTerm(t, "a"), Value: &v1.Term{}}}}
	var ic *InvalidCheckpoint
	if _, err := FromTermMap(bad); !errors.As(err, &ic) || ic.Path != "term.map_value.entries[0].value" {
		t.Errorf("FromTermMap of a value without kind: %v", err)
	}
	if _, err := FromTermMap(nil); err == nil {
		t.Error("FromTermMap(nil) succeeded")
	}
}
