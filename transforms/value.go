package transforms

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
)

// normalize turns what an expression produced into a value of the kinds
// change.Row documents (expr-lang computes with int, []string and the
// like), so that sinks and formats see only those. A value no sink could
// write (a function, a channel) is an error.
func normalize(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, int64, float64, string, []byte, time.Time, change.Numeric, change.JSON:
		return v, nil
	case int:
		return int64(x), nil
	case float32:
		return float64(x), nil
	case time.Duration:
		return x.String(), nil
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out, nil
	case change.Row:
		return normalizeMap(x.Map())
	case map[string]any:
		return normalizeMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := normalize(e)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		if u > math.MaxInt64 {
			return change.Numeric(strconv.FormatUint(u, 10)), nil
		}
		return int64(u), nil
	case reflect.Float32, reflect.Float64:
		return rv.Float(), nil
	case reflect.String:
		return rv.String(), nil
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			n, err := normalize(rv.Index(i).Interface())
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	}
	return nil, fmt.Errorf("the value is a %T, which no sink can write: make the expression give a string, number, bool, list, map or nil", v)
}

func normalizeMap(m map[string]any) (any, error) {
	out := make(map[string]any, len(m))
	for k, e := range m {
		n, err := normalize(e)
		if err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, nil
}
