package dma

import (
	"errors"
	"fmt"
	"strings"
)

// Time is modeled time in nanoseconds on the simulated machine. It never
// comes from the host clock.
type Time int64

// Common modeled durations.
const (
	Nanosecond  Time = 1
	Microsecond      = 1000 * Nanosecond
	Millisecond      = 1000 * Microsecond
	Second           = 1000 * Millisecond
)

// PageShift and PageSize are the modeled machines' base page (4 KiB on every
// platform dmabench models).
const (
	PageShift       = 12
	PageSize  int64 = 1 << PageShift
	// MaxOrder is the largest buddy order (MAX_ORDER-1 in 2.x kernels).
	MaxOrder = 10
	// CostlyOrder is PAGE_ALLOC_COSTLY_ORDER: the largest order the kernel
	// tries hard to satisfy (a sleeping request above it may fail rather
	// than loop).
	CostlyOrder = 3
)

// Order returns get_order(size): the smallest order whose page block holds
// size bytes. Order(0) is 0, as in the kernel.
func Order(size int64) int {
	if size <= PageSize {
		return 0
	}
	pages := (size + PageSize - 1) >> PageShift
	o := 0
	for int64(1)<<o < pages {
		o++
	}
	return o
}

// GFP is a set of allocation flags with the meaning of the kernel's gfp_t.
type GFP uint32

// The GFP bits dmabench models. Zone modifiers (GFPDMA) select memory; the
// others say what the page allocator may do to satisfy a request.
const (
	// GFPWait: the caller may sleep and enter direct reclaim
	// (__GFP_WAIT, later __GFP_DIRECT_RECLAIM).
	GFPWait GFP = 1 << iota
	// GFPHigh: the caller may dip below the min watermark (__GFP_HIGH).
	GFPHigh
	// GFPIO: reclaim may start I/O (__GFP_IO).
	GFPIO
	// GFPFS: reclaim may call into filesystems (__GFP_FS).
	GFPFS
	// GFPDMA: allocate from ZONE_DMA (__GFP_DMA).
	GFPDMA
	// GFPZero: zero the memory (__GFP_ZERO).
	GFPZero
	// GFPNoWarn: do not warn on failure (__GFP_NOWARN).
	GFPNoWarn
	// GFPKswapd: wake kswapd (__GFP_KSWAPD_RECLAIM); informational.
	GFPKswapd
	// GFPNoMemalloc: never use the emergency reserves, even when atomic
	// (__GFP_NOMEMALLOC; mempool sets it on its first try).
	GFPNoMemalloc
	// GFPNoRetry: fail rather than loop in the page allocator or call the
	// OOM killer (__GFP_NORETRY, from 2.6; mempool sets it on every try).
	GFPNoRetry

	// GFPAll holds every bit above.
	GFPAll = GFPNoRetry<<1 - 1
)

// Composite flag sets as the kernel spells them.
const (
	GFPAtomic GFP = GFPHigh | GFPKswapd
	GFPNoIO   GFP = GFPWait | GFPKswapd
	GFPNoFS   GFP = GFPWait | GFPIO | GFPKswapd
	GFPKernel GFP = GFPWait | GFPIO | GFPFS | GFPKswapd
)

// CanSleep reports whether a caller with these flags may block.
func (g GFP) CanSleep() bool { return g&GFPWait != 0 }

// Atomic reports whether the request may not sleep (GFP_ATOMIC and
// GFP_NOWAIT style callers).
func (g GFP) Atomic() bool { return g&GFPWait == 0 }

var gfpBits = []struct {
	bit  GFP
	name string
}{
	{GFPWait, "__GFP_WAIT"}, {GFPHigh, "__GFP_HIGH"}, {GFPIO, "__GFP_IO"},
	{GFPFS, "__GFP_FS"}, {GFPDMA, "__GFP_DMA"}, {GFPZero, "__GFP_ZERO"},
	{GFPNoWarn, "__GFP_NOWARN"}, {GFPKswapd, "__GFP_KSWAPD_RECLAIM"},
	{GFPNoMemalloc, "__GFP_NOMEMALLOC"}, {GFPNoRetry, "__GFP_NORETRY"},
}

var gfpNames = []struct {
	set  GFP
	name string
}{
	{GFPKernel, "GFP_KERNEL"}, {GFPNoFS, "GFP_NOFS"}, {GFPNoIO, "GFP_NOIO"},
	{GFPAtomic, "GFP_ATOMIC"},
}

// String spells the flags the way ftrace prints them: a composite name
// followed by any remaining bits, joined with '|'.
func (g GFP) String() string {
	if g == 0 {
		return "GFP_NOWAIT"
	}
	var parts []string
	rest := g
	for _, n := range gfpNames {
		if rest&n.set == n.set {
			parts = append(parts, n.name)
			rest &^= n.set
			break
		}
	}
	for _, b := range gfpBits {
		if rest&b.bit != 0 {
			parts = append(parts, b.name)
		}
	}
	return strings.Join(parts, "|")
}

