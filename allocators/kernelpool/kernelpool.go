// Package kernelpool runs a kernel tree's own mm/dmapool.c (and
// mm/mempool.c) as dmabench allocators, through the kernel back end:
// kernel-dmapool is the tree's dma_pool, kernel-mempool the tree's
// mempool over it. Pages come from the platform's page allocator through
// the kernel code's dma_alloc_coherent, so pages, watermarks and failures
// are the platform model's own; addresses are the platform's.
//
// Modeled costs are the matching Go model's cost table (dma_pool's for a
// tree with the 2023 rework, dmapool-2.6's before it, with the page walks
// counted from where the kernel's blocks land), so that a cell's modeled
// metrics compare with the models'; the kernel code's own host time is
// measured apart, by replaying the cell's pool operations inside the
// library (host_kernel_ns_per_op).
package kernelpool

import (
	"fmt"
	"slices"
	"sort"

	"github.com/dmabench/dmabench/allocators/dmapool"
	"github.com/dmabench/dmabench/allocators/dmapool26"
	"github.com/dmabench/dmabench/allocators/mempool"
	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/kernel"
)

// MaxRecorded caps the pool operations a cell keeps for the host-time
// replay.
const MaxRecorded = 2_000_000

// Costs are the modeled costs a kernel allocator charges.
type Costs struct {
	AllocNS, FreeNS, PageNS, PageInitNS int64
	Coherent                            dma.CoherentGFP
}

// CostsFor returns the costs of the Go model of the tree's design.
func CostsFor(f kernel.Features, rework dmapool.Config, old dmapool26.Config) Costs {
	if f.BlockList {
		cg, _ := dma.ParseCoherentGFP(rework.CoherentGFP)
		return Costs{AllocNS: rework.AllocNS, FreeNS: rework.FreeNS, PageInitNS: rework.PageInitNS, Coherent: cg}
	}
	cg, _ := dma.ParseCoherentGFP(old.CoherentGFP)
	return Costs{AllocNS: old.AllocNS, FreeNS: old.FreeNS, PageNS: old.PageNS, PageInitNS: old.PageInitNS, Coherent: cg}
}

type kpage struct {
	blk   dma.Block
	born  int // creation order in its pool (the kernel's list is newest first)
	inUse int32
}

type kpool struct {
	spec    dma.PoolSpec
	k       kernel.Pool
	perPage int64
	size    int64
	alloc   int64
	pages   []kpage // sorted by CPU address
	born    int
	dead    bool
	st      dma.PoolStats
	// mempool
	m            kernel.Mempool
	min, low     int
	elemA, elemF uint64 // its element calls charged so far
}

// device is a struct device of the kernel code: its pages come from the
// platform for dma.Device dev.
type device struct {
	a   *Allocator
	dev *dma.Device
	k   kernel.Device
}

// Allocator is kernel-dmapool, or kernel-mempool when mem is set.
type Allocator struct {
	b      kernel.Backend
	plat   *dma.Platform
	meter  *dma.Meter
	costs  Costs
	rework bool
	mem    *mempool.Config
	devs   map[*dma.Device]*device
	pools  []kpool
	// serving is the pool whose kernel call is running: its pages are
	// the ones the callbacks see.
	serving *kpool
	slots   []uintptr
	free    []int32
	stats   dma.Stats
	ops     []kernel.Op
}

var (
	_ dma.Allocator     = (*Allocator)(nil)
	_ dma.PoolDestroyer = (*Allocator)(nil)
	_ dma.StatsReporter = (*Allocator)(nil)
	_ dma.PoolStatser   = (*Allocator)(nil)
	_ dma.Reporter      = (*Allocator)(nil)
	_ dma.Closer        = (*Allocator)(nil)
)

// NewDMAPool returns kernel-dmapool on platform p.
func NewDMAPool(b kernel.Backend, p *dma.Platform, c Costs) *Allocator {
	return &Allocator{b: b, plat: p, meter: p.Meter, costs: c, rework: b.Features().BlockList, devs: map[*dma.Device]*device{}}
}

// NewMempool returns kernel-mempool: the tree's mempool over its
// dma_pool, reserves sized as allocator.mempool says.
func NewMempool(b kernel.Backend, p *dma.Platform, c Costs, cfg mempool.Config) (*Allocator, error) {
	if !b.HasMempool() {
		return nil, fmt.Errorf("%w: the kernel tree (Linux %s) has no mm/mempool.c", dma.ErrInvalid, b.Version())
	}
	a := NewDMAPool(b, p, c)
	a.mem = &cfg
	return a, nil
}

