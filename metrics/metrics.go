// Package metrics turns the engine's outcomes into a cell's numbers:
// counts, failure rates, GFP_ATOMIC share, live and reserved bytes and the
// fragmentation they imply, modeled throughput and host cost per operation.
//
// A Recorder keeps running totals only (no per-event storage), so recording
// costs the same at any trace length and allocates nothing.
package metrics

import (
	"errors"
	"math"
	"slices"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/engine"
)

// Hist is the histogram the counts keep latencies in.
type Hist = engine.Hist

// Recorder accumulates one cell's outcomes. It implements engine.Recorder.
type Recorder struct {
	// Tally holds the counts a plain allocation, mapping, free or unmap
	// adds to, which the engine adds itself (engine.Tallier).
	engine.Tally
	AllocFail   int64
	MapFailures int64 // ErrMapFailed: the mapping itself failed
	MapNoMem    int64 // the data buffer could not be allocated
	// AtomicFail counts non-sleeping allocations (and map buffers) that
	// failed.
	AtomicFail int64
	PoolErrors int64
	Misuse     [engine.NumMisuse]int64

	// Waits holds the sleep of each request that slept, by kind.
	Waits  [dma.NumWaitKinds]Hist
	Stalls int64
	// FirstAllocFail and LastAllocFail are the modeled times of the first
	// and the last failed allocation: whether a model fails only while its
	// pools grow at the start, or all along.
	FirstAllocFail, LastAllocFail dma.Time
	// KernelCompared and KernelDiffers: allocations whose trace records
	// what the kernel allocated, and those where the model's block size
	// differs from it.
	KernelCompared, KernelDiffers int64
	// KernelFailed: allocations the traced kernel failed
	// (dma.KernelFailed); KernelFailedServed: of those, the model served.
	KernelFailed, KernelFailedServed int64
	// MisuseList holds the first misuse events, with their trace lines.
	MisuseList []dma.MisuseEntry

	meter *dma.Meter
}

// MaxMisuseList bounds the misuse events kept for the results.
const MaxMisuseList = 100

var _ engine.Tallier = (*Recorder)(nil)

// TallyOn implements engine.Tallier: the engine adds plain events to the
// recorder's Tally itself, on the platform meter m.
func (r *Recorder) TallyOn(m *dma.Meter) *engine.Tally {
	r.meter = m
	return &r.Tally
}

