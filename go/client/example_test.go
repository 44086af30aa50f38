package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/dsxir/dsxir-checkpoint/go/client"
	v1 "github.com/dsxir/dsxir-checkpoint/go/dsxir/optimizer_session/v1"
)

// A worker resumes a session, commits on the generation it read, and reads
// again after a conflict. (Compiled, not run: it needs a server.)
func Example() {
	ctx := context.Background()
	c, err := client.Dial("127.0.0.1:50051", client.WithToken("a-token-of-16-chars-or-more"))
	if err != nil {
		panic(err)
	}
	defer c.Close()

	cp, gen, err := c.Get(ctx, "s1")
	var notFound *client.NotFoundError
	if errors.As(err, &notFound) {
		return // nothing to resume
	} else if err != nil {
		panic(err)
	}
	cp.Progress.Attempts++
	if _, err := c.Put(ctx, cp, gen); err != nil {
		var conflict *client.ConflictError
		if errors.As(err, &conflict) {
			fmt.Println("another worker committed generation", conflict.Actual)
		}
	}

	running, err := c.List(ctx, client.ListFilter{
		Status:       v1.SessionStatus_SESSION_STATUS_RUNNING,
		UpdatedSince: time.Now().Add(-time.Hour),
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(running), "sessions running")

	w, err := c.Watch(ctx, "s1")
	if err != nil {
		panic(err)
	}
	defer w.Close()
	for {
		ev, err := w.Recv()
		if err == io.EOF {
			return
		} else if err != nil {
			panic(err)
		}
		fmt.Println(ev.Type, ev.Session.GetGeneration())
	}
}