// AllocPages is the kernel code's dma_alloc_coherent for d.
func (d *device) AllocPages(size int64, gfp uint32) (uint64, uint64, bool) {
	a, p := d.a, d.a.serving
	if p == nil {
		dma.Broken("kernel-dmapool", "the kernel code takes pages only inside a pool's call", "%d bytes", size)
	}
	blk, err := p.st.Grow(a.plat.Pages, a.meter, d.dev, dma.Order(size), a.costs.Coherent.Apply(dma.GFP(gfp)))
	if err != nil {
		return 0, 0, false
	}
	a.stats.ReservedBytes += blk.Size
	a.meter.Charge(dma.Time(a.costs.PageInitNS * p.perPage))
	i := sort.Search(len(p.pages), func(i int) bool { return p.pages[i].blk.CPU > blk.CPU })
	p.pages = slices.Insert(p.pages, i, kpage{blk: blk, born: p.born})
	p.born++
	p.st.PeakPages = max(p.st.PeakPages, int64(len(p.pages)))
	return blk.CPU, blk.DMA, true
}

// FreePages is the kernel code's dma_free_coherent for d.
func (d *device) FreePages(size int64, cpu, dmaAddr uint64) {
	a, p := d.a, d.a.serving
	if p == nil {
		dma.Broken("kernel-dmapool", "the kernel code frees pages only inside a pool's call", "page %#x", cpu)
	}
	i := p.page(cpu)
	if i < 0 || p.pages[i].blk.CPU != cpu {
		dma.Broken("kernel-dmapool", "the kernel code frees only pages it was given", "page %#x", cpu)
	}
	a.plat.Pages.FreePages(p.pages[i].blk)
	a.stats.ReservedBytes -= p.pages[i].blk.Size
	p.pages = slices.Delete(p.pages, i, i+1)
}

// page returns the index of the page holding cpu, or -1.
func (p *kpool) page(cpu uint64) int {
	i := sort.Search(len(p.pages), func(i int) bool { return p.pages[i].blk.CPU > cpu }) - 1
	if i < 0 || cpu >= p.pages[i].blk.CPU+uint64(p.pages[i].blk.Size) {
		return -1
	}
	return i
}

func (a *Allocator) device(dev *dma.Device) *device {
	d, ok := a.devs[dev]
	if !ok {
		d = &device{a: a, dev: dev}
		d.k = a.b.NewDevice(d)
		a.devs[dev] = d
	}
	return d
}

// CreatePool is dma_pool_create (and mempool_create over it, its reserve
// filled with GFP_KERNEL).
func (a *Allocator) CreatePool(spec dma.PoolSpec) (dma.ID, error) {
	var size, allocation, per int64
	if a.rework {
		l, err := dmapool.NewLayout(spec.Size, spec.Align, spec.Boundary)
		if err != nil {
			return dma.NoPool, fmt.Errorf("dma_pool_create %q: %w", spec.Name, err)
		}
		size, allocation, per = l.Size, l.Allocation, int64(len(l.Offsets))
	} else {
		l, err := dmapool26.NewLayout(spec.Size, spec.Align, spec.Boundary)
		if err != nil {
			return dma.NoPool, fmt.Errorf("dma_pool_create %q: %w", spec.Name, err)
		}
		size, allocation, per = l.Size, l.Allocation, int64(len(l.Offsets))
	}
	d := a.device(spec.Dev)
	k := a.b.PoolCreate(d.k, spec.Name, spec.Size, spec.Align, spec.Boundary)
	if k == 0 {
		return dma.NoPool, fmt.Errorf("dma_pool_create %q: the kernel code refused it: %w", spec.Name, dma.ErrInvalid)
	}
	a.pools = append(a.pools, kpool{spec: spec, k: k, perPage: per, size: size, alloc: allocation})
	id := dma.ID(len(a.pools) - 1)
	p := &a.pools[id]
	if a.mem != nil {
		n := a.mem.MinNr
		if v, ok := a.mem.MinNrByPool[spec.Name]; ok {
			n = v
		}
		a.serving = p
		p.m = a.b.MempoolCreate(n, k)
		a.serving = nil
		a.chargeElements(p)
		if p.m == 0 {
			a.serving = p
			a.b.PoolDestroy(k)
			a.serving = nil
			p.dead = true
			return dma.NoPool, fmt.Errorf("mempool_create %q: filling the reserve: %w", spec.Name, dma.ErrNoMem)
		}
		p.min, p.low = n, n
	}
	return id, nil
}

// chargeElements charges the element allocator calls p's mempool made.
func (a *Allocator) chargeElements(p *kpool) {
	al, fr := a.b.ElementCalls(p.k)
	a.meter.Charge(dma.Time(int64(al-p.elemA)*a.costs.AllocNS + int64(fr-p.elemF)*a.costs.FreeNS))
	p.elemA, p.elemF = al, fr
}

