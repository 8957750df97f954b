package dsl

import (
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// memoConfig is the config of the kind TestRegisteredSink registers.
type memoConfig struct {
	Target string
	Copies int
	Token  Secret
	Ranges map[string]hcl.Range
}

// TestRegisteredSink: a kind registered by a component is decoded,
// defaulted and checked like a built-in one, and only its package knows
// its config.
func TestRegisteredSink(t *testing.T) {
	RegisterSink(SinkKind{
		Spec: &BlockSpec{Kind: "memo", Doc: "A sink of this test.",
			Attrs: []AttrSpec{
				{Name: "target", Type: AttrString, Field: "Target", DefaultDoc: `"<pipeline>.memo"`, Doc: "Where."},
				{Name: "copies", Type: AttrInt, Field: "Copies", Required: true, Min: 1, Doc: "How many."},
				{Name: "token", Type: AttrSecret, Field: "Token", Doc: "A secret."},
			}},
		Config: func() any { return new(memoConfig) },
		Defaults: func(cfg any, pipeline string, present map[string]bool) {
			if c := cfg.(*memoConfig); !present["target"] {
				c.Target = pipeline + ".memo"
			}
		},
	})
	t.Cleanup(func() { unregisterSink("memo") })
	memo := func(body string) []byte {
		return []byte(`pipeline "shop" {}
source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}
sink "memo" "m" {
  from = source.app
` + body + `
}
`)
	}
	cfg, _, diags := Load("p.hcl", memo("  copies = 2\n  token  = \"s3cret\""), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	s := cfg.Sinks[0]
	c, ok := s.Config.(*memoConfig)
	if !ok || s.Type != "memo" || len(s.From) != 1 {
		t.Fatalf("sink = %+v", s)
	}
	if c.Target != "shop.memo" || c.Copies != 2 || c.Token.Reveal() != "s3cret" || c.Ranges["copies"].Start.Line != 8 {
		t.Errorf("config = %+v", c)
	}
	for _, bad := range []struct{ body, want string }{
		{`copie = 2`, `unknown attribute "copie" in sink "memo"`},
		{`target = "x"`, `is missing required attribute "copies"`},
		{`copies = 0`, `copies`},
	} {
		_, _, diags := Load("p.hcl", memo("  "+bad.body), nil)
		if !diags.HasErrors() || !strings.Contains(diags.Error(), bad.want) {
			t.Errorf("%s: diagnostics %v, want one containing %q", bad.body, diags, bad.want)
		}
	}
	if _, _, diags := Load("p.hcl", []byte(`pipeline "p" {}
sink "mem" "m" {}
`), nil); !strings.Contains(diags.Error(), `memo`) {
		t.Errorf("a misspelt registered kind is not suggested: %v", diags)
	}
	for what, k := range map[string]SinkKind{
		"a kind registered twice":           {Spec: &BlockSpec{Kind: "memo"}, Config: func() any { return new(memoConfig) }},
		"an attribute without its field":    {Spec: &BlockSpec{Kind: "memo2", Attrs: []AttrSpec{{Name: "x", Type: AttrString, Field: "X"}}}, Config: func() any { return new(memoConfig) }},
		"a config that is not a struct ptr": {Spec: &BlockSpec{Kind: "memo3"}, Config: func() any { return memoConfig{} }},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s was accepted", what)
					unregisterSink(k.Spec.Kind)
				}
			}()
			RegisterSink(k)
		}()
	}
}
