// Package mempool models mempool_t over any element allocator: each pool
// keeps a reserve of min_nr elements allocated when it is created.
//
// Allocation follows mempool_alloc: first the element allocator without
// sleeping or I/O and without the emergency reserves (__GFP_NOMEMALLOC),
// never looping in the page allocator (__GFP_NORETRY);
// then an element from the reserve; then, if the caller may not sleep,
// failure; else the allocator again with the caller's flags, and if that
// fails too the caller sleeps until an element comes back to the reserve
// (or a 5 s timeout passes) and starts over. A sleeping caller never fails.
// Free refills the reserve while it is below min_nr (waking sleepers), and
// otherwise gives the element back to the allocator.
//
// The element allocator is any dma.Allocator, passed in: mempool does not
// know which model it sits on.
package mempool

import (
	"fmt"

	"github.com/dmabench/dmabench/dma"
)

// Config holds the model's knobs.
type Config struct {
	// MinNr is the reserve size per pool.
	MinNr int `mapstructure:"min_nr" json:"min_nr"`
	// MinNrByPool overrides MinNr for pools by name, as each caller of
	// mempool_create picks its own min_nr (say, one URB's worth of TDs).
	MinNrByPool map[string]int `mapstructure:"min_nr_by_pool" json:"min_nr_by_pool"`
	// Over names the element allocator (wired by the command line).
	Over string `mapstructure:"over" json:"over"`
	// TimeoutMS is the sleep before a retry without a wakeup (5*HZ).
	TimeoutMS int64 `mapstructure:"timeout_ms" json:"timeout_ms"`
	// ReserveNS is the modeled cost of taking or returning a reserve
	// element (estimate).
	ReserveNS int64 `mapstructure:"reserve_ns" json:"reserve_ns"`
	// Era picks mempool_alloc's flags: "modern" (since 2.6: every try
	// with __GFP_NOMEMALLOC | __GFP_NORETRY | __GFP_NOWARN, so that the
	// page allocator never loops under it, the first without sleeping,
	// the reserve before a sleeping try) or "2002" (2.5's: a first try
	// without sleeping, then, once the reserve is half empty, one with the
	// caller's own flags, under which the element allocator may sleep, as
	// pci_pool's SLAB_KERNEL retry does; then the reserve).
	Era string `mapstructure:"era" json:"era"`
	// ResizeAtMS and ResizeTo: at that modeled time every pool's reserve
	// is resized to ResizeTo elements, as a driver calling mempool_resize
	// does (0: never). A shrink gives the excess back through the element
	// allocator's free; a grow sets min_nr and allocates the new elements
	// with GFP_KERNEL, stopping at the first failure: frees refill the
	// rest, in every version of mempool_resize.
	ResizeAtMS int64 `mapstructure:"resize_at_ms" json:"resize_at_ms"`
	ResizeTo   int   `mapstructure:"resize_to" json:"resize_to"`
}

// DefaultConfig returns the defaults documented in config.yaml.
func DefaultConfig() Config {
	return Config{MinNr: 16, Over: "dmapool", TimeoutMS: 5000, ReserveNS: 10, Era: "modern", ResizeTo: 16}
}

// Validate checks the knobs.
func (c Config) Validate() error {
	if c.Era != "modern" && c.Era != "2002" {
		return fmt.Errorf("mempool.era %q: valid eras are modern, 2002", c.Era)
	}
	if c.MinNr < 1 || c.MinNr > 1<<20 {
		return fmt.Errorf("mempool.min_nr %d: want 1..1048576", c.MinNr)
	}
	for name, n := range c.MinNrByPool {
		if n < 1 || n > 1<<20 {
			return fmt.Errorf("mempool.min_nr_by_pool.%s %d: want 1..1048576", name, n)
		}
	}
	if c.ResizeAtMS < 0 || c.ResizeAtMS > 1e9 || c.ResizeAtMS > 0 && (c.ResizeTo < 1 || c.ResizeTo > 1<<20) {
		return fmt.Errorf("mempool: resize_at_ms must be in 0..1e9 and, when set, resize_to in 1..1048576 (mempool_resize BUGs on 0)")
	}
	if c.TimeoutMS <= 0 || c.ReserveNS < 0 {
		return fmt.Errorf("mempool: timeout_ms must be positive and reserve_ns not negative")
	}
	if c.Over == "mempool" {
		return fmt.Errorf("mempool.over: a mempool over a mempool is not a model of anything")
	}
	return nil
}

