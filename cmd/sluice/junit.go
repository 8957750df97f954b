package main

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/pipelinetest"
)

// The JUnit XML that `sluice test --junit-xml` writes, in the shape CI
// systems read (Jenkins, GitLab, GitHub test reporters, CircleCI): one
// <testsuite> per pipeline file, one <testcase> per test block; a failed
// test has a <failure> whose message is its first problem (the rows or
// events that differ) and whose text is the whole report; a file that
// could not be loaded is a suite with one <testcase name="load"> and an
// <error> holding the diagnostics.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	File      string        `xml:"file,attr,omitempty"`
	Line      string        `xml:"line,attr,omitempty"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// writeJUnitFile writes reports as JUnit XML to path, replacing it.
func writeJUnitFile(path string, reports []fileResults) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".junit-*.xml")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := writeJUnit(tmp, reports, time.Now()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// writeJUnit writes the JUnit XML document of reports; now stamps the
// suites.
func writeJUnit(w io.Writer, reports []fileResults, now time.Time) error {
	doc := junitSuites{Name: "sluice test"}
	var total time.Duration
	for _, rep := range reports {
		s := junitSuite{Name: rep.path, Timestamp: now.UTC().Format("2006-01-02T15:04:05")}
		if rep.pipeline != "" {
			s.Properties = append(s.Properties, junitProperty{"pipeline", rep.pipeline})
		}
		if rep.plan != "" {
			s.Properties = append(s.Properties, junitProperty{"live", rep.plan})
		}
		var elapsed time.Duration
		if rep.loadError != "" {
			s.Cases = append(s.Cases, junitCase{Name: "load", Classname: rep.path, File: rep.path, Time: seconds(0),
				Error: &junitProblem{Message: "the pipeline file could not be loaded", Type: "load", Text: rep.loadError}})
			s.Errors++
		}
		for _, r := range rep.results {
			file, line := r.Pos, ""
			if i := strings.LastIndexByte(r.Pos, ':'); i >= 0 {
				file, line = r.Pos[:i], r.Pos[i+1:]
			}
			tc := junitCase{Name: r.Name, Classname: rep.path, File: file, Line: line, Time: seconds(r.Elapsed())}
			if !r.Passed {
				tc.Failure = &junitProblem{Message: failureMessage(r), Type: failureType(r), Text: r.Failure}
				s.Failures++
			}
			var out []string
			for _, o := range r.Runs {
				for _, n := range o.Notes {
					out = append(out, o.Runner+": "+n)
				}
			}
			tc.SystemOut = strings.Join(out, "\n")
			elapsed += r.Elapsed()
			s.Cases = append(s.Cases, tc)
		}
		s.Tests = len(s.Cases)
		s.Time = seconds(elapsed)
		total += elapsed
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Errors += s.Errors
		doc.Suites = append(doc.Suites, s)
	}
	doc.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// failureMessage is a failure's first problem: the first paragraph of the
// first failed run's failure (its differing rows or events included),
// after what the runs found when there were several.
func failureMessage(r pipelinetest.Result) string {
	for _, o := range r.Runs {
		if o.Passed {
			continue
		}
		lines := strings.Split(o.Failure, "\n")
		end := 1
		for end < len(lines) && strings.HasPrefix(lines[end], " ") {
			end++
		}
		msg := strings.Join(lines[:end], "\n")
		if len(r.Runs) > 1 {
			msg = strings.SplitN(r.Failure, "\n", 2)[0] + " " + msg
		}
		return msg
	}
	return strings.SplitN(r.Failure, "\n", 2)[0]
}

// failureType says which runs failed: "memory", "live" or "memory, live".
func failureType(r pipelinetest.Result) string {
	var failed []string
	for _, o := range r.Runs {
		if !o.Passed {
			failed = append(failed, o.Runner)
		}
	}
	return strings.Join(failed, ", ")
}
