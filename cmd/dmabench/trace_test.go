package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/ftrace"
	"github.com/dmabench/dmabench/matrix"
	"github.com/dmabench/dmabench/registry"
	"github.com/dmabench/dmabench/workloads/trace"
)

// engineKeys are the metrics a trace reproduces (workload counters such as
// urb_submit_failures belong to the generator, not to the trace).
var engineKeys = []string{"events", "allocs", "frees", "alloc_failures", "failure_rate", "atomic_share", "maps", "unmaps",
	"map_failures", "peak_live_bytes", "peak_reserved_bytes", "peak_mapped_bytes", "frag_internal", "frag_peak_ratio",
	"modeled_cpu_ns", "modeled_ops_per_sec", "latency_p50_ns", "latency_p99_ns", "latency_max_ns", "atomic_reserve_dips",
	"bounce_maps", "bounce_bytes", "iotlb_flushes", "iova_peak_bytes", "sg_segments", "sg_entries"}

func TestRecordThenReplayMatchesDirectRun(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ w, p, a string }{
		{"usb-ehci", "x86", "dmapool"},
		{"mixed-pressure", "sa1111", "slab"}, // the scenario's pressure travels in the trace's knobs
		{"scsi", "iommu", "mempool"},
	} {
		tr := filepath.Join(dir, tc.w+".trace.gz")
		if code, _, errs := run(t, "record", "-w", tc.w, "-p", tc.p, "-a", tc.a, "-n", "30000", "-s", "7", "-o", tr); code != 0 {
			t.Fatalf("record: %s", errs)
		}
		if code, _, errs := run(t, "replay", tr, "-p", tc.p, "-a", tc.a, "--out", dir, "--name", "replayed"); code != 0 {
			t.Fatal(errs)
		}
		rep := readResults(t, filepath.Join(dir, "replayed.json"))
		if len(rep.Cells) != 1 || rep.Cells[0].Metrics["events"] != 30000 {
			t.Fatalf("%s: replay cells %+v", tc.w, rep.Cells)
		}
		if sum := rep.Traces[tr]; !strings.HasPrefix(sum, "sha256:") {
			t.Fatalf("results do not name the trace's checksum: %v", rep.Traces)
		}
		direct := directCell(t, dir, tc.w, tc.p, tc.a, 7)
		for _, k := range engineKeys {
			if direct[k] != rep.Cells[0].Metrics[k] {
				t.Errorf("%s on %s/%s: %s direct %v, replayed %v", tc.w, tc.p, tc.a, k, direct[k], rep.Cells[0].Metrics[k])
			}
		}
	}
}

// directCell runs the workload itself with the seed record used.
func directCell(t *testing.T, _ string, w, p, a string, seed uint64) map[string]float64 {
	t.Helper()
	res := matrix.RunCell(matrix.Cell{Scenario: w, Allocator: a, Platform: p, Seed: seed}, registry.NewBuilder(defaultConfig(t)), 30000)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	return res.Metrics
}

func TestBadTraceExits2AndWritesNothing(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.trace")
	os.WriteFile(bad, []byte("dmabench-trace 1\ndev 0 d mask=0xffffffff\n0 0 process alloc id=1 pool=- dev=0 size=-1 gfp=GFP_KERNEL\n"), 0o644)
	out := filepath.Join(dir, "out")
	code, _, errs := run(t, "replay", bad, "-a", "dmapool", "-p", "x86", "--out", out)
	if code != 2 || !strings.Contains(errs, "bad.trace:3: size:") {
		t.Fatalf("exit %d, message %q", code, errs)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a results folder appeared for a bad trace")
	}
	if code, _, errs := run(t, "run", "-w", "trace:"+filepath.Join(dir, "missing.trace"), "--out", out); code != 2 || !strings.Contains(errs, "missing.trace") {
		t.Fatalf("missing trace: exit %d %q", code, errs)
	}
}

