// Package client is a client of CheckpointStoreService, the checkpoint
// store served over gRPC (docs/service.md; the Python server runs with
// `dsxir-checkpoint serve`).
//
// It keeps the semantics of the Python client and of a local store: every
// commit is compare-and-swap on the session's generation, checkpoints are
// validated and encoded canonically with checkpoint.Encode before they are
// sent (deltas with checkpoint.EncodeDelta), checkpoints read back are
// checked with checkpoint.Decode (deltas received with checkpoint.DecodeDelta
// and checkpoint.ApplyDelta), and the server's status codes come back as
// typed errors (errors.As):
//
//	*NotFoundError                 NOT_FOUND, SESSION_NOT_FOUND
//	*ConflictError                 ABORTED, GENERATION_CONFLICT
//	*checkpoint.InvalidDelta       INVALID_ARGUMENT, INVALID_CHECKPOINT with subject "delta" (Path: the delta's field)
//	*checkpoint.InvalidCheckpoint  INVALID_ARGUMENT, INVALID_CHECKPOINT (Path: the FORMAT.md field)
//	*InvalidSessionIDError         INVALID_ARGUMENT, INVALID_SESSION_ID
//	*CorruptStoreError             DATA_LOSS, CORRUPT_STORE (or a damaged checkpoint received)
//	*IllegalHistoryError           FAILED_PRECONDITION, ILLEGAL_HISTORY (Rule: the FORMAT.md §9.1 rule)
//	*LeaseHeldError                FAILED_PRECONDITION, LEASE_HELD (Holder, ExpiresAt)
//	*LeaseLostError                FAILED_PRECONDITION, LEASE_LOST
//	*InvalidRequestError           any other INVALID_ARGUMENT
//	*UnavailableError              UNAVAILABLE, DEADLINE_EXCEEDED
//	*UnauthenticatedError          UNAUTHENTICATED, PERMISSION_DENIED
//	*ResourceExhaustedError        RESOURCE_EXHAUSTED
//	*ServiceError                  any other status
//
// The four errors before *ServiceError wrap one (code, ErrorInfo reason,
// message), so errors.As finds a *ServiceError for them too. The reasons are
// the names of checkpointstorev1.ErrorReason values (package
// github.com/dsxir/dsxir-checkpoint/go/dsxir/checkpoint_store/v1, which also
// holds the service's messages), in ErrorInfos of domain Domain; compare with
// e.g. checkpointstorev1.ErrorReason_WATCH_OVERFLOW.String().
//
// Leases (AcquireLease, RenewLease, ReleaseLease, GetLease) keep a session
// to one worker at a time, as the stores' leases do (docs/stores.md); a
// Lease's token is never shown by its String or by the errors.
//
// Nothing is retried behind the caller's back: a commit that fails with
// *UnavailableError may or may not have been made, so read the session and
// compare generations before trying again.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"time"

	"github.com/dsxir/dsxir-checkpoint/go/checkpoint"
	checkpointstorev1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/checkpoint_store/v1"
	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// MessageLimit is the largest message the client sends or accepts: the
// largest checkpoint a reader accepts plus 64 KiB for the rest of a message,
// as the server's own ceiling.
const MessageLimit = checkpoint.MaxInputSize + 64*1024

// DefaultTimeout bounds every unary call unless WithTimeout says otherwise.
const DefaultTimeout = 60 * time.Second

// maxPageSize is the largest page ListSessions returns.
const maxPageSize = 1000

const minTokenChars = 16

// Option configures Dial.
type Option func(*config) error

type config struct {
	token    string
	insecure bool
	tls      *tls.Config
	timeout  time.Duration
	dialOpts []grpc.DialOption
}

// WithToken sends token as a bearer token (metadata "authorization: Bearer
// <token>") on every call, as the server's --token-file/--token-env ask.
// Like the server, it refuses tokens shorter than 16 characters or with
// characters other than printable ASCII without spaces. Without WithTLS,
// Dial refuses to send it to a host other than loopback unless
// WithInsecureToken is given too.
func WithToken(token string) Option {
	return func(c *config) error {
		if len(token) < minTokenChars {
			return fmt.Errorf("client: a token must have at least %d characters", minTokenChars)
		}
		for i := 0; i < len(token); i++ {
			if token[i] < 0x21 || token[i] > 0x7e {
				return errors.New("client: a token must be printable ASCII without spaces")
			}
		}
		c.token = token
		return nil
	}
}

