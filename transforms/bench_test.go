package transforms

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/dsl/eventexpr"
	"github.com/sluice-cdc/sluice/engine/change"
)

// usersBatch is a batch of user inserts like the users table of
// LANGUAGE.md; one in eight has an @example.com address (dropped by the
// `clean` transform's where). The rows share their Columns, as the rows
// of one table do when a source decodes them.
func usersBatch(n int) []change.Event {
	cols := change.NewColumns("id", "first_name", "email", "phone", "ssn", "note", "password", "total")
	keyCols := change.NewColumns("id")
	in := make([]change.Event, n)
	for i := range in {
		domain := "corp.io"
		if i%8 == 0 {
			domain = "example.com"
		}
		after := change.MakeRow(cols, []any{int64(i), "Ben", fmt.Sprintf("user%d@%s", i, domain),
			"+44 20 7946 0958", "078-05-1120", "vip", "hunter2", int64(i % 100)})
		in[i] = change.Event{Op: change.Insert, Schema: "public", Table: "users", Key: change.MakeRow(keyCols, []any{int64(i)}),
			After: after, Changed: cols.Names(), Position: pos(uint64(i + 1)), Boundary: true}
	}
	return in
}

// benchApply applies tc to batches of events from one goroutine and
// reports events/s (wall time) and events per CPU-second of the process
// (GC included), which is the per-core figure on a busy machine.
func benchApply(b *testing.B, tc *dsl.Transform) {
	tr := newTransform(b, tc)
	in := usersBatch(512)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	events := 0
	for events < b.N {
		out, failed := tr.Apply(in)
		if len(failed) > 0 || len(out) != len(in) {
			b.Fatalf("out %d, failed %v", len(out), failed)
		}
		events += len(in)
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(events)/cpu.Seconds(), "events/cpu-s")
	}
}

// BenchmarkClean measures the `clean` transform of LANGUAGE.md.
func BenchmarkClean(b *testing.B) {
	benchApply(b, &dsl.Transform{
		Tables:  []string{"public.users"},
		Where:   where(b, "op != 'delete' && row.email endsWith '@example.com' == false"),
		Set:     []dsl.SetColumn{set(b, "email_domain", "split(after.email, '@')[1]")},
		Mask:    []dsl.MaskColumn{{Column: "email", Kind: "hash"}, {Column: "phone", Kind: "partial"}, {Column: "ssn", Kind: "redact"}, {Column: "note", Kind: "null"}},
		Exclude: []string{"password"},
		Rename:  []dsl.RenameColumn{{From: "email_domain", To: "domain"}},
	})
}

// BenchmarkWhereMaskExclude measures the common chain of a filter, a
// masked column and a dropped column (target: 2,000,000 events/s per
// core), once per mask kind: hash costs an HMAC-SHA256 per event.
func BenchmarkWhereMaskExclude(b *testing.B) {
	for _, kind := range []string{"hash", "redact"} {
		b.Run(kind, func(b *testing.B) {
			benchApply(b, &dsl.Transform{
				Where:   where(b, "op in ['insert', 'update'] && after.total >= 0"),
				Mask:    []dsl.MaskColumn{{Column: "email", Kind: kind}},
				Exclude: []string{"password"},
			})
		})
	}
}

// BenchmarkBareHMAC is the floor of the hash mask: the hex HMAC-SHA256 of
// the benchmark batch's emails with one reused keyed HMAC and the mask's
// hex encoder, and nothing of the transform around it. The chains'
// events/cpu-s read against it.
func BenchmarkBareHMAC(b *testing.B) {
	in := usersBatch(512)
	emails := make([]string, len(in))
	for i, e := range in {
		emails[i] = e.After.Get("email").(string)
	}
	mac := hmac.New(sha256.New, []byte(testKey))
	var buf, sum []byte
	text := make([]byte, 2*sha256.Size)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	events := 0
	for events < b.N {
		for _, s := range emails {
			mac.Reset()
			buf = append(buf[:0], s...)
			mac.Write(buf)
			sum = mac.Sum(sum[:0])
			encodeHex(text, sum)
		}
		events += len(emails)
	}
	if string(text) != eventexpr.HMAC(emails[len(emails)-1], []byte(testKey)) {
		b.Fatalf("hash %s differs from eventexpr.HMAC", text)
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(events)/cpu.Seconds(), "events/cpu-s")
	}
}
