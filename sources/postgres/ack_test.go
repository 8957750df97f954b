package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
)

func (d *db) confirmed(slot string) pglogrepl.LSN {
	d.t.Helper()
	var s string
	if err := d.conn.QueryRow(context.Background(), `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&s); err != nil {
		d.t.Fatal(err)
	}
	lsn, err := pglogrepl.ParseLSN(s)
	if err != nil {
		d.t.Fatal(err)
	}
	return lsn
}

// waitConfirmed waits (bounded) for the slot's confirmed position to
// reach at least want, and returns what it is.
func (d *db) waitConfirmed(slot string, want pglogrepl.LSN) pglogrepl.LSN {
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := d.confirmed(slot)
		if got >= want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSlotConfirmsOnlyTheAcknowledgedFrontier: receiving confirms
// nothing; acknowledging a transaction's Mark confirms just past it.
func TestSlotConfirmsOnlyTheAcknowledgedFrontier(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE a (id int PRIMARY KEY)`)
	p := d.open(dsl.PostgresSource{Tables: []string{"public.a"}, Snapshot: "never"}, nil, newState())
	start := d.confirmed("s")
	d.exec(`INSERT INTO a VALUES (1)`)
	d.exec(`INSERT INTO a VALUES (2)`)
	ev := readUntil(t, p, untilMarks(2))
	time.Sleep(statusInterval + 200*time.Millisecond) // at least one status update went out
	if got := d.confirmed("s"); got != start {
		t.Fatalf("confirmed moved from %s to %s on receipt alone", start, got)
	}
	var first change.Event
	for _, e := range ev {
		if e.Op == change.Mark {
			first = e
			break
		}
	}
	ackAll(t, p, first)
	want := pglogrepl.LSN(first.Position.Offset + 1)
	if got := d.waitConfirmed("s", want); got != want {
		t.Fatalf("after acking the first transaction confirmed = %s, want %s", got, want)
	}
}

// TestHeartbeatAdvancesQuietSlot: with the captured table quiet but the
// rest of the database writing, heartbeats produce Marks whose
// acknowledgement moves the slot on.
func TestHeartbeatAdvancesQuietSlot(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE quiet (id int PRIMARY KEY); CREATE TABLE busy (id int)`)
	p := d.open(dsl.PostgresSource{Tables: []string{"public.quiet"}, Snapshot: "never", Heartbeat: 100 * time.Millisecond}, nil, newState())
	start := d.confirmed("s")
	d.exec(`INSERT INTO busy SELECT generate_series(1, 10000)`)
	ev := readUntil(t, p, untilMarks(1))
	mark := ev[len(ev)-1]
	if mark.Op != change.Mark || !mark.Boundary || len(rows(ev)) != 0 {
		t.Fatalf("heartbeat produced %+v", ev)
	}
	ackAll(t, p, mark)
	if got := d.waitConfirmed("s", pglogrepl.LSN(mark.Position.Offset+1)); got <= start {
		t.Fatalf("confirmed stayed at %s", got)
	}
	// Every tick goes through one connection, not a new one each.
	pids := map[int32]bool{}
	for range 5 {
		var pid int32
		err := d.conn.QueryRow(context.Background(), `SELECT pid FROM pg_stat_activity
			WHERE datname = current_database() AND query LIKE '%pg_logical_emit_message%' AND pid <> pg_backend_pid()`).Scan(&pid)
		if err != nil {
			t.Fatalf("the heartbeat's connection: %v", err)
		}
		pids[pid] = true
		time.Sleep(150 * time.Millisecond)
	}
	if len(pids) != 1 {
		t.Errorf("heartbeats came from %d backends over 5 samples, want one connection", len(pids))
	}
}
