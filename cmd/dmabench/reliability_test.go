package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dmabench/dmabench/registry"
)

// badCase is one bad input: the arguments (with {dir} for the case's own
// folder and {out} for an output folder that must stay absent), files to
// lay out first, environment variables, and what the message must name.
type badCase struct {
	name  string
	args  []string
	files map[string]string
	env   []string
	code  int      // 2 unless set
	want  []string // every one must be in the message
}

// traceLines is a small valid trace; each trace case breaks one thing.
const traceHead = "dmabench-trace 1\ndev 0 d mask=0xffffffff\n"

var traceBody = []string{
	"0 0 process pool_create id=0 dev=0 size=64 align=16 boundary=4096 name=p",
	"1 0 process alloc id=0 pool=0 dev=0 size=64 gfp=GFP_KERNEL",
	"2 0 process map id=1 dev=0 size=2048 dir=to_device gfp=GFP_ATOMIC",
	"3 0 process map_sg id=2 dev=0 dir=from_device gfp=GFP_ATOMIC segs=4096,512",
	"4 1 hardirq unmap_sg id=2 dir=from_device segs=4096,512",
	"5 1 hardirq unmap id=1 size=2048 dir=to_device",
	"6 1 hardirq free id=0",
	"7 0 process pool_destroy id=0",
}

// traceWith returns the trace with line i (0-based in traceBody) replaced.
func traceWith(i int, line string) string {
	body := slices.Clone(traceBody)
	body[i] = line
	return traceHead + strings.Join(body, "\n") + "\n"
}

