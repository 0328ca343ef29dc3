// Package slab models James Bottomley's slab-style DMA allocator: a
// kmem_cache per pool whose slabs come from dma_alloc_coherent, sized by
// SLUB's order rule (see CalculateOrder), objects aligned with
// SLAB_HWCACHE_ALIGN, an optional per-CPU magazine (Bonwick) in front, and
// empty slabs given back to the page allocator once the cache holds
// min_partial partial slabs, so the cache shrinks where dma_pool does not.
//
// NewDirect builds the other design of the 2002 discussion (David
// Brownell's first patch): plain kmem_cache memory from the page allocator
// whose DMA address is its physical address. It is only correct without an
// IOMMU, so it refuses to run behind one; on a non-coherent machine every
// object is padded and aligned to whole cache lines.
//
// Note: a kmem_cache has no boundary parameter. When a pool asks for one
// smaller than the slab, objects are rounded up to a power of two (which,
// aligned, never crosses a power-of-two boundary); that is what a driver
// would have to do to use a slab cache for such blocks.
package slab

import (
	"fmt"
	"math/bits"

	"github.com/dmabench/dmabench/dma"
)

// Config holds the model's knobs.
type Config struct {
	// NrCPUs feeds SLUB's min_objects = 4*(fls(nr_cpus)+1).
	NrCPUs int `mapstructure:"nr_cpus" json:"nr_cpus"`
	// MaxOrder is slub_max_order (PAGE_ALLOC_COSTLY_ORDER, 3).
	MaxOrder int `mapstructure:"max_order" json:"max_order"`
	// HWCacheAlign creates caches with SLAB_HWCACHE_ALIGN.
	HWCacheAlign bool `mapstructure:"hwcache_align" json:"hwcache_align"`
	// Magazine is the per-CPU magazine size in objects (0: none).
	Magazine int `mapstructure:"magazine" json:"magazine"`
	// AllocNS, FreeNS: modeled cost of the fast paths; SlabNS: of setting
	// up or tearing down a slab (estimates).
	AllocNS int64 `mapstructure:"alloc_ns" json:"alloc_ns"`
	FreeNS  int64 `mapstructure:"free_ns" json:"free_ns"`
	SlabNS  int64 `mapstructure:"slab_ns" json:"slab_ns"`
	// CoherentGFP: "caller" or "atomic" (2002's pci_alloc_consistent).
	CoherentGFP string `mapstructure:"coherent_gfp" json:"coherent_gfp"`
	// LookupNS is what a slab over dma_alloc_coherent pays per object for
	// its DMA address: the cache's page hooks carry no dma_addr_t, so it
	// is looked up (a hash of the slab's pages) each alloc (estimate).
	// slab-direct needs none: its DMA address is the physical one.
	LookupNS int64 `mapstructure:"lookup_ns" json:"lookup_ns"`
}

// DefaultConfig returns the defaults documented in config.yaml.
func DefaultConfig() Config {
	return Config{NrCPUs: 4, MaxOrder: 3, HWCacheAlign: true, Magazine: 0, AllocNS: 15, FreeNS: 15, SlabNS: 100, CoherentGFP: "caller", LookupNS: 20}
}

// Validate checks the knobs.
func (c Config) Validate() error {
	switch {
	case c.NrCPUs < 1 || c.NrCPUs > 8192:
		return fmt.Errorf("slab.nr_cpus %d: want 1..8192", c.NrCPUs)
	case c.MaxOrder < 0 || c.MaxOrder > dma.MaxOrder:
		return fmt.Errorf("slab.max_order %d: want 0..%d", c.MaxOrder, dma.MaxOrder)
	case c.Magazine < 0 || c.Magazine > 1<<16:
		return fmt.Errorf("slab.magazine %d: want 0..65536", c.Magazine)
	case c.AllocNS < 0 || c.FreeNS < 0 || c.SlabNS < 0:
		return fmt.Errorf("slab: costs must not be negative")
	}
	if c.LookupNS < 0 {
		return fmt.Errorf("slab.lookup_ns must not be negative")
	}
	_, err := dma.ParseCoherentGFP(c.CoherentGFP)
	return err
}

const none = -1

type slabT struct {
	pg         dma.Block
	free       []int32 // free object indices, LIFO
	inUse      int32
	prev, next int32 // partial list links
	onPartial  bool
	dead       bool
}

