package engine

import (
	"context"
	"sync"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
)

// Laned is implemented by a sink that can write parallel streams
// (change.Stream.Parallel: the readers of a parallel snapshot but the
// first) at once, each on a connection of its own: what makes a
// parallel snapshot's writes parallel as well as its reads.
//
// Lane returns another sink writing the same target. The engine opens it
// (with the saved bytes Open got; the checkpoint it returns is not used),
// writes one parallel stream's events to it in order, flushes it with a
// checkpoint of that stream alone, and closes it when the sink's stage
// ends. Meanwhile the sink itself (and the other lanes) go on writing
// and flushing their own streams, so once Lane has been called every
// instance's Flush must move in the target only the positions of the
// streams cp holds that differ from what that instance last read or
// wrote, leaving the others as other instances committed them (the SQL
// sinks lock their checkpoint row and merge). A Laned sink's Flush
// returns no bytes: the target holds its checkpoint.
//
// The engine writes the sink's other events only once the lanes have
// committed everything they were given before them, unless they are
// Snapshot rows as well: the changes streamed after a copy must land on
// top of it, never under it. It then closes the lanes, and from then on
// the checkpoints it passes the sink's Flush hold the lanes' streams at
// what they committed: once its lanes are closed, a sink may write its
// whole checkpoint again.
type Laned interface {
	Sink
	Lane() (Sink, error)
}

// lanes are the writers of one Laned sink's parallel streams, each a
// goroutine with a sink of its own.
type lanes struct {
	w      *sinkWriter
	laned  Laned
	ctx    context.Context // the stage's
	byName map[change.Stream]*lane
	wg     sync.WaitGroup
	// failed receives the first lane error; the stage returns it.
	failed chan error
	// dirty: a lane was given events since the last sync.
	dirty bool
}

// lane is one parallel stream's writer.
type lane struct {
	sink Sink
	in   chan laneMsg
	// pos is the stream's last written position; pending counts the
	// events written since the last flush.
	pos     change.Checkpoint
	pending int
}

// laneMsg is a lane's next work: events to write, or (synced non-nil) a
// request to commit everything written and then close synced.
type laneMsg struct {
	events []change.Event
	done   func()
	synced chan struct{}
}

func newLanes(ctx context.Context, w *sinkWriter, laned Laned) *lanes {
	return &lanes{w: w, laned: laned, ctx: ctx, byName: map[change.Stream]*lane{}, failed: make(chan error, 1)}
}

// failures is the channel a lane's error arrives on; nil (never ready)
// where the sink has no lanes.
func (ls *lanes) failures() <-chan error {
	if ls == nil {
		return nil
	}
	return ls.failed
}

// give hands a parallel stream's events to its lane, starting the lane
// on the stream's first events; done is called once they are written.
func (ls *lanes) give(st change.Stream, events []change.Event, done func()) error {
	l, err := ls.lane(st)
	if err != nil {
		return err
	}
	ls.dirty = true
	select {
	case l.in <- laneMsg{events: events, done: done}:
		return nil
	case err := <-ls.failed:
		return err
	case <-ls.ctx.Done():
		return ls.ctx.Err()
	}
}

func (ls *lanes) lane(st change.Stream) (*lane, error) {
	if l, ok := ls.byName[st]; ok {
		return l, nil
	}
	w := ls.w
	sink, err := ls.laned.Lane()
	if err != nil {
		return nil, named("sink", w.name, "lane for "+st.String(), err)
	}
	rec, err := w.r.store.Sink(w.name)
	if err != nil {
		_ = sink.Close()
		return nil, Permanent(err)
	}
	if _, err := sink.Open(ls.ctx, rec.Saved); err != nil {
		_ = sink.Close()
		return nil, named("sink", w.name, "open lane for "+st.String(), err)
	}
	l := &lane{sink: sink, in: make(chan laneMsg, 1), pos: change.Checkpoint{}}
	ls.byName[st] = l
	ls.wg.Add(1)
	go func() {
		defer ls.wg.Done()
		if err := ls.run(l); err != nil {
			select {
			case ls.failed <- err:
			default:
			}
		}
	}()
	return l, nil
}

// run is a lane's goroutine: write what arrives, commit when the batch
// is full or nothing is waiting, and when asked to.
func (ls *lanes) run(l *lane) error {
	ctx, w := ls.ctx, ls.w
	for {
		var m laneMsg
		var ok bool
		select {
		case m, ok = <-l.in:
		default:
			if err := ls.flush(l); err != nil {
				return err
			}
			select {
			case m, ok = <-l.in:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if !ok {
			return ls.flush(l)
		}
		if len(m.events) > 0 {
			if err := l.sink.Write(ctx, m.events); err != nil {
				return w.failed(ctx, "write", err)
			}
			w.r.obs.Written(w.name, len(m.events))
			for i := range m.events {
				l.pos.Advance(m.events[i].Position)
			}
			l.pending += len(m.events)
			m.done()
		}
		if m.synced != nil || l.pending >= w.batchSize {
			if err := ls.flush(l); err != nil {
				return err
			}
		}
		if m.synced != nil {
			close(m.synced)
		}
	}
}

// flush commits what the lane wrote and passes the sink's checkpoint on.
func (ls *lanes) flush(l *lane) error {
	if l.pending == 0 {
		return nil
	}
	w := ls.w
	cp := l.pos.Clone()
	start := time.Now()
	if _, err := l.sink.Flush(ls.ctx, cp); err != nil {
		return w.failed(ls.ctx, "flush", err)
	}
	n := l.pending
	l.pending = 0
	return w.committed(ls.ctx, cp, nil, n, start, time.Time{})
}

// sync returns once every lane has committed all it was given.
func (ls *lanes) sync() error {
	if ls == nil || !ls.dirty {
		return nil
	}
	for _, l := range ls.byName {
		synced := make(chan struct{})
		select {
		case l.in <- laneMsg{synced: synced}:
		case err := <-ls.failed:
			return err
		case <-ls.ctx.Done():
			return ls.ctx.Err()
		}
		select {
		case <-synced:
		case err := <-ls.failed:
			return err
		case <-ls.ctx.Done():
			return ls.ctx.Err()
		}
	}
	ls.dirty = false
	return nil
}

// close ends the lanes, committing what they wrote when err is nil (the
// stage's input ended), and closes their sinks. It returns the first
// lane error, or err.
func (ls *lanes) close(err error) error {
	if ls == nil {
		return err
	}
	for _, l := range ls.byName {
		close(l.in)
	}
	ls.wg.Wait()
	if err == nil {
		select {
		case err = <-ls.failed:
		default:
		}
	}
	for st, l := range ls.byName {
		if cerr := l.sink.Close(); cerr != nil {
			ls.w.r.log.Warn("closing sink lane", "sink", ls.w.name, "stream", st.String(), "err", cerr)
		}
	}
	return err
}
