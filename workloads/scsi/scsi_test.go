package scsi

import (
	"slices"
	"testing"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/engine"
)

type tape struct {
	evs  []dma.Event
	errs []error
}

func (t *tape) Record(o *engine.Outcome) {
	e := *o.Event
	e.Segs = slices.Clone(e.Segs)
	t.evs = append(t.evs, e)
	t.errs = append(t.errs, o.Err)
}

func run(t *testing.T, cfg Config, events int64, failN int) (*Host, *tape) {
	t.Helper()
	n, p := engine.NewNull()
	if failN > 0 {
		p.Mapper = &failMapper{Null: n, every: failN}
	}
	h := New(cfg, 1)
	var rec tape
	if _, err := engine.New(p, n, &rec, h).Run(events); err != nil {
		t.Fatal(err)
	}
	return h, &rec
}

// failMapper fails every nth segment map.
type failMapper struct {
	*engine.Null
	every, k int
}

func (f *failMapper) Map(dev *dma.Device, size int64, dir dma.Dir, gfp dma.GFP) (dma.Block, error) {
	f.k++
	if f.k%f.every == 0 {
		return dma.Block{}, dma.ErrMapFailed
	}
	return f.Null.Map(dev, size, dir, gfp)
}

// TestMapSGMatchedByUnmapSG: every map_sg is matched by an unmap_sg of the
// same id, segments and direction, after a control block was allocated.
func TestMapSGMatchedByUnmapSG(t *testing.T) {
	cfg := DefaultConfig()
	h, rec := run(t, cfg, 200_000, 0)
	live := map[dma.ID]dma.Event{}
	blocks := map[dma.ID]bool{}
	matched := 0
	for i, e := range rec.evs {
		switch e.Kind {
		case dma.Alloc:
			if e.Pool != BlockPool || e.Size != cfg.BlockSize || e.GFP != dma.GFPAtomic {
				t.Fatalf("event %d: block alloc %+v", i, e)
			}
			blocks[e.ID] = true
		case dma.MapSG:
			if len(e.Segs) < 1 || len(e.Segs) > cfg.SGTablesize {
				t.Fatalf("event %d: %d segments", i, len(e.Segs))
			}
			for _, s := range e.Segs {
				if s <= 0 || s > dma.PageSize {
					t.Fatalf("segment of %d bytes", s)
				}
			}
			live[e.ID] = e
		case dma.UnmapSG:
			m, ok := live[e.ID]
			if !ok || m.Dir != e.Dir || !slices.Equal(m.Segs, e.Segs) {
				t.Fatalf("event %d: unmap_sg of id %d does not match its map_sg", i, e.ID)
			}
			delete(live, e.ID)
			matched++
		case dma.Free:
			if !blocks[e.ID] {
				t.Fatalf("free of %d, not a block", e.ID)
			}
			delete(blocks, e.ID)
		}
	}
	if matched < 1000 || len(live) > cfg.QueueDepth {
		t.Fatalf("%d matched, %d still mapped", matched, len(live))
	}
	if h.Stats.Requeues != 0 {
		t.Fatalf("%d requeues without failures", h.Stats.Requeues)
	}
}

func TestRequeueOnMapFailure(t *testing.T) {
	h, rec := run(t, DefaultConfig(), 50_000, 97)
	if h.Stats.Requeues == 0 {
		t.Fatal("map failures did not requeue")
	}
	// After a failed map_sg, the command's block is freed at once.
	for i, err := range rec.errs {
		if err != nil && rec.evs[i].Kind == dma.MapSG {
			if i+1 >= len(rec.evs) || rec.evs[i+1].Kind != dma.Free {
				t.Fatalf("event %d: a failed map_sg is not followed by the block's free", i)
			}
		}
	}
}
