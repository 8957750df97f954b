package e2e

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
)

// The fidelity cases of the chaos test (issue 9, acceptance 2): the values
// and changes users hit that the items workload does not, each case in a
// source database, replication slot, pipeline, sluice process and target
// database of its own, so that a case that stops its pipeline leaves the
// others checked. Every process is SIGKILLed at the same moments as the
// items pipeline. Afterwards each target must equal its source column by
// column (compareTable).

// fidCase is one fidelity case.
type fidCase struct {
	name      string              // the pipeline, and the slot's suffix
	about     string              // what it covers, for messages
	ddl       []string            // the source tables
	tables    []string            // the published tables (public.*)
	targetDDL map[string][]string // by sink: tables made on the target before the first run
	check     []fidTable          // the tables compared
	absent    []string            // tables the target must not have
	premises  []fidPremise        // what the source must show for the case to prove anything
	seed      int                 // rows inserted before the first run (snapshotted)
	minLive   int                 // below this many rows a step inserts
	insert    func(ctx context.Context, w *fidWriter, tx *sql.Tx) error
	ops       []fidOp
	events    []fidEvent // one-off changes at a fraction of the writing time
}

// fidOp is one kind of change a step may make, chosen by weight.
type fidOp struct {
	name   string
	weight int
	do     func(ctx context.Context, w *fidWriter, tx *sql.Tx) error
}

// fidEvent is a one-off change made at a fraction of the writing time, in
// a transaction of its own.
type fidEvent struct {
	at   float64
	name string
	do   func(ctx context.Context, w *fidWriter, tx *sql.Tx) error
}

// fidPremise is a query on the source returning a boolean that must be
// true, or the case did not exercise what it claims.
type fidPremise struct {
	what, query string
}

// fidWriter is the single writer of one case's source database. It keeps
// the live keys so that changes hit existing rows.
type fidWriter struct {
	db      *sql.DB
	rng     *rand.Rand
	live    []int64
	at      map[int64]int
	next    int64
	region  map[int64]string // fid_orders: each live key's partition
	state   map[string]bool  // what the case's events have done
	counts  map[string]int   // row changes by op, for the log
	txs     int
	lastLSN uint64 // WAL insert position just before the last commit
}

func newFidWriter(db *sql.DB, seed uint64, salt uint64) *fidWriter {
	return &fidWriter{db: db, rng: rand.New(rand.NewPCG(seed, salt)), at: map[int64]int{}, next: 1,
		region: map[int64]string{}, state: map[string]bool{}, counts: map[string]int{}}
}

func (w *fidWriter) add(id int64) {
	w.at[id] = len(w.live)
	w.live = append(w.live, id)
}

func (w *fidWriter) remove(id int64) {
	i := w.at[id]
	last := w.live[len(w.live)-1]
	w.live[i] = last
	w.at[last] = i
	w.live = w.live[:len(w.live)-1]
	delete(w.at, id)
	delete(w.region, id)
}

func (w *fidWriter) clear() {
	w.live, w.at, w.region = nil, map[int64]int{}, map[int64]string{}
}

// pick returns one live key, ok false when there is none.
func (w *fidWriter) pick() (int64, bool) {
	if len(w.live) == 0 {
		return 0, false
	}
	return w.live[w.rng.IntN(len(w.live))], true
}

