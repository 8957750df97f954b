package live

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-cdc/sluice/components"
	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/format"
	"github.com/sluice-cdc/sluice/pipelinetest"
	mysqlsink "github.com/sluice-cdc/sluice/sinks/mysql"
)

// Plan says how each source and sink of a pipeline file runs in a live
// test.
type Plan struct {
	Components []Component
}

// Component is one source or sink of a file and how a live test runs it.
type Component struct {
	Ref  string // "source.app", "sink.replica"
	Type string // the block's type: "postgres", "kafka", ...
	Live bool
	// How says what a live test runs it against, or why it does not run
	// it and how it is checked instead.
	How string
}

// String lists the live components, then the others with the reason:
// "live: source.app (postgres: ...); not live: sink.events (kafka: ...)".
func (p Plan) String() string {
	var live, other []string
	for _, c := range p.Components {
		s := c.Ref + " (" + c.Type + ": " + c.How + ")"
		if c.Live {
			live = append(live, s)
		} else {
			other = append(other, s)
		}
	}
	var parts []string
	if len(live) > 0 {
		parts = append(parts, "live: "+strings.Join(live, ", "))
	}
	if len(other) > 0 {
		parts = append(parts, "not live: "+strings.Join(other, ", "))
	}
	return strings.Join(parts, "; ")
}

// What each kind of component is in a live test.
const (
	howPostgresSource = "scratch copies of the input tables in a scratch schema, read through a scratch publication and slot"
	howFileSource     = "reads the inputs from a scratch file"
	howInjected       = "a scratch topic would need a broker of the test's own; the inputs are delivered as in memory"
	howMySQLSink      = "writes into a scratch database on its server"
	howPostgresSink   = "writes into a scratch schema of its database"
	howFileSink       = "writes to a scratch file"
	howKafkaSink      = "writing would publish to the real brokers; checked through the events it receives, as in memory"
	howWebhookSink    = "posting would reach the real receiver; checked through the events it receives, as in memory"
	howOtherSink      = "not supported live; checked through the events it receives, as in memory"
)

// PlanFor says how a live test runs each component of cfg.
func PlanFor(cfg *dsl.Config) Plan {
	var p Plan
	for _, s := range cfg.Sources {
		c := Component{Ref: "source." + s.Name, Type: s.Type}
		switch {
		case s.Postgres != nil:
			c.Live, c.How = true, howPostgresSource
		case s.File != nil:
			c.Live, c.How = true, howFileSource
		default:
			c.How = howInjected
		}
		p.Components = append(p.Components, c)
	}
	for _, s := range cfg.Sinks {
		c := Component{Ref: "sink." + s.Name, Type: s.Type}
		switch {
		case s.MySQL != nil:
			c.Live, c.How = true, howMySQLSink
		case s.Postgres != nil:
			c.Live, c.How = true, howPostgresSink
		case s.File != nil:
			c.Live, c.How = true, howFileSink
		case s.Kafka != nil:
			c.How = howKafkaSink
		case s.Webhook != nil:
			c.How = howWebhookSink
		default:
			c.How = howOtherSink
		}
		p.Components = append(p.Components, c)
	}
	return p
}

// Run runs every test of cfg live, in order, and returns the outcome of
// each (pipelinetest.Live outcomes, judged by pipelinetest.Judge). reg
// builds the real components (components.Registry()). Every scratch
// object of a test is removed when it ends, whatever its outcome.
func (s *Session) Run(ctx context.Context, cfg *dsl.Config, reg components.Kinds) []pipelinetest.Outcome {
	cfg = pipelinetest.Hermetic(cfg)
	out := make([]pipelinetest.Outcome, 0, len(cfg.Tests))
	for _, t := range cfg.Tests {
		if err := ctx.Err(); err != nil {
			out = append(out, pipelinetest.Outcome{Runner: pipelinetest.Live, Failure: "not run: interrupted (" + err.Error() + ")"})
			continue
		}
		out = append(out, s.runTest(ctx, cfg, reg, t))
	}
	return out
}

// Kinds of sources and sinks in a live test.
type sourceKind int

const (
	sourcePostgres sourceKind = iota
	sourceFile
	sourceInjected
	sourceIdle // no input of the test comes from it
)

type sinkKind int

const (
	sinkMySQL sinkKind = iota
	sinkPostgres
	sinkFile
	sinkRecorded
)

// input is one input of the test: where it comes from and the event the
// in-memory run makes of it.
type input struct {
	index int
	in    *dsl.TestInput
	src   *sourceState
	event change.Event
}

// sourceState is one source in a live test.
type sourceState struct {
	cfg    *dsl.Source // as the file has it
	kind   sourceKind
	pg     *pgServer
	slot   string // and publication
	events []change.Event

	scratchSchema map[string]string   // the inputs' schema → its scratch schema
	realSchema    map[string]string   // scratch schema → the inputs' schema
	tables        map[string]*pgTable // the inputs' "schema.table" → its scratch table
	tableOrder    []string

	// Guarded by testRun.mu.
	open     chan struct{} // closed once opened
	opened   bool
	xids     map[uint32]int // transaction → input index
	fenceXid uint32
	fenced   bool // fenceXid is set
	last     change.Position
	done     bool // read its fence or its end
}

// sinkState is one sink in a live test.
type sinkState struct {
	cfg    *dsl.Sink
	kind   sinkKind
	mysql  *mysqlServer
	pg     *pgServer
	where  string   // scratch database (mysql) or schema (postgres)
	copied []string // target tables created with the real table's DDL

	// Guarded by testRun.mu.
	flushed  change.Checkpoint
	received []change.Event // the events of the test's inputs it committed
	others   int            // events of other transactions it committed
}

