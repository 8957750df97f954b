package dsl

import (
	"errors"
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

// Format returns src in canonical form, as `terraform fmt` would: aligned
// equals signs, two-space indentation, normalized spacing. Comments and
// the order of everything are kept. A file with a syntax error is
// returned unchanged with an error pointing at the first mistake.
func Format(src []byte) ([]byte, error) {
	if _, diags := hclsyntax.ParseConfig(src, "", hcl.InitialPos); diags.HasErrors() {
		d := diags[0]
		if d.Subject != nil {
			return src, fmt.Errorf("%d:%d: %s: %s", d.Subject.Start.Line, d.Subject.Start.Column, d.Summary, d.Detail)
		}
		return src, errors.New(d.Summary)
	}
	return hclwrite.Format(src), nil
}