// picks returns up to n distinct live keys.
func (w *fidWriter) picks(n int) []int64 {
	seen := map[int64]bool{}
	var out []int64
	for i := 0; i < 2*n && len(out) < n; i++ {
		if id, ok := w.pick(); ok && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// newKey takes the next unused key.
func (w *fidWriter) newKey() int64 {
	id := w.next
	w.next++
	return id
}

// exec runs one statement and counts the rows it changed under op.
func (w *fidWriter) exec(ctx context.Context, tx *sql.Tx, op, q string, args ...any) (int64, error) {
	n, err := affected(tx.ExecContext(ctx, q, args...))
	if err != nil {
		return 0, fmt.Errorf("%s: %s: %w", op, q, err)
	}
	w.counts[op] += int(n)
	return n, nil
}

// move gives row id a new key with the key update q ($1 the new key, $2
// the old one, then args) and returns the new key.
func (w *fidWriter) move(ctx context.Context, tx *sql.Tx, op string, id int64, q string, args ...any) (int64, error) {
	to := w.newKey()
	n, err := w.exec(ctx, tx, op, q, append([]any{to, id}, args...)...)
	if err != nil || n == 0 {
		return 0, err
	}
	r := w.region[id]
	w.remove(id)
	w.add(to)
	if r != "" {
		w.region[to] = r
	}
	return to, nil
}

// moveAny gives a random live row a new key with q (see move).
func (w *fidWriter) moveAny(ctx context.Context, tx *sql.Tx, op, q string) error {
	id, ok := w.pick()
	if !ok {
		return nil
	}
	_, err := w.move(ctx, tx, op, id, q)
	return err
}

// del deletes up to n live rows of table.
func (w *fidWriter) del(ctx context.Context, tx *sql.Tx, table string, n int) error {
	ids := w.picks(n)
	if len(ids) == 0 {
		return nil
	}
	if _, err := w.exec(ctx, tx, "delete", "DELETE FROM "+table+" WHERE id = ANY($1::bigint[])", ids); err != nil {
		return err
	}
	for _, id := range ids {
		w.remove(id)
	}
	return nil
}

// tx runs body in one source transaction and records the WAL insert
// position just before its commit (as workload.tx does).
func (w *fidWriter) tx(ctx context.Context, body func(*sql.Tx) error) error {
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := body(tx); err != nil {
		tx.Rollback()
		return err
	}
	var lsn string
	if err := tx.QueryRowContext(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
		tx.Rollback()
		return err
	}
	l, err := pglogrepl.ParseLSN(lsn)
	if err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	w.lastLSN = uint64(l)
	w.txs++
	return nil
}

// seedRows inserts a case's rows before the first run.
func (w *fidWriter) seedRows(ctx context.Context, c *fidCase) error {
	for i := 0; i < c.seed; i += 20 {
		if err := w.tx(ctx, func(tx *sql.Tx) error {
			for j := i; j < i+20 && j < c.seed; j++ {
				if err := c.insert(ctx, w, tx); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	return nil
}

// run makes the case's changes for about d: small transactions of one to
// three changes every few tens of milliseconds, and each event once its
// time has come.
func (w *fidWriter) run(ctx context.Context, c *fidCase, d time.Duration) error {
	start := time.Now()
	total := 0
	for _, op := range c.ops {
		total += op.weight
	}
	ev := 0
	for {
		elapsed := time.Since(start)
		for ev < len(c.events) && (elapsed >= time.Duration(c.events[ev].at*float64(d)) || elapsed >= d) {
			e := c.events[ev]
			if err := w.tx(ctx, func(tx *sql.Tx) error { return e.do(ctx, w, tx) }); err != nil {
				return fmt.Errorf("%s: %w", e.name, err)
			}
			w.counts["event: "+e.name]++
			ev++
		}
		if elapsed >= d {
			return nil
		}
		if err := w.tx(ctx, func(tx *sql.Tx) error {
			for n := 1 + w.rng.IntN(3); n > 0; n-- {
				if len(w.live) < c.minLive {
					if err := c.insert(ctx, w, tx); err != nil {
						return err
					}
					continue
				}
				r := w.rng.IntN(total)
				for _, op := range c.ops {
					if r -= op.weight; r < 0 {
						if err := op.do(ctx, w, tx); err != nil {
							return err
						}
						break
					}
				}
			}
			return nil
		}); err != nil {
			return err
		}
		time.Sleep(20*time.Millisecond + time.Duration(w.rng.IntN(40))*time.Millisecond)
	}
}

// summary is the row changes by op, for the log.
func (w *fidWriter) summary() string {
	ops := make([]string, 0, len(w.counts))
	for op, n := range w.counts {
		ops = append(ops, fmt.Sprintf("%s %d", op, n))
	}
	sort.Strings(ops)
	return fmt.Sprintf("%d transactions: %s", w.txs, strings.Join(ops, ", "))
}

// Values.

// bigHex is an incompressible text of 2·n hex digits: random, so pglz
// gains nothing and PostgreSQL stores it out of line.
func (w *fidWriter) bigHex(minBytes, maxBytes int) string {
	b := make([]byte, minBytes+w.rng.IntN(maxBytes-minBytes+1))
	for i := range b {
		b[i] = byte(w.rng.Uint32())
	}
	return hex.EncodeToString(b)
}

func (w *fidWriter) bytes(max int) []byte {
	b := make([]byte, w.rng.IntN(max+1))
	for i := range b {
		b[i] = byte(w.rng.Uint32())
	}
	return b
}

func (w *fidWriter) uuid() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(w.rng.Uint32())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// digits is n random decimal digits.
func (w *fidWriter) digits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + w.rng.IntN(10))
	}
	return string(b)
}

func (w *fidWriter) sign() string {
	if w.rng.IntN(3) == 0 {
		return "-"
	}
	return ""
}

// awkwardText is a short text with characters that need quoting or
// escaping somewhere, and trailing spaces.
func (w *fidWriter) awkwardText() any {
	if w.rng.IntN(8) == 0 {
		return nil
	}
	return fmt.Sprintf("%s %d", awkward[w.rng.IntN(len(awkward))], w.rng.IntN(1000))
}

// awkwardElems are text[] elements that PostgreSQL quotes or escapes in
// an array's text form, and the string "NULL" (not a NULL).
var awkwardElems = []string{`a b`, `x"y`, `back\slash`, `a,b`, `{braces}`, `NULL`, ``, ` lead`, `trail `, `üñí ✓`, "tab\tnl\n", `'single'`}

// textArray is a PostgreSQL array literal of text elements, some NULL.
func (w *fidWriter) textArray() any {
	if w.rng.IntN(10) == 0 {
		return nil
	}
	n := w.rng.IntN(5)
	el := make([]string, n)
	for i := range el {
		if w.rng.IntN(8) == 0 {
			el[i] = "NULL"
			continue
		}
		s := awkwardElems[w.rng.IntN(len(awkwardElems))]
		el[i] = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
	}
	return "{" + strings.Join(el, ",") + "}"
}

// intArray is a PostgreSQL array literal of integers across the whole
// range of integer, some NULL.
func (w *fidWriter) intArray() any {
	if w.rng.IntN(10) == 0 {
		return nil
	}
	n := w.rng.IntN(6)
	el := make([]string, n)
	for i := range el {
		switch w.rng.IntN(6) {
		case 0:
			el[i] = "NULL"
		case 1:
			el[i] = []string{"2147483647", "-2147483648", "0", "-1"}[w.rng.IntN(4)]
		default:
			el[i] = fmt.Sprint(int32(w.rng.Uint32()))
		}
	}
	return "{" + strings.Join(el, ",") + "}"
}

// numericArray is a PostgreSQL array literal of numerics of many digits
// and trailing zeros, some NULL.
func (w *fidWriter) numericArray() any {
	if w.rng.IntN(10) == 0 {
		return nil
	}
	el := make([]string, w.rng.IntN(5))
	for i := range el {
		switch w.rng.IntN(5) {
		case 0:
			el[i] = "NULL"
		case 1:
			el[i] = []string{"1.50", "-3", "0.000", "12345678901234567890.123456789012345678901234567890"}[w.rng.IntN(4)]
		default:
			el[i] = w.sign() + w.digits(1+w.rng.IntN(25)) + "." + w.digits(w.rng.IntN(25)) + "0"
		}
	}
	return "{" + strings.Join(el, ",") + "}"
}

// smallJSON is a jsonb document with nested values, exact numbers that a
// float64 cannot hold, trailing zeros and escapes.
func (w *fidWriter) smallJSON() any {
	if w.rng.IntN(10) == 0 {
		return nil
	}
	s, _ := json.Marshal(awkward[w.rng.IntN(len(awkward))])
	return fmt.Sprintf(`{"z": %d, "n": %s%d.%s0, "big": 9007199254740993%s, "s": %s, "a": [1, "1", null, true, {"k": []}], "e": 1e-7, "nested": {"b": {"c": false}}}`,
		w.rng.IntN(1000), w.sign(), w.rng.IntN(1000), w.digits(1+w.rng.IntN(20)), w.digits(w.rng.IntN(12)), s)
}

// bigJSON is a jsonb document over 2 kB, stored out of line.
func (w *fidWriter) bigJSON() string {
	return fmt.Sprintf(`{"blob": %q, "n": %d.50, "big": 123456789012345678901234567890, "tags": ["x", 1, null, true], "who": "O'Brien \"q\" ü"}`,
		w.bigHex(1100, 2500), w.rng.IntN(1000))
}

func (w *fidWriter) timestamp() time.Time {
	base := time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC)
	return base.Add(time.Duration(w.rng.Int64N(int64(150*365*24*time.Hour)/1000)) * time.Microsecond)
}

// numeric40 is a value of numeric(40,35): up to 5 integer digits and 35
// fractional ones.
func (w *fidWriter) numeric40() any {
	switch w.rng.IntN(10) {
	case 0:
		return nil
	case 1:
		return []string{"99999.99999999999999999999999999999999999", "-0.00000000000000000000000000000000001", "0", "1.5", "-12345.6789"}[w.rng.IntN(5)]
	}
	return w.sign() + w.digits(1+w.rng.IntN(5)) + "." + w.digits(35)
}

// numeric12 is a value of numeric(12,2), written with fewer fractional
// digits than the scale at times.
func (w *fidWriter) numeric12() any {
	if w.rng.IntN(10) == 0 {
		return nil
	}
	return fmt.Sprintf("%s%d.%d", w.sign(), w.rng.Int64N(10_000_000_000), w.rng.IntN(100))
}

// numericAny is a value of unconstrained numeric: up to 70 integer digits
// and 45 fractional ones, with the scale the value was written with.
func (w *fidWriter) numericAny() any {
	switch w.rng.IntN(10) {
	case 0:
		return nil
	case 1:
		return []string{"0.1", "1.50", "1e-40", "123456789012345678901234567890123456789012345678901234567890123456789",
			"-1.000000000000000000000000000000000000000000000001", "9007199254740993"}[w.rng.IntN(6)]
	}
	s := w.sign() + w.digits(1+w.rng.IntN(70))
	if f := w.rng.IntN(46); f > 0 {
		s += "." + w.digits(f)
	}
	return s
}

// numericFits is numericAny within DECIMAL(65,30): up to 35 integer and
// 30 fractional digits.
func (w *fidWriter) numericFits() any {
	switch w.rng.IntN(10) {
	case 0:
		return nil
	case 1:
		return []string{"0.1", "1.50", "1e-30", "12345678901234567890123456789012345.123456789012345678901234567890",
			"-1.000000000000000000000000000001", "9007199254740993"}[w.rng.IntN(6)]
	}
	s := w.sign() + w.digits(1+w.rng.IntN(35))
	if f := w.rng.IntN(31); f > 0 {
		s += "." + w.digits(f)
	}
	return s
}

// outOfLine is a premise query: table's TOAST relation is larger than its
// heap, so most of its big values are stored out of line.
func outOfLine(table string) string {
	return `SELECT pg_relation_size(reltoastrelid) > pg_relation_size(oid) FROM pg_class WHERE relname = '` + table + `'`
}

// fidCases are the fidelity cases.
func fidCases() []*fidCase {
	return []*fidCase{toastCase(), typesCase(), numericCase(),
		// Auto-created, unconstrained numeric is DECIMAL(65,30) on MySQL
		// (docs/type-mapping.md), which refuses a value beyond it rather
		// than round it (sqltabletest's exact cases prove the refusal):
		// here every value fits it. Values beyond go to fid_bignum_text.
		bigNumericCase("fid_bignum", "unconstrained numeric with values of up to 35 integer and 30 fractional digits, auto-created target", (*fidWriter).numericFits, nil),
		bigNumericCase("fid_bignum_text", "unconstrained numeric with values of up to 70 integer and 45 fractional digits, into a target column made as text beforehand (what the MySQL sink's refusal advises)", (*fidWriter).numericAny,
			map[string][]string{
				"mysql":    {"CREATE TABLE fid_bignum_text (id BIGINT NOT NULL PRIMARY KEY, nu VARCHAR(120))"},
				"postgres": {"CREATE TABLE fid_bignum_text (id bigint PRIMARY KEY, nu numeric)"},
			}),
		partitionCase(), strictCase(), truncateCase(), addColumnCase(), widenCase()}
}

func toastCase() *fidCase {
	insert := func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
		id := w.newKey()
		if _, err := w.exec(ctx, tx, "insert", `INSERT INTO fid_toast (id, grp, body, doc, note) VALUES ($1, $2, $3, $4::jsonb, $5)`,
			id, w.rng.IntN(10), w.bigHex(1200, 3500), w.bigJSON(), w.awkwardText()); err != nil {
			return err
		}
		w.add(id)
		return nil
	}
	return &fidCase{
		name:  "fid_toast",
		about: "TOASTed text and jsonb; updates and primary-key moves that leave them unchanged",
		ddl: []string{
			`CREATE TABLE fid_toast (id bigint PRIMARY KEY, grp integer NOT NULL, body text, doc jsonb, note text)`,
			`ALTER TABLE fid_toast ALTER COLUMN body SET STORAGE EXTERNAL, ALTER COLUMN doc SET STORAGE EXTERNAL`,
		},
		tables: []string{"fid_toast"},
		check:  []fidTable{{"fid_toast", []fidColumn{{"id", vInt}, {"grp", vInt}, {"body", vText}, {"doc", vJSON}, {"note", vText}}, 1}},
		premises: []fidPremise{
			{"fid_toast's values are stored out of line", outOfLine("fid_toast")},
		},
		seed: 40, minLive: 20, insert: insert,
		ops: []fidOp{
			{"insert", 20, insert},
			{"update leaving TOAST unchanged", 20, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
				_, err := w.exec(ctx, tx, "update leaving TOAST unchanged", `UPDATE fid_toast SET grp = grp + 1, note = $1 WHERE id = ANY($2)`, w.awkwardText(), w.picks(3))
				return err
			}},
			{"update of body", 6, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
				id, _ := w.pick()
				_, err := w.exec(ctx, tx, "update of body", `UPDATE fid_toast SET body = $1 WHERE id = $2`, w.bigHex(1200, 3500), id)
				return err
			}},
			{"update of doc", 6, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
				id, _ := w.pick()
				_, err := w.exec(ctx, tx, "update of doc", `UPDATE fid_toast SET doc = $1::jsonb, note = NULL WHERE id = $2`, w.bigJSON(), id)
				return err
			}},
			{"key update leaving TOAST unchanged", 20, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
				return w.moveAny(ctx, tx, "key update leaving TOAST unchanged", `UPDATE fid_toast SET id = $1 WHERE id = $2`)
			}},
			{"key and grp update leaving TOAST unchanged", 8, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
				return w.moveAny(ctx, tx, "key and grp update leaving TOAST unchanged", `UPDATE fid_toast SET id = $1, grp = grp + 100 WHERE id = $2`)
			}},
			{"delete", 8, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error { return w.del(ctx, tx, "fid_toast", 2) }},
		},
	}
}