func TestMisuseListedWithLines(t *testing.T) {
	dir := t.TempDir()
	tr := filepath.Join(dir, "misuse.trace")
	os.WriteFile(tr, []byte(`dmabench-trace 1
dev 0 nic mask=0xffffffff
0 0 process alloc id=1 pool=- dev=0 size=64 gfp=GFP_KERNEL
1 0 process free id=1
2 0 process free id=1
3 0 softirq free id=9
4 0 softirq map id=2 dev=0 size=2048 dir=from_device gfp=GFP_ATOMIC
5 0 softirq unmap id=2 size=1024 dir=from_device
6 0 process alloc id=3 pool=- dev=0 size=64 gfp=GFP_KERNEL
`), 0o644)
	if code, _, errs := run(t, "replay", tr, "-a", "dmapool", "-p", "x86", "--out", dir, "--name", "m"); code != 0 {
		t.Fatal(errs)
	}
	r := readResults(t, filepath.Join(dir, "m.json"))
	m := r.Cells[0].Metrics
	if m["misuse_double_free"] != 1 || m["misuse_unknown_free"] != 1 || m["misuse_mismatch"] != 1 || m["leaks"] != 1 {
		t.Fatalf("misuse counts %v %v %v leaks %v", m["misuse_double_free"], m["misuse_unknown_free"], m["misuse_mismatch"], m["leaks"])
	}
	lines := map[int64]string{}
	for _, e := range r.Cells[0].Misuse {
		lines[e.Line] = e.Kind
	}
	if lines[5] != "double_free" || lines[6] != "unknown_free" || lines[8] != "mismatch" {
		t.Fatalf("misuse by line: %v", lines)
	}
	if len(r.Cells[0].Leaks) != 1 || r.Cells[0].Leaks[0].Line != 9 {
		t.Fatalf("leaks %+v, want the alloc on line 9", r.Cells[0].Leaks)
	}
}

// TestShippedTracesReplay: every trace in traces/ replays on the default
// build without errors or misuse.
// TestTraceWinnerIsExact: a trace replays alike for every seed, so a
// difference between two designs over it is exact with one seed, and
// named as such; a generated workload's single seed stays untested.
func TestTraceWinnerIsExact(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := run(t, "replay", "../../traces/kmem-slab-3.6-i386.trace.gz", "-a", "dmapool,dmaalloc", "-p", "x86", "--out", dir, "--name", "t")
	if code != 0 || !strings.Contains(out, "better than dmapool, exact for the trace") || strings.Contains(out, "untested (") {
		t.Fatalf("trace: exit %d %s\n%s", code, errs, out)
	}
	code, out, errs = run(t, "run", "-w", "usb-ehci", "-a", "dmapool,dmaalloc", "-p", "x86", "-n", "20000", "--out", dir, "--name", "g")
	if code != 0 || strings.Contains(out, "exact for the trace") || !strings.Contains(out, "untested (1 seed)") {
		t.Fatalf("generated: exit %d %s\n%s", code, errs, out)
	}
}

