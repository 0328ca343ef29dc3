package report

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"golang.org/x/perf/benchmath"

	"github.com/dmabench/dmabench/cells"
	"github.com/dmabench/dmabench/metrics"
)

// Regressions names each change that got significantly worse by more
// than the threshold: cell, metric and delta.
func Regressions(changes []Change) []string {
	var bad []string
	for _, c := range changes {
		if c.Worse && c.OverThreshold {
			bad = append(bad, fmt.Sprintf("%s %s %+.1f%%", c.Cell, c.Metric, 100*c.Delta))
		}
	}
	return bad
}

// Change is one compared metric of one cell group.
type Change struct {
	Cell     string
	Metric   string
	Old, New float64 // medians over seeds
	Delta    float64 // (new-old)/old
	P        float64
	// PAdj is P adjusted for the number of cells compared on the same
	// metric (Holm-Bonferroni), or P when no correction was asked for.
	PAdj          float64
	Significant   bool
	Worse         bool
	OverThreshold bool
	N1, N2        int
}

// CompareOptions select what compare looks at.
type CompareOptions struct {
	Metrics   []string
	Threshold float64 // percent
	Alpha     float64
	// Holm adjusts each sampled metric's p-values for the number of cells
	// tested on it (Holm-Bonferroni): without it, comparing a result with
	// itself over many cells finds a "significant" change about alpha of
	// the time per cell.
	Holm bool
}

type key struct{ scenario, allocator, platform string }

func samples(doc *cells.Document) (map[key]map[string][]float64, []key) {
	out := map[key]map[string][]float64{}
	var order []key
	for _, c := range doc.Cells {
		if c.Metrics == nil {
			continue
		}
		k := key{c.Scenario, c.Allocator, c.Platform}
		if out[k] == nil {
			out[k] = map[string][]float64{}
			order = append(order, k)
		}
		for m, v := range c.Metrics {
			out[k][m] = append(out[k][m], v)
		}
	}
	return out, order
}

// Compare matches cells of two results and compares each chosen metric's
// per-seed samples: exact comparison for modeled metrics (deterministic
// for a seed), a Mann-Whitney U test for host timings, as benchstat does.
// It returns the changes and the cells present in only one result.
func Compare(old, new *cells.Document, opt CompareOptions) ([]Change, []string) {
	os, order := samples(old)
	ns, _ := samples(new)
	var missing []string
	for _, k := range order {
		if ns[k] == nil {
			missing = append(missing, fmt.Sprintf("%s/%s/%s only in the old result", k.scenario, k.allocator, k.platform))
		}
	}
	for k := range ns {
		if os[k] == nil {
			missing = append(missing, fmt.Sprintf("%s/%s/%s only in the new result", k.scenario, k.allocator, k.platform))
		}
	}
	sort.Strings(missing)
	thr := benchmath.DefaultThresholds
	thr.CompareAlpha = opt.Alpha
	var out []Change
	for _, k := range order {
		if ns[k] == nil {
			continue
		}
		for _, m := range opt.Metrics {
			a, b := os[k][m], ns[k][m]
			if len(a) == 0 || len(b) == 0 {
				continue
			}
			info := metrics.MustLookup(m)
			var assume benchmath.Assumption = benchmath.AssumeNothing
			if info.Exact {
				assume = benchmath.AssumeExact
			}
			sa, sb := benchmath.NewSample(a, &thr), benchmath.NewSample(b, &thr)
			cmp := assume.Compare(sa, sb)
			ch := Change{Cell: fmt.Sprintf("%s/%s/%s", k.scenario, k.allocator, k.platform), Metric: m,
				Old: assume.Summary(sa, 0.95).Center, New: assume.Summary(sb, 0.95).Center, P: min(cmp.P, 1), N1: cmp.N1, N2: cmp.N2}
			if info.Exact {
				// Deterministic for a seed: any difference is real
				// (benchmath reports P=0, "an exact result").
				ch.Significant = !sameValues(a, b)
			}
			if ch.Old != 0 {
				ch.Delta = (ch.New - ch.Old) / math.Abs(ch.Old)
			} else if ch.New != 0 {
				ch.Delta = math.Inf(1)
			}
			ch.OverThreshold = math.Abs(ch.Delta)*100 > opt.Threshold
			out = append(out, ch)
		}
	}
	for _, m := range opt.Metrics {
		if metrics.MustLookup(m).Exact {
			continue
		}
		var idx []int
		for i := range out {
			if out[i].Metric == m {
				idx = append(idx, i)
			}
		}
		adjust(out, idx, opt.Holm)
		for _, i := range idx {
			out[i].Significant = out[i].PAdj < opt.Alpha
		}
	}
	for i := range out {
		ch := &out[i]
		info := metrics.MustLookup(ch.Metric)
		ch.Worse = ch.Significant && ((info.Better == metrics.Higher && ch.New < ch.Old) || (info.Better != metrics.Higher && ch.New > ch.Old))
	}
	return out, missing
}

