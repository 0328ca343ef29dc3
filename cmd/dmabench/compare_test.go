package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/perf/benchfmt"
)

func TestBenchFileReadsWithBenchfmt(t *testing.T) {
	dir := t.TempDir()
	if code, _, errs := run(t, "run", "-w", "usb-ehci,netrx", "-a", "dmapool,pcipool", "-p", "x86", "-s", "2", "-n", "20000", "--out", dir, "--name", "b"); code != 0 {
		t.Fatal(errs)
	}
	f, err := os.Open(filepath.Join(dir, "b.bench"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := benchfmt.NewReader(f, "b.bench")
	results := 0
	for r.Scan() {
		switch rec := r.Result().(type) {
		case *benchfmt.Result:
			results++
			if !strings.HasPrefix(string(rec.Name), "DMA/scenario=") || len(rec.Values) < 5 {
				t.Fatalf("result %s with %d values", rec.Name, len(rec.Values))
			}
		case *benchfmt.SyntaxError:
			t.Fatalf("benchfmt rejects the file: %v", rec)
		}
	}
	if results != 8 {
		t.Fatalf("%d results, want 2 workloads x 2 allocators x 2 seeds", results)
	}
	if u := r.Units(); len(u) == 0 {
		t.Fatal("no Unit metadata")
	}
	for _, format := range []string{"csv", "markdown", "benchfmt", "gha"} {
		code, out, errs := run(t, "run", "-w", "usb-ehci", "-a", "dmapool", "-p", "x86", "-n", "5000", "-f", format, "--out", dir, "--name", format)
		if code != 0 || !(strings.Contains(out, "usb-ehci") || format == "gha" && strings.Contains(out, "gha-bigger.json")) {
			t.Fatalf("-f %s: exit %d %s\n%s", format, code, errs, out)
		}
	}
}

func TestCompareGate(t *testing.T) {
	dir := t.TempDir()
	args := []string{"run", "-w", "usb-ehci,netrx", "-a", "dmapool,pcipool", "-p", "x86", "-s", "3", "-n", "30000", "--out", dir}
	if code, _, errs := run(t, append(args, "--name", "old")...); code != 0 {
		t.Fatal(errs)
	}
	old := filepath.Join(dir, "old.json")
	same := filepath.Join(dir, "same.json")
	if data, err := os.ReadFile(old); err != nil || os.WriteFile(same, data, 0o644) != nil {
		t.Fatal(err)
	}
	if code, _, errs := run(t, "compare", old, old); code != 2 || !strings.Contains(errs, "given twice") {
		t.Fatalf("a file compared with itself: exit %d %s", code, errs)
	}
	code, out, errs := run(t, "compare", old, same)
	if code != 0 || strings.Contains(out, "worse") || strings.Count(out, "~") < 16 || !strings.Contains(out, "host timings are compared only when named") { // 4 cells x 4 metrics
		t.Fatalf("self-compare: exit %d %s\n%s", code, errs, out)
	}
	// Host timings named: compared, with what their test cannot see.
	if _, out, _ := run(t, "compare", "--metric", "host_harness_ratio", old, same); !strings.Contains(out, "drift between the two runs reads as a significant change") {
		t.Fatalf("host timings compared without their caveat:\n%s", out)
	}
	// A slower dma_pool (double the modeled cost of an alloc).
	t.Setenv("DMABENCH_ALLOCATOR_DMAPOOL_ALLOC_NS", "40")
	if code, _, errs := run(t, append(args, "--name", "new")...); code != 0 {
		t.Fatal(errs)
	}
	if code, _, errs := run(t, "compare", old, filepath.Join(dir, "new.json")); code != 2 || !strings.Contains(errs, "allocator.dmapool.alloc_ns") {
		t.Fatalf("another config without --allow: exit %d, %s", code, errs)
	}
	code, out, errs = run(t, "compare", old, filepath.Join(dir, "new.json"), "--threshold", "1", "--allow", "allocator.dmapool.alloc_ns")
	if code != 1 || !strings.Contains(errs, "usb-ehci/dmapool/x86 modeled_ops_per_sec") || strings.Contains(errs, "pcipool") {
		t.Fatalf("slower dmapool: exit %d, message %q\n%s", code, errs, out)
	}
	// The same, as GitHub annotations: an ::error for the regression.
	code, out, _ = run(t, "compare", old, filepath.Join(dir, "new.json"), "--threshold", "1", "--allow", "allocator.dmapool.alloc_ns", "-f", "gha", "--only-changed")
	if code != 1 || !strings.Contains(out, "::error title=dmabench usb-ehci/dmapool/x86 modeled_ops_per_sec::") || strings.Contains(out, "pcipool") {
		t.Fatalf("gha: exit %d\n%s", code, out)
	}
	// A result from an older build, which knew fewer knobs: the keys it
	// lacks are named by section, and the --allow the message offers is
	// accepted.
	var doc map[string]any
	if data, err := os.ReadFile(old); err != nil || json.Unmarshal(data, &doc) != nil {
		t.Fatal(err)
	}
	conf := doc["config"].(map[string]any)
	delete(conf["platform"].(map[string]any), "cvm")
	delete(conf["workload"].(map[string]any), "nvme")
	delete(conf["allocator"].(map[string]any)["mempool"].(map[string]any), "era")
	older := filepath.Join(dir, "older.json")
	if data, err := json.Marshal(doc); err != nil || os.WriteFile(older, data, 0o644) != nil {
		t.Fatal(err)
	}
	code, _, errs = run(t, "compare", older, old)
	allowArg := regexp.MustCompile(`--allow (\S+) compares`).FindStringSubmatch(errs)
	if code != 2 || !strings.Contains(errs, "platform.cvm.* (") || !strings.Contains(errs, "allocator.mempool.era,") ||
		!strings.Contains(errs, "in one result only") || allowArg == nil || strings.Count(errs, "workload.nvme.") > 2 {
		t.Fatalf("an older build's result: exit %d %q", code, errs)
	}
	if code, _, errs := run(t, "compare", older, old, "--allow", allowArg[1]); code != 0 {
		t.Fatalf("--allow %s as offered: exit %d %s", allowArg[1], code, errs)
	}
	// Cells that do not match cannot be compared.
	if code, _, errs := run(t, "run", "-w", "scsi", "-a", "dmapool", "-p", "x86", "-n", "5000", "--out", dir, "--name", "other"); code != 0 {
		t.Fatal(errs)
	}
	code, _, errs = run(t, "compare", old, filepath.Join(dir, "other.json"), "--allow", "workloads,allocators,events,allocator")
	if code != 2 || !strings.Contains(errs, "only in the old result") {
		t.Fatalf("mismatched cells: exit %d %q", code, errs)
	}
}

func TestShardsMergeToTheWhole(t *testing.T) {
	dir := t.TempDir()
	args := []string{"run", "-w", "usb-ehci,scsi,netrx", "-a", "dmapool,slab", "-p", "x86,iommu", "-s", "2", "-n", "10000", "--out", dir}
	if code, _, errs := run(t, append(args, "--name", "whole")...); code != 0 {
		t.Fatal(errs)
	}
	var shards []string
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("shard%d", i)
		if code, _, errs := run(t, append(args, "--name", name, "--shard", fmt.Sprintf("%d/3", i))...); code != 0 {
			t.Fatal(errs)
		}
		shards = append(shards, filepath.Join(dir, name+".json"))
	}
	// The index may come from an indexed Job's environment.
	t.Setenv("JOB_COMPLETION_INDEX", "1")
	if code, _, errs := run(t, append(args, "--name", "envshard", "--shard", "3")...); code != 0 {
		t.Fatal(errs)
	}
	if a, b := modeled(t, filepath.Join(dir, "envshard.json")), modeled(t, shards[1]); string(a) != string(b) {
		t.Fatal("JOB_COMPLETION_INDEX=1 with --shard 3 is not shard 2/3")
	}
	merged := filepath.Join(dir, "merged.json")
	if code, _, errs := run(t, append([]string{"merge", "-o", merged}, shards...)...); code != 0 {
		t.Fatal(errs)
	}
	if a, b := modeled(t, filepath.Join(dir, "whole.json")), modeled(t, merged); string(a) != string(b) {
		t.Fatalf("merged shards differ from the whole run:\n%s\n%s", a, b)
	}
	code, _, errs := run(t, "merge", "-o", filepath.Join(dir, "partial.json"), shards[0], shards[2])
	if code != 2 || !strings.Contains(errs, "cells missing") || !strings.Contains(errs, "seed=") {
		t.Fatalf("merge with a shard missing: exit %d %q", code, errs)
	}
	// A shard measured with other settings is refused, naming them.
	if code, _, errs := run(t, append(args, "--name", "other", "--shard", "3/3", "-n", "5000")...); code != 0 {
		t.Fatal(errs)
	}
	code, _, errs = run(t, "merge", "-o", filepath.Join(dir, "mixed.json"), shards[0], shards[1], filepath.Join(dir, "other.json"))
	if code != 2 || !strings.Contains(errs, "measured another configuration than") || !strings.Contains(errs, "events differ") {
		t.Fatalf("merge of a shard of other settings: exit %d %q", code, errs)
	}
	// Resume: the first shard's file is completed with the rest.
	if code, _, errs := run(t, append(args, "--name", "shard1", "--resume")...); code != 0 {
		t.Fatal(errs)
	}
	if a, b := modeled(t, filepath.Join(dir, "whole.json")), modeled(t, shards[0]); string(a) != string(b) {
		t.Fatal("resume did not complete the sweep to the whole run")
	}
}

func TestProgressModes(t *testing.T) {
	dir := t.TempDir()
	args := []string{"run", "-w", "usb-ehci,scsi", "-a", "dmapool", "-p", "x86,sa1111", "-n", "20000", "--out", dir}
	// stderr is a buffer, not a terminal: auto gives plain lines.
	code, _, errs := run(t, append(args, "--progress", "auto")...)
	if code != 0 || strings.ContainsAny(errs, "\r\x1b") || !strings.Contains(errs, "4/4 cells, 100% of events") {
		t.Fatalf("auto to a pipe: exit %d %q", code, errs)
	}
	code, _, errs = run(t, append(args, "--progress", "bar")...)
	if code != 0 || !strings.Contains(errs, "cells 4/4 [") || !strings.Contains(errs, "100 %") {
		t.Fatalf("bar: exit %d %q", code, errs)
	}
	code, _, errs = run(t, append(args, "--progress", "none")...)
	if code != 0 || strings.Contains(errs, "of events") {
		t.Fatalf("none: %q", errs)
	}
	if code, _, _ := run(t, append(args, "--progress", "sparkles")...); code != 2 {
		t.Fatalf("bad --progress: exit %d", code)
	}
}

func TestBenchCommand(t *testing.T) {
	code, out, errs := run(t, "bench", "-n", "20000", "-w", "usb-ehci")
	if code != 0 {
		t.Fatal(errs)
	}
	for _, want := range []string{"(the limit)", "100.0%", "pre-decoded stream: null allocator, full metrics", "pre-decoded stream: dmapool on x86", "coherent on x86",
		"generated: null allocator, no metrics", "generated: dmapool on x86, full metrics", "trace parsing", "MB/s", "peak RSS",
		"of null", "spread", "median of 5 interleaved rounds", "file replay, binary: dmapool", "% of in-memory"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench output lacks %q:\n%s", want, out)
		}
	}
	for _, bad := range [][]string{{"-n", "5"}, {"-r", "0"}} {
		if code, _, _ := run(t, append([]string{"bench"}, bad...)...); code != 2 {
			t.Fatalf("%v: exit %d, want 2", bad, code)
		}
	}
	// A scenario: its workloads' ids are kept apart in the trace.
	if code, _, errs := run(t, "bench", "-n", "20000", "-r", "1", "-w", "mixed", "-p", "sa1111"); code != 0 {
		t.Fatalf("bench -w mixed: exit %d: %s", code, errs)
	}
	// A model that refuses the platform shows as refused, not as 0 events/s.
	code, out, errs = run(t, "bench", "-n", "20000", "-r", "1", "-w", "usb-ehci", "-p", "iommu")
	if code != 0 {
		t.Fatal(errs)
	}
	if !regexp.MustCompile(`slab-direct on iommu, full metrics.*refused`).MatchString(out) {
		t.Errorf("slab-direct behind an IOMMU is not shown as refused:\n%s", out)
	}
}

