package observe

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/state"
)

// TestBuildPhase: the engine's phase becomes status's phase (running is
// snapshotting or streaming by the snapshot's progress, a phase left by a
// process that no longer runs is stopped unless it failed), with the
// retry, the pause and the last error.
func TestBuildPhase(t *testing.T) {
	cfg := &dsl.Config{Pipeline: dsl.Pipeline{Name: "p"}, Sources: []*dsl.Source{{Type: "kafka", Name: "k"}}}
	next := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	lastErr := &state.LastError{Time: next.Add(-time.Second), Stage: "sink.out", Error: "boom"}
	for _, tc := range []struct {
		name    string
		running bool
		run     *state.Run
		want    string
	}{
		{"never ran", false, nil, "stopped"},
		{"streaming", true, &state.Run{Phase: "running"}, "streaming"},
		{"retrying", true, &state.Run{Phase: "retrying", Attempt: 2, NextRetry: next, LastError: lastErr}, "retrying"},
		{"paused", true, &state.Run{Phase: "paused", Paused: &state.Paused{Stage: "sink.out", Error: "boom"}, LastError: lastErr}, "paused"},
		{"killed while paused", false, &state.Run{Phase: "stopped", LastError: lastErr}, "stopped"},
		{"failed", false, &state.Run{Phase: "failed", LastError: lastErr}, "failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := state.Status{Running: tc.running, Run: tc.run, Sources: map[string]state.SourceStatus{
				"k": {Kafka: []state.KafkaPartition{{Topic: "t", Partition: 0, HighWatermark: 10, Committed: 4, Lag: 6}}},
			}}
			got := Build(context.Background(), cfg, st, Options{})
			if got.Phase != tc.want {
				t.Fatalf("phase %q, want %q", got.Phase, tc.want)
			}
			if tc.run != nil && got.LastError != tc.run.LastError {
				t.Errorf("last error %v, want %v", got.LastError, tc.run.LastError)
			}
			if (got.Retry != nil) != (tc.want == "retrying") || got.Retry != nil && (got.Retry.Attempt != 2 || !got.Retry.Next.Equal(next)) {
				t.Errorf("retry %+v", got.Retry)
			}
			if (got.Paused != nil) != (tc.want == "paused") {
				t.Errorf("paused %+v", got.Paused)
			}
			if k := got.Sources[0].Kafka; len(k) != 1 || k[0].Lag != 6 {
				t.Errorf("kafka lag %+v", k)
			}
		})
	}
}

// TestServerResume: POST /resume hands a resume to a paused run (202)
// and refuses when the pipeline is not paused (409).
func TestServerResume(t *testing.T) {
	m := NewMetrics(&dsl.Config{Pipeline: dsl.Pipeline{Name: "p"}})
	srv, err := Listen("127.0.0.1:0", m, func(context.Context) (Status, error) { return Status{}, nil })
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	defer srv.Shutdown(context.Background())
	post := func() (int, string) {
		resp, err := http.Post("http://"+srv.Addr()+"/resume", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	m.Phase(engine.PhaseRunning)
	if code, body := post(); code != http.StatusConflict || !strings.Contains(body, "not paused (running)") {
		t.Fatalf("POST /resume while running: %d %q", code, body)
	}
	m.Phase(engine.PhasePaused)
	got := make(chan struct{})
	go func() { <-m.Resume(); close(got) }()
	if code, _ := post(); code != http.StatusAccepted {
		t.Fatalf("POST /resume while paused: %d", code)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the run never received the resume")
	}
}