// testRun is one test being run live.
type testRun struct {
	s    *Session
	n    int
	cfg  *dsl.Config
	test *dsl.Test
	dir  string

	inputs  []input
	sources map[string]*sourceState
	sinks   map[string]*sinkState
	notes   []string
	cleanup []func(ctx context.Context) error // run last first

	mu       sync.Mutex
	errs     map[string]error // stage → its last error
	dead     map[string]int   // stage → events dead-lettered
	paused   bool
	warnings lockedBuffer
}

// runTest runs one test live and removes its scratch objects.
func (s *Session) runTest(ctx context.Context, cfg *dsl.Config, reg components.Kinds, t *dsl.Test) pipelinetest.Outcome {
	start := time.Now()
	s.n++
	tr := &testRun{s: s, n: s.n, cfg: cfg, test: t, sources: map[string]*sourceState{}, sinks: map[string]*sinkState{},
		errs: map[string]error{}, dead: map[string]int{}}
	problems, views := tr.run(ctx, reg)
	if err := tr.removeScratch(); err != nil {
		problems = append(problems, "removing the scratch objects: "+err.Error())
	}
	notes := tr.notes
	if w := strings.TrimSpace(tr.warnings.String()); w != "" {
		notes = append(notes, "the pipeline logged:")
		for _, l := range strings.Split(w, "\n") {
			notes = append(notes, "  "+l)
		}
	}
	return pipelinetest.Outcome{Runner: pipelinetest.Live, Passed: len(problems) == 0, Failure: strings.Join(problems, "\n"),
		Views: views, Notes: notes, Elapsed: time.Since(start)}
}

// removeScratch runs the cleanups, last registered first, with a
// context of their own: a test cancelled by a signal still cleans up.
func (tr *testRun) removeScratch() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	for i := len(tr.cleanup) - 1; i >= 0; i-- {
		if err := tr.cleanup[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	tr.cleanup = nil
	return errors.Join(errs...)
}

func (tr *testRun) onCleanup(f func(ctx context.Context) error) { tr.cleanup = append(tr.cleanup, f) }

func (tr *testRun) note(format string, args ...any) {
	tr.notes = append(tr.notes, fmt.Sprintf(format, args...))
}

// run sets up the scratch objects, runs the pipeline on them, applies
// the inputs, waits for the sinks and judges what they did.
func (tr *testRun) run(ctx context.Context, reg components.Kinds) ([]string, []pipelinetest.View) {
	dir, err := os.MkdirTemp(tr.s.opts.TempDir, "sluice-test-live-")
	if err != nil {
		return []string{err.Error()}, nil
	}
	tr.dir = dir
	tr.onCleanup(func(context.Context) error { return os.RemoveAll(dir) })

	g0, err := components.Compile(tr.cfg, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		return []string{"the pipeline does not build: " + err.Error()}, nil
	}
	if p := tr.assignInputs(g0); len(p) > 0 {
		return p, nil
	}
	scfg := *tr.cfg
	scfg.Sources, scfg.Sinks = nil, nil
	for i, src := range tr.cfg.Sources {
		b, err := tr.prepareSource(ctx, i, src)
		if err != nil {
			return []string{"source." + src.Name + ": " + err.Error()}, nil
		}
		scfg.Sources = append(scfg.Sources, b)
	}
	for i, sink := range tr.cfg.Sinks {
		b, err := tr.prepareSink(ctx, i, sink, g0)
		if err != nil {
			return []string{"sink." + sink.Name + ": " + err.Error()}, nil
		}
		scfg.Sinks = append(scfg.Sinks, b)
	}
	if p := tr.insertSnapshots(ctx); len(p) > 0 {
		return p, nil
	}

	logger := slog.New(slog.NewTextHandler(&tr.warnings, &slog.HandlerOptions{Level: slog.LevelWarn,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}))
	g, err := components.Compile(&scfg, tr.registry(reg), logger)
	if err != nil {
		return []string{"the pipeline does not build: " + err.Error()}, nil
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- g.Run(runCtx, engine.RunOptions{
			Logger: logger, Stop: stop, StatePath: filepath.Join(dir, "state.db"), Observer: observer{tr},
			Linger: 10 * time.Millisecond, MinFlushInterval: 5 * time.Millisecond,
			MinBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second,
		})
	}()
	var runErr error
	ran := false
	finish := func() {
		if ran {
			return
		}
		ran = true
		close(stop)
		select {
		case runErr = <-done:
		case <-time.After(30 * time.Second):
			cancel()
			runErr = <-done
		}
	}
	defer finish()

	deadline := time.Now().Add(tr.s.opts.Timeout)
	if p := tr.await(ctx, done, &ran, &runErr, deadline, "the sources to open", tr.allOpened); len(p) > 0 {
		return p, nil
	}
	if p := tr.applyInputs(ctx); len(p) > 0 {
		return p, nil
	}
	if p := tr.await(ctx, done, &ran, &runErr, deadline, "the sinks to commit what the inputs caused", tr.caughtUp); len(p) > 0 {
		return p, nil
	}
	finish()
	var problems []string
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		problems = append(problems, "the pipeline stopped with an error: "+runErr.Error())
	}
	tr.mu.Lock()
	for stage, n := range tr.dead {
		problems = append(problems, fmt.Sprintf("%s dead-lettered %d event(s): %v", stage, n, tr.errs[stage]))
	}
	for _, st := range tr.sinks {
		if st.others > 0 {
			tr.note("sink.%s also received %d event(s) of transactions the test did not make (its own writes back into the source table, read again); they are not the inputs' and are left out of expect", st.cfg.Name, st.others)
		}
	}
	tr.mu.Unlock()
	found, views := pipelinetest.Judge(tr.cfg, tr.test, pipelinetest.Observation{
		Received: tr.received,
		Table:    func(et dsl.TestExpectTable) (pipelinetest.TableView, error) { return tr.table(ctx, et) },
	})
	return append(problems, found...), views
}

