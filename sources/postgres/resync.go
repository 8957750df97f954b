package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/state"
)

// ResyncState is the incremental snapshots' record in the source's state
// (key state.ResyncKey): every table copy requested (by `sluice
// snapshot`, `sluice verify --repair`, or snapshot = "incremental"), and
// how far each has come. `sluice status` shows it.
type ResyncState struct {
	Jobs []ResyncJob `json:"jobs"`
	// Known lists the tables that snapshot = "incremental" has copied
	// (or is copying): a table added to `tables` later gets a copy of
	// its own at the next start.
	Known []string `json:"known,omitempty"`
}

// ResyncJob is the copy of one table for one request. Chunks are read in
// key order, each between two watermarks (see doc.go, Incremental
// snapshots); After and Seq move when a chunk's high watermark is
// decoded, so a restart carries on with the next chunk.
type ResyncJob struct {
	Request string `json:"request"`
	Table   string `json:"table"`
	Sink    string `json:"sink,omitempty"`
	Where   string `json:"where,omitempty"`
	// From and To bound the copy's keys (both included; nil: open).
	From []string `json:"from,omitempty"`
	To   []string `json:"to,omitempty"`
	// Absent are keys the targets hold that the source lacked when the
	// request was made: deleted in the targets unless the copy finds them.
	Absent [][]string `json:"absent,omitempty"`
	// After is the last key copied (nil: none yet); Seq counts the
	// chunks copied.
	After         []string  `json:"after,omitempty"`
	Seq           uint32    `json:"seq"`
	RowsDone      int64     `json:"rows_done"`
	RowsEstimated int64     `json:"rows_estimated"`
	Started       time.Time `json:"started"`
	Done          bool      `json:"done,omitempty"`
	Finished      time.Time `json:"finished,omitzero"`
	// Error says why the copy stopped for good (a predicate PostgreSQL
	// refuses, a table dropped); the stream goes on.
	Error string `json:"error,omitempty"`
}

func (j *ResyncJob) key() string { return j.Request + "/" + j.Table }

// Pending reports whether the copy still has chunks to read.
func (j *ResyncJob) Pending() bool { return !j.Done && j.Error == "" }

// keepFinished is how many finished jobs the state keeps for status.
const keepFinished = 256

// ReadResync returns the incremental snapshots kept in a postgres
// source's state (zero when none was ever requested).
func ReadResync(st engine.State) (ResyncState, error) {
	var rs ResyncState
	b, err := st.Get(state.ResyncKey)
	if err != nil || len(b) == 0 {
		return rs, err
	}
	if err := json.Unmarshal(b, &rs); err != nil {
		return rs, fmt.Errorf("incremental snapshot progress in state: %w", err)
	}
	return rs, nil
}

// resyncs holds the source's incremental snapshots: the jobs (shared by
// Resync, the chunk worker and the decoder, under mu) and their
// persistence. Each change is saved before it is acted on.
type resyncs struct {
	st engine.State

	mu    sync.Mutex
	state ResyncState
	wake  chan struct{} // a new job: the worker looks again
	// waiters are the worker's watermarks not yet decoded, by nonce;
	// chunks the chunks read and offered to the decoder (the last one
	// is kept until the next is offered: a reconnect may decode its high
	// watermark again).
	waiters map[string]chan outcome
	chunks  map[string]*chunk
	last    string // the nonce of the last chunk offered
}

// expect registers a watermark about to be written; the returned channel
// receives the decoder's outcome.
func (r *resyncs) expect(nonce string) <-chan outcome {
	ch := make(chan outcome, 1)
	r.mu.Lock()
	r.waiters[nonce] = ch
	r.mu.Unlock()
	return ch
}

// offer hands the decoder a chunk read for the high watermark nonce.
func (r *resyncs) offer(nonce string, c *chunk) <-chan outcome {
	ch := r.expect(nonce)
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.chunks, r.last)
	r.chunks[nonce], r.last = c, nonce
	return ch
}

// forget drops the worker's wait for nonce.
func (r *resyncs) forget(nonce string) {
	r.mu.Lock()
	delete(r.waiters, nonce)
	r.mu.Unlock()
}

// live returns the chunk offered for nonce, nil after a restart.
func (r *resyncs) live(nonce string) *chunk {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.chunks[nonce]
}

// retryAll tells every waiting worker to read its chunk again.
func (r *resyncs) retryAll(why string) {
	r.mu.Lock()
	waiters := r.waiters
	r.waiters = map[string]chan outcome{}
	r.mu.Unlock()
	for _, ch := range waiters {
		ch <- outcome{retry: why}
	}
}

