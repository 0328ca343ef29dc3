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
// order: from its threads record when it has one, else reading only the
// thread field of each line (each record of a binary trace). Lines it
// cannot read are skipped: the Reader reports them when the trace is
// replayed.
func ScanThreads(r io.Reader) ([]int, error) { return ScanThreadsUpTo(r, 0) }

// ScanThreadsUpTo is ScanThreads reading no more than the events a replay
// of limit events can reach (limit, plus what a Split may read ahead for
// other threads); limit 0 reads them all.
func ScanThreadsUpTo(r io.Reader, limit int64) ([]int, error) {
	if limit > 0 {
		limit += MaxAhead + 2*batchMax
	}
	br, err := Uncompressed(r)
	if err != nil {
		return nil, err
	}
	if head, _ := br.Peek(len(BinHeader) + 1); string(head) == BinHeader+"\n" {
		return scanBinary(br, limit)
	}
	events := int64(0)
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
		} else if list, ok := bytes.CutPrefix(bytes.TrimRight(b, "\r\n"), []byte("threads ")); ok && len(out) == 0 {
			tr := &Reader{name: "scan"}
			if tr.threads(string(list)) == nil {
				return tr.DeclaredThreads(), nil
			}
		} else if th, ok := threadOf(b); ok {
			if !seen[th] {
				seen[th] = true
				out = append(out, th)
			}
			if events++; limit > 0 && events >= limit {
				break
			}
		}
		if err == io.EOF {
			break
		}
	}
	slices.Sort(out)
	return out, nil
}

