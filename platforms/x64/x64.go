// Package x64 models two x86-64 machines whose streaming DMA goes through
// swiotlb (platforms/swiotlb), as Linux 6.6 sets them up:
//
//   - cvm: a confidential VM (AMD SEV-SNP, Intel TDX). The host can read
//     only memory the guest has shared, so every streaming mapping bounces
//     through swiotlb (swiotlb_force_bounce), whose pool the kernel sizes
//     for memory encryption: 6% of memory, clamped to 64 MiB..1 GiB
//     (mem_encrypt_setup_arch). Coherent allocations are shared pages: each
//     is made so with set_memory_decrypted and made private again on free,
//     at a modeled cost per page (a page-state change through the
//     hypervisor), as are the pages of pools dynamic swiotlb adds.
//   - swiotlb: a plain machine with more than 4 GiB where only a device
//     whose mask cannot reach a buffer bounces (dma_capable fails), through
//     the default 64 MiB pool.
//
// Memory is ZONE_DMA (16 MiB), ZONE_DMA32 (to 4 GiB) and ZONE_NORMAL
// above; swiotlb sits just below 4 GiB (memblock_alloc_low allocates top
// down), outside the page allocator. The bus address is the physical
// address (no IOMMU). Streaming buffers are the driver's pages, from any
// zone, bounced when the platform says so, with the copy the direction
// needs: at map always (the kernel copies even for DMA_FROM_DEVICE, so
// stale bounce data never leaks), at unmap and sync-for-cpu from the
// device, at sync-for-device to it.
package x64

import (
	"fmt"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/platforms/pagealloc"
	"github.com/dmabench/dmabench/platforms/swiotlb"
)

// Config holds the knobs of both machines (platform.cvm and
// platform.swiotlb in config.yaml).
type Config struct {
	// RAMMiB is the machine's (the guest's) memory.
	RAMMiB int64 `mapstructure:"ram_mib" json:"ram_mib"`
	// CPUs is the possible CPUs, which set swiotlb's areas.
	CPUs int `mapstructure:"cpus" json:"cpus"`
	// Slots is swiotlb=N: the pool's slots (0: the kernel's size for the
	// machine; rounded up to whole segments of 128). Areas is swiotlb=,N
	// (0: CPUs rounded up to a power of two).
	Slots int64 `mapstructure:"slots" json:"slots"`
	Areas int   `mapstructure:"areas" json:"areas"`
	// Dynamic is CONFIG_SWIOTLB_DYNAMIC.
	Dynamic bool `mapstructure:"dynamic" json:"dynamic"`
	// ForceBounce: every streaming mapping bounces (a confidential VM).
	ForceBounce bool `mapstructure:"force_bounce" json:"force_bounce"`
	// CacheLine is dma_get_cache_alignment().
	CacheLine int64 `mapstructure:"cache_line" json:"cache_line"`
	// CopyMBps is the bounce copy rate (estimate: memcpy into shared,
	// unencrypted memory).
	CopyMBps int64 `mapstructure:"copy_mbps" json:"copy_mbps"`
	// DecryptNS is set_memory_decrypted (or _encrypted) per page: a page
	// state change through the hypervisor (estimate); 0 on a machine
	// without memory encryption.
	DecryptNS int64 `mapstructure:"decrypt_ns" json:"decrypt_ns"`
	// Page allocator and mapping costs (estimates).
	PageAllocNS      int64 `mapstructure:"page_alloc_ns" json:"page_alloc_ns"`
	PageAllocOrderNS int64 `mapstructure:"page_alloc_order_ns" json:"page_alloc_order_ns"`
	PageFreeNS       int64 `mapstructure:"page_free_ns" json:"page_free_ns"`
	MapNS            int64 `mapstructure:"map_ns" json:"map_ns"`
	SlotSearchNS     int64 `mapstructure:"slot_search_ns" json:"slot_search_ns"`
}