// await waits until cond holds, the pipeline stops, pauses or fails, or
// the deadline passes; it returns the problem in the last three cases.
func (tr *testRun) await(ctx context.Context, done <-chan error, ran *bool, runErr *error, deadline time.Time, what string, cond func() bool) []string {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return nil
		}
		tr.mu.Lock()
		paused := tr.paused
		tr.mu.Unlock()
		if paused {
			return []string{"the pipeline paused: " + tr.lastErrors()}
		}
		if time.Now().After(deadline) {
			return []string{fmt.Sprintf("waited %s for %s (--live-timeout): %s; errors: %s", tr.s.opts.Timeout, what, tr.waitingFor(what), tr.lastErrors())}
		}
		select {
		case err := <-done:
			*ran, *runErr = true, err
			if cond() {
				return nil
			}
			if err == nil {
				return []string{"the pipeline stopped before " + what + ": " + tr.lastErrors()}
			}
			return []string{"the pipeline stopped: " + err.Error()}
		case <-ctx.Done():
			return []string{"interrupted: " + ctx.Err().Error()}
		case <-tick.C:
		}
	}
}

// waitingFor says what an await that timed out still waited for.
func (tr *testRun) waitingFor(what string) string {
	if p := tr.pending(); p != "" && strings.HasPrefix(what, "the sinks") {
		return p
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var closed []string
	for _, src := range tr.cfg.Sources {
		if st := tr.sources[src.Name]; st.kind == sourcePostgres && !st.opened {
			closed = append(closed, "source."+src.Name)
		}
	}
	if len(closed) > 0 {
		return strings.Join(closed, ", ") + " did not open"
	}
	return "nothing more is known"
}

func (tr *testRun) lastErrors() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.errs) == 0 {
		return "no error was reported"
	}
	stages := make([]string, 0, len(tr.errs))
	for s := range tr.errs {
		stages = append(stages, s)
	}
	sort.Strings(stages)
	var parts []string
	for _, s := range stages {
		parts = append(parts, s+": "+tr.errs[s].Error())
	}
	return strings.Join(parts, "; ")
}

// assignInputs finds each input's source and the event the in-memory
// run makes of it.
func (tr *testRun) assignInputs(g *engine.Graph) []string {
	next := map[string]uint64{}
	for _, src := range tr.cfg.Sources {
		st := &sourceState{cfg: src, open: make(chan struct{}), xids: map[uint32]int{}, tables: map[string]*pgTable{},
			scratchSchema: map[string]string{}, realSchema: map[string]string{}}
		switch {
		case src.Postgres != nil:
			st.kind = sourcePostgres
		case src.File != nil:
			st.kind = sourceFile
		default:
			st.kind = sourceInjected
		}
		tr.sources[src.Name] = st
	}
	for i := range tr.test.Inputs {
		in := &tr.test.Inputs[i]
		src, err := pipelinetest.SourceFor(tr.cfg, &in.Event)
		if err != nil {
			return []string{pipelinetest.InputLabel(i, in) + ": " + err.Error()}
		}
		next[src.Name]++
		e := pipelinetest.InputEvent(tr.cfg, g, src, &in.Event, next[src.Name])
		st := tr.sources[src.Name]
		tr.inputs = append(tr.inputs, input{index: i, in: in, src: st, event: e})
		st.events = append(st.events, e)
	}
	kinds := map[sourceKind]bool{}
	for _, st := range tr.sources {
		if len(st.events) == 0 && st.kind == sourcePostgres {
			st.kind = sourceIdle
		}
		if len(st.events) > 0 {
			kinds[st.kind] = true
		}
	}
	if len(kinds) > 1 {
		tr.note("the inputs come from sources of different kinds: each source delivers its own in order, but not in the order written across sources")
	}
	return nil
}

