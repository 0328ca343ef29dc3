// This file merges the sources in modeled time: each source's head event
// and when it runs, the choice of the next source to serve, and how a
// source is asked for more events.

package engine

import (
	"errors"
	"fmt"
	"io"

	"github.com/dmabench/dmabench/dma"
)

type source struct {
	src dma.Source
	ws  int // workload index
	// ev is the head event: &head, or, for a dma.Batcher, evs[bi-1], or
	// &delayed, a copy of either that runs later than its time.
	ev      *dma.Event
	head    dma.Event
	delayed dma.Event
	bat     dma.Batcher
	evs     []dma.Event
	bi      int
	// epoch, for a dma.Epocher, counts the work scheduled on the source;
	// idleAt is its value when the source went idle.
	epoch  *uint64
	idleAt uint64
	done   bool
	idle   bool // no event until another thread acts
	sp     *space
	// clock is when this source's last event was served: a source whose
	// caller slept cannot run its next event before it.
	clock dma.Time
	// A parked request is retried at wakeAt, or when pool waitOn wakes.
	parked bool
	since  dma.Time
	wakeAt dma.Time
	wait   dma.Wait
	// The stretch serve is on ends before batch index stop, and before
	// an event at horizon. They live here rather than in serve's and
	// plain's locals: Go spills every local around each call to a model
	// anyway, and fewer locals in plain cost 10 instructions less per
	// event.
	stop    int
	horizon dma.Time
}

// take makes the next event of a Batcher's batch the head, if there is
// one.
func (s *source) take() bool {
	if s.bi < len(s.evs) {
		s.ev = &s.evs[s.bi]
		s.bi++
		return true
	}
	return false
}

// bad reports a head event no source may emit.
func (s *source) bad() bool { return badID(s.ev) }

// badID reports an event whose id no source may emit.
func badID(ev *dma.Event) bool { return ev.ID < 0 && ev.Kind != dma.Sync }

func badEvent(i int, ev *dma.Event) error {
	return fmt.Errorf("source %d: event %s has negative id", i, ev.Kind)
}

// key is the modeled time at which the source's head event runs.
func (s *source) key() dma.Time {
	if s.parked {
		return s.wakeAt
	}
	return max(s.ev.At, s.clock)
}

// batch serves up to n events; it returns fewer only when all sources end.
//
// The source with the earliest key runs next (see first for ties). After
// serving one, the scan for the next is skipped while that source's next
// event still comes before every other source's, which the scan found:
// nothing else moves the others' keys except a wakeup, a parked caller,
// or an idle thread given work, and each of those forces a new scan.
func (e *Engine) batch(n int64) (int64, error) {
	best := -1
	var s *source // &e.srcs[best]
	var bestKey, otherKey dma.Time
	other := -1
	for k := int64(0); k < n; {
		if best < 0 {
			other = -1
			for i := range e.srcs {
				s := &e.srcs[i]
				if s.done || s.idle {
					continue
				}
				key := s.key()
				switch {
				case best < 0 || e.first(i, key, best, bestKey):
					other, otherKey = best, bestKey
					best, bestKey = i, key
				case other < 0 || e.first(i, key, other, otherKey):
					other, otherKey = i, key
				}
			}
			if best < 0 {
				return k, nil
			}
			s = &e.srcs[best]
		}
		horizon := maxTime
		if other >= 0 {
			horizon = otherKey
		}
		served, parked := e.serve(best, s, bestKey, horizon, n-k)
		k += served
		if parked {
			best = -1
			continue // parked again: the last event not served
		}
		bestKey = s.clock
		if e.out.Err != nil || s.ev.Notify {
			if s.bat != nil {
				s.bat.Result(s.bi-1, e.out.Err)
				s.evs, s.bi = nil, 0 // the rest is void
			}
			if e.out.Err != nil && errors.Is(e.out.Err, ErrStalled) {
				s.done = true
				best = -1
				continue
			}
		}
		if e.crashed {
			return k, nil
		}
		if s.take() {
			if s.bad() {
				return k, badEvent(best, s.ev)
			}
		} else if err := e.pull(best); err != nil {
			return k, err
		}
		if e.nIdle > 0 {
			// Another thread may have scheduled work for an idle one.
			for i := range e.srcs {
				t := &e.srcs[i]
				if t.idle && (t.epoch == nil || *t.epoch != t.idleAt) {
					t.idle = false
					e.nIdle--
					e.rescan = true
					if err := e.pull(i); err != nil {
						return k, err
					}
				}
			}
		}
		if e.rescan || s.done || s.idle || s.parked {
			best = -1
			continue
		}
		// Keep the source while it is still first.
		if key := s.key(); other < 0 || e.first(best, key, other, otherKey) {
			bestKey = key
			continue
		}
		best = -1
	}
	return n, nil
}

// first reports whether source i, whose head runs at ki, goes before
// source j, whose head runs at kj: the earlier time first; at the same
// time, between threads of one trace, the earlier line of the file; else
// the lower index.
func (e *Engine) first(i int, ki dma.Time, j int, kj dma.Time) bool {
	if ki != kj {
		return ki < kj
	}
	a, b := &e.srcs[i], &e.srcs[j]
	if la, lb := a.ev.Line, b.ev.Line; la > 0 && lb > 0 && la != lb && a.sp == b.sp {
		return la < lb
	}
	return i < j
}

// pull asks source i for its next event; a source with none for now is
// marked idle, one at its end done.
func (e *Engine) pull(i int) error {
	s := &e.srcs[i]
	if s.done {
		return nil
	}
	// A Batcher's batch is used up here: batch takes the rest itself.
	var err error
	if s.bat != nil {
		if s.evs, err = s.bat.NextBatch(); err == nil {
			s.ev, s.bi = &s.evs[0], 1
		}
	} else {
		err = s.src.Next(&s.head)
	}
	if err == nil {
		if s.bad() {
			return badEvent(i, s.ev)
		}
		return nil
	}
	if err == dma.ErrIdle {
		s.idle = true
		e.nIdle++
		if s.epoch != nil {
			s.idleAt = *s.epoch
		}
		return nil
	}
	if errors.Is(err, io.EOF) {
		s.done = true
		return nil
	}
	return fmt.Errorf("source %d: %w", i, err)
}

// maxTime is a horizon no event reaches.
const maxTime = dma.Time(1<<63 - 1)
