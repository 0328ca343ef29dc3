package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/matrix"
)

// engineKeys are the metrics a trace reproduces (workload counters such as
// urb_submit_failures belong to the generator, not to the trace).
var engineKeys = []string{"events", "allocs", "frees", "alloc_failures", "failure_rate", "atomic_share", "maps", "unmaps",
	"map_failures", "peak_live_bytes", "peak_reserved_bytes", "peak_mapped_bytes", "frag_internal", "frag_peak_ratio",
	"modeled_cpu_ns", "modeled_ops_per_sec", "latency_p50_ns", "latency_p99_ns", "latency_max_ns", "atomic_reserve_dips",
	"bounce_maps", "bounce_bytes", "iotlb_flushes", "iova_peak_bytes", "sg_segments", "sg_entries"}

func TestRecordThenReplayMatchesDirectRun(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ w, p, a, fill string }{
		{"usb-ehci", "x86", "dmapool", "0"},
		{"mixed-pressure", "sa1111", "slab", "400"}, // the scenario's pressure: a trace records events, not the machine
		{"scsi", "iommu", "mempool", "0"},
	} {
		tr := filepath.Join(dir, tc.w+".trace.gz")
		if code, _, errs := run(t, "record", "-w", tc.w, "-p", tc.p, "-a", tc.a, "-n", "30000", "-s", "7", "-o", tr); code != 0 {
			t.Fatalf("record: %s", errs)
		}
		t.Setenv("DMABENCH_PLATFORM_PRESSURE_FILL_MIB_PER_S", tc.fill)
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
	res := matrix.RunCell(matrix.Cell{Scenario: w, Allocator: a, Platform: p, Seed: seed}, builder{defaultConfig(t)}, 30000)
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
