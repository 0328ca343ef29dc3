package conformance

import (
	"github.com/dmabench/dmabench/dma"
)

// Flat is a minimal platform for allocator tests that must not depend on a
// platform package: RAM in two arenas (the first 16 MiB for devices with
// masks below 32 bits, the rest for others), page blocks of any order from
// per-order free lists, a kernel linear map at 0xC0000000, and bus address
// = physical address. Streaming maps take pages the same way.
type Flat struct {
	meter  dma.Meter
	arenas [2]arena
}

type arena struct {
	base, top, next uint64
	free            [dma.MaxOrder + 1][]uint64
}

var (
	_ dma.Pages  = (*Flat)(nil)
	_ dma.Mapper = (*Flat)(nil)
)

// FlatPageOffset is where Flat maps RAM for the CPU.
const FlatPageOffset = 0xC000_0000

// NewFlat returns a flat platform with ramMiB of memory (at least 32).
func NewFlat(ramMiB int64) *dma.Platform {
	f := &Flat{}
	f.arenas[0] = arena{base: 0, top: 16 << 20, next: 0}
	f.arenas[1] = arena{base: 16 << 20, top: uint64(max(ramMiB, 32)) << 20, next: 16 << 20}
	return &dma.Platform{Name: "flat", Coherent: true, CacheLine: 64, PageOffset: FlatPageOffset,
		RAMBytes: max(ramMiB, 32) << 20, Pages: f, Kernel: f, Mapper: f, Meter: &f.meter}
}

func (f *Flat) get(mask uint64, order int) (dma.Block, error) {
	a := &f.arenas[1]
	if mask < dma.BitMask(32) {
		a = &f.arenas[0]
	}
	size := uint64(dma.PageSize) << order
	var phys uint64
	if n := len(a.free[order]); n > 0 {
		phys = a.free[order][n-1]
		a.free[order] = a.free[order][:n-1]
	} else {
		p := (a.next + size - 1) &^ (size - 1)
		if p+size > a.top {
			return dma.Block{}, dma.ErrNoMem
		}
		phys, a.next = p, p+size
	}
	if phys+size-1 > mask {
		a.free[order] = append(a.free[order], phys)
		return dma.Block{}, dma.ErrNoMem
	}
	return dma.Block{CPU: FlatPageOffset + phys, DMA: phys, Size: int64(size), Owner: dma.Owner{Pool: dma.NoPool, Handle: int32(order)}}, nil
}

func (f *Flat) put(b dma.Block) {
	a := &f.arenas[1]
	if b.DMA < 16<<20 {
		a = &f.arenas[0]
	}
	a.free[b.Handle] = append(a.free[b.Handle], b.DMA)
}

// AllocPages implements dma.Pages.
func (f *Flat) AllocPages(dev *dma.Device, order int, _ dma.GFP) (dma.Block, error) {
	b, err := f.get(dev.Coherent(), order)
	if err == nil {
		f.meter.CoherentBytes += b.Size
		f.meter.Charge(100)
	}
	return b, err
}

// FreePages implements dma.Pages.
func (f *Flat) FreePages(b dma.Block) {
	f.meter.CoherentBytes -= b.Size
	f.put(b)
}

// Map implements dma.Mapper.
func (f *Flat) Map(dev *dma.Device, size int64, _ dma.Dir, _ dma.GFP) (dma.Block, error) {
	b, err := f.get(dev.Mask, dma.Order(size))
	if err == nil {
		f.meter.BufferBytes += b.Size
	}
	return b, err
}

// Unmap implements dma.Mapper.
func (f *Flat) Unmap(b dma.Block, _ dma.Dir) {
	f.meter.BufferBytes -= b.Size
	f.put(b)
}
