// This file serves one event through the allocator and the platform (the
// general path every event can take), records its outcome, and goes on
// along the source's batch while nothing needs batch's checks.

package engine

import (
	"errors"
	"fmt"

	"github.com/dmabench/dmabench/dma"
)

// serve serves source si's head event at key and records its outcome.
// Then, while each event goes through unremarked, it serves the next
// events of the source's batch that still run before horizon, at most
// limit events in all: nothing else can have changed, since a served event
// parks no one, and only an outcome, a wakeup, a crash or an idle
// thread's new work would ask for batch's checks. It returns how many it
// served; parked reports that the caller of the event after those was
// put to sleep, nothing recorded. s.ev is the last event served (or
// parked), s.clock its time.
//
// Plain events, with a Tallier, are served by plain; serve takes every
// other event, and one plain began that did not go through plainly.
func (e *Engine) serve(si int, s *source, key, horizon dma.Time, limit int64) (n int64, parked bool) {
	m := e.plat.Meter
	o := &e.out
	// Field by field: a composite literal of a large struct is built on
	// the stack and copied, several times the cost per event. Block is
	// left as it was: it is set for allocs only.
	o.Source, o.Workload, o.Meter = si, s.ws, m
	m.CPU = si
	sp := s.sp
	// A wakeup or a crash sets rescan, a failure Err, and the stretch
	// ends at the event that set them, so they need clearing only here,
	// as do Wait and WaitKind, which only a parked caller's retry, the
	// first event, sets. No event here moves nIdle.
	e.rescan = false
	o.Err, o.Wait, o.WaitKind = nil, 0, 0
	if e.nIdle != 0 || s.parked {
		limit = 1
	}
	// The stretch ends before batch event stop: limit events served, or
	// the batch used up (at once for a source without batches).
	s.stop, s.horizon = min(len(s.evs), s.bi+int(limit)-1), horizon
	fast := e.tally != nil && !s.parked
	for {
		st := plainNone
		// Alloc, Free, Map and Unmap, the kinds plain takes, are
		// consecutive.
		if k := s.ev.Kind; fast && k >= dma.Alloc && k <= dma.Unmap {
			var k int64
			k, key, st = e.plain(s, key)
			n += k
			if st == plainEnd {
				return n, false
			}
		}
		ev := s.ev
		e.begin(ev)
		switch {
		case st == plainPending && ev.Kind == dma.Alloc:
			if !e.allocated(s, ev, o, &sp.objs[ev.ID], e.pending, e.pendingErr) {
				return n, true
			}
		case st == plainPending && ev.Kind == dma.Map:
			if !e.mapped(s, ev, o, &sp.objs[ev.ID], e.pending, e.pendingErr) {
				return n, true
			}
		case st == plainPending:
			o.Bytes = sp.objs[ev.ID].size // a free or unmap that woke a sleeper
		default:
			if ev.At != key {
				ev = s.delay(key)
				o.Event = ev
			}
			m.Cost = 0
			m.Now = key
			switch ev.Kind {
			case dma.Alloc:
				if !e.serveAlloc(s, ev, o) {
					return n, true
				}
			case dma.Free:
				e.serveFree(s, ev, o)
			case dma.Map:
				if !e.serveMap(s, ev, o) {
					return n, true
				}
			case dma.Unmap:
				e.serveUnmap(s, ev, o)
			default:
				if !e.serveOther(s, ev, o) {
					return n, true
				}
			}
		}
		o.Cost = m.Cost
		if m.Wake != 0 {
			e.wake(m.Wake-1, ev.At)
			m.Wake = 0
		}
		e.rec.Record(o)
		n++
		s.clock = key
		// A failure, a wakeup or a crash ends the stretch.
		if o.Err != nil || e.rescan {
			return n, false
		}
		var ok bool
		if key, ok = s.advance(key); !ok {
			return n, false
		}
	}
}

// advance makes the next event of s's batch the head, and returns its
// time, if the stretch goes on: the head served (at key) asked for no
// notice, the stretch has not reached batch index s.stop, and the next
// event is good and runs before s.horizon.
func (s *source) advance(key dma.Time) (dma.Time, bool) {
	if s.ev.Notify || s.bi >= s.stop {
		return key, false
	}
	next := &s.evs[s.bi]
	if badID(next) {
		return key, false
	}
	if key = max(next.At, key); key >= s.horizon {
		return key, false
	}
	s.ev, s.bi = next, s.bi+1 // take, its bound already checked
	return key, true
}

