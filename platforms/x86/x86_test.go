package x86

import (
	"testing"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/platforms/pagealloc"
)

func TestZoneDMAForNarrowMasks(t *testing.T) {
	var m dma.Meter
	p, _, err := New(DefaultConfig(), pagealloc.DefaultPressure(), &m)
	if err != nil {
		t.Fatal(err)
	}
	isa := &dma.Device{Name: "isa", Mask: dma.BitMask(24)}
	pci := &dma.Device{Name: "pci", Mask: dma.BitMask(32)}
	for i := 0; i < 100; i++ {
		b, err := p.Pages.AllocPages(isa, 0, dma.GFPKernel)
		if err != nil {
			t.Fatal(err)
		}
		if b.DMA+uint64(b.Size) > 16<<20 {
			t.Fatalf("24-bit device got %#x, above ZONE_DMA", b.DMA)
		}
		if b.CPU != PageOffset+b.DMA {
			t.Fatalf("cpu %#x dma %#x: not the linear map", b.CPU, b.DMA)
		}
	}
	b, err := p.Pages.AllocPages(pci, 0, dma.GFPKernel)
	if err != nil || b.DMA < 16<<20 {
		t.Fatalf("32-bit device got %#x (%v), want ZONE_NORMAL first", b.DMA, err)
	}
	if m.CoherentBytes != 101*4096 {
		t.Fatalf("meter says %d coherent bytes", m.CoherentBytes)
	}
}

func TestMapsAreFreeAndInfallible(t *testing.T) {
	var m dma.Meter
	p, _, _ := New(DefaultConfig(), pagealloc.DefaultPressure(), &m)
	dev := &dma.Device{Name: "nic", Mask: dma.BitMask(32)}
	for i := 0; i < 1000; i++ {
		b, err := p.Mapper.Map(dev, 2048, dma.FromDevice, dma.GFPAtomic)
		if err != nil {
			t.Fatal(err)
		}
		if b.DMA+PageOffset != b.CPU {
			t.Fatal("bus address is not the physical address")
		}
		p.Mapper.Unmap(b, dma.FromDevice)
	}
	if m.BufferBytes != 0 {
		t.Fatalf("%d buffer bytes still held", m.BufferBytes)
	}
	if m.Cost != dma.Time(1000*(DefaultConfig().MapNS+DefaultConfig().UnmapNS+DefaultConfig().PageAllocNS+DefaultConfig().PageFreeNS)) {
		t.Fatalf("modeled cost %d", m.Cost)
	}
}

func TestValidate(t *testing.T) {
	bad := DefaultConfig()
	bad.RAMMiB = 8
	if bad.Validate() == nil {
		t.Fatal("8 MiB accepted")
	}
	bad = DefaultConfig()
	bad.CacheLine = 100
	if bad.Validate() == nil {
		t.Fatal("cache line 100 accepted")
	}
}