func typesCase() *fidCase {
	insert := func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
		id := w.newKey()
		if _, err := w.exec(ctx, tx, "insert", `INSERT INTO fid_types (id, b, u, ia, ta, ts, j, flag, na) VALUES ($1, $2, $3::uuid, $4::integer[], $5::text[], $6, $7::jsonb, $8, $9::numeric[])`,
			append([]any{id}, typesValues(w)...)...); err != nil {
			return err
		}
		w.add(id)
		return nil
	}
	return &fidCase{
		name:   "fid_types",
		about:  "bytea, uuid, integer[], text[], numeric[], timestamptz, jsonb, boolean",
		ddl:    []string{`CREATE TABLE fid_types (id bigint PRIMARY KEY, b bytea, u uuid, ia integer[], ta text[], ts timestamptz, j jsonb, flag boolean, na numeric[])`},
		tables: []string{"fid_types"},
		check: []fidTable{{"fid_types", []fidColumn{{"id", vInt}, {"b", vBytes}, {"u", vUUID}, {"ia", vIntArray}, {"ta", vTextArray},
			{"ts", vTime}, {"j", vJSON}, {"flag", vBool}, {"na", vIntArray}}, 1}},
		seed: 50, minLive: 20, insert: insert,
		ops: []fidOp{
			{"insert", 25, insert},
			{"update of every column", 25, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
				id, _ := w.pick()
				_, err := w.exec(ctx, tx, "update of every column", `UPDATE fid_types SET b = $2, u = $3::uuid, ia = $4::integer[], ta = $5::text[], ts = $6, j = $7::jsonb, flag = $8, na = $9::numeric[] WHERE id = $1`,
					append([]any{id}, typesValues(w)...)...)
				return err
			}},
			{"array append", 10, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
				id, _ := w.pick()
				_, err := w.exec(ctx, tx, "array append", `UPDATE fid_types SET ia = array_append(ia, $1), ta = array_append(ta, $2) WHERE id = $3`,
					int32(w.rng.Uint32()), awkwardElems[w.rng.IntN(len(awkwardElems))], id)
				return err
			}},
			{"key update", 15, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
				return w.moveAny(ctx, tx, "key update", `UPDATE fid_types SET id = $1 WHERE id = $2`)
			}},
			{"delete", 10, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error { return w.del(ctx, tx, "fid_types", 2) }},
		},
	}
}

