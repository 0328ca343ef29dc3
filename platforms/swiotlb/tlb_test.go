package swiotlb

import (
	"errors"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/dma"
)

// TestKernelArithmetic: the sizes the kernel's constants give.
func TestKernelArithmetic(t *testing.T) {
	for _, tc := range []struct{ got, want int64 }{
		{SlotsFor(64 << 20), 32768},
		{SlotsFor(1 << 30), 524288},
		{SlotsFor(1), SegSize},        // rounded up to a segment
		{SlotsFor(245 << 20), 125440}, // 6% of 4 GiB, as a CVM sizes it
		{CCSize(4 << 30), 4 << 30 * 6 / 100},
		{CCSize(512 << 20), 64 << 20},  // clamped up
		{CCSize(64 << 30), 1 << 30},    // clamped down
		{MaxMapping(0), 256 << 10},     // one segment
		{MaxMapping(4095), 252 << 10},  // NVMe's min_align_mask
		{int64(Areas(32768, 6, 0)), 8}, // CPUs rounded up to a power of two
		{int64(Areas(32768, 8, 2)), 2}, // swiotlb=,2
		{int64(Areas(256, 64, 0)), 2},  // each area keeps a segment
	} {
		if tc.got != tc.want {
			t.Errorf("got %d, want %d", tc.got, tc.want)
		}
	}
}

func mustNew(t *testing.T, slots int64, areas int, src PageSource) *TLB {
	t.Helper()
	tlb, err := New(1<<30, slots, areas, src)
	if err != nil {
		t.Fatal(err)
	}
	return tlb
}

// TestOneSegmentAtMost: a mapping of one whole segment succeeds, one byte
// more never does, however empty the pool; a device's minimum alignment
// takes its share of the segment.
func TestOneSegmentAtMost(t *testing.T) {
	tlb := mustNew(t, 1024, 1, nil)
	if _, h, err := tlb.Map(0, 0, SlotSize*SegSize, 0, 0); err != nil {
		t.Fatalf("a 256 KiB mapping: %v", err)
	} else {
		tlb.Unmap(h)
	}
	if _, _, err := tlb.Map(0, 0, SlotSize*SegSize+1, 0, 0); !errors.Is(err, dma.ErrMapFailed) || tlb.Stats.Oversize != 1 {
		t.Fatalf("256 KiB + 1: %v, oversize %d", err, tlb.Stats.Oversize)
	}
	// NVMe: a buffer at offset 0x200 within its page keeps that offset,
	// so 252 KiB fit and 252 KiB + 3.5 KiB (to the segment's end) do not.
	if _, h, err := tlb.Map(0, 0x10200, MaxMapping(4095), 4095, 0); err != nil {
		t.Fatalf("NVMe's largest mapping: %v", err)
	} else {
		tlb.Unmap(h)
	}
	if _, _, err := tlb.Map(0, 0x10200, SlotSize*SegSize-0x200+1, 4095, 0); err == nil {
		t.Fatal("a mapping past the segment with its offset succeeded")
	}
}

// TestAlignmentMovesTheSlot: the search as the kernel's: a device's
// min_align_mask keeps the buffer's offset bits (slot chosen accordingly,
// the address keeping the offset within a slot); a mapping of a page or
// more with no mask is page aligned; alloc_align_mask is honoured.
func TestAlignmentMovesTheSlot(t *testing.T) {
	base := uint64(1 << 30)
	tlb := mustNew(t, 1024, 1, nil)
	// Slot 0 taken by a small mapping.
	a0, _, _ := tlb.Map(0, 0, 100, 0, 0)
	if a0 != base {
		t.Fatalf("first mapping at %#x, want %#x", a0, base)
	}
	// min_align_mask 0xfff, buffer at page offset 0x980: bit 11 (0x800)
	// must match, so an odd slot; the address keeps 0x180.
	a, _, _ := tlb.Map(0, 0x7000_0980, 512, 0xfff, 0)
	if a != base+1*SlotSize+0x180 {
		t.Errorf("min_align_mask mapping at %#x, want %#x", a, base+SlotSize+0x180)
	}
	// A page with no mask: page aligned, so not slot 2 (taken? no: slot 2
	// is free and page aligned).
	a, _, _ = tlb.Map(0, 0x7000_0000, dma.PageSize, 0, 0)
	if (a-base)%uint64(dma.PageSize) != 0 {
		t.Errorf("page mapping at %#x: not page aligned", a)
	}
	// alloc_align_mask 16 KiB - 1.
	a, _, _ = tlb.Map(0, 0, 100, 0, 16<<10-1)
	if (a-base)%(16<<10) != 0 {
		t.Errorf("alloc_align_mask mapping at %#x", a)
	}
}

