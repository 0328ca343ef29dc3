package conformance

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/dma"
)

// Target is an allocator on a platform, ready to be exercised.
type Target struct {
	Alloc dma.Allocator
	Plat  *dma.Platform
	// Region, if set, must accept every block's DMA range.
	Region Region
	// CacheLine, if > 0, forbids live blocks from sharing a cache line.
	CacheLine int64
}

// Factory builds a fresh target for one run.
type Factory func() (Target, error)

// Options shape a random run.
type Options struct {
	Ops     int     // random operations (default 100000)
	MaxLive int     // upper bound on live blocks (default 2000)
	Direct  float64 // share of allocations made by size, not from a pool (default 0.1)
	Pools   []dma.PoolSpec
}

var (
	dev32 = &dma.Device{Name: "pci32", Mask: dma.BitMask(32)}
	dev24 = &dma.Device{Name: "isa24", Mask: dma.BitMask(24)}
	dev64 = &dma.Device{Name: "pci64", Mask: dma.BitMask(64), CoherentMask: dma.BitMask(32)}
)

// DefaultPools are the pool shapes real drivers create, plus edge cases:
// the USB TD and QH pools, SCSI sense and frame pools, blocks smaller than
// the minimum, sizes one below an alignment multiple, page-sized and
// larger-than-page blocks, explicit boundaries and an ISA (24-bit) device.
func DefaultPools() []dma.PoolSpec {
	return []dma.PoolSpec{
		{Name: "uhci_td", Dev: dev32, Size: 48, Align: 16},
		{Name: "ohci_td", Dev: dev32, Size: 64, Align: 32},
		{Name: "ehci_qtd", Dev: dev32, Size: 96, Align: 32, Boundary: 4096},
		{Name: "sense", Dev: dev64, Size: 96, Align: 8},
		{Name: "frame", Dev: dev64, Size: 256, Align: 64},
		{Name: "tiny", Dev: dev32, Size: 1},
		{Name: "quirk", Dev: dev32, Size: 63, Align: 32},
		{Name: "odd", Dev: dev64, Size: 3000, Align: 8},
		{Name: "page", Dev: dev32, Size: 4096, Align: 4096},
		{Name: "big", Dev: dev32, Size: 89024, Align: 8},
		{Name: "bounded", Dev: dev32, Size: 200, Align: 8, Boundary: 1024},
		{Name: "isa", Dev: dev24, Size: 32, Align: 16},
	}
}

func (o *Options) fill() {
	if o.Ops == 0 {
		o.Ops = 100_000
	}
	if o.MaxLive == 0 {
		o.MaxLive = 2000
	}
	if o.Direct == 0 {
		o.Direct = 0.1
	}
	if o.Pools == nil {
		o.Pools = DefaultPools()
	}
}

type liveBlock struct {
	blk  dma.Block
	pool int // index into Options.Pools, or -1
	size int64
}

