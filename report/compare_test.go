package report

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/cells"
)

// noisy returns a document of cells×seeds host timings drawn around base
// (times scale) with 3% noise.
func noisy(rng *rand.Rand, ncells, seeds int, scale float64) *cells.Document {
	d := &cells.Document{}
	for c := 0; c < ncells; c++ {
		for s := 1; s <= seeds; s++ {
			v := 100 * scale * (1 + 0.03*rng.NormFloat64())
			d.Cells = append(d.Cells, cells.Result{
				Cell:    cells.Cell{Scenario: fmt.Sprintf("w%d", c), Allocator: "a", Platform: "p", Seed: uint64(s)},
				Metrics: map[string]float64{"host_ns_per_op": v},
			})
		}
	}
	return d
}

func worse(ch []Change) int {
	n := 0
	for _, c := range ch {
		if c.Worse {
			n++
		}
	}
	return n
}

// TestHolmKeepsNoiseQuiet: two runs of the same code over 32 cells.
// Tested cell by cell, noise alone makes some cell "significantly worse"
// in most trials; adjusted for the 32 tests, in (almost) none. A real 20%
// slowdown of every cell is still found with 10 seeds per cell.
func TestHolmKeepsNoiseQuiet(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	raw, holm := 0, 0
	const trials = 40
	for range trials {
		a, b := noisy(rng, 32, 10, 1), noisy(rng, 32, 10, 1)
		ch, _ := Compare(a, b, CompareOptions{Metrics: []string{"host_ns_per_op"}, Alpha: 0.05})
		if worse(ch) > 0 {
			raw++
		}
		ch, _ = Compare(a, b, CompareOptions{Metrics: []string{"host_ns_per_op"}, Alpha: 0.05, Holm: true})
		if worse(ch) > 0 {
			holm++
		}
	}
	if raw < trials/2 || holm > 3 {
		t.Fatalf("trials with a false regression: %d/%d unadjusted, %d/%d with Holm", raw, trials, holm, trials)
	}
	a, b := noisy(rng, 32, 10, 1), noisy(rng, 32, 10, 1.2)
	ch, _ := Compare(a, b, CompareOptions{Metrics: []string{"host_ns_per_op"}, Alpha: 0.05, Holm: true})
	if n := worse(ch); n < 30 {
		t.Fatalf("a 20%% slowdown found in %d of 32 cells", n)
	}
	if notes := Unreachable(ch, 0.05); len(notes) != 0 {
		t.Fatalf("notes with 10 seeds: %v", notes)
	}
	a, b = noisy(rng, 32, 5, 1), noisy(rng, 32, 5, 1.2)
	ch, _ = Compare(a, b, CompareOptions{Metrics: []string{"host_ns_per_op"}, Alpha: 0.05, Holm: true})
	if notes := Unreachable(ch, 0.05); len(notes) != 1 || worse(ch) != 0 {
		t.Fatalf("5 seeds over 32 cells: %d worse, notes %v", worse(ch), notes)
	}
}

func TestMinP(t *testing.T) {
	// 5+5: 2/252; 10+10: 2/184756.
	if p := MinP(5, 5); p < 0.0079 || p > 0.0080 {
		t.Fatalf("MinP(5,5) = %v", p)
	}
	if p := MinP(10, 10); p < 1.08e-5 || p > 1.09e-5 {
		t.Fatalf("MinP(10,10) = %v", p)
	}
}

// TestParseDocumentPlacesErrors: a broken results file is reported at its
// line and column, a value of the wrong type with the field it is in.
func TestParseDocumentPlacesErrors(t *testing.T) {
	for _, c := range []struct{ data, want string }{
		{"{\"schema\":\n\n  \"x\",]", "r.json:3:8: invalid character ']'"},
		{"{\"schema\":\"dmabench/results/v1\",\n\"cells\":[{\"seed\":\"one\"}]}", "r.json:2:23: field cells.Cell.seed: a JSON string where uint64 is wanted"},
		{"{\"schema\":\"dmabench/results/v1\",\"cells\":[", "r.json:1:42: unexpected end of JSON input"},
		{"{\"schema\":\"v0\"}", `r.json: schema "v0", want "dmabench/results/v1"`},
	} {
		_, err := cells.ParseDocument("r.json", []byte(c.data))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %s...", c.data, err, c.want)
		}
	}
}
