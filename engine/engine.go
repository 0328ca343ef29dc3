// Package engine replays workload events against an allocator model on a
// platform model. It pulls events from one or more sources in modeled-time
// order, serves each through the platform and allocator, checks the event
// against what is live (misuse is counted, never fatal) and hands every
// outcome to a Recorder.
//
// The replay loop allocates nothing per event: live objects sit in slices
// indexed by the sources' dense ids, and the Outcome handed to the Recorder
// is reused. Host time is read once per batch of events, never per event.
package engine

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/metrics/tally"
)

// Misuse classifies an event that breaks the DMA API's rules, as the
// kernel's DMA-API debugging would report it.
type Misuse uint8

// Kinds of misuse.
const (
	MisuseNone Misuse = iota
	// MisuseUnknownFree: free or unmap of an id that was never live.
	MisuseUnknownFree
	// MisuseDoubleFree: free or unmap of an id already freed.
	MisuseDoubleFree
	// MisuseMismatch: unmap with another size or direction than the map,
	// free of a mapping / unmap of an allocation, or an alloc from a pool
	// of more bytes than its blocks hold.
	MisuseMismatch
	// MisuseIDReused: alloc or map of an id that is still live.
	MisuseIDReused
	// MisuseUnknownPool: alloc from, or destroy of, a pool never created.
	MisuseUnknownPool
	NumMisuse
)

var misuseNames = [...]string{"none", "unknown_free", "double_free", "mismatch", "id_reused", "unknown_pool"}

func (m Misuse) String() string { return misuseNames[m] }

// Outcome is what happened to one event. The engine reuses one Outcome for
// every event: a Recorder must copy what it keeps.
type Outcome struct {
	Event  *dma.Event
	Source int
	// Workload is the index of the workload (its id space) the source
	// belongs to: threads of one workload share it.
	Workload int
	// Err is nil on success, else the allocator's or platform's error.
	Err error
	// Misuse is set when the event broke the API's rules; the event was
	// then not passed to the allocator, except an unmap of another size
	// or direction than its map, which is unmapped as mapped (Bytes).
	Misuse Misuse
	// Cost is the modeled CPU time spent serving the event.
	Cost dma.Time
	// Bytes is the requested size an alloc or map made live, or that a
	// free or unmap released.
	Bytes int64
	// Block is what an alloc or map returned; for other events it is
	// stale.
	Block dma.Block
	// Meter is the platform meter after the event.
	Meter *dma.Meter
	// Wait is how long a sleeping caller was parked before this attempt
	// succeeded (or stalled), and WaitKind why; zero when it never slept.
	Wait     dma.Time
	WaitKind dma.WaitKind
}

// ErrStalled is the outcome of a request parked for longer than the
// engine's StallAfter: the caller would sleep forever. Its source stops.
var ErrStalled = errors.New("request stalled: parked past the stall limit")

// Recorder receives every outcome.
type Recorder interface {
	Record(o *Outcome)
}

// Tallier is a Recorder that lets the engine count plain events itself
// (see plain): they go to the Tally in line, as Record would have added
// them, and only the other outcomes to Record. TallyOn is given the meter
// the engine serves on.
type Tallier interface {
	Recorder
	TallyOn(m *dma.Meter) *tally.Tally
}

type state uint8

const (
	stNone state = iota
	stFreed
	// The live states, from stAlloc on.
	stAlloc
	stMap
	stSG
)

// live reports a state of an object still allocated or mapped.
func (st state) live() bool { return st >= stAlloc }

type object struct {
	blk  dma.Block
	size int64
	line int64 // trace line that made it live
	st   state
	dir  dma.Dir
	sg   int32 // scatterlist slot, for stSG
}

// set makes o a live object (field by field: see serve). Its sg is left
// as it was: only an stSG object, which is set whole, has one.
func (o *object) set(blk dma.Block, size int64, st state, dir dma.Dir, line int64) {
	o.blk, o.size, o.st, o.dir, o.line = blk, size, st, dir, line
}

type poolRef struct {
	id   dma.ID
	size int64 // block size the pool was created with
	live bool
	// room is size+1 while the pool is live, else 0: plain's one check
	// that an alloc of n bytes fits a live pool, n < room.
	room uint64
	// failed: the workload's last create of this pool failed. Its
	// allocations fail (ErrBadPool) as a driver's would after a failed
	// probe; they are not misuse.
	failed bool
}

// space holds the live objects and pools of one workload; the threads of a
// dma.Threads workload share one.
type space struct {
	objs  []object
	pools []poolRef
	// sgs holds mapped scatterlists' blocks, by slot; slots are reused.
	sgs    [][]dma.Block
	sgFree []int32
}