// WithInsecureToken lets WithToken's token travel in plain text to a host
// other than loopback (anyone on the path can read it). Without it, Dial
// refuses that combination.
func WithInsecureToken() Option {
	return func(c *config) error {
		c.insecure = true
		return nil
	}
}

// WithTLS connects over TLS with cfg (its RootCAs, ServerName and client
// Certificates); plaintext without it.
func WithTLS(cfg *tls.Config) Option {
	return func(c *config) error {
		if cfg == nil {
			return errors.New("client: WithTLS needs a *tls.Config")
		}
		c.tls = cfg
		return nil
	}
}

// WithTimeout bounds every unary call by d (DefaultTimeout without this
// option; 0: only the caller's context bounds them). Watch streams have no
// deadline but the caller's context.
func WithTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return errors.New("client: a timeout must not be negative")
		}
		c.timeout = d
		return nil
	}
}

// WithDialOptions passes further options to grpc.NewClient (after the
// client's own).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *config) error {
		c.dialOpts = append(c.dialOpts, opts...)
		return nil
	}
}

// Client calls one CheckpointStoreService. It is safe for concurrent use.
type Client struct {
	conn     *grpc.ClientConn
	stub     checkpointstorev1.CheckpointStoreServiceClient
	timeout  time.Duration
	pageSize int32
}

// Dial returns a client of the service at target ("HOST:PORT", or any
// target grpc.NewClient accepts). The connection is made lazily, on the
// first call; Close releases it.
func Dial(target string, opts ...Option) (*Client, error) {
	cfg := config{timeout: DefaultTimeout}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.token != "" && cfg.tls == nil && !cfg.insecure && !isLoopback(target) {
		return nil, fmt.Errorf("client: refusing to send the token in plain text to %s: use WithTLS, or WithInsecureToken to allow it", target)
	}
	transport := insecure.NewCredentials()
	if cfg.tls != nil {
		transport = credentials.NewTLS(cfg.tls)
	}
	dialOpts := []grpc.DialOption{
		grpc.WithTransportCredentials(transport),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MessageLimit),
			grpc.MaxCallSendMsgSize(MessageLimit),
		),
	}
	if cfg.token != "" {
		dialOpts = append(dialOpts, grpc.WithPerRPCCredentials(bearer{"Bearer " + cfg.token}))
	}
	dialOpts = append(dialOpts, cfg.dialOpts...)
	conn, err := grpc.NewClient(target, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return &Client{
		conn:     conn,
		stub:     checkpointstorev1.NewCheckpointStoreServiceClient(conn),
		timeout:  cfg.timeout,
		pageSize: maxPageSize,
	}, nil
}

// Close releases the connection; calls in flight fail.
func (c *Client) Close() error { return c.conn.Close() }

// Put commits cp under the compare-and-swap rule and returns the new
// generation. With expectedGeneration 0 it creates the session (generation
// 1); with g >= 1 it commits generation g+1 when the stored generation is
// still g. Otherwise it fails with a *ConflictError and nothing is stored.
// cp is validated and encoded with checkpoint.Encode first: a checkpoint a
// reader would refuse fails with a *checkpoint.InvalidCheckpoint before
// anything is sent.
func (c *Client) Put(ctx context.Context, cp *v1.Checkpoint, expectedGeneration uint64) (uint64, error) {
	if cp == nil {
		return 0, errors.New("client: Put needs a checkpoint")
	}
	if expectedGeneration > math.MaxInt64 {
		return 0, localInvalidRequest("expected_generation", fmt.Sprintf("must be at most %d, got %d", int64(math.MaxInt64), expectedGeneration))
	}
	body, err := checkpoint.Encode(cp)
	if err != nil {
		return 0, err
	}
	return c.putEncoded(ctx, body, cp.GetSessionId(), expectedGeneration)
}

