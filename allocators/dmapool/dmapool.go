// Package dmapool models the dma_pool allocator as reworked in 2023
// (Linux 6.3): block size ALIGN(size, align) with a 16-byte minimum,
// allocation = max(size, PAGE_SIZE) taken from dma_alloc_coherent, blocks
// laid out so that none crosses the boundary, one pool-wide LIFO stack of
// free blocks (O(1) alloc and free), and pages that are never given back
// before the pool is destroyed. A failed page allocation is a failed
// dma_pool_alloc; nothing waits.
//
// Requests not made from a pool (dma_alloc_coherent of a descriptor ring,
// say) are served by whole coherent pages, as a driver using dma_pool would
// do for them.
package dmapool

import (
	"fmt"

	"github.com/dmabench/dmabench/dma"
)

// MinBlock is sizeof(struct dma_block) on a 64-bit kernel: the free-list
// link and the block's DMA address live inside a free block.
const MinBlock = 16

// Config holds the model's knobs: modeled CPU costs of its own work.
type Config struct {
	// AllocNS and FreeNS: the kernel's dmapool_test measured 15-30 ns per
	// operation after the rework.
	AllocNS int64 `mapstructure:"alloc_ns" json:"alloc_ns"`
	FreeNS  int64 `mapstructure:"free_ns" json:"free_ns"`
	// PageInitNS is the cost per block of linking a new page's blocks.
	PageInitNS int64 `mapstructure:"page_init_ns" json:"page_init_ns"`
	// CoherentGFP: "caller" (what dma_pool does) or "atomic" (2002).
	CoherentGFP string `mapstructure:"coherent_gfp" json:"coherent_gfp"`
}

// DefaultConfig returns the defaults documented in config.yaml.
func DefaultConfig() Config {
	return Config{AllocNS: 20, FreeNS: 15, PageInitNS: 2, CoherentGFP: "caller"}
}

// Validate checks the knobs.
func (c Config) Validate() error {
	if c.AllocNS < 0 || c.FreeNS < 0 || c.PageInitNS < 0 {
		return fmt.Errorf("dmapool: costs must not be negative")
	}
	_, err := dma.ParseCoherentGFP(c.CoherentGFP)
	return err
}

// Layout is a pool's geometry as dma_pool_create computes it.
type Layout struct {
	Size       int64 // block size after rounding
	Allocation int64 // bytes per page (chunk) taken from dma_alloc_coherent
	Boundary   int64
	Offsets    []int64 // block offsets within each allocation, ascending
}

// BlocksPerPage returns how many blocks one allocation holds.
func (l *Layout) BlocksPerPage() int { return len(l.Offsets) }

// NewLayout applies dma_pool_create's rules. It returns dma.ErrInvalid
// (wrapped) where the kernel returns NULL.
func NewLayout(size, align, boundary int64) (Layout, error) {
	size, allocation, boundary, err := dma.PoolGeometry(size, align, boundary, MinBlock)
	if err != nil {
		return Layout{}, err
	}
	boundary = min(boundary, allocation)
	l := Layout{Size: size, Allocation: allocation, Boundary: boundary}
	next := boundary
	for off := int64(0); off+size <= allocation; {
		if off+size > next {
			off = next
			next += boundary
			continue
		}
		l.Offsets = append(l.Offsets, off)
		off += size
	}
	return l, nil
}

type block struct {
	cpu, dma uint64
	page     int32 // index in pool.pages (a division per operation otherwise)
}

type pool struct {
	spec   dma.PoolSpec
	layout Layout
	order  int
	pages  []dma.Block
	// The live blocks of a page (the kernel's page->in_use) are counted
	// from the free stack when asked for (see inUse): allocs and frees
	// keep no count per page.
	blocks []block // every block of every page, page by page
	free   []int32 // LIFO stack of free block indices; top is the end
	dead   bool
	// What PoolStats reports: kept on the page paths only.
	st dma.PoolStats
}

