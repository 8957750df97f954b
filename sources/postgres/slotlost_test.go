package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

// streamedOnce opens a source on public.a (snapshot never), streams one
// insert, acknowledges it, closes, and returns the committed checkpoint.
func streamedOnce(t *testing.T, d *db, cfg dsl.PostgresSource, st engine.State) change.Checkpoint {
	t.Helper()
	d.exec(`CREATE TABLE a (id int PRIMARY KEY)`)
	p := d.open(cfg, nil, st)
	d.exec(`INSERT INTO a VALUES (1)`)
	ev := readUntil(t, p, untilMarks(1))
	mark := ev[len(ev)-1]
	ackAll(t, p, mark)
	p.Close()
	d.waitSlotInactive("s")
	return change.Checkpoint{mark.Position.Stream(): mark.Position}
}

func openFrom(t *testing.T, d *db, cfg dsl.PostgresSource, cp change.Checkpoint, st engine.State) error {
	t.Helper()
	p, err := d.build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Open(context.Background(), cp, st)
	if err == nil {
		p.Close()
	}
	return err
}

func wantSlotLost(t *testing.T, err error, cause string) {
	t.Helper()
	if !errors.Is(err, ErrSlotLost) || !engine.IsPermanent(err) || !strings.Contains(err.Error(), "replication slot s "+cause) ||
		!strings.Contains(err.Error(), "can no longer be read") || !strings.Contains(err.Error(), "`sluice drop FILE` and then `sluice run FILE`") {
		t.Fatalf("Open: %v\nwant a permanent ErrSlotLost: replication slot s %s ..., the lost range and the recovery", err, cause)
	}
	if strings.Contains(err.Error(), `source "`) {
		t.Errorf("the source names itself (the engine does): %v", err)
	}
}

// TestSlotRecreatedBehindSluicesBack: a slot of the same name created
// anew after the sinks' position is not taken for the pipeline's own.
func TestSlotRecreatedBehindSluicesBack(t *testing.T) {
	d := newDB(t)
	st := newState()
	cfg := dsl.PostgresSource{Tables: []string{"public.a"}, Snapshot: "never"}
	cp := streamedOnce(t, d, cfg, st)
	d.exec(`SELECT pg_drop_replication_slot('s')`)
	d.exec(`INSERT INTO a VALUES (2)`) // lost with the old slot
	d.exec(`SELECT pg_create_logical_replication_slot('s', 'pgoutput')`)
	wantSlotLost(t, openFrom(t, d, cfg, cp, st), "was recreated behind sluice's back")
}

// TestSlotOnAnotherServer: a server whose system identifier differs from
// the one the pipeline streamed from (a restore, a failover) is refused.
func TestSlotOnAnotherServer(t *testing.T) {
	d := newDB(t)
	st := newState()
	cfg := dsl.PostgresSource{Tables: []string{"public.a"}, Snapshot: "never"}
	cp := streamedOnce(t, d, cfg, st)
	if p := d.open(cfg, cp, st); !p.Resumed() { // same server: resumes
		t.Fatal("Resumed = false on the same server")
	} else {
		p.Close()
		d.waitSlotInactive("s")
	}
	st.Put(systemKey, []byte("7000000000000000001"))
	wantSlotLost(t, openFrom(t, d, cfg, cp, st), "is on another server")
}

// TestResnapshotAfterDroppedSlot: with on_slot_lost = "resnapshot", a
// dropped slot is created again and the table copied at the new slot's
// consistent point, beyond the committed position, so every sink takes
// the copy; then streaming goes on.
func TestResnapshotAfterDroppedSlot(t *testing.T) {
	d := newDB(t)
	st := newState()
	cfg := dsl.PostgresSource{Tables: []string{"public.a"}, Snapshot: "initial"}
	d.exec(`CREATE TABLE a (id int PRIMARY KEY)`)
	d.exec(`INSERT INTO a VALUES (1)`)
	p := d.open(cfg, nil, st)
	readUntil(t, p, countRows(1))
	d.exec(`INSERT INTO a VALUES (2)`)
	ev := readUntil(t, p, untilMarks(1))
	mark := ev[len(ev)-1]
	ackAll(t, p, mark)
	p.Close()
	d.waitSlotInactive("s")
	cp := change.Checkpoint{mark.Position.Stream(): mark.Position}

	d.exec(`SELECT pg_drop_replication_slot('s')`)
	d.exec(`INSERT INTO a VALUES (3)`) // while the slot is gone
	wantSlotLost(t, openFrom(t, d, cfg, cp, st), "does not exist")

	cfg.OnSlotLost = OnSlotLostResnapshot
	p = d.open(cfg, cp, st)
	if !p.Resumed() {
		t.Fatal("Resumed = false after a recovery")
	}
	snap := rows(readUntil(t, p, countRows(3)))
	for _, e := range snap {
		if e.Op != change.Snapshot || e.Position.Compare(mark.Position) <= 0 || e.Position.Partition != "" {
			t.Fatalf("copy row %v at %v: want a snapshot row in the stream's partition after the committed %v", e.After, e.Position, mark.Position)
		}
	}
	d.exec(`INSERT INTO a VALUES (4)`)
	got := rows(readUntil(t, p, countRows(1)))
	if len(got) != 1 || got[0].Op != change.Insert || got[0].Position.Compare(snap[len(snap)-1].Position) <= 0 {
		t.Fatalf("after the copy: %v, want the insert of 4 after it", got)
	}
}

// TestSlotReplacedWhileStreaming: a slot dropped and created again while
// the source streams (its walsender terminated) is not resumed from at
// the new slot's position, which would skip the changes in between: Read
// fails with ErrSlotLost.
func TestSlotReplacedWhileStreaming(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE a (id int PRIMARY KEY)`)
	st := newState()
	p := d.open(dsl.PostgresSource{Tables: []string{"public.a"}, Snapshot: "never"}, nil, st)
	d.exec(`INSERT INTO a VALUES (1)`)
	ackAll(t, p, readUntil(t, p, untilMarks(1))[0])
	d.exec(`DO $$
	BEGIN
		PERFORM pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 's';
		FOR i IN 1..100 LOOP
			BEGIN
				PERFORM pg_drop_replication_slot('s');
				EXIT;
			EXCEPTION WHEN object_in_use THEN
				PERFORM pg_sleep(0.01);
			END;
		END LOOP;
	END $$`)
	d.exec(`INSERT INTO a VALUES (2)`) // lost with the old slot
	d.exec(`SELECT pg_create_logical_replication_slot('s', 'pgoutput')`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		ev, err := p.Read(ctx)
		if err != nil {
			if !errors.Is(err, ErrSlotLost) || !strings.Contains(err.Error(), "replication slot s ") {
				t.Fatalf("Read: %v, want ErrSlotLost", err)
			}
			t.Log(err)
			return
		}
		for _, e := range rows(ev) {
			t.Fatalf("Read returned %v from a slot that is not the pipeline's", e.After)
		}
	}
}
