package observe

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/engine/state"
	"github.com/sluice-cdc/sluice/sources/postgres"
)

func TestBuild(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cfg := &dsl.Config{
		Pipeline: dsl.Pipeline{Name: "p"},
		Sources:  []*dsl.Source{{Type: "postgres", Name: "app", Postgres: &dsl.PostgresSource{}}, {Type: "file", Name: "f"}},
		Sinks:    []*dsl.Sink{{Type: "postgres", Name: "out"}, {Type: "file", Name: "idle"}},
	}
	prog, _ := json.Marshal(postgres.SnapshotProgress{Tables: []postgres.TableProgress{
		{Table: "public.a", RowsDone: 1000, RowsEstimated: 1000, Done: true},
		{Table: "public.b", RowsDone: 500, RowsEstimated: 9000},
	}})
	cp := change.Checkpoint{{Source: "app"}: {Source: "app", Offset: 900}}
	commit := now.Add(-time.Minute)
	st := state.Status{
		Path: "p.db", Running: true, Updated: now, DeadLetters: 3,
		Sources: map[string]state.SourceStatus{"app": {Acked: cp, Progress: prog, SnapshotRows: 4000, SnapshotSince: now.Add(-4 * time.Second)}},
		Sinks: map[string]state.SinkStatus{
			"out":  {Checkpoint: cp, CommitTime: commit, Live: true, BehindSince: now.Add(-90 * time.Second)},
			"idle": {Checkpoint: change.Checkpoint{}, Live: true},
		},
	}
	got := Build(context.Background(), cfg, st, Options{Now: now})
	if got.Pipeline != "p" || !got.Running || got.DeadLetters != 3 || len(got.Sources) != 2 || len(got.Sinks) != 2 {
		t.Fatalf("%+v", got)
	}
	snap := got.Sources[0].Snapshot
	// Saved progress says 1500 rows, the running process read 4000 at
	// 1000 rows/s: 6000 of 10000 left.
	if snap == nil || snap.Done || snap.RowsDone != 4000 || snap.RowsEstimated != 10000 || snap.RowsPerSecond != 1000 || snap.ETASeconds == nil || *snap.ETASeconds != 6 {
		t.Fatalf("snapshot %+v", snap)
	}
	if got.Sources[1].Snapshot != nil {
		t.Fatal("a file source has no snapshot")
	}
	out, idle := got.Sinks[0], got.Sinks[1]
	if out.LagSeconds == nil || *out.LagSeconds != 90 || out.CommitTime == nil || !out.CommitTime.Equal(commit) || out.LagBytes != nil {
		t.Fatalf("sink out: %+v", out)
	}
	if idle.LagSeconds == nil || *idle.LagSeconds != 0 {
		t.Fatalf("an idle, caught-up sink: lag %v, want 0", idle.LagSeconds)
	}

	st.Running = false
	got = Build(context.Background(), cfg, st, Options{Now: now})
	if got.Sinks[0].LagSeconds != nil {
		t.Fatal("lag in seconds is unknown when not running")
	}
	if lb := bytesBehind(cp, map[string]uint64{"app": 1000}); lb == nil || *lb != 100 {
		t.Fatalf("bytes behind %v, want 100", lb)
	}
	if lb := bytesBehind(cp, map[string]uint64{"other": 1000}); lb != nil {
		t.Fatalf("bytes behind for an unprobed source: %v", *lb)
	}
}
