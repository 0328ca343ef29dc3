package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/dmabench/dmabench"
	"github.com/dmabench/dmabench/cells"
	"github.com/dmabench/dmabench/report"
)

// FuzzConfig: whatever a config file holds, loading and validating it
// either works or fails with a usage error (exit 2); it never panics.
// go test -fuzz FuzzConfig ./cmd/dmabench
func FuzzConfig(f *testing.F) {
	f.Add(dmabench.DefaultConfig)
	f.Add([]byte("seeds: 2\nplatform:\n  x86:\n    ram_mib: 64\n"))
	f.Add([]byte("scenario:\n  s:\n    workloads: [usb-uhci, netrx]\n    start_ms: {usb-uhci: 10}\n    workload: {netrx: {rx_buffers: pool, stack_us: 5}}\n"))
	f.Add([]byte("allocator:\n  mempool:\n    min_nr_by_pool: {uhci_td: 128}\n"))
	f.Add([]byte("workloads: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadConfig(path, nil)
		if err == nil {
			err = cfg.Validate()
		}
		var ue usageError
		if err != nil && !errors.As(err, &ue) {
			t.Fatalf("not a usage error: %v", err)
		}
	})
}

// FuzzResults: whatever a results file holds, reading it either fails
// with an error or gives a document that compare and the Markdown table
// can use.
// go test -fuzz FuzzResults ./cmd/dmabench
func FuzzResults(f *testing.F) {
	f.Add([]byte(`{"schema":"dmabench/results/v1","cells":[{"scenario":"a","allocator":"b","platform":"c","seed":1,"metrics":{"host_ns_per_op":3,"allocs":2}}]}`))
	f.Add([]byte(`{"schema":"dmabench/results/v1","cells":[{"scenario":"a","allocator":"b","platform":"c","seed":1,"refused":"no"}]}`))
	f.Add([]byte(`{"cells":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := cells.ParseDocument("fuzz.json", data)
		if err != nil {
			return
		}
		metrics := []string{"allocs", "host_ns_per_op"}
		changes, _ := report.Compare(doc, doc, report.CompareOptions{Metrics: metrics, Alpha: 0.05, Holm: true})
		if err := report.CompareTable(io.Discard, changes, metrics); err != nil {
			t.Fatal(err)
		}
		for _, c := range changes {
			if c.Worse {
				t.Fatalf("a document compared with itself got worse: %+v", c)
			}
		}
		if err := report.WriteMarkdown(io.Discard, doc, metrics); err != nil {
			t.Fatal(err)
		}
	})
}
