package report

import (
	"reflect"
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
	if got, want := summary(t, v, "peak_reserved_bytes"), []string{"dmapool, mempool (4)"}; !reflect.DeepEqual(got, want) {
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
	if got, want := summary(t, v, "atomic_reserve_dips"), []string{"b (50)"}; !reflect.DeepEqual(got, want) {
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
	if got, want := summary(t, v, "latency_p99_ns"), []string{"a (10)", "a (30)"}; !reflect.DeepEqual(got, want) {
		t.Errorf("latency p99: %q, want %q", got, want)
	}
}