// Exercise runs one seeded random sequence against a fresh target and
// returns the checker with whatever it found. An error means the target
// could not be built or misbehaved outside the checker's rules.
func Exercise(f Factory, opt Options, seed uint64) (*Checker, error) {
	opt.fill()
	t, err := f()
	if err != nil {
		return nil, err
	}
	c := &Checker{CacheLine: t.CacheLine, Region: t.Region}
	rng := rand.New(rand.NewPCG(seed, 0xc0f0))
	ids := make([]dma.ID, len(opt.Pools))
	var usable []int
	for i, spec := range opt.Pools {
		id, err := t.Alloc.CreatePool(spec)
		if errors.Is(err, dma.ErrNoMem) {
			// A pool that needs memory at creation (a mempool's reserve)
			// for a device that reaches none: refused, as it must be.
			ids[i] = dma.NoPool
			continue
		}
		if err != nil {
			return c, fmt.Errorf("create pool %q: %w", spec.Name, err)
		}
		ids[i] = id
		usable = append(usable, i)
	}
	if len(usable) == 0 {
		return c, fmt.Errorf("no pool could be created")
	}
	stats, _ := t.Alloc.(dma.StatsReporter)
	meter := t.Plat.Meter
	var live []liveBlock
	var peakReserved int64
	gfps := [...]dma.GFP{dma.GFPKernel, dma.GFPAtomic, dma.GFPNoIO}
	alloc := func(pool int, size int64) error {
		r := dma.Request{Size: size, GFP: gfps[rng.IntN(len(gfps))], Dev: dev32}
		rules := Rules{Size: size, Mask: dev32.Coherent()}
		id := dma.NoPool
		if pool >= 0 {
			spec := opt.Pools[pool]
			r.Dev = spec.Dev
			id = ids[pool]
			rules = Rules{Size: spec.Size, Align: spec.Align, Boundary: spec.Boundary, Mask: spec.Dev.Coherent()}
		}
		b, err := t.Alloc.Alloc(id, &r)
		if err != nil {
			if errors.Is(err, dma.ErrNoMem) || errors.Is(err, dma.ErrWouldBlock) {
				return nil // not served now: a result, not a violation
			}
			return fmt.Errorf("alloc pool=%d size=%d: unexpected error %w", pool, size, err)
		}
		c.Alloc(rules, b)
		live = append(live, liveBlock{blk: b, pool: pool, size: size})
		peakReserved = max(peakReserved, meter.CoherentBytes)
		return nil
	}
	free := func(i int) {
		lb := live[i]
		live[i] = live[len(live)-1]
		live = live[:len(live)-1]
		c.Free(lb.blk)
		held := meter.CoherentBytes
		t.Alloc.Free(lb.blk)
		if meter.CoherentBytes > held {
			c.report(FreeTakes, "free of %#x (%d bytes) took memory: %d bytes held, %d before", lb.blk.CPU, lb.blk.Size, meter.CoherentBytes, held)
		}
	}
	randomAlloc := func() error {
		if rng.Float64() < opt.Direct {
			size := 1 + rng.Int64N(2*dma.PageSize)
			if rng.IntN(20) == 0 {
				size = 1 + rng.Int64N(64<<10)
			}
			return alloc(-1, size)
		}
		p := usable[rng.IntN(len(usable))]
		return alloc(p, 1+rng.Int64N(opt.Pools[p].Size))
	}
	for op := 0; op < opt.Ops; op++ {
		if len(live) == 0 || (len(live) < opt.MaxLive && rng.Float64() < 0.55) {
			if err := randomAlloc(); err != nil {
				return c, err
			}
		} else {
			free(rng.IntN(len(live)))
		}
		if stats != nil && op%4096 == 0 {
			c.CheckStats(stats.Stats(), meter.CoherentBytes)
		}
	}
	if c.Allocs < int64(opt.Ops)/4 {
		return c, fmt.Errorf("only %d of %d operations allocated: the run proves little", c.Allocs, opt.Ops)
	}
	// Reuse: free everything, then ask for the same blocks again. An
	// allocator that reuses freed memory needs no more than it ever held.
	again := append([]liveBlock(nil), live...)
	for len(live) > 0 {
		free(len(live) - 1)
	}
	if stats != nil {
		c.CheckStats(stats.Stats(), meter.CoherentBytes)
	}
	peakBefore := peakReserved
	for _, lb := range again {
		size := lb.size
		if err := alloc(lb.pool, size); err != nil {
			return c, err
		}
	}
	if meter.CoherentBytes > peakBefore && len(again) > 0 {
		c.report(NoReuse, "holding %d bytes after freeing and reallocating %d blocks; peak before was %d", meter.CoherentBytes, len(again), peakBefore)
	}
	for len(live) > 0 {
		free(len(live) - 1)
	}
	if stats != nil {
		c.CheckStats(stats.Stats(), meter.CoherentBytes)
	}
	if d, ok := t.Alloc.(dma.PoolDestroyer); ok && len(usable) >= 3 {
		if err := destroyPhase(c, d, ids, usable, &live, alloc, free, stats, meter); err != nil {
			return c, err
		}
		for len(live) > 0 {
			free(len(live) - 1)
		}
		if stats != nil {
			c.CheckStats(stats.Stats(), meter.CoherentBytes)
		}
	}
	return c, nil
}

