// Package matrix expands a run into cells — one (scenario, allocator,
// platform, seed) each — and runs them on a pool of workers. Each cell is
// replayed twice in the same goroutine: against the null allocator, to
// measure what the harness costs, and against the real models. Results come
// back in cell order, so the output is the same at any parallelism.
package matrix

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/engine"
	"github.com/dmabench/dmabench/metrics"
)

// Cell names one replay.
type Cell struct {
	Scenario  string `json:"scenario"`
	Allocator string `json:"allocator"`
	Platform  string `json:"platform"`
	Seed      uint64 `json:"seed"`
}

func (c Cell) String() string {
	return fmt.Sprintf("%s/%s/%s/seed=%d", c.Scenario, c.Allocator, c.Platform, c.Seed)
}

// Builder wires concrete models for a cell. It is called from several
// goroutines at once and must return fresh, unshared values each time.
type Builder interface {
	// Machine builds the cell's platform and the allocator on it.
	Machine(c Cell) (*dma.Platform, dma.Allocator, error)
	// Sources builds the cell's workload sources, seeded by c.Seed.
	Sources(c Cell) ([]dma.Source, error)
}

// Result is one cell's outcome.
type Result struct {
	Cell
	Metrics map[string]float64 `json:"metrics"`
	// Err is set when the cell could not run (a source failed, say).
	Err error `json:"-"`
}

// Options controls a run.
type Options struct {
	Events int64 // events per cell
	Jobs   int   // workers; <= 0 means one per CPU
	// Done, if set, is called after each cell finishes (from the worker).
	Done func(i int, r *Result)
}

// Run runs every cell and returns results in cell order.
func Run(cells []Cell, b Builder, opt Options) []Result {
	jobs := opt.Jobs
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	jobs = min(jobs, max(len(cells), 1))
	out := make([]Result, len(cells))
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < jobs; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i] = RunCell(cells[i], b, opt.Events)
				if opt.Done != nil {
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

// RunCell replays one cell: the null allocator over the same workload (the
// harness's own cost), the real models, then the null allocator again. The
// faster null run is taken as the harness cost, so a cold first run does not
// inflate it.
func RunCell(c Cell, b Builder, events int64) Result {
	res := Result{Cell: c}
	null1, err := runNull(c, b, events)
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
	if err != nil {
		res.Err = err
		return res
	}
	rec := &metrics.Recorder{}
	r, err := engine.New(plat, alloc, rec, srcs...).Run(events)
	if err != nil {
		res.Err = fmt.Errorf("%s: %w", c, err)
		return res
	}
	null2, err := runNull(c, b, events)
	if err != nil {
		res.Err = err
		return res
	}
	null := null1
	if null2.Events > 0 && (null1.Events == 0 || float64(null2.HostNS)/float64(null2.Events) < float64(null1.HostNS)/float64(null1.Events)) {
		null = null2
	}
	res.Metrics = rec.Summary(metrics.Host{NS: r.HostNS, Events: r.Events, NullNS: null.HostNS, NullEvents: null.Events})
	if sr, ok := alloc.(dma.StatsReporter); ok {
		res.Metrics["pages_held_idle"] = float64(sr.Stats().IdlePages)
	}
	res.Metrics["live_at_end"] = float64(r.Live)
	return res
}

func runNull(c Cell, b Builder, events int64) (engine.Result, error) {
	srcs, err := b.Sources(c)
	if err != nil {
		return engine.Result{}, err
	}
	n, p := engine.NewNull()
	return engine.New(p, n, &metrics.Recorder{}, srcs...).Run(events)
}
