// Package matrix expands a run into cells — one (scenario, allocator,
// platform, seed) each — and runs them on a pool of workers. Each cell is
// replayed twice in the same goroutine: against the null allocator, to
// measure what the harness costs, and against the real models. Results come
// back in cell order, so the output is the same at any parallelism.
package matrix

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	gcmetrics "runtime/metrics"
	"slices"
	"sync"

	"github.com/dmabench/dmabench/cells"
	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/engine"
	"github.com/dmabench/dmabench/metrics"
	"github.com/dmabench/dmabench/workloads/trace"
)

// Cell names one replay (cells.Cell).
type Cell = cells.Cell

// Result is one cell's outcome (cells.Result).
type Result = cells.Result

// TracePrefix names a trace file as a workload: trace:FILE (cells.TracePrefix).
const TracePrefix = cells.TracePrefix

// Builder wires concrete models for a cell. It is called from several
// goroutines at once and must return fresh, unshared values each time.
type Builder interface {
	// Machine builds the cell's platform and the allocator on it.
	Machine(c Cell) (*dma.Platform, dma.Allocator, error)
	// Sources builds the cell's workload sources, seeded by c.Seed.
	Sources(c Cell) ([]dma.Source, error)
}

// Options controls a run.
type Options struct {
	Events int64 // events per cell
	Jobs   int   // workers; <= 0 means one per CPU
	// Done, if set, is called after each cell finishes (from the worker).
	Done func(i int, r *Result)
	// Stop, when closed, stops the run: no cell starts after it, and a
	// running cell stops at its next batch, with ErrStopped.
	Stop <-chan struct{}
	// Progress, if set, is given the events of each batch a cell's real
	// replay serves (from the worker).
	Progress func(events int64)
}

// ErrStopped is the error of a cell that Options.Stop stopped or kept
// from starting.
var ErrStopped = errors.New("stopped before it finished")

// Sharer is a Builder whose cells may share the work of their sources:
// the cells of one share key (a trace file) read one decoding of it,
// taking turns on one thread.
type Sharer interface {
	// ShareKey names what c's sources can share with other cells'; ""
	// when nothing.
	ShareKey(c Cell) string
	// SharedSources builds, for each of cells (of one share key), the
	// sources of its real and of its null replay, all reading one
	// decoder; they are used on one goroutine.
	SharedSources(cells []Cell) (real, null [][]dma.Source, err error)
}

// Turn is how many batch pairs a cell of a group replays before the next
// cell takes its turn: enough that the cell's models stay warm in the
// cache for most of its pairs, few enough that the decoded events a group
// holds stay few (about Turn × Batch events a cell).
const Turn = 32

// Run runs every cell and returns results in cell order.
func Run(cells []Cell, b Builder, opt Options) []Result {
	jobs := opt.Jobs
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	jobs = min(jobs, max(len(cells), 1))
	// Fewer collections, fewer batch pairs a collection spoils (see
	// runCell); the cells' garbage is small.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	out := make([]Result, len(cells))
	finished := func(i int) {
		if opt.Done != nil && out[i].Err == nil {
			opt.Done(i, &out[i])
		}
	}
	next := make(chan []int)
	var wg sync.WaitGroup
	for w := 0; w < jobs; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for unit := range next {
				if stopped(opt.Stop) {
					for _, i := range unit {
						out[i] = Result{Cell: cells[i], Err: ErrStopped}
					}
					continue
				}
				if len(unit) == 1 {
					out[unit[0]] = runCell(cells[unit[0]], b, opt.Events, opt.Stop, opt.Progress, w)
					finished(unit[0])
					continue
				}
				runGroup(unit, cells, b.(Sharer), b, opt, out, finished, w)
			}
		}()
	}
	for _, unit := range plan(cells, b, jobs) {
		next <- unit
	}
	close(next)
	wg.Wait()
	return out
}

// GroupMax bounds the cells of a group: its cells finish together, at
// its end, so a run stopped part way keeps the groups already done.
const GroupMax = 8

// plan divides the cells into units of work, each run by one worker: a
// cell alone, or the cells that share their sources' work (Sharer), in
// groups of at most GroupMax, and in at least jobs groups where there are
// enough cells, so that every worker can take one.
func plan(cells []Cell, b Builder, jobs int) [][]int {
	sh, ok := b.(Sharer)
	if !ok {
		units := make([][]int, len(cells))
		for i := range cells {
			units[i] = []int{i}
		}
		return units
	}
	var units [][]int
	byKey := map[string]int{} // a key's unit in units, while it gathers
	for i, c := range cells {
		key := sh.ShareKey(c)
		if key == "" {
			units = append(units, []int{i})
			continue
		}
		if u, ok := byKey[key]; ok {
			units[u] = append(units[u], i)
			continue
		}
		byKey[key] = len(units)
		units = append(units, []int{i})
	}
	var out [][]int
	for _, u := range units {
		parts := max(min(jobs, len(u)), (len(u)+GroupMax-1)/GroupMax)
		for p := range parts {
			out = append(out, u[p*len(u)/parts:(p+1)*len(u)/parts])
		}
	}
	return out
}

