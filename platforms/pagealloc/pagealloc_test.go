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
