package pagealloc

import (
	"math/rand/v2"
	"testing"

	"github.com/dmabench/dmabench/dma"
)

func TestMinFreeKbytes(t *testing.T) {
	for _, tc := range []struct{ lowmem, want int64 }{
		{16 << 10, 512},    // 16 MiB
		{256 << 10, 2048},  // 256 MiB: sqrt(262144*16)
		{1 << 10, 128},     // clamped up
		{1 << 40, 65536},   // clamped down
		{4 << 20, 8192},    // 4 GiB
		{1000 << 10, 4047}, // not a square
	} {
		if got := MinFreeKbytes(tc.lowmem); got != tc.want {
			t.Errorf("MinFreeKbytes(%d) = %d, want %d", tc.lowmem, got, tc.want)
		}
	}
}

func TestWatermarkArithmetic(t *testing.T) {
	// A zone with min = 800 pages: low 1000, high 1200; __GFP_HIGH may go
	// to 400, an atomic __GFP_HIGH caller to 300 (3/8 of min).
	z := Zone{Min: 800, Low: 1000, High: 1200}
	z.NrFree[0] = 1
	for _, tc := range []struct {
		free int64
		w    Watermark
		al   Allowance
		ok   bool
	}{
		{1001, WmarkLow, 0, true}, {1000, WmarkLow, 0, false},
		{801, WmarkMin, 0, true}, {800, WmarkMin, 0, false},
		{401, WmarkMin, AllocHigh, true}, {400, WmarkMin, AllocHigh, false},
		{301, WmarkMin, AllocHigh | AllocHarder, true}, {300, WmarkMin, AllocHigh | AllocHarder, false},
		{1201, WmarkHigh, 0, true}, {1200, WmarkHigh, 0, false},
	} {
		z.FreePages = tc.free
		if got := z.WatermarkOK(0, tc.w, tc.al); got != tc.ok {
			t.Errorf("free %d wmark %d allowance %d: ok=%v, want %v", tc.free, tc.w, tc.al, got, tc.ok)
		}
	}
	if AllowanceFor(dma.GFPAtomic) != AllocHigh|AllocHarder || AllowanceFor(dma.GFPKernel) != 0 {
		t.Fatal("AllowanceFor")
	}
}

func TestAtomicGoesDeeperThanKernel(t *testing.T) {
	a, err := New([]ZoneSpec{{"Normal", 4096}})
	if err != nil {
		t.Fatal(err)
	}
	z := &a.Zones[0]
	var kernel, atomic int
	for {
		if _, _, err := a.Alloc(0, 0, dma.GFPKernel); err != nil {
			break
		}
		kernel++
	}
	if z.FreePages != z.Min {
		t.Fatalf("GFP_KERNEL stopped at %d free pages, want min %d", z.FreePages, z.Min)
	}
	dips := 0
	for {
		_, res, err := a.Alloc(0, 0, dma.GFPAtomic)
		if err != nil {
			break
		}
		if res.Dipped {
			dips++
		}
		atomic++
	}
	want := z.Min - z.Min/2
	want -= want / 4
	if z.FreePages != want {
		t.Fatalf("GFP_ATOMIC stopped at %d free pages, want 3/8 min = %d", z.FreePages, want)
	}
	if dips != atomic || atomic == 0 {
		t.Fatalf("%d atomic allocations below min, %d counted as dips", atomic, dips)
	}
}

func TestBuddyMergesBack(t *testing.T) {
	a, err := New([]ZoneSpec{{"DMA", 4096}, {"Normal", 8192}})
	if err != nil {
		t.Fatal(err)
	}
	total := a.FreePages()
	rng := rand.New(rand.NewPCG(1, 2))
	type blk struct {
		pfn int32
		o   int
	}
	var live []blk
	seen := map[int32]bool{}
	for i := 0; i < 20000; i++ {
		if len(live) > 0 && rng.IntN(2) == 0 {
			k := rng.IntN(len(live))
			b := live[k]
			live[k] = live[len(live)-1]
			live = live[:len(live)-1]
			for p := b.pfn; p < b.pfn+1<<b.o; p++ {
				delete(seen, p)
			}
			a.Free(b.pfn, b.o)
			continue
		}
		o := rng.IntN(4)
		pfn, _, err := a.Alloc(1, o, dma.GFPAtomic)
		if err != nil {
			continue
		}
		if pfn&(1<<o-1) != 0 {
			t.Fatalf("order-%d block at pfn %d is not naturally aligned", o, pfn)
		}
		for p := pfn; p < pfn+1<<o; p++ {
			if seen[p] {
				t.Fatalf("pfn %d handed out twice", p)
			}
			seen[p] = true
		}
		live = append(live, blk{pfn, o})
	}
	for _, b := range live {
		a.Free(b.pfn, b.o)
	}
	if a.FreePages() != total {
		t.Fatalf("%d pages free after freeing everything, want %d", a.FreePages(), total)
	}
	for zi := range a.Zones {
		z := &a.Zones[zi]
		if z.NrFree[dma.MaxOrder]<<dma.MaxOrder != z.FreePages {
			t.Fatalf("zone %s did not merge back into order-%d blocks: %v", z.Name, dma.MaxOrder, z.NrFree)
		}
	}
}

