package report

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/dmabench/dmabench/cells"
)

// SummaryWidth is the widest line Summary prints.
const SummaryWidth = 100

// headline are the metrics the summary names a verdict for, with the
// words it uses.
var headline = []struct{ key, words string }{
	{"modeled_ops_per_sec", "throughput"},
	{"peak_reserved_bytes", "memory held"},
	{"failure_rate", "failure rate"},
	{"atomic_reserve_dips", "atomic pressure"},
	{"latency_p99_ns", "p99 latency"},
}

// Summary writes what a person reads first after a run, on one screen:
// per platform, the verdict for each headline metric (WinnerRule), then
// the lazy/strict IOMMU comparison in a line, what each knob A/B among the
// scenarios moved (knobLines), the notable cells (refused,
// crashed, with failures or drops, and those whose allocator served
// almost nothing, which say nothing about it), and where the full results
// are. No line is wider than SummaryWidth.
func Summary(w io.Writer, doc *cells.Document, path string) error {
	v := newView([]*cells.Document{doc})
	var lines []string
	add := func(format string, args ...any) { lines = append(lines, clip(fmt.Sprintf(format, args...))) }
	seeds := map[uint64]bool{}
	for _, c := range doc.Cells {
		seeds[c.Seed] = true
	}
	add("%s: %s x %s x %s x %s", plural(len(doc.Cells), "cell"), plural(len(v.scenarios), "scenario"), plural(len(v.allocators), "allocator"), plural(len(v.platforms), "platform"), plural(len(seeds), "seed"))
	for _, p := range v.platforms {
		add("%s", p)
		for _, h := range headline {
			add("  %-21s %s", label(h.key, h.words), v.verdict(summaryMetricFor(h.key), p, first(display(h.key))))
		}
	}
	if l := lazyStrict(v); l != "" {
		add("%s", l)
	}
	for _, l := range knobLines(doc, v) {
		add("%s", l)
	}
	for _, l := range notable(doc) {
		lines = append(lines, clip(l))
	}
	lines = append(lines, clip("winners: "+WinnerRule))
	add("every cell: -f table; one cell pool by pool: dmabench explain RESULTS --cell SCENARIO/PLATFORM")
	if path != "" {
		lines = append(lines, "full results: "+path) // never clipped
	}
	_, err := io.WriteString(w, strings.Join(wrapAll(lines), "\n")+"\n")
	return err
}

// summaryMetricFor is key as the verdicts take it.
func summaryMetricFor(key string) summaryMetric {
	for _, m := range summaryMetrics {
		if m.Key == key {
			return m
		}
	}
	return summaryMetric{Key: key}
}

// lazyStrict sums up lazy against strict IOMMU invalidation in one line:
// the geometric mean over scenarios and allocators of the throughput
// ratio.
func lazyStrict(v *view) string {
	var logs []float64
	for _, s := range v.scenarios {
		for _, a := range v.allocators {
			st, lz := v.groups[key{s, a, "iommu"}], v.groups[key{s, a, "iommu-lazy"}]
			if len(st) == 0 || len(lz) == 0 {
				continue
			}
			if x, y := meanOf(st, "modeled_ops_per_sec"), meanOf(lz, "modeled_ops_per_sec"); x > 0 && y > 0 {
				logs = append(logs, math.Log(y/x))
			}
		}
	}
	if len(logs) == 0 {
		return ""
	}
	sum := 0.0
	for _, l := range logs {
		sum += l
	}
	lo, hi := slices.Min(logs), slices.Max(logs)
	return fmt.Sprintf("iommu-lazy against iommu (strict): throughput x%.2f (geomean over %d cells, x%.2f to x%.2f)",
		math.Exp(sum/float64(len(logs))), len(logs), math.Exp(lo), math.Exp(hi))
}

// notable lists the cells a reader must know of: refused, crashed, with
// failures or drops, serving almost nothing.
func notable(doc *cells.Document) []string {
	var refused, crashed, failing, idle, empty []string
	for _, c := range doc.Cells {
		name := c.Scenario + "/" + c.Allocator + "/" + c.Platform
		m := c.Metrics
		switch {
		case c.Refused != "":
			refused = append(refused, c.Allocator+" on "+c.Platform)
		case m["crashed"] > 0:
			crashed = append(crashed, name)
		case m["alloc_failures"] > 0 || m["map_failures"] > 0 || m["rx_drops"] > 0:
			failing = append(failing, name)
		case m["events"] == 0:
			empty = append(empty, name)
		case m["allocs"] < m["events"]/1000:
			idle = append(idle, c.Scenario+" on "+c.Allocator)
		}
	}
	var out []string
	list := func(what string, xs []string) {
		xs = slices.Compact(xs)
		if len(xs) == 0 {
			return
		}
		shown := xs
		if len(xs) > 6 {
			shown = append(slices.Clone(xs[:6]), fmt.Sprintf("and %d more", len(xs)-6))
		}
		out = append(out, fmt.Sprintf("%s (%d): %s", what, len(xs), strings.Join(shown, ", ")))
	}
	list("refused", uniq(refused))
	list("crashed (map_failure: bug, or an OOM panic)", crashed)
	list("cells with failed allocations or maps, or dropped packets", failing)
	list("allocator served almost nothing (under 1 allocation in 1000 events: no measure of it)", uniq(idle))
	list("cells that replayed no event (an empty trace?): their metrics measure nothing", empty)
	return out
}

func uniq(xs []string) []string {
	var out []string
	for _, x := range xs {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// clip shortens a line to SummaryWidth runes.
func clip(s string) string {
	r := []rune(s)
	if len(r) <= SummaryWidth {
		return s
	}
	return string(r[:SummaryWidth-1]) + "…"
}

// wrapAll wraps lines that are prose (the rule) to SummaryWidth; others
// were clipped already.
func wrapAll(lines []string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, "winners: ") {
			out = append(out, wrap("winners: "+WinnerRule, SummaryWidth)...)
			continue
		}
		out = append(out, l)
	}
	return out
}

// wrap breaks s into lines of at most width runes at spaces.
func wrap(s string, width int) []string {
	var out []string
	line := ""
	for _, word := range strings.Fields(s) {
		if line != "" && len([]rune(line))+1+len([]rune(word)) > width {
			out = append(out, line)
			line = "  "
		}
		if line == "" || line == "  " {
			line += word
		} else {
			line += " " + word
		}
	}
	if line != "" {
		out = append(out, line)
	}
	return out
}

// plural is "1 seed", "2 seeds".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// label is a headline metric's words with its unit.
func label(key, words string) string {
	if _, unit := display(key); unit != "" {
		return words + ", " + unit
	}
	return words
}

func first(scale float64, _ string) float64 { return scale }
