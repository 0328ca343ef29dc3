// Package dmapool26 models dma_pool as it was from 2.6.x until the 2023
// rework (6.3): a pool keeps a list of pages, newest first; each page
// keeps its free blocks in a chain threaded through the blocks themselves
// (page->offset is the first free block, the first bytes of a free block
// the offset of the next); an allocation takes the first block of the
// first page in the list that has one, growing the pool by a page when
// none has; a free finds its page by walking the list for the page whose
// DMA range holds the address. Both walks cost a visit per page, which is
// what the rework removed. The layout keeps the old code's quirk: a block
// that would end exactly at a boundary is never handed out.
package dmapool26

import (
	"fmt"
	"slices"

	"github.com/dmabench/dmabench/dma"
)

// Config holds the model's knobs (costs are estimates).
type Config struct {
	AllocNS     int64  `mapstructure:"alloc_ns" json:"alloc_ns"`
	FreeNS      int64  `mapstructure:"free_ns" json:"free_ns"`
	PageNS      int64  `mapstructure:"page_ns" json:"page_ns"`
	PageInitNS  int64  `mapstructure:"page_init_ns" json:"page_init_ns"`
	CoherentGFP string `mapstructure:"coherent_gfp" json:"coherent_gfp"`
}

// DefaultConfig returns the defaults documented in config.yaml.
func DefaultConfig() Config {
	return Config{AllocNS: 20, FreeNS: 15, PageNS: 4, PageInitNS: 2, CoherentGFP: "caller"}
}

// Validate checks the knobs.
func (c Config) Validate() error {
	if c.AllocNS < 0 || c.FreeNS < 0 || c.PageNS < 0 || c.PageInitNS < 0 {
		return fmt.Errorf("dmapool_26: costs must not be negative")
	}
	_, err := dma.ParseCoherentGFP(c.CoherentGFP)
	return err
}

// idxBits is how many bits of a block's Handle name its block in its page.
const idxBits = 12

// Layout is how dma_pool_create and pool_initialise_page cut a pool's
// pages before 6.3.
type Layout struct {
	Size, Allocation, Boundary int64
	// Offsets are the blocks of a page in the order of its first chain;
	// Next[i] is the chain's offset after Offsets[i] (Allocation or more:
	// the end).
	Offsets, Next []int64
}

// NewLayout applies dma_pool_create's rules (size at least 4, rounded up
// to align; allocation at least a page; boundary a power of two no
// smaller than the size, the allocation when 0) and walks
// pool_initialise_page's chain.
func NewLayout(size, align, boundary int64) (Layout, error) {
	size, allocation, boundary, err := dma.PoolGeometry(size, align, boundary, 4)
	if err != nil {
		return Layout{}, err
	}
	l := Layout{Size: size, Allocation: allocation, Boundary: boundary}
	offset, nextBoundary := int64(0), boundary
	for offset < allocation {
		next := offset + size
		if next+size >= nextBoundary {
			next = nextBoundary
			nextBoundary += boundary
		}
		l.Offsets, l.Next = append(l.Offsets, offset), append(l.Next, next)
		offset = next
	}
	if len(l.Offsets) >= 1<<idxBits {
		return Layout{}, fmt.Errorf("%w: %d blocks a page", dma.ErrInvalid, len(l.Offsets))
	}
	return l, nil
}

// index returns the block at offset off of a page of l.
func (l *Layout) index(off int64) int32 {
	i, ok := slices.BinarySearch(l.Offsets, off)
	if !ok {
		dma.Broken("dmapool-2.6", "a page's chain holds only its blocks' offsets", "offset %d", off)
	}
	return int32(i)
}

type page struct {
	blk    dma.Block
	offset int64   // page->offset: the first free block, Allocation or more when none
	next   []int64 // the chain: the offset a free block holds
	inUse  int32
}

type pool struct {
	spec   dma.PoolSpec
	layout Layout
	order  int
	pages  []page // oldest first: the list is walked from the end; none once dead
	dead   bool
	st     dma.PoolStats
}

// Allocator is the model. It is used by one goroutine.
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
	_ dma.PoolStatser   = (*Allocator)(nil)
)

// New returns the model over platform p.
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

