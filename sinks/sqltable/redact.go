package sqltable

import "strings"

// redact returns err with the DSN password removed from its message.
// Driver errors may quote a DSN; they never reach a log with the secret.
// The result still unwraps to err, for errors.As on driver types.
func (s *Sink) redact(err error) error {
	if err == nil || s.tgt.Secret == "" || !strings.Contains(err.Error(), s.tgt.Secret) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), s.tgt.Secret, "***"), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
