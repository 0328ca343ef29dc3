package mempool

import (
	"testing"

	"github.com/dmabench/dmabench/allocators/conformance"
	"github.com/dmabench/dmabench/allocators/dmapool"
	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/engine"
)

type rec struct{ outs []engine.Outcome }

func (r *rec) Record(o *engine.Outcome) {
	c := *o
	ev := *o.Event
	c.Event = &ev
	r.outs = append(r.outs, c)
}

func (r *rec) find(id dma.ID) *engine.Outcome {
	for i := range r.outs {
		if o := &r.outs[i]; o.Event.ID == id && o.Event.Kind == dma.Alloc {
			return o
		}
	}
	return nil
}

func newPool(t testing.TB, minNr int) (*Allocator, *dma.Platform) {
	p := conformance.NewFlat(256)
	inner, err := dmapool.New(p, dmapool.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.MinNr = minNr
	a, err := New(p, inner, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a, p
}

// fill uses up the 16 MiB ISA arena with 1 MiB elements: the pool's
// reserve of 2 takes two, 14 more come from the element allocator and the
// last 2 from the reserve.
func fill(isa *dma.Device) []dma.Event {
	evs := []dma.Event{{Kind: dma.PoolCreate, ID: 0, Pool: dma.NoPool, Dev: isa, Size: 1 << 20, Name: "big"}}
	for i := 0; i < 16; i++ {
		evs = append(evs, dma.Event{Kind: dma.Alloc, ID: dma.ID(i), Pool: 0, Size: 1 << 20, GFP: dma.GFPKernel, Dev: isa})
	}
	return evs
}

func TestSleeperParkedUntilFreeAtomicFails(t *testing.T) {
	a, p := newPool(t, 2)
	isa := &dma.Device{Name: "isa", Mask: dma.BitMask(24)}
	callers := &dma.List{Events: []dma.Event{
		{At: 10, Kind: dma.Alloc, ID: 20, Pool: 0, Size: 1 << 20, GFP: dma.GFPAtomic, Dev: isa, Ctx: dma.SoftIRQ},
		{At: 20, Kind: dma.Alloc, ID: 21, Pool: 0, Size: 1 << 20, GFP: dma.GFPKernel, Dev: isa},
	}}
	irq := &dma.List{Events: []dma.Event{{At: 700 * dma.Millisecond, Kind: dma.Free, ID: 4, Pool: 0, Dev: isa, Ctx: dma.HardIRQ}}}
	var r rec
	e := engine.New(p, a, &r, conformance.Group{&dma.List{Events: fill(isa)}, callers, irq})
	if _, err := e.Run(0); err != nil {
		t.Fatal(err)
	}
	for i := dma.ID(0); i < 16; i++ {
		if o := r.find(i); o == nil || o.Err != nil {
			t.Fatalf("element %d: %+v", i, o)
		}
	}
	if a.ReserveMin() != 0 {
		t.Fatalf("reserve low-water mark %d, want 0", a.ReserveMin())
	}
	if o := r.find(20); o == nil || o.Err != dma.ErrNoMem || o.Wait != 0 {
		t.Fatalf("GFP_ATOMIC with allocator and reserve empty: %+v, want an immediate failure", o)
	}
	o := r.find(21)
	if o == nil || o.Err != nil {
		t.Fatalf("GFP_KERNEL caller: %+v, want success: a sleeping caller never fails", o)
	}
	if o.Event.At != 700*dma.Millisecond || o.Wait != 700*dma.Millisecond-20 || o.WaitKind != dma.WaitMempool {
		t.Fatalf("served at %d after %d, want at the free (700 ms), woken by the reserve refill", o.Event.At, o.Wait)
	}
}

func TestTimeoutRetriesTheAllocator(t *testing.T) {
	a, p := newPool(t, 2)
	isa := &dma.Device{Name: "isa", Mask: dma.BitMask(24)}
	// Nothing is ever freed: without a wakeup the sleeper retries the
	// element allocator each time its 5 s timeout runs out.
	callers := &dma.List{Events: []dma.Event{{At: 20, Kind: dma.Alloc, ID: 21, Pool: 0, Size: 1 << 20, GFP: dma.GFPKernel, Dev: isa}}}
	var r rec
	e := engine.New(p, a, &r, conformance.Group{&dma.List{Events: fill(isa)}, callers})
	if _, err := e.Run(0); err != nil {
		t.Fatal(err)
	}
	// The 4 KiB block only lets a page through, not a 1 MiB element: the
	// caller keeps sleeping in 5 s steps until the stall limit.
	if o := r.find(21); o == nil || o.Err != engine.ErrStalled {
		t.Fatalf("%+v: want a stall", o)
	}
	if e.Retries < 10 {
		t.Fatalf("%d retries in 60 s, want one per 5 s timeout", e.Retries)
	}
}

func TestFreeRefillsReserveFirst(t *testing.T) {
	a, p := newPool(t, 4)
	dev := &dma.Device{Name: "d", Mask: dma.BitMask(32)}
	id, err := a.CreatePool(dma.PoolSpec{Name: "td", Dev: dev, Size: 64})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.pools[id].reserve) != 4 || p.Meter.CoherentBytes != 4096 {
		t.Fatalf("reserve %d, held %d", len(a.pools[id].reserve), p.Meter.CoherentBytes)
	}
	r := &dma.Request{Size: 64, GFP: dma.GFPAtomic, Dev: dev}
	b, _ := a.Alloc(id, r) // from the element allocator
	a.pools[id].reserve = a.pools[id].reserve[:3]
	a.Free(b) // refills the reserve
	if len(a.pools[id].reserve) != 4 || p.Meter.Wake != id+1 {
		t.Fatalf("reserve %d wake %d", len(a.pools[id].reserve), p.Meter.Wake)
	}
}

func TestConformance(t *testing.T) {
	f := func() (conformance.Target, error) {
		p := conformance.NewFlat(256)
		inner, _ := dmapool.New(p, dmapool.DefaultConfig())
		a, err := New(p, inner, DefaultConfig())
		return conformance.Target{Alloc: a, Plat: p}, err
	}
	conformance.Run(t, "mempool", f, conformance.Options{Ops: 100_000}, 1, 2, 3)
}

// TestMinNrByPool: a pool named in min_nr_by_pool reserves its own number
// of elements, the others min_nr; each refills to its own level, and the
// lowest level reached is reported across pools.
func TestMinNrByPool(t *testing.T) {
	p := conformance.NewFlat(256)
	inner, err := dmapool.New(p, dmapool.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.MinNr = 2
	cfg.MinNrByPool = map[string]int{"td": 5}
	a, err := New(p, inner, cfg)
	if err != nil {
		t.Fatal(err)
	}
	dev := &dma.Device{Name: "isa", Mask: dma.BitMask(24)} // the 16 MiB arena
	td, err := a.CreatePool(dma.PoolSpec{Name: "td", Dev: dev, Size: 4096, Align: 16})
	if err != nil {
		t.Fatal(err)
	}
	qh, err := a.CreatePool(dma.PoolSpec{Name: "qh", Dev: dev, Size: 4096, Align: 16})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(a.pools[td].reserve); n != 5 {
		t.Fatalf("td reserve %d, want 5", n)
	}
	if n := len(a.pools[qh].reserve); n != 2 {
		t.Fatalf("qh reserve %d, want 2", n)
	}
	// Exhaust memory: the td pool then hands out its 5 reserve elements
	// and fails the 6th atomic allocation; the frees refill it to 5.
	r := dma.Request{Size: 4096, GFP: dma.GFPAtomic, Dev: dev}
	var live []dma.Block
	for {
		b, err := a.Alloc(td, &r)
		if err != nil {
			break
		}
		live = append(live, b)
		if len(live) > 1<<20 {
			t.Fatal("memory never ran out")
		}
	}
	if a.pools[td].low != 0 || a.ReserveMin() != 0 {
		t.Fatalf("td reserve low %d, reserve min %d; want 0", a.pools[td].low, a.ReserveMin())
	}
	for _, b := range live[len(live)-6:] {
		a.Free(b)
	}
	if n, m := len(a.pools[td].reserve), len(a.pools[qh].reserve); n != 5 || m != 2 {
		t.Fatalf("reserves after frees: td %d (want 5), qh %d (want 2)", n, m)
	}
	cfg.MinNrByPool["td"] = 0
	if cfg.Validate() == nil {
		t.Fatal("min_nr_by_pool of 0 accepted")
	}
}

// sleepy is an element allocator like 2002's pci_pool out of memory: a
// caller that may sleep is put to sleep (its SLAB_KERNEL retry), others
// fail. It serves until fail is set.
type sleepy struct {
	fail bool
	n    int
}

func (s *sleepy) CreatePool(dma.PoolSpec) (dma.ID, error) { return 0, nil }
func (s *sleepy) Free(dma.Block)                          {}
func (s *sleepy) Alloc(_ dma.ID, r *dma.Request) (dma.Block, error) {
	if !s.fail {
		s.n++
		return dma.Block{CPU: uint64(s.n) << 12, DMA: uint64(s.n) << 12, Size: r.Size}, nil
	}
	if r.GFP.CanSleep() {
		r.Wait = dma.Wait{Kind: dma.WaitPoolRetry, Timeout: 100 * dma.Millisecond}
		return dma.Block{}, dma.ErrWouldBlock
	}
	return dma.Block{}, dma.ErrNoMem
}

// TestEras: with the 2002 flags a caller that may sleep tries the element
// allocator with its own flags once the reserve is half empty, so
// pci_pool's sleep happens under the mempool; with the modern ones the
// reserve is used first.
func TestEras(t *testing.T) {
	for era, sleepsAt := range map[string]int{"2002": 2, "modern": 4} {
		inner := &sleepy{}
		cfg := DefaultConfig()
		cfg.MinNr, cfg.Era = 4, era
		a, _, dev, id := tdPool(t, inner, cfg)
		inner.fail = true
		for k := 0; k <= 4; k++ {
			r := &dma.Request{Size: 64, GFP: dma.GFPKernel, Dev: dev}
			_, err := a.Alloc(id, r)
			if k < sleepsAt && err != nil {
				t.Errorf("%s: alloc %d: %v, want an element from the reserve", era, k, err)
			}
			if k == sleepsAt {
				if err != dma.ErrWouldBlock || r.Wait.Kind != dma.WaitPoolRetry && era == "2002" {
					t.Errorf("%s: alloc %d: %v (wait %v), want pci_pool's sleep", era, k, err, r.Wait.Kind)
				}
				break
			}
		}
	}
}

// counting is an element allocator that counts what it holds and fails
// once limit elements are out.
type counting struct{ out, limit int }

func (c *counting) CreatePool(dma.PoolSpec) (dma.ID, error) { return 0, nil }
func (c *counting) Free(dma.Block)                          { c.out-- }
func (c *counting) Alloc(_ dma.ID, r *dma.Request) (dma.Block, error) {
	if c.out == c.limit {
		return dma.Block{}, dma.ErrNoMem
	}
	c.out++
	return dma.Block{CPU: uint64(c.out) << 12, DMA: uint64(c.out) << 12, Size: r.Size}, nil
}

// TestResize: mempool_resize at its modeled time, on the first call at or
// after it. A shrink gives the excess back through the element
// allocator's free; a grow allocates the new elements and, at the first
// failure, stops short, counted, and later frees fill the reserve.
func TestResize(t *testing.T) {
	for _, tc := range []struct {
		to, limit, held, short int
	}{
		{to: 2, limit: 100, held: 2},            // shrink 8 -> 2
		{to: 20, limit: 100, held: 20},          // grow 8 -> 20
		{to: 20, limit: 12, held: 12, short: 9}, // the grow stops at the allocator's limit: 11 of 20
	} {
		inner := &counting{limit: tc.limit}
		cfg := DefaultConfig()
		cfg.MinNr, cfg.ResizeAtMS, cfg.ResizeTo = 8, 5, tc.to
		a, p, dev, id := tdPool(t, inner, cfg)
		r := &dma.Request{Size: 64, GFP: dma.GFPAtomic, Dev: dev}
		p.Meter.Now = 4 * dma.Millisecond
		b, err := a.Alloc(id, r)
		if err != nil || inner.out != 9 {
			t.Fatalf("to %d: before the resize: %v, %d held, want 9", tc.to, err, inner.out)
		}
		p.Meter.Now = 5 * dma.Millisecond
		a.Free(b) // the resize runs first; the element then goes back where the new min_nr says
		var short float64
		a.Report(func(k string, v float64) {
			if k == "mempool_resize_short" {
				short = v
			}
		})
		if inner.out != tc.held || int(short) != tc.short {
			t.Errorf("to %d (limit %d): %d held, %v short; want %d held, %d short", tc.to, tc.limit, inner.out, short, tc.held, tc.short)
		}
		if tc.short > 0 {
			// Frees refill the reserve to the new min_nr: take the
			// elements the allocator still has and give them back.
			inner.limit = 100
			var bs []dma.Block
			for range 8 {
				b, err := a.Alloc(id, r)
				if err != nil {
					t.Fatal(err)
				}
				bs = append(bs, b)
			}
			for _, b := range bs {
				a.Free(b)
			}
			if got := len(a.pools[id].reserve); got != tc.to {
				t.Errorf("after frees the reserve holds %d, want %d", got, tc.to)
			}
		}
	}
}

// tdPool makes a mempool of cfg over inner on a flat platform, with one
// pool of 64-byte elements.
func tdPool(t *testing.T, inner dma.Allocator, cfg Config) (*Allocator, *dma.Platform, *dma.Device, dma.ID) {
	t.Helper()
	p := conformance.NewFlat(256)
	a, err := New(p, inner, cfg)
	if err != nil {
		t.Fatal(err)
	}
	dev := &dma.Device{Name: "d", Mask: dma.BitMask(32)}
	id, err := a.CreatePool(dma.PoolSpec{Name: "td", Dev: dev, Size: 64})
	if err != nil {
		t.Fatal(err)
	}
	return a, p, dev, id
}
