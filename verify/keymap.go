package verify

import (
	"fmt"
	"slices"

	"github.com/sluice-cdc/sluice/dsl"
)

// chains returns every path of transforms from source src to the sink,
// each in source-to-sink order.
func chains(cfg *dsl.Config, src string, sink *dsl.Sink) [][]*dsl.Transform {
	byName := map[string]*dsl.Transform{}
	for _, t := range cfg.Transforms {
		byName[t.Name] = t
	}
	var out [][]*dsl.Transform
	var walk func(refs []dsl.Ref, tail []*dsl.Transform)
	walk = func(refs []dsl.Ref, tail []*dsl.Transform) {
		for _, r := range refs {
			switch r.Kind {
			case dsl.SourceRef:
				if r.Name == src {
					out = append(out, slices.Clone(tail))
				}
			case dsl.TransformRef:
				t := byName[r.Name]
				if t == nil || slices.Contains(tail, t) {
					continue
				}
				walk(t.From, append([]*dsl.Transform{t}, tail...))
			}
		}
	}
	walk(sink.From, nil)
	return out
}

// applies reports whether transform t works on table (schema.table).
func applies(t *dsl.Transform, table string) bool {
	return len(t.Tables) == 0 || slices.Contains(t.Tables, table)
}

// sourceColumn follows a target column back through a chain's renames to
// the source column it is read from. It fails for a column a transform
// computes or masks: its values are not the source's, so the source
// cannot be read in its order.
func sourceColumn(chain []*dsl.Transform, table, col string) (string, error) {
	for i := len(chain) - 1; i >= 0; i-- {
		t := chain[i]
		if !applies(t, table) {
			continue
		}
		for _, r := range t.Rename {
			if r.To == col {
				col = r.From
				break
			}
		}
		for _, s := range t.Set {
			if s.Column == col {
				return "", fmt.Errorf("key column %q is computed by transform %q (set), so the source cannot be read in key order", col, t.Name)
			}
		}
		for _, m := range t.Mask {
			if m.Column == col {
				return "", fmt.Errorf("key column %q is masked by transform %q, so its values differ from the source's", col, t.Name)
			}
		}
	}
	return col, nil
}

// targetColumn follows a source column forward through a chain's renames.
func targetColumn(chain []*dsl.Transform, table, col string) string {
	for _, t := range chain {
		if !applies(t, table) {
			continue
		}
		for _, r := range t.Rename {
			if r.From == col {
				col = r.To
				break
			}
		}
	}
	return col
}

// keyColumns returns the target key of a sink for a source table and,
// for each of its columns, the source column it comes from: the sink's
// key, else the source's primary key as the transforms rename it (what
// the sink itself matches rows by). Every path from the source to the
// sink must agree.
func keyColumns(cfg *dsl.Config, src string, sink *dsl.Sink, ts *dsl.TableSink, table string, sourceKey []string) (target, source []string, err error) {
	paths := chains(cfg, src, sink)
	if len(paths) == 0 {
		paths = [][]*dsl.Transform{nil}
	}
	for i, chain := range paths {
		var tgt, srcCols []string
		if len(ts.Key) > 0 {
			tgt = ts.Key
			for _, k := range ts.Key {
				c, err := sourceColumn(chain, table, k)
				if err != nil {
					return nil, nil, err
				}
				srcCols = append(srcCols, c)
			}
		} else {
			srcCols = sourceKey
			for _, k := range sourceKey {
				tgt = append(tgt, targetColumn(chain, table, k))
			}
		}
		if len(tgt) == 0 {
			return nil, nil, fmt.Errorf("table %s has no primary key and the sink sets no key: rows cannot be matched; set key = [...]", table)
		}
		if i == 0 {
			target, source = tgt, srcCols
		} else if !slices.Equal(target, tgt) || !slices.Equal(source, srcCols) {
			return nil, nil, fmt.Errorf("the paths from the source to the sink rename the key columns differently")
		}
	}
	return target, source, nil
}
