package dmapool26

import (
	"testing"

	"github.com/dmabench/dmabench/allocators/conformance"
	"github.com/dmabench/dmabench/dma"
)

// TestLayoutQuirk: pool_initialise_page skips to the boundary when the
// block after the next would reach it, so the last block that would end
// exactly at a boundary is never handed out: 63 64-byte blocks a page,
// not 64, and 3 of 1024 bytes, not 4.
func TestLayoutQuirk(t *testing.T) {
	for _, tc := range []struct {
		size, align, boundary int64
		blocks                int
	}{{64, 64, 0, 63}, {1024, 0, 0, 3}, {48, 16, 4096, 85}, {3000, 0, 0, 1}, {4096, 0, 0, 1}, {2, 0, 0, 1023}, {96, 32, 4096, 42}} {
		l, err := NewLayout(tc.size, tc.align, tc.boundary)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Offsets) != tc.blocks {
			t.Errorf("size %d align %d boundary %d: %d blocks, want %d", tc.size, tc.align, tc.boundary, len(l.Offsets), tc.blocks)
		}
	}
}

// TestNewestPageFirst: the page list is searched newest first, and a
// page's chain is LIFO: a block freed on an old page comes back only when
// the newer pages are full.
func TestNewestPageFirst(t *testing.T) {
	p := conformance.NewFlat(64)
	a, err := New(p, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	dev := &dma.Device{Name: "d", Mask: dma.BitMask(32)}
	id, _ := a.CreatePool(dma.PoolSpec{Name: "p", Dev: dev, Size: 2048})
	r := &dma.Request{Size: 2048, GFP: dma.GFPKernel, Dev: dev}
	var bs []dma.Block
	for range 3 { // 1 block a page (2048 + 2048 reaches the boundary)
		b, err := a.Alloc(id, r)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	a.Free(bs[0])
	a.Free(bs[2])
	b, _ := a.Alloc(id, r)
	if b.DMA != bs[2].DMA {
		t.Fatalf("got the block of page %#x, want the newest page's %#x", b.DMA, bs[2].DMA)
	}
	b, _ = a.Alloc(id, r)
	if b.DMA != bs[0].DMA {
		t.Fatalf("got %#x, want the oldest page's freed block %#x", b.DMA, bs[0].DMA)
	}
}

func TestConformance(t *testing.T) {
	f := func() (conformance.Target, error) {
		p := conformance.NewFlat(256)
		a, err := New(p, DefaultConfig())
		return conformance.Target{Alloc: a, Plat: p}, err
	}
	conformance.Run(t, "dmapool-2.6", f, conformance.Options{Ops: 100_000}, 1, 2, 3, 4, 5)
}
