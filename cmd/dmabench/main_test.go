package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/allocators/coherent"
	"github.com/dmabench/dmabench/allocators/conformance"
	"github.com/dmabench/dmabench/allocators/dmaalloc"
	"github.com/dmabench/dmabench/allocators/dmapool"
	"github.com/dmabench/dmabench/allocators/mempool"
	"github.com/dmabench/dmabench/allocators/pcipool"
	"github.com/dmabench/dmabench/allocators/slab"
	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/engine"
	"github.com/dmabench/dmabench/matrix"
	"github.com/dmabench/dmabench/metrics"
	"github.com/dmabench/dmabench/platforms/iommu"
	"github.com/dmabench/dmabench/platforms/pagealloc"
	"github.com/dmabench/dmabench/platforms/sa1111"
	"github.com/dmabench/dmabench/platforms/x86"
	"github.com/dmabench/dmabench/workloads/netrx"
	"github.com/dmabench/dmabench/workloads/poolbench"
	"github.com/dmabench/dmabench/workloads/scsi"
	"github.com/dmabench/dmabench/workloads/usb"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestList(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want []string
	}{
		{"allocators", []string{"pcipool", "dmapool", "slab", "slab-direct", "mempool", "dmaalloc", "coherent"}},
		{"platforms", []string{"x86", "iommu", "sa1111"}},
		{"workloads", []string{"usb-uhci", "usb-ohci", "usb-ehci", "poolbench"}},
	} {
		code, out, _ := run(t, "list", tc.arg)
		if code != 0 {
			t.Fatalf("list %s: exit %d", tc.arg, code)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("list %s does not show %s:\n%s", tc.arg, w, out)
			}
		}
	}
	if code, _, _ := run(t, "list", "widgets"); code != 2 {
		t.Fatalf("list widgets: exit %d, want 2", code)
	}
}

type resultsFile struct {
	Traces map[string]string `json:"traces"`
	Schema string            `json:"schema"`
	Tool   map[string]any    `json:"tool"`
	Host   map[string]any    `json:"host"`
	Config map[string]any    `json:"config"`
	Cells  []matrix.Result   `json:"cells"`
}

func readResults(t *testing.T, path string) resultsFile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r resultsFile
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRunWritesResults(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := run(t, "run", "-w", "usb-uhci,usb-ohci,usb-ehci", "-a", "dmapool", "-p", "x86", "-n", "20000", "-s", "2", "--out", dir, "--name", "r")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "usb-uhci") || !strings.Contains(out, "modeled Mops/s") {
		t.Fatalf("table missing rows or headers:\n%s", out)
	}
	r := readResults(t, filepath.Join(dir, "r.json"))
	if r.Schema != "dmabench/results/v1" || r.Tool["version"] == "" || r.Host["cpus"] == nil {
		t.Fatalf("header: %+v %+v %+v", r.Schema, r.Tool, r.Host)
	}
	if len(r.Cells) != 6 {
		t.Fatalf("%d cells, want 3 workloads x 2 seeds", len(r.Cells))
	}
	keys := []string{"events", "allocs", "frees", "alloc_failures", "failure_rate", "atomic_share", "peak_live_bytes",
		"peak_reserved_bytes", "frag_internal", "frag_peak_ratio", "host_ns_per_op", "modeled_ops_per_sec"}
	for _, c := range r.Cells {
		for _, k := range keys {
			if _, ok := c.Metrics[k]; !ok {
				t.Fatalf("cell %s lacks %s", c.Cell, k)
			}
		}
		if c.Metrics["events"] != 20000 || c.Metrics["allocs"] == 0 {
			t.Fatalf("cell %s: %v", c.Cell, c.Metrics)
		}
		if c.Scenario == "usb-uhci" && c.Metrics["atomic_share"] < 0.99 {
			t.Fatalf("UHCI TDs are GFP_ATOMIC, atomic share %v", c.Metrics["atomic_share"])
		}
		if f := c.Metrics["frag_internal"]; f < 0 || f > 1 {
			t.Fatalf("frag_internal %v out of [0,1]", f)
		}
	}
	if r.Config["events"].(float64) != 20000 {
		t.Fatalf("config in results does not show the flag's value: %v", r.Config["events"])
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*tmp"))
	if len(leftovers) > 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
}

func modeled(t *testing.T, path string) []byte {
	r := readResults(t, path)
	for _, c := range r.Cells {
		for k := range c.Metrics {
			if strings.HasPrefix(k, "host_") {
				delete(c.Metrics, k)
			}
		}
	}
	b, _ := json.Marshal(r.Cells)
	return b
}

