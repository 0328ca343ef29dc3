package iommu

import "sort"

// chunkMax bounds a chunk of spanList: an insert or delete moves at most
// this many spans, and a step to the previous span is an index step.
const chunkMax = 128

// spanList holds allocated ranges sorted by lo, in chunks: the sorted
// slice the search walks, without moving every range above an insert or
// delete (the range caches keep tens of thousands of ranges allocated).
type spanList struct {
	chunks [][]span
	spare  [][]span // backing arrays of emptied chunks, for reuse
	n      int
}

// pos is a place in a spanList: span i of chunk c; c == len(chunks) is the
// end (the anchor).
type pos struct{ c, i int }

func (l *spanList) end() pos { return pos{len(l.chunks), 0} }

func (l *spanList) isEnd(p pos) bool { return p.c == len(l.chunks) }

func (l *spanList) at(p pos) span { return l.chunks[p.c][p.i] }

// seek returns the position of the first span starting at lo or above.
func (l *spanList) seek(lo uint64) pos {
	c := sort.Search(len(l.chunks), func(k int) bool {
		ch := l.chunks[k]
		return ch[len(ch)-1].lo >= lo
	})
	if c == len(l.chunks) {
		return l.end()
	}
	ch := l.chunks[c]
	return pos{c, sort.Search(len(ch), func(i int) bool { return ch[i].lo >= lo })}
}

// prev returns the position before p, if there is one.
func (l *spanList) prev(p pos) (pos, bool) {
	if p.i > 0 && !l.isEnd(p) {
		return pos{p.c, p.i - 1}, true
	}
	if p.c == 0 {
		return pos{}, false
	}
	return pos{p.c - 1, len(l.chunks[p.c-1]) - 1}, true
}

// next returns the position after p, if there is one.
func (l *spanList) next(p pos) (pos, bool) {
	if p.i+1 < len(l.chunks[p.c]) {
		return pos{p.c, p.i + 1}, true
	}
	if p.c+1 < len(l.chunks) {
		return pos{p.c + 1, 0}, true
	}
	return pos{}, false
}

// insert adds s, whose lo no span has.
func (l *spanList) insert(s span) {
	l.n++
	p := l.seek(s.lo)
	if l.isEnd(p) {
		if len(l.chunks) == 0 {
			l.chunks = append(l.chunks, l.newChunk())
		}
		p = pos{len(l.chunks) - 1, len(l.chunks[len(l.chunks)-1])}
	}
	ch := append(l.chunks[p.c], span{})
	copy(ch[p.i+1:], ch[p.i:])
	ch[p.i] = s
	l.chunks[p.c] = ch
	if len(ch) > chunkMax {
		// Split in halves; the upper half goes in a chunk of its own.
		upper := append(l.newChunk(), ch[len(ch)/2:]...)
		l.chunks[p.c] = ch[:len(ch)/2]
		l.chunks = append(l.chunks, nil)
		copy(l.chunks[p.c+2:], l.chunks[p.c+1:])
		l.chunks[p.c+1] = upper
	}
}

// remove deletes the span at p.
func (l *spanList) remove(p pos) {
	l.n--
	ch := l.chunks[p.c]
	copy(ch[p.i:], ch[p.i+1:])
	ch = ch[:len(ch)-1]
	if len(ch) > 0 {
		l.chunks[p.c] = ch
		return
	}
	l.spare = append(l.spare, ch)
	copy(l.chunks[p.c:], l.chunks[p.c+1:])
	l.chunks[len(l.chunks)-1] = nil
	l.chunks = l.chunks[:len(l.chunks)-1]
}

func (l *spanList) newChunk() []span {
	if k := len(l.spare); k > 0 {
		ch := l.spare[k-1]
		l.spare = l.spare[:k-1]
		return ch[:0]
	}
	return make([]span, 0, chunkMax+1)
}
