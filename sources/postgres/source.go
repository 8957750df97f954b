package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"

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

	snap   *snapshotReader // non-nil while the snapshot runs
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
	// Where the sinks are in the snapshot's rows: the stream's position,
	// or for a copy of tables added later, its own (see doc.go).
	spos, hasSpos := from[prog.stream(p.name)]
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
		HasPos: hasPos, HasProg: hasProg, ProgComplete: hasProg && prog.complete(spos, hasSpos),
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

	snap := &snapshotReader{source: p.name, conn: conn, types: types, tables: snapTables, state: p.st, ctx: p.ctx}
	for _, t := range snapTables {
		snap.rels = append(snap.rels, dec.seed(t))
	}
	switch {
	case added:
		prog = p.addedSnapshot(prog, pos, earlier, snapTables)
		snap.index = prog.First
	case !hasProg || prog.Offset != snapOffset || exported != "":
		prog = SnapshotProgress{Offset: snapOffset}
		for _, t := range snapTables {
			prog.Tables = append(prog.Tables, TableProgress{Table: t.qualified(), RowsEstimated: t.Estimate})
		}
	default:
		prog.Earlier = earlier // none when a sink has nothing: it gets every table
		if err := p.resume(snap, &prog, spos, hasSpos, snapTables); err != nil {
			return err
		}
	}
	snap.prog = &prog
	if err := snap.begin(ctx, exported); err != nil {
		return err
	}
	if err := snap.reserve(true); err != nil {
		return err
	}
	if err := savePublishedSchemas(p.st, schemas); err != nil {
		return err
	}
	keep = true
	p.snap = snap
	p.logger.Info("postgres source: snapshot", "source", p.name, "tables", len(tables), "first_index", snap.index)
	return nil
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
	prog := SnapshotProgress{Offset: pos.Offset + 1, Earlier: earlier, Partition: AddedPartition, First: last.Reserved}
	for _, t := range tables {
		prog.Tables = append(prog.Tables, TableProgress{Table: t.qualified(), RowsEstimated: t.Estimate})
	}
	return prog
}

// resume sets up a snapshot that an earlier run started: after the last
// row every sink committed, in a new transaction, numbering rows from the
// reserved bound (see doc.go).
func (p *Postgres) resume(snap *snapshotReader, prog *SnapshotProgress, pos change.Position, hasPos bool, tables []*table) error {
	prog.Emitted, prog.Last = false, nil
	snap.index = prog.Reserved
	same := len(prog.Tables) == len(tables)
	for i := 0; same && i < len(tables); i++ {
		same = prog.Tables[i].Table == tables[i].qualified()
	}
	var why string
	switch {
	case !same:
		why = "the table list changed"
	case !hasPos || pos.Offset != prog.Offset || pos.Index < prog.First:
		why = "no snapshot row was committed"
	default:
		ok, err := snap.resumeAt(pos.Index)
		if err != nil {
			return err
		}
		if ok {
			// Until the resumed read hands out a row, the committed one
			// is the last.
			snap.last, snap.hasLast = pos.Index, true
			for i := range prog.Tables {
				prog.Tables[i].Done = i < snap.table
			}
			return nil
		}
		why = "the committed row's key is no longer in the state"
	}
	p.logger.Warn("postgres source: snapshot starts over", "source", p.name, "reason", why)
	prog.Tables = prog.Tables[:0]
	for _, t := range tables {
		prog.Tables = append(prog.Tables, TableProgress{Table: t.qualified(), RowsEstimated: t.Estimate})
	}
	snap.table, snap.after = 0, nil
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
