package kernel

// PageSource gives the kernel code its coherent pages: dmabench's
// platform (or, in validation, a page source both sides share). ok false
// is a failed allocation; the kernel code then sees NULL.
type PageSource interface {
	AllocPages(size int64, gfp uint32) (cpu, dma uint64, ok bool)
	FreePages(size int64, cpu, dma uint64)
}

// Handles to the kernel code's objects, opaque to Go.
type (
	Device  uintptr
	Pool    uintptr
	Mempool uintptr
)

// Op is one operation of a stream kd_replay times: Kind 0 an alloc from
// Pool into Slot, 1 the free of Slot.
type Op struct {
	Kind, Pool, Slot int32
	GFP              uint32
}

// MempoolDid is what a mempool_alloc did beside its result: Slept when it
// went to sleep for an element (the caller sleeps and retries), Reserve
// when it took from the reserve (or refilled it), Curr the reserve after.
type MempoolDid struct {
	Slept, Reserve bool
	Curr           int
}

// Backend is a loaded library: the tree's dma_pool and mempool, called
// one at a time (the library's glue is not made for concurrent callers).
type Backend interface {
	Version() string
	Features() Features
	// NewDevice makes a struct device whose pages come from src;
	// Release frees it once its pools are destroyed, with the host memory
	// of any page they leaked.
	NewDevice(src PageSource) Device
	Release(d Device)
	PoolCreate(d Device, name string, size, align, boundary int64) Pool
	// PoolAlloc returns the block's host address (0: NULL) and the
	// platform's CPU and DMA addresses of it.
	PoolAlloc(p Pool, gfp uint32) (vaddr uintptr, cpu, dma uint64)
	PoolFree(p Pool, vaddr uintptr, dma uint64)
	PoolDestroy(p Pool)
	HasMempool() bool
	MempoolCreate(minNr int, inner Pool) Mempool
	// MempoolAlloc is mempool_alloc: the element, and what the call did.
	MempoolAlloc(m Mempool, gfp uint32) (vaddr uintptr, cpu, dma uint64, did MempoolDid)
	// MempoolFree is mempool_free: whether the element went to the
	// reserve, and whether it woke the pool's sleepers.
	MempoolFree(m Mempool, vaddr uintptr) (reserve, woken bool)
	MempoolCurr(m Mempool) int
	// MempoolElement is the platform's CPU address of the reserve's
	// element i (0 <= i < MempoolCurr).
	MempoolElement(m Mempool, i int) uint64
	// ElementCalls counts the calls the mempool over p made of it
	// (dma_pool_alloc and dma_pool_free), ever.
	ElementCalls(p Pool) (allocs, frees uint64)
	MempoolDestroy(m Mempool)
	// Replay times a pool operation stream in the library on host pages:
	// pools (size, align, boundary), the ops, the slots they use; it
	// returns the thread CPU time of the operations in ns.
	Replay(pools [][3]int64, ops []Op, slots int) uint64
	// Errors counts the errors the kernel code reported (dev_err, WARN)
	// in calls for device d.
	Errors(d Device) uint64
}

// OpenBackend loads the back end for the tree at path: reads it, builds its
// library (or finds it built) and loads it.
func OpenBackend(path string) (Backend, error) {
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	t, err := Open(path, cache)
	if err != nil {
		return nil, err
	}
	lib, err := Build(t, cache)
	if err != nil {
		return nil, err
	}
	return load(lib, t)
}
