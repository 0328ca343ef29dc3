package sa1111

import (
	"errors"
	"testing"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/platforms/pagealloc"
)

func newMachine(t *testing.T, cfg Config) (*dma.Platform, *Machine) {
	var meter dma.Meter
	p, m, err := New(cfg, pagealloc.DefaultPressure(), &meter)
	if err != nil {
		t.Fatal(err)
	}
	return p, m
}

func TestDMAableMap(t *testing.T) {
	_, a20 := newMachine(t, DefaultConfig())
	old := DefaultConfig()
	old.Mode = "first-1mib"
	_, first := newMachine(t, old)
	for _, tc := range []struct {
		off         uint64
		size        int64
		a20, first1 bool
	}{
		{0, 4096, true, true},
		{mib - 4096, 4096, true, true},
		{mib - 2048, 4096, false, false}, // crosses into slice 1
		{mib, 4096, false, false},        // slice 1: A20 set
		{2 * mib, 4096, true, false},     // slice 2: A20 clear
		{3*mib + 100, 100, false, false},
		{62 * mib, mib, true, false},
		{64 * mib, 4096, false, false}, // past RAM
	} {
		if got := a20.DMAable(Base+tc.off, tc.size); got != tc.a20 {
			t.Errorf("a20: %#x+%d DMA-able = %v", tc.off, tc.size, got)
		}
		if got := first.DMAable(Base+tc.off, tc.size); got != tc.first1 {
			t.Errorf("first-1mib: %#x+%d DMA-able = %v", tc.off, tc.size, got)
		}
	}
}

func TestCoherentOnlyFromDMAableMemory(t *testing.T) {
	p, m := newMachine(t, DefaultConfig())
	dev := &dma.Device{Name: "usb", Mask: dma.BitMask(32)}
	for i := 0; i < 2000; i++ {
		b, err := p.Pages.AllocPages(dev, 0, dma.GFPKernel)
		if err != nil {
			t.Fatal(err)
		}
		if !m.DMAable(b.DMA, b.Size) {
			t.Fatalf("coherent page %#x not DMA-able", b.DMA)
		}
	}
}

func TestBounceAndCacheCost(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Mode = "first-1mib"
	p, _ := newMachine(t, cfg)
	dev := &dma.Device{Name: "nic", Mask: dma.BitMask(32)}
	p.Meter.Cost = 0
	b, err := p.Mapper.Map(dev, 1024, dma.ToDevice, dma.GFPAtomic)
	if err != nil {
		t.Fatal(err)
	}
	if p.Meter.BounceMaps != 1 || p.Meter.BounceBytes != 1024 {
		t.Fatalf("bounces %d bytes %d", p.Meter.BounceMaps, p.Meter.BounceBytes)
	}
	// 32 lines cleaned (40 ns each) + 1 KiB copied at 100 MB/s (10240 ns)
	// + a page for the buffer and one for the small bounce pool.
	want := dma.Time(50 + 32*40 + 10240 + 2*800)
	if p.Meter.Cost != want {
		t.Fatalf("map cost %d, want %d", p.Meter.Cost, want)
	}
	p.Meter.Cost = 0
	p.Mapper.Unmap(b, dma.ToDevice)
	if p.Meter.Cost != dma.Time(32*40+400) {
		t.Fatalf("unmap cost %d: a to-device unmap copies nothing back", p.Meter.Cost)
	}
}

func TestBounceExhaustionFailsTheMap(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Mode = "first-1mib"
	p, _ := newMachine(t, cfg)
	dev := &dma.Device{Name: "nic", Mask: dma.BitMask(32)}
	var err error
	n := 0
	for ; n < 10000; n++ {
		if _, err = p.Mapper.Map(dev, 16384, dma.FromDevice, dma.GFPAtomic); err != nil {
			break
		}
	}
	if !errors.Is(err, dma.ErrMapFailed) {
		t.Fatalf("after %d maps: %v, want ErrMapFailed", n, err)
	}
	// 1 MiB of DMA-able memory holds at most 64 16-KiB bounce buffers.
	if n > 64 || n < 50 {
		t.Fatalf("%d 16 KiB bounces fitted in 1 MiB", n)
	}
}

func TestNarrowMaskReachesNothing(t *testing.T) {
	p, _ := newMachine(t, DefaultConfig())
	isa := &dma.Device{Name: "isa", Mask: dma.BitMask(24)}
	if _, err := p.Pages.AllocPages(isa, 0, dma.GFPKernel); !errors.Is(err, dma.ErrNoMem) {
		t.Fatalf("24-bit device: %v", err)
	}
}

func TestSyncCosts(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Mode = "first-1mib"
	p, m := newMachine(t, cfg)
	dev := &dma.Device{Name: "nic", Mask: dma.BitMask(32)}
	b, err := p.Mapper.Map(dev, 2048, dma.FromDevice, dma.GFPAtomic)
	if err != nil {
		t.Fatal(err)
	}
	p.Meter.Cost = 0
	m.Sync(b, dma.FromDevice)
	// 64 lines invalidated + 2 KiB copied back from the bounce buffer.
	if want := dma.Time(64*40 + 2048*1000/100); p.Meter.Cost != want {
		t.Fatalf("sync cost %d, want %d", p.Meter.Cost, want)
	}
}

// TestEratumBitFollowsDRAC: the DMA-unsafe bit is the kernel's
// sa1111_dma_mask[drac >> 2]: slices of 2^bit bytes alternate; no bit
// makes all of the bank DMA-able, mask 0 none of it.
func TestErratumBitFollowsDRAC(t *testing.T) {
	for _, tc := range []struct {
		drac         int
		safe, unsafe uint64 // offsets into the bank
	}{
		{4, 0, 1 << 20},          // bit 20: the second MiB is unsafe
		{8, 1 << 20, 8 << 20},    // bit 23: the first 8 MiB are safe
		{12, 15 << 20, 16 << 20}, // bit 24
		{16, 31 << 20, 32 << 20}, // bit 25
		{0, 63 << 20, 0},         // none
	} {
		cfg := DefaultConfig()
		cfg.Drac = tc.drac
		_, m, err := New(cfg, pagealloc.DefaultPressure(), &dma.Meter{})
		if err != nil {
			t.Fatal(err)
		}
		if !m.DMAable(Base+tc.safe, 4096) {
			t.Errorf("drac %d: %#x should be DMA-able", tc.drac, tc.safe)
		}
		if tc.unsafe != 0 && m.DMAable(Base+tc.unsafe, 4096) {
			t.Errorf("drac %d: %#x should not be DMA-able", tc.drac, tc.unsafe)
		}
	}
	cfg := DefaultConfig()
	cfg.Drac = 28
	p, m, err := New(cfg, pagealloc.DefaultPressure(), &dma.Meter{})
	if err != nil {
		t.Fatal(err)
	}
	dev := &dma.Device{Name: "d", Mask: dma.BitMask(32)}
	if m.DMAable(Base, 4096) {
		t.Error("drac 28 (mask 0): memory is DMA-able")
	}
	if _, err := p.Pages.AllocPages(dev, 0, dma.GFPKernel); err == nil {
		t.Error("drac 28: a coherent allocation succeeded with no DMA-able memory")
	}
}