// TestEmptyTraceSaysSo: a trace with no event replays (it is a legal
// file), and the summary says its cells measured nothing.
func TestEmptyTraceSaysSo(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.trace")
	if err := os.WriteFile(empty, []byte("dmabench-trace 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := run(t, "replay", empty, "-a", "dmapool", "-p", "x86", "--out", dir, "--name", "e")
	if code != 0 || !strings.Contains(out, "cells that replayed no event") {
		t.Fatalf("exit %d %s\n%s", code, errs, out)
	}
}

func TestShippedTracesReplay(t *testing.T) {
	files, _ := filepath.Glob("../../traces/*.trace.gz")
	if len(files) < 9 {
		t.Fatalf("%d shipped traces, want one per synthetic workload and the kernel boot trace", len(files))
	}
	dir := t.TempDir()
	for _, f := range files {
		code, _, errs := run(t, "replay", f, "-a", "dmapool,dmaalloc", "-p", "x86,sa1111", "--out", dir, "--name", "s")
		if code != 0 {
			t.Fatalf("%s: %s", f, errs)
		}
		for _, c := range readResults(t, filepath.Join(dir, "s.json")).Cells {
			for _, k := range []string{"misuse_unknown_free", "misuse_double_free", "misuse_mismatch", "misuse_id_reused"} {
				if c.Metrics[k] != 0 {
					t.Errorf("%s on %s/%s: %s = %v", f, c.Allocator, c.Platform, k, c.Metrics[k])
				}
			}
		}
	}
}

func TestImportCorpus(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"../../ftrace/testdata/kmem-slab-3.6-i386.log.gz", []string{"converted kmalloc                2088", "converted kmem_cache_alloc       5561",
			"converted kmem_cache_free        2453", "converted kfree                  110", "kfree: free of a null pointer                                244"}},
		{"../../ftrace/testdata/firewire-gfp-atomic-6.2.txt", []string{"converted kmalloc                14", "converted kfree                  14"}},
		{"../../ftrace/testdata/ath12k-dma-iommu-6.12.txt", []string{"converted dma_alloc              1", "converted dma_free               1",
			"converted map                    1", "converted unmap                  1", "io_page_fault: event not modeled"}},
	} {
		out := filepath.Join(dir, filepath.Base(tc.in)+".trace.gz")
		code, stdout, errs := run(t, "import", "ftrace", tc.in, "-o", out)
		if code != 0 {
			t.Fatalf("%s: %s", tc.in, errs)
		}
		for _, w := range tc.want {
			if !strings.Contains(stdout, w) {
				t.Errorf("%s: output lacks %q:\n%s", tc.in, w, stdout)
			}
		}
		if code, _, errs := run(t, "replay", out, "-a", "dmaalloc", "-p", "x86", "--out", dir, "--name", "i"); code != 0 {
			t.Fatalf("replaying %s: %s", out, errs)
		}
	}
	// The SLAB boot trace through dmaalloc with the SLAB classes of a
	// 64-byte-line machine: the model allocates what the kernel did.
	t.Setenv("DMABENCH_ALLOCATOR_DMAALLOC_SIZES", "slab")
	t.Setenv("DMABENCH_ALLOCATOR_DMAALLOC_CACHE_LINE", "64")
	out := filepath.Join(dir, "kmem-slab-3.6-i386.log.gz.trace.gz")
	if code, _, errs := run(t, "replay", out, "-a", "dmaalloc", "-p", "x86", "--out", dir, "--name", "k"); code != 0 {
		t.Fatal(errs)
	}
	m := readResults(t, filepath.Join(dir, "k.json")).Cells[0].Metrics
	if m["kernel_compared"] != 2088 || m["kernel_size_differences"] != 0 {
		t.Fatalf("compared %v, differences %v", m["kernel_compared"], m["kernel_size_differences"])
	}
}

// TestImportOversizeUnmap: an unmap whose size no map can have is kept
// as a mismatch that releases its mapping, not dropped and not passed on
// as a size the trace format refuses.
func TestImportOversizeUnmap(t *testing.T) {
	in := "t-1 [0] 1.0: map: IOMMU: iova=0x1000 paddr=0x2000 size=4096\n" +
		"t-1 [0] 2.0: unmap: IOMMU: iova=0x1000 size=1100000000 unmapped_size=4096\n"
	var out bytes.Buffer
	if _, err := ftrace.Import("in", strings.NewReader(in), trace.NewWriter(&out), nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), " unmap id=0 size=0 ") {
		t.Fatalf("unmap not written with size 0:\n%s", out.String())
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "u.trace")
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := run(t, "replay", path, "-a", "dmapool", "-p", "iommu", "--out", dir, "--name", "u"); code != 0 {
		t.Fatal(errs)
	}
	m := readResults(t, filepath.Join(dir, "u.json")).Cells[0].Metrics
	if m["misuse_mismatch"] != 1 || m["maps"] != 1 || m["live_at_end"] != 0 {
		t.Fatalf("mismatch %v, maps %v, live at end %v", m["misuse_mismatch"], m["maps"], m["live_at_end"])
	}
}

// TestBrokenTracesFromTheCLI feeds every broken trace: exit 2, a message
// naming the file and line, and no results file.
func TestBrokenTracesFromTheCLI(t *testing.T) {
	files, _ := filepath.Glob("../../workloads/trace/testdata/bad/*")
	if len(files) < 10 {
		t.Fatalf("only %d broken traces", len(files))
	}
	for _, f := range files {
		out := filepath.Join(t.TempDir(), "out")
		code, _, errs := run(t, "replay", f, "-a", "dmapool", "-p", "x86", "--out", out)
		if code != 2 || !strings.Contains(errs, filepath.Base(f)+":") {
			t.Errorf("%s: exit %d, message %q", filepath.Base(f), code, errs)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: results written", filepath.Base(f))
		}
	}
}

