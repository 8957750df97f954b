package e2ekafka

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-cdc/sluice/internal/dbskip"
	"github.com/sluice-cdc/sluice/internal/mariadbtest"
	"github.com/sluice-cdc/sluice/internal/pgtest"
)

var (
	// pg is a private PostgreSQL with wal_level=logical, each test in a
	// database of its own.
	pg *pgtest.Cluster

	// The binary under test and MariaDB are set up by the first test that
	// needs them and torn down after the last.
	setupOnce sync.Once
	sluiceBin string
	maria     *mariadbtest.Server
	setupErr  error
	binDir    string
)

func TestMain(m *testing.M) {
	code := pgtest.Run(m, &pg)
	if maria != nil {
		_ = maria.Stop()
	}
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// setup builds sluice and finds (or starts) MariaDB, once. Without a
// MariaDB server the test fails, or skips with SLUICE_SKIP_DB=1 (see
// dbskip).
func setup(t *testing.T) {
	t.Helper()
	setupOnce.Do(func() {
		maria, setupErr = mariadbtest.Start()
		if setupErr != nil {
			return
		}
		if binDir, setupErr = os.MkdirTemp("", "sluice-e2ekafka-"); setupErr != nil {
			return
		}
		sluiceBin = filepath.Join(binDir, "sluice")
		_, here, _, _ := runtime.Caller(0)
		build := exec.Command("go", "build", "-o", sluiceBin, "./cmd/sluice")
		build.Dir = filepath.Join(filepath.Dir(here), "..", "..")
		if out, err := build.CombinedOutput(); err != nil {
			setupErr = fmt.Errorf("building sluice: %v\n%s", err, out)
		}
	})
	switch {
	case errors.Is(setupErr, mariadbtest.ErrNoServer):
		dbskip.Missing(t, setupErr)
	case setupErr != nil:
		t.Fatal(setupErr)
	}
}

// instance is one `sluice run --instance NAME` process, restartable.
type instance struct {
	t       *testing.T
	dir     string // working directory: holds its own state file
	file    string
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
}

// startInstance starts `sluice run FILE --instance NAME` (without
// --instance when name is "") in a directory of its own; its logs go to a
// file in that directory, shown if the test fails. It is killed when the
// test ends.
func startInstance(t *testing.T, file, name string) *instance {
	label := name
	if name == "" {
		label = "(single)"
	}
	return startProcess(t, file, name, label)
}

// startMember starts `sluice run FILE` without --instance, a dynamic
// member of its consumer group, shown as label in the logs.
func startMember(t *testing.T, file, label string) *instance {
	return startProcess(t, file, "", label)
}

func startProcess(t *testing.T, file, name, label string) *instance {
	t.Helper()
	in := &instance{t: t, dir: t.TempDir(), file: file, name: name}
	name = label
	in.logPath = filepath.Join(in.dir, "sluice.log")
	in.start()
	t.Cleanup(func() {
		in.signal(syscall.SIGKILL)
		if t.Failed() {
			if b, err := os.ReadFile(in.logPath); err == nil {
				t.Logf("logs of instance %s (last 8 KiB):\n%s", name, tail(b, 8<<10))
			}
		}
	})
	return in
}

func (in *instance) start() {
	in.t.Helper()
	logs, err := os.OpenFile(in.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		in.t.Fatal(err)
	}
	defer logs.Close()
	args := []string{"run", in.file, "--log-format", "json"}
	if in.name != "" {
		args = append(args, "--instance", in.name)
	}
	in.cmd = exec.Command(sluiceBin, args...)
	in.cmd.Dir = in.dir
	in.cmd.Stdout, in.cmd.Stderr = logs, logs
	if err := in.cmd.Start(); err != nil {
		in.t.Fatalf("start instance %s: %v", in.name, err)
	}
	done := make(chan struct{})
	in.done = done
	go func(cmd *exec.Cmd) { _ = cmd.Wait(); close(done) }(in.cmd)
}

// signal sends sig and waits (up to a minute) for the process to exit.
func (in *instance) signal(sig syscall.Signal) {
	select {
	case <-in.done:
		return
	default:
	}
	_ = in.cmd.Process.Signal(sig)
	select {
	case <-in.done:
	case <-time.After(time.Minute):
		_ = in.cmd.Process.Kill()
		<-in.done
		in.t.Errorf("instance %s did not exit within a minute of %v", in.name, sig)
	}
}

// restart SIGKILLs the process and starts it again with the same
// instance name and state file.
func (in *instance) restart() {
	in.t.Helper()
	in.signal(syscall.SIGKILL)
	in.start()
}

// exited reports whether the process has ended on its own.
func (in *instance) exited() bool {
	select {
	case <-in.done:
		return true
	default:
		return false
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// commitlessCluster starts kfake with topic of the given partitions, and
// the broker refuses every offset commit: a consumer group's offsets stay
// at the start, so only sluice's checkpoints know how far each partition
// got. It returns the brokers' addresses. opts are more kfake options
// (TLS, SASL).
func commitlessCluster(t *testing.T, topic string, partitions int32, opts ...kfake.Opt) []string {
	t.Helper()
	cluster, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	cluster.ControlKey(kmsg.OffsetCommit.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		return refuseCommit(req.(*kmsg.OffsetCommitRequest)), nil, true
	})
	return cluster.ListenAddrs()
}

// refuseCommit answers an offset commit with an error for every
// partition.
func refuseCommit(req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// writePipeline writes a pipeline file into a temporary directory and
// returns its path.
func writePipeline(t *testing.T, text string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "pipeline.hcl")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// readCommitted returns a consumer of topic from its start that sees
// committed transactions only, as downstream services do.
func readCommitted(t *testing.T, brokers []string, topic string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// kafkaAndPostgres gives one test an in-process Kafka cluster (kfake, one
// broker), a PostgreSQL database of the shared cluster, a connection to
// it and a context that ends after timeout; all are released when the
// test ends.
func kafkaAndPostgres(t *testing.T, timeout time.Duration) (brokers []string, dsn string, conn *pgx.Conn, ctx context.Context) {
	t.Helper()
	setup(t)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	dsn, conn, ctx = postgres(t, timeout)
	return cluster.ListenAddrs(), dsn, conn, ctx
}

// postgres creates the test's database and connects to it; ctx ends
// after timeout.
func postgres(t *testing.T, timeout time.Duration) (dsn string, conn *pgx.Conn, ctx context.Context) {
	t.Helper()
	dsn = pg.CreateDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return dsn, conn, ctx
}
