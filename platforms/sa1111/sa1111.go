// Package sa1111 models a StrongARM SA-1100 with the SA-1111 companion
// chip. DMA is not cache-coherent: lines are 32 bytes, DMA buffers must not
// share one, and every map, unmap and sync cleans or invalidates each line
// at a modeled cost. An erratum limits what the SA-1111 can reach: the
// first 1 MiB of the bank is always safe, and above it address bit 20 must
// be zero, so DMA-able memory alternates in 1 MiB slices (mode "a20"); the
// 2002 driver simply treated only the first 1 MiB as safe (mode
// "first-1mib"). Each slice is a zone of the page allocator, so coherent
// allocations (GFP_DMA) come only from DMA-able slices.
//
// A streaming map of a buffer outside DMA-able memory bounces, as
// dmabounce does: through a small pool (1 KiB blocks), a large pool (4 KiB;
// 16 KiB in the 2002 mode) or, larger, a coherent allocation — all
// GFP_ATOMIC — with the data copied at a modeled rate. When bounce memory
// cannot be had, the map fails with an error.
package sa1111

import (
	"fmt"
	"slices"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/platforms/pagealloc"
)

// Config holds the model's knobs.
type Config struct {
	RAMMiB int64 `mapstructure:"ram_mib" json:"ram_mib"`
	// Mode: "a20" (the erratum: alternating slices, 1 MiB at the default
	// drac) or "first-1mib" (2002).
	Mode string `mapstructure:"mode" json:"mode"`
	// Drac is the SMCR's DRAC field, the SDRAM row/column address
	// multiplexing, which decides the DMA-unsafe address bit
	// (sa1111_dma_mask[drac >> 2]: none, 20, 23, 24, 25, 20, 20, or no
	// DMA at all); 4 gives bit 20.
	Drac int `mapstructure:"drac" json:"drac"`
	// SmallBounce and LargeBounce are the bounce pools' block sizes;
	// LargeBounce 0 means 4096, or 16384 in the first-1mib mode.
	SmallBounce int64 `mapstructure:"small_bounce" json:"small_bounce"`
	LargeBounce int64 `mapstructure:"large_bounce" json:"large_bounce"`
	// CacheLine is the D-cache line (32 bytes on StrongARM).
	CacheLine int64 `mapstructure:"cache_line" json:"cache_line"`
	// DMACacheAlignment is what dma_get_cache_alignment() says (0: the
	// line). Set below the line, DMA buffers may share a line, and the
	// model counts those that do (cacheline_overlaps).
	DMACacheAlignment int64 `mapstructure:"dma_cache_alignment" json:"dma_cache_alignment"`
	// LineNS is the cost to clean or invalidate one line (estimate: tens
	// of ns at 206 MHz).
	LineNS int64 `mapstructure:"line_ns" json:"line_ns"`
	// CopyMBps is the bounce copy rate (estimate: StrongARM + SDRAM memcpy).
	CopyMBps int64 `mapstructure:"copy_mbps" json:"copy_mbps"`
	// MapNS: the rest of a map's work; page allocator costs (estimates,
	// a 206 MHz CPU).
	MapNS            int64 `mapstructure:"map_ns" json:"map_ns"`
	PageAllocNS      int64 `mapstructure:"page_alloc_ns" json:"page_alloc_ns"`
	PageAllocOrderNS int64 `mapstructure:"page_alloc_order_ns" json:"page_alloc_order_ns"`
	PageFreeNS       int64 `mapstructure:"page_free_ns" json:"page_free_ns"`
	// RemapNS and RemapPageNS: making coherent memory uncached on ARM
	// (consistent_alloc: a mapping of the pages with caching off and the
	// TLB flushed), per allocation and per page, and undoing it at free
	// (estimates).
	RemapNS     int64 `mapstructure:"remap_ns" json:"remap_ns"`
	RemapPageNS int64 `mapstructure:"remap_page_ns" json:"remap_page_ns"`
}

// DefaultConfig returns the defaults documented in config.yaml.
func DefaultConfig() Config {
	return Config{RAMMiB: 64, Mode: "a20", Drac: 4, SmallBounce: 1024, LargeBounce: 0, CacheLine: 32, LineNS: 40,
		CopyMBps: 100, MapNS: 50, PageAllocNS: 800, PageAllocOrderNS: 300, PageFreeNS: 400, RemapNS: 3000, RemapPageNS: 150}
}

