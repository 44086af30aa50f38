package client

// PutDelta and WatchCheckpoints against the Python server, and
// WatchCheckpoints against a server that sends events no correct server
// sends (a gRPC server in this process that answers with fixed bytes).

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dsxir/dsxir-checkpoint/go/checkpoint"
	checkpointstorev1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/checkpoint_store/v1"
	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// successor is the checkpoint of session id after trials ok trials, minute
// minutes after baseTime: sample's checkpoints with more trials are legal
// successors of those with fewer.
func successor(t *testing.T, id string, trials uint64, minute int) *v1.Checkpoint {
	t.Helper()
	return sample(t, id, "go.delta.Opt", v1.SessionStatus_SESSION_STATUS_RUNNING, baseTime.Add(time.Duration(minute)*time.Minute), trials)
}

func mustDelta(t *testing.T, base, next *v1.Checkpoint, baseGeneration uint64) *v1.CheckpointDelta {
	t.Helper()
	d, err := checkpoint.NewDelta(base, next, baseGeneration)
	if err != nil {
		t.Fatalf("NewDelta: %v", err)
	}
	return d
}

func mustEncode(t *testing.T, cp *v1.Checkpoint) []byte {
	t.Helper()
	b, err := checkpoint.Encode(cp)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b
}

// wantStored checks that the session's stored checkpoint is want, byte for
// byte, at generation.
func wantStored(t *testing.T, c *Client, want *v1.Checkpoint, generation uint64) {
	t.Helper()
	got, g, err := c.Get(testContext(t), want.GetSessionId())
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if g != generation || !bytes.Equal(mustEncode(t, got), mustEncode(t, want)) {
		t.Fatalf("Get: generation %d and another checkpoint, want generation %d and the one committed", g, generation)
	}
}

func TestPutDelta(t *testing.T) {
	c := dial(t, mainServer(t), WithToken(testToken))
	ctx := testContext(t)
	id := "go-put-delta"
	_ = c.Delete(ctx, id)
	t.Cleanup(func() { _ = c.Delete(ctx, id) })

	// On a session that does not exist: a conflict, nothing stored.
	base := successor(t, id, 1, 0)
	_, err := c.PutDelta(ctx, mustDelta(t, base, successor(t, id, 2, 1), 1))
	wantConflict(t, err, 1, 0)

	mustPut(t, c, base, 0)
	cp, generation := base, uint64(1)
	for step, trials := range []uint64{3, 3, 6} { // a commit without new trials too
		next := successor(t, id, trials, step+1)
		g, err := c.PutDelta(ctx, mustDelta(t, cp, next, generation))
		if err != nil || g != generation+1 {
			t.Fatalf("PutDelta on generation %d: %d, %v; want %d", generation, g, err, generation+1)
		}
		wantStored(t, c, next, g)
		cp, generation = next, g
	}

	// A stale base generation: a conflict naming both generations.
	_, err = c.PutDelta(ctx, mustDelta(t, base, successor(t, id, 7, 9), 1))
	wantConflict(t, err, 1, generation)

	// A delta that does not apply to the stored checkpoint, tampered so that
	// it counts another number of base trials: the server names the field
	// under delta. and nothing is stored.
	tampered := mustDelta(t, cp, successor(t, id, 7, 9), generation)
	tampered.BaseTrials = 2
	_, err = c.PutDelta(ctx, tampered)
	var invalid *checkpoint.InvalidDelta
	if !asType(err, &invalid) || invalid.Path != "base_trials" || invalid.Rule != checkpoint.RuleDeltaBaseTrials {
		t.Fatalf("PutDelta of a delta on 2 base trials: %v (%T), want *checkpoint.InvalidDelta on base_trials, rule %s",
			err, err, checkpoint.RuleDeltaBaseTrials)
	}
	body, err := checkpoint.EncodeDelta(tampered)
	if err != nil {
		t.Fatal(err)
	}
	if field := refusedField(t, c, body); field != "delta.base_trials" {
		t.Fatalf("the server's BadRequest names %q, want delta.base_trials", field)
	}

	// Tampered bytes: one bit of the sealed delta flipped in its body.
	body = bytes.Clone(body)
	body[len(body)/2] ^= 0x01
	_, err = c.putDeltaEncoded(ctx, body, id, generation)
	if !asType(err, &invalid) || invalid.Path != checkpoint.InputPath || !strings.HasPrefix(invalid.Rule, "input.") {
		t.Fatalf("PutDelta of flipped bytes: %v (%T), want *checkpoint.InvalidDelta on %s with an input.* rule", err, err, checkpoint.InputPath)
	}
	if field := refusedField(t, c, body); field != checkpoint.InputPath {
		t.Fatalf("the server's BadRequest for flipped bytes names %q, want %s", field, checkpoint.InputPath)
	}

	// Refused locally by checkpoint.EncodeDelta: a kept bit outside the mask.
	local := mustDelta(t, cp, successor(t, id, 7, 9), generation)
	local.Kept |= 1 << 9
	_, err = c.PutDelta(ctx, local)
	if !asType(err, &invalid) || invalid.Rule != checkpoint.RuleDeltaKept {
		t.Fatalf("PutDelta with kept bit 9: %v (%T), want *checkpoint.InvalidDelta, rule %s", err, err, checkpoint.RuleDeltaKept)
	}
	wantStored(t, c, cp, generation)
}

