// Package dsl reads pipeline files. Load parses HCL, evaluates load-time
// functions (env, file) and variables, decodes every block into Config,
// resolves `from` references into a graph, compiles per-event expressions
// and returns every mistake it finds as hcl.Diagnostics that point at the
// exact token. It is the only package that imports HCL.
//
// The decoder is table-driven: schema.go holds one blockSpec per block type
// listing each attribute's name, type, default, allowed values and
// documentation. The same tables decode files, suggest names for typos and
// are checked against docs/reference.md by a test, so the three cannot
// drift apart.
//
// Diagnostics are gathered in one pass and sorted by position. Their
// Summary says what is wrong, their Detail what to write instead. Values
// that come from env(), file() or variables may be secrets and are never
// quoted in either; the printed source line shows only what the file
// itself says. WriteDiagnostics prints them as FILE:LINE:COL lines with the
// source line and a caret, or as JSON.
//
// Load is safe for concurrent use; a Config is read-only once returned.
package dsl