// Validate checks the knobs.
func (c Config) Validate() error {
	switch {
	case c.RAMMiB < 4 || c.RAMMiB > 512:
		return fmt.Errorf("sa1111.ram_mib %d: want 4..512", c.RAMMiB)
	case c.Mode != "a20" && c.Mode != "first-1mib":
		return fmt.Errorf("sa1111.mode %q: valid modes are a20, first-1mib", c.Mode)
	case c.Drac < 0 || c.Drac > 31:
		return fmt.Errorf("sa1111.drac %d: want the 5-bit field, 0..31", c.Drac)
	case c.SmallBounce < 32 || c.SmallBounce > dma.PageSize || c.SmallBounce&(c.SmallBounce-1) != 0:
		return fmt.Errorf("sa1111.small_bounce %d: want a power of two 32..4096", c.SmallBounce)
	case c.LargeBounce != 0 && (c.LargeBounce < c.SmallBounce || c.LargeBounce > 1<<20 || c.LargeBounce&(c.LargeBounce-1) != 0):
		return fmt.Errorf("sa1111.large_bounce %d: want 0 or a power of two from small_bounce to 1 MiB", c.LargeBounce)
	case c.CacheLine <= 0 || c.CacheLine&(c.CacheLine-1) != 0:
		return fmt.Errorf("sa1111.cache_line %d: want a power of two", c.CacheLine)
	case c.DMACacheAlignment < 0 || c.DMACacheAlignment > c.CacheLine || c.DMACacheAlignment&(c.DMACacheAlignment-1) != 0:
		return fmt.Errorf("sa1111.dma_cache_alignment %d: want 0 (the line) or a power of two up to cache_line", c.DMACacheAlignment)
	case c.CopyMBps <= 0:
		return fmt.Errorf("sa1111.copy_mbps must be positive")
	case c.LineNS < 0 || c.MapNS < 0 || c.PageAllocNS < 0 || c.PageAllocOrderNS < 0 || c.PageFreeNS < 0 || c.RemapNS < 0 || c.RemapPageNS < 0:
		return fmt.Errorf("sa1111: costs must not be negative")
	}
	return nil
}

// unsafeBits is the kernel's sa1111_dma_mask[] as the address bit the
// erratum forbids, by drac >> 2: 0 none, -1 every address (mask 0).
var unsafeBits = [8]int{0, 20, 23, 24, 25, 20, 20, -1}

// UnsafeBit returns the DMA-unsafe address bit for an SMCR DRAC value: 0
// for none, -1 when the SA-1111 can reach no memory at all.
func UnsafeBit(drac int) int { return unsafeBits[drac>>2&7] }

// Base is where the SA-1100's DRAM bank 0 sits, physically and virtually.
const Base = 0xC000_0000

const mib = 1 << 20

// bouncePool is a dma_pool of DMA-able blocks for bouncing.
type bouncePool struct {
	size   int64
	order  int
	pages  []dma.Block
	blocks []uint64 // phys of every block
	free   []int32
}

// Machine is the SA-1111 platform. It implements dma.Pages and dma.Mapper.
type Machine struct {
	cfg      Config
	mem      *pagealloc.Memory
	meter    *dma.Meter
	dmaZones []int // DMA-able zones, highest first
	anyZones []int
	slices   bool  // a20: DMA-able iff the unsafe bit is clear
	slice    int64 // then: bytes per slice (2^bit)
	all      bool  // a20 without an unsafe bit within the bank
	none     bool  // a20 with sa1111_dma_mask 0: nothing is DMA-able
	pools    [2]bouncePool
	// rot spreads general allocations over the slices, as one real
	// zone's free lists would: each allocation starts one slice on.
	// twice holds anyZones twice over, so that the order from any slice
	// is a window of it, not a copy.
	rot   int
	twice []int
	// Lines counts the cache lines cleaned or invalidated; Overlaps the
	// cached buffers handed to a device sharing a line with another.
	Lines, Overlaps int64
	// active counts the live cached buffers on each line (only when the
	// DMA alignment is below the line).
	active map[uint64]int32
}

// general returns the zone list for an allocation that may come from
// anywhere in RAM.
func (m *Machine) general() []int {
	if !m.slices {
		return m.anyZones
	}
	n := len(m.anyZones)
	m.rot = (m.rot + 1) % n
	return m.twice[m.rot : m.rot+n]
}

var (
	_ dma.Pages  = (*Machine)(nil)
	_ dma.Mapper = (*Machine)(nil)
)

