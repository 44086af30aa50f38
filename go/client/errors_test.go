package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dsxir/dsxir-checkpoint/go/checkpoint"
	checkpointstorev1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/checkpoint_store/v1"
	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

var ioEOF = io.EOF

// asType is errors.As for a pointer to the wanted error type.
func asType[T error](err error, target *T) bool { return err != nil && errors.As(err, target) }

type manifestEntry struct {
	Name  string `json:"name"`
	Binpb string `json:"binpb"`
	Field string `json:"field"`
	Rule  string `json:"rule"`
}

type manifest struct {
	Valid   []manifestEntry `json:"valid"`
	Unknown []manifestEntry `json:"unknown"`
	Invalid []manifestEntry `json:"invalid"`
}

func readManifest(t *testing.T) manifest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "tests", "vectors", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Invalid) == 0 || len(m.Valid) == 0 {
		t.Fatal("the manifest lists no vectors")
	}
	return m
}

func readVector(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "tests", "vectors", filepath.FromSlash(path)))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// serviceStatus builds the status the server sends: code, message, an
// ErrorInfo of the service's domain and, with a field, a BadRequest.
func serviceStatus(t *testing.T, code codes.Code, message string, reason checkpointstorev1.ErrorReason, meta map[string]string, field string) error {
	t.Helper()
	details := []protoadapt.MessageV1{protoadapt.MessageV1Of(&errdetails.ErrorInfo{Reason: reason.String(), Domain: Domain, Metadata: meta})}
	if field != "" {
		details = append(details, protoadapt.MessageV1Of(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: message}},
		}))
	}
	st, err := status.New(code, message).WithDetails(details...)
	if err != nil {
		t.Fatal(err)
	}
	return st.Err()
}