// crash stops the replay at modeled time at: a map failed where that is
// fatal. It asks for a rescan, which is what serve checks after an event.
func (e *Engine) crash(at dma.Time) {
	e.crashed, e.crashedAt, e.rescan = true, at, true
}

// delay makes s's head event run at key, later than its time: as a copy
// in s's own slot, since the engine never writes a source's events
// (several replays may read the same ones, see dma.Batcher). The copy is
// the head until the source moves on.
func (s *source) delay(key dma.Time) *dma.Event {
	if s.ev != &s.delayed {
		s.delayed = *s.ev
		s.ev = &s.delayed
	}
	s.delayed.At = key
	return s.ev
}

// serveFree serves a free.
func (e *Engine) serveFree(s *source, ev *dma.Event, o *Outcome) {
	obj := s.sp.in(ev.ID, stAlloc)
	if obj == nil {
		if orphan := s.sp.in(ev.ID, stOrphan); orphan != nil {
			// Its pool was destroyed with it: the model leaked it.
			orphan.st = stFreed
			o.Misuse = MisuseFreeAfterDestroy
			return
		}
		o.Misuse = s.sp.misuse(ev.ID)
		return
	}
	e.alloc.Free(obj.blk)
	obj.st = stFreed
	o.Bytes = obj.size
}

// begin starts the outcome of an event that does not go to the Tally.
func (e *Engine) begin(ev *dma.Event) {
	o := &e.out
	o.Event = ev
	o.Misuse, o.Bytes = MisuseNone, 0
}

// serveAlloc serves an alloc; it returns false when its caller was put
// to sleep.
func (e *Engine) serveAlloc(s *source, ev *dma.Event, o *Outcome) bool {
	obj := claim(s, ev.ID)
	if obj == nil {
		o.Misuse = MisuseIDReused
		return true
	}
	pool := dma.NoPool
	if ev.Pool != dma.NoPool {
		if uint(ev.Pool) >= uint(len(s.sp.pools)) {
			o.Misuse = MisuseUnknownPool
			return true
		}
		pr := &s.sp.pools[ev.Pool]
		if pr.failed {
			o.Err = dma.ErrBadPool
			return true
		}
		if !pr.live {
			o.Misuse = MisuseUnknownPool
			if pr.destroyed {
				o.Misuse = MisuseAllocAfterDestroy
			}
			return true
		}
		if ev.Size > pr.size {
			// dma_pool_alloc takes no size: more than the pool's blocks
			// hold is a driver that outgrew its pool.
			o.Misuse = MisuseMismatch
			return true
		}
		pool = pr.id
	}
	r := e.request(ev)
	r.Class = 0 // read back only here, where kernel sizes are compared
	blk, err := e.alloc.Alloc(pool, r)
	return e.allocated(s, ev, o, obj, blk, err)
}

// request fills the engine's request for alloc event ev (served at the
// meter's Now). Its Wait is zero: only an allocator that returns
// ErrWouldBlock sets it, and park clears it.
func (e *Engine) request(ev *dma.Event) *dma.Request {
	r := &e.req
	r.Size, r.Align, r.GFP, r.Dev = ev.Size, ev.Align, ev.GFP, ev.Dev
	return r
}

// allocated completes an alloc event with what the allocator returned;
// it returns false when the caller was put to sleep.
func (e *Engine) allocated(s *source, ev *dma.Event, o *Outcome, obj *object, blk dma.Block, err error) bool {
	if err == dma.ErrWouldBlock {
		return e.park(s, ev.At)
	}
	var use *PoolUse
	if uint(ev.Pool) < uint(len(s.sp.pools)) {
		use = &s.sp.pools[ev.Pool].use
	}
	if e.unpark(s, ev, o) && use != nil {
		use.Waits++
		use.WaitNS += o.Wait
	}
	if err != nil && e.fatal(ev, err) {
		e.crash(ev.At)
	}
	o.Err = err
	o.Block, o.Class = blk, e.req.Class
	if err == nil && ev.Kernel == dma.KernelFailed {
		// The traced kernel's caller got NULL and never had the block:
		// it goes back at once, and holds nothing live.
		e.alloc.Free(blk)
		if use != nil {
			use.Allocs++
		}
		return true
	}
	if err == nil {
		obj.set(blk, ev.Size, stAlloc, 0, ev.Line, ev.Pool)
		o.Bytes = ev.Size
		if use != nil {
			use.Allocs++
		}
	} else if use != nil {
		use.Failures++
		if ev.GFP.Atomic() {
			use.AtomicFailures++
		}
	}
	return true
}