// Record implements engine.Recorder. The engine counts plain events in
// the Tally itself; Record takes the rest, and any outcome at all from a
// caller that does not. A served alloc, free, map or unmap is counted by
// the engine's rules (engine.Tally's Count methods), as plain counts it.
func (r *Recorder) Record(o *engine.Outcome) {
	ev := o.Event
	k := ev.Kind
	r.meter = o.Meter
	if o.Misuse != engine.MisuseNone {
		r.Misuse[o.Misuse]++
		if len(r.MisuseList) < MaxMisuseList {
			r.MisuseList = append(r.MisuseList, dma.MisuseEntry{Line: ev.Line, Kind: o.Misuse.String(), ID: ev.ID, What: k.String()})
		}
		// Misuse that was still served (see Outcome.Served) counts as
		// its kind as well; other misuse was not served.
		if !o.Served() {
			r.ByKind[k]++
			return
		}
	}
	switch k {
	case dma.Alloc:
		if ev.Kernel > 0 {
			r.KernelCompared++
			// A size-class allocator's class is its kmalloc size; its
			// block may be larger (a class pool's own minimum).
			got := o.Block.Size
			if o.Class > 0 {
				got = o.Class
			}
			if o.Err == nil && got != ev.Kernel {
				r.KernelDiffers++
			}
		}
		if ev.Kernel == dma.KernelFailed {
			r.KernelFailed++
			if o.Err == nil {
				r.KernelFailedServed++
			}
		}
		if o.WaitKind != 0 {
			r.Waits[o.WaitKind].Add(int64(o.Wait))
		}
		r.Latency.Add(int64(o.Cost + o.Wait))
		if o.Err == nil {
			r.CountAlloc(o.Bytes, ev.GFP.Atomic(), o.Cost, o.Meter)
			return
		}
		r.ByKind[k]++
		if ev.GFP.Atomic() {
			r.AtomicAlloc++
		}
		if errors.Is(o.Err, engine.ErrStalled) {
			r.Stalls++
		}
		if r.AllocFail == 0 {
			r.FirstAllocFail = ev.At
		}
		r.LastAllocFail = ev.At
		r.AllocFail++
		if ev.GFP.Atomic() {
			r.AtomicFail++
		}
	case dma.Free:
		r.CountFree(o.Bytes, o.Cost)
		return
	case dma.Map, dma.MapSG:
		if o.WaitKind != 0 {
			r.Waits[o.WaitKind].Add(int64(o.Wait))
		}
		if o.Err == nil {
			r.CountMap(k, o.Bytes, o.Cost, o.Meter)
			return
		}
		r.ByKind[k]++
		r.Maps++
		if errors.Is(o.Err, engine.ErrStalled) {
			r.Stalls++
		}
		if errors.Is(o.Err, dma.ErrMapFailed) {
			r.MapFailures++
		} else {
			r.MapNoMem++
			if ev.GFP.Atomic() {
				r.AtomicFail++
			}
		}
	case dma.Unmap, dma.UnmapSG:
		r.CountUnmap(k, o.Bytes, o.Cost, o.Meter)
		return
	default:
		r.ByKind[k]++
		if (k == dma.PoolCreate || k == dma.PoolDestroy) && o.Err != nil {
			r.PoolErrors++
		}
	}
	r.Served(o.Cost, o.Meter)
}

// events is the number of outcomes recorded.
func (r *Recorder) events() int64 {
	var n int64
	for _, c := range r.ByKind {
		n += c
	}
	return n
}

// allocs is the number of allocations that reached the allocator.
func (r *Recorder) allocs() int64 { return r.AllocOK + r.AllocFail }

// ops is the number of alloc, free, map and unmap events served.
func (r *Recorder) ops() int64 { return r.allocs() + r.Frees + r.Maps + r.Unmaps }

// atomicDips reads the platform's count of atomic reserve dips.
func (r *Recorder) atomicDips() int64 {
	if r.meter == nil {
		return 0
	}
	return r.meter.AtomicDips
}

// Platform adds the platform's own counters, read from the meter the
// recorder last saw, to a summary.
func (r *Recorder) Platform(s map[string]float64) {
	if r.meter == nil {
		return
	}
	s["atomic_failures"] = float64(r.meter.AtomicFailures)
	s["oom_kills"] = float64(r.meter.OOMKills)
	s["bounce_maps"] = float64(r.meter.BounceMaps)
	s["bounce_bytes"] = float64(r.meter.BounceBytes)
	s["iotlb_flushes"] = float64(r.meter.IOTLBFlushes)
	s["iova_peak_bytes"] = float64(r.meter.IOVAPeak)
	s["sg_segments"] = float64(r.meter.SGSegments)
	s["sg_entries"] = float64(r.meter.SGEntries)
}

// Pair is one batch of the real replay and the null-allocator batch run
// right after it: both saw the same machine.
type Pair struct {
	NS, Events         int64
	NullNS, NullEvents int64
	// GC: the garbage collector ran during the pair; such pairs are left
	// out unless every pair is one.
	GC bool
}

// Host is the host-time measurement of a cell: the replay of the allocator
// and, interleaved batch by batch, of the null allocator over the same
// workload in the same goroutine.
type Host struct {
	NS, Events         int64
	NullNS, NullEvents int64
	Pairs              []Pair
}

