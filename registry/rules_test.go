package registry

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/dmabench/dmabench"
	"github.com/dmabench/dmabench/allocators/conformance"
	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/engine"
	"github.com/dmabench/dmabench/matrix"
	"github.com/dmabench/dmabench/workloads/trace"
)

// ruleRecorder checks every block a replay hands out against the rules of
// the request that got it: the allocator's blocks (pool alignment and
// boundary, the device's coherent mask) in one shadow, streaming buffers
// (the device's streaming mask) in another, both within where the
// platform lets the device reach.
type ruleRecorder struct {
	blocks, bufs conformance.Checker
	pools        map[[2]int]conformance.Rules
	live         map[[2]int]liveBlock
	misuse       int
}

// liveBlock is a block handed out and the trace pool it came from (NoPool
// for a direct allocation or a buffer).
type liveBlock struct {
	b    dma.Block
	pool dma.ID
}

func newRuleRecorder(p *dma.Platform, cacheLine int64) *ruleRecorder {
	r := &ruleRecorder{pools: map[[2]int]conformance.Rules{}, live: map[[2]int]liveBlock{}}
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
	case dma.PoolDestroy:
		// Blocks a driver leaked go back with the pool's pages.
		for k, l := range r.live {
			if k[0] == o.Workload && l.pool == ev.ID {
				r.blocks.Free(l.b)
				delete(r.live, k)
			}
		}
	case dma.Alloc:
		rules := conformance.Rules{Size: ev.Size, Align: ev.Align, Boundary: ev.Boundary, Mask: ev.Dev.Coherent()}
		if ev.Pool != dma.NoPool {
			pr := r.pools[[2]int{o.Workload, int(ev.Pool)}]
			rules.Align, rules.Boundary = pr.Align, pr.Boundary
		}
		r.blocks.Alloc(rules, o.Block)
		r.live[key] = liveBlock{o.Block, ev.Pool}
	case dma.Map:
		r.bufs.Alloc(conformance.Rules{Size: ev.Size, Mask: ev.Dev.Mask}, o.Block)
		r.live[key] = liveBlock{o.Block, dma.NoPool}
	case dma.Free:
		r.blocks.Free(r.live[key].b)
		delete(r.live, key)
	case dma.Unmap:
		r.bufs.Free(r.live[key].b)
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
	cfg := defaultConfig(t)
	allocs := testAllocators(t, cfg)
	b := NewBuilder(cfg)
	for _, w := range []string{"usb-uhci", "usb-ohci", "usb-ehci", "scsi", "netrx", "mixed-pressure", "hotplug-pressure", "nvme", "virtio-blk", "virtio-net", "cvm-mixed"} {
		for _, pe := range platforms {
			for _, ae := range allocs {
				c := matrix.Cell{Scenario: w, Allocator: ae.name, Platform: pe.name, Seed: 1}
				p, a, err := b.Machine(c)
				if err != nil {
					if errors.Is(err, dma.ErrUnsupported) && ae.name == "slab-direct" && (strings.HasPrefix(pe.name, "iommu") || pe.name == "cvm") {
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

// FuzzReplay: any trace the reader accepts replays through any allocator
// on any platform (the fuzzer picks both) without a panic, and every
// block and buffer it gets keeps its request's rules. Misuse is data, not
// a failure.
func FuzzReplay(f *testing.F) {
	seed := []byte("dmabench-trace 1\ndev 0 d mask=0xffffff\n" +
		"0 0 process pool_create id=0 dev=0 size=48 align=16 boundary=4096 name=td\n" +
		"1 0 process alloc id=0 pool=0 dev=0 size=48 gfp=GFP_ATOMIC\n" +
		"2 0 process map id=1 dev=0 size=70000 dir=to_device gfp=GFP_ATOMIC\n" +
		"3 0 process map_sg id=2 dev=0 dir=from_device gfp=GFP_NOIO segs=4096,512,65536\n" +
		"4 1 hardirq unmap_sg id=2 dir=from_device segs=4096,512,65536\n" +
		"5 1 hardirq unmap id=1 size=70000 dir=to_device\n" +
		"6 1 hardirq free id=0\n" +
		"7 0 process alloc id=0 pool=- dev=0 size=1073741824 gfp=GFP_KERNEL align=4096\n" +
		"8 0 process pool_destroy id=0\n")
	seeds := [][]byte{seed}
	for _, name := range []string{"../traces/usb-uhci.trace.gz", "../traces/mixed.trace.gz"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			f.Fatal(err)
		}
		head := make([]byte, 6000) // the first few dozen events
		n, _ := io.ReadFull(zr, head)
		seeds = append(seeds, head[:bytes.LastIndexByte(head[:n], '\n')+1])
	}
	allocs := modelTable()
	for pi := range platforms {
		for ai := range allocs {
			f.Add(uint8(pi), uint8(ai), seeds[(pi+ai)%len(seeds)])
		}
	}
	// Small machines: building one is most of an exec, and memory runs
	// out sooner, which takes the failure paths.
	cfg := defaultConfig(f)
	cfg.Platform.X86.RAMMiB, cfg.Platform.IOMMU.RAMMiB, cfg.Platform.SA1111.RAMMiB = 32, 32, 8
	cfg.Platform.IOMMU.ApertureMiB = 16
	f.Fuzz(func(t *testing.T, plat, alloc uint8, data []byte) {
		pe, ae := platforms[int(plat)%len(platforms)], allocs[int(alloc)%len(allocs)]
		var evs []dma.Event
		r, err := trace.NewReader("fuzz", bytes.NewReader(data))
		if err != nil {
			return
		}
		for len(evs) < 500 {
			var e dma.Event
			if err := r.Next(&e); err != nil {
				break
			}
			if e.ID > 1<<12 || e.Pool > 1<<12 {
				return // legal, but its tables take memory in proportion
			}
			e.Segs = slices.Clone(e.Segs)
			evs = append(evs, e)
		}
		p, err := pe.build(cfg, &dma.Meter{})
		if err != nil {
			t.Fatal(err)
		}
		a, err := ae.build(cfg, p)
		if err != nil {
			return // refused
		}
		cacheLine := int64(0)
		if ae.cached && !p.Coherent {
			cacheLine = p.CacheLine
		}
		rec := newRuleRecorder(p, cacheLine)
		if _, err := engine.New(p, a, rec, &dma.List{Events: evs}).Run(0); err != nil {
			t.Fatalf("%s on %s: %v", ae.name, pe.name, err)
		}
		if rec.blocks.Total() != 0 || rec.bufs.Total() != 0 {
			t.Fatalf("%s on %s: blocks %v; buffers %v", ae.name, pe.name, rec.blocks.First, rec.bufs.First)
		}
		// The same trace split into its threads, as replay runs it.
		nums, err := trace.ScanThreads(bytes.NewReader(data))
		if err != nil || len(nums) < 2 {
			return
		}
		p, _ = pe.build(cfg, &dma.Meter{})
		a, _ = ae.build(cfg, p)
		r, _ = trace.NewReader("fuzz", bytes.NewReader(data))
		rec = newRuleRecorder(p, cacheLine)
		if _, err := engine.New(p, a, rec, trace.NewSplit(r, nums, nil)).Run(int64(len(evs))); err != nil {
			var te *trace.Error
			if !errors.As(err, &te) {
				t.Fatalf("%s on %s, split: %v", ae.name, pe.name, err)
			}
		}
		if rec.blocks.Total() != 0 || rec.bufs.Total() != 0 {
			t.Fatalf("%s on %s, split: blocks %v; buffers %v", ae.name, pe.name, rec.blocks.First, rec.bufs.First)
		}
	})
}

// FuzzConfigReplays: any config that loads and validates runs: each of
// its workloads replays a few thousand events through its first allocator
// on its first platform without a panic or an error, and the blocks and
// buffers handed out keep their rules.
// go test -fuzz FuzzConfigReplays ./registry
func FuzzConfigReplays(f *testing.F) {
	f.Add([]byte("workloads: [usb-uhci, scsi, netrx]\nallocators: [dmapool]\nplatforms: [sa1111]\n"))
	f.Add([]byte("workloads: [mixed-pressure]\nallocators: [mempool]\nplatforms: [iommu]\n" +
		"allocator:\n  mempool:\n    min_nr_by_pool: {uhci_td: 3}\n"))
	f.Add([]byte("workloads: [netrx]\nallocators: [pcipool]\nplatforms: [x86]\n" +
		"workload:\n  netrx:\n    ring_size: 8\n    budget: 1\n    rx_buffers: pool\n    stack_us: 1\n"))
	f.Add([]byte("workloads: [usb-ehci, scsi]\nallocators: [slab]\nplatforms: [sa1111-1mib]\n" +
		"workload:\n  scsi:\n    queue_depth: 1\n    sg_tablesize: 1\n"))
	f.Add([]byte("workloads: [hotplug-pressure]\nallocators: [dmaalloc]\nplatforms: [x86]\nplatform:\n  x86:\n    ram_mib: 32\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := configFrom(data)
		if err != nil || cfg.Validate() != nil {
			return
		}
		b := NewBuilder(cfg)
		for _, w := range cfg.Workloads {
			c := matrix.Cell{Scenario: w, Allocator: cfg.Allocators[0], Platform: cfg.Platforms[0], Seed: 1}
			p, a, err := b.Machine(c)
			if err != nil {
				return // refused, or a machine the knobs cannot build
			}
			srcs, err := b.Sources(c)
			if err != nil {
				return
			}
			cacheLine := int64(0)
			for _, ae := range allocatorTable() {
				if ae.name == cfg.Allocators[0] && ae.cached && !p.Coherent {
					cacheLine = p.CacheLine
				}
			}
			rec := newRuleRecorder(p, cacheLine)
			if _, err := engine.New(p, a, rec, srcs...).Run(3000); err != nil {
				t.Fatalf("%v: %v", c, err)
			}
			if rec.misuse != 0 || rec.blocks.Total() != 0 || rec.bufs.Total() != 0 {
				t.Fatalf("%v: %d misused events; blocks %v; buffers %v", c, rec.misuse, rec.blocks.First, rec.bufs.First)
			}
		}
	})
}

// configFrom decodes a YAML file's text over the embedded config, as the
// command line's loader merges them.
func configFrom(data []byte) (*Config, error) {
	var def, user map[string]any
	if err := yaml.Unmarshal(dmabench.DefaultConfig, &def); err != nil {
		return nil, err
	}
	if err := yaml.Unmarshal(data, &user); err != nil {
		return nil, err
	}
	all := lowerKeys(def)
	mergeInto(all, lowerKeys(user))
	return Decode(all)
}
