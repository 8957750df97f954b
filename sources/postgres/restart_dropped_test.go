package postgres

import (
	"testing"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
)

// TestDroppedSlotIsNotAResume: a slot dropped behind the pipeline's back
// is created again, and Resumed says the committed position was lost.
func TestDroppedSlotIsNotAResume(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE a (id int PRIMARY KEY)`)
	st := newState()
	cfg := dsl.PostgresSource{Tables: []string{"public.a"}, Snapshot: "never"}
	p := d.open(cfg, nil, st)
	d.exec(`INSERT INTO a VALUES (1)`)
	ev := readUntil(t, p, untilMarks(1))
	mark := ev[len(ev)-1]
	ackAll(t, p, mark)
	p.Close()
	cp := change.Checkpoint{mark.Position.Stream(): mark.Position}
	if p = d.open(cfg, cp, st); !p.Resumed() {
		t.Fatal("reopening with the slot in place: Resumed = false")
	}
	p.Close()
	d.waitSlotInactive("s")
	d.exec(`SELECT pg_drop_replication_slot('s')`)
	if p = d.open(cfg, cp, st); p.Resumed() {
		t.Fatal("the slot was dropped, yet Resumed = true")
	}
}
