package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/engine/state"
)

// TestDlqListNamesTheKey: `sluice dlq list` says which row each dead
// letter is, by its primary key, in the table (KEY, in key-column order,
// values as the native format writes them) and in --json (key, an
// object of column → value), without decoding positions.
func TestDlqListNamesTheKey(t *testing.T) {
	dir := t.TempDir()
	statePath := filepath.Join(dir, "p.db")
	file := writeFile(t, dir, "p.hcl", strings.Replace(validPipeline, `pipeline "p" {}`,
		fmt.Sprintf("pipeline \"p\" {\n  state = %q\n}", statePath), 1))

	users := &change.Relation{Schema: "public", Table: "users", Columns: []change.Column{
		{Name: "id", Type: "bigint", Key: true}, {Name: "email", Type: "text"}}}
	// Table order (tenant, name) is not name order: KEY keeps table order.
	members := &change.Relation{Schema: "public", Table: "members", Columns: []change.Column{
		{Name: "tenant", Type: "integer", Key: true}, {Name: "age", Type: "integer"}, {Name: "name", Type: "text", Key: true}}}
	letters := []state.Letter{
		{Stage: "sink.out", Err: "value too long for column email", Time: time.Unix(1700000000, 0), Event: change.Event{
			Op: change.Insert, Schema: "public", Table: "users", Relation: users,
			Key:      change.RowOf(map[string]any{"id": int64(42)}),
			After:    change.RowOf(map[string]any{"id": int64(42), "email": "far too long"}),
			Position: change.Position{Source: "in", Offset: 100, Index: 1}}},
		{Stage: "sink.out", Err: "duplicate key", Time: time.Unix(1700000001, 0), Event: change.Event{
			Op: change.Update, Schema: "public", Table: "members", Relation: members,
			Key:      change.RowOf(map[string]any{"name": "ann b", "tenant": int64(7)}),
			After:    change.RowOf(map[string]any{"tenant": int64(7), "age": int64(30), "name": "ann b"}),
			Position: change.Position{Source: "in", Offset: 101, Index: 0}}},
		{Stage: "transform.t", Err: "no key at all", Time: time.Unix(1700000002, 0), Event: change.Event{
			Op: change.Insert, Table: "logs", After: change.RowOf(map[string]any{"msg": "x"}),
			Position: change.Position{Source: "in", Offset: 102, Index: 0}}},
	}
	store, err := state.Open(statePath)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range letters {
		if _, _, err := store.AddLetter(l); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runCLI(t, "dlq", "list", file)
	if code != exitOK {
		t.Fatalf("dlq list: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[4], "3 dead letter(s)") {
		t.Fatalf("dlq list printed:\n%s\nwant a header, three letters and the count", out)
	}
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "ID STAGE TABLE KEY POSITION ERROR" {
		t.Fatalf("header = %q, want a KEY column after TABLE", lines[0])
	}
	// tabwriter aligns the columns, so KEY is the text under its header.
	keyAt, posAt := strings.Index(lines[0], "KEY"), strings.Index(lines[0], "POSITION")
	for i, want := range []struct{ table, key string }{
		{"public.users", `id=42`},
		{"public.members", `tenant=7 name="ann b"`},
		{"logs", `-`},
	} {
		row := lines[i+1]
		if len(row) < posAt || !strings.Contains(row, want.table) || strings.TrimSpace(row[keyAt:posAt]) != want.key {
			t.Errorf("letter %d row = %q, want table %s with KEY %s", i+1, row, want.table, want.key)
		}
	}

	code, out, errOut = runCLI(t, "dlq", "list", "--json", file)
	if code != exitOK {
		t.Fatalf("dlq list --json: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	var got []struct {
		ID    uint64          `json:"id"`
		Table string          `json:"table"`
		Key   json.RawMessage `json:"key"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("dlq list --json: %v\n%s", err, out)
	}
	wantKeys := []struct{ table, key string }{
		{"public.users", `{"id":42}`},
		{"public.members", `{"tenant":7,"name":"ann b"}`},
		{"logs", `{}`},
	}
	if len(got) != len(wantKeys) {
		t.Fatalf("dlq list --json shows %d letters, want %d:\n%s", len(got), len(wantKeys), out)
	}
	for i, w := range wantKeys {
		if got[i].Table != w.table || compact(t, got[i].Key) != w.key {
			t.Errorf("letter %d: table %q, key %s; want table %q, key %s", got[i].ID, got[i].Table, got[i].Key, w.table, w.key)
		}
	}
	// The key decodes as an object of column → value.
	var key map[string]any
	if err := json.Unmarshal(got[1].Key, &key); err != nil || key["tenant"] != float64(7) || key["name"] != "ann b" || len(key) != 2 {
		t.Errorf("key of the members letter = %s (%v), want an object tenant → 7, name → \"ann b\"", got[1].Key, err)
	}
}

func compact(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	return b.String()
}
