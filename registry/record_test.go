package registry

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/matrix"
	"github.com/dmabench/dmabench/metrics"
	"github.com/dmabench/dmabench/workloads/trace"
)

// TestRecordReplayIsExact records every workload and scenario on every
// platform (the allocators taking turns) and replays the trace, with
// nothing but the trace: the replay must give exactly the recorded run's
// modeled metrics, pressure scenarios included, because the trace carries
// the knobs that shaped the run.
func TestRecordReplayIsExact(t *testing.T) {
	base := defaultConfig(t)
	var scenarios []string
	for _, w := range append(WorkloadNames(), ScenarioNames(base)...) {
		if we := workloadByName(w); we != nil {
			scenarios = append(scenarios, we.ScenarioNames(base)...)
		} else {
			scenarios = append(scenarios, w)
		}
	}
	allocs := AllocatorNames()
	dir := t.TempDir()
	const events = 4000
	n := 0
	for _, sc := range scenarios {
		for _, p := range PlatformNames() {
			a := allocs[n%len(allocs)]
			n++
			c := matrix.Cell{Scenario: sc, Allocator: a, Platform: p, Seed: uint64(n)}
			path := filepath.Join(dir, fmt.Sprintf("%d.trace", n))
			var buf bytes.Buffer
			b := NewBuilder(base)
			if _, err := matrix.Record(c, b, events, trace.NewWriter(&buf), b.TraceKnobs(c)); err != nil {
				if strings.Contains(err.Error(), "refused") {
					continue // slab-direct behind an IOMMU
				}
				t.Fatalf("%s: record: %v", c, err)
			}
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			direct := matrix.RunCell(c, NewBuilder(base), events)
			cfg := defaultConfig(t)
			cfg.Workloads = []string{TracePrefix + path}
			if _, err := cfg.ApplyTraceKnobs(); err != nil {
				t.Fatal(err)
			}
			rc := matrix.Cell{Scenario: TracePrefix + path, Allocator: a, Platform: p, Seed: 1}
			replayed := matrix.RunCell(rc, NewBuilder(cfg), events)
			if direct.Err != nil || replayed.Err != nil {
				t.Fatalf("%s: direct %v, replayed %v", c, direct.Err, replayed.Err)
			}
			for _, m := range metrics.Catalog {
				k := m.Key
				dv, dok := direct.Metrics[k]
				rv, rok := replayed.Metrics[k]
				if strings.HasPrefix(k, "host_") || !dok || !rok {
					continue
				}
				if dv != rv {
					t.Errorf("%s: %s: recorded run %v, replay %v", c, k, dv, rv)
				}
			}
		}
	}
}