// typesValues are fid_types' non-key values, as parameters 2 to 9.
func typesValues(w *fidWriter) []any {
	var b, u, ts, flag any
	if w.rng.IntN(10) > 0 {
		b = w.bytes(40)
	}
	if w.rng.IntN(10) > 0 {
		u = w.uuid()
	}
	if w.rng.IntN(10) > 0 {
		ts = w.timestamp()
	}
	if w.rng.IntN(10) > 0 {
		flag = w.rng.IntN(2) == 0
	}
	return []any{b, u, w.intArray(), w.textArray(), ts, w.smallJSON(), flag, w.numericArray()}
}

func numericCase() *fidCase {
	insert := func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
		id := w.newKey()
		if _, err := w.exec(ctx, tx, "insert", `INSERT INTO fid_numeric (id, n40, n12) VALUES ($1, $2::numeric, $3::numeric)`, id, w.numeric40(), w.numeric12()); err != nil {
			return err
		}
		w.add(id)
		return nil
	}
	return &fidCase{
		name:   "fid_numeric",
		about:  "numeric(40,35), beyond what DECIMAL holds, and numeric(12,2)",
		ddl:    []string{`CREATE TABLE fid_numeric (id bigint PRIMARY KEY, n40 numeric(40,35), n12 numeric(12,2))`},
		tables: []string{"fid_numeric"},
		check:  []fidTable{{"fid_numeric", []fidColumn{{"id", vInt}, {"n40", vDecimal}, {"n12", vDecimal}}, 1}},
		seed:   50, minLive: 20, insert: insert,
		ops: []fidOp{
			{"insert", 30, insert},
			{"update", 30, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
				id, _ := w.pick()
				_, err := w.exec(ctx, tx, "update", `UPDATE fid_numeric SET n40 = $1::numeric, n12 = $2::numeric WHERE id = $3`, w.numeric40(), w.numeric12(), id)
				return err
			}},
			{"key update", 10, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
				return w.moveAny(ctx, tx, "key update", `UPDATE fid_numeric SET id = $1 WHERE id = $2`)
			}},
			{"delete", 10, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error { return w.del(ctx, tx, "fid_numeric", 2) }},
		},
	}
}

