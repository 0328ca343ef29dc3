// Package pagealloc is the buddy page allocator every modeled platform
// shares: orders 0 to dma.MaxOrder, zones with min/low/high watermarks
// derived from min_free_kbytes, and the kernel's rules for which callers may
// dip below them.
//
// Free lists are kept as in the kernel: doubly linked lists threaded through
// a per-page array (next/prev page frame numbers), with a per-page order
// marking the head of each free block. Nothing is allocated after New.
//
// An Allocator is used by one goroutine.
package pagealloc

import (
	"fmt"
	"math"
	"sort"

	"github.com/dmabench/dmabench/dma"
)

const none = -1

// ZoneSpec names a zone and its size in pages. Zones are laid out from
// physical address 0 in the order given (ZONE_DMA first).
type ZoneSpec struct {
	Name  string
	Pages int64
}

// Zone is one memory zone with its buddy free lists and watermarks.
type Zone struct {
	Name       string
	Start, End int32 // page frame range [Start, End)
	head       [dma.MaxOrder + 1]int32
	NrFree     [dma.MaxOrder + 1]int64 // free blocks per order
	FreePages  int64
	// Watermarks in pages.
	Min, Low, High int64
	// LowmemReserve is kept free against allocations that could have
	// used a higher zone (lowmem_reserve_ratio: higher zones' pages / 256).
	LowmemReserve int64
}

// Allocator is a buddy allocator over a machine's RAM.
type Allocator struct {
	Zones []Zone
	next  []int32
	prev  []int32
	order []int8 // order of the free block a page heads, or -1
	// MinFreeKbytes is the value the watermarks were derived from.
	MinFreeKbytes int64
	// free and minTotal are the zones' free pages and min watermarks
	// summed, kept as the free lists change.
	free, minTotal int64
}

// MinFreeKbytes returns the kernel's default min_free_kbytes for a machine
// with lowmemKB of low memory: sqrt(lowmem_kB*16), clamped to [128, 65536].
func MinFreeKbytes(lowmemKB int64) int64 {
	v := int64(math.Sqrt(float64(lowmemKB * 16)))
	return min(max(v, 128), 65536)
}

// New builds an allocator whose zones hold every page free.
func New(zones []ZoneSpec) (*Allocator, error) {
	var total int64
	for _, z := range zones {
		if z.Pages <= 0 {
			return nil, fmt.Errorf("zone %s: %d pages", z.Name, z.Pages)
		}
		total += z.Pages
	}
	if total > math.MaxInt32/2 {
		return nil, fmt.Errorf("%d pages is more than the model supports", total)
	}
	a := &Allocator{
		next:  make([]int32, total),
		prev:  make([]int32, total),
		order: make([]int8, total),
	}
	for i := range a.order {
		a.order[i] = none
	}
	a.MinFreeKbytes = MinFreeKbytes(total * dma.PageSize / 1024)
	minPages := a.MinFreeKbytes * 1024 / dma.PageSize
	var start int32
	for _, zs := range zones {
		z := Zone{Name: zs.Name, Start: start, End: start + int32(zs.Pages)}
		for o := range z.head {
			z.head[o] = none
		}
		// Each zone gets its share of min_free_kbytes by size, as
		// __setup_per_zone_wmarks does for lowmem zones.
		z.Min = minPages * zs.Pages / total
		z.Low = z.Min + z.Min/4
		z.High = z.Min + z.Min/2
		a.Zones = append(a.Zones, z)
		start = z.End
	}
	var above int64
	for zi := range a.Zones {
		a.minTotal += a.Zones[zi].Min
	}
	for zi := len(a.Zones) - 1; zi >= 0; zi-- {
		a.Zones[zi].LowmemReserve = above / 256
		above += int64(a.Zones[zi].End - a.Zones[zi].Start)
	}
	for zi := range a.Zones {
		z := &a.Zones[zi]
		pfn := z.Start
		for pfn < z.End {
			o := dma.MaxOrder
			for o > 0 && (pfn&(1<<o-1) != 0 || pfn+1<<o > z.End) {
				o--
			}
			a.push(z, pfn, o)
			pfn += 1 << o
		}
	}
	return a, nil
}

func (a *Allocator) push(z *Zone, pfn int32, o int) {
	h := z.head[o]
	a.next[pfn] = h
	a.prev[pfn] = none
	if h != none {
		a.prev[h] = pfn
	}
	z.head[o] = pfn
	a.order[pfn] = int8(o)
	z.NrFree[o]++
	z.FreePages += 1 << o
	a.free += 1 << o
}

