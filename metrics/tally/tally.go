// Package tally holds the running counts that every served event adds to,
// and the histogram they keep latencies in. It sits below both the engine
// and package metrics: the engine adds a plain allocation, mapping, free
// or unmap to a Tally itself, in line, and a metrics.Recorder, which
// embeds the Tally, reads the same counts and adds every other outcome to
// them.
package tally

import "github.com/dmabench/dmabench/dma"

// Tally is the part of a cell's counts a plain event touches: an
// allocation that succeeded at once, with no kernel size to compare, a
// streaming mapping that succeeded, a free or an unmap of what is live.
type Tally struct {
	// ByKind counts the outcomes recorded, by event kind. It has a slot
	// for any value of a Kind, so counting needs no bounds check.
	ByKind      [1 << 8]int64
	AllocOK     int64
	Frees       int64
	AtomicAlloc int64 // alloc events with a non-sleeping gfp mask

	// LiveBytes is bytes requested from the allocator and not yet freed;
	// streaming buffers are counted apart, in MappedBytes.
	LiveBytes     int64
	PeakLiveBytes int64
	// Maps counts streaming map events, MapOK those that succeeded;
	// MappedBytes is the buffers mapped and not yet unmapped.
	Maps               int64
	MapOK              int64
	Unmaps             int64
	MappedBytes        int64
	PeakMappedBytes    int64
	PeakReservedBytes  int64
	LiveAtReservedPeak int64

	// OpCost is modeled CPU time over the events served.
	OpCost dma.Time

	// Latency is the modeled latency of each allocation attempt that
	// reached the allocator: its CPU cost plus any time it slept.
	Latency Hist
}

// The methods below count one event by its kind; every event also adds
// to ByKind and, when served, to Served (the engine adds only the cost of
// a plain free, which cannot raise the reserved peak). Each is kept small
// enough to be inlined into the engine's loop.

// Alloc counts an allocation of n bytes that succeeded; atomic is its gfp
// mask's. Its latency goes to Latency.
func (t *Tally) Alloc(n int64, atomic bool) {
	if atomic {
		t.AtomicAlloc++
	}
	t.Allocated(n)
}

// Free counts a free of n bytes.
func (t *Tally) Free(n int64) {
	t.Frees++
	t.LiveBytes -= n
}

// Map counts a streaming mapping of n bytes that succeeded.
func (t *Tally) Map(n int64) {
	t.Maps++
	t.Mapped(n)
}

// Mapped counts a mapping that succeeded, of n bytes.
func (t *Tally) Mapped(n int64) {
	t.MapOK++
	t.MappedBytes += n
	t.PeakMappedBytes = max(t.PeakMappedBytes, t.MappedBytes)
}

// Unmap counts an unmap of n bytes.
func (t *Tally) Unmap(n int64) {
	t.Unmaps++
	t.MappedBytes -= n
}

// Allocated counts an allocation that succeeded, of n bytes.
func (t *Tally) Allocated(n int64) {
	t.AllocOK++
	t.LiveBytes += n
	t.PeakLiveBytes = max(t.PeakLiveBytes, t.LiveBytes)
}

// Served adds what every served event adds: its cost c, and, if they
// peaked, the bytes the platform's meter m has reserved.
func (t *Tally) Served(c dma.Time, m *dma.Meter) {
	t.OpCost += c
	if m.CoherentBytes > t.PeakReservedBytes {
		t.PeakReservedBytes = m.CoherentBytes
		t.LiveAtReservedPeak = t.LiveBytes
	}
}
