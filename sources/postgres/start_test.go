package postgres

import "testing"

func TestDecideStart(t *testing.T) {
	for _, c := range []struct {
		name string
		f    startFacts
		want startPlan
	}{
		{"first run: a new slot exports the snapshot", startFacts{WantSnapshot: true},
			startPlan{Start: startCreateSlot, Snapshot: true}},
		{"first run without a snapshot", startFacts{},
			startPlan{Start: startCreateSlot}},
		{"slot gone although the sinks committed: warn, forget, copy again", startFacts{WantSnapshot: true, HasPos: true, HasProg: true, ProgComplete: true},
			startPlan{Start: startCreateSlot, Snapshot: true, Forget: true, MissingSlot: true}},
		{"slot gone mid-snapshot", startFacts{WantSnapshot: true, HasProg: true},
			startPlan{Start: startCreateSlot, Snapshot: true, Forget: true, MissingSlot: true}},
		{"slot lost and recovered: forget quietly", startFacts{Recovering: true, WantSnapshot: true, HasPos: true},
			startPlan{Start: startCreateSlot, Snapshot: true, Forget: true}},
		{"recovered without a snapshot", startFacts{Recovering: true, HasPos: true},
			startPlan{Start: startCreateSlot, Forget: true}},
		{"restart, no snapshot wanted", startFacts{SlotExists: true, HasPos: true},
			startPlan{Start: startStream}},
		{"restart after the whole snapshot was committed", startFacts{SlotExists: true, WantSnapshot: true, HasPos: true, HasProg: true, ProgComplete: true},
			startPlan{Start: startStream}},
		{"restart mid-snapshot: resume it", startFacts{SlotExists: true, WantSnapshot: true, HasPos: true, HasProg: true},
			startPlan{Start: startResumeSnapshot, Snapshot: true}},
		{"restart mid-snapshot before any row was committed", startFacts{SlotExists: true, WantSnapshot: true, HasProg: true},
			startPlan{Start: startResumeSnapshot, Snapshot: true}},
		{"restart with a streamed position after the snapshot", startFacts{SlotExists: true, WantSnapshot: true, HasPos: true, HasProg: true, PosAfterSnapshot: true},
			startPlan{Start: startStream}},
		{"a slot made outside sluice: move it to now, then snapshot", startFacts{SlotExists: true, WantSnapshot: true},
			startPlan{Start: startAdvanceThenSnapshot, Snapshot: true}},
		{"positions but no snapshot progress (a snapshot older than the state)", startFacts{SlotExists: true, WantSnapshot: true, HasPos: true},
			startPlan{Start: startStream}},
	} {
		if got := decideStart(c.f); got != c.want {
			t.Errorf("%s: %+v gives %+v, want %+v", c.name, c.f, got, c.want)
		}
	}
}
