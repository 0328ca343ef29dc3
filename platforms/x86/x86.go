// Package x86 models an i386 PC of the 2002 discussion: cache-coherent DMA,
// no IOMMU (a bus address is the physical address), a 16 MiB ZONE_DMA for
// devices whose mask is below 32 bits, and streaming maps that are address
// arithmetic and cannot fail.
package x86

import (
	"fmt"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/platforms/pagealloc"
)

// Config holds the x86 model's knobs.
type Config struct {
	// RAMMiB is the machine's memory.
	RAMMiB int64 `mapstructure:"ram_mib" json:"ram_mib"`
	// DMAZoneMiB is ZONE_DMA, the ISA-reachable first 16 MiB.
	DMAZoneMiB int64 `mapstructure:"dma_zone_mib" json:"dma_zone_mib"`
	// CacheLine is dma_get_cache_alignment() (128 in the 2002 model).
	CacheLine int64 `mapstructure:"cache_line" json:"cache_line"`
	// PageAllocNS is the modeled cost of an order-0 page allocation;
	// PageAllocOrderNS is added per order above 0 (estimates).
	PageAllocNS      int64 `mapstructure:"page_alloc_ns" json:"page_alloc_ns"`
	PageAllocOrderNS int64 `mapstructure:"page_alloc_order_ns" json:"page_alloc_order_ns"`
	// PageFreeNS is the modeled cost of freeing a page block (estimate).
	PageFreeNS int64 `mapstructure:"page_free_ns" json:"page_free_ns"`
	// MapNS and UnmapNS: a streaming map is address arithmetic.
	MapNS   int64 `mapstructure:"map_ns" json:"map_ns"`
	UnmapNS int64 `mapstructure:"unmap_ns" json:"unmap_ns"`
}

// DefaultConfig returns the defaults documented in config.yaml.
func DefaultConfig() Config {
	return Config{
		RAMMiB: 256, DMAZoneMiB: 16, CacheLine: 128,
		PageAllocNS: 200, PageAllocOrderNS: 100, PageFreeNS: 100,
		MapNS: 5, UnmapNS: 3,
	}
}

// Validate checks the knobs.
func (c Config) Validate() error {
	switch {
	case c.RAMMiB < 32 || c.RAMMiB > 4096:
		return fmt.Errorf("ram_mib %d: want 32..4096 (an i386 PC without highmem)", c.RAMMiB)
	case c.DMAZoneMiB < 4 || c.DMAZoneMiB >= c.RAMMiB || c.DMAZoneMiB%4 != 0:
		return fmt.Errorf("dma_zone_mib %d: want a multiple of 4 below ram_mib", c.DMAZoneMiB)
	case c.CacheLine <= 0 || c.CacheLine&(c.CacheLine-1) != 0:
		return fmt.Errorf("cache_line %d: want a power of two", c.CacheLine)
	case c.PageAllocNS < 0 || c.PageAllocOrderNS < 0 || c.PageFreeNS < 0 || c.MapNS < 0 || c.UnmapNS < 0:
		return fmt.Errorf("costs must not be negative")
	}
	return nil
}

// PageOffset is i386's PAGE_OFFSET: lowmem is mapped at 3 GiB.
const PageOffset = 0xC000_0000

const (
	zoneDMA    = 0
	zoneNormal = 1
)

// Machine is the x86 platform model. It implements dma.Pages and
// dma.Mapper.
type Machine struct {
	cfg   Config
	mem   *pagealloc.Memory
	meter *dma.Meter
}

// Zone lists: ZONE_DMA only, or Normal falling back to DMA.
var (
	dmaZones = []int{zoneDMA}
	anyZones = []int{zoneNormal, zoneDMA}
)

var (
	_ dma.Pages  = (*Machine)(nil)
	_ dma.Mapper = (*Machine)(nil)
)