// putEncoded sends checkpoint bytes as they are: the request is field 1
// (checkpoint) holding body, then expected_generation.
func (c *Client) putEncoded(ctx context.Context, body []byte, sessionID string, expected uint64) (uint64, error) {
	request := protowire.AppendTag(nil, 1, protowire.BytesType)
	request = protowire.AppendBytes(request, body)
	if expected != 0 {
		request = protowire.AppendTag(request, 2, protowire.VarintType)
		request = protowire.AppendVarint(request, expected)
	}
	ctx, cancel := c.unaryContext(ctx)
	defer cancel()
	response := &checkpointstorev1.PutCheckpointResponse{}
	err := c.conn.Invoke(ctx, checkpointstorev1.CheckpointStoreService_PutCheckpoint_FullMethodName,
		&rawMessage{data: request}, response, grpc.ForceCodec(codec{}))
	if err != nil {
		return 0, fromStatus(err, sessionID)
	}
	if response.GetGeneration() < 1 {
		return 0, &CorruptStoreError{Path: sessionID, Detail: fmt.Sprintf("the server answered generation %d", response.GetGeneration())}
	}
	return uint64(response.GetGeneration()), nil
}

// PutDelta commits what the delta d (FORMAT.md §13) adds to the stored
// checkpoint, under the compare-and-swap rule with d.BaseGeneration as the
// expected generation, and returns the new generation, d.BaseGeneration+1.
// A base generation that is not the stored one, or a session that does not
// exist, fails with a *ConflictError and nothing is stored. d is checked and
// encoded with checkpoint.EncodeDelta first: a delta a reader would refuse
// fails with a *checkpoint.InvalidDelta before anything is sent. A delta the
// server refuses (one that does not apply to the stored checkpoint) is a
// *checkpoint.InvalidDelta naming the delta's field, a new checkpoint that
// breaks a rule of FORMAT.md a *checkpoint.InvalidCheckpoint, one that is
// not a legal successor an *IllegalHistoryError.
func (c *Client) PutDelta(ctx context.Context, d *v1.CheckpointDelta) (uint64, error) {
	if d == nil {
		return 0, errors.New("client: PutDelta needs a delta")
	}
	body, err := checkpoint.EncodeDelta(d)
	if err != nil {
		return 0, err
	}
	return c.putDeltaEncoded(ctx, body, d.GetHead().GetSessionId(), d.GetBaseGeneration())
}

// putDeltaEncoded sends delta bytes as they are: the request is field 1
// (delta) holding body.
func (c *Client) putDeltaEncoded(ctx context.Context, body []byte, sessionID string, base uint64) (uint64, error) {
	request := protowire.AppendTag(nil, 1, protowire.BytesType)
	request = protowire.AppendBytes(request, body)
	ctx, cancel := c.unaryContext(ctx)
	defer cancel()
	response := &checkpointstorev1.PutCheckpointDeltaResponse{}
	err := c.conn.Invoke(ctx, checkpointstorev1.CheckpointStoreService_PutCheckpointDelta_FullMethodName,
		&rawMessage{data: request}, response, grpc.ForceCodec(codec{}))
	if err != nil {
		return 0, fromStatus(err, sessionID)
	}
	if g := response.GetGeneration(); g < 1 || uint64(g) != base+1 {
		return 0, &CorruptStoreError{Path: sessionID, Detail: fmt.Sprintf("the server answered generation %d to a delta on generation %d", g, base)}
	}
	return uint64(response.GetGeneration()), nil
}

// Get returns the latest committed checkpoint of a session and its
// generation (send it as the expectedGeneration of the next Put); a
// *NotFoundError when none is stored. The checkpoint is checked with
// checkpoint.Decode: one that breaks a rule of FORMAT.md, or belongs to
// another session, is a *CorruptStoreError.
func (c *Client) Get(ctx context.Context, sessionID string) (*v1.Checkpoint, uint64, error) {
	ctx, cancel := c.unaryContext(ctx)
	defer cancel()
	raw := &rawMessage{}
	err := c.conn.Invoke(ctx, checkpointstorev1.CheckpointStoreService_GetCheckpoint_FullMethodName,
		&checkpointstorev1.GetCheckpointRequest{SessionId: sessionID}, raw, grpc.ForceCodec(codec{}))
	if err != nil {
		return nil, 0, fromStatus(err, sessionID)
	}
	body, generation, err := splitGetResponse(raw.data)
	if err != nil {
		return nil, 0, &CorruptStoreError{Path: sessionID, Detail: "the server sent an unreadable response: " + err.Error()}
	}
	cp, err := checkpoint.Decode(body)
	if err != nil {
		return nil, 0, &CorruptStoreError{Path: sessionID, Detail: "the server sent an invalid checkpoint: " + err.Error()}
	}
	if cp.GetSessionId() != sessionID || generation < 1 {
		return nil, 0, &CorruptStoreError{Path: sessionID, Detail: "the server sent another session"}
	}
	return cp, uint64(generation), nil
}

