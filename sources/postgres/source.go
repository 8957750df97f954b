package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/internal/throttle"
)

// DefaultHeartbeat is the heartbeat interval when the block sets none.
const DefaultHeartbeat = 10 * time.Second

// Postgres is the `source "postgres"` block: a consistent initial snapshot
// of the declared tables, then every committed change through a logical
// replication slot (pgoutput). Read is called from one goroutine, Ack
// from another.
type Postgres struct {
	name   string
	cfg    dsl.PostgresSource
	logger *slog.Logger
	obs    engine.Observer // nil: none
	// throttle holds snapshot reads to max_rows_per_second (nil: none).
	throttle *throttle.Limiter

	ctx    context.Context // the source's lifetime: Open to Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	snap   *snapshot // non-nil while the snapshot runs
	stream *streamer
	errc   chan error // the streamer's final error
	start  func()     // starts the streamer (and the heartbeat, once) after the snapshot
	beats  bool       // the heartbeat and the incremental snapshots' chunk worker run

	// What a recovery from a lost slot (on_slot_lost = "resnapshot")
	// copies again: the tables Open resolved and their types.
	tables []*table
	types  *typeRegistry

	// resync holds the incremental snapshots (sluice snapshot, verify
	// --repair, snapshot = "incremental"), copied by copyChunks.
	resync *resyncs

	st engine.State
	// fresh: the slot was missing and created anew although this
	// pipeline had committed positions (see Resumed).
	fresh bool
}

var (
	_ engine.Source  = (*Postgres)(nil)
	_ engine.Resumer = (*Postgres)(nil)
)

// Resumed reports whether Read continues right after Open's from: false
// when the slot was gone (dropped, or lost with its server) and had to be
// created again, so the changes since from are no longer on the server.
func (p *Postgres) Resumed() bool { return !p.fresh }

// New builds the source of block s; it matches components.Kinds.
func New(b engine.Build, s *dsl.Source) (engine.Source, error) {
	if s.Postgres == nil {
		return nil, fmt.Errorf("source %q: not a postgres source", s.Name)
	}
	pipeline := b.Pipeline.Name
	cfg := WithDefaults(s.Postgres, pipeline)
	if !slotName.MatchString(cfg.Slot) {
		return nil, engine.Permanent(fmt.Errorf("source %q: slot %q: replication slot names may only contain lower-case letters, digits and underscores (at most 63)", s.Name, cfg.Slot))
	}
	if cfg.Snapshot != "initial" && cfg.Snapshot != SnapshotIncremental && cfg.Snapshot != "never" {
		return nil, engine.Permanent(fmt.Errorf("source %q: snapshot = %q: expected \"initial\", \"incremental\" or \"never\"", s.Name, cfg.Snapshot))
	}
	if cfg.OnSlotLost != OnSlotLostFail && cfg.OnSlotLost != OnSlotLostResnapshot {
		return nil, engine.Permanent(fmt.Errorf("source %q: on_slot_lost = %q: expected \"fail\" or \"resnapshot\"", s.Name, cfg.OnSlotLost))
	}
	logger := b.Logger
	if logger == nil {
		logger = slog.Default()
	}
	return &Postgres{name: s.Name, cfg: *cfg, logger: logger, obs: b.Observer, throttle: throttle.New(cfg.MaxRowsPerSecond)}, nil
}