// prepareSource creates a source's scratch objects and returns the block
// the test runs it with.
func (tr *testRun) prepareSource(ctx context.Context, i int, src *dsl.Source) (*dsl.Source, error) {
	st := tr.sources[src.Name]
	b := *src
	switch st.kind {
	case sourceIdle:
		tr.note("source.%s: no input of this test comes from it; it delivers nothing", src.Name)
		return &b, nil
	case sourceInjected:
		if len(st.events) > 0 {
			st.last = st.events[len(st.events)-1].Position
		}
		st.done = true
		return &b, nil
	case sourceFile:
		var buf []byte
		for _, e := range st.events {
			e.Position, e.Tx = change.Position{}, change.Tx{}
			buf = format.Native{}.Append(buf, &e)
			buf = append(buf, '\n')
		}
		path := filepath.Join(tr.dir, "source."+src.Name+".jsonl")
		if err := os.WriteFile(path, buf, 0o600); err != nil {
			return nil, err
		}
		f := *src.File
		f.Path, f.Follow = path, false
		b.File = &f
		return &b, nil
	}
	if src.Postgres.DSN == "" {
		return nil, fmt.Errorf("dsn is empty (is the environment variable it reads set?); a live test needs the source database")
	}
	pg, err := tr.s.pg(ctx, src.Postgres.DSN)
	if err != nil {
		return nil, err
	}
	st.pg = pg
	byTable := map[string][]*input{}
	for i := range tr.inputs {
		in := &tr.inputs[i]
		if in.src != st {
			continue
		}
		q := in.event.QualifiedTable()
		if _, seen := byTable[q]; !seen {
			st.tableOrder = append(st.tableOrder, q)
		}
		byTable[q] = append(byTable[q], in)
	}
	p := *src.Postgres
	p.Tables, p.Exclude = nil, nil
	for _, q := range st.tableOrder {
		first := byTable[q][0].event
		schema := first.Schema
		if schema == "" {
			schema = "public"
		}
		scratch, ok := st.scratchSchema[schema]
		if !ok {
			scratch = tr.s.name(tr.n, fmt.Sprintf("s%d%c_%s", i, 'a'+len(st.scratchSchema), src.Name))
			if err := pg.createSchema(ctx, scratch); err != nil {
				return nil, err
			}
			tr.onCleanup(func(ctx context.Context) error { return pg.dropSchema(ctx, scratch) })
			st.scratchSchema[schema], st.realSchema[scratch] = scratch, schema
		}
		real, exists, err := pg.realTable(ctx, schema, first.Table)
		if err != nil {
			return nil, err
		}
		if exists {
			if err := pg.copyTable(ctx, scratch, real, first.Table); err != nil {
				return nil, err
			}
			tr.note("source.%s: %s copied from the real table into scratch schema %s (LIKE ... INCLUDING ALL)", src.Name, q, scratch)
		} else {
			cols, key := inferTable(q, byTable[q], src.Postgres.Exclude)
			if err := pg.createTable(ctx, scratch, first.Table, cols, key); err != nil {
				return nil, err
			}
			tr.note("source.%s: %s is not in the source database; created from the inputs in scratch schema %s (key %s)", src.Name, q, scratch, keyText(key))
		}
		t, err := pg.describe(ctx, scratch, first.Table)
		if err != nil {
			return nil, err
		}
		t.copied = exists
		st.tables[q] = t
		p.Tables = append(p.Tables, scratch+"."+first.Table)
		for _, x := range src.Postgres.Exclude {
			if col, ok := strings.CutPrefix(x, q+"."); ok && !strings.Contains(col, ".") {
				p.Exclude = append(p.Exclude, scratch+"."+first.Table+"."+col)
			}
		}
	}
	st.slot = tr.s.name(tr.n, fmt.Sprintf("r%d_%s", i, src.Name))
	if p.Snapshot == "never" && slices.ContainsFunc(st.events, func(e change.Event) bool { return e.Op == change.Snapshot }) {
		tr.note(`source.%s has snapshot = "never": its snapshot inputs are rows in the tables, and it does not read them, as it would not`, src.Name)
	}
	p.Slot, p.Publication = st.slot, st.slot
	tr.onCleanup(func(ctx context.Context) error { return pg.dropReplication(ctx, st.slot, st.slot) })
	b.Postgres = &p
	return &b, nil
}

func keyText(key []string) string {
	if len(key) == 0 {
		return "none: REPLICA IDENTITY FULL"
	}
	return strings.Join(key, ", ")
}

// inferTable derives a table for inputs whose table the source database
// lacks: a column per column the inputs give (and per column the source
// excludes), typed by the values, keyed by the key the in-memory run
// gives the first input.
func inferTable(qualified string, inputs []*input, exclude []string) ([]pgColumn, []string) {
	kinds := map[string]map[string]bool{}
	add := func(r change.Row) {
		for c, v := range r.All() {
			if kinds[c] == nil {
				kinds[c] = map[string]bool{}
			}
			if k := valueKind(v); k != "" {
				kinds[c][k] = true
			}
		}
	}
	for _, in := range inputs {
		add(in.event.After)
		add(in.event.Before)
		add(in.in.Event.After) // the columns the source excludes too
		add(in.in.Event.Before)
		add(in.event.Key)
	}
	for _, x := range exclude {
		if col, ok := strings.CutPrefix(x, qualified+"."); ok && kinds[col] == nil {
			kinds[col] = map[string]bool{}
		}
	}
	var key []string
	if k := inputs[0].event.Key; k.Len() > 0 {
		key = k.Names()
		for _, c := range key {
			if kinds[c] == nil {
				key = nil
				break
			}
		}
	}
	names := make([]string, 0, len(kinds))
	for c := range kinds {
		names = append(names, c)
	}
	sort.Slice(names, func(i, j int) bool {
		ki, kj := slicesIndex(key, names[i]), slicesIndex(key, names[j])
		switch {
		case ki >= 0 && kj >= 0:
			return ki < kj
		case ki >= 0 || kj >= 0:
			return ki >= 0
		}
		return names[i] < names[j]
	})
	cols := make([]pgColumn, len(names))
	for i, c := range names {
		cols[i] = pgColumn{name: c, typ: columnType(kinds[c])}
	}
	return cols, key
}