// Allocator is the dma_pool model over a platform. It is used by one
// goroutine.
type Allocator struct {
	cfg      Config
	coherent dma.CoherentGFP
	plat     *dma.Platform
	meter    *dma.Meter
	pools    []pool
	stats    dma.Stats
}

var (
	_ dma.Allocator     = (*Allocator)(nil)
	_ dma.PoolDestroyer = (*Allocator)(nil)
	_ dma.StatsReporter = (*Allocator)(nil)
)

// New returns a dma_pool model that takes pages from p.
func New(p *dma.Platform, cfg Config) (*Allocator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cg, _ := dma.ParseCoherentGFP(cfg.CoherentGFP)
	return &Allocator{cfg: cfg, coherent: cg, plat: p, meter: p.Meter}, nil
}

// CreatePool is dma_pool_create.
func (a *Allocator) CreatePool(spec dma.PoolSpec) (dma.ID, error) {
	l, err := NewLayout(spec.Size, spec.Align, spec.Boundary)
	if err != nil {
		return dma.NoPool, fmt.Errorf("dma_pool_create %q: %w", spec.Name, err)
	}
	a.pools = append(a.pools, pool{spec: spec, layout: l, order: dma.Order(l.Allocation)})
	return dma.ID(len(a.pools) - 1), nil
}

// DestroyPool is dma_pool_destroy: every page goes back to the platform,
// unless the pool is busy. Since the 2023 rework, a pool with any block
// still allocated ("dma_pool_destroy %s busy") keeps every page: all are
// leaked, so no live block's memory is handed out again.
func (a *Allocator) DestroyPool(id dma.ID) error {
	if id < 0 || int(id) >= len(a.pools) || a.pools[id].dead {
		return dma.ErrBadPool
	}
	p := &a.pools[id]
	if busy := len(p.blocks) - len(p.free); busy > 0 {
		a.stats.LeakedBlocks += int64(busy)
	} else {
		// dma_pool_destroy walks its page list from the head: the
		// newest page goes back first.
		for i := len(p.pages) - 1; i >= 0; i-- {
			a.plat.Pages.FreePages(p.pages[i])
		}
		a.stats.ReservedBytes -= int64(len(p.pages)) * (dma.PageSize << p.order)
	}
	*p = pool{dead: true, spec: p.spec, layout: p.layout, st: p.st} // its history outlives it
	return nil
}

// Alloc is dma_pool_alloc (or, for dma.NoPool, dma_alloc_coherent).
func (a *Allocator) Alloc(id dma.ID, r *dma.Request) (dma.Block, error) {
	if id == dma.NoPool {
		return a.allocDirect(r)
	}
	if id < 0 || int(id) >= len(a.pools) || a.pools[id].dead {
		a.stats.Failures++
		return dma.Block{}, dma.ErrBadPool
	}
	p := &a.pools[id]
	a.meter.Charge(dma.Time(a.cfg.AllocNS))
	if len(p.free) == 0 {
		if err := a.grow(p, r.GFP); err != nil {
			return dma.Block{}, a.stats.Fail(err)
		}
	}
	i := p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	b := &p.blocks[i]
	a.stats.Allocs++
	return dma.Block{CPU: b.cpu, DMA: b.dma, Size: p.layout.Size, Owner: dma.Owner{Pool: id, Handle: i}}, nil
}

// grow is pool_alloc_page + pool_initialise_page: a new allocation whose
// blocks come off the stack lowest address first.
func (a *Allocator) grow(p *pool, gfp dma.GFP) error {
	pg, err := p.st.Grow(a.plat.Pages, a.meter, p.spec.Dev, p.order, a.coherent.Apply(gfp))
	if err != nil {
		return err
	}
	p.pages = append(p.pages, pg)
	p.st.PeakPages = max(p.st.PeakPages, int64(len(p.pages)))
	base := int32(len(p.blocks))
	page := int32(len(p.pages) - 1)
	for _, off := range p.layout.Offsets {
		p.blocks = append(p.blocks, block{cpu: pg.CPU + uint64(off), dma: pg.DMA + uint64(off), page: page})
	}
	for k := int32(len(p.layout.Offsets)) - 1; k >= 0; k-- {
		p.free = append(p.free, base+k)
	}
	a.meter.Charge(dma.Time(a.cfg.PageInitNS * int64(len(p.layout.Offsets))))
	a.stats.ReservedBytes += pg.Size
	return nil
}