// badCases is the catalogue: traces, ftrace text, config files,
// environment variables, flags, results files and output paths.
func badCases(t *testing.T) []badCase {
	var cs []badCase
	add := func(c badCase) { cs = append(cs, c) }
	replay := func(name, text string, want ...string) {
		add(badCase{name: "trace/" + name, args: []string{"replay", "{dir}/t.trace", "-a", "dmapool", "-p", "x86", "--out", "{out}"},
			files: map[string]string{"t.trace": text}, want: append([]string{"t.trace:"}, want...)})
	}
	// Traces: each field of each kind of line, broken one way at a time.
	fieldBreaks := []struct{ from, to, want string }{
		{"id=0", "id=-1", "id"}, {"id=0", "id=x", "id"}, {"id=0", "id=99999999999999999999", "id"},
		{"dev=0", "dev=7", "dev"}, {"dev=0", "dev=", "dev"},
		{"size=64", "size=0", "size"}, {"size=64", "size=-64", "size"}, {"size=64", "size=18446744073709551616", "size"},
		{"size=2048", "size=4294967296", "size"},
		{"gfp=GFP_KERNEL", "gfp=GFP_SOMETIMES", "gfp"}, {"gfp=GFP_ATOMIC", "gfp=", "gfp"},
		{"dir=to_device", "dir=sideways", "dir"}, {"dir=from_device", "dir=", "dir"},
		{"align=16", "align=24", "align"}, {"boundary=4096", "boundary=3000", "boundary"},
		{"segs=4096,512", "segs=4096,,512", "segs"}, {"segs=4096,512", "segs=4096,x", "segs"},
		{"pool=0", "pool=5", "pool"},
	}
	for i, line := range traceBody {
		for _, b := range fieldBreaks {
			if strings.Contains(line, b.from) {
				replay(fmt.Sprintf("line%d-%s", i+3, b.to), traceWith(i, strings.Replace(line, b.from, b.to, 1)), fmt.Sprintf(":%d:", i+3), b.want)
			}
		}
		tok := strings.Fields(line)
		replay(fmt.Sprintf("line%d-time", i+3), traceWith(i, "x"+line), fmt.Sprintf(":%d:", i+3), "time")
		replay(fmt.Sprintf("line%d-time-2^64", i+3), traceWith(i, "18446744073709551616"+line[1:]), fmt.Sprintf(":%d:", i+3), "time")
		replay(fmt.Sprintf("line%d-thread", i+3), traceWith(i, tok[0]+" 99999999 "+strings.Join(tok[2:], " ")), fmt.Sprintf(":%d:", i+3), "thread")
		replay(fmt.Sprintf("line%d-context", i+3), traceWith(i, tok[0]+" "+tok[1]+" userspace "+strings.Join(tok[3:], " ")), fmt.Sprintf(":%d:", i+3), "context")
		replay(fmt.Sprintf("line%d-kind", i+3), traceWith(i, strings.Join(tok[:3], " ")+" frobnicate "+strings.Join(tok[4:], " ")), fmt.Sprintf(":%d:", i+3), "kind")
		replay(fmt.Sprintf("line%d-unknown-field", i+3), traceWith(i, line+" colour=blue"), fmt.Sprintf(":%d:", i+3), "colour")
		replay(fmt.Sprintf("line%d-not-key-value", i+3), traceWith(i, line+" blue"), fmt.Sprintf(":%d:", i+3))
		replay(fmt.Sprintf("line%d-id-twice", i+3), traceWith(i, line+" id=9"), fmt.Sprintf(":%d:", i+3), "id", "twice")
		replay(fmt.Sprintf("line%d-control-bytes", i+3), traceWith(i, line+" \x01\x02=\x1b[31m"), fmt.Sprintf(":%d:", i+3))
		replay(fmt.Sprintf("line%d-no-id", i+3), traceWith(i, strings.Replace(line, " id=", " idx=", 1)), fmt.Sprintf(":%d:", i+3))
	}
	replay("empty", "", ":1:", "header")
	replay("no-header", strings.Join(traceBody, "\n")+"\n", ":1:", "header")
	replay("wrong-version", "dmabench-trace 9\n", ":1:", "header")
	replay("binary", "\x00\x01\x02\x03\xff\xfe", ":1:", "header")
	replay("long-first-line", strings.Repeat("x", 70000)+"\n", ":1:")
	replay("long-line", traceHead+strings.Repeat("y", 70000)+"\n", ":3:")
	replay("time-backwards", traceWith(1, "0"+traceBody[1][1:])+"0 0 process free id=0\n", ":11:", "time")
	replay("dev-undeclared-mask", "dmabench-trace 1\ndev 0 d mask=0x1000\n", ":2:")
	replay("dev-bad", "dmabench-trace 1\ndev x d mask=0xff\n", ":2:")
	add(badCase{name: "trace/bad-gzip", args: []string{"replay", "{dir}/t.trace.gz", "-a", "dmapool", "-p", "x86", "--out", "{out}"},
		files: map[string]string{"t.trace.gz": "\x1f\x8b\x08\x00broken"}, want: []string{"t.trace.gz"}})
	add(badCase{name: "trace/missing", args: []string{"replay", "{dir}/none.trace", "--out", "{out}"}, want: []string{"none.trace"}})
	add(badCase{name: "trace/dev-zero", args: []string{"replay", "/dev/zero", "--out", "{out}"}, want: []string{"/dev/zero", "not a regular file"}})
	add(badCase{name: "trace/folder", args: []string{"replay", "{dir}", "--out", "{out}"}, want: []string{"not a regular file"}})

	// ftrace captures for import.
	add(badCase{name: "import/missing", args: []string{"import", "ftrace", "{dir}/none.txt", "-o", "{dir}/o.trace"}, want: []string{"none.txt"}})
	add(badCase{name: "import/no-output", args: []string{"import", "ftrace", "{dir}/in.txt"}, files: map[string]string{"in.txt": "x"}, want: []string{"-o"}})
	add(badCase{name: "import/long-line", args: []string{"import", "ftrace", "{dir}/in.txt", "-o", "{dir}/o.trace"},
		files: map[string]string{"in.txt": "t-1 [0] 1.0: kfree: ptr=1\n" + strings.Repeat("z", 2<<20) + "\n"}, want: []string{"in.txt:2"}})
	add(badCase{name: "import/output-is-folder", args: []string{"import", "ftrace", "{dir}/in.txt", "-o", "{dir}"},
		files: map[string]string{"in.txt": "t-1 [0] 1.0: kfree: ptr=1\n"}, want: []string{"-o"}})
	add(badCase{name: "import/bad-gzip", args: []string{"import", "ftrace", "{dir}/in.txt.gz", "-o", "{dir}/o.trace"},
		files: map[string]string{"in.txt.gz": "\x1f\x8b\x08junk"}, want: []string{"in.txt.gz"}})
	add(badCase{name: "validate/pools-not-counts", args: []string{"validate", "pools", "{dir}/p"}, files: map[string]string{"p": "poolinfo - 0.1\nbuffer-32 a b c d\n"}, want: []string{"p:2", "field"}})
	add(badCase{name: "validate/slabinfo-header", args: []string{"validate", "slabinfo", "{dir}/s"}, files: map[string]string{"s": "not slabinfo\n"}, want: []string{"s:1", "slabinfo"}})
	add(badCase{name: "validate/ftrace-kmalloc", args: []string{"validate", "ftrace", "{dir}/f"}, files: map[string]string{"f": "t-1 [0] 1.0: kmalloc: ptr=0x1 bytes_req=x bytes_alloc=8\n"}, want: []string{"f: nothing to validate", "bytes_req"}})

	// Config files: every numeric knob past its bound, then the shapes.
	kinds := registry.KnobKinds()
	var keys []string
	for k := range kinds {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		kind := kinds[k]
		if strings.Contains(k, "*") || (kind != reflect.Int && kind != reflect.Int64 && kind != reflect.Float64) {
			continue
		}
		value := "99999999999999"
		if kind == reflect.Float64 {
			value = ".nan"
		}
		parts := strings.Split(k, ".")
		var y strings.Builder
		for i, p := range parts {
			y.WriteString(strings.Repeat("  ", i) + p + ":")
			if i == len(parts)-1 {
				y.WriteString(" " + value)
			}
			y.WriteString("\n")
		}
		add(badCase{name: "config/" + k, args: []string{"run", "-c", "{dir}/c.yaml", "--out", "{out}"}, files: map[string]string{"c.yaml": y.String()},
			want: []string{fmt.Sprintf("c.yaml:%d", len(parts)), k}})
		env := "DMABENCH_" + strings.ToUpper(strings.ReplaceAll(k, ".", "_"))
		envValue := "99999999999999"
		if kind == reflect.Float64 {
			envValue = "Inf"
		}
		add(badCase{name: "env/" + k, args: []string{"run", "--out", "{out}"}, env: []string{env + "=" + envValue}, want: []string{env}})
	}
	config := func(name, text string, want ...string) {
		add(badCase{name: "config/" + name, args: []string{"run", "-c", "{dir}/c.yaml", "--out", "{out}"}, files: map[string]string{"c.yaml": text}, want: append([]string{"c.yaml"}, want...)})
	}
	config("unknown-key", "seeds: 1\nplatfrom: {}\n", ":2", "platfrom")
	config("scalar-section", "platform: 5\n", ":1", "platform")
	config("section-value", "seeds:\n  a: 1\n", "seeds")
	config("second-document", "seeds: 2\n---\nseeds: 3\n", ":3", "second")
	config("not-yaml", "seeds: [1,\n")
	config("list-top", "- 1\n- 2\n", ":1", "top level")
	config("events-float", "events: 1e20\n", ":1", "events")
	config("seeds-zero", "seeds: 0\n", "seeds")
	config("seeds-many", "seeds: 1000000\n", ":1", "seeds")
	config("unknown-workload", "workloads: [usb-xhci]\n", "usb-xhci")
	config("unknown-allocator", "allocators: [slob]\n", "slob")
	config("unknown-platform", "platforms: [vax]\n", "vax")
	config("bad-format", "format: xml\n", "format")
	config("bad-column", "columns: [nosuch]\n", "nosuch")
	config("bad-map-failure", "platform:\n  map_failure: maybe\n", "map_failure")
	config("bad-coherent-gfp", "allocator:\n  dmapool:\n    coherent_gfp: sometimes\n", "coherent_gfp")
	config("scenario-unknown-workload", "scenario:\n  s:\n    workloads: [nosuch]\n", "scenario.s")
	config("scenario-start", "scenario:\n  s:\n    workloads: [scsi]\n    start_ms: {scsi: -1}\n", "start_ms")
	config("scenario-knob", "scenario:\n  s:\n    workloads: [scsi]\n    platform:\n      x86:\n        ram_mib: 1\n", "scenario.s")
	config("over-name-slash", "name: a/b\n", "name")
	config("cells-too-many", "seeds: 10000\nworkloads: [usb-uhci, usb-ohci, usb-ehci, scsi, netrx, poolbench, mixed]\n", "cells")
	add(badCase{name: "config/missing", args: []string{"run", "-c", "{dir}/none.yaml", "--out", "{out}"}, want: []string{"none.yaml"}})
	add(badCase{name: "env/unknown", args: []string{"run", "--out", "{out}"}, env: []string{"DMABENCH_SEEDZ=3"}, want: []string{"DMABENCH_SEEDZ"}})
	add(badCase{name: "env/events-word", args: []string{"run", "--out", "{out}"}, env: []string{"DMABENCH_EVENTS=many"}, want: []string{"DMABENCH_EVENTS"}})

	// Flags.
	flag := func(name string, args []string, want ...string) {
		if args[0] == "run" {
			args = append(args, "--out", "{out}")
		}
		add(badCase{name: "flag/" + name, args: args, want: want})
	}
	flag("unknown", []string{"run", "--bogus"}, "bogus")
	flag("seeds-zero", []string{"run", "-s", "0"}, "seeds")
	flag("seeds-word", []string{"run", "-s", "two"}, "seeds")
	flag("events-negative", []string{"run", "-n", "-1"}, "events")
	flag("events-huge", []string{"run", "-n", "99999999999999"}, "events")
	flag("jobs-negative", []string{"run", "-j", "-1"}, "jobs")
	flag("format", []string{"run", "-f", "xml"}, "format")
	flag("columns", []string{"run", "--columns", "nosuch"}, "nosuch")
	flag("shard-range", []string{"run", "--shard", "5/3"}, "shard")
	flag("shard-word", []string{"run", "--shard", "a/b"}, "shard")
	flag("progress", []string{"run", "--progress", "loud"}, "progress")
	flag("workload", []string{"run", "-w", "usb-xhci"}, "usb-xhci")
	flag("allocator", []string{"run", "-a", "slob"}, "slob")
	flag("platform", []string{"run", "-p", "vax"}, "vax")
	flag("resume-without-name", []string{"run", "--resume"}, "--name")
	flag("name-control", []string{"run", "--name", "a\x01b"}, "control")
	flag("name-long", []string{"run", "--name", strings.Repeat("n", 300)}, "name")
	flag("name-slash", []string{"run", "--name", "a/b"}, "name")
	flag("name-dotdot", []string{"run", "--name", ".."}, "name")
	flag("record-no-output", []string{"record", "-w", "usb-ehci"}, "-o")
	flag("record-events", []string{"record", "-w", "usb-ehci", "-o", "{dir}/r.trace", "-n", "0"}, "-n")
	flag("bench-events", []string{"bench", "-n", "10"}, "-n")
	flag("list-kind", []string{"list", "gadgets"}, "gadgets")
	flag("command", []string{"frobnicate"}, "unknown command")
	flag("replay-args", []string{"replay"}, "arg")
	flag("compare-alpha", []string{"compare", "{dir}/a.json", "{dir}/b.json", "--alpha", "2"}, "alpha")
	flag("compare-metric", []string{"compare", "{dir}/a.json", "{dir}/b.json", "--metric", "nosuch"}, "nosuch")
	flag("report-extension", []string{"report", "{dir}/a.json", "-o", "{dir}/r.pdf"}, ".html")

	// Results files.
	good := goodResults(t)
	results := func(name, text string, want ...string) {
		for _, cmd := range [][]string{{"compare", "{dir}/a.json", "{dir}/b.json"}, {"report", "{dir}/b.json", "-o", "{out}/r.md"}, {"merge", "{dir}/b.json", "-o", "{out}/m.json"}} {
			add(badCase{name: "results/" + cmd[0] + "/" + name, args: cmd, files: map[string]string{"a.json": good, "b.json": text}, want: append([]string{"b.json"}, want...)})
		}
	}
	results("not-json", "{", "b.json")
	results("schema", `{"schema":"other","config":{},"cells":[]}`, "schema")
	results("wrong-type", `{"schema":"dmabench/results/v1","config":{},"cells":[{"seed":"one"}]}`, "seed")
	results("no-config", `{"schema":"dmabench/results/v1","cells":[]}`, "config")
	results("no-metrics", strings.Replace(good, `"metrics"`, `"metricz"`, 1), "no metrics")
	results("duplicate-cell", duplicateCell(t, good), "twice")
	results("outside-config", strings.Replace(good, `"seed": 1`, `"seed": 77`, 1), "not one of")
	add(badCase{name: "results/compare/same-file", args: []string{"compare", "{dir}/a.json", "{dir}/a.json"}, files: map[string]string{"a.json": good}, want: []string{"a.json", "twice"}})
	add(badCase{name: "results/report/same-file", args: []string{"report", "{dir}/a.json", "{dir}/a.json", "-o", "{out}/r.html"}, files: map[string]string{"a.json": good}, want: []string{"a.json", "twice"}})
	add(badCase{name: "results/compare/missing", args: []string{"compare", "{dir}/a.json", "{dir}/none.json"}, files: map[string]string{"a.json": good}, want: []string{"none.json"}})

	// Output paths.
	add(badCase{name: "out/is-a-file", args: []string{"run", "-w", "usb-ehci", "-a", "dmapool", "-p", "x86", "-n", "100", "--out", "{dir}/f"}, files: map[string]string{"f": "x"}, code: 1, want: []string{"f"}})
	add(badCase{name: "out/read-only", args: []string{"run", "-w", "usb-ehci", "-a", "dmapool", "-p", "x86", "-n", "100", "--out", "/proc/dmabench"}, code: 1, want: []string{"/proc/dmabench"}})
	return cs
}