// TestBenchstatReadsTwoRunsAsOneComparison: the .bench files of two runs
// that differ in one knob, given to x/perf's benchstat with no flags, come
// out as old-against-new tables (not split by the knob) with nothing on
// stderr and no note that values expected to be exact were not.
func TestBenchstatReadsTwoRunsAsOneComparison(t *testing.T) {
	if testing.Short() {
		t.Skip("builds benchstat")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build benchstat with")
	}
	dir := t.TempDir()
	args := []string{"run", "-w", "usb-ehci", "-a", "dmapool,pcipool", "-p", "x86", "-s", "5", "-n", "5000", "--out", dir}
	if code, _, errs := run(t, append(args, "--name", "a")...); code != 0 {
		t.Fatal(errs)
	}
	t.Setenv("DMABENCH_ALLOCATOR_DMAPOOL_ALLOC_NS", "40")
	if code, _, errs := run(t, append(args, "--name", "b")...); code != 0 {
		t.Fatal(errs)
	}
	cmd := exec.Command(goBin, "run", "golang.org/x/perf/cmd/benchstat", filepath.Join(dir, "a.bench"), filepath.Join(dir, "b.bench"))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("benchstat: %v\n%s", err, stderr.String())
	}
	out := stdout.String()
	if stderr.Len() != 0 {
		t.Errorf("benchstat wrote to stderr: %s", stderr.String())
	}
	if !strings.Contains(out, "a.bench │") || !strings.Contains(out, "b.bench") || !strings.Contains(out, "vs base") {
		t.Fatalf("not an old-against-new comparison:\n%s", out)
	}
	if strings.Contains(out, "exact distribution expected") || strings.Contains(out, "config-hash") {
		t.Fatalf("a warning or a split by configuration:\n%s", out)
	}
	// One table per unit, each holding both files: as many headers naming
	// a.bench as units written.
	if n, units := strings.Count(out, "a.bench │"), strings.Count(out, "vs base"); n != units || n < 5 {
		t.Fatalf("%d headers for %d units:\n%s", n, units, out)
	}
}