func TestSameSeedSameResultsAtAnyParallelism(t *testing.T) {
	dir := t.TempDir()
	for _, j := range []string{"1", "2"} {
		if code, _, errs := run(t, "run", "-w", "usb-uhci,scsi,netrx,mixed-pressure", "-p", "x86,iommu,sa1111", "-n", "30000", "-s", "2", "-j", j, "--out", dir, "--name", "j"+j, "-f", "json"); code != 0 {
			t.Fatalf("-j%s: exit %d %s", j, code, errs)
		}
	}
	a, b := modeled(t, filepath.Join(dir, "j1.json")), modeled(t, filepath.Join(dir, "j2.json"))
	if !bytes.Equal(a, b) {
		t.Fatalf("modeled metrics differ between -j1 and -j2:\n%s\n%s", a, b)
	}
}

func TestBadInputExits2(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("seeds: 2\nplatform:\n  x86:\n    rma_mib: 128\n"), 0o644)
	notYAML := filepath.Join(dir, "broken.yaml")
	os.WriteFile(notYAML, []byte("seeds: [1,\n"), 0o644)
	badValue := filepath.Join(dir, "value.yaml")
	os.WriteFile(badValue, []byte("platform:\n  x86:\n    ram_mib: 1\n"), 0o644)
	badType := filepath.Join(dir, "type.yaml")
	os.WriteFile(badType, []byte("seeds: 1\nplatform:\n  x86:\n    ram_mib: lots\n"), 0o644)
	badSet := filepath.Join(dir, "set.yaml")
	os.WriteFile(badSet, []byte("scenario:\n  s:\n    workloads: [netrx]\n    workload:\n      netrx:\n        rx_bufers: pool\n"), 0o644)
	badSetValue := filepath.Join(dir, "setvalue.yaml")
	os.WriteFile(badSetValue, []byte("scenario:\n  s:\n    workloads: [netrx]\n    workload:\n      netrx:\n        rx_buffers: ring\n"), 0o644)
	// A run-level knob every scenario inherits is reported as itself.
	badKnob := filepath.Join(dir, "knob.yaml")
	os.WriteFile(badKnob, []byte("workload:\n  usb:\n    storage:\n      queue_depth: -3\n"), 0o644)
	badStart := filepath.Join(dir, "start.yaml")
	os.WriteFile(badStart, []byte("scenario:\n  late:\n    workloads: [scsi]\n    start_ms: {netrx: 5}\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"run", "-a", "nosuch"}, []string{`unknown allocator "nosuch"`, "dmapool"}},
		{[]string{"run", "-w", "usb-xhci"}, []string{`unknown workload "usb-xhci"`, "usb-uhci, usb-ohci, usb-ehci"}},
		{[]string{"run", "-p", "vax"}, []string{`unknown platform "vax"`, "x86"}},
		{[]string{"run", "-c", bad}, []string{"bad.yaml:4", `"platform.x86.rma_mib"`, "ram_mib"}},
		{[]string{"run", "-c", notYAML}, []string{"broken.yaml"}},
		{[]string{"run", "-c", badValue}, []string{"value.yaml:3: platform.x86.ram_mib:", "ram_mib 1"}},
		{[]string{"run", "-c", filepath.Join(dir, "missing.yaml")}, []string{"missing.yaml"}},
		{[]string{"run", "-c", badType}, []string{"type.yaml:4", "platform.x86.ram_mib", "cannot parse"}},
		{[]string{"run", "-c", badSet}, []string{"set.yaml:6", `"scenario.s.workload.netrx.rx_bufers"`}},
		{[]string{"run", "-c", badSetValue}, []string{"scenario.s:", `rx_buffers "ring"`}},
		{[]string{"run", "-c", badKnob}, []string{"knob.yaml:4: workload.usb.storage.queue_depth: usb.storage.queue_depth -3"}},
		{[]string{"run", "-c", badStart}, []string{"start.yaml:4", "scenario.late.start_ms.netrx", "not one of the scenario's workloads (scsi)"}},
		{[]string{"run", "--bogus"}, []string{"bogus"}},
		{[]string{"run", "-s", "0"}, []string{"seeds 0"}},
		{[]string{"run", "-f", "xml"}, []string{`format "xml"`, "table, markdown, csv, json, benchfmt, gha"}},
		{[]string{"frobnicate"}, []string{"unknown command"}},
	} {
		code, _, errs := run(t, append(tc.args, "--out", filepath.Join(dir, "out"))...)
		if tc.args[0] == "frobnicate" {
			code, _, errs = run(t, tc.args...)
		}
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", tc.args, code, errs)
		}
		for _, w := range tc.want {
			if !strings.Contains(errs, w) {
				t.Errorf("%v: message %q lacks %q", tc.args, errs, w)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Fatal("a failed run wrote results")
	}
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	os.WriteFile(file, []byte("seeds: 2\nevents: 5000\nworkloads: [usb-ehci]\nallocators: [dmapool]\nplatforms: [x86]\n"), 0o644)
	t.Setenv("DMABENCH_SEEDS", "3")
	t.Setenv("DMABENCH_PLATFORM_X86_RAM_MIB", "512")
	code, _, errs := run(t, "run", "-c", file, "-n", "4000", "--out", dir, "--name", "p")
	if code != 0 {
		t.Fatal(errs)
	}
	r := readResults(t, filepath.Join(dir, "p.json"))
	// flag (events) > env (seeds, ram) > file (workloads) > embedded.
	if len(r.Cells) != 3 || r.Cells[0].Metrics["events"] != 4000 || r.Cells[0].Scenario != "usb-ehci" {
		t.Fatalf("cells %d events %v scenario %s", len(r.Cells), r.Cells[0].Metrics["events"], r.Cells[0].Scenario)
	}
	ram := r.Config["platform"].(map[string]any)["x86"].(map[string]any)["ram_mib"]
	if ram.(float64) != 512 {
		t.Fatalf("env did not override the file: ram_mib %v", ram)
	}
	t.Setenv("DMABENCH_SEEDZ", "1")
	if code, _, errs := run(t, "run", "--out", dir); code != 2 || !strings.Contains(errs, "DMABENCH_SEEDZ") {
		t.Fatalf("misspelled env: exit %d %s", code, errs)
	}
}

func defaultConfig(t testing.TB) *Config {
	cfg, err := loadConfig("", nil)
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
	for _, pe := range platforms {
		for _, ae := range allocatorTable() {
			t.Run(ae.name+"/"+pe.name, func(t *testing.T) {
				p, err := pe.build(cfg, &dma.Meter{})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := ae.build(cfg, p); err != nil {
					if p.IOMMU && ae.name == "slab-direct" {
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
	b := builder{defaultConfig(t)}
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
	for _, w := range []string{"usb-uhci", "usb-ohci", "usb-ehci", "scsi", "netrx"} {
		for _, ae := range allocatorTable() {
			for _, p := range []string{"x86", "sa1111", "iommu"} {
				if p == "iommu" && ae.name == "slab-direct" {
					continue // refused behind an IOMMU
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

// BenchmarkReplay replays usb-uhci against dmapool on x86 with full
// metrics, one event per iteration.
func BenchmarkReplay(b *testing.B) {
	for _, w := range []string{"usb-uhci", "usb-ehci"} {
		b.Run(w+"/dmapool/x86", func(b *testing.B) { benchReplay(b, w, "dmapool", "x86") })
	}
}

// decodedStreams holds BenchmarkReplayDecoded's streams by workload.
var decodedStreams = map[string][]dma.Event{}

// BenchmarkReplayDecoded replays the stream a workload served against
// dmapool on x86, pre-decoded in memory, against dmapool on x86 with full
// metrics, one event per iteration: the replay without the workload's
// generation.
func BenchmarkReplayDecoded(b *testing.B) {
	for _, w := range []string{"usb-uhci", "usb-ehci"} {
		b.Run(w+"/dmapool/x86", func(b *testing.B) {
			bl := builder{defaultConfig(b)}
			c := matrix.Cell{Scenario: w, Allocator: "dmapool", Platform: "x86", Seed: 1}
			evs := decodedStreams[w]
			if evs == nil {
				// Once: the benchmark function runs again for each b.N.
				var err error
				if evs, err = decoded(bl, c, 1_000_000, nil); err != nil {
					b.Fatal(err)
				}
				decodedStreams[w] = evs
				runtime.GC() // the capture's garbage is not the replay's
			}
			b.ReportAllocs()
			b.ResetTimer()
			for left := int64(b.N); left > 0; {
				// Each pass over the stream on a machine of its own.
				b.StopTimer()
				p, a, err := bl.Machine(c)
				if err != nil {
					b.Fatal(err)
				}
				e := engine.New(p, a, &metrics.Recorder{}, &dma.List{Events: evs})
				runtime.GC() // so that no collection of the setup's garbage runs in the replay
				b.StartTimer()
				r, err := replayPass(e, min(left, int64(len(evs))))
				if err != nil || r.Events == 0 {
					b.Fatal(r.Events, err)
				}
				left -= r.Events
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// replayPass is the timed part of BenchmarkReplayDecoded, a function of
// its own so that a profiler can count it alone (valgrind --tool=callgrind
// --toggle-collect='*replayPass*').
//
//go:noinline
func replayPass(e *engine.Engine, n int64) (engine.Result, error) { return e.Run(n) }

// benchReplay times one event per iteration of a replay warmed up by
// 100,000 events.
func benchReplay(b *testing.B, workload, alloc, plat string) {
	e := newReplay(b, workload, alloc, plat)
	e.Run(100_000)
	b.ReportAllocs()
	b.ResetTimer()
	e.Run(int64(b.N))
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func TestCellsOrder(t *testing.T) {
	cfg := &Config{Workloads: []string{"a", "b"}, Allocators: []string{"x"}, Platforms: []string{"p", "q"}, Seeds: 2}
	got := cells(cfg)
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
		a, err := buildAllocator(cfg, "dmapool", p)
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
		res[pol] = matrix.RunCell(matrix.Cell{Scenario: "usb-ehci", Allocator: "dmapool", Platform: "sa1111", Seed: 1}, builder{cfg}, 50_000)
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
	b := builder{defaultConfig(t)}
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
	b := builder{defaultConfig(t)}
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
	b := builder{defaultConfig(t)}
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

// BenchmarkAllocators replays usb-ehci on x86 against each allocator
// model, one event per iteration, with full metrics.
func BenchmarkAllocators(b *testing.B) {
	for _, ae := range allocatorTable() {
		b.Run(ae.name, func(b *testing.B) { benchReplay(b, "usb-ehci", ae.name, "x86") })
	}
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

// TestColumns: --columns adds metrics to the table and Markdown outputs,
// from the flag or the environment, and a name no cell reports is named
// on stderr.
func TestColumns(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := run(t, "run", "-w", "netrx", "-a", "dmapool", "-p", "x86", "-n", "5000", "-f", "markdown", "--columns", "rx_packets,nosuch", "--out", dir, "--name", "c")
	if code != 0 {
		t.Fatal(errs)
	}
	if !strings.Contains(out, "| rx_packets | nosuch |") || !strings.Contains(errs, `column "nosuch"`) {
		t.Fatalf("output:\n%s\nstderr:\n%s", out, errs)
	}
	t.Setenv("DMABENCH_COLUMNS", "rx_drops")
	code, out, errs = run(t, "run", "-w", "netrx", "-a", "dmapool", "-p", "x86", "-n", "5000", "--out", dir, "--name", "d")
	if code != 0 || !strings.Contains(out, "rx_drops") || strings.Contains(errs, "column") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
}

// TestScenarioSetsKnobs: a scenario's own sections set knobs for its cells
// only, on top of what the run was given (here the environment).
func TestScenarioSetsKnobs(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	os.WriteFile(file, []byte("scenario:\n  pooled:\n    workloads: [netrx]\n    workload:\n      netrx:\n        rx_buffers: pool\n"), 0o644)
	t.Setenv("DMABENCH_WORKLOAD_NETRX_RING_SIZE", "128")
	cfg, err := loadConfig(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	own, run := cfg.forScenario("pooled").Workload.NetRX, cfg.Workload.NetRX
	if own.RxBuffers != "pool" || own.RingSize != 128 || run.RxBuffers != "map" || run.RingSize != 128 {
		t.Fatalf("scenario netrx %+v, run netrx %+v", own, run)
	}
	if cfg.forScenario("netrx") != cfg {
		t.Fatal("a workload without settings of its own got a config of its own")
	}
}

// TestCPUProfile: --cpuprofile writes a profile pprof can read, for any
// command; a path that cannot be created is a usage error.
func TestCPUProfile(t *testing.T) {
	prof := filepath.Join(t.TempDir(), "cpu.prof")
	code, _, errs := run(t, "run", "-w", "usb-ehci", "-a", "dmapool", "-p", "x86", "-n", "20000", "--out", t.TempDir(), "--cpuprofile", prof)
	if code != 0 {
		t.Fatal(errs)
	}
	// A pprof profile is a gzipped protocol buffer.
	data, err := os.ReadFile(prof)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("the profile is not gzip: %v", err)
	}
	if body, err := io.ReadAll(zr); err != nil || len(body) == 0 {
		t.Fatalf("the profile is empty or truncated: %d bytes, %v", len(body), err)
	}
	if code, _, errs := run(t, "list", "--cpuprofile", filepath.Join(t.TempDir(), "no", "such", "dir", "p")); code != 2 || !strings.Contains(errs, "--cpuprofile") {
		t.Fatalf("bad profile path: exit %d, %q", code, errs)
	}
}

// TestDecodedStreamReplaysTheSame: a captured stream replayed from memory
// (dma.List) on a new machine gives the modeled metrics the run that
// served it gave.
func TestDecodedStreamReplaysTheSame(t *testing.T) {
	bl := builder{defaultConfig(t)}
	for _, w := range []string{"usb-uhci", "usb-ehci", "scsi", "netrx"} {
		c := matrix.Cell{Scenario: w, Allocator: "dmapool", Platform: "sa1111", Seed: 1}
		const n = 50_000
		liveRec := &metrics.Recorder{}
		srcs, _ := bl.Sources(c)
		p, a, _ := bl.Machine(c)
		if _, err := engine.New(p, a, liveRec, srcs...).Run(n); err != nil {
			t.Fatal(err)
		}
		evs, err := decoded(bl, c, n, nil)
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