// bigNumericCase is unconstrained numeric with values DECIMAL cannot hold,
// into an auto-created target table, or, with targetDDL, into one the user
// made before the first run.
func bigNumericCase(name, about string, value func(*fidWriter) any, targetDDL map[string][]string) *fidCase {
	insert := func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
		id := w.newKey()
		if _, err := w.exec(ctx, tx, "insert", `INSERT INTO `+name+` (id, nu) VALUES ($1, $2::numeric)`, id, value(w)); err != nil {
			return err
		}
		w.add(id)
		return nil
	}
	return &fidCase{
		name:      name,
		about:     about,
		ddl:       []string{`CREATE TABLE ` + name + ` (id bigint PRIMARY KEY, nu numeric)`},
		tables:    []string{name},
		targetDDL: targetDDL,
		check:     []fidTable{{name, []fidColumn{{"id", vInt}, {"nu", vDecimal}}, 1}},
		seed:      50, minLive: 20, insert: insert,
		ops: []fidOp{
			{"insert", 30, insert},
			{"update", 30, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
				id, _ := w.pick()
				_, err := w.exec(ctx, tx, "update", `UPDATE `+name+` SET nu = $1::numeric WHERE id = $2`, value(w), id)
				return err
			}},
			{"key update", 10, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
				return w.moveAny(ctx, tx, "key update", `UPDATE `+name+` SET id = $1 WHERE id = $2`)
			}},
			{"delete", 10, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error { return w.del(ctx, tx, name, 2) }},
		},
	}
}

