package dma

import (
	"errors"
	"fmt"
	"io"
)

// ID is a dense object or pool identifier, unique among live objects of one
// source. Ids are reused after free, so tables indexed by ID stay as small as
// the live set.
type ID int32

// NoPool marks a request that is not served from a pool (dma_alloc,
// dma_alloc_coherent).
const NoPool ID = -1

// Kind says what an event asks for.
type Kind uint8

// Event kinds.
const (
	KindNone Kind = iota
	// PoolCreate creates pool ID with Name, Size, Align, Boundary for Dev.
	PoolCreate
	// PoolDestroy destroys pool ID.
	PoolDestroy
	// Alloc allocates object ID: from pool Pool, or by size when Pool is NoPool.
	Alloc
	// Free frees object ID.
	Free
	// Map maps a streaming buffer of Size bytes in direction Dir as ID.
	Map
	// Unmap unmaps mapping ID.
	Unmap
	// MapSG maps a scatterlist of Segs as ID.
	MapSG
	// UnmapSG unmaps scatterlist ID.
	UnmapSG
	// Sync syncs mapping ID for the CPU or the device.
	Sync
	kindCount
)

var kindNames = [...]string{"none", "pool_create", "pool_destroy", "alloc", "free", "map", "unmap", "map_sg", "unmap_sg", "sync"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// NumKinds is the number of event kinds, for arrays indexed by Kind.
const NumKinds = int(kindCount)

// Event is one step of a workload in modeled time. Sources fill an Event in
// place; strings and slices in it are owned by the source and stay valid
// until the source's next Next call.
type Event struct {
	At   Time
	Kind Kind
	Ctx  Context
	Dir  Dir
	// Notify asks the engine to report the event's outcome to its
	// Batcher source even when it succeeds (failures are always
	// reported): the last TD of a URB, say, after which the driver books
	// the URB's completion. Traces do not carry it.
	Notify bool
	GFP    GFP
	Dev    *Device
	// ID is the object (alloc, map) or pool (pool create/destroy) the event
	// creates or names.
	ID ID
	// Pool is the pool an alloc or free uses, or NoPool.
	Pool ID
	// Size is the requested bytes (alloc, map) or block size (pool create).
	Size int64
	// Align and Boundary: pool parameters (pool create) or request
	// constraints (size-based alloc).
	Align    int64
	Boundary int64
	// Name is the pool's name (pool create).
	Name string
	// Segs holds segment lengths of a scatterlist (map_sg).
	Segs []int64
	// Line is the event's line in a trace file (0 for synthetic events).
	Line int64
	// Kernel is what the traced kernel allocated for this request
	// (kmalloc's bytes_alloc), when the trace says; 0 otherwise;
	// KernelFailed when the kernel's allocation failed.
	Kernel int64
}

// KernelFailed in Event.Kernel: the traced kernel's allocation failed, so
// its caller got NULL. The model is asked all the same; what it serves is
// given back at once, as the caller never had it.
const KernelFailed = -1

func (e *Event) String() string {
	return fmt.Sprintf("t=%d %s id=%d pool=%d size=%d gfp=%s ctx=%s", e.At, e.Kind, e.ID, e.Pool, e.Size, e.GFP, e.Ctx)
}

// Source produces a workload's events in non-decreasing modeled time.
// Next fills e and returns nil, or returns io.EOF at the end. A source that
// has no natural end runs until the engine stops pulling. A thread of a
// Threads workload that has nothing to do until another thread acts
// returns ErrIdle; the engine asks it again after every event it serves
// (an Epocher, only once work was scheduled on it).
type Source interface {
	Next(e *Event) error
}

// Epocher is implemented by threads that count the work scheduled on
// them: the engine asks an idle thread for its next event again only when
// the count it points to has moved since the thread went idle.
type Epocher interface {
	Epoch() *uint64
}

// ErrIdle is returned by a thread that has no event until another thread
// of its workload schedules one.
var ErrIdle = errors.New("thread idle")

// Batcher is implemented by sources that hand out their events a run at
// a time, so the engine takes each without a call: a driver thread hands
// out what one action expanded to (the 128 TDs of a URB, say). Its next
// events may depend on how earlier ones went (a URB whose TD allocation
// failed is unwound), so the engine reports outcomes with Result.
type Batcher interface {
	// NextBatch returns the source's next events, at least one, or an
	// error as Next does. They are the source's own and stay valid until
	// the next NextBatch call; the engine only reads them (a source may
	// hand the same events to several replays). Every event handed out
	// before was served, or voided by a Result.
	NextBatch() ([]Event, error)
	// Result reports event i of the last batch: it failed (err is not
	// nil), or it succeeded and has Notify set. The events before it were
	// served; those after it are void: the engine calls NextBatch for
	// what follows, which the source may have changed.
	Result(i int, err error)
}

// Threads is implemented by a workload made of several threads of one
// driver (a process-context submitter and the interrupt handler that
// completes its requests, say). The engine runs each thread as a source of
// its own, in modeled-time order, but all of them share one space of pool
// and object ids: one thread may free what another allocated, and a thread
// that sleeps in an allocation does not hold the others back.
type Threads interface {
	Threads() []Source
}

// Named is implemented by sources that can describe themselves.
type Named interface {
	Name() string
}

// List is a Source that replays events held in memory, in order, and then
// ends. It hands them out as one batch (Batcher), so the engine takes each
// without a call, and the engine raises their times in place to when they
// ran. Events after one that failed or has Notify set are handed out
// again: a recorded stream does not change with how its events went.
type List struct {
	Events []Event
	next   int
	base   int // where the last batch began
}

var _ Batcher = (*List)(nil)

// Next implements Source.
func (l *List) Next(e *Event) error {
	if l.next == len(l.Events) {
		return io.EOF
	}
	*e = l.Events[l.next]
	l.next++
	return nil
}

// NextBatch implements Batcher: every event not yet handed out.
func (l *List) NextBatch() ([]Event, error) {
	if l.next == len(l.Events) {
		return nil, io.EOF
	}
	l.base, l.next = l.next, len(l.Events)
	return l.Events[l.base:], nil
}

// Result implements Batcher: the events after event i of the last batch
// are handed out again by the next NextBatch.
func (l *List) Result(i int, _ error) { l.next = l.base + i + 1 }
