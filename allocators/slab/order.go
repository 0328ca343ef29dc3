package slab

import "math/bits"

// MaxObjsPerPage is SLUB's MAX_OBJS_PER_PAGE.
const MaxObjsPerPage = 32767

// MinObjects is SLUB's default min_objects for a machine with nrCPUs
// CPUs: 4 * (fls(nr_cpus) + 1).
func MinObjects(nrCPUs int) int {
	return 4 * (bits.Len(uint(max(nrCPUs, 1))) + 1)
}

func getOrder(size int64) int {
	o := 0
	for int64(4096)<<o < size {
		o++
	}
	return o
}

// slabOrder is SLUB's slab_order: the smallest order >= get_order(min
// objects) whose leftover is at most 1/fract of the slab, or maxOrder+1.
func slabOrder(size int64, minObjects, maxOrder int, fract int64) int {
	if 4096/size > MaxObjsPerPage {
		return getOrder(size*MaxObjsPerPage) - 1
	}
	order := getOrder(int64(minObjects) * size)
	for ; order <= maxOrder; order++ {
		slab := int64(4096) << order
		if slab%size <= slab/fract {
			break
		}
	}
	return order
}

// CalculateOrder is SLUB's calculate_order for objects of size bytes (the
// slot size) on a machine with nrCPUs CPUs: try leftover limits of 1/16,
// 1/8 and 1/4 of the slab for min_objects, then one object fewer, down to
// 2; then a single object up to maxOrder, then up to order 10. It returns
// the order and the objects per slab.
func CalculateOrder(size int64, nrCPUs, maxOrder int) (order, objects int) {
	minObjects := MinObjects(nrCPUs)
	maxObjects := int((int64(4096) << maxOrder) / size)
	minObjects = min(minObjects, maxObjects)
	for minObjects > 1 {
		for fract := int64(16); fract >= 4; fract /= 2 {
			if o := slabOrder(size, minObjects, maxOrder, fract); o <= maxOrder {
				return o, int((int64(4096) << o) / size)
			}
		}
		minObjects--
	}
	o := slabOrder(size, 1, maxOrder, 1)
	if o > maxOrder {
		o = slabOrder(size, 1, 10, 1)
	}
	return o, int((int64(4096) << o) / size)
}

// HWCacheAlign is calculate_alignment with SLAB_HWCACHE_ALIGN: the cache
// line, halved while the object fits in half of it, at least align and
// at least a pointer.
func HWCacheAlign(size, align, line int64) int64 {
	ralign := line
	for size <= ralign/2 && ralign > 8 {
		ralign /= 2
	}
	return max(align, ralign, 8)
}
