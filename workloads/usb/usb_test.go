package usb

import (
	"testing"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/engine"
)

// tape records every outcome's event.
type tape struct {
	evs  []dma.Event
	errs []error
	srcs []int
}

func (t *tape) Record(o *engine.Outcome) {
	t.evs = append(t.evs, *o.Event)
	t.errs = append(t.errs, o.Err)
	t.srcs = append(t.srcs, o.Source)
}

// failing is the null allocator failing the TD allocations it is told to.
// Pools get ids in creation order, so the TD pool (created first) is 0.
type failing struct {
	*engine.Null
	n     int
	pools dma.ID
	fail  map[int]bool
}

func (f *failing) CreatePool(dma.PoolSpec) (dma.ID, error) {
	f.pools++
	return f.pools - 1, nil
}

func (f *failing) Alloc(pool dma.ID, r *dma.Request) (dma.Block, error) {
	if pool == 0 {
		f.n++
		if f.fail[f.n] {
			return dma.Block{}, dma.ErrNoMem
		}
	}
	return f.Null.Alloc(pool, r)
}

func run(t *testing.T, b *Bus, events int64, fail map[int]bool) *tape {
	t.Helper()
	n, p := engine.NewNull()
	var rec tape
	var a dma.Allocator = n
	if fail != nil {
		a = &failing{Null: n, fail: fail}
	}
	e := engine.New(p, a, &rec, b)
	if _, err := e.Run(events); err != nil {
		t.Fatal(err)
	}
	if len(rec.evs) != int(events) {
		t.Fatalf("%d events, want %d", len(rec.evs), events)
	}
	return &rec
}

func storageOnly() Config {
	c := DefaultConfig()
	c.HID.Enabled, c.Audio.Enabled = false, false
	return c
}

// TestTDsPerURB checks, URB by URB, the TD count, pool and flags of each
// storage submit: TD allocations then the buffer's map.
func TestTDsPerURB(t *testing.T) {
	for _, tc := range []struct {
		ctrl     Controller
		tds      int
		align    int64
		boundary int64
		gfp      dma.GFP
	}{
		{UHCI, 128, 16, 0, dma.GFPAtomic},
		{OHCI, 2, 32, 0, dma.GFPNoIO},
		{EHCI, 1, 32, 4096, dma.GFPNoIO},
	} {
		t.Run(tc.ctrl.String(), func(t *testing.T) {
			b := New(tc.ctrl, storageOnly(), 1)
			if b.TDsPerURB() != tc.tds {
				t.Fatalf("%d TDs per 8 KiB URB, want %d", b.TDsPerURB(), tc.tds)
			}
			rec := run(t, b, 60_000, nil)
			run, urbs := 0, 0
			for i, e := range rec.evs {
				switch {
				case e.Kind == dma.PoolCreate && e.ID == TDPool:
					if e.Align != tc.align || e.Boundary != tc.boundary {
						t.Fatalf("TD pool align %d boundary %d", e.Align, e.Boundary)
					}
				case e.Kind == dma.Alloc && e.Pool == TDPool:
					if e.GFP != tc.gfp || e.Ctx != dma.Process {
						t.Fatalf("TD alloc with %s in %s", e.GFP, e.Ctx)
					}
					run++
				case e.Kind == dma.Map:
					if run != tc.tds || e.Size != 8192 {
						t.Fatalf("URB %d mapped %d bytes after %d TD allocations, want %d", urbs, e.Size, run, tc.tds)
					}
					run = 0
					urbs++
				case e.Kind == dma.Free || e.Kind == dma.Unmap:
					if e.Ctx != dma.HardIRQ || rec.srcs[i] != 1 {
						t.Fatalf("completion %s in %s from thread %d", e.Kind, e.Ctx, rec.srcs[i])
					}
				}
				if rec.errs[i] != nil {
					t.Fatalf("event %d failed: %v", i, rec.errs[i])
				}
			}
			if urbs < 100 {
				t.Fatalf("only %d URBs", urbs)
			}
		})
	}
}

func TestEveryObjectFreedOnce(t *testing.T) {
	for _, ctrl := range []Controller{UHCI, OHCI, EHCI} {
		rec := run(t, New(ctrl, DefaultConfig(), 3), 100_000, nil)
		live := map[dma.ID]dma.Kind{}
		var last dma.Time
		for i, e := range rec.evs {
			if e.At < last {
				t.Fatalf("%s: event %d at %d after %d", ctrl, i, e.At, last)
			}
			last = e.At
			switch e.Kind {
			case dma.Alloc, dma.Map:
				if _, ok := live[e.ID]; ok {
					t.Fatalf("%s: event %d: id %d reused while live", ctrl, i, e.ID)
				}
				live[e.ID] = e.Kind
			case dma.Free, dma.Unmap:
				k, ok := live[e.ID]
				if !ok || (k == dma.Map) != (e.Kind == dma.Unmap) {
					t.Fatalf("%s: event %d: %s of id %d not live as the right kind", ctrl, i, e.Kind, e.ID)
				}
				delete(live, e.ID)
			}
		}
	}
}