// Alloc is dma_pool_alloc or mempool_alloc (or, for dma.NoPool,
// dma_alloc_coherent).
func (a *Allocator) Alloc(id dma.ID, r *dma.Request) (dma.Block, error) {
	if id == dma.NoPool {
		return dma.AllocWholePages(a.plat.Pages, &a.stats, r.Dev, r.Size, a.costs.Coherent.Apply(r.GFP))
	}
	if id < 0 || int(id) >= len(a.pools) || a.pools[id].dead {
		a.stats.Failures++
		return dma.Block{}, dma.ErrBadPool
	}
	p := &a.pools[id]
	a.serving = p
	before := len(p.pages)
	var v uintptr
	var cpu, dmaAddr uint64
	if p.m != 0 {
		var did kernel.MempoolDid
		v, cpu, dmaAddr, did = a.b.MempoolAlloc(p.m, uint32(r.GFP))
		a.chargeElements(p)
		if did.Reserve {
			a.meter.Charge(dma.Time(a.mem.ReserveNS))
			p.low = min(p.low, did.Curr)
		}
		if did.Slept {
			a.serving = nil
			r.Wait = dma.Wait{Kind: dma.WaitMempool, Timeout: dma.Time(a.mem.TimeoutMS) * dma.Millisecond, On: id}
			return dma.Block{}, dma.ErrWouldBlock
		}
	} else {
		a.meter.Charge(dma.Time(a.costs.AllocNS))
		v, cpu, dmaAddr = a.b.PoolAlloc(p.k, uint32(r.GFP))
	}
	a.serving = nil
	if v == 0 {
		if a.costs.PageNS > 0 && p.m == 0 {
			a.meter.Charge(dma.Time(int64(before) * a.costs.PageNS)) // the whole list, for nothing
		}
		if a.meter.Sleep.Kind != 0 {
			return dma.Block{}, dma.ErrWouldBlock // the page allocator loops
		}
		a.stats.Failures++
		return dma.Block{}, dma.ErrNoMem
	}
	pi := p.page(cpu)
	if pi < 0 {
		dma.Broken("kernel-dmapool", "a block lies in a page of its pool", "block %#x of pool %q", cpu, p.spec.Name)
	}
	pg := &p.pages[pi]
	pg.inUse++
	if a.costs.PageNS > 0 && p.m == 0 {
		// The old code walked its list, newest first, to this page (or
		// all of it, before it made a new one).
		walked := int64(p.born - pg.born)
		if len(p.pages) > before {
			walked = int64(before)
		}
		a.meter.Charge(dma.Time(walked * a.costs.PageNS))
	}
	slot := a.slot(v)
	a.stats.Allocs++
	a.record(0, id, slot, uint32(r.GFP))
	return dma.Block{CPU: cpu, DMA: dmaAddr, Size: p.size, Owner: dma.Owner{Pool: id, Handle: slot}}, nil
}

func (a *Allocator) slot(v uintptr) int32 {
	if n := len(a.free); n > 0 {
		s := a.free[n-1]
		a.free = a.free[:n-1]
		a.slots[s] = v
		return s
	}
	a.slots = append(a.slots, v)
	return int32(len(a.slots) - 1)
}

// record keeps a pool operation for the host-time replay.
func (a *Allocator) record(kind int32, id dma.ID, slot int32, gfp uint32) {
	if len(a.ops) < MaxRecorded && a.mem == nil {
		a.ops = append(a.ops, kernel.Op{Kind: kind, Pool: int32(id), Slot: slot, GFP: gfp})
	}
}

// Free is dma_pool_free or mempool_free.
func (a *Allocator) Free(b dma.Block) {
	if b.Pool == dma.NoPool {
		dma.FreeWholePages(a.plat.Pages, &a.stats, b)
		return
	}
	if uint(b.Pool) >= uint(len(a.pools)) || a.pools[b.Pool].dead {
		// The kernel code would use freed memory: stop here instead.
		dma.Broken("kernel-dmapool", "a free names a block of a live pool", "pool %d", b.Pool)
	}
	a.stats.Frees++
	p := &a.pools[b.Pool]
	pi := p.page(b.CPU)
	if pi < 0 {
		dma.Broken("kernel-dmapool", "a freed block lies in a page of its pool", "block %#x", b.CPU)
	}
	p.pages[pi].inUse--
	born := p.pages[pi].born
	v := a.slots[b.Handle]
	a.slots[b.Handle] = 0
	a.free = append(a.free, b.Handle)
	a.serving = p
	if p.m != 0 {
		reserve, woken := a.b.MempoolFree(p.m, v)
		a.chargeElements(p)
		if reserve {
			a.meter.Charge(dma.Time(a.mem.ReserveNS))
		}
		if woken {
			a.meter.Wake = b.Pool + 1
		}
	} else {
		a.meter.Charge(dma.Time(a.costs.FreeNS))
		if a.costs.PageNS > 0 {
			a.meter.Charge(dma.Time(int64(p.born-born) * a.costs.PageNS))
		}
		a.b.PoolFree(p.k, v, b.DMA)
		a.record(1, b.Pool, b.Handle, 0)
	}
	a.serving = nil
}

