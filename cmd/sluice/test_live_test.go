package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/sluice-cdc/sluice/internal/mariadbtest"
	"github.com/sluice-cdc/sluice/pipelinetest/live"
)

// liveEnv is a PostgreSQL database with wal_level=logical (a private
// cluster) and a MariaDB database, named to the pipelines by SOURCE_DSN
// and TARGET_DSN, as a CI job's services would be.
type liveEnv struct {
	source, target string
	srv            *mariadbtest.Server
}

func startLiveEnv(t *testing.T) liveEnv {
	t.Helper()
	srv := startMariaDB(t)
	cl := startCluster(t)
	return liveEnv{source: cl.CreateDB(t), target: srv.CreateDB(t), srv: srv}
}

// setenv names the databases to the pipelines of this process.
func (e liveEnv) setenv(t *testing.T) {
	t.Setenv("SOURCE_DSN", e.source)
	t.Setenv("TARGET_DSN", e.target)
}

// environ is the environment of a sluice process run against the
// databases.
func (e liveEnv) environ() []string {
	return append(os.Environ(), "SOURCE_DSN="+e.source, "TARGET_DSN="+e.target)
}

// scratch lists the scratch objects left in the source database and on
// the MariaDB server.
func (e liveEnv) scratch(t *testing.T) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, e.source)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `
		SELECT 'slot ' || slot_name FROM pg_replication_slots WHERE slot_name LIKE 'sluice\_scratch\_%'
		UNION ALL SELECT 'publication ' || pubname FROM pg_publication WHERE pubname LIKE 'sluice\_scratch\_%'
		UNION ALL SELECT 'schema ' || nspname FROM pg_namespace WHERE nspname LIKE 'sluice\_scratch\_%'`)
	if err != nil {
		t.Fatal(err)
	}
	left, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	db := e.mysql(t)
	defer db.Close()
	dbs, err := db.QueryContext(ctx, `SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'sluice\_scratch\_%'`)
	if err != nil {
		t.Fatal(err)
	}
	defer dbs.Close()
	for dbs.Next() {
		var n string
		if err := dbs.Scan(&n); err != nil {
			t.Fatal(err)
		}
		left = append(left, "database "+n)
	}
	return left
}

func (e liveEnv) mysql(t *testing.T) *sql.DB {
	t.Helper()
	cfg, err := gomysql.ParseDSN(e.target)
	if err != nil {
		t.Fatal(err)
	}
	c, err := gomysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sql.OpenDB(c)
}

