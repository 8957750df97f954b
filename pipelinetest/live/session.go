package live

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Prefix starts the name of every scratch object a session creates.
const Prefix = "sluice_scratch_"

// DefaultTimeout is how long a test waits, by default, for its sinks to
// commit what its inputs caused.
const DefaultTimeout = time.Minute

// Options configure a Session. The zero value means the defaults.
type Options struct {
	// Timeout bounds each test's wait for its sinks; default
	// DefaultTimeout.
	Timeout time.Duration
	// Log receives what the session did that its user should know: the
	// leftovers of an interrupted run it removed. nil: nothing is said.
	Log func(msg string)
	// TempDir holds the tests' state files and scratch files; default
	// os.TempDir().
	TempDir string
}

// Session runs live tests: it owns the run's scratch names, the
// connections that hold its locks, and the sweep of leftovers. Use one
// Session for every file of one `sluice test --live`, then Close it. A
// Session runs one test at a time.
type Session struct {
	opts Options
	run  string // "<pid>_<tag>": the part of scratch names after Prefix
	n    int    // tests started

	mu     sync.Mutex
	pgs    map[string]*pgServer    // by dsn
	mysqls map[string]*mysqlServer // by server address and user
	// mysqlLocked lists the MySQL servers (addresses) where one of the
	// session's connections holds its lock.
	mysqlLocked map[string]bool
}

// NewSession starts a session; it connects nowhere until a test needs a
// server.
func NewSession(opts Options) *Session {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.TempDir == "" {
		opts.TempDir = os.TempDir()
	}
	tag := make([]byte, 2)
	_, _ = rand.Read(tag)
	return &Session{opts: opts, run: fmt.Sprintf("%d_%s", os.Getpid(), hex.EncodeToString(tag)),
		pgs: map[string]*pgServer{}, mysqls: map[string]*mysqlServer{}, mysqlLocked: map[string]bool{}}
}

// Close releases the session's locks and connections. Scratch objects are
// removed by each test as it ends.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, p := range s.pgs {
		errs = append(errs, p.close(ctx))
	}
	for _, m := range s.mysqls {
		errs = append(errs, m.close())
	}
	s.pgs, s.mysqls, s.mysqlLocked = map[string]*pgServer{}, map[string]*mysqlServer{}, map[string]bool{}
	return errors.Join(errs...)
}

func (s *Session) log(format string, args ...any) {
	if s.opts.Log != nil {
		s.opts.Log(fmt.Sprintf(format, args...))
	}
}

// lockName is the lock a session holds on every server while it runs.
func lockName(run string) string { return Prefix + run }

// lockKey is lockName as a PostgreSQL advisory lock key.
func lockKey(run string) int64 {
	h := fnv.New64a()
	h.Write([]byte(lockName(run)))
	return int64(h.Sum64())
}

// scratchName matches a scratch object's name and captures its session.
var scratchName = regexp.MustCompile(`^` + Prefix + `([0-9]+_[0-9a-f]{4})_`)

// runOf returns the session a scratch name belongs to, or "".
func runOf(name string) string {
	m := scratchName.FindStringSubmatch(name)
	if m == nil {
		return ""
	}
	return m[1]
}

// name returns the scratch name of what, for test n: lower case, at most
// 63 bytes (PostgreSQL's identifiers and slot names, MySQL's databases).
func (s *Session) name(n int, what string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(what) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	name := fmt.Sprintf("%s%s_%d_%s", Prefix, s.run, n, b.String())
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

// leftovers groups what a sweep removed, for the log.
type leftovers []string

func (l leftovers) String() string { return strings.Join(l, ", ") }