// TestPoolBlocksDieWithIt: the six-line trace that once crashed the tool —
// a block allocated, its pool destroyed, then the block freed — replays
// with exit 0 on every allocator and platform, and the misuse is counted:
// the destroy of a busy pool and the free after it. (An alloc from the
// destroyed pool is a trace the reader refuses; the engine's tests count
// it.)
func TestPoolBlocksDieWithIt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "six.trace")
	text := "dmabench-trace 1\ndev 0 d mask=0xffffffff\n" +
		"0 0 process pool_create id=0 dev=0 size=64 align=16 name=p\n" +
		"1 0 process alloc id=0 pool=0 dev=0 size=64 gfp=GFP_KERNEL\n" +
		"2 0 process pool_destroy id=0\n" +
		"3 0 process free id=0\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := run(t, "replay", path, "-a", strings.Join(registry.AllocatorNames(), ","), "-p", strings.Join(registry.PlatformNames(), ","), "--out", dir, "--name", "six")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	ran := 0
	for _, c := range readResults(t, filepath.Join(dir, "six.json")).Cells {
		if c.Refused != "" {
			continue
		}
		ran++
		m := c.Metrics
		if m["misuse_destroy_with_live"] != 1 || m["misuse_free_after_destroy"] != 1 || m["allocs"] != 1 || m["frees"] != 0 {
			t.Errorf("%s/%s: destroy_with_live %v, free_after_destroy %v, allocs %v, frees %v", c.Allocator, c.Platform,
				m["misuse_destroy_with_live"], m["misuse_free_after_destroy"], m["allocs"], m["frees"])
		}
	}
	// slab-direct is refused behind the two IOMMUs and on the cvm.
	if ran < len(registry.AllocatorNames())*len(registry.PlatformNames())-3 {
		t.Fatalf("only %d cells ran", ran)
	}
}

// TestImportedCaptureReplaysWithItsKernelsSizes: a capture imported from a
// SLUB, SLAB or SLOB kernel replays through dmaalloc with 0
// kernel_size_differences, with no flag or variable: the import detects
// the slab allocator and the trace carries it.
func TestImportedCaptureReplaysWithItsKernelsSizes(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"slub-6x.txt", "slob-3x.txt", "kmem-slab-3.6-i386.log.gz"} {
		tr := filepath.Join(dir, f+".trace")
		code, out, errs := run(t, "import", "ftrace", filepath.Join("..", "..", "ftrace", "testdata", f), "-o", tr)
		if code != 0 || !strings.Contains(out, "replay's dmaalloc uses its sizes") {
			t.Fatalf("%s: import exit %d: %s %s", f, code, out, errs)
		}
		if code, _, errs := run(t, "replay", tr, "-a", "dmaalloc", "-p", "x86", "--out", dir, "--name", "r"); code != 0 {
			t.Fatalf("%s: replay: %s", f, errs)
		}
		m := readResults(t, filepath.Join(dir, "r.json")).Cells[0].Metrics
		if m["kernel_compared"] == 0 || m["kernel_size_differences"] != 0 {
			t.Errorf("%s: kernel_compared %v, kernel_size_differences %v", f, m["kernel_compared"], m["kernel_size_differences"])
		}
	}
}

