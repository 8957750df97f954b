// Command sluice compiles a pipeline file into a DAG of stages and moves
// every committed change from its sources to its sinks.
//
//	sluice COMMAND [FLAGS] FILE... [FLAGS]
//
// Exit codes: 0 success, 1 findings or failures (invalid pipeline, failed
// tests, lag not reached, differences), 2 usage errors.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Exit codes shared by every command.
const (
	exitOK       = 0
	exitFindings = 1
	exitUsage    = 2
)

// command is one subcommand: it parses its own flags from args and
// returns an exit code.
type command struct {
	summary string
	run     func(c *cli, args []string) int
}

// cli carries the process's streams so commands can be run in tests.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	stop           <-chan struct{} // closed on the first SIGINT/SIGTERM (run only)
}

// commands is built by a function rather than a package variable because
// the usage text the commands print refers back to the table.
func commands() map[string]command {
	return map[string]command{
		"validate": {"check pipeline files: syntax, references, types, expressions", (*cli).validate},
		"fmt":      {"rewrite pipeline files in canonical format (-check: only report)", (*cli).fmt},
		"graph":    {"print the pipeline's DAG (--dot for Graphviz)", (*cli).graph},
		"dry-run":  {"show what each sink would receive for given events; writes nothing", (*cli).dryRun},
		"test":     {"run the pipeline's test blocks, with no database or network", (*cli).test},
		"run":      {"run the pipeline until stopped", (*cli).runPipeline},
		"status":   {"show the phase, last error, positions, lag, snapshot progress and dead letters", (*cli).status},
		"snapshot": {"copy tables again while the pipeline streams (an incremental snapshot; --where for some rows, --sink for one sink)", (*cli).snapshot},
		"resume":   {"resume a paused pipeline (on_error = \"pause\") without a restart", (*cli).resume},
		"dlq":      {"list, replay or purge dead-lettered events (dlq list|replay|purge FILE)", (*cli).dlq},
		"verify":   {"compare source rows (through the transforms) with each sink's target table", (*cli).verify},
		"wait":     {"exit 0 once every sink's lag stays below --max-lag (and each Kafka partition's at most --max-lag-records) for --for (1 on --timeout)", (*cli).wait},
		"drop":     {"remove the pipeline's replication slots, publications and state file (asks first; --yes)", (*cli).drop},
		"plan":     {"print the CREATE/ALTER statements auto_create and schema changes would run on each SQL sink's target, and how existing tables differ; changes nothing", (*cli).plan},
	}
}

func main() {
	c := &cli{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	os.Exit(c.main(os.Args[1:]))
}

func (c *cli) main(args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		c.usage(c.stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(c.stderr, "sluice: unknown command %q\n", args[0])
		c.usage(c.stderr)
		return exitUsage
	}
	return cmd.run(c, args[1:])
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprintln(w, "usage: sluice COMMAND [FLAGS] FILE... [FLAGS]")
	fmt.Fprintln(w, "\ncommands:")
	table := commands()
	names := make([]string, 0, len(table))
	for n := range table {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, table[n].summary)
	}
	fmt.Fprintln(w, "\nrun 'sluice COMMAND -h' for a command's flags")
}

// flags returns a FlagSet for a command that reports errors on stderr.
func (c *cli) flags(name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet("sluice "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "usage: sluice %s %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags that may stand before or after the positional
// arguments (`sluice status users.hcl --json`). It returns the positional
// arguments, or a usage error.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// parseFiles parses flags and requires at least min and at most max file
// arguments (max < 0: no limit). ok is false after a usage error was printed.
func (c *cli) parseFiles(fs *flag.FlagSet, args []string, min, max int) (files []string, code int, ok bool) {
	files, err := parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil, exitOK, false
	}
	if err != nil {
		return nil, exitUsage, false
	}
	if len(files) < min || (max >= 0 && len(files) > max) {
		want := "one pipeline file"
		if max < 0 {
			want = "one or more pipeline files"
		}
		fmt.Fprintf(c.stderr, "%s: want %s, got %d arguments\n", fs.Name(), want, len(files))
		fs.Usage()
		return nil, exitUsage, false
	}
	return files, exitOK, true
}

// varsFlag collects repeated -var NAME=value flags.
type varsFlag map[string]string

func (v varsFlag) String() string { return "" }

func (v varsFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("want -var NAME=value, got %q", s)
	}
	v[name] = value
	return nil
}
