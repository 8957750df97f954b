package dsl

import (
	"strings"
	"testing"
)

func TestFormat(t *testing.T) {
	in := "pipeline \"p\" {\nstate=\"x\"   # keep me\n  on_error   =    \"fail\"\n}\nsink \"file\" \"f\" {\n    from = source.a\n    path=\"-\"\n}\n"
	want := "pipeline \"p\" {\n  state    = \"x\" # keep me\n  on_error = \"fail\"\n}\nsink \"file\" \"f\" {\n  from = source.a\n  path = \"-\"\n}\n"
	got, err := Format([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	again, _ := Format(got)
	if string(again) != string(got) {
		t.Error("Format is not idempotent")
	}
	if _, err := Format([]byte("pipeline \"p\" {\n  state = \n")); err == nil || !strings.HasPrefix(err.Error(), "2:") {
		t.Errorf("syntax error: err = %v, want one at line 2", err)
	}
}
