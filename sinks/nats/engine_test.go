package nats_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-cdc/sluice/components"
	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/internal/filerun"
	"github.com/sluice-cdc/sluice/internal/natstest"
	natssink "github.com/sluice-cdc/sluice/sinks/nats"
	filesource "github.com/sluice-cdc/sluice/sources/file"
	"github.com/sluice-cdc/sluice/transforms"
)

// TestEngineFileToNATSTwice runs a file of native events through the
// engine into the sink, built from its block by the registry, twice (the
// second run finds everything in the stream) and then with more lines:
// the stream holds every event once, in order.
func TestEngineFileToNATSTwice(t *testing.T) {
	url, js := natstest.URL(), natstest.Connect(t) // closed after the stream's deletion below: cleanups run last first
	pipeline := fmt.Sprintf("e%d", time.Now().UnixNano()%1_000_000_000)
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), natssink.DefaultStream(pipeline)) })

	dir := t.TempDir()
	src := fmt.Sprintf(`
pipeline %q { state = %q }
source "file" "in" { path = %q }
transform "public" {
  from    = source.in
  exclude = ["password"]
}
sink "nats" "events" {
  from   = transform.public
  url    = %q
  format = "native"
}
`, pipeline, filepath.Join(dir, "state.db"), filepath.Join(dir, "in.jsonl"), url)
	run := filerun.Runner(t, src, components.Kinds{
		Sources:   map[string]func(engine.Build, *dsl.Source) (engine.Source, error){"file": filesource.New},
		Sinks:     map[string]func(engine.Build, *dsl.Sink) (engine.Sink, error){"nats": natssink.New},
		Transform: transforms.New,
	})
	filerun.AppendUsers(t, filepath.Join(dir, "in.jsonl"), 0, 300)
	run()
	run()
	filerun.AppendUsers(t, filepath.Join(dir, "in.jsonl"), 300, 500)
	run()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, natssink.DefaultStream(pipeline))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var last change.Position
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		id := m.Header.Get(jetstream.MsgIDHeader)
		if seen[id] {
			t.Errorf("message %s is in the stream twice", id)
		}
		_, at, _ := strings.Cut(id, "@")
		pos, err := change.ParsePosition(change.Stream{Source: "in"}, at)
		if err != nil {
			t.Fatalf("message %d: Nats-Msg-Id %q: %v", seq, id, err)
		}
		if len(seen) > 0 && pos.Compare(last) <= 0 {
			t.Errorf("message %s after %s", id, last)
		}
		seen[id], last = true, pos
		if strings.Contains(string(m.Data), "hunter2") {
			t.Errorf("an excluded column reached NATS: %s", m.Data)
		}
	}
	if len(seen) != 500 {
		t.Fatalf("the stream holds %d distinct messages (of %d), want 500", len(seen), info.State.Msgs)
	}
}
