package client

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/dsxir/dsxir-checkpoint/go/checkpoint"
	checkpointstorev1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/checkpoint_store/v1"
	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Event is one event of a watched session.
type Event struct {
	// Type is WATCH_EVENT_TYPE_INITIAL (always first: the session when the
	// watch started), WATCH_EVENT_TYPE_COMMITTED or WATCH_EVENT_TYPE_DELETED.
	Type checkpointstorev1.WatchEventType
	// SessionID is the session the event is about.
	SessionID string
	// Session is the session's summary after the event: nil for a deleted
	// session, and for the initial event of a session that did not exist.
	Session *checkpointstorev1.SessionSummary
	// Checkpoint is the session's checkpoint after the event, with
	// WatchCheckpoints only: set on every COMMITTED event and on the INITIAL
	// event of a session that exists, nil otherwise. Treat it as read-only:
	// the watch applies the next delta to it.
	Checkpoint *v1.Checkpoint
	// Generation is the generation of Checkpoint (0 when it is nil).
	Generation uint64
}

// Watch is the stream of events of one session; call Recv until it returns
// an error, and Close when done.
type Watch struct {
	stream      grpc.ClientStream
	ctx         context.Context
	cancel      context.CancelFunc
	sessionID   string
	checkpoints bool
	current     *v1.Checkpoint // the checkpoint of the last event (WatchCheckpoints)
	generation  uint64         // its generation
	broken      error          // the error of events that could not be followed
}

// Watch starts watching a session (it need not exist yet): first one
// initial event with the session as it is, then one event on every later
// commit and delete, in commit order. Once the initial event has arrived no
// later commit can be missed. The stream has no deadline; cancelling ctx or
// calling Close ends it.
func (c *Client) Watch(ctx context.Context, sessionID string) (*Watch, error) {
	return c.watch(ctx, sessionID, false)
}

// WatchCheckpoints watches a session as Watch does, with the session's
// checkpoint in every event that has one (Event.Checkpoint and
// Event.Generation), kept without reading it again (WATCH_VIEW_CHECKPOINT):
// the initial event brings the whole checkpoint, and each commit either a
// delta (FORMAT.md §13) that the watch applies to the checkpoint of the
// previous event or the whole new checkpoint. Every checkpoint received is
// checked with checkpoint.Decode, every delta with checkpoint.DecodeDelta and
// checkpoint.ApplyDelta, and a delta must be based on the previous event's
// generation; events that break this end the watch with a *CorruptStoreError.
func (c *Client) WatchCheckpoints(ctx context.Context, sessionID string) (*Watch, error) {
	return c.watch(ctx, sessionID, true)
}

func (c *Client) watch(ctx context.Context, sessionID string, checkpoints bool) (*Watch, error) {
	ctx, cancel := context.WithCancel(ctx)
	request := &checkpointstorev1.WatchSessionRequest{SessionId: sessionID}
	if checkpoints {
		request.View = checkpointstorev1.WatchView_WATCH_VIEW_CHECKPOINT
	}
	stream, err := c.conn.NewStream(ctx, &checkpointstorev1.CheckpointStoreService_ServiceDesc.Streams[0],
		checkpointstorev1.CheckpointStoreService_WatchSession_FullMethodName, grpc.ForceCodec(codec{}))
	if err == nil {
		err = stream.SendMsg(request)
	}
	if err == nil {
		err = stream.CloseSend()
	}
	if err != nil {
		cancel()
		return nil, fromStatus(err, sessionID)
	}
	return &Watch{stream: stream, ctx: ctx, cancel: cancel, sessionID: sessionID, checkpoints: checkpoints}, nil
}

// Recv waits for the next event. It returns io.EOF once the watch was
// closed or its context ended (events received but not yet read are then
// dropped), and the typed error of the status that
// ended the stream otherwise: an *UnavailableError when the server shuts
// down or its commit feed is interrupted, a *ServiceError with code ABORTED
// (reason WATCH_OVERFLOW) for a watcher that fell too far behind, an
// *UnauthenticatedError without a valid token, a *CorruptStoreError for an
// event that cannot be read or (WatchCheckpoints) followed, which ends the
// watch. Watch again after an error: the initial event gives the current
// state.
func (w *Watch) Recv() (*Event, error) {
	if w.broken != nil {
		return nil, w.broken
	}
	if w.ctx.Err() != nil {
		return nil, io.EOF
	}
	raw := &rawMessage{}
	err := w.stream.RecvMsg(raw)
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		mapped := fromStatus(err, w.sessionID)
		if w.ctx.Err() != nil || isCanceled(mapped) {
			return nil, io.EOF
		}
		return nil, mapped
	}
	ev, err := w.event(raw.data)
	if err != nil {
		w.broken = err
		w.cancel()
		return nil, err
	}
	return ev, nil
}

