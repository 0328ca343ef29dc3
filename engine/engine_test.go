package engine

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/dma"
)

// churn allocates and frees n-deep rings forever, like TD churn.
type churn struct {
	dev     dma.Device
	t       dma.Time
	k       int
	ring    int
	started bool
}

func (c *churn) Next(e *dma.Event) error {
	c.t += 10
	if !c.started {
		c.started = true
		*e = dma.Event{At: c.t, Kind: dma.PoolCreate, ID: 0, Pool: dma.NoPool, Size: 32, Align: 16, Dev: &c.dev, Name: "td"}
		return nil
	}
	kind := dma.Alloc
	if (c.k/c.ring)%2 == 1 {
		kind = dma.Free
	}
	*e = dma.Event{At: c.t, Kind: kind, ID: dma.ID(c.k % c.ring), Pool: 0, Size: 32, GFP: dma.GFPAtomic, Dev: &c.dev}
	c.k++
	return nil
}

type counts struct {
	events int
	misuse [NumMisuse]int
	errs   int
	order  []dma.Time
	srcs   []int
}

func (t *counts) Record(o *Outcome) {
	t.events++
	t.misuse[o.Misuse]++
	if o.Err != nil {
		t.errs++
	}
	t.order = append(t.order, o.Event.At)
	t.srcs = append(t.srcs, o.Source)
}

var dev = &dma.Device{Name: "d", Mask: dma.BitMask(32)}

func TestMisuseIsCountedNotFatal(t *testing.T) {
	s := &dma.List{Events: []dma.Event{
		{At: 1, Kind: dma.Alloc, ID: 0, Pool: dma.NoPool, Size: 64, Dev: dev},
		{At: 2, Kind: dma.Free, ID: 0, Pool: dma.NoPool, Dev: dev},
		{At: 3, Kind: dma.Free, ID: 0, Pool: dma.NoPool, Dev: dev},                                 // double free
		{At: 4, Kind: dma.Free, ID: 9, Pool: dma.NoPool, Dev: dev},                                 // unknown
		{At: 5, Kind: dma.Map, ID: 1, Pool: dma.NoPool, Size: 2048, Dir: dma.ToDevice, Dev: dev},   //
		{At: 6, Kind: dma.Unmap, ID: 1, Pool: dma.NoPool, Size: 1024, Dir: dma.ToDevice, Dev: dev}, // size mismatch
		{At: 7, Kind: dma.Alloc, ID: 2, Pool: dma.NoPool, Size: 64, Dev: dev},
		{At: 8, Kind: dma.Alloc, ID: 2, Pool: dma.NoPool, Size: 64, Dev: dev},  // id reused while live
		{At: 9, Kind: dma.Alloc, ID: 3, Pool: 5, Size: 64, Dev: dev},           // unknown pool
		{At: 10, Kind: dma.Unmap, ID: 2, Pool: dma.NoPool, Size: 64, Dev: dev}, // unmap of an allocation
	}}
	n, p := NewNull()
	var rec counts
	e := New(p, n, &rec, s)
	res, err := e.Run(0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 10 || e.Live() != 1 {
		t.Fatalf("events %d live %d", res.Events, e.Live())
	}
	want := map[Misuse]int{MisuseDoubleFree: 1, MisuseUnknownFree: 1, MisuseMismatch: 2, MisuseIDReused: 1, MisuseUnknownPool: 1}
	for k, v := range want {
		if rec.misuse[k] != v {
			t.Errorf("%s: %d, want %d", k, rec.misuse[k], v)
		}
	}
}

func TestMergesSourcesInModeledTime(t *testing.T) {
	a := &dma.List{Events: []dma.Event{{At: 1, Kind: dma.Sync}, {At: 5, Kind: dma.Sync}, {At: 9, Kind: dma.Sync}}}
	b := &dma.List{Events: []dma.Event{{At: 2, Kind: dma.Sync}, {At: 5, Kind: dma.Sync}, {At: 6, Kind: dma.Sync}}}
	n, p := NewNull()
	var rec counts
	if _, err := New(p, n, &rec, a, b).Run(0); err != nil {
		t.Fatal(err)
	}
	wantT := []dma.Time{1, 2, 5, 5, 6, 9}
	wantS := []int{0, 1, 0, 1, 1, 0}
	for i := range wantT {
		if rec.order[i] != wantT[i] || rec.srcs[i] != wantS[i] {
			t.Fatalf("event %d: t=%d src=%d, want t=%d src=%d", i, rec.order[i], rec.srcs[i], wantT[i], wantS[i])
		}
	}
}

// TestMergeMatchesAReferenceMerge: many sources with many equal times, in
// batches of every size: the engine serves them in the order of a plain
// merge (earliest first, the lower source index among equal times),
// however it avoids rescanning the sources.
func TestMergeMatchesAReferenceMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for trial := 0; trial < 50; trial++ {
		nsrc := 1 + rng.IntN(6)
		var srcs []dma.Source
		var lists [][]dma.Time
		for i := 0; i < nsrc; i++ {
			var evs []dma.Event
			var ts []dma.Time
			at := dma.Time(0)
			for k := rng.IntN(40); k > 0; k-- {
				at += dma.Time(rng.IntN(3)) // many ties
				evs = append(evs, dma.Event{At: at, Kind: dma.Sync})
				ts = append(ts, at)
			}
			srcs = append(srcs, &dma.List{Events: evs})
			lists = append(lists, ts)
		}
		var wantT []dma.Time
		var wantS []int
		pos := make([]int, nsrc)
		for {
			best := -1
			for i := range lists {
				if pos[i] < len(lists[i]) && (best < 0 || lists[i][pos[i]] < lists[best][pos[best]]) {
					best = i
				}
			}
			if best < 0 {
				break
			}
			wantT, wantS = append(wantT, lists[best][pos[best]]), append(wantS, best)
			pos[best]++
		}
		n, p := NewNull()
		var rec counts
		e := New(p, n, &rec, srcs...)
		e.BatchSize = 1 + rng.IntN(7)
		if _, err := e.Run(0); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rec.order, wantT) || !slices.Equal(rec.srcs, wantS) {
			t.Fatalf("trial %d: served %v from %v, want %v from %v", trial, rec.order, rec.srcs, wantT, wantS)
		}
	}
}