// TestExplainSaysWhy: explain sets slab and dmapool side by side for
// usb-ehci on the SA-1111, pool by pool, and where nothing differs says
// why; every cell's JSON carries the breakdown by pool.
func TestExplainSaysWhy(t *testing.T) {
	dir := t.TempDir()
	if code, _, errs := run(t, "run", "-w", "usb-ehci", "-a", "slab,dmapool", "-p", "sa1111", "-n", "20000", "--out", dir, "--name", "e"); code != 0 {
		t.Fatal(errs)
	}
	for _, c := range readResults(t, filepath.Join(dir, "e.json")).Cells {
		if len(c.Pools) != 3 || c.Pools[0].Model == nil || c.Pools[0].Model.PeakPages < 1 {
			t.Fatalf("%s: pools %+v", c.Allocator, c.Pools)
		}
	}
	code, out, errs := run(t, "explain", filepath.Join(dir, "e.json"), "--cell", "usb-ehci/sa1111", "-a", "slab,dmapool")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"ehci_qtd", "pages peak", "failures (atomic)", "ehci_qtd: no difference: both lay out 42 blocks of 96 B", "peak_reserved_bytes"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}
	if code, _, errs := run(t, "explain", filepath.Join(dir, "e.json"), "--cell", "usb-ehci/x86", "-a", "slab,dmapool"); code != 2 || !strings.Contains(errs, "no cell") {
		t.Fatalf("a cell not in the results: exit %d %s", code, errs)
	}
}

