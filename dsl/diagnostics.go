package dsl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// jsonDiagnostic is one element of the --json output.
type jsonDiagnostic struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Column   int    `json:"column"`
	Severity string `json:"severity"`
	Summary  string `json:"summary"`
	Detail   string `json:"detail"`
}

// WriteDiagnostics prints diags the way compilers do:
//
//	FILE:LINE:COL: error: SUMMARY
//	    DETAIL
//	    the offending source line
//	    ^~~~ under the offending tokens
//
// or, with asJSON, as one JSON array of objects with file, line, column,
// severity, summary and detail. files gives the source lines; it may be
// nil. Diagnostics without a position print as "error: SUMMARY".
func WriteDiagnostics(w io.Writer, files *Files, diags hcl.Diagnostics, asJSON bool) error {
	if asJSON {
		out := make([]jsonDiagnostic, 0, len(diags))
		for _, d := range diags {
			j := jsonDiagnostic{Severity: severity(d), Summary: d.Summary, Detail: d.Detail}
			if d.Subject != nil {
				j.File, j.Line, j.Column = d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column
			}
			out = append(out, j)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	var b bytes.Buffer
	for _, d := range diags {
		if d.Subject != nil {
			fmt.Fprintf(&b, "%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		fmt.Fprintf(&b, "%s: %s\n", severity(d), d.Summary)
		if d.Detail != "" {
			fmt.Fprintf(&b, "    %s\n", strings.ReplaceAll(d.Detail, "\n", "\n    "))
		}
		if d.Subject != nil {
			writeSourceLine(&b, files.Source(d.Subject.Filename), *d.Subject)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

func severity(d *hcl.Diagnostic) string {
	if d.Severity == hcl.DiagWarning {
		return "warning"
	}
	return "error"
}

// writeSourceLine prints the line where r starts and a caret line under
// the part of r on that line. Tabs are kept so the caret lines up.
func writeSourceLine(b *bytes.Buffer, src []byte, r hcl.Range) {
	if len(src) == 0 || r.Start.Byte < 0 || r.Start.Byte > len(src) {
		return
	}
	start := bytes.LastIndexByte(src[:r.Start.Byte], '\n') + 1
	end := bytes.IndexByte(src[r.Start.Byte:], '\n')
	if end < 0 {
		end = len(src)
	} else {
		end += r.Start.Byte
	}
	line := strings.TrimRight(string(src[start:end]), "\r")
	fmt.Fprintf(b, "    %s\n    ", line)
	lead := []rune(string(src[start:r.Start.Byte]))
	for _, c := range lead {
		if c == '\t' {
			b.WriteByte('\t')
		} else {
			b.WriteByte(' ')
		}
	}
	width := 1
	if r.End.Line == r.Start.Line && r.End.Byte > r.Start.Byte && r.End.Byte <= end {
		width = max(1, len([]rune(string(src[r.Start.Byte:r.End.Byte]))))
	} else if r.End.Line != r.Start.Line {
		width = max(1, len([]rune(line))-len(lead))
	}
	b.WriteString("^" + strings.Repeat("~", width-1) + "\n")
}