// WithDefaults returns a copy of cfg with the defaults filled in: slot and
// publication "sluice_<pipeline>", snapshot "initial", heartbeat 10s,
// on_slot_lost "fail".
func WithDefaults(cfg *dsl.PostgresSource, pipeline string) *dsl.PostgresSource {
	c := *cfg
	def := dsl.DefaultName(pipeline)
	if c.Slot == "" {
		c.Slot = def
	}
	if c.Publication == "" {
		c.Publication = def
	}
	if c.Snapshot == "" {
		c.Snapshot = "initial"
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.OnSlotLost == "" {
		c.OnSlotLost = OnSlotLostFail
	}
	return &c
}

// Open checks the database, sets up the publication and slot, and decides
// where reading starts (see doc.go for the snapshot and resume rules).
func (p *Postgres) Open(ctx context.Context, from change.Checkpoint, state engine.State) error {
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.st = state
	err := p.open(ctx, from)
	if err != nil {
		p.Close()
		return err // the engine names the source
	}
	return nil
}

func (p *Postgres) open(ctx context.Context, from change.Checkpoint) error {
	conn, err := connect(ctx, p.cfg.DSN)
	if err != nil {
		return err
	}
	keep := false
	defer func() {
		if !keep {
			conn.Close(context.Background())
		}
	}()
	version, findings, err := serverChecks(ctx, conn)
	if err != nil {
		return err
	}
	tables, more, err := resolveTables(ctx, conn, p.cfg.Tables, p.cfg.Exclude)
	if err != nil {
		return err
	}
	if err := findingsError(append(findings, more...)); err != nil {
		return err
	}
	for _, f := range more {
		if f.Severity == Warning {
			p.logger.Warn("postgres source: "+f.Message, "source", p.name, "table", f.Subject, "fix", f.Fix)
		}
	}
	types := newTypeRegistry()
	p.tables, p.types = tables, types
	for _, t := range tables {
		var oids []uint32
		for _, c := range t.Columns {
			oids = append(oids, c.TypeOID)
		}
		if err := types.ensure(ctx, conn, oids); err != nil {
			return err
		}
	}
	schemas, more, err := publishedSchemas(ctx, conn, p.cfg.Tables, p.cfg.Exclude, version)
	if err != nil {
		return err
	}
	for _, f := range more {
		p.logger.Warn("postgres source: "+f.Message, "source", p.name, "tables", f.Subject, "fix", f.Fix)
	}
	// The schemas the publication published when the sinks' positions
	// were committed, read before this run records its own.
	wasPublished, err := readPublishedSchemas(p.st)
	if err != nil {
		return err
	}
	if err := ensurePublication(ctx, conn, p.cfg.Publication, schemas, tables, version); err != nil {
		return err
	}
	slot, err := readSlot(ctx, conn, p.cfg.Slot)
	// The walsender of a connection that just closed (this source's own
	// previous run) releases the slot a moment later: give it that moment.
	for wait := 0; err == nil && slot.ActivePID != 0 && wait < 30; wait++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		slot, err = readSlot(ctx, conn, p.cfg.Slot)
	}
	if err != nil {
		return err
	}
	if f := checkSlot(slot, p.cfg.Slot); f != nil {
		if f.Attribute == "slot" && slot.ActivePID != 0 {
			return errors.New(f.String()) // may free itself: a walsender of a crashed run lingers
		}
		return engine.Permanent(errors.New(f.String()))
	}

	rconn, err := connectReplication(ctx, p.cfg.DSN)
	if err != nil {
		return err
	}
	defer rconn.Close(context.Background()) // after the snapshot is imported below
	system, err := identify(ctx, rconn)
	if err != nil {
		return err
	}

	prog, hasProg, err := ReadProgress(p.st)
	if err != nil {
		return err
	}
	pos, hasPos := from[change.Stream{Source: p.name}]
	lost, err := p.lostAtOpen(slot, pos, hasPos, system)
	if err != nil {
		return err
	}
	recovering := lost != nil
	lostPos, hasLostPos := pos, hasPos
	if recovering {
		if p.cfg.OnSlotLost != OnSlotLostResnapshot {
			return engine.Permanent(lost)
		}
		p.recovered(lost)
		if err := dropSlot(ctx, conn, p.cfg.Slot); err != nil {
			return err
		}
		slot = slotInfo{Current: slot.Current, ServerLSN: slot.ServerLSN}
	} else if slot.Exists && slot.WALStatus == "lost" {
		// Invalidated before anything was committed: nothing is lost.
		p.logger.Info("postgres source: replication slot was invalidated before any change was committed; recreating it", "source", p.name, "slot", p.cfg.Slot)
		if err := dropSlot(ctx, conn, p.cfg.Slot); err != nil {
			return err
		}
		slot = slotInfo{Current: slot.Current, ServerLSN: slot.ServerLSN}
		recovering = true // quietly: no sink committed anything of it
	}
	if err := p.st.Put(systemKey, []byte(system)); err != nil {
		return err
	}
	if p.resync, err = newResyncs(p.st); err != nil {
		return err
	}
	if err := p.resync.dropUncaptured(p.capturesName); err != nil {
		return err
	}
	dec := newDecoder(p.name, types, nil)
	dec.excluded = excludedColumns(p.cfg.Exclude)
	dec.resync = &resyncDecoding{jobs: p.resync, slot: p.cfg.Slot, exclude: p.cfg.Exclude, windows: map[string]*window{}}
	p.stream = &streamer{dsn: p.cfg.DSN, slot: p.cfg.Slot, publication: p.cfg.Publication, source: p.name,
		dec: dec, logger: p.logger, out: make(chan []change.Event, 2), confirm: slot.Confirmed}
	if hasPos {
		p.stream.last, p.stream.hasLast, p.stream.acked = pos, true, pos
	}

	plan := decideStart(startFacts{
		SlotExists: slot.Exists, Recovering: recovering, WantSnapshot: p.cfg.Snapshot == "initial",
		HasPos: hasPos, HasProg: hasProg, ProgComplete: hasProg && prog.complete(p.name, from),
		PosAfterSnapshot: hasPos && hasProg && pos.Offset > prog.Offset,
	})
	if plan.MissingSlot {
		p.logger.Warn("postgres source: replication slot is missing although this pipeline ran before; changes made while it was missing are lost",
			"source", p.name, "slot", p.cfg.Slot)
		p.fresh = hasPos
	}
	if plan.Forget {
		p.stream.hasLast = false
		hasPos, hasProg = false, false
	}
	wantSnapshot := plan.Snapshot
	exported := ""
	var snapOffset uint64
	switch plan.Start {
	case startCreateSlot:
		res, err := createSlot(ctx, rconn, p.cfg.Slot, wantSnapshot)
		if err != nil {
			return err
		}
		cp, err := pglogrepl.ParseLSN(res.ConsistentPoint)
		if err != nil {
			return fmt.Errorf("create replication slot: consistent point %q: %w", res.ConsistentPoint, err)
		}
		if lost != nil && hasLostPos && uint64(cp)-1 <= lostPos.Offset {
			return errBehind(p.cfg.Slot, cp, lostPos)
		}
		if err := saveBound(p.st, cp); err != nil {
			return err
		}
		exported, snapOffset = res.SnapshotName, uint64(cp)-1
		p.stream.confirm = cp
	case startResumeSnapshot:
		snapOffset = prog.Offset
	case startAdvanceThenSnapshot:
		var now string
		if err := conn.QueryRow(ctx, `SELECT end_lsn::text FROM pg_replication_slot_advance($1, pg_current_wal_lsn())`, p.cfg.Slot).Scan(&now); err != nil {
			return fmt.Errorf("move replication slot %s to the current position before the snapshot: %w", p.cfg.Slot, err)
		}
		lsn, err := pglogrepl.ParseLSN(now)
		if err != nil {
			return fmt.Errorf("replication slot %s: position %q: %w", p.cfg.Slot, now, err)
		}
		if err := saveBound(p.st, lsn); err != nil {
			return err
		}
		p.stream.confirm = max(p.stream.confirm, lsn)
		snapOffset = uint64(lsn) - 1
	case startStream:
	}

	// The tables this snapshot reads: all of them, but for tables that an
	// earlier snapshot copied and the sinks committed (prog.Earlier).
	snapTables := tables
	var earlier []string
	added := false
	switch {
	case wantSnapshot && hasProg && hasPos && exported == "" && snapOffset == prog.Offset:
		earlier = prog.Earlier // resuming: the earlier ones stay copied
		// Tables created since the snapshot began, in a schema published
		// as a schema, come whole from the stream.
		snapTables = without(tables, earlier)
		snapTables = slices.DeleteFunc(snapTables, func(t *table) bool {
			return !slices.Contains(prog.known(), t.qualified()) && len(late([]*table{t}, wasPublished)) == 0
		})
	case !wantSnapshot && p.cfg.Snapshot == "initial" && hasProg && hasPos:
		// Tables added to `tables` since the last snapshot: copy them now,
		// before the stream resumes, in rows of their own partition, so
		// that every sink takes them whatever it committed (see doc.go).
		// A table created since in a schema the publication published as
		// a schema is not copied: the stream carries it from its CREATE.
		if newTables := late(without(tables, prog.known()), wasPublished); len(newTables) > 0 {
			wantSnapshot, added = true, true
			earlier = names(without(tables, names(newTables)))
			snapTables = newTables
			p.logger.Info("postgres source: tables added since the last snapshot are copied first", "source", p.name, "tables", strings.Join(names(newTables), ", "))
		}
	}

	p.stream.state, p.stream.system = p.st, system
	if p.cfg.Snapshot == SnapshotIncremental {
		if err := p.incrementalJobs(tables, wasPublished, recovering); err != nil {
			return err
		}
	}
	if !wantSnapshot {
		// Recorded once the snapshot's progress lists every table this
		// run copies: a table created from now on in these schemas is
		// carried by the stream (see late).
		if err := savePublishedSchemas(p.st, schemas); err != nil {
			return err
		}
	}
	p.start = func() {
		p.wg.Add(1)
		p.errc = make(chan error, 1)
		go func() { defer p.wg.Done(); p.errc <- p.stream.run(p.ctx) }()
		if !p.beats {
			p.beats = true
			p.wg.Add(2)
			go func() { defer p.wg.Done(); heartbeat(p.ctx, p.cfg.DSN, p.cfg.Heartbeat, p.logger, p.name) }()
			go func() { defer p.wg.Done(); p.copyChunks(p.ctx) }()
		}
	}
	if !wantSnapshot {
		p.start()
		return nil
	}

	rels := make([]*relState, len(snapTables))
	for i, t := range snapTables {
		rels[i] = dec.seed(t)
	}
	resume := false
	switch {
	case added:
		prog = p.addedSnapshot(prog, pos, earlier, snapTables)
	case !hasProg || prog.Offset != snapOffset || exported != "":
		prog = SnapshotProgress{Offset: snapOffset, Tables: tableProgress(snapTables)}
	default:
		prog.Earlier = earlier // none when a sink has nothing: it gets every table
		resume = true
	}
	if err := p.startSnapshot(ctx, conn, snapTables, rels, &prog, exported, resume, from); err != nil {
		return err
	}
	if err := savePublishedSchemas(p.st, schemas); err != nil {
		return err
	}
	keep = true
	p.logger.Info("postgres source: snapshot", "source", p.name, "tables", len(snapTables), "readers", prog.readers())
	return nil
}