// Estimate is a host measurement: a robust mean of its samples and a 95%
// confidence interval for it. Resolved is false when the interval holds
// 0: the model's cost is below what the measurement can tell from the
// harness's, and the value is not to be read as a cost.
type Estimate struct {
	Value, Lo, Hi float64
	Resolved      bool
}

// Trim is the share of samples cut from each end before averaging.
const Trim = 0.2

// estimate summarises samples by their 20% trimmed mean, with the
// Tukey-McLaughlin interval (the winsorized standard error). The samples
// are batch pairs over the same events, so their mean is the cost per
// event; trimming drops the pairs a burst of interference hit, and unlike
// a median it does not jump between the modes of a workload whose phases
// cost differently (a pool that grows, then reuses).
func estimate(samples []float64) Estimate {
	n := len(samples)
	if n == 0 {
		return Estimate{}
	}
	x := slices.Clone(samples)
	slices.Sort(x)
	g := int(Trim * float64(n))
	if n-2*g < 1 {
		g = 0
	}
	var sum float64
	for _, v := range x[g : n-g] {
		sum += v
	}
	mean := sum / float64(n-2*g)
	if n < 3 {
		return Estimate{Value: mean, Lo: x[0], Hi: x[n-1], Resolved: x[0] > 0 || x[n-1] < 0}
	}
	// Winsorize: the trimmed ends take the nearest kept value.
	var wsum, wsq float64
	for i, v := range x {
		v = min(max(v, x[g]), x[n-1-g])
		x[i] = v
		wsum += v
	}
	wmean := wsum / float64(n)
	for _, v := range x {
		wsq += (v - wmean) * (v - wmean)
	}
	se := math.Sqrt(wsq/float64(n-1)) / ((1 - 2*float64(g)/float64(n)) * math.Sqrt(float64(n)))
	lo, hi := mean-1.96*se, mean+1.96*se
	return Estimate{Value: mean, Lo: lo, Hi: hi, Resolved: lo > 0 || hi < 0}
}

// NSPerOp estimates host nanoseconds per allocator operation with the
// harness's own cost per event subtracted: the trimmed mean over batch
// pairs of the per-event difference between the real replay and the null
// one, scaled to operations. It is never clamped: an estimate the measurement cannot
// resolve says so.
func (h Host) NSPerOp(ops int64) Estimate {
	if ops == 0 || h.Events == 0 {
		return Estimate{}
	}
	scale := float64(h.Events) / float64(ops)
	diffs := h.perPair(func(real, null float64) (float64, bool) { return (real - null) * scale, true })
	if len(diffs) == 0 && h.NullEvents > 0 {
		diffs = []float64{(float64(h.NS)/float64(h.Events) - float64(h.NullNS)/float64(h.NullEvents)) * scale}
	}
	return estimate(diffs)
}

// HarnessRatio estimates the model's host cost per event as a multiple
// of the harness's own (the null replay's) in the same batch pairs: the
// trimmed mean over pairs of real/null - 1. A machine that slows down or speeds
// up as a whole moves both alike, so runs on different days or runners
// compare better by it than by nanoseconds.
func (h Host) HarnessRatio() Estimate {
	return estimate(h.perPair(func(real, null float64) (float64, bool) { return real/null - 1, null > 0 }))
}