func TestFromStatus(t *testing.T) {
	err := fromStatus(serviceStatus(t, codes.NotFound, "no", checkpointstorev1.ErrorReason_SESSION_NOT_FOUND, map[string]string{"session_id": "s9"}, ""), "s1")
	if nf, ok := err.(*NotFoundError); !ok || nf.SessionID != "s9" {
		t.Errorf("NOT_FOUND: %v (%T)", err, err)
	}

	err = fromStatus(serviceStatus(t, codes.Aborted, "conflict", checkpointstorev1.ErrorReason_GENERATION_CONFLICT,
		map[string]string{"session_id": "s1", "expected_generation": "3", "stored_generation": "0"}, ""), "s1")
	if c, ok := err.(*ConflictError); !ok || *c != (ConflictError{SessionID: "s1", Expected: 3, Actual: 0}) {
		t.Errorf("ABORTED: %v (%T)", err, err)
	}

	err = fromStatus(serviceStatus(t, codes.InvalidArgument, "checkpoint refused", checkpointstorev1.ErrorReason_INVALID_CHECKPOINT,
		map[string]string{"field": "progress.trial_log[3].score", "detail": "is NaN"}, "checkpoint.progress.trial_log[3].score"), "s1")
	if ic, ok := err.(*checkpoint.InvalidCheckpoint); !ok || ic.Path != "progress.trial_log[3].score" || ic.Detail != "is NaN" {
		t.Errorf("INVALID_CHECKPOINT: %v (%T)", err, err)
	}

	err = fromStatus(serviceStatus(t, codes.InvalidArgument, "bad id", checkpointstorev1.ErrorReason_INVALID_SESSION_ID, nil, "session_id"), "../x")
	if is, ok := err.(*InvalidSessionIDError); !ok || is.SessionID != "../x" || is.Message != "bad id" {
		t.Errorf("INVALID_SESSION_ID: %v (%T)", err, err)
	}

	err = fromStatus(serviceStatus(t, codes.InvalidArgument, "page_size: must not be negative", checkpointstorev1.ErrorReason_INVALID_REQUEST,
		map[string]string{"field": "page_size"}, "page_size"), "")
	var request *InvalidRequestError
	if !asType(err, &request) || request.Field != "page_size" || request.Reason != checkpointstorev1.ErrorReason_INVALID_REQUEST.String() {
		t.Errorf("INVALID_REQUEST: %v (%T)", err, err)
	}

	err = fromStatus(serviceStatus(t, codes.FailedPrecondition, "illegal", checkpointstorev1.ErrorReason_ILLEGAL_HISTORY,
		map[string]string{"session_id": "s1", "rule": "history.trial_log_shortened", "detail": "3 -> 1 entries"}, ""), "s1")
	if ih, ok := err.(*IllegalHistoryError); !ok || *ih != (IllegalHistoryError{SessionID: "s1", Rule: "history.trial_log_shortened", Detail: "3 -> 1 entries"}) {
		t.Errorf("ILLEGAL_HISTORY: %v (%T)", err, err)
	}

	err = fromStatus(serviceStatus(t, codes.FailedPrecondition, "held", checkpointstorev1.ErrorReason_LEASE_HELD,
		map[string]string{"session_id": "s1", "holder": "host-a:41", "expires_at": "2026-01-02T03:04:05.678901Z"}, ""), "s1")
	want := time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC)
	if lh, ok := err.(*LeaseHeldError); !ok || lh.SessionID != "s1" || lh.Holder != "host-a:41" || !lh.ExpiresAt.Equal(want) {
		t.Errorf("LEASE_HELD: %v (%T)", err, err)
	}

	err = fromStatus(serviceStatus(t, codes.FailedPrecondition, "lost", checkpointstorev1.ErrorReason_LEASE_LOST,
		map[string]string{"session_id": "s1", "detail": "taken over"}, ""), "s1")
	if ll, ok := err.(*LeaseLostError); !ok || *ll != (LeaseLostError{SessionID: "s1", Detail: "taken over"}) {
		t.Errorf("LEASE_LOST: %v (%T)", err, err)
	}

	err = fromStatus(serviceStatus(t, codes.DataLoss, "damaged", checkpointstorev1.ErrorReason_CORRUPT_STORE,
		map[string]string{"path": "/var/s1.ckpt", "detail": "crc mismatch"}, ""), "s1")
	if cs, ok := err.(*CorruptStoreError); !ok || cs.Path != "/var/s1.ckpt" || cs.Detail != "crc mismatch" {
		t.Errorf("DATA_LOSS: %v (%T)", err, err)
	}

	for _, tc := range []struct {
		code   codes.Code
		reason checkpointstorev1.ErrorReason // ERROR_REASON_UNSPECIFIED: no ErrorInfo
		check  func(error) bool
	}{
		{codes.Unavailable, checkpointstorev1.ErrorReason_STORE_UNAVAILABLE, func(e error) bool { return asType(e, new(*UnavailableError)) }},
		{codes.DeadlineExceeded, checkpointstorev1.ErrorReason_ERROR_REASON_UNSPECIFIED, func(e error) bool {
			return asType(e, new(*UnavailableError)) && errors.Is(e, context.DeadlineExceeded)
		}},
		{codes.Unauthenticated, checkpointstorev1.ErrorReason_UNAUTHENTICATED, func(e error) bool { return asType(e, new(*UnauthenticatedError)) }},
		{codes.PermissionDenied, checkpointstorev1.ErrorReason_ERROR_REASON_UNSPECIFIED, func(e error) bool { return asType(e, new(*UnauthenticatedError)) }},
		{codes.ResourceExhausted, checkpointstorev1.ErrorReason_TOO_MANY_WATCHERS, func(e error) bool { return asType(e, new(*ResourceExhaustedError)) }},
		{codes.Aborted, checkpointstorev1.ErrorReason_WATCH_OVERFLOW, func(e error) bool {
			_, plain := e.(*ServiceError)
			return plain
		}},
		{codes.Internal, checkpointstorev1.ErrorReason_INTERNAL, func(e error) bool {
			_, plain := e.(*ServiceError)
			return plain
		}},
		{codes.Canceled, checkpointstorev1.ErrorReason_ERROR_REASON_UNSPECIFIED, func(e error) bool { return isCanceled(e) && errors.Is(e, context.Canceled) }},
	} {
		err, wantReason := status.Error(tc.code, "failed"), ""
		if tc.reason != checkpointstorev1.ErrorReason_ERROR_REASON_UNSPECIFIED {
			err, wantReason = serviceStatus(t, tc.code, "failed", tc.reason, nil, ""), tc.reason.String()
		}
		mapped := fromStatus(err, "s1")
		var service *ServiceError
		if !tc.check(mapped) || !asType(mapped, &service) || service.Code != tc.code || service.Reason != wantReason ||
			status.Code(mapped) != tc.code {
			t.Errorf("%v %s: %v (%T)", tc.code, tc.reason, mapped, mapped)
		}
	}

	// An ErrorInfo of another domain is not the service's: the code alone counts.
	st, _ := status.New(codes.NotFound, "elsewhere").WithDetails(protoadapt.MessageV1Of(
		&errdetails.ErrorInfo{Reason: checkpointstorev1.ErrorReason_SESSION_NOT_FOUND.String(), Domain: "example.com"}))
	if mapped := fromStatus(st.Err(), "s1"); !asType(mapped, new(*ServiceError)) {
		t.Errorf("foreign ErrorInfo: %v (%T)", mapped, mapped)
	}
	// An error that is not a status passes through.
	plain := errors.New("plain")
	if fromStatus(plain, "") != plain {
		t.Error("a plain error was changed")
	}
}

