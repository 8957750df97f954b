package dsl

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/agext/levenshtein"
)

// suggest returns the candidate closest to got when it is close enough to
// be a likely typo, else "".
func suggest(got string, candidates []string) string {
	best, bestDist := "", -1
	for _, c := range candidates {
		d := levenshtein.Distance(strings.ToLower(got), strings.ToLower(c), nil)
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	// one edit for very short names, two (a transposition) from three
	// characters on, more for long ones
	n := utf8.RuneCountInString(got)
	limit := max(1, n/3)
	if n >= 3 {
		limit = max(2, limit)
	}
	if bestDist < 0 || bestDist > limit {
		return ""
	}
	return best
}

// didYouMean is a diagnostic detail: a suggestion when one is close,
// and the full list of what is allowed.
func didYouMean(got string, candidates []string, what string) string {
	var b strings.Builder
	if s := suggest(got, candidates); s != "" {
		fmt.Fprintf(&b, "Did you mean %q? ", s)
	}
	if len(candidates) == 0 {
		fmt.Fprintf(&b, "There are no %s here.", what)
		return b.String()
	}
	fmt.Fprintf(&b, "The %s are %s.", what, quoteList(candidates))
	return b.String()
}

// quoteList renders ["a", "b", "c"] as `"a", "b" and "c"`.
func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = fmt.Sprintf("%q", s)
	}
	switch len(q) {
	case 0:
		return ""
	case 1:
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}