// TestLiveFindsWhatTheModelCannot: testdata/live_collation.hcl passes in
// memory, but its real target (a MariaDB table keyed by a
// case-insensitive collation, as a misconfigured target would be) folds
// 'ABC' into 'abc': --live fails, names the differing rows, shows both
// runs side by side, and says so in the JUnit report; nothing scratch is
// left.
func TestLiveFindsWhatTheModelCannot(t *testing.T) {
	env := startLiveEnv(t)
	env.setenv(t)
	db := env.mysql(t)
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE codes (code VARCHAR(20) COLLATE utf8mb4_general_ci PRIMARY KEY, label VARCHAR(20))"); err != nil {
		t.Fatal(err)
	}
	const file = "testdata/live_collation.hcl"
	if code, stdout, stderr := runCLI(t, "test", file); code != exitOK {
		t.Fatalf("in memory: exit %d, want 0 (the model keeps two rows)\n%s%s", code, stdout, stderr)
	}
	report := filepath.Join(t.TempDir(), "live.xml")
	code, stdout, stderr := runCLI(t, "test", "--live", "--junit-xml", report, file)
	if code != exitFindings {
		t.Fatalf("--live: exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"live: source.app (postgres: ", "sink.replica (mysql: ",
		"FAIL codes that differ only in case stay two rows (testdata/live_collation.hcl:21)",
		"passes in memory, fails live:",
		`missing row { code = "ABC" }`,
		`row { code = "abc" }: column label: want "lower", got "upper"`,
		`memory and live side by side:`,
		`the first that differs is row { code = "ABC" }`,
		`≠ { code = "ABC", label = "upper" } | (no row)`,
		"target table codes created with the DDL of",
		"0 passed, 1 failed",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	doc := readJUnit(t, report)
	if doc.Tests != 1 || doc.Failures != 1 || doc.Suites[0].Cases[0].Failure == nil {
		t.Fatalf("JUnit: %+v", doc)
	}
	if f := doc.Suites[0].Cases[0].Failure; f.Type != "live" || !strings.Contains(f.Message, `missing row { code = "ABC" }`) {
		t.Errorf("JUnit failure type %q, message %q", f.Type, f.Message)
	}

	// The same for PostgreSQL: the source table has a column with a
	// default the inputs never mention (and an identity key); the target
	// table is copied too (its NUMERIC(6,1) the sink widens to the
	// source's NUMERIC(8,2), as it would).
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, env.source)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE prices (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, price numeric(8,2) NOT NULL, note text NOT NULL DEFAULT 'none');
		CREATE TABLE prices_copy (id bigint PRIMARY KEY, price numeric(6,1))`); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI(t, "test", "--live", "testdata/live_postgres.hcl")
	if code != exitFindings {
		t.Fatalf("live_postgres.hcl --live: exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"sink.copy (postgres: writes into a scratch schema of its database)",
		"passes in memory, fails live:",
		"table prices_copy (postgres, scratch schema sluice_scratch_",
		"row { id = 1 }: column note: not expected, got \"none\"",
		"the first that differs is row { id = 1 }",
		"public.prices copied from the real table into scratch schema",
		"target table prices_copy created LIKE public.prices_copy INCLUDING ALL",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("live_postgres.hcl: output lacks %q:\n%s", want, stdout)
		}
	}
	if left := env.scratch(t); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestLiveKillLeavesNothingAfterTheNextRun: a `sluice test --live`
// killed with -9 in the middle of a test leaves its scratch slot,
// publication, schema and database; the next run names and removes them,
// and passes.
func TestLiveKillLeavesNothingAfterTheNextRun(t *testing.T) {
	env := startLiveEnv(t)
	files := []string{"../../pipelines/pasta_soft_delete.hcl", "../../pipelines/users_to_mysql.hcl"}
	cmd := exec.Command(sluiceBin, append([]string{"test", "--live"}, files...)...)
	cmd.Env = env.environ()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once a test has both a slot and a scratch database.
	deadline := time.Now().Add(time.Minute)
	for {
		left := env.scratch(t)
		if strings.Contains(strings.Join(left, " "), "slot ") && strings.Contains(strings.Join(left, " "), "database ") {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("no test had a slot and a scratch database within a minute:\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	left := env.scratch(t)
	joined := strings.Join(left, "\n")
	for _, kind := range []string{"slot ", "publication ", "schema ", "database "} {
		if !strings.Contains(joined, kind) {
			t.Fatalf("after kill -9, no %sleft (%v): the kill was not in the middle of a test\n%s", kind, left, out.String())
		}
	}
	run := regexp.MustCompile(live.Prefix + `([0-9]+_[0-9a-f]{4})_`).FindStringSubmatch(joined)[1]
	waitSessionGone(t, env, run)

	env.setenv(t)
	code, stdout, stderr := runCLI(t, append([]string{"test", "--live"}, files...)...)
	if code != exitOK || !strings.Contains(stdout, " passed, 0 failed") {
		t.Fatalf("the run after the kill: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, l := range left {
		name := l[strings.IndexByte(l, ' ')+1:]
		if !strings.Contains(stdout, name) {
			t.Errorf("the next run does not say it removed %s:\n%s", l, stdout)
		}
	}
	if !strings.Contains(stdout, "sluice test --live: removed what an interrupted `sluice test --live` left") {
		t.Errorf("the next run does not say it removed leftovers:\n%s", stdout)
	}
	if left := env.scratch(t); len(left) > 0 {
		t.Errorf("left behind after the next run: %v", left)
	}
}

// waitSessionGone waits until the servers have noticed that the killed
// session's connections closed: its locks are free.
func waitSessionGone(t *testing.T, env liveEnv, run string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, env.source)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	db := env.mysql(t)
	defer db.Close()
	for {
		var pg, my int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sluice test --live'").Scan(&pg); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, "SELECT IS_FREE_LOCK(?)", live.Prefix+run).Scan(&my); err != nil {
			t.Fatal(err)
		}
		if pg == 0 && my == 1 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the killed session's connections are still open (postgres %d, mysql lock free %d)", pg, my)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ciCommands returns the lines of docs/ci.md's marked command block, and
// the commands of its GitHub Actions job (its `- run:` lines).
func ciCommands(t *testing.T) (commands, workflow []string) {
	t.Helper()
	doc, err := os.ReadFile("../../docs/ci.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	_, after, ok := strings.Cut(text, "<!-- ci-commands")
	if !ok {
		t.Fatal("docs/ci.md has no <!-- ci-commands --> block")
	}
	_, block, _ := strings.Cut(after, "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	for _, l := range strings.Split(block, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			commands = append(commands, l)
		}
	}
	_, gh, ok := strings.Cut(text, "## GitHub Actions")
	if !ok {
		t.Fatal("docs/ci.md has no GitHub Actions section")
	}
	_, yaml, _ := strings.Cut(gh, "```yaml\n")
	yaml, _, _ = strings.Cut(yaml, "```")
	for _, l := range strings.Split(yaml, "\n") {
		if cmd, ok := strings.CutPrefix(strings.TrimSpace(l), "- run: "); ok {
			workflow = append(workflow, cmd)
		}
	}
	return commands, workflow
}

// TestCIDocCommands runs docs/ci.md's commands as a script against a
// PostgreSQL (wal_level=logical) and a MariaDB, from a copy of the
// repository's pipelines: validate, fmt -check, test and test --live pass
// every shipped test, the JUnit reports parse, and no slot, publication,
// scratch schema or scratch database is left. The page's GitHub Actions
// job must run the same commands, so the page cannot rot.
func TestCIDocCommands(t *testing.T) {
	commands, workflow := ciCommands(t)
	if len(commands) < 4 || !strings.Contains(strings.Join(commands, "\n"), "sluice test --live") {
		t.Fatalf("docs/ci.md's command block: %q", commands)
	}
	i := 0
	for _, w := range workflow {
		if i < len(commands) && w == commands[i] {
			i++
		}
	}
	if i != len(commands) {
		t.Fatalf("docs/ci.md's GitHub Actions job does not run the command block's lines in order (missing %q); it runs %q", commands[i], workflow)
	}

	env := startLiveEnv(t)
	work := t.TempDir()
	if err := os.CopyFS(filepath.Join(work, "pipelines"), os.DirFS("../../pipelines")); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(work, "pipelines", "*.hcl"))
	script := "set -e\n" + strings.Join(commands, "\n") + "\n"
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = work
	cmd.Env = append(env.environ(), "PATH="+filepath.Dir(sluiceBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docs/ci.md's commands: %v\n%s", err, out)
	}
	output := string(out)
	if strings.Count(output, " passed, 0 failed") != 2 || !strings.Contains(output, "(memory, live)") {
		t.Errorf("want two closing lines with 0 failed and live passes:\n%s", output)
	}
	annotation := regexp.MustCompile(`^::(error|warning) file=[^,]+,line=\d+,col=\d+::`)
	for _, l := range strings.Split(output, "\n") {
		if strings.HasPrefix(l, "::") && !annotation.MatchString(l) {
			t.Errorf("not an annotation with file, line and col: %q", l)
		}
	}
	memory, liveDoc := readJUnit(t, filepath.Join(work, "sluice-test.xml")), readJUnit(t, filepath.Join(work, "sluice-test-live.xml"))
	if memory.Tests < 15 || liveDoc.Tests != memory.Tests || liveDoc.Failures != 0 || liveDoc.Errors != 0 || len(liveDoc.Suites) != len(files) {
		t.Errorf("JUnit: in memory %d tests; live %d tests, %d failures, %d errors, %d suites (want %d, 0, 0, %d)",
			memory.Tests, liveDoc.Tests, liveDoc.Failures, liveDoc.Errors, len(liveDoc.Suites), memory.Tests, len(files))
	}
	if left := env.scratch(t); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	t.Log(output)
}