// TestFullAndRelease: a full pool fails with the kernel's message and
// used count; releasing everything restores every free run.
func TestFullAndRelease(t *testing.T) {
	tlb := mustNew(t, 256, 1, nil)
	var hs []Handle
	for i := 0; i < 64; i++ { // 64 mappings of 3 slots leave 64 slots
		_, h, err := tlb.Map(0, 0, 3*SlotSize-100, 0, 0)
		if err != nil {
			t.Fatalf("mapping %d: %v", i, err)
		}
		hs = append(hs, h)
	}
	if _, _, err := tlb.Map(0, 0, 80*SlotSize, 0, 0); err == nil {
		t.Fatal("80 slots mapped in a pool with 64 left in pieces")
	}
	if want := "swiotlb buffer is full (sz: 163840 bytes), total 256 (slots), used 192 (slots)"; tlb.Stats.LastFull != want || tlb.Stats.Full != 1 {
		t.Errorf("full: %q (%d), want %q", tlb.Stats.LastFull, tlb.Stats.Full, want)
	}
	if tlb.Stats.Peak != 192 {
		t.Errorf("high-water mark %d, want 192", tlb.Stats.Peak)
	}
	for _, h := range hs {
		tlb.Unmap(h)
	}
	p := tlb.pools[0]
	for i, n := range p.list {
		if n != int32(SegSize-i%SegSize) || p.used != 0 {
			t.Fatalf("slot %d: free run %d after releasing all (used %d)", i, n, p.used)
		}
	}
}

// TestAreasByCPU: each CPU searches its own area first.
func TestAreasByCPU(t *testing.T) {
	tlb := mustNew(t, 1024, 4, nil)
	for cpu := 0; cpu < 4; cpu++ {
		a, _, err := tlb.Map(cpu, 0, 100, 0, 0)
		if err != nil || (a-1<<30)>>SlotShift != uint64(cpu*256) {
			t.Errorf("cpu %d mapped at slot %d (%v), want %d", cpu, (a-1<<30)>>SlotShift, err, cpu*256)
		}
	}
	// An area full: its CPU moves on to the next.
	for i := 0; i < 255; i++ {
		if _, _, err := tlb.Map(1, 0, 100, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	if a, _, _ := tlb.Map(1, 0, 100, 0, 0); (a-1<<30)>>SlotShift < 512 {
		t.Errorf("cpu 1 with its area full mapped at slot %d, want area 2's", (a-1<<30)>>SlotShift)
	}
}

type pages struct {
	next  int32
	fail  bool
	freed int
}

func (p *pages) AllocLow(order int, atomic bool) (int32, bool) {
	if p.fail {
		return 0, false
	}
	pfn := p.next
	p.next += 1 << order
	return pfn + 1<<20, true
}

func (p *pages) FreeLow(int32, int) { p.freed++ }

// TestDynamic: with CONFIG_SWIOTLB_DYNAMIC a mapping that finds no slot
// gets a transient pool, given back at its unmap, and the worker adds a
// pool before the next mapping; without pages, it fails as before.
func TestDynamic(t *testing.T) {
	src := &pages{}
	tlb := mustNew(t, 128, 1, src)
	if _, _, err := tlb.Map(0, 0, 128*SlotSize, 0, 0); err != nil {
		t.Fatal(err)
	}
	_, h, err := tlb.Map(0, 0, 8*SlotSize, 0, 0)
	if err != nil || tlb.Stats.Transient != 1 {
		t.Fatalf("transient pool: %v (%d)", err, tlb.Stats.Transient)
	}
	tlb.Unmap(h)
	if src.freed != 1 {
		t.Errorf("the transient pool was not given back")
	}
	if _, _, err := tlb.Map(0, 0, 8*SlotSize, 0, 0); err != nil || tlb.Stats.Grown != 1 || tlb.Stats.Slots != 256 {
		t.Errorf("after the worker: %v, grown %d, slots %d", err, tlb.Stats.Grown, tlb.Stats.Slots)
	}
	src.fail = true
	tlb2 := mustNew(t, 128, 1, src)
	tlb2.Map(0, 0, 128*SlotSize, 0, 0)
	if _, _, err := tlb2.Map(0, 0, SlotSize, 0, 0); err == nil || !strings.Contains(err.Error(), "swiotlb buffer is full") {
		t.Errorf("no pages: %v", err)
	}
}
