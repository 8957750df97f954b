package pipelinetest

import (
	"fmt"
	"io"
)

// Write prints each result as Result.String does (PASS NAME, or FAIL
// NAME (FILE:LINE) and the indented failure), then the closing line
// "N passed, N failed".
func Write(w io.Writer, results []Result) error {
	for _, r := range results {
		if _, err := fmt.Fprintln(w, r.String()); err != nil {
			return err
		}
	}
	passed, failed := Count(results)
	_, err := fmt.Fprintf(w, "%d passed, %d failed\n", passed, failed)
	return err
}
