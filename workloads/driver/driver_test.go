package driver

import (
	"testing"

	"github.com/dmabench/dmabench/dma"
)

// echo emits one event per action, tagged with the action's Arg.
type echo struct{}

func (h *echo) Expand(t *Thread, a Action) {
	t.Emit(dma.Event{Kind: dma.Alloc, ID: dma.ID(a.Arg), Pool: dma.NoPool, Size: 8})
	if a.Arg < 3 {
		t.Schedule(Action{At: t.Now + 10, Arg: a.Arg + 1})
	}
}

func (h *echo) Outcome(*Thread, *dma.Event, error) {}

// TestStartAtHoldsTheThread: actions queued before StartAt run at the
// start time in their order, later ones keep their spacing from it.
func TestStartAtHoldsTheThread(t *testing.T) {
	h := &echo{}
	th := NewThread("t", h, nil)
	th.Schedule(Action{At: 0, Arg: 0})
	th.Schedule(Action{At: 5, Arg: 100})
	th.StartAt(1000)
	var got []dma.Time
	var ids []dma.ID
	var e dma.Event
	for th.Next(&e) == nil {
		got = append(got, e.At)
		ids = append(ids, e.ID)
	}
	wantAt := []dma.Time{1000, 1000, 1010, 1020, 1030}
	wantID := []dma.ID{0, 100, 1, 2, 3}
	if len(got) != len(wantAt) {
		t.Fatalf("times %v ids %v", got, ids)
	}
	for i := range got {
		if got[i] != wantAt[i] || ids[i] != wantID[i] {
			t.Fatalf("times %v ids %v, want %v %v", got, ids, wantAt, wantID)
		}
	}
}

// unwinder emits, per action, three allocs of fresh ids, the last one
// marked Notify; a failed alloc drops the rest and frees what came before.
type unwinder struct {
	ids   *IDs
	ev    []dma.ID
	heard []string
}

func (h *unwinder) Expand(t *Thread, a Action) {
	h.ev = h.ev[:0]
	var last *dma.Event
	for k := 0; k < 3; k++ {
		id := h.ids.Get()
		h.ev = append(h.ev, id)
		last = t.Op(dma.Alloc, dma.Process, dma.GFPKernel, 0, nil, id, dma.NoPool, 8)
	}
	last.Notify = true
}

func (h *unwinder) Outcome(t *Thread, e *dma.Event, err error) {
	if err == nil {
		h.heard = append(h.heard, "ok")
		return
	}
	h.heard = append(h.heard, "failed")
	t.Drop()
	for k, id := range h.ev {
		if id == e.ID {
			for _, gone := range h.ev[k:] {
				h.ids.Put(gone)
			}
			break
		}
		t.Op(dma.Free, dma.Process, 0, 0, nil, id, dma.NoPool, 8)
	}
}

// TestBatchResultUnwinds: a batch is an action's events; a failure
// reported with Result voids the rest, and the next batch is what the
// handler emitted instead. Success is heard only for a Notify event, and
// freed ids come back once their frees were served.
func TestBatchResultUnwinds(t *testing.T) {
	ids := &IDs{}
	h := &unwinder{ids: ids}
	th := NewThread("t", h, ids)
	th.Schedule(Action{At: 10})
	th.Schedule(Action{At: 20})
	b, err := th.NextBatch()
	if err != nil || len(b) != 3 || b[2].Notify != true || b[0].At != 10 {
		t.Fatalf("first batch %v %v", b, err)
	}
	th.Result(2, nil) // all three served, the last heard
	b, err = th.NextBatch()
	if err != nil || len(b) != 3 || b[0].ID != 3 || b[0].At != 20 {
		t.Fatalf("second batch %v %v", b, err)
	}
	th.Result(1, dma.ErrNoMem) // the first served, the second failed
	b, err = th.NextBatch()
	if err != nil || len(b) != 1 || b[0].Kind != dma.Free || b[0].ID != 3 {
		t.Fatalf("unwind batch %v %v", b, err)
	}
	if _, err := th.NextBatch(); err != dma.ErrIdle {
		t.Fatalf("after the unwind: %v, want idle", err)
	}
	if want := []string{"ok", "failed"}; len(h.heard) != 2 || h.heard[0] != want[0] || h.heard[1] != want[1] {
		t.Fatalf("heard %v, want %v", h.heard, want)
	}
	// Ids 4 and 5 came back in the unwind, 3 once its free was served.
	got := []dma.ID{ids.Get(), ids.Get(), ids.Get(), ids.Get()}
	if want := []dma.ID{3, 5, 4, 6}; got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
		t.Fatalf("ids after the unwind %v, want %v", got, want)
	}
}
