package sqltabletest

import "testing"

// exactCases check that values and keys arrive exactly: text keys that
// differ only by case, trailing space or accent stay distinct rows,
// numerics are stored exactly or refused, arrays keep their elements'
// types.
var exactCases = []struct {
	name string
	run  func(t *testing.T, tg Target)
}{}
