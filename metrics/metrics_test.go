package metrics

import (
	"errors"
	"math"
	"testing"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/engine"
)

func TestFragmentationAtReservedPeak(t *testing.T) {
	var r Recorder
	m := &dma.Meter{}
	step := func(kind dma.Kind, gfp dma.GFP, bytes, reserved int64, err error) {
		m.CoherentBytes = reserved
		r.Record(&engine.Outcome{Event: &dma.Event{Kind: kind, GFP: gfp}, Bytes: bytes, Meter: m, Err: err, Cost: 10})
	}
	step(dma.Alloc, dma.GFPAtomic, 100, 4096, nil)
	step(dma.Alloc, dma.GFPKernel, 1000, 8192, nil) // reserved peaks with 1100 live
	step(dma.Free, 0, 100, 8192, nil)
	step(dma.Alloc, dma.GFPAtomic, 50, 8192, dma.ErrNoMem)
	step(dma.Alloc, dma.GFPKernel, 2000, 8192, nil) // live peaks at 3000
	s := r.Summary(Host{})
	want := map[string]float64{
		"allocs": 3, "frees": 1, "alloc_failures": 1, "failure_rate": 0.25, "atomic_share": 0.5,
		"peak_live_bytes": 3000, "peak_reserved_bytes": 8192,
		"frag_internal": 1 - 1100.0/8192, "frag_peak_ratio": 8192.0 / 3000,
		"modeled_ops_per_sec": 5 / 50e-9,
	}
	for k, v := range want {
		if d := s[k] - v; d > 1e-9 || d < -1e-9 {
			t.Errorf("%s = %v, want %v", k, s[k], v)
		}
	}
}

func TestMapFailuresApart(t *testing.T) {
	var r Recorder
	m := &dma.Meter{}
	for _, err := range []error{nil, dma.ErrMapFailed, errors.Join(dma.ErrNoMem)} {
		r.Record(&engine.Outcome{Event: &dma.Event{Kind: dma.Map}, Bytes: 2048, Meter: m, Err: err})
	}
	s := r.Summary(Host{})
	if s["maps"] != 1 || s["map_failures"] != 1 || s["buffer_failures"] != 1 || s["peak_live_bytes"] != 0 || s["peak_mapped_bytes"] != 2048 {
		t.Fatalf("%v", s)
	}
}

// TestMismatchedUnmapUnmaps: an unmap of another size than its map is
// misuse, and still unmaps what was mapped.
func TestMismatchedUnmapUnmaps(t *testing.T) {
	var r Recorder
	m := &dma.Meter{}
	r.Record(&engine.Outcome{Event: &dma.Event{Kind: dma.Map, Size: 2048}, Bytes: 2048, Meter: m, Cost: 5})
	r.Record(&engine.Outcome{Event: &dma.Event{Kind: dma.Unmap, Size: 4096}, Misuse: engine.MisuseMismatch, Bytes: 2048, Meter: m, Cost: 7})
	r.Record(&engine.Outcome{Event: &dma.Event{Kind: dma.Unmap, Size: 4096}, Misuse: engine.MisuseDoubleFree, Meter: m, Cost: 0})
	if r.MappedBytes != 0 || r.PeakMappedBytes != 2048 || r.OpCost != 12 || r.Misuse[engine.MisuseMismatch] != 1 || r.Misuse[engine.MisuseDoubleFree] != 1 {
		t.Fatalf("mapped %d, peak %d, cost %d, misuse %v", r.MappedBytes, r.PeakMappedBytes, r.OpCost, r.Misuse)
	}
}

