package kafka

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
)

// recordKey is the record key of e: its key columns as a JSON object with
// sorted names, e.g. {"id":1}. cols are the block's `key` columns, looked
// up in the event's key and then its row; without them the event's own
// key (the source primary key) is used. An event with neither (a table
// without a primary key) gets a nil key, so the partitioner spreads it.
func recordKey(e *change.Event, cols []string) ([]byte, error) {
	var key map[string]any
	switch {
	case len(cols) > 0:
		key = make(map[string]any, len(cols))
		row := e.Row()
		for _, c := range cols {
			v, ok := e.Key.Lookup(c)
			if !ok {
				v, ok = row.Lookup(c)
			}
			if !ok {
				return nil, fmt.Errorf("key column %q is not in this %s event of %s: set key to columns every event of the table has", c, e.Op, e.QualifiedTable())
			}
			key[c] = jsonValue(v)
		}
	case e.Key.Len() > 0:
		key = make(map[string]any, e.Key.Len())
		for c, v := range e.Key.All() {
			key[c] = jsonValue(v)
		}
	default:
		return nil, nil
	}
	b, err := json.Marshal(key) // sorts names: one row, one key
	if err != nil {
		return nil, fmt.Errorf("key of %s: %v", e.QualifiedTable(), err)
	}
	return b, nil
}

// jsonValue maps a change.Row value to what encoding/json writes as the
// value's exact text: numerics as number literals, JSON inline, times in
// UTC with nanoseconds, like the event formats.
func jsonValue(v any) any {
	switch v := v.(type) {
	case change.Numeric:
		if json.Valid([]byte(v)) {
			return json.Number(v)
		}
		return string(v) // NaN, Infinity
	case change.JSON:
		if json.Valid([]byte(v)) {
			return json.RawMessage(v)
		}
		return string(v)
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	}
	return v
}
