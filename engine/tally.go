package engine

import "github.com/dmabench/dmabench/dma"

// Tally holds the running counts every served event adds to. The engine
// owns the counting rules below (CountAlloc, CountFree, CountMap,
// CountUnmap): its fast path (plain) calls them in line for the events it
// serves, and a Recorder that is a Tallier calls the same methods for the
// outcomes the engine hands it, so one event is counted the same way
// whichever path served it. metrics.Recorder embeds a Tally and adds what
// only a recorded outcome has (failures, misuse, waits).
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

// The counting rules. Each counts one served event of its kind by its
// outcome; every other outcome (a failure, misuse, a pool event) is
// counted by the recorder alone. They are small enough to be inlined into
// plain, which passes the kind as a constant.
//
// A free adds only its cost: it gives memory back, so what the platform
// holds cannot peak (the conformance suite's free-takes-memory rule checks
// every model). Every other served event may raise the reserved peak.

// CountAlloc counts an allocation of n bytes that succeeded: atomic is its
// gfp mask's, c its modeled cost on meter m. Its latency (cost plus any
// sleep), as every allocation attempt's, goes to Latency apart: with it,
// CountAlloc would be too large to inline.
func (t *Tally) CountAlloc(n int64, atomic bool, c dma.Time, m *dma.Meter) {
	t.ByKind[dma.Alloc]++
	if atomic {
		t.AtomicAlloc++
	}
	t.allocated(n)
	t.Served(c, m)
}

// CountFree counts a free of n bytes at cost c.
func (t *Tally) CountFree(n int64, c dma.Time) {
	t.ByKind[dma.Free]++
	t.Frees++
	t.LiveBytes -= n
	t.OpCost += c
}

// CountMap counts a mapping of n bytes that succeeded (k is Map or
// MapSG) at cost c on meter m.
func (t *Tally) CountMap(k dma.Kind, n int64, c dma.Time, m *dma.Meter) {
	t.ByKind[k]++
	t.Maps++
	t.MapOK++
	t.MappedBytes += n
	t.PeakMappedBytes = max(t.PeakMappedBytes, t.MappedBytes)
	t.Served(c, m)
}

// CountUnmap counts an unmap of n bytes (k is Unmap or UnmapSG) at cost
// c on meter m.
func (t *Tally) CountUnmap(k dma.Kind, n int64, c dma.Time, m *dma.Meter) {
	t.ByKind[k]++
	t.Unmaps++
	t.MappedBytes -= n
	t.Served(c, m)
}

// allocated counts an allocation that succeeded, of n bytes.
func (t *Tally) allocated(n int64) {
	t.AllocOK++
	t.LiveBytes += n
	t.PeakLiveBytes = max(t.PeakLiveBytes, t.LiveBytes)
}

// Served adds what every served event but a free adds: its cost c, and,
// if they peaked, the bytes the platform's meter m has reserved.
func (t *Tally) Served(c dma.Time, m *dma.Meter) {
	t.OpCost += c
	if m.CoherentBytes > t.PeakReservedBytes {
		t.PeakReservedBytes = m.CoherentBytes
		t.LiveAtReservedPeak = t.LiveBytes
	}
}
