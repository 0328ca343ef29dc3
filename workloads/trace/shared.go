package trace

import (
	"errors"
	"math"

	"github.com/dmabench/dmabench/dma"
)

// chunkLen is the events of one chunk of a Shared.
const chunkLen = 1024

// noChunk is past every chunk: a user that needs none.
const noChunk = math.MaxInt64

// chunk is a run of decoded events, in file order, with each one's thread
// and the segment lists they point to.
type chunk struct {
	evs  []dma.Event
	th   []int32
	segs []int64
}

// Shared decodes a trace once for the replays that read it, all in one
// goroutine: a cell's real and null replay, or every cell of a run that
// replays the trace, turn by turn. Each replay reads the decoded events
// in place, through a source of its own (Source); a chunk of events is
// let go, and its memory used again, once no replay needs it. The engine
// only reads the events it is handed (dma.Batcher), so replays cannot
// disturb each other, and each replays exactly what it would alone.
type Shared struct {
	r      *Reader
	done   func()
	nums   []int
	chunks []*chunk // decoded and not let go, from sequence number base
	base   int64
	spare  []*chunk
	users  []user
	end    error // what ended the file, once it has
	cut    bool
	// clock, when set, times the decoding (decodeNS): a replay's host
	// time leaves it out, since whichever replay reads a chunk first
	// decodes it.
	clock    func() int64
	decodeNS int64
}

// SetClock has the decoding timed by clock (DecodeNS).
func (sh *Shared) SetClock(clock func() int64) { sh.clock = clock }

// DecodeNS is the time the decoding has taken, by the clock SetClock
// gave (0 without one).
func (sh *Shared) DecodeNS() int64 { return sh.decodeNS }

// Decoder is implemented by the sources a Shared hands out: the Shared
// they read.
type Decoder interface{ Decoder() *Shared }

// user is a replay reading a Shared: low is the first chunk it may still
// read (noChunk once it needs none).
type user interface{ low() int64 }

// NewShared shares the trace r reads, whose threads are nums
// (ScanThreads); done is called once r reaches its end or an error.
func NewShared(r *Reader, nums []int, done func()) *Shared {
	return &Shared{r: r, done: done, nums: nums}
}

// Source returns a source for one more replay of the trace, from its
// first event: a Split of its threads, or one source when it has one
// thread. Every source must be taken before the first event is read.
func (sh *Shared) Source() dma.Source {
	if len(sh.nums) > 1 {
		s := newSplit(sh)
		sh.users = append(sh.users, s)
		return s
	}
	o := &oneThread{sh: sh, seq: sh.base}
	sh.users = append(sh.users, o)
	return o
}

var errBehind = errors.New("trace: a replay asked for events the shared decoder had let go")

// at returns chunk seq, decoding up to it; nil past the end of the file
// (sh.end says why).
func (sh *Shared) at(seq int64) *chunk {
	if seq < sh.base {
		// Cannot happen: a chunk is let go only below every user's low.
		sh.end = errBehind
		return nil
	}
	for seq-sh.base >= int64(len(sh.chunks)) {
		if sh.end != nil {
			return nil
		}
		sh.decode()
	}
	return sh.chunks[seq-sh.base]
}

// decode lets go the chunks no user needs, and decodes the next.
func (sh *Shared) decode() {
	if sh.clock != nil {
		start := sh.clock()
		defer func() { sh.decodeNS += sh.clock() - start }()
	}
	low := sh.base + int64(len(sh.chunks))
	for _, u := range sh.users {
		low = min(low, u.low())
	}
	for sh.base < low && len(sh.chunks) > 0 {
		sh.spare = append(sh.spare, sh.chunks[0])
		sh.chunks[0] = nil
		sh.chunks = sh.chunks[1:]
		sh.base++
	}
	var c *chunk
	if n := len(sh.spare); n > 0 {
		c, sh.spare = sh.spare[n-1], sh.spare[:n-1]
		c.evs, c.th, c.segs = c.evs[:0], c.th[:0], c.segs[:0]
	} else {
		c = &chunk{evs: make([]dma.Event, 0, chunkLen), th: make([]int32, 0, chunkLen)}
	}
	r := sh.r
	for len(c.evs) < chunkLen {
		n := len(c.evs)
		// Every decoder sets the whole event: the slot is not cleared.
		c.evs = c.evs[:n+1]
		e := &c.evs[n]
		var err error
		if r.bin {
			err = r.binNext(e) // Next's first step, a call less
		} else {
			err = r.Next(e)
		}
		if err != nil {
			c.evs, sh.end, sh.cut = c.evs[:n], err, r.Cut()
			if sh.done != nil {
				sh.done()
			}
			break
		}
		c.th = append(c.th, int32(r.Thread()))
		if len(e.Segs) > 0 {
			// The reader reuses its segment buffer.
			k := len(c.segs)
			c.segs = append(c.segs, e.Segs...)
			e.Segs = c.segs[k:len(c.segs):len(c.segs)]
		}
	}
	sh.chunks = append(sh.chunks, c)
}

// oneThread replays a trace of one thread: batches of its events, in
// place.
type oneThread struct {
	sh     *Shared
	seq    int64 // the next event: event i of chunk seq
	i      int
	last   span // the last batch
	ended  bool
	closed bool
}

var (
	_ dma.Batcher = (*oneThread)(nil)
	_ dma.Closer  = (*oneThread)(nil)
)

func (o *oneThread) low() int64 {
	if o.closed || o.ended {
		return noChunk
	}
	return o.seq
}

// NextBatch implements dma.Batcher: up to batchMax events read on.
func (o *oneThread) NextBatch() ([]dma.Event, error) { return o.take(batchMax) }

func (o *oneThread) take(max int) ([]dma.Event, error) {
	for {
		c := o.sh.at(o.seq)
		if c == nil {
			o.ended = true
			return nil, o.sh.end
		}
		if o.i < len(c.evs) {
			n := min(len(c.evs)-o.i, max)
			o.last = span{o.seq, o.i, o.i + n}
			o.i += n
			return c.evs[o.last.lo:o.last.hi], nil
		}
		o.seq, o.i = o.seq+1, 0
	}
}

// Result implements dma.Batcher: the events after event i of the last
// batch are handed out again.
func (o *oneThread) Result(i int, _ error) { o.seq, o.i = o.last.seq, o.last.lo+i+1 }

// Next implements dma.Source.
func (o *oneThread) Next(e *dma.Event) error {
	b, err := o.take(1)
	if err != nil {
		return err
	}
	*e = b[0]
	return nil
}

// Cut reports whether the trace was cut (Reader.Cut), once it has been
// read to its end.
func (o *oneThread) Cut() bool { return o.sh.cut }

// Decoder implements Decoder.
func (o *oneThread) Decoder() *Shared { return o.sh }

// Close implements dma.Closer: the replay is over, and the Shared no
// longer keeps events for it.
func (o *oneThread) Close() { o.closed = true }
