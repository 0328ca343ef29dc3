package report

import (
	"reflect"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/cells"
)

// doc builds results from cells.
func doc(rows ...cells.Result) *cells.Document { return &cells.Document{Cells: rows} }

// cell is one seed's result of scenario s, allocator a on platform p.
func cell(s, a, p string, m map[string]float64) cells.Result {
	return cells.Result{Cell: cells.Cell{Scenario: s, Allocator: a, Platform: p, Seed: 1}, Metrics: m}
}

func summary(t *testing.T, v *view, metric string) []string {
	t.Helper()
	col := -1
	for i, m := range summaryMetrics {
		if m.Key == metric {
			col = i + 1
		}
	}
	if col < 0 {
		t.Fatalf("%s is not a summary metric", metric)
	}
	var out []string
	for _, row := range v.winners() {
		out = append(out, row[col])
	}
	return out
}

// TestWinnersNameTies: allocators that tie are named together, and a
// metric on which all of them tie names none as the winner.
func TestWinnersNameTies(t *testing.T) {
	v := newView([]*cells.Document{doc(
		cell("s", "dmapool", "x86", map[string]float64{"failure_rate": 0, "peak_reserved_bytes": 4096}),
		cell("s", "mempool", "x86", map[string]float64{"failure_rate": 0, "peak_reserved_bytes": 4096}),
		cell("s", "coherent", "x86", map[string]float64{"failure_rate": 0, "peak_reserved_bytes": 8192}),
	)})
	if got, want := summary(t, v, "failure_rate"), []string{"all tie (0)"}; !reflect.DeepEqual(got, want) {
		t.Errorf("failure rate: %q, want %q", got, want)
	}
	if got, want := summary(t, v, "peak_reserved_bytes"), []string{"tie: dmapool, mempool (4)"}; !reflect.DeepEqual(got, want) {
		t.Errorf("peak reserved: %q, want %q", got, want)
	}
}

// TestWinnersAggregateAlike: an allocator with a zero in one scenario is
// not ranked by an arithmetic mean against another's geometric mean.
// Here b is no worse than a in any scenario and better in one, so b wins;
// with a's geometric mean (10) against b's arithmetic one (50), a did.
func TestWinnersAggregateAlike(t *testing.T) {
	v := newView([]*cells.Document{doc(
		cell("s1", "a", "x86", map[string]float64{"atomic_reserve_dips": 1}),
		cell("s2", "a", "x86", map[string]float64{"atomic_reserve_dips": 100}),
		cell("s1", "b", "x86", map[string]float64{"atomic_reserve_dips": 0}),
		cell("s2", "b", "x86", map[string]float64{"atomic_reserve_dips": 100}),
	)})
	// b ranks first; 50 against 50.5 is within the tie margin.
	if got, want := summary(t, v, "atomic_reserve_dips"), []string{"tie within 2%: b, a (50)"}; !reflect.DeepEqual(got, want) {
		t.Errorf("atomic reserve dips: %q, want %q", got, want)
	}
	// b has a zero, so a too takes the arithmetic mean.
	if got := v.overScenarios("atomic_reserve_dips", "a", "x86"); got != 50.5 {
		t.Errorf("a's aggregate %v, want the arithmetic mean 50.5 (b has a zero)", got)
	}
	w := newView([]*cells.Document{doc(
		cell("s1", "a", "x86", map[string]float64{"atomic_reserve_dips": 1}),
		cell("s2", "a", "x86", map[string]float64{"atomic_reserve_dips": 100}),
	)})
	if got := w.overScenarios("atomic_reserve_dips", "a", "x86"); !same(got, 10) {
		t.Errorf("a alone: %v, want the geometric mean 10", got)
	}
}

// TestWinnersCompareCommonScenarios: an allocator is judged only on the
// scenarios every allocator on the platform ran; one that did not run on
// a platform at all (refused) is left out there.
func TestWinnersCompareCommonScenarios(t *testing.T) {
	v := newView([]*cells.Document{doc(
		cell("easy", "a", "x86", map[string]float64{"latency_p99_ns": 10}),
		cell("hard", "a", "x86", map[string]float64{"latency_p99_ns": 1000}),
		cell("easy", "b", "x86", map[string]float64{"latency_p99_ns": 20}),
		cell("easy", "a", "iommu", map[string]float64{"latency_p99_ns": 30}),
	)})
	// Over both scenarios a would be 100 and lose to b's 20.
	if got, want := summary(t, v, "latency_p99_ns"), []string{"a ahead by 50% of b, untested (1 seed)", "a (30)"}; !reflect.DeepEqual(got, want) {
		t.Errorf("latency p99: %q, want %q", got, want)
	}
}

// seeds returns one cell per value, seeds 1, 2, ..., of scenario s,
// allocator a on platform p, for metric m.
func seeds(s, a, p, m string, vals ...float64) []cells.Result {
	var out []cells.Result
	for i, x := range vals {
		c := cell(s, a, p, map[string]float64{m: x})
		c.Seed = uint64(i + 1)
		out = append(out, c)
	}
	return out
}

// TestWinnerOnlyBeyondTheNoise: two allocators whose seeds overlap are a
// tie within noise, however far apart their means; with seeds that do not
// overlap the better one wins; a difference within the tie margin is a
// tie; with too few seeds the leader is shown untested.
func TestWinnerOnlyBeyondTheNoise(t *testing.T) {
	m := "peak_reserved_bytes"
	build := func(a, b []float64) *view {
		return newView([]*cells.Document{doc(append(seeds("s", "a", "x86", m, a...), seeds("s", "b", "x86", m, b...)...)...)})
	}
	for _, tc := range []struct {
		name string
		a, b []float64
		want string
	}{
		{"overlapping seeds", []float64{100, 140, 90, 130, 95}, []float64{120, 105, 150, 100, 125}, "tie within noise"},
		{"apart", []float64{100, 101, 99, 102, 100}, []float64{130, 131, 129, 132, 130}, "a (0.098; 23% better than b, p="},
		{"within the margin", []float64{100, 100, 100, 100, 100}, []float64{101, 101, 101, 101, 101}, "tie within 2%"},
		{"one seed", []float64{100}, []float64{130}, "a ahead by 23% of b, untested (1 seed)"},
	} {
		got := summary(t, build(tc.a, tc.b), m)
		if len(got) != 1 || !strings.HasPrefix(got[0], tc.want) {
			t.Errorf("%s: %q, want %q...", tc.name, got, tc.want)
		}
	}
}
