package iommu

import (
	"errors"
	"testing"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/platforms/pagealloc"
)

func TestDomainTopDownAligned(t *testing.T) {
	d := NewDomain(1)
	a, _ := d.Alloc(1, 1024)
	b, _ := d.Alloc(4, 1024)
	c, _ := d.Alloc(3, 1024) // rounded alignment: 4
	if a != 1023 || b != 1016 || c != 1012 {
		t.Fatalf("got %d %d %d, want 1023 1016 1012 (top-down, size-aligned)", a, b, c)
	}
	d.Free(b)
	// The cached node moves up past the freed range: the hole is found.
	if e, _ := d.Alloc(4, 1024); e != 1016 {
		t.Fatalf("got %d, want the freed 1016", e)
	}
	if d.Pages != 1+4+3 || d.Live() != 3 {
		t.Fatalf("pages %d live %d", d.Pages, d.Live())
	}
}

func TestDomainExhaustionAndRetry(t *testing.T) {
	d := NewDomain(1)
	var got []uint64
	for {
		p, ok := d.Alloc(1, 65)
		if !ok {
			break
		}
		got = append(got, p)
	}
	if len(got) != 64 {
		t.Fatalf("%d single pages fitted below 65 (from 1), want 64", len(got))
	}
	d.Free(got[10]) // a hole low down, below the cached node
	if p, ok := d.Alloc(1, 65); !ok || p != got[10] {
		t.Fatalf("retry from the top missed the hole: %d %v", p, ok)
	}
	if _, ok := d.Alloc(1, 65); ok {
		t.Fatal("allocated in a full domain")
	}
}

func newMachine(t *testing.T, cfg Config) (*dma.Platform, *Machine) {
	var meter dma.Meter
	p, m, err := New(cfg, pagealloc.DefaultPressure(), &meter)
	if err != nil {
		t.Fatal(err)
	}
	return p, m
}

func TestMapFailsWhenApertureExhausted(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ApertureMiB = 1 // 256 pages, the first reserved
	cfg.RCache = false
	p, _ := newMachine(t, cfg)
	dev := &dma.Device{Name: "nic", Mask: dma.BitMask(32)}
	n := 0
	for ; n < 1000; n++ {
		b, err := p.Mapper.Map(dev, 4096, dma.FromDevice, dma.GFPAtomic)
		if err != nil {
			if !errors.Is(err, dma.ErrMapFailed) {
				t.Fatalf("error %v, want ErrMapFailed", err)
			}
			break
		}
		if b.DMA < 4096 || b.DMA+4096 > 1<<20 {
			t.Fatalf("iova %#x outside the aperture", b.DMA)
		}
	}
	if n != 255 {
		t.Fatalf("%d maps fitted a 255-page aperture", n)
	}
}

func TestFragmentedApertureFails(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ApertureMiB = 1
	cfg.RCache = false
	p, _ := newMachine(t, cfg)
	dev := &dma.Device{Name: "nic", Mask: dma.BitMask(32)}
	var maps []dma.Block
	for {
		b, err := p.Mapper.Map(dev, 4096, dma.FromDevice, dma.GFPAtomic)
		if err != nil {
			break
		}
		maps = append(maps, b)
	}
	for i := 0; i < len(maps); i += 2 {
		p.Mapper.Unmap(maps[i], dma.FromDevice) // half the space, no two pages together
	}
	if _, err := p.Mapper.Map(dev, 8192, dma.FromDevice, dma.GFPAtomic); !errors.Is(err, dma.ErrMapFailed) {
		t.Fatalf("8 KiB map in a fragmented aperture: %v, want ErrMapFailed", err)
	}
	if _, err := p.Mapper.Map(dev, 4096, dma.FromDevice, dma.GFPAtomic); err != nil {
		t.Fatalf("4 KiB map: %v", err)
	}
}

func TestLazyFlushesOncePerQueue(t *testing.T) {
	for _, tc := range []struct {
		mode     string
		unmaps   int
		flushes  int64
		costEach dma.Time
	}{
		{"strict", 1000, 1000, 600},
		{"lazy", 1024, 4, 100},
	} {
		cfg := DefaultConfig()
		cfg.Mode = tc.mode
		p, _ := newMachine(t, cfg)
		dev := &dma.Device{Name: "nic", Mask: dma.BitMask(32)}
		for i := 0; i < tc.unmaps; i++ {
			b, err := p.Mapper.Map(dev, 2048, dma.FromDevice, dma.GFPAtomic)
			if err != nil {
				t.Fatal(err)
			}
			p.Meter.Cost = 0
			p.Mapper.Unmap(b, dma.FromDevice)
			if tc.mode == "strict" && p.Meter.Cost != tc.costEach+100 {
				t.Fatalf("strict unmap cost %d", p.Meter.Cost)
			}
		}
		if p.Meter.IOTLBFlushes != tc.flushes {
			t.Errorf("%s: %d invalidations for %d unmaps, want %d", tc.mode, p.Meter.IOTLBFlushes, tc.unmaps, tc.flushes)
		}
	}
}

func TestLazyTimerFlush(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Mode = "lazy"
	p, m := newMachine(t, cfg)
	dev := &dma.Device{Name: "nic", Mask: dma.BitMask(32)}
	b, _ := p.Mapper.Map(dev, 2048, dma.FromDevice, dma.GFPAtomic)
	p.Mapper.Unmap(b, dma.FromDevice)
	if p.Meter.IOTLBFlushes != 0 || m.Domain().Pages == 0 {
		t.Fatal("lazy unmap flushed at once")
	}
	p.Meter.Now = 10 * dma.Millisecond
	p.Mapper.Map(dev, 2048, dma.FromDevice, dma.GFPAtomic)
	if p.Meter.IOTLBFlushes != 1 {
		t.Fatalf("no flush 10 ms after the oldest queued unmap")
	}
}

func TestCoherentTakesIOVA(t *testing.T) {
	p, m := newMachine(t, DefaultConfig())
	dev := &dma.Device{Name: "d", Mask: dma.BitMask(32)}
	b, err := p.Pages.AllocPages(dev, 2, dma.GFPKernel)
	if err != nil || m.Domain().Pages < 4 || b.DMA == b.CPU-PageOffset {
		t.Fatalf("coherent block %+v err %v iova pages %d", b, err, m.Domain().Pages)
	}
	if !m.InAperture(b.DMA, b.Size) {
		t.Fatal("outside the aperture")
	}
}