func slicesIndex(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// valueKind is what a column value says of its column's type.
func valueKind(v any) string {
	switch v.(type) {
	case nil:
		return ""
	case bool:
		return "bool"
	case int64, int, int32:
		return "int"
	case float64, float32, change.Numeric:
		return "float"
	case string:
		return "string"
	case map[string]any, []any, change.JSON:
		return "json"
	}
	return "string"
}

// columnType is the PostgreSQL type of a column whose values are of the
// kinds given: bigint, numeric (exact, for fractions), boolean, jsonb,
// else text.
func columnType(kinds map[string]bool) string {
	switch {
	case len(kinds) == 1 && kinds["int"]:
		return "bigint"
	case len(kinds) == 1 && kinds["float"], len(kinds) == 2 && kinds["int"] && kinds["float"]:
		return "numeric"
	case len(kinds) == 1 && kinds["bool"]:
		return "boolean"
	case len(kinds) == 1 && kinds["json"]:
		return "jsonb"
	}
	return "text"
}

// prepareSink creates a sink's scratch target and returns the block the
// test runs it with.
func (tr *testRun) prepareSink(ctx context.Context, i int, sink *dsl.Sink, g *engine.Graph) (*dsl.Sink, error) {
	st := &sinkState{cfg: sink, flushed: change.Checkpoint{}}
	tr.sinks[sink.Name] = st
	b := *sink
	// The target tables: `table`, else the tables of the inputs that
	// come from the sources upstream of the sink.
	targets := func(ts *dsl.TableSink) (names []string, database string) {
		if ts.Table != "" {
			if db, t, ok := strings.Cut(ts.Table, "."); ok {
				return []string{t}, db
			}
			return []string{ts.Table}, ""
		}
		seen := map[string]bool{}
		for _, in := range tr.inputs {
			if slicesIndex(g.SinksOf(in.src.cfg.Name), sink.Name) >= 0 && !seen[in.event.Table] {
				seen[in.event.Table] = true
				names = append(names, in.event.Table)
			}
		}
		return names, ""
	}
	switch {
	case sink.MySQL != nil:
		st.kind = sinkMySQL
		ts := *sink.MySQL
		if ts.DSN == "" {
			return nil, fmt.Errorf("dsn is empty (is the environment variable it reads set?); a live test needs the target database")
		}
		dsnCfg, err := mysqlsink.ParseDSN(ts.DSN)
		if err != nil {
			return nil, fmt.Errorf("dsn: %w", err)
		}
		admin, err := mysqlConfig(ts.DSN, ts.TLS)
		if err != nil {
			return nil, fmt.Errorf("dsn: %w", err)
		}
		m, err := tr.s.mysql(ctx, admin)
		if err != nil {
			return nil, err
		}
		st.mysql, st.where = m, tr.s.name(tr.n, fmt.Sprintf("k%d_%s", i, sink.Name))
		if err := m.createDatabase(ctx, st.where); err != nil {
			return nil, err
		}
		tr.onCleanup(func(ctx context.Context) error { return m.dropDatabase(ctx, st.where) })
		names, database := targets(&ts)
		if database == "" {
			database = dsnCfg.DBName
		}
		for _, name := range names {
			ok, err := m.copyTable(ctx, database, name, st.where)
			if err != nil {
				return nil, err
			}
			if ok {
				st.copied = append(st.copied, name)
				tr.note("sink.%s: target table %s created with the DDL of %s.%s (SHOW CREATE TABLE)", sink.Name, name, database, name)
			}
		}
		ts.DSN = scratchDSN(dsnCfg, st.where)
		if _, t, ok := strings.Cut(ts.Table, "."); ok {
			ts.Table = st.where + "." + t
		}
		b.MySQL = &ts
	case sink.Postgres != nil:
		st.kind = sinkPostgres
		ts := *sink.Postgres
		if ts.DSN == "" {
			return nil, fmt.Errorf("dsn is empty (is the environment variable it reads set?); a live test needs the target database")
		}
		if schema, ok := tr.writesBack(&ts); ok {
			// The sink writes into its source's own table: the scratch one.
			st.pg, st.where = tr.s.pgs[ts.DSN], schema
			tr.note("sink.%s writes back into its source's table: into the scratch copy in %s", sink.Name, schema)
		} else {
			pg, err := tr.s.pg(ctx, ts.DSN)
			if err != nil {
				return nil, err
			}
			st.pg, st.where = pg, tr.s.name(tr.n, fmt.Sprintf("k%d_%s", i, sink.Name))
			if err := pg.createSchema(ctx, st.where); err != nil {
				return nil, err
			}
			tr.onCleanup(func(ctx context.Context) error { return pg.dropSchema(ctx, st.where) })
			names, schema := targets(&ts)
			for _, name := range names {
				real, exists, err := pg.realTable(ctx, schema, name)
				if err != nil {
					return nil, err
				}
				if exists {
					if err := pg.copyTable(ctx, st.where, real, name); err != nil {
						return nil, err
					}
					st.copied = append(st.copied, name)
					tr.note("sink.%s: target table %s created LIKE %s.%s INCLUDING ALL", sink.Name, name, real, name)
				}
			}
		}
		ts.DSN = withSearchPath(ts.DSN, st.where)
		if _, t, ok := strings.Cut(ts.Table, "."); ok {
			ts.Table = st.where + "." + t
		}
		b.Postgres = &ts
	case sink.File != nil:
		st.kind = sinkFile
		f := *sink.File
		f.Path = filepath.Join(tr.dir, "sink."+sink.Name+".jsonl")
		b.File = &f
	default:
		st.kind = sinkRecorded
	}
	return &b, nil
}

// writesBack reports whether a postgres sink writes into a table a live
// source of the test reads (the same dsn, and its table or by default the
// source's), and the scratch schema that table is in.
func (tr *testRun) writesBack(ts *dsl.TableSink) (string, bool) {
	if ts.Mode == "append" {
		return "", false
	}
	for _, src := range tr.cfg.Sources {
		st := tr.sources[src.Name]
		if st.kind != sourcePostgres || src.Postgres.DSN != ts.DSN {
			continue
		}
		for _, q := range st.tableOrder {
			schema, table, _ := strings.Cut(q, ".")
			if ts.Table == "" || ts.Table == table || ts.Table == q {
				return st.scratchSchema[schema], true
			}
		}
	}
	return "", false
}

// insertSnapshots inserts the inputs with op "snapshot" of postgres
// sources before the pipeline starts, so that the source's snapshot reads
// them. A snapshot input after another input of its source cannot be
// made live.
func (tr *testRun) insertSnapshots(ctx context.Context) []string {
	changed := map[*sourceState]bool{}
	for _, in := range tr.inputs {
		if in.src.kind != sourcePostgres {
			continue
		}
		if in.event.Op != change.Snapshot {
			changed[in.src] = true
			continue
		}
		label := pipelinetest.InputLabel(in.index, in.in)
		if changed[in.src] {
			return []string{label + `: op = "snapshot" after a change of its source cannot run live: the source's snapshot reads the tables when the pipeline starts, before any change; put the snapshot inputs first`}
		}
		t := in.src.tables[in.event.QualifiedTable()]
		stmt, args, err := t.statement(&in.in.Event, &in.event)
		if err == nil {
			_, err = in.src.pg.conn.Exec(ctx, stmt, append([]any{pgxSimple}, args...)...)
		}
		if err != nil {
			return []string{fmt.Sprintf("%s: the source database refused the row: %s", label, pgMessage(err))}
		}
	}
	return nil
}

// applyInputs applies every input of a postgres source (but the
// snapshot rows) as one statement in a transaction of its own, in order,
// then writes each source's fence.
func (tr *testRun) applyInputs(ctx context.Context) []string {
	for _, in := range tr.inputs {
		if in.src.kind != sourcePostgres || in.event.Op == change.Snapshot {
			continue
		}
		label := pipelinetest.InputLabel(in.index, in.in)
		t := in.src.tables[in.event.QualifiedTable()]
		stmt, args, err := t.statement(&in.in.Event, &in.event)
		if err != nil {
			return []string{label + ": " + err.Error()}
		}
		src, index := in.src, in.index
		n, err := src.pg.apply(ctx, stmt, args, func(xid uint32) {
			tr.mu.Lock()
			src.xids[xid] = index
			tr.mu.Unlock()
		})
		if err != nil {
			return []string{fmt.Sprintf("%s: the source database refused it: %s\n  statement: %s", label, pgMessage(err), stmt)}
		}
		if n == 0 && (in.event.Op == change.Update || in.event.Op == change.Delete) {
			return []string{fmt.Sprintf("%s: the %s changed no row of %s: a real source delivers nothing for it; insert the row in an earlier input (or give it as op = \"snapshot\" first)\n  statement: %s",
				label, strings.ToUpper(in.event.Op.String()), in.event.QualifiedTable(), stmt)}
		}
	}
	for _, st := range tr.sources {
		if st.kind != sourcePostgres {
			continue
		}
		if _, err := st.pg.apply(ctx, fenceStatement, nil, func(xid uint32) {
			tr.mu.Lock()
			st.fenceXid, st.fenced = xid, true
			tr.mu.Unlock()
		}); err != nil {
			return []string{fmt.Sprintf("source.%s: write the fence: %s", st.cfg.Name, pgMessage(err))}
		}
	}
	return nil
}

// registry builds the test's components: the real ones of reg for what
// runs live (wrapped to follow them), stand-ins for the rest.
func (tr *testRun) registry(reg components.Kinds) components.Kinds {
	out := components.Kinds{Transform: reg.Transform, Sources: map[string]func(engine.Build, *dsl.Source) (engine.Source, error){},
		Sinks: map[string]func(engine.Build, *dsl.Sink) (engine.Sink, error){}}
	for _, s := range tr.cfg.Sources {
		typ := s.Type
		real := reg.Sources[typ]
		out.Sources[typ] = func(b engine.Build, s *dsl.Source) (engine.Source, error) {
			st := tr.sources[s.Name]
			switch st.kind {
			case sourceIdle:
				return idleSource{}, nil
			case sourceInjected:
				return &injectedSource{events: st.events}, nil
			}
			if real == nil {
				return nil, fmt.Errorf("no source of type %q", typ)
			}
			inner, err := real(b, s)
			if err != nil {
				return nil, err
			}
			return &liveSource{inner: inner, st: st, t: tr, rels: map[*change.Relation]*change.Relation{}}, nil
		}
	}
	for _, s := range tr.cfg.Sinks {
		typ := s.Type
		real := reg.Sinks[typ]
		out.Sinks[typ] = func(b engine.Build, s *dsl.Sink) (engine.Sink, error) {
			st := tr.sinks[s.Name]
			if st.kind == sinkRecorded {
				return &liveSink{inner: recordSink{}, st: st, t: tr}, nil
			}
			if real == nil {
				return nil, fmt.Errorf("no sink of type %q", typ)
			}
			inner, err := real(b, s)
			if err != nil {
				return nil, err
			}
			return &liveSink{inner: inner, st: st, t: tr}, nil
		}
	}
	return out
}

// opened records that a live source has opened (its slot exists).
func (tr *testRun) opened(st *sourceState) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	st.opened = true
}

