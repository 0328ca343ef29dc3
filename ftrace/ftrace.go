// Package ftrace reads the text lines of Linux ftrace (trace, trace_pipe)
// and trace-cmd report output: "<task>-<pid> [<cpu>] <flags> <ts>: <event>:
// <fields>". Task names may hold spaces, dashes, colons and parentheses;
// the flags column may be any width or missing. A line is anchored on its
// "[cpu]" field and on the "timestamp: event:" that follows.
//
// Parse works on a []byte it does not keep; the Line it returns points into
// that slice and is valid until the caller reuses it.
package ftrace

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Line is one parsed event line.
type Line struct {
	Task  []byte
	PID   int
	CPU   int
	Flags []byte
	// TS is the timestamp in nanoseconds.
	TS    int64
	Event []byte
	// Body is everything after "event: ".
	Body []byte
}

// ErrNotEvent is returned for comment, header and blank lines.
var ErrNotEvent = errors.New("not an event line")

// Parse parses one line (without its newline).
func Parse(b []byte) (Line, error) {
	var l Line
	t := bytes.TrimSpace(b)
	if len(t) == 0 || t[0] == '#' {
		return l, ErrNotEvent
	}
	// The CPU field: the first "[digits]".
	cpuStart := -1
	for i := 0; i < len(t); i++ {
		if t[i] != '[' {
			continue
		}
		j := i + 1
		for j < len(t) && t[j] >= '0' && t[j] <= '9' {
			j++
		}
		if j > i+1 && j < len(t) && t[j] == ']' {
			cpuStart = i
			cpu, _ := strconv.Atoi(string(t[i+1 : j]))
			l.CPU = cpu
			t2 := t[j+1:]
			head := bytes.TrimSpace(t[:i])
			if err := l.taskPID(head); err != nil {
				return l, err
			}
			return l, l.rest(t2)
		}
	}
	if cpuStart < 0 {
		return l, fmt.Errorf("no [cpu] field")
	}
	return l, nil
}

func (l *Line) taskPID(head []byte) error {
	// trace-cmd with tgids prints "task-pid (tgid)": drop a trailing
	// parenthesised number.
	if n := len(head); n > 0 && head[n-1] == ')' {
		if k := bytes.LastIndexByte(head, '('); k > 0 {
			if _, err := strconv.Atoi(string(bytes.TrimSpace(head[k+1 : n-1]))); err == nil {
				head = bytes.TrimSpace(head[:k])
			}
		}
	}
	if len(head) == 0 {
		// Traced without the TASK-PID column (options/context-info off,
		// or a trace-cmd report that drops it).
		l.Task, l.PID = nil, -1
		return nil
	}
	k := bytes.LastIndexByte(head, '-')
	if k < 0 {
		return fmt.Errorf("no task-pid before the [cpu] field")
	}
	pid, err := strconv.Atoi(string(head[k+1:]))
	if err != nil {
		return fmt.Errorf("pid %q is not a number", head[k+1:])
	}
	l.Task, l.PID = head[:k], pid
	return nil
}

func (l *Line) rest(t []byte) error {
	for {
		t = bytes.TrimLeft(t, " \t")
		if len(t) == 0 {
			return fmt.Errorf("no timestamp after the [cpu] field")
		}
		sp := bytes.IndexAny(t, " \t")
		tok := t
		if sp >= 0 {
			tok = t[:sp]
		}
		if ts, ok := timestamp(tok); ok {
			l.TS = ts
			t = bytes.TrimLeft(t[len(tok):], " \t")
			colon := bytes.IndexByte(t, ':')
			if colon <= 0 {
				return fmt.Errorf("no event name after the timestamp")
			}
			l.Event = t[:colon]
			if bytes.ContainsAny(l.Event, " \t") {
				return fmt.Errorf("event name %q has spaces", l.Event)
			}
			l.Body = bytes.TrimLeft(t[colon+1:], " \t")
			return nil
		}
		if l.Flags != nil {
			return fmt.Errorf("unexpected %q between the [cpu] field and the timestamp", tok)
		}
		l.Flags = tok
		if sp < 0 {
			return fmt.Errorf("no timestamp after the [cpu] field")
		}
		t = t[sp:]
	}
}

// timestamp reads "seconds.fraction:" into nanoseconds.
func timestamp(tok []byte) (int64, bool) {
	if len(tok) < 3 || tok[len(tok)-1] != ':' {
		return 0, false
	}
	tok = tok[:len(tok)-1]
	dot := bytes.IndexByte(tok, '.')
	if dot <= 0 || dot == len(tok)-1 {
		return 0, false
	}
	sec, err := strconv.ParseInt(string(tok[:dot]), 10, 64)
	if err != nil || sec < 0 || sec > 1<<32 {
		return 0, false
	}
	frac := tok[dot+1:]
	if len(frac) > 9 {
		return 0, false
	}
	var ns int64
	for _, c := range frac {
		if c < '0' || c > '9' {
			return 0, false
		}
		ns = ns*10 + int64(c-'0')
	}
	for k := len(frac); k < 9; k++ {
		ns *= 10
	}
	return sec*1_000_000_000 + ns, true
}

// Field returns the value of "key=" in a body: the text up to the next
// space. A key that appears inside another key (node= in nodemask=) is not
// matched.
func Field(body []byte, key string) ([]byte, bool) {
	for i := 0; i+len(key) < len(body); {
		k := bytes.Index(body[i:], []byte(key))
		if k < 0 {
			return nil, false
		}
		k += i
		end := k + len(key)
		if end < len(body) && body[end] == '=' && (k == 0 || body[k-1] == ' ' || body[k-1] == '\t') {
			v := body[end+1:]
			if sp := bytes.IndexAny(v, " \t"); sp >= 0 {
				v = v[:sp]
			}
			return v, true
		}
		i = k + 1
	}
	return nil, false
}

// Int returns an integer field (decimal, or hex with 0x).
func Int(body []byte, key string) (int64, error) {
	v, ok := Field(body, key)
	if !ok {
		return 0, fmt.Errorf("no %s= field", key)
	}
	n, err := strconv.ParseInt(string(v), 0, 64)
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not a number", key, v)
	}
	return n, nil
}
