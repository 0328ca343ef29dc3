// Package coherent is the baseline every pool is meant to beat: each
// allocation is its own dma_alloc_coherent, whole power-of-two pages from
// the platform's page allocator, however small the request.
package coherent

import (
	"fmt"

	"github.com/dmabench/dmabench/dma"
)

// Config holds the model's knobs.
type Config struct {
	// CoherentGFP: "caller", or "atomic" as pci_alloc_consistent in 2002.
	CoherentGFP string `mapstructure:"coherent_gfp" json:"coherent_gfp"`
}

// DefaultConfig returns the defaults documented in config.yaml.
func DefaultConfig() Config { return Config{CoherentGFP: "caller"} }

// Validate checks the knobs.
func (c Config) Validate() error {
	_, err := dma.ParseCoherentGFP(c.CoherentGFP)
	return err
}

// Allocator is the coherent-pages model. It is used by one goroutine.
type Allocator struct {
	plat     *dma.Platform
	coherent dma.CoherentGFP
	specs    []dma.PoolSpec
	stats    dma.Stats
}

var (
	_ dma.Allocator     = (*Allocator)(nil)
	_ dma.StatsReporter = (*Allocator)(nil)
)

// New returns the baseline over p.
func New(p *dma.Platform, cfg Config) (*Allocator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cg, _ := dma.ParseCoherentGFP(cfg.CoherentGFP)
	return &Allocator{plat: p, coherent: cg}, nil
}

// CreatePool records the block shape; every block is its own allocation.
func (a *Allocator) CreatePool(s dma.PoolSpec) (dma.ID, error) {
	if s.Size <= 0 || s.Align < 0 || s.Align&(s.Align-1) != 0 || dma.Order(max(s.Size, s.Align)) > dma.MaxOrder {
		return dma.NoPool, fmt.Errorf("coherent pool %q: %w", s.Name, dma.ErrInvalid)
	}
	a.specs = append(a.specs, s)
	return dma.ID(len(a.specs) - 1), nil
}

// Alloc is dma_alloc_coherent of the block's size (rounded to pages; a
// buddy block is aligned to its own size, which covers any alignment up to
// it and any boundary at least as large as the block).
func (a *Allocator) Alloc(id dma.ID, r *dma.Request) (dma.Block, error) {
	size, align, dev := r.Size, r.Align, r.Dev
	if id != dma.NoPool {
		if id < 0 || int(id) >= len(a.specs) {
			a.stats.Failures++
			return dma.Block{}, dma.ErrBadPool
		}
		s := a.specs[id]
		size, align, dev = s.Size, s.Align, s.Dev
	}
	if size <= 0 {
		a.stats.Failures++
		return dma.Block{}, dma.ErrNoMem
	}
	return dma.AllocWholePages(a.plat.Pages, &a.stats, dev, max(size, align), a.coherent.Apply(r.GFP))
}

// Free is dma_free_coherent.
func (a *Allocator) Free(b dma.Block) { dma.FreeWholePages(a.plat.Pages, &a.stats, b) }

// Stats returns the model's counters.
func (a *Allocator) Stats() dma.Stats { return a.stats }