// TestHostSubtraction: the harness's cost is subtracted, and a model
// cheaper than the measurement can resolve is flagged, not clamped to 0.
func TestHostSubtraction(t *testing.T) {
	h := Host{NS: 3000, Events: 100, NullNS: 1000, NullEvents: 100}
	if got := h.NSPerOp(50); got.Value != 40 {
		t.Fatalf("NSPerOp = %v, want (3000-1000)/50", got)
	}
	h.NullNS = 5000
	if got := h.NSPerOp(50); got.Value != -40 {
		t.Fatalf("a negative difference must stay as measured: %v", got)
	}
	// Pairs around zero: unresolved, whatever the median.
	var noisy Host
	for i, d := range []int64{-30, 20, -10, 40, 5, -25, 15, 0, 35, -5, 10} {
		noisy.Pairs = append(noisy.Pairs, Pair{NS: 1000 + d, Events: 100, NullNS: 1000, NullEvents: 100})
		noisy.Events += 100
		_ = i
	}
	if got := noisy.NSPerOp(noisy.Events); got.Resolved || got.Lo > 0 || got.Hi < 0 {
		t.Fatalf("noise around 0 read as a cost: %+v", got)
	}
	var clear Host
	for _, d := range []int64{300, 310, 305, 290, 320, 300, 298, 302, 301, 299, 303} {
		clear.Pairs = append(clear.Pairs, Pair{NS: 1000 + d, Events: 100, NullNS: 1000, NullEvents: 100})
		clear.Events += 100
	}
	if got := clear.NSPerOp(clear.Events); !got.Resolved || math.Abs(got.Value-3.014) > 0.001 || got.Lo > got.Value || got.Hi < got.Value {
		t.Fatalf("a clear cost: %+v", got)
	}
}

// TestHarnessRatioIgnoresAUniformSlowdown: the ratio is the trimmed mean
// over batch pairs of real/null - 1, so a machine that runs both at half
// speed gives the same figure while ns per op doubles, and one disturbed
// pair in ten does not move it.
func TestHarnessRatioIgnoresAUniformSlowdown(t *testing.T) {
	fast := Host{Events: 1000}
	for i := range 10 {
		p := Pair{NS: 3000, Events: 100, NullNS: 1000, NullEvents: 100}
		if i == 7 {
			p.NS = 90000 // a burst of interference
		}
		fast.Pairs = append(fast.Pairs, p)
	}
	slow := Host{Events: 1000}
	for _, p := range fast.Pairs {
		p.NS, p.NullNS = 2*p.NS, 2*p.NullNS
		slow.Pairs = append(slow.Pairs, p)
	}
	if a, b := fast.HarnessRatio().Value, slow.HarnessRatio().Value; a != 2 || b != 2 {
		t.Fatalf("ratios %v and %v, want 2 and 2", a, b)
	}
	if a, b := fast.NSPerOp(1000).Value, slow.NSPerOp(1000).Value; b != 2*a || a != 20 {
		t.Fatalf("ns per op %v and %v: the slow machine should read twice the fast one", a, b)
	}
	if (Host{}).HarnessRatio().Value != 0 {
		t.Fatal("no pairs: want 0")
	}
}

// TestWhenAllocationsFail: the first and last failed allocation are placed
// in modeled time, and a cell without failures has neither key.
func TestWhenAllocationsFail(t *testing.T) {
	var r Recorder
	m := &dma.Meter{}
	step := func(at dma.Time, err error) {
		m.Now = at // as the engine sets it for each event
		r.Record(&engine.Outcome{Event: &dma.Event{Kind: dma.Alloc, At: at, GFP: dma.GFPAtomic}, Bytes: 64, Meter: m, Err: err})
	}
	step(1*dma.Millisecond, nil)
	s := r.Summary(Host{})
	if _, ok := s["first_alloc_failure_ms"]; ok || s["modeled_ms"] != 1 {
		t.Fatalf("no failure yet: %v", s)
	}
	step(2*dma.Millisecond, dma.ErrNoMem)
	step(3*dma.Millisecond, nil)
	step(7500*dma.Microsecond, dma.ErrNoMem)
	step(9*dma.Millisecond, nil)
	s = r.Summary(Host{})
	if s["first_alloc_failure_ms"] != 2 || s["last_alloc_failure_ms"] != 7.5 || s["modeled_ms"] != 9 || s["alloc_failures"] != 2 {
		t.Fatalf("%v", s)
	}
}