func (a *Allocator) unlink(z *Zone, pfn int32, o int) {
	n, p := a.next[pfn], a.prev[pfn]
	if p != none {
		a.next[p] = n
	} else {
		z.head[o] = n
	}
	if n != none {
		a.prev[n] = p
	}
	a.order[pfn] = none
	z.NrFree[o]--
	z.FreePages -= 1 << o
	a.free -= 1 << o
}

// Watermark selects which watermark a check is made against.
type Watermark uint8

// Watermarks.
const (
	WmarkMin Watermark = iota
	WmarkLow
	WmarkHigh
)

// Allowance says how far below the watermark a caller may go.
type Allowance uint8

// Allowances, as the kernel's ALLOC_HIGH and ALLOC_HARDER.
const (
	// AllocHigh: __GFP_HIGH callers may go to half the watermark.
	AllocHigh Allowance = 1 << iota
	// AllocHarder: atomic callers may go a further quarter lower (unless
	// they set __GFP_NOMEMALLOC).
	AllocHarder
)

// AllowanceFor returns what the slow path grants a caller with gfp flags.
func AllowanceFor(gfp dma.GFP) Allowance {
	var al Allowance
	if gfp&dma.GFPHigh != 0 {
		al |= AllocHigh
	}
	if gfp.Atomic() && gfp&dma.GFPNoMemalloc == 0 {
		al |= AllocHarder
	}
	return al
}

func (z *Zone) mark(w Watermark) int64 {
	switch w {
	case WmarkLow:
		return z.Low
	case WmarkHigh:
		return z.High
	}
	return z.Min
}

// WatermarkOK is __zone_watermark_ok: may an order-o block be taken from z
// without free pages falling to or below the watermark, as lowered by al?
func (z *Zone) WatermarkOK(o int, w Watermark, al Allowance) bool {
	return z.watermarkOK(o, w, al, 0)
}

func (z *Zone) watermarkOK(o int, w Watermark, al Allowance, reserve int64) bool {
	m := z.mark(w)
	if al&AllocHigh != 0 {
		m -= m / 2
	}
	if al&AllocHarder != 0 {
		m -= m / 4
	}
	free := z.FreePages - (1 << o) + 1
	if free <= m+reserve {
		return false
	}
	for k := o; k <= dma.MaxOrder; k++ {
		if z.NrFree[k] > 0 {
			return true
		}
	}
	return false
}

// Result says how an allocation was served.
type Result struct {
	Zone int
	// Dipped: the allocation passed only because the caller may go below
	// the min watermark (__GFP_HIGH or atomic).
	Dipped bool
}

// Alloc takes an order-o block from the highest allowed zone (index
// maxZone) down to zone 0; see AllocZones.
func (a *Allocator) Alloc(maxZone, o int, gfp dma.GFP) (int32, Result, error) {
	var zones [16]int
	n := 0
	for zi := maxZone; zi >= 0 && n < len(zones); zi-- {
		zones[n] = zi
		n++
	}
	return a.AllocZones(zones[:n], o, gfp)
}

// AllocZones takes an order-o block from the first zone in zones that
// passes, first against the low watermark (the fast path), then against
// min as lowered for gfp (the slow path). A zone other than the first
// (a fallback) must also keep its lowmem_reserve. It returns the first page
// frame number, or dma.ErrNoMem.
func (a *Allocator) AllocZones(zones []int, o int, gfp dma.GFP) (int32, Result, error) {
	if o < 0 || o > dma.MaxOrder {
		return 0, Result{}, dma.ErrInvalid
	}
	if pfn, res, ok := a.fast(zones, o); ok {
		return pfn, res, nil
	}
	al := AllowanceFor(gfp)
	for i, zi := range zones {
		z := &a.Zones[zi]
		reserve := a.reserve(zones, i)
		if z.watermarkOK(o, WmarkMin, al, reserve) {
			dipped := !z.watermarkOK(o, WmarkMin, 0, reserve)
			return a.take(z, o), Result{Zone: zi, Dipped: dipped}, nil
		}
	}
	return 0, Result{}, dma.ErrNoMem
}

// AllocFast is the fast path only: a block is taken only while the zone
// stays above its low watermark. Background users (the page cache) use it.
func (a *Allocator) AllocFast(zones []int, o int) (int32, bool) {
	pfn, _, ok := a.fast(zones, o)
	return pfn, ok
}

