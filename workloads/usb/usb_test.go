package usb

import (
	"errors"
	"testing"

	"github.com/dmabench/dmabench/dma"
)

type urbStats struct {
	tdAllocs, tdFrees, maps, unmaps int
	gfps                            map[dma.GFP]int
	pool                            dma.Event
}

// drain pulls n events, reporting success for each, and checks the stream
// is in modeled-time order with every TD freed once.
func drain(t *testing.T, s *Source, n int) ([]dma.Event, urbStats) {
	t.Helper()
	st := urbStats{gfps: map[dma.GFP]int{}}
	live := map[dma.ID]dma.Kind{}
	var evs []dma.Event
	var last dma.Time
	for i := 0; i < n; i++ {
		var e dma.Event
		if err := s.Next(&e); err != nil {
			t.Fatal(err)
		}
		if e.At < last {
			t.Fatalf("event %d at %d before %d", i, e.At, last)
		}
		last = e.At
		switch e.Kind {
		case dma.PoolCreate:
			if e.ID == TDPool {
				st.pool = e
			}
		case dma.Alloc, dma.Map:
			if _, ok := live[e.ID]; ok {
				t.Fatalf("event %d: id %d reused while live", i, e.ID)
			}
			live[e.ID] = e.Kind
			if e.Kind == dma.Map {
				st.maps++
			} else if e.Pool == TDPool {
				st.tdAllocs++
				st.gfps[e.GFP]++
			}
		case dma.Free, dma.Unmap:
			k, ok := live[e.ID]
			if !ok || (k == dma.Map) != (e.Kind == dma.Unmap) {
				t.Fatalf("event %d: %s of id %d which is not live as the right kind", i, e.Kind, e.ID)
			}
			delete(live, e.ID)
			if e.Kind == dma.Unmap {
				st.unmaps++
			} else {
				st.tdFrees++
			}
		}
		s.Outcome(&e, nil)
		evs = append(evs, e)
	}
	return evs, st
}

func TestTDsPerURB(t *testing.T) {
	cases := []struct {
		ctrl     Controller
		tds      int
		align    int64
		boundary int64
		gfp      dma.GFP
	}{
		{UHCI, 128, 16, 0, dma.GFPAtomic},
		{OHCI, 2, 32, 0, dma.GFPNoIO},
		{EHCI, 1, 32, 4096, dma.GFPNoIO},
	}
	for _, tc := range cases {
		t.Run(tc.ctrl.String(), func(t *testing.T) {
			s := New(tc.ctrl, DefaultConfig(), 1)
			if s.TDsPerURB() != tc.tds {
				t.Fatalf("%d TDs per 8 KiB URB, want %d", s.TDsPerURB(), tc.tds)
			}
			_, st := drain(t, s, 50_000)
			if st.pool.Align != tc.align || st.pool.Boundary != tc.boundary {
				t.Fatalf("TD pool align %d boundary %d", st.pool.Align, st.pool.Boundary)
			}
			// The stream is cut mid-URB: the last one may be partial.
			if st.tdAllocs < tc.tds*st.maps || st.tdAllocs > tc.tds*(st.maps+1) {
				t.Fatalf("%d TD allocations for %d URBs, want %d per URB", st.tdAllocs, st.maps, tc.tds)
			}
			if len(st.gfps) != 1 || st.gfps[tc.gfp] != st.tdAllocs {
				t.Fatalf("TD gfp flags %v, want all %s", st.gfps, tc.gfp)
			}
			if st.unmaps == 0 || st.tdFrees < tc.tds*(st.unmaps-1) {
				t.Fatalf("%d unmaps, %d TD frees", st.unmaps, st.tdFrees)
			}
		})
	}
}

// TestUHCIStreamCountsExactly checks, URB by URB, that each submit is 128
// TD allocations followed by the data buffer's map.
func TestUHCIStreamCountsExactly(t *testing.T) {
	evs, _ := drain(t, New(UHCI, DefaultConfig(), 1), 20_000)
	run := 0
	urbs := 0
	for _, e := range evs {
		switch {
		case e.Kind == dma.Alloc && e.Pool == TDPool:
			run++
		case e.Kind == dma.Map:
			if run != 128 {
				t.Fatalf("URB %d mapped after %d TD allocations, want 128", urbs, run)
			}
			if e.Size != 8192 {
				t.Fatalf("URB buffer %d bytes", e.Size)
			}
			run = 0
			urbs++
		}
	}
	if urbs < 50 {
		t.Fatalf("only %d URBs in 20000 events", urbs)
	}
}

func TestBusRateAndQueueDepth(t *testing.T) {
	s := New(EHCI, DefaultConfig(), 3)
	evs, _ := drain(t, s, 100_000)
	span := evs[len(evs)-1].At - evs[0].At
	// 480 Mbit/s moves 8 KiB in 136.5 us; the bus is kept busy by 4 URBs.
	perURB := float64(span) / float64(s.Stats.Completions)
	if perURB < 136_000 || perURB > 140_000 {
		t.Fatalf("%.0f ns per URB, want about 136533", perURB)
	}
}

func TestFailedTDUnwinds(t *testing.T) {
	s := New(UHCI, DefaultConfig(), 1)
	live := map[dma.ID]bool{}
	n := 0
	failAt := 200 // fail the 200th TD allocation
	failed := false
	for i := 0; i < 5000; i++ {
		var e dma.Event
		s.Next(&e)
		var err error
		switch e.Kind {
		case dma.Alloc:
			if e.Pool == TDPool {
				n++
				if n == failAt {
					err = dma.ErrNoMem
					failed = true
				}
			}
			if err == nil {
				live[e.ID] = true
			}
		case dma.Map:
			live[e.ID] = true
		case dma.Free, dma.Unmap:
			if !live[e.ID] {
				t.Fatalf("event %d: %s of id %d not live", i, e.Kind, e.ID)
			}
			delete(live, e.ID)
		}
		s.Outcome(&e, err)
	}
	if s.Stats.SubmitFailures != 1 {
		t.Fatalf("%d submit failures, want 1", s.Stats.SubmitFailures)
	}
	if !failed {
		t.Fatal("no failure injected")
	}
}

func TestSeedDeterminism(t *testing.T) {
	a, _ := drain(t, New(OHCI, DefaultConfig(), 42), 10_000)
	b, _ := drain(t, New(OHCI, DefaultConfig(), 42), 10_000)
	c, _ := drain(t, New(OHCI, DefaultConfig(), 43), 10_000)
	same := true
	for i := range a {
		if a[i].At != b[i].At || a[i].Kind != b[i].Kind || a[i].ID != b[i].ID {
			t.Fatalf("seed 42 differs at event %d", i)
		}
		if a[i].At != c[i].At {
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
	c.URBFlags = "GFP_BOGUS"
	if c.Validate() == nil {
		t.Fatal("bad gfp accepted")
	}
	c = DefaultConfig()
	c.QueueDepth = 0
	if c.Validate() == nil {
		t.Fatal("queue depth 0 accepted")
	}
	if _, err := ParseController("xhci"); err == nil || errors.Is(err, nil) {
		t.Fatal("xhci accepted")
	}
}
