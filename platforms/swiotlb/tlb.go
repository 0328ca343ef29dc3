// Package swiotlb models the kernel's software IO TLB (kernel/dma/swiotlb.c
// of Linux 6.6, with the 2024 alignment fixes of its stable releases): the
// bounce buffers a streaming mapping goes through when its device cannot
// reach the buffer, or on a confidential VM, where the host can read only
// shared memory and every streaming mapping bounces.
//
// The pool is an array of 2 KiB slots (IO_TLB_SHIFT 11) in segments of
// IO_TLB_SEGSIZE = 128; each slot keeps the length of the free run from
// it to the end of its segment, so no mapping spans two segments and none
// is larger than one segment (256 KiB, less the device's minimum
// alignment). The slots are split into areas, each searched from its own
// index; a CPU searches its own area first, then the others. The search
// honours the device's min_align_mask (the offset of the buffer within a
// slot-aligned block is kept: NVMe sets 4 KiB - 1), the caller's
// alloc_align_mask, and page alignment for mappings of a page or more
// without either. CONFIG_SWIOTLB_DYNAMIC adds, when no slot is found, a
// transient pool for the mapping (allocated without sleeping) and a
// background worker that adds a pool of the default size.
package swiotlb

import (
	"fmt"
	"math/bits"

	"github.com/dmabench/dmabench/dma"
)

// The kernel's constants (include/linux/swiotlb.h).
const (
	// SlotShift is IO_TLB_SHIFT: a slot is 2 KiB.
	SlotShift = 11
	// SlotSize is IO_TLB_SIZE.
	SlotSize = 1 << SlotShift
	// SegSize is IO_TLB_SEGSIZE: slots in a segment, the most one mapping
	// may take.
	SegSize = 128
	// DefaultBytes is IO_TLB_DEFAULT_SIZE, 64 MiB.
	DefaultBytes = 64 << 20
	// DefaultSlots is its slots, 32,768.
	DefaultSlots = DefaultBytes >> SlotShift
	// MinSlots is IO_TLB_MIN_SLABS: the smallest pool a dynamic worker
	// settles for (1 MiB).
	MinSlots = (1 << 20) >> SlotShift
)

// SlotsFor returns the slots the kernel gives a pool of size bytes
// (swiotlb_adjust_size: whole slots, rounded up to whole segments).
func SlotsFor(size int64) int64 {
	n := (size + SlotSize - 1) >> SlotShift
	return (n + SegSize - 1) / SegSize * SegSize
}

// CCSize is the pool a confidential VM sizes for itself
// (mem_encrypt_setup_arch on x86: 6% of memory, clamped to 64 MiB..1 GiB).
func CCSize(ramBytes int64) int64 {
	return min(max(ramBytes*6/100, DefaultBytes), 1<<30)
}

// Areas returns the areas a pool of slots gets on a machine of cpus
// possible CPUs, or areas asked for (swiotlb=,N): a power of two, no more
// than leave each area a segment (limit_nareas).
func Areas(slots int64, cpus, asked int) int {
	n := asked
	if n <= 0 {
		n = cpus
	}
	if n <= 1 {
		n = 1
	} else if n&(n-1) != 0 {
		n = 1 << bits.Len(uint(n))
	}
	if slots < int64(n)*SegSize {
		n = int(slots / SegSize)
	}
	return max(n, 1)
}

// MaxMapping is swiotlb_max_mapping_size: one segment, less the device's
// minimum alignment rounded up to whole slots.
func MaxMapping(minAlignMask uint64) int64 {
	minAlign := int64(0)
	if minAlignMask != 0 {
		minAlign = (int64(minAlignMask) + SlotSize) / SlotSize * SlotSize
	}
	return SlotSize*SegSize - minAlign
}

type area struct {
	index int // where the next search starts, within the area
	used  int
}

// pool is one io_tlb_pool: slots at a bus address, in areas.
type pool struct {
	start     uint64  // bus address of slot 0 (page aligned)
	list      []int32 // free run from each slot to its segment's end
	allocSize []int32 // bytes mapped from each slot on (the first's: all)
	areas     []area
	areaSlots int
	used      int
	transient bool
	// pfn and order of its pages, for a dynamic pool.
	pfn   int32
	order int
}

func newPool(start uint64, slots int64, nareas int) *pool {
	p := &pool{start: start, list: make([]int32, slots), allocSize: make([]int32, slots),
		areas: make([]area, nareas), areaSlots: int(slots) / nareas}
	for i := range p.list {
		p.list[i] = int32(SegSize - i%SegSize)
	}
	return p
}

// wrap is wrap_area_index: an index past the area's end starts over at 0.
func (p *pool) wrap(i int) int {
	if i >= p.areaSlots {
		return 0
	}
	return i
}

