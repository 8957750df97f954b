package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-cdc/sluice/internal/dbskip"
)

// ErrNoBinaries reports that initdb and postgres could not be found.
var ErrNoBinaries = errors.New("PostgreSQL server binaries not found: install PostgreSQL 15 (Debian/Ubuntu: apt-get install postgresql-15) or put pg_config on PATH")

// Options change how Start configures the cluster. The zero value is what
// the source tests need: wal_level=logical.
type Options struct {
	// WALLevel is "logical" when empty; tests of the "wal_level is not
	// logical" error start a cluster with "replica".
	WALLevel string
	// Settings are extra server settings, "name=value" each, passed as
	// -c options after the defaults (so they override them): a test of
	// slot invalidation sets "max_slot_wal_keep_size=16MB".
	Settings []string
	// TLS, when set, turns ssl on with these certificates and has TCP
	// clients (replication too) connect only over TLS with a client
	// certificate the CA signed (pg_hba: hostssl ... clientcert=verify-ca,
	// hostnossl ... reject). DSN then returns a verify-full URL with the
	// client certificate; the package's own connections use the unix
	// socket.
	TLS *TLS
}

// TLS are the PEM files of a cluster's certificates, as testcerts.Set
// writes them. They are copied into the cluster's directory (the server
// may run as another OS user, and wants its key private).
type TLS struct {
	CAFile                string // signs the server's and the client's certificate
	ServerCert, ServerKey string
	ClientCert, ClientKey string // what DSN connects with
}

// Cluster is a running private PostgreSQL server.
type Cluster struct {
	dir    string // temporary directory: data/ and the unix socket
	bindir string
	port   int
	cred   *syscall.Credential // nil when not running as root
	opts   Options

	mu   sync.Mutex
	proc *exec.Cmd
	done chan struct{} // closed when proc exits
}

// Start initialises and starts a cluster with the default Options.
func Start() (*Cluster, error) { return StartWith(Options{}) }