// dropUncaptured stops the pending jobs of tables the source no longer
// captures (removed from `tables` since the request).
func (r *resyncs) dropUncaptured(captured func(string) bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := false
	for i := range r.state.Jobs {
		if j := &r.state.Jobs[i]; j.Pending() && !captured(j.Table) {
			j.Error, j.Finished, changed = "the table is no longer captured by the source (not in `tables`)", time.Now().UTC(), true
		}
	}
	if !changed {
		return nil
	}
	return r.save()
}

// signal tells the worker waiting for nonce (if any) the outcome.
func (r *resyncs) signal(nonce string, o outcome) {
	r.mu.Lock()
	ch := r.waiters[nonce]
	delete(r.waiters, nonce)
	r.mu.Unlock()
	if ch != nil {
		ch <- o
	}
}

func newResyncs(st engine.State) (*resyncs, error) {
	s, err := ReadResync(st)
	if err != nil {
		return nil, err
	}
	return &resyncs{st: st, state: s, wake: make(chan struct{}, 1), waiters: map[string]chan outcome{}, chunks: map[string]*chunk{}}, nil
}

// save persists the state; mu is held.
func (r *resyncs) save() error {
	b, err := json.Marshal(r.state)
	if err != nil {
		return err
	}
	if err := r.st.Put(state.ResyncKey, b); err != nil {
		return fmt.Errorf("incremental snapshot: save progress: %w", err)
	}
	return nil
}

// add records new jobs durably and wakes the worker.
func (r *resyncs) add(jobs []ResyncJob, known []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.state.Jobs = append(r.state.Jobs, jobs...)
	for _, k := range known {
		if !slices.Contains(r.state.Known, k) {
			r.state.Known = append(r.state.Known, k)
		}
	}
	r.prune()
	if err := r.save(); err != nil {
		return err
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return nil
}

// prune drops the oldest finished jobs beyond keepFinished; mu is held.
func (r *resyncs) prune() {
	finished := 0
	for _, j := range r.state.Jobs {
		if !j.Pending() {
			finished++
		}
	}
	r.state.Jobs = slices.DeleteFunc(r.state.Jobs, func(j ResyncJob) bool {
		if finished > keepFinished && !j.Pending() {
			finished--
			return true
		}
		return false
	})
}

// next returns a copy of the first pending job, false when there is none.
func (r *resyncs) next() (ResyncJob, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, j := range r.state.Jobs {
		if j.Pending() {
			return j, true
		}
	}
	return ResyncJob{}, false
}

// job returns a copy of the job with key k.
func (r *resyncs) job(k string) (ResyncJob, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, j := range r.state.Jobs {
		if j.key() == k {
			return j, true
		}
	}
	return ResyncJob{}, false
}

// update applies fn to the job with key k and saves the state.
func (r *resyncs) update(k string, fn func(*ResyncJob)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.state.Jobs {
		if r.state.Jobs[i].key() == k {
			fn(&r.state.Jobs[i])
			return r.save()
		}
	}
	return nil
}

func (r *resyncs) known() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.state.Known)
}

// Resync takes a request of `sluice snapshot` or `sluice verify
// --repair` (engine.Resyncer): one job per table, saved before it
// returns, copied by the chunk worker while the stream goes on.
func (p *Postgres) Resync(ctx context.Context, req state.SnapshotRequest) error {
	if p.resync == nil {
		return fmt.Errorf("source %q is not streaming yet", p.name)
	}
	if len(req.Tables) == 0 {
		return fmt.Errorf("snapshot request %s names no table", req.ID)
	}
	jobs, err := p.jobsFor(ctx, req)
	if err != nil {
		return err
	}
	return p.resync.add(jobs, nil)
}

// jobsFor turns a request into jobs, checking each table is captured and
// has a primary key (chunks are key ranges).
func (p *Postgres) jobsFor(ctx context.Context, req state.SnapshotRequest) ([]ResyncJob, error) {
	var jobs []ResyncJob
	now := time.Now().UTC()
	for _, name := range req.Tables {
		t, err := p.captured(ctx, name)
		if err != nil {
			return nil, err
		}
		if t == nil {
			return nil, fmt.Errorf("table %s is not captured by source %q (its tables: %s): add it to `tables` first", name, p.name, strings.Join(p.cfg.Tables, ", "))
		}
		if len(t.PK) == 0 {
			return nil, fmt.Errorf("table %s has no primary key: an incremental snapshot reads it in key ranges; give it one, or copy it again with `sluice drop` and a new initial snapshot", name)
		}
		job := ResyncJob{Request: req.ID, Table: name, Sink: req.Sink, Where: req.Where, RowsEstimated: t.Estimate, Started: now}
		if req.Where != "" {
			job.RowsEstimated = 0 // the table's size says nothing of the rows the predicate selects
		}
		var ranges []state.KeyRange
		for _, r := range req.Ranges {
			if r.Table == name {
				ranges = append(ranges, r)
			}
		}
		var absent [][]string
		for _, k := range req.Absent {
			if k.Table == name {
				absent = append(absent, k.Key)
			}
		}
		job.Absent = absent
		if len(ranges) == 0 {
			jobs = append(jobs, job)
			continue
		}
		// One job per range, named apart. Each gets every absent key:
		// a chunk deletes only those within its own key range.
		for i, r := range ranges {
			j := job
			j.From, j.To = r.From, r.To
			j.Request = fmt.Sprintf("%s#%d", req.ID, i+1)
			j.RowsEstimated = 0
			jobs = append(jobs, j)
		}
	}
	return jobs, nil
}

