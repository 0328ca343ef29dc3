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
	"sync"

	"github.com/dmabench/dmabench/cells"
	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/engine"
	"github.com/dmabench/dmabench/metrics"
)

// Cell names one replay (cells.Cell).
type Cell = cells.Cell

// Result is one cell's outcome (cells.Result).
type Result = cells.Result

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
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < jobs; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if stopped(opt.Stop) {
					out[i] = Result{Cell: cells[i], Err: ErrStopped}
					continue
				}
				out[i] = runCell(cells[i], b, opt.Events, opt.Stop, opt.Progress)
				if opt.Done != nil && out[i].Err == nil {
					opt.Done(i, &out[i])
				}
			}
		}()
	}
	for i := range cells {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
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
func RunCell(c Cell, b Builder, events int64) Result { return runCell(c, b, events, nil, nil) }

// runCell is RunCell, stopped between batches when stop is closed.
func runCell(c Cell, b Builder, events int64, stop <-chan struct{}, progress func(int64)) Result {
	res := Result{Cell: c}
	nullSrcs, err := b.Sources(c)
	if err != nil {
		res.Err = err
		return res
	}
	srcs, err := b.Sources(c)
	if err != nil {
		res.Err = err
		return res
	}
	plat, alloc, err := b.Machine(c)
	if errors.Is(err, dma.ErrUnsupported) {
		res.Refused = err.Error()
		return res
	}
	if err != nil {
		res.Err = err
		return res
	}
	if c, ok := alloc.(dma.Closer); ok {
		defer c.Close()
	}
	rec := &metrics.Recorder{}
	real := engine.New(plat, alloc, rec, srcs...)
	nullAlloc, nullPlat := engine.NewNull()
	null := engine.New(nullPlat, nullAlloc, &metrics.Recorder{}, nullSrcs...)
	// Host time is the CPU time of the thread that runs the cell, read
	// around each batch: the goroutine stays on one thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	real.Clock, null.Clock = threadCPU, threadCPU
	gc := []gcmetrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	var h metrics.Host
	var crashed bool
	var crashedAt dma.Time
	unusableMax := 0.0
	realDone, nullDone := false, false
	for !realDone || !nullDone {
		if stopped(stop) {
			return Result{Cell: c, Err: ErrStopped}
		}
		var pair metrics.Pair
		// A pair during which the garbage collector ran (its assists and
		// write barriers slow whichever replay they fall in) is marked,
		// and left out of the estimate.
		gcmetrics.Read(gc)
		cycles := gc[0].Value.Uint64()
		if !realDone {
			n := min(Batch, events-h.Events)
			r, err := real.Run(n)
			if err != nil {
				res.Err = err
				return res
			}
			h.NS += r.HostNS
			h.Events += r.Events
			if progress != nil {
				progress(r.Events)
			}
			pair.NS, pair.Events = r.HostNS, r.Events
			crashed, crashedAt = r.Crashed, r.CrashedAt
			realDone = r.Events < n || h.Events >= events || r.Crashed
			if plat.Frag != nil && (h.Events%FragEvery == 0 || realDone) {
				unusableMax = max(unusableMax, plat.Frag().Unusable[dma.CostlyOrder])
			}
		}
		if !nullDone {
			n := min(Batch, events-h.NullEvents)
			r, err := null.Run(n)
			if err != nil {
				res.Err = err
				return res
			}
			h.NullNS += r.HostNS
			h.NullEvents += r.Events
			pair.NullNS, pair.NullEvents = r.HostNS, r.Events
			nullDone = r.Events < n || h.NullEvents >= events
		}
		gcmetrics.Read(gc)
		pair.GC = gc[0].Value.Uint64() != cycles
		h.Pairs = append(h.Pairs, pair)
	}
	res.Metrics = rec.Summary(h)
	if sr, ok := alloc.(dma.StatsReporter); ok {
		res.Metrics["pages_held_idle"] = float64(sr.Stats().IdlePages)
	}
	for _, m := range []any{alloc, plat.Mapper} {
		if rp, ok := m.(dma.Reporter); ok {
			rp.Report(func(k string, v float64) { res.Metrics[k] = v })
		}
	}
	live := real.Live()
	res.Metrics["live_at_end"] = float64(live)
	res.Metrics["leaks"] = 0
	if real.Ended() && !cut(srcs) {
		// A workload that ended by itself left these objects behind.
		res.Metrics["leaks"] = float64(live)
		res.Leaks = real.Leaks(100)
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
	for _, u := range real.Pools() {
		pr := cells.PoolResult{Workload: names[u.Workload], PoolUse: u}
		if ps != nil && !u.CreateFailed {
			if st, ok := ps.PoolStats(u.ID); ok {
				pr.Model = &st
			}
		}
		res.Pools = append(res.Pools, pr)
	}
	res.Metrics["crashed"] = 0
	if crashed {
		res.Metrics["crashed"] = 1
		res.Metrics["crash_time_ns"] = float64(crashedAt)
	}
	if plat.Frag != nil {
		f := plat.Frag()
		res.Extfrag = &f
		res.Metrics["unusable_index_max"] = unusableMax
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
