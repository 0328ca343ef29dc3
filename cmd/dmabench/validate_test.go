package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateAgainstCorpus(t *testing.T) {
	pools, _ := filepath.Glob("../../allocators/dmapool/testdata/*.pools")
	slabinfo, _ := filepath.Glob("../../allocators/slab/testdata/*.slabinfo")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"validate", "ftrace", "../../ftrace/testdata/kmem-slab-3.6-i386.log.gz", "--sizes", "slab"}, "matched 2088 of 2088"},
		{[]string{"validate", "ftrace", "../../ftrace/testdata/firewire-gfp-atomic-6.2.txt", "--sizes", "slub"}, "matched 14 of 14"},
		{append([]string{"validate", "pools"}, pools...), "matched 22 of 22"}, // 20 captured by others, NVMe's two written in the format
		{append([]string{"validate", "slabinfo"}, slabinfo...), "matched 52 of 52"},
	} {
		code, out, errs := run(t, tc.args...)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d, want %q in:\n%s%s", tc.args, code, tc.want, out, errs)
		}
	}
}

func TestValidateMismatchesFail(t *testing.T) {
	// The SLUB table on a SLAB trace: 8- and 16-byte classes do not exist there.
	code, out, _ := run(t, "validate", "ftrace", "../../ftrace/testdata/kmem-slab-3.6-i386.log.gz", "--sizes", "slub")
	if code != 1 || !strings.Contains(out, "kernel 32, model 8") {
		t.Fatalf("exit %d:\n%.500s", code, out)
	}
	if code, _, _ := run(t, "validate", "ftrace", "../../ftrace/testdata/kmem-slab-3.6-i386.log.gz", "--sizes", "slub", "--min-match", "10"); code != 0 {
		t.Fatalf("--min-match 10: exit %d", code)
	}
	// One CPU gives min_objects 8: host-b's larger caches come out smaller.
	code, out, _ = run(t, "validate", "slabinfo", "../../allocators/slab/testdata/host-b.slabinfo", "--cpus", "1")
	if code != 1 || !strings.Contains(out, "kmalloc-192") {
		t.Fatalf("--cpus 1: exit %d:\n%s", code, out)
	}
}

func TestValidateBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"validate", "ftrace", write("k.txt", "init-1 [000] .... 1.0: kmalloc: call_site=1 ptr=2 bytes_req=x bytes_alloc=32\n")}, "k.txt: nothing to validate; skipped [kmalloc: no usable bytes_req/bytes_alloc: 1]"},
		{[]string{"validate", "ftrace", write("gz.txt.gz", "\x1f\x8bnot gzip")}, "gz.txt.gz"},
		{[]string{"validate", "pools", write("p.pools", "poolinfo - 0.1\nehci_qtd 3 -42 96 1\n")}, "p.pools:2"},
		{[]string{"validate", "slabinfo", write("s.slabinfo", "not slabinfo\n")}, "s.slabinfo:1"},
		{[]string{"validate", "slabinfo", "--cpus", "many", write("t.slabinfo", "slabinfo - version: 2.1\n")}, "--cpus"},
		{[]string{"validate", "ftrace", filepath.Join(dir, "missing")}, "missing"},
	} {
		code, _, errs := run(t, tc.args...)
		if code != 2 || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, message %q, want 2 and %q", tc.args[1:], code, errs, tc.want)
		}
	}
}

// TestValidateKernel: the command runs the differential validation of a
// kernel tree (when one is here) and passes; without a tree, or with a
// path that is no tree, it is the user's error.
func TestValidateKernel(t *testing.T) {
	if code, _, errs := run(t, "validate", "kernel"); code != 2 || !strings.Contains(errs, "allocator.kernel.tree") {
		t.Fatalf("no tree: exit %d: %s", code, errs)
	}
	if code, _, errs := run(t, "validate", "kernel", "--kernel-tree", t.TempDir()); code != 2 || !strings.Contains(errs, "Makefile") {
		t.Fatalf("not a tree: exit %d: %s", code, errs)
	}
	tree := "/usr/src/linux-source-6.12.tar.xz"
	if _, err := os.Stat(tree); err != nil {
		if os.Getenv("DMABENCH_REQUIRE_KERNEL") != "" {
			t.Fatal(err)
		}
		t.Skip("no Linux 6.12 tree: install linux-source-6.12 (.ci/run does)")
	}
	code, out, errs := run(t, "validate", "kernel", "--kernel-tree", tree, "--seeds", "2", "--ops", "3000")
	if code != 0 || !strings.Contains(out, "against dmapool, operation by operation: matched") || !strings.Contains(out, "workload usb-ehci") {
		t.Fatalf("exit %d:\n%s%s", code, out, errs)
	}
}
