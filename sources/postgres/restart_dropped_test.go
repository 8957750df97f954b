package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

// TestDroppedSlotIsNotAResume: a slot dropped behind the pipeline's back
// makes Open fail with ErrSlotLost (not create it again and lose the
// changes since).
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
	p, err := d.build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Open(context.Background(), cp, st)
	if !errors.Is(err, ErrSlotLost) || !errors.Is(err, engine.ErrPositionLost) || !engine.IsPermanent(err) ||
		!strings.Contains(err.Error(), "replication slot s does not exist") || !strings.Contains(err.Error(), "sluice drop FILE") {
		t.Fatalf("the slot was dropped; Open: %v, want a permanent ErrSlotLost naming the slot and the recovery", err)
	}
}
