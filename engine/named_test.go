package engine

import (
	"errors"
	"testing"
)

// TestNamedNamesOnce: the engine names the node of an error unless the
// component's error names it already.
func TestNamedNamesOnce(t *testing.T) {
	cause := errors.New("connection refused")
	for _, c := range []struct {
		err         error
		doing, want string
	}{
		{cause, "open", `sink "events": open: connection refused`},
		{cause, "", `sink "events": connection refused`},
		{errors.New(`kafka sink "events": connect: refused`), "open", `kafka sink "events": connect: refused`},
		{errors.New(`p.hcl:3,1: kafka sink "other": bad`), "", `sink "events": p.hcl:3,1: kafka sink "other": bad`},
	} {
		got := named("sink", "events", c.doing, c.err)
		if got.Error() != c.want || !errors.Is(got, c.err) {
			t.Errorf("named(%q) = %q, want %q wrapping the cause", c.err, got, c.want)
		}
	}
	if !IsPermanent(named("source", "app", "open", Permanent(cause))) {
		t.Error("naming a permanent error made it transient")
	}
}
