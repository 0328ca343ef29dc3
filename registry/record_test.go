package registry

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/engine"
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

// delayCounter records nothing but how many outcomes were of events the
// engine ran later than their time (a copy, not the source's event).
type delayCounter struct {
	evs     []dma.Event
	delayed int
}

func (d *delayCounter) Record(o *engine.Outcome) {
	if o.Event != nil && (len(d.evs) == 0 || uintptr(unsafe.Pointer(o.Event)) < uintptr(unsafe.Pointer(&d.evs[0])) ||
		uintptr(unsafe.Pointer(o.Event)) > uintptr(unsafe.Pointer(&d.evs[len(d.evs)-1]))) {
		d.delayed++
	}
}

// TestEngineLeavesEventsAlone: a replay never writes the events its
// source hands out, not even the time of an event whose caller was
// still asleep when it came due (the engine runs a copy), so that one
// decoded stream can feed several replays. Streams recorded under
// pressure on the SA-1111 (where callers sleep) are replayed in place,
// there and on the other platforms.
func TestEngineLeavesEventsAlone(t *testing.T) {
	base := defaultConfig(t)
	delayed := 0
	for _, sc := range []string{"hotplug-pressure", "ohci-1mib-2002", "mixed-pressure"} {
		var buf bytes.Buffer
		b := NewBuilder(base)
		c := matrix.Cell{Scenario: sc, Allocator: "pcipool", Platform: "sa1111", Seed: 1}
		if _, err := matrix.Record(c, b, 20_000, trace.NewWriter(&buf), b.TraceKnobs(c), nil); err != nil {
			t.Fatal(err)
		}
		r, err := trace.NewReader(sc, bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		var evs []dma.Event
		for {
			var e dma.Event
			if r.Next(&e) != nil {
				break
			}
			e.Segs = slices.Clone(e.Segs)
			evs = append(evs, e)
		}
		for _, p := range PlatformNames() {
			for _, a := range []string{"pcipool", "dmapool", "mempool"} {
				plat, alloc, err := NewBuilder(base).Machine(matrix.Cell{Scenario: sc, Allocator: a, Platform: p, Seed: 1})
				if err != nil {
					continue
				}
				in := slices.Clone(evs)
				for i := range in {
					in[i].Segs = slices.Clone(evs[i].Segs)
				}
				rec := &delayCounter{evs: in}
				if _, err := engine.New(plat, alloc, rec, &dma.List{Events: in}).Run(int64(len(in))); err != nil {
					t.Fatalf("%s on %s, %s: %v", sc, p, a, err)
				}
				if !reflect.DeepEqual(in, evs) {
					t.Fatalf("%s on %s, %s: the replay wrote its source's events", sc, p, a)
				}
				delayed += rec.delayed
			}
		}
	}
	if delayed == 0 {
		t.Fatal("no event ran late: the test shows nothing")
	}
}

// TestSharedTraceCellsMatchAlone: the cells of a run that replay one
// trace share its decoding, taking turns on one thread (in one group at
// -j 1, in two at -j 2); each gives exactly the modeled results it gives
// run alone. Traces of one thread, of several, and of a pressure scenario
// whose callers sleep; a model that refuses a platform is refused in the
// group without holding the others back.
func TestSharedTraceCellsMatchAlone(t *testing.T) {
	base := defaultConfig(t)
	dir := t.TempDir()
	const events = 30_000
	var traces []string
	for i, c := range []matrix.Cell{
		{Scenario: "netrx", Allocator: "dmapool", Platform: "x86", Seed: 1},
		{Scenario: "usb-uhci", Allocator: "pcipool", Platform: "x86", Seed: 2},
		{Scenario: "nvme", Allocator: "dmapool", Platform: "iommu", Seed: 3},
		{Scenario: "hotplug-pressure", Allocator: "pcipool", Platform: "sa1111", Seed: 1},
		{Scenario: "ohci-1mib-2002", Allocator: "pcipool", Platform: "sa1111", Seed: 1},
	} {
		var buf bytes.Buffer
		b := NewBuilder(base)
		if _, err := matrix.Record(c, b, events, trace.NewBinaryWriter(&buf), b.TraceKnobs(c), nil); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, fmt.Sprintf("%d.trace.bin", i))
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		traces = append(traces, TracePrefix+path)
	}
	for _, tr := range traces {
		cfg := defaultConfig(t)
		cfg.Workloads = []string{tr}
		if _, err := cfg.ApplyTraceKnobs(); err != nil {
			t.Fatal(err)
		}
		cells := matrix.Expand([]string{tr}, []string{"pcipool", "dmapool", "slab-direct", "mempool", "coherent"}, []string{"x86", "iommu", "sa1111"}, []uint64{1, 2})
		alone := make([]matrix.Result, len(cells))
		for i, c := range cells {
			alone[i] = matrix.RunCell(c, NewBuilder(cfg), events)
		}
		for _, jobs := range []int{1, 2} {
			together := matrix.Run(cells, NewBuilder(cfg), matrix.Options{Events: events, Jobs: jobs})
			for i, c := range cells {
				a, g := alone[i], together[i]
				if a.Err != nil || g.Err != nil || a.Refused != g.Refused {
					t.Fatalf("%s -j %d: alone %v %q, together %v %q", c, jobs, a.Err, a.Refused, g.Err, g.Refused)
				}
				if a.Refused != "" {
					continue
				}
				for k, v := range a.Metrics {
					if !strings.HasPrefix(k, "host_") && g.Metrics[k] != v {
						t.Errorf("%s -j %d: %s alone %v, together %v", c, jobs, k, v, g.Metrics[k])
					}
				}
				if len(a.Misuse) != len(g.Misuse) || len(a.Leaks) != len(g.Leaks) || len(a.Pools) != len(g.Pools) {
					t.Errorf("%s -j %d: misuse, leaks or pools differ", c, jobs)
				}
			}
		}
	}
}
