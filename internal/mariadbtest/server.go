package mariadbtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sluice-cdc/sluice/internal/dbskip"
)

// ErrNoServer reports that no server answered and none could be started
// because the MariaDB binaries are missing.
var ErrNoServer = errors.New("no MariaDB at 127.0.0.1:3306 and no mariadbd/mariadb-install-db to start one (apt-get install mariadb-server)")

// Server is a reachable MariaDB server, shared or private.
type Server struct {
	cfg  *mysql.Config // root, no database
	dir  string        // private server's directory; "" for a shared server
	args []string      // how to run the private mariadbd; nil for a shared server
	cmd  *exec.Cmd     // the running private mariadbd; nil while Down
}

// Start returns the shared server if one answers, else a private one.
func Start() (*Server, error) {
	dsn := os.Getenv("MARIADBTEST_DSN")
	if dsn == "" {
		dsn = "root@tcp(127.0.0.1:3306)/"
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("MARIADBTEST_DSN: %w", err)
	}
	s := &Server{cfg: cfg}
	if s.ping(3*time.Second) == nil {
		return s, nil
	}
	return StartPrivate()
}

// Options change how StartPrivateWith configures a private server. The
// zero value is StartPrivate's server.
type Options struct {
	// TLS, when set, has the server offer TLS with this certificate
	// (--ssl-cert, --ssl-key) and verify client certificates against
	// CAFile (--ssl-ca). Plaintext connections are still accepted (root's,
	// from this package); a test that must see TLS creates a user with
	// REQUIRE SSL or REQUIRE X509.
	TLS *TLS
}

// TLS is a private server's certificate: PEM files, as testcerts.Set
// writes them.
type TLS struct {
	CertFile, KeyFile string // the server's certificate and key
	CAFile            string // the CA that signs client certificates
}

// StartPrivate initialises and starts a private mariadbd. It takes a few
// seconds.
func StartPrivate() (*Server, error) { return StartPrivateWith(Options{}) }

// StartPrivateWith initialises and starts a private mariadbd configured
// by opts.
func StartPrivateWith(opts Options) (*Server, error) {
	install, err1 := findBinary("mariadb-install-db", "mysql_install_db")
	daemon, err2 := findBinary("mariadbd", "mysqld")
	if err1 != nil || err2 != nil {
		return nil, ErrNoServer
	}
	dir, err := os.MkdirTemp("", "mariadbtest-")
	if err != nil {
		return nil, err
	}
	data, tmp := filepath.Join(dir, "data"), filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	user := currentUser()
	// A temporary directory of its own: bootstraps running at once (test
	// packages run in parallel) must not meet in /tmp.
	out, err := exec.Command(install, "--no-defaults", "--datadir="+data, "--user="+user, "--tmpdir="+tmp,
		"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mariadb-install-db: %v\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = "root", "tcp", fmt.Sprintf("127.0.0.1:%d", port)
	s := &Server{cfg: cfg, dir: dir, args: []string{daemon, "--no-defaults", "--datadir=" + data, "--user=" + user,
		"--socket=" + filepath.Join(dir, "mysqld.sock"), fmt.Sprintf("--port=%d", port), "--bind-address=127.0.0.1",
		"--pid-file=" + filepath.Join(dir, "mysqld.pid"), "--skip-log-bin", "--skip-name-resolve",
		"--innodb-buffer-pool-size=128M", "--innodb-flush-log-at-trx-commit=2", "--tmpdir=" + tmp,
		"--log-error=" + filepath.Join(dir, "error.log")}}
	if t := opts.TLS; t != nil {
		s.args = append(s.args, "--ssl-cert="+t.CertFile, "--ssl-key="+t.KeyFile)
		if t.CAFile != "" {
			s.args = append(s.args, "--ssl-ca="+t.CAFile)
		}
	}
	if err := s.Up(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// Up starts a private server that Down stopped (StartPrivate calls it
// first), on the same port with the same data, and waits until it
// accepts connections.
func (s *Server) Up() error {
	if s.args == nil {
		return errors.New("mariadbtest: Up on a shared server")
	}
	if s.cmd != nil {
		return nil
	}
	cmd := exec.Command(s.args[0], s.args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("mariadbd: %w", err)
	}
	s.cmd = cmd
	if err := s.ping(60 * time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "error.log"))
		s.Down()
		return fmt.Errorf("mariadbd did not start: %v\n%s", err, log)
	}
	return nil
}

// Down stops a private server, keeping its data and port, so that a test
// can see what a target outage does; Up starts it again.
func (s *Server) Down() error {
	if s.args == nil {
		return errors.New("mariadbtest: Down on a shared server")
	}
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
	return nil
}

// Private reports whether the server was started by this package.
func (s *Server) Private() bool { return s.args != nil }

// Stop stops a private server and removes its files; a shared server is
// left alone.
func (s *Server) Stop() error {
	if s.args == nil {
		return nil
	}
	_ = s.Down()
	s.args = nil
	return os.RemoveAll(s.dir)
}

// DSN returns a go-sql-driver DSN for database db as root.
func (s *Server) DSN(db string) string {
	c := s.cfg.Clone()
	c.DBName = db
	return c.FormatDSN()
}

// Exec runs one statement without a database selected.
func (s *Server) Exec(ctx context.Context, stmt string) error {
	db, err := sql.Open("mysql", s.DSN(""))
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, stmt)
	return err
}

var dbSeq atomic.Int64

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// CreateDB creates a database of its own for one test and returns its
// DSN; the database is dropped when the test ends.
func (s *Server) CreateDB(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%d_%s", os.Getpid(), dbSeq.Add(1), unsafeChars.ReplaceAllString(strings.ToLower(t.Name()), "_"))
	if len(name) > 64 {
		name = name[:64]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Exec(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4"); err != nil {
		t.Fatalf("mariadbtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Exec(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("mariadbtest: drop database %s: %v", name, err)
		}
	})
	return s.DSN(name)
}

// Run is the body of a TestMain: it finds or starts a server into *s,
// runs the tests, stops a private server and returns the exit code.
// Without a server it fails the package, or skips it with
// SLUICE_SKIP_DB=1 (never under CI=true; see dbskip).
func Run(m *testing.M, s **Server) int {
	srv, err := Start()
	if errors.Is(err, ErrNoServer) {
		return dbskip.Main(err)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "mariadbtest: %v\n", err)
		return 1
	}
	*s = srv
	code := m.Run()
	if err := srv.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "mariadbtest: %v\n", err)
	}
	return code
}

func (s *Server) ping(wait time.Duration) error {
	c := s.cfg.Clone()
	c.Timeout = 2 * time.Second
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	deadline := time.Now().Add(wait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func findBinary(names ...string) (string, error) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
		for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/mysql/bin"} {
			p := filepath.Join(dir, n)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	return "", exec.ErrNotFound
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if os.Getuid() == 0 {
		return "root"
	}
	return fmt.Sprint(os.Getuid())
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
