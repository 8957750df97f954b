// Package throttle holds a source's snapshot or a sink's writes to
// max_rows_per_second, with golang.org/x/time/rate's token bucket: a
// copy into a production database takes its share of the server and no
// more. The bucket holds a tenth of a second of rows, so a throttled copy
// never starts with a burst of a whole second.
package throttle

import (
	"context"

	"golang.org/x/time/rate"
)

// Limiter waits for room for rows. A nil *Limiter never waits.
type Limiter struct {
	bucket *rate.Limiter
	burst  int
}

// New returns a Limiter of perSecond rows a second, or nil for 0 (no
// limit).
func New(perSecond int) *Limiter {
	if perSecond <= 0 {
		return nil
	}
	burst := max(perSecond/10, 1)
	return &Limiter{bucket: rate.NewLimiter(rate.Limit(perSecond), burst), burst: burst}
}

// Wait blocks until n rows fit the rate, or ctx is done.
func (l *Limiter) Wait(ctx context.Context, n int) error {
	if l == nil {
		return nil
	}
	for n > 0 {
		k := min(n, l.burst)
		if err := l.bucket.WaitN(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}
