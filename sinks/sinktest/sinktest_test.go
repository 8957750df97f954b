package sinktest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

// mem is an in-memory target that keeps the rules: what a Flush commits
// becomes visible at once with its checkpoint, nothing before.
type mem struct {
	kind Kind
	// brk names the rule this target breaks (see breaks); "" for none.
	brk  string
	mu   sync.Mutex
	cols []string
	rows map[string]Row
	msgs []Message
	cp   change.Checkpoint // committed with the rows (Kind Table)
}

type memSink struct {
	m       *mem
	pending []change.Event
}

func (s *memSink) Open(_ context.Context, saved []byte) (change.Checkpoint, error) {
	s.pending = nil
	if s.m.brk == "open ignores the checkpoint" {
		return change.Checkpoint{}, nil
	}
	if s.m.kind == Table { // the target is the truth
		s.m.mu.Lock()
		defer s.m.mu.Unlock()
		return s.m.cp.Clone(), nil
	}
	cp := change.Checkpoint{}
	if saved != nil {
		if err := json.Unmarshal(saved, &cp); err != nil {
			return nil, engine.Permanent(err)
		}
	}
	return cp, nil
}

func (s *memSink) Write(_ context.Context, events []change.Event) error {
	for _, e := range events {
		if n, ok := e.After.Get("note").(string); ok && len(n) > 8 {
			if s.m.brk == "reject names another event" && len(s.pending) > 0 {
				e = s.pending[len(s.pending)-1]
			}
			return &engine.RejectError{Event: e, Err: fmt.Errorf("note %q is longer than 8", n)}
		}
		if s.m.brk == "write commits at once" {
			s.pending = append(s.pending, e)
			s.commit(nil)
			continue
		}
		s.pending = append(s.pending, e)
	}
	return nil
}

func (s *memSink) Flush(_ context.Context, cp change.Checkpoint) ([]byte, error) {
	return s.commit(cp)
}

// commit applies the pending events and, unless cp is nil, the
// checkpoint.
func (s *memSink) commit(cp change.Checkpoint) ([]byte, error) {
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.brk == "marks alone do not move the checkpoint" && !slices.ContainsFunc(s.pending, func(e change.Event) bool { return e.Op != change.Mark }):
		cp = m.cp
	case m.brk == "one stream kept" && len(cp) > 1:
		one := change.Checkpoint{}
		for st, p := range cp {
			if st.Partition == "t/0" {
				one[st] = p
			}
		}
		cp = one
	}
	for _, e := range s.pending {
		if m.brk == "new columns dropped" && e.Op.IsRow() && e.After.Has("age") {
			after := e.After.Clone()
			after.Delete("age")
			e.After = after
		}
		if m.brk == "truncate ignored" && e.Op == change.Truncate {
			continue
		}
		if m.kind == Log {
			switch {
			case e.Op.IsRow():
				msg := Message{Op: e.Op.String(), Table: e.Table, Key: rowText(e.Key), Row: rowText(e.After)}
				if e.Op == change.Delete {
					msg.Row = rowText(e.Before)
				}
				m.msgs = append(m.msgs, msg)
			case e.Op == change.Truncate:
				m.msgs = append(m.msgs, Message{Op: "truncate", Table: e.Table})
			}
			continue
		}
		if e.Op.IsRow() {
			for _, c := range e.Row().Columns().Names() {
				if !slices.Contains(m.cols, c) {
					m.cols = append(m.cols, c)
				}
			}
		}
		switch e.Op {
		case change.Insert, change.Update, change.Snapshot:
			k := text(e.Key.Get("id"))
			if m.rows[k] == nil {
				m.rows[k] = Row{}
			}
			for c, v := range e.After.All() {
				m.rows[k][c] = text(v)
			}
		case change.Delete:
			delete(m.rows, text(e.Key.Get("id")))
		case change.Truncate:
			clear(m.rows)
		}
	}
	s.pending = nil
	if cp == nil {
		return nil, nil
	}
	m.cp = cp.Clone()
	if m.kind == Table {
		return nil, nil
	}
	return json.Marshal(cp)
}

func (s *memSink) Close() error {
	if s.m.brk == "close commits" {
		s.commit(nil)
	}
	s.pending = nil
	return nil
}