func TestLimitAndSourceErrors(t *testing.T) {
	n, p := NewNull()
	res, err := New(p, n, &counts{}, &churn{ring: 8}).Run(1000)
	if err != nil || res.Events != 1000 {
		t.Fatalf("events %d err %v", res.Events, err)
	}
	bad := errors.New("line 7: bad field")
	_, err = New(p, n, &counts{}, errSource{bad}).Run(0)
	if !errors.Is(err, bad) {
		t.Fatalf("source error not returned: %v", err)
	}
}

type errSource struct{ err error }

func (s errSource) Next(*dma.Event) error { return s.err }

type countRec struct{ n, misuse int64 }

func (c *countRec) Record(o *Outcome) {
	c.n++
	if o.Misuse != MisuseNone || o.Err != nil {
		c.misuse++
	}
}

func TestReplayLoopAllocatesNothing(t *testing.T) {
	n, p := NewNull()
	e := New(p, n, &countRec{}, &churn{ring: 64}, &churn{ring: 16})
	rec := e.rec.(*countRec)
	if _, err := e.Run(10_000); err != nil {
		t.Fatal(err)
	}
	if rec.misuse != 0 {
		t.Fatalf("%d events misused or failed", rec.misuse)
	}
	if a := testing.AllocsPerRun(20, func() { e.batch(4096) }); a != 0 {
		t.Fatalf("%v allocations per 4096-event batch, want 0", a)
	}
}

// tallyRec counts plain events in a Tally, as metrics.Recorder does, and
// the rest by calls.
type tallyRec struct {
	countRec
	t Tally
}

func (r *tallyRec) TallyOn(*dma.Meter) *Tally { return &r.t }

