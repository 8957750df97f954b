package nats_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/internal/natstest"
	natssink "github.com/sluice-cdc/sluice/sinks/nats"
	"github.com/sluice-cdc/sluice/sinks/sinktest"
)

// acceptanceRun numbers the acceptance cases' streams apart.
var acceptanceRun atomic.Int64

// TestAcceptance runs the acceptance kit every sink passes against the
// test server, each case with a stream of its own, in the default
// Debezium format, read back by sequence. The sink refuses an event whose
// message is over the server's max_payload (1 MiB by default).
func TestAcceptance(t *testing.T) {
	sinktest.Run(t, sinktest.Factory{
		Name: "nats",
		Kind: sinktest.Log,
		NewTarget: func(t *testing.T) *sinktest.Target {
			js := natstest.Connect(t)
			name := fmt.Sprintf("acc%d_%d", time.Now().UnixNano()%1_000_000_000, acceptanceRun.Add(1))
			t.Cleanup(func() { _ = js.DeleteStream(context.Background(), name) })
			block := &dsl.Sink{Type: "nats", Name: "events", Config: &natssink.Config{
				URL: natstest.URL(), Subject: name + ".{schema}.{table}", Format: "debezium",
				Stream: name, CreateStream: true, Subjects: []string{name + ".>"}, Retention: "limits",
				Replicas: 1, DuplicateWindow: 2 * time.Minute,
			}}
			return &sinktest.Target{
				New:      func(b engine.Build) (engine.Sink, error) { return natssink.New(b, block) },
				Messages: func(t *testing.T) []sinktest.Message { return streamMessages(t, js, name) },
			}
		},
		Reject: func(e change.Event) change.Event {
			after := e.After.Clone()
			after.Set("note", strings.Repeat("x", 2<<20))
			e.After = after
			return e
		},
		Truncate: sinktest.TruncateMessage,
		Keyless:  true,
	})
}

// streamMessages reads every message of the stream, in sequence order.
func streamMessages(t *testing.T, js jetstream.JetStream, stream string) []sinktest.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []sinktest.Message
	for seq := s.CachedInfo().State.FirstSeq; seq <= s.CachedInfo().State.LastSeq && seq > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("message %d of %s: %v", seq, stream, err)
		}
		if len(m.Data) == 0 { // a control message (Forget's marker)
			continue
		}
		msg, err := sinktest.DecodeDebezium(nil, m.Data)
		if err != nil {
			t.Fatalf("message %d of %s: %v: %s", seq, stream, err, m.Data)
		}
		out = append(out, msg)
	}
	return out
}
