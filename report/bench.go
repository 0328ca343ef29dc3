package report

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"golang.org/x/perf/benchfmt"

	"github.com/dmabench/dmabench/cells"
	"github.com/dmabench/dmabench/metrics"
)

// benchMetrics are the metrics written in the Go benchmark files: those
// the catalog gives a benchfmt unit.
func benchMetrics() []metrics.Def {
	var out []metrics.Def
	for _, d := range metrics.Catalog {
		if d.Bench != "" {
			out = append(out, d)
		}
	}
	return out
}

// benchName is a cell's benchmark name; '/'-separated key=value parts as
// benchstat reads them.
func benchName(scenario, allocator, platform string) string {
	clean := func(s string) string { return strings.NewReplacer(" ", "_", "/", "|").Replace(s) }
	return fmt.Sprintf("BenchmarkDMA/scenario=%s/allocator=%s/platform=%s", clean(scenario), clean(allocator), clean(platform))
}

// WriteBench writes results in the Go benchmark format through
// golang.org/x/perf's benchfmt writer, laid out as go test -bench prints
// it, so benchstat and other tools read it as it is: one line per cell and
// seed, the seeds as samples. File keys are only what go test prints
// (goos, goarch, pkg, cpu), so two runs that differ in a knob compare in
// one benchstat table; the configuration's hash and the tool's version are
// in the results JSON. No unit is declared assume=exact: a modeled metric
// is exact for one seed but varies across seeds, which are the samples.
func WriteBench(w io.Writer, doc *cells.Document) error {
	bw := benchfmt.NewWriter(w)
	for _, m := range benchMetrics() {
		better := "lower"
		if m.Better == metrics.Higher {
			better = "higher"
		}
		if err := bw.Write(&benchfmt.UnitMetadata{UnitMetadataKey: benchfmt.UnitMetadataKey{Unit: m.Bench, Key: "better"}, OrigUnit: m.Bench, Value: better}); err != nil {
			return err
		}
	}
	res := &benchfmt.Result{}
	res.SetConfig("goos", doc.Host.OS)
	res.SetConfig("goarch", doc.Host.Arch)
	res.SetConfig("pkg", "github.com/dmabench/dmabench")
	if doc.Host.CPUModel != "" {
		res.SetConfig("cpu", doc.Host.CPUModel)
	}
	for i := range res.Config {
		res.Config[i].File = true
	}
	for _, c := range doc.Cells {
		if c.Metrics == nil {
			continue
		}
		res.Name = benchfmt.Name(strings.TrimPrefix(benchName(c.Scenario, c.Allocator, c.Platform), "Benchmark"))
		res.Iters = max(int(c.Metrics["events"]), 1)
		res.Values = res.Values[:0]
		for _, m := range benchMetrics() {
			v, ok := c.Metrics[m.Key]
			if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			res.Values = append(res.Values, benchfmt.Value{Value: v, Unit: m.Bench})
		}
		if err := bw.Write(res); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, "PASS\n")
	return err
}

func formatValue(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.6g", v)
}

// WriteCSV writes one row per cell and seed with every metric.
func WriteCSV(w io.Writer, doc *cells.Document) error {
	keys := MetricKeys(doc.Cells)
	var b strings.Builder
	b.WriteString("scenario,allocator,platform,seed")
	for _, k := range keys {
		b.WriteString("," + k)
	}
	b.WriteString("\n")
	for _, c := range doc.Cells {
		fmt.Fprintf(&b, "%s,%s,%s,%d", csvField(c.Scenario), c.Allocator, c.Platform, c.Seed)
		for _, k := range keys {
			if v, ok := c.Metrics[k]; ok {
				b.WriteString("," + formatValue(v))
			} else {
				b.WriteString(",")
			}
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func csvField(s string) string {
	if strings.ContainsAny(s, ",\"\n") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

// WriteMarkdown writes the terminal table's rows as a Markdown table.
func WriteMarkdown(w io.Writer, doc *cells.Document, columns []string) error {
	keys := append(slices.Clone(TableColumns), columns...)
	var b strings.Builder
	b.WriteString("| scenario | allocator | platform | seeds |")
	for _, k := range keys {
		b.WriteString(" " + k + " |")
	}
	b.WriteString("\n|---|---|---|---:|" + strings.Repeat("---:|", len(keys)) + "\n")
	for _, g := range groups(doc.Cells) {
		if len(g.cells) == 0 {
			fmt.Fprintf(&b, "| %s | %s | %s | refused |%s\n", g.scenario, g.allocator, g.platform, strings.Repeat(" |", len(keys)))
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d |", g.scenario, g.allocator, g.platform, len(g.cells))
		for _, k := range keys {
			b.WriteString(" " + g.column(k) + " |")
		}
		b.WriteString("\n")
	}
	b.WriteString("\n" + TableNote + ".\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// GHAEntry is one value in github-action-benchmark's custom JSON format.
type GHAEntry struct {
	Name  string  `json:"name"`
	Unit  string  `json:"unit"`
	Value float64 `json:"value"`
	Range string  `json:"range,omitempty"`
}

// GHA returns github-action-benchmark entries, one per cell group and
// metric (the median over seeds, its range as min..max): bigger-is-better
// metrics and smaller-is-better ones apart, as the action wants one file
// for each.
func GHA(doc *cells.Document) (bigger, smaller []GHAEntry) {
	for _, g := range groups(doc.Cells) {
		if len(g.cells) == 0 {
			continue
		}
		for _, m := range benchMetrics() {
			vals := g.values(m.Key)
			lo, hi := vals[0], vals[0]
			for _, v := range vals {
				lo, hi = min(lo, v), max(hi, v)
			}
			e := GHAEntry{Name: fmt.Sprintf("%s/%s/%s %s", g.scenario, g.allocator, g.platform, m.Key), Unit: m.Bench, Value: g.median(m.Key)}
			if len(vals) > 1 {
				e.Range = fmt.Sprintf("%s..%s", formatValue(lo), formatValue(hi))
			}
			if m.Better == metrics.Higher {
				bigger = append(bigger, e)
			} else {
				smaller = append(smaller, e)
			}
		}
	}
	return bigger, smaller
}