type pool struct {
	inner   dma.ID
	spec    dma.PoolSpec
	reserve []dma.Block
	min     int // min_nr of this pool
	low     int // lowest reserve level seen
	live    int // elements handed out and not yet freed
	dead    bool
}

// Allocator is the mempool model. It is used by one goroutine.
type Allocator struct {
	cfg   Config
	inner dma.Allocator
	// req is the request passed on to the element allocator, reused so
	// that nothing is allocated per call.
	req   dma.Request
	meter *dma.Meter
	pools []pool
	stats dma.Stats
	// era2002: cfg.Era is "2002".
	era2002 bool
	// resizeAt is when the configured mempool_resize runs (0: never, or
	// done); resizeShort counts elements a grow could not allocate.
	resizeAt    dma.Time
	resizeShort int
}

var (
	_ dma.Allocator     = (*Allocator)(nil)
	_ dma.PoolDestroyer = (*Allocator)(nil)
	_ dma.StatsReporter = (*Allocator)(nil)
	_ dma.Reporter      = (*Allocator)(nil)
)

// New returns a mempool over inner, an allocator on platform p.
func New(p *dma.Platform, inner dma.Allocator, cfg Config) (*Allocator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Allocator{cfg: cfg, inner: inner, meter: p.Meter, era2002: cfg.Era == "2002",
		resizeAt: dma.Time(cfg.ResizeAtMS) * dma.Millisecond}, nil
}

// resize is mempool_resize(pool, ResizeTo, GFP_KERNEL) on every live pool,
// run by the first call at or after its time.
func (a *Allocator) resize() {
	a.resizeAt = 0
	n := a.cfg.ResizeTo
	r := dma.Request{GFP: dma.GFPKernel}
	for i := range a.pools {
		p := &a.pools[i]
		if p.dead {
			continue
		}
		for len(p.reserve) > n {
			a.inner.Free(p.reserve[len(p.reserve)-1])
			p.reserve = p.reserve[:len(p.reserve)-1]
		}
		p.min, p.low = n, min(p.low, len(p.reserve))
		r.Size, r.Dev = p.spec.Size, p.spec.Dev
		for len(p.reserve) < n {
			b, err := a.inner.Alloc(p.inner, &r)
			if err != nil {
				// A sleep the page allocator asked for is not
				// taken here: the refill stops, as on a failure.
				a.meter.Sleep, r.Wait = dma.Wait{}, dma.Wait{}
				a.resizeShort += n - len(p.reserve)
				break
			}
			p.reserve = append(p.reserve, b)
		}
	}
}

// CreatePool is mempool_create over a pool of the element allocator: the
// reserve is filled with GFP_KERNEL, and creation fails if it cannot be.
func (a *Allocator) CreatePool(spec dma.PoolSpec) (dma.ID, error) {
	in, err := a.inner.CreatePool(spec)
	if err != nil {
		return dma.NoPool, err
	}
	n := a.cfg.MinNr
	if v, ok := a.cfg.MinNrByPool[spec.Name]; ok {
		n = v
	}
	p := pool{inner: in, spec: spec, min: n, low: n}
	r := dma.Request{Size: spec.Size, GFP: dma.GFPKernel, Dev: spec.Dev}
	for len(p.reserve) < n {
		b, err := a.inner.Alloc(in, &r)
		if err != nil {
			for _, b := range p.reserve {
				a.inner.Free(b)
			}
			return dma.NoPool, fmt.Errorf("mempool_create %q: filling the reserve: %w", spec.Name, dma.ErrNoMem)
		}
		p.reserve = append(p.reserve, b)
	}
	a.pools = append(a.pools, p)
	return dma.ID(len(a.pools) - 1), nil
}

