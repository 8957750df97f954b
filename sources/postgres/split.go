package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Splitting a snapshot for parallel readers. A table of at least
// splitPages pages with a primary key is cut into key ranges of about
// equal size: workers of them (so that one big table keeps every reader
// busy), more for a table past workers×rangePages pages, at most
// maxRangesPerWorker×workers. The bounds are keys sampled from the
// table (TABLESAMPLE SYSTEM, about samplePagesPerRange pages a range,
// read in the snapshot), at the quantiles: no full scan, and any key
// type the index orders. The ranges of every table then go to the
// readers, largest first, each to the reader with the fewest pages so
// far; a reader reads its ranges in table order.
const (
	splitPages          = 256     // 2 MB of 8 kB pages
	rangePages          = 1 << 17 // 1 GB
	maxRangesPerWorker  = 4
	samplePagesPerRange = 16
)

// sizedRange is a range and the pages it is estimated to hold.
type sizedRange struct {
	TableRange
	pages int64
}

// split returns the snapshot's ranges for workers readers, each reader's
// in reading order; fewer lists than workers when there are fewer
// ranges. conn is in the snapshot's transaction.
func split(ctx context.Context, conn *pgx.Conn, tables []*table, workers int) ([][]TableRange, error) {
	var all []sizedRange
	for i, t := range tables {
		rs, err := splitTable(ctx, conn, t, i, workers)
		if err != nil {
			return nil, err
		}
		all = append(all, rs...)
	}
	return assign(all, workers), nil
}

// assign deals the ranges out to at most workers readers, largest first
// to the least loaded, and keeps each reader's in the order of ranges
// (table by table, keys ascending).
func assign(ranges []sizedRange, workers int) [][]TableRange {
	n := max(1, min(workers, len(ranges)))
	order := make([]int, len(ranges))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(ranges[b].pages, ranges[a].pages) })
	mine := make([][]int, n)
	load := make([]int64, n)
	for _, i := range order {
		least := 0
		for w := range n {
			if load[w] < load[least] {
				least = w
			}
		}
		load[least] += max(ranges[i].pages, 1) // so that empty tables spread too
		mine[least] = append(mine[least], i)
	}
	out := make([][]TableRange, n)
	for w, idx := range mine {
		slices.Sort(idx)
		out[w] = make([]TableRange, 0, len(idx))
		for _, i := range idx {
			out[w] = append(out[w], ranges[i].TableRange)
		}
	}
	return out
}

// splitTable returns table i's ranges: one, the whole table, unless it
// has a primary key and splitPages pages or more.
func splitTable(ctx context.Context, conn *pgx.Conn, t *table, i, workers int) ([]sizedRange, error) {
	var pages int64
	if err := conn.QueryRow(ctx, `SELECT (pg_relation_size($1::regclass) + coalesce((SELECT sum(pg_relation_size(relid))
		FROM pg_partition_tree($1::regclass) WHERE isleaf), 0)) / current_setting('block_size')::bigint`,
		t.ident()).Scan(&pages); err != nil {
		return nil, fmt.Errorf("snapshot: size of %s: %w", t.qualified(), err)
	}
	whole := []sizedRange{{TableRange: TableRange{Table: i}, pages: pages}}
	if workers < 2 || len(t.PK) == 0 || pages < splitPages {
		return whole, nil
	}
	parts := min(workers*int((pages+int64(workers)*rangePages-1)/(int64(workers)*rangePages)), maxRangesPerWorker*workers)
	percent := min(100, 100*float64(samplePagesPerRange*parts)/float64(pages))
	keys := make([]string, len(t.PK))
	for k, c := range t.PK {
		// Named apart, or ORDER BY would sort the text.
		keys[k] = pgx.Identifier{c}.Sanitize() + "::text AS __sluice_k" + strconv.Itoa(k)
	}
	rows, err := conn.Query(ctx, "SELECT "+strings.Join(keys, ", ")+" FROM "+t.ident()+
		" TABLESAMPLE SYSTEM ($1::float8) ORDER BY "+t.keyList(), percent)
	if err != nil {
		return nil, fmt.Errorf("snapshot: sample the keys of %s: %w", t.qualified(), err)
	}
	sample, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) ([]string, error) {
		key := make([]string, len(t.PK))
		ptrs := make([]any, len(key))
		for k := range key {
			ptrs[k] = &key[k]
		}
		return key, row.Scan(ptrs...)
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot: sample the keys of %s: %w", t.qualified(), err)
	}
	var bounds [][]string
	for p := 1; p < parts && len(sample) > 0; p++ {
		b := sample[p*len(sample)/parts]
		if len(bounds) == 0 || !slices.Equal(bounds[len(bounds)-1], b) {
			bounds = append(bounds, b)
		}
	}
	if len(bounds) == 0 {
		return whole, nil
	}
	out := make([]sizedRange, 0, len(bounds)+1)
	per := pages / int64(len(bounds)+1)
	var after []string
	for _, b := range bounds {
		out = append(out, sizedRange{TableRange: TableRange{Table: i, After: after, To: b}, pages: per})
		after = b
	}
	return append(out, sizedRange{TableRange: TableRange{Table: i, After: after}, pages: per}), nil
}
