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
			if _, err := matrix.Record(c, b, events, trace.NewWriter(&buf), b.TraceKnobs(c), nil); err != nil {
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

// TestTraceKnobs: a trace's knobs set its cells' config, a key the user
// set wins (with a note), and a knob that names no key is refused naming
// the file and line.
func TestTraceKnobs(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k.trace")
	os.WriteFile(path, []byte("dmabench-trace 1\nknob platform.x86.ram_mib=32\nknob platform.pressure.fill_mib_per_s=400\ndev 0 d mask=0xffffffff\n0 0 process alloc id=0 pool=- dev=0 size=64 gfp=GFP_KERNEL\n"), 0o644)
	cfg := defaultConfig(t)
	cfg.Workloads = []string{TracePrefix + path}
	cfg.explicit = map[string]string{"platform.pressure.fill_mib_per_s": "environment DMABENCH_PLATFORM_PRESSURE_FILL_MIB_PER_S"}
	notes, err := cfg.ApplyTraceKnobs()
	if err != nil {
		t.Fatal(err)
	}
	tc := cfg.ForScenario(TracePrefix + path)
	if tc.Platform.X86.RAMMiB != 32 || tc.Platform.Pressure.FillMiBPerS != cfg.Platform.Pressure.FillMiBPerS || cfg.Platform.X86.RAMMiB == 32 {
		t.Errorf("trace config: ram %d, fill %v; run's ram %d", tc.Platform.X86.RAMMiB, tc.Platform.Pressure.FillMiBPerS, cfg.Platform.X86.RAMMiB)
	}
	if all := strings.Join(notes, "\n"); !strings.Contains(all, "platform.x86.ram_mib=32") || !strings.Contains(all, "not used: environment DMABENCH_PLATFORM_PRESSURE_FILL_MIB_PER_S") {
		t.Errorf("notes: %s", all)
	}
	os.WriteFile(path, []byte("dmabench-trace 1\n# c\nknob platform.x86.ram_gib=32\n"), 0o644)
	if _, err := cfg.ApplyTraceKnobs(); err == nil || !strings.Contains(err.Error(), "k.trace:3: knob platform.x86.ram_gib") {
		t.Errorf("unknown knob: %v", err)
	}
}