// StartWith initialises and starts a cluster. It takes one to two seconds.
func StartWith(opts Options) (*Cluster, error) {
	if opts.WALLevel == "" {
		opts.WALLevel = "logical"
	}
	bindir, err := findBinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest")
	if err != nil {
		return nil, fmt.Errorf("pgtest: temporary directory: %w", err)
	}
	c := &Cluster{dir: dir, bindir: bindir, opts: opts}
	if os.Geteuid() == 0 {
		if c.cred, err = postgresUser(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		if err := os.Chown(dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: chown %s: %w", dir, err)
		}
	}
	out, err := c.command("initdb", "-D", c.dataDir(), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	if opts.TLS != nil {
		if err := c.setupTLS(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if err := c.start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

// setupTLS copies the server's certificate, key and CA into the
// cluster's directory, owned by the server's OS user, and writes a
// pg_hba.conf that accepts TCP clients only over TLS with a client
// certificate, and anyone on the unix socket.
func (c *Cluster) setupTLS() error {
	tlsDir := filepath.Join(c.dir, "tls")
	if err := os.Mkdir(tlsDir, 0o700); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	files := []string{c.opts.TLS.ServerCert, c.opts.TLS.ServerKey, c.opts.TLS.CAFile}
	for i, name := range []string{"server.crt", "server.key", "ca.crt"} {
		data, err := os.ReadFile(files[i])
		if err != nil {
			return fmt.Errorf("pgtest: tls: %w", err)
		}
		dst := filepath.Join(tlsDir, name)
		if err := os.WriteFile(dst, data, 0o600); err != nil {
			return fmt.Errorf("pgtest: tls: %w", err)
		}
		files[i] = dst
	}
	if c.cred != nil {
		for _, p := range append(files, tlsDir) {
			if err := os.Chown(p, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
				return fmt.Errorf("pgtest: tls: %w", err)
			}
		}
	}
	c.opts.Settings = append([]string{"ssl=on", "ssl_cert_file=" + files[0], "ssl_key_file=" + files[1], "ssl_ca_file=" + files[2]}, c.opts.Settings...)
	hba := `# pgtest: TCP only over TLS with a client certificate of the test CA
local     all         all                trust
local     replication all                trust
hostssl   all         all  127.0.0.1/32  trust  clientcert=verify-ca
hostssl   replication all  127.0.0.1/32  trust  clientcert=verify-ca
hostnossl all         all  127.0.0.1/32  reject
hostnossl replication all  127.0.0.1/32  reject
`
	if err := os.WriteFile(filepath.Join(c.dataDir(), "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return fmt.Errorf("pgtest: pg_hba.conf: %w", err)
	}
	return nil
}

// Run is the body of a TestMain: it starts a cluster into *c, runs the
// tests, stops the cluster and returns the exit code for os.Exit. Without
// PostgreSQL binaries it fails the package, or skips it with
// SLUICE_SKIP_DB=1 (never under CI=true; see dbskip).
func Run(m *testing.M, c **Cluster) int {
	cl, err := Start()
	if errors.Is(err, ErrNoBinaries) {
		return dbskip.Main(err)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: cannot start PostgreSQL: %v\n", err)
		return 1
	}
	*c = cl
	code := m.Run()
	if err := cl.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
	}
	return code
}

func findBinDir() (string, error) {
	if dir := os.Getenv("PGTEST_BINDIR"); dir != "" {
		return dir, nil
	}
	// Debian's layout: /usr/lib/postgresql/VERSION/bin; 15 first (the
	// version the tests were written against), else the newest installed
	// (logical replication with publication column lists needs 15+).
	candidates := []string{"/usr/lib/postgresql/15/bin"}
	if found, _ := filepath.Glob("/usr/lib/postgresql/*/bin"); len(found) > 0 {
		sort.Slice(found, func(i, j int) bool { return pgVersion(found[i]) > pgVersion(found[j]) })
		candidates = append(candidates, found...)
	}
	for _, dir := range candidates {
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", ErrNoBinaries
}

// pgVersion is the major version in a /usr/lib/postgresql/VERSION/bin path.
func pgVersion(bindir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(bindir)))
	return v
}

func postgresUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root, and PostgreSQL refuses root, but there is no \"postgres\" OS user to run it as (%v): create one with useradd postgres", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }

// command prepares a PostgreSQL binary to run as the cluster's OS user.
func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.bindir, name), args...)
	cmd.Dir = c.dir
	// The server dies with the test binary, even on kill -9, rather than
	// keep a port and a temporary directory forever.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	return cmd
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs postgres in the foreground of a child process and waits
// until it accepts connections. The port is chosen on the first start and
// kept across restarts, so DSNs stay valid.
func (c *Cluster) start() error {
	if c.port == 0 {
		p, err := freePort()
		if err != nil {
			return err
		}
		c.port = p
	}
	cmd := c.command("postgres", "-D", c.dataDir(),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port="+strconv.Itoa(c.port),
		"-c", "unix_socket_directories="+c.dir,
		"-c", "wal_level="+c.opts.WALLevel,
		"-c", "max_replication_slots=32",
		"-c", "max_wal_senders=32",
		"-c", "max_connections=200",
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
		"-c", "shared_buffers=128MB",
		"-c", "max_wal_size=2GB",
		"-c", "logging_collector=off",
	)
	for _, kv := range c.opts.Settings {
		cmd.Args = append(cmd.Args, "-c", kv)
	}
	var log bytes.Buffer
	cmd.Stdout = &log
	cmd.Stderr = &log
	cmd.WaitDelay = 5 * time.Second // backends outliving a killed postmaster keep the pipe open
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	c.mu.Lock()
	c.proc, c.done = cmd, done
	c.mu.Unlock()

	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, c.adminDSN("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("pgtest: postgres exited during startup:\n%s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			c.kill()
			return fmt.Errorf("pgtest: postgres did not accept connections within 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stopServer asks the server for a fast shutdown (SIGINT: clients are
// disconnected, the data is consistent) and waits for it to exit.
func (c *Cluster) stopServer() {
	c.mu.Lock()
	proc, done := c.proc, c.done
	c.proc = nil
	c.mu.Unlock()
	if proc == nil {
		return
	}
	proc.Process.Signal(syscall.SIGINT)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		killGroup(proc)
		<-done
	}
	groupGone(proc)
}

func (c *Cluster) kill() {
	c.mu.Lock()
	proc, done := c.proc, c.done
	c.proc = nil
	c.mu.Unlock()
	if proc != nil {
		killGroup(proc)
		<-done
		groupGone(proc)
	}
}

// groupGone waits, up to 10 s, until no process of the server's group is
// left: a backend that outlives its postmaster keeps the shared memory
// segment attached, and a new postmaster on the same data directory then
// refuses to start ("pre-existing shared memory block is still in use").
func groupGone(cmd *exec.Cmd) {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err := syscall.Kill(-cmd.Process.Pid, 0); err != nil {
			return // ESRCH: the group is empty
		}
	}
}

// killGroup kills the postmaster and every backend (they share its
// process group), which would otherwise keep the log pipe open.
func killGroup(cmd *exec.Cmd) { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }

// Restart stops the server (fast shutdown, every client disconnected) and
// starts it again on the same port: what tests of reconnection need.
func (c *Cluster) Restart() error {
	c.stopServer()
	return c.start()
}

// Stop shuts the server down and removes its directory.
func (c *Cluster) Stop() error {
	c.stopServer()
	if err := os.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("pgtest: remove %s: %w", c.dir, err)
	}
	return nil
}

// Port returns the server's TCP port on 127.0.0.1.
func (c *Cluster) Port() int { return c.port }

// DSN returns a URL connecting to database db as the superuser postgres:
// over TCP without TLS, or, on a cluster with Options.TLS, with
// sslmode=verify-full against the CA and the client certificate.
func (c *Cluster) DSN(db string) string {
	if t := c.opts.TLS; t != nil {
		q := url.Values{"sslmode": {"verify-full"}, "sslrootcert": {t.CAFile}, "sslcert": {t.ClientCert}, "sslkey": {t.ClientKey}}
		return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?%s", c.port, db, q.Encode())
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// adminDSN is how the package itself connects: DSN, or on a TLS cluster
// the unix socket (no certificates to manage, and a test's broken TLS
// settings cannot stop the cleanup).
func (c *Cluster) adminDSN(db string) string {
	if c.opts.TLS == nil {
		return c.DSN(db)
	}
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", c.dir, c.port, db)
}

var dbSeq atomic.Int64

// CreateDB creates a database of its own for one test and returns its
// DSN. When the test ends, the database is dropped together with its
// replication slots (whose walsenders are terminated first).
func (c *Cluster) CreateDB(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%d_%s", os.Getpid(), dbSeq.Add(1), sanitize(t.Name()))
	if len(name) > 60 {
		name = name[:60]
	}
	if err := c.Exec(context.Background(), "postgres", "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		if err := c.DropDB(name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return c.DSN(name)
}

// DropDB drops a database and every replication slot in it.
func (c *Cluster) DropDB(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.adminDSN("postgres"))
	if err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	defer conn.Close(ctx)
	// A walsender may still hold a slot for a moment after its client
	// closed; terminate it and retry until the slot can go.
	for i := 0; ; i++ {
		_, err = conn.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`, name)
		if err == nil {
			_, err = conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, name)
		}
		if err == nil || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("drop slots of %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// Exec runs one or more SQL statements in database db.
func (c *Cluster) Exec(ctx context.Context, db, sql string) error {
	conn, err := pgx.Connect(ctx, c.adminDSN(db))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
