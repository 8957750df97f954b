package observe

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServer(t *testing.T) {
	cfg := &dsl.Config{
		Pipeline: dsl.Pipeline{Name: "p"},
		Sources:  []*dsl.Source{{Type: "file", Name: "in"}},
		Sinks:    []*dsl.Sink{{Type: "file", Name: "out"}, {Type: "file", Name: "never"}},
	}
	m := NewMetrics(cfg)
	srv, err := Listen("127.0.0.1:0", m, func(context.Context) (Status, error) {
		return Status{Pipeline: "p", Running: true}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	defer srv.Shutdown(context.Background())
	base := "http://" + srv.Addr()

	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || strings.TrimSpace(body) != "starting" {
		t.Fatalf("/readyz before running: %d %q", code, body)
	}
	m.Phase(engine.PhaseRunning)
	if code, _ := get(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz running: %d", code)
	}
	m.Phase(engine.PhasePaused)
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || strings.TrimSpace(body) != "paused" {
		t.Fatalf("/readyz paused: %d %q", code, body)
	}
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d", code)
	}
	var st Status
	if code, body := get(t, base+"/status"); code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil || st.Pipeline != "p" {
		t.Fatalf("/status: %d %s", code, body)
	}

	m.Read("in", 10, 4)
	m.Written("out", 10)
	m.Flushed("out", 6, 3*time.Millisecond)
	m.Flushed("out", 4, time.Millisecond)
	m.Lag("out", engine.SinkLag{Committed: change.Checkpoint{}, CommitTime: time.Unix(1700000000, 0), BehindSince: time.Now().Add(-time.Minute)})
	m.Failed("sink.out", io.ErrUnexpectedEOF)
	m.DeadLettered("transform")
	m.Restarted()
	_, body := get(t, base+"/metrics")
	for _, want := range []string{
		`sluice_source_events_total{source="in"} 10`,
		`sluice_sink_events_written_total{sink="out"} 10`,
		`sluice_sink_events_committed_total{sink="out"} 10`,
		`sluice_sink_events_committed_total{sink="never"} 0`,
		`sluice_sink_batch_events_count{sink="out"} 2`,
		`sluice_sink_batch_events_sum{sink="out"} 10`,
		`sluice_sink_commit_seconds_count{sink="out"} 2`,
		`sluice_sink_lag_seconds{sink="never"} 0`,
		`sluice_sink_last_commit_timestamp_seconds{sink="out"} 1.7e+09`,
		`sluice_errors_total{stage="sink.out"} 1`,
		`sluice_dead_letters_total{stage="transform"} 1`,
		`sluice_restarts_total 1`,
		`sluice_phase{phase="paused"} 1`,
		`sluice_phase{phase="running"} 0`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !strings.Contains(body, `sluice_sink_lag_seconds{sink="out"} 6`) {
		t.Errorf("lag of a sink a minute behind:\n%s", grep(body, "sluice_sink_lag_seconds"))
	}
	if !strings.Contains(body, `sluice_snapshot_rows_total{source="in"} 4`+"\n") {
		t.Errorf("snapshot rows:\n%s", grep(body, "sluice_snapshot_rows_total"))
	}
}

func grep(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
