package dma

import "fmt"

// Request is what a driver asks an allocator for: what the models read.
// The time is the platform Meter's Now; a pool's blocks are aligned and
// bounded as the pool was created.
type Request struct {
	Size  int64
	Align int64 // 0 or 1: no constraint beyond the allocator's own
	GFP   GFP
	Dev   *Device
	// Wait is filled in by an allocator that returns ErrWouldBlock.
	Wait Wait
	// Class is filled in by a size-class allocator (dma_alloc) that
	// served the request: the size its kmalloc-style table gave it, what
	// a kmalloc trace calls bytes_alloc. Its block may be larger (a class
	// pool's minimum or alignment). Zero from other allocators.
	Class int64
}

// WaitKind says why a sleeping caller sleeps.
type WaitKind uint8

// Kinds of sleep.
const (
	// WaitMempool: mempool_alloc found the reserve empty and waits for an
	// element to come back (or its 5 s timeout).
	WaitMempool WaitKind = iota + 1
	// WaitPoolRetry: pci_pool_alloc with SLAB_KERNEL found no page and
	// sleeps until a free in the pool or 100 ms pass, then retries.
	WaitPoolRetry
	// WaitReclaim: the page allocator found nothing to reclaim for a
	// sleeping order <= 3 request and loops: the caller sleeps
	// (congestion_wait, or yield in 2.4/2.5) and tries again.
	WaitReclaim
	NumWaitKinds
)

// Wait describes a sleep: the request is retried after Timeout, or sooner
// when the allocator reports a wakeup for pool On (see Meter.Wake).
type Wait struct {
	Kind    WaitKind
	Timeout Time
	On      ID
}

// Block is memory handed out by an allocator: where the CPU sees it, where
// the device sees it, and how many bytes it occupies.
type Block struct {
	CPU  uint64 // CPU (kernel virtual) address
	DMA  uint64 // bus address the device uses
	Size int64  // bytes the block occupies (>= the request)
	// Owner's fields are Block's: b.Pool, b.Handle. They sit in a struct
	// of their own so that Block has four fields, which Go keeps in
	// registers; with five it goes through memory on every call.
	Owner
}

// Owner says where a block came from.
type Owner struct {
	Pool ID // pool it came from, or NoPool
	// Handle is private to the allocator that made the block.
	Handle int32
}

// End returns the CPU address one past the block.
func (b Block) End() uint64 { return b.CPU + uint64(b.Size) }

// PoolSpec describes a pool as dma_pool_create/pci_pool_create receive it.
type PoolSpec struct {
	Name     string
	Dev      *Device
	Size     int64
	Align    int64
	Boundary int64 // "allocation" in the 2002 pci_pool API
}

// PoolGeometry applies dma_pool_create's rules, the same in every kernel
// since 2.6: align a power of two (1 when 0); the block size at least
// minBlock, rounded up to align; an allocation of at least a page; the
// boundary a power of two no smaller than the block (the allocation when
// 0). It returns ErrInvalid (wrapped) where the kernel returns NULL.
func PoolGeometry(size, align, boundary, minBlock int64) (block, allocation, bound int64, err error) {
	if align == 0 {
		align = 1
	} else if align < 0 || align&(align-1) != 0 {
		return 0, 0, 0, fmt.Errorf("%w: align %d is not a power of two", ErrInvalid, align)
	}
	if size <= 0 || size > 1<<30 {
		return 0, 0, 0, fmt.Errorf("%w: size %d", ErrInvalid, size)
	}
	block = (max(size, minBlock) + align - 1) &^ (align - 1)
	allocation = max(block, PageSize)
	if boundary == 0 {
		boundary = allocation
	} else if boundary < block || boundary&(boundary-1) != 0 {
		return 0, 0, 0, fmt.Errorf("%w: boundary %d (block size %d)", ErrInvalid, boundary, block)
	}
	return block, allocation, boundary, nil
}

// Allocator is a model of a DMA allocator. It serves requests from pools it
// created and by size (pool NoPool). Allocators are used by one goroutine.
//
// Alloc returns ErrNoMem (possibly wrapped) when memory is short; the engine
// counts it. Free must only be given blocks Alloc returned and not yet freed;
// the engine checks that before calling it.
type Allocator interface {
	CreatePool(spec PoolSpec) (ID, error)
	Alloc(pool ID, r *Request) (Block, error)
	Free(b Block)
}

// PoolDestroyer is implemented by allocators whose pools can be destroyed.
type PoolDestroyer interface {
	DestroyPool(pool ID) error
}