func (a *Allocator) fast(zones []int, o int) (int32, Result, bool) {
	for i, zi := range zones {
		z := &a.Zones[zi]
		if z.watermarkOK(o, WmarkLow, 0, a.reserve(zones, i)) {
			return a.take(z, o), Result{Zone: zi}, true
		}
	}
	return 0, Result{}, false
}

// reserve is the lowmem_reserve zones[i] keeps against this request: zero
// for the first (preferred) zone, the zone's reserve for a fallback to a
// lower zone.
func (a *Allocator) reserve(zones []int, i int) int64 {
	if i == 0 || zones[i] > zones[0] {
		return 0
	}
	return a.Zones[zones[i]].LowmemReserve
}

func (a *Allocator) take(z *Zone, o int) int32 {
	k := o
	for z.head[k] == none {
		k++
	}
	pfn := z.head[k]
	a.unlink(z, pfn, k)
	for k > o {
		k--
		a.push(z, pfn+1<<k, k)
	}
	return pfn
}

// Free returns an order-o block starting at pfn, merging it with its free
// buddies. Freeing a page that is not allocated is a bug in the caller and
// panics.
func (a *Allocator) Free(pfn int32, o int) {
	zi := a.ZoneOf(pfn)
	z := &a.Zones[zi]
	if a.order[pfn] != none {
		dma.Broken("pagealloc", "a page is freed once", "pfn %d freed twice", pfn)
	}
	for o < dma.MaxOrder {
		buddy := pfn ^ (1 << o)
		if buddy < z.Start || buddy+1<<o > z.End || int(a.order[buddy]) != o {
			break
		}
		a.unlink(z, buddy, o)
		pfn = min(pfn, buddy)
		o++
	}
	a.push(z, pfn, o)
}

// ContigInfo is fill_contig_page_info: free pages, free blocks of any order
// and free blocks usable for an order-o request (counted in order-o units),
// summed over zones.
type ContigInfo struct {
	FreePages, FreeBlocksTotal, FreeBlocksSuitable int64
}

// Contig returns ContigInfo for order o over the given zones (all if nil).
func (a *Allocator) Contig(o int, zones []int) ContigInfo {
	var ci ContigInfo
	add := func(z *Zone) {
		for k := 0; k <= dma.MaxOrder; k++ {
			n := z.NrFree[k]
			ci.FreeBlocksTotal += n
			ci.FreePages += n << k
			if k >= o {
				ci.FreeBlocksSuitable += n << (k - o)
			}
		}
	}
	if zones == nil {
		for i := range a.Zones {
			add(&a.Zones[i])
		}
	} else {
		for _, zi := range zones {
			add(&a.Zones[zi])
		}
	}
	return ci
}

// Unusable is the kernel's unusable free space index for order o, in
// [0, 1]: the share of free memory in blocks too small for the order
// (1 when nothing is free).
func (ci ContigInfo) Unusable(o int) float64 {
	if ci.FreePages == 0 {
		return 1
	}
	return float64((ci.FreePages-ci.FreeBlocksSuitable<<o)*1000/ci.FreePages) / 1000
}

// FragIndex is the kernel's fragmentation index for order o: -1 when an
// order-o request would succeed, else in [0, 1], towards 0 when it would
// fail for lack of memory and towards 1 when for fragmentation. The kernel
// computes it in thousandths with integer division; so does this.
func (ci ContigInfo) FragIndex(o int) float64 {
	if ci.FreeBlocksTotal == 0 {
		return 0
	}
	if ci.FreeBlocksSuitable > 0 {
		return -1
	}
	requested := int64(1) << o
	return float64(1000-(1000+ci.FreePages*1000/requested)/ci.FreeBlocksTotal) / 1000
}

// ZoneOf returns the index of the zone holding pfn.
func (a *Allocator) ZoneOf(pfn int32) int {
	i := sort.Search(len(a.Zones), func(i int) bool { return pfn < a.Zones[i].End })
	if i == len(a.Zones) || pfn < 0 {
		dma.Broken("pagealloc", "a pfn lies in RAM", "pfn %d beyond the last zone", pfn)
	}
	return i
}

// Pages returns the number of pages the allocator manages.
func (a *Allocator) Pages() int64 { return int64(len(a.order)) }

// FreePages returns free pages over all zones.
func (a *Allocator) FreePages() int64 { return a.free }

// Headroom returns free pages minus the min watermarks, over all zones.
func (a *Allocator) Headroom() int64 { return a.free - a.minTotal }