// Close ends the stream; a Recv waiting then returns io.EOF.
func (w *Watch) Close() { w.cancel() }

// WatchSessionResponse field numbers.
const (
	eventType       protowire.Number = 1
	eventSession    protowire.Number = 2
	eventSessionID  protowire.Number = 3
	eventCheckpoint protowire.Number = 4
	eventDelta      protowire.Number = 5
)

// event reads a WatchSessionResponse, keeping the checkpoint or delta as
// the bytes the server sent, and (WatchCheckpoints) follows the checkpoint.
func (w *Watch) event(b []byte) (*Event, error) {
	corrupt := func(detail string) error { return &CorruptStoreError{Path: w.sessionID, Detail: detail} }
	ev := &Event{}
	var session, body []byte
	hasSession := false
	state := protowire.Number(0)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, corrupt("the server sent an unreadable event: " + protowire.ParseError(n).Error())
		}
		b = b[n:]
		switch {
		case num == eventType && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			ev.Type, n = checkpointstorev1.WatchEventType(int32(v)), m
		case num == eventSessionID && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			ev.SessionID, n = string(v), m
		case num == eventSession && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			session, hasSession, n = append(session, v...), true, m
		case (num == eventCheckpoint || num == eventDelta) && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if state != 0 && state != num {
				return nil, corrupt("the server sent an event with both a checkpoint and a delta")
			}
			state, body, n = num, append(body, v...), m
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return nil, corrupt("the server sent an unreadable event: " + protowire.ParseError(n).Error())
		}
		b = b[n:]
	}
	if hasSession {
		ev.Session = &checkpointstorev1.SessionSummary{}
		if err := proto.Unmarshal(session, ev.Session); err != nil {
			return nil, corrupt("the server sent an unreadable summary: " + err.Error())
		}
	}
	if w.checkpoints {
		if err := w.follow(ev, state, body); err != nil {
			return nil, corrupt(err.Error())
		}
	}
	return ev, nil
}

// follow sets the event's checkpoint from the state it carries (field
// eventCheckpoint or eventDelta, or none) and the checkpoint of the previous
// event, and keeps it for the next event.
func (w *Watch) follow(ev *Event, state protowire.Number, body []byte) error {
	switch ev.Type {
	case checkpointstorev1.WatchEventType_WATCH_EVENT_TYPE_DELETED:
		if state != 0 {
			return errors.New("the server sent a state with a delete event")
		}
		w.current, w.generation = nil, 0
		return nil
	case checkpointstorev1.WatchEventType_WATCH_EVENT_TYPE_INITIAL:
		if ev.Session == nil && state == 0 { // the session does not exist
			w.current, w.generation = nil, 0
			return nil
		}
	case checkpointstorev1.WatchEventType_WATCH_EVENT_TYPE_COMMITTED:
	default:
		return fmt.Errorf("the server sent an event of type %v", ev.Type)
	}
	if ev.Session == nil || ev.Session.GetGeneration() < 1 {
		return fmt.Errorf("the server sent a %v event without the summary of a generation", ev.Type)
	}
	generation := uint64(ev.Session.GetGeneration())
	var cp *v1.Checkpoint
	switch state {
	case eventCheckpoint:
		decoded, err := checkpoint.Decode(body)
		if err != nil {
			return fmt.Errorf("the server sent an invalid checkpoint: %w", err)
		}
		cp = decoded
	case eventDelta:
		if ev.Type != checkpointstorev1.WatchEventType_WATCH_EVENT_TYPE_COMMITTED {
			return fmt.Errorf("the server sent a delta with a %v event", ev.Type)
		}
		d, err := checkpoint.DecodeDelta(body)
		if err != nil {
			return fmt.Errorf("the server sent an invalid delta: %w", err)
		}
		if w.current == nil || d.GetBaseGeneration() != w.generation {
			return fmt.Errorf("the server sent a delta on generation %d, the previous event's checkpoint is generation %s",
				d.GetBaseGeneration(), generationText(w.generation))
		}
		next, _, err := checkpoint.ApplyDelta(w.current, d)
		if err != nil {
			return fmt.Errorf("the server sent a delta that does not apply to generation %d: %w", w.generation, err)
		}
		cp = next
	default:
		return fmt.Errorf("the server sent a %v event without a checkpoint or a delta", ev.Type)
	}
	if cp.GetSessionId() != w.sessionID {
		return errors.New("the server sent another session")
	}
	w.current, w.generation = cp, generation
	ev.Checkpoint, ev.Generation = cp, generation
	return nil
}