// CVMConfig returns the cvm defaults documented in config.yaml.
func CVMConfig() Config {
	return Config{RAMMiB: 4096, CPUs: 8, Dynamic: false, ForceBounce: true, CacheLine: 64, CopyMBps: 8000,
		DecryptNS: 4000, PageAllocNS: 150, PageAllocOrderNS: 50, PageFreeNS: 100, MapNS: 40, SlotSearchNS: 60}
}

// SwiotlbConfig returns the swiotlb machine's defaults.
func SwiotlbConfig() Config {
	c := CVMConfig()
	c.RAMMiB, c.ForceBounce, c.DecryptNS, c.CopyMBps = 8192, false, 0, 10000
	return c
}

// Validate checks the knobs.
func (c Config) Validate() error {
	switch {
	case c.RAMMiB < 512 || c.RAMMiB > 64<<10:
		return fmt.Errorf("ram_mib %d: want 512..65536", c.RAMMiB)
	case c.CPUs < 1 || c.CPUs > 4096:
		return fmt.Errorf("cpus %d: want 1..4096", c.CPUs)
	case c.Slots < 0 || c.Slots > swiotlb.SlotsFor(1<<30)*4:
		return fmt.Errorf("slots %d: want 0 (the kernel's size) up to 4 GiB of slots", c.Slots)
	case c.Areas < 0 || c.Areas > 4096:
		return fmt.Errorf("areas %d: want 0 (from cpus) .. 4096", c.Areas)
	case c.CacheLine <= 0 || c.CacheLine&(c.CacheLine-1) != 0:
		return fmt.Errorf("cache_line %d: want a power of two", c.CacheLine)
	case c.CopyMBps <= 0:
		return fmt.Errorf("copy_mbps must be positive")
	case c.DecryptNS < 0 || c.PageAllocNS < 0 || c.PageAllocOrderNS < 0 || c.PageFreeNS < 0 || c.MapNS < 0 || c.SlotSearchNS < 0:
		return fmt.Errorf("costs must not be negative")
	}
	if c.Slots > 0 && swiotlb.SlotsFor(c.Slots<<swiotlb.SlotShift)<<swiotlb.SlotShift > c.RAMMiB<<20/4 {
		return fmt.Errorf("slots %d: more than a quarter of ram_mib", c.Slots)
	}
	return nil
}

// PoolSlots returns the swiotlb pool's slots on this machine: swiotlb=N
// rounded to whole segments, else the confidential VM's size, else the
// default 64 MiB.
func (c Config) PoolSlots() int64 {
	switch {
	case c.Slots > 0:
		return swiotlb.SlotsFor(c.Slots << swiotlb.SlotShift)
	case c.ForceBounce:
		return swiotlb.SlotsFor(swiotlb.CCSize(c.RAMMiB << 20))
	}
	return swiotlb.DefaultSlots
}

const (
	zoneDMA = iota
	zoneDMA32
	zoneNormal
)

// fourGiB is where ZONE_DMA32 ends.
const fourGiB = 1 << 32

// PageOffset is x86-64's direct map.
const PageOffset = 0xffff_8880_0000_0000

// Machine is one of the two machines. It implements dma.Pages, dma.Mapper,
// dma.Syncer and dma.Reporter.
type Machine struct {
	cfg   Config
	mem   *pagealloc.Memory
	meter *dma.Meter
	tlb   *swiotlb.TLB
	// holePages: the pages between DMA32's last page and 4 GiB (swiotlb),
	// by which a Normal page's pfn is below its physical frame.
	dma32End, holePages int32
	// bounces: live bounced mappings, by handle - 1 (Block.Handle).
	bounces []bounce
	freeB   []int32
	// Decrypted counts pages made shared (set_memory_decrypted).
	Decrypted int64
	hasNormal bool
}

type bounce struct {
	h        swiotlb.Handle
	size     int64
	bufBytes int64
	pfn      int32 // the driver's buffer
	ord      int8
}

