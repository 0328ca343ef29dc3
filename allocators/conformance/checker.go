// Package conformance is the suite every allocator model must pass: a
// shadow checker that watches each block handed out and freed, and a driver
// that runs long random alloc/free sequences through it.
//
// The checker verifies that no two live blocks overlap in CPU or in DMA
// address space (or share a cache line, on a non-coherent machine, when the
// memory is cached), that each block honours its alignment, boundary and
// the device's DMA mask, is at least as large as asked, that freed memory is
// reused, and that the allocator's own statistics agree with what it did.
package conformance

import (
	"fmt"
	"sort"

	"github.com/dmabench/dmabench/dma"
)

// Kind is a kind of violation.
type Kind uint8

// Violation kinds.
const (
	OverlapCPU Kind = iota
	OverlapDMA
	Misaligned
	CrossesBoundary
	BeyondMask
	TooSmall
	NoReuse
	StatsMismatch
	OutsideRegion
	// FreeTakes: a free left more memory held than before it. A free
	// gives memory back; the engine counts the peak of reserved bytes
	// after allocs and maps only.
	FreeTakes
	NumKinds
)

var kindNames = [...]string{"overlap-cpu", "overlap-dma", "misaligned", "crosses-boundary", "beyond-mask", "too-small", "no-reuse", "stats-mismatch", "outside-region", "free-takes-memory"}

func (k Kind) String() string { return kindNames[k] }

// Violation is one broken rule.
type Violation struct {
	Kind Kind
	Msg  string
}

func (v Violation) String() string { return v.Kind.String() + ": " + v.Msg }

type span struct {
	start, end uint64
}

// spans is a set of disjoint half-open ranges sorted by start.
type spans []span

func (s spans) find(start uint64) int {
	return sort.Search(len(s), func(i int) bool { return s[i].start >= start })
}

// overlaps returns the live range that [start, end) overlaps, if any.
func (s spans) overlaps(start, end uint64) (span, bool) {
	i := s.find(start)
	if i < len(s) && s[i].start < end {
		return s[i], true
	}
	if i > 0 && s[i-1].end > start {
		return s[i-1], true
	}
	return span{}, false
}

func (s *spans) insert(start, end uint64) {
	i := s.find(start)
	*s = append(*s, span{})
	copy((*s)[i+1:], (*s)[i:])
	(*s)[i] = span{start, end}
}

func (s *spans) remove(start uint64) bool {
	i := s.find(start)
	if i < len(*s) && (*s)[i].start == start {
		*s = append((*s)[:i], (*s)[i+1:]...)
		return true
	}
	return false
}

// Rules are the constraints a block must meet.
type Rules struct {
	Size     int64 // minimum size
	Align    int64 // 0 or 1: none
	Boundary int64 // 0: none
	Mask     uint64
}

// Region reports whether a DMA range is where the platform says DMA may go
// (inside DMA-able memory, inside an aperture). nil accepts everything.
type Region func(dmaAddr uint64, size int64) bool

// Checker shadows an allocator. It is not safe for concurrent use.
type Checker struct {
	// CacheLine, when > 0, widens each CPU range to whole cache lines
	// before the overlap check: cached DMA buffers on a non-coherent
	// machine must not share a line.
	CacheLine int64
	// Region, when set, must accept every block's DMA range.
	Region Region

	cpu, bus  spans
	Counts    [NumKinds]int64
	First     []Violation // the first few violations, for messages
	Allocs    int64
	Frees     int64
	Live      int64
	LiveBytes int64
	// Leaked counts blocks that died with their pool (Leak): their
	// memory stays occupied.
	Leaked     int64
	MaxDetails int
}

func (c *Checker) report(k Kind, format string, args ...any) {
	c.Counts[k]++
	if c.MaxDetails == 0 {
		c.MaxDetails = 10
	}
	if len(c.First) < c.MaxDetails {
		c.First = append(c.First, Violation{k, fmt.Sprintf(format, args...)})
	}
}

// Total returns the number of violations seen.
func (c *Checker) Total() int64 {
	var n int64
	for _, v := range c.Counts {
		n += v
	}
	return n
}