// DestroyPool is mempool_destroy: the reserve goes back, then the pool.
func (a *Allocator) DestroyPool(id dma.ID) error {
	if id < 0 || int(id) >= len(a.pools) || a.pools[id].dead {
		return dma.ErrBadPool
	}
	p := &a.pools[id]
	for _, b := range p.reserve {
		a.inner.Free(b)
	}
	p.reserve = nil
	p.dead = true
	// Elements still out die with the pool (the engine never frees
	// them); the element allocator's destroy leaks what it leaks.
	a.stats.LiveBlocks -= int64(p.live)
	a.stats.LeakedBlocks += int64(p.live)
	if d, ok := a.inner.(dma.PoolDestroyer); ok {
		return d.DestroyPool(p.inner)
	}
	return nil
}

// Alloc is mempool_alloc (size-based requests go straight to the element
// allocator: a mempool reserves elements of one size).
func (a *Allocator) Alloc(id dma.ID, r *dma.Request) (dma.Block, error) {
	if a.resizeAt != 0 && a.meter.Now >= a.resizeAt {
		a.resize()
	}
	if id == dma.NoPool {
		b, err := a.inner.Alloc(id, r)
		a.count(err)
		return b, err
	}
	if id < 0 || int(id) >= len(a.pools) || a.pools[id].dead {
		a.stats.Failures++
		return dma.Block{}, dma.ErrBadPool
	}
	p := &a.pools[id]
	if a.era2002 {
		return a.alloc2002(id, p, r)
	}
	gfp := r.GFP | dma.GFPNoMemalloc | dma.GFPNoRetry | dma.GFPNoWarn
	a.req = *r
	a.req.GFP = gfp &^ (dma.GFPWait | dma.GFPIO)
	b, err := a.inner.Alloc(p.inner, &a.req)
	if err == nil {
		return a.give(id, b), nil
	}
	if b, ok := a.fromReserve(id, p); ok {
		return b, nil
	}
	if !r.GFP.CanSleep() {
		a.stats.Failures++
		return dma.Block{}, dma.ErrNoMem
	}
	if b, err := a.trySleeping(id, p, r, gfp); err == nil || err == dma.ErrWouldBlock {
		return b, err
	}
	return a.wait(id, r)
}

// trySleeping asks the element allocator with flags gfp, under which it
// may sleep: an element, or the element allocator's own sleep (pci_pool's
// SLAB_KERNEL retry loop), which the caller then sleeps under our pool's
// name, or its failure.
func (a *Allocator) trySleeping(id dma.ID, p *pool, r *dma.Request, gfp dma.GFP) (dma.Block, error) {
	a.req = *r
	a.req.GFP = gfp
	b, err := a.inner.Alloc(p.inner, &a.req)
	if err == nil {
		return a.give(id, b), nil
	}
	if err == dma.ErrWouldBlock && a.req.Wait.Kind != 0 {
		r.Wait = a.req.Wait
		r.Wait.On = id
	}
	return dma.Block{}, err
}

// wait puts the caller to sleep until an element comes back to pool id,
// or timeout_ms pass.
func (a *Allocator) wait(id dma.ID, r *dma.Request) (dma.Block, error) {
	r.Wait = dma.Wait{Kind: dma.WaitMempool, Timeout: dma.Time(a.cfg.TimeoutMS) * dma.Millisecond, On: id}
	return dma.Block{}, dma.ErrWouldBlock
}

// fromReserve hands out an element of pool id's reserve, if it has one.
func (a *Allocator) fromReserve(id dma.ID, p *pool) (dma.Block, bool) {
	n := len(p.reserve)
	if n == 0 {
		return dma.Block{}, false
	}
	a.meter.Charge(dma.Time(a.cfg.ReserveNS))
	b := p.reserve[n-1]
	p.reserve = p.reserve[:n-1]
	p.low = min(p.low, len(p.reserve))
	return a.give(id, b), true
}

