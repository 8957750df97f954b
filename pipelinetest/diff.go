package pipelinetest

import (
	"sort"

	"github.com/sluice-cdc/sluice/engine/change"
)

// diffRow lists, one line per column and in column order, how got differs
// from want, each line starting with prefix (e.g. "after."). In an event
// a column that is absent differs from one that is null (absent means
// "not sent, leave it alone"); in a table row they are the same
// (absentIsNull), as a missing column reads NULL.
func diffRow(prefix string, want, got change.Row, absentIsNull bool) []string {
	names := make([]string, 0, want.Len()+got.Len())
	for k := range want.All() {
		names = append(names, k)
	}
	for k := range got.All() {
		if _, ok := want.Lookup(k); !ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var lines []string
	for _, k := range names {
		w, inWant := want.Lookup(k)
		g, inGot := got.Lookup(k)
		switch {
		case inWant && inGot:
			if !Equal(w, g) {
				lines = append(lines, prefix+k+": want "+Format(w)+", got "+Format(g))
			}
		case absentIsNull && w == nil && g == nil:
		case inWant && absentIsNull:
			lines = append(lines, prefix+k+": want "+Format(w)+", got null (no such column)")
		case inWant:
			lines = append(lines, prefix+k+": want "+Format(w)+", got no such column")
		default:
			lines = append(lines, prefix+k+": not expected, got "+Format(g))
		}
	}
	return lines
}
