package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/allocators/conformance"
	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/engine"
	"github.com/dmabench/dmabench/matrix"
)

// ruleRecorder checks every block a replay hands out against the rules of
// the request that got it: the allocator's blocks (pool alignment and
// boundary, the device's coherent mask) in one shadow, streaming buffers
// (the device's streaming mask) in another, both within where the
// platform lets the device reach.
type ruleRecorder struct {
	blocks, bufs conformance.Checker
	pools        map[[2]int]conformance.Rules
	live         map[[2]int]dma.Block
	misuse       int
}

func newRuleRecorder(p *dma.Platform, cacheLine int64) *ruleRecorder {
	r := &ruleRecorder{pools: map[[2]int]conformance.Rules{}, live: map[[2]int]dma.Block{}}
	r.blocks.Region, r.bufs.Region = p.Reachable, p.Reachable
	r.blocks.CacheLine = cacheLine
	return r
}

func (r *ruleRecorder) Record(o *engine.Outcome) {
	ev := o.Event
	if o.Misuse != engine.MisuseNone {
		r.misuse++
		return
	}
	if o.Err != nil {
		return
	}
	key := [2]int{o.Workload, int(ev.ID)}
	switch ev.Kind {
	case dma.PoolCreate:
		r.pools[key] = conformance.Rules{Align: ev.Align, Boundary: ev.Boundary}
	case dma.Alloc:
		rules := conformance.Rules{Size: ev.Size, Align: ev.Align, Boundary: ev.Boundary, Mask: ev.Dev.Coherent()}
		if ev.Pool != dma.NoPool {
			pr := r.pools[[2]int{o.Workload, int(ev.Pool)}]
			rules.Align, rules.Boundary = pr.Align, pr.Boundary
		}
		r.blocks.Alloc(rules, o.Block)
		r.live[key] = o.Block
	case dma.Map:
		r.bufs.Alloc(conformance.Rules{Size: ev.Size, Mask: ev.Dev.Mask}, o.Block)
		r.live[key] = o.Block
	case dma.Free:
		r.blocks.Free(r.live[key])
		delete(r.live, key)
	case dma.Unmap:
		r.bufs.Free(r.live[key])
		delete(r.live, key)
	}
}

// TestWorkloadsKeepTheRules replays every workload and the pressure
// scenarios through every allocator on every platform and checks each
// block and buffer handed out: no overlap, alignment, boundary, mask,
// reachability, and the allocator's own counts against what it did.
func TestWorkloadsKeepTheRules(t *testing.T) {
	events := int64(40_000)
	if testing.Short() {
		events = 8_000
	}
	b := builder{defaultConfig(t)}
	for _, w := range []string{"usb-uhci", "usb-ohci", "usb-ehci", "scsi", "netrx", "mixed-pressure", "hotplug-pressure"} {
		for _, pe := range platforms {
			for _, ae := range allocatorTable() {
				c := matrix.Cell{Scenario: w, Allocator: ae.name, Platform: pe.name, Seed: 1}
				p, a, err := b.Machine(c)
				if err != nil {
					if errors.Is(err, dma.ErrUnsupported) && ae.name == "slab-direct" && strings.HasPrefix(pe.name, "iommu") {
						continue // refused, as it must be
					}
					t.Fatalf("%v: %v", c, err)
				}
				srcs, err := b.Sources(c)
				if err != nil {
					t.Fatal(err)
				}
				cacheLine := int64(0)
				if ae.cached && !p.Coherent {
					cacheLine = p.CacheLine
				}
				rec := newRuleRecorder(p, cacheLine)
				if _, err := engine.New(p, a, rec, srcs...).Run(events); err != nil {
					t.Fatalf("%v: %v", c, err)
				}
				if rec.blocks.Allocs == 0 {
					t.Fatalf("%v: no block was handed out", c)
				}
				if sr, ok := a.(dma.StatsReporter); ok {
					rec.blocks.CheckStats(sr.Stats(), p.Meter.CoherentBytes)
				}
				if rec.misuse != 0 || rec.blocks.Total() != 0 || rec.bufs.Total() != 0 {
					t.Errorf("%s/%s/%s: %d misused events; blocks %v; buffers %v", w, ae.name, pe.name, rec.misuse, rec.blocks.First, rec.bufs.First)
				}
			}
		}
	}
}
