package eventexpr

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/expr-lang/expr"
)

// Redacted is what redact() and the "redact" mask put in place of a value.
const Redacted = "***"

// functions are the extra functions of LANGUAGE.md, typed so that the
// checker rejects wrong argument counts and types at load time.
var functions = []expr.Option{
	expr.Function("sha256", func(p ...any) (any, error) {
		s, err := str("sha256", p[0])
		if err != nil {
			return nil, err
		}
		return SHA256(s), nil
	}, new(func(string) string)),
	expr.Function("hmac", func(p ...any) (any, error) {
		s, err := str("hmac", p[0])
		if err != nil {
			return nil, err
		}
		k, err := str("hmac", p[1])
		if err != nil {
			return nil, err
		}
		return HMAC(s, []byte(k)), nil
	}, new(func(string, string) string)),
	expr.Function("redact", func(p ...any) (any, error) {
		return Redacted, nil
	}, new(func(any) string)),
	expr.Function("mask_email", func(p ...any) (any, error) {
		if p[0] == nil {
			return nil, nil
		}
		s, err := str("mask_email", p[0])
		if err != nil {
			return nil, err
		}
		return MaskEmail(s), nil
	}, new(func(any) any)),
}

func str(fn string, v any) (string, error) {
	switch s := v.(type) {
	case string:
		return s, nil
	case nil:
		return "", fmt.Errorf("%s: argument is nil, want a string", fn)
	default:
		return "", fmt.Errorf("%s: argument is %T, want a string", fn, v)
	}
}

// SHA256 returns the hex SHA-256 of s.
func SHA256(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// HMAC returns the hex HMAC-SHA256 of s keyed by key: the "hash" mask.
func HMAC(s string, key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

// MaskEmail keeps the first and last character of the local part and the
// domain: "benjamin@example.com" → "b******n@example.com". Without an "@"
// it masks like Partial.
func MaskEmail(s string) string {
	local, domain, ok := strings.Cut(s, "@")
	if !ok {
		return Partial(s)
	}
	return Partial(local) + "@" + domain
}

// Partial keeps the first and last character and stars the rest; strings
// of two characters or fewer become all stars. E-mail addresses keep
// their domain (see MaskEmail).
func Partial(s string) string {
	if strings.Contains(s, "@") {
		return MaskEmail(s)
	}
	r := []rune(s)
	if len(r) <= 2 {
		return strings.Repeat("*", len(r))
	}
	return string(r[0]) + strings.Repeat("*", len(r)-2) + string(r[len(r)-1])
}
