package main

import (
	"errors"
)

// The exit codes of noesis. Every command exits 0 on success and 1 on an
// error, cobra's usage errors included. `noesis judge` also exits with the
// tribunal's decision, so a shell can gate an action on it: only a pass is 0.
const (
	exitOK          = 0   // success; judge: the tribunal (or the person reviewing) passed the thought
	exitError       = 1   // any error: a bad flag or thought, no connection, the thought refused at publish
	exitFail        = 2   // judge: the tribunal failed it, or the person reviewing did
	exitReview      = 3   // judge: the tribunal asks a person to review it (without --wait-review)
	exitCapital     = 4   // judge: a judge found a capital offense, the veto (without --wait-review)
	exitUnavailable = 5   // judge: the deliberation missed its deadline (without --wait-review)
	exitTimeout     = 6   // judge: no verdict (or no review) within the time allowed
	exitDeadLetter  = 7   // judge: the thought was dead-lettered (seen only where the DLQ can be read)
	exitInterrupted = 130 // judge: interrupted (SIGINT or SIGTERM) while waiting, as shells count 128 + SIGINT
)

// exitStatus is an error that ends the process with a code of its own. A
// nil err prints nothing: the command has said what it had to.
type exitStatus struct {
	code int
	err  error
}

// Error is what the process says on standard error: err's text, or
// nothing.
func (e *exitStatus) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

// Unwrap returns the error said, for errors.Is and errors.As.
func (e *exitStatus) Unwrap() error { return e.err }

// exitWith returns an error that makes the process exit with code, saying err
// on standard error when err is not nil.
func exitWith(code int, err error) error { return &exitStatus{code: code, err: err} }

// exitCode is the process's exit code for a command's error: 0 for nil, the
// code of an exitStatus, else 1.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var st *exitStatus
	if errors.As(err, &st) {
		return st.code
	}
	return exitError
}
