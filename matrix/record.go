package matrix

import (
	"fmt"

	"github.com/dmabench/dmabench"
	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/engine"
	"github.com/dmabench/dmabench/workloads/trace"
)

// tape writes every served event into a trace.
type tape struct{ r *trace.Recorder }

func (t tape) Record(o *engine.Outcome) {
	if !o.Served() {
		return
	}
	k := o.Event.Kind
	failed := o.Err != nil && (k == dma.Alloc || k == dma.Map || k == dma.MapSG)
	t.r.Record(o.Workload, o.Source, o.Event, failed)
}

// Record runs cell c for up to events events and writes every event it
// served, in order, to w as a trace, which it flushes; it returns how
// many it wrote. Replaying the trace on the same platform and allocator
// gives the same modeled metrics as running the cell.
func Record(c Cell, b Builder, events int64, w *trace.Writer) (int64, error) {
	srcs, err := b.Sources(c)
	if err != nil {
		return 0, err
	}
	plat, alloc, err := b.Machine(c)
	if err != nil {
		return 0, err
	}
	w.Comment(fmt.Sprintf("recorded by dmabench %s: workload %s, platform %s, allocator %s, seed %d", dmabench.Version, c.Scenario, c.Platform, c.Allocator, c.Seed))
	rec := trace.NewRecorder(w)
	if _, err := engine.New(plat, alloc, tape{rec}, srcs...).Run(events); err != nil {
		return rec.Written, err
	}
	return rec.Written, w.Flush()
}