func memFactory(kind Kind, brk string) Factory {
	f := Factory{
		Name: "mem",
		Kind: kind,
		NewTarget: func(t *testing.T) *Target {
			m := &mem{kind: kind, brk: brk, rows: map[string]Row{}, cp: change.Checkpoint{}}
			return &Target{
				New: func(engine.Build) (engine.Sink, error) { return &memSink{m: m}, nil },
				Rows: func(_ *testing.T, table string) []Row {
					m.mu.Lock()
					defer m.mu.Unlock()
					var out []Row
					for _, r := range m.rows {
						whole := Row{}
						for _, c := range m.cols {
							whole[c] = Null
						}
						for c, v := range r {
							whole[c] = v
						}
						out = append(out, whole)
					}
					return out
				},
				Messages: func(*testing.T) []Message {
					m.mu.Lock()
					defer m.mu.Unlock()
					return slices.Clone(m.msgs)
				},
			}
		},
		Reject: func(e change.Event) change.Event {
			after := e.After.Clone()
			after.Set("note", "far too long for eight")
			e.After = after
			return e
		},
		Truncate: TruncateEmpties,
	}
	if kind == Log {
		f.Truncate = TruncateMessage
	}
	return f
}

// TestMemory runs the kit against in-memory targets that keep every rule.
func TestMemory(t *testing.T) {
	t.Run("table", func(t *testing.T) { Run(t, memFactory(Table, "")) })
	t.Run("log", func(t *testing.T) { Run(t, memFactory(Log, "")) })
}

// breaks are rules an in-memory target can break, each with the case
// that must then fail.
var breaks = map[string]string{
	"close commits":                          "exactly_once_across_a_crash",
	"open ignores the checkpoint":            "exactly_once_across_a_crash",
	"write commits at once":                  "a_source_transaction_is_never_committed_in_part",
	"marks alone do not move the checkpoint": "marks_move_the_checkpoint_and_write_nothing",
	"truncate ignored":                       "truncate",
	"new columns dropped":                    "an_added_column_mid-stream",
	"reject names another event":             "a_rejected_event_is_named_and_the_events_around_it_are_written",
	"one stream kept":                        "restart_from_the_returned_checkpoint_over_two_streams",
}

// TestMemoryBroken is TestMemory with the rule $SINKTEST_BREAK names
// broken; TestBreaks runs it.
func TestMemoryBroken(t *testing.T) {
	brk := os.Getenv("SINKTEST_BREAK")
	if brk == "" {
		t.Skip("run by TestBreaks")
	}
	t.Run("table", func(t *testing.T) { Run(t, memFactory(Table, brk)) })
	t.Run("log", func(t *testing.T) { Run(t, memFactory(Log, brk)) })
}

// TestBreaks checks that each case fails, for both kinds, when the rule
// it checks is broken.
func TestBreaks(t *testing.T) {
	for brk, want := range breaks {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMemoryBroken$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "SINKTEST_BREAK="+brk)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("%s: every case passed", brk)
			continue
		}
		for _, kind := range []string{"table", "log"} {
			if !strings.Contains(string(out), "--- FAIL: TestMemoryBroken/"+kind+"/"+want+" ") {
				t.Errorf("%s: the case %q did not fail for a %s target:\n%s", brk, want, kind, out)
			}
		}
	}
}

func TestDecode(t *testing.T) {
	m, err := DecodeNative([]byte(`{"op":"update","schema":"public","table":"items","key":{"id":1},"after":{"id":1,"name":"x","n":null,"b":true,"j":{"a":[1]}},"position":"1.0"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.String(); got != `update items key={"id":"1"} row={"b":"true","id":"1","j":"{\"a\":[1]}","n":"NULL","name":"x"}` {
		t.Errorf("native: %s", got)
	}
	m, err = DecodeDebezium([]byte(`{"id":2}`), []byte(`{"before":{"id":2},"after":null,"source":{"table":"items"},"op":"d"}`))
	if err != nil || m.String() != `delete items key={"id":"2"} row={"id":"2"}` {
		t.Errorf("debezium: %s, %v", m, err)
	}
	m, err = DecodeDebezium(nil, []byte(`{"schema":{},"payload":{"before":null,"after":null,"source":{"table":"items"},"op":"t"}}`))
	if err != nil || m.String() != `truncate items key=null row=null` {
		t.Errorf("debezium with schema: %s, %v", m, err)
	}
}
