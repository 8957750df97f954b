package transforms

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"strconv"
	"time"
	"unsafe"

	"github.com/sluice-cdc/sluice/dsl/eventexpr"
	"github.com/sluice-cdc/sluice/engine/change"
)

// maskKind is one of the `mask` kinds of the pipeline language.
type maskKind uint8

const (
	maskHash    maskKind = iota + 1 // HMAC-SHA256, hex, keyed by the pipeline's mask_key
	maskRedact                      // "***"
	maskPartial                     // first and last character (and an e-mail's domain)
	maskNull                        // NULL
)

var maskKinds = map[string]maskKind{"hash": maskHash, "redact": maskRedact, "partial": maskPartial, "null": maskNull}

// mask is one entry of `mask`.
type mask struct {
	column string
	kind   maskKind
}

// apply masks a non-nil value. hash and partial work on the value's text
// (see text) and always give a string, so a masked number becomes text.
func (k maskKind) apply(h *hasher, v any) any {
	switch k {
	case maskHash:
		return h.masked(text(v))
	case maskRedact:
		return eventexpr.Redacted
	case maskPartial:
		return eventexpr.Partial(text(v))
	default:
		return nil
	}
}

// hasher computes the "hash" mask, reusing one HMAC state (whose keyed
// pads are computed once) and its buffers across values.
type hasher struct {
	mac hash.Hash
	in  []byte
	sum []byte
	// text holds the hex of the hashes made so far; the masked strings
	// point into it (see hmac)
	text []byte
	// the last value hashed and its mask: an update's Before and After
	// mostly hold the same value, which is then hashed once.
	lastIn  string
	lastOut any
}

// masked returns the hash of s as a column value, remembering the last.
func (h *hasher) masked(s string) any {
	if h.lastOut != nil && s == h.lastIn {
		return h.lastOut
	}
	h.lastIn, h.lastOut = s, h.hmac(s)
	return h.lastOut
}

// hmac returns the hex HMAC-SHA256 of s: the same as eventexpr.HMAC with
// the transform's key, so that hashed values join with hmac() in
// expressions.
func (h *hasher) hmac(s string) string {
	h.mac.Reset()
	h.in = append(h.in[:0], s...)
	h.mac.Write(h.in)
	h.sum = h.mac.Sum(h.sum[:0])
	n := hex.EncodedLen(len(h.sum))
	if cap(h.text)-len(h.text) < n {
		h.text = make([]byte, 0, max(textSlab, n))
	}
	start := len(h.text)
	h.text = h.text[:start+n]
	encodeHex(h.text[start:], h.sum)
	// The bytes are never written again: h.text only grows past them,
	// and a full slab is replaced, not reused.
	return unsafe.String(&h.text[start], n)
}

// encodeHex writes the lowercase hex of b into dst, which has room for
// it, as hex.Encode does but two digits per table read: about three
// times as fast on a hash.
func encodeHex(dst, b []byte) {
	_ = dst[2*len(b)-1]
	for i, c := range b {
		p := hexPairs[c]
		dst[2*i], dst[2*i+1] = p[0], p[1]
	}
}

// hexPairs holds the two hex digits of each byte.
var hexPairs = func() (t [256][2]byte) {
	const digits = "0123456789abcdef"
	for i := range t {
		t[i] = [2]byte{digits[i>>4], digits[i&15]}
	}
	return t
}()

// textSlab is how many bytes of hashes a hasher allocates at once: one
// allocation for many values instead of one per value.
const textSlab = 16 << 10

// text is the canonical text of a column value, what hash and partial
// mask: numbers as written in SQL, times in RFC 3339 UTC, bytes as is,
// arrays and objects as JSON.
func text(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case change.Numeric:
		return string(x)
	case change.JSON:
		return string(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	if b, err := json.Marshal(v); err == nil {
		return string(b)
	}
	return fmt.Sprint(v)
}