// refusedField sends delta bytes as they are and returns the field of the
// BadRequest detail the server refuses them with.
func refusedField(t *testing.T, c *Client, body []byte) string {
	t.Helper()
	request := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), body)
	err := c.conn.Invoke(testContext(t), checkpointstorev1.CheckpointStoreService_PutCheckpointDelta_FullMethodName,
		&rawMessage{data: request}, &checkpointstorev1.PutCheckpointDeltaResponse{}, grpc.ForceCodec(codec{}))
	st, ok := status.FromError(err)
	if err == nil || !ok {
		t.Fatalf("the server took the delta: %v", err)
	}
	_, field := details(st)
	return field
}

func TestWatchCheckpoints(t *testing.T) {
	s := mainServer(t)
	watcher := dial(t, s, WithToken(testToken))
	writer := dial(t, s, WithToken(testToken))
	ctx := testContext(t)
	id := "go-watch-checkpoints"
	_ = writer.Delete(ctx, id)
	t.Cleanup(func() { _ = writer.Delete(ctx, id) })

	w, err := watcher.WatchCheckpoints(ctx, id)
	if err != nil {
		t.Fatalf("WatchCheckpoints: %v", err)
	}
	defer w.Close()
	next := func(want checkpointstorev1.WatchEventType) *Event {
		t.Helper()
		return nextEvent(t, w, id, want)
	}
	// The event's checkpoint is the one Get returns, byte for byte.
	sameAsGet := func(ev *Event) {
		t.Helper()
		if ev.Checkpoint == nil {
			t.Fatalf("%v event of generation %d has no checkpoint", ev.Type, ev.Session.GetGeneration())
		}
		stored, generation, err := writer.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Generation != generation || ev.Session.GetGeneration() != int64(generation) ||
			!bytes.Equal(mustEncode(t, ev.Checkpoint), mustEncode(t, stored)) {
			t.Fatalf("%v event: generation %d (summary %d), want the checkpoint Get returns, generation %d",
				ev.Type, ev.Generation, ev.Session.GetGeneration(), generation)
		}
	}
	if ev := next(checkpointstorev1.WatchEventType_WATCH_EVENT_TYPE_INITIAL); ev.Checkpoint != nil || ev.Generation != 0 {
		t.Fatalf("initial event of a missing session: checkpoint %v, generation %d", ev.Checkpoint, ev.Generation)
	}

	cp := successor(t, id, 1, 0)
	generation := mustPut(t, writer, cp, 0)
	sameAsGet(next(checkpointstorev1.WatchEventType_WATCH_EVENT_TYPE_COMMITTED))
	for step, trials := range []uint64{2, 4, 4, 5} {
		following := successor(t, id, trials, step+1)
		g, err := writer.PutDelta(ctx, mustDelta(t, cp, following, generation))
		if err != nil {
			t.Fatalf("PutDelta: %v", err)
		}
		sameAsGet(next(checkpointstorev1.WatchEventType_WATCH_EVENT_TYPE_COMMITTED))
		cp, generation = following, g
	}
	// A whole checkpoint committed with Put is followed too.
	cp = successor(t, id, 8, 10)
	generation = mustPut(t, writer, cp, generation)
	sameAsGet(next(checkpointstorev1.WatchEventType_WATCH_EVENT_TYPE_COMMITTED))

	// A watch of an existing session starts with its checkpoint.
	w2, err := watcher.WatchCheckpoints(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	ev, err := w2.Recv()
	if err != nil || ev.Type != checkpointstorev1.WatchEventType_WATCH_EVENT_TYPE_INITIAL {
		t.Fatalf("initial event of an existing session: %v, %v", ev, err)
	}
	sameAsGet(ev)

	// Deleted: no checkpoint; created again: generation 1, whole or as a delta on nothing.
	if err := writer.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if ev := next(checkpointstorev1.WatchEventType_WATCH_EVENT_TYPE_DELETED); ev.Checkpoint != nil || ev.Generation != 0 {
		t.Fatalf("delete event: checkpoint %v, generation %d", ev.Checkpoint, ev.Generation)
	}
	mustPut(t, writer, successor(t, id, 1, 0), 0)
	sameAsGet(next(checkpointstorev1.WatchEventType_WATCH_EVENT_TYPE_COMMITTED))
}

// fakeWatchServer serves WatchSession with events, sent as they are after
// the request, then ends the stream with OK. The view of each request is
// sent on views.
func fakeWatchServer(t *testing.T, events [][]byte) (addr string, views chan checkpointstorev1.WatchView) {
	t.Helper()
	views = make(chan checkpointstorev1.WatchView, 4)
	srv := grpc.NewServer(grpc.ForceServerCodec(codec{}), grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		raw := &rawMessage{}
		if err := stream.RecvMsg(raw); err != nil {
			return err
		}
		request := &checkpointstorev1.WatchSessionRequest{}
		if err := proto.Unmarshal(raw.data, request); err != nil {
			return err
		}
		views <- request.GetView()
		for _, e := range events {
			if err := stream.SendMsg(&rawMessage{data: e}); err != nil {
				return err
			}
		}
		return nil
	}))
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(listener) }()
	t.Cleanup(srv.Stop)
	return listener.Addr().String(), views
}

