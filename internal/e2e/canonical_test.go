package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// canonical copies pipelines/NAME into a fresh working directory (the
// pipeline's default state file .sluice/… lands there) and starts it as
// written, with env.
func canonical(t *testing.T, name string, env ...string) (dir string, p *proc) {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(repoRoot, "pipelines", name))
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	writeFile(t, dir, name, string(text))
	return dir, startSluice(t, dir, name, env...)
}

// settle waits until cond holds, failing the test with the pipeline's
// logs when it does not within a minute or the pipeline exits or pauses.
func settle(t *testing.T, p *proc, what string, cond func() bool) {
	t.Helper()
	if !eventually(time.Minute, 100*time.Millisecond, func() bool { return cond() || !p.healthy() }) || !p.healthy() {
		t.Fatalf("%s: not within a minute, or the pipeline stopped or paused (healthy: %t, exit: %v)\n%s", what, p.healthy(), p.err, p.logs.String())
	}
}

// stopClean stops the pipeline with SIGTERM and expects exit status 0.
func stopClean(t *testing.T, p *proc) {
	t.Helper()
	if err := p.stop(); err != nil {
		t.Errorf("sluice run after SIGTERM: %v (want exit 0)\n%s", err, p.logs.String())
	}
}

// columnsOf lists a MariaDB table's columns in order.
func columnsOf(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	rows, err := db.Query("SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position", table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	return cols
}

// TestCanonicalUsersToMySQL runs pipelines/users_to_mysql.hcl: users are
// replicated into MariaDB (snapshot, inserts, updates, a primary-key
// update, deletes) and the password column never reaches it.
func TestCanonicalUsersToMySQL(t *testing.T) {
	ctx := context.Background()
	srcDSN := pg.CreateDB(t)
	src := openPG(t, srcDSN)
	mustExec(t, src, "CREATE TABLE users (id serial PRIMARY KEY, first_name text, email text, password text NOT NULL)",
		"INSERT INTO users (first_name, email, password) VALUES ('Ben', 'ben@example.com', 'hunter2'), ('Ada', 'ada@example.com', 'lovelace')")
	tgt := newTarget(t, "mysql")
	_, p := canonical(t, "users_to_mysql.hcl", "SOURCE_DSN="+srcDSN, "TARGET_DSN="+tgt.dsn)

	cols := []column{{"id", kInt}, {"first_name", kText}, {"email", kText}}
	equal := func() bool {
		ok, _, _, err := tablesEqual(ctx, src, tgt, "users", cols)
		return err == nil && ok
	}
	settle(t, p, "the snapshot of users in MariaDB", equal)
	mustExec(t, src,
		"INSERT INTO users (first_name, email, password) VALUES ('Grace', 'grace@example.com', 'cobol')",
		"UPDATE users SET first_name = 'Benjamin', password = 'hunter3' WHERE id = 1",
		"UPDATE users SET password = 'only the password changed' WHERE id = 3",
		"DELETE FROM users WHERE id = 2",
		"UPDATE users SET id = 30 WHERE id = 3")
	settle(t, p, "users 1 and 30 in MariaDB", func() bool {
		var n int64
		_ = tgt.db.QueryRow("SELECT count(*) FROM users WHERE id IN (1, 30) AND (id <> 1 OR first_name = 'Benjamin')").Scan(&n)
		return n == 2 && equal()
	})
	if got, want := strings.Join(columnsOf(t, tgt.db, "users"), ","), "id,first_name,email"; got != want {
		t.Errorf("MariaDB users has columns %s, want %s (password must never leave PostgreSQL)", got, want)
	}
	stopClean(t, p)
}

// TestCanonicalPastaSoftDelete runs pipelines/pasta_soft_delete.hcl: rows
// are keyed by name in pasta_mysql, and a delete marks the row
// __deleted = true instead of removing it; an insert revives it.
//
// Under the table's default replica identity a delete carries only the
// primary key (id), not name: the sink then finds the row by the source
// key, which the target has too.
func TestCanonicalPastaSoftDelete(t *testing.T) {
	t.Run("replica identity full", func(t *testing.T) { pastaSoftDelete(t, "FULL") })
	t.Run("replica identity default", func(t *testing.T) { pastaSoftDelete(t, "DEFAULT") })
}

func pastaSoftDelete(t *testing.T, identity string) {
	srcDSN := pg.CreateDB(t)
	src := openPG(t, srcDSN)
	mustExec(t, src, "CREATE TABLE pasta (id integer PRIMARY KEY, name text NOT NULL UNIQUE, cooking_minutes integer)",
		"ALTER TABLE pasta REPLICA IDENTITY "+identity,
		"INSERT INTO pasta VALUES (1, 'linguine', 10), (2, 'penne', 11)")
	tgt := newTarget(t, "mysql")
	_, p := canonical(t, "pasta_soft_delete.hcl", "SOURCE_DSN="+srcDSN, "TARGET_DSN="+tgt.dsn)

	rows := func() string {
		out, err := rowTexts(context.Background(), tgt.db, quoteFor("mysql"), "pasta_mysql",
			[]column{{"name", kText}, {"id", kInt}, {"cooking_minutes", kInt}, {"__deleted", kBool}}, 1)
		if err != nil {
			return err.Error()
		}
		return strings.Join(out, "\n")
	}
	settle(t, p, "the snapshot of pasta in pasta_mysql", func() bool {
		return rows() == `"linguine"|1|10|false`+"\n"+`"penne"|2|11|false`
	})
	mustExec(t, src,
		"INSERT INTO pasta VALUES (3, 'farfalle', 12)",
		"UPDATE pasta SET cooking_minutes = 9 WHERE name = 'linguine'",
		"DELETE FROM pasta WHERE name = 'penne'",
		"DELETE FROM pasta WHERE name = 'farfalle'",
		"INSERT INTO pasta VALUES (4, 'farfalle', 13)")
	want := `"farfalle"|4|13|false` + "\n" + `"linguine"|1|9|false` + "\n" + `"penne"|2|11|true`
	var got string
	if !eventually(time.Minute, 100*time.Millisecond, func() bool { got = rows(); return got == want || !p.healthy() }) || !p.healthy() {
		t.Fatalf("pasta_mysql (name|id|cooking_minutes|__deleted):\n%s\nwant:\n%s\n(healthy: %t)\n%s", got, want, p.healthy(), p.logs.String())
	}
	stopClean(t, p)
}

// webhookReceiver is the endpoint of shipped_orders: it checks every
// request's X-Sluice-Signature and keeps the events of the good ones.
type webhookReceiver struct {
	secret []byte
	mu     sync.Mutex
	events []map[string]any
	bad    []string
}

func (rc *webhookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err != nil {
		rc.bad = append(rc.bad, err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	m := hmac.New(sha256.New, rc.secret)
	m.Write(body)
	if want := "sha256=" + hex.EncodeToString(m.Sum(nil)); !hmac.Equal([]byte(r.Header.Get("X-Sluice-Signature")), []byte(want)) {
		rc.bad = append(rc.bad, fmt.Sprintf("signature %q, want %q", r.Header.Get("X-Sluice-Signature"), want))
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var batch []map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&batch); err != nil {
		rc.bad = append(rc.bad, fmt.Sprintf("body is not a JSON array of events: %v: %s", err, body))
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.events = append(rc.events, batch...)
}

func (rc *webhookReceiver) received() ([]map[string]any, []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]map[string]any(nil), rc.events...), append([]string(nil), rc.bad...)
}

// summary renders events as sorted "op order_id after-columns values"
// lines, the after columns in key order.
func summary(events []map[string]any) string {
	var lines []string
	for _, e := range events {
		after, _ := e["after"].(map[string]any)
		keys := make([]string, 0, len(after))
		for k := range after {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		fmt.Fprintf(&b, "%v", e["op"])
		for _, k := range keys {
			fmt.Fprintf(&b, " %s=%v", k, after[k])
		}
		lines = append(lines, b.String())
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestCanonicalShippedOrders runs pipelines/shipped_orders.hcl: only
// inserted or updated orders with total >= 50 that are shipped or
// delivered reach the signed webhook and the audit file, with only the
// selected columns.
//
// Both a numeric total (as the example's `total >= 50` is usually meant:
// money) and a double precision one are run; numeric values reach expr
// as change.Numeric, which it must compare as a number.
func TestCanonicalShippedOrders(t *testing.T) {
	t.Run("double precision total", func(t *testing.T) { shippedOrders(t, "double precision", "120.5", "80", "50") })
	t.Run("numeric total", func(t *testing.T) { shippedOrders(t, "numeric(10,2)", "120.50", "80.00", "50.00") })
}

// shippedOrders runs the pipeline with total of type typ; totals are the
// texts the events carry for 120.50, 80 and 50.
func shippedOrders(t *testing.T, typ string, totals ...string) {
	srcDSN := pg.CreateDB(t)
	src := openPG(t, srcDSN)
	mustExec(t, src, "CREATE TABLE orders (order_id integer PRIMARY KEY, customer_id integer, status text, total "+typ+", note text)",
		// a snapshot row is not an insert or update: the filter drops it
		"INSERT INTO orders VALUES (1, 7, 'shipped', 80, 'before the pipeline')")
	rc := &webhookReceiver{secret: []byte("e2e webhook secret")}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	dir, p := canonical(t, "shipped_orders.hcl", "SOURCE_DSN="+srcDSN, "WEBHOOK_URL="+srv.URL+"/hooks/orders", "WEBHOOK_SECRET="+string(rc.secret))

	settle(t, p, "the publication", func() bool {
		return queryInt(t, src, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'sluice_shipped_orders' AND confirmed_flush_lsn IS NOT NULL") == 1
	})
	mustExec(t, src,
		"INSERT INTO orders VALUES (2, 8, 'pending', 80, 'gift')",
		"UPDATE orders SET status = 'shipped' WHERE order_id = 2",
		"INSERT INTO orders VALUES (3, 9, 'shipped', 49.99, '')",
		"INSERT INTO orders VALUES (4, 10, 'delivered', 120.50, 'leave at the door')",
		"DELETE FROM orders WHERE order_id = 4",
		"UPDATE orders SET total = 50 WHERE order_id = 3",
		"UPDATE orders SET status = 'cancelled' WHERE order_id = 1",
		"INSERT INTO orders VALUES (5, 11, 'pending', 500, 'not shipped')")
	want := strings.Join([]string{
		"insert customer_id=10 order_id=4 status=delivered total=" + totals[0],
		"update customer_id=8 order_id=2 status=shipped total=" + totals[1],
		"update customer_id=9 order_id=3 status=shipped total=" + totals[2],
	}, "\n")
	settle(t, p, "three notable orders at the webhook", func() bool {
		events, _ := rc.received()
		return len(events) >= 3
	})
	stopClean(t, p)

	events, bad := rc.received()
	if len(bad) > 0 {
		t.Errorf("the webhook refused requests: %s", strings.Join(bad, "; "))
	}
	if got := summary(events); got != want {
		t.Errorf("webhook events:\n%s\nwant:\n%s", got, want)
	}
	f, err := os.Open(filepath.Join(dir, "notable-orders.jsonl"))
	if err != nil {
		t.Fatalf("the audit file: %v", err)
	}
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e map[string]any
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		lines = append(lines, e)
	}
	if got := summary(lines); got != want {
		t.Errorf("notable-orders.jsonl:\n%s\nwant:\n%s", got, want)
	}
}

// TestCanonicalSplitName runs pipelines/split_name.hcl: first_name and
// last_name are filled from name in the very table the pipeline reads,
// for rows that existed (snapshot) and rows written meanwhile, and the
// pipeline does not feed on its own writes: the number of updates the
// table sees settles at exactly one write per row change that needs it.
func TestCanonicalSplitName(t *testing.T) {
	srcDSN := pg.CreateDB(t)
	src := openPG(t, srcDSN)
	mustExec(t, src, "CREATE TABLE users (id integer PRIMARY KEY, name text, first_name text, last_name text)",
		"CREATE TABLE user_updates (n bigserial PRIMARY KEY, id integer NOT NULL)",
		`CREATE FUNCTION count_update() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN INSERT INTO user_updates (id) VALUES (NEW.id); RETURN NEW; END $$`,
		"CREATE TRIGGER count_update AFTER UPDATE ON users FOR EACH ROW EXECUTE FUNCTION count_update()",
		"INSERT INTO users (id, name) VALUES (1, 'Grace Brewster Hopper'), (2, 'Cher')")
	_, p := canonical(t, "split_name.hcl", "SOURCE_DSN="+srcDSN)

	rows := func() string {
		out, err := rowTexts(context.Background(), src, pgQuote, "users",
			[]column{{"id", kInt}, {"name", kText}, {"first_name", kText}, {"last_name", kText}}, 1)
		if err != nil {
			return err.Error()
		}
		return strings.Join(out, "\n")
	}
	settle(t, p, "the snapshot rows split", func() bool {
		return rows() == `1|"Grace Brewster Hopper"|"Grace"|"Brewster Hopper"`+"\n"+`2|"Cher"|"Cher"|NULL`
	})
	mustExec(t, src,
		"INSERT INTO users (id, name) VALUES (3, 'Alan Turing'), (4, 'Ada King Lovelace'), (5, 'Temporary Row')",
		"UPDATE users SET name = 'Cher Sarkisian' WHERE id = 2",
		"DELETE FROM users WHERE id = 5")
	want := strings.Join([]string{
		`1|"Grace Brewster Hopper"|"Grace"|"Brewster Hopper"`,
		`2|"Cher Sarkisian"|"Cher"|"Sarkisian"`,
		`3|"Alan Turing"|"Alan"|"Turing"`,
		`4|"Ada King Lovelace"|"Ada"|"King Lovelace"`,
	}, "\n")
	var got string
	if !eventually(time.Minute, 100*time.Millisecond, func() bool { got = rows(); return got == want || !p.healthy() }) || !p.healthy() {
		t.Fatalf("users:\n%s\nwant:\n%s\n(healthy: %t)\n%s", got, want, p.healthy(), p.logs.String())
	}
	// One sluice write per row for the snapshot (1, 2) and the inserts (3,
	// 4, and 5 if sluice got to it before it was deleted), one for the
	// rename of 2, plus that rename itself: sluice's own writes come back
	// as changes, compute the same names and write nothing.
	updates := func() int64 { return queryInt(t, src, "SELECT count(*) FROM user_updates") }
	first := updates()
	time.Sleep(3 * time.Second)
	if later := updates(); later != first {
		t.Errorf("the update count did not settle: %d, 3s later %d (the pipeline feeds on its own writes)", first, later)
	}
	perRow := map[int64]int64{}
	r, err := src.Query("SELECT id, count(*) FROM user_updates GROUP BY id")
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var id, n int64
		if err := r.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		perRow[id] = n
	}
	r.Close()
	if perRow[5] > 1 {
		t.Errorf("row 5 was updated %d times, want at most once", perRow[5])
	}
	delete(perRow, 5)
	if got, want := fmt.Sprint(perRow), fmt.Sprint(map[int64]int64{1: 1, 2: 3, 3: 1, 4: 1}); got != want {
		t.Errorf("updates per row = %s, want %s (one per needed write, plus the user's rename of 2)", got, want)
	}
	stopClean(t, p)
}