// tableProgress is the progress of a snapshot of tables before it reads.
func tableProgress(tables []*table) []TableProgress {
	out := make([]TableProgress, 0, len(tables))
	for _, t := range tables {
		out = append(out, TableProgress{Table: t.qualified(), RowsEstimated: t.Estimate})
	}
	return out
}

// workers is how many readers a snapshot may have: snapshot_workers, by
// default the number of CPUs and at least 2.
func (p *Postgres) workers() int {
	if p.cfg.SnapshotWorkers > 0 {
		return p.cfg.SnapshotWorkers
	}
	return max(2, runtime.NumCPU())
}

// startSnapshot sets p.snap to a snapshot of tables with progress prog,
// its reader 0 on conn in the exported snapshot (a fresh one when ""):
// with resume, and the table list the one prog records, it goes on after
// what the sinks committed (from); else it reads from the start, in
// ranges split for the configured readers. On error the readers it
// connected are closed (conn is the caller's).
func (p *Postgres) startSnapshot(ctx context.Context, conn *pgx.Conn, tables []*table, rels []*relState, prog *SnapshotProgress, exported string, resume bool, from change.Checkpoint) (err error) {
	snap := newSnapshot(p.ctx, p.name, p.st, p.types, tables, rels, prog, conn)
	defer func() {
		if err != nil {
			snap.readers[0].conn = nil // the caller's
			snap.close()
		}
	}()
	if err := snap.readers[0].begin(ctx, exported); err != nil {
		return err
	}
	resumed := resume && p.resumable(prog, tables)
	if !resumed {
		if resume {
			// Rows number past the ones the earlier readers handed out, so
			// that no sink mistakes a new row for one it committed.
			prog.First = prog.reservedMax()
			prog.Tables = tableProgress(tables)
		}
		lists, err := split(ctx, conn, tables, p.workers())
		if err != nil {
			return err
		}
		prog.ReaderProgress, prog.Readers = ReaderProgress{Ranges: lists[0]}, nil
		for _, l := range lists[1:] {
			prog.Readers = append(prog.Readers, ReaderProgress{Ranges: l})
		}
	}
	if err := snap.addReaders(ctx, p.cfg.DSN); err != nil {
		return err
	}
	if resumed {
		if err := p.resume(snap, from); err != nil {
			return err
		}
	} else {
		snap.fresh()
	}
	if err := snap.reserveAll(); err != nil {
		return err
	}
	p.snap = snap
	return nil
}