func (tr *testRun) allOpened() bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, st := range tr.sources {
		if st.kind == sourcePostgres && !st.opened {
			return false
		}
	}
	return true
}

// read records what a live source handed on: its last position, and its
// fence or its end.
func (tr *testRun) read(st *sourceState, events []change.Event, eof bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, e := range events {
		if st.kind == sourceFile {
			st.last = e.Position
		}
		if st.kind == sourcePostgres && st.fenced && e.Op == change.Mark && uint32(e.Tx.ID) == st.fenceXid {
			st.last, st.done = e.Position, true
		}
	}
	if eof {
		st.done = true
	}
}

// flushed records what a sink committed.
func (tr *testRun) flushed(st *sinkState, cp change.Checkpoint, events []change.Event) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	st.flushed = cp.Clone()
	for _, e := range events {
		src := tr.sources[e.Position.Source]
		if src != nil && src.kind == sourcePostgres && e.Op != change.Snapshot {
			if _, ours := src.xids[uint32(e.Tx.ID)]; !ours {
				st.others++
				continue
			}
		}
		st.received = append(st.received, e)
	}
}

// caughtUp reports whether every source has delivered its fence or its
// end and every sink downstream has committed past it.
func (tr *testRun) caughtUp() bool { return tr.pending() == "" }

