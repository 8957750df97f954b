// Package eventexpr compiles the per-event expressions of the pipeline
// language (`where` and the values of `set`) with expr-lang, once, against
// a typed environment describing one change event, and runs them.
//
// Compile errors carry the rune offset inside the expression text so that
// the dsl package can point at file:line:column inside the pipeline file.
// A Program is safe for concurrent use; an Evaluator is not (it reuses one
// VM and one environment value per goroutine).
package eventexpr
