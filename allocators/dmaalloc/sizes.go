package dmaalloc

import (
	"fmt"

	"github.com/dmabench/dmabench/dma"
)

// Table names a kmalloc size-class table.
type Table uint8

// Size-class tables.
const (
	// SLAB is the 2.6/3.x CONFIG_SLAB table (kmalloc_sizes.h): 32, 64,
	// 96 (if the cache line is below 64), 128, 192 (if below 128), 256,
	// then powers of two.
	SLAB Table = iota
	// SLUB is the SLUB table: 8, 16, 32, 64, 96, 128, 192, 256, then
	// powers of two to 8192; larger sizes are whole power-of-two pages.
	SLUB
	// SLOB is SLOB's rule (CONFIG_SLOB, 2.6.16 to 6.3): kmalloc(size)
	// takes size plus a SLOBHeader-byte header from a first-fit heap when
	// size < PAGE_SIZE - SLOBHeader, else power-of-two pages. dma_alloc has
	// no such heap: its blocks come from SLUB's class pools, at or above
	// the size with its header.
	SLOB
)

// SLOBHeader is SLOB's kmalloc header: ARCH_KMALLOC_MINALIGN, the
// alignment of an unsigned long long (8 bytes).
const SLOBHeader = 8

// Tables lists every table, in the order Detect prefers them.
var Tables = []Table{SLUB, SLAB, SLOB}

// ParseTable reads "slab" or "slub".
func ParseTable(s string) (Table, error) {
	switch s {
	case "slab":
		return SLAB, nil
	case "slub":
		return SLUB, nil
	case "slob":
		return SLOB, nil
	}
	return 0, fmt.Errorf("size table %q: valid tables are slab, slub, slob", s)
}

func (t Table) String() string {
	switch t {
	case SLAB:
		return "slab"
	case SLOB:
		return "slob"
	}
	return "slub"
}

// MaxClass is the largest class in either table; larger requests are
// rounded to power-of-two pages (kmalloc_large, or the same sizes in the
// SLAB table's upper caches).
const MaxClass = 8192

// Classes returns the size classes of table t on a machine with the given
// cache line, with minSize the smallest object (KMALLOC_MIN_SIZE, raised to
// the DMA cache alignment on non-coherent machines). Classes smaller than
// minSize, or not a multiple of it (96 and 192), are dropped, as
// the kernel drops them.
func Classes(t Table, cacheLine, minSize int64) []int64 {
	var base []int64
	switch t {
	case SLAB:
		base = []int64{32, 64}
		if cacheLine < 64 {
			base = append(base, 96)
		}
		base = append(base, 128)
		if cacheLine < 128 {
			base = append(base, 192)
		}
	default:
		base = []int64{8, 16, 32, 64, 96, 128, 192}
	}
	for c := int64(256); c <= MaxClass; c *= 2 {
		base = append(base, c)
	}
	var out []int64
	for _, c := range base {
		if c >= minSize && c%minSize == 0 {
			out = append(out, c)
		}
	}
	return out
}

// KmallocSize returns what kmalloc(size) allocates under table t with
// classes (Classes(t, ...)): bytes_alloc in a kmalloc trace event.
func KmallocSize(t Table, classes []int64, size int64) int64 {
	if t == SLOB && size > 0 && size < dma.PageSize-SLOBHeader {
		return size + SLOBHeader
	}
	return SizeClass(classes, size)
}

// Detection is the table (and, for SLAB, the cache line) whose sizes
// match the most of a capture's kmalloc events.
type Detection struct {
	Table          Table
	CacheLine      int64
	Matched, Total int
}

// Detect finds the slab allocator a capture's kernel used from its
// kmalloc events' (bytes_req, bytes_alloc) pairs: SLUB's table, SLAB's at
// a 32-, 64- or 128-byte cache line (which decides its 96 and 192
// classes), or SLOB's header rule. Ties go to the earlier of Tables.
func Detect(pairs [][2]int64) Detection {
	best := Detection{Table: SLUB, CacheLine: 64, Total: len(pairs)}
	first := true
	for _, t := range Tables {
		lines := []int64{64}
		if t == SLAB {
			lines = []int64{64, 32, 128}
		}
		for _, line := range lines {
			classes := Classes(t, line, 8)
			m := 0
			for _, p := range pairs {
				if KmallocSize(t, classes, p[0]) == p[1] {
					m++
				}
			}
			if first || m > best.Matched {
				best.Table, best.CacheLine, best.Matched, first = t, line, m, false
			}
		}
	}
	return best
}

// SizeClass returns what kmalloc(size) allocates with these classes.
func SizeClass(classes []int64, size int64) int64 {
	if size <= 0 {
		return 0
	}
	for _, c := range classes {
		if size <= c {
			return c
		}
	}
	return dma.PageSize << dma.Order(size)
}
