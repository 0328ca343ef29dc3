// Package iommu models a machine whose devices sit behind an IOMMU: every
// streaming map and every coherent allocation takes IOVA space from a
// bounded aperture (see Domain), costs a page-table update, and every unmap
// needs an IOTLB invalidation — at once in strict mode, or batched in lazy
// mode through a flush queue of 256 entries that is also flushed after
// 10 ms. A map whose IOVA cannot be found (aperture full or fragmented)
// returns an error.
//
// Physical memory is an x86-64 machine's: ZONE_DMA (16 MiB) and ZONE_DMA32;
// the IOMMU reaches all of it, so pages come from any zone.
package iommu

import (
	"fmt"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/platforms/pagealloc"
)

// Config holds the model's knobs.
type Config struct {
	RAMMiB int64 `mapstructure:"ram_mib" json:"ram_mib"`
	// ApertureMiB is the IOVA window's size, from address 0 (a small GART
	// is tens of MiB; a full 32-bit window 4096).
	ApertureMiB int64 `mapstructure:"aperture_mib" json:"aperture_mib"`
	// Mode is "strict" (invalidate on every unmap) or "lazy" (flush queue).
	Mode string `mapstructure:"mode" json:"mode"`
	// FlushQueue and FlushMS: a lazy flush after this many unmaps or this
	// long since the oldest queued one.
	FlushQueue int   `mapstructure:"flush_queue" json:"flush_queue"`
	FlushMS    int64 `mapstructure:"flush_ms" json:"flush_ms"`
	// RCache turns on the per-CPU IOVA range caches.
	RCache bool `mapstructure:"rcache" json:"rcache"`
	// Costs. Map and strict unmap: the kernel's map_benchmark on an SMMUv3
	// (0.1-1.0 us and 0.6-1.3 us); the rest are estimates.
	MapNS     int64 `mapstructure:"map_ns" json:"map_ns"`
	MapPageNS int64 `mapstructure:"map_page_ns" json:"map_page_ns"`
	UnmapNS   int64 `mapstructure:"unmap_ns" json:"unmap_ns"`
	InvNS     int64 `mapstructure:"inv_ns" json:"inv_ns"`
	FlushNS   int64 `mapstructure:"flush_ns" json:"flush_ns"`
	IOVANS    int64 `mapstructure:"iova_ns" json:"iova_ns"`
	// Page allocator costs, as on x86.
	PageAllocNS      int64 `mapstructure:"page_alloc_ns" json:"page_alloc_ns"`
	PageAllocOrderNS int64 `mapstructure:"page_alloc_order_ns" json:"page_alloc_order_ns"`
	PageFreeNS       int64 `mapstructure:"page_free_ns" json:"page_free_ns"`
	CacheLine        int64 `mapstructure:"cache_line" json:"cache_line"`
}

// DefaultConfig returns the defaults documented in config.yaml.
func DefaultConfig() Config {
	return Config{
		RAMMiB: 256, ApertureMiB: 4096, Mode: "strict", FlushQueue: 256, FlushMS: 10, RCache: true,
		MapNS: 100, MapPageNS: 20, UnmapNS: 100, InvNS: 500, FlushNS: 2000, IOVANS: 30,
		PageAllocNS: 200, PageAllocOrderNS: 100, PageFreeNS: 100, CacheLine: 64,
	}
}

// Validate checks the knobs.
func (c Config) Validate() error {
	switch {
	case c.RAMMiB < 32 || c.RAMMiB > 4096:
		return fmt.Errorf("iommu.ram_mib %d: want 32..4096", c.RAMMiB)
	case c.ApertureMiB < 1 || c.ApertureMiB > 1<<20:
		return fmt.Errorf("iommu.aperture_mib %d: want 1..1048576", c.ApertureMiB)
	case c.Mode != "strict" && c.Mode != "lazy":
		return fmt.Errorf("iommu.mode %q: valid modes are strict, lazy", c.Mode)
	case c.FlushQueue < 1 || c.FlushQueue > 1<<20 || c.FlushMS <= 0:
		return fmt.Errorf("iommu.flush_queue must be 1..1048576 and flush_ms positive")
	case c.MapNS < 0 || c.MapPageNS < 0 || c.UnmapNS < 0 || c.InvNS < 0 || c.FlushNS < 0 || c.IOVANS < 0 ||
		c.PageAllocNS < 0 || c.PageAllocOrderNS < 0 || c.PageFreeNS < 0:
		return fmt.Errorf("iommu: costs must not be negative")
	case c.CacheLine <= 0 || c.CacheLine&(c.CacheLine-1) != 0:
		return fmt.Errorf("iommu.cache_line %d: want a power of two", c.CacheLine)
	}
	return nil
}

