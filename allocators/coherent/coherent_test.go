package coherent

import (
	"testing"

	"github.com/dmabench/dmabench/allocators/conformance"
	"github.com/dmabench/dmabench/dma"
)

func TestEveryBlockIsPages(t *testing.T) {
	p := conformance.NewFlat(256)
	a, _ := New(p, DefaultConfig())
	dev := &dma.Device{Name: "d", Mask: dma.BitMask(32)}
	id, _ := a.CreatePool(dma.PoolSpec{Name: "td", Dev: dev, Size: 48, Align: 16})
	for i := 0; i < 10; i++ {
		if b, err := a.Alloc(id, &dma.Request{Size: 48, GFP: dma.GFPKernel, Dev: dev}); err != nil || b.Size != 4096 {
			t.Fatalf("48-byte TD took %d bytes (%v)", b.Size, err)
		}
	}
	if p.Meter.CoherentBytes != 10*4096 {
		t.Fatalf("held %d", p.Meter.CoherentBytes)
	}
	if b, _ := a.Alloc(dma.NoPool, &dma.Request{Size: 5000, GFP: dma.GFPKernel, Dev: dev}); b.Size != 8192 {
		t.Fatalf("5000 bytes took %d", b.Size)
	}
}

func TestCoherentGFPKnob(t *testing.T) {
	if dma.CoherentAtomic.Apply(dma.GFPKernel|dma.GFPDMA) != dma.GFPAtomic|dma.GFPDMA || dma.CoherentCaller.Apply(dma.GFPKernel) != dma.GFPKernel {
		t.Fatal("Apply")
	}
	if _, err := New(conformance.NewFlat(64), Config{CoherentGFP: "sometimes"}); err == nil {
		t.Fatal("bad knob accepted")
	}
}

func TestConformance(t *testing.T) {
	f := func() (conformance.Target, error) {
		p := conformance.NewFlat(512)
		a, err := New(p, DefaultConfig())
		return conformance.Target{Alloc: a, Plat: p}, err
	}
	conformance.Run(t, "coherent", f, conformance.Options{Ops: 50_000, MaxLive: 500}, 1, 2)
}
