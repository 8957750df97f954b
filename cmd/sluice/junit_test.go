package main

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// junitDoc is the JUnit XML structure as a CI system reads it, decoded
// with the standard XML parser.
type junitDoc struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Suites   []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Errors   int    `xml:"errors,attr"`
		Cases    []struct {
			Name      string `xml:"name,attr"`
			Classname string `xml:"classname,attr"`
			Time      string `xml:"time,attr"`
			Failure   *struct {
				Message string `xml:"message,attr"`
				Type    string `xml:"type,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
			Error *struct {
				Message string `xml:"message,attr"`
				Text    string `xml:",chardata"`
			} `xml:"error"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func readJUnit(t *testing.T, path string) junitDoc {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc junitDoc
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("the JUnit XML does not parse: %v\n%s", err, b)
	}
	return doc
}

// TestJUnitXML: --junit-xml writes one testsuite per file and one
// testcase per test, with counts that add up, a failure whose message
// names the differing row, and an error for a file that cannot load.
func TestJUnitXML(t *testing.T) {
	dir := t.TempDir()
	tests := writeFile(t, dir, "t.hcl", validPipeline+`
test "passes" {
  input "public.users" {
    op    = "insert"
    after = { id = 1 }
  }
  expect "sink.out" {
    op = "insert"
  }
  expect "sink.replica" {
    op = "insert"
  }
}

sink "mysql" "replica" {
  from = source.in
  dsn  = "root@tcp(127.0.0.1:3306)/app"
}

test "fails" {
  input "public.users" {
    op    = "insert"
    after = { id = 1, name = "Ben" }
  }
  expect_table "sink.replica" {
    rows = [{ id = 1, name = "Benjamin" }]
  }
}
`)
	bad := writeFile(t, dir, "bad.hcl", strings.Replace(validPipeline, "source.in", "source.inn", 1))
	out := filepath.Join(dir, "report.xml")
	code, stdout, stderr := runCLI(t, "test", "--junit-xml", out, tests, bad)
	if code != exitFindings {
		t.Fatalf("exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	doc := readJUnit(t, out)
	if len(doc.Suites) != 2 || doc.Tests != 3 || doc.Failures != 1 || doc.Errors != 1 {
		t.Fatalf("testsuites: %d suites, tests %d, failures %d, errors %d; want 2, 3, 1, 1", len(doc.Suites), doc.Tests, doc.Failures, doc.Errors)
	}
	s := doc.Suites[0]
	if s.Name != tests || s.Tests != 2 || s.Failures != 1 || len(s.Cases) != 2 {
		t.Fatalf("suite %s: tests %d failures %d cases %d", s.Name, s.Tests, s.Failures, len(s.Cases))
	}
	if c := s.Cases[0]; c.Name != "passes" || c.Failure != nil || c.Classname != tests || c.Time == "" {
		t.Errorf("case 1: %+v", c)
	}
	f := s.Cases[1].Failure
	if s.Cases[1].Name != "fails" || f == nil {
		t.Fatalf("case 2 has no failure: %+v", s.Cases[1])
	}
	for _, want := range []string{`expect_table "sink.replica"`, `row { id = 1 }: column name: want "Benjamin", got "Ben"`} {
		if !strings.Contains(f.Message, want) || !strings.Contains(f.Text, want) {
			t.Errorf("failure message/text lacks %q:\nmessage: %s\ntext: %s", want, f.Message, f.Text)
		}
	}
	if f.Type != "memory" {
		t.Errorf("failure type %q, want memory", f.Type)
	}
	b := doc.Suites[1]
	if b.Name != bad || b.Errors != 1 || len(b.Cases) != 1 || b.Cases[0].Error == nil || !strings.Contains(b.Cases[0].Error.Text, "unknown reference source.inn") {
		t.Errorf("invalid file's suite: %+v", b)
	}

	// A run that passes overwrites the report.
	if code, _, _ := runCLI(t, "test", "--junit-xml", out, "../../pipelines/quickstart.hcl"); code != exitOK {
		t.Fatalf("quickstart: exit %d", code)
	}
	if doc := readJUnit(t, out); len(doc.Suites) != 1 || doc.Tests != 4 || doc.Failures != 0 {
		t.Errorf("quickstart report: %+v", doc)
	}
}
