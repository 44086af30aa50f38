package client

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	checkpointstorev1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/checkpoint_store/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
)

// MaxHolderBytes is the longest holder name a store accepts, in bytes of UTF-8.
const MaxHolderBytes = 256

// MaxLeaseTTL is the longest lease a store grants.
const MaxLeaseTTL = 24 * time.Hour

// maxTokenBytes is the longest lease token a request may carry.
const maxTokenBytes = 256

// Lease is a worker's hold on a session until ExpiresAt (UTC, on the
// server's clock). Token is the secret handle that renews and releases it;
// it is empty in what GetLease returns, and String and GoString leave it
// out, so a logged or printed lease never shows it. Holder is the name the
// worker gave itself (e.g. "host:pid"), shown to the workers it refuses.
type Lease struct {
	SessionID string
	Holder    string
	Token     string
	ExpiresAt time.Time
}

// String describes the lease without its token.
func (l Lease) String() string {
	return fmt.Sprintf("Lease(session %q, holder %q, expires %s)", l.SessionID, l.Holder,
		l.ExpiresAt.UTC().Format(time.RFC3339Nano))
}

// GoString is String, so that %#v does not show the token either.
func (l Lease) GoString() string { return l.String() }

// Expired tells whether the lease has ended at now.
func (l Lease) Expired(now time.Time) bool { return !l.ExpiresAt.After(now) }

// AcquireLease takes the lease of sessionID for ttl, measured on the
// server's clock: granted when nobody holds it or the current lease has
// expired. Another worker's live lease is a *LeaseHeldError naming its
// holder and end. holder (non-empty, at most MaxHolderBytes bytes of UTF-8,
// no control characters) and ttl (positive, at most MaxLeaseTTL) are
// checked before anything is sent (*InvalidRequestError). The session need
// not exist yet.
func (c *Client) AcquireLease(ctx context.Context, sessionID, holder string, ttl time.Duration) (*Lease, error) {
	if err := checkHolder(holder); err != nil {
		return nil, err
	}
	if err := checkTTL(ttl); err != nil {
		return nil, err
	}
	ctx, cancel := c.unaryContext(ctx)
	defer cancel()
	response, err := c.stub.AcquireLease(ctx, &checkpointstorev1.AcquireLeaseRequest{
		SessionId: sessionID, Holder: holder, Ttl: durationpb.New(ttl),
	})
	if err != nil {
		return nil, fromStatus(err, sessionID)
	}
	return granted(response.GetLease(), sessionID)
}

// RenewLease extends a lease the caller holds to now + ttl (server's
// clock) and returns it with its new end. A lease that is no longer the
// session's (released, or expired and taken over) is a *LeaseLostError;
// so is one whose token no store gives (empty or too long), without a
// call. ttl is checked as AcquireLease checks it.
func (c *Client) RenewLease(ctx context.Context, lease *Lease, ttl time.Duration) (*Lease, error) {
	if lease == nil {
		return nil, errors.New("client: RenewLease needs a lease")
	}
	if err := checkTTL(ttl); err != nil {
		return nil, err
	}
	if !plausibleToken(lease.Token) {
		return nil, &LeaseLostError{SessionID: lease.SessionID, Detail: "not a lease token of this store"}
	}
	ctx, cancel := c.unaryContext(ctx)
	defer cancel()
	response, err := c.stub.RenewLease(ctx, &checkpointstorev1.RenewLeaseRequest{
		SessionId: lease.SessionID, Token: lease.Token, Ttl: durationpb.New(ttl),
	})
	if err != nil {
		return nil, fromStatus(err, lease.SessionID)
	}
	return granted(response.GetLease(), lease.SessionID)
}

