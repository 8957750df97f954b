package sqltabletest

import "testing"

// fidelityCases check what a target row holds after each kind of change
// on a pre-created target with NOT NULL columns and on an auto-created
// one: primary-key moves and updates that leave columns out, soft
// deletes that carry only the key, truncates and schema changes.
var fidelityCases = []struct {
	name string
	run  func(t *testing.T, tg Target)
}{}