func partitionCase() *fidCase {
	insert := func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
		id := w.newKey()
		r := []string{"eu", "us"}[w.rng.IntN(2)]
		if _, err := w.exec(ctx, tx, "insert", `INSERT INTO fid_orders (id, region, amount, note) VALUES ($1, $2, $3::numeric, $4)`,
			id, r, fmt.Sprintf("%d.%02d", w.rng.IntN(100000), w.rng.IntN(100)), w.awkwardText()); err != nil {
			return err
		}
		w.add(id)
		w.region[id] = r
		return nil
	}
	other := map[string]string{"eu": "us", "us": "eu"}
	return &fidCase{
		name:  "fid_orders",
		about: "a table partitioned by list into two partitions, with updates that move rows between them",
		ddl: []string{
			`CREATE TABLE fid_orders (id bigint NOT NULL, region text NOT NULL, amount numeric(12,2), note text, PRIMARY KEY (id, region)) PARTITION BY LIST (region)`,
			`CREATE TABLE fid_orders_eu PARTITION OF fid_orders FOR VALUES IN ('eu')`,
			`CREATE TABLE fid_orders_us PARTITION OF fid_orders FOR VALUES IN ('us')`,
		},
		tables: []string{"fid_orders"},
		check:  []fidTable{{"fid_orders", []fidColumn{{"id", vInt}, {"region", vText}, {"amount", vDecimal}, {"note", vText}}, 2}},
		absent: []string{"fid_orders_eu", "fid_orders_us"},
		premises: []fidPremise{
			{"both partitions hold rows", `SELECT (SELECT count(*) FROM fid_orders_eu) > 0 AND (SELECT count(*) FROM fid_orders_us) > 0`},
		},
		seed: 50, minLive: 20, insert: insert,
		ops: []fidOp{
			{"insert", 25, insert},
			{"update in place", 25, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
				id, _ := w.pick()
				_, err := w.exec(ctx, tx, "update in place", `UPDATE fid_orders SET amount = amount + 1, note = $1 WHERE id = $2`, w.awkwardText(), id)
				return err
			}},
			{"move to the other partition", 25, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
				id, ok := w.pick()
				if !ok {
					return nil
				}
				to := other[w.region[id]]
				if _, err := w.exec(ctx, tx, "move to the other partition", `UPDATE fid_orders SET region = $1 WHERE id = $2`, to, id); err != nil {
					return err
				}
				w.region[id] = to
				return nil
			}},
			{"move to the other partition with a new key", 8, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
				id, ok := w.pick()
				if !ok {
					return nil
				}
				to := other[w.region[id]]
				k, err := w.move(ctx, tx, "move to the other partition with a new key", id, `UPDATE fid_orders SET id = $1, region = $3, note = 'moved' WHERE id = $2`, to)
				if err == nil && k != 0 {
					w.region[k] = to
				}
				return err
			}},
			{"delete", 10, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error { return w.del(ctx, tx, "fid_orders", 2) }},
		},
	}
}