type cache struct {
	spec    dma.PoolSpec
	size    int64 // slot size
	order   int
	objs    int
	minPart int
	slabs   []slabT
	spare   []int32 // indices of dead slabs to reuse
	head    int32   // partial list: allocate from head, add at tail
	tail    int32
	nPart   int
	mag     []dma.Block
	dead    bool
	pages   int64         // slabs held now
	st      dma.PoolStats // what PoolStats reports, kept on the slab paths
}

// Allocator is the slab model. It is used by one goroutine.
type Allocator struct {
	cfg      Config
	coherent dma.CoherentGFP
	plat     *dma.Platform
	pages    dma.Pages
	direct   bool
	meter    *dma.Meter
	caches   []cache
	stats    dma.Stats
}

var (
	_ dma.Allocator     = (*Allocator)(nil)
	_ dma.PoolDestroyer = (*Allocator)(nil)
	_ dma.StatsReporter = (*Allocator)(nil)
)

// New returns a slab model whose slabs come from dma_alloc_coherent.
func New(p *dma.Platform, cfg Config) (*Allocator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cg, _ := dma.ParseCoherentGFP(cfg.CoherentGFP)
	return &Allocator{cfg: cfg, coherent: cg, plat: p, pages: p.Pages, meter: p.Meter}, nil
}

// ErrBehindIOMMU is returned by NewDirect on a platform with an IOMMU.
var ErrBehindIOMMU = fmt.Errorf("%w: slab-direct hands out kmem_cache memory with its physical address as the DMA address; "+
	"behind an IOMMU the device sees only mapped bus addresses, so every block would need a mapping", dma.ErrUnsupported)

// ErrEncrypted is returned by NewDirect on a confidential VM.
var ErrEncrypted = fmt.Errorf("%w: slab-direct hands out kmem_cache memory with its physical address as the DMA address; "+
	"on a confidential VM that memory is private to the guest and the device cannot read it: only shared memory (coherent allocations, swiotlb) can be given to a device", dma.ErrUnsupported)

// NewDirect returns the slab-direct model: kmem_cache memory from the
// plain page allocator, DMA address = physical address.
func NewDirect(p *dma.Platform, cfg Config) (*Allocator, error) {
	if p.IOMMU {
		return nil, ErrBehindIOMMU
	}
	if p.Encrypted {
		return nil, ErrEncrypted
	}
	a, err := New(p, cfg)
	if err != nil {
		return nil, err
	}
	a.pages, a.direct = p.Kernel, true
	a.coherent = dma.CoherentCaller
	return a, nil
}

// Geometry returns the slot size, slab order and objects per slab a cache
// for spec gets.
func (a *Allocator) Geometry(spec dma.PoolSpec) (size int64, order, objs int, err error) {
	if spec.Size <= 0 || spec.Size > 1<<24 {
		return 0, 0, 0, fmt.Errorf("%w: size %d", dma.ErrInvalid, spec.Size)
	}
	align := max(spec.Align, 8)
	if align&(align-1) != 0 {
		return 0, 0, 0, fmt.Errorf("%w: align %d is not a power of two", dma.ErrInvalid, spec.Align)
	}
	line := a.plat.CacheLine
	if a.cfg.HWCacheAlign && line > 0 {
		align = HWCacheAlign(spec.Size, align, line)
	}
	size = spec.Size
	if a.direct && !a.plat.Coherent && line > 0 {
		// Cached memory on a non-coherent machine: a DMA buffer must
		// own its cache lines.
		align = max(align, line)
		size = (size + line - 1) &^ (line - 1)
	}
	size = (size + align - 1) &^ (align - 1)
	order, objs = CalculateOrder(size, a.cfg.NrCPUs, a.cfg.MaxOrder)
	if b := spec.Boundary; b > 0 && b < int64(4096)<<order && b%size != 0 {
		size = int64(1) << bits.Len64(uint64(size-1))
		if size > b {
			return 0, 0, 0, fmt.Errorf("%w: block %d larger than boundary %d", dma.ErrInvalid, spec.Size, b)
		}
		order, objs = CalculateOrder(size, a.cfg.NrCPUs, a.cfg.MaxOrder)
	}
	return size, order, objs, nil
}

