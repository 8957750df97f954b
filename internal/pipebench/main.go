// Command pipebench measures a whole file → transform → file pipeline:
// it writes N insert events to a temporary JSON Lines file, runs them
// through a `where` + `mask` + `exclude` transform into a file sink, and
// prints the throughput and the process's peak resident memory (VmHWM).
//
//	go run ./internal/pipebench -events 1000000
//
// The input is generated as a stream, so the peak RSS is the pipeline's.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/sluice-cdc/sluice/components"
	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/internal/peakrss"
	filesink "github.com/sluice-cdc/sluice/sinks/file"
	filesource "github.com/sluice-cdc/sluice/sources/file"
	"github.com/sluice-cdc/sluice/transforms"
)

func main() {
	events := flag.Int("events", 1000000, "how many events to run through")
	transform := flag.Bool("transform", true, "put a transform between source and sink")
	flag.Parse()
	if err := run(*events, *transform); err != nil {
		fmt.Fprintln(os.Stderr, "pipebench:", err)
		os.Exit(1)
	}
}

func run(n int, transform bool) error {
	dir, err := os.MkdirTemp("", "pipebench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "in.jsonl")
	if err := generate(in, n); err != nil {
		return err
	}
	from := "source.in"
	src := fmt.Sprintf("pipeline \"bench\" { state = %q }\nsource \"file\" \"in\" { path = %q }\n", filepath.Join(dir, "state.db"), in)
	if transform {
		src += `transform "clean" {
  from    = source.in
  where   = "row.id % 10 != 0"
  mask    = { email = "hash" }
  exclude = ["password"]
}
`
		from = "transform.clean"
	}
	src += fmt.Sprintf("sink \"file\" \"out\" {\n  from = %s\n  path = %q\n}\n", from, filepath.Join(dir, "out.jsonl"))
	os.Setenv("SLUICE_MASK_KEY", "bench")
	cfg, _, diags := dsl.Load("bench.hcl", []byte(src), nil)
	if diags.HasErrors() {
		return diags
	}
	reg := components.Kinds{
		Sources:   map[string]func(engine.Build, *dsl.Source) (engine.Source, error){"file": filesource.New},
		Sinks:     map[string]func(engine.Build, *dsl.Sink) (engine.Sink, error){"file": filesink.New},
		Transform: transforms.New,
	}
	g, err := components.Compile(cfg, reg, nil)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := g.Run(context.Background(), engine.RunOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}); err != nil {
		return err
	}
	d := time.Since(start)
	peak, err := peakrss.Read("self")
	if err != nil {
		return err
	}
	fmt.Printf("events: %d  transform: %v  time: %v  throughput: %.0f events/s  peak RSS (VmHWM): %.1f MB\n",
		n, transform, d.Round(time.Millisecond), float64(n)/d.Seconds(), peakrss.MB(peak))
	return nil
}

func generate(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := 0; i < n; i++ {
		fmt.Fprintf(w, `{"op":"insert","schema":"public","table":"users","key":{"id":%d},"after":{"id":%d,"email":"user%d@example.com","password":"hunter%d","total":%d.50,"name":"User Number %d"},"tx":{"id":%d,"commit_time":"2026-01-02T03:04:05.123456Z"}}`+"\n", i, i, i, i, i, i, i)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}
