package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/matrix"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestList(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want []string
	}{
		{"allocators", []string{"pcipool", "dmapool", "slab", "slab-direct", "mempool", "dmaalloc", "coherent"}},
		{"platforms", []string{"x86", "iommu", "sa1111"}},
		{"workloads", []string{"usb-uhci", "usb-ohci", "usb-ehci", "poolbench"}},
	} {
		code, out, _ := run(t, "list", tc.arg)
		if code != 0 {
			t.Fatalf("list %s: exit %d", tc.arg, code)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("list %s does not show %s:\n%s", tc.arg, w, out)
			}
		}
	}
	if code, _, _ := run(t, "list", "widgets"); code != 2 {
		t.Fatalf("list widgets: exit %d, want 2", code)
	}
}

type resultsFile struct {
	Traces map[string]string `json:"traces"`
	Schema string            `json:"schema"`
	Tool   map[string]any    `json:"tool"`
	Host   map[string]any    `json:"host"`
	Config map[string]any    `json:"config"`
	Cells  []matrix.Result   `json:"cells"`
}

func readResults(t *testing.T, path string) resultsFile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r resultsFile
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRunWritesResults(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := run(t, "run", "-w", "usb-uhci,usb-ohci,usb-ehci", "-a", "dmapool", "-p", "x86", "-n", "20000", "-s", "2", "--out", dir, "--name", "r", "-f", "table")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "usb-uhci") || !strings.Contains(out, "modeled_ops_per_sec") {
		t.Fatalf("table missing rows or headers:\n%s", out)
	}
	r := readResults(t, filepath.Join(dir, "r.json"))
	if r.Schema != "dmabench/results/v1" || r.Tool["version"] == "" || r.Host["cpus"] == nil {
		t.Fatalf("header: %+v %+v %+v", r.Schema, r.Tool, r.Host)
	}
	if len(r.Cells) != 6 {
		t.Fatalf("%d cells, want 3 workloads x 2 seeds", len(r.Cells))
	}
	keys := []string{"events", "allocs", "frees", "alloc_failures", "failure_rate", "atomic_share", "peak_live_bytes",
		"peak_reserved_bytes", "frag_internal", "frag_peak_ratio", "host_ns_per_op", "modeled_ops_per_sec"}
	for _, c := range r.Cells {
		for _, k := range keys {
			if _, ok := c.Metrics[k]; !ok {
				t.Fatalf("cell %s lacks %s", c.Cell, k)
			}
		}
		if c.Metrics["events"] != 20000 || c.Metrics["allocs"] == 0 {
			t.Fatalf("cell %s: %v", c.Cell, c.Metrics)
		}
		if c.Scenario == "usb-uhci" && c.Metrics["atomic_share"] < 0.99 {
			t.Fatalf("UHCI TDs are GFP_ATOMIC, atomic share %v", c.Metrics["atomic_share"])
		}
		if f := c.Metrics["frag_internal"]; f < 0 || f > 1 {
			t.Fatalf("frag_internal %v out of [0,1]", f)
		}
	}
	if r.Config["events"].(float64) != 20000 {
		t.Fatalf("config in results does not show the flag's value: %v", r.Config["events"])
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*tmp"))
	if len(leftovers) > 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
}

// modeled is a results file's cells as JSON without their host timings:
// what is the same for a configuration and seed on any machine.
func modeled(t *testing.T, path string) []byte {
	r := readResults(t, path)
	dropHost(r.Cells...)
	b, _ := json.Marshal(r.Cells)
	return b
}

// dropHost deletes the host timings from cells' metrics.
func dropHost(cells ...matrix.Result) {
	for _, c := range cells {
		for k := range c.Metrics {
			if strings.HasPrefix(k, "host_") {
				delete(c.Metrics, k)
			}
		}
	}
}

func TestSameSeedSameResultsAtAnyParallelism(t *testing.T) {
	dir := t.TempDir()
	for _, j := range []string{"1", "2"} {
		if code, _, errs := run(t, "run", "-w", "usb-uhci,scsi,netrx,mixed-pressure", "-p", "x86,iommu,sa1111", "-n", "30000", "-s", "2", "-j", j, "--out", dir, "--name", "j"+j, "-f", "json"); code != 0 {
			t.Fatalf("-j%s: exit %d %s", j, code, errs)
		}
	}
	a, b := modeled(t, filepath.Join(dir, "j1.json")), modeled(t, filepath.Join(dir, "j2.json"))
	if !bytes.Equal(a, b) {
		t.Fatalf("modeled metrics differ between -j1 and -j2:\n%s\n%s", a, b)
	}
}

