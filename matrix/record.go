package matrix

import (
	"fmt"

	"github.com/dmabench/dmabench"
	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/engine"
	"github.com/dmabench/dmabench/workloads/trace"
)

// tape writes every served event into a trace.
type tape struct {
	r *trace.Recorder
	// served is the latest modeled time an event was served at.
	served dma.Time
}

// Record writes o's event at the modeled time it was served (a sleeping
// caller's: when it went to sleep), held at the latest time an event was
// served before it, not at its source's own time: a source waiting on
// another (a completion on its submission) is served when that one is,
// and replay serves by time.
func (t *tape) Record(o *engine.Outcome) {
	t.served = max(o.Meter.Now, t.served)
	ev := *o.Event
	ev.At = t.served - o.Wait
	k := ev.Kind
	if !o.Served() {
		t.r.RecordMisuse(o.Workload, o.Source, &ev)
		return
	}
	failed := o.Err != nil && (k == dma.Alloc || k == dma.Map || k == dma.MapSG)
	t.r.Record(o.Workload, o.Source, &ev, failed)
}

// Record runs cell c for up to events events and writes every event it
// served, in order, to w as a trace, which it flushes; it returns how
// many it wrote. Replaying the trace on the same platform and allocator
// gives the same modeled metrics as running the cell: knobs, the
// platform and scenario knobs the cell ran with, are written as the
// trace's knob lines, which replay uses. done, when not nil, hears the
// events served as the recording goes.
func Record(c Cell, b Builder, events int64, w *trace.Writer, knobs [][2]string, done func(int64)) (int64, error) {
	srcs, err := b.Sources(c)
	if err != nil {
		return 0, err
	}
	plat, alloc, err := b.Machine(c)
	if err != nil {
		return 0, err
	}
	w.Comment(fmt.Sprintf("recorded by dmabench %s: workload %s, platform %s, allocator %s, seed %d", dmabench.Version, c.Scenario, c.Platform, c.Allocator, c.Seed))
	for _, kv := range knobs {
		w.Knob(kv[0], kv[1])
	}
	rec := trace.NewRecorder(w)
	eng := engine.New(plat, alloc, &tape{r: rec}, srcs...)
	threads := make([]int, eng.Sources())
	for i := range threads {
		threads[i] = i
	}
	w.Threads(threads) // spares the replay a pass to find them
	for left := events; left > 0; {
		chunk := min(left, 1<<20) // a chunk at a time, for done
		res, err := eng.Run(chunk)
		if err != nil {
			return rec.Written, err
		}
		if done != nil {
			done(res.Events)
		}
		if res.Events < chunk {
			break // the run ended
		}
		left -= chunk
	}
	if !eng.Ended() {
		w.Cut() // the run went on: what is live at the end was not leaked
	}
	return rec.Written, w.Flush()
}