// resumable reports whether an interrupted snapshot can go on where its
// readers stopped: it copies the same tables.
func (p *Postgres) resumable(prog *SnapshotProgress, tables []*table) bool {
	same := len(prog.Tables) == len(tables)
	for i := 0; same && i < len(tables); i++ {
		same = prog.Tables[i].Table == tables[i].qualified()
	}
	if !same {
		p.logger.Warn("postgres source: snapshot starts over", "source", p.name, "reason", "the table list changed")
	}
	return same
}

// addedSnapshot returns the progress record of a snapshot of tables
// added since the last one (last), when the sinks committed pos of the
// stream. Its rows are in AddedPartition, where no sink has committed
// anything of them, however far it is in the stream: numbered after the
// committed row would have them skipped by a sink that committed further
// than the slowest one. Their Offset is pos.Offset+1, so a later copy
// sorts after an earlier one in the partition, and Indexes go on from the
// last snapshot's reserved bound (First): a copy with the same Offset
// (nothing was streamed in between) still sorts after the earlier one,
// and no two snapshots share an Index, which the chunk records that
// resume a copy are keyed by.
func (p *Postgres) addedSnapshot(last SnapshotProgress, pos change.Position, earlier []string, tables []*table) SnapshotProgress {
	return SnapshotProgress{Offset: pos.Offset + 1, Earlier: earlier, Partition: AddedPartition, First: last.reservedMax(), Tables: tableProgress(tables)}
}

