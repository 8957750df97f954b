package throttle

import (
	"context"
	"testing"
	"time"
)

// TestWaitHoldsTheRate: 3,000 rows at 10,000 a second take at least
// 0.2 s (the bucket's first tenth of a second, 1,000 rows, is free); a
// nil Limiter
// does not wait. (Only the lower bound is asserted: a loaded machine can
// be slower, never faster than the bucket.)
func TestWaitHoldsTheRate(t *testing.T) {
	l := New(10_000)
	start := time.Now()
	for i := 0; i < 30; i++ {
		if err := l.Wait(context.Background(), 100); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took < 190*time.Millisecond {
		t.Errorf("3,000 rows at 10,000/s took %v, want at least 0.19 s", took)
	}
	var none *Limiter
	if err := none.Wait(context.Background(), 1<<30); err != nil || New(0) != nil {
		t.Errorf("no limit: %v", err)
	}
}