// DestroyPool is mempool_destroy and dma_pool_destroy: what the kernel
// code gives back, the platform gets back; blocks still live are leaked.
func (a *Allocator) DestroyPool(id dma.ID) error {
	if id < 0 || int(id) >= len(a.pools) || a.pools[id].dead {
		return dma.ErrBadPool
	}
	p := &a.pools[id]
	a.serving = p
	live := int64(0)
	for _, pg := range p.pages {
		live += int64(pg.inUse)
	}
	if p.m != 0 {
		// The reserve's elements go back to the pool; the blocks the
		// engine still holds are counted in live (pages' inUse counts
		// only those).
		a.b.MempoolDestroy(p.m)
		a.chargeElements(p)
	}
	a.b.PoolDestroy(p.k)
	a.serving = nil
	a.stats.LeakedBlocks += max(live, 0)
	p.dead = true
	return nil
}

// Close lets go of what the kernel code holds for this allocator: every
// live pool is destroyed (a busy one leaks its pages, as the kernel does),
// then the devices, whose host pages go with them. The allocator is not
// used after.
func (a *Allocator) Close() {
	for id := range a.pools {
		if !a.pools[id].dead {
			a.DestroyPool(dma.ID(id))
		}
	}
	for _, d := range a.devs {
		a.b.Release(d.k)
	}
	a.devs, a.slots, a.ops = nil, nil, nil
}

// Stats returns the allocator's counters.
func (a *Allocator) Stats() dma.Stats {
	s := a.stats
	for i := range a.pools {
		p := &a.pools[i]
		if p.dead {
			continue
		}
		held := a.held(p)
		for j, pg := range p.pages {
			s.LiveBlocks += int64(pg.inUse)
			if held[j] == 0 {
				s.IdlePages++
			}
		}
	}
	return s
}

// held counts, per page of p, the blocks the kernel's dma_pool has out:
// the caller's and a mempool's reserve.
func (a *Allocator) held(p *kpool) []int32 {
	n := make([]int32, len(p.pages))
	for j, pg := range p.pages {
		n[j] = pg.inUse
	}
	if p.m != 0 {
		for i := range a.b.MempoolCurr(p.m) {
			if j := p.page(a.b.MempoolElement(p.m, i)); j >= 0 {
				n[j]++
			}
		}
	}
	return n
}

// PoolStats implements dma.PoolStatser.
func (a *Allocator) PoolStats(id dma.ID) (dma.PoolStats, bool) {
	if id < 0 || int(id) >= len(a.pools) {
		return dma.PoolStats{}, false
	}
	p := &a.pools[id]
	s := p.st
	s.BlockSize, s.PerPage, s.PageBytes, s.ReserveMin = p.size, p.perPage, p.alloc, -1
	if p.m != 0 {
		s.ReserveMin = int64(p.low)
	}
	if !p.dead {
		s.Pages = int64(len(p.pages))
		for _, n := range a.held(p) {
			if n == 0 {
				s.IdlePages++
			}
		}
	}
	return s, true
}

// Report adds the kernel code's own host time, measured by replaying the
// cell's pool operations inside the library (no cgo crossing per
// operation, host pages), and what the kernel code reported as errors.
func (a *Allocator) Report(add func(key string, value float64)) {
	var errs uint64
	for _, d := range a.devs {
		errs += a.b.Errors(d.k)
	}
	add("kernel_errors", float64(errs))
	if a.mem != nil {
		low := -1
		for i := range a.pools {
			if p := &a.pools[i]; !p.dead && (low < 0 || p.low < low) {
				low = p.low
			}
		}
		if low < 0 {
			low = a.mem.MinNr
		}
		add("mempool_reserve_min", float64(low))
		return
	}
	if len(a.ops) == 0 {
		return
	}
	pools := make([][3]int64, len(a.pools))
	for i, p := range a.pools {
		pools[i] = [3]int64{p.spec.Size, p.spec.Align, p.spec.Boundary}
	}
	var runs []uint64
	for range 5 {
		runs = append(runs, a.b.Replay(pools, a.ops, len(a.slots)))
	}
	slices.Sort(runs)
	add("host_kernel_ns_per_op", float64(runs[2])/float64(len(a.ops)))
}
