// Package pcipool models the pci_pool allocator of 2002 (Linux 2.4/2.5,
// drivers/pci/pool.c), the design dma_pool later replaced.
//
// A pool hands out fixed-size blocks carved from chunks of `allocation`
// bytes taken from pci_alloc_consistent. Each chunk has a bitmap of free
// blocks. Allocation walks the chunk list newest first and takes the lowest
// free block of the first chunk that has one; free finds a block's chunk by
// a linear walk of the same list. Chunks are never returned before the pool
// is destroyed. When no chunk can be had, a SLAB_KERNEL (GFP_KERNEL) caller
// sleeps until a block is freed in the pool or 100 ms pass, and retries
// forever; any other caller fails.
//
// Sizes are rounded the era's way: a size that is not a multiple of align
// becomes (size + align + 1) rounded down to align, which adds one align too
// many when size % align == align - 1. The chunk size is also the boundary
// no block crosses.
//
// The walks are real: host time per operation grows with the number of
// chunks, as the kernel's did (35 ns to 1.77 us per op in dmapool_test
// before the 2023 rework).
package pcipool

import (
	"fmt"
	"math/bits"

	"github.com/dmabench/dmabench/dma"
)

// Config holds the model's knobs.
type Config struct {
	// AllocNS and FreeNS: fixed modeled cost of an operation (estimate).
	AllocNS int64 `mapstructure:"alloc_ns" json:"alloc_ns"`
	FreeNS  int64 `mapstructure:"free_ns" json:"free_ns"`
	// ChunkNS: modeled cost of visiting one chunk on a walk (estimate).
	ChunkNS int64 `mapstructure:"chunk_ns" json:"chunk_ns"`
	// RetryMS: how long a SLAB_KERNEL caller sleeps (POOL_TIMEOUT_JIFFIES,
	// 100 ms).
	RetryMS int64 `mapstructure:"retry_ms" json:"retry_ms"`
	// CoherentGFP: "atomic" (pci_alloc_consistent in 2002) or "caller".
	CoherentGFP string `mapstructure:"coherent_gfp" json:"coherent_gfp"`
}

// DefaultConfig returns the defaults documented in config.yaml.
func DefaultConfig() Config {
	return Config{AllocNS: 30, FreeNS: 25, ChunkNS: 4, RetryMS: 100, CoherentGFP: "atomic"}
}

// Validate checks the knobs.
func (c Config) Validate() error {
	if c.AllocNS < 0 || c.FreeNS < 0 || c.ChunkNS < 0 || c.RetryMS <= 0 {
		return fmt.Errorf("pcipool: costs must not be negative and retry_ms must be positive")
	}
	_, err := dma.ParseCoherentGFP(c.CoherentGFP)
	return err
}

// Layout is a pool's geometry as pci_pool_create computes it.
type Layout struct {
	Size          int64
	Allocation    int64
	BlocksPerPage int
}

// NewLayout applies pci_pool_create's rules, quirk included. allocation 0
// means max(PAGE_SIZE, size).
func NewLayout(size, align, allocation int64) (Layout, error) {
	if align == 0 {
		align = 1
	} else if align < 0 || align&(align-1) != 0 {
		return Layout{}, fmt.Errorf("%w: align %d is not a power of two", dma.ErrInvalid, align)
	}
	if size <= 0 || size > 1<<30 {
		return Layout{}, fmt.Errorf("%w: size %d", dma.ErrInvalid, size)
	}
	if size < align {
		size = align
	} else if size%align != 0 {
		size += align + 1
		size &^= align - 1
	}
	if allocation == 0 {
		allocation = max(dma.PageSize, size)
	} else if allocation < size {
		return Layout{}, fmt.Errorf("%w: allocation %d smaller than block %d", dma.ErrInvalid, allocation, size)
	}
	return Layout{Size: size, Allocation: allocation, BlocksPerPage: int(allocation / size)}, nil
}

type chunk struct {
	pg     dma.Block
	bitmap []uint64 // bit set == block free
	inUse  int32
}

type pool struct {
	spec   dma.PoolSpec
	layout Layout
	order  int
	words  int
	chunks []chunk // oldest first; walks go from the end (newest)
	dead   bool
	st     dma.PoolStats // what PoolStats reports, kept on the page paths
}

// Allocator is the pci_pool model. It is used by one goroutine.
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

// New returns a pci_pool model over p.
func New(p *dma.Platform, cfg Config) (*Allocator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cg, _ := dma.ParseCoherentGFP(cfg.CoherentGFP)
	return &Allocator{cfg: cfg, coherent: cg, plat: p, meter: p.Meter}, nil
}

// CreatePool is pci_pool_create; the spec's Boundary is its "allocation".
func (a *Allocator) CreatePool(spec dma.PoolSpec) (dma.ID, error) {
	l, err := NewLayout(spec.Size, spec.Align, spec.Boundary)
	if err != nil {
		return dma.NoPool, fmt.Errorf("pci_pool_create %q: %w", spec.Name, err)
	}
	a.pools = append(a.pools, pool{spec: spec, layout: l, order: dma.Order(l.Allocation), words: (l.BlocksPerPage + 63) / 64})
	return dma.ID(len(a.pools) - 1), nil
}

