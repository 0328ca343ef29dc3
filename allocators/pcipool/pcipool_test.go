package pcipool

import (
	"testing"

	"github.com/dmabench/dmabench/allocators/conformance"
	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/engine"
)

var dev32 = &dma.Device{Name: "pci", Mask: dma.BitMask(32)}

func TestLayoutQuirk(t *testing.T) {
	for _, tc := range []struct {
		size, align, allocation int64
		want                    Layout
	}{
		{63, 32, 0, Layout{96, 4096, 42}},    // 63 % 32 == 31: one align too many
		{95, 32, 0, Layout{128, 4096, 32}},   // likewise
		{50, 16, 0, Layout{64, 4096, 64}},    // ordinary rounding
		{64, 32, 0, Layout{64, 4096, 64}},    // already aligned
		{8, 16, 0, Layout{16, 4096, 256}},    // smaller than align
		{48, 16, 0, Layout{48, 4096, 85}},    // uhci_td
		{96, 32, 4096, Layout{96, 4096, 42}}, // ehci_qtd: allocation is the boundary
		{200, 8, 1024, Layout{200, 1024, 5}},
		{5000, 8, 0, Layout{5000, 5000, 1}},
	} {
		got, err := NewLayout(tc.size, tc.align, tc.allocation)
		if err != nil || got != tc.want {
			t.Errorf("NewLayout(%d,%d,%d) = %+v, %v; want %+v", tc.size, tc.align, tc.allocation, got, err, tc.want)
		}
	}
	for _, bad := range [][3]int64{{0, 8, 0}, {64, 3, 0}, {4096, 8, 1024}} {
		if _, err := NewLayout(bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("NewLayout%v accepted", bad)
		}
	}
}

