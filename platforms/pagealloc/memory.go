package pagealloc

import (
	"fmt"

	"github.com/dmabench/dmabench/dma"
)

// Pressure is background memory pressure: the page cache fills free memory
// at a rate, kswapd reclaims it at a rate once a zone falls below its low
// watermark (until it is back above high), and callers that may sleep
// reclaim in batches themselves, stalling, when even the min watermark
// would be broken.
type Pressure struct {
	// FillMiBPerS is how fast the page cache takes free memory (0: no
	// background pressure). It takes only pages above the low watermark.
	FillMiBPerS float64 `mapstructure:"fill_mib_per_s" json:"fill_mib_per_s"`
	// ReclaimMiBPerS is kswapd's reclaim rate.
	ReclaimMiBPerS float64 `mapstructure:"reclaim_mib_per_s" json:"reclaim_mib_per_s"`
	// StallUS is the stall of one direct-reclaim batch (estimate).
	StallUS int64 `mapstructure:"reclaim_stall_us" json:"reclaim_stall_us"`
	// Batch is the pages one direct-reclaim batch frees (SWAP_CLUSTER_MAX).
	Batch int `mapstructure:"reclaim_batch" json:"reclaim_batch"`
	// StartFull: with pressure on, the machine has been running: the page
	// cache already fills free memory down to the low watermark when the
	// workloads start.
	StartFull bool `mapstructure:"start_full" json:"start_full"`
}

// DefaultPressure returns no background pressure, with the kernel's
// reclaim batch and a 1 ms stall per batch.
func DefaultPressure() Pressure {
	return Pressure{FillMiBPerS: 0, ReclaimMiBPerS: 200, StallUS: 1000, Batch: 32, StartFull: true}
}

// Validate checks the knobs.
func (p Pressure) Validate() error {
	if p.FillMiBPerS < 0 || p.FillMiBPerS > 1e6 || p.ReclaimMiBPerS < 0 || p.ReclaimMiBPerS > 1e6 {
		return fmt.Errorf("pressure: fill_mib_per_s and reclaim_mib_per_s must be in 0..1e6")
	}
	if p.StallUS < 0 || p.Batch < 1 || p.Batch > 1<<20 {
		return fmt.Errorf("pressure: reclaim_stall_us must be >= 0 and reclaim_batch in 1..1048576")
	}
	return nil
}

// Memory is a machine's RAM as the platforms use it: the buddy allocator
// plus the page cache that competes for it. It is used by one goroutine.
type Memory struct {
	A     *Allocator
	cfg   Pressure
	meter *dma.Meter
	// all lists every zone, highest first: where the page cache goes.
	all []int

	cache      []int32 // page-cache pfns, oldest first from head
	head       int
	last       dma.Time
	started    bool
	fillAcc    float64
	reclaimAcc float64
	kswapd     bool

	// MinHeadroom is the lowest (free pages - min watermark) over all
	// zones seen after any allocation; negative when atomic callers dipped.
	MinHeadroom int64
	// Stalls counts direct-reclaim batches; Reclaimed pages reclaimed by
	// kswapd and direct reclaim.
	Stalls, Reclaimed int64
}

// NewMemory wraps a with background pressure; meter receives costs.
func NewMemory(a *Allocator, cfg Pressure, meter *dma.Meter) *Memory {
	m := &Memory{A: a, cfg: cfg, meter: meter}
	for zi := len(a.Zones) - 1; zi >= 0; zi-- {
		m.all = append(m.all, zi)
	}
	m.MinHeadroom = a.Headroom()
	return m
}

// CachePages returns how many pages the page cache holds.
func (m *Memory) CachePages() int { return len(m.cache) - m.head }

const pagesPerMiB = float64(1<<20) / float64(dma.PageSize)