// destroyPhase destroys pools as drivers do at unbind: first one with no
// block allocated, then one with blocks still allocated. Those blocks die
// with their pool: the model must keep their memory (the kernel leaks it)
// and count them as leaked, so nothing allocated afterwards may overlap
// them; an alloc from a destroyed pool must fail with dma.ErrBadPool. Then
// allocation goes on from the other pools, and the stats must add up.
func destroyPhase(c *Checker, d dma.PoolDestroyer, ids []dma.ID, usable []int, live *[]liveBlock,
	alloc func(pool int, size int64) error, free func(i int), stats dma.StatsReporter, meter *dma.Meter) error {
	idle, busy, rest := usable[0], usable[1], usable[2:]
	for k := 0; k < 16; k++ {
		if err := alloc(idle, 1); err != nil {
			return err
		}
		if err := alloc(busy, 1); err != nil {
			return err
		}
	}
	for i := len(*live) - 1; i >= 0; i-- {
		if (*live)[i].pool == idle {
			free(i)
		}
	}
	held := meter.CoherentBytes
	if err := d.DestroyPool(ids[idle]); err != nil {
		return fmt.Errorf("destroy of an idle pool: %w", err)
	}
	if meter.CoherentBytes > held {
		c.report(FreeTakes, "destroying an idle pool took memory: %d bytes held, %d before", meter.CoherentBytes, held)
	}
	if err := d.DestroyPool(ids[busy]); err != nil {
		return fmt.Errorf("destroy of a pool with live blocks: %w", err)
	}
	kept := (*live)[:0]
	for _, lb := range *live {
		if lb.pool == busy {
			c.Leak(lb.blk)
		} else {
			kept = append(kept, lb)
		}
	}
	*live = kept
	if stats != nil {
		c.CheckStats(stats.Stats(), meter.CoherentBytes)
	}
	for _, p := range []int{idle, busy} {
		r := dma.Request{Size: 1, GFP: dma.GFPKernel, Dev: dev32}
		if _, err := d.(dma.Allocator).Alloc(ids[p], &r); !errors.Is(err, dma.ErrBadPool) {
			return fmt.Errorf("alloc from destroyed pool %d: error %v, want %v", p, err, dma.ErrBadPool)
		}
	}
	// Allocation goes on: blocks the destroyed pools leaked must not be
	// handed out again. Whole pages by size, as well as pool blocks, so
	// that pages a model wrongly gave back are asked for at once.
	for k := 0; k < 2000; k++ {
		if err := alloc(rest[k%len(rest)], 1+int64(k%64)); err != nil {
			return err
		}
		if k < 256 {
			if err := alloc(-1, dma.PageSize); err != nil {
				return err
			}
		}
		if k%3 == 2 {
			free(len(*live) / 2)
		}
	}
	return nil
}

// Run exercises the target on each seed as a subtest and fails with the
// violations found and the command that reproduces them.
func Run(t *testing.T, name string, f Factory, opt Options, seeds ...uint64) {
	t.Helper()
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			c, err := Exercise(f, opt, seed)
			if err != nil {
				t.Fatalf("%s seed %d: %v", name, seed, err)
			}
			if c.Total() > 0 {
				var b strings.Builder
				for _, v := range c.First {
					fmt.Fprintf(&b, "\n  %s", v)
				}
				t.Fatalf("%s seed %d: %d violations (reproduce: go test -run '%s' ./...):%s", name, seed, c.Total(), t.Name(), b.String())
			}
		})
	}
}