// BenchmarkReplayNull times the engine alone, one batch(1) call per event
// of a trivial source that copies each event out, against the null
// allocator: "plain", every event counted in a Tally; "recorded", every
// event through serve and a Record call (a recorder that is no Tallier).
func BenchmarkReplayNull(b *testing.B) {
	for _, tc := range []struct {
		name string
		rec  Recorder
	}{{"plain", &tallyRec{}}, {"recorded", &countRec{}}} {
		b.Run(tc.name, func(b *testing.B) {
			n, p := NewNull()
			e := New(p, n, tc.rec, &churn{ring: 128})
			e.Run(10_000)
			b.ReportAllocs()
			for b.Loop() {
				e.batch(1)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// failCreate is the null allocator whose pool creation fails.
type failCreate struct{ *Null }

func (f failCreate) CreatePool(dma.PoolSpec) (dma.ID, error) { return dma.NoPool, dma.ErrNoMem }

// TestFailedPoolCreateFailsItsAllocs: a driver whose pool could not be
// created sees its allocations fail (as after a failed probe); they are
// neither served nor counted as misuse, and destroying the pool is not
// misuse either.
func TestFailedPoolCreateFailsItsAllocs(t *testing.T) {
	s := &dma.List{Events: []dma.Event{
		{At: 1, Kind: dma.PoolCreate, ID: 0, Pool: dma.NoPool, Size: 64, Align: 16, Dev: dev, Name: "td"},
		{At: 2, Kind: dma.Alloc, ID: 0, Pool: 0, Size: 64, GFP: dma.GFPAtomic, Dev: dev},
		{At: 3, Kind: dma.Alloc, ID: 1, Pool: 0, Size: 64, GFP: dma.GFPAtomic, Dev: dev},
		{At: 4, Kind: dma.PoolDestroy, ID: 0, Pool: dma.NoPool, Dev: dev},
		{At: 5, Kind: dma.Alloc, ID: 2, Pool: 0, Size: 64, GFP: dma.GFPAtomic, Dev: dev}, // now unknown
	}}
	n, p := NewNull()
	var rec counts
	if _, err := New(p, failCreate{n}, &rec, s).Run(0); err != nil {
		t.Fatal(err)
	}
	if rec.errs != 3 {
		t.Errorf("%d failed events, want 3 (the create and two allocs)", rec.errs)
	}
	for k, v := range rec.misuse {
		if want := map[Misuse]int{MisuseUnknownPool: 1}[Misuse(k)]; Misuse(k) != MisuseNone && v != want {
			t.Errorf("%s: %d, want %d", Misuse(k), v, want)
		}
	}
}

// batches is a dma.Batcher over a fixed list of events: a batch is the
// rest of the list, and a Result voids what follows the event reported.
type batches struct {
	evs       []dma.Event
	pos, base int
	results   []string
}

func (b *batches) Next(*dma.Event) error { panic("a Batcher is asked for batches") }

func (b *batches) NextBatch() ([]dma.Event, error) {
	if b.pos == len(b.evs) {
		return nil, io.EOF
	}
	b.base = b.pos
	b.pos = len(b.evs)
	return b.evs[b.base:], nil
}

func (b *batches) Result(i int, err error) {
	e := &b.evs[b.base+i]
	b.results = append(b.results, fmt.Sprintf("id %d: %v", e.ID, err))
	b.pos = b.base + i + 1
}

// odd is the null allocator failing requests of odd sizes.
type odd struct{ *Null }

func (o odd) Alloc(id dma.ID, r *dma.Request) (dma.Block, error) {
	if r.Size%2 == 1 {
		return dma.Block{}, dma.ErrNoMem
	}
	return o.Null.Alloc(id, r)
}

// TestBatcherHearsFailuresAndNotify: the engine serves a batch without a
// call per event, reports a failure and each Notify event by its index in
// the batch it came from, and asks for a new batch after each report.
func TestBatcherHearsFailuresAndNotify(t *testing.T) {
	src := &batches{evs: []dma.Event{
		{At: 1, Kind: dma.Alloc, ID: 0, Pool: dma.NoPool, Size: 8, Dev: dev},
		{At: 1, Kind: dma.Alloc, ID: 1, Pool: dma.NoPool, Size: 8, Dev: dev, Notify: true},
		{At: 2, Kind: dma.Alloc, ID: 2, Pool: dma.NoPool, Size: 8, Dev: dev},
		{At: 2, Kind: dma.Alloc, ID: 3, Pool: dma.NoPool, Size: 9, Dev: dev},
		{At: 3, Kind: dma.Alloc, ID: 4, Pool: dma.NoPool, Size: 8, Dev: dev},
		{At: 3, Kind: dma.Free, ID: 0, Pool: dma.NoPool, Size: 8, Dev: dev},
	}}
	n, p := NewNull()
	var rec counts
	res, err := New(p, odd{n}, &rec, src).Run(0)
	if err != nil || res.Events != 6 {
		t.Fatalf("served %d events, err %v", res.Events, err)
	}
	want := []string{"id 1: <nil>", "id 3: out of memory"}
	if !slices.Equal(src.results, want) {
		t.Fatalf("results %q, want %q", src.results, want)
	}
	if rec.errs != 1 || rec.misuse[MisuseNone] != 6 {
		t.Fatalf("errors %d misuse %v", rec.errs, rec.misuse)
	}
}

// TestPoolAllocLargerThanItsBlocksIsMisuse: dma_pool_alloc takes no size,
// so a trace whose alloc asks a pool for more than its blocks hold is a
// mismatch, counted and not served; asking for less is fine.
func TestPoolAllocLargerThanItsBlocksIsMisuse(t *testing.T) {
	s := &dma.List{Events: []dma.Event{
		{At: 1, Kind: dma.PoolCreate, ID: 0, Pool: dma.NoPool, Size: 64, Align: 16, Dev: dev, Name: "td"},
		{At: 2, Kind: dma.Alloc, ID: 0, Pool: 0, Size: 64, GFP: dma.GFPAtomic, Dev: dev},
		{At: 3, Kind: dma.Alloc, ID: 1, Pool: 0, Size: 65, GFP: dma.GFPAtomic, Dev: dev},
		{At: 4, Kind: dma.Alloc, ID: 2, Pool: 0, Size: 8, GFP: dma.GFPAtomic, Dev: dev},
	}}
	n, p := NewNull()
	var rec counts
	if _, err := New(p, n, &rec, s).Run(0); err != nil {
		t.Fatal(err)
	}
	if rec.misuse[MisuseMismatch] != 1 || rec.misuse[MisuseNone] != 3 {
		t.Fatalf("misuse %v, want one mismatch", rec.misuse)
	}
}

// TestBadEventMidStretchEndsTheRun: an event with a negative id after
// plain events of the same batch is reported as bad, whichever kind it
// is, and the events before it are served and counted; none after it is.
func TestBadEventMidStretchEndsTheRun(t *testing.T) {
	for _, bad := range []dma.Event{
		{At: 6, Kind: dma.Alloc, ID: -1, Pool: 0, Size: 32, Dev: dev},
		{At: 6, Kind: dma.Free, ID: -2, Pool: 0, Dev: dev},
		{At: 6, Kind: dma.Map, ID: -3, Size: 32, Dev: dev},
		{At: 6, Kind: dma.Unmap, ID: -4, Size: 32, Dev: dev},
		{At: 6, Kind: dma.PoolDestroy, ID: -5, Pool: dma.NoPool, Dev: dev},
	} {
		for _, tc := range []struct {
			name string
			rec  interface {
				Recorder
				served() int64
			}
		}{{"plain", &tallyRec{}}, {"recorded", &countRec{}}} {
			t.Run(fmt.Sprintf("%s/%s", bad.Kind, tc.name), func(t *testing.T) {
				// Ids used once, so that their second use is plain.
				s := &dma.List{Events: []dma.Event{
					{At: 1, Kind: dma.PoolCreate, ID: 0, Pool: dma.NoPool, Size: 32, Align: 16, Dev: dev, Name: "td"},
					{At: 1, Kind: dma.Alloc, ID: 0, Pool: 0, Size: 32, GFP: dma.GFPAtomic, Dev: dev},
					{At: 1, Kind: dma.Alloc, ID: 1, Pool: 0, Size: 32, GFP: dma.GFPAtomic, Dev: dev},
					{At: 1, Kind: dma.Map, ID: 2, Size: 32, Dir: dma.ToDevice, Dev: dev},
					{At: 1, Kind: dma.Free, ID: 0, Pool: 0, Dev: dev},
					{At: 1, Kind: dma.Free, ID: 1, Pool: 0, Dev: dev},
					{At: 1, Kind: dma.Unmap, ID: 2, Size: 32, Dir: dma.ToDevice, Dev: dev},
					{At: 2, Kind: dma.Alloc, ID: 0, Pool: 0, Size: 32, GFP: dma.GFPAtomic, Dev: dev},
					{At: 3, Kind: dma.Alloc, ID: 1, Pool: 0, Size: 32, GFP: dma.GFPAtomic, Dev: dev},
					{At: 4, Kind: dma.Free, ID: 0, Pool: 0, Dev: dev},
					{At: 5, Kind: dma.Map, ID: 2, Size: 32, Dir: dma.ToDevice, Dev: dev},
					bad,
					{At: 7, Kind: dma.Free, ID: 1, Pool: 0, Dev: dev},
				}}
				n, p := NewNull()
				res, err := New(p, n, tc.rec, s).Run(0)
				if err == nil || !strings.Contains(err.Error(), "negative id") {
					t.Fatalf("err %v, want a negative id", err)
				}
				if res.Events != 11 || tc.rec.served() != 11 {
					t.Fatalf("served %d, counted %d, want 11", res.Events, tc.rec.served())
				}
			})
		}
	}
}

func (c *countRec) served() int64 { return c.n }

func (r *tallyRec) served() int64 {
	var n int64
	for _, k := range r.t.ByKind {
		n += k
	}
	return n + r.n
}

// TestPoolBlocksDieWithThePool: the engine owns the rule that a pool's
// blocks die with it. A destroy with a block live is served and counted;
// that block's free, and an alloc from the destroyed pool, are counted
// and never reach the allocator; a block freed before the destroy is not
// affected, and the id of the dead block can be used again after its
// free.
func TestPoolBlocksDieWithThePool(t *testing.T) {
	s := &dma.List{Events: []dma.Event{
		{At: 0, Kind: dma.PoolCreate, ID: 0, Pool: dma.NoPool, Size: 64, Align: 16, Dev: dev, Name: "p"},
		{At: 1, Kind: dma.Alloc, ID: 0, Pool: 0, Size: 64, GFP: dma.GFPKernel, Dev: dev},
		{At: 1, Kind: dma.Alloc, ID: 1, Pool: 0, Size: 64, GFP: dma.GFPKernel, Dev: dev},
		{At: 2, Kind: dma.Free, ID: 1, Pool: dma.NoPool, Dev: dev},
		{At: 3, Kind: dma.PoolDestroy, ID: 0, Pool: dma.NoPool, Dev: dev},
		{At: 4, Kind: dma.Free, ID: 0, Pool: dma.NoPool, Dev: dev},
		{At: 5, Kind: dma.Alloc, ID: 2, Pool: 0, Size: 64, GFP: dma.GFPKernel, Dev: dev},
		{At: 6, Kind: dma.Alloc, ID: 0, Pool: dma.NoPool, Size: 64, GFP: dma.GFPKernel, Dev: dev},
	}}
	n, p := NewNull()
	a := &countingAlloc{Null: n}
	var rec counts
	if _, err := New(p, a, &rec, s).Run(0); err != nil {
		t.Fatal(err)
	}
	want := map[Misuse]int{MisuseDestroyWithLive: 1, MisuseFreeAfterDestroy: 1, MisuseAllocAfterDestroy: 1}
	for k := MisuseUnknownFree; k < NumMisuse; k++ {
		if rec.misuse[k] != want[k] {
			t.Errorf("%s: %d, want %d", k, rec.misuse[k], want[k])
		}
	}
	if a.allocs != 3 || a.frees != 1 || a.destroys != 1 {
		t.Errorf("the allocator saw %d allocs, %d frees, %d destroys; want 3, 1, 1", a.allocs, a.frees, a.destroys)
	}
}

// countingAlloc is the null allocator counting what reaches it.
type countingAlloc struct {
	*Null
	allocs, frees, destroys int
}

func (c *countingAlloc) Alloc(id dma.ID, r *dma.Request) (dma.Block, error) {
	c.allocs++
	return c.Null.Alloc(id, r)
}

func (c *countingAlloc) Free(b dma.Block) { c.frees++ }

func (c *countingAlloc) DestroyPool(dma.ID) error { c.destroys++; return nil }