// PageOffset is x86-64's direct map.
const PageOffset = 0xffff_8880_0000_0000

type queued struct{ pfn, pages uint64 }

// Machine is the IOMMU platform. It implements dma.Pages and dma.Mapper.
type Machine struct {
	cfg    Config
	mem    *pagealloc.Memory
	meter  *dma.Meter
	dom    *Domain
	rc     *rcache
	end    uint64 // aperture end pfn (exclusive)
	lazy   bool
	fq     []queued
	fqTime dma.Time
}

var (
	_ dma.Pages  = (*Machine)(nil)
	_ dma.Mapper = (*Machine)(nil)
)

var anyZones = []int{1, 0}

// New builds the machine.
func New(cfg Config, pr pagealloc.Pressure, meter *dma.Meter) (*dma.Platform, *Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	if err := pr.Validate(); err != nil {
		return nil, nil, err
	}
	const mib = 1 << 20 / dma.PageSize
	pa, err := pagealloc.New([]pagealloc.ZoneSpec{{Name: "DMA", Pages: 16 * mib}, {Name: "DMA32", Pages: (cfg.RAMMiB - 16) * mib}})
	if err != nil {
		return nil, nil, err
	}
	m := &Machine{cfg: cfg, mem: pagealloc.NewMemory(pa, pr, meter), meter: meter, dom: NewDomain(1),
		end: uint64(cfg.ApertureMiB * mib), lazy: cfg.Mode == "lazy"}
	if cfg.RCache {
		m.rc = &rcache{}
	}
	p := &dma.Platform{
		Name: "iommu", Coherent: true, IOMMU: true, CacheLine: cfg.CacheLine,
		PageOffset: PageOffset, RAMBytes: cfg.RAMMiB << 20,
		Pages: m, Kernel: kernelPages{m}, Mapper: m, Meter: meter,
		Frag: m.mem.Frag, MinHeadroom: func() int64 { return m.mem.MinHeadroom },
	}
	p.Reachable = m.InAperture
	return p, m, nil
}

// Domain exposes the IOVA allocator for inspection.
func (m *Machine) Domain() *Domain { return m.dom }

// InAperture reports whether a bus range lies inside the IOVA aperture.
func (m *Machine) InAperture(addr uint64, size int64) bool {
	return addr >= uint64(dma.PageSize) && addr+uint64(size) <= m.end<<dma.PageShift
}

func (m *Machine) pages(order int, gfp dma.GFP) (int32, error) {
	m.meter.Charge(dma.Time(m.cfg.PageAllocNS + int64(order)*m.cfg.PageAllocOrderNS))
	pfn, _, err := m.mem.Alloc(anyZones, order, gfp)
	return pfn, err
}

// iova allocates IOVA pages below the device's mask (and the aperture's
// end), trying below 4 GiB first as dma-iommu does for PCI devices.
func (m *Machine) iova(pages uint64, mask uint64) (uint64, bool) {
	m.meter.Charge(dma.Time(m.cfg.IOVANS))
	m.flushIfDue()
	// dma-iommu rounds sizes below the range-cache limit to a power of two.
	pages = roundPages(pages)
	limit := min(m.end, (mask>>dma.PageShift)+1)
	if m.rc != nil {
		if pfn, ok := m.rc.get(pages, limit); ok {
			return pfn, true
		}
	}
	if limit > m.dom.dma32 {
		if pfn, ok := m.dom.Alloc(pages, m.dom.dma32); ok {
			m.track()
			return pfn, true
		}
	}
	pfn, ok := m.dom.Alloc(pages, limit)
	if !ok && m.rc != nil {
		// Out of space: give the cached ranges back and try once more.
		m.rc.flush(m.dom.Free)
		pfn, ok = m.dom.Alloc(pages, limit)
	}
	if ok {
		m.track()
	}
	return pfn, ok
}