var (
	_ dma.Pages    = (*Machine)(nil)
	_ dma.Mapper   = (*Machine)(nil)
	_ dma.Syncer   = (*Machine)(nil)
	_ dma.Reporter = (*Machine)(nil)
)

// New builds machine name (cvm or swiotlb) under background pressure pr;
// meter receives modeled costs.
func New(name string, cfg Config, pr pagealloc.Pressure, meter *dma.Meter) (*dma.Platform, *Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	if err := pr.Validate(); err != nil {
		return nil, nil, err
	}
	const perMiB = (1 << 20) / dma.PageSize
	ram := cfg.RAMMiB * perMiB
	tlbPages := cfg.PoolSlots() << swiotlb.SlotShift / dma.PageSize
	low := min(ram, fourGiB/dma.PageSize) // pages below 4 GiB
	zones := []pagealloc.ZoneSpec{{Name: "DMA", Pages: 16 * perMiB}, {Name: "DMA32", Pages: low - 16*perMiB - tlbPages}}
	if ram > low {
		zones = append(zones, pagealloc.ZoneSpec{Name: "Normal", Pages: ram - low})
	}
	pa, err := pagealloc.New(zones)
	if err != nil {
		return nil, nil, err
	}
	m := &Machine{cfg: cfg, meter: meter, mem: pagealloc.NewMemory(pa, pr, meter),
		dma32End: int32(low - tlbPages), holePages: int32(tlbPages), hasNormal: ram > low}
	var src swiotlb.PageSource
	if cfg.Dynamic {
		src = lowPages{m}
	}
	start := uint64((low - tlbPages) * dma.PageSize)
	if m.tlb, err = swiotlb.New(start, cfg.PoolSlots(), swiotlb.Areas(cfg.PoolSlots(), cfg.CPUs, cfg.Areas), src); err != nil {
		return nil, nil, err
	}
	p := &dma.Platform{
		Name: name, Coherent: true, Encrypted: cfg.ForceBounce, CacheLine: cfg.CacheLine,
		PageOffset: PageOffset, RAMBytes: cfg.RAMMiB << 20,
		Pages: m, Kernel: kernelPages{m}, Mapper: m, Meter: meter,
		Frag: m.mem.Frag, MinHeadroom: func() int64 { return m.mem.MinHeadroom },
	}
	return p, m, nil
}

// phys is a page's physical address: Normal pages sit above the hole
// swiotlb leaves below 4 GiB.
func (m *Machine) phys(pfn int32) uint64 {
	if pfn >= m.dma32End {
		pfn += m.holePages
	}
	return uint64(pfn) << dma.PageShift
}

func (m *Machine) pfn(phys uint64) int32 {
	pfn := int32(phys >> dma.PageShift)
	if pfn >= m.dma32End+m.holePages {
		pfn -= m.holePages
	}
	return pfn
}

// zonesFor: a device that cannot reach 4 GiB gets DMA32 (or DMA below 32
// bits), as dma_direct_alloc's gfp zone choice does.
func zonesFor(mask uint64, gfp dma.GFP) []int {
	switch {
	case gfp&dma.GFPDMA != 0 || mask < dma.BitMask(32):
		return dmaZones
	case mask < 1<<40:
		return dma32Zones
	}
	return anyZones
}

// Zone lists, in the order an allocation falls back.
var (
	dmaZones   = []int{zoneDMA}
	dma32Zones = []int{zoneDMA32, zoneDMA}
	anyZones   = []int{zoneNormal, zoneDMA32, zoneDMA}
)

// zones drops ZONE_NORMAL from a zone list on a machine of 4 GiB or less.
func (m *Machine) zones(z []int) []int {
	if !m.hasNormal && z[0] == zoneNormal {
		return z[1:]
	}
	return z
}

