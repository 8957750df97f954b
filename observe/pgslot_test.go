package observe

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/engine/state"
)

func TestSlotLagDropAndLoss(t *testing.T) {
	ctx := context.Background()
	dsn := cluster.CreateDB(t)
	src := &dsl.PostgresSource{DSN: dsn, Tables: []string{"public.t"}}
	cfg := &dsl.Config{Pipeline: dsl.Pipeline{Name: "Orders-1"}, Sources: []*dsl.Source{{Type: "postgres", Name: "app", Postgres: src}}}
	st := state.Status{Path: "x.db", Sources: map[string]state.SourceStatus{
		"app": {Acked: change.Checkpoint{{Source: "app"}: {Source: "app", Offset: 100}}}}}

	w, err := Slot(ctx, "Orders-1", src)
	if err != nil || w.Exists || w.Slot != "sluice_orders_1" || w.Current == 0 {
		t.Fatalf("missing slot: %+v, %v", w, err)
	}
	if err := CheckSlots(ctx, cfg, st); !errors.Is(err, ErrSlotLost) || !strings.Contains(err.Error(), "sluice drop") {
		t.Fatalf("state with acknowledged positions and no slot: %v", err)
	}
	if err := CheckSlots(ctx, cfg, state.Status{}); err != nil {
		t.Fatalf("a pipeline that never committed anything: %v", err)
	}

	db := dsn[strings.LastIndexByte(dsn, '/')+1 : strings.IndexByte(dsn, '?')]
	for _, sql := range []string{
		"CREATE TABLE t (id int PRIMARY KEY)",
		"CREATE PUBLICATION sluice_orders_1 FOR TABLE t",
		"SELECT pg_create_logical_replication_slot('sluice_orders_1', 'pgoutput')",
		"INSERT INTO t SELECT generate_series(1, 1000)",
	} {
		if err := cluster.Exec(ctx, db, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	w, err = Slot(ctx, "Orders-1", src)
	if err != nil || !w.Exists || w.Active {
		t.Fatalf("slot: %+v, %v", w, err)
	}
	if w.LagBytes <= 0 || w.RetainedBytes < w.LagBytes || w.ConfirmedLSN == "" || w.RestartLSN == "" || w.CurrentLSN == "" {
		t.Fatalf("after 1000 inserts nobody read: %+v", w)
	}
	if err := CheckSlots(ctx, cfg, st); err != nil {
		t.Fatalf("slot present: %v", err)
	}

	for range 2 { // the second time there is nothing to drop
		want := w.Exists
		slot, dropped, err := DropSlot(ctx, "Orders-1", src)
		if err != nil || slot != "sluice_orders_1" || dropped != want {
			t.Fatalf("DropSlot: %s %v %v, want dropped=%v", slot, dropped, err, want)
		}
		pub, dropped, err := DropPublication(ctx, "Orders-1", src)
		if err != nil || pub != "sluice_orders_1" || dropped != want {
			t.Fatalf("DropPublication: %s %v %v, want dropped=%v", pub, dropped, err, want)
		}
		w.Exists = false
	}
}

func TestConnectErrorsKeepThePasswordOut(t *testing.T) {
	for _, dsn := range []string{
		"postgres://u:s3cret@127.0.0.1:1/db?connect_timeout=2",
		"host=127.0.0.1 port=1 user=u password=s3cret connect_timeout=2",
		"postgres://u:s3cret@[bad",
	} {
		_, err := Slot(context.Background(), "p", &dsl.PostgresSource{DSN: dsn})
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%v", err)
		}
	}
}