func (m *Machine) track() {
	m.meter.IOVABytes = int64(m.dom.Pages) << dma.PageShift
	m.meter.IOVAPeak = max(m.meter.IOVAPeak, m.meter.IOVABytes)
}

func roundPages(pages uint64) uint64 {
	if pages < 32 {
		p := uint64(1)
		for p < pages {
			p <<= 1
		}
		return p
	}
	return pages
}

// release frees an IOVA range after its IOTLB entries are gone.
func (m *Machine) release(pfn, pages uint64) {
	pages = roundPages(pages)
	if m.rc == nil || !m.rc.put(pfn, pages, m.dom.Free) {
		m.dom.Free(pfn)
	}
	m.track()
}

// unmapIOVA clears the page table and invalidates, now or in a batch.
func (m *Machine) unmapIOVA(pfn, pages uint64) {
	m.meter.Charge(dma.Time(m.cfg.UnmapNS))
	if !m.lazy {
		m.meter.Charge(dma.Time(m.cfg.InvNS))
		m.meter.IOTLBFlushes++
		m.release(pfn, pages)
		return
	}
	if len(m.fq) == 0 {
		m.fqTime = m.meter.Now
	}
	m.fq = append(m.fq, queued{pfn, pages})
	if len(m.fq) >= m.cfg.FlushQueue {
		m.flush(true) // a full queue is flushed in the unmap path
	} else {
		m.flushIfDue()
	}
}

// flushIfDue runs the flush queue's timer: its flush happens in timer
// context, so it costs the caller nothing.
func (m *Machine) flushIfDue() {
	if len(m.fq) > 0 && m.meter.Now-m.fqTime >= dma.Time(m.cfg.FlushMS)*dma.Millisecond {
		m.flush(false)
	}
}

// flush is one global IOTLB invalidation; the queued ranges are then free.
func (m *Machine) flush(charge bool) {
	if charge {
		m.meter.Charge(dma.Time(m.cfg.FlushNS))
	}
	m.meter.IOTLBFlushes++
	for _, q := range m.fq {
		m.release(q.pfn, q.pages)
	}
	m.fq = m.fq[:0]
}

func (m *Machine) mapCost(pages uint64) {
	m.meter.Charge(dma.Time(m.cfg.MapNS + int64(pages-1)*m.cfg.MapPageNS))
}

// handle packs a block's page order and its IOVA pages for FreePages/Unmap.
func (m *Machine) block(pfn int32, order int, iova uint64) dma.Block {
	phys := uint64(pfn) << dma.PageShift
	return dma.Block{CPU: PageOffset + phys, DMA: iova << dma.PageShift, Size: dma.PageSize << order, Owner: dma.Owner{Pool: dma.NoPool, Handle: int32(order)}}
}

func (m *Machine) physOf(b dma.Block) int32 { return int32((b.CPU - PageOffset) >> dma.PageShift) }

// AllocPages is dma_alloc_coherent: pages from any zone, mapped into the
// device's IOVA space.
func (m *Machine) AllocPages(dev *dma.Device, order int, gfp dma.GFP) (dma.Block, error) {
	pfn, err := m.pages(order, gfp)
	if err != nil {
		return dma.Block{}, err
	}
	n := uint64(1) << order
	iova, ok := m.iova(n, dev.Coherent())
	if !ok {
		m.mem.Free(pfn, order)
		return dma.Block{}, fmt.Errorf("%w: no IOVA space for a coherent allocation", dma.ErrNoMem)
	}
	m.mapCost(n)
	m.meter.CoherentBytes += dma.PageSize << order
	return m.block(pfn, order, iova), nil
}

// FreePages is dma_free_coherent.
func (m *Machine) FreePages(b dma.Block) {
	m.meter.CoherentBytes -= b.Size
	m.unmapIOVA(b.DMA>>dma.PageShift, uint64(b.Size)>>dma.PageShift)
	m.meter.Charge(dma.Time(m.cfg.PageFreeNS))
	m.mem.Free(m.physOf(b), int(b.Handle))
}