// splitGetResponse reads a GetCheckpointResponse without re-encoding its
// checkpoint: the bytes of field 1 (occurrences concatenated, which is how
// protobuf merges them) and field 2.
func splitGetResponse(b []byte) (body []byte, generation int64, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, 0, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return nil, 0, protowire.ParseError(m)
			}
			body = append(body, v...)
			n = m
		case num == 2 && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return nil, 0, protowire.ParseError(m)
			}
			generation = int64(v)
			n = m
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, 0, protowire.ParseError(n)
			}
		}
		b = b[n:]
	}
	return body, generation, nil
}

// ListFilter selects sessions in List; the zero value selects every one.
// Filters combine with AND.
type ListFilter struct {
	// Status: only sessions with this status (SESSION_STATUS_UNSPECIFIED: any).
	Status v1.SessionStatus
	// Optimizer: only sessions of this optimizer, exact match (empty: any).
	Optimizer string
	// UpdatedSince: only sessions whose checkpoint's updated_at is at or
	// after this time, compared at microsecond precision (zero: any time).
	UpdatedSince time.Time
}

// List returns the summaries of every session matching filter, ordered by
// session id, reading every page (AIP-158). Summaries hold no trial log.
func (c *Client) List(ctx context.Context, filter ListFilter) ([]*checkpointstorev1.SessionSummary, error) {
	request := &checkpointstorev1.ListSessionsRequest{
		PageSize:  c.pageSize,
		Status:    filter.Status,
		Optimizer: filter.Optimizer,
	}
	if !filter.UpdatedSince.IsZero() {
		request.UpdatedSince = timestamppb.New(filter.UpdatedSince)
	}
	var found []*checkpointstorev1.SessionSummary
	for {
		response, err := c.listPage(ctx, request)
		if err != nil {
			return nil, err
		}
		found = append(found, response.GetSessions()...)
		if response.GetNextPageToken() == "" {
			return found, nil
		}
		request.PageToken = response.GetNextPageToken()
	}
}

func (c *Client) listPage(ctx context.Context, request *checkpointstorev1.ListSessionsRequest) (*checkpointstorev1.ListSessionsResponse, error) {
	ctx, cancel := c.unaryContext(ctx)
	defer cancel()
	response, err := c.stub.ListSessions(ctx, request)
	if err != nil {
		return nil, fromStatus(err, "")
	}
	return response, nil
}

// Delete forgets a session and its generation. Deleting a session that
// does not exist succeeds; a session created again starts at generation 1.
func (c *Client) Delete(ctx context.Context, sessionID string) error {
	ctx, cancel := c.unaryContext(ctx)
	defer cancel()
	if _, err := c.stub.DeleteCheckpoint(ctx, &checkpointstorev1.DeleteCheckpointRequest{SessionId: sessionID}); err != nil {
		return fromStatus(err, sessionID)
	}
	return nil
}

func (c *Client) unaryContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.timeout > 0 {
		return context.WithTimeout(ctx, c.timeout)
	}
	return context.WithCancel(ctx)
}

// isLoopback tells whether target ("HOST:PORT", "dns:///HOST:PORT",
// "unix:…") names this machine: localhost, a 127.0.0.0/8 or ::1 address, or
// a unix socket.
func isLoopback(target string) bool {
	if strings.HasPrefix(target, "unix:") || strings.HasPrefix(target, "unix-abstract:") {
		return true
	}
	if i := strings.LastIndex(target, "///"); i >= 0 {
		target = target[i+3:]
	}
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		host = target
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// bearer presents the token on every call. Dial refuses a plaintext token
// beyond loopback unless asked (WithInsecureToken), so transport security is
// checked there rather than by gRPC.
type bearer struct{ value string }

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": b.value}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// localInvalidRequest is the error of a request field refused before sending.
func localInvalidRequest(field, detail string) error {
	return &InvalidRequestError{
		ServiceError: &ServiceError{Code: codes.InvalidArgument, Reason: checkpointstorev1.ErrorReason_INVALID_REQUEST.String(), Message: field + ": " + detail},
		Field:        field,
	}
}
