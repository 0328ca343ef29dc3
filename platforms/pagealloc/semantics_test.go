package pagealloc

import (
	"testing"

	"github.com/dmabench/dmabench/dma"
)

// exhaustedMemory returns a machine of 8 MiB (a 1 MiB DMA zone and a
// Normal zone) under the given rules, whose user tasks hold anonMiB, and
// with every page taken that any caller may take.
func exhaustedMemory(t *testing.T, sem string, anonMiB int64) (*Memory, *dma.Meter) {
	t.Helper()
	a, err := New([]ZoneSpec{{"DMA", 256}, {"Normal", 1792}})
	if err != nil {
		t.Fatal(err)
	}
	p := DefaultPressure()
	p.GFPSemantics, p.AnonMiB, p.OOMVictimMiB = sem, anonMiB, 1
	meter := &dma.Meter{Now: dma.Second}
	m := NewMemory(a, p, meter)
	exhaust(m)
	return m, meter
}

// TestSleepingExhaustedModern pins what Linux since 4.7 does with a
// sleeping request that reclaim cannot help (__alloc_pages_slowpath,
// __alloc_pages_may_oom, out_of_memory): each rule is a case.
func TestSleepingExhaustedModern(t *testing.T) {
	normal, dmaZone := []int{1, 0}, []int{0}
	for _, tc := range []struct {
		name  string
		zones []int
		order int
		gfp   dma.GFP
		anon  int64
		// want: "fail", "loop", "kill" (then served) or "panic".
		want string
	}{
		{"GFP_KERNEL with a task to kill", normal, 0, dma.GFPKernel, 2, "kill"},
		{"GFP_KERNEL order 3 is not costly", normal, 3, dma.GFPKernel, 2, "kill"},
		{"GFP_KERNEL with no task to kill panics", normal, 0, dma.GFPKernel, 0, "panic"},
		{"GFP_NOIO loops: no kill for IO-less reclaim", normal, 0, dma.GFPNoIO, 2, "loop"},
		{"GFP_NOFS loops too", normal, 0, dma.GFPNoFS, 2, "loop"},
		{"GFP_DMA: no kill for lowmem", dmaZone, 0, dma.GFPKernel | dma.GFPDMA, 2, "fail"},
		{"ZONE_DMA preferred: lowmem", dmaZone, 0, dma.GFPKernel, 2, "fail"},
		{"costly order fails", normal, 4, dma.GFPKernel, 2, "fail"},
		{"__GFP_NORETRY fails", normal, 0, dma.GFPKernel | dma.GFPNoRetry, 2, "fail"},
		{"atomic fails", normal, 0, dma.GFPAtomic, 2, "fail"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, meter := exhaustedMemory(t, "modern", tc.anon)
			_, _, err := m.Alloc(tc.zones, tc.order, tc.gfp)
			got := "fail"
			switch {
			case err == nil && meter.OOMKills == 1:
				got = "kill"
			case err == dma.ErrWouldBlock && meter.Sleep.Kind == dma.WaitReclaim:
				got = "loop"
			case err != nil && meter.Panicked:
				got = "panic"
			case err == nil:
				got = "served without a kill"
			}
			if got != tc.want {
				t.Fatalf("got %s (err %v, kills %d), want %s", got, err, meter.OOMKills, tc.want)
			}
		})
	}
}

// TestSleepingExhausted2002 pins 2.5's rules: a sleeping request of
// order <= 3 loops whatever its flags, and a __GFP_FS caller's failed
// reclaim has out_of_memory kill only once ten failures have come over
// at least a second, then not again for 5 s.
func TestSleepingExhausted2002(t *testing.T) {
	m, meter := exhaustedMemory(t, "2002", 4)
	normal := []int{1, 0}
	for _, gfp := range []dma.GFP{dma.GFPDMA | dma.GFPKernel, dma.GFPNoIO} {
		if _, _, err := m.Alloc(normal, 3, gfp); err != dma.ErrWouldBlock {
			t.Fatalf("%v order 3: %v, want a loop", gfp, err)
		}
	}
	if _, _, err := m.Alloc(normal, 4, dma.GFPKernel); err == nil || err == dma.ErrWouldBlock {
		t.Fatalf("order 4: %v, want a failure", err)
	}
	// Retries every 20 ms: the killer first counts after a second, and
	// kills at its tenth counted failure.
	start := dma.Time(10 * dma.Second)
	kills := func(until dma.Time) (at []dma.Time) {
		for now := start; now <= until; now += 20 * dma.Millisecond {
			meter.Now = now
			before := meter.OOMKills
			pfn, _, err := m.Alloc(normal, 0, dma.GFPKernel)
			if err == nil {
				at = append(at, now-start)
				m.Free(pfn, 0)
				// The victim's pages are free again: take them back so
				// that memory stays exhausted.
				exhaust(m)
				if meter.OOMKills != before+1 {
					t.Fatalf("served at %v without a kill", now-start)
				}
			} else if err != dma.ErrWouldBlock {
				t.Fatalf("at %v: %v", now-start, err)
			}
		}
		return at
	}
	at := kills(start + 12*dma.Second)
	// First kill: the first call resets; counting starts a second later
	// (1.00 s) and the tenth counted failure is 9 retries on (1.18 s).
	// Then a kill at most every 5 s; the counting starts again each time.
	want := []dma.Time{1180 * dma.Millisecond, 6180 * dma.Millisecond, 11180 * dma.Millisecond}
	if len(at) != len(want) {
		t.Fatalf("kills at %v, want %v", at, want)
	}
	for i := range at {
		if at[i] != want[i] {
			t.Fatalf("kills at %v, want %v", at, want)
		}
	}
}

// exhaust takes every page any caller may take, atomic callers' reserves
// included.
func exhaust(m *Memory) {
	for _, zones := range [][]int{{1, 0}, {0}} {
		for _, gfp := range []dma.GFP{dma.GFPKernel | dma.GFPNoRetry, dma.GFPAtomic} {
			for {
				if _, _, err := m.Alloc(zones, 0, gfp); err != nil {
					break
				}
			}
		}
	}
}
