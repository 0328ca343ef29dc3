package registry

import (
	"maps"
	"slices"
	"testing"

	"github.com/dmabench/dmabench/matrix"
	"github.com/dmabench/dmabench/metrics"
)

// TestEveryMetricDeclaredAndProduced runs the default run (the embedded
// config, every cell at its length) and fails when a cell produces a
// metric the catalog does not declare, or when a declared metric is
// produced by no cell. A metric declared to appear only in some cells
// (Def.When) is looked for in a run that has such cells: a trace with
// kernel sizes, a crash under map_failure: bug.
func TestEveryMetricDeclaredAndProduced(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole default run")
	}
	cfg := defaultConfig(t)
	produced := map[string]string{}
	collect := func(rs []matrix.Result) {
		for _, r := range rs {
			if r.Err != nil {
				t.Fatalf("%s: %v", r.Cell, r.Err)
			}
			for k := range r.Metrics {
				if _, ok := metrics.Lookup(k); !ok {
					t.Errorf("cell %s produces %s, which metrics.Catalog does not declare", r.Cell, k)
				}
				produced[k] = r.Cell.String()
			}
		}
	}
	collect(matrix.Run(Cells(cfg), NewBuilder(cfg), matrix.Options{Events: cfg.Events}))
	for _, d := range metrics.Catalog {
		if _, ok := produced[d.Key]; !ok && d.When == "" {
			t.Errorf("%s is declared, and no cell of the default run produces it", d.Key)
		}
	}
	// The conditional ones.
	crash := defaultConfig(t)
	crash.Platform.MapFailure = "bug"
	crash.Platform.SA1111.Mode = "first-1mib"
	crash.Platform.SA1111.RAMMiB = 8
	crash.Workload.USB.Storage.TransferBytes = 65536
	crash.Workload.USB.Storage.QueueDepth = 64
	collect([]matrix.Result{
		matrix.RunCell(matrix.Cell{Scenario: TracePrefix + "../traces/kmem-slab-3.6-i386.trace.gz", Allocator: "dmaalloc", Platform: "x86", Seed: 1}, NewBuilder(cfg), 20_000),
		matrix.RunCell(matrix.Cell{Scenario: "usb-ehci", Allocator: "dmapool", Platform: "sa1111", Seed: 1}, NewBuilder(crash), 50_000),
		matrix.RunCell(matrix.Cell{Scenario: "scsi", Allocator: "dmapool", Platform: "cvm", Seed: 1}, NewBuilder(cfg), 20_000),
		matrix.RunCell(matrix.Cell{Scenario: "hotplug-resize", Allocator: "mempool", Platform: "x86", Seed: 1}, NewBuilder(cfg), 20_000),
	})
	if tree := kernelTree(t, "6.12"); tree != "" {
		kcfg := defaultConfig(t)
		everywhere(kcfg, func(c *Config) { c.Allocator.Kernel.Tree = tree })
		collect([]matrix.Result{matrix.RunCell(matrix.Cell{Scenario: "usb-ehci", Allocator: "kernel-dmapool", Platform: "x86", Seed: 1}, NewBuilder(kcfg), 20_000)})
	}
	for _, d := range metrics.Catalog {
		if _, ok := produced[d.Key]; !ok {
			if d.Producer == "allocators/kernelpool" && kernelTree(t, "6.12") == "" {
				continue // no kernel tree here: TestKernelAllocators says so
			}
			t.Errorf("%s is declared (only in %s), and no such cell produces it", d.Key, d.When)
		}
	}
	t.Logf("%d metrics produced: %v", len(produced), slices.Sorted(maps.Keys(produced)))
}
