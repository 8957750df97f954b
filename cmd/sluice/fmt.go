package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/sluice-cdc/sluice/dsl"
)

// fmt rewrites pipeline files in canonical form, like `terraform fmt`.
// With -check it only lists the files that are not formatted and exits 1.
func (c *cli) fmt(args []string) int {
	fs := c.flags("fmt", "[-check] FILE...")
	check := fs.Bool("check", false, "do not rewrite; list unformatted files and exit 1 if any")
	files, code, ok := c.parseFiles(fs, args, 1, -1)
	if !ok {
		return code
	}
	status := exitOK
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			c.errorf("%v", err)
			status = exitFindings
			continue
		}
		out, err := dsl.Format(src)
		if err != nil {
			c.errorf("%s: %v", path, err)
			status = exitFindings
			continue
		}
		if bytes.Equal(src, out) {
			continue
		}
		if *check {
			fmt.Fprintln(c.stdout, path)
			status = exitFindings
			continue
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			c.errorf("%v", err)
			status = exitFindings
			continue
		}
		fmt.Fprintln(c.stdout, path)
	}
	return status
}
