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
// threads it passes, at most MaxAhead of them. A thread's events are
// handed out where the Shared decoded them, a run of them at a time.
type Split struct {
	sh      *Shared
	threads []*thread
	byNum   []*thread // by thread number
	// seq and i: the file's next event no thread has taken, event i of
	// chunk seq.
	seq    int64
	i      int
	held   int
	err    error
	closed bool
}

var (
	_ dma.Threads = (*Split)(nil)
	_ dma.Closer  = (*Split)(nil)
)

// NewSplit splits the trace r reads into threads nums (ScanThreads), in
// that order, for one replay; done is called once r reaches its end or an
// error.
func NewSplit(r *Reader, nums []int, done func()) *Split {
	sh := NewShared(r, nums, done)
	s := newSplit(sh)
	sh.users = append(sh.users, s)
	return s
}

func newSplit(sh *Shared) *Split {
	s := &Split{sh: sh, seq: sh.base}
	for _, n := range sh.nums {
		t := &thread{s: s, num: n, out: noChunk}
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
func (s *Split) Cut() bool { return s.sh.cut }

// Decoder implements Decoder.
func (s *Split) Decoder() *Shared { return s.sh }

// Next is never called: the engine runs the threads. (Reading the file
// here as well would take events from under them.)
func (s *Split) Next(*dma.Event) error { return io.EOF }

// Close implements dma.Closer: the replay is over, and the Shared no
// longer keeps events for it.
func (s *Split) Close() { s.closed = true }

// low implements user: the first chunk a thread may still hand out, or
// the last batch it handed out lies in.
func (s *Split) low() int64 {
	if s.closed {
		return noChunk
	}
	low := s.seq
	for _, t := range s.threads {
		low = min(low, t.out)
		if t.h < len(t.spans) {
			low = min(low, t.spans[t.h].seq)
		}
	}
	return low
}

// owner is the thread of number th, whose event e is; nil, the split
// failed, when the scan did not find that thread.
func (s *Split) owner(th int, e *dma.Event) *thread {
	if th < len(s.byNum) && s.byNum[th] != nil {
		return s.byNum[th]
	}
	s.err = &Error{File: s.sh.r.name, Line: e.Line, Field: "thread", Msg: fmt.Sprintf("thread %d was not in the trace when it was scanned", th)}
	return nil
}

// span is a run of one thread's events: events lo to hi of chunk seq.
type span struct {
	seq    int64
	lo, hi int
}

// thread is one thread's source: the runs of its events read ahead for
// it (spans from h), and the last batch it handed out (last, in chunk
// out; noChunk when none is out).
type thread struct {
	s     *Split
	num   int
	spans []span
	h     int
	last  span
	out   int64
}

// batchMax bounds a batch: a thread's run of consecutive events in the
// file, handed to the engine at once (dma.Batcher).
const batchMax = 256

var _ dma.Batcher = (*thread)(nil)

// NextBatch implements dma.Batcher: the events read ahead for the thread,
// or, when there are none, its next run of consecutive events in the
// file (at most batchMax), reading past other threads' events to its
// first; dma.ErrIdle when MaxAhead events are held for others first.
func (t *thread) NextBatch() ([]dma.Event, error) { return t.take(batchMax) }

// take hands out up to max of the thread's next events, in place.
func (t *thread) take(max int) ([]dma.Event, error) {
	s := t.s
	t.out = noChunk
	if t.h < len(t.spans) {
		sp := &t.spans[t.h]
		n := min(sp.hi-sp.lo, max)
		t.last = span{sp.seq, sp.lo, sp.lo + n}
		if sp.lo += n; sp.lo == sp.hi {
			if t.h++; t.h == len(t.spans) {
				t.spans, t.h = t.spans[:0], 0
			}
		}
		s.held -= n
		return t.hand(), nil
	}
	for s.held < MaxAhead {
		if s.err != nil {
			return nil, s.err
		}
		c := s.sh.at(s.seq)
		if c == nil {
			s.err = s.sh.end
			continue
		}
		if s.i == len(c.evs) {
			s.seq, s.i = s.seq+1, 0
			continue
		}
		th := c.th[s.i]
		owner := s.owner(int(th), &c.evs[s.i])
		if owner == nil {
			continue
		}
		// The run of th's events from here, no further than what may be
		// held: a thread's own events count while it reads them, as the
		// events it passes do.
		end := min(len(c.evs), s.i+MaxAhead-s.held)
		j := s.i + 1
		for j < end && c.th[j] == th {
			j++
		}
		if owner == t {
			j = min(j, s.i+max)
			t.last, s.i = span{s.seq, s.i, j}, j
			return t.hand(), nil
		}
		owner.spans = append(owner.spans, span{s.seq, s.i, j})
		s.held += j - s.i
		s.i = j
	}
	return nil, dma.ErrIdle
}

// hand returns the events of t.last, which stay where they are until the
// thread's next call.
func (t *thread) hand() []dma.Event {
	t.out = t.last.seq
	c := t.s.sh.chunks[t.last.seq-t.s.sh.base]
	return c.evs[t.last.lo:t.last.hi]
}

// Result implements dma.Batcher: the events after event i of the last
// batch are handed out again.
func (t *thread) Result(i int, _ error) {
	rest := span{t.last.seq, t.last.lo + i + 1, t.last.hi}
	if rest.lo >= rest.hi {
		return
	}
	if t.h > 0 {
		t.h--
		t.spans[t.h] = rest
	} else {
		t.spans = slices.Insert(t.spans, 0, rest)
	}
	t.s.held += rest.hi - rest.lo
	t.last.hi = rest.lo
}

// Next implements dma.Source: the thread's next event, reading ahead to
// it; dma.ErrIdle when MaxAhead events are held for other threads first.
func (t *thread) Next(e *dma.Event) error {
	b, err := t.take(1)
	if err != nil {
		return err
	}
	*e = b[0]
	return nil
}
