package e2ekafka

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestScaleOutKillAppliesEachRecordOnce runs Kafka → MariaDB in append
// mode (every applied change is a new row, so a change applied twice
// shows) with two `sluice run` processes in one consumer group, dynamic
// members (no --instance). Records are produced throughout; one process
// is SIGKILLed and restarted twice. Its partitions move: to the other
// process when the group drops the dead member, and back as the
// restarted one joins. Each move must
// resume after what the target committed for the partition, not at the
// group's offset, which lags by what was committed but not acknowledged
// when the process died. To make that lag certain rather than a matter of
// a kill's timing, the broker refuses every offset commit: the group's
// offsets stay at the start, and only the target's checkpoint knows how
// far each partition got. The target must hold every record exactly once.
// It runs against MariaDB and PostgreSQL side by side.
func TestScaleOutKillAppliesEachRecordOnce(t *testing.T) {
	setup(t)
	t.Parallel()
	for _, tg := range []scaleOutTarget{
		{sink: "mysql", driver: "mysql", dsn: maria.CreateDB, concat: "GROUP_CONCAT(__position)"},
		{sink: "postgres", driver: "pgx", dsn: pg.CreateDB, concat: "string_agg(__position, ',')"},
	} {
		t.Run(tg.sink, func(t *testing.T) {
			t.Parallel()
			scaleOut(t, tg, false)
		})
	}
}

// TestStaticMembersTakeTheirPartitionsBack is the scale-out test with
// `sluice run --instance NAME`: static members of the group. A killed
// process restarted under its name takes its partitions back when it
// rejoins, so every record is applied soon after the last is produced;
// dynamic members would leave the dead member's partitions unread until
// the group's 45 s session timeout, longer than the test allows.
func TestStaticMembersTakeTheirPartitionsBack(t *testing.T) {
	setup(t)
	t.Parallel()
	scaleOut(t, scaleOutTarget{sink: "mysql", driver: "mysql", dsn: maria.CreateDB, concat: "GROUP_CONCAT(__position)"}, true)
}

// scaleOutTarget is a database the scale-out test applies to.
type scaleOutTarget struct {
	sink   string // the sink type
	driver string // database/sql driver
	dsn    func(testing.TB) string
	concat string // aggregate joining a group's positions with commas
}

func scaleOut(t *testing.T, tg scaleOutTarget, static bool) {
	const (
		topic      = "shop.public.orders"
		partitions = 6
		perTick    = 40 // records produced every 100ms: 400/s
	)
	// Dynamic members: the group drops the dead member after its session
	// timeout (45s), so the second kill lands after the restarted process
	// got partitions back; records are produced for about a minute.
	// Static members: the restarted process has its partitions back as
	// it rejoins, and every record must be applied within applyWithin of
	// the last being produced.
	total := 24_000
	kills := []time.Duration{
		time.Duration(4000+rand.IntN(4000)) * time.Millisecond,
		time.Duration(52000+rand.IntN(5000)) * time.Millisecond,
	}
	applyWithin := 4 * time.Minute
	if static {
		total = 8_000
		kills[1] = time.Duration(12000+rand.IntN(4000)) * time.Millisecond
		applyWithin = 20 * time.Second
	}
	brokers := commitlessCluster(t, topic, partitions)
	dsn := tg.dsn(t)
	file := writePipeline(t, fmt.Sprintf(`
pipeline "scaleout" {}

source "kafka" "shop" {
  brokers = [%q]
  topics  = [%q]
  group   = "sluice-scaleout"
  format  = "debezium"
}

sink %q "replica" {
  from        = source.shop
  dsn         = %q
  table       = "orders_log"
  mode        = "append"
  auto_create = true
}
`, brokers[0], topic, tg.sink, dsn))
	db, err := sql.Open(tg.driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	produced := make(chan error, 1)
	go func() { produced <- produce(ctx, brokers, topic, total, perTick) }()

	var a, b *instance
	if static {
		a, b = startInstance(t, file, "a"), startInstance(t, file, "b")
	} else {
		a, b = startMember(t, file, "a"), startMember(t, file, "b")
	}
	start := time.Now()
	for i, at := range kills {
		time.Sleep(time.Until(start.Add(at)))
		if a.exited() || b.exited() {
			t.Fatalf("an instance exited on its own before kill %d", i+1)
		}
		n := countRows(t, db)
		a.restart()
		t.Logf("kill %d of instance a at %v, %d rows applied", i+1, time.Since(start).Round(time.Millisecond), n)
	}
	if err := <-produced; err != nil {
		t.Fatalf("produce: %v", err)
	}
	t.Logf("produced %d records by %v", total, time.Since(start).Round(time.Millisecond))
	applied := time.Now().Add(applyWithin)

	var distinct int
	for {
		if err := db.QueryRowContext(ctx, "SELECT COUNT(DISTINCT order_id) FROM orders_log").Scan(&distinct); err != nil && ctx.Err() == nil {
			t.Logf("count: %v", err) // the table may not exist yet
		}
		if distinct >= total {
			break
		}
		if ctx.Err() != nil || time.Now().After(applied) || a.exited() || b.exited() {
			t.Fatalf("after %v: %d of %d records applied (instance a exited: %v, b exited: %v)", time.Since(start).Round(time.Second), distinct, total, a.exited(), b.exited())
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("every record applied by %v", time.Since(start).Round(time.Millisecond))
	a.signal(syscall.SIGTERM)
	b.signal(syscall.SIGTERM)

	rows := countRows(t, db)
	if rows != total {
		dups, err := db.QueryContext(context.Background(), "SELECT order_id, COUNT(*), "+tg.concat+" FROM orders_log GROUP BY order_id HAVING COUNT(*) > 1 LIMIT 5")
		if err != nil {
			t.Fatal(err)
		}
		defer dups.Close()
		for dups.Next() {
			var id, n int
			var at string
			if err := dups.Scan(&id, &n, &at); err != nil {
				t.Fatal(err)
			}
			t.Errorf("order %d applied %d times, at positions %s", id, n, at)
		}
		t.Fatalf("the target holds %d rows for %d records, all %d of them present: some were applied more than once", rows, total, distinct)
	}
}

// produce writes total Debezium insert records of orders 0..total-1,
// perTick every 100ms, keyed by order so they spread over partitions.
func produce(ctx context.Context, brokers []string, topic string, total, perTick int, opts ...kgo.Opt) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic)}, opts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for next := 0; next < total; {
		batch := make([]*kgo.Record, 0, perTick)
		for ; next < total && len(batch) < perTick; next++ {
			batch = append(batch, &kgo.Record{
				Key: fmt.Appendf(nil, `{"order_id":%d}`, next),
				Value: fmt.Appendf(nil, `{"before":null,"after":{"order_id":%d,"total":%d},"source":{"connector":"postgresql","schema":"public","table":"orders","txId":%d},"op":"c"}`,
					next, next%1000, next),
			})
		}
		if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			return err
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// countRows counts the rows the sink appended so far (0 before it
// created the table).
func countRows(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM orders_log").Scan(&n); err != nil {
		return 0
	}
	return n
}