func TestBadInputExits2(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("seeds: 2\nplatform:\n  x86:\n    rma_mib: 128\n"), 0o644)
	notYAML := filepath.Join(dir, "broken.yaml")
	os.WriteFile(notYAML, []byte("seeds: [1,\n"), 0o644)
	badValue := filepath.Join(dir, "value.yaml")
	os.WriteFile(badValue, []byte("platform:\n  x86:\n    ram_mib: 1\n"), 0o644)
	badType := filepath.Join(dir, "type.yaml")
	os.WriteFile(badType, []byte("seeds: 1\nplatform:\n  x86:\n    ram_mib: lots\n"), 0o644)
	badSet := filepath.Join(dir, "set.yaml")
	os.WriteFile(badSet, []byte("scenario:\n  s:\n    workloads: [netrx]\n    workload:\n      netrx:\n        rx_bufers: pool\n"), 0o644)
	badSetValue := filepath.Join(dir, "setvalue.yaml")
	os.WriteFile(badSetValue, []byte("scenario:\n  s:\n    workloads: [netrx]\n    workload:\n      netrx:\n        rx_buffers: ring\n"), 0o644)
	// A run-level knob every scenario inherits is reported as itself.
	badKnob := filepath.Join(dir, "knob.yaml")
	os.WriteFile(badKnob, []byte("workload:\n  usb:\n    storage:\n      queue_depth: -3\n"), 0o644)
	badStart := filepath.Join(dir, "start.yaml")
	os.WriteFile(badStart, []byte("scenario:\n  late:\n    workloads: [scsi]\n    start_ms: {netrx: 5}\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"run", "-a", "nosuch"}, []string{`unknown allocator "nosuch"`, "dmapool"}},
		{[]string{"run", "-w", "usb-xhci"}, []string{`unknown workload "usb-xhci"`, "usb-uhci, usb-ohci, usb-ehci"}},
		{[]string{"run", "-p", "vax"}, []string{`unknown platform "vax"`, "x86"}},
		{[]string{"run", "-c", bad}, []string{"bad.yaml:4", `"platform.x86.rma_mib"`, "ram_mib"}},
		{[]string{"run", "-c", notYAML}, []string{"broken.yaml"}},
		{[]string{"run", "-c", badValue}, []string{"value.yaml:3: platform.x86.ram_mib:", "ram_mib 1"}},
		{[]string{"run", "-c", filepath.Join(dir, "missing.yaml")}, []string{"missing.yaml"}},
		{[]string{"run", "-c", badType}, []string{"type.yaml:4", "platform.x86.ram_mib", "want a whole number"}},
		{[]string{"run", "-c", badSet}, []string{"set.yaml:6", `"scenario.s.workload.netrx.rx_bufers"`}},
		{[]string{"run", "-c", badSetValue}, []string{"scenario.s:", `rx_buffers "ring"`}},
		{[]string{"run", "-c", badKnob}, []string{"knob.yaml:4: workload.usb.storage.queue_depth: usb.storage.queue_depth -3"}},
		{[]string{"run", "-c", badStart}, []string{"start.yaml:4", "scenario.late.start_ms.netrx", "not one of the scenario's workloads (scsi)"}},
		{[]string{"run", "--bogus"}, []string{"bogus"}},
		{[]string{"run", "-s", "0"}, []string{"seeds 0"}},
		{[]string{"run", "-f", "xml"}, []string{`format "xml"`, "table, markdown, csv, json, benchfmt, gha"}},
		{[]string{"frobnicate"}, []string{"unknown command"}},
	} {
		code, _, errs := run(t, append(tc.args, "--out", filepath.Join(dir, "out"))...)
		if tc.args[0] == "frobnicate" {
			code, _, errs = run(t, tc.args...)
		}
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", tc.args, code, errs)
		}
		for _, w := range tc.want {
			if !strings.Contains(errs, w) {
				t.Errorf("%v: message %q lacks %q", tc.args, errs, w)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Fatal("a failed run wrote results")
	}
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	os.WriteFile(file, []byte("seeds: 2\nevents: 5000\nworkloads: [usb-ehci]\nallocators: [dmapool]\nplatforms: [x86]\n"), 0o644)
	t.Setenv("DMABENCH_SEEDS", "3")
	t.Setenv("DMABENCH_PLATFORM_X86_RAM_MIB", "512")
	code, _, errs := run(t, "run", "-c", file, "-n", "4000", "--out", dir, "--name", "p")
	if code != 0 {
		t.Fatal(errs)
	}
	r := readResults(t, filepath.Join(dir, "p.json"))
	// flag (events) > env (seeds, ram) > file (workloads) > embedded.
	if len(r.Cells) != 3 || r.Cells[0].Metrics["events"] != 4000 || r.Cells[0].Scenario != "usb-ehci" {
		t.Fatalf("cells %d events %v scenario %s", len(r.Cells), r.Cells[0].Metrics["events"], r.Cells[0].Scenario)
	}
	ram := r.Config["platform"].(map[string]any)["x86"].(map[string]any)["ram_mib"]
	if ram.(float64) != 512 {
		t.Fatalf("env did not override the file: ram_mib %v", ram)
	}
	t.Setenv("DMABENCH_SEEDZ", "1")
	if code, _, errs := run(t, "run", "--out", dir); code != 2 || !strings.Contains(errs, "DMABENCH_SEEDZ") {
		t.Fatalf("misspelled env: exit %d %s", code, errs)
	}
}

// TestColumns: --columns adds metrics to the table and Markdown outputs,
// from the flag or the environment; a name the metric catalog does not
// declare is bad input, named with the valid ones.
func TestColumns(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := run(t, "run", "-w", "netrx", "-a", "dmapool", "-p", "x86", "-n", "5000", "-f", "markdown", "--columns", "rx_packets", "--out", dir, "--name", "c")
	if code != 0 || !strings.Contains(out, "| rx_packets |") {
		t.Fatalf("exit %d\noutput:\n%s\nstderr:\n%s", code, out, errs)
	}
	code, _, errs = run(t, "run", "-w", "netrx", "-a", "dmapool", "-p", "x86", "-n", "5000", "--columns", "rx_packets,nosuch", "--out", dir, "--name", "e")
	if code != 2 || !strings.Contains(errs, `unknown metric "nosuch"`) || !strings.Contains(errs, "rx_drops") {
		t.Fatalf("unknown column: exit %d, %s", code, errs)
	}
	t.Setenv("DMABENCH_COLUMNS", "rx_drops")
	code, out, errs = run(t, "run", "-w", "netrx", "-a", "dmapool", "-p", "x86", "-n", "5000", "--out", dir, "--name", "d", "-f", "table")
	if code != 0 || !strings.Contains(out, "rx_drops") || strings.Contains(errs, "column") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
}

// TestScenarioSetsKnobs: a scenario's own sections set knobs for its cells
// only, on top of what the run was given (here the environment).
func TestScenarioSetsKnobs(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	os.WriteFile(file, []byte("scenario:\n  pooled:\n    workloads: [netrx]\n    workload:\n      netrx:\n        rx_buffers: pool\n"), 0o644)
	t.Setenv("DMABENCH_WORKLOAD_NETRX_RING_SIZE", "128")
	cfg, err := loadConfig(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	own, run := cfg.ForScenario("pooled").Workload.NetRX, cfg.Workload.NetRX
	if own.RxBuffers != "pool" || own.RingSize != 128 || run.RxBuffers != "map" || run.RingSize != 128 {
		t.Fatalf("scenario netrx %+v, run netrx %+v", own, run)
	}
	if cfg.ForScenario("netrx") != cfg {
		t.Fatal("a workload without settings of its own got a config of its own")
	}
}

// TestCPUProfile: --cpuprofile writes a profile pprof can read, for any
// command; a path that cannot be created is a usage error.
func TestCPUProfile(t *testing.T) {
	prof := filepath.Join(t.TempDir(), "cpu.prof")
	code, _, errs := run(t, "run", "-w", "usb-ehci", "-a", "dmapool", "-p", "x86", "-n", "20000", "--out", t.TempDir(), "--cpuprofile", prof)
	if code != 0 {
		t.Fatal(errs)
	}
	// A pprof profile is a gzipped protocol buffer.
	data, err := os.ReadFile(prof)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("the profile is not gzip: %v", err)
	}
	if body, err := io.ReadAll(zr); err != nil || len(body) == 0 {
		t.Fatalf("the profile is empty or truncated: %d bytes, %v", len(body), err)
	}
	if code, _, errs := run(t, "list", "--cpuprofile", filepath.Join(t.TempDir(), "no", "such", "dir", "p")); code != 2 || !strings.Contains(errs, "--cpuprofile") {
		t.Fatalf("bad profile path: exit %d, %q", code, errs)
	}
}

func defaultConfig(t testing.TB) *Config {
	cfg, err := loadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestListPools: list pools names the pools each workload creates, the
// names min_nr_by_pool takes; a name no workload creates is refused with
// the valid ones.
func TestListPools(t *testing.T) {
	code, out, errs := run(t, "list", "pools", "-w", "usb-ehci")
	if code != 0 || !strings.Contains(out, "ehci_qtd, ehci_qh, ehci_itd") {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
	if _, out, _ := run(t, "list", "pools"); !strings.Contains(out, "hotplug-pressure") || !strings.Contains(out, "rx_buf") {
		t.Fatalf("scenarios' pools missing:\n%s", out)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	os.WriteFile(file, []byte("allocator:\n  mempool:\n    min_nr_by_pool:\n      uhci_tds: 3\n"), 0o644)
	code, _, errs = run(t, "run", "-c", file, "--out", filepath.Join(dir, "out"))
	if code != 2 || !strings.Contains(errs, `"uhci_tds"`) || !strings.Contains(errs, "uhci_td)") || !strings.Contains(errs, "c.yaml:4") {
		t.Fatalf("misspelled pool: exit %d %s", code, errs)
	}
}

// TestSetAndSeedList: --set sets any knob over the file and the
// environment, checked as a file's keys are; --seed-list runs the seeds
// given; replay refuses -w.
func TestSetAndSeedList(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DMABENCH_PLATFORM_X86_RAM_MIB", "128")
	code, _, errs := run(t, "run", "-w", "usb-ehci", "-a", "dmapool", "-p", "x86", "-n", "2000", "--set", "platform.x86.ram_mib=64",
		"--set", "platform.pressure.fill_mib_per_s=400", "--seed-list", "3,7,11", "--out", dir, "--name", "s")
	if code != 0 {
		t.Fatal(errs)
	}
	r := readResults(t, filepath.Join(dir, "s.json"))
	x86 := r.Config["platform"].(map[string]any)["x86"].(map[string]any)
	if x86["ram_mib"] != float64(64) || len(r.Cells) != 3 || r.Cells[0].Seed != 3 || r.Cells[2].Seed != 11 {
		t.Fatalf("ram_mib %v, cells %d, seeds %v..%v", x86["ram_mib"], len(r.Cells), r.Cells[0].Seed, r.Cells[len(r.Cells)-1].Seed)
	}
	for _, tc := range []struct{ set, want string }{
		{"nosuch=1", `unknown key "nosuch"`},
		{"platform=5", `unknown key "platform"`},
		{"platform.x86.ram_mib=lots", "want a whole number"},
		{"workload.usb.storage.read_share=NaN", "finite"},
		{"events", "KEY=VALUE"},
	} {
		if code, _, errs := run(t, "run", "--set", tc.set, "--out", filepath.Join(dir, "x")); code != 2 || !strings.Contains(errs, "--set") || !strings.Contains(errs, tc.want) {
			t.Errorf("--set %s: exit %d %s", tc.set, code, errs)
		}
	}
	if code, _, errs := run(t, "replay", "../../traces/usb-ehci.trace.gz", "-w", "usb-uhci", "--out", filepath.Join(dir, "x")); code != 2 || !strings.Contains(errs, "-w") {
		t.Errorf("replay -w: exit %d %s", code, errs)
	}
}

// TestSummaryFitsOneScreen: the default run prints a summary of at most
// 60 lines none wider than 100 columns, ending with where the results
// are; the whole table is -f table.
func TestSummaryFitsOneScreen(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := run(t, "run", "-n", "2000", "--out", dir, "--name", "s")
	if code != 0 {
		t.Fatal(errs)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) > 60 {
		t.Errorf("%d lines", len(lines))
	}
	for _, l := range lines {
		if n := len([]rune(l)); n > 100 {
			t.Errorf("%d columns: %s", n, l)
		}
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, filepath.Join(dir, "s.json")) {
		t.Errorf("the last line does not say where the results are: %s", last)
	}
	for _, want := range []string{"sa1111", "throughput", "memory held", "failure rate", "atomic pressure", "p99 latency", "refused", "served almost nothing", "iommu-lazy against iommu"} {
		if !strings.Contains(out, want) {
			t.Errorf("the summary lacks %q:\n%s", want, out)
		}
	}
}