// TestFailedKernelAllocationsReplayAsRequests: allocations the traced
// kernel failed are imported as such (kernel=failed), asked of the model
// on replay and counted, never replayed as successes the capture's frees
// would then miss.
func TestFailedKernelAllocationsReplayAsRequests(t *testing.T) {
	dir := t.TempDir()
	capture := filepath.Join(dir, "c.txt")
	os.WriteFile(capture, []byte(
		"  a-1 [000] ....  1.000000: kmalloc: call_site=c1 ptr=c0001000 bytes_req=20 bytes_alloc=32 gfp_flags=GFP_KERNEL\n"+
			"  a-1 [000] ....  1.000001: kmalloc: call_site=c1 ptr=  (null) bytes_req=3000 bytes_alloc=4096 gfp_flags=GFP_ATOMIC\n"+
			"  a-1 [000] ....  1.000002: mm_page_alloc: page=0000000000000000 pfn=0x0 order=2 migratetype=0 gfp_flags=GFP_ATOMIC\n"+
			"  a-1 [000] ....  1.000003: dma_alloc: 0000:00:04.0 dma_addr=0 size=8192 virt_addr=0000000000000000 flags=GFP_KERNEL attrs=\n"+
			"  a-1 [000] ....  1.000004: kfree: call_site=c1 ptr=c0001000\n"), 0o644)
	tr := filepath.Join(dir, "c.trace")
	code, out, errs := run(t, "import", "ftrace", capture, "-o", tr)
	if code != 0 || !strings.Contains(out, "failed_allocs 3") {
		t.Fatalf("import exit %d: %s %s", code, out, errs)
	}
	if code, _, errs := run(t, "replay", tr, "-a", "dmaalloc", "-p", "x86", "--out", dir, "--name", "r"); code != 0 {
		t.Fatal(errs)
	}
	m := readResults(t, filepath.Join(dir, "r.json")).Cells[0].Metrics
	if m["kernel_failures"] != 3 || m["kernel_failures_served"] != 3 || m["allocs"] != 4 || m["live_at_end"] != 0 || m["leaks"] != 0 || m["misuse_unknown_free"] != 0 {
		t.Errorf("kernel_failures %v served %v allocs %v live %v leaks %v", m["kernel_failures"], m["kernel_failures_served"], m["allocs"], m["live_at_end"], m["leaks"])
	}
}

// TestSwiotlbBouncedReplaysOnCVM: a capture from a confidential VM whose
// kernel traces only swiotlb_bounced (before 6.12's dma events) imports
// each bounce as a mapping, its size and its device's mask as printed,
// the unmap implied when the buffer bounces again; with 6.12's dma events
// the bounce defers to the map event. It replays on cvm, bouncing again.
func TestSwiotlbBouncedReplaysOnCVM(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&b, "     kworker/u8:1-77    [%03d] d..1.  %d.%06d: swiotlb_bounced: dev_name: 0000:00:04.0 dma_mask=ffffffff dev_addr=%x size=%d NORMAL\n",
			i%2, 10, i, 0x1a2b0000+(i%8)*0x10000, 4096+512*(i%3))
	}
	// A 6.12 pair: the bounce, then the map event of the same mapping.
	b.WriteString("     kworker/u8:1-77    [002] d..1.  11.000000: swiotlb_bounced: dev_name: 0000:00:05.0 dma_mask=ffffffffffffffff dev_addr=5000 size=1500 NORMAL\n")
	b.WriteString("     kworker/u8:1-77    [002] d..1.  11.000001: dma_map_page: 0000:00:05.0 dir=TO_DEVICE dma_addr=5000 size=1500 phys_addr=5000 attrs=\n")
	capture := filepath.Join(dir, "cvm.txt")
	os.WriteFile(capture, []byte(b.String()), 0o644)
	tr := filepath.Join(dir, "cvm.trace")
	code, out, errs := run(t, "import", "ftrace", capture, "-o", tr)
	if code != 0 || !strings.Contains(out, "converted swiotlb_bounced") || !strings.Contains(out, "swiotlb_bounced: its dma_map event is converted") {
		t.Fatalf("import exit %d: %s %s", code, out, errs)
	}
	data, _ := os.ReadFile(tr)
	if !strings.Contains(string(data), "0000:00:04.0 mask=0xffffffff") {
		t.Errorf("the device's mask from dma_mask= is not in the trace:\n%s", data)
	}
	if code, _, errs := run(t, "replay", tr, "-a", "dmapool", "-p", "cvm", "--out", dir, "--name", "r"); code != 0 {
		t.Fatal(errs)
	}
	m := readResults(t, filepath.Join(dir, "r.json")).Cells[0].Metrics
	if m["maps"] != 41 || m["bounce_maps"] != 41 || m["swiotlb_full"] != 0 || m["unmaps"] != 32 {
		t.Errorf("maps %v, bounced %v, unmaps %v, full %v", m["maps"], m["bounce_maps"], m["unmaps"], m["swiotlb_full"])
	}
}