// pending says what caughtUp still waits for: "" once nothing.
func (tr *testRun) pending() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, s := range tr.cfg.Sinks {
		st := tr.sinks[s.Name]
		for _, src := range tr.cfg.Sources {
			ss := tr.sources[src.Name]
			if ss.kind == sourceIdle || !feeds(tr.cfg, src.Name, s) {
				continue
			}
			if !ss.done {
				if ss.kind == sourcePostgres {
					return fmt.Sprintf("source.%s has not delivered the fence written after the inputs (transaction %d)", src.Name, ss.fenceXid)
				}
				return fmt.Sprintf("source.%s has not reached its end", src.Name)
			}
			if !ss.last.IsZero() && !st.flushed.Covers(ss.last) {
				return fmt.Sprintf("sink.%s has not committed source.%s's position %s (it committed %v)", s.Name, src.Name, ss.last, st.flushed)
			}
		}
	}
	return ""
}

// feeds reports whether source src is upstream of sink s.
func feeds(cfg *dsl.Config, src string, s *dsl.Sink) bool {
	transforms := map[string]*dsl.Transform{}
	for _, t := range cfg.Transforms {
		transforms[t.Name] = t
	}
	seen := map[string]bool{}
	var up func(refs []dsl.Ref) bool
	up = func(refs []dsl.Ref) bool {
		for _, r := range refs {
			switch r.Kind {
			case dsl.SourceRef:
				if r.Name == src {
					return true
				}
			case dsl.TransformRef:
				if t := transforms[r.Name]; t != nil && !seen[r.Name] {
					seen[r.Name] = true
					if up(t.From) {
						return true
					}
				}
			}
		}
		return false
	}
	return up(s.From)
}

func (tr *testRun) received(sink string) []change.Event {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if st := tr.sinks[sink]; st != nil {
		return append([]change.Event(nil), st.received...)
	}
	return nil
}

func (tr *testRun) failed(stage string, err error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.errs[stage] = err
}

func (tr *testRun) deadLettered(stage string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.dead[stage]++
}

func (tr *testRun) phase(p engine.Phase) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if p == engine.PhasePaused {
		tr.paused = true
	}
}

// table reads the target table an expect_table names, as the target
// renders it.
func (tr *testRun) table(ctx context.Context, et dsl.TestExpectTable) (pipelinetest.TableView, error) {
	st := tr.sinks[et.Sink]
	ts := tableSink(st.cfg)
	tr.mu.Lock()
	received := append([]change.Event(nil), st.received...)
	tr.mu.Unlock()
	if st.kind == sinkFile || st.kind == sinkRecorded {
		// Events, not rows: modelled from what the sink received, as in
		// memory.
		t := pipelinetest.NewTable(et.Table, nil)
		for i := range received {
			if err := t.Apply(&received[i]); err != nil {
				return pipelinetest.TableView{}, err
			}
		}
		return t.View(), nil
	}
	name := et.Table
	if name == "" && ts.Table != "" {
		name = ts.Table
	}
	if _, t, ok := strings.Cut(name, "."); ok {
		name = t
	}
	if name == "" {
		var names []string
		for _, e := range received {
			if slicesIndex(names, e.Table) < 0 {
				names = append(names, e.Table)
			}
		}
		for _, c := range st.copied {
			if slicesIndex(names, c) < 0 {
				names = append(names, c)
			}
		}
		switch len(names) {
		case 0:
			return pipelinetest.TableView{Key: []string{"id"}, Target: st.cfg.Type}, nil
		case 1:
			name = names[0]
		default:
			return pipelinetest.TableView{}, fmt.Errorf("the sink wrote tables %s: say which one with table = \"...\"", strings.Join(names, ", "))
		}
	}
	v := pipelinetest.TableView{Name: name}
	var key []string
	var err error
	switch st.kind {
	case sinkMySQL:
		var exists bool
		v.Rows, key, exists, err = st.mysql.rows(ctx, st.where, name)
		if err == nil && !exists {
			v.Rows = nil
		}
		v.Target = "mysql, scratch database " + st.where
	case sinkPostgres:
		var t *pgTable
		v.Rows, t, err = st.pg.rows(ctx, st.where, name)
		if t != nil {
			key = t.key
		}
		v.Target = "postgres, scratch schema " + st.where
	}
	if err != nil {
		return pipelinetest.TableView{}, err
	}
	switch {
	case ts.Mode == "append":
		v.Key, v.Optional = []string{pipelinetest.PositionColumn}, []string{pipelinetest.OpColumn, pipelinetest.PositionColumn, pipelinetest.CommitTimeColumn}
	case len(ts.Key) > 0:
		v.Key = ts.Key
	case len(key) > 0:
		v.Key = key
	default:
		v.Key = []string{"id"}
	}
	return v, nil
}