// New builds the machine.
func New(cfg Config, pr pagealloc.Pressure, meter *dma.Meter) (*dma.Platform, *Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	if err := pr.Validate(); err != nil {
		return nil, nil, err
	}
	const perMiB = mib / dma.PageSize
	m := &Machine{cfg: cfg, meter: meter}
	var zones []pagealloc.ZoneSpec
	bit := UnsafeBit(cfg.Drac)
	switch {
	case cfg.Mode == "a20" && bit > 0 && int64(1)<<bit < cfg.RAMMiB*mib:
		// Slices of 2^bit bytes, DMA-able when the bit is clear.
		m.slices, m.slice = true, int64(1)<<bit
		per := m.slice / dma.PageSize
		for i := int64(0); i*m.slice < cfg.RAMMiB*mib; i++ {
			zones = append(zones, pagealloc.ZoneSpec{Name: fmt.Sprintf("slice%d", i), Pages: min(per, cfg.RAMMiB*perMiB-i*per)})
		}
		for i := len(zones) - 1; i >= 0; i-- {
			if i%2 == 0 {
				m.dmaZones = append(m.dmaZones, i)
			}
		}
	case cfg.Mode == "a20" && bit == 0, cfg.Mode == "a20" && bit > 0:
		// No unsafe bit, or one above the bank: all of it is DMA-able.
		m.all = true
		zones = []pagealloc.ZoneSpec{{Name: "DMA", Pages: cfg.RAMMiB * perMiB}}
		m.dmaZones = []int{0}
	case cfg.Mode == "a20":
		// sa1111_dma_mask 0: the SA-1111 reaches no memory.
		m.none = true
		zones = []pagealloc.ZoneSpec{{Name: "Normal", Pages: cfg.RAMMiB * perMiB}}
	default:
		zones = []pagealloc.ZoneSpec{{Name: "DMA", Pages: perMiB}, {Name: "Normal", Pages: (cfg.RAMMiB - 1) * perMiB}}
		m.dmaZones = []int{0}
	}
	for i := len(zones) - 1; i >= 0; i-- {
		m.anyZones = append(m.anyZones, i)
	}
	m.twice = append(slices.Clone(m.anyZones), m.anyZones...)
	pa, err := pagealloc.New(zones)
	if err != nil {
		return nil, nil, err
	}
	if m.slices {
		// The slices are one zone in the kernel; they are zones here only
		// so DMA-able memory can be asked for. No lowmem_reserve between
		// them.
		for i := range pa.Zones {
			pa.Zones[i].LowmemReserve = 0
		}
	}
	m.mem = pagealloc.NewMemory(pa, pr, meter)
	large := cfg.LargeBounce
	if large == 0 {
		large = 4096
		if cfg.Mode == "first-1mib" {
			large = 16384
		}
	}
	m.pools[0] = bouncePool{size: cfg.SmallBounce, order: dma.Order(cfg.SmallBounce)}
	m.pools[1] = bouncePool{size: large, order: dma.Order(large)}
	// dma_get_cache_alignment(): the line, unless set below it; then the
	// lines DMA buffers share are tracked (handOver).
	align := cfg.CacheLine
	if a := cfg.DMACacheAlignment; a > 0 && a < cfg.CacheLine {
		align, m.active = a, map[uint64]int32{}
	}
	p := &dma.Platform{
		Name: "sa1111", Coherent: false, CacheLine: align,
		PageOffset: Base, RAMBytes: cfg.RAMMiB * mib,
		Pages: m, Kernel: kernelPages{m}, Mapper: m, Meter: meter,
		Frag: m.mem.Frag, MinHeadroom: func() int64 { return m.mem.MinHeadroom },
	}
	p.Reachable = m.DMAable
	p.CacheMaintain = m.handOver
	return p, m, nil
}

// DMAable reports whether the SA-1111 can reach a bus range.
func (m *Machine) DMAable(addr uint64, size int64) bool {
	if addr < Base || size <= 0 || addr+uint64(size) > Base+uint64(m.cfg.RAMMiB)*mib {
		return false
	}
	off, end := addr-Base, addr-Base+uint64(size)-1
	switch {
	case m.all:
		return true
	case m.none:
		return false
	case !m.slices:
		return end < mib
	}
	for s := off / uint64(m.slice); s <= end/uint64(m.slice); s++ {
		if s%2 == 1 {
			return false
		}
	}
	return true
}

// Memory exposes the page allocator.
func (m *Machine) Memory() *pagealloc.Memory { return m.mem }

