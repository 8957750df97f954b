package format

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/internal/eventtest"
)

var (
	metaTx  = change.Tx{ID: 123, CommitTime: time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)}
	metaEnd = change.Position{Source: "app", Offset: 23803720, Index: 4294967295}
	metaEv  = change.Event{Op: change.Insert, Schema: "public", Table: "users", Key: change.RowOf(map[string]any{"id": int64(1)}),
		After: change.RowOf(map[string]any{"id": int64(1)}), Changed: []string{"id"}, Tx: metaTx, Position: change.Position{Source: "app", Offset: 23803720, Index: 1}}
	metaOrder = &TxOrder{ID: TxID(metaTx, metaEnd), Total: 2, Table: 1}
	metaBegin = &Transaction{ID: "123:23803720", Tx: metaTx}
	metaFin   = &Transaction{End: true, ID: "123:23803720", Tx: metaTx, Position: metaEnd, Events: 3,
		Tables: []TableCount{{"public.orders", 1}, {"public.users", 2}}}
)

func TestMetaNative(t *testing.T) {
	for _, c := range []struct{ name, got, want string }{
		{"data event", string(Native{}.AppendInTx(nil, &metaEv, metaOrder)),
			`{"op":"insert","schema":"public","table":"users","key":{"id":1},"after":{"id":1},"changed":["id"],"tx":{"id":123,"commit_time":"2026-01-02T03:04:05.123456Z"},"transaction":{"id":"123:23803720","total_order":2,"data_collection_order":1},"position":"23803720.1"}`},
		{"data event without order", string(Native{}.AppendInTx(nil, &metaEv, nil)), string(Native{}.Append(nil, &metaEv))},
		{"begin", string(Native{}.AppendTransaction(nil, metaBegin)),
			`{"status":"begin","id":"123:23803720","tx":{"id":123,"commit_time":"2026-01-02T03:04:05.123456Z"}}`},
		{"end", string(Native{}.AppendTransaction(nil, metaFin)),
			`{"status":"end","id":"123:23803720","tx":{"id":123,"commit_time":"2026-01-02T03:04:05.123456Z"},"event_count":3,"data_collections":[{"data_collection":"public.orders","event_count":1},{"data_collection":"public.users","event_count":2}],"position":"23803720.4294967295"}`},
		{"resolved", string(Native{}.AppendResolved(nil, &Resolved{Time: metaTx.CommitTime, Position: metaEnd})),
			`{"resolved":"2026-01-02T03:04:05.123456Z","position":"23803720.4294967295"}`},
		{"resolved without position", string(Native{}.AppendResolved(nil, &Resolved{Time: metaTx.CommitTime})),
			`{"resolved":"2026-01-02T03:04:05.123456Z"}`},
	} {
		if c.got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, c.got, c.want)
		}
		if !json.Valid([]byte(c.got)) {
			t.Errorf("%s: not JSON: %s", c.name, c.got)
		}
	}
}

func TestMetaDebezium(t *testing.T) {
	d := Debezium{Now: func() time.Time { return time.UnixMilli(1767323045200) }}
	ev := string(d.AppendInTx(nil, &metaEv, metaOrder))
	var env struct {
		Transaction *struct {
			ID    string `json:"id"`
			Total uint64 `json:"total_order"`
			Table uint64 `json:"data_collection_order"`
		} `json:"transaction"`
	}
	if err := json.Unmarshal([]byte(ev), &env); err != nil || env.Transaction == nil || *env.Transaction != (struct {
		ID    string `json:"id"`
		Total uint64 `json:"total_order"`
		Table uint64 `json:"data_collection_order"`
	}{"123:23803720", 2, 1}) {
		t.Errorf("data event's transaction block: %s (%v)", ev, err)
	}
	for _, c := range []struct{ name, got, want string }{
		{"begin", string(d.AppendTransaction(nil, metaBegin)),
			`{"status":"BEGIN","id":"123:23803720","ts_ms":1767323045123,"event_count":null,"data_collections":null}`},
		{"end", string(d.AppendTransaction(nil, metaFin)),
			`{"status":"END","id":"123:23803720","ts_ms":1767323045123,"event_count":3,"data_collections":[{"data_collection":"public.orders","event_count":1},{"data_collection":"public.users","event_count":2}]}`},
		// 05.123456 covers the milliseconds up to .122 whole.
		{"resolved", string(d.AppendResolved(nil, &Resolved{Time: metaTx.CommitTime, Position: metaEnd})),
			`{"status":"RESOLVED","ts_ms":1767323045122,"ts_us":1767323045123456,"lsn":23803720}`},
		// .123999 covers .123 whole.
		{"resolved at a millisecond's end", string(d.AppendResolved(nil, &Resolved{Time: time.UnixMicro(1767323045123999)})),
			`{"status":"RESOLVED","ts_ms":1767323045123,"ts_us":1767323045123999,"lsn":null}`},
	} {
		if c.got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, c.got, c.want)
		}
	}
	d.Schemas = true
	for name, b := range map[string][]byte{
		"begin": d.AppendTransaction(nil, metaBegin), "end": d.AppendTransaction(nil, metaFin),
		"resolved": d.AppendResolved(nil, &Resolved{Time: metaTx.CommitTime}), "event": d.AppendInTx(nil, &metaEv, metaOrder),
	} {
		var w struct {
			Schema  map[string]any `json:"schema"`
			Payload map[string]any `json:"payload"`
		}
		if err := json.Unmarshal(b, &w); err != nil || w.Schema == nil || w.Payload == nil {
			t.Errorf("%s with schemas: %s (%v)", name, b, err)
			continue
		}
		// Every payload field is described by the schema.
		fields := map[string]bool{}
		for _, f := range w.Schema["fields"].([]any) {
			fields[f.(map[string]any)["field"].(string)] = true
		}
		for k := range w.Payload {
			if !fields[k] {
				t.Errorf("%s with schemas: payload field %q is not in the schema", name, k)
			}
		}
	}
}

// TestDecodeNativeIgnoresTransactionBlock: a file of AppendInTx lines
// reads back as the changes they are, on both decoding paths.
func TestDecodeNativeIgnoresTransactionBlock(t *testing.T) {
	line := Native{}.AppendInTx(nil, &metaEv, metaOrder)
	want, err := DecodeNative(Native{}.Append(nil, &metaEv))
	if err != nil {
		t.Fatal(err)
	}
	fast, ok := fastNative(line)
	if !ok {
		t.Fatalf("the fast path gave up on %s", line)
	}
	careful, err := decodeNativeCarefully(line)
	if err != nil {
		t.Fatal(err)
	}
	if pf, pc, pw := eventtest.Plain(fast), eventtest.Plain(careful), eventtest.Plain(want); !reflect.DeepEqual(pf, pw) || !reflect.DeepEqual(pc, pw) {
		t.Errorf("decoded %s:\n fast    %+v\n careful %+v\nwant     %+v", line, pf, pc, pw)
	}
	for _, meta := range [][]byte{Native{}.AppendTransaction(nil, metaFin), Native{}.AppendResolved(nil, &Resolved{Time: metaTx.CommitTime})} {
		if _, err := DecodeNative(meta); err == nil {
			t.Errorf("DecodeNative accepted %s as a change", meta)
		}
	}
}
