package iommu

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSpanListIsASortedSlice: under random inserts and removes, across
// chunk splits and emptied chunks, the chunked list reads back as the
// plain sorted slice, and seek, prev and next agree with it.
func TestSpanListIsASortedSlice(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var l spanList
	var ref []span
	flat := func() []span {
		var out []span
		for _, ch := range l.chunks {
			if len(ch) == 0 || len(ch) > chunkMax {
				t.Fatalf("chunk of %d spans", len(ch))
			}
			out = append(out, ch...)
		}
		return out
	}
	for step := 0; step < 200_000; step++ {
		lo := uint64(rng.IntN(4096)) * 4
		i, found := slices.BinarySearchFunc(ref, lo, func(s span, lo uint64) int { return int(s.lo) - int(lo) })
		// Grow to a few thousand spans, then churn around that size.
		if !found && (len(ref) < 3000 || rng.IntN(2) == 0) {
			l.insert(span{lo, lo + 1})
			ref = slices.Insert(ref, i, span{lo, lo + 1})
		} else if found {
			l.remove(l.seek(lo))
			ref = slices.Delete(ref, i, i+1)
		}
		p := l.seek(lo)
		if j := i; l.isEnd(p) != (j >= len(ref)) || (!l.isEnd(p) && l.at(p) != ref[j]) {
			t.Fatalf("step %d: seek(%d) disagrees", step, lo)
		}
		if q, ok := l.prev(p); ok != (i > 0) || (ok && l.at(q) != ref[i-1]) {
			t.Fatalf("step %d: prev of seek(%d) disagrees", step, lo)
		}
		if !l.isEnd(p) {
			if q, ok := l.next(p); ok != (i+1 < len(ref)) || (ok && l.at(q) != ref[i+1]) {
				t.Fatalf("step %d: next of seek(%d) disagrees", step, lo)
			}
		}
		if step%997 == 0 && !slices.Equal(flat(), ref) {
			t.Fatalf("step %d: the list and the slice differ", step)
		}
	}
	if l.n != len(ref) || !slices.Equal(flat(), ref) {
		t.Fatalf("%d spans, reference %d", l.n, len(ref))
	}
}
