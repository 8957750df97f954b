package sinktest

import "github.com/sluice-cdc/sluice/engine/change"

// model follows the rules of the engine's sink stage (engine/sinkstage.go,
// sinkWriter) to foresee what the engine does with each batch, so that a
// step can wait until it has: skip what the opened checkpoint covers,
// hold back the events after a batch's last boundary until the next
// batch, flush after a boundary once batchSize events are written, and
// flush when the input is empty and every stream is at a boundary. A
// rejected event, written as its Mark after the engine's restart, keeps
// its position and boundary, so the model needs not know of it.
type model struct {
	opened  change.Checkpoint // what the sink's Open returned
	pos     change.Checkpoint // the position of every event written
	flushed change.Checkpoint // the checkpoint of the last flush
	// open holds the streams whose last written event is not a boundary.
	open      map[change.Stream]bool
	held      []change.Event
	pending   int // events written since the last flush
	batchSize int
}

// start is a new run: the sink opened at cp.
func (m *model) start(cp change.Checkpoint, batchSize int) {
	m.opened, m.pos = cp.Clone(), cp.Clone()
	m.open, m.held, m.pending, m.batchSize = map[change.Stream]bool{}, nil, 0, batchSize
	if m.flushed == nil {
		m.flushed = change.Checkpoint{}
	}
}

// write is the sink stage taking batch, its input empty after it. With
// hold it stops at the first flush, which never completes, and reports
// whether there was one.
func (m *model) write(batch []change.Event, hold bool) bool {
	events := append([]change.Event(nil), m.held...)
	m.held = nil
	last := -1
	for _, e := range batch {
		if m.opened.Covers(e.Position) {
			continue
		}
		if e.Boundary {
			last = len(events)
		}
		events = append(events, e)
	}
	if last >= 0 && last < len(events)-1 {
		m.held = events[last+1:]
		events = events[:last+1]
	}
	for i := range events {
		m.note(&events[i])
		if events[i].Boundary && m.flushDue(false) {
			if hold {
				return true
			}
			m.flush()
		}
	}
	if m.flushDue(true) {
		if hold {
			return true
		}
		m.flush()
	}
	return false
}

func (m *model) note(e *change.Event) {
	m.pos.Advance(e.Position)
	if e.Boundary {
		delete(m.open, e.Position.Stream())
	} else {
		m.open[e.Position.Stream()] = true
	}
	m.pending++
}

// flushDue is sinkWriter.flushDue; the engine's linger (an hour) never
// passes and its least flush interval (a nanosecond) always has.
func (m *model) flushDue(idle bool) bool {
	if m.pending == 0 || len(m.open) > 0 {
		return false
	}
	return idle || m.pending >= m.batchSize
}

func (m *model) flush() {
	m.flushed = m.pos.Clone()
	m.pending = 0
}