// CreatePool is kmem_cache_create for the pool's blocks.
func (a *Allocator) CreatePool(spec dma.PoolSpec) (dma.ID, error) {
	size, order, objs, err := a.Geometry(spec)
	if err != nil {
		return dma.NoPool, fmt.Errorf("kmem_cache_create %q: %w", spec.Name, err)
	}
	minPart := min(max(bits.Len64(uint64(size))-1, 0)/2, 10)
	minPart = max(minPart, 5)
	a.caches = append(a.caches, cache{spec: spec, size: size, order: order, objs: objs, minPart: minPart, head: none, tail: none})
	return dma.ID(len(a.caches) - 1), nil
}

// DestroyPool is kmem_cache_destroy.
func (a *Allocator) DestroyPool(id dma.ID) error {
	if id < 0 || int(id) >= len(a.caches) || a.caches[id].dead {
		return dma.ErrBadPool
	}
	c := &a.caches[id]
	for _, b := range c.mag {
		a.release(c, b)
	}
	for i := range c.slabs {
		s := &c.slabs[i]
		if s.dead {
			continue
		}
		if s.inUse > 0 {
			// kmem_cache_destroy of a cache with objects ("Slab cache
			// still has objects") frees what is empty and keeps the
			// rest: the objects are leaked with their slabs.
			a.stats.LiveBlocks -= int64(s.inUse)
			a.stats.LeakedBlocks += int64(s.inUse)
			continue
		}
		a.stats.ReservedBytes -= s.pg.Size
		a.pages.FreePages(s.pg)
	}
	*c = cache{dead: true, spec: c.spec, size: c.size, order: c.order, objs: c.objs, st: c.st} // its history outlives it
	return nil
}

func (c *cache) unlink(i int32) {
	s := &c.slabs[i]
	if s.prev != none {
		c.slabs[s.prev].next = s.next
	} else {
		c.head = s.next
	}
	if s.next != none {
		c.slabs[s.next].prev = s.prev
	} else {
		c.tail = s.prev
	}
	s.onPartial = false
	c.nPart--
}

func (c *cache) addTail(i int32) {
	s := &c.slabs[i]
	s.prev, s.next = c.tail, none
	if c.tail != none {
		c.slabs[c.tail].next = i
	} else {
		c.head = i
	}
	c.tail = i
	s.onPartial = true
	c.nPart++
}

func (c *cache) addHead(i int32) {
	s := &c.slabs[i]
	s.prev, s.next = none, c.head
	if c.head != none {
		c.slabs[c.head].prev = i
	} else {
		c.tail = i
	}
	c.head = i
	s.onPartial = true
	c.nPart++
}

// Alloc is kmem_cache_alloc (or, for dma.NoPool, whole coherent pages).
func (a *Allocator) Alloc(id dma.ID, r *dma.Request) (dma.Block, error) {
	if id == dma.NoPool {
		return a.allocPages(r)
	}
	if id < 0 || int(id) >= len(a.caches) || a.caches[id].dead {
		a.stats.Failures++
		return dma.Block{}, dma.ErrBadPool
	}
	c := &a.caches[id]
	a.meter.Charge(dma.Time(a.cfg.AllocNS))
	if n := len(c.mag); n > 0 {
		b := c.mag[n-1]
		c.mag = c.mag[:n-1]
		a.stats.Allocs++
		a.stats.LiveBlocks++
		a.handOver(b.DMA, c.size)
		return b, nil
	}
	if c.head == none {
		if err := a.grow(c, id, r.GFP); err != nil {
			return dma.Block{}, a.stats.Fail(err)
		}
	}
	si := c.head
	s := &c.slabs[si]
	obj := s.free[len(s.free)-1]
	s.free = s.free[:len(s.free)-1]
	s.inUse++
	if len(s.free) == 0 {
		c.unlink(si)
	}
	a.stats.Allocs++
	a.stats.LiveBlocks++
	off := uint64(int64(obj) * c.size)
	a.handOver(s.pg.DMA+off, c.size)
	return dma.Block{CPU: s.pg.CPU + off, DMA: s.pg.DMA + off, Size: c.size, Owner: dma.Owner{Pool: id, Handle: si*int32(c.objs) + obj}}, nil
}

// handOver is what giving an object to a device costs beyond the
// allocation: slab-direct's kmalloc memory is cached, so on a machine
// without coherent DMA the driver's dma_map_single cleans its lines; a
// slab over coherent pages looks its DMA address up.
func (a *Allocator) handOver(addr uint64, size int64) {
	switch {
	case a.direct && a.plat.CacheMaintain != nil:
		a.plat.CacheMaintain(addr, size, dma.ToDevice)
	case !a.direct:
		a.meter.Charge(dma.Time(a.cfg.LookupNS))
	}
}

