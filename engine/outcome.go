// This file holds what the engine hands a Recorder: the Outcome of each
// event, the misuse it classifies, and the Recorder interfaces.

package engine

import (
	"errors"

	"github.com/dmabench/dmabench/dma"
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
	// MisuseDestroyWithLive: destroy of a pool whose blocks are still
	// allocated. The destroy is served (the model leaks what the kernel
	// leaks); the blocks die with the pool, so their later frees are
	// MisuseFreeAfterDestroy.
	MisuseDestroyWithLive
	// MisuseFreeAfterDestroy: free of a block whose pool was destroyed.
	// It is not passed to the model.
	MisuseFreeAfterDestroy
	// MisuseAllocAfterDestroy: alloc from a pool already destroyed. It is
	// not passed to the model.
	MisuseAllocAfterDestroy
	NumMisuse
)

var misuseNames = [...]string{"none", "unknown_free", "double_free", "mismatch", "id_reused", "unknown_pool", "destroy_with_live", "free_after_destroy", "alloc_after_destroy"}

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
	// stale. Class is the size class a size-class allocator served an
	// alloc from (dma.Request.Class), 0 from others; set on the general
	// path, which every alloc with a kernel size to compare takes.
	Block dma.Block
	Class int64
	// Meter is the platform meter after the event.
	Meter *dma.Meter
	// Wait is how long a sleeping caller was parked before this attempt
	// succeeded (or stalled), and WaitKind why; zero when it never slept.
	Wait     dma.Time
	WaitKind dma.WaitKind
}

// Served reports whether the event reached the models: any event without
// misuse; an unmap of another size or direction than its map, which is
// unmapped as mapped (Bytes says what); and a destroy of a pool with live
// blocks. Other misuse was counted and skipped.
func (o *Outcome) Served() bool {
	switch o.Misuse {
	case MisuseNone, MisuseDestroyWithLive:
		return true
	case MisuseMismatch:
		k := o.Event.Kind
		return (k == dma.Unmap || k == dma.UnmapSG) && o.Bytes != 0
	}
	return false
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
	TallyOn(m *dma.Meter) *Tally
}