// resume sets up a snapshot that an earlier run started: each reader
// goes on after the last of its rows every sink committed, in a new
// transaction, numbering rows from its reserved bound (see doc.go); a
// reader none of whose rows was committed, or whose committed row's key
// is gone from the state, reads its ranges from the start.
func (p *Postgres) resume(snap *snapshot, from change.Checkpoint) error {
	prog := snap.prog
	for _, r := range snap.readers {
		rp := prog.reader(r.n)
		rp.Emitted, rp.Last = false, nil
		r.index, r.rng, r.after = rp.Reserved, 0, nil
		pos, ok := from[prog.stream(p.name, r.n)]
		var why string
		switch {
		case !ok || pos.Offset != prog.Offset || pos.Index < prog.First:
			why = "no snapshot row was committed"
		default:
			found, err := r.resumeAt(pos.Index)
			if err != nil {
				return err
			}
			if found {
				// Until the resumed read hands out a row, the committed
				// one is the last.
				r.last, r.hasLast = pos.Index, true
				continue
			}
			why = "the committed row's key is no longer in the state"
		}
		p.logger.Warn("postgres source: snapshot reader starts over", "source", p.name, "reader", r.n, "reason", why)
	}
	snap.countLeft()
	return nil
}

// publishedKey is the state key of the schemas the publication publishes
// as schemas (FOR TABLES IN SCHEMA), as a JSON array.
const publishedKey = "publication.schemas"

