package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/observe"
)

// tailBuffer keeps the last part of a child's log output: enough to show
// why a run failed, bounded however long the run is.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const tailMax = 256 << 10

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - tailMax; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is one `sluice run` child process.
type proc struct {
	cmd  *exec.Cmd
	logs *tailBuffer
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, set before done closes
}

// startSluice runs `sluice run FILE --log-format json` in dir with env
// added to the test's environment. The process is SIGKILLed when the test
// ends if it still runs.
func startSluice(t *testing.T, dir, file string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(sluiceBin, "run", file, "--log-format", "json")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	p := &proc{cmd: cmd, logs: &tailBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sluice run %s: %v", file, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	return p
}

// running reports whether the process has not exited yet.
func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// healthy reports whether the process runs and has not logged that the
// pipeline paused (a paused pipeline keeps running but does nothing, so
// waiting for it to make progress is pointless).
func (p *proc) healthy() bool {
	return p.running() && !strings.Contains(p.logs.String(), "PIPELINE PAUSED")
}

// kill sends SIGKILL and waits for the process to die: the crash the
// tests recover from.
func (p *proc) kill() {
	if p.running() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// stop sends SIGTERM (the graceful stop) and returns the exit status, or
// an error if the process has not exited within a minute (then it is
// killed). It waits for the process to log "pipeline starting" first: a
// process signalled before its Go runtime has started dies of the signal
// rather than stopping (a test's last restart can come just as the
// pipeline has nothing left to do).
func (p *proc) stop() error {
	eventually(30*time.Second, 5*time.Millisecond, func() bool {
		return !p.running() || strings.Contains(p.logs.String(), "pipeline starting")
	})
	if p.running() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(time.Minute):
		p.kill()
		return errors.New("did not exit within a minute of SIGTERM")
	}
}

// sluice runs a sluice command to completion in dir with env added and
// returns its standard output, failing the test on a non-zero exit.
func sluice(t *testing.T, dir string, env []string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(sluiceBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sluice %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return out
}

// status runs `sluice status --json FILE` in dir and decodes its output.
func status(t *testing.T, dir, file string, env ...string) observe.Status {
	t.Helper()
	out := sluice(t, dir, env, "status", "--json", file)
	var st observe.Status
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("sluice status --json: %v\n%s", err, out)
	}
	return st
}

// writeFile writes a pipeline (or any) file into dir and returns its path.
func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// replicaPipeline is a pipeline NAME from public.TABLE of SOURCE_DSN
// (source "app", slot e2e_NAME, 1s heartbeats so that checkpoints advance
// on quiet tables) to the table of the same name through sink "replica"
// of type sink at TARGET_DSN, with extra attribute lines for that sink.
func replicaPipeline(dir, name, table, sink string, sinkAttrs ...string) string {
	extra := ""
	for _, a := range sinkAttrs {
		extra += "  " + a + "\n"
	}
	return fmt.Sprintf(`pipeline %q {
  state = %q
}

source "postgres" "app" {
  dsn       = env("SOURCE_DSN")
  tables    = ["public.%s"]
  slot      = "e2e_%s"
  heartbeat = "1s"
}

sink %q "replica" {
  from        = source.app
  dsn         = env("TARGET_DSN")
  table       = %q
  auto_create = true
%s}
`, name, filepath.Join(dir, "state.db"), table, name, sink, table, extra)
}

// newSeed returns a seed for the test's random choices and logs it, so a
// failing run can be told apart and its choices reasoned about.
func newSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return seed
}

// eventually polls cond every interval until it returns true or the
// deadline passes; it returns whether cond held.
func eventually(deadline time.Duration, interval time.Duration, cond func() bool) bool {
	end := time.Now().Add(deadline)
	for {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(interval)
	}
}
