// Package filerun runs a pipeline whose source is a file of native change
// events through the engine, as the sluice binary would, for the tests of
// the components it ends in: the file grows between runs, and each run
// reads to its end and stops.
package filerun

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/components"
	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
)

// Runner loads the pipeline src (named users.hcl in messages) and
// returns a function that compiles it with k and runs it once, failing
// the test on any error.
func Runner(t *testing.T, src string, k components.Kinds) func() {
	t.Helper()
	cfg, _, diags := dsl.Load("users.hcl", []byte(src), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return func() {
		t.Helper()
		g, err := components.Compile(cfg, k, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := g.Run(ctx, engine.RunOptions{Logger: slog.New(slog.DiscardHandler)}); err != nil {
			t.Fatal(err)
		}
	}
}

// AppendUsers appends the changes from (inclusive) to to (exclusive) of a
// users table to the file at path: inserts of id, email and password,
// and every tenth a delete of the row before it.
func AppendUsers(t *testing.T, path string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := from; i < to; i++ {
		if i%10 == 9 {
			fmt.Fprintf(w, `{"op":"delete","schema":"public","table":"users","key":{"id":%d},"before":{"id":%d}}`+"\n", i-1, i-1)
			continue
		}
		fmt.Fprintf(w, `{"op":"insert","schema":"public","table":"users","key":{"id":%d},"after":{"id":%d,"email":"u%d@example.com","password":"hunter2"}}`+"\n", i, i, i)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