func strictCase() *fidCase {
	insert := func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
		id := w.newKey()
		if _, err := w.exec(ctx, tx, "insert", `INSERT INTO fid_strict (id, name, body, qty, updated) VALUES ($1, $2, $3, $4, $5)`,
			id, fmt.Sprintf("name %d", w.rng.IntN(1000)), w.bigHex(1200, 3000), w.rng.IntN(100), w.timestamp()); err != nil {
			return err
		}
		w.add(id)
		return nil
	}
	return &fidCase{
		name:  "fid_strict",
		about: "a target table made before the first run, with NOT NULL columns, and updates leaving a TOASTed NOT NULL value unchanged",
		ddl: []string{
			`CREATE TABLE fid_strict (id bigint PRIMARY KEY, name text NOT NULL, body text NOT NULL, qty integer NOT NULL DEFAULT 0, updated timestamptz NOT NULL DEFAULT now())`,
			`ALTER TABLE fid_strict ALTER COLUMN body SET STORAGE EXTERNAL`,
		},
		tables: []string{"fid_strict"},
		targetDDL: map[string][]string{
			"mysql":    {"CREATE TABLE fid_strict (id BIGINT NOT NULL PRIMARY KEY, name TEXT NOT NULL, body LONGTEXT NOT NULL, qty INT NOT NULL DEFAULT 0, updated DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))"},
			"postgres": {`CREATE TABLE fid_strict (id bigint PRIMARY KEY, name text NOT NULL, body text NOT NULL, qty integer NOT NULL DEFAULT 0, updated timestamptz NOT NULL DEFAULT now())`},
		},
		check: []fidTable{{"fid_strict", []fidColumn{{"id", vInt}, {"name", vText}, {"body", vText}, {"qty", vInt}, {"updated", vTime}}, 1}},
		premises: []fidPremise{
			{"fid_strict's bodies are stored out of line", outOfLine("fid_strict")},
		},
		seed: 40, minLive: 20, insert: insert,
		ops: []fidOp{
			{"insert", 20, insert},
			{"update leaving TOAST unchanged", 25, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
				_, err := w.exec(ctx, tx, "update leaving TOAST unchanged", `UPDATE fid_strict SET qty = qty + 1, name = $1, updated = $2 WHERE id = ANY($3)`,
					fmt.Sprintf("renamed %d", w.rng.IntN(1000)), w.timestamp(), w.picks(3))
				return err
			}},
			{"update of body", 6, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
				id, _ := w.pick()
				_, err := w.exec(ctx, tx, "update of body", `UPDATE fid_strict SET body = $1 WHERE id = $2`, w.bigHex(1200, 3000), id)
				return err
			}},
			{"key update leaving TOAST unchanged", 20, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
				return w.moveAny(ctx, tx, "key update leaving TOAST unchanged", `UPDATE fid_strict SET id = $1 WHERE id = $2`)
			}},
			{"delete", 8, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error { return w.del(ctx, tx, "fid_strict", 2) }},
		},
	}
}

// smallOps are the changes of the truncate, add-column and widening
// cases, whose rows are (id, v text, n integer): inserts, updates, deletes
// and key updates; n makes the values of n. Parameters are typed bigint
// in the SQL: the driver caches a statement's parameter types, and those
// of a statement prepared before the widening would refuse big values.
func smallOps(table string, insert func(context.Context, *fidWriter, *sql.Tx) error, n func(w *fidWriter) any) []fidOp {
	return []fidOp{
		{"insert", 30, insert},
		{"update", 30, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
			id, _ := w.pick()
			_, err := w.exec(ctx, tx, "update", `UPDATE `+table+` SET v = $1, n = $2::bigint WHERE id = $3::bigint`, w.awkwardText(), n(w), id)
			return err
		}},
		{"key update", 10, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
			return w.moveAny(ctx, tx, "key update", `UPDATE `+table+` SET id = $1::bigint WHERE id = $2::bigint`)
		}},
		{"delete", 10, func(ctx context.Context, w *fidWriter, tx *sql.Tx) error { return w.del(ctx, tx, table, 1) }},
	}
}

func smallInt(w *fidWriter) any { return int32(w.rng.Uint32()) }

func truncateCase() *fidCase {
	insert := func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
		id := w.newKey()
		if _, err := w.exec(ctx, tx, "insert", `INSERT INTO fid_trunc (id, v, n) VALUES ($1, $2, $3)`, id, w.awkwardText(), smallInt(w)); err != nil {
			return err
		}
		w.add(id)
		return nil
	}
	return &fidCase{
		name:   "fid_trunc",
		about:  "TRUNCATE mid-run, once alone and once with the refill in the same transaction; the keys are used again",
		ddl:    []string{`CREATE TABLE fid_trunc (id bigint PRIMARY KEY, v text, n integer)`},
		tables: []string{"fid_trunc"},
		check:  []fidTable{{"fid_trunc", []fidColumn{{"id", vInt}, {"v", vText}, {"n", vInt}}, 1}},
		seed:   100, minLive: 20, insert: insert,
		ops: smallOps("fid_trunc", insert, smallInt),
		events: []fidEvent{
			{0.35, "TRUNCATE", func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `TRUNCATE fid_trunc`); err != nil {
					return err
				}
				w.clear()
				w.next = 1 // the old keys again: a target that kept its rows gets them overwritten or kept
				return nil
			}},
			{0.65, "TRUNCATE and refill in one transaction", func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `TRUNCATE fid_trunc`); err != nil {
					return err
				}
				w.clear()
				w.next = 1
				for i := 0; i < 60; i++ {
					if err := insert(ctx, w, tx); err != nil {
						return err
					}
				}
				return nil
			}},
		},
	}
}

