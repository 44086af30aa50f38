package checkpoint

import (
	"bytes"
	"slices"

	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
)

// StatusName returns the lower-case name of a session status ("running",
// "paused", "completed", "failed", "cancelled"), or "" for any other value.
func StatusName(s v1.SessionStatus) string { return statusNames[s] }

// DirectionName returns "higher" or "lower" for a direction, or "" for any
// other value.
func DirectionName(d v1.Direction) string {
	switch d {
	case v1.Direction_DIRECTION_HIGHER:
		return "higher"
	case v1.Direction_DIRECTION_LOWER:
		return "lower"
	}
	return ""
}

// IsTerminal reports whether s is completed, failed or cancelled.
func IsTerminal(s v1.SessionStatus) bool {
	switch s {
	case v1.SessionStatus_SESSION_STATUS_COMPLETED,
		v1.SessionStatus_SESSION_STATUS_FAILED,
		v1.SessionStatus_SESSION_STATUS_CANCELLED:
		return true
	}
	return false
}

// CheckResume is the resume gate (FORMAT.md §8): it returns nil when a caller
// running optimizer, whose sampler is samplerModule and reads the blob
// versions acceptedVersions, may continue the session of cp. In order:
//
//  1. a terminal status: *AlreadyTerminal;
//  2. a different optimizer: *ResumeMismatch, reason "optimizer";
//  3. a different sampler module: reason "sampler_format";
//  4. a sampler version not in acceptedVersions: reason "sampler_version";
//  5. when trainsetHash is not nil and differs from the checkpoint's: reason
//     "trainset_hash" (values shown in lowercase hex);
//  6. when direction is not "" and differs from the checkpoint's direction
//     ("higher" or "lower", see DirectionName): reason "direction" (a
//     direction number the format does not define is reason
//     "checkpoint_shape", field "direction").
//
// Expected is always the caller's value, Got the checkpoint's. With one
// accepted version Expected is that uint32, otherwise the []uint32.
func CheckResume(cp *v1.Checkpoint, optimizer string, samplerModule string, acceptedVersions []uint32, trainsetHash []byte, direction string) error {
	if cp == nil {
		return &ResumeMismatch{Reason: ReasonCheckpointShape, Field: InputPath, Got: "no checkpoint", Detail: "no checkpoint"}
	}
	sid := cp.GetSessionId()
	if IsTerminal(cp.GetStatus()) {
		return &AlreadyTerminal{SessionID: sid, Status: StatusName(cp.GetStatus())}
	}
	if optimizer != cp.GetOptimizer() {
		return &ResumeMismatch{SessionID: sid, Reason: ReasonOptimizer, Expected: optimizer, Got: cp.GetOptimizer()}
	}
	sf := cp.GetSamplerFormat()
	if samplerModule != sf.GetModule() {
		return &ResumeMismatch{SessionID: sid, Reason: ReasonSamplerFormat, Expected: samplerModule, Got: sf.GetModule()}
	}
	if !slices.Contains(acceptedVersions, sf.GetVersion()) {
		var expected any = slices.Clone(acceptedVersions)
		if len(acceptedVersions) == 1 {
			expected = acceptedVersions[0]
		}
		return &ResumeMismatch{SessionID: sid, Reason: ReasonSamplerVersion, Expected: expected, Got: sf.GetVersion()}
	}
	if trainsetHash != nil && !bytes.Equal(trainsetHash, cp.GetTrainsetHash()) {
		return &ResumeMismatch{SessionID: sid, Reason: ReasonTrainsetHash,
			Expected: bytes.Clone(trainsetHash), Got: bytes.Clone(cp.GetTrainsetHash())}
	}
	if direction != "" {
		if err := checkDirection(cp.GetDirection()); err != nil {
			return shape(sid, err)
		}
		if got := DirectionName(cp.GetDirection()); direction != got {
			return &ResumeMismatch{SessionID: sid, Reason: ReasonDirection, Expected: direction, Got: got}
		}
	}
	return nil
}
