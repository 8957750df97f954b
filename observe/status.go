package observe

import (
	"context"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/engine/state"
	"github.com/sluice-cdc/sluice/sources/postgres"
)

// Status is the status of one pipeline: what `sluice status --json`
// prints and /status serves. Sources and sinks are in the pipeline
// file's order.
type Status struct {
	Pipeline string `json:"pipeline"`
	State    string `json:"state"`
	// Running reports that a `sluice run` holds the state file (its lock);
	// the live figures (lag seconds, snapshot rate) are then at most a
	// second old, and absent when it is not running.
	Running bool `json:"running"`
	// Phase is where the pipeline is: "snapshotting" or "streaming"
	// (running, with an initial snapshot under way or not), "starting",
	// "retrying" (see Retry), "paused" (see Paused), or, when no sluice
	// runs it, how the last run ended: "stopped" or "failed" (see
	// LastError).
	Phase string `json:"phase"`
	// PhaseSince is when the pipeline entered Phase (absent when unknown).
	PhaseSince *time.Time `json:"phase_since,omitempty"`
	// PID is the process that runs (or last ran) the pipeline.
	PID int `json:"pid,omitempty"`
	// Retry is the retry under way (phase "retrying").
	Retry *Retry `json:"retry,omitempty"`
	// Paused is what paused the pipeline (phase "paused"): the event's
	// stage, table and position, and the error. `sluice resume` retries it.
	Paused *state.Paused `json:"paused,omitempty"`
	// LastError is the last error that ended an attempt, with its time
	// and stage (redacted by the components: no secrets).
	LastError   *state.LastError `json:"last_error,omitempty"`
	Updated     time.Time        `json:"updated"`
	Sources     []Source         `json:"sources"`
	Sinks       []Sink           `json:"sinks"`
	DeadLetters int              `json:"dead_letters"`
	// Problems lists what could not be measured (a PostgreSQL server that
	// did not answer), so that a missing figure is explained.
	Problems []string `json:"problems,omitempty"`
}

// Source is one source's position and progress.
type Source struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Acked is the checkpoint last acknowledged to the source: every sink
	// reading it has committed up to here.
	Acked    change.Checkpoint `json:"acked"`
	Snapshot *Snapshot         `json:"snapshot,omitempty"`
	// Resync lists the tables copied again while streaming (`sluice
	// snapshot`, `verify --repair`, snapshot = "incremental"), the
	// unfinished ones and the last finished ones.
	Resync []Resync `json:"resync,omitempty"`
	// WAL is the slot as the server sees it (PostgreSQL sources, when the
	// server was asked).
	WAL *WAL `json:"wal,omitempty"`
	// Kafka is, for a Kafka source of a running pipeline, its
	// consumer-group lag per partition it owns, as of its last fetch.
	Kafka []state.KafkaPartition `json:"kafka,omitempty"`
}

// Retry is a retry under way.
type Retry struct {
	Attempt int       `json:"attempt"`
	Next    time.Time `json:"next"`
}

// Resync is one table's incremental snapshot (postgres.ResyncJob) with
// its rate and, while it runs, its ETA. RowsDone is saved at each chunk.
type Resync struct {
	postgres.ResyncJob
	Percent       *float64 `json:"percent,omitempty"`
	RowsPerSecond float64  `json:"rows_per_second,omitempty"`
	ETASeconds    *float64 `json:"eta_seconds,omitempty"`
}