func addColumnCase() *fidCase {
	insert := func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
		id := w.newKey()
		var err error
		if w.state["added"] && w.rng.IntN(2) == 0 {
			_, err = w.exec(ctx, tx, "insert", `INSERT INTO fid_addcol (id, v, n, status, score) VALUES ($1, $2, $3, $4, $5)`,
				id, w.awkwardText(), smallInt(w), []string{"open", "closed"}[w.rng.IntN(2)], w.rng.IntN(100))
		} else {
			_, err = w.exec(ctx, tx, "insert", `INSERT INTO fid_addcol (id, v, n) VALUES ($1, $2, $3)`, id, w.awkwardText(), smallInt(w))
		}
		if err != nil {
			return err
		}
		w.add(id)
		return nil
	}
	return &fidCase{
		name:   "fid_addcol",
		about:  "ALTER TABLE ADD COLUMN with constant defaults (one NOT NULL) on a table with rows, most never updated afterwards",
		ddl:    []string{`CREATE TABLE fid_addcol (id bigint PRIMARY KEY, v text, n integer)`},
		tables: []string{"fid_addcol"},
		check:  []fidTable{{"fid_addcol", []fidColumn{{"id", vInt}, {"v", vText}, {"n", vInt}, {"status", vText}, {"score", vInt}}, 1}},
		premises: []fidPremise{
			{"rows from before the ALTER show the defaults", `SELECT count(*) > 50 FROM fid_addcol WHERE status = 'new' AND score = 7`},
		},
		seed: 150, minLive: 20, insert: insert,
		ops: smallOps("fid_addcol", insert, smallInt),
		events: []fidEvent{
			{0.4, "ADD COLUMN with defaults", func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `ALTER TABLE fid_addcol ADD COLUMN status text NOT NULL DEFAULT 'new', ADD COLUMN score integer DEFAULT 7`); err != nil {
					return err
				}
				w.state["added"] = true
				return nil
			}},
		},
	}
}

func widenCase() *fidCase {
	big := func(w *fidWriter) any {
		if !w.state["widened"] || w.rng.IntN(3) == 0 {
			return smallInt(w)
		}
		return []int64{1 << 31, -(1 << 31) - 1, 1<<53 + 1, 1<<63 - 1}[w.rng.IntN(4)] - int64(w.rng.IntN(2))*int64(w.rng.Uint32())
	}
	insert := func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
		id := w.newKey()
		if _, err := w.exec(ctx, tx, "insert", `INSERT INTO fid_widen (id, v, n) VALUES ($1::bigint, $2, $3::bigint)`, id, w.awkwardText(), big(w)); err != nil {
			return err
		}
		w.add(id)
		return nil
	}
	return &fidCase{
		name:   "fid_widen",
		about:  "ALTER COLUMN TYPE bigint (integer → bigint, the key and a value) mid-run, then values beyond 2^31",
		ddl:    []string{`CREATE TABLE fid_widen (id integer PRIMARY KEY, v text, n integer)`},
		tables: []string{"fid_widen"},
		check:  []fidTable{{"fid_widen", []fidColumn{{"id", vInt}, {"v", vText}, {"n", vInt}}, 1}},
		premises: []fidPremise{
			{"keys and values beyond 2^31 exist", `SELECT max(id) > 2147483647 AND max(abs(n)) > 2147483648 FROM fid_widen`},
		},
		seed: 100, minLive: 20, insert: insert,
		ops: smallOps("fid_widen", insert, big),
		events: []fidEvent{
			{0.5, "ALTER COLUMN TYPE bigint", func(ctx context.Context, w *fidWriter, tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `ALTER TABLE fid_widen ALTER COLUMN id TYPE bigint, ALTER COLUMN n TYPE bigint`); err != nil {
					return err
				}
				w.state["widened"] = true
				w.next = 1 << 31 // keys beyond integer from now on
				_, err := w.exec(ctx, tx, "insert", `INSERT INTO fid_widen (id, v, n) VALUES ($1, 'first beyond 2^31', $2)`, w.newKey(), int64(1<<53+1))
				w.add(w.next - 1)
				return err
			}},
		},
	}
}
