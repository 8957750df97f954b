package e2ekafka

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
)

// txEnd is a transaction's END as both formats write it.
type txEnd struct {
	Status      string `json:"status"`
	ID          string `json:"id"`
	EventCount  int    `json:"event_count"`
	Collections []struct {
		Name   string `json:"data_collection"`
		Events int    `json:"event_count"`
	} `json:"data_collections"`
}

// txBlock is a data event's transaction block.
type txBlock struct {
	ID    string `json:"id"`
	Total int    `json:"total_order"`
	Table int    `json:"data_collection_order"`
}

// txCheck gathers a sink's transaction metadata and compares it with
// what the writer did.
type txCheck struct {
	ends   map[string]txEnd                // by transaction id
	begins map[string]int                  // BEGINs seen per transaction id
	orders map[string]map[string][]txBlock // transaction id → table → blocks
}

func newTxCheck() *txCheck {
	return &txCheck{ends: map[string]txEnd{}, begins: map[string]int{}, orders: map[string]map[string][]txBlock{}}
}

func (c *txCheck) status(status string, raw []byte) error {
	var e txEnd
	if err := json.Unmarshal(raw, &e); err != nil {
		return err
	}
	switch strings.ToLower(status) {
	case "begin":
		c.begins[e.ID]++
	case "end":
		if _, dup := c.ends[e.ID]; dup {
			return fmt.Errorf("END of %s twice", e.ID)
		}
		c.ends[e.ID] = e
	}
	return nil
}

func (c *txCheck) data(table string, b *txBlock) {
	if b == nil {
		c.orders[""] = map[string][]txBlock{table: nil}
		return
	}
	if c.orders[b.ID] == nil {
		c.orders[b.ID] = map[string][]txBlock{}
	}
	c.orders[b.ID][table] = append(c.orders[b.ID][table], *b)
}

