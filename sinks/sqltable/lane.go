package sqltable

import (
	"sync"
	"sync/atomic"

	"github.com/sluice-cdc/sluice/engine"
)

var _ engine.Laned = (*Sink)(nil)

// lanes is what a sink and the lanes made from it share: the lock that
// makes their schema work (loading a table, creating or altering it) one
// at a time. Their DDL then runs outside their transactions, committed at
// once: two transactions creating the same table would otherwise collide
// (PostgreSQL fails the second with a unique violation in its catalog),
// and an instance that finds a table missing waits for the one creating
// it, then finds it there.
type lanes struct {
	schema sync.Mutex
	// open counts the lanes not yet closed: with none, the sink writes
	// alone again (whole checkpoint rows, DDL in its transaction).
	open atomic.Int32
}

// Lane returns another sink writing the same target on a connection pool
// of its own (engine.Laned): the engine writes a parallel snapshot's
// readers through lanes. From then on this sink and its lanes merge
// their streams into the checkpoint row under its lock, each moving only
// its own (as processes of a Kafka consumer group do), and a lane's rows
// commit with its streams' positions: a kill -9 resumes each reader
// exactly after what its lane committed.
//
// Once every lane is closed (the engine closes them when the copy is
// over) the sink writes alone again. Its checkpoint then holds the lanes'
// streams too, as the engine passes them on, so a whole row is right.
func (s *Sink) Lane() (engine.Sink, error) {
	if s.lanes == nil {
		s.lanes = &lanes{}
	}
	s.lanes.open.Add(1)
	return &Sink{d: s.d, tgt: s.tgt, opts: s.opts, pipeline: s.pipeline, name: s.name, log: s.log, throttle: s.throttle,
		cpSQL: s.cpSQL, cpInit: s.cpInit, cpLock: s.cpLock, lanes: s.lanes, lane: true}, nil
}

// shared reports whether lanes write the target beside this instance (or
// this instance is one).
func (s *Sink) shared() bool { return s.lanes != nil && s.lanes.open.Load() > 0 }

// leave counts a lane out of its sink's, once, as it closes.
func (s *Sink) leave() {
	if s.lane {
		s.lane = false
		s.lanes.open.Add(-1)
	}
}

// lockSchema holds the other lanes' schema work off until the returned
// func is called; without lanes it does nothing.
func (s *Sink) lockSchema() func() {
	if !s.shared() {
		return func() {}
	}
	s.lanes.schema.Lock()
	return s.lanes.schema.Unlock
}
