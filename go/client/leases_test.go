package client

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestLeases drives the four lease calls against the Python server.
func TestLeases(t *testing.T) {
	c := dial(t, mainServer(t), WithToken(testToken))
	ctx := testContext(t)
	const session = "go-lease"

	if lease, err := c.GetLease(ctx, session); err != nil || lease != nil {
		t.Fatalf("GetLease of a session without a lease: %v, %v; want nil, nil", lease, err)
	}

	before := time.Now()
	first, err := c.AcquireLease(ctx, session, "worker-a:1", 30*time.Second)
	if err != nil {
		t.Fatalf("AcquireLease: %v", err)
	}
	if first.SessionID != session || first.Holder != "worker-a:1" || first.Token == "" {
		t.Fatalf("AcquireLease gave %v", first)
	}
	if first.ExpiresAt.Before(before.Add(25*time.Second)) || first.ExpiresAt.After(time.Now().Add(35*time.Second)) {
		t.Fatalf("AcquireLease for 30 s ends at %s", first.ExpiresAt)
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if text := fmt.Sprintf(format, first); strings.Contains(text, first.Token) {
			t.Fatalf("%s of a lease shows its token: %s", format, text)
		}
		if text := fmt.Sprintf(format, *first); strings.Contains(text, first.Token) {
			t.Fatalf("%s of a lease value shows its token: %s", format, text)
		}
	}

	// A second worker is refused while the lease is live.
	_, err = c.AcquireLease(ctx, session, "worker-b:2", 30*time.Second)
	var held *LeaseHeldError
	if !asType(err, &held) {
		t.Fatalf("second AcquireLease: %v (%T), want *LeaseHeldError", err, err)
	}
	if held.SessionID != session || held.Holder != "worker-a:1" || !held.ExpiresAt.Equal(first.ExpiresAt) {
		t.Fatalf("LeaseHeldError %+v, want holder worker-a:1 until %s", held, first.ExpiresAt)
	}
	if strings.Contains(err.Error(), first.Token) {
		t.Fatalf("LeaseHeldError shows the token: %v", err)
	}

	// GetLease shows the lease without its token.
	got, err := c.GetLease(ctx, session)
	if err != nil || got == nil {
		t.Fatalf("GetLease: %v, %v", got, err)
	}
	if got.Token != "" || got.Holder != "worker-a:1" || !got.ExpiresAt.Equal(first.ExpiresAt) {
		t.Fatalf("GetLease gave %v (token empty: %t)", got, got.Token == "")
	}

	renewed, err := c.RenewLease(ctx, first, time.Hour)
	if err != nil {
		t.Fatalf("RenewLease: %v", err)
	}
	if renewed.Token != first.Token || !renewed.ExpiresAt.After(first.ExpiresAt.Add(50*time.Minute)) {
		t.Fatalf("RenewLease for an hour gave %v (first %v)", renewed, first)
	}

	if err := c.ReleaseLease(ctx, renewed); err != nil {
		t.Fatalf("ReleaseLease: %v", err)
	}
	if err := c.ReleaseLease(ctx, renewed); err != nil {
		t.Fatalf("second ReleaseLease: %v, want success", err)
	}
	if lease, err := c.GetLease(ctx, session); err != nil || lease != nil {
		t.Fatalf("GetLease after release: %v, %v; want nil, nil", lease, err)
	}

	_, err = c.RenewLease(ctx, renewed, 30*time.Second)
	var lost *LeaseLostError
	if !asType(err, &lost) || lost.SessionID != session {
		t.Fatalf("RenewLease of a released lease: %v (%T), want *LeaseLostError", err, err)
	}
	if strings.Contains(err.Error(), first.Token) {
		t.Fatalf("LeaseLostError shows the token: %v", err)
	}

	// Once released, another worker takes the session; the old lease's
	// release changes nothing.
	second, err := c.AcquireLease(ctx, session, "worker-b:2", 30*time.Second)
	if err != nil {
		t.Fatalf("AcquireLease after release: %v", err)
	}
	if second.Token == first.Token {
		t.Fatal("a new lease reuses the old token")
	}
	if err := c.ReleaseLease(ctx, first); err != nil {
		t.Fatalf("ReleaseLease of a lease taken over: %v", err)
	}
	if got, err := c.GetLease(ctx, session); err != nil || got == nil || got.Holder != "worker-b:2" {
		t.Fatalf("GetLease after an old release: %v, %v; want worker-b:2's lease", got, err)
	}
	if err := c.ReleaseLease(ctx, second); err != nil {
		t.Fatalf("ReleaseLease: %v", err)
	}
}

