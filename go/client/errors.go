package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/dsxir/dsxir-checkpoint/go/checkpoint"
	checkpointstorev1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/checkpoint_store/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Domain is the ErrorInfo domain of every error the service sends: the
// protobuf package of the service and of its ErrorReason enum (TestDomain
// holds the two together). The reason of such an ErrorInfo is the name of
// an ErrorReason value.
const Domain = "dsxir.checkpoint_store.v1"

// NotFoundError: no checkpoint is stored for the session (NOT_FOUND).
type NotFoundError struct {
	SessionID string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("no checkpoint stored for session %q", e.SessionID)
}

// ConflictError: the stored generation is not the expected one, or a
// session to create exists (ABORTED, GENERATION_CONFLICT). Expected and
// Actual are generations; 0 stands for none (create, or no session stored).
type ConflictError struct {
	SessionID string
	Expected  uint64
	Actual    uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("generation conflict on session %q: expected %s, stored %s",
		e.SessionID, generationText(e.Expected), generationText(e.Actual))
}

func generationText(g uint64) string {
	if g == 0 {
		return "none"
	}
	return strconv.FormatUint(g, 10)
}

// InvalidSessionIDError: the server's store refuses the session id
// (INVALID_ARGUMENT, INVALID_SESSION_ID: "/", "..", a leading dot, control
// characters, over 200 bytes...).
type InvalidSessionIDError struct {
	SessionID string
	Message   string
}

func (e *InvalidSessionIDError) Error() string { return e.Message }

// CorruptStoreError: stored data is damaged (DATA_LOSS, CORRUPT_STORE; Path
// names the file or row), or the server sent a checkpoint that
// checkpoint.Decode refuses, or watch events whose checkpoint cannot be
// followed (Path: the session id).
type CorruptStoreError struct {
	Path   string
	Detail string
}

func (e *CorruptStoreError) Error() string {
	return fmt.Sprintf("corrupt store at %s: %s", e.Path, e.Detail)
}

// IllegalHistoryError: the checkpoint is not a legal successor of the
// stored generation (FAILED_PRECONDITION, ILLEGAL_HISTORY; FORMAT.md §9.1).
// Rule names the broken rule, e.g. "history.trial_log_rewritten"; nothing
// was stored.
type IllegalHistoryError struct {
	SessionID string
	Rule      string
	Detail    string
}

func (e *IllegalHistoryError) Error() string {
	return fmt.Sprintf("illegal history for session %q: %s: %s", e.SessionID, e.Rule, e.Detail)
}

// LeaseHeldError: another worker holds the session's lease
// (FAILED_PRECONDITION, LEASE_HELD) until ExpiresAt (UTC; the zero time
// when the server sent none).
type LeaseHeldError struct {
	SessionID string
	Holder    string
	ExpiresAt time.Time
}

func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("session %q is held by %q until %s", e.SessionID, e.Holder,
		e.ExpiresAt.UTC().Format(time.RFC3339Nano))
}

// LeaseLostError: the lease named by the call is no longer the session's
// lease (FAILED_PRECONDITION, LEASE_LOST): it was released, or it expired
// and another worker took the session over.
type LeaseLostError struct {
	SessionID string
	Detail    string
}

func (e *LeaseLostError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("lease on session %q lost", e.SessionID)
	}
	return fmt.Sprintf("lease on session %q lost: %s", e.SessionID, e.Detail)
}

// ServiceError: a call failed with a status that has no store-level meaning.
// Reason is the reason of the status's ErrorInfo, the name of a
// checkpointstorev1.ErrorReason value (empty when it carried none). The
// errors below wrap one, so errors.As(err, &serviceErr) finds it for each of
// them.
type ServiceError struct {
	Code    codes.Code
	Reason  string
	Message string
	cause   error
}

func (e *ServiceError) Error() string { return e.Code.String() + ": " + e.Message }

// Unwrap returns the context's error when the caller's context ended the call.
func (e *ServiceError) Unwrap() error { return e.cause }

// GRPCStatus lets status.Code and status.FromError see the call's code.
func (e *ServiceError) GRPCStatus() *status.Status { return status.New(e.Code, e.Message) }

// UnavailableError: the service or its storage cannot be reached, or the
// call's deadline passed (UNAVAILABLE, DEADLINE_EXCEEDED). A commit that
// failed so may or may not have been made.
type UnavailableError struct{ *ServiceError }

func (e *UnavailableError) Unwrap() error { return e.ServiceError }

// UnauthenticatedError: the call carried no valid bearer token
// (UNAUTHENTICATED, PERMISSION_DENIED).
type UnauthenticatedError struct{ *ServiceError }

func (e *UnauthenticatedError) Unwrap() error { return e.ServiceError }

// ResourceExhaustedError: a message was over a size limit, or the server
// ran out of a resource such as watch slots (RESOURCE_EXHAUSTED).
type ResourceExhaustedError struct{ *ServiceError }

func (e *ResourceExhaustedError) Unwrap() error { return e.ServiceError }