// adjust sets PAdj for the changes at idx: Holm's step-down adjustment
// (the k-th smallest p times the number of tests left, made monotone,
// capped at 1), or P itself.
func adjust(out []Change, idx []int, holm bool) {
	if !holm {
		for _, i := range idx {
			out[i].PAdj = out[i].P
		}
		return
	}
	sorted := append([]int(nil), idx...)
	sort.SliceStable(sorted, func(a, b int) bool { return out[sorted[a]].P < out[sorted[b]].P })
	run := 0.0
	for k, i := range sorted {
		run = max(run, min(1, float64(len(sorted)-k)*out[i].P))
		out[i].PAdj = run
	}
}

// MinP is the smallest two-sided p-value a Mann-Whitney U test can give
// for samples of n1 and n2 distinct values: both orderings that separate
// them completely, 2/C(n1+n2, n1).
func MinP(n1, n2 int) float64 {
	c := 1.0
	for i := 1; i <= n1; i++ {
		c = c * float64(n2+i) / float64(i)
	}
	return 2 / c
}

// CompareTable prints old, new, delta and p per cell and metric ("~" for
// no significant change) and a geometric-mean row per metric.
func CompareTable(w io.Writer, changes []Change, keys []string) error {
	t := tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off), tablewriter.WithRowAlignment(tw.AlignRight))
	t.Header("cell", "metric", "old", "new", "delta", "p")
	for _, c := range changes {
		d := metrics.MustLookup(c.Metric)
		if err := t.Append(c.Cell, c.Metric, d.Human(c.Old), d.Human(c.New), deltaText(c), pText(c)); err != nil {
			return err
		}
	}
	for _, m := range keys {
		var lo, ln float64
		n := 0
		for _, c := range changes {
			if c.Metric == m && c.Old > 0 && c.New > 0 {
				lo += math.Log(c.Old)
				ln += math.Log(c.New)
				n++
			}
		}
		if n == 0 {
			continue
		}
		go_, gn := math.Exp(lo/float64(n)), math.Exp(ln/float64(n))
		d := metrics.MustLookup(m)
		if err := t.Append("geomean", m, d.Human(go_), d.Human(gn), fmt.Sprintf("%+.2f%%", 100*(gn-go_)/go_), ""); err != nil {
			return err
		}
	}
	return t.Render()
}

