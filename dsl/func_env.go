package dsl

import (
	"fmt"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// envFunc is the load-time function env("NAME") or env("NAME", "default").
// An unset variable without a default is an error at the call, naming the
// variable and how to set it; a variable set to "" is returned as "".
// lookup is os.LookupEnv outside tests. With offline set, an unset
// variable without a default gives an unknown value instead: the loader
// then warns and skips the attribute (see Options.Offline).
func envFunc(lookup func(string) (string, bool), offline bool) function.Function {
	return function.New(&function.Spec{
		Description: "The value of an environment variable, or a default when it is unset.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		VarParam:    &function.Parameter{Name: "default", Type: cty.String},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if len(args) > 2 {
				return cty.NilVal, function.NewArgErrorf(2, "env takes a name and at most one default, got %d arguments", len(args))
			}
			name := args[0].AsString()
			if v, ok := lookup(name); ok {
				return cty.StringVal(v), nil
			}
			if len(args) == 2 {
				return args[1], nil
			}
			if offline {
				return cty.UnknownVal(cty.String), nil
			}
			return cty.NilVal, &callError{
				Summary: fmt.Sprintf("environment variable %s is not set", name),
				Detail:  fmt.Sprintf("Set it before running sluice (export %s=...), or give a default: env(%q, \"...\").", name, name),
			}
		},
	})
}

// callError is a load-time function failure phrased for the user; the
// loader turns it into the diagnostic's summary and detail.
type callError struct{ Summary, Detail string }

func (e *callError) Error() string { return e.Summary + ". " + e.Detail }
