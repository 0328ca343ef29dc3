package engine

import "math/bits"

// Hist is a log-linear histogram of non-negative durations in ns: exact
// below 16, then 16 buckets per power of two, so a bucket's upper bound is
// within 6.25% of any value in it. It has a fixed size and never allocates.
//
// Percentiles use the nearest-rank method (the smallest recorded value v
// such that at least p of the samples are <= v) on the buckets: the
// reported value is the upper bound of the bucket holding that sample,
// capped by the exact maximum.
type Hist struct {
	// buckets holds the 16 + 60*16 buckets, rounded up to a power of two
	// so that an index masked to it needs no bounds check.
	buckets [1024]int64
	Max     int64
	// last is the value added last, and lastB its bucket: a model's costs
	// repeat, and a repeat finds its bucket without computing it.
	last  int64
	lastB int
}

// bucketOf is v's bucket: v itself below 32; above, v shifted right until
// it has 5 significant bits (16 to 31), plus 16 for each bit shifted out.
// For v in [2^e, 2^(e+1)), e >= 4, that is bucket 16*(e-3) + the four bits
// below v's top bit.
func bucketOf(v int64) int {
	s := max(bits.Len64(uint64(v))-5, 0)
	return s*16 + int(v>>s)
}

// upper returns the largest value that falls in bucket i.
func upper(i int) int64 {
	if i < 16 {
		return int64(i)
	}
	e := (i-16)/16 + 4
	sub := int64((i - 16) % 16)
	return (16+sub+1)<<(e-4) - 1
}

// Add records one value. A repeat of the last value is counted in line;
// a new one takes add, so that Add stays small enough to inline into the
// engine's counting rules.
func (h *Hist) Add(v int64) {
	if v == h.last {
		h.buckets[h.lastB&(len(h.buckets)-1)]++
		return
	}
	h.add(v)
}

// add records a value other than the last one.
func (h *Hist) add(v int64) {
	h.last = v
	v = max(v, 0)
	b := bucketOf(v)
	h.lastB = b
	h.buckets[b]++
	h.Max = max(h.Max, v)
}

// N is the number of values recorded.
func (h *Hist) N() int64 {
	var n int64
	for _, c := range h.buckets {
		n += c
	}
	return n
}

// Quantile returns the nearest-rank p-quantile (0 < p <= 1), or 0 when
// the histogram is empty.
func (h *Hist) Quantile(p float64) int64 {
	n := h.N()
	if n == 0 {
		return 0
	}
	rank := int64(p*float64(n) + 0.999999999)
	rank = min(max(rank, 1), n)
	var seen int64
	for i, c := range h.buckets {
		seen += c
		if seen >= rank {
			return min(upper(i), h.Max)
		}
	}
	return h.Max
}
