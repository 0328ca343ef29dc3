// This file is the fast path: plain serves the events that go through
// plainly and counts them itself.
//
// The fast path's rules. plain duplicates, for the commonest events,
// what serve, the general path, does with an Outcome and a Record call.
// It gives the same modeled results because it relies only on these, and
// a change to either path must keep them (TestFastPathMatchesSlowPath
// replays every workload, allocator and platform, and fuzzed streams,
// both ways and demands identical results):
//
//  1. Only an event that goes through plainly is taken: an alloc of a
//     free id from a live pool it fits, with no kernel size to compare; a
//     map of a free id; a free of a live allocation; an unmap of a live
//     mapping of the size and direction mapped. Anything else (misuse, a
//     pool event, a sync, a scatterlist, a failure, a sleep, a wakeup)
//     stops plain and goes to serve, with the model's answer kept in
//     pending when the model was already called.
//  2. Counting is the Tally's Count methods, which metrics.Recorder calls
//     for the same outcomes: no rule is written twice.
//  3. A free never raises what the platform holds (the conformance suite's
//     free-takes-memory rule), so CountFree does not look for a peak.
//  4. The stretch ends where serve's does: at an event with Notify, at
//     the batch's stop, at an event at or past the horizon, or at a bad
//     event, which is left untaken for batch to report.
//  5. The time of an event plain served is not written back (no one
//     reads it); an event left pending is raised to when it ran, in a
//     copy (source.delay), since serve reads it.
//  6. The head's time lives in the meter's Now while plain runs, which
//     the models only read.

package engine

import "github.com/dmabench/dmabench/dma"

// What plain leaves for serve.
const (
	plainNone    = iota
	plainEnd     // the stretch ends after the last event served
	plainNext    // s.ev, at the key returned, is not plain: serve takes it
	plainPending // s.ev's alloc or map (pending, pendingErr), free or unmap ran but did not go through plainly
)

// plain serves s's head event, at key, and the events of its batch after
// it, while each goes through plainly: an alloc of a free id from a live
// pool the request fits, with no kernel size to compare; a map of a free
// id; a free or an unmap (of the size and direction mapped) of what is
// live; any of them succeeding and waking no one. Each goes to the Tally.
// The stretch ends as serve's does. It returns how many it served, the
// head's time, and why it stopped. No one reads the time of an event
// plain served, so plain does not raise it (the event is not written at
// all); an event it leaves pending, which serve finishes, is raised in a
// copy.
func (e *Engine) plain(s *source, key dma.Time) (n int64, _ dma.Time, st int) {
	t, m := e.tally, e.plat.Meter
	// The head is ev here: s.ev, a pointer in the heap, is written back
	// only when plain stops.
	ev := s.ev
	// How many were served, and the clock, are worked out when plain
	// stops: the batch index moves once per event served.
	bi0 := s.bi
	// The head's time is kept in the meter's Now (which the models only
	// read), and the space is read through s, rather than in locals, as
	// the stretch's bounds are (see source.stop).
	m.Now = key
loop:
	for {
		// Each case passes its kind to the Tally as a constant: by
		// ev.Kind, reloaded after the calls, cost 6 to 10 instructions
		// more per event.
		switch ev.Kind {
		case dma.Alloc:
			// Indexes as ints, so that the checks here are the bounds checks.
			id, pool := int(ev.ID), int(ev.Pool)
			if uint(id) >= uint(len(s.sp.objs)) || uint(pool) >= uint(len(s.sp.pools)) {
				st = plainNext
				break loop
			}
			obj, pr := &s.sp.objs[id], &s.sp.pools[pool]
			if obj.st.live() || uint64(ev.Size) >= pr.room || ev.Kernel != 0 {
				st = plainNext
				break loop
			}
			m.Cost = 0
			blk, err := e.alloc.Alloc(pr.id, e.request(ev))
			if err != nil || m.Wake != 0 {
				e.pending, e.pendingErr = blk, err
				st = plainPending
				break loop
			}
			obj.set(blk, ev.Size, stAlloc, 0, ev.Line, ev.Pool)
			t.CountAlloc(ev.Size, ev.GFP.Atomic(), m.Cost, m)
			pr.use.Allocs++
			t.Latency.Add(int64(m.Cost))
		case dma.Free:
			obj := s.sp.in(ev.ID, stAlloc)
			if obj == nil {
				st = plainNext
				break loop
			}
			m.Cost = 0
			e.alloc.Free(obj.blk)
			obj.st = stFreed
			if m.Wake != 0 {
				st = plainPending
				break loop
			}
			t.CountFree(obj.size, m.Cost)
		case dma.Map:
			id := int(ev.ID)
			if uint(id) >= uint(len(s.sp.objs)) {
				st = plainNext
				break loop
			}
			obj := &s.sp.objs[id]
			if obj.st.live() {
				st = plainNext
				break loop
			}
			m.Cost = 0
			blk, err := e.plat.Mapper.Map(ev.Dev, ev.Size, ev.Dir, ev.GFP)
			if err != nil || m.Wake != 0 {
				e.pending, e.pendingErr = blk, err
				st = plainPending
				break loop
			}
			obj.set(blk, ev.Size, stMap, ev.Dir, ev.Line, dma.NoPool)
			t.CountMap(dma.Map, ev.Size, m.Cost, m)
		case dma.Unmap:
			obj := s.sp.in(ev.ID, stMap)
			if obj == nil || obj.size != ev.Size || obj.dir != ev.Dir {
				st = plainNext
				break loop
			}
			m.Cost = 0
			e.plat.Mapper.Unmap(obj.blk, obj.dir)
			obj.st = stFreed
			if m.Wake != 0 {
				st = plainPending
				break loop
			}
			t.CountUnmap(dma.Unmap, obj.size, m.Cost, m)
		default:
			st = plainNext
			break loop
		}
		// As advance, but a bad event is left to the checks above: each
		// case finds a negative id not plain.
		if ev.Notify || s.bi >= s.stop {
			st = plainEnd
			break
		}
		next := &s.evs[s.bi]
		nk := max(next.At, m.Now)
		if nk >= s.horizon {
			st = plainEnd
			break
		}
		m.Now, ev = nk, next
		s.bi++
	}
	if st == plainNext && s.bi > bi0 && badID(ev) {
		// A bad event ends the stretch untaken, for batch to report.
		s.bi--
		ev = &s.evs[s.bi-1]
		st = plainEnd
	}
	key = m.Now
	s.ev = ev
	if st == plainPending && ev.At != key {
		// serve, which finishes the event, reads its time.
		s.delay(key)
	}
	n = int64(s.bi - bi0)
	if st == plainEnd {
		// The head was served, at key; with plainNext or plainPending,
		// serve takes the head at key and sets the clock.
		n++
		s.clock = key
	}
	return n, key, st
}
