package verify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-cdc/sluice/components"
	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/internal/dbskip"
	"github.com/sluice-cdc/sluice/internal/mariadbtest"
	"github.com/sluice-cdc/sluice/internal/pgtest"
	pgsource "github.com/sluice-cdc/sluice/sources/postgres"
)

var (
	cluster *pgtest.Cluster
	server  *mariadbtest.Server
)

// TestMain starts a private PostgreSQL (sources and postgres targets)
// and finds MariaDB (mysql targets). Deferred calls would not run before
// os.Exit, so run does the work.
func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	c, err := pgtest.Start()
	if errors.Is(err, pgtest.ErrNoBinaries) {
		return dbskip.Main(err)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		return 1
	}
	cluster = c
	code := mariadbtest.Run(m, &server)
	if err := c.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
	}
	return code
}

// load writes a pipeline file and loads it.
func load(t testing.TB, hcl string) *dsl.Config {
	t.Helper()
	path := t.TempDir() + "/pipeline.hcl"
	if err := os.WriteFile(path, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, diags := dsl.LoadFileWith(path, dsl.Options{})
	if diags.HasErrors() {
		t.Fatalf("load pipeline: %v", diags)
	}
	return cfg
}

// execPG runs SQL in a PostgreSQL database.
func execPG(t testing.TB, dsn string, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// copyRows runs the pipeline's snapshot once, the way `sluice run` would
// deliver it: every source row through the transforms into every sink,
// committed. It stands for a pipeline that has caught up.
func copyRows(t testing.TB, cfg *dsl.Config, rows int) {
	t.Helper()
	ctx := context.Background()
	g, err := components.Compile(cfg, components.Registry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := components.Registry()
	for _, src := range cfg.Sources {
		events, err := pgsource.Sample(ctx, src.Postgres, src.Name, rows)
		if err != nil {
			t.Fatal(err)
		}
		perSink, failed := g.Route(src.Name, events)
		if len(failed) > 0 {
			t.Fatalf("transform failed: %v", failed[0].Err)
		}
		for _, s := range cfg.Sinks {
			out, ok := perSink[s.Name]
			if !ok {
				continue
			}
			sink, err := reg.Sinks[s.Type](engine.Build{Pipeline: components.Settings(cfg)}, s)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sink.Open(ctx, nil); err != nil {
				t.Fatal(err)
			}
			cp := change.Checkpoint{}
			for len(out) > 0 {
				n := min(len(out), 1000)
				if err := sink.Write(ctx, out[:n]); err != nil {
					t.Fatal(err)
				}
				cp.Advance(out[n-1].Position)
				out = out[n:]
			}
			if _, err := sink.Flush(ctx, cp); err != nil {
				t.Fatal(err)
			}
			sink.Close()
		}
	}
}

func verify(t testing.TB, cfg *dsl.Config, opts Options) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}
