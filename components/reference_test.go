package components_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	_ "github.com/sluice-cdc/sluice/components" // registers every kind
	"github.com/sluice-cdc/sluice/dsl"
)

// TestReferenceMatchesDecoder keeps docs/reference.md and the decoder's
// schema tables, with every registered kind, in step: every block the decoder knows has a section,
// every attribute it accepts has a row with the decoder's type and
// default, and the page lists nothing the decoder does not accept.
func TestReferenceMatchesDecoder(t *testing.T) {
	doc, err := os.ReadFile("../docs/reference.md")
	if err != nil {
		t.Fatal(err)
	}
	heading := regexp.MustCompile("^### `([^`]+)`")
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\| ([^|]+) \\| ((?:[^|\\\\]|\\\\\\|)+) \\|")
	type docAttr struct{ typ, def string }
	sections := map[string]map[string]docAttr{}
	var current map[string]docAttr
	var currentTitle string
	for i, line := range strings.Split(string(doc), "\n") {
		if m := heading.FindStringSubmatch(line); m != nil {
			currentTitle = m[1]
			if sections[currentTitle] != nil {
				t.Errorf("reference.md:%d: section %s appears twice", i+1, currentTitle)
			}
			current = map[string]docAttr{}
			sections[currentTitle] = current
			continue
		}
		if strings.HasPrefix(line, "## ") {
			current = nil
		}
		if m := row.FindStringSubmatch(line); m != nil && current != nil {
			current[m[1]] = docAttr{typ: m[2], def: strings.ReplaceAll(m[3], `\|`, "|")}
		}
	}
	for _, spec := range dsl.Specs() {
		section, ok := sections[spec.Title()]
		if !ok {
			t.Errorf("reference.md has no section ### `%s`", spec.Title())
			continue
		}
		for _, a := range spec.Attrs {
			d, ok := section[a.Name]
			if !ok {
				t.Errorf("reference.md: %s accepts %q but the page does not list it", spec.Title(), a.Name)
				continue
			}
			if d.typ != a.Type.String() {
				t.Errorf("reference.md: %s.%s has type %q, the decoder %q", spec.Title(), a.Name, d.typ, a.Type)
			}
			if d.def != a.DefaultText() {
				t.Errorf("reference.md: %s.%s has default %q, the decoder %q", spec.Title(), a.Name, d.def, a.DefaultText())
			}
			delete(section, a.Name)
		}
		for name := range section {
			t.Errorf("reference.md lists %s.%s, which the decoder does not accept", spec.Title(), name)
		}
		delete(sections, spec.Title())
	}
	for title := range sections {
		t.Errorf("reference.md has a section for %s, which is not a block the decoder knows", title)
	}
}
