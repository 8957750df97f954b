package postgres

import (
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
)

// TestSnapshotHoldsMaxRowsPerSecond is issue 18's acceptance 4: a
// 50,000-row snapshot with max_rows_per_second = 5000 takes about 10 s.
// The rate is measured and logged; the bound is loose (8 s to 20 s): the
// bucket makes the copy no faster than the limit, a loaded machine may
// make it slower.
func TestSnapshotHoldsMaxRowsPerSecond(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE big (id int PRIMARY KEY); INSERT INTO big SELECT generate_series(1, 50000)`)
	start := time.Now()
	p := d.open(dsl.PostgresSource{Tables: []string{"public.big"}, MaxRowsPerSecond: 5000}, nil, newState())
	defer p.Close()
	got := readUntil(t, p, countRows(50000))
	took := time.Since(start)
	t.Logf("50,000 snapshot rows at max_rows_per_second = 5000: %v, %.0f rows/s", took.Round(10*time.Millisecond), 50000/took.Seconds())
	if len(rows(got)) < 50000 || took < 8*time.Second || took > 20*time.Second {
		t.Fatalf("%d rows in %v, want 50,000 in about 10 s", len(rows(got)), took)
	}
}
