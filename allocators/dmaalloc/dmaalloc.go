// Package dmaalloc models David Brownell's proposed dma_alloc(dev, size,
// flags): a kmalloc for DMA memory built from one pool per size class and
// device, with the kernel's size-class tables (see Classes). Requests of a
// page or more go straight to dma_alloc_coherent as power-of-two pages.
//
// The class pools are made on another allocator model, passed in (dma_pool
// or the slab model), so the same front end can be measured over either.
//
// Pool requests are served by size too: a driver that used to create a pool
// now calls dma_alloc with the pool's block size. Note: dma_alloc cannot
// promise a boundary, so blocks from a pool with one are served from the
// power-of-two class at or above their size, which never crosses a
// power-of-two boundary when naturally aligned.
package dmaalloc

import (
	"fmt"

	"github.com/dmabench/dmabench/dma"
)

// Config holds the model's knobs.
type Config struct {
	// Sizes selects the size-class table: slab or slub.
	Sizes string `mapstructure:"sizes" json:"sizes"`
	// Pools names the allocator the class pools are made on (wired by the
	// command line): dmapool or slab.
	Pools string `mapstructure:"pools" json:"pools"`
	// CacheLine decides the SLAB table's 96 and 192 classes; 0 means the
	// platform's dma_get_cache_alignment().
	CacheLine int64 `mapstructure:"cache_line" json:"cache_line"`
	// LookupNS is the modeled cost of finding the class (estimate).
	LookupNS int64 `mapstructure:"lookup_ns" json:"lookup_ns"`
	// CoherentGFP: flags for the page-sized requests: caller or atomic.
	CoherentGFP string `mapstructure:"coherent_gfp" json:"coherent_gfp"`
}

// DefaultConfig returns the defaults documented in config.yaml.
func DefaultConfig() Config {
	return Config{Sizes: "slub", Pools: "dmapool", CacheLine: 0, LookupNS: 5, CoherentGFP: "caller"}
}

// Validate checks the knobs.
func (c Config) Validate() error {
	if _, err := ParseTable(c.Sizes); err != nil {
		return fmt.Errorf("dmaalloc.sizes: %w", err)
	}
	if c.Pools != "dmapool" && c.Pools != "slab" {
		return fmt.Errorf("dmaalloc.pools %q: valid values are dmapool, slab", c.Pools)
	}
	if c.CacheLine < 0 || c.CacheLine&(c.CacheLine-1) != 0 {
		return fmt.Errorf("dmaalloc.cache_line %d: want 0 or a power of two", c.CacheLine)
	}
	if c.LookupNS < 0 {
		return fmt.Errorf("dmaalloc.lookup_ns must not be negative")
	}
	_, err := dma.ParseCoherentGFP(c.CoherentGFP)
	return err
}

type devPools struct {
	dev *dma.Device
	ids []dma.ID // inner pool per class, NoPool until first use
}

type spec struct {
	size, align int64
	pow2        bool
	dev         *dma.Device
}

// Allocator is the dma_alloc model. It is used by one goroutine.
type Allocator struct {
	cfg      Config
	coherent dma.CoherentGFP
	plat     *dma.Platform
	inner    dma.Allocator
	table    Table
	classes  []int64
	devs     []devPools
	specs    []spec // pools created through CreatePool
	direct   int64
	stats    dma.Stats
	req      dma.Request // passed on to the class pools, reused
}

var (
	_ dma.Allocator     = (*Allocator)(nil)
	_ dma.StatsReporter = (*Allocator)(nil)
)

// New returns a dma_alloc model over inner on platform p.
func New(p *dma.Platform, inner dma.Allocator, cfg Config) (*Allocator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t, _ := ParseTable(cfg.Sizes)
	cg, _ := dma.ParseCoherentGFP(cfg.CoherentGFP)
	line := cfg.CacheLine
	if line == 0 {
		line = p.CacheLine
	}
	minSize := int64(8)
	if !p.Coherent {
		minSize = max(minSize, p.CacheLine) // KMALLOC_MIN_SIZE = ARCH_DMA_MINALIGN
	}
	return &Allocator{cfg: cfg, coherent: cg, plat: p, inner: inner, table: t, classes: Classes(t, line, minSize)}, nil
}

// Classes returns the size classes in use.
func (a *Allocator) Classes() []int64 { return a.classes }