// runGroup runs cells unit, which share their sources' work, on one
// thread, each replaying Turn batch pairs in turn; each result is
// finished as its cell ends.
func runGroup(unit []int, cells []Cell, sh Sharer, b Builder, opt Options, out []Result, finished func(int), worker int) {
	cs := make([]Cell, len(unit))
	for k, i := range unit {
		cs[k] = cells[i]
	}
	cleanHeap()
	real, null, err := sh.SharedSources(cs)
	if err != nil {
		for _, i := range unit {
			out[i] = Result{Cell: cells[i], Err: err}
		}
		return
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer pin(worker)()
	runs := make([]*cellRun, len(unit))
	active := 0
	for k, i := range unit {
		r, res, ok := startCell(cs[k], b, opt.Events, real[k], null[k])
		if !ok {
			out[i] = res
			finished(i)
			continue
		}
		runs[k] = r
		active++
	}
	for active > 0 {
		for k, r := range runs {
			if r == nil {
				continue
			}
			for range Turn {
				if stopped(opt.Stop) {
					for k, r := range runs {
						if r != nil {
							out[unit[k]] = r.stop()
						}
					}
					return
				}
				if r.pair(opt.Progress) {
					out[unit[k]] = r.finish()
					finished(unit[k])
					runs[k] = nil
					active--
					break
				}
			}
		}
	}
}

// stopped reports whether stop is closed.
func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// Batch is how many events RunCell replays at a time before switching
// between the real and the null replay: each pair of batches is one
// sample of the model's host cost, so a cell of 100,000 events gives 97.
const Batch = 1 << 10

// FragEvery is how often, in events of the real replay, RunCell samples
// the page allocator's fragmentation for unusable_index_max (and at the
// end of the cell).
const FragEvery = 1 << 14

// RunCell replays one cell against the real models and, interleaved batch
// by batch in the same goroutine, against the null allocator over the same
// workload. The null replay measures what the harness itself costs; since
// both replays alternate, both see the same machine (other cells, other
// processes), and subtracting one from the other is fair.
func RunCell(c Cell, b Builder, events int64) Result { return runCell(c, b, events, nil, nil, 0) }

// runCell is RunCell, stopped between batches when stop is closed, on
// the CPU of worker (pin).
func runCell(c Cell, b Builder, events int64, stop <-chan struct{}, progress func(int64), worker int) Result {
	cleanHeap()
	srcs, nullSrcs, err := sourcesTwice(b, c)
	if err != nil {
		return Result{Cell: c, Err: err}
	}
	// Host time is the CPU time of the thread that runs the cell, read
	// around each batch: the goroutine stays on one thread, and the
	// thread on one CPU.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer pin(worker)()
	r, res, ok := startCell(c, b, events, srcs, nullSrcs)
	if !ok {
		return res
	}
	for {
		if stopped(stop) {
			return r.stop()
		}
		if r.pair(progress) {
			return r.finish()
		}
	}
}

// cleanHeap collects the garbage of the cells before, so that a cell's
// machine and replays are laid out in memory alike whatever ran before
// it. Without it, consecutive cells took turns between two layouts whose
// host costs differed by up to 5× (poolbench on dmapool: 1.3 and 6.2 ns
// an operation, cell after cell); with it, 12 runs of a cell in one
// process fall within 5% of each other.
func cleanHeap() { runtime.GC() }

// sourcesTwice builds a cell's sources for its real and its null replay
// apart (Builder.Sources twice).
func sourcesTwice(b Builder, c Cell) (real, null []dma.Source, err error) {
	if null, err = b.Sources(c); err != nil {
		return nil, nil, err
	}
	if real, err = b.Sources(c); err != nil {
		CloseSources(null)
		return nil, nil, err
	}
	return real, null, nil
}

// cellRun is a cell being replayed: its real and null replays, and what
// has been measured of them so far.
type cellRun struct {
	c           Cell
	res         Result
	events      int64
	plat        *dma.Platform
	alloc       dma.Allocator
	rec         *metrics.Recorder
	real, null  replay
	gc          []gcmetrics.Sample
	pairs       []metrics.Pair
	crashed     bool
	crashedAt   dma.Time
	unusableMax float64
	// decoders are the trace decoders the cell's sources read, timed
	// apart: whichever replay first reads a chunk of a trace decodes it,
	// and that is left out of both replays' host time.
	decoders []*trace.Shared
}

// startCell builds cell c's machine and replays over srcs and nullSrcs;
// ok is false, with the cell's final result, when it cannot run (its
// sources are then let go).
func startCell(c Cell, b Builder, events int64, srcs, nullSrcs []dma.Source) (r *cellRun, res Result, ok bool) {
	plat, alloc, err := b.Machine(c)
	if err != nil {
		CloseSources(srcs)
		CloseSources(nullSrcs)
		res = Result{Cell: c}
		if errors.Is(err, dma.ErrUnsupported) {
			res.Refused = err.Error()
		} else {
			res.Err = err
		}
		return nil, res, false
	}
	r = &cellRun{c: c, res: Result{Cell: c}, events: events, plat: plat, alloc: alloc, rec: &metrics.Recorder{},
		gc: []gcmetrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}}
	nullAlloc, nullPlat := engine.NewNull()
	r.real = replay{e: engine.New(plat, alloc, r.rec, srcs...), srcs: srcs}
	r.null = replay{e: engine.New(nullPlat, nullAlloc, &metrics.Recorder{}, nullSrcs...), srcs: nullSrcs}
	r.real.e.Clock, r.null.e.Clock = threadCPU, threadCPU
	for _, src := range append(slices.Clone(srcs), nullSrcs...) {
		if d, ok := src.(trace.Decoder); ok && !slices.Contains(r.decoders, d.Decoder()) {
			d.Decoder().SetClock(threadCPU)
			r.decoders = append(r.decoders, d.Decoder())
		}
	}
	return r, Result{}, true
}

