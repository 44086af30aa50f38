package client

import (
	"context"
	"io"

	checkpointstorev1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/checkpoint_store/v1"
	"google.golang.org/grpc"
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
}

// Watch is the stream of events of one session; call Recv until it returns
// an error, and Close when done.
type Watch struct {
	stream    grpc.ServerStreamingClient[checkpointstorev1.WatchSessionResponse]
	ctx       context.Context
	cancel    context.CancelFunc
	sessionID string
}

// Watch starts watching a session (it need not exist yet): first one
// initial event with the session as it is, then one event on every later
// commit and delete, in commit order. Once the initial event has arrived no
// later commit can be missed. The stream has no deadline; cancelling ctx or
// calling Close ends it.
func (c *Client) Watch(ctx context.Context, sessionID string) (*Watch, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.stub.WatchSession(ctx, &checkpointstorev1.WatchSessionRequest{SessionId: sessionID})
	if err != nil {
		cancel()
		return nil, fromStatus(err, sessionID)
	}
	return &Watch{stream: stream, ctx: ctx, cancel: cancel, sessionID: sessionID}, nil
}

// Recv waits for the next event. It returns io.EOF once the watch was
// closed or its context ended (events received but not yet read are then
// dropped), and the typed error of the status that
// ended the stream otherwise: an *UnavailableError when the server shuts
// down or its commit feed is interrupted, a *ServiceError with code ABORTED
// (reason WATCH_OVERFLOW) for a watcher that fell too far behind, an
// *UnauthenticatedError without a valid token. Watch again after an error:
// the initial event gives the current state.
func (w *Watch) Recv() (*Event, error) {
	if w.ctx.Err() != nil {
		return nil, io.EOF
	}
	response, err := w.stream.Recv()
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
	return &Event{Type: response.GetType(), SessionID: response.GetSessionId(), Session: response.GetSession()}, nil
}

// Close ends the stream; a Recv waiting then returns io.EOF.
func (w *Watch) Close() { w.cancel() }
