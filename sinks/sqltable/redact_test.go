package sqltable

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	s := &Sink{tgt: Target{Secret: "hunter2"}}
	cause := errors.Join(io.ErrUnexpectedEOF, errors.New(`dial "root:hunter2@tcp(db:3306)/app": refused`))
	err := s.redact(cause)
	if strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "root:***@tcp") {
		t.Errorf("redacted message %q", err)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Error("the redacted error no longer unwraps to its cause")
	}
	// The very same error must come back, not one that wraps it: compare
	// the values, not with errors.Is.
	plain := errors.New("no secret here")
	if any(s.redact(plain)) != any(plain) {
		t.Error("an error without the secret was rewrapped")
	}
	if any((&Sink{}).redact(plain)) != any(plain) {
		t.Error("a sink without a password rewrapped an error")
	}
}