func (a *Allocator) grow(c *cache, id dma.ID, gfp dma.GFP) error {
	pg, err := c.st.Grow(a.pages, a.meter, c.spec.Dev, c.order, a.coherent.Apply(gfp))
	if err != nil {
		return err
	}
	c.pages++
	c.st.PeakPages = max(c.st.PeakPages, c.pages)
	a.meter.Charge(dma.Time(a.cfg.SlabNS))
	var si int32
	if n := len(c.spare); n > 0 {
		si = c.spare[n-1]
		c.spare = c.spare[:n-1]
	} else {
		c.slabs = append(c.slabs, slabT{})
		si = int32(len(c.slabs) - 1)
	}
	s := &c.slabs[si]
	free := s.free[:0]
	for k := int32(c.objs) - 1; k >= 0; k-- {
		free = append(free, k)
	}
	*s = slabT{pg: pg, free: free, prev: none, next: none}
	c.addHead(si)
	a.stats.ReservedBytes += pg.Size
	return nil
}

func (a *Allocator) allocPages(r *dma.Request) (dma.Block, error) {
	return dma.AllocWholePages(a.pages, &a.stats, r.Dev, r.Size, a.coherent.Apply(r.GFP))
}

// Free is kmem_cache_free: into the magazine if it has room, else back to
// its slab; an empty slab goes back to the page allocator once the cache
// already holds min_partial partial slabs.
func (a *Allocator) Free(b dma.Block) {
	if b.Pool == dma.NoPool {
		dma.FreeWholePages(a.pages, &a.stats, b)
		return
	}
	if uint(b.Pool) >= uint(len(a.caches)) || a.caches[b.Pool].dead {
		dma.Broken("slab", "a free names an object of a live cache", "cache %d", b.Pool)
	}
	a.stats.Frees++
	a.stats.LiveBlocks--
	c := &a.caches[b.Pool]
	a.meter.Charge(dma.Time(a.cfg.FreeNS))
	if a.direct && a.plat.CacheMaintain != nil {
		a.plat.CacheMaintain(b.DMA, c.size, dma.FromDevice) // the unmap invalidates
	}
	if a.cfg.Magazine > 0 {
		if len(c.mag) < a.cfg.Magazine {
			c.mag = append(c.mag, b)
			return
		}
		// Full magazine: flush half of it to the slabs (a depot swap).
		for len(c.mag) > a.cfg.Magazine/2 {
			n := len(c.mag)
			a.release(c, c.mag[n-1])
			c.mag = c.mag[:n-1]
		}
		c.mag = append(c.mag, b)
		return
	}
	a.release(c, b)
}

// release returns an object to its slab.
func (a *Allocator) release(c *cache, b dma.Block) {
	si := b.Handle / int32(c.objs)
	obj := b.Handle % int32(c.objs)
	s := &c.slabs[si]
	s.free = append(s.free, obj)
	s.inUse--
	if !s.onPartial {
		c.addTail(si)
	}
	if s.inUse == 0 && c.nPart > c.minPart {
		c.unlink(si)
		a.pages.FreePages(s.pg)
		a.stats.ReservedBytes -= s.pg.Size
		a.meter.Charge(dma.Time(a.cfg.SlabNS))
		s.dead = true
		c.pages--
		c.spare = append(c.spare, si)
	}
}

// Stats returns the model's counters.
func (a *Allocator) Stats() dma.Stats {
	s := a.stats
	for i := range a.caches {
		for j := range a.caches[i].slabs {
			if sl := &a.caches[i].slabs[j]; !sl.dead && sl.inUse == 0 {
				s.IdlePages += 1 << a.caches[i].order
			}
		}
	}
	return s
}

// PoolStats implements dma.PoolStatser.
func (a *Allocator) PoolStats(id dma.ID) (dma.PoolStats, bool) {
	if id < 0 || int(id) >= len(a.caches) {
		return dma.PoolStats{}, false
	}
	c := &a.caches[id]
	s := c.st
	s.BlockSize, s.PerPage, s.PageBytes, s.Pages, s.ReserveMin = c.size, int64(c.objs), dma.PageSize<<c.order, c.pages, -1
	for j := range c.slabs {
		if sl := &c.slabs[j]; !sl.dead && sl.inUse == 0 {
			s.IdlePages++
		}
	}
	return s, true
}
