package sqltable

import (
	"strconv"
	"strings"
)

// DecimalDigits counts the significant integer digits (no leading zeros)
// and fractional digits (no trailing zeros) of a decimal number such as
// "-012.3400" or "1.5e-3"; ok is false for anything else.
func DecimalDigits(n string) (intDigits, fracDigits int, ok bool) {
	n = strings.TrimLeft(n, "+-")
	mant, exp := n, 0
	if i := strings.IndexAny(n, "eE"); i >= 0 {
		e, err := strconv.Atoi(n[i+1:])
		if err != nil || e > 1<<20 || e < -(1<<20) {
			return 0, 0, false
		}
		mant, exp = n[:i], e
	}
	ip, fp, _ := strings.Cut(mant, ".")
	if ip == "" && fp == "" {
		return 0, 0, false
	}
	for _, part := range []string{ip, fp} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return 0, 0, false
			}
		}
	}
	digits := strings.TrimLeft(ip+fp, "0")
	if strings.TrimRight(digits, "0") == "" {
		return 0, 0, true // zero
	}
	// digits is the significand without leading zeros; the point sits
	// point digits from its left end.
	point := len(ip) - (len(ip+fp) - len(digits)) + exp
	sig := strings.TrimRight(digits, "0")
	return max(point, 0), max(len(sig)-point, 0), true
}