// TestDomain: the domain is the protobuf package of the service and of its
// ErrorReason enum.
func TestDomain(t *testing.T) {
	if Domain != "dsxir.checkpoint_store.v1" {
		t.Errorf("Domain = %q, want dsxir.checkpoint_store.v1", Domain)
	}
	if service := string(checkpointstorev1.File_dsxir_checkpoint_store_v1_service_proto.Package()); service != Domain {
		t.Errorf("the service's package is %q, the domain %q", service, Domain)
	}
}

func TestSplitGetResponse(t *testing.T) {
	cp := []byte{0x0a, 0x02, 'h', 'i'}
	response := protowire.AppendTag(nil, 1, protowire.BytesType)
	response = protowire.AppendBytes(response, cp[:2])
	response = protowire.AppendTag(response, 9, protowire.VarintType) // unknown, skipped
	response = protowire.AppendVarint(response, 5)
	response = protowire.AppendTag(response, 2, protowire.VarintType)
	response = protowire.AppendVarint(response, 7)
	response = protowire.AppendTag(response, 1, protowire.BytesType) // merged: concatenated
	response = protowire.AppendBytes(response, cp[2:])
	body, generation, err := splitGetResponse(response)
	if err != nil || string(body) != string(cp) || generation != 7 {
		t.Fatalf("splitGetResponse: %x, %d, %v", body, generation, err)
	}
	if _, _, err := splitGetResponse(response[:len(response)-1]); err == nil {
		t.Fatal("a truncated response was accepted")
	}

	// The same bytes as the generated message's encoding.
	message := &checkpointstorev1.GetCheckpointResponse{Checkpoint: &v1.Checkpoint{SessionId: "s1"}, Generation: 3}
	data, err := proto.Marshal(message)
	if err != nil {
		t.Fatal(err)
	}
	body, generation, err = splitGetResponse(data)
	want, _ := proto.Marshal(message.GetCheckpoint())
	if err != nil || string(body) != string(want) || generation != 3 {
		t.Fatalf("splitGetResponse(generated): %x, %d, %v", body, generation, err)
	}
}

func TestCodec(t *testing.T) {
	raw := &rawMessage{data: []byte{1, 2, 3}}
	out, err := codec{}.Marshal(raw)
	if err != nil || string(out) != "\x01\x02\x03" {
		t.Fatalf("Marshal(raw): %x, %v", out, err)
	}
	into := &rawMessage{}
	if err := (codec{}).Unmarshal(out, into); err != nil || string(into.data) != string(out) {
		t.Fatalf("Unmarshal(raw): %x, %v", into.data, err)
	}
	request := &checkpointstorev1.GetCheckpointRequest{SessionId: "s1"}
	out, err = codec{}.Marshal(request)
	parsed := &checkpointstorev1.GetCheckpointRequest{}
	if err != nil || (codec{}).Unmarshal(out, parsed) != nil || parsed.GetSessionId() != "s1" {
		t.Fatalf("proto round trip: %v", err)
	}
	if _, err := (codec{}).Marshal(42); err == nil {
		t.Fatal("Marshal(42) succeeded")
	}
}

func TestATokenIsNotSentInPlainTextBeyondLoopback(t *testing.T) {
	token := WithToken("0123456789abcdef0123")
	for _, target := range []string{"db.example:50051", "192.0.2.1:50051", "dns:///db.example:443", "[2001:db8::1]:1"} {
		if _, err := Dial(target, token); err == nil || !strings.Contains(err.Error(), "plain text") {
			t.Errorf("Dial(%q) with a token and no TLS: %v", target, err)
		}
		c, err := Dial(target, token, WithInsecureToken())
		if err != nil {
			t.Errorf("Dial(%q) with WithInsecureToken: %v", target, err)
		} else {
			c.Close()
		}
	}
	for _, target := range []string{"127.0.0.1:50051", "localhost:1", "[::1]:1", "127.9.9.9:5", "unix:/tmp/s"} {
		c, err := Dial(target, token)
		if err != nil {
			t.Errorf("Dial(%q) on loopback: %v", target, err)
			continue
		}
		c.Close()
	}
	if c, err := Dial("db.example:50051"); err != nil {
		t.Errorf("no token, no TLS: %v", err)
	} else {
		c.Close()
	}
}
