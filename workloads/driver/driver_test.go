package driver

import (
	"testing"

	"github.com/dmabench/dmabench/dma"
)

// echo emits one event per action, tagged with the action's Arg.
type echo struct{ t *Thread }

func (h *echo) Expand(t *Thread, a Action) {
	*t.New() = dma.Event{Kind: dma.Alloc, ID: dma.ID(a.Arg), Pool: dma.NoPool, Size: 8}
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
