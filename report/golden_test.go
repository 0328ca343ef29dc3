package report_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/cells"
	"github.com/dmabench/dmabench/matrix"
	"github.com/dmabench/dmabench/registry"
	"github.com/dmabench/dmabench/report"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// fixture runs a tiny fixed configuration (usb-ehci and netrx against
// dmapool and pcipool on x86 and sa1111, two seeds, 3000 events) and
// replaces what is not modeled — host timings, tool and host facts — with
// fixed values, so every output of it is the same on any machine.
func fixture(t *testing.T) *cells.Document {
	t.Helper()
	cfg, err := registry.Default()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Workloads = []string{"usb-ehci", "netrx"}
	cfg.Allocators = []string{"dmapool", "pcipool", "slab-direct"}
	cfg.Platforms = []string{"x86", "iommu"}
	cfg.Seeds, cfg.Events = 2, 3000
	rs := matrix.Run(registry.Cells(cfg), registry.NewBuilder(cfg), matrix.Options{Events: cfg.Events, Jobs: 1})
	for i := range rs {
		if rs[i].Err != nil {
			t.Fatal(rs[i].Err)
		}
		if m := rs[i].Metrics; m != nil {
			m["host_ns_per_op"] = float64(10 + i)
			m["host_ns_per_op_lo"], m["host_ns_per_op_hi"] = float64(9+i), float64(11+i)
			m["host_resolved"] = float64(i % 2)
			m["host_harness_ratio"] = 0.5 + float64(i)/100
		}
	}
	doc := cells.NewDocument(cfg, rs)
	doc.Tool = cells.Tool{Name: "dmabench", Version: "golden", Go: "go"}
	doc.Host = cells.Host{OS: "linux", Arch: "amd64", CPUs: 2, CPUModel: "golden CPU"}
	// As read back from a file: the config as raw JSON.
	var buf bytes.Buffer
	if err := report.EncodeJSON(&buf, doc); err != nil {
		t.Fatal(err)
	}
	back, err := cells.ParseDocument("fixture", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	back.Tool, back.Host = doc.Tool, doc.Host
	return back
}

// golden compares got with testdata/golden/name, or rewrites it with
// -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./report -run TestGolden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./report -run TestGolden -update rewrites it; review the diff):\n%s", path, firstDiff(string(want), string(got)))
	}
}

// firstDiff shows the first line that differs.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(w), len(g)) {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + a + "\n  got:  " + b
		}
	}
	return ""
}

// TestGolden checks every output format a person or a tool reads against
// its golden file.
func TestGolden(t *testing.T) {
	doc := fixture(t)
	dir := t.TempDir()
	for _, format := range report.Formats {
		t.Run(format, func(t *testing.T) {
			var b bytes.Buffer
			if err := report.Print(&b, format, doc, []string{"rx_drops", "urb_submit_failures"}, dir, "g"); err != nil {
				t.Fatal(err)
			}
			out := bytes.ReplaceAll(b.Bytes(), []byte(dir), []byte("DIR"))
			if format == "gha" {
				// The file names are the temporary folder's; the files
				// are what the action reads.
				out = nil
				for _, suffix := range []string{"-bigger.json", "-smaller.json"} {
					data, err := os.ReadFile(filepath.Join(dir, "g"+suffix))
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, data...)
				}
			}
			golden(t, format+".golden", out)
		})
	}
	t.Run("compare", func(t *testing.T) {
		// The new result: dmapool's host timings three times slower and
		// one modeled metric worse, for one cell.
		var buf bytes.Buffer
		if err := report.EncodeJSON(&buf, doc); err != nil {
			t.Fatal(err)
		}
		worse, err := cells.ParseDocument("worse", buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		for i := range worse.Cells {
			c := &worse.Cells[i]
			if c.Allocator == "dmapool" && c.Metrics != nil {
				c.Metrics["host_harness_ratio"] *= 3
				if c.Scenario == "usb-ehci" && c.Platform == "x86" {
					c.Metrics["peak_reserved_bytes"] *= 2
				}
			}
		}
		keys := []string{"modeled_ops_per_sec", "peak_reserved_bytes", "host_harness_ratio"}
		changes, missing := report.Compare(doc, worse, report.CompareOptions{Metrics: keys, Threshold: 5, Alpha: 0.05, Holm: true})
		if len(missing) > 0 {
			t.Fatal(missing)
		}
		for _, f := range report.CompareFormats {
			var b bytes.Buffer
			if err := report.WriteCompare(&b, f, changes, keys, 5, f == "gha"); err != nil {
				t.Fatal(err)
			}
			for _, r := range report.Regressions(changes) {
				b.WriteString("regression: " + r + "\n")
			}
			golden(t, "compare-"+f+".golden", b.Bytes())
		}
	})
	t.Run("report-txt", func(t *testing.T) {
		path := filepath.Join(dir, "r.txt")
		if err := report.WriteText(path, []*cells.Document{doc}, []string{"golden.json"}); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(path)
		for _, l := range strings.Split(string(data), "\n") {
			if n := len([]rune(l)); n > report.TextWidth {
				t.Errorf("%d columns: %s", n, l)
			}
		}
		golden(t, "report.txt.golden", data)
	})
	t.Run("report-ab", func(t *testing.T) {
		var buf bytes.Buffer
		if err := report.EncodeJSON(&buf, doc); err != nil {
			t.Fatal(err)
		}
		after, _ := cells.ParseDocument("after", buf.Bytes())
		for i := range after.Cells {
			if m := after.Cells[i].Metrics; m != nil && after.Cells[i].Allocator == "pcipool" {
				m["peak_reserved_bytes"] *= 3
			}
		}
		for _, ext := range []string{".txt", ".md"} {
			path := filepath.Join(dir, "ab"+ext)
			if err := report.WriteAB(path, doc, after, "before.json", "after.json"); err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(path)
			if !strings.Contains(string(data), "worse") || !strings.Contains(string(data), "60.0 KiB") {
				t.Errorf("%s: no worse change shown:\n%s", ext, data)
			}
			golden(t, "report-ab"+ext+".golden", data)
		}
	})
	t.Run("report-md", func(t *testing.T) {
		path := filepath.Join(dir, "r.md")
		if err := report.WriteReport(path, []*cells.Document{doc}, []string{"golden.json"}); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "report.md.golden", data)
	})
}

// TestReportNeverWritesThroughALink: a symbolic link planted where a
// chart goes is replaced by the chart, and what it pointed at is left as
// it was; a charts folder that is itself a link is refused.
func TestReportNeverWritesThroughALink(t *testing.T) {
	doc := fixture(t)
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	charts := filepath.Join(dir, "r-charts")
	os.Mkdir(charts, 0o755)
	if err := os.Symlink(victim, filepath.Join(charts, "01-throughput.svg")); err != nil {
		t.Fatal(err)
	}
	if err := report.WriteReport(filepath.Join(dir, "r.md"), []*cells.Document{doc}, []string{"x"}); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(victim); string(data) != "keep" {
		t.Fatalf("the report wrote through the link: %q", data)
	}
	if fi, err := os.Lstat(filepath.Join(charts, "01-throughput.svg")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("the chart is not a file of its own: %v %v", fi, err)
	}
	other := filepath.Join(dir, "s-charts")
	if err := os.Symlink(t.TempDir(), other); err != nil {
		t.Fatal(err)
	}
	if err := report.WriteReport(filepath.Join(dir, "s.md"), []*cells.Document{doc}, []string{"x"}); err == nil {
		t.Fatal("a charts folder that is a link was written into")
	}
}