// TestDeviceMix: HID and audio TDs are allocated GFP_ATOMIC in interrupt
// context at their periods; iso TDs follow each controller's rule.
func TestDeviceMix(t *testing.T) {
	for _, tc := range []struct {
		ctrl      Controller
		isoPerURB int
		isoPool   dma.ID
	}{{UHCI, 8, TDPool}, {OHCI, 1, TDPool}, {EHCI, 1, ISOPool}} {
		c := DefaultConfig()
		c.Storage.Enabled = false
		b := New(tc.ctrl, c, 1)
		rec := run(t, b, 20_000, nil)
		isoTDs := 0
		for _, e := range rec.evs {
			if e.Kind == dma.Alloc && e.Pool != QHPool && e.Pool != dma.NoPool {
				if e.GFP != dma.GFPAtomic {
					t.Fatalf("%s: periodic TD with %s", tc.ctrl, e.GFP)
				}
				if e.Pool == tc.isoPool && e.Size == b.urbs[len(b.urbs)-1].tdSize {
					isoTDs++
				}
			}
		}
		if isoTDs == 0 {
			t.Fatalf("%s: no iso TDs from pool %d", tc.ctrl, tc.isoPool)
		}
		span := rec.evs[len(rec.evs)-1].At
		if span < dma.Second || b.Stats.Completions == 0 {
			t.Fatalf("%s: %d completions in %d ns", tc.ctrl, b.Stats.Completions, span)
		}
		// HID every 10 ms and audio URBs of 8 frames every 8 ms: 225/s.
		perSec := float64(b.Stats.Completions) / (float64(span) / 1e9)
		if perSec < 200 || perSec > 250 {
			t.Fatalf("%s: %.0f periodic completions per second, want about 225", tc.ctrl, perSec)
		}
		if got := b.urbs[len(b.urbs)-1].n; got != tc.isoPerURB {
			t.Fatalf("%s: %d iso TDs per 8-frame URB, want %d", tc.ctrl, got, tc.isoPerURB)
		}
	}
}

func TestBusRate(t *testing.T) {
	b := New(EHCI, storageOnly(), 3)
	rec := run(t, b, 100_000, nil)
	span := rec.evs[len(rec.evs)-1].At - rec.evs[0].At
	// 480 Mbit/s moves 8 KiB in 136.5 us; 4 URBs keep the bus busy.
	perURB := float64(span) / float64(b.Stats.Completions)
	if perURB < 136_000 || perURB > 140_000 {
		t.Fatalf("%.0f ns per URB, want about 136533", perURB)
	}
}

// TestFailedTDUnwinds: a TD allocation that fails unwinds the submit (its
// TDs freed, no map), counts a submit failure and retries 1 ms later.
func TestFailedTDUnwinds(t *testing.T) {
	b := New(UHCI, storageOnly(), 1)
	rec := run(t, b, 5000, map[int]bool{200: true})
	if b.Stats.SubmitFailures != 1 {
		t.Fatalf("%d submit failures, want 1", b.Stats.SubmitFailures)
	}
	// The 200th TD is the 72nd of URB 2 (128 per URB): 71 frees follow it.
	for i, err := range rec.errs {
		if err == nil {
			continue
		}
		frees := 0
		for _, e := range rec.evs[i+1:] {
			if e.Kind != dma.Free {
				break
			}
			frees++
		}
		if frees != 71 {
			t.Fatalf("%d TDs freed after the failure, want 71", frees)
		}
		return
	}
	t.Fatal("no failure recorded")
}

func TestSeedDeterminism(t *testing.T) {
	a := run(t, New(OHCI, DefaultConfig(), 42), 20_000, nil)
	b := run(t, New(OHCI, DefaultConfig(), 42), 20_000, nil)
	c := run(t, New(OHCI, DefaultConfig(), 43), 20_000, nil)
	same := true
	for i := range a.evs {
		if a.evs[i].At != b.evs[i].At || a.evs[i].Kind != b.evs[i].Kind || a.evs[i].ID != b.evs[i].ID {
			t.Fatalf("seed 42 differs at event %d", i)
		}
		if a.evs[i].At != c.evs[i].At {
			same = false
		}
	}
	if same {
		t.Fatal("seeds 42 and 43 gave the same timing")
	}
}

func TestValidate(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.Storage.URBFlags = "GFP_BOGUS"
	if c.Validate() == nil {
		t.Fatal("bad gfp accepted")
	}
	c = DefaultConfig()
	c.Storage.QueueDepth = 0
	if c.Validate() == nil {
		t.Fatal("queue depth 0 accepted")
	}
	if _, err := ParseController("xhci"); err == nil {
		t.Fatal("xhci accepted")
	}
}
