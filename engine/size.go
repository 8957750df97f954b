package engine

import (
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
)

// batchBytes estimates the memory a batch of events holds, for
// RunOptions.QueueBytes. It counts the bytes of strings and byte slices
// and a fixed overhead per event, column and value; it is an estimate to
// bound memory, not an accounting.
func batchBytes(batch []change.Event) int64 {
	const perEvent = 256
	n := int64(len(batch)) * perEvent
	for i := range batch {
		e := &batch[i]
		n += rowSize(e.Key) + rowSize(e.Before) + rowSize(e.After)
		for _, c := range e.Changed {
			n += int64(len(c)) + 16
		}
	}
	return n
}

func rowSize(r change.Row) int64 {
	var n int64
	for k, v := range r.All() {
		n += int64(len(k)) + 32 + valueSize(v, 0)
	}
	return n
}

func valueSize(v any, depth int) int64 {
	switch v := v.(type) {
	case string:
		return int64(len(v))
	case []byte:
		return int64(len(v))
	case change.Numeric:
		return int64(len(v))
	case change.JSON:
		return int64(len(v))
	case time.Time:
		return 24
	case []any:
		n := int64(24)
		for _, x := range v {
			n += 16
			if depth < 4 {
				n += valueSize(x, depth+1)
			}
		}
		return n
	case map[string]any:
		n := int64(48)
		for k, x := range v {
			n += int64(len(k)) + 32
			if depth < 4 {
				n += valueSize(x, depth+1)
			}
		}
		return n
	}
	return 8
}
