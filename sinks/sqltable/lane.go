package sqltable

import (
	"sync"

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
}

// Lane returns another sink writing the same target on a connection pool
// of its own (engine.Laned): the engine writes a parallel snapshot's
// readers through lanes. From then on this sink and its lanes merge
// their streams into the checkpoint row under its lock, each moving only
// its own (as processes of a Kafka consumer group do), and a lane's rows
// commit with its streams' positions: a kill -9 resumes each reader
// exactly after what its lane committed.
func (s *Sink) Lane() (engine.Sink, error) {
	if s.lanes == nil {
		s.lanes = &lanes{}
	}
	return &Sink{d: s.d, tgt: s.tgt, opts: s.opts, pipeline: s.pipeline, name: s.name, log: s.log, throttle: s.throttle,
		cpSQL: s.cpSQL, cpInit: s.cpInit, cpLock: s.cpLock, lanes: s.lanes}, nil
}

// lockSchema holds the other lanes' schema work off until the returned
// func is called; without lanes it does nothing.
func (s *Sink) lockSchema() func() {
	if s.lanes == nil {
		return func() {}
	}
	s.lanes.schema.Lock()
	return s.lanes.schema.Unlock
}