// resyncOf decodes a PostgreSQL source's incremental snapshots.
func resyncOf(ss state.SourceStatus, updated time.Time) ([]Resync, error) {
	if len(ss.Resync) == 0 {
		return nil, nil
	}
	rs, err := postgres.ReadResync(resyncState(ss.Resync))
	if err != nil {
		return nil, err
	}
	out := make([]Resync, 0, len(rs.Jobs))
	for _, j := range rs.Jobs {
		r := Resync{ResyncJob: j}
		if j.RowsEstimated > 0 {
			pct := 100 * float64(min(j.RowsDone, j.RowsEstimated)) / float64(j.RowsEstimated)
			if j.Done {
				pct = 100
			}
			r.Percent = &pct
		}
		end := updated
		if !j.Finished.IsZero() {
			end = j.Finished
		}
		if el := end.Sub(j.Started).Seconds(); el > 0 && j.RowsDone > 0 {
			r.RowsPerSecond = float64(j.RowsDone) / el
			if j.Pending() && j.RowsEstimated > j.RowsDone {
				eta := float64(j.RowsEstimated-j.RowsDone) / r.RowsPerSecond
				r.ETASeconds = &eta
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// resyncState is a source's stored resync record seen as its state
// corner, for postgres.ReadResync.
type resyncState []byte

func (p resyncState) Get(key string) ([]byte, error) {
	if key != state.ResyncKey {
		return nil, nil
	}
	return p, nil
}

func (resyncState) Put(string, []byte) error { return nil }

// Snapshot is an initial snapshot's progress.
type Snapshot struct {
	// Done reports every row was read (committing may still be under way:
	// see the sinks' lag). RowsDone counts rows read: the larger of the
	// source's saved progress (saved every few chunks, and per table in
	// Tables) and the rows the running process has read.
	Done          bool    `json:"done"`
	RowsDone      int64   `json:"rows_done"`
	RowsEstimated int64   `json:"rows_estimated"`
	RowsPerSecond float64 `json:"rows_per_second,omitempty"`
	// ETASeconds is the estimated time left at RowsPerSecond; absent when
	// unknown (not running, no rate yet, or done).
	ETASeconds *float64                 `json:"eta_seconds,omitempty"`
	Tables     []postgres.TableProgress `json:"tables"`
}

// Sink is one sink's committed position and lag.
type Sink struct {
	Name      string            `json:"name"`
	Committed change.Checkpoint `json:"committed"`
	// CommitTime is the source commit time of the last change committed.
	CommitTime *time.Time `json:"commit_time,omitempty"`
	// LagSeconds is 0 when the sink has committed everything read, else
	// now minus the commit time of the oldest change it has not; null
	// when the pipeline is not running (unknown).
	LagSeconds *float64 `json:"lag_seconds"`
	// LagBytes is, for a PostgreSQL source, the server's current WAL
	// position minus the last commit LSN this sink committed (the
	// largest over its PostgreSQL sources); absent when unknown.
	LagBytes *int64 `json:"lag_bytes,omitempty"`
}

// Options tunes Build.
type Options struct {
	// Now is the time lag is measured at; default time.Now().
	Now time.Time
	// Probe asks each PostgreSQL source's server for its WAL position and
	// slot (a connection per source); false: no network.
	Probe bool
}

// Build combines a state file's status (state.Inspect, or the status file
// of the running process) with the pipeline's configuration and, when
// opts.Probe, each PostgreSQL server's WAL positions.
func Build(ctx context.Context, cfg *dsl.Config, st state.Status, opts Options) Status {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	out := Status{
		Pipeline: cfg.Pipeline.Name, State: st.Path, Running: st.Running, Updated: st.Updated,
		DeadLetters: st.DeadLetters, Sources: []Source{}, Sinks: []Sink{},
	}
	current := map[string]uint64{} // per PostgreSQL source probed
	for _, s := range cfg.Sources {
		ss := st.Sources[s.Name]
		src := Source{Name: s.Name, Type: s.Type, Acked: ss.Acked, Kafka: ss.Kafka}
		if src.Acked == nil {
			src.Acked = change.Checkpoint{}
		}
		if s.Type == "postgres" {
			snap, err := snapshotOf(ss, st.Updated)
			if err != nil {
				out.Problems = append(out.Problems, "source "+s.Name+": "+err.Error())
			}
			src.Snapshot = snap
			if src.Resync, err = resyncOf(ss, st.Updated); err != nil {
				out.Problems = append(out.Problems, "source "+s.Name+": "+err.Error())
			}
			if opts.Probe && s.Postgres != nil {
				w, err := Slot(ctx, cfg.Pipeline.Name, s.Postgres)
				if err != nil {
					out.Problems = append(out.Problems, "source "+s.Name+": "+err.Error())
				} else {
					src.WAL = &w
					current[s.Name] = w.Current
					switch {
					case !w.Exists:
						out.Problems = append(out.Problems, "source "+s.Name+": replication slot "+w.Slot+" does not exist")
					case w.WALStatus == "lost":
						out.Problems = append(out.Problems, "source "+s.Name+": replication slot "+w.Slot+" was invalidated (wal_status = lost): the WAL it needed was removed (max_slot_wal_keep_size); run `sluice drop FILE` and then `sluice run FILE`, or set on_slot_lost = \"resnapshot\"")
					case w.WALStatus == "unreserved":
						out.Problems = append(out.Problems, "source "+s.Name+": replication slot "+w.Slot+" is past max_slot_wal_keep_size (wal_status = unreserved): the next checkpoint invalidates it unless sluice catches up")
					}
				}
			}
		}
		out.Sources = append(out.Sources, src)
	}
	for _, s := range cfg.Sinks {
		ks := st.Sinks[s.Name]
		sink := Sink{Name: s.Name, Committed: ks.Checkpoint}
		if sink.Committed == nil {
			sink.Committed = change.Checkpoint{}
		}
		if !ks.CommitTime.IsZero() {
			t := ks.CommitTime
			sink.CommitTime = &t
		}
		if st.Running {
			lag := engine.SinkLag{BehindSince: ks.BehindSince}.Seconds(opts.Now)
			sink.LagSeconds = &lag
		}
		sink.LagBytes = bytesBehind(sink.Committed, current)
		out.Sinks = append(out.Sinks, sink)
	}
	setPhase(&out, st)
	return out
}

// setPhase fills in the phase, the retry or pause and the last error from
// the run the status file reports.
func setPhase(out *Status, st state.Status) {
	run := st.Run
	if run == nil {
		out.Phase = "stopped"
		if st.Running {
			out.Phase = "running" // a status file without a phase
		}
		return
	}
	out.Phase, out.PID, out.Paused, out.LastError = run.Phase, run.PID, run.Paused, run.LastError
	if !run.Since.IsZero() {
		t := run.Since
		out.PhaseSince = &t
	}
	switch run.Phase {
	case engine.PhaseRunning.String():
		out.Phase = "streaming"
		for _, s := range out.Sources {
			if s.Snapshot != nil && !s.Snapshot.Done {
				out.Phase = "snapshotting"
			}
		}
	case engine.PhaseRetrying.String():
		out.Retry = &Retry{Attempt: run.Attempt, Next: run.NextRetry}
	}
	if !st.Running && run.Phase != engine.PhaseFailed.String() {
		out.Phase = engine.PhaseStopped.String()
	}
}

// bytesBehind is the largest distance from a probed source's current WAL
// position to the commit LSN the sink committed for it.
func bytesBehind(cp change.Checkpoint, current map[string]uint64) *int64 {
	var worst *int64
	for s, p := range cp {
		cur, ok := current[s.Source]
		if !ok {
			continue
		}
		d := int64(0)
		if cur > p.Offset {
			d = int64(cur - p.Offset)
		}
		if worst == nil || d > *worst {
			worst = &d
		}
	}
	return worst
}

// snapshotOf decodes a PostgreSQL source's snapshot progress; nil when no
// snapshot was ever started.
func snapshotOf(ss state.SourceStatus, updated time.Time) (*Snapshot, error) {
	if len(ss.Progress) == 0 {
		return nil, nil
	}
	p, ok, err := postgres.ReadProgress(progressState(ss.Progress))
	if err != nil || !ok {
		return nil, err
	}
	snap := &Snapshot{Done: p.AllEmitted(), Tables: p.Tables}
	if snap.Tables == nil {
		snap.Tables = []postgres.TableProgress{}
	}
	for _, t := range p.Tables {
		snap.RowsDone += t.RowsDone
		snap.RowsEstimated += max(t.RowsEstimated, t.RowsDone)
	}
	// The source saves its progress only every so many rows; the rows the
	// running process has read are more current (a lower bound when the
	// snapshot resumed, as they count this process's rows only).
	if !p.AllEmitted() {
		snap.RowsDone = max(snap.RowsDone, ss.SnapshotRows)
	}
	if el := updated.Sub(ss.SnapshotSince).Seconds(); !ss.SnapshotSince.IsZero() && el > 0 && ss.SnapshotRows > 0 {
		snap.RowsPerSecond = float64(ss.SnapshotRows) / el
		if !snap.Done {
			eta := float64(max(snap.RowsEstimated-snap.RowsDone, 0)) / snap.RowsPerSecond
			snap.ETASeconds = &eta
		}
	}
	return snap, nil
}

// progressState is a source's stored progress record seen as its state
// corner, for postgres.ReadProgress.
type progressState []byte

func (p progressState) Get(key string) ([]byte, error) {
	if key != state.ProgressKey {
		return nil, nil
	}
	return p, nil
}

func (p progressState) Put(string, []byte) error { return nil }
