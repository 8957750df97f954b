package engine

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/engine/state"
)

// rejects are a sink's dead-lettered events that it must not write
// again: it writes their Marks instead.
type rejects struct {
	positions map[change.Position]bool
	// rows holds the rejected rows (After) by table and key: a snapshot
	// that starts over (nothing of it was committed) reads rows again at
	// new positions, and must pass over a row whose refused content was
	// dead-lettered already — as a snapshot row or as the insert or update
	// that wrote it — rather than dead-letter it again on every attempt.
	// A row whose content has changed since is a new change and goes on.
	rows map[string][]change.Row
}

func (r *rejects) has(e *change.Event) bool {
	if r.positions[e.Position] {
		return true
	}
	if e.Op != change.Snapshot || len(r.rows) == 0 {
		return false
	}
	for _, row := range r.rows[rowID(e)] {
		if sameRow(row, e.After) {
			return true
		}
	}
	return false
}

// sameRow compares two rows by value (times by instant: a row read back
// from the state file may carry another *time.Location).
func sameRow(a, b change.Row) bool {
	if a.Len() != b.Len() {
		return false
	}
	for c, av := range a.All() {
		bv, ok := b.Lookup(c)
		if !ok {
			return false
		}
		if at, ok := av.(time.Time); ok {
			if bt, ok := bv.(time.Time); !ok || !at.Equal(bt) {
				return false
			}
			continue
		}
		if !reflect.DeepEqual(av, bv) {
			return false
		}
	}
	return true
}

// rowID names a row by its table and key.
func rowID(e *change.Event) string {
	var b strings.Builder
	b.WriteString(e.QualifiedTable())
	for k, v := range e.Key.Sorted() {
		fmt.Fprintf(&b, "\x00%s=%T:%v", k, v, v)
	}
	return b.String()
}

// rejected loads the sink's dead-lettered events that its checkpoint does
// not yet cover (by position), and the rows of every dead-lettered event
// (by table, key and content) until it is replayed or purged.
func (r *run) rejected(sink string, cp change.Checkpoint) (*rejects, error) {
	skip := &rejects{positions: map[change.Position]bool{}, rows: map[string][]change.Row{}}
	var after uint64
	for {
		page, err := r.store.Letters(sinkStage(sink), after, 1000)
		if err != nil || len(page) == 0 {
			return skip, err
		}
		for _, l := range page {
			if !cp.Covers(l.Event.Position) {
				skip.positions[l.Event.Position] = true
			}
			if !l.Event.After.IsZero() && l.Event.Key.Len() > 0 {
				id := rowID(&l.Event)
				skip.rows[id] = append(skip.rows[id], l.Event.After)
			}
		}
		after = page[len(page)-1].ID
	}
}

// failures applies on_error to events the transforms could not process.
// Under dead_letter they are stored (in one state-file update) and, where
// they ended a source transaction, replaced by their Mark for every sink
// of the source, so that the sinks still reach that boundary.
func (r *run) failures(source string, perSink map[string][]change.Event, failed []Failure) (map[string][]change.Event, error) {
	letters := make([]state.Letter, 0, len(failed))
	var marks []change.Event
	for _, f := range failed {
		if err := r.verdict(f.Stage, f.Event, f.Err); err != nil {
			r.obs.Failed(f.Stage, err)
			return nil, err
		}
		letters = append(letters, state.Letter{Stage: f.Stage, Err: f.Err.Error(), Event: f.Event})
		if f.Event.Boundary {
			marks = append(marks, f.Event.AsMark())
		}
	}
	added, err := r.store.AddLetters(letters)
	if err != nil {
		return nil, Permanent(err)
	}
	for _, l := range added {
		r.logLetter(l)
		r.obs.DeadLettered(l.Stage)
	}
	if len(marks) > 0 {
		for _, sink := range r.g.SinksOf(source) {
			perSink[sink] = mergeByPosition(perSink[sink], marks)
		}
	}
	return perSink, nil
}

// verdict applies on_error to an event a stage could not process: nil
// under dead_letter (store it and carry on), else the error that ends the
// attempt.
func (r *run) verdict(stage string, e change.Event, cause error) error {
	ee := &EventError{Stage: stage, Event: e, Err: cause}
	switch r.policy {
	case policyDeadLetter:
		return nil
	case policyFail:
		return Permanent(ee)
	}
	// retry and pause: retrying cannot fix an event, so pause.
	return &pauseError{cause: ee}
}

func (r *run) logLetter(l state.Letter) {
	e := &l.Event
	r.log.Warn("event dead-lettered", "stage", l.Stage, "table", e.QualifiedTable(), "position", e.Position.Stream().String()+" "+e.Position.String(), "letter", l.ID, "err", l.Err)
}