func readPublishedSchemas(st engine.State) ([]string, error) {
	b, err := st.Get(publishedKey)
	if err != nil || b == nil {
		return nil, err
	}
	var out []string
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("state %s: %w", publishedKey, err)
	}
	return out, nil
}

func savePublishedSchemas(st engine.State, schemas []string) error {
	b, err := json.Marshal(schemas)
	if err != nil {
		return err
	}
	return st.Put(publishedKey, b)
}

// late returns, of tables not yet copied, those that need a copy: all but
// those in a schema the publication already published as a schema when
// the sinks' positions were committed (published). Such a table was
// created after the last snapshot began (resolveTables listed every table
// of the schema then), and the stream replays every change published
// since the committed position, its CREATE's rows included; a copy would
// only send them twice.
func late(tables []*table, published []string) []*table {
	var out []*table
	for _, t := range tables {
		if !slices.Contains(published, t.Schema) {
			out = append(out, t)
		}
	}
	return out
}

// without returns the tables not named in skip, in order.
func without(tables []*table, skip []string) []*table {
	var out []*table
	for _, t := range tables {
		if !slices.Contains(skip, t.qualified()) {
			out = append(out, t)
		}
	}
	return out
}

func names(tables []*table) []string {
	out := make([]string, len(tables))
	for i, t := range tables {
		out[i] = t.qualified()
	}
	return out
}

func findingsError(findings []Finding) error {
	var msgs []string
	for _, f := range findings {
		if f.Severity == Error {
			msgs = append(msgs, f.String())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return engine.Permanent(errors.New(strings.Join(msgs, "; ")))
}

// Read returns the next batch: snapshot rows first, then streamed changes.
func (p *Postgres) Read(ctx context.Context) ([]change.Event, error) {
	if p.snap != nil {
		events, err := p.snap.next()
		if err == nil {
			if err := p.throttle.Wait(ctx, len(events)); err != nil {
				return nil, err
			}
			return events, nil
		}
		if !errors.Is(err, io.EOF) {
			return nil, err // the engine names the source
		}
		p.snap.close()
		p.snap = nil
		p.logger.Info("postgres source: snapshot read, streaming", "source", p.name)
		p.start()
	}
	select {
	case b := <-p.stream.out:
		return b, nil
	case err := <-p.errc:
		// The streamer has ended: hand out what it pushed before.
		select {
		case b := <-p.stream.out:
			p.errc <- err
			return b, nil
		default:
		}
		var lost *SlotLost
		if errors.As(err, &lost) && p.cfg.OnSlotLost == OnSlotLostResnapshot && ctx.Err() == nil {
			if err := p.resnapshot(ctx, lost); err != nil {
				return nil, err
			}
			return p.Read(ctx)
		}
		p.errc <- err   // later Reads fail the same way
		return nil, err // the engine names the source
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Ack records what every sink committed; streamed positions are
// confirmed to the slot with the next standby status update (snapshot
// positions lie before the slot's consistent point and confirm nothing).
func (p *Postgres) Ack(ctx context.Context, cp change.Checkpoint) error {
	pos, ok := cp[change.Stream{Source: p.name}]
	if !ok {
		return nil
	}
	if p.stream != nil {
		p.stream.ack(pos)
	}
	return nil
}

// Close stops reading and releases the connections; it does not wait
// for anything in flight to be committed.
func (p *Postgres) Close() error {
	if p.cancel != nil {
		p.cancel()
	}
	p.wg.Wait()
	if p.snap != nil {
		p.snap.close()
		p.snap = nil
	}
	return nil
}