// decodeNS is the host time the cell's trace decoders have taken so far.
func (r *cellRun) decodeNS() int64 {
	var ns int64
	for _, d := range r.decoders {
		ns += d.DecodeNS()
	}
	return ns
}

// release lets go of what the cell holds past its replay: the allocator's
// memory outside Go, the sources' share of a trace.
func (r *cellRun) release() {
	if c, ok := r.alloc.(dma.Closer); ok {
		c.Close()
	}
	CloseSources(r.real.srcs)
	CloseSources(r.null.srcs)
}

// stop ends the cell unfinished.
func (r *cellRun) stop() Result {
	r.release()
	return Result{Cell: r.c, Err: ErrStopped}
}

// replay is one of a cell's two replays: the models' or the null
// allocator's, with the host time and events it has taken so far.
type replay struct {
	e          *engine.Engine
	srcs       []dma.Source
	ns, events int64
	done       bool
}

// pair replays one batch of the real replay and one of the null replay,
// on the calling thread; done reports that the cell is over (finish, or
// r.res.Err set). The two take turns going first: whatever the first
// one pays for the second (reading a trace's decoded events into the
// cache, say) falls on each alike.
func (r *cellRun) pair(progress func(int64)) (done bool) {
	var pair metrics.Pair
	// A pair during which the garbage collector ran (its assists and
	// write barriers slow whichever replay they fall in) is marked, and
	// left out of the estimate.
	gcmetrics.Read(r.gc)
	cycles := r.gc[0].Value.Uint64()
	order := [2]*replay{&r.real, &r.null}
	if len(r.pairs)%2 == 1 {
		order[0], order[1] = order[1], order[0]
	}
	for _, rp := range order {
		if rp.done {
			continue
		}
		res, ok := r.batch(rp)
		if !ok {
			return true
		}
		if rp == &r.null {
			pair.NullNS, pair.NullEvents = res.HostNS, res.Events
			continue
		}
		pair.NS, pair.Events = res.HostNS, res.Events
		if progress != nil {
			progress(res.Events)
		}
		r.crashed, r.crashedAt = res.Crashed, res.CrashedAt
		if r.plat.Frag != nil && (rp.events%FragEvery == 0 || rp.done) {
			r.unusableMax = max(r.unusableMax, r.plat.Frag().Unusable[dma.CostlyOrder])
		}
	}
	gcmetrics.Read(r.gc)
	pair.GC = r.gc[0].Value.Uint64() != cycles
	r.pairs = append(r.pairs, pair)
	return r.real.done && r.null.done
}