func newAlloc(t testing.TB) (*Allocator, *dma.Platform) {
	p := conformance.NewFlat(256)
	a, err := New(p, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return a, p
}

func TestNewestChunkFirstLowestBlock(t *testing.T) {
	a, p := newAlloc(t)
	id, _ := a.CreatePool(dma.PoolSpec{Name: "td", Dev: dev32, Size: 64, Align: 64})
	r := &dma.Request{Size: 64, GFP: dma.GFPAtomic, Dev: dev32}
	var first []dma.Block
	for i := 0; i < 64; i++ {
		b, _ := a.Alloc(id, r)
		first = append(first, b)
	}
	second, _ := a.Alloc(id, r) // chunk 2
	a.Free(first[10])
	a.Free(first[5])
	b, _ := a.Alloc(id, r)
	if b.DMA != second.DMA+64 {
		t.Fatalf("got %#x: the newest chunk (at %#x) is scanned first", b.DMA, second.DMA)
	}
	// Fill chunk 2; the next block is the lowest free one of chunk 1.
	for i := 0; i < 62; i++ {
		a.Alloc(id, r)
	}
	if b, _ := a.Alloc(id, r); b.DMA != first[5].DMA {
		t.Fatalf("got %#x, want the lowest free block %#x", b.DMA, first[5].DMA)
	}
	for _, blk := range first {
		if blk.DMA != first[5].DMA {
			a.Free(blk)
		}
	}
	if p.Meter.CoherentBytes != 2*4096 {
		t.Fatalf("holding %d bytes: chunks are never returned before destroy", p.Meter.CoherentBytes)
	}
}

func TestConformance(t *testing.T) {
	f := func() (conformance.Target, error) {
		p := conformance.NewFlat(256)
		a, err := New(p, DefaultConfig())
		return conformance.Target{Alloc: a, Plat: p}, err
	}
	conformance.Run(t, "pcipool", f, conformance.Options{Ops: 100_000}, 1, 2, 3)
}

type rec struct{ outs []engine.Outcome }

func (r *rec) Record(o *engine.Outcome) {
	c := *o
	ev := *o.Event
	c.Event = &ev
	r.outs = append(r.outs, c)
}

// bigPool fills the 16 MiB ISA arena of a flat platform with 1 MiB
// blocks: 15 from the pool, one by size.
func bigPool(isa *dma.Device) []dma.Event {
	evs := []dma.Event{{Kind: dma.PoolCreate, ID: 0, Pool: dma.NoPool, Dev: isa, Size: 1 << 20, Name: "big"}}
	for i := 0; i < 15; i++ {
		evs = append(evs, dma.Event{Kind: dma.Alloc, ID: dma.ID(i), Pool: 0, Size: 1 << 20, GFP: dma.GFPKernel, Dev: isa})
	}
	return append(evs, dma.Event{Kind: dma.Alloc, ID: 15, Pool: dma.NoPool, Size: 1 << 20, GFP: dma.GFPKernel, Dev: isa})
}

func find(r *rec, id dma.ID, kind dma.Kind) *engine.Outcome {
	for i := range r.outs {
		if o := &r.outs[i]; o.Event.ID == id && o.Event.Kind == kind {
			return o
		}
	}
	return nil
}

// TestSlabKernelSleepsAndRetries: with no pages left, a SLAB_KERNEL caller
// sleeps 100 ms at a time; memory freed outside the pool (no wakeup) lets
// its third retry through, at 300 ms. Other callers fail at once.
func TestSlabKernelSleepsAndRetries(t *testing.T) {
	a, p := newAlloc(t)
	isa := &dma.Device{Name: "isa", Mask: dma.BitMask(24)}
	setup := bigPool(isa)
	sleeper := &dma.List{Events: []dma.Event{
		{At: 1, Kind: dma.Alloc, ID: 16, Pool: 0, Size: 1 << 20, GFP: dma.GFPNoIO, Dev: isa},
		{At: 2, Kind: dma.Alloc, ID: 17, Pool: 0, Size: 1 << 20, GFP: dma.GFPKernel, Dev: isa},
	}}
	freer := &dma.List{Events: []dma.Event{{At: 250 * dma.Millisecond, Kind: dma.Free, ID: 15, Pool: dma.NoPool, Dev: isa}}}
	var r rec
	e := engine.New(p, a, &r, conformance.Group{&dma.List{Events: setup}, sleeper, freer})
	if _, err := e.Run(0); err != nil {
		t.Fatal(err)
	}
	if o := find(&r, 16, dma.Alloc); o == nil || o.Err != dma.ErrNoMem {
		t.Fatalf("GFP_NOIO caller: %+v, want an immediate failure", o)
	}
	o := find(&r, 17, dma.Alloc)
	if o == nil || o.Err != nil {
		t.Fatalf("SLAB_KERNEL caller: %+v, want success after sleeping", o)
	}
	if o.Event.At != 2+300*dma.Millisecond || o.Wait != 300*dma.Millisecond || o.WaitKind != dma.WaitPoolRetry {
		t.Fatalf("served at %d after waiting %d, want the third 100 ms retry (300 ms)", o.Event.At, o.Wait)
	}
	if e.Retries != 2 {
		t.Fatalf("%d retries blocked again, want 2", e.Retries)
	}
}

// TestFreeInPoolWakesSleeper: pci_pool_free wakes the pool's sleepers, so
// a block freed at 42 ms ends the sleep at 42 ms, not at the next retry.
func TestFreeInPoolWakesSleeper(t *testing.T) {
	a, p := newAlloc(t)
	isa := &dma.Device{Name: "isa", Mask: dma.BitMask(24)}
	sleeper := &dma.List{Events: []dma.Event{{At: 2, Kind: dma.Alloc, ID: 17, Pool: 0, Size: 1 << 20, GFP: dma.GFPKernel, Dev: isa}}}
	irq := &dma.List{Events: []dma.Event{{At: 42 * dma.Millisecond, Kind: dma.Free, ID: 3, Pool: 0, Dev: isa, Ctx: dma.HardIRQ}}}
	var r rec
	e := engine.New(p, a, &r, conformance.Group{&dma.List{Events: bigPool(isa)}, sleeper, irq})
	if _, err := e.Run(0); err != nil {
		t.Fatal(err)
	}
	o := find(&r, 17, dma.Alloc)
	if o == nil || o.Err != nil || o.Event.At != 42*dma.Millisecond {
		t.Fatalf("sleeper: %+v, want success at 42 ms", o)
	}
}

// TestNobodyWakesIsAStall: a sleeper that nothing can help is reported as
// a stall once it has slept past the limit, and its thread stops.
func TestNobodyWakesIsAStall(t *testing.T) {
	a, p := newAlloc(t)
	isa := &dma.Device{Name: "isa", Mask: dma.BitMask(24)}
	sleeper := &dma.List{Events: []dma.Event{{At: 2, Kind: dma.Alloc, ID: 17, Pool: 0, Size: 1 << 20, GFP: dma.GFPKernel, Dev: isa}}}
	var r rec
	e := engine.New(p, a, &r, conformance.Group{&dma.List{Events: bigPool(isa)}, sleeper})
	e.StallAfter = dma.Second
	if _, err := e.Run(0); err != nil {
		t.Fatal(err)
	}
	o := find(&r, 17, dma.Alloc)
	if o == nil || o.Err != engine.ErrStalled || o.Wait < dma.Second {
		t.Fatalf("sleeper: %+v, want a stall after 1 s", o)
	}
}
