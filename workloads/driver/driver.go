// Package driver is what the synthetic workloads are built from: a
// driver's threads (process context, softirq, the interrupt handler), each
// a queue of actions scheduled in modeled time that it expands, one at a
// time, into the events the engine serves; and the dense ids they give the
// objects they allocate.
//
// A thread emits the events of one action in order. When the engine
// reports that an allocation failed, the workload's handler may drop the
// action's remaining events and emit others instead (freeing what the
// action had allocated, say). Threads of one workload share state freely:
// the engine serves them from one goroutine.
package driver

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/dmabench/dmabench/dma"
)

// Action is work a thread will do at a modeled time.
type Action struct {
	At   dma.Time
	Kind uint8
	Arg  int32
	seq  uint64
}

// Handler expands a thread's actions into events and hears how they went.
type Handler interface {
	// Expand emits the events of action a on t (with t.New or t.Op).
	Expand(t *Thread, a Action)
	// Outcome is called after each event that failed, and after each
	// event with Notify set (err is then nil). Success is otherwise not
	// reported: the engine serves the rest of an action's events without
	// a call per event.
	Outcome(t *Thread, e *dma.Event, err error)
}

// Thread is one thread of a driver. It implements dma.Source and
// dma.Batcher. It never ends: with nothing scheduled it is idle
// (dma.ErrIdle) until another thread schedules work for it.
type Thread struct {
	h    Handler
	ids  *IDs
	name string
	// buf holds the current action's events: those before pos were
	// served, those before out were handed out, from base on in the last
	// batch.
	buf            []dma.Event
	pos, out, base int
	acts           []Action // binary min-heap by (At, seq)
	seq            uint64
	// start is the earliest time an action may run (StartAt).
	start dma.Time
	// epoch counts the actions ever scheduled (dma.Epocher).
	epoch uint64
	// Now is the time of the action being expanded.
	Now dma.Time
}

var (
	_ dma.Source  = (*Thread)(nil)
	_ dma.Batcher = (*Thread)(nil)
	_ dma.Epocher = (*Thread)(nil)
)

// NewThread returns a thread driven by h. Objects it frees (free, unmap,
// unmap_sg) give their ids back to ids once the engine has served the
// event, so no other thread can reuse an id still live.
func NewThread(name string, h Handler, ids *IDs) *Thread {
	return &Thread{h: h, ids: ids, name: name}
}

// Name returns the thread's name.
func (t *Thread) Name() string { return t.name }

func (t *Thread) less(i, j int) bool {
	a, b := &t.acts[i], &t.acts[j]
	return a.At < b.At || (a.At == b.At && a.seq < b.seq)
}

// Schedule queues an action; actions at the same time run in the order
// they were scheduled.
func (t *Thread) Schedule(a Action) {
	a.At = max(a.At, t.start)
	t.epoch++
	t.seq++
	a.seq = t.seq
	t.acts = append(t.acts, a)
	for i := len(t.acts) - 1; i > 0; {
		p := (i - 1) / 2
		if !t.less(i, p) {
			break
		}
		t.acts[i], t.acts[p] = t.acts[p], t.acts[i]
		i = p
	}
}

// StartAt holds the thread's work until modeled time at: the driver is
// loaded, or its device plugged in, then. Actions already queued for
// earlier run at at, in their order; the heap stays ordered because
// raising every key below at to at keeps each parent at or below its
// children.
func (t *Thread) StartAt(at dma.Time) {
	t.start = at
	for i := range t.acts {
		t.acts[i].At = max(t.acts[i].At, at)
	}
}

func (t *Thread) pop() Action {
	a := t.acts[0]
	n := len(t.acts) - 1
	t.acts[0] = t.acts[n]
	t.acts = t.acts[:n]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && t.less(l, m) {
			m = l
		}
		if r < n && t.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		t.acts[i], t.acts[m] = t.acts[m], t.acts[i]
		i = m
	}
	return a
}

// Pending returns the number of scheduled actions.
func (t *Thread) Pending() int { return len(t.acts) }

// New appends an event at the action's time, otherwise zeroed, to the
// current action and returns it for the caller to fill in place. A time
// set later must not be earlier than the action's.
func (t *Thread) New() *dma.Event {
	e := t.slot()
	e.At = t.Now
	return e
}

// Emit appends e to the current action; a time earlier than the
// action's (or none) becomes the action's.
func (t *Thread) Emit(e dma.Event) {
	e.At = max(e.At, t.Now)
	*t.slot() = e
}

// slot appends a zeroed event to the current action.
func (t *Thread) slot() *dma.Event {
	t.buf = append(t.buf, dma.Event{})
	return &t.buf[len(t.buf)-1]
}

// Op appends the common kind of event, an operation on object id of dev,
// and returns it for any further fields. It sets the fields one by one:
// assigning a composite literal of an Event builds it on the stack and
// copies it, several times the cost, and hot loops emit one per TD.
func (t *Thread) Op(k dma.Kind, ctx dma.Context, gfp dma.GFP, dir dma.Dir, dev *dma.Device, id, pool dma.ID, size int64) *dma.Event {
	e := t.slot()
	e.At, e.Kind, e.Ctx, e.GFP, e.Dir, e.Dev, e.ID, e.Pool, e.Size = t.Now, k, ctx, gfp, dir, dev, id, pool, size
	return e
}

