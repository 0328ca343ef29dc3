package conformance

import (
	"testing"

	"github.com/dmabench/dmabench/dma"
)

// breakage selects how the toy allocator misbehaves.
type breakage int

const (
	correct breakage = iota
	breakOverlapCPU
	breakOverlapDMA
	breakAlign
	breakBoundary
	breakMask
	breakSize
	breakReuse
	breakStats
	breakLines
	breakFreeTakes
)

// toy gives every block its own page block: obviously correct when not
// broken on purpose.
type toy struct {
	plat  *dma.Platform
	pools []dma.PoolSpec
	pages []dma.Block
	how   breakage
	n     int
	last  dma.Block
	stats dma.Stats
}

func (a *toy) CreatePool(s dma.PoolSpec) (dma.ID, error) {
	a.pools = append(a.pools, s)
	return dma.ID(len(a.pools) - 1), nil
}

func (a *toy) Alloc(pool dma.ID, r *dma.Request) (dma.Block, error) {
	size, align, boundary, dev := r.Size, int64(1), int64(0), r.Dev
	if pool != dma.NoPool {
		s := a.pools[pool]
		size, align, boundary, dev = s.Size, max(s.Align, 1), s.Boundary, s.Dev
	}
	a.n++
	if a.how == breakOverlapCPU && a.n%7 == 0 && a.last.Size >= size {
		a.stats.Allocs++
		a.stats.LiveBlocks++
		b := a.last
		b.Handle = -1
		return b, nil
	}
	pg, err := a.plat.Pages.AllocPages(dev, dma.Order(size+boundary+64), r.GFP)
	if err != nil {
		a.stats.Failures++
		return dma.Block{}, err
	}
	a.pages = append(a.pages, pg)
	b := dma.Block{CPU: pg.CPU, DMA: pg.DMA, Size: size, Owner: dma.Owner{Pool: pool, Handle: int32(len(a.pages) - 1)}}
	if a.n%7 == 0 {
		switch a.how {
		case breakOverlapDMA:
			b.DMA = a.last.DMA
		case breakAlign:
			if align > 8 {
				b.CPU += 8
				b.DMA += 8
			}
		case breakBoundary:
			if boundary > 0 {
				b.CPU += uint64(boundary - 8)
				b.DMA += uint64(boundary - 8)
			}
		case breakMask:
			b.DMA |= 1 << 40
		case breakSize:
			b.Size = size - 1
		case breakLines:
			b.CPU = a.last.End()
		}
	}
	a.last = b
	a.stats.Allocs++
	a.stats.LiveBlocks++
	a.stats.ReservedBytes += pg.Size
	if a.how == breakStats && a.n == 5000 {
		a.stats.Allocs++
	}
	return b, nil
}

func (a *toy) Free(b dma.Block) {
	a.stats.Frees++
	a.stats.LiveBlocks--
	if a.how == breakFreeTakes && a.stats.Frees%100 == 0 {
		// Keeps the block's page and takes one more (counting both).
		if pg, err := a.plat.Pages.AllocPages(dev32, 0, dma.GFPAtomic); err == nil {
			a.stats.ReservedBytes += pg.Size
		}
		return
	}
	if b.Handle < 0 || a.how == breakReuse {
		return
	}
	pg := a.pages[b.Handle]
	a.stats.ReservedBytes -= pg.Size
	a.plat.Pages.FreePages(pg)
}

func (a *toy) Stats() dma.Stats { return a.stats }

func toyFactory(how breakage) Factory {
	return func() (Target, error) {
		p := NewFlat(512)
		t := Target{Alloc: &toy{plat: p, how: how}, Plat: p}
		if how == breakLines {
			t.CacheLine = 32
		}
		return t, nil
	}
}

func TestCorrectToyPasses(t *testing.T) {
	Run(t, "toy", toyFactory(correct), Options{Ops: 30_000}, 1, 2, 3)
}

func TestCheckerCatchesEachBreakage(t *testing.T) {
	cases := []struct {
		name string
		how  breakage
		want Kind
	}{
		{"overlap-cpu", breakOverlapCPU, OverlapCPU},
		{"overlap-dma", breakOverlapDMA, OverlapDMA},
		{"misaligned", breakAlign, Misaligned},
		{"crosses-boundary", breakBoundary, CrossesBoundary},
		{"beyond-mask", breakMask, BeyondMask},
		{"too-small", breakSize, TooSmall},
		{"no-reuse", breakReuse, NoReuse},
		{"stats", breakStats, StatsMismatch},
		{"shared-line", breakLines, OverlapCPU},
		{"free-takes-memory", breakFreeTakes, FreeTakes},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Exercise(toyFactory(tc.how), Options{Ops: 20_000}, 7)
			if err != nil {
				t.Fatal(err)
			}
			if c.Counts[tc.want] == 0 {
				t.Fatalf("checker missed %s; counts %v", tc.want, c.Counts)
			}
		})
	}
}

func TestRegionRule(t *testing.T) {
	f := func() (Target, error) {
		p := NewFlat(512)
		return Target{Alloc: &toy{plat: p}, Plat: p, Region: func(a uint64, n int64) bool { return a+uint64(n) <= 8<<20 }}, nil
	}
	c, err := Exercise(f, Options{Ops: 5000}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if c.Counts[OutsideRegion] == 0 {
		t.Fatal("blocks above 8 MiB were not reported as outside the region")
	}
}

func TestSpans(t *testing.T) {
	var s spans
	s.insert(100, 200)
	s.insert(300, 400)
	for _, tc := range []struct {
		a, b uint64
		hit  bool
	}{{0, 100, false}, {0, 101, true}, {199, 300, true}, {200, 300, false}, {399, 500, true}, {400, 500, false}, {150, 350, true}} {
		if _, got := s.overlaps(tc.a, tc.b); got != tc.hit {
			t.Errorf("overlaps(%d,%d) = %v, want %v", tc.a, tc.b, got, tc.hit)
		}
	}
	if !s.remove(100) || s.remove(100) {
		t.Fatal("remove")
	}
}
