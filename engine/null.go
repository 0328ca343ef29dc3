package engine

import "github.com/dmabench/dmabench/dma"

// Null is an allocator and platform that do no modeling work: every request
// succeeds at once with a made-up address. Replaying a workload against Null
// measures what the harness itself (sources, engine, metrics) costs, so the
// caller can subtract it from a real allocator's host time.
type Null struct {
	next  uint64
	meter dma.Meter
}

var (
	_ dma.Allocator = (*Null)(nil)
	_ dma.Pages     = (*Null)(nil)
	_ dma.Mapper    = (*Null)(nil)
)

// NewNull returns a null allocator and the null platform it stands on.
func NewNull() (*Null, *dma.Platform) {
	n := &Null{next: 1 << 20}
	p := &dma.Platform{Name: "null", Coherent: true, CacheLine: 64, Pages: n, Kernel: n, Mapper: n, Meter: &n.meter}
	return n, p
}

func (n *Null) block(size int64) dma.Block {
	n.next += 64
	return dma.Block{CPU: n.next, DMA: n.next, Size: size, Owner: dma.Owner{Pool: dma.NoPool}}
}

// CreatePool accepts any pool.
func (n *Null) CreatePool(dma.PoolSpec) (dma.ID, error) { return 0, nil }

// Alloc returns a made-up block.
func (n *Null) Alloc(_ dma.ID, r *dma.Request) (dma.Block, error) { return n.block(r.Size), nil }

// Free does nothing.
func (n *Null) Free(dma.Block) {}

// AllocPages returns a made-up block.
func (n *Null) AllocPages(_ *dma.Device, order int, _ dma.GFP) (dma.Block, error) {
	return n.block(dma.PageSize << order), nil
}

// FreePages does nothing.
func (n *Null) FreePages(dma.Block) {}

// Map returns a made-up mapping.
func (n *Null) Map(_ *dma.Device, size int64, _ dma.Dir, _ dma.GFP) (dma.Block, error) {
	return n.block(size), nil
}

// Unmap does nothing.
func (n *Null) Unmap(dma.Block, dma.Dir) {}
