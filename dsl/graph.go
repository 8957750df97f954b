package dsl

import (
	"fmt"
	"strings"
)

// resolve checks the `from` references of transforms and sinks: each
// names an existing block, transforms form no cycle, and every source is
// read by something.
func (l *loader) resolve() {
	sources := map[string]*Source{}
	for _, s := range l.cfg.Sources {
		sources[s.Name] = s
	}
	transforms := map[string]*Transform{}
	for _, t := range l.cfg.Transforms {
		transforms[t.Name] = t
	}
	read := map[Ref]bool{}
	check := func(refs []Ref) {
		for _, r := range refs {
			read[Ref{Kind: r.Kind, Name: r.Name}] = true
			if r.Kind == SourceRef && sources[r.Name] != nil || r.Kind == TransformRef && transforms[r.Name] != nil || l.dropped[Ref{Kind: r.Kind, Name: r.Name}] {
				continue
			}
			names := sortedKeys(sources)
			if r.Kind == TransformRef {
				names = sortedKeys(transforms)
			}
			detail := didYouMean(r.Name, names, string(r.Kind)+" names")
			if r.Kind == SourceRef && transforms[r.Name] != nil {
				detail = fmt.Sprintf("There is a transform %q: write transform.%s.", r.Name, r.Name)
			} else if r.Kind == TransformRef && sources[r.Name] != nil {
				detail = fmt.Sprintf("There is a source %q: write source.%s.", r.Name, r.Name)
			}
			l.errorf(r.Range, detail, "unknown reference %s", r)
			l.unsureFrom = true // the source it meant now looks unread
		}
	}
	for _, t := range l.cfg.Transforms {
		check(t.From)
	}
	for _, s := range l.cfg.Sinks {
		check(s.From)
	}
	l.cycles(transforms)
	if l.unsureFrom {
		return
	}
	for _, s := range l.cfg.Sources {
		if !read[Ref{Kind: SourceRef, Name: s.Name}] {
			l.errorf(s.DeclRange, fmt.Sprintf("Nothing has from = source.%s. Add it to a sink or transform, or remove the source.", s.Name),
				"source %q is not read by any transform or sink", s.Name)
		}
	}
	for _, t := range l.cfg.Transforms {
		if !read[Ref{Kind: TransformRef, Name: t.Name}] {
			l.warnf(t.DeclRange, fmt.Sprintf("Nothing has from = transform.%s, so its events go nowhere. Add it to a sink, or remove the transform.", t.Name),
				"transform %q is not read by any sink or transform", t.Name)
		}
	}
}

// cycles reports each cycle among transforms once, at the reference that
// closes it, naming every edge.
func (l *loader) cycles(transforms map[string]*Transform) {
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(t *Transform)
	visit = func(t *Transform) {
		state[t.Name] = visiting
		stack = append(stack, t.Name)
		for _, r := range t.From {
			next := transforms[r.Name]
			if r.Kind != TransformRef || next == nil {
				continue
			}
			switch state[next.Name] {
			case unvisited:
				visit(next)
			case visiting:
				l.errorf(r.Range, "Transforms form a chain from sources to sinks; remove one of these from references.",
					"cycle: %s", cycleText(stack, next.Name))
			}
		}
		stack = stack[:len(stack)-1]
		state[t.Name] = done
	}
	for _, t := range l.cfg.Transforms {
		if state[t.Name] == unvisited {
			visit(t)
		}
	}
}

// cycleText renders a cycle as its from edges: "transform.a reads
// transform.b, which reads transform.a". stack is the path of the search,
// each transform reading the next; the last one reads back.
func cycleText(stack []string, back string) string {
	i := len(stack) - 1
	for i > 0 && stack[i] != back {
		i--
	}
	var b strings.Builder
	for k, name := range stack[i:] {
		if k == 0 {
			fmt.Fprintf(&b, "transform.%s reads ", name)
		} else {
			fmt.Fprintf(&b, "transform.%s, which reads ", name)
		}
	}
	fmt.Fprintf(&b, "transform.%s", back)
	return b.String()
}
