package main

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/state"
	"github.com/sluice-cdc/sluice/observe"
)

// progressEvery is how often the snapshot bars are updated from the
// status file (which the engine rewrites at most once a second).
const progressEvery = 250 * time.Millisecond

// swapWriter lets the logger write above the progress bars while they
// are drawn (mpb prints what it is given above them), and straight to
// the terminal otherwise.
type swapWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *swapWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	w := s.w
	s.mu.Unlock()
	return w.Write(b)
}

func (s *swapWriter) set(w io.Writer) {
	s.mu.Lock()
	s.w = w
	s.mu.Unlock()
}

// snapshotBars draws one progress bar per PostgreSQL source while its
// initial snapshot runs, from the status file of this process's own state
// file. Callers only start it on a terminal: CI logs never see a bar. It
// returns when ctx ends, after removing unfinished bars.
func snapshotBars(ctx context.Context, out io.Writer, logs *swapWriter, cfg *dsl.Config, statePath string) {
	var p *mpb.Progress
	bars := map[string]*mpb.Bar{}
	defer func() {
		if p == nil {
			return
		}
		for _, b := range bars {
			if !b.Completed() {
				b.Abort(true)
			}
		}
		logs.set(out)
		p.Wait()
	}()
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := state.StatusFile(statePath)
		if err != nil {
			continue // not written yet
		}
		for _, src := range observe.Build(ctx, cfg, st, observe.Options{}).Sources {
			snap := src.Snapshot
			b, drawn := bars[src.Name]
			if snap == nil || (!drawn && snap.Done) {
				continue // no snapshot, or it ended before we looked
			}
			if p == nil {
				p = mpb.NewWithContext(ctx, mpb.WithOutput(out), mpb.WithWidth(40), mpb.WithAutoRefresh())
				logs.set(p)
			}
			if !drawn {
				b = p.AddBar(max(snap.RowsEstimated, 1),
					mpb.PrependDecorators(decor.Name("snapshot "+src.Name+" ", decor.WCSyncSpaceR), decor.CountersNoUnit("%d / %d rows", decor.WCSyncWidth)),
					mpb.AppendDecorators(decor.Percentage(decor.WC{W: 5}), decor.Name(" ETA "), decor.AverageETA(decor.ET_STYLE_GO)))
				bars[src.Name] = b
			}
			if b.Completed() {
				continue
			}
			b.SetTotal(max(snap.RowsEstimated, snap.RowsDone, 1), false)
			b.SetCurrent(snap.RowsDone)
			if snap.Done {
				b.SetTotal(-1, true)
			}
		}
	}
}