// goodResults is a small valid results file.
var goodOnce struct {
	sync.Once
	text string
}

func goodResults(t *testing.T) string {
	goodOnce.Do(func() {
		dir := t.TempDir()
		if code, _, errs := run(t, "run", "-w", "usb-ehci", "-a", "dmapool", "-p", "x86", "-n", "2000", "-s", "2", "--out", dir, "--name", "g"); code != 0 {
			t.Fatal(errs)
		}
		data, err := os.ReadFile(filepath.Join(dir, "g.json"))
		if err != nil {
			t.Fatal(err)
		}
		goodOnce.text = string(data)
	})
	return goodOnce.text
}

// duplicateCell returns the results with its first cell given twice.
func duplicateCell(t *testing.T, good string) string {
	var doc map[string]any
	if err := json.Unmarshal([]byte(good), &doc); err != nil {
		t.Fatal(err)
	}
	cs := doc["cells"].([]any)
	doc["cells"] = append(cs, cs[0])
	b, _ := json.Marshal(doc)
	return string(b)
}

// TestReliabilityCatalogue runs dmabench on every bad input of the
// catalogue, each in a child process limited to 4 GiB of address space
// and 20 s: the exit status must be the contract's (2 for bad input, 1 for
// an environment failure), the message must name the file and line (and
// field or key, or the flag or variable) where there is one, and no
// results, partial or temporary file may be left behind.
func TestReliabilityCatalogue(t *testing.T) {
	cases := badCases(t)
	if len(cases) < 150 {
		t.Fatalf("the catalogue has %d bad inputs, want at least 150", len(cases))
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			checkBadCase(t, self, c)
		}()
	}
	wg.Wait()
	t.Logf("%d bad inputs", len(cases))
}

