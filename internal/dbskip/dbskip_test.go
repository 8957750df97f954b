package dbskip

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestSkip(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		skip bool
	}{
		{"nothing set fails", nil, false},
		{"SLUICE_SKIP_DB=1 skips", map[string]string{"SLUICE_SKIP_DB": "1"}, true},
		{"SLUICE_SKIP_DB=0 fails", map[string]string{"SLUICE_SKIP_DB": "0"}, false},
		{"SLUICE_SKIP_DB empty fails", map[string]string{"SLUICE_SKIP_DB": ""}, false},
		{"SLUICE_SKIP_DB=true is not 1 and fails", map[string]string{"SLUICE_SKIP_DB": "true"}, false},
		{"CI=true fails", map[string]string{"CI": "true"}, false},
		{"CI=true fails even with SLUICE_SKIP_DB=1", map[string]string{"CI": "true", "SLUICE_SKIP_DB": "1"}, false},
		{"CI=false with SLUICE_SKIP_DB=1 skips", map[string]string{"CI": "false", "SLUICE_SKIP_DB": "1"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Skip(env(c.env)); got != c.skip {
				t.Errorf("Skip(%v) = %t, want %t", c.env, got, c.skip)
			}
		})
	}
}

var errNoServer = errors.New("no FooDB at 127.0.0.1:1234 (apt-get install foodb)")

func TestMessage(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"failing says how to get the server and how to skip", nil,
			[]string{"no FooDB at 127.0.0.1:1234", "make test", "SLUICE_SKIP_DB=1"}},
		{"skipping says why and how to get the server", map[string]string{"SLUICE_SKIP_DB": "1"},
			[]string{"no FooDB at 127.0.0.1:1234", "make test", "skipped because SLUICE_SKIP_DB=1"}},
		{"under CI says SLUICE_SKIP_DB does not apply", map[string]string{"CI": "true", "SLUICE_SKIP_DB": "1"},
			[]string{"no FooDB at 127.0.0.1:1234", "make test", "does not skip under CI=true"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := Message(env(c.env), errNoServer)
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("Message = %q, want it to contain %q", msg, w)
				}
			}
		})
	}
}

// recorder is a testing.TB that records Skip and Fatal instead of
// ending the test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()           {}
func (r *recorder) Skip(args ...any)  { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Fatal(args ...any) { r.failed = fmt.Sprint(args...) }

func TestMissingAndMain(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		skip bool
	}{
		{"default fails", nil, false},
		{"SLUICE_SKIP_DB=1 skips", map[string]string{"SLUICE_SKIP_DB": "1"}, true},
		{"CI=true with SLUICE_SKIP_DB=1 fails", map[string]string{"CI": "true", "SLUICE_SKIP_DB": "1"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("CI", c.env["CI"])
			t.Setenv(Env, c.env[Env])
			r := &recorder{}
			Missing(r, errNoServer)
			if c.skip && (r.skipped == "" || r.failed != "") || !c.skip && (r.failed == "" || r.skipped != "") {
				t.Errorf("Missing: skipped %q, failed %q; want skip %t", r.skipped, r.failed, c.skip)
			}
			if got := r.skipped + r.failed; !strings.Contains(got, errNoServer.Error()) {
				t.Errorf("Missing said %q, want the server's error in it", got)
			}
			want := 1
			if c.skip {
				want = 0
			}
			var out strings.Builder
			if code := exitCode(&out, env(c.env), errNoServer); code != want || !strings.Contains(out.String(), errNoServer.Error()) {
				t.Errorf("Main = %d, printing %q; want %d and the server's error", code, out.String(), want)
			}
		})
	}
}
