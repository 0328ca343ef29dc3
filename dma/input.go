package dma

import (
	"bufio"
	"fmt"
	"io"
)

// InputError is a problem in a file a user gave (a capture, a pools or
// slabinfo snapshot): the file, the line (from 1) and, where there is
// one, the field. The command line exits 2 for it.
type InputError struct {
	File  string
	Line  int
	Field string
	Err   error
}

func (e *InputError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s:%d: %s: %v", e.File, e.Line, e.Field, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

func (e *InputError) Unwrap() error { return e.Err }

// Inputf returns an *InputError for file:line with a formatted message.
func Inputf(file string, line int, field, format string, args ...any) error {
	return &InputError{File: file, Line: line, Field: field, Err: fmt.Errorf(format, args...)}
}

// ScanLines calls fn for each line of r with its number, from 1; fn's
// error stops it. A line past 1 MiB is an *InputError naming it.
func ScanLines(file string, r io.Reader, fn func(n int, line []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		if err := fn(n, sc.Bytes()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return &InputError{File: file, Line: n + 1, Err: err}
	}
	return nil
}