// Map takes a data buffer from any zone and maps it into IOVA space; it
// fails with dma.ErrMapFailed when no IOVA range can be found.
func (m *Machine) Map(dev *dma.Device, size int64, dir dma.Dir, gfp dma.GFP) (dma.Block, error) {
	order := dma.Order(size)
	pfn, err := m.pages(order, gfp)
	if err != nil {
		return dma.Block{}, err
	}
	n := uint64(1) << order
	iova, ok := m.iova(n, dev.Mask)
	if !ok {
		m.mem.Free(pfn, order)
		return dma.Block{}, fmt.Errorf("%w: IOVA aperture exhausted or fragmented", dma.ErrMapFailed)
	}
	m.mapCost(n)
	m.meter.BufferBytes += dma.PageSize << order
	return m.block(pfn, order, iova), nil
}

// Unmap unmaps and frees the buffer.
func (m *Machine) Unmap(b dma.Block, dir dma.Dir) {
	m.meter.BufferBytes -= b.Size
	m.unmapIOVA(b.DMA>>dma.PageShift, uint64(b.Size)>>dma.PageShift)
	m.meter.Charge(dma.Time(m.cfg.PageFreeNS))
	m.mem.Free(m.physOf(b), int(b.Handle))
}

// kernelPages is __get_free_pages: DMA address = physical address, which
// is wrong behind an IOMMU — slab-direct refuses to run here for that.
type kernelPages struct{ m *Machine }

func (k kernelPages) AllocPages(dev *dma.Device, order int, gfp dma.GFP) (dma.Block, error) {
	pfn, err := k.m.pages(order, gfp)
	if err != nil {
		return dma.Block{}, err
	}
	k.m.meter.CoherentBytes += dma.PageSize << order
	b := k.m.block(pfn, order, 0)
	b.DMA = uint64(pfn) << dma.PageShift
	return b, nil
}

func (k kernelPages) FreePages(b dma.Block) {
	k.m.meter.CoherentBytes -= b.Size
	k.m.mem.Free(k.m.physOf(b), int(b.Handle))
}

var _ dma.SGMapper = (*Machine)(nil)

// MapSG maps a scatterlist into one contiguous IOVA range, as dma-iommu
// does: every segment is whole pages here, so all of them merge into one
// DMA segment, and the unmap needs one invalidation.
func (m *Machine) MapSG(dev *dma.Device, segs []int64, dir dma.Dir, gfp dma.GFP, out []dma.Block) (int, error) {
	var pages uint64
	for i, n := range segs {
		order := dma.Order(n)
		pfn, err := m.pages(order, gfp)
		if err != nil {
			m.freeBuffers(out[:i])
			return 0, err
		}
		out[i] = m.block(pfn, order, 0)
		pages += 1 << order
	}
	iova, ok := m.iova(pages, dev.Mask)
	if !ok {
		m.freeBuffers(out[:len(segs)])
		return 0, fmt.Errorf("%w: no IOVA range for a %d-page scatterlist", dma.ErrMapFailed, pages)
	}
	m.mapCost(pages)
	off := iova << dma.PageShift
	for i := range segs {
		out[i].DMA = off
		off += uint64(out[i].Size)
		m.meter.BufferBytes += out[i].Size
	}
	return 1, nil
}

func (m *Machine) freeBuffers(bs []dma.Block) {
	for _, b := range bs {
		m.mem.Free(m.physOf(b), int(b.Handle))
	}
}

// UnmapSG unmaps the scatterlist's IOVA range and frees its buffers.
func (m *Machine) UnmapSG(blocks []dma.Block, dir dma.Dir) {
	var pages uint64
	for _, b := range blocks {
		pages += uint64(b.Size) >> dma.PageShift
		m.meter.BufferBytes -= b.Size
	}
	m.unmapIOVA(blocks[0].DMA>>dma.PageShift, pages)
	m.meter.Charge(dma.Time(int64(len(blocks)) * m.cfg.PageFreeNS))
	m.freeBuffers(blocks)
}
