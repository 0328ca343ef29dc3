package iommu

import (
	"math/bits"

	"github.com/dmabench/dmabench/dma"
)

// anchor is the pfn of the sentinel node at the top of the IOVA tree.
const anchor = ^uint64(0)

type span struct{ lo, hi uint64 } // inclusive page frame range

// Domain is an IOVA allocator as the kernel's iova.c keeps it: allocated
// ranges in address order (the kernel's rbtree; sorted chunks here),
// searched top-down from a cached node for a size-aligned gap below the
// caller's limit, with a separate cached node for allocations below 4 GiB.
type Domain struct {
	ranges   spanList
	start    uint64 // first usable pfn
	dma32    uint64 // pfn of 4 GiB
	cached   uint64 // lo of the cached node (anchor: none)
	cached32 uint64
	max32    uint64 // size known to fail below 4 GiB (max32_alloc_size)
	// Pages in use (including ranges held by the range caches).
	Pages, Peak uint64
}

// NewDomain returns an empty domain whose lowest pfn is start.
func NewDomain(start uint64) *Domain {
	return &Domain{start: max(start, 1), dma32: 1 << 20, cached: anchor, cached32: anchor, max32: 1 << 20}
}

// node returns the range at p, or the anchor node at the end.
func (d *Domain) node(p pos) span {
	if d.ranges.isEnd(p) {
		return span{anchor, anchor}
	}
	return d.ranges.at(p)
}

// seek returns the position of the range starting at lo, or the end for
// the anchor.
func (d *Domain) seek(lo uint64) pos {
	if lo == anchor {
		return d.ranges.end()
	}
	return d.ranges.seek(lo)
}

// Alloc finds size pages, aligned to size rounded up to a power of two,
// below limit (exclusive pfn), searching down from the cached node and
// then once more from the top. It returns the first pfn.
func (d *Domain) Alloc(size, limit uint64) (uint64, bool) {
	if size == 0 {
		return 0, false
	}
	alignMask := ^uint64(0) << bits.Len64(size-1)
	if limit <= d.dma32 && size >= d.max32 {
		return 0, false
	}
	cachedLo := d.cached
	if limit <= d.dma32 {
		cachedLo = d.cached32
	}
	curr := d.seek(cachedLo)
	retryPfn := d.node(curr).hi
	high, low := limit, d.start
	var newPfn uint64
	for {
		for {
			n := d.node(curr)
			high = min(high, n.lo)
			newPfn = (high - size) & alignMask
			if high < size {
				newPfn = 0
			}
			p, ok := d.ranges.prev(curr)
			if !ok || !(newPfn <= d.ranges.at(p).hi && newPfn >= low) {
				break
			}
			curr = p
		}
		if high >= size && newPfn >= low {
			break
		}
		if low == d.start && retryPfn < limit {
			high, low = limit, retryPfn+1
			curr = d.ranges.seek(limit)
			retryPfn = anchor - 1 // retry once
			continue
		}
		if limit <= d.dma32 {
			d.max32 = size
		}
		return 0, false
	}
	d.ranges.insert(span{newPfn, newPfn + size - 1})
	if newPfn+size-1 < d.dma32 {
		d.cached32 = newPfn
	} else {
		d.cached = newPfn
	}
	d.Pages += size
	d.Peak = max(d.Peak, d.Pages)
	return newPfn, true
}

// Free releases the range starting at lo.
func (d *Domain) Free(lo uint64) {
	p := d.ranges.seek(lo)
	if d.ranges.isEnd(p) || d.ranges.at(p).lo != lo {
		dma.Broken("iommu", "a free names an allocated IOVA range", "no range starts at pfn %#x", lo)
	}
	f := d.ranges.at(p)
	// The cached nodes always start a live range (or are the anchor):
	// each is set to a range just allocated, and moved on here when its
	// range is freed.
	next := anchor
	if n, ok := d.ranges.next(p); ok {
		next = d.ranges.at(n).lo
	}
	if f.lo == d.cached32 || (f.hi < d.dma32 && f.lo >= d.cached32) {
		d.cached32 = next
	}
	if f.lo < d.dma32 {
		d.max32 = d.dma32
	}
	if f.lo >= d.cached {
		d.cached = next
	}
	d.ranges.remove(p)
	d.Pages -= f.hi - f.lo + 1
}

// Live returns the number of allocated ranges.
func (d *Domain) Live() int { return d.ranges.n }

// rcache is the per-CPU IOVA range cache (iova_rcache): for each size
// order up to 32 pages, a loaded and a previous magazine of 128 pfns and a
// depot of full magazines. The model has one CPU.
type rcache struct {
	mags [6]struct {
		loaded, prev []uint64
		depot        [][]uint64
		// spare holds empty magazines for reuse: the cache allocates
		// nothing once warm.
		spare [][]uint64
	}
}

const (
	magSize  = 128
	maxDepot = 32
)

func rcacheOrder(size uint64) int {
	if size == 0 || size > 32 || size&(size-1) != 0 {
		return -1
	}
	return bits.TrailingZeros64(size)
}

// get pops a cached range below limit, or returns false.
func (r *rcache) get(size, limit uint64) (uint64, bool) {
	o := rcacheOrder(size)
	if o < 0 {
		return 0, false
	}
	m := &r.mags[o]
	if len(m.loaded) == 0 {
		if len(m.prev) > 0 {
			m.loaded, m.prev = m.prev, m.loaded
		} else if n := len(m.depot); n > 0 {
			if cap(m.prev) > 0 {
				m.spare = append(m.spare, m.prev[:0])
			}
			m.prev = m.loaded
			m.loaded = m.depot[n-1]
			m.depot = m.depot[:n-1]
		}
	}
	for i := len(m.loaded) - 1; i >= 0; i-- {
		if pfn := m.loaded[i]; pfn+size <= limit {
			m.loaded[i] = m.loaded[len(m.loaded)-1]
			m.loaded = m.loaded[:len(m.loaded)-1]
			return pfn, true
		}
	}
	return 0, false
}

// put caches a freed range; it returns the pfns that must go back to the
// tree because the cache is full.
func (r *rcache) put(pfn, size uint64, spill func(uint64)) bool {
	o := rcacheOrder(size)
	if o < 0 {
		return false
	}
	m := &r.mags[o]
	if len(m.loaded) < magSize {
		m.loaded = append(m.loaded, pfn)
		return true
	}
	if len(m.prev) < magSize {
		m.loaded, m.prev = m.prev, m.loaded
		m.loaded = append(m.loaded, pfn)
		return true
	}
	if len(m.depot) >= maxDepot {
		for _, p := range m.loaded {
			spill(p)
		}
		m.loaded = append(m.loaded[:0], pfn)
		return true
	}
	m.depot = append(m.depot, m.loaded)
	if n := len(m.spare); n > 0 {
		m.loaded, m.spare = m.spare[n-1], m.spare[:n-1]
	} else {
		m.loaded = make([]uint64, 0, magSize)
	}
	m.loaded = append(m.loaded, pfn)
	return true
}

// flush returns every cached range to the tree.
func (r *rcache) flush(spill func(uint64)) {
	for o := range r.mags {
		m := &r.mags[o]
		for _, p := range m.loaded {
			spill(p)
		}
		for _, p := range m.prev {
			spill(p)
		}
		for _, mag := range m.depot {
			for _, p := range mag {
				spill(p)
			}
		}
		m.loaded, m.prev, m.depot = m.loaded[:0], m.prev[:0], nil
	}
}
