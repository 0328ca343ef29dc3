package dma

// Meter accumulates what the platform and allocator models did, in modeled
// terms, while the engine serves one event. The engine owns it, resets Cost
// before each event and reads it after.
type Meter struct {
	// Cost is modeled CPU time spent serving the current event.
	Cost Time
	// CoherentBytes is bytes currently held through Pages (coherent memory
	// the allocator took from the page allocator).
	CoherentBytes int64
	// BufferBytes is bytes currently held by streaming buffers.
	BufferBytes int64
	// AtomicDips counts page allocations that succeeded only because the
	// caller could go below the min watermark.
	AtomicDips int64
	// Wake is set by an allocator whose free woke sleepers on a pool:
	// pool id + 1, or 0 for no wakeup. The engine clears it.
	Wake ID
}

// Charge adds modeled CPU time.
func (m *Meter) Charge(t Time) { m.Cost += t }

// Pages is a platform's dma_alloc_coherent at page granularity: 2^order
// contiguous pages reachable by dev's coherent mask.
type Pages interface {
	AllocPages(dev *Device, order int, gfp GFP) (Block, error)
	FreePages(b Block)
}

// Mapper makes streaming mappings. Map models the driver's data buffer
// (size bytes, taken from the page allocator with gfp) and maps it for dev;
// it returns ErrNoMem when the buffer cannot be had and ErrMapFailed when the
// mapping itself fails.
type Mapper interface {
	Map(dev *Device, size int64, dir Dir, gfp GFP) (Block, error)
	Unmap(b Block, dir Dir)
}

// Platform is a modeled machine as allocators and the engine see it.
type Platform struct {
	Name string
	// Coherent: DMA is cache-coherent (no cache maintenance needed).
	Coherent bool
	// IOMMU: bus addresses are translated; DMA != physical address.
	IOMMU bool
	// CacheLine is dma_get_cache_alignment(): DMA buffers on a
	// non-coherent machine must not share a line of this size.
	CacheLine int64
	// PageOffset is where the kernel's linear map starts: a CPU address is
	// PageOffset + physical address.
	PageOffset uint64
	// RAMBytes is the machine's memory.
	RAMBytes int64

	// Pages is dma_alloc_coherent at page granularity.
	Pages Pages
	// Kernel is the plain page allocator (__get_free_pages) for memory a
	// kmem_cache hands out: the block's DMA address is its physical
	// address, with no translation and no coherence guarantee. gfp's
	// GFPDMA, or a device mask that needs it, selects ZONE_DMA.
	Kernel Pages
	Mapper Mapper
	Meter  *Meter
}