// InvalidRequestError: a request field was refused (INVALID_ARGUMENT other
// than a checkpoint or a session id). Field names it when known.
type InvalidRequestError struct {
	*ServiceError
	Field string
}

func (e *InvalidRequestError) Unwrap() error { return e.ServiceError }

// fromStatus turns a failed call into the error a store would return (see
// the package text). sessionID is the session of the call, if any.
func fromStatus(err error, sessionID string) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	code, message := st.Code(), st.Message()
	info, field := details(st)
	reason, meta := "", map[string]string(nil)
	if info != nil {
		reason, meta = info.GetReason(), info.GetMetadata()
	}
	metaOr := func(key, fallback string) string {
		if v, ok := meta[key]; ok {
			return v
		}
		return fallback
	}
	switch {
	case code == codes.NotFound && reason == checkpointstorev1.ErrorReason_SESSION_NOT_FOUND.String():
		return &NotFoundError{SessionID: metaOr("session_id", sessionID)}
	case code == codes.Aborted && reason == checkpointstorev1.ErrorReason_GENERATION_CONFLICT.String():
		expected, _ := strconv.ParseUint(metaOr("expected_generation", "0"), 10, 64)
		stored, _ := strconv.ParseUint(metaOr("stored_generation", "0"), 10, 64)
		return &ConflictError{SessionID: metaOr("session_id", sessionID), Expected: expected, Actual: stored}
	case code == codes.InvalidArgument && reason == checkpointstorev1.ErrorReason_INVALID_CHECKPOINT.String() && meta["subject"] == "delta":
		rule := metaOr("rule", "")
		if !checkpoint.IsRule(rule) && !checkpoint.IsDeltaRule(rule) { // only an id this library knows
			rule = ""
		}
		return &checkpoint.InvalidDelta{Path: metaOr("field", checkpoint.InputPath), Detail: metaOr("detail", message), Rule: rule}
	case code == codes.InvalidArgument && reason == checkpointstorev1.ErrorReason_INVALID_CHECKPOINT.String():
		rule := metaOr("rule", "")
		if !checkpoint.IsRule(rule) { // only an id this library knows
			rule = ""
		}
		return &checkpoint.InvalidCheckpoint{Path: metaOr("field", checkpoint.InputPath), Detail: metaOr("detail", message), Rule: rule}
	case code == codes.InvalidArgument && reason == checkpointstorev1.ErrorReason_INVALID_SESSION_ID.String():
		return &InvalidSessionIDError{SessionID: sessionID, Message: message}
	case code == codes.FailedPrecondition && reason == checkpointstorev1.ErrorReason_ILLEGAL_HISTORY.String():
		return &IllegalHistoryError{SessionID: metaOr("session_id", sessionID), Rule: metaOr("rule", ""), Detail: metaOr("detail", message)}
	case code == codes.FailedPrecondition && reason == checkpointstorev1.ErrorReason_LEASE_HELD.String():
		until, _ := time.Parse(time.RFC3339Nano, metaOr("expires_at", ""))
		return &LeaseHeldError{SessionID: metaOr("session_id", sessionID), Holder: metaOr("holder", ""), ExpiresAt: until.UTC()}
	case code == codes.FailedPrecondition && reason == checkpointstorev1.ErrorReason_LEASE_LOST.String():
		return &LeaseLostError{SessionID: metaOr("session_id", sessionID), Detail: metaOr("detail", "")}
	case code == codes.DataLoss && reason == checkpointstorev1.ErrorReason_CORRUPT_STORE.String():
		return &CorruptStoreError{Path: metaOr("path", "?"), Detail: metaOr("detail", message)}
	}
	base := &ServiceError{Code: code, Reason: reason, Message: message}
	if code == codes.Canceled {
		base.cause = context.Canceled
	} else if code == codes.DeadlineExceeded {
		base.cause = context.DeadlineExceeded
	}
	switch code {
	case codes.InvalidArgument:
		return &InvalidRequestError{ServiceError: base, Field: metaOr("field", field)}
	case codes.Unavailable, codes.DeadlineExceeded:
		return &UnavailableError{base}
	case codes.Unauthenticated, codes.PermissionDenied:
		return &UnauthenticatedError{base}
	case codes.ResourceExhausted:
		return &ResourceExhaustedError{base}
	}
	return base
}

// details returns the status's ErrorInfo of the service's domain and the
// field of its first BadRequest violation, if any.
func details(st *status.Status) (*errdetails.ErrorInfo, string) {
	var info *errdetails.ErrorInfo
	field := ""
	for _, d := range st.Details() {
		switch x := d.(type) {
		case *errdetails.ErrorInfo:
			if info == nil && x.GetDomain() == Domain {
				info = x
			}
		case *errdetails.BadRequest:
			if v := x.GetFieldViolations(); field == "" && len(v) > 0 {
				field = v[0].GetField()
			}
		}
	}
	return info, field
}

// isCanceled reports whether err is the end of a call the caller cancelled.
func isCanceled(err error) bool {
	var se *ServiceError
	return errors.As(err, &se) && se.Code == codes.Canceled
}