// ReleaseLease gives a lease up. Releasing a lease that is no longer the
// session's (already released, or taken over) succeeds and changes nothing.
func (c *Client) ReleaseLease(ctx context.Context, lease *Lease) error {
	if lease == nil {
		return errors.New("client: ReleaseLease needs a lease")
	}
	if !plausibleToken(lease.Token) {
		return nil // never the session's lease
	}
	ctx, cancel := c.unaryContext(ctx)
	defer cancel()
	_, err := c.stub.ReleaseLease(ctx, &checkpointstorev1.ReleaseLeaseRequest{
		SessionId: lease.SessionID, Token: lease.Token,
	})
	if err != nil {
		return fromStatus(err, lease.SessionID)
	}
	return nil
}

// GetLease returns the session's lease (expired or not) without its token,
// or nil when the session has none.
func (c *Client) GetLease(ctx context.Context, sessionID string) (*Lease, error) {
	ctx, cancel := c.unaryContext(ctx)
	defer cancel()
	response, err := c.stub.GetLease(ctx, &checkpointstorev1.GetLeaseRequest{SessionId: sessionID})
	if err != nil {
		return nil, fromStatus(err, sessionID)
	}
	if response.GetLease() == nil {
		return nil, nil
	}
	lease, err := leaseOf(response.GetLease())
	if err != nil {
		return nil, err
	}
	if lease.SessionID != sessionID {
		return nil, invalidLease("the server sent another session's lease")
	}
	lease.Token = ""
	return lease, nil
}

// granted is the lease of an AcquireLease or RenewLease response: one of
// the session, with a token.
func granted(message *checkpointstorev1.Lease, sessionID string) (*Lease, error) {
	if message == nil {
		return nil, invalidLease("the server sent no lease of the session")
	}
	lease, err := leaseOf(message)
	if err != nil {
		return nil, err
	}
	if lease.SessionID != sessionID || lease.Token == "" {
		return nil, invalidLease("the server sent no lease of the session")
	}
	return lease, nil
}

// leaseOf converts a Lease message; an end outside the years 1 to 9999 or
// a holder a store refuses is an error (INTERNAL), as the Python client
// answers it.
func leaseOf(message *checkpointstorev1.Lease) (*Lease, error) {
	stamp := message.GetExpiresAt()
	if stamp == nil {
		return nil, invalidLease("the server sent a lease without expires_at")
	}
	if err := stamp.CheckValid(); err != nil {
		return nil, invalidLease("the server sent an invalid lease: expires_at is not a valid time")
	}
	if message.GetHolder() != "" {
		if err := checkHolder(message.GetHolder()); err != nil {
			return nil, invalidLease("the server sent an invalid lease: holder is refused")
		}
	}
	return &Lease{
		SessionID: message.GetSessionId(),
		Holder:    message.GetHolder(),
		Token:     message.GetToken(),
		ExpiresAt: stamp.AsTime().UTC(),
	}, nil
}

func invalidLease(message string) error {
	return &ServiceError{Code: codes.Internal, Message: message}
}

// checkHolder refuses a holder name a store refuses.
func checkHolder(holder string) error {
	if holder == "" {
		return localInvalidRequest("holder", "must not be empty")
	}
	if len(holder) > MaxHolderBytes {
		return localInvalidRequest("holder", fmt.Sprintf("is %d bytes of UTF-8, over the limit of %d", len(holder), MaxHolderBytes))
	}
	if !utf8.ValidString(holder) {
		return localInvalidRequest("holder", "is not valid UTF-8")
	}
	for _, r := range holder {
		if r <= 0x1f || (r >= 0x7f && r <= 0x9f) {
			return localInvalidRequest("holder", fmt.Sprintf("contains the control character U+%04X", r))
		}
	}
	return nil
}

// checkTTL refuses a lease length a store does not grant.
func checkTTL(ttl time.Duration) error {
	if ttl <= 0 || ttl > MaxLeaseTTL {
		return localInvalidRequest("ttl", fmt.Sprintf("must be in (0, %s], got %s", MaxLeaseTTL, ttl))
	}
	return nil
}

// plausibleToken tells whether a token could be one a store gave.
func plausibleToken(token string) bool {
	return token != "" && len(token) <= maxTokenBytes
}
