package engine

import (
	"math/rand/v2"
	"sort"
	"testing"
)

func TestBuckets(t *testing.T) {
	for v := int64(0); v < 1<<20; v += 1 + v/7 {
		i := bucketOf(v)
		if upper(i) < v || (i > 0 && upper(i-1) >= v) {
			t.Fatalf("value %d in bucket %d with bounds (%d, %d]", v, i, upper(i-1), upper(i))
		}
		if v >= 16 && float64(upper(i)-v) > 0.0625*float64(v) {
			t.Fatalf("bucket of %d too wide: upper %d", v, upper(i))
		}
	}
	if bucketOf(1<<62) >= len(Hist{}.buckets) {
		t.Fatal("largest values do not fit")
	}
}

func TestQuantileNearestRank(t *testing.T) {
	var h Hist
	for _, v := range []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10} {
		h.Add(v)
	}
	if h.Quantile(0.5) != 5 || h.Quantile(0.9) != 9 || h.Quantile(0.99) != 10 || h.Quantile(1) != 10 {
		t.Fatalf("p50 %d p90 %d p99 %d", h.Quantile(0.5), h.Quantile(0.9), h.Quantile(0.99))
	}
	rng := rand.New(rand.NewPCG(1, 1))
	var h2 Hist
	var vals []int64
	for i := 0; i < 10000; i++ {
		v := int64(rng.ExpFloat64() * 1e6)
		vals = append(vals, v)
		h2.Add(v)
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	for _, p := range []float64{0.5, 0.9, 0.99} {
		exact := vals[int(p*float64(len(vals)))-1]
		got := h2.Quantile(p)
		if got < exact || float64(got-exact) > 0.0625*float64(exact) {
			t.Fatalf("p%v: %d, exact %d", p, got, exact)
		}
	}
	var empty Hist
	if empty.Quantile(0.99) != 0 {
		t.Fatal("empty")
	}
}

// TestRepeatsLandInTheirBucket: a value added again, the common case the
// histogram shortcuts, counts in the bucket it would be computed to,
// negative values count as 0, and the zero Hist needs no setup.
func TestRepeatsLandInTheirBucket(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	var h Hist
	var want [len(Hist{}.buckets)]int64
	var peak int64
	for i := 0; i < 20000; i++ {
		v := []int64{0, 20, 20, -3, 390, 15, 16, 1 << 40}[rng.IntN(8)]
		for range rng.IntN(4) + 1 {
			h.Add(v)
			c := v
			if c < 0 {
				c = 0
			}
			want[bucketOf(c)]++
			peak = max(peak, c)
		}
	}
	if h.buckets != want || h.Max != peak {
		t.Fatalf("buckets or max (%d, want %d) differ from adding each value afresh", h.Max, peak)
	}
}