// scanBinary is ScanThreads for a binary trace: its threads record, or
// each event's thread.
func scanBinary(br *bufio.Reader, limit int64) ([]int, error) {
	r := &Reader{name: "scan", br: br, gflags: map[string]dma.GFP{}}
	if err := r.CheckHeader(); err != nil {
		return nil, err
	}
	seen := make([]bool, MaxThread+1)
	var out []int
	var e dma.Event
	for n := int64(0); r.Next(&e) == nil && (limit == 0 || n < limit); n++ {
		if d := r.DeclaredThreads(); d != nil {
			return d, nil
		}
		if th := r.Thread(); !seen[th] {
			seen[th] = true
			out = append(out, th)
		}
	}
	if d := r.DeclaredThreads(); d != nil {
		return d, nil
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
	last    *thread // whose event the file had last
	err     error
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
	if len(s.threads) > 0 {
		s.last = s.threads[0]
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

// read takes the file's next event: straight into e when it is want's
// (whose queue is empty), else into its thread's queue; ok is false when
// the file has ended or failed (s.err).
func (s *Split) read(want *thread, e *dma.Event) (direct, ok bool) {
	if s.err != nil {
		return false, false
	}
	// Decoded straight into e, the engine's own buffer: most often it is
	// want's, and otherwise e is not yet in use.
	if err := s.r.Next(e); err != nil {
		s.fail(err)
		return false, false
	}
	t := s.owner()
	if t == nil {
		return false, false
	}
	ev := e
	if t != want {
		t.q = append(t.q, *e)
		ev = &t.q[len(t.q)-1]
		s.held++
	}
	t.keepSegs(ev)
	return t == want, true
}

// readQueued reads the file's next event straight onto the end of a
// queue: the queue of the thread whose event the file had last, as a
// thread's events come in runs (a copy of an event is a good part of a
// file replay's time), moved to its own thread's queue when the guess
// was wrong. ok is false when the file has ended or failed (s.err);
// owner is the thread whose event it was.
func (s *Split) readQueued() (owner *thread, ok bool) {
	if s.err != nil {
		return nil, false
	}
	g := s.last
	n := len(g.q)
	if n == cap(g.q) {
		g.q = slices.Grow(g.q, batchMax)
	}
	// Every decoder sets the whole event, so the slot's old contents do
	// not matter; the slot is past any batch handed out.
	g.q = g.q[:n+1]
	e := &g.q[n]
	var err error
	if s.r.bin {
		err = s.r.binNext(e) // Next's first step, a call less
	} else {
		err = s.r.Next(e)
	}
	if err != nil {
		g.q = g.q[:n]
		s.fail(err)
		return nil, false
	}
	t := s.owner()
	if t == nil {
		g.q = g.q[:n]
		return nil, false
	}
	if t != g {
		t.q = append(t.q, *e)
		g.q = g.q[:n]
		e = &t.q[len(t.q)-1]
		s.last = t
	}
	s.held++
	t.keepSegs(e)
	return t, true
}

// owner returns the thread of the event just read; nil, the split
// failed, when the scan did not find that thread.
func (s *Split) owner() *thread {
	if n := s.r.Thread(); n < len(s.byNum) && s.byNum[n] != nil {
		return s.byNum[n]
	}
	s.fail(&Error{File: s.r.name, Line: s.r.line, Field: "thread", Msg: fmt.Sprintf("thread %d was not in the trace when it was scanned", s.r.Thread())})
	return nil
}

// keepSegs gives e, an event of t's queue or the engine's buffer, its own
// copy of its segment lengths: the reader reuses its buffer.
func (t *thread) keepSegs(e *dma.Event) {
	if len(e.Segs) > 0 {
		k := len(t.segs)
		t.segs = append(t.segs, e.Segs...)
		e.Segs = t.segs[k:len(t.segs):len(t.segs)]
	}
}

// fail ends the split with err (io.EOF at the end of the file).
func (s *Split) fail(err error) {
	s.err = err
	if s.done != nil {
		s.done()
	}
}

// thread is one thread's source: its events read so far and not yet
// handed out (from head; base: where the last batch began).
type thread struct {
	s          *Split
	num        int
	q          []dma.Event
	head, base int
	segs       []int64
}

// batchMax bounds a batch: a thread's run of consecutive events in the
// file, handed to the engine at once (dma.Batcher).
const batchMax = 256

var _ dma.Batcher = (*thread)(nil)

// NextBatch implements dma.Batcher: the events read ahead for the thread,
// or, when there are none, its next run of consecutive events in the
// file (at most batchMax), reading past other threads' events to its
// first; dma.ErrIdle when MaxAhead events are held for others first.
func (t *thread) NextBatch() ([]dma.Event, error) {
	s := t.s
	t.compact()
	if t.head == len(t.q) {
		for len(t.q) < batchMax && s.held < MaxAhead {
			owner, ok := s.readQueued()
			if !ok || owner != t && len(t.q) > 0 {
				break // the file's end, or the thread's run of events
			}
		}
		if len(t.q) == 0 {
			if s.err != nil {
				return nil, s.err
			}
			return nil, dma.ErrIdle
		}
	}
	t.base, t.head = t.head, len(t.q)
	s.held -= t.head - t.base
	return t.q[t.base:], nil
}

// compact empties a drained queue, and moves the events of a queue that
// other threads keep filling (so never drained) to its front: at once
// when they are few, else once half of the queue is handed out. A queue
// left to grow would walk through memory no longer in the cache (and
// without end). The engine holds none of the events handed out before
// (see dma.Batcher).
func (t *thread) compact() {
	if t.head == len(t.q) {
		t.q, t.head, t.segs = t.q[:0], 0, t.segs[:0]
		return
	}
	if t.head == 0 || len(t.q)-t.head > 64 && (t.head < 1024 || t.head < len(t.q)/2) {
		return
	}
	rest := t.q[t.head:]
	// The segments of the events kept move to the front of segs too: each
	// event's lie at or past where they go (events and their segments
	// are queued in the same order), so none is overwritten unread.
	k := 0
	for i := range rest {
		if n := len(rest[i].Segs); n > 0 {
			copy(t.segs[k:k+n], rest[i].Segs)
			rest[i].Segs = t.segs[k : k+n : k+n]
			k += n
		}
	}
	t.q, t.head, t.segs = t.q[:copy(t.q, rest)], 0, t.segs[:k]
}

// Result implements dma.Batcher: the events after event i of the last
// batch are handed out again.
func (t *thread) Result(i int, _ error) {
	n := t.head - (t.base + i + 1)
	t.head -= n
	t.s.held += n
}

// Next implements dma.Source: the thread's next event, reading ahead to
// it; dma.ErrIdle when MaxAhead events are held for other threads first.
func (t *thread) Next(e *dma.Event) error {
	s := t.s
	t.compact()
	for t.head == len(t.q) {
		// Drained: what the last event pointed to is no longer in use.
		t.compact()
		if s.held >= MaxAhead {
			return dma.ErrIdle
		}
		direct, ok := s.read(t, e)
		if !ok {
			return s.err
		}
		if direct {
			return nil
		}
	}
	*e = t.q[t.head]
	t.head++
	s.held--
	return nil
}
