package verify

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/components"
	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
	pgsource "github.com/sluice-cdc/sluice/sources/postgres"
)

// Defaults of Options.
const (
	DefaultChunk       = 10000
	DefaultMaxDiffs    = 100
	DefaultRechecks    = 3
	DefaultRecheckWait = 2 * time.Second
)

// Options tune a verification. The zero value uses the defaults.
type Options struct {
	// Chunk is how many source keys one chunk covers (default 10,000):
	// the rows held in memory at once are this many keys and hashes.
	Chunk int
	// MaxDiffs bounds the differing keys listed per table pair (default
	// 100); the counts stay exact.
	MaxDiffs int
	// Rechecks is how many times a chunk that differs is read again,
	// after RecheckWait, before its differences are reported (default
	// 3; negative: never), so that changes a running pipeline has not
	// applied yet are not reported as differences.
	Rechecks    int
	RecheckWait time.Duration // default 2s
	Logger      *slog.Logger  // default slog.Default()

	// onRecheck, for tests, runs before each wait for a re-read.
	onRecheck func()
}

func (o Options) withDefaults() Options {
	if o.Chunk <= 0 {
		o.Chunk = DefaultChunk
	}
	if o.MaxDiffs <= 0 {
		o.MaxDiffs = DefaultMaxDiffs
	}
	if o.Rechecks == 0 {
		o.Rechecks = DefaultRechecks
	}
	if o.Rechecks < 0 {
		o.Rechecks = 0
	}
	if o.RecheckWait <= 0 {
		o.RecheckWait = DefaultRecheckWait
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Report is the outcome of Run: one Pair per source table and database
// sink that receives it.
type Report struct {
	Pairs []*Pair `json:"pairs"`
}

// Equal reports whether every pair was compared and found equal.
func (r *Report) Equal() bool {
	for _, p := range r.Pairs {
		if !p.Equal() {
			return false
		}
	}
	return true
}

// Pair is the comparison of one source table with one sink's target table.
type Pair struct {
	Source     string   `json:"source"` // the source block
	Table      string   `json:"table"`  // schema.table in the source
	Sink       string   `json:"sink"`   // the sink block
	Target     string   `json:"target"` // the target table
	Mode       string   `json:"mode"`
	Delete     string   `json:"delete"`
	Key        []string `json:"key"`                // the target key columns
	SourceRows int64    `json:"source_rows"`        // rows the sink should hold (after the transforms)
	TargetRows int64    `json:"target_rows"`        // rows read from the target (soft-deleted ones excluded)
	Chunks     int      `json:"chunks"`             // chunks compared
	Rechecked  int      `json:"rechecked"`          // chunks read again because they differed
	Missing    int      `json:"missing"`            // keys the target lacks
	Extra      int      `json:"extra"`              // keys only the target has
	Different  int      `json:"different"`          // keys whose columns differ
	Diffs      []Diff   `json:"diffs"`              // up to Options.MaxDiffs of them
	Truncated  bool     `json:"truncated"`          // more differences than listed
	Skipped    string   `json:"skipped,omitempty"`  // why the pair was not compared
	Error      string   `json:"error,omitempty"`    // why the comparison failed
	Failed     int      `json:"transform_failures"` // source rows a transform could not process
	// SourceKey is the source table's primary key, the columns of the
	// Ranges' keys in key order.
	SourceKey []string `json:"source_key,omitempty"`
	// Ranges are the key ranges whose chunks differ, for a re-copy
	// (`sluice verify --repair`); none when Unrepairable says why not.
	Ranges []Range `json:"ranges,omitempty"`
	// Unrepairable says why the differences cannot be given as ranges of
	// the source's primary key (the sink's key is another one).
	Unrepairable string `json:"unrepairable,omitempty"`
}

// Equal reports whether the pair was compared and no difference found.
func (p *Pair) Equal() bool {
	return p.Skipped == "" && p.Error == "" && p.Missing+p.Extra+p.Different+p.Failed == 0
}

// Diff is one differing key.
type Diff struct {
	Kind    string         `json:"kind"` // "missing" (in the target), "extra" (in the target), "different"
	Key     map[string]any `json:"key"`
	Columns []ColumnDiff   `json:"columns,omitempty"` // for "different"
}

// ColumnDiff is one column of a differing row: what the sink should hold
// (the source row through the transforms) and what the target holds.
// Values are shown as text; nil is NULL, and a column absent from the
// target is "(absent)".
type ColumnDiff struct {
	Column string `json:"column"`
	Source any    `json:"source"`
	Target any    `json:"target"`
}

// Run compares, for every PostgreSQL source table and every mysql or
// postgres sink that receives it, the source rows passed through the
// pipeline's transforms with the sink's target table. A pair that cannot
// be compared is reported (Skipped or Error) and the others still run;
// err is for what stops everything (the graph does not build, ctx ends).
func Run(ctx context.Context, cfg *dsl.Config, opts Options) (*Report, error) {
	opts = opts.withDefaults()
	g, err := components.Compile(cfg, components.Registry(), opts.Logger)
	if err != nil {
		return nil, err
	}
	rep := &Report{}
	for _, src := range cfg.Sources {
		sinks := g.SinksOf(src.Name)
		if src.Postgres == nil {
			for _, name := range sinks {
				rep.Pairs = append(rep.Pairs, &Pair{Source: src.Name, Sink: name,
					Skipped: fmt.Sprintf("source %q is a %s source: verify reads PostgreSQL sources only", src.Name, src.Type)})
			}
			continue
		}
		rels, err := pgsource.Describe(ctx, src.Postgres)
		if err != nil {
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			for _, name := range sinks {
				rep.Pairs = append(rep.Pairs, &Pair{Source: src.Name, Sink: name, Error: fmt.Sprintf("source %q: %v", src.Name, err)})
			}
			continue
		}
		for _, name := range sinks {
			sink := sinkNamed(cfg, name)
			ts := tableSink(sink)
			if ts == nil {
				rep.Pairs = append(rep.Pairs, &Pair{Source: src.Name, Sink: name,
					Skipped: fmt.Sprintf("sink %q is a %s sink: verify compares mysql and postgres sinks' tables", name, sink.Type)})
				continue
			}
			for _, rel := range rels {
				p := newPair(src.Name, rel, sink, ts)
				switch {
				case ts.Table != "" && len(rels) > 1:
					p.Skipped = fmt.Sprintf("sink %q writes %d source tables into one table %s: verify compares one source table per target table", name, len(rels), ts.Table)
				case p.Mode == modeAppend:
					p.Skipped = `mode "append" keeps every change as a new row: its history cannot be compared with the source's current rows`
				default:
					c := &comparison{g: g, cfg: cfg, opts: opts, pair: p, src: src, rel: rel, sink: sink, ts: ts}
					if err := c.run(ctx); err != nil {
						if ctx.Err() != nil {
							rep.Pairs = append(rep.Pairs, p)
							return rep, ctx.Err()
						}
						p.Error = err.Error()
					}
				}
				rep.Pairs = append(rep.Pairs, p)
			}
		}
	}
	return rep, nil
}

// Modes and delete options of the table sinks (LANGUAGE.md).
const (
	modeUpsert = "upsert"
	modeAppend = "append"
	modeUpdate = "update"
	deleteHard = "hard"
	deleteSoft = "soft"
	deleteSkip = "skip"
	// deletedColumn is the soft-delete flag the sinks write.
	deletedColumn = "__deleted"
)

func newPair(source string, rel *change.Relation, sink *dsl.Sink, ts *dsl.TableSink) *Pair {
	p := &Pair{Source: source, Table: rel.Schema + "." + rel.Table, Sink: sink.Name, Target: ts.Table, Mode: ts.Mode, Delete: ts.Delete, Diffs: []Diff{}}
	if p.Target == "" {
		p.Target = rel.Table
	}
	if p.Mode == "" {
		p.Mode = modeUpsert
	}
	if p.Delete == "" {
		p.Delete = deleteHard
	}
	return p
}

func sinkNamed(cfg *dsl.Config, name string) *dsl.Sink {
	for _, s := range cfg.Sinks {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func tableSink(s *dsl.Sink) *dsl.TableSink {
	switch {
	case s == nil:
		return nil
	case s.MySQL != nil:
		return s.MySQL
	case s.Postgres != nil:
		return s.Postgres
	}
	return nil
}

// redact removes a password from an error's text.
func redact(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), secret, "***"))
}