func (sp *space) sgSlot(n int) int32 {
	var i int32
	if k := len(sp.sgFree); k > 0 {
		i = sp.sgFree[k-1]
		sp.sgFree = sp.sgFree[:k-1]
	} else {
		sp.sgs = append(sp.sgs, nil)
		i = int32(len(sp.sgs) - 1)
	}
	if cap(sp.sgs[i]) < n {
		sp.sgs[i] = make([]dma.Block, n)
	}
	sp.sgs[i] = sp.sgs[i][:n]
	return i
}

type source struct {
	src dma.Source
	ws  int // workload index
	// ev is the head event: &head, or, for a dma.Batcher, evs[bi-1].
	ev   *dma.Event
	head dma.Event
	bat  dma.Batcher
	evs  []dma.Event
	bi   int
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

// Engine replays events. It is used by one goroutine.
type Engine struct {
	srcs    []source
	alloc   dma.Allocator
	destroy dma.PoolDestroyer
	plat    *dma.Platform
	sgm     dma.SGMapper
	sync    dma.Syncer
	rec     Recorder
	tally   *tally.Tally // the recorder's, if it is a Tallier
	// pending is the block an alloc that plain began returned, and
	// pendingErr its error, for serve to complete.
	pending    dma.Block
	pendingErr error
	req        dma.Request
	out        Outcome
	// BatchSize is the number of events between host clock reads.
	BatchSize int
	// Clock, if set, replaces the wall clock for host time: it returns
	// nanoseconds (a thread CPU clock, say). It is read once per batch.
	Clock func() int64
	// StallAfter is how long a request may stay parked before it is
	// reported as a stall.
	StallAfter dma.Time
	// Retries counts attempts of parked requests that blocked again.
	Retries   int64
	nIdle     int
	rescan    bool // another source's key moved while serving
	started   bool
	crashed   bool
	crashedAt dma.Time
}

// New returns an engine that serves srcs through alloc on plat.
func New(plat *dma.Platform, alloc dma.Allocator, rec Recorder, srcs ...dma.Source) *Engine {
	e := &Engine{alloc: alloc, plat: plat, rec: rec, BatchSize: 1 << 14, StallAfter: 60 * dma.Second}
	e.sgm, _ = plat.Mapper.(dma.SGMapper)
	e.sync, _ = plat.Mapper.(dma.Syncer)
	e.destroy, _ = alloc.(dma.PoolDestroyer)
	if t, ok := rec.(Tallier); ok {
		e.tally = t.TallyOn(plat.Meter)
	}
	for wi, s := range srcs {
		sp := &space{}
		threads := []dma.Source{s}
		if t, ok := s.(dma.Threads); ok {
			threads = t.Threads()
		}
		for _, th := range threads {
			st := source{src: th, sp: sp, ws: wi}
			st.bat, _ = th.(dma.Batcher)
			if ep, ok := th.(dma.Epocher); ok {
				st.epoch = ep.Epoch()
			}
			e.srcs = append(e.srcs, st)
		}
	}
	for i := range e.srcs {
		e.srcs[i].ev = &e.srcs[i].head
	}
	return e
}

// Leak is an object still live when every source had ended.
type Leak struct {
	Workload int    `json:"workload"`
	ID       dma.ID `json:"id"`
	Line     int64  `json:"line,omitempty"` // trace line of its allocation or map
}

// eachLive calls fn for every object still live, in workload and id
// order (threads of one workload share their objects).
func (e *Engine) eachLive(fn func(ws int, id dma.ID, o *object)) {
	seen := map[*space]bool{}
	for i := range e.srcs {
		sp := e.srcs[i].sp
		if seen[sp] {
			continue
		}
		seen[sp] = true
		for id := range sp.objs {
			if o := &sp.objs[id]; o.st.live() {
				fn(e.srcs[i].ws, dma.ID(id), o)
			}
		}
	}
}

// Leaks lists up to max objects still live, in workload and id order.
func (e *Engine) Leaks(max int) []Leak {
	var out []Leak
	e.eachLive(func(ws int, id dma.ID, o *object) {
		if len(out) < max {
			out = append(out, Leak{Workload: ws, ID: id, Line: o.line})
		}
	})
	return out
}

// Live returns the number of objects still live.
func (e *Engine) Live() int64 {
	var n int64
	e.eachLive(func(int, dma.ID, *object) { n++ })
	return n
}

// Ended reports whether every source has ended.
func (e *Engine) Ended() bool {
	for i := range e.srcs {
		if !e.srcs[i].done {
			return false
		}
	}
	return true
}

// Result summarises a replay.
type Result struct {
	// Events is the number of events served.
	Events int64
	// HostNS is host time spent in the replay loop, summed over batches.
	HostNS int64
	// Crashed is set when a map failed on a platform whose policy makes
	// that fatal (the old pci_ API); CrashedAt is the modeled time.
	Crashed   bool
	CrashedAt dma.Time
}

// Run serves events until every source ends or limit events were served
// (limit <= 0: no limit). Calling Run again goes on where it stopped. It returns an error only when a source fails (a
// malformed trace, say); allocation failures and misuse are outcomes.
func (e *Engine) Run(limit int64) (Result, error) {
	var res Result
	if !e.started {
		e.started = true
		for i := range e.srcs {
			if err := e.pull(i); err != nil {
				return res, err
			}
		}
	}
	for !e.crashed {
		n := int64(e.BatchSize)
		if limit > 0 && limit-res.Events < n {
			n = limit - res.Events
		}
		if n <= 0 {
			break
		}
		var served int64
		var err error
		if e.Clock != nil {
			start := e.Clock()
			served, err = e.batch(n)
			res.HostNS += e.Clock() - start
		} else {
			start := time.Now()
			served, err = e.batch(n)
			res.HostNS += time.Since(start).Nanoseconds()
		}
		res.Events += served
		if err != nil {
			return res, err
		}
		if served < n {
			break
		}
	}
	res.Crashed, res.CrashedAt = e.crashed, e.crashedAt
	return res, nil
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

// crash stops the replay at modeled time at: a map failed where that is
// fatal. It asks for a rescan, which is what serve checks after an event.
func (e *Engine) crash(at dma.Time) {
	e.crashed, e.crashedAt, e.rescan = true, at, true
}

// wake lets requests parked on a pool retry now.
func (e *Engine) wake(pool dma.ID, now dma.Time) {
	for i := range e.srcs {
		s := &e.srcs[i]
		if s.parked && s.wait.On == pool && s.wakeAt > now {
			s.wakeAt = now
			e.rescan = true
		}
	}
}

// park puts a request to sleep as the allocator asked, or reports a stall
// when it has slept too long. It returns true when an outcome is recorded.
func (e *Engine) park(s *source, now dma.Time) bool {
	if !s.parked {
		s.parked = true
		s.since = now
	} else {
		e.Retries++
	}
	// The allocator set the request's Wait; it is cleared here for the
	// next request, which request does not clear.
	s.wait, e.req.Wait = e.req.Wait, dma.Wait{}
	s.wakeAt = now + max(s.wait.Timeout, 1)
	if s.wakeAt-s.since <= e.StallAfter {
		return false
	}
	s.parked = false
	e.out.Err = ErrStalled
	e.out.Wait = now - s.since
	e.out.WaitKind = s.wait.Kind
	return true
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

// grow extends a table indexed by id to hold id, zeroed, with one copy of
// what it held however far id jumps.
func grow[T any](s []T, id dma.ID) []T {
	if n := int(id) + 1 - len(s); n > 0 {
		s = slices.Grow(s, n)
		s = s[:len(s)+n]
		clear(s[len(s)-n:])
	}
	return s
}

// maxTime is a horizon no event reaches.
const maxTime = dma.Time(1<<63 - 1)

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
			e.mapped(ev, o, &sp.objs[ev.ID], e.pending, e.pendingErr)
		case st == plainPending:
			o.Bytes = sp.objs[ev.ID].size // a free or unmap that woke a sleeper
		default:
			start(ev, m, key)
			switch ev.Kind {
			case dma.Alloc:
				if !e.serveAlloc(s, ev, o) {
					return n, true
				}
			case dma.Free:
				e.serveFree(s, ev, o)
			case dma.Map:
				e.serveMap(s, ev, o)
			case dma.Unmap:
				e.serveUnmap(s, ev, o)
			default:
				e.serveOther(s, ev, o)
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
// all); an event it leaves pending, which serve finishes, is raised.
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
		// Each case counts its kind in ByKind by a constant index: by
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
			obj.set(blk, ev.Size, stAlloc, 0, ev.Line)
			t.Alloc(ev.Size, ev.GFP.Atomic())
			t.Latency.Add(int64(m.Cost))
			t.ByKind[dma.Alloc]++
			t.Served(m.Cost, m)
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
			t.Free(obj.size)
			t.ByKind[dma.Free]++
			// A free gives memory back, so what the platform holds has
			// not peaked (the conformance suite checks every model).
			t.OpCost += m.Cost
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
			obj.set(blk, ev.Size, stMap, ev.Dir, ev.Line)
			t.Map(ev.Size)
			t.ByKind[dma.Map]++
			t.Served(m.Cost, m)
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
			t.Unmap(obj.size)
			t.ByKind[dma.Unmap]++
			t.Served(m.Cost, m)
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
	if st == plainPending && ev.At != key {
		// serve, which finishes the event, reads its time.
		ev.At = key
	}
	s.ev = ev
	n = int64(s.bi - bi0)
	if st == plainEnd {
		// The head was served, at key; with plainNext or plainPending,
		// serve takes the head at key and sets the clock.
		n++
		s.clock = key
	}
	return n, key, st
}

// start begins serving ev at key on meter m. The event's time is raised
// to when it runs; an event on time is not written, so a stream replayed
// from memory stays clean in the cache.
func start(ev *dma.Event, m *dma.Meter, key dma.Time) {
	if ev.At != key {
		ev.At = key
	}
	m.Cost = 0
	m.Now = key
}

// serveFree serves a free.
func (e *Engine) serveFree(s *source, ev *dma.Event, o *Outcome) {
	obj := s.sp.in(ev.ID, stAlloc)
	if obj == nil {
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
	blk, err := e.alloc.Alloc(pool, e.request(ev))
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
	if s.parked {
		s.parked = false
		o.Wait = ev.At - s.since
		o.WaitKind = s.wait.Kind
	}
	o.Err = err
	o.Block = blk
	if err == nil {
		obj.set(blk, ev.Size, stAlloc, 0, ev.Line)
		o.Bytes = ev.Size
	}
	return true
}

func (e *Engine) serveMap(s *source, ev *dma.Event, o *Outcome) {
	obj := claim(s, ev.ID)
	if obj == nil {
		o.Misuse = MisuseIDReused
		return
	}
	blk, err := e.plat.Mapper.Map(ev.Dev, ev.Size, ev.Dir, ev.GFP)
	e.mapped(ev, o, obj, blk, err)
}

// mapped completes a map event with what the platform returned.
func (e *Engine) mapped(ev *dma.Event, o *Outcome, obj *object, blk dma.Block, err error) {
	o.Err = err
	o.Block = blk
	if err != nil && e.plat.MapFailure == dma.MapBug && errors.Is(err, dma.ErrMapFailed) {
		e.crash(ev.At)
	}
	if err == nil {
		obj.set(blk, ev.Size, stMap, ev.Dir, ev.Line)
		o.Bytes = ev.Size
	}
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

// serveOther serves the rarer kinds, kept out of serve's frame.
func (e *Engine) serveOther(s *source, ev *dma.Event, o *Outcome) {
	switch ev.Kind {
	case dma.PoolCreate:
		s.sp.pools = grow(s.sp.pools, ev.ID)
		if s.sp.pools[ev.ID].live {
			o.Misuse = MisuseIDReused
			break
		}
		id, err := e.alloc.CreatePool(dma.PoolSpec{Name: ev.Name, Dev: ev.Dev, Size: ev.Size, Align: ev.Align, Boundary: ev.Boundary})
		o.Err = err
		s.sp.pools[ev.ID] = poolRef{id: id, size: ev.Size, live: err == nil, failed: err != nil}
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
		if e.destroy != nil {
			o.Err = e.destroy.DestroyPool(s.sp.pools[ev.ID].id)
		}
		s.sp.pools[ev.ID].live, s.sp.pools[ev.ID].room = false, 0
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
		o.Err = err
		if err != nil {
			s.sp.sgFree = append(s.sp.sgFree, slot)
			if e.plat.MapFailure == dma.MapBug && errors.Is(err, dma.ErrMapFailed) {
				e.crash(ev.At)
			}
			break
		}
		var total int64
		for _, n := range ev.Segs {
			total += n
		}
		*obj = object{size: total, st: stSG, dir: ev.Dir, sg: slot, blk: dma.Block{Size: int64(len(ev.Segs))}, line: ev.Line}
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

// claim returns the slot for a new object id, or nil when the id is
// still live (MisuseIDReused).
func claim(s *source, id dma.ID) *object {
	sp := s.sp
	if uint(id) >= uint(len(sp.objs)) {
		sp.objs = grow(sp.objs, id)
	}
	if obj := &sp.objs[id]; !obj.st.live() {
		return obj
	}
	return nil
}

func (e *Engine) lookup(s *source, id dma.ID, want state) (*object, Misuse) {
	if obj := s.sp.in(id, want); obj != nil {
		return obj, MisuseNone
	}
	return nil, s.sp.misuse(id)
}

// in returns object id if it is in state want, else nil.
func (sp *space) in(id dma.ID, want state) *object {
	if i := int(id); uint(i) < uint(len(sp.objs)) {
		if obj := &sp.objs[i]; obj.st == want {
			return obj
		}
	}
	return nil
}

// misuse says what a free, unmap or sync of id is when id is not live in
// the state it asks for. It stays out of line, off lookup's path.
//
//go:noinline
func (sp *space) misuse(id dma.ID) Misuse {
	if uint(id) >= uint(len(sp.objs)) {
		return MisuseUnknownFree
	}
	switch sp.objs[id].st {
	case stNone:
		return MisuseUnknownFree
	case stFreed:
		return MisuseDoubleFree
	}
	return MisuseMismatch
}