func (m *Machine) alloc(zones []int, mask uint64, order int, gfp dma.GFP) (dma.Block, error) {
	m.meter.Charge(dma.Time(m.cfg.PageAllocNS + int64(order)*m.cfg.PageAllocOrderNS))
	pfn, _, err := m.mem.Alloc(m.zones(zones), order, gfp)
	if err != nil {
		return dma.Block{}, err
	}
	phys := m.phys(pfn)
	size := dma.PageSize << order
	if mask != 0 && phys+uint64(size)-1 > mask {
		m.mem.Free(pfn, order)
		return dma.Block{}, dma.ErrNoMem
	}
	return dma.Block{CPU: PageOffset + phys, DMA: phys, Size: size, Owner: dma.Owner{Pool: dma.NoPool, Handle: int32(order)}}, nil
}

func (m *Machine) free(b dma.Block) {
	m.meter.Charge(dma.Time(m.cfg.PageFreeNS))
	m.mem.Free(m.pfn(b.DMA), int(b.Handle))
}

// decrypt charges set_memory_decrypted (or _encrypted) for pages.
func (m *Machine) decrypt(pages int64) {
	if m.cfg.DecryptNS > 0 {
		m.meter.Charge(dma.Time(pages * m.cfg.DecryptNS))
		m.Decrypted += pages
	}
}

// AllocPages is dma_alloc_coherent: on a confidential VM the pages are
// made shared first.
func (m *Machine) AllocPages(dev *dma.Device, order int, gfp dma.GFP) (dma.Block, error) {
	b, err := m.alloc(zonesFor(dev.Coherent(), gfp), dev.Coherent(), order, gfp)
	if err == nil {
		m.decrypt(1 << order)
		m.meter.CoherentBytes += b.Size
	}
	return b, err
}

// FreePages is dma_free_coherent: the pages are made private again.
func (m *Machine) FreePages(b dma.Block) {
	m.meter.CoherentBytes -= b.Size
	m.decrypt(1 << b.Handle)
	m.free(b)
}

// kernelPages is the plain page allocator (kmalloc's slabs): private
// memory, no page state change.
type kernelPages struct{ m *Machine }

func (k kernelPages) AllocPages(dev *dma.Device, order int, gfp dma.GFP) (dma.Block, error) {
	b, err := k.m.alloc(zonesFor(dev.Coherent(), gfp), dev.Coherent(), order, gfp)
	if err == nil {
		k.m.meter.CoherentBytes += b.Size
	}
	return b, err
}

func (k kernelPages) FreePages(b dma.Block) {
	k.m.meter.CoherentBytes -= b.Size
	k.m.free(b)
}

// lowPages gives dynamic swiotlb its pools: DMA32 pages, shared on a
// confidential VM.
type lowPages struct{ m *Machine }

func (l lowPages) AllocLow(order int, atomic bool) (int32, bool) {
	gfp := dma.GFPKernel
	if atomic {
		gfp = dma.GFPAtomic | dma.GFPNoWarn
	}
	if order > dma.MaxOrder {
		return 0, false
	}
	l.m.meter.Charge(dma.Time(l.m.cfg.PageAllocNS + int64(order)*l.m.cfg.PageAllocOrderNS))
	pfn, _, err := l.m.mem.Alloc([]int{zoneDMA32}, order, gfp)
	if err != nil {
		return 0, false
	}
	l.m.decrypt(1 << order)
	return pfn, true
}

func (l lowPages) FreeLow(pfn int32, order int) {
	l.m.decrypt(1 << order)
	l.m.meter.Charge(dma.Time(l.m.cfg.PageFreeNS))
	l.m.mem.Free(pfn, order)
}

// copyCost charges a bounce copy of size bytes.
func (m *Machine) copyCost(size int64) {
	m.meter.Charge(dma.Time(size * 1000 / m.cfg.CopyMBps))
	m.meter.BounceBytes += size
}