// TestLeaseRefusals: bad holders and ttls are refused before anything is
// sent: a client of an address where nothing listens refuses them too.
func TestLeaseRefusals(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := listener.Addr().String()
	_ = listener.Close() // nothing listens there now
	dead, err := Dial(deadAddr, WithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	c := dial(t, mainServer(t), WithToken(testToken))
	ctx := testContext(t)
	const session = "go-lease-refused"

	holders := map[string]string{
		"empty":     "",
		"too long":  strings.Repeat("é", 129),
		"newline":   "host\n1",
		"DEL":       "host\x7f",
		"C1":        "host\u0085",
		"not UTF-8": "host\xff",
	}
	for name, holder := range holders {
		for _, client := range []*Client{c, dead} {
			_, err := client.AcquireLease(ctx, session, holder, time.Minute)
			var invalid *InvalidRequestError
			if !asType(err, &invalid) || invalid.Field != "holder" {
				t.Errorf("holder %s: %v (%T), want *InvalidRequestError on holder", name, err, err)
			}
		}
	}
	if _, err := c.AcquireLease(ctx, session, strings.Repeat("h", MaxHolderBytes), time.Minute); err != nil {
		t.Fatalf("a holder of %d bytes: %v", MaxHolderBytes, err)
	}
	lease, err := c.GetLease(ctx, session)
	if err != nil || lease == nil {
		t.Fatalf("GetLease: %v, %v", lease, err)
	}

	for _, ttl := range []time.Duration{0, -time.Second, MaxLeaseTTL + time.Nanosecond} {
		_, err := c.AcquireLease(ctx, "go-lease-ttl", "worker", ttl)
		var invalid *InvalidRequestError
		if !asType(err, &invalid) || invalid.Field != "ttl" {
			t.Errorf("ttl %s: %v (%T), want *InvalidRequestError on ttl", ttl, err, err)
		}
		if _, err := dead.AcquireLease(ctx, "go-lease-ttl", "worker", ttl); !asType(err, &invalid) || invalid.Field != "ttl" {
			t.Errorf("ttl %s, nothing listening: %v (%T), want *InvalidRequestError on ttl", ttl, err, err)
		}
		if _, err := dead.RenewLease(ctx, &Lease{SessionID: "go-lease-ttl", Token: "0123456789abcdef0123456789abcdef"}, ttl); !asType(err, &invalid) || invalid.Field != "ttl" {
			t.Errorf("RenewLease with ttl %s: %v (%T), want *InvalidRequestError on ttl", ttl, err, err)
		}
	}
	if got, err := c.GetLease(ctx, "go-lease-ttl"); err != nil || got != nil {
		t.Fatalf("a refused AcquireLease left a lease: %v, %v", got, err)
	}

	// A token no store gives is lost without a call; releasing it does nothing.
	if _, err := dead.RenewLease(ctx, &Lease{SessionID: session}, time.Minute); !asType(err, new(*LeaseLostError)) {
		t.Fatalf("RenewLease without a token: %v (%T), want *LeaseLostError", err, err)
	}
	if err := dead.ReleaseLease(ctx, &Lease{SessionID: session}); err != nil {
		t.Fatalf("ReleaseLease without a token: %v", err)
	}
}