func TestZoneFallback(t *testing.T) {
	a, _ := New([]ZoneSpec{{"DMA", 1024}, {"Normal", 1024}})
	pfn, res, err := a.Alloc(1, 0, dma.GFPKernel)
	if err != nil || res.Zone != 1 || pfn < 1024 {
		t.Fatalf("first allocation pfn %d zone %d err %v, want Normal", pfn, res.Zone, err)
	}
	pfn, res, _ = a.Alloc(0, 0, dma.GFPKernel)
	if res.Zone != 0 || pfn >= 1024 {
		t.Fatalf("ZONE_DMA allocation came from pfn %d", pfn)
	}
}

// TestFragmentationIndices checks the kernel's two indices against values
// computed by hand for a few free-list states.
func TestFragmentationIndices(t *testing.T) {
	cases := []struct {
		nrFree             map[int]int64
		order              int
		unusable, fragment float64
	}{
		// 8 free order-0 pages: an order-2 request fails for fragmentation:
		// unusable = (8 - 0)/8 = 1; index = 1 - (1 + 8/4)/8 = 0.625.
		{map[int]int64{0: 8}, 2, 1, 0.625},
		// one order-3 block: order 2 would succeed (-1), nothing unusable.
		{map[int]int64{3: 1}, 2, 0, -1},
		// 4 order-0 + 1 order-1 (6 pages), order 1: suitable 1 block of
		// order 1 = 2 pages: unusable = (6-2)/6 = 0.666; index -1.
		{map[int]int64{0: 4, 1: 1}, 1, 0.666, -1},
		// 2 order-0 pages, order 4 (16): index = 1 - (1 + 2*1000/16 / 1000)/2
		// = 1000 - (1000+125)/2 = 437.5 -> 438 thousandths (integer
		// division in the kernel: 1125/2 = 562, 1000-562 = 438).
		{map[int]int64{0: 2}, 4, 1, 0.438},
		// nothing free: unusable 1 by definition, index 0.
		{map[int]int64{}, 0, 1, 0},
	}
	for i, tc := range cases {
		a := &Allocator{Zones: []Zone{{}}}
		for o, n := range tc.nrFree {
			a.Zones[0].NrFree[o] = n
		}
		ci := a.Contig(tc.order, nil)
		if u := ci.Unusable(tc.order); u != tc.unusable {
			t.Errorf("case %d: unusable %v, want %v", i, u, tc.unusable)
		}
		if f := ci.FragIndex(tc.order); f != tc.fragment {
			t.Errorf("case %d: fragmentation index %v, want %v", i, f, tc.fragment)
		}
	}
}

func TestPressureAndReclaim(t *testing.T) {
	a, _ := New([]ZoneSpec{{"Normal", 16384}})
	var meter dma.Meter
	m := NewMemory(a, Pressure{FillMiBPerS: 1000, ReclaimMiBPerS: 10, StallUS: 1000, Batch: 32}, &meter)
	z := &a.Zones[0]
	m.Advance(0)
	m.Advance(dma.Second) // the page cache fills to the low watermark
	if z.FreePages > z.Low+1 || m.CachePages() == 0 {
		t.Fatalf("free %d (low %d), cache %d", z.FreePages, z.Low, m.CachePages())
	}
	// Atomic callers may go down to 3/8 of min and never reclaim.
	for {
		if _, _, err := m.Alloc([]int{0}, 0, dma.GFPAtomic); err != nil {
			break
		}
	}
	if m.Stalls != 0 || meter.AtomicDips == 0 || m.MinHeadroom >= 0 {
		t.Fatalf("stalls %d dips %d headroom %d", m.Stalls, meter.AtomicDips, m.MinHeadroom)
	}
	// A sleeping caller reclaims page cache in batches, stalling, and gets
	// its page.
	meter.Cost = 0
	if _, _, err := m.Alloc([]int{0}, 0, dma.GFPKernel); err != nil {
		t.Fatalf("GFP_KERNEL with reclaimable page cache failed: %v", err)
	}
	if m.Stalls == 0 || meter.Cost < dma.Millisecond {
		t.Fatalf("no reclaim stall: stalls %d cost %d", m.Stalls, meter.Cost)
	}
	// kswapd, woken below low, reclaims up to the high watermark (with the
	// page cache no longer growing).
	m.cfg.FillMiBPerS = 0
	m.Advance(100 * dma.Second)
	if z.FreePages < z.High {
		t.Fatalf("kswapd left %d free, high is %d", z.FreePages, z.High)
	}
}