// ParseGFP reads flags written by String (or by ftrace): composite names and
// single bits joined by '|', with or without the leading "__".
func ParseGFP(s string) (GFP, error) {
	var g GFP
	for _, part := range strings.Split(s, "|") {
		part = strings.TrimSpace(part)
		if part == "" || part == "GFP_NOWAIT" {
			continue
		}
		found := false
		for _, n := range gfpNames {
			if part == n.name {
				g |= n.set
				found = true
				break
			}
		}
		if !found {
			name := "__" + strings.TrimPrefix(part, "__")
			for _, b := range gfpBits {
				if name == b.name {
					g |= b.bit
					found = true
					break
				}
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown gfp flag %q", part)
		}
	}
	return g, nil
}

// Context is the execution context a request ran in.
type Context uint8

// Calling contexts.
const (
	Process Context = iota
	SoftIRQ
	HardIRQ
)

var contextNames = [...]string{"process", "softirq", "hardirq"}

func (c Context) String() string {
	if int(c) < len(contextNames) {
		return contextNames[c]
	}
	return fmt.Sprintf("context(%d)", c)
}

// ParseContext is the inverse of Context.String.
func ParseContext(s string) (Context, error) {
	for i, n := range contextNames {
		if s == n {
			return Context(i), nil
		}
	}
	return 0, fmt.Errorf("unknown context %q (valid: %s)", s, strings.Join(contextNames[:], ", "))
}

// Dir is the direction of a streaming mapping.
type Dir uint8

// DMA directions, as enum dma_data_direction.
const (
	Bidirectional Dir = iota
	ToDevice
	FromDevice
	NoDir
)

var dirNames = [...]string{"bidirectional", "to_device", "from_device", "none"}

func (d Dir) String() string {
	if int(d) < len(dirNames) {
		return dirNames[d]
	}
	return fmt.Sprintf("dir(%d)", d)
}

// Device is a DMA master: a name and the address masks it can reach.
// Workloads own their devices; requests and events point at them.
type Device struct {
	Name string
	// Mask is the streaming DMA mask (dma_mask): the highest bus address
	// the device can reach is Mask.
	Mask uint64
	// CoherentMask is coherent_dma_mask; zero means "same as Mask".
	CoherentMask uint64
	// MinAlignMask is dma_set_min_align_mask: the low bits of a buffer's
	// address a bounce buffer must keep (NVMe: 4 KiB - 1); zero for none.
	MinAlignMask uint64
	// MapFailure is the driver's own policy for a failed map, if it has
	// one (Platform.Bug).
	MapFailure DevicePolicy
}

// Coherent returns the mask that applies to coherent allocations.
func (d *Device) Coherent() uint64 {
	if d.CoherentMask != 0 {
		return d.CoherentMask
	}
	return d.Mask
}

// BitMask returns DMA_BIT_MASK(n).
func BitMask(n int) uint64 {
	if n >= 64 {
		return ^uint64(0)
	}
	return uint64(1)<<n - 1
}

// Sentinel errors for expected outcomes. They are results, not exceptions:
// the engine counts them and the run goes on.
var (
	// ErrNoMem: the allocator or page allocator could not serve the request.
	ErrNoMem = errors.New("out of memory")
	// ErrMapFailed: a streaming mapping could not be made (aperture full,
	// bounce memory exhausted).
	ErrMapFailed = errors.New("mapping failed")
	// ErrBadPool: the pool id is unknown or the pool was destroyed.
	ErrBadPool = errors.New("unknown pool")
	// ErrInvalid: the request breaks the API's rules (bad alignment, size 0).
	ErrInvalid = errors.New("invalid request")
	// ErrUnsupported: a model refuses to run on a platform (slab-direct
	// behind an IOMMU): the cell is reported as refused, with the reason.
	ErrUnsupported = errors.New("refused")
	// ErrWouldBlock: the caller may sleep and must, until a wakeup or a
	// timeout; the allocator says which in Request.Wait. The engine parks
	// the request in modeled time and retries it.
	ErrWouldBlock = errors.New("caller must sleep")
)

// CoherentGFP says which gfp flags a model passes to dma_alloc_coherent.
type CoherentGFP uint8

// Coherent allocation flag policies.
const (
	// CoherentCaller passes the caller's flags down (the change proposed in
	// the 2002 thread, and what kernels do today).
	CoherentCaller CoherentGFP = iota
	// CoherentAtomic always asks with GFP_ATOMIC, as pci_alloc_consistent
	// did in 2002, whatever the caller could tolerate.
	CoherentAtomic
)

// ParseCoherentGFP reads "caller" or "atomic".
func ParseCoherentGFP(s string) (CoherentGFP, error) {
	switch s {
	case "caller":
		return CoherentCaller, nil
	case "atomic":
		return CoherentAtomic, nil
	}
	return 0, fmt.Errorf("coherent_gfp %q: valid values are atomic, caller", s)
}

// Apply returns the flags dma_alloc_coherent is called with.
func (c CoherentGFP) Apply(g GFP) GFP {
	if c == CoherentAtomic {
		return GFPAtomic | g&GFPDMA
	}
	return g
}

func (c CoherentGFP) String() string {
	if c == CoherentAtomic {
		return "atomic"
	}
	return "caller"
}