func (m *Machine) alloc(zones []int, order int, gfp dma.GFP) (dma.Block, error) {
	m.meter.Charge(dma.Time(m.cfg.PageAllocNS + int64(order)*m.cfg.PageAllocOrderNS))
	pfn, _, err := m.mem.Alloc(zones, order, gfp)
	if err != nil {
		return dma.Block{}, err
	}
	phys := Base + uint64(pfn)<<dma.PageShift
	return dma.Block{CPU: phys, DMA: phys, Size: dma.PageSize << order, Owner: dma.Owner{Pool: dma.NoPool, Handle: int32(order)}}, nil
}

func (m *Machine) free(b dma.Block) {
	m.meter.Charge(dma.Time(m.cfg.PageFreeNS))
	m.mem.Free(int32((b.CPU-Base)>>dma.PageShift), int(b.Handle&0xff))
}

// AllocPages is dma_alloc_coherent: DMA-able pages (GFP_DMA), mapped
// uncached, so they need no cache maintenance.
func (m *Machine) AllocPages(dev *dma.Device, order int, gfp dma.GFP) (dma.Block, error) {
	b, err := m.alloc(m.dmaZones, order, gfp|dma.GFPDMA)
	if err != nil {
		return b, err
	}
	if b.DMA+uint64(b.Size)-1 > dev.Coherent() {
		// RAM starts at 0xC0000000: a device with a narrow mask
		// reaches none of it.
		m.free(b)
		return dma.Block{}, fmt.Errorf("%w: %s's mask %#x reaches no RAM", dma.ErrNoMem, dev.Name, dev.Coherent())
	}
	m.remap(int(b.Handle & 0xff))
	m.meter.CoherentBytes += b.Size
	return b, nil
}

// FreePages is dma_free_coherent.
func (m *Machine) FreePages(b dma.Block) {
	m.meter.CoherentBytes -= b.Size
	m.remap(int(b.Handle & 0xff))
	m.free(b)
}

func (m *Machine) lines(size int64) int64 {
	return (size + m.cfg.CacheLine - 1) / m.cfg.CacheLine
}

func (m *Machine) maintain(size int64, dir dma.Dir) {
	n := m.lines(size)
	if dir == dma.Bidirectional {
		n *= 2
	}
	m.Lines += n
	m.meter.Charge(dma.Time(n * m.cfg.LineNS))
}

// handOver maintains the lines of cached memory handed to a device or
// given back (dma.Platform.CacheMaintain); with a DMA alignment below the
// line it also tracks the lines such memory holds, as DMA-API debugging's
// cacheline tracking does, and counts a buffer that shares a line with
// another one live (cacheline_overlaps): a device writing one would have
// the CPU's writeback of the other corrupt it, or the other's invalidate
// discard it.
func (m *Machine) handOver(addr uint64, size int64, dir dma.Dir) {
	m.maintain(size, dir)
	if m.active == nil {
		return
	}
	first, last := addr/uint64(m.cfg.CacheLine), (addr+uint64(size)-1)/uint64(m.cfg.CacheLine)
	overlap := false
	for l := first; l <= last; l++ {
		if dir == dma.ToDevice {
			overlap = overlap || m.active[l] > 0
			m.active[l]++
		} else if m.active[l]--; m.active[l] <= 0 {
			delete(m.active, l)
		}
	}
	if overlap {
		m.Overlaps++
	}
}

// remap charges making 2^order pages uncached, or cached again.
func (m *Machine) remap(order int) {
	m.meter.Charge(dma.Time(m.cfg.RemapNS + int64(1)<<order*m.cfg.RemapPageNS))
}

// Report implements dma.Reporter: the cache lines cleaned or invalidated.
func (m *Machine) Report(add func(string, float64)) {
	add("cache_lines_maintained", float64(m.Lines))
	add("cacheline_overlaps", float64(m.Overlaps))
}

func (m *Machine) copyCost(size int64) {
	m.meter.Charge(dma.Time(size * 1000 / m.cfg.CopyMBps))
	m.meter.BounceBytes += size
}

// Bounce kinds, kept in a mapping's Handle above the buffer's order.
const (
	bounceNone   = 0
	bounceSmall  = 1
	bounceLarge  = 2
	bounceDirect = 3
)