// capturesName reports whether the table is one Open resolved or lies in
// a schema the source captures as "schema.*" (or "*.*").
func (p *Postgres) capturesName(name string) bool {
	for _, t := range p.tables {
		if t.qualified() == name {
			return true
		}
	}
	schema, _ := splitQualified(name)
	return slices.Contains(p.cfg.Tables, schema+".*") || slices.Contains(p.cfg.Tables, "*.*")
}

// captured returns the table name if this source captures it: one Open
// resolved, or a table created since in a schema it captures as
// "schema.*" (read from the catalog); nil if it does not.
func (p *Postgres) captured(ctx context.Context, name string) (*table, error) {
	for _, t := range p.tables {
		if t.qualified() == name {
			return t, nil
		}
	}
	if !p.capturesName(name) {
		return nil, nil
	}
	conn, err := connect(ctx, p.cfg.DSN)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	tables, findings, err := resolveTables(ctx, conn, []string{name}, p.cfg.Exclude)
	if err != nil {
		return nil, err
	}
	if err := findingsError(findings); err != nil || len(tables) != 1 {
		return nil, err
	}
	return tables[0], nil
}

// SnapshotIncremental is the snapshot attribute's value that copies the
// tables as incremental snapshots while streaming.
const SnapshotIncremental = "incremental"

// incrementalJobs queues, under snapshot = "incremental", a copy of each
// table that needs one: every table on the first run and after the slot
// was lost (all), then tables added to `tables` since (but those created
// in a schema the publication already published as a schema: the stream
// carries them from their CREATE, see late).
func (p *Postgres) incrementalJobs(tables []*table, wasPublished []string, all bool) error {
	need := tables
	if !all && len(p.resync.known()) > 0 {
		need = late(without(tables, p.resync.known()), wasPublished)
	}
	if len(need) == 0 {
		return nil
	}
	req := state.SnapshotRequest{ID: "initial", Requested: time.Now().UTC()}
	if len(p.resync.known()) > 0 {
		req.ID = "start-" + req.Requested.Format("20060102T150405Z")
	}
	for _, t := range need {
		if len(t.PK) == 0 {
			return engine.Permanent(fmt.Errorf("table %s has no primary key: snapshot = \"incremental\" reads tables in key ranges; give it a primary key, or use snapshot = \"initial\"", t.qualified()))
		}
		req.Tables = append(req.Tables, t.qualified())
	}
	jobs, err := p.jobsFor(p.ctx, req)
	if err != nil {
		return err
	}
	p.logger.Info("postgres source: incremental snapshot of tables while streaming", "source", p.name, "tables", strings.Join(req.Tables, ", "))
	return p.resync.add(jobs, req.Tables)
}

// CheckResync checks, against the database, that a source with block cfg
// can copy tables again as incremental snapshots with the predicate
// where ("" for none): each table exists, has a primary key and is
// readable, and PostgreSQL accepts the predicate on it. `sluice
// snapshot` runs it before it files a request, so a mistake is reported
// to the user who made it rather than to the pipeline's log.
func CheckResync(ctx context.Context, cfg *dsl.PostgresSource, tables []string, where string) error {
	conn, err := connect(ctx, cfg.DSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, name := range tables {
		t, err := describe(ctx, conn, name, cfg.Exclude, newTypeRegistry())
		if err != nil {
			return fmt.Errorf("table %s: %w", name, err)
		}
		if len(t.PK) == 0 {
			return fmt.Errorf("table %s has no primary key: an incremental snapshot reads it in key ranges; give it one", name)
		}
		sql, params := t.rangeSelect(keyRange{}, where, 1)
		if _, err := conn.Exec(ctx, "EXPLAIN "+sql, bytesArgs(params)...); err != nil {
			if where != "" {
				return fmt.Errorf("table %s: PostgreSQL refuses --where %q: %v", name, where, redactErr(err, cfg.DSN))
			}
			return fmt.Errorf("table %s: %v", name, redactErr(err, cfg.DSN))
		}
	}
	return nil
}

func bytesArgs(params [][]byte) []any {
	out := make([]any, len(params))
	for i, p := range params {
		out[i] = string(p)
	}
	return out
}
