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
	"time"

	"github.com/dmabench/dmabench/dma"
)

// Engine replays events. It is used by one goroutine.
type Engine struct {
	srcs    []source
	alloc   dma.Allocator
	destroy dma.PoolDestroyer
	plat    *dma.Platform
	sgm     dma.SGMapper
	sync    dma.Syncer
	rec     Recorder
	tally   *Tally // the recorder's, if it is a Tallier
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

// Sources returns how many sources the engine runs: its threads, as a
// recording numbers them.
func (e *Engine) Sources() int { return len(e.srcs) }

// Leaks lists up to max objects still live, in workload and id order.
func (e *Engine) Leaks(max int) []dma.Leak {
	var out []dma.Leak
	e.eachLive(func(ws int, id dma.ID, o *object) {
		if len(out) < max {
			out = append(out, dma.Leak{Workload: ws, ID: id, Line: o.line})
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

// Pools returns what each workload's callers did with each pool it
// created, in workload and pool order (PoolUse.Workload is the index of
// the source given to New).
func (e *Engine) Pools() []PoolUse {
	var out []PoolUse
	seen := map[*space]bool{}
	for i := range e.srcs {
		sp := e.srcs[i].sp
		if seen[sp] {
			continue
		}
		seen[sp] = true
		for _, pr := range sp.pools {
			if pr.use.Name != "" || pr.live || pr.failed || pr.destroyed {
				out = append(out, pr.use)
			}
		}
	}
	return out
}