// New builds the machine under background pressure pr; meter receives
// modeled costs.
func New(cfg Config, pr pagealloc.Pressure, meter *dma.Meter) (*dma.Platform, *Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	if err := pr.Validate(); err != nil {
		return nil, nil, err
	}
	const mib = 1 << 20 / dma.PageSize
	pa, err := pagealloc.New([]pagealloc.ZoneSpec{
		{Name: "DMA", Pages: cfg.DMAZoneMiB * mib},
		{Name: "Normal", Pages: (cfg.RAMMiB - cfg.DMAZoneMiB) * mib},
	})
	if err != nil {
		return nil, nil, err
	}
	m := &Machine{cfg: cfg, mem: pagealloc.NewMemory(pa, pr, meter), meter: meter}
	p := &dma.Platform{
		Name: "x86", Coherent: true, CacheLine: cfg.CacheLine,
		PageOffset: PageOffset, RAMBytes: cfg.RAMMiB << 20,
		Pages: m, Kernel: m, Mapper: m, Meter: meter,
		Frag: m.mem.Frag, MinHeadroom: func() int64 { return m.mem.MinHeadroom },
	}
	return p, m, nil
}

// Memory exposes the page allocator and page cache for inspection.
func (m *Machine) Memory() *pagealloc.Memory { return m.mem }

// zonesFor picks the zones a device with mask may use: devices that cannot
// reach all 32 bits get ZONE_DMA, as i386's dma_alloc_coherent does.
func zonesFor(mask uint64, gfp dma.GFP) []int {
	if gfp&dma.GFPDMA != 0 || mask < dma.BitMask(32) {
		return dmaZones
	}
	return anyZones
}

func (m *Machine) alloc(mask uint64, order int, gfp dma.GFP) (dma.Block, error) {
	m.meter.Charge(dma.Time(m.cfg.PageAllocNS + int64(order)*m.cfg.PageAllocOrderNS))
	pfn, _, err := m.mem.Alloc(zonesFor(mask, gfp), order, gfp)
	if err != nil {
		return dma.Block{}, err
	}
	phys := uint64(pfn) << dma.PageShift
	size := dma.PageSize << order
	if phys+uint64(size)-1 > mask {
		// The device cannot reach even ZONE_DMA (a mask below 24 bits).
		m.mem.Free(pfn, order)
		return dma.Block{}, dma.ErrNoMem
	}
	return dma.Block{CPU: PageOffset + phys, DMA: phys, Size: size, Owner: dma.Owner{Pool: dma.NoPool, Handle: int32(order)}}, nil
}

func (m *Machine) free(b dma.Block) {
	m.meter.Charge(dma.Time(m.cfg.PageFreeNS))
	m.mem.Free(int32(b.DMA>>dma.PageShift), int(b.Handle))
}

// AllocPages is dma_alloc_coherent at page granularity.
func (m *Machine) AllocPages(dev *dma.Device, order int, gfp dma.GFP) (dma.Block, error) {
	b, err := m.alloc(dev.Coherent(), order, gfp)
	if err == nil {
		m.meter.CoherentBytes += b.Size
	}
	return b, err
}

// FreePages is dma_free_coherent.
func (m *Machine) FreePages(b dma.Block) {
	m.meter.CoherentBytes -= b.Size
	m.free(b)
}

// Map takes a data buffer from memory the device can reach and maps it:
// on x86 the bus address is the physical address and the map cannot fail.
func (m *Machine) Map(dev *dma.Device, size int64, dir dma.Dir, gfp dma.GFP) (dma.Block, error) {
	b, err := m.alloc(dev.Mask, dma.Order(size), gfp)
	if err != nil {
		return b, err
	}
	m.meter.Charge(dma.Time(m.cfg.MapNS))
	m.meter.BufferBytes += b.Size
	return b, nil
}

// Unmap releases the mapping and its buffer.
func (m *Machine) Unmap(b dma.Block, dir dma.Dir) {
	m.meter.Charge(dma.Time(m.cfg.UnmapNS))
	m.meter.BufferBytes -= b.Size
	m.free(b)
}