// TestExplainComparesBytes: a slab of 4 KiB objects takes its memory 32
// KiB at a time, dma_pool a page at a time; the same 4 MiB at peak is no
// difference, though the page counts are 128 and 1024. A scenario whose
// name holds a slash is a --cell too.
func TestExplainComparesBytes(t *testing.T) {
	dir := t.TempDir()
	if code, _, errs := run(t, "run", "-w", "poolbench/size=4096", "-a", "slab,dmapool", "-p", "x86", "-n", "20000", "--out", dir, "--name", "e"); code != 0 {
		t.Fatal(errs)
	}
	code, out, errs := run(t, "explain", filepath.Join(dir, "e.json"), "--cell", "poolbench/size=4096/x86", "-a", "slab,dmapool")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "8 blocks per 32.0 KiB page allocation against 1 per 4.00 KiB") || strings.Contains(out, "held at peak") {
		t.Errorf("explain of 4 KiB blocks:\n%s", out)
	}
}

// TestReportAB: report NEW --baseline OLD writes before and after side by
// side with the change, as HTML and as text of at most 72 columns; two
// results of other settings given as they are do the same.
func TestReportAB(t *testing.T) {
	dir := t.TempDir()
	args := []string{"run", "-w", "usb-ehci", "-a", "dmapool,pcipool", "-p", "x86", "-s", "2", "-n", "5000", "--out", dir}
	if code, _, errs := run(t, append(args, "--name", "old")...); code != 0 {
		t.Fatal(errs)
	}
	t.Setenv("DMABENCH_ALLOCATOR_DMAPOOL_ALLOC_NS", "200")
	if code, _, errs := run(t, append(args, "--name", "new")...); code != 0 {
		t.Fatal(errs)
	}
	old, new := filepath.Join(dir, "old.json"), filepath.Join(dir, "new.json")
	for _, tc := range [][]string{{"report", new, "--baseline", old, "-o", filepath.Join(dir, "ab.html")}, {"report", old, new, "-o", filepath.Join(dir, "ab.txt")}} {
		if code, _, errs := run(t, tc...); code != 0 {
			t.Fatalf("%v: exit %d %s", tc, code, errs)
		}
	}
	h, _ := os.ReadFile(filepath.Join(dir, "ab.html"))
	if !strings.Contains(string(h), "<th>before</th><th>after</th>") || !strings.Contains(string(h), "allocator.dmapool.alloc_ns") || !strings.Contains(string(h), "worse") {
		t.Fatalf("A/B html:\n%s", h)
	}
	txt, _ := os.ReadFile(filepath.Join(dir, "ab.txt"))
	for _, l := range strings.Split(string(txt), "\n") {
		if len([]rune(l)) > 72 {
			t.Errorf("%d columns: %s", len([]rune(l)), l)
		}
	}
	if !strings.Contains(string(txt), "usb-ehci/dmapool/x86 modeled_ops_per_sec") {
		t.Fatalf("A/B text:\n%s", txt)
	}
}
