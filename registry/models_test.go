package registry

import (
	"testing"

	"github.com/dmabench/dmabench/matrix"
)

// The knobs that show the trade-offs of the 2002 debate, each pinned by
// the difference it must make.

// TestMapFailurePerDriver: a driver's own map_failure overrides the
// platform's, both ways: a careless driver crashes a machine whose rule
// is error returns, a careful one survives a machine whose rule is BUG().
func TestMapFailurePerDriver(t *testing.T) {
	for _, tc := range []struct {
		platform, driver string
		crashed          float64
	}{
		{"bug", "", 1}, {"error", "", 0}, {"error", "bug", 1}, {"bug", "error", 0},
	} {
		cfg := defaultConfig(t)
		cfg.Platform.MapFailure = tc.platform
		cfg.Platform.SA1111.Mode = "first-1mib"
		cfg.Platform.SA1111.RAMMiB = 8
		cfg.Workload.USB.Storage.TransferBytes = 65536
		cfg.Workload.USB.Storage.QueueDepth = 64
		cfg.Workload.USB.MapFailure = tc.driver
		r := matrix.RunCell(matrix.Cell{Scenario: "usb-ehci", Allocator: "dmapool", Platform: "sa1111", Seed: 1}, NewBuilder(cfg), 50_000)
		if r.Err != nil || r.Metrics["crashed"] != tc.crashed {
			t.Errorf("platform %s, driver %q: crashed %v (%v), want %v", tc.platform, tc.driver, r.Metrics["crashed"], r.Err, tc.crashed)
		}
	}
}

// TestAllocateDontMap: usb storage taking its buffers once from DMA-able
// memory bounces nothing on the SA-1111, where mapping each URB bounces.
func TestAllocateDontMap(t *testing.T) {
	for mode, bounced := range map[string]bool{"map": true, "alloc": false} {
		cfg := defaultConfig(t)
		cfg.Workload.USB.Storage.DataBuffers = mode
		r := matrix.RunCell(matrix.Cell{Scenario: "usb-ehci", Allocator: "dmapool", Platform: "sa1111", Seed: 1}, NewBuilder(cfg), 20_000)
		if r.Err != nil || (r.Metrics["bounce_maps"] > 0) != bounced || r.Metrics["urbs_completed"] == 0 {
			t.Errorf("%s: bounce maps %v, urbs %v (%v)", mode, r.Metrics["bounce_maps"], r.Metrics["urbs_completed"], r.Err)
		}
	}
}

// TestSlabAgainstSlabDirect: the costs that separate the two designs. On
// a coherent x86 slab-direct wins: the slab over coherent pages looks up
// each object's DMA address. On the SA-1111 slab-direct's cached objects
// need their lines cleaned and invalidated, more than the slab pays for
// its uncached pages, and slab wins for usb-uhci's small TDs.
func TestSlabAgainstSlabDirect(t *testing.T) {
	cfg := defaultConfig(t)
	get := func(a, p string) map[string]float64 {
		r := matrix.RunCell(matrix.Cell{Scenario: "usb-uhci", Allocator: a, Platform: p, Seed: 1}, NewBuilder(cfg), 30_000)
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		return r.Metrics
	}
	slab, direct := get("slab", "x86"), get("slab-direct", "x86")
	if !(slab["modeled_cpu_ns"] > direct["modeled_cpu_ns"]) {
		t.Errorf("x86: slab %v ns, slab-direct %v ns: the slab's DMA address lookups should cost", slab["modeled_cpu_ns"], direct["modeled_cpu_ns"])
	}
	slab, direct = get("slab", "sa1111"), get("slab-direct", "sa1111")
	if !(direct["cache_lines_maintained"] > slab["cache_lines_maintained"] && direct["modeled_cpu_ns"] > slab["modeled_cpu_ns"]) {
		t.Errorf("sa1111: lines %v / %v, ns %v / %v (slab-direct / slab): slab-direct's cache maintenance should cost more",
			direct["cache_lines_maintained"], slab["cache_lines_maintained"], direct["modeled_cpu_ns"], slab["modeled_cpu_ns"])
	}
}

// TestCachelineSharing: with dma_get_cache_alignment() below the SA-1111's
// 32-byte line, slab-direct's objects share lines and the model counts
// them; at the line, none do.
func TestCachelineSharing(t *testing.T) {
	for align, shared := range map[int64]bool{0: false, 32: false, 8: true} {
		cfg := defaultConfig(t)
		cfg.Platform.SA1111.DMACacheAlignment = align
		r := matrix.RunCell(matrix.Cell{Scenario: "usb-uhci", Allocator: "slab-direct", Platform: "sa1111", Seed: 1}, NewBuilder(cfg), 20_000)
		if r.Err != nil || (r.Metrics["cacheline_overlaps"] > 0) != shared {
			t.Errorf("dma_cache_alignment %d: %v overlaps (%v)", align, r.Metrics["cacheline_overlaps"], r.Err)
		}
	}
}

