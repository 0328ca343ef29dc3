package registry

import (
	"reflect"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/allocators/coherent"
	"github.com/dmabench/dmabench/allocators/conformance"
	"github.com/dmabench/dmabench/allocators/dmaalloc"
	"github.com/dmabench/dmabench/allocators/dmapool"
	"github.com/dmabench/dmabench/allocators/mempool"
	"github.com/dmabench/dmabench/allocators/pcipool"
	"github.com/dmabench/dmabench/allocators/slab"
	"github.com/dmabench/dmabench/bench"
	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/engine"
	"github.com/dmabench/dmabench/matrix"
	"github.com/dmabench/dmabench/metrics"
	"github.com/dmabench/dmabench/platforms/iommu"
	"github.com/dmabench/dmabench/platforms/pagealloc"
	"github.com/dmabench/dmabench/platforms/sa1111"
	"github.com/dmabench/dmabench/platforms/x64"
	"github.com/dmabench/dmabench/platforms/x86"
	"github.com/dmabench/dmabench/workloads/netrx"
	"github.com/dmabench/dmabench/workloads/poolbench"
	"github.com/dmabench/dmabench/workloads/scsi"
	"github.com/dmabench/dmabench/workloads/usb"
)

func defaultConfig(t testing.TB) *Config {
	cfg, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestConformanceEveryAllocatorEveryPlatform runs the shared conformance
// suite for every allocator in the registry on every platform in it.
func TestConformanceEveryAllocatorEveryPlatform(t *testing.T) {
	cfg := defaultConfig(t)
	ops := 100_000
	if testing.Short() {
		ops = 10_000
	}
	allocs := testAllocators(t, cfg)
	for _, pe := range platforms {
		for _, ae := range allocs {
			t.Run(ae.name+"/"+pe.name, func(t *testing.T) {
				p, err := pe.build(cfg, &dma.Meter{})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := ae.build(cfg, p); err != nil {
					if (p.IOMMU || p.Encrypted) && ae.name == "slab-direct" {
						t.Skipf("refused as it must be: %v", err)
					}
					t.Fatal(err)
				}
				f := func() (conformance.Target, error) {
					p, err := pe.build(cfg, &dma.Meter{})
					if err != nil {
						return conformance.Target{}, err
					}
					a, err := ae.build(cfg, p)
					tg := conformance.Target{Alloc: a, Plat: p, Region: p.Reachable}
					if ae.cached && !p.Coherent {
						tg.CacheLine = p.CacheLine
					}
					return tg, err
				}
				conformance.Run(t, ae.name+" on "+pe.name, f, conformance.Options{Ops: ops}, 1, 2, 3)
			})
		}
	}
}

func newReplay(t testing.TB, workload, alloc, plat string) *engine.Engine {
	b := NewBuilder(defaultConfig(t))
	c := matrix.Cell{Scenario: workload, Allocator: alloc, Platform: plat, Seed: 1}
	srcs, err := b.Sources(c)
	if err != nil {
		t.Fatal(err)
	}
	p, a, err := b.Machine(c)
	if err != nil {
		t.Fatal(err)
	}
	return engine.New(p, a, &metrics.Recorder{}, srcs...)
}

func TestReplayWithRealModelsAllocatesNothing(t *testing.T) {
	for _, w := range []string{"usb-uhci", "usb-ohci", "usb-ehci", "scsi", "netrx", "nvme", "virtio-blk", "virtio-net"} {
		for _, ae := range allocatorTable() {
			if ae.kernel {
				continue // the kernel code's per-call cgo crossing is measured apart (host_kernel_ns_per_op)
			}
			for _, p := range []string{"x86", "sa1111", "iommu", "cvm", "swiotlb"} {
				if (p == "iommu" || p == "cvm") && ae.name == "slab-direct" {
					continue // refused behind an IOMMU and on a confidential VM
				}
				e := newReplay(t, w, ae.name, p)
				if _, err := e.Run(200_000); err != nil {
					t.Fatal(err)
				}
				if n := testing.AllocsPerRun(5, func() { e.Run(10_000) }); n != 0 {
					t.Errorf("%s/%s/%s: %v allocations per 10000 events, want 0", w, ae.name, p, n)
				}
			}
		}
	}
}

func TestCellsOrder(t *testing.T) {
	cfg := &Config{Workloads: []string{"a", "b"}, Allocators: []string{"x"}, Platforms: []string{"p", "q"}, Seeds: 2}
	got := Cells(cfg)
	var want []matrix.Cell
	for _, w := range []string{"a", "b"} {
		for _, p := range []string{"p", "q"} {
			for seed := uint64(1); seed <= 2; seed++ {
				want = append(want, matrix.Cell{Scenario: w, Allocator: "x", Platform: p, Seed: seed})
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("cells %v", got)
	}
}

// TestCoherentGFPShowsInAtomicDips: a pool that asks dma_alloc_coherent
// with GFP_ATOMIC (2002) dips into the atomic reserves where one passing
// the caller's GFP_KERNEL down does not.
func TestCoherentGFPShowsInAtomicDips(t *testing.T) {
	dips := map[string]int64{}
	for _, mode := range []string{"caller", "atomic"} {
		cfg := defaultConfig(t)
		cfg.Platform.X86.RAMMiB = 32
		cfg.Allocator.DMAPool.CoherentGFP = mode
		p, err := platforms[0].build(cfg, &dma.Meter{})
		if err != nil {
			t.Fatal(err)
		}
		a, err := BuildAllocator(cfg, "dmapool", p)
		if err != nil {
			t.Fatal(err)
		}
		dev := &dma.Device{Name: "d", Mask: dma.BitMask(32)}
		id, _ := a.CreatePool(dma.PoolSpec{Name: "big", Dev: dev, Size: 4096})
		for i := 0; i < 10000; i++ {
			if _, err := a.Alloc(id, &dma.Request{Size: 4096, GFP: dma.GFPKernel, Dev: dev}); err != nil {
				break
			}
		}
		dips[mode] = p.Meter.AtomicDips
	}
	if dips["caller"] != 0 || dips["atomic"] == 0 {
		t.Fatalf("atomic reserve dips: %v; want none when the caller's GFP_KERNEL is passed down", dips)
	}
}

// TestMapFailurePolicy: with policy bug a failed map stops the cell and
// reports when; with error the cell goes on and counts it.
func TestMapFailurePolicy(t *testing.T) {
	res := map[string]matrix.Result{}
	for _, pol := range []string{"bug", "error"} {
		cfg := defaultConfig(t)
		cfg.Platform.MapFailure = pol
		cfg.Platform.SA1111.Mode = "first-1mib"
		cfg.Platform.SA1111.RAMMiB = 8
		cfg.Workload.USB.Storage.TransferBytes = 65536
		cfg.Workload.USB.Storage.QueueDepth = 64
		res[pol] = matrix.RunCell(matrix.Cell{Scenario: "usb-ehci", Allocator: "dmapool", Platform: "sa1111", Seed: 1}, NewBuilder(cfg), 50_000)
	}
	bug, errp := res["bug"].Metrics, res["error"].Metrics
	if _, ok := bug["crash_time_ns"]; bug["crashed"] != 1 || !ok || bug["events"] >= 50_000 || bug["map_failures"] != 1 {
		t.Fatalf("bug policy: %v", bug)
	}
	if errp["crashed"] != 0 || errp["events"] != 50_000 || errp["map_failures"] < 1 {
		t.Fatalf("error policy: crashed %v events %v map failures %v", errp["crashed"], errp["events"], errp["map_failures"])
	}
}

// TestPressureShowsWhereItShould pins the platform behaviours under the
// mixed scenarios: background pressure makes atomic callers dip into the
// reserves on every platform; only the SA-1111, whose bounce buffers come
// from a little DMA-able memory with GFP_ATOMIC, fails.
func TestPressureShowsWhereItShould(t *testing.T) {
	if testing.Short() {
		t.Skip("1M-event cells")
	}
	b := NewBuilder(defaultConfig(t))
	get := func(sc, plat string) map[string]float64 {
		r := matrix.RunCell(matrix.Cell{Scenario: sc, Allocator: "dmapool", Platform: plat, Seed: 1}, b, 1_000_000)
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		return r.Metrics
	}
	for _, plat := range []string{"x86", "iommu", "sa1111"} {
		calm, loaded := get("mixed", plat), get("mixed-pressure", plat)
		if loaded["atomic_reserve_dips"] <= calm["atomic_reserve_dips"] {
			t.Errorf("%s: %v atomic reserve dips under pressure, %v without", plat, loaded["atomic_reserve_dips"], calm["atomic_reserve_dips"])
		}
		failed := loaded["atomic_failures"] + loaded["rx_drops"]
		if plat == "sa1111" && failed == 0 {
			t.Errorf("sa1111 under pressure: no atomic failures or rx drops")
		}
		if plat != "sa1111" && failed != 0 {
			t.Errorf("%s under pressure: %v atomic failures, %v rx drops", plat, loaded["atomic_failures"], loaded["rx_drops"])
		}
	}
}

// TestReserveHelpsOnlyPoolsThatGrow: under hotplug-pressure the rx pool
// keeps growing with the reader's backlog, and on the SA-1111 a mempool's
// reserve over dma_pool cuts failed ring refills; x86 never fails.
// dma_pool's failures all come early, while it grows. Under
// mixed-pressure it fails no allocation at all, so a reserve has nothing
// to catch. Where
// the DMA window is gone before the reserve can be filled (sa1111-1mib),
// the mempool's pools fail to be created and their allocations fail too:
// nothing is served from a pool that does not exist.
func TestReserveHelpsOnlyPoolsThatGrow(t *testing.T) {
	b := NewBuilder(defaultConfig(t))
	cellOf := func(scenario, alloc, plat string) map[string]float64 {
		r := matrix.RunCell(matrix.Cell{Scenario: scenario, Allocator: alloc, Platform: plat, Seed: 1}, b, 100_000)
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		return r.Metrics
	}
	get := func(alloc, plat string) map[string]float64 { return cellOf("hotplug-pressure", alloc, plat) }
	if mixed := cellOf("mixed-pressure", "dmapool", "sa1111"); mixed["alloc_failures"] != 0 || mixed["atomic_failures"] == 0 {
		t.Errorf("mixed-pressure: %v failed allocations (want 0) while %v atomic page allocations failed", mixed["alloc_failures"], mixed["atomic_failures"])
	}
	pool, reserve := get("dmapool", "sa1111"), get("mempool", "sa1111")
	if reserve["rx_refill_failures"] >= pool["rx_refill_failures"] || pool["rx_refill_failures"] == 0 {
		t.Errorf("sa1111: %v failed refills with a mempool, %v without", reserve["rx_refill_failures"], pool["rx_refill_failures"])
	}
	if x := get("mempool", "x86"); x["atomic_failures"]+x["rx_refill_failures"]+x["urb_submit_failures"] != 0 {
		t.Errorf("x86: %v atomic failures, %v failed refills, %v failed submits", x["atomic_failures"], x["rx_refill_failures"], x["urb_submit_failures"])
	}
	// A pool that keeps its pages fails only while it grows; slab, which
	// gives empty slabs back, must grow them again and fails later on.
	if slab := get("slab", "sa1111"); pool["last_alloc_failure_ms"] >= slab["last_alloc_failure_ms"] || pool["last_alloc_failure_ms"] > 0.2*pool["modeled_ms"] {
		t.Errorf("sa1111: dma_pool's last failed allocation at %v ms, slab's at %v ms, of %v ms", pool["last_alloc_failure_ms"], slab["last_alloc_failure_ms"], pool["modeled_ms"])
	}
	tiny := get("mempool", "sa1111-1mib")
	if tiny["pool_errors"] == 0 || tiny["urbs_completed"] != 0 || tiny["misuse_unknown_pool"] != 0 {
		t.Errorf("sa1111-1mib: %v pool errors, %v URBs completed, %v allocations from unknown pools", tiny["pool_errors"], tiny["urbs_completed"], tiny["misuse_unknown_pool"])
	}
}

func TestLazyBeatsStrict(t *testing.T) {
	b := NewBuilder(defaultConfig(t))
	ops := map[string]float64{}
	for _, plat := range []string{"iommu", "iommu-lazy"} {
		r := matrix.RunCell(matrix.Cell{Scenario: "usb-ehci", Allocator: "dmapool", Platform: plat, Seed: 1}, b, 200_000)
		ops[plat] = r.Metrics["modeled_ops_per_sec"]
		if plat == "iommu" && r.Metrics["iotlb_flushes"] < r.Metrics["unmaps"] {
			t.Fatalf("strict: %v flushes for %v unmaps", r.Metrics["iotlb_flushes"], r.Metrics["unmaps"])
		}
	}
	if ops["iommu-lazy"] <= ops["iommu"] {
		t.Fatalf("lazy %v ops/s, strict %v", ops["iommu-lazy"], ops["iommu"])
	}
	t.Logf("lazy/strict modeled throughput: %.2f", ops["iommu-lazy"]/ops["iommu"])
}

// TestEmbeddedConfigHasEveryKnob: the embedded config.yaml must set every
// knob to the model's documented default; a knob missing from it would
// silently decode as zero.
func TestEmbeddedConfigHasEveryKnob(t *testing.T) {
	cfg := defaultConfig(t)
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"platform.x86", cfg.Platform.X86, x86.DefaultConfig()},
		{"platform.iommu", cfg.Platform.IOMMU, iommu.DefaultConfig()},
		{"platform.sa1111", cfg.Platform.SA1111, sa1111.DefaultConfig()},
		{"platform.cvm", cfg.Platform.CVM, x64.CVMConfig()},
		{"platform.swiotlb", cfg.Platform.Swiotlb, x64.SwiotlbConfig()},
		{"platform.pressure", cfg.Platform.Pressure, pagealloc.DefaultPressure()},
		{"allocator.pcipool", cfg.Allocator.PCIPool, pcipool.DefaultConfig()},
		{"allocator.dmapool", cfg.Allocator.DMAPool, dmapool.DefaultConfig()},
		{"allocator.slab", cfg.Allocator.Slab, slab.DefaultConfig()},
		{"allocator.slab_direct", cfg.Allocator.SlabDirect, slab.DefaultConfig()},
		{"allocator.mempool", cfg.Allocator.Mempool, mempool.DefaultConfig()},
		{"allocator.dmaalloc", cfg.Allocator.DMAAlloc, dmaalloc.DefaultConfig()},
		{"allocator.coherent", cfg.Allocator.Coherent, coherent.DefaultConfig()},
		{"workload.usb", cfg.Workload.USB, usb.DefaultConfig()},
		{"workload.scsi", cfg.Workload.SCSI, scsi.DefaultConfig()},
		{"workload.netrx", cfg.Workload.NetRX, netrx.DefaultConfig()},
		{"workload.poolbench", cfg.Workload.Poolbench, poolbench.DefaultConfig()},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s in config.yaml:\n  %+v\nDefaultConfig():\n  %+v", tc.name, tc.got, tc.want)
		}
	}
}

