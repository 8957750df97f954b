package postgres

// Where reading starts is decided from a few facts, by decideStart, a
// pure function: Open gathers the facts (the slot, the sinks' committed
// positions, the snapshot's progress) and carries the plan out.

// startFacts is what Open found.
type startFacts struct {
	SlotExists   bool // the replication slot exists (a lost one was dropped: false)
	Recovering   bool // the slot was lost or invalidated, and is made anew
	WantSnapshot bool // snapshot = "initial"
	HasPos       bool // the sinks committed a position in the stream
	HasProg      bool // a snapshot was started before (its progress is in the state)
	ProgComplete bool // ... and the sinks committed every row of it
	// PosAfterSnapshot reports that the committed position is a streamed
	// change after the snapshot's rows (not one of them).
	PosAfterSnapshot bool
}

// start is how reading starts.
type start int

const (
	// startCreateSlot creates the slot, with an exported snapshot when
	// one is read: exactly the slot's consistent point.
	startCreateSlot start = iota
	// startStream streams from the slot, reading no snapshot.
	startStream
	// startResumeSnapshot resumes the snapshot after the last row the
	// sinks committed.
	startResumeSnapshot
	// startAdvanceThenSnapshot moves an existing slot to the current WAL
	// position, then snapshots: a slot made outside sluice (or a lost
	// state file) has no exported snapshot, what it holds is older than
	// the snapshot about to be taken and may predate the publication,
	// which pgoutput cannot decode; the stream replays on top whatever
	// commits in between.
	startAdvanceThenSnapshot
)

// startPlan is what Open does.
type startPlan struct {
	Start    start
	Snapshot bool // a snapshot is read
	// Forget drops the committed position and the snapshot's progress:
	// the slot is new, so neither means anything in it.
	Forget bool
	// MissingSlot reports a slot gone although the pipeline ran before
	// (not a recovery the pipeline chose): the changes made while it was
	// missing are lost, which Open warns of.
	MissingSlot bool
}

// decideStart decides where reading starts; see doc.go for the rules.
func decideStart(f startFacts) startPlan {
	switch {
	case !f.SlotExists:
		// A new slot. After a recovery every table is copied again at its
		// consistent point, beyond every position the sinks committed,
		// so that each sink takes the copy whatever its progress.
		return startPlan{Start: startCreateSlot, Snapshot: f.WantSnapshot,
			Forget:      f.Recovering || f.HasPos || f.HasProg,
			MissingSlot: !f.Recovering && (f.HasPos || f.HasProg)}
	case !f.WantSnapshot:
		return startPlan{Start: startStream}
	case f.HasProg && f.ProgComplete:
		return startPlan{Start: startStream} // stopped after the sinks committed the whole snapshot
	case f.HasProg && !f.PosAfterSnapshot:
		return startPlan{Start: startResumeSnapshot, Snapshot: true}
	case !f.HasProg && !f.HasPos:
		return startPlan{Start: startAdvanceThenSnapshot, Snapshot: true}
	default:
		return startPlan{Start: startStream} // the sinks are past the snapshot
	}
}