// DestroyPool is pci_pool_destroy.
func (a *Allocator) DestroyPool(id dma.ID) error {
	if id < 0 || int(id) >= len(a.pools) || a.pools[id].dead {
		return dma.ErrBadPool
	}
	p := &a.pools[id]
	for _, c := range p.chunks {
		if c.inUse > 0 {
			// "pci_pool_destroy %s/%s, %p busy": the chunk's memory
			// is leaked, still in use.
			a.stats.LiveBlocks -= int64(c.inUse)
			a.stats.LeakedBlocks += int64(c.inUse)
			continue
		}
		a.plat.Pages.FreePages(c.pg)
		a.stats.ReservedBytes -= c.pg.Size
	}
	*p = pool{dead: true, spec: p.spec, layout: p.layout, order: p.order, st: p.st} // its history outlives it
	return nil
}

// Alloc is pci_pool_alloc (or, for dma.NoPool, pci_alloc_consistent).
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
	visited := 0
	for ci := len(p.chunks) - 1; ci >= 0; ci-- {
		c := &p.chunks[ci]
		visited++
		for w, word := range c.bitmap {
			if word == 0 {
				continue
			}
			b := w*64 + bits.TrailingZeros64(word)
			if b < p.layout.BlocksPerPage {
				a.meter.Charge(dma.Time(int64(visited) * a.cfg.ChunkNS))
				return a.take(p, id, ci, b), nil
			}
		}
	}
	a.meter.Charge(dma.Time(int64(visited) * a.cfg.ChunkNS))
	pg, err := p.st.Grow(a.plat.Pages, a.meter, p.spec.Dev, p.order, a.coherent.Apply(r.GFP))
	if err == dma.ErrWouldBlock {
		return dma.Block{}, err // the page allocator loops: its wait is the meter's
	}
	if err != nil {
		if r.GFP == dma.GFPKernel {
			r.Wait = dma.Wait{Kind: dma.WaitPoolRetry, Timeout: dma.Time(a.cfg.RetryMS) * dma.Millisecond, On: id}
			return dma.Block{}, dma.ErrWouldBlock
		}
		a.stats.Failures++
		return dma.Block{}, err
	}
	c := chunk{pg: pg, bitmap: make([]uint64, p.words)}
	for b := 0; b < p.layout.BlocksPerPage; b++ {
		c.bitmap[b/64] |= 1 << (b % 64)
	}
	p.chunks = append(p.chunks, c)
	p.st.PeakPages = max(p.st.PeakPages, int64(len(p.chunks)))
	a.stats.ReservedBytes += pg.Size
	return a.take(p, id, len(p.chunks)-1, 0), nil
}

func (a *Allocator) take(p *pool, id dma.ID, ci, b int) dma.Block {
	c := &p.chunks[ci]
	c.bitmap[b/64] &^= 1 << (b % 64)
	c.inUse++
	a.stats.Allocs++
	a.stats.LiveBlocks++
	off := uint64(int64(b) * p.layout.Size)
	return dma.Block{CPU: c.pg.CPU + off, DMA: c.pg.DMA + off, Size: p.layout.Size, Owner: dma.Owner{Pool: id, Handle: int32(b)}}
}

func (a *Allocator) allocDirect(r *dma.Request) (dma.Block, error) {
	return dma.AllocWholePages(a.plat.Pages, &a.stats, r.Dev, r.Size, a.coherent.Apply(r.GFP))
}

// Free is pci_pool_free: find the chunk by walking the list newest first,
// set the block's bit, wake sleepers. The chunk stays with the pool.
func (a *Allocator) Free(b dma.Block) {
	if b.Pool == dma.NoPool {
		dma.FreeWholePages(a.plat.Pages, &a.stats, b)
		return
	}
	a.stats.Frees++
	a.stats.LiveBlocks--
	p := &a.pools[b.Pool]
	a.meter.Charge(dma.Time(a.cfg.FreeNS))
	alloc := uint64(p.layout.Allocation)
	for ci := len(p.chunks) - 1; ci >= 0; ci-- {
		c := &p.chunks[ci]
		if b.DMA >= c.pg.DMA && b.DMA < c.pg.DMA+alloc {
			a.meter.Charge(dma.Time(int64(len(p.chunks)-ci) * a.cfg.ChunkNS))
			blk := int((b.DMA - c.pg.DMA) / uint64(p.layout.Size))
			c.bitmap[blk/64] |= 1 << (blk % 64)
			c.inUse--
			a.meter.Wake = b.Pool + 1
			return
		}
	}
	dma.Broken("pcipool", "a free names a block of one of the pool's chunks", "%#x is in no chunk of pool %q", b.DMA, p.spec.Name)
}

// Stats returns the model's counters.
func (a *Allocator) Stats() dma.Stats {
	s := a.stats
	for i := range a.pools {
		for _, c := range a.pools[i].chunks {
			if c.inUse == 0 {
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
	s.BlockSize, s.PerPage, s.PageBytes, s.ReserveMin = p.layout.Size, int64(p.layout.BlocksPerPage), dma.PageSize<<p.order, -1
	s.Pages = int64(len(p.chunks))
	for _, c := range p.chunks {
		if c.inUse == 0 {
			s.IdlePages++
		}
	}
	s.PeakPages = max(s.PeakPages, s.Pages)
	return s, true
}
