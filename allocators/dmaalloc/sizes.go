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
)

// ParseTable reads "slab" or "slub".
func ParseTable(s string) (Table, error) {
	switch s {
	case "slab":
		return SLAB, nil
	case "slub":
		return SLUB, nil
	}
	return 0, fmt.Errorf("size table %q: valid tables are slab, slub", s)
}

func (t Table) String() string {
	if t == SLAB {
		return "slab"
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
