package main

import (
	"os"
	"path/filepath"
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
	code, out, errs := run(t, "compare", old, old)
	if code != 0 || strings.Contains(out, "worse") || strings.Count(out, "~") < 20 {
		t.Fatalf("self-compare: exit %d %s\n%s", code, errs, out)
	}
	// A slower dma_pool (double the modeled cost of an alloc).
	t.Setenv("DMABENCH_ALLOCATOR_DMAPOOL_ALLOC_NS", "40")
	if code, _, errs := run(t, append(args, "--name", "new")...); code != 0 {
		t.Fatal(errs)
	}
	code, out, errs = run(t, "compare", old, filepath.Join(dir, "new.json"), "--threshold", "1")
	if code != 1 || !strings.Contains(errs, "usb-ehci/dmapool/x86 modeled_ops_per_sec") || strings.Contains(errs, "pcipool") {
		t.Fatalf("slower dmapool: exit %d, message %q\n%s", code, errs, out)
	}
	// Cells that do not match cannot be compared.
	if code, _, errs := run(t, "run", "-w", "scsi", "-a", "dmapool", "-p", "x86", "-n", "5000", "--out", dir, "--name", "other"); code != 0 {
		t.Fatal(errs)
	}
	code, _, errs = run(t, "compare", old, filepath.Join(dir, "other.json"))
	if code != 2 || !strings.Contains(errs, "only in the old result") {
		t.Fatalf("mismatched cells: exit %d %q", code, errs)
	}
}
