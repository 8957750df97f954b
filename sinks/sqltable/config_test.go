package sqltable

import (
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
)

func TestOptions(t *testing.T) {
	at := map[string]hcl.Range{"mode": {Filename: "p.hcl", Start: hcl.Pos{Line: 4, Column: 3}}}
	for _, c := range []struct {
		name string
		cfg  dsl.TableSink
		err  string // "" means valid
	}{
		{"defaults", dsl.TableSink{}, ""},
		{"qualified table", dsl.TableSink{Table: "app.users"}, ""},
		{"update needs columns", dsl.TableSink{Mode: "update", Ranges: at}, `p.hcl:4:3: sink "s": mode = "update" needs columns`},
		{"unknown mode", dsl.TableSink{Mode: "merge"}, `mode "merge" is not one of upsert, append, update`},
		{"unknown delete", dsl.TableSink{Delete: "soft-ish"}, `delete "soft-ish" is not one of hard, soft, skip`},
		{"unknown schema_changes", dsl.TableSink{SchemaChanges: "ignore"}, `schema_changes "ignore"`},
		{"table with two dots", dsl.TableSink{Table: "a.b.c"}, `write TABLE or SCHEMA.TABLE`},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, err := newOptions("s", &c.cfg)
			if c.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if o.mode != ModeUpsert || o.delete != DeleteHard || o.batch != DefaultBatchSize || o.schema != SchemaAddColumns {
					t.Errorf("defaults not applied: %+v", o)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) || !engine.IsPermanent(err) {
				t.Fatalf("got %v, want a permanent error containing %q", err, c.err)
			}
		})
	}
}