func (c *Checker) cpuExtent(b dma.Block) (uint64, uint64) {
	start, end := b.CPU, b.End()
	if c.CacheLine > 0 {
		l := uint64(c.CacheLine)
		start &^= l - 1
		end = (end + l - 1) &^ (l - 1)
	}
	return start, end
}

// Alloc checks a block the allocator just returned for a request with
// rules r.
func (c *Checker) Alloc(r Rules, b dma.Block) {
	c.Allocs++
	c.Live++
	c.LiveBytes += b.Size
	if b.Size < r.Size {
		c.report(TooSmall, "block %#x has %d bytes, %d asked", b.CPU, b.Size, r.Size)
	}
	if r.Align > 1 && (b.CPU%uint64(r.Align) != 0 || b.DMA%uint64(r.Align) != 0) {
		c.report(Misaligned, "block cpu %#x dma %#x not aligned to %d", b.CPU, b.DMA, r.Align)
	}
	if r.Boundary > 0 && b.Size > 0 {
		bd := uint64(r.Boundary)
		last := uint64(min(b.Size, r.Size)) - 1
		if r.Size == 0 {
			last = uint64(b.Size) - 1
		}
		if b.DMA/bd != (b.DMA+last)/bd || b.CPU/bd != (b.CPU+last)/bd {
			c.report(CrossesBoundary, "block dma %#x+%d crosses a %d-byte boundary", b.DMA, last+1, r.Boundary)
		}
	}
	if r.Mask != 0 && b.Size > 0 && b.DMA+uint64(b.Size)-1 > r.Mask {
		c.report(BeyondMask, "block dma %#x+%d beyond mask %#x", b.DMA, b.Size, r.Mask)
	}
	if c.Region != nil && !c.Region(b.DMA, b.Size) {
		c.report(OutsideRegion, "block dma %#x+%d outside DMA-able memory", b.DMA, b.Size)
	}
	start, end := c.cpuExtent(b)
	if o, ok := c.cpu.overlaps(start, end); ok {
		c.report(OverlapCPU, "block cpu [%#x,%#x) overlaps live [%#x,%#x)", start, end, o.start, o.end)
	} else {
		c.cpu.insert(start, end)
	}
	dEnd := b.DMA + uint64(b.Size)
	if o, ok := c.bus.overlaps(b.DMA, dEnd); ok {
		c.report(OverlapDMA, "block dma [%#x,%#x) overlaps live [%#x,%#x)", b.DMA, dEnd, o.start, o.end)
	} else {
		c.bus.insert(b.DMA, dEnd)
	}
}

// Free records that a block was freed.
func (c *Checker) Free(b dma.Block) {
	c.Frees++
	c.Live--
	c.LiveBytes -= b.Size
	start, _ := c.cpuExtent(b)
	c.cpu.remove(start)
	c.bus.remove(b.DMA)
}

// Leak records that a live block died with its destroyed pool: it is no
// longer live, but its memory stays taken, so no later block may overlap
// it.
func (c *Checker) Leak(b dma.Block) {
	c.Live--
	c.LiveBytes -= b.Size
	c.Leaked++
}

// CheckStats compares an allocator's own statistics with the shadow's, and
// its reserved bytes with what the platform says it holds.
func (c *Checker) CheckStats(s dma.Stats, coherentBytes int64) {
	if s.Allocs != c.Allocs || s.Frees != c.Frees || s.LiveBlocks != c.Live || s.LeakedBlocks != c.Leaked {
		c.report(StatsMismatch, "allocator says allocs=%d frees=%d live=%d leaked=%d, shadow saw %d/%d/%d/%d",
			s.Allocs, s.Frees, s.LiveBlocks, s.LeakedBlocks, c.Allocs, c.Frees, c.Live, c.Leaked)
	}
	if s.ReservedBytes != coherentBytes {
		c.report(StatsMismatch, "allocator says it holds %d bytes, the platform gave it %d", s.ReservedBytes, coherentBytes)
	}
}