// Ops appends one event like Op's for each of ids, in order, and returns
// them: the TDs of a URB, say, in one go.
func (t *Thread) Ops(ids []dma.ID, k dma.Kind, ctx dma.Context, gfp dma.GFP, dir dma.Dir, dev *dma.Device, pool dma.ID, size int64) []dma.Event {
	i := len(t.buf)
	t.buf = slices.Grow(t.buf, len(ids))[:i+len(ids)]
	evs := t.buf[i:]
	for j, id := range ids {
		e := &evs[j]
		*e = dma.Event{}
		e.At, e.Kind, e.Ctx, e.GFP, e.Dir, e.Dev, e.ID, e.Pool, e.Size = t.Now, k, ctx, gfp, dir, dev, id, pool, size
	}
	return evs
}

// Drop discards the current action's events not yet served: from a
// handler's Outcome, those after the event reported.
func (t *Thread) Drop() { t.buf = t.buf[:t.pos] }

// Next implements dma.Source: one event at a time, its outcome not heard.
func (t *Thread) Next(e *dma.Event) error {
	b, err := t.take(true)
	if err == nil {
		*e = b[0]
	}
	return err
}

// NextBatch implements dma.Batcher: the rest of the current action's
// events, expanding the next action when none are left.
func (t *Thread) NextBatch() ([]dma.Event, error) { return t.take(false) }

// take hands out the next event, or the rest of the current action's.
func (t *Thread) take(one bool) ([]dma.Event, error) {
	t.served(t.out)
	for t.pos == len(t.buf) {
		if len(t.acts) == 0 {
			return nil, dma.ErrIdle
		}
		t.buf, t.pos, t.out = t.buf[:0], 0, 0
		a := t.pop()
		t.Now = a.At
		t.h.Expand(t, a)
	}
	b := t.buf[t.pos:]
	if one {
		b = b[:1]
	}
	t.base, t.out = t.pos, t.pos+len(b)
	return b, nil
}

// served records that the events before k were served: the ids their
// frees, unmaps and unmap_sgs released go back for reuse.
func (t *Thread) served(k int) {
	if ids := t.ids; ids != nil {
		evs := t.buf[t.pos:k]
		for i := range evs {
			switch evs[i].Kind {
			case dma.Free, dma.Unmap, dma.UnmapSG:
				ids.Put(evs[i].ID)
			}
		}
	}
	t.pos = k
}

// Epoch implements dma.Epocher.
func (t *Thread) Epoch() *uint64 { return &t.epoch }

// Result implements dma.Batcher: event i of the last batch failed, or
// asked to be heard. The handler may drop the events after it and emit
// others.
func (t *Thread) Result(i int, err error) {
	k := t.base + i
	t.served(k + 1)
	t.out = t.pos
	t.h.Outcome(t, &t.buf[k], err)
}

// IDs hands out dense object ids, reusing freed ones.
type IDs struct {
	free []dma.ID
	next dma.ID
}

// Get returns an unused id.
func (d *IDs) Get() dma.ID {
	if n := len(d.free); n > 0 {
		id := d.free[n-1]
		d.free = d.free[:n-1]
		return id
	}
	d.next++
	return d.next - 1
}

// Fresh returns an id never handed out before, and never to be reused:
// for an object that must keep a name of its own.
func (d *IDs) Fresh() dma.ID {
	d.next++
	return d.next - 1
}

// Put returns an id whose object is not live (never allocated, or freed
// and the free served).
func (d *IDs) Put(id dma.ID) { d.free = append(d.free, id) }

// Mix draws request sizes from a mix: sizes with relative weights.
type Mix struct {
	sizes   []int64
	weights []float64
	total   float64
}

// NewMix returns the mix; CheckMix has passed on its sizes and weights.
func NewMix(sizes []int64, weights []float64) Mix {
	m := Mix{sizes: sizes, weights: weights}
	for _, w := range weights {
		m.total += w
	}
	return m
}

// Pick draws a size.
func (m Mix) Pick(rng *rand.Rand) int64 {
	x := rng.Float64() * m.total
	for i, w := range m.weights {
		if x < w {
			return m.sizes[i]
		}
		x -= w
	}
	return m.sizes[len(m.sizes)-1]
}

// CheckMix checks a workload's mix (name: its config section): sizes of 1
// byte to most, as many weights, none negative.
func CheckMix(name string, sizes []int64, weights []float64, most int64) error {
	if len(sizes) == 0 || len(sizes) != len(weights) {
		return fmt.Errorf("%s: sizes and weights must be non-empty and of equal length", name)
	}
	for i, s := range sizes {
		if s <= 0 || s > most || weights[i] < 0 {
			return fmt.Errorf("%s.sizes[%d] = %d: want 1..%d bytes with a weight >= 0", name, i, s, most)
		}
	}
	return nil
}

// Pairs are a driver's queue pairs: per queue a submission thread (on its
// CPU) and a completion thread (its interrupt).
type Pairs struct {
	Sub, IRQ []*Thread
}

// NewPairs makes n pairs named name/qN and name/qN/irq, sharing ids; h
// gives each thread its handler.
func NewPairs(name string, n int, ids *IDs, h func(q int, irq bool) Handler) Pairs {
	var p Pairs
	for q := range n {
		p.Sub = append(p.Sub, NewThread(fmt.Sprintf("%s/q%d", name, q), h(q, false), ids))
		p.IRQ = append(p.IRQ, NewThread(fmt.Sprintf("%s/q%d/irq", name, q), h(q, true), ids))
	}
	return p
}

// Threads returns the submission threads, then the completion threads
// (dma.Threads).
func (p Pairs) Threads() []dma.Source {
	out := make([]dma.Source, 0, 2*len(p.Sub))
	for _, t := range append(append([]*Thread{}, p.Sub...), p.IRQ...) {
		out = append(out, t)
	}
	return out
}

// Policy reads a workload's map_failure knob, which has passed Validate
// (dma.ParseDevicePolicy).
func Policy(s string) dma.DevicePolicy {
	p, _ := dma.ParseDevicePolicy(s)
	return p
}
