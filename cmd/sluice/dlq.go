package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/sluice-cdc/sluice/components"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/engine/state"
	"github.com/sluice-cdc/sluice/format"
)

// dlq lists, replays or purges the dead-letter queue of a pipeline's
// state file. It cannot run while the pipeline runs (the state file has
// one writer).
func (c *cli) dlq(args []string) int {
	if len(args) == 0 {
		c.errorf("dlq: want a subcommand: list, replay or purge")
		return exitUsage
	}
	sub, args := args[0], args[1:]
	fs := c.flags("dlq "+sub, "FILE [--stage sink.NAME|transform] [--json]")
	stage := fs.String("stage", "", `only this stage's letters: "sink.NAME" or "transform.NAME", or "sink" or "transform" for every stage of the kind`)
	asJSON := fs.Bool("json", false, "print JSON (list)")
	vars := varsFlag{}
	fs.Var(vars, "var", "set a variable: -var NAME=value (repeatable)")
	switch sub {
	case "list", "replay", "purge":
	default:
		c.errorf("dlq: unknown subcommand %q: want list, replay or purge", sub)
		return exitUsage
	}
	files, code, ok := c.parseFiles(fs, args, 1, 1)
	if !ok {
		return code
	}
	cfg := c.load(files[0], vars, false)
	if cfg == nil {
		return exitFindings
	}
	path := components.Settings(cfg).StatePath()
	switch sub {
	case "replay":
		g, err := components.Compile(cfg, components.Registry(), nil)
		if err != nil {
			c.errorf("%v", err)
			return exitFindings
		}
		res, err := g.ReplayDeadLetters(context.Background(), engine.ReplayOptions{Stage: *stage})
		fmt.Fprintf(c.stdout, "replayed %d, still failing %d\n", res.Replayed, res.Failed)
		if err != nil {
			c.errorf("%v", err)
			return exitFindings
		}
		if res.Failed > 0 {
			return exitFindings
		}
		return exitOK
	}
	store, err := state.Open(path)
	if err != nil {
		c.errorf("%v", err)
		return exitFindings
	}
	defer store.Close()
	if sub == "purge" {
		n, err := store.Purge(*stage)
		if err != nil {
			c.errorf("%v", err)
			return exitFindings
		}
		fmt.Fprintf(c.stdout, "purged %d dead letter(s)\n", n)
		return exitOK
	}
	return c.listLetters(store, *stage, *asJSON)
}

func (c *cli) listLetters(store *state.Store, stage string, asJSON bool) int {
	type jsonLetter struct {
		ID       uint64          `json:"id"`
		Stage    string          `json:"stage"`
		Time     string          `json:"time"`
		Table    string          `json:"table"`
		Key      keyJSON         `json:"key"`
		Position string          `json:"position"`
		Error    string          `json:"error"`
		Event    json.RawMessage `json:"event"`
	}
	var out []jsonLetter
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	if !asJSON {
		fmt.Fprintln(tw, "ID\tSTAGE\tTABLE\tKEY\tPOSITION\tERROR")
	}
	var after uint64
	total := 0
	for {
		page, err := store.Letters(stage, after, 100)
		if err != nil {
			c.errorf("%v", err)
			return exitFindings
		}
		if len(page) == 0 {
			break
		}
		for _, l := range page {
			after = l.ID
			total++
			ev := format.Native{}.Append(nil, &l.Event)
			key, err := deadLetterKey(ev, &l.Event)
			if err != nil {
				c.errorf("dead letter %d: %v", l.ID, err)
				return exitFindings
			}
			if asJSON {
				out = append(out, jsonLetter{l.ID, l.Stage, l.Time.UTC().Format("2006-01-02T15:04:05.000Z"), l.Event.QualifiedTable(), key, l.Event.Position.Stream().String() + "@" + l.Event.Position.String(), l.Err, ev})
				continue
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s@%s\t%s\n", l.ID, l.Stage, l.Event.QualifiedTable(), key.text(), l.Event.Position.Stream(), l.Event.Position.String(), l.Err)
		}
	}
	if asJSON {
		if out == nil {
			out = []jsonLetter{}
		}
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			c.errorf("%v", err)
			return exitFindings
		}
		return exitOK
	}
	tw.Flush()
	fmt.Fprintf(c.stdout, "%d dead letter(s)\n", total)
	return exitOK
}

// keyColumn is one column of a dead letter's primary key, its value as
// the native format writes it (42, "x", null).
type keyColumn struct {
	Name  string
	Value json.RawMessage
}

// keyJSON is a dead letter's primary key, in key-column order. It
// marshals as a JSON object in that order, {} when the event carries no
// key.
type keyJSON []keyColumn

// deadLetterKey returns the primary key of e, whose native encoding is
// ev, so that the key reads exactly as it does in the event: the table's
// key columns in table order (from e.Relation), then any other column of
// e.Key by name (an event without a Relation, or a column a transform
// renamed).
func deadLetterKey(ev json.RawMessage, e *change.Event) (keyJSON, error) {
	var native struct {
		Key map[string]json.RawMessage `json:"key"`
	}
	if err := json.Unmarshal(ev, &native); err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	var names []string
	if e.Relation != nil {
		for _, n := range e.Relation.KeyNames() {
			if _, ok := native.Key[n]; ok {
				names = append(names, n)
			}
		}
	}
	for _, n := range e.Key.Names() {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	key := make(keyJSON, 0, len(names))
	for _, n := range names {
		if v, ok := native.Key[n]; ok {
			key = append(key, keyColumn{n, v})
		}
	}
	return key, nil
}

// text renders the key for the table: `id=42`, `a=1 b="x"`, or "-"
// when the event carries none. A column name that is not a plain
// identifier is quoted.
func (k keyJSON) text() string {
	if len(k) == 0 {
		return "-"
	}
	var b strings.Builder
	for i, c := range k {
		if i > 0 {
			b.WriteByte(' ')
		}
		if plainName(c.Name) {
			b.WriteString(c.Name)
		} else {
			b.WriteString(strconv.Quote(c.Name))
		}
		b.WriteByte('=')
		b.Write(c.Value)
	}
	return b.String()
}

func plainName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// MarshalJSON writes the key as an object in key-column order.
func (k keyJSON) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, c := range k {
		if i > 0 {
			b = append(b, ',')
		}
		name, err := json.Marshal(c.Name)
		if err != nil {
			return nil, err
		}
		b = append(b, name...)
		b = append(b, ':')
		b = append(b, c.Value...)
	}
	return append(b, '}'), nil
}