// fatal reports whether a failure stops the machine: a map failed where
// the driver's answer is BUG(), or the OOM killer found nothing to kill
// (a panic).
func (e *Engine) fatal(ev *dma.Event, err error) bool {
	return e.plat.Meter.Panicked || e.plat.Bug(ev.Dev) && errors.Is(err, dma.ErrMapFailed)
}

// unpark ends the sleep of a parked source whose event was served at
// last, with or without success; it reports whether it had slept.
func (e *Engine) unpark(s *source, ev *dma.Event, o *Outcome) bool {
	if !s.parked {
		return false
	}
	s.parked = false
	o.Wait = ev.At - s.since
	o.WaitKind = s.wait.Kind
	return true
}

// serveMap serves a map; it returns false when its caller was put to
// sleep (its data buffer's allocation loops in the page allocator).
func (e *Engine) serveMap(s *source, ev *dma.Event, o *Outcome) bool {
	obj := claim(s, ev.ID)
	if obj == nil {
		o.Misuse = MisuseIDReused
		return true
	}
	blk, err := e.plat.Mapper.Map(ev.Dev, ev.Size, ev.Dir, ev.GFP)
	return e.mapped(s, ev, o, obj, blk, err)
}

// mapped completes a map event with what the platform returned; it
// returns false when the caller was put to sleep.
func (e *Engine) mapped(s *source, ev *dma.Event, o *Outcome, obj *object, blk dma.Block, err error) bool {
	if err == dma.ErrWouldBlock {
		return e.park(s, ev.At)
	}
	e.unpark(s, ev, o)
	o.Err = err
	o.Block = blk
	if err != nil && e.fatal(ev, err) {
		e.crash(ev.At)
	}
	if err == nil {
		obj.set(blk, ev.Size, stMap, ev.Dir, ev.Line, dma.NoPool)
		o.Bytes = ev.Size
	}
	return true
}

func (e *Engine) serveUnmap(s *source, ev *dma.Event, o *Outcome) {
	obj, mis := e.lookup(s, ev.ID, stMap)
	if mis != MisuseNone {
		o.Misuse = mis
		return
	}
	if obj.size != ev.Size || obj.dir != ev.Dir {
		// Counted, and unmapped as mapped, as DMA-API debugging
		// reports and lets the driver go on.
		o.Misuse = MisuseMismatch
	}
	e.plat.Mapper.Unmap(obj.blk, obj.dir)
	obj.st = stFreed
	o.Bytes = obj.size
}