// Map takes the driver's buffer (pages from any zone) and maps it for dev:
// through swiotlb when the platform forces bouncing or the device cannot
// reach the buffer, directly otherwise.
func (m *Machine) Map(dev *dma.Device, size int64, dir dma.Dir, gfp dma.GFP) (dma.Block, error) {
	buf, err := m.alloc(anyZones, 0, dma.Order(size), gfp)
	if err != nil {
		return buf, err
	}
	m.meter.Charge(dma.Time(m.cfg.MapNS))
	m.meter.BufferBytes += buf.Size
	if !m.cfg.ForceBounce && buf.DMA+uint64(size)-1 <= dev.Mask {
		return buf, nil // not bounced: Handle is the buffer's order
	}
	m.meter.Charge(dma.Time(m.cfg.SlotSearchNS))
	addr, h, err := m.tlb.Map(m.meter.CPU, buf.DMA, size, dev.MinAlignMask, 0)
	if err == nil && addr+uint64(size)-1 > dev.Mask {
		// The pool lies beyond a mask below 32 bits: the kernel refuses
		// ("swiotlb addr ... overflow (mask ...)").
		m.tlb.Unmap(h)
		err = fmt.Errorf("%w: %s's mask %#x does not reach swiotlb", dma.ErrMapFailed, dev.Name, dev.Mask)
	}
	if err != nil {
		m.meter.BufferBytes -= buf.Size
		m.free(buf)
		return dma.Block{}, err
	}
	m.meter.BounceMaps++
	m.copyCost(size) // to the bounce buffer, whatever the direction
	var i int32
	if n := len(m.freeB); n > 0 {
		i, m.freeB = m.freeB[n-1], m.freeB[:n-1]
	} else {
		m.bounces = append(m.bounces, bounce{})
		i = int32(len(m.bounces) - 1)
	}
	m.bounces[i] = bounce{h: h, size: size, bufBytes: buf.Size, pfn: m.pfn(buf.DMA), ord: int8(buf.Handle)}
	// The block is the bounce buffer: the slots from the mapping's
	// address on.
	off := int64(addr & (swiotlb.SlotSize - 1))
	slots := (off + size + swiotlb.SlotSize - 1) &^ (swiotlb.SlotSize - 1)
	return dma.Block{CPU: buf.CPU, DMA: addr, Size: slots - off, Owner: dma.Owner{Pool: dma.NoPool, Handle: -(i + 1)}}, nil
}

// Unmap copies a bounced buffer back when the device wrote it, releases
// its slots, and frees the driver's buffer.
func (m *Machine) Unmap(b dma.Block, dir dma.Dir) {
	if b.Handle >= 0 {
		m.meter.BufferBytes -= b.Size
		m.free(b)
		return
	}
	i := -b.Handle - 1
	bb := m.bounces[i]
	m.meter.BufferBytes -= bb.bufBytes
	if dir == dma.FromDevice || dir == dma.Bidirectional {
		m.copyCost(bb.size)
	}
	m.tlb.Unmap(bb.h)
	m.freeB = append(m.freeB, i)
	m.meter.Charge(dma.Time(m.cfg.PageFreeNS))
	m.mem.Free(bb.pfn, int(bb.ord))
}

// Sync copies a bounced buffer: from the device for the CPU, to the
// device after the CPU wrote it. Sync carries one direction; the engine's
// sync of a FromDevice mapping is a sync for the CPU, of a ToDevice one a
// sync for the device.
func (m *Machine) Sync(b dma.Block, dir dma.Dir) {
	if b.Handle < 0 {
		m.copyCost(m.bounces[-b.Handle-1].size)
	}
}

// Report implements dma.Reporter: swiotlb's figures.
func (m *Machine) Report(add func(string, float64)) {
	st := m.tlb.Stats
	add("swiotlb_slots", float64(st.Slots))
	add("swiotlb_used_peak", float64(st.Peak))
	add("swiotlb_full", float64(st.Full))
	add("swiotlb_oversize", float64(st.Oversize))
	add("swiotlb_oversize_max_bytes", float64(st.OversizeBytes))
	add("swiotlb_transient_pools", float64(st.Transient))
	add("swiotlb_pools_added", float64(st.Grown))
	add("decrypted_pages", float64(m.Decrypted))
}
