package dma

import "fmt"

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
	// AtomicFailures counts page allocations by callers that may not
	// sleep that failed (pool growth, buffers, bounce buffers alike).
	AtomicFailures int64
	// Sleep is set by the page allocator when it returns ErrWouldBlock:
	// the wait of a sleeping caller it loops on. The engine takes it when
	// the allocator set no wait of its own, and clears it.
	Sleep Wait
	// OOMKills counts tasks the modeled OOM killer chose; Panicked is set
	// when it found none to kill, which stops a real machine.
	OOMKills int64
	Panicked bool
	// Wake is set by an allocator whose free woke sleepers on a pool:
	// pool id + 1, or 0 for no wakeup. The engine clears it.
	Wake ID
	// Now is the modeled time of the event being served; the engine sets
	// it so platforms can advance background activity.
	Now Time
	// CPU is the source (driver thread, or a capture's CPU) the event
	// came from, for platforms with per-CPU state (swiotlb's areas).
	CPU int
	// Platform counters, for the results.
	BounceMaps   int64 // streaming maps that bounced
	BounceBytes  int64 // bytes copied through bounce buffers
	IOTLBFlushes int64 // IOTLB invalidations issued
	IOVABytes    int64 // IOVA space in use
	IOVAPeak     int64
	SGSegments   int64 // scatterlist segments mapped
	SGEntries    int64 // DMA segments they became after merging
}

// Frag is the kernel's external fragmentation view (as in
// /sys/kernel/debug/extfrag) per order 0..MaxOrder.
type Frag struct {
	// Unusable is the unusable free space index.
	Unusable [MaxOrder + 1]float64 `json:"unusable"`
	// Index is the fragmentation index (-1: the order would succeed).
	Index [MaxOrder + 1]float64 `json:"index"`
}

// MapPolicy says what a failed streaming map does.
type MapPolicy uint8

// Map failure policies: the two sides of the 2002 argument.
const (
	// MapError: the map returns an error the driver handles.
	MapError MapPolicy = iota
	// MapBug: the old pci_ API had no error return; a failed map is fatal
	// and the cell stops, reported as crashed.
	MapBug
)

// DevicePolicy is a driver's own answer to a failed map, over the
// platform's: the per-driver choice offered in 2002 instead of one rule
// for every driver of a machine.
type DevicePolicy uint8

// Device policies.
const (
	PolicyPlatform DevicePolicy = iota // the platform's map_failure
	PolicyError                        // this driver handles the error
	PolicyBug                          // this driver has no error path
)

// ParseDevicePolicy reads "" (the platform's), "error" or "bug".
func ParseDevicePolicy(s string) (DevicePolicy, error) {
	switch s {
	case "":
		return PolicyPlatform, nil
	case "error":
		return PolicyError, nil
	case "bug":
		return PolicyBug, nil
	}
	return 0, fmt.Errorf("map_failure %q: valid values are \"\" (the platform's), error, bug", s)
}

// Bug reports whether a failed map of dev's is fatal on platform p.
func (p *Platform) Bug(dev *Device) bool {
	if dev != nil && dev.MapFailure != PolicyPlatform {
		return dev.MapFailure == PolicyBug
	}
	return p.MapFailure == MapBug
}

// ParseMapPolicy reads "error" or "bug".
func ParseMapPolicy(s string) (MapPolicy, error) {
	switch s {
	case "error":
		return MapError, nil
	case "bug":
		return MapBug, nil
	}
	return 0, fmt.Errorf("map_failure %q: valid values are bug, error", s)
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

// Syncer is implemented by platforms where dma_sync_* has work to do:
// cache maintenance on a non-coherent machine, a copy for a bounced buffer.
type Syncer interface {
	Sync(b Block, dir Dir)
}

// SGMapper is implemented by platforms that map a scatterlist as a whole
// (an IOMMU merging segments into one IOVA range). out has one block per
// segment; MapSG returns the number of DMA segments after merging. On
// error nothing stays mapped. Platforms without it get each segment mapped
// by Map.
type SGMapper interface {
	MapSG(dev *Device, segs []int64, dir Dir, gfp GFP, out []Block) (int, error)
	UnmapSG(blocks []Block, dir Dir)
}

// Platform is a modeled machine as allocators and the engine see it.
type Platform struct {
	Name string
	// Coherent: DMA is cache-coherent (no cache maintenance needed).
	Coherent bool
	// IOMMU: bus addresses are translated; DMA != physical address.
	IOMMU bool
	// Encrypted: memory is private to a confidential guest; a device
	// reaches only memory made shared (coherent allocations, swiotlb).
	Encrypted bool
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
	// MapFailure is what a failed streaming map does.
	MapFailure MapPolicy
	// Reachable, if set, says whether a device may be given this bus
	// range (DMA-able memory, the IOMMU aperture); nil means anywhere
	// within the device's mask.
	Reachable func(addr uint64, size int64) bool
	// Frag, if set, reports the page allocator's fragmentation indices.
	Frag func() Frag
	// CacheMaintain, set on a machine without coherent DMA, cleans (dir
	// ToDevice: handed to the device) or invalidates (FromDevice: given
	// back) the lines of the size bytes of cached memory at addr, as
	// dma_map_single and dma_unmap_single of kmalloc memory do there, at
	// the platform's cost.
	CacheMaintain func(addr uint64, size int64, dir Dir)
	// MinHeadroom, if set, reports the lowest (free - min watermark) pages
	// seen so far.
	MinHeadroom func() int64
}