// TestDecodedStreamReplaysTheSame: a captured stream replayed from memory
// (dma.List) on a new machine gives the modeled metrics the run that
// served it gave.
func TestDecodedStreamReplaysTheSame(t *testing.T) {
	bl := NewBuilder(defaultConfig(t))
	for _, w := range []string{"usb-uhci", "usb-ehci", "scsi", "netrx"} {
		c := matrix.Cell{Scenario: w, Allocator: "dmapool", Platform: "sa1111", Seed: 1}
		const n = 50_000
		liveRec := &metrics.Recorder{}
		srcs, _ := bl.Sources(c)
		p, a, _ := bl.Machine(c)
		if _, err := engine.New(p, a, liveRec, srcs...).Run(n); err != nil {
			t.Fatal(err)
		}
		evs, err := bench.Decoded(bl, c, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		p, a, _ = bl.Machine(c)
		rec := &metrics.Recorder{}
		if r, err := engine.New(p, a, rec, &dma.List{Events: evs}).Run(0); err != nil || r.Events != int64(len(evs)) {
			t.Fatalf("%s: replayed %d of %d: %v", w, r.Events, len(evs), err)
		}
		want, got := liveRec.Summary(metrics.Host{}), rec.Summary(metrics.Host{})
		for k, v := range want {
			if !strings.HasPrefix(k, "host") && got[k] != v {
				t.Errorf("%s: %s = %v replayed, %v served", w, k, got[k], v)
			}
		}
	}
}

// TestBrokenInvariantsReadTheSame: a model asked to free a block of a pool
// already destroyed (what the engine never passes on) stops with a
// *dma.InvariantError naming the model and its rule, never with a runtime
// error from deep inside it, nor by going on with a corrupt free list.
func TestBrokenInvariantsReadTheSame(t *testing.T) {
	cfg := defaultConfig(t)
	dev := &dma.Device{Name: "d", Mask: dma.BitMask(32)}
	for _, ae := range testAllocators(t, cfg) {
		t.Run(ae.name, func(t *testing.T) {
			p, err := platforms[0].build(cfg, &dma.Meter{})
			if err != nil {
				t.Fatal(err)
			}
			a, err := ae.build(cfg, p)
			if err != nil {
				t.Fatal(err)
			}
			d, ok := a.(dma.PoolDestroyer)
			if !ok {
				t.Skip("no pools to destroy")
			}
			id, err := a.CreatePool(dma.PoolSpec{Name: "p", Dev: dev, Size: 64, Align: 16})
			if err != nil {
				t.Fatal(err)
			}
			blk, err := a.Alloc(id, &dma.Request{Size: 64, GFP: dma.GFPKernel, Dev: dev})
			if err != nil {
				t.Fatal(err)
			}
			if err := d.DestroyPool(id); err != nil {
				t.Fatal(err)
			}
			defer func() {
				r := recover()
				if r == nil {
					return // the model tolerates it (a wrapper whose pool outlives the destroy)
				}
				if ie, ok := r.(*dma.InvariantError); !ok || ie.Owner == "" || ie.Rule == "" {
					t.Fatalf("panicked with %T %v, want a *dma.InvariantError", r, r)
				}
			}()
			a.Free(blk)
			if s, ok := a.(dma.StatsReporter); ok {
				s.Stats()
			}
		})
	}
}