// alloc2002 is 2.5's mempool_alloc: a try without sleeping (an atomic
// caller keeps its right to the reserves); once the reserve is half
// empty, a try with the caller's own flags, under which the element
// allocator may sleep (pci_pool's SLAB_KERNEL retry: the caller waits on
// it); then the reserve; a caller that may sleep then waits for an
// element to come back (2.5 slept until woken: the model retries after
// timeout_ms as well).
func (a *Allocator) alloc2002(id dma.ID, p *pool, r *dma.Request) (dma.Block, error) {
	a.req = *r
	a.req.GFP = r.GFP &^ (dma.GFPWait | dma.GFPIO)
	b, err := a.inner.Alloc(p.inner, &a.req)
	if err == nil {
		return a.give(id, b), nil
	}
	if r.GFP.CanSleep() && len(p.reserve) <= p.min/2 {
		if b, err := a.trySleeping(id, p, r, r.GFP); err == nil || err == dma.ErrWouldBlock {
			return b, err
		}
	}
	if b, ok := a.fromReserve(id, p); ok {
		return b, nil
	}
	if !r.GFP.CanSleep() {
		a.stats.Failures++
		return dma.Block{}, dma.ErrNoMem
	}
	return a.wait(id, r)
}

func (a *Allocator) count(err error) {
	if err == nil {
		a.stats.Allocs++
		a.stats.LiveBlocks++
	} else if err != dma.ErrWouldBlock {
		a.stats.Failures++
	}
}

// give hands a block out under the mempool's pool id.
func (a *Allocator) give(id dma.ID, b dma.Block) dma.Block {
	a.count(nil)
	a.pools[id].live++
	b.Pool = id
	return b
}

// Free is mempool_free.
func (a *Allocator) Free(b dma.Block) {
	if a.resizeAt != 0 && a.meter.Now >= a.resizeAt {
		a.resize()
	}
	a.stats.Frees++
	a.stats.LiveBlocks--
	if b.Pool == dma.NoPool {
		a.inner.Free(b)
		return
	}
	id := b.Pool
	if uint(id) >= uint(len(a.pools)) || a.pools[id].dead {
		dma.Broken("mempool", "a free names an element of a live pool", "pool %d", id)
	}
	p := &a.pools[id]
	p.live--
	b.Pool = p.inner
	if len(p.reserve) < p.min {
		a.meter.Charge(dma.Time(a.cfg.ReserveNS))
		p.reserve = append(p.reserve, b)
		a.meter.Wake = id + 1
		return
	}
	a.inner.Free(b)
	if a.meter.Wake == p.inner+1 {
		// The element allocator woke sleepers on its pool: they sleep
		// under our pool's id.
		a.meter.Wake = id + 1
	}
}

// Stats returns the mempool's view: allocations its callers made, and
// what the element allocator holds from the page allocator.
func (a *Allocator) Stats() dma.Stats {
	s := a.stats
	if sr, ok := a.inner.(dma.StatsReporter); ok {
		in := sr.Stats()
		s.ReservedBytes = in.ReservedBytes
		s.IdlePages = in.IdlePages
	}
	return s
}

// ReserveMin returns the lowest reserve level any pool reached.
func (a *Allocator) ReserveMin() int {
	low := -1
	for i := range a.pools {
		if p := &a.pools[i]; !p.dead && (low < 0 || p.low < low) {
			low = p.low
		}
	}
	if low < 0 {
		return a.cfg.MinNr
	}
	return low
}

// Report adds the mempool's own metrics.
func (a *Allocator) Report(add func(key string, value float64)) {
	add("mempool_reserve_min", float64(a.ReserveMin()))
	if a.cfg.ResizeAtMS > 0 {
		add("mempool_resize_short", float64(a.resizeShort))
	}
}

// PoolStats implements dma.PoolStatser: the element allocator's pool, and
// the reserve's lowest level.
func (a *Allocator) PoolStats(id dma.ID) (dma.PoolStats, bool) {
	if id < 0 || int(id) >= len(a.pools) {
		return dma.PoolStats{}, false
	}
	p := &a.pools[id]
	var s dma.PoolStats
	if ps, ok := a.inner.(dma.PoolStatser); ok {
		s, _ = ps.PoolStats(p.inner)
	}
	s.ReserveMin = int64(p.low)
	return s, true
}