// watchEvent is the encoding of a WatchSessionResponse of session id with a
// summary of generation (none when 0) and body in field state (none when 0).
func watchEvent(id string, typ checkpointstorev1.WatchEventType, generation int64, state protowire.Number, body []byte) []byte {
	b := protowire.AppendVarint(protowire.AppendTag(nil, eventType, protowire.VarintType), uint64(typ))
	if generation > 0 {
		summary, _ := proto.Marshal(&checkpointstorev1.SessionSummary{SessionId: id, Generation: generation})
		b = protowire.AppendBytes(protowire.AppendTag(b, eventSession, protowire.BytesType), summary)
	}
	b = protowire.AppendString(protowire.AppendTag(b, eventSessionID, protowire.BytesType), id)
	if state != 0 {
		b = protowire.AppendBytes(protowire.AppendTag(b, state, protowire.BytesType), body)
	}
	return b
}

// TestWatchCheckpointsChecksEvents: a delta is applied only to the
// checkpoint of the previous event's generation, and every checkpoint and
// delta received is checked; what cannot be followed ends the watch with a
// *CorruptStoreError.
func TestWatchCheckpointsChecksEvents(t *testing.T) {
	const id = "go-fake-watch"
	initial, committed := checkpointstorev1.WatchEventType_WATCH_EVENT_TYPE_INITIAL, checkpointstorev1.WatchEventType_WATCH_EVENT_TYPE_COMMITTED
	base, next := successor(t, id, 1, 0), successor(t, id, 3, 1)
	baseBytes := mustEncode(t, base)
	deltaOn := func(from *v1.Checkpoint, generation uint64) []byte {
		b, err := checkpoint.EncodeDelta(mustDelta(t, from, next, generation))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := deltaOn(base, 1)
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x01
	other := mustEncode(t, successor(t, "go-fake-other", 1, 0))
	start := watchEvent(id, initial, 1, eventCheckpoint, baseBytes)

	// A correct server's events: the checkpoint, then a delta on it.
	addr, views := fakeWatchServer(t, [][]byte{start, watchEvent(id, committed, 2, eventDelta, good)})
	c := dial(t, &server{addr: addr})
	w, err := c.WatchCheckpoints(testContext(t), id)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i, want := range []*v1.Checkpoint{base, next} {
		ev, err := w.Recv()
		if err != nil || ev.Generation != uint64(i+1) || !bytes.Equal(mustEncode(t, ev.Checkpoint), mustEncode(t, want)) {
			t.Fatalf("event %d: %v, %v; want the checkpoint of generation %d", i, ev, err, i+1)
		}
	}
	if _, err := w.Recv(); err != ioEOF {
		t.Fatalf("Recv after the last event: %v, want io.EOF", err)
	}
	if view := <-views; view != checkpointstorev1.WatchView_WATCH_VIEW_CHECKPOINT {
		t.Fatalf("WatchCheckpoints asked for view %v", view)
	}

	for _, tc := range []struct {
		name   string
		events [][]byte
		detail string
	}{
		{"a delta on another generation", [][]byte{start, watchEvent(id, committed, 6, eventDelta, deltaOn(base, 5))}, "a delta on generation 5, the previous event's checkpoint is generation 1"},
		{"a delta with no checkpoint before it", [][]byte{watchEvent(id, initial, 0, 0, nil), watchEvent(id, committed, 2, eventDelta, good)}, "a delta on generation 1, the previous event's checkpoint is generation none"},
		{"a delta of another base", [][]byte{start, watchEvent(id, committed, 2, eventDelta, deltaOn(successor(t, id, 2, 0), 1))}, "does not apply to generation 1"},
		{"flipped delta bytes", [][]byte{start, watchEvent(id, committed, 2, eventDelta, flipped)}, "an invalid delta"},
		{"a delta in the initial event", [][]byte{watchEvent(id, initial, 2, eventDelta, good)}, "a delta with a WATCH_EVENT_TYPE_INITIAL event"},
		{"a commit without state", [][]byte{start, watchEvent(id, committed, 2, 0, nil)}, "without a checkpoint or a delta"},
		{"both a checkpoint and a delta", [][]byte{start, append(watchEvent(id, committed, 2, eventDelta, good), watchEvent(id, committed, 2, eventCheckpoint, baseBytes)...)}, "both a checkpoint and a delta"},
		{"an invalid checkpoint", [][]byte{watchEvent(id, initial, 1, eventCheckpoint, baseBytes[:len(baseBytes)-1])}, "an invalid checkpoint"},
		{"another session", [][]byte{watchEvent(id, initial, 1, eventCheckpoint, other)}, "another session"},
	} {
		addr, _ := fakeWatchServer(t, tc.events)
		c := dial(t, &server{addr: addr})
		w, err := c.WatchCheckpoints(testContext(t), id)
		if err != nil {
			t.Fatal(err)
		}
		var corrupt *CorruptStoreError
		for i := range tc.events {
			if _, err = w.Recv(); err != nil {
				break
			}
			if i == len(tc.events)-1 {
				err = errors.New("every event was taken")
			}
		}
		if !asType(err, &corrupt) || corrupt.Path != id || !strings.Contains(corrupt.Detail, tc.detail) {
			t.Errorf("%s: %v (%T), want a *CorruptStoreError on %s saying %q", tc.name, err, err, id, tc.detail)
			w.Close()
			continue
		}
		if _, again := w.Recv(); again != err {
			t.Errorf("%s: Recv after the error: %v, want the same error", tc.name, again)
		}
		w.Close()
	}

	// Watch asks for summaries and leaves the state alone.
	addr, views = fakeWatchServer(t, [][]byte{start, watchEvent(id, committed, 6, eventDelta, deltaOn(base, 5))})
	w, err = dial(t, &server{addr: addr}).Watch(testContext(t), id)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := 0; i < 2; i++ {
		if ev, err := w.Recv(); err != nil || ev.Checkpoint != nil || ev.Session.GetGeneration() != []int64{1, 6}[i] {
			t.Fatalf("Watch, event %d: %v, %v", i, ev, err)
		}
	}
	if view := <-views; view != checkpointstorev1.WatchView_WATCH_VIEW_UNSPECIFIED {
		t.Fatalf("Watch asked for view %v", view)
	}
}