func checkBadCase(t *testing.T, self string, c badCase) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	for name, text := range c.files {
		data := []byte(text)
		if strings.HasSuffix(name, ".gz") && !strings.HasPrefix(text, "\x1f\x8b") {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(data)
			zw.Close()
			data = b.Bytes()
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Error(err)
			return
		}
	}
	before := listFiles(dir)
	args := make([]string, len(c.args))
	for i, a := range c.args {
		args[i] = strings.NewReplacer("{dir}", dir, "{out}", out).Replace(a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", `ulimit -v 4194304; exec "$0" "$@"`, self}, args...)...)
	cmd.Env = append(append(os.Environ(), "RUN_TEST_BINARY_AS_DMABENCH=1"), c.env...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Errorf("%s: still running after 20 s", c.name)
		return
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Errorf("%s: %v", c.name, err)
		return
	}
	want := c.code
	if want == 0 {
		want = 2
	}
	msg := stderr.String()
	if code != want {
		t.Errorf("%s: exit %d, want %d: %s", c.name, code, want, msg)
	}
	for _, w := range c.want {
		w = strings.ReplaceAll(w, "{dir}", dir)
		if !strings.Contains(msg, w) {
			t.Errorf("%s: message lacks %q: %s", c.name, w, msg)
		}
	}
	if strings.ContainsAny(msg, "\x00\x01\x02\x1b") {
		t.Errorf("%s: raw control bytes in the message: %q", c.name, msg)
	}
	if strings.Contains(msg, "goroutine ") || strings.Contains(msg, "panic:") {
		t.Errorf("%s: a panic: %s", c.name, msg)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("%s: left %s behind", c.name, out)
	}
	if after := listFiles(dir); !slices.Equal(before, after) {
		t.Errorf("%s: files left behind: before %v, after %v", c.name, before, after)
	}
}

// listFiles lists the files below dir.
func listFiles(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && path != dir {
			out = append(out, strings.TrimPrefix(path, dir))
		}
		return nil
	})
	return out
}
