package registry

import "fmt"

// UsageError is bad input from the user: an unknown name, a knob out of
// range, a malformed config, a trace that cannot be opened. The command
// line exits with status 2 for it, 1 for any other error.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Usagef returns a UsageError with a formatted message.
func Usagef(format string, args ...any) error { return UsageError{fmt.Errorf(format, args...)} }