// Advance brings the page cache and kswapd up to modeled time now.
func (m *Memory) Advance(now dma.Time) {
	if !m.started {
		m.started, m.last = true, now
		if m.cfg.StartFull && m.cfg.FillMiBPerS > 0 {
			for {
				pfn, ok := m.A.AllocFast(m.all, 0)
				if !ok {
					break
				}
				m.cache = append(m.cache, pfn)
			}
		}
		return
	}
	dt := float64(now-m.last) / 1e9
	if dt <= 0 {
		return
	}
	m.last = now
	if m.kswapd {
		m.reclaimAcc += dt * m.cfg.ReclaimMiBPerS * pagesPerMiB
		for m.reclaimAcc >= 1 && m.CachePages() > 0 {
			m.reclaimAcc--
			// Only the zone that just grew can complete the balance.
			if z := m.reclaimOne(); z.FreePages >= z.High && m.balanced() {
				m.kswapd = false
				m.reclaimAcc = 0
				break
			}
		}
	}
	if m.cfg.FillMiBPerS > 0 {
		m.fillAcc += dt * m.cfg.FillMiBPerS * pagesPerMiB
		for m.fillAcc >= 1 {
			pfn, ok := m.A.AllocFast(m.all, 0)
			if !ok {
				m.kswapd = true
				m.fillAcc = 0
				break
			}
			m.fillAcc--
			m.cache = append(m.cache, pfn)
		}
	}
	// The page cache only takes pages above the low watermark: it never
	// leaves a zone below it, so kswapd needs no waking here.
}

func (m *Memory) belowLow() bool {
	for i := range m.A.Zones {
		if z := &m.A.Zones[i]; z.FreePages < z.Low {
			return true
		}
	}
	return false
}

func (m *Memory) balanced() bool {
	for i := range m.A.Zones {
		if z := &m.A.Zones[i]; z.FreePages < z.High {
			return false
		}
	}
	return true
}

// reclaimOne frees the oldest page-cache page; it returns its zone.
func (m *Memory) reclaimOne() *Zone {
	pfn := m.cache[m.head]
	m.head++
	if m.head > 4096 && m.head*2 > len(m.cache) {
		n := copy(m.cache, m.cache[m.head:])
		m.cache = m.cache[:n]
		m.head = 0
	}
	m.A.Free(pfn, 0)
	m.Reclaimed++
	return &m.A.Zones[m.A.ZoneOf(pfn)]
}

// Alloc takes an order-o block from zones (preferred first) for a caller
// with gfp. A caller that may sleep and finds even the min watermark
// broken reclaims page cache in batches, stalling for each, while there is
// any; an atomic caller never reclaims.
func (m *Memory) Alloc(zones []int, o int, gfp dma.GFP) (int32, Result, error) {
	m.Advance(m.meter.Now)
	pfn, res, err := m.A.AllocZones(zones, o, gfp)
	for err != nil && gfp.CanSleep() && m.CachePages() > 0 {
		m.Stalls++
		m.meter.Charge(dma.Time(m.cfg.StallUS) * dma.Microsecond)
		for k := 0; k < m.cfg.Batch && m.CachePages() > 0; k++ {
			m.reclaimOne()
		}
		pfn, res, err = m.A.AllocZones(zones, o, gfp)
	}
	if err == nil {
		if res.Dipped {
			m.meter.AtomicDips++
		}
		m.MinHeadroom = min(m.MinHeadroom, m.A.Headroom())
		// Only the zone just taken from can have fallen below low.
		if z := &m.A.Zones[res.Zone]; z.FreePages < z.Low {
			m.kswapd = true
		}
	} else {
		if gfp.Atomic() {
			m.meter.AtomicFailures++
		}
		if m.belowLow() {
			m.kswapd = true
		}
	}
	return pfn, res, err
}

// Free returns an order-o block.
func (m *Memory) Free(pfn int32, o int) { m.A.Free(pfn, o) }

// Frag returns the kernel's fragmentation indices over all zones.
func (m *Memory) Frag() dma.Frag {
	var f dma.Frag
	for o := 0; o <= dma.MaxOrder; o++ {
		ci := m.A.Contig(o, nil)
		f.Unusable[o] = ci.Unusable(o)
		f.Index[o] = ci.FragIndex(o)
	}
	return f
}
