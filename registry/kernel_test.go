package registry

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/kernel"
	"github.com/dmabench/dmabench/matrix"
)

// kernelTree returns the kernel tree of version v the tests use:
// DMABENCH_KERNEL_TREES (comma-separated paths; the one whose name holds
// "-v." or ends in v), or Debian's linux-source-v tarball. Without one it
// returns "", or fails the test when DMABENCH_REQUIRE_KERNEL is set (CI
// installs the trees and sets it).
func kernelTree(t testing.TB, v string) string {
	cands := []string{"/usr/src/linux-source-" + v + ".tar.xz"}
	if s := os.Getenv("DMABENCH_KERNEL_TREES"); s != "" {
		cands = strings.Split(s, ",")
	}
	for _, c := range cands {
		if strings.Contains(c, "-"+v+".") || strings.HasSuffix(c, "-"+v) {
			if _, err := os.Stat(c); err == nil {
				return c
			}
		}
	}
	if os.Getenv("DMABENCH_REQUIRE_KERNEL") != "" {
		t.Fatalf("no Linux %s tree (DMABENCH_REQUIRE_KERNEL is set): install linux-source-%s or set DMABENCH_KERNEL_TREES", v, v)
	}
	return ""
}

// kernelConfig is the default config with the tree of version v, or
// skips the test.
func kernelConfig(t *testing.T, v string) *Config {
	tree := kernelTree(t, v)
	if tree == "" {
		t.Skipf("no Linux %s tree: install linux-source-%s (.ci/run does) or set DMABENCH_KERNEL_TREES", v, v)
	}
	if _, err := KernelBackend(tree); err != nil {
		if errors.Is(err, kernel.ErrUnavailable) && os.Getenv("DMABENCH_REQUIRE_KERNEL") == "" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	cfg := defaultConfig(t)
	everywhere(cfg, func(c *Config) { c.Allocator.Kernel.Tree = tree })
	return cfg
}

// everywhere applies set to cfg and to each scenario's own config, as a
// flag does.
func everywhere(cfg *Config, set func(*Config)) {
	set(cfg)
	for _, d := range cfg.scenarios {
		set(d)
	}
}

// sameModeled reports the modeled metrics of a and b that differ.
func sameModeled(t *testing.T, what string, a, b matrix.Result) {
	t.Helper()
	if a.Err != nil || b.Err != nil {
		t.Fatalf("%s: %v, %v", what, a.Err, b.Err)
	}
	for k, v := range a.Metrics {
		if strings.HasPrefix(k, "host_") || strings.HasPrefix(k, "kernel_") {
			continue
		}
		if w, ok := b.Metrics[k]; ok && w != v {
			t.Errorf("%s: %s: model %v, kernel code %v", what, k, v, w)
		}
	}
}

// TestKernelAllocators: the kernel trees' own code, run through the
// engine, gives the modeled metrics of the model of its design: Linux
// 6.12's dma_pool those of dmapool, 6.1's those of dmapool-2.6; the
// tree's mempool over its dma_pool the reserve behaviour of the mempool
// model (same failures, waits and lowest reserve) under hotplug-pressure.
func TestKernelAllocators(t *testing.T) {
	for _, tc := range []struct{ version, model string }{{"6.12", "dmapool"}, {"6.1", "dmapool-2.6"}} {
		t.Run(tc.version, func(t *testing.T) {
			cfg := kernelConfig(t, tc.version)
			everywhere(cfg, func(c *Config) { c.Allocator.Mempool.Over = tc.model })
			b := NewBuilder(cfg)
			for _, w := range []string{"usb-ehci", "scsi", "netrx", "hotplug-pressure", "ohci-1mib-2002"} {
				for _, p := range []string{"x86", "sa1111"} {
					run := func(a string) matrix.Result {
						return matrix.RunCell(matrix.Cell{Scenario: w, Allocator: a, Platform: p, Seed: 1}, b, 30_000)
					}
					sameModeled(t, w+"/"+p, run(tc.model), run("kernel-dmapool"))
				}
			}
			m, k := func(a string) matrix.Result {
				return matrix.RunCell(matrix.Cell{Scenario: "hotplug-pressure", Allocator: a, Platform: "sa1111", Seed: 1}, b, 100_000)
			}("mempool"), matrix.RunCell(matrix.Cell{Scenario: "hotplug-pressure", Allocator: "kernel-mempool", Platform: "sa1111", Seed: 1}, b, 100_000)
			if m.Err != nil || k.Err != nil {
				t.Fatal(m.Err, k.Err)
			}
			for _, key := range []string{"alloc_failures", "mempool_waits", "mempool_reserve_min", "rx_drops", "urb_submit_failures", "peak_reserved_bytes", "pages_held_idle"} {
				if m.Metrics[key] != k.Metrics[key] {
					t.Errorf("hotplug-pressure/sa1111: %s: mempool %v, kernel-mempool %v", key, m.Metrics[key], k.Metrics[key])
				}
			}
			if k.Metrics["alloc_failures"] == 0 || k.Metrics["mempool_reserve_min"] != 0 {
				t.Errorf("hotplug-pressure/sa1111 no longer drains a reserve (%v failures, reserve min %v): the comparison shows nothing", k.Metrics["alloc_failures"], k.Metrics["mempool_reserve_min"])
			}
		})
	}
}

// TestKernelTreeRefused: a kernel allocator without a tree, or with a
// path that is not one, is the user's error, named by its key.
func TestKernelTreeRefused(t *testing.T) {
	cfg := defaultConfig(t)
	cfg.Allocators = []string{"kernel-dmapool"}
	if err := cfg.Validate(); !errors.As(err, &UsageError{}) || !strings.Contains(err.Error(), "allocator.kernel.tree") {
		t.Fatalf("no tree: %v", err)
	}
	_, err := KernelBackend(t.TempDir())
	if !errors.As(err, &UsageError{}) || !strings.Contains(err.Error(), "allocator.kernel.tree") {
		t.Fatalf("an empty folder: %v", err)
	}
}

// testAllocators returns the allocators the whole-registry tests run: the
// models, and, when Linux 6.12's tree is here, the kernel allocators on
// its code (cfg, and its scenarios, then point at it).
func testAllocators(t testing.TB, cfg *Config) []allocatorEntry {
	var out []allocatorEntry
	tree := kernelTree(t, "6.12")
	if tree != "" {
		if _, err := KernelBackend(tree); err != nil {
			tree = ""
		}
	}
	if tree != "" {
		everywhere(cfg, func(c *Config) { c.Allocator.Kernel.Tree = tree })
	}
	for _, e := range allocatorTable() {
		if !e.kernel || tree != "" {
			out = append(out, e)
		}
	}
	return out
}

// modelTable is allocatorTable without the kernel allocators.
func modelTable() []allocatorEntry {
	var out []allocatorEntry
	for _, e := range allocatorTable() {
		if !e.kernel {
			out = append(out, e)
		}
	}
	return out
}

// TestKernelCellsDeterministicInParallel: cells running the kernel code
// side by side (one library, one lock) give the results they give one at
// a time: element calls and errors are counted per pool and device.
func TestKernelCellsDeterministicInParallel(t *testing.T) {
	cfg := kernelConfig(t, "6.12")
	cfg.Workloads = []string{"hotplug-pressure", "usb-ehci", "mixed-pressure"}
	cfg.Allocators = []string{"kernel-mempool", "kernel-dmapool"}
	cfg.Platforms = []string{"x86", "sa1111"}
	cells := Cells(cfg)
	one := matrix.Run(cells, NewBuilder(cfg), matrix.Options{Events: 20_000, Jobs: 1})
	four := matrix.Run(cells, NewBuilder(cfg), matrix.Options{Events: 20_000, Jobs: 4})
	for i := range one {
		sameModeled(t, one[i].Cell.String(), one[i], four[i])
		if one[i].Metrics["kernel_errors"] != four[i].Metrics["kernel_errors"] {
			t.Errorf("%s: kernel_errors %v alone, %v in parallel", one[i].Cell, one[i].Metrics["kernel_errors"], four[i].Metrics["kernel_errors"])
		}
	}
}