// Alloc is dma_pool_alloc (or, for dma.NoPool, dma_alloc_coherent).
func (a *Allocator) Alloc(id dma.ID, r *dma.Request) (dma.Block, error) {
	if id == dma.NoPool {
		return dma.AllocWholePages(a.plat.Pages, &a.stats, r.Dev, r.Size, a.coherent.Apply(r.GFP))
	}
	if id < 0 || int(id) >= len(a.pools) || a.pools[id].dead {
		a.stats.Failures++
		return dma.Block{}, dma.ErrBadPool
	}
	p := &a.pools[id]
	a.meter.Charge(dma.Time(a.cfg.AllocNS))
	l := &p.layout
	// list_for_each_entry from the newest page.
	pi := len(p.pages) - 1
	for ; pi >= 0; pi-- {
		if p.pages[pi].offset < l.Allocation {
			break
		}
	}
	a.meter.Charge(dma.Time(int64(len(p.pages)-max(pi, 0)) * a.cfg.PageNS))
	if pi < 0 {
		if err := a.grow(p, r.GFP); err != nil {
			return dma.Block{}, a.stats.Fail(err)
		}
		pi = len(p.pages) - 1
	}
	pg := &p.pages[pi]
	off := pg.offset
	i := l.index(off)
	pg.offset = pg.next[i]
	pg.inUse++
	a.stats.Allocs++
	return dma.Block{CPU: pg.blk.CPU + uint64(off), DMA: pg.blk.DMA + uint64(off), Size: l.Size,
		Owner: dma.Owner{Pool: id, Handle: int32(pi)<<idxBits | i}}, nil
}

// grow is pool_alloc_page with pool_initialise_page: a new page, its
// chain in ascending order, at the head of the list.
func (a *Allocator) grow(p *pool, gfp dma.GFP) error {
	b, err := p.st.Grow(a.plat.Pages, a.meter, p.spec.Dev, p.order, a.coherent.Apply(gfp))
	if err != nil {
		return err
	}
	if len(p.pages) >= 1<<(31-idxBits) {
		a.plat.Pages.FreePages(b)
		return fmt.Errorf("%w: dmapool-2.6 pool %q has %d pages", dma.ErrNoMem, p.spec.Name, len(p.pages))
	}
	p.pages = append(p.pages, page{blk: b, next: slices.Clone(p.layout.Next)})
	p.st.PeakPages = max(p.st.PeakPages, int64(len(p.pages)))
	a.meter.Charge(dma.Time(a.cfg.PageInitNS * int64(len(p.layout.Offsets))))
	a.stats.ReservedBytes += b.Size
	return nil
}

// Free is dma_pool_free: pool_find_page walks the list from the newest
// page; the block goes to the head of its page's chain.
func (a *Allocator) Free(b dma.Block) {
	if b.Pool == dma.NoPool {
		dma.FreeWholePages(a.plat.Pages, &a.stats, b)
		return
	}
	a.stats.Frees++
	p := &a.pools[b.Pool]
	pi, i := int(b.Handle>>idxBits), b.Handle&(1<<idxBits-1)
	if pi >= len(p.pages) {
		// A destroyed pool keeps no pages: the engine passes no such free.
		dma.Broken("dmapool-2.6", "a free names a block of a live pool", "pool %q, page %d of %d", p.spec.Name, pi, len(p.pages))
	}
	a.meter.Charge(dma.Time(a.cfg.FreeNS + int64(len(p.pages)-pi)*a.cfg.PageNS))
	pg := &p.pages[pi]
	pg.next[i] = pg.offset
	pg.offset = p.layout.Offsets[i]
	pg.inUse--
}

// DestroyPool is dma_pool_destroy: an idle page goes back; a busy one is
// leaked ("dma_pool_destroy %s, %p busy"), its blocks' memory never
// handed out again.
func (a *Allocator) DestroyPool(id dma.ID) error {
	if id < 0 || int(id) >= len(a.pools) || a.pools[id].dead {
		return dma.ErrBadPool
	}
	p := &a.pools[id]
	for i := len(p.pages) - 1; i >= 0; i-- { // the list from its head: newest first
		pg := &p.pages[i]
		if pg.inUse > 0 {
			a.stats.LeakedBlocks += int64(pg.inUse)
		} else {
			a.plat.Pages.FreePages(pg.blk)
			a.stats.ReservedBytes -= pg.blk.Size
		}
	}
	p.pages, p.dead = nil, true
	return nil
}

// Stats returns the model's counters.
func (a *Allocator) Stats() dma.Stats {
	s := a.stats
	for i := range a.pools {
		for _, pg := range a.pools[i].pages {
			s.LiveBlocks += int64(pg.inUse)
			if pg.inUse == 0 {
				s.IdlePages++
			}
		}
	}
	return s
}

// PoolStats implements dma.PoolStatser.
func (a *Allocator) PoolStats(id dma.ID) (dma.PoolStats, bool) {
	if id < 0 || int(id) >= len(a.pools) {
		return dma.PoolStats{}, false
	}
	p := &a.pools[id]
	s := p.st
	s.BlockSize, s.PerPage, s.PageBytes, s.ReserveMin = p.layout.Size, int64(len(p.layout.Offsets)), p.layout.Allocation, -1
	s.Pages = int64(len(p.pages))
	for _, pg := range p.pages {
		if pg.inUse == 0 {
			s.IdlePages++
		}
	}
	return s, true
}