// TestGFPSemantics: what a sleeping request does when reclaim finds
// nothing (platform.pressure.gfp_semantics), where it decides a
// comparison; and what asking dma_alloc_coherent with GFP_ATOMIC does
// there. The default run's ohci-1mib scenarios: OHCI's TDs come from the
// SA-1111's 1 MiB of DMA-able RAM under GFP_NOIO, which the bounce
// buffers also use. A modern kernel fails them (no OOM kill for lowmem),
// a 2002 kernel loops until bounce buffers come back, and dma_pool fails
// nothing; asked atomically, they may go further below the min watermark
// and fail nothing either. dmapool_test's 4 MiB of GFP_KERNEL blocks on a
// 32 MiB PC whose tasks hold 28 MiB: a modern kernel has the OOM killer
// kill at once, a 2002 one after 1.18 s of looping (ten failures over a
// second).
func TestGFPSemantics(t *testing.T) {
	b := NewBuilder(defaultConfig(t))
	ohci := func(scenario string) map[string]float64 {
		r := matrix.RunCell(matrix.Cell{Scenario: scenario, Allocator: "dmapool", Platform: "sa1111", Seed: 1}, b, 100_000)
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		return r.Metrics
	}
	if m := ohci("ohci-1mib"); m["alloc_failures"] == 0 || m["reclaim_retry_sleeps"] != 0 {
		t.Errorf("modern: %v failures, %v retry sleeps; want failures and no sleeps", m["alloc_failures"], m["reclaim_retry_sleeps"])
	}
	if m := ohci("ohci-1mib-2002"); m["alloc_failures"] != 0 || m["reclaim_retry_sleeps"] == 0 || m["urbs_completed"] == 0 {
		t.Errorf("2002: %v failures, %v retry sleeps, %v URBs; want no failures and sleeps", m["alloc_failures"], m["reclaim_retry_sleeps"], m["urbs_completed"])
	}
	if m := ohci("ohci-1mib-atomic"); m["alloc_failures"] != 0 || m["atomic_reserve_dips"] == 0 {
		t.Errorf("coherent_gfp atomic: %v failures, %v dips; want none and dips", m["alloc_failures"], m["atomic_reserve_dips"])
	}
	for _, tc := range []struct {
		sem     string
		waitMax float64
	}{{"modern", 0}, {"2002", 1.18e9}} {
		cfg := defaultConfig(t)
		cfg.Platform.Pressure.GFPSemantics = tc.sem
		cfg.Platform.Pressure.AnonMiB = 28
		cfg.Platform.X86.RAMMiB = 32
		cfg.Workload.Poolbench.Sizes = []int64{4096}
		r := matrix.RunCell(matrix.Cell{Scenario: "poolbench/size=4096", Allocator: "dmapool", Platform: "x86", Seed: 1}, NewBuilder(cfg), 20_000)
		m := r.Metrics
		if r.Err != nil || m["oom_kills"] != 1 || m["alloc_failures"] != 0 || m["crashed"] != 0 || m["wait_max_ns"] != tc.waitMax {
			t.Errorf("%s: %v kills, %v failures, crashed %v, longest wait %v ns (%v); want 1 kill, longest wait %v",
				tc.sem, m["oom_kills"], m["alloc_failures"], m["crashed"], m["wait_max_ns"], r.Err, tc.waitMax)
		}
	}
}

// TestMempoolResize: the hotplug-resize scenario grows every mempool's
// reserve to 64 elements 310 ms in; the mempool then holds more, and the
// other allocators, which have no reserve, see the same run as
// hotplug-pressure.
func TestMempoolResize(t *testing.T) {
	cfg := defaultConfig(t)
	b := NewBuilder(cfg)
	get := func(s, a string) map[string]float64 {
		r := matrix.RunCell(matrix.Cell{Scenario: s, Allocator: a, Platform: "x86", Seed: 1}, b, 30_000)
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		return r.Metrics
	}
	grown, plain := get("hotplug-resize", "mempool"), get("hotplug-pressure", "mempool")
	if grown["peak_reserved_bytes"] <= plain["peak_reserved_bytes"] || grown["mempool_resize_short"] != 0 {
		t.Errorf("mempool: reserved %v after the resize against %v without, %v short", grown["peak_reserved_bytes"], plain["peak_reserved_bytes"], grown["mempool_resize_short"])
	}
	if d1, d2 := get("hotplug-resize", "dmapool"), get("hotplug-pressure", "dmapool"); d1["modeled_cpu_ns"] != d2["modeled_cpu_ns"] || d1["peak_reserved_bytes"] != d2["peak_reserved_bytes"] {
		t.Errorf("dmapool differs between the two scenarios: %v/%v ns, %v/%v bytes", d1["modeled_cpu_ns"], d2["modeled_cpu_ns"], d1["peak_reserved_bytes"], d2["peak_reserved_bytes"])
	}
}
