package report

import (
	"fmt"
	"hash/fnv"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/dmabench/dmabench"
	"github.com/dmabench/dmabench/cells"
	"github.com/dmabench/dmabench/metrics"
	"golang.org/x/perf/benchmath"
)

// palette colours the charts: one colour per allocator (AllocatorColor).
var palette = []string{"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"}

// Palette returns the chart colours (tests look for them in screenshots).
func Palette() []string { return palette }

// knownAllocators fixes the colour of every allocator dmabench has, in its
// table's order, so an allocator keeps its colour in every chart of every
// report, whichever others a run had.
var knownAllocators = []string{"pcipool", "dmapool", "slab", "slab-direct", "mempool", "dmaalloc", "coherent"}

// AllocatorColor is an allocator's colour in every chart of every report.
func AllocatorColor(name string) string {
	if i := slices.Index(knownAllocators, name); i >= 0 {
		return palette[i]
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return palette[len(knownAllocators)+int(h.Sum32())%(len(palette)-len(knownAllocators))]
}

// ChartWidth is a chart's width in pixels: the page's.
const ChartWidth = 1040

// series is one allocator's values over a chart's groups: its centre, and
// the spread over seeds (lo, hi; NaN without one); NaN centre: refused.
type series struct {
	name   string
	values []float64
	lo, hi []float64
}

type chart struct {
	file, title, svg string
	// note replaces an empty chart: a line of text saying why.
	note string
}

func svgText(s string) string { return html.EscapeString(s) }

func fmtTick(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e9:
		return fmt.Sprintf("%.3gG", v/1e9)
	case a >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case a >= 1e3:
		return fmt.Sprintf("%.3gk", v/1e3)
	case a == 0:
		return "0"
	case a < 0.01:
		return fmt.Sprintf("%.2g", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// legend draws a legend of names in rows that fit width, from y, and
// returns the y below it.
func legend(b *strings.Builder, names []string, colors func(int) string, x0, y, width int) int {
	x := x0
	for i, n := range names {
		w := 18 + 7*len([]rune(n))
		if x+w > width && x > x0 {
			x, y = x0, y+16
		}
		fmt.Fprintf(b, `<rect class="legend" x="%d" y="%d" width="10" height="10" fill="%s"/><text class="legend" x="%d" y="%d">%s</text>`, x, y, colors(i), x+14, y+9, svgText(n))
		x += w + 10
	}
	return y + 16
}

// niceStep returns the round step (1, 2, 2.5 or 5 times a power of ten)
// nearest above x.
func niceStep(x float64) float64 {
	if x <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

// allZero reports whether every finite value of ss is 0 (or there is none).
func allZero(ss []series) bool {
	for _, s := range ss {
		for _, v := range s.values {
			if !math.IsNaN(v) && !math.IsInf(v, 0) && v != 0 {
				return false
			}
		}
	}
	return true
}

// barChart draws grouped bars: one group per label (a platform), one bar
// per series (an allocator, in its own colour), whiskers for the spread
// over seeds, and "refused" where an allocator has no result. The axis is
// linear unless the values span more than two orders of magnitude.
func barChart(title, unit string, labels []string, ss []series) string {
	w, top := ChartWidth, 0
	const h0, left, right, bottom = 300, 70, 20, 40
	maxV, minV := 0.0, math.Inf(1)
	for _, s := range ss {
		for g, v := range s.values {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			if g < len(s.hi) && !math.IsNaN(s.hi[g]) {
				v = math.Max(v, s.hi[g])
			}
			maxV = max(maxV, v)
			if v > 0 {
				minV = min(minV, v)
			}
		}
	}
	logScale := minV > 0 && !math.IsInf(minV, 1) && maxV/minV > 100
	if maxV <= 0 {
		maxV = 1
	}
	var leg strings.Builder
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = s.name
	}
	top = legend(&leg, names, func(i int) string { return AllocatorColor(ss[i].name) }, left, 28, w-right) + 8
	h := h0 + top
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`, w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/><text x="%d" y="18" font-size="14" font-weight="bold">%s</text>`, w, h, left, svgText(title))
	b.WriteString(leg.String())
	// A linear axis runs to a round number, in round steps.
	step := niceStep(maxV / 4)
	lo, hi := 0.0, math.Ceil(maxV/step)*step
	ticks := int(math.Round(hi / step))
	scale := func(v float64) float64 { return (v - lo) / (hi - lo) }
	if logScale {
		lo, hi = math.Floor(math.Log10(minV)), math.Ceil(math.Log10(maxV))
		scale = func(v float64) float64 {
			if v <= 0 {
				return 0
			}
			return (math.Log10(v) - lo) / (hi - lo)
		}
		ticks = int(hi - lo)
		unit += " (log)"
	}
	ph := float64(h - top - bottom)
	y := func(f float64) float64 { return float64(h-bottom) - f*ph }
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`, left, top, left, h-bottom)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`, left, h-bottom, w-right, h-bottom)
	for k := 0; k <= ticks; k++ {
		f := float64(k) / float64(ticks)
		v := lo + f*(hi-lo)
		if logScale {
			v = math.Pow(10, v)
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`,
			left, y(f), w-right, y(f), left-4, y(f)+4, fmtTick(v))
	}
	fmt.Fprintf(&b, `<text x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">%s</text>`, top+int(ph/2), top+int(ph/2), svgText(unit))
	gw := float64(w-left-right) / float64(max(len(labels), 1))
	bw := gw * 0.8 / float64(max(len(ss), 1))
	for g, label := range labels {
		x0 := float64(left) + float64(g)*gw + gw*0.1
		for i, s := range ss {
			x := x0 + float64(i)*bw
			if g >= len(s.values) || math.IsNaN(s.values[g]) || math.IsInf(s.values[g], 0) {
				fmt.Fprintf(&b, `<text class="refused" x="%.1f" y="%.1f" font-size="9" fill="#888" transform="rotate(-90 %.1f %.1f)">refused</text>`,
					x+bw/2+3, y(0)-4, x+bw/2+3, y(0)-4)
				continue
			}
			f := math.Max(scale(s.values[g]), 0)
			fmt.Fprintf(&b, `<rect class="bar" data-allocator="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>`,
				svgText(s.name), x, y(f), math.Max(bw-1, 1), f*ph, AllocatorColor(s.name), svgText(label), svgText(s.name), fmtTick(s.values[g]))
			if g < len(s.lo) && !math.IsNaN(s.lo[g]) && s.hi[g] > s.lo[g] {
				cx, y1, y2 := x+bw/2, y(math.Max(scale(s.lo[g]), 0)), y(math.Max(scale(s.hi[g]), 0))
				fmt.Fprintf(&b, `<path d="M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f" stroke="#222" fill="none"/>`,
					cx, y1, y2, cx-3, y1, cx+3, cx-3, y2, cx+3)
			}
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, x0+gw*0.4, h-bottom+16, svgText(label))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// lineChart draws one line per series over x = 0..len-1, each in its
// allocator's colour with markers and its own dash, so lines that overlap
// stay apart.
func lineChart(title, xLabel, yLabel string, ss []series, yMax float64) string {
	w := ChartWidth
	const left, right, bottom = 70, 20, 50
	var leg strings.Builder
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = s.name
	}
	top := legend(&leg, names, func(i int) string { return AllocatorColor(ss[i].name) }, left, 28, w-right) + 8
	h := 250 + top
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`, w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/><text x="%d" y="18" font-size="14" font-weight="bold">%s</text>`, w, h, left, svgText(title))
	b.WriteString(leg.String())
	n := 0
	for _, s := range ss {
		n = max(n, len(s.values))
	}
	pw, ph := float64(w-left-right), float64(h-top-bottom)
	x := func(i int) float64 { return float64(left) + pw*float64(i)/float64(max(n-1, 1)) }
	y := func(v float64) float64 { return float64(h-bottom) - ph*math.Min(math.Max(v/yMax, 0), 1) }
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/><line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`,
		left, top, left, h-bottom, left, h-bottom, w-right, h-bottom)
	for k := 0; k <= 4; k++ {
		v := yMax * float64(k) / 4
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`, left, y(v), w-right, y(v), left-4, y(v)+4, fmtTick(v))
	}
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%d</text>`, x(i), h-bottom+14, i)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text><text x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">%s</text>`,
		float64(left)+pw/2, h-8, svgText(xLabel), top+int(ph/2), top+int(ph/2), svgText(yLabel))
	dashes := []string{"", "6 3", "2 2", "8 3 2 3"}
	for i, s := range ss {
		c := AllocatorColor(s.name)
		var pts []string
		for k, v := range s.values {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(k), y(v)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" stroke-dasharray="%s" points="%s"/>`, c, dashes[i%len(dashes)], strings.Join(pts, " "))
		for k, v := range s.values {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="%d" fill="%s"/>`, x(k), y(v), 2+i%3, c)
		}
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// view is the report's digest of the results.
type view struct {
	cells                            []cells.Result
	scenarios, allocators, platforms []string
	groups                           map[key][]map[string]float64
	frag                             map[[2]string][]float64 // (allocator, platform) -> mean unusable index per order
}

func newView(docs []*cells.Document) *view {
	v := &view{groups: map[key][]map[string]float64{}, frag: map[[2]string][]float64{}}
	seen := map[string]map[string]bool{"s": {}, "a": {}, "p": {}}
	add := func(set string, list *[]string, x string) {
		if !seen[set][x] {
			seen[set][x] = true
			*list = append(*list, x)
		}
	}
	fragN := map[[2]string]int{}
	for _, d := range docs {
		for _, c := range d.Cells {
			if c.Metrics == nil {
				continue
			}
			v.cells = append(v.cells, c)
			add("s", &v.scenarios, c.Scenario)
			add("a", &v.allocators, c.Allocator)
			add("p", &v.platforms, c.Platform)
			k := key{c.Scenario, c.Allocator, c.Platform}
			v.groups[k] = append(v.groups[k], c.Metrics)
			if c.Extfrag != nil {
				fk := [2]string{c.Allocator, c.Platform}
				if v.frag[fk] == nil {
					v.frag[fk] = make([]float64, len(c.Extfrag.Unusable))
				}
				for o, u := range c.Extfrag.Unusable {
					v.frag[fk][o] += u
				}
				fragN[fk]++
			}
		}
	}
	for k, n := range fragN {
		for o := range v.frag[k] {
			v.frag[k][o] /= float64(n)
		}
	}
	return v
}

func meanOf(ms []map[string]float64, m string) float64 {
	if len(ms) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, x := range ms {
		s += x[m]
	}
	return s / float64(len(ms))
}

// overScenarios aggregates a metric for an allocator on a platform over
// scenarios, the same way for every allocator of that platform so that
// they compare (see aggregation).
func (v *view) overScenarios(m, a, p string) float64 {
	scs, geo := v.aggregation(m, p)
	var vals []float64
	for _, s := range scs {
		if ms := v.groups[key{s, a, p}]; len(ms) > 0 {
			vals = append(vals, meanOf(ms, m))
		}
	}
	if len(vals) == 0 {
		return math.NaN()
	}
	sum := 0.0
	for _, x := range vals {
		if geo {
			x = math.Log(x)
		}
		sum += x
	}
	if geo {
		return math.Exp(sum / float64(len(vals)))
	}
	return sum / float64(len(vals))
}

// aggregation returns the scenarios over which a metric is aggregated on
// platform p, and whether by geometric mean. The scenarios are those that
// every allocator with results on p has results for, so that no
// allocator is judged on a scenario the others did not run. The
// geometric mean needs every value of every allocator to be positive;
// otherwise all of them take the arithmetic mean: one allocator's
// geometric mean beside another's arithmetic one would rank an allocator
// with a zero below one that is worse in every scenario.
func (v *view) aggregation(m, p string) (scenarios []string, geo bool) {
	geo = true
	for _, s := range v.scenarios {
		common := true
		for _, a := range v.allocators {
			if !v.ran(a, p) {
				continue
			}
			ms := v.groups[key{s, a, p}]
			if len(ms) == 0 {
				common = false
				break
			}
			if !(meanOf(ms, m) > 0) {
				geo = false
			}
		}
		if common {
			scenarios = append(scenarios, s)
		}
	}
	return scenarios, geo
}

// ran reports whether allocator a has results on platform p.
func (v *view) ran(a, p string) bool {
	for _, s := range v.scenarios {
		if len(v.groups[key{s, a, p}]) > 0 {
			return true
		}
	}
	return false
}

// byAllocator returns one series per allocator over the platforms: the
// metric aggregated over scenarios (overScenarios), times scale, and the
// spread of its per-seed aggregates; NaN where the allocator was refused.
func (v *view) byAllocator(m string, scale float64) []series {
	var ss []series
	for _, a := range v.allocators {
		s := series{name: a}
		for _, p := range v.platforms {
			x := v.overScenarios(m, a, p) * scale
			s.values = append(s.values, x)
			lo, hi := math.NaN(), math.NaN()
			if seeds := v.seedSamples(m, a, p); len(seeds) > 1 && !math.IsNaN(x) {
				lo, hi = slices.Min(seeds)*scale, slices.Max(seeds)*scale
			}
			s.lo, s.hi = append(s.lo, lo), append(s.hi, hi)
		}
		ss = append(ss, s)
	}
	return ss
}

// summaryMetric is a metric the summary names a winner for, with the
// unit it is shown in.
type summaryMetric struct {
	Key, Unit string
	Higher    bool
}

// summaryMetrics are what the summary names a winner for; which way is
// better comes from the catalog.
var summaryMetrics = func() []summaryMetric {
	var out []summaryMetric
	for _, m := range []struct{ key, unit string }{
		{"modeled_ops_per_sec", "Mops/s"}, {"peak_reserved_bytes", "KiB"}, {"frag_internal", ""},
		{"latency_p99_ns", "ns"}, {"failure_rate", ""}, {"atomic_reserve_dips", ""},
	} {
		out = append(out, summaryMetric{m.key, m.unit, metrics.MustLookup(m.key).Better == metrics.Higher})
	}
	return out
}()

func (v *view) charts() []chart {
	var cs []chart
	bars := func(file, title, unit, m string, scale float64) {
		ss := v.byAllocator(m, scale)
		if allZero(ss) {
			cs = append(cs, chart{file: file, title: title, note: fmt.Sprintf("%s: every allocator reports 0 on every platform; no chart.", title)})
			return
		}
		cs = append(cs, chart{file, title, barChart(title+" (aggregated over scenarios as stated above; whiskers: the spread over seeds)", unit, v.platforms, ss), ""})
	}
	bars("throughput", "Modeled throughput", "M ops/s", "modeled_ops_per_sec", 1e-6)
	bars("reserved", "Peak memory held from the page allocator", "KiB", "peak_reserved_bytes", 1.0/1024)
	bars("frag", "Internal fragmentation at the reserved peak (1 - live/reserved)", "share", "frag_internal", 1)
	bars("latency-p50", "Median allocation latency (nearest rank)", "ns", "latency_p50_ns", 1)
	bars("latency-p99", "99th percentile allocation latency (nearest rank)", "ns", "latency_p99_ns", 1)
	bars("atomic-dips", "Atomic page allocations served below the min watermark", "dips", "atomic_reserve_dips", 1)
	bars("atomic-failures", "Failed atomic page allocations", "failures", "atomic_failures", 1)
	for _, p := range v.platforms {
		var ss []series
		for _, a := range v.allocators {
			if f := v.frag[[2]string{a, p}]; f != nil {
				ss = append(ss, series{name: a, values: f})
			}
		}
		title := "Fragmentation by order on " + p
		switch {
		case len(ss) == 0:
		case allZero(ss):
			cs = append(cs, chart{file: "extfrag-" + p, title: title, note: title + ": every order's unusable index is 0 for every allocator; no chart."})
		default:
			cs = append(cs, chart{"extfrag-" + p, title, lineChart("Unusable free space index by order at the end of the run, "+p, "order", "unusable index", ss, 1), ""})
		}
	}
	return cs
}

// TieMargin is the relative difference below which two allocators tie,
// whatever a test says: a difference this small decides nothing.
const TieMargin = 0.02

// Alpha is the significance level a winner's difference must reach.
const Alpha = 0.05

// WinnerRule says how winners are decided, for the reports to print.
var WinnerRule = fmt.Sprintf("An allocator is named the winner only when it is better than the runner-up by more than %.0f%% "+
	"and the difference is significant over the seeds (Mann-Whitney U test, the seeds as samples, p < %.2f); "+
	"otherwise the cell says tie. With fewer than 4 seeds no difference can be significant: the leader is shown, untested. "+
	"A trace replays alike for every seed: over traces alone, a difference beyond the margin is exact.", 100*TieMargin, Alpha)

// seedSamples returns, per seed, the metric aggregated over scenarios for
// allocator a on platform p, as overScenarios aggregates the means: the
// samples a winner is tested on.
func (v *view) seedSamples(m, a, p string) []float64 {
	scs, geo := v.aggregation(m, p)
	n := -1
	for _, s := range scs {
		if k := len(v.groups[key{s, a, p}]); n < 0 || k < n {
			n = k
		}
	}
	var out []float64
	for i := 0; i < n; i++ {
		sum := 0.0
		for _, s := range scs {
			x := v.groups[key{s, a, p}][i][m]
			if geo {
				x = math.Log(x)
			}
			sum += x
		}
		if geo {
			out = append(out, math.Exp(sum/float64(len(scs))))
		} else {
			out = append(out, sum/float64(len(scs)))
		}
	}
	return out
}

// traceOnly reports whether every scenario metric m is aggregated over
// on platform p is a trace, whose modeled results do not depend on the
// seed.
func (v *view) traceOnly(m, p string) bool {
	scs, _ := v.aggregation(m, p)
	for _, s := range scs {
		if !strings.HasPrefix(s, cells.TracePrefix) {
			return false
		}
	}
	return len(scs) > 0
}

// verdict decides one platform and metric: the allocators ranked by their
// aggregate, the leader named only if the rule (WinnerRule) holds.
func (v *view) verdict(m summaryMetric, p string, scale float64) string {
	type entry struct {
		name string
		x    float64
	}
	var es []entry
	for _, a := range v.allocators {
		if x := v.overScenarios(m.Key, a, p); !math.IsNaN(x) {
			es = append(es, entry{a, x})
		}
	}
	if len(es) == 0 {
		return "n/a"
	}
	better := func(x, y float64) bool {
		if m.Higher {
			return x > y
		}
		return x < y
	}
	sort.SliceStable(es, func(i, j int) bool { return better(es[i].x, es[j].x) })
	best := es[0]
	var tied []string
	for _, e := range es {
		if same(e.x, best.x) {
			tied = append(tied, e.name)
		}
	}
	if len(tied) == len(es) {
		if len(es) == 1 {
			return fmt.Sprintf("%s (%s)", best.name, fmtTick(best.x*scale))
		}
		return fmt.Sprintf("all tie (%s)", fmtTick(best.x*scale))
	}
	if len(tied) > 1 {
		return fmt.Sprintf("tie: %s (%s)", strings.Join(tied, ", "), fmtTick(best.x*scale))
	}
	runner := es[1]
	rel := math.Abs(best.x-runner.x) / math.Max(math.Abs(runner.x), math.Abs(best.x))
	if rel <= TieMargin {
		return fmt.Sprintf("tie within %.0f%%: %s, %s (%s)", 100*TieMargin, best.name, runner.name, fmtTick(best.x*scale))
	}
	if v.traceOnly(m.Key, p) {
		// A trace replays alike for every seed: the difference is exact,
		// and seeds would only repeat it.
		return fmt.Sprintf("%s (%s; %.0f%% better than %s, exact for the trace)", best.name, fmtTick(best.x*scale), 100*rel, runner.name)
	}
	sa, sb := v.seedSamples(m.Key, best.name, p), v.seedSamples(m.Key, runner.name, p)
	if len(sa) < 4 || len(sb) < 4 {
		return fmt.Sprintf("%s ahead by %.0f%% of %s, untested (%s)", best.name, 100*rel, runner.name, plural(min(len(sa), len(sb)), "seed"))
	}
	cmp := benchmath.AssumeNothing.Compare(benchmath.NewSample(sa, &benchmath.DefaultThresholds), benchmath.NewSample(sb, &benchmath.DefaultThresholds))
	if cmp.P >= Alpha {
		return fmt.Sprintf("tie within noise: %s ~ %s (p=%.2f)", best.name, runner.name, min(cmp.P, 1))
	}
	return fmt.Sprintf("%s (%s; %.0f%% better than %s, p=%.3f)", best.name, fmtTick(best.x*scale), 100*rel, runner.name, cmp.P)
}

// display is how a verdict shows a metric: the scale its values are
// multiplied by and the unit that gives.
func display(key string) (scale float64, unit string) {
	switch key {
	case "modeled_ops_per_sec":
		return 1e-6, "M ops/s"
	case "peak_reserved_bytes":
		return 1.0 / 1024, "KiB"
	case "latency_p99_ns":
		return 1, "ns"
	}
	return 1, ""
}

// winners returns, per platform and summary metric, the verdict.
func (v *view) winners() [][]string {
	var rows [][]string
	for _, p := range v.platforms {
		row := []string{p}
		for _, m := range summaryMetrics {
			scale, _ := display(m.Key)
			row = append(row, v.verdict(m, p, scale))
		}
		rows = append(rows, row)
	}
	return rows
}

// same reports whether two aggregates are equal but for rounding.
func same(x, y float64) bool {
	return x == y || math.Abs(x-y) <= 1e-9*math.Max(math.Abs(x), math.Abs(y))
}

// WriteReport writes a design comparison report: self-contained HTML with
// inline SVG charts, or Markdown (for a .md path) with the charts as SVG
// files in a folder beside it.
func WriteReport(path string, docs []*cells.Document, inputs []string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	v := newView(docs)
	if len(v.cells) == 0 {
		return fmt.Errorf("report: no cells with metrics in %s", strings.Join(inputs, ", "))
	}
	cs := v.charts()
	md := strings.HasSuffix(path, ".md")
	var b strings.Builder
	heads := []string{"platform"}
	for _, m := range summaryMetrics {
		h := strings.ReplaceAll(m.Key, "_", " ")
		if m.Unit != "" {
			h += " (" + m.Unit + ")"
		}
		if m.Higher {
			h += " ↑"
		} else {
			h += " ↓"
		}
		heads = append(heads, h)
	}
	tables := v.metricTables()
	// Every file goes through a temporary file and a rename, together
	// (see WriteAtomicAll): a symbolic link planted where a chart goes is
	// replaced, never written through.
	var paths []string
	var writes []func(io.Writer) error
	if md {
		dir := strings.TrimSuffix(path, ".md") + "-charts"
		if fi, err := os.Lstat(dir); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("report: %s is a symbolic link; the charts folder must be a folder of its own", dir)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		fmt.Fprintf(&b, "# dmabench design comparison\n\nGenerated by dmabench %s from %s. %d cells: %d scenarios, %d allocators, %d platforms. "+
			"Modeled metrics are means over seeds, aggregated over the scenarios every allocator ran by geometric mean (by arithmetic mean, for every allocator of a platform, where a metric is zero in some scenario there); allocators that tie are named together; percentiles are nearest-rank. %s\n\n## Which allocator wins\n\n",
			dmabench.Version, strings.Join(inputs, ", "), len(v.cells), len(v.scenarios), len(v.allocators), len(v.platforms), WinnerRule)
		mdTable(&b, heads, v.winners())
		b.WriteString("\n## Charts\n\n")
		for i, c := range cs {
			if c.note != "" {
				fmt.Fprintf(&b, "%s\n\n", c.note)
				continue
			}
			name := fmt.Sprintf("%02d-%s.svg", i+1, c.file)
			svg := c.svg
			paths = append(paths, filepath.Join(dir, name))
			writes = append(writes, func(w io.Writer) error { _, err := io.WriteString(w, svg); return err })
			fmt.Fprintf(&b, "![%s](%s/%s)\n\n", c.title, filepath.Base(dir), name)
		}
		for _, t := range tables {
			fmt.Fprintf(&b, "## %s\n\n", t.title)
			mdTable(&b, t.heads, t.rows)
			b.WriteString("\n")
		}
	} else {
		fmt.Fprintf(&b, `<!DOCTYPE html><html><head><meta charset="utf-8"><title>dmabench design comparison</title><style>
body{font-family:sans-serif;margin:24px;color:#222;max-width:1100px}svg{max-width:100%%;height:auto}table{border-collapse:collapse;margin:8px 0 24px}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
figure{margin:0 0 24px}</style></head><body><h1>dmabench design comparison</h1>
<p>Generated by dmabench %s from %s. %d cells: %d scenarios, %d allocators, %d platforms. Modeled metrics are means over seeds, aggregated over the scenarios every allocator ran by geometric mean (by arithmetic mean, for every allocator of a platform, where a metric is zero in some scenario there); allocators that tie are named together; percentiles are nearest-rank. %s</p><h2>Which allocator wins</h2>`,
			html.EscapeString(dmabench.Version), html.EscapeString(strings.Join(inputs, ", ")), len(v.cells), len(v.scenarios), len(v.allocators), len(v.platforms), html.EscapeString(WinnerRule))
		htmlTable(&b, heads, v.winners())
		b.WriteString("<h2>Charts</h2>")
		for _, c := range cs {
			if c.note != "" {
				fmt.Fprintf(&b, `<p class="nochart">%s</p>`, html.EscapeString(c.note))
				continue
			}
			// Inline SVG needs no namespace: the page names no URL at all.
			fmt.Fprintf(&b, `<figure class="chart">%s</figure>`, strings.Replace(c.svg, ` xmlns="http://www.w3.org/2000/svg"`, "", 1))
		}
		for _, t := range tables {
			fmt.Fprintf(&b, "<h2>%s</h2>", html.EscapeString(t.title))
			htmlTable(&b, t.heads, t.rows)
		}
		b.WriteString("</body></html>\n")
	}
	paths = append(paths, path)
	writes = append(writes, func(w io.Writer) error { _, err := io.WriteString(w, b.String()); return err })
	return WriteAtomicAll(paths, writes)
}

type table struct {
	title string
	heads []string
	rows  [][]string
}

// deviceMetrics are what the drivers saw go wrong: a table each, with the
// scenarios whose workloads report them, when any cell reports one.
var deviceMetrics = []string{"urb_submit_failures", "scsi_requeues", "rx_drops", "rx_refill_failures", "map_failures", "pool_errors"}

func (v *view) metricTables() []table {
	var out []table
	for _, m := range summaryMetrics {
		out = append(out, v.metricTable(m.Key, false))
	}
	for _, m := range deviceMetrics {
		if t := v.metricTable(m, true); len(t.rows) > 0 {
			out = append(out, t)
		}
	}
	return out
}

// metricTable lists a metric's mean over seeds by scenario and allocator,
// a column per platform. With reported, only cells that report the metric
// count, and a table in which it is zero everywhere has no rows.
func (v *view) metricTable(metric string, reported bool) table {
	t := table{title: metric + " by scenario and allocator", heads: append([]string{"scenario", "allocator"}, v.platforms...)}
	nonzero := false
	for _, s := range v.scenarios {
		for _, a := range v.allocators {
			row := []string{s, a}
			any := false
			for _, p := range v.platforms {
				ms := v.groups[key{s, a, p}]
				if _, ok := firstOf(ms)[metric]; len(ms) == 0 || reported && !ok {
					row = append(row, "")
					continue
				}
				x := meanOf(ms, metric)
				row = append(row, fmtTick(x))
				any = true
				nonzero = nonzero || x != 0
			}
			if any {
				t.rows = append(t.rows, row)
			}
		}
	}
	if reported && !nonzero {
		t.rows = nil
	}
	return t
}

func firstOf(ms []map[string]float64) map[string]float64 {
	if len(ms) == 0 {
		return nil
	}
	return ms[0]
}

func mdTable(b *strings.Builder, heads []string, rows [][]string) {
	b.WriteString("| " + strings.Join(heads, " | ") + " |\n|")
	for range heads {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, r := range rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
}

func htmlTable(b *strings.Builder, heads []string, rows [][]string) {
	b.WriteString("<table><tr>")
	for _, h := range heads {
		fmt.Fprintf(b, "<th>%s</th>", html.EscapeString(h))
	}
	b.WriteString("</tr>")
	for _, r := range rows {
		b.WriteString("<tr>")
		for _, c := range r {
			fmt.Fprintf(b, "<td>%s</td>", html.EscapeString(c))
		}
		b.WriteString("</tr>")
	}
	b.WriteString("</table>")
}