// search is swiotlb_area_find_slots: slots for size bytes (with the
// offset the device's alignment keeps) in area a of the pool, or -1.
func (p *pool) search(a int, orig uint64, size int64, minAlignMask, allocAlignMask uint64) int {
	nslots := int((size + SlotSize - 1) >> SlotShift)
	iotlbAlign := minAlignMask
	if allocAlignMask == 0 && iotlbAlign == 0 && size >= dma.PageSize {
		allocAlignMask = uint64(dma.PageSize - 1)
	}
	allocAlignMask |= SlotSize - 1
	iotlbAlign &^= allocAlignMask
	stride := int(max(allocAlignMask, iotlbAlign)>>SlotShift) + 1
	ar := &p.areas[a]
	if nslots > p.areaSlots-ar.used {
		return -1
	}
	base := a * p.areaSlots
	index := ar.index
	for checked := 0; checked < p.areaSlots; {
		slot := base + index
		addr := p.start + uint64(slot)<<SlotShift
		if addr&allocAlignMask != 0 || orig != 0 && addr&iotlbAlign != orig&iotlbAlign {
			index = p.wrap(index + 1)
			checked++
			continue
		}
		// The pool's bus range has no boundary mask (segment boundary
		// all ones): the span check never refuses.
		if int(p.list[slot]) >= nslots {
			p.take(slot, nslots, size)
			ar.index = p.wrap(index + nslots)
			ar.used += nslots
			p.used += nslots
			return slot
		}
		index = p.wrap(index + stride)
		checked += stride
	}
	return -1
}

// take marks nslots from slot used and shortens the free runs before it
// within its segment.
func (p *pool) take(slot, nslots int, size int64) {
	for i := slot; i < slot+nslots; i++ {
		p.list[i] = 0
		p.allocSize[i] = int32(size - int64(i-slot)<<SlotShift)
	}
	count := int32(0)
	for i := slot - 1; i >= 0 && i%SegSize != SegSize-1 && p.list[i] != 0; i-- {
		count++
		p.list[i] = count
	}
}

// release is swiotlb_release_slots: the slots go back, merged with the
// free runs after and before them within the segment.
func (p *pool) release(slot int) int {
	nslots := int((int64(p.allocSize[slot]) + SlotSize - 1) >> SlotShift)
	count := int32(0)
	if end := slot + nslots; end%SegSize != 0 && end < len(p.list) {
		count = p.list[end]
	}
	for i := slot + nslots - 1; i >= slot; i-- {
		count++
		p.list[i] = count
		p.allocSize[i] = 0
	}
	for i := slot - 1; i >= 0 && i%SegSize != SegSize-1 && p.list[i] != 0; i-- {
		count++
		p.list[i] = count
	}
	ar := &p.areas[slot/p.areaSlots]
	ar.used -= nslots
	p.used -= nslots
	return nslots
}

// Stats are the figures the kernel exposes (debugfs io_tlb_nslabs,
// io_tlb_used, io_tlb_used_hiwater, io_tlb_transient_nslabs) and what
// the model counts besides.
type Stats struct {
	Slots, Used, Peak, TransientSlots int64
	// Full counts mappings that found no slots ("swiotlb buffer is
	// full"); LastFull is the last such message's figures.
	Full     int64
	LastFull string
	// Oversize counts mappings larger than one segment can hold: they
	// can never succeed, whatever the pool's size.
	Oversize int64
	// OversizeBytes is the largest of them.
	OversizeBytes int64
	// Transient counts transient pools made for one mapping, Grown the
	// pools the background worker added (CONFIG_SWIOTLB_DYNAMIC).
	Transient, Grown int64
}

// PageSource gives a dynamic swiotlb its pages: an allocation of 2^order
// pages below the pool's physical limit that may not sleep when atomic,
// and their release.
type PageSource interface {
	AllocLow(order int, atomic bool) (pfn int32, ok bool)
	FreeLow(pfn int32, order int)
}

// TLB is the whole software IO TLB (io_tlb_mem): its pools.
type TLB struct {
	pools  []*pool
	nareas int
	// dynamic: CONFIG_SWIOTLB_DYNAMIC, with pages from src; pending is a
	// scheduled worker run (it runs at the next map).
	dynamic bool
	src     PageSource
	pending bool
	slots   int64 // default pool's, for the worker
	gone    []int // transient pools given back, their places free
	Stats   Stats
}

// New returns a TLB of slots slots at bus address start (page aligned) in
// nareas areas; with src, it grows as CONFIG_SWIOTLB_DYNAMIC does.
func New(start uint64, slots int64, nareas int, src PageSource) (*TLB, error) {
	if slots < SegSize || slots%SegSize != 0 {
		return nil, fmt.Errorf("swiotlb: %d slots: want a multiple of %d", slots, SegSize)
	}
	if start%uint64(dma.PageSize) != 0 {
		return nil, fmt.Errorf("swiotlb: start %#x is not page aligned", start)
	}
	nareas = Areas(slots, nareas, nareas)
	t := &TLB{pools: []*pool{newPool(start, slots, nareas)}, nareas: nareas, dynamic: src != nil, src: src, slots: slots}
	t.Stats.Slots = slots
	return t, nil
}