func tableSink(s *dsl.Sink) *dsl.TableSink {
	if s.MySQL != nil {
		return s.MySQL
	}
	if s.Postgres != nil {
		return s.Postgres
	}
	return &dsl.TableSink{}
}

// lockedBuffer collects the pipeline's warnings from its stages'
// goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fenceStatement is the fence a test writes after its inputs.
const fenceStatement = "SELECT pg_logical_emit_message(true, 'sluice_scratch_fence', '')"

// statement is the SQL that makes input in (as written; e is the event
// the in-memory run makes of it, for its key) happen to table t: INSERT,
// UPDATE of the row Before locates (else e's key) setting the columns of
// After whose value Before does not already give, DELETE of it, or
// TRUNCATE. Values travel as text, which PostgreSQL casts to each
// column's type.
func (t *pgTable) statement(in, e *change.Event) (string, []any, error) {
	table := qualified(t.schema, t.name)
	var args []any
	arg := func(col pgColumn, v any) string {
		args = append(args, pgArg(v, col.typ))
		return "$" + strconv.Itoa(len(args))
	}
	columns := func(r change.Row) ([]pgColumn, error) {
		var cols []pgColumn
		for _, name := range r.Names() {
			c, ok := t.column(name)
			if !ok {
				return nil, fmt.Errorf("column %q is not a column of %s.%s (the real table's copy); add it to the table or take it out of the input", name, t.schema, t.name)
			}
			if !c.generated {
				cols = append(cols, c)
			}
		}
		return cols, nil
	}
	locate := func() (string, error) {
		row := in.Before
		if row.Len() == 0 {
			row = e.Key
		}
		if row.Len() == 0 {
			return "", fmt.Errorf("the %s gives no before (and its row no key) to find the row by", in.Op)
		}
		cols, err := columns(row)
		if err != nil {
			return "", err
		}
		var conds []string
		for _, c := range cols {
			conds = append(conds, ident(c.name)+" IS NOT DISTINCT FROM "+arg(c, row.Get(c.name)))
		}
		return " WHERE " + strings.Join(conds, " AND "), nil
	}
	switch in.Op {
	case change.Insert, change.Snapshot:
		cols, err := columns(in.After)
		if err != nil {
			return "", nil, err
		}
		if len(cols) == 0 {
			return "INSERT INTO " + table + " DEFAULT VALUES", nil, nil
		}
		names, vals := make([]string, len(cols)), make([]string, len(cols))
		for i, c := range cols {
			names[i], vals[i] = ident(c.name), arg(c, in.After.Get(c.name))
		}
		return "INSERT INTO " + table + " (" + strings.Join(names, ", ") + ") OVERRIDING SYSTEM VALUE VALUES (" + strings.Join(vals, ", ") + ")", args, nil
	case change.Update:
		cols, err := columns(in.After)
		if err != nil {
			return "", nil, err
		}
		if len(cols) == 0 {
			return "", nil, fmt.Errorf("the update gives no column to set")
		}
		// A column After gives with the value Before gives is left
		// alone, as an application would (an identity column, GENERATED
		// ALWAYS, may not even be set to its own value).
		var sets []string
		for _, c := range cols {
			if old, ok := in.Before.Lookup(c.name); ok && pipelinetest.Equal(old, in.After.Get(c.name)) && len(cols) > 1 {
				continue
			}
			sets = append(sets, ident(c.name)+" = "+arg(c, in.After.Get(c.name)))
		}
		if len(sets) == 0 {
			sets = append(sets, ident(cols[0].name)+" = "+arg(cols[0], in.After.Get(cols[0].name)))
		}
		where, err := locate()
		if err != nil {
			return "", nil, err
		}
		return "UPDATE " + table + " SET " + strings.Join(sets, ", ") + where, args, nil
	case change.Delete:
		where, err := locate()
		if err != nil {
			return "", nil, err
		}
		return "DELETE FROM " + table + where, args, nil
	case change.Truncate:
		return "TRUNCATE " + table, nil, nil
	}
	return "", nil, fmt.Errorf("op %s cannot be made a statement", in.Op)
}

// pgArg is a value's text for a column of type typ (nil for NULL).
func pgArg(v any, typ string) any {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case change.Numeric:
		return string(x)
	case change.JSON:
		return string(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []byte:
		if typ == "bytea" {
			return `\x` + fmt.Sprintf("%x", x)
		}
		return string(x)
	case []any:
		if strings.HasSuffix(typ, "[]") {
			parts := make([]string, len(x))
			for i, e := range x {
				s, _ := pgArg(e, strings.TrimSuffix(typ, "[]")).(string)
				if e == nil {
					s = "NULL"
				} else {
					s = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
				}
				parts[i] = s
			}
			return "{" + strings.Join(parts, ",") + "}"
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