// Map takes a data buffer from anywhere in RAM, cleans or invalidates its
// lines, and bounces it when the SA-1111 cannot reach it.
func (m *Machine) Map(dev *dma.Device, size int64, dir dma.Dir, gfp dma.GFP) (dma.Block, error) {
	order := dma.Order(size)
	b, err := m.alloc(m.general(), order, gfp)
	if err != nil {
		return b, err
	}
	m.meter.Charge(dma.Time(m.cfg.MapNS))
	m.maintain(size, dir)
	m.meter.BufferBytes += b.Size
	b.Size = size // the mapping's length; the buffer's order stays in Handle
	if m.DMAable(b.DMA, size) && b.DMA+uint64(size)-1 <= dev.Mask {
		return b, nil
	}
	kind, idx, bus, err := m.bounce(size)
	if err == nil && bus+uint64(size)-1 > dev.Mask {
		m.unbounce(kind, idx, bus)
		err = fmt.Errorf("%w: %s's mask %#x reaches no bounce memory", dma.ErrMapFailed, dev.Name, dev.Mask)
	}
	if err != nil {
		m.meter.BufferBytes -= dma.PageSize << order
		m.free(b)
		return dma.Block{}, err
	}
	m.meter.BounceMaps++
	if dir == dma.ToDevice || dir == dma.Bidirectional {
		m.copyCost(size)
	}
	b.DMA = bus
	b.Handle = int32(order) | int32(kind)<<8 | idx<<10
	return b, nil
}

// bounce gets a DMA-able buffer for size bytes, GFP_ATOMIC.
func (m *Machine) bounce(size int64) (int, int32, uint64, error) {
	for k := range m.pools {
		p := &m.pools[k]
		if size > p.size {
			continue
		}
		if len(p.free) == 0 {
			pg, err := m.alloc(m.dmaZones, p.order, dma.GFPAtomic|dma.GFPDMA)
			if err != nil {
				return 0, 0, 0, fmt.Errorf("%w: bounce pool of %d-byte blocks: no DMA-able page", dma.ErrMapFailed, p.size)
			}
			p.pages = append(p.pages, pg)
			base := int32(len(p.blocks))
			per := int((dma.PageSize << p.order) / p.size)
			for i := 0; i < per; i++ {
				p.blocks = append(p.blocks, pg.DMA+uint64(int64(i)*p.size))
			}
			for i := per - 1; i >= 0; i-- {
				p.free = append(p.free, base+int32(i))
			}
		}
		i := p.free[len(p.free)-1]
		p.free = p.free[:len(p.free)-1]
		return bounceSmall + k, i, p.blocks[i], nil
	}
	pg, err := m.alloc(m.dmaZones, dma.Order(size), dma.GFPAtomic|dma.GFPDMA)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("%w: no DMA-able memory to bounce %d bytes", dma.ErrMapFailed, size)
	}
	return bounceDirect, int32(dma.Order(size)), pg.DMA, nil
}

// Unmap invalidates or cleans the lines, copies bounced data back and
// frees the bounce buffer and the data buffer.
func (m *Machine) Unmap(b dma.Block, dir dma.Dir) {
	m.maintain(b.Size, dir)
	if kind := int(b.Handle>>8) & 3; kind != bounceNone {
		if dir == dma.FromDevice || dir == dma.Bidirectional {
			m.copyCost(b.Size)
		}
		m.unbounce(kind, b.Handle>>10, b.DMA)
	}
	m.meter.BufferBytes -= dma.PageSize << (b.Handle & 0xff)
	m.free(b)
}

func (m *Machine) unbounce(kind int, idx int32, bus uint64) {
	if kind == bounceDirect {
		m.free(dma.Block{CPU: bus, Owner: dma.Owner{Handle: idx}})
		return
	}
	p := &m.pools[kind-bounceSmall]
	p.free = append(p.free, idx)
}

// kernelPages is __get_free_pages for kmem_cache memory. On this machine a
// cache whose memory is DMA'd must be a SLAB_CACHE_DMA cache: its pages
// come from DMA-able memory.
type kernelPages struct{ m *Machine }

func (k kernelPages) AllocPages(dev *dma.Device, order int, gfp dma.GFP) (dma.Block, error) {
	return k.m.AllocPages(dev, order, gfp)
}

func (k kernelPages) FreePages(b dma.Block) { k.m.FreePages(b) }

var _ dma.Syncer = (*Machine)(nil)

// Sync is dma_sync_single_for_cpu/for_device: the mapping's lines are
// cleaned or invalidated; a bounced buffer is copied (to the CPU's copy
// for from_device, to the bounce buffer for to_device).
func (m *Machine) Sync(b dma.Block, dir dma.Dir) {
	m.maintain(b.Size, dir)
	if int(b.Handle>>8)&3 != bounceNone {
		m.copyCost(b.Size)
	}
}
