package cmd

import (
	"fmt"
	"strings"

	"github.com/netsleuth/netsleuth/model"
)

// Exit codes.
const (
	ExitOK      = 0 // no finding failed
	ExitFailing = 1 // a finding failed or errored, or the report could not be written
	ExitUsage   = 2 // bad flags, bad kubeconfig, or the API server cannot be used
)

// exitError ends the command with code; msg, when set, is printed to stderr
// as one sentence after the command name.
type exitError struct {
	code int
	msg  string
	err  error
}

func (e *exitError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *exitError) Unwrap() error { return e.err }

// usageErrorf returns an exit-2 error whose message is one line.
func usageErrorf(format string, args ...any) *exitError {
	return &exitError{code: ExitUsage, msg: oneLine(fmt.Sprintf(format, args...))}
}

// oneLine folds whitespace, newlines included, into single spaces, and
// redacts secrets (model.Redact): it makes the sentences netsleuth prints on
// stderr, some of which quote the kubeconfig, the API server or an agent.
func oneLine(s string) string { return model.Redact(strings.Join(strings.Fields(s), " ")) }
