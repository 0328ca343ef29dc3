package netrx

import (
	"testing"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/engine"
)

type tape struct {
	evs  []dma.Event
	errs []error
}

func (t *tape) Record(o *engine.Outcome) {
	t.evs = append(t.evs, *o.Event)
	t.errs = append(t.errs, o.Err)
}

// failMaps fails the maps it is told to (by count).
type failMaps struct {
	*engine.Null
	k    int
	fail func(k int) bool
}

func (f *failMaps) Map(dev *dma.Device, size int64, dir dma.Dir, gfp dma.GFP) (dma.Block, error) {
	f.k++
	if f.fail(f.k) {
		return dma.Block{}, dma.ErrNoMem
	}
	return f.Null.Map(dev, size, dir, gfp)
}

func run(t *testing.T, cfg Config, events int64, fail func(int) bool) (*NIC, *tape) {
	t.Helper()
	n, p := engine.NewNull()
	if fail != nil {
		p.Mapper = &failMaps{Null: n, fail: fail}
	}
	nic := New(cfg, 1)
	var rec tape
	if _, err := engine.New(p, n, &rec, nic).Run(events); err != nil {
		t.Fatal(err)
	}
	return nic, &rec
}

// TestRingAndBuffers: one coherent ring of ring_size descriptors allocated
// once; every packet's buffer mapped once and unmapped once; the ring
// never holds more than ring_size buffers.
func TestRingAndBuffers(t *testing.T) {
	cfg := DefaultConfig()
	nic, rec := run(t, cfg, 200_000, nil)
	rings, mapped := 0, map[dma.ID]bool{}
	maxLive := 0
	for i, e := range rec.evs {
		switch e.Kind {
		case dma.Alloc:
			if e.Pool != dma.NoPool || e.Size != int64(cfg.RingSize)*cfg.DescBytes {
				t.Fatalf("event %d: unexpected alloc %+v", i, e)
			}
			rings++
		case dma.Map:
			if mapped[e.ID] || e.Size != cfg.BufBytes || e.Dir != dma.FromDevice {
				t.Fatalf("event %d: map %+v", i, e)
			}
			if i > cfg.RingSize+2 && (e.GFP != dma.GFPAtomic || e.Ctx != dma.SoftIRQ) {
				t.Fatalf("event %d: refill with %s in %s", i, e.GFP, e.Ctx)
			}
			mapped[e.ID] = true
			maxLive = max(maxLive, len(mapped))
		case dma.Unmap:
			if !mapped[e.ID] {
				t.Fatalf("event %d: unmap of a buffer not mapped", i)
			}
			delete(mapped, e.ID)
		}
	}
	if rings != 1 || maxLive != cfg.RingSize || nic.Ring() != cfg.RingSize {
		t.Fatalf("rings %d, most buffers live %d, ring %d", rings, maxLive, nic.Ring())
	}
	if nic.Stats.Drops != 0 || nic.Stats.Packets < 50_000 {
		t.Fatalf("packets %d drops %d", nic.Stats.Packets, nic.Stats.Drops)
	}
}

// TestFailedRefillDrops: while refills fail the ring drains and packets
// are dropped; once they succeed again it refills.
func TestFailedRefillDrops(t *testing.T) {
	cfg := DefaultConfig()
	nic, _ := run(t, cfg, 100_000, func(k int) bool { return k > 1000 && k < 3000 })
	if nic.Stats.Drops == 0 || nic.Stats.RefillFailures == 0 {
		t.Fatalf("drops %d refill failures %d", nic.Stats.Drops, nic.Stats.RefillFailures)
	}
	live := 0
	for _, s := range nic.slots {
		if s >= 0 {
			live++
		}
	}
	if live < cfg.RingSize-cfg.Budget {
		t.Fatalf("the ring did not refill: %d of %d slots", live, cfg.RingSize)
	}
}

func TestPoolBuffers(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RxBuffers = "pool"
	_, rec := run(t, cfg, 50_000, nil)
	for i, e := range rec.evs {
		if e.Kind == dma.Map || e.Kind == dma.Unmap {
			t.Fatalf("event %d: %s in pool mode", i, e.Kind)
		}
	}
}

func TestLineRateAndLoad(t *testing.T) {
	cfg := DefaultConfig()
	nic, rec := run(t, cfg, 300_000, nil)
	span := float64(rec.evs[len(rec.evs)-1].At) / 1e9
	pps := float64(nic.Stats.Packets) / span
	// 30% of 1 Gbit/s in 1500-byte packets: 25000 packets per second.
	if pps < 20_000 || pps > 30_000 {
		t.Fatalf("%.0f packets/s, want about 25000", pps)
	}
}

// TestStackHoldsPoolBuffers: with stack_us, a buffer passed up returns to
// the pool later, from process context, exactly once; so more buffers are
// live than the ring holds, and each is freed only after it was allocated.
func TestStackHoldsPoolBuffers(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RxBuffers = "pool"
	cfg.StackUS = 5000
	nic, rec := run(t, cfg, 200_000, nil)
	live := map[dma.ID]dma.Time{}
	peak, late := 0, 0
	for i, e := range rec.evs {
		if e.Pool != BufPool {
			continue
		}
		switch e.Kind {
		case dma.Alloc:
			if _, ok := live[e.ID]; ok {
				t.Fatalf("event %d: buffer %d allocated twice", i, e.ID)
			}
			live[e.ID] = e.At
			peak = max(peak, len(live))
		case dma.Free:
			at, ok := live[e.ID]
			if !ok {
				t.Fatalf("event %d: buffer %d freed but not live", i, e.ID)
			}
			if e.Ctx != dma.Process {
				t.Fatalf("event %d: the reader frees in %s", i, e.Ctx)
			}
			if e.At-at > dma.Millisecond {
				late++
			}
			delete(live, e.ID)
		}
	}
	if peak <= cfg.RingSize || late == 0 || nic.Stats.Drops != 0 {
		t.Fatalf("peak live %d (ring %d), %d buffers held over 1 ms, %d drops", peak, cfg.RingSize, late, nic.Stats.Drops)
	}
}