// verify compares the metadata with want (xid → table → rows): one BEGIN
// and one END per transaction, the END's counts equal to the data events
// of the transaction, per table, and each data event's orders contiguous:
// total_order 1..n over the transaction, data_collection_order 1..k per
// table.
func (c *txCheck) verify(t *testing.T, sink string, want map[string]map[string]int) {
	t.Helper()
	bad := 0
	fail := func(format string, args ...any) {
		if bad++; bad <= 10 {
			t.Errorf(sink+": "+format, args...)
		}
	}
	if _, ok := c.orders[""]; ok {
		fail("data events without a transaction block")
	}
	if len(c.ends) != len(want) {
		fail("%d END events, %d transactions were made", len(c.ends), len(want))
	}
	for id, end := range c.ends {
		xid, _, _ := strings.Cut(id, ":")
		made, ok := want[xid]
		if !ok {
			fail("END of %s, a transaction nobody made", id)
			continue
		}
		if c.begins[id] != 1 {
			fail("transaction %s: %d BEGINs", id, c.begins[id])
		}
		counted := map[string]int{}
		total := 0
		for _, dc := range end.Collections {
			counted[dc.Name] = dc.Events
			total += dc.Events
		}
		if end.EventCount != total {
			fail("END %s: event_count %d, its tables add up to %d", id, end.EventCount, total)
		}
		var totals []int
		for table, n := range made {
			blocks := c.orders[id][table]
			if counted[table] != n || len(blocks) != n {
				fail("transaction %s, table %s: END counts %d, %d data events arrived, %d rows were written", id, table, counted[table], len(blocks), n)
			}
			// A Kafka consumer gets a table's events from several
			// partitions, in no particular order between them.
			slices.SortFunc(blocks, func(a, b txBlock) int { return a.Table - b.Table })
			for i, b := range blocks {
				if b.Table != i+1 {
					fail("transaction %s, table %s: data_collection_order %v, want 1..%d", id, table, blocks, len(blocks))
					break
				}
				totals = append(totals, b.Total)
			}
		}
		if len(counted) != len(made) {
			fail("transaction %s: END names tables %v, rows went to %v", id, counted, made)
		}
		slices.Sort(totals)
		for i, o := range totals {
			if o != i+1 {
				fail("transaction %s: total_order %v, want 1..%d", id, totals, len(totals))
				break
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%s: %d mismatches", sink, bad)
	}
}

// TestTransactionMetadata writes 1,000 PostgreSQL transactions of 1 to 50
// rows over 3 tables and reads them from an exactly-once Kafka sink
// (Debezium format, BEGIN and END on tm.transaction) and a file sink
// (native format) with transactions = true: every END's counts equal the
// transaction's data events, per table, and every data event's order is
// contiguous within its transaction.
func TestTransactionMetadata(t *testing.T) {
	const txs = 1000
	tables := []string{"t1", "t2", "t3"}
	brokers, dsn, conn, ctx := kafkaAndPostgres(t, 4*time.Minute)
	var err error
	for _, tb := range tables {
		if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, note text)", tb)); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "changes.jsonl")
	file := writePipeline(t, fmt.Sprintf(`
pipeline "tm" {}

source "postgres" "app" {
  dsn    = %q
  tables = ["public.t1", "public.t2", "public.t3"]
}

sink "kafka" "events" {
  from         = source.app
  brokers      = [%q]
  topic        = "tm.{schema}.{table}"
  format       = "debezium"
  exactly_once = true
  partitions   = 3
  transactions = true
}

sink "file" "log" {
  from         = source.app
  path         = %q
  transactions = true
}
`, dsn, brokers[0], out))
	run := startInstance(t, file, "")
	waitForSlot(ctx, t, conn)

	want := map[string]map[string]int{} // xid → qualified table → rows
	id := 0
	start := time.Now()
	for range txs {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var xid string
		if err := tx.QueryRow(ctx, "SELECT txid_current()::text").Scan(&xid); err != nil {
			t.Fatal(err)
		}
		made := map[string]int{}
		b := &pgx.Batch{}
		for n := 1 + rand.IntN(50); n > 0; n-- {
			tb := tables[rand.IntN(len(tables))]
			b.Queue(fmt.Sprintf("INSERT INTO %s VALUES ($1, 'x')", tb), id)
			made["public."+tb]++
			id++
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		want[xid] = made
	}
	t.Logf("%d rows in %d transactions written in %v", id, txs, time.Since(start).Round(time.Millisecond))

	kafka := newTxCheck()
	consumer := readCommitted(t, brokers, "tm.transaction")
	consumer.AddConsumeTopics("tm.public.t1", "tm.public.t2", "tm.public.t3")
	consume := func(wait time.Duration) int {
		pctx, pcancel := context.WithTimeout(ctx, wait)
		defer pcancel()
		n := 0
		consumer.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			n++
			var v struct {
				Status      string                         `json:"status"`
				Source      struct{ Schema, Table string } `json:"source"`
				Transaction *txBlock                       `json:"transaction"`
			}
			if err := json.Unmarshal(r.Value, &v); err != nil {
				t.Fatalf("%s/%d offset %d: %s: %v", r.Topic, r.Partition, r.Offset, r.Value, err)
			}
			if v.Status != "" {
				if err := kafka.status(v.Status, r.Value); err != nil {
					t.Fatalf("%s: %v", r.Value, err)
				}
				return
			}
			kafka.data(v.Source.Schema+"."+v.Source.Table, v.Transaction)
		})
		return n
	}
	for len(kafka.ends) < txs {
		if ctx.Err() != nil || run.exited() {
			t.Fatalf("after %v the Kafka consumer has %d of %d ENDs (sluice exited: %v)", time.Since(start).Round(time.Second), len(kafka.ends), txs, run.exited())
		}
		consume(time.Second)
	}
	// The file sink commits on its own; wait for its last END too.
	for fileEnds(t, out) < txs {
		if ctx.Err() != nil || run.exited() {
			t.Fatalf("the file has %d of %d ENDs", fileEnds(t, out), txs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	run.signal(syscall.SIGTERM)
	for consume(2*time.Second) > 0 {
	}
	kafka.verify(t, "kafka sink", want)

	lines := newTxCheck()
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var v struct {
			Status      string   `json:"status"`
			Schema      string   `json:"schema"`
			Table       string   `json:"table"`
			Transaction *txBlock `json:"transaction"`
		}
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s: %v", sc.Bytes(), err)
		}
		if v.Status != "" {
			if err := lines.status(v.Status, sc.Bytes()); err != nil {
				t.Fatalf("%s: %v", sc.Bytes(), err)
			}
			continue
		}
		lines.data(v.Schema+"."+v.Table, v.Transaction)
	}
	lines.verify(t, "file sink", want)
}

// fileEnds counts the END lines of a native file.
func fileEnds(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Count(string(b), `{"status":"end"`)
}