func sameValues(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := append([]float64(nil), a...), append([]float64(nil), b...)
	sort.Float64s(x)
	sort.Float64s(y)
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

// CompareMetrics are the metrics compare compares unless told: the
// modeled headline metrics, exact for a seed on any machine, so that a
// result compares with a baseline measured elsewhere or earlier.
var CompareMetrics = []string{"modeled_ops_per_sec", "failure_rate", "peak_reserved_bytes", "latency_p99_ns"}

// HostNote says what a comparison of host timings can claim: left out
// unless named (defaulted), or, named, that the test takes a cell's seeds
// as samples though they ran back to back and share the machine's state,
// so drift between the two runs reads as a change. Two runs of the same
// code, one after the other on one machine, flagged host regressions in
// a third to four fifths of the pairs (docs/ci.md). "" when keys name no
// host timing and were given.
func HostNote(keys []string, defaulted bool) string {
	if defaulted {
		return "note: host timings are compared only when named (--metric host_harness_ratio): they drift between runs of the same code, so compare them between two runs made side by side (docs/ci.md)"
	}
	for _, k := range keys {
		if !metrics.MustLookup(k).Exact {
			return "note: host timings: each run's seeds of a cell ran one after the other, so drift between the two runs reads as a significant change; believe a regression that a side-by-side re-run repeats (docs/ci.md)"
		}
	}
	return ""
}

// Unreachable returns a note for each sampled metric on which no change
// could have been significant: the smallest p its samples allow, once
// adjusted for the cells compared, is not below alpha. More seeds per
// cell lower it.
func Unreachable(changes []Change, alpha float64) []string {
	var notes []string
	seen := map[string]bool{}
	for _, c := range changes {
		if metrics.MustLookup(c.Metric).Exact || seen[c.Metric] {
			continue
		}
		seen[c.Metric] = true
		cells, n1, n2, adjusted := 0, c.N1, c.N2, false
		for _, d := range changes {
			if d.Metric == c.Metric {
				cells++
				n1, n2 = min(n1, d.N1), min(n2, d.N2)
				adjusted = adjusted || d.PAdj != d.P
			}
		}
		if n1 == 0 || n2 == 0 {
			continue
		}
		p := MinP(n1, n2)
		if adjusted {
			p *= float64(cells)
		}
		if p >= alpha {
			notes = append(notes, fmt.Sprintf("note: %s: with %d+%d seeds per cell over %d cells the smallest adjusted p is %.3f, not below alpha %g: no change in it can fail the comparison; run more seeds (-s)", c.Metric, n1, n2, cells, p, alpha))
		}
	}
	return notes
}

// CompareFormats are the outputs of WriteCompare.
var CompareFormats = []string{"table", "markdown", "gha"}

// CompareSummary is the line a comparison opens with: how many of the
// compared values regressed beyond the threshold, improved, or did not
// change significantly.
func CompareSummary(changes []Change, threshold float64) string {
	var worse, better, same int
	for _, c := range changes {
		switch {
		case c.Worse && c.OverThreshold:
			worse++
		case c.Significant && !c.Worse:
			better++
		default:
			same++
		}
	}
	verdict := "no regression"
	if worse > 0 {
		verdict = fmt.Sprintf("%d regression(s)", worse)
	}
	return fmt.Sprintf("%s beyond %.3g%%; %d improved; %d unchanged or within noise (%d values compared)", verdict, threshold, better, same, len(changes))
}

// WriteCompare writes a comparison in format (CompareFormats): its
// summary line first, then the changes (only the significant ones with
// onlyChanged) as a box table, a Markdown table, or GitHub annotations
// (::error for a regression beyond the threshold, ::notice for any other
// significant change) that a workflow shows on the run.
func WriteCompare(w io.Writer, format string, changes []Change, keys []string, threshold float64, onlyChanged bool) error {
	shown := changes
	if onlyChanged {
		shown = slices.DeleteFunc(slices.Clone(changes), func(c Change) bool { return !c.Significant })
	}
	summary := CompareSummary(changes, threshold)
	switch format {
	case "gha":
		for _, c := range shown {
			if !c.Significant {
				continue
			}
			d := metrics.MustLookup(c.Metric)
			level := "notice"
			if c.Worse && c.OverThreshold {
				level = "error"
			}
			fmt.Fprintf(w, "::%s title=dmabench %s %s::%s %s: %s -> %s (%+.1f%%)\n", level, c.Cell, c.Metric, c.Cell, c.Metric, d.Human(c.Old), d.Human(c.New), 100*c.Delta)
		}
		_, err := fmt.Fprintf(w, "::notice title=dmabench compare::%s\n", summary)
		return err
	case "markdown":
		fmt.Fprintf(w, "**%s**\n\n| cell | metric | old | new | delta | p |\n|---|---|---:|---:|---:|---|\n", summary)
		for _, c := range shown {
			d := metrics.MustLookup(c.Metric)
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", c.Cell, c.Metric, d.Human(c.Old), d.Human(c.New), deltaText(c), pText(c))
		}
		return nil
	}
	fmt.Fprintln(w, summary)
	return CompareTable(w, shown, keys)
}

// deltaText is a change's delta as the tables show it.
func deltaText(c Change) string {
	if !c.Significant {
		return "~"
	}
	s := fmt.Sprintf("%+.2f%%", 100*c.Delta)
	if c.Worse {
		s += " worse"
	}
	return s
}

// pText is a change's test as the tables show it.
func pText(c Change) string {
	if metrics.MustLookup(c.Metric).Exact {
		return fmt.Sprintf("exact n=%d+%d", c.N1, c.N2)
	}
	if c.PAdj != c.P {
		return fmt.Sprintf("p=%.3f (Holm %.3f) n=%d+%d", c.P, c.PAdj, c.N1, c.N2)
	}
	return fmt.Sprintf("p=%.3f n=%d+%d", c.P, c.N1, c.N2)
}