// Stats is an allocator's own account of itself.
type Stats struct {
	Allocs     int64 // successful allocations
	Frees      int64
	Failures   int64 // allocations that returned an error
	LiveBlocks int64
	// ReservedBytes is what the allocator holds from the page allocator.
	ReservedBytes int64
	// IdlePages counts pages the allocator holds with no live block in them.
	IdlePages int64
	// LeakedBlocks counts blocks still allocated when their pool was
	// destroyed: they died with it, are not LiveBlocks, and the memory
	// under them stays reserved, as the kernel leaks it.
	LeakedBlocks int64
}

// StatsReporter is implemented by allocators that keep Stats.
type StatsReporter interface {
	Stats() Stats
}

// Reporter is implemented by models with metrics of their own; the runner
// adds them to the cell's results under the keys given.
type Reporter interface {
	Report(add func(key string, value float64))
}

// AllocWholePages serves a by-size request the way dma_alloc_coherent
// does: 2^order whole pages from pages, with gfp. It keeps st's counts.
func AllocWholePages(pages Pages, st *Stats, dev *Device, size int64, gfp GFP) (Block, error) {
	o := Order(size)
	if size <= 0 || o > MaxOrder {
		st.Failures++
		return Block{}, ErrNoMem
	}
	b, err := pages.AllocPages(dev, o, gfp)
	if err != nil {
		return Block{}, st.Fail(err)
	}
	st.Allocs++
	st.LiveBlocks++
	st.ReservedBytes += b.Size
	return b, nil
}

// Grow takes an order-o page block for a pool from pages with gfp,
// counting in st the allocations that succeeded only below the min
// watermark (m's AtomicDips) and those that failed; a sleep the page
// allocator asks for (ErrWouldBlock) is not a failure.
func (st *PoolStats) Grow(pages Pages, m *Meter, dev *Device, order int, gfp GFP) (Block, error) {
	dips := m.AtomicDips
	b, err := pages.AllocPages(dev, order, gfp)
	st.Dips += m.AtomicDips - dips
	if err != nil && err != ErrWouldBlock {
		st.GrowFailures++
	}
	return b, err
}

// Closer is implemented by an allocator that holds what Go's garbage
// collector cannot take back (memory outside Go, handles): the runner
// closes it once a cell's results are read.
type Closer interface {
	Close()
}

// Fail counts a failed allocation and returns err; ErrWouldBlock is not
// a failure (the caller sleeps and tries again).
func (st *Stats) Fail(err error) error {
	if err != ErrWouldBlock {
		st.Failures++
	}
	return err
}

// FreeWholePages gives back a block AllocWholePages made.
func FreeWholePages(pages Pages, st *Stats, b Block) {
	st.Frees++
	st.LiveBlocks--
	st.ReservedBytes -= b.Size
	pages.FreePages(b)
}

// PoolStats is what a pool-based model knows of one of its pools: its
// geometry and what it holds, for the results' breakdown by pool.
type PoolStats struct {
	// BlockSize is a block's size as the model rounds it; PerPage the
	// blocks (or slab objects) one page allocation holds.
	BlockSize int64 `json:"block_size"`
	PerPage   int64 `json:"per_page"`
	// Pages and PeakPages: page allocations (of PageBytes each) the pool
	// holds now and held at most; IdlePages those with no live block.
	Pages     int64 `json:"pages"`
	PeakPages int64 `json:"peak_pages"`
	PageBytes int64 `json:"page_bytes"`
	IdlePages int64 `json:"idle_pages"`
	// GrowFailures: page allocations for the pool that failed; Dips:
	// those that succeeded only below the min watermark.
	GrowFailures int64 `json:"grow_failures"`
	Dips         int64 `json:"reserve_dips"`
	// ReserveMin is a mempool's lowest reserve level (-1: no reserve).
	ReserveMin int64 `json:"reserve_min"`
}

// PoolUse is what a workload's callers did with one of its pools: the
// allocations served, those that failed (and of them, those with a
// non-sleeping gfp mask), and the sleeps its callers took in it. The
// engine counts it; a results file holds it per pool.
type PoolUse struct {
	Workload       int    `json:"-"`
	ID             ID     `json:"-"` // the model's id for the pool
	Name           string `json:"name"`
	Size           int64  `json:"size"`
	Allocs         int64  `json:"allocs"`
	Failures       int64  `json:"failures"`
	AtomicFailures int64  `json:"atomic_failures"`
	Waits          int64  `json:"waits"`
	WaitNS         Time   `json:"wait_ns"`
	Destroyed      bool   `json:"destroyed,omitempty"`
	CreateFailed   bool   `json:"create_failed,omitempty"`
}

// PoolStatser is implemented by pool-based models that report PoolStats
// for a pool id they handed out, destroyed or not.
type PoolStatser interface {
	PoolStats(id ID) (PoolStats, bool)
}
