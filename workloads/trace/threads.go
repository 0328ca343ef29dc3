package trace

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"slices"

	"github.com/dmabench/dmabench/dma"
)

// MaxAhead bounds the events a Split holds for threads the engine has not
// asked for yet. A thread whose next event lies further ahead in the file
// is idle until the engine has served some of those.
const MaxAhead = 1 << 16

// ScanThreads lists the thread numbers of a trace's events, in ascending
// order, reading only the thread field of each line. Lines it cannot read
// are skipped: the Reader reports them when the trace is replayed.
func ScanThreads(r io.Reader) ([]int, error) {
	br, err := Uncompressed(r)
	if err != nil {
		return nil, err
	}
	seen := make([]bool, MaxThread+1)
	var out []int
	first := true
	for {
		b, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line too long: the Reader reports it.
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
			b = nil
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		if first {
			first = false // the header
		} else if th, ok := threadOf(b); ok && !seen[th] {
			seen[th] = true
			out = append(out, th)
		}
		if err == io.EOF {
			break
		}
	}
	slices.Sort(out)
	return out, nil
}

// threadOf reads the thread field of an event line.
func threadOf(b []byte) (int, bool) {
	if len(b) == 0 || b[0] < '0' || b[0] > '9' {
		return 0, false // comment, device, blank
	}
	_, rest, ok := bytes.Cut(b, []byte{' '})
	if !ok || len(rest) == 0 {
		return 0, false
	}
	th := 0
	for _, c := range rest {
		if c == ' ' {
			break
		}
		if c < '0' || c > '9' {
			return 0, false
		}
		if th = th*10 + int(c-'0'); th > MaxThread {
			return 0, false
		}
	}
	return th, true
}

// Split replays a trace as the driver threads that issued its events, one
// source for each (dma.Threads), so that a request sleeping on one thread
// holds back only that thread, as it did in the traced kernel. The
// threads share the trace's ids. Events keep their file lines, which
// break ties in time between threads in file order. Each thread's source
// reads ahead in the file to its next event, holding the events of other
// threads it passes, at most MaxAhead of them.
type Split struct {
	r       *Reader
	threads []*thread
	byNum   []*thread // by thread number
	held    int
	err     error
	ev      dma.Event
	done    func()
}

var _ dma.Threads = (*Split)(nil)

// NewSplit splits the trace r reads into threads nums (ScanThreads), in
// that order; done is called once r reaches its end or an error.
func NewSplit(r *Reader, nums []int, done func()) *Split {
	s := &Split{r: r, done: done}
	for _, n := range nums {
		t := &thread{s: s, num: n}
		s.threads = append(s.threads, t)
		for len(s.byNum) <= n {
			s.byNum = append(s.byNum, nil)
		}
		s.byNum[n] = t
	}
	return s
}

// Threads implements dma.Threads.
func (s *Split) Threads() []dma.Source {
	out := make([]dma.Source, len(s.threads))
	for i, t := range s.threads {
		out[i] = t
	}
	return out
}

// Cut reports whether the trace was cut (Reader.Cut), once it has been
// read to its end.
func (s *Split) Cut() bool { return s.r.Cut() }

// Next is never called: the engine runs the threads. (Reading the file
// here as well would take events from under them.)
func (s *Split) Next(*dma.Event) error { return io.EOF }

// read takes the file's next event into its thread's queue; false when
// the file has ended or failed (s.err).
func (s *Split) read() bool {
	if s.err != nil {
		return false
	}
	if err := s.r.Next(&s.ev); err != nil {
		s.fail(err)
		return false
	}
	var t *thread
	if n := s.r.Thread(); n < len(s.byNum) {
		t = s.byNum[n]
	}
	if t == nil {
		s.fail(&Error{File: s.r.name, Line: s.r.line, Field: "thread", Msg: fmt.Sprintf("thread %d was not in the trace when it was scanned", s.r.Thread())})
		return false
	}
	ev := s.ev
	if len(ev.Segs) > 0 {
		// The reader reuses its segment buffer: the thread keeps a copy.
		k := len(t.segs)
		t.segs = append(t.segs, ev.Segs...)
		ev.Segs = t.segs[k:len(t.segs):len(t.segs)]
	}
	t.q = append(t.q, ev)
	s.held++
	return true
}

// fail ends the split with err (io.EOF at the end of the file).
func (s *Split) fail(err error) {
	s.err = err
	if s.done != nil {
		s.done()
	}
}

// thread is one thread's source: its events read so far and not yet
// handed out.
type thread struct {
	s    *Split
	num  int
	q    []dma.Event
	head int
	segs []int64
}

// Next implements dma.Source: the thread's next event, reading ahead to
// it; dma.ErrIdle when MaxAhead events are held for other threads first.
func (t *thread) Next(e *dma.Event) error {
	s := t.s
	for t.head == len(t.q) {
		// Drained: what the last event pointed to is no longer in use.
		t.q, t.head, t.segs = t.q[:0], 0, t.segs[:0]
		if s.held >= MaxAhead {
			return dma.ErrIdle
		}
		if !s.read() {
			return s.err
		}
	}
	*e = t.q[t.head]
	t.head++
	s.held--
	return nil
}