// batch replays a batch of rp, at most Batch of the events left, with
// the decoding of a trace left out of its host time; false on an error
// (the cell's). A replay that ends, or crashes, lets go of its sources.
func (r *cellRun) batch(rp *replay) (engine.Result, bool) {
	n := min(Batch, r.events-rp.events)
	decoded := r.decodeNS()
	res, err := rp.e.Run(n)
	if err != nil {
		r.res.Err = err
		return res, false
	}
	res.HostNS -= r.decodeNS() - decoded
	rp.ns += res.HostNS
	rp.events += res.Events
	rp.done = res.Events < n || rp.events >= r.events || res.Crashed
	if rp.done {
		CloseSources(rp.srcs)
	}
	return res, true
}

// finish returns the cell's result, once pair has said it is over.
func (r *cellRun) finish() Result {
	defer r.release()
	res, rec, alloc, plat, srcs := r.res, r.rec, r.alloc, r.plat, r.real.srcs
	if res.Err != nil {
		return res
	}
	res.Metrics = rec.Summary(metrics.Host{NS: r.real.ns, Events: r.real.events, NullNS: r.null.ns, NullEvents: r.null.events, Pairs: r.pairs})
	if sr, ok := alloc.(dma.StatsReporter); ok {
		res.Metrics["pages_held_idle"] = float64(sr.Stats().IdlePages)
	}
	for _, m := range []any{alloc, plat.Mapper} {
		if rp, ok := m.(dma.Reporter); ok {
			rp.Report(func(k string, v float64) { res.Metrics[k] = v })
		}
	}
	live := r.real.e.Live()
	res.Metrics["live_at_end"] = float64(live)
	res.Metrics["leaks"] = 0
	if r.real.e.Ended() && !cut(srcs) {
		// A workload that ended by itself left these objects behind.
		res.Metrics["leaks"] = float64(live)
		res.Leaks = r.real.e.Leaks(100)
	}
	res.Misuse = rec.MisuseList
	rec.Platform(res.Metrics)
	names := make([]string, len(srcs))
	for i, s := range srcs {
		names[i] = fmt.Sprintf("workload %d", i)
		if n, ok := s.(dma.Named); ok {
			names[i] = n.Name()
		}
		w := cells.WorkloadResult{Name: names[i]}
		if rp, ok := s.(dma.Reporter); ok {
			w.Metrics = map[string]float64{}
			rp.Report(func(k string, v float64) { res.Metrics[k] += v; w.Metrics[k] += v })
		}
		res.Workloads = append(res.Workloads, w)
	}
	ps, _ := alloc.(dma.PoolStatser)
	for _, u := range r.real.e.Pools() {
		pr := cells.PoolResult{Workload: names[u.Workload], PoolUse: u}
		if ps != nil && !u.CreateFailed {
			if st, ok := ps.PoolStats(u.ID); ok {
				pr.Model = &st
			}
		}
		res.Pools = append(res.Pools, pr)
	}
	res.Metrics["crashed"] = 0
	if r.crashed {
		res.Metrics["crashed"] = 1
		res.Metrics["crash_time_ns"] = float64(r.crashedAt)
	}
	if plat.Frag != nil {
		f := plat.Frag()
		res.Extfrag = &f
		res.Metrics["unusable_index_max"] = r.unusableMax
	}
	if plat.MinHeadroom != nil {
		res.Metrics["min_free_headroom_pages"] = float64(plat.MinHeadroom())
	}
	return res
}

// Expand returns every cell of scenarios × allocators × platforms ×
// seeds, in that order of nesting: the order results are written in, at
// any parallelism and in any shard.
func Expand(scenarios, allocators, platforms []string, seeds []uint64) []Cell {
	out := make([]Cell, 0, len(scenarios)*len(allocators)*len(platforms)*len(seeds))
	for _, sc := range scenarios {
		for _, a := range allocators {
			for _, p := range platforms {
				for _, s := range seeds {
					out = append(out, Cell{Scenario: sc, Allocator: a, Platform: p, Seed: s})
				}
			}
		}
	}
	return out
}

// CloseSources lets go of what sources hold past their replay
// (dma.Closer); it may be called more than once.
func CloseSources(srcs []dma.Source) {
	for _, s := range srcs {
		if c, ok := s.(dma.Closer); ok {
			c.Close()
		}
	}
}

// cut reports whether a source is a trace recorded from a run that went
// on past its end (trace.Reader.Cut): what it leaves live is not leaked.
func cut(srcs []dma.Source) bool {
	for _, s := range srcs {
		if c, ok := s.(interface{ Cut() bool }); ok && c.Cut() {
			return true
		}
	}
	return false
}
