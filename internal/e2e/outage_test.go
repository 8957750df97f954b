package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/sluice-cdc/sluice/internal/mariadbtest"
)

// outageFor is how long the target is down.
const outageFor = 10 * time.Second

// TestTargetOutage stops a private mariadbd for ten seconds while a
// pipeline writes into it and starts it again on the same data directory
// and port. The pipeline, never restarted by the test, must recover by
// itself and the target end equal to the source.
func TestTargetOutage(t *testing.T) {
	ctx := context.Background()
	srv, err := mariadbtest.StartPrivate()
	if err != nil {
		t.Fatalf("private mariadbd: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stop private mariadbd: %v", err)
		}
	})
	// The restarted mariadbd is the test's own child: it stops after the
	// test's database is dropped and before the harness removes its files.
	var stopRestarted func()
	t.Cleanup(func() {
		if stopRestarted != nil {
			stopRestarted()
		}
	})
	tgtDSN := srv.CreateDB(t)
	tgt := openMaria(t, tgtDSN)

	srcDSN := pg.CreateDB(t)
	src := openPG(t, srcDSN)
	mustExec(t, src, itemsDDL)
	dir := t.TempDir()
	file := writeFile(t, dir, "outage.hcl", replicaPipeline(dir, "outage", "items", "mysql"))
	p := startSluice(t, dir, file, "SOURCE_DSN="+srcDSN, "TARGET_DSN="+tgtDSN)

	w := newWorkload(src, newSeed(t))
	writerDone := make(chan error, 1)
	go func() { writerDone <- w.run(ctx, 15_000, 5_000, 20*time.Second, make(chan struct{})) }()

	time.Sleep(4 * time.Second)
	if !p.running() {
		t.Fatalf("sluice run exited before the outage: %v\n%s", p.err, p.logs.String())
	}
	restart := stopMariadbd(t, tgtDSN)
	t.Logf("mariadbd stopped with %d source changes made", w.changesNow())
	time.Sleep(outageFor)
	stopRestarted = restart()
	back := time.Now()
	t.Logf("mariadbd started again on the same port and data directory with %d source changes made", w.changesNow())

	if err := <-writerDone; err != nil {
		t.Fatalf("writer: %v", err)
	}
	if !eventually(120*time.Second, 250*time.Millisecond, func() bool {
		pos, ok, err := checkpoint(tgt, "outage", "replica", "app")
		return err == nil && ok && pos.Offset >= w.lastLSN || !p.healthy()
	}) || !p.healthy() {
		t.Fatalf("the pipeline did not catch up within 120s of the writer's end (healthy: %t)\n%s", p.healthy(), p.logs.String())
	}
	t.Logf("writer made %d changes; caught up %.1fs after mariadbd came back", w.changes(), time.Since(back).Seconds())
	if equal, sum, diff, err := tablesEqual(ctx, src, target{sink: "mysql", db: tgt}, "items", itemsColumns); err != nil || !equal {
		t.Fatalf("target items differ from the source: %v %s", err, diff)
	} else {
		t.Log(sum)
	}
	// The outage was felt (and survived) by the running process.
	if !strings.Contains(p.logs.String(), "transient error; reopening from checkpoints") {
		t.Errorf("the pipeline logged no retry during the outage: did the test really stop its target?\n%s", p.logs.String())
	}
	if err := p.stop(); err != nil {
		t.Errorf("sluice run after SIGTERM: %v (want exit 0)\n%s", err, p.logs.String())
	}
}

// stopMariadbd stops the mariadbd serving dsn and returns a function that
// starts it again with the same command line (data directory, port,
// socket). mariadbtest.Server has no Restart, so the process is found by
// its --port argument in /proc; the restarted process is the test's own
// child: restart returns the function that stops it.
func stopMariadbd(t *testing.T, dsn string) (restart func() (stop func())) {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(cfg.Addr, ":")
	pid, args := findProcess(t, "--port="+port)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("stop mariadbd %d: %v", pid, err)
	}
	if !eventually(60*time.Second, 50*time.Millisecond, func() bool { return exited(pid) }) {
		t.Fatalf("mariadbd %d did not stop within 60s", pid)
	}
	return func() func() {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("restart mariadbd: %v", err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		stop := func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if !eventually(60*time.Second, 100*time.Millisecond, func() bool { return db.Ping() == nil }) {
			stop()
			t.Fatalf("the restarted mariadbd does not answer within 60s")
		}
		return stop
	}
}

// findProcess returns the pid and command line of the mariadbd (or
// mysqld) process whose arguments include arg.
func findProcess(t *testing.T, arg string) (int, []string) {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
		base := filepath.Base(args[0])
		if base != "mariadbd" && base != "mysqld" {
			continue
		}
		for _, a := range args[1:] {
			if a == arg {
				return pid, args
			}
		}
	}
	t.Fatalf("no mariadbd process with %s", arg)
	return 0, nil
}

// exited reports whether pid is gone or a zombie (dead, not yet reaped by
// its parent, the harness).
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	_, rest, _ := bytes.Cut(b, []byte(") "))
	return len(rest) > 0 && (rest[0] == 'Z' || rest[0] == 'X')
}