// Handle names a mapping: its pool and first slot.
type Handle struct {
	Pool, Slot int32
}

// Map finds slots for size bytes of the buffer at bus address orig for a
// device with minAlignMask, searching from cpu's area; it returns the bus
// address of the bounce buffer (keeping orig's offset within the minimum
// alignment, as swiotlb_align_offset does) and the mapping's handle.
func (t *TLB) Map(cpu int, orig uint64, size int64, minAlignMask, allocAlignMask uint64) (uint64, Handle, error) {
	if t.pending {
		t.grow()
	}
	offset := int64(orig & minAlignMask & (allocAlignMask | (SlotSize - 1)))
	alloc := size + offset
	if alloc > SlotSize*SegSize {
		t.Stats.Oversize++
		t.Stats.OversizeBytes = max(t.Stats.OversizeBytes, size)
		t.full(size)
		return 0, Handle{}, fmt.Errorf("%w: swiotlb: a %d-byte mapping exceeds one segment (%d bytes)", dma.ErrMapFailed, size, MaxMapping(minAlignMask))
	}
	start := cpu & (t.nareas - 1)
	for pi, p := range t.pools {
		if p.transient {
			continue
		}
		na := len(p.areas)
		for k := range na {
			a := (start + k) & (na - 1)
			if slot := p.search(a, orig, alloc, minAlignMask, allocAlignMask); slot >= 0 {
				return t.mapped(p, pi, slot, offset)
			}
		}
	}
	if t.dynamic {
		t.pending = true // the worker adds a pool of the default size
		nslots := (alloc + SlotSize - 1) >> SlotShift
		order := dma.Order(nslots << SlotShift)
		if pfn, ok := t.src.AllocLow(order, true); ok {
			p := newPool(uint64(pfn)<<dma.PageShift, int64(1<<order)*dma.PageSize>>SlotShift, 1)
			p.transient, p.pfn, p.order = true, pfn, order
			if slot := p.search(0, orig, alloc, minAlignMask, allocAlignMask); slot >= 0 {
				t.Stats.Transient++
				t.Stats.TransientSlots += int64(len(p.list))
				pi := len(t.pools)
				if n := len(t.gone); n > 0 {
					pi, t.gone = t.gone[n-1], t.gone[:n-1]
					t.pools[pi] = p
				} else {
					t.pools = append(t.pools, p)
				}
				return t.mapped(p, pi, slot, offset)
			}
			t.src.FreeLow(pfn, order)
		}
	}
	t.full(alloc)
	return 0, Handle{}, fmt.Errorf("%w: %s", dma.ErrMapFailed, t.Stats.LastFull)
}

func (t *TLB) mapped(p *pool, pi, slot int, offset int64) (uint64, Handle, error) {
	t.Stats.Used += (int64(p.allocSize[slot]) + SlotSize - 1) >> SlotShift
	t.Stats.Peak = max(t.Stats.Peak, t.Stats.Used)
	return p.start + uint64(slot)<<SlotShift + uint64(offset), Handle{Pool: int32(pi), Slot: int32(slot)}, nil
}

// full counts a failed mapping with the figures the kernel prints (its
// total is the pools' slots, transient ones left out).
func (t *TLB) full(size int64) {
	t.Stats.Full++
	t.Stats.LastFull = fmt.Sprintf("swiotlb buffer is full (sz: %d bytes), total %d (slots), used %d (slots)", size, t.Stats.Slots, t.Stats.Used)
}

// Unmap releases a mapping's slots; a transient pool goes back to the
// page allocator with its mapping.
func (t *TLB) Unmap(h Handle) {
	p := t.pools[h.Pool]
	if !p.transient {
		t.Stats.Used -= int64(p.release(int(h.Slot)))
		return
	}
	// swiotlb_del_transient: the pool goes, its slots with it.
	t.Stats.Used -= int64(p.used)
	t.src.FreeLow(p.pfn, p.order)
	t.Stats.TransientSlots -= int64(len(p.list))
	t.pools[h.Pool] = &pool{transient: true} // gone: never searched
	t.gone = append(t.gone, int(h.Pool))
}

// grow is the dynamic worker (swiotlb_dyn_alloc): a pool of the default
// size, halved until the page allocator has it, down to MinSlots.
func (t *TLB) grow() {
	t.pending = false
	for slots := t.slots; ; slots = (slots / 2) / SegSize * SegSize {
		if order := dma.Order(slots << SlotShift); order <= dma.MaxOrder {
			if pfn, ok := t.src.AllocLow(order, false); ok {
				n := int64(1<<order) * dma.PageSize >> SlotShift
				t.pools = append(t.pools, newPool(uint64(pfn)<<dma.PageShift, n, Areas(n, t.nareas, t.nareas)))
				t.Stats.Slots += n
				t.Stats.Grown++
				return
			}
		}
		if slots <= MinSlots || slots <= SegSize {
			return
		}
	}
}