// serveOther serves the rarer kinds, kept out of serve's frame; it
// returns false when the caller was put to sleep (a scatterlist's data
// buffers loop in the page allocator).
func (e *Engine) serveOther(s *source, ev *dma.Event, o *Outcome) bool {
	switch ev.Kind {
	case dma.PoolCreate:
		s.sp.pools = grow(s.sp.pools, ev.ID)
		if s.sp.pools[ev.ID].live {
			o.Misuse = MisuseIDReused
			break
		}
		id, err := e.alloc.CreatePool(dma.PoolSpec{Name: ev.Name, Dev: ev.Dev, Size: ev.Size, Align: ev.Align, Boundary: ev.Boundary})
		o.Err = err
		s.sp.pools[ev.ID] = poolRef{id: id, size: ev.Size, live: err == nil, failed: err != nil,
			use: PoolUse{Workload: s.ws, ID: id, Name: ev.Name, Size: ev.Size, CreateFailed: err != nil}}
		if err == nil && ev.Size >= 0 {
			s.sp.pools[ev.ID].room = uint64(ev.Size) + 1
		}
	case dma.PoolDestroy:
		if int(ev.ID) < len(s.sp.pools) && s.sp.pools[ev.ID].failed {
			// A trace's kernel created the pool; the model could not.
			s.sp.pools[ev.ID].failed = false
			break
		}
		if int(ev.ID) >= len(s.sp.pools) || !s.sp.pools[ev.ID].live {
			o.Misuse = MisuseUnknownPool
			break
		}
		// The engine owns the rule that a pool's blocks die with it: blocks
		// still allocated become orphans, whose frees never reach the
		// model. The destroy itself is served, since the kernel serves it
		// (dma_pool_destroy complains that the pool is busy and leaks its
		// pages; kmem_cache_destroy keeps a cache with objects).
		if s.sp.orphan(ev.ID) > 0 {
			o.Misuse = MisuseDestroyWithLive
		}
		if e.destroy != nil {
			o.Err = e.destroy.DestroyPool(s.sp.pools[ev.ID].id)
		}
		pr := &s.sp.pools[ev.ID]
		pr.live, pr.room, pr.destroyed, pr.use.Destroyed = false, 0, true, true
	case dma.MapSG:
		obj := claim(s, ev.ID)
		if obj == nil {
			o.Misuse = MisuseIDReused
			break
		}
		if len(ev.Segs) == 0 {
			o.Err = fmt.Errorf("%w: map_sg with no segments", dma.ErrInvalid)
			break
		}
		slot := s.sp.sgSlot(len(ev.Segs))
		err := e.mapSG(ev, s.sp.sgs[slot])
		if err == dma.ErrWouldBlock {
			s.sp.sgFree = append(s.sp.sgFree, slot)
			return e.park(s, ev.At)
		}
		e.unpark(s, ev, o)
		o.Err = err
		if err != nil {
			s.sp.sgFree = append(s.sp.sgFree, slot)
			if e.fatal(ev, err) {
				e.crash(ev.At)
			}
			break
		}
		var total int64
		for _, n := range ev.Segs {
			total += n
		}
		*obj = object{size: total, st: stSG, dir: ev.Dir, sg: slot, blk: dma.Block{Size: int64(len(ev.Segs))}, line: ev.Line, pool: -1}
		o.Bytes = total
	case dma.UnmapSG:
		obj, mis := e.lookup(s, ev.ID, stSG)
		if mis != MisuseNone {
			o.Misuse = mis
			break
		}
		if int64(len(ev.Segs)) != obj.blk.Size || obj.dir != ev.Dir {
			o.Misuse = MisuseMismatch
		}
		blocks := s.sp.sgs[obj.sg]
		if e.sgm != nil {
			e.sgm.UnmapSG(blocks, obj.dir)
		} else {
			for _, b := range blocks {
				e.plat.Mapper.Unmap(b, obj.dir)
			}
		}
		s.sp.sgFree = append(s.sp.sgFree, obj.sg)
		obj.st = stFreed
		o.Bytes = obj.size
	case dma.Sync:
		// dma_sync_* of a live mapping: cache maintenance (and a copy,
		// if it bounced) on platforms that need it, nothing elsewhere.
		obj, mis := e.lookup(s, ev.ID, stMap)
		if mis != MisuseNone {
			o.Misuse = mis
			break
		}
		if e.sync != nil {
			e.sync.Sync(obj.blk, ev.Dir)
		}
	default:
		o.Err = fmt.Errorf("%w: event kind %s is not supported yet", dma.ErrInvalid, ev.Kind)
	}
	return true
}

// mapSG maps a scatterlist through the platform, segment by segment when
// it cannot map one whole; a failure unmaps what was mapped.
func (e *Engine) mapSG(ev *dma.Event, out []dma.Block) error {
	m := e.plat.Meter
	m.SGSegments += int64(len(ev.Segs))
	if e.sgm != nil {
		n, err := e.sgm.MapSG(ev.Dev, ev.Segs, ev.Dir, ev.GFP, out)
		if err == nil {
			m.SGEntries += int64(n)
		} else {
			m.SGSegments -= int64(len(ev.Segs))
		}
		return err
	}
	for i, n := range ev.Segs {
		b, err := e.plat.Mapper.Map(ev.Dev, n, ev.Dir, ev.GFP)
		if err != nil {
			for _, done := range out[:i] {
				e.plat.Mapper.Unmap(done, ev.Dir)
			}
			m.SGSegments -= int64(len(ev.Segs))
			return err
		}
		out[i] = b
	}
	m.SGEntries += int64(len(ev.Segs))
	return nil
}