// CreatePool records a pool's block shape; its blocks come from the
// size classes.
func (a *Allocator) CreatePool(s dma.PoolSpec) (dma.ID, error) {
	if s.Size <= 0 || s.Size > dma.PageSize<<dma.MaxOrder || s.Align < 0 || s.Align&(s.Align-1) != 0 {
		return dma.NoPool, fmt.Errorf("dma_alloc pool %q: %w", s.Name, dma.ErrInvalid)
	}
	a.specs = append(a.specs, spec{size: s.Size, align: max(s.Align, 1), pow2: s.Boundary > 0, dev: s.Dev})
	return dma.ID(len(a.specs) - 1), nil
}

func naturalAlign(c int64) int64 { return c & -c }

// classFor returns the class index for size with the given alignment, or
// -1 when the request is served by whole pages.
func (a *Allocator) classFor(size, align int64, pow2 bool) int {
	for i, c := range a.classes {
		if c < size || naturalAlign(c) < align || (pow2 && c&(c-1) != 0) {
			continue
		}
		if c >= dma.PageSize {
			return -1
		}
		return i
	}
	return -1
}

func (a *Allocator) poolFor(dev *dma.Device, ci int) (dma.ID, error) {
	var dp *devPools
	for i := range a.devs {
		if a.devs[i].dev == dev {
			dp = &a.devs[i]
			break
		}
	}
	if dp == nil {
		ids := make([]dma.ID, len(a.classes))
		for i := range ids {
			ids[i] = dma.NoPool
		}
		a.devs = append(a.devs, devPools{dev: dev, ids: ids})
		dp = &a.devs[len(a.devs)-1]
	}
	if dp.ids[ci] == dma.NoPool {
		c := a.classes[ci]
		id, err := a.inner.CreatePool(dma.PoolSpec{Name: fmt.Sprintf("dma-kmalloc-%d", c), Dev: dev, Size: c, Align: naturalAlign(c)})
		if err != nil {
			return dma.NoPool, err
		}
		dp.ids[ci] = id
	}
	return dp.ids[ci], nil
}

// Alloc is dma_alloc(dev, size, flags).
func (a *Allocator) Alloc(id dma.ID, r *dma.Request) (dma.Block, error) {
	size, align, pow2, dev := r.Size, max(r.Align, 1), false, r.Dev
	if id != dma.NoPool {
		if id < 0 || int(id) >= len(a.specs) {
			a.stats.Failures++
			return dma.Block{}, dma.ErrBadPool
		}
		s := a.specs[id]
		size, align, pow2, dev = s.size, s.align, s.pow2, s.dev
	}
	a.plat.Meter.Charge(dma.Time(a.cfg.LookupNS))
	slob := a.table == SLOB && id == dma.NoPool && size > 0 && size < dma.PageSize-SLOBHeader
	if slob {
		size += SLOBHeader // SLOB's header takes room in the block
	}
	ci := a.classFor(size, align, pow2)
	if ci < 0 {
		o := dma.Order(max(size, align))
		if size <= 0 || o > dma.MaxOrder {
			a.stats.Failures++
			return dma.Block{}, dma.ErrNoMem
		}
		b, err := a.plat.Pages.AllocPages(dev, o, a.coherent.Apply(r.GFP))
		if err != nil {
			return dma.Block{}, a.stats.Fail(err)
		}
		a.direct += b.Size
		a.stats.Allocs++
		a.stats.LiveBlocks++
		r.Class = b.Size
		if slob {
			r.Class = size // kmalloc's own size: the request and its header
		}
		return b, nil
	}
	pool, err := a.poolFor(dev, ci)
	if err != nil {
		a.stats.Failures++
		return dma.Block{}, err
	}
	a.req = *r
	a.req.Size = a.classes[ci]
	b, err := a.inner.Alloc(pool, &a.req)
	if err != nil {
		if err == dma.ErrWouldBlock {
			r.Wait = a.req.Wait
			return b, err
		}
		a.stats.Failures++
		return b, err
	}
	a.stats.Allocs++
	a.stats.LiveBlocks++
	r.Class = a.classes[ci]
	if slob {
		r.Class = size // kmalloc's own size: the request and its header
	}
	return b, nil
}

// Free is dma_free.
func (a *Allocator) Free(b dma.Block) {
	a.stats.Frees++
	a.stats.LiveBlocks--
	if b.Pool == dma.NoPool {
		a.direct -= b.Size
		a.plat.Pages.FreePages(b)
		return
	}
	a.inner.Free(b)
}

// Stats returns the front end's counts and what it and its class pools
// hold from the page allocator.
func (a *Allocator) Stats() dma.Stats {
	s := a.stats
	s.ReservedBytes = a.direct
	if sr, ok := a.inner.(dma.StatsReporter); ok {
		in := sr.Stats()
		s.ReservedBytes += in.ReservedBytes
		s.IdlePages = in.IdlePages
	}
	return s
}