func (a *Allocator) allocDirect(r *dma.Request) (dma.Block, error) {
	return dma.AllocWholePages(a.plat.Pages, &a.stats, r.Dev, r.Size, a.coherent.Apply(r.GFP))
}

// Free is dma_pool_free (or dma_free_coherent for direct blocks): the block
// goes on top of the pool's free stack; its page stays with the pool.
func (a *Allocator) Free(b dma.Block) {
	if b.Pool == dma.NoPool {
		dma.FreeWholePages(a.plat.Pages, &a.stats, b)
		return
	}
	a.stats.Frees++
	p := &a.pools[b.Pool]
	a.meter.Charge(dma.Time(a.cfg.FreeNS))
	p.free = append(p.free, b.Handle)
}

// Stats returns the model's own counters.
func (a *Allocator) Stats() dma.Stats {
	s := a.stats
	for i := range a.pools {
		// A pool's live blocks are those off its free stack; a.stats
		// counts the direct ones.
		for _, n := range a.pools[i].inUse() {
			s.LiveBlocks += int64(n)
			if n == 0 {
				s.IdlePages++
			}
		}
	}
	return s
}

// inUse returns the live blocks of each of p's pages: every page holds
// the layout's blocks, less those on the free stack.
//
// Free does not check the block it is given (a check there costs the
// replay several instructions an event): the engine passes only frees of
// live blocks of live pools. What a broken engine would leave, a free
// stack holding blocks the pool does not have, or more than it has, stops
// the program here.
func (p *pool) inUse() []int32 {
	if len(p.free) > len(p.blocks) {
		dma.Broken("dmapool", "a pool's free stack holds only its own blocks, once", "%d free of %d blocks in pool %q", len(p.free), len(p.blocks), p.spec.Name)
	}
	n := make([]int32, len(p.pages))
	for i := range n {
		n[i] = int32(len(p.layout.Offsets))
	}
	for _, b := range p.free {
		if uint(b) >= uint(len(p.blocks)) {
			dma.Broken("dmapool", "a pool's free stack holds only its own blocks, once", "block %d of %d in pool %q", b, len(p.blocks), p.spec.Name)
		}
		n[p.blocks[b].page]--
	}
	return n
}

// PoolInfo is one line of a device's sysfs "pools" file.
type PoolInfo struct {
	Name                      string
	InUse, Total, Size, Pages int64
}

// Pools returns what /sys/devices/.../pools would show.
func (a *Allocator) Pools() []PoolInfo {
	var out []PoolInfo
	for i := range a.pools {
		p := &a.pools[i]
		if p.dead {
			continue
		}
		out = append(out, PoolInfo{Name: p.spec.Name, InUse: int64(len(p.blocks) - len(p.free)), Total: int64(len(p.blocks)), Size: p.layout.Size, Pages: int64(len(p.pages))})
	}
	return out
}

// PoolStats implements dma.PoolStatser.
func (a *Allocator) PoolStats(id dma.ID) (dma.PoolStats, bool) {
	if id < 0 || int(id) >= len(a.pools) {
		return dma.PoolStats{}, false
	}
	p := &a.pools[id]
	s := p.st
	s.BlockSize, s.PerPage, s.PageBytes, s.ReserveMin = p.layout.Size, int64(len(p.layout.Offsets)), p.layout.Allocation, -1
	if !p.dead {
		s.Pages = int64(len(p.pages))
		for _, n := range p.inUse() {
			if n == 0 {
				s.IdlePages++
			}
		}
	}
	return s, true
}