// perPair applies f to each batch pair's host ns per event, real and
// null, and keeps what f accepts.
func (h Host) perPair(f func(real, null float64) (float64, bool)) []float64 {
	var out []float64
	for _, gcOK := range []bool{false, true} {
		for _, p := range h.Pairs {
			if p.Events > 0 && p.NullEvents > 0 && (!p.GC || gcOK) {
				if v, ok := f(float64(p.NS)/float64(p.Events), float64(p.NullNS)/float64(p.NullEvents)); ok {
					out = append(out, v)
				}
			}
		}
		if len(out) > 0 {
			break
		}
	}
	return out
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Summary returns the cell's metrics by their stable names. Keys starting
// with "host_" are host measurements; every other key is modeled and is the
// same for the same config and seed on any machine.
func (r *Recorder) Summary(h Host) map[string]float64 {
	ns := h.NSPerOp(r.ops())
	fragInternal := 0.0
	if r.PeakReservedBytes > 0 {
		fragInternal = 1 - float64(r.LiveAtReservedPeak)/float64(r.PeakReservedBytes)
	}
	opsPerSec := 0.0
	if r.OpCost > 0 {
		opsPerSec = float64(r.ops()) / float64(r.OpCost) * 1e9
	}
	s := map[string]float64{
		"events":                float64(r.events()),
		"allocs":                float64(r.AllocOK),
		"frees":                 float64(r.Frees),
		"alloc_failures":        float64(r.AllocFail),
		"failure_rate":          ratio(r.AllocFail, r.allocs()),
		"atomic_share":          ratio(r.AtomicAlloc, r.allocs()),
		"maps":                  float64(r.MapOK),
		"unmaps":                float64(r.Unmaps),
		"map_failures":          float64(r.MapFailures),
		"buffer_failures":       float64(r.MapNoMem),
		"peak_live_bytes":       float64(r.PeakLiveBytes),
		"peak_reserved_bytes":   float64(r.PeakReservedBytes),
		"peak_mapped_bytes":     float64(r.PeakMappedBytes),
		"frag_internal":         fragInternal,
		"frag_peak_ratio":       ratio(r.PeakReservedBytes, r.PeakLiveBytes),
		"atomic_reserve_dips":   float64(r.atomicDips()),
		"atomic_alloc_failures": float64(r.AtomicFail),
		"modeled_cpu_ns":        float64(r.OpCost),
		"modeled_ops_per_sec":   opsPerSec,
		"host_ns_per_op":        ns.Value,
		"host_ns_per_op_lo":     ns.Lo,
		"host_ns_per_op_hi":     ns.Hi,
		"host_resolved":         b2f(ns.Resolved),
		"host_harness_ratio":    h.HarnessRatio().Value,
		"latency_p50_ns":        float64(r.Latency.Quantile(0.50)),
		"latency_p99_ns":        float64(r.Latency.Quantile(0.99)),
		"latency_max_ns":        float64(r.Latency.Max),
		"mempool_waits":         float64(r.Waits[dma.WaitMempool].N()),
		"mempool_wait_p99_ns":   float64(r.Waits[dma.WaitMempool].Quantile(0.99)),
		"pool_retry_sleeps":     float64(r.Waits[dma.WaitPoolRetry].N()),
		"reclaim_retry_sleeps":  float64(r.Waits[dma.WaitReclaim].N()),
		"wait_max_ns":           float64(max(r.Waits[dma.WaitMempool].Max, r.Waits[dma.WaitPoolRetry].Max, r.Waits[dma.WaitReclaim].Max)),
		"stalls":                float64(r.Stalls),
		"pool_errors":           float64(r.PoolErrors),
	}
	for k := engine.MisuseUnknownFree; k < engine.NumMisuse; k++ {
		s["misuse_"+k.String()] = float64(r.Misuse[k])
	}
	if r.meter != nil {
		s["modeled_ms"] = float64(r.meter.Now) / float64(dma.Millisecond)
	}
	if r.AllocFail > 0 {
		s["first_alloc_failure_ms"] = float64(r.FirstAllocFail) / float64(dma.Millisecond)
		s["last_alloc_failure_ms"] = float64(r.LastAllocFail) / float64(dma.Millisecond)
	}
	if r.KernelCompared > 0 || r.KernelFailed > 0 {
		s["kernel_compared"] = float64(r.KernelCompared)
		s["kernel_size_differences"] = float64(r.KernelDiffers)
		s["kernel_failures"] = float64(r.KernelFailed)
		s["kernel_failures_served"] = float64(r.KernelFailedServed)
	}
	return s
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
