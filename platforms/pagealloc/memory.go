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
	// GFPSemantics is what a sleeping request of order <= 3
	// (PAGE_ALLOC_COSTLY_ORDER) does when reclaim finds nothing: "2002"
	// (2.4/2.5's __alloc_pages: it loops, and a __GFP_FS caller's failed
	// reclaim calls an OOM killer that kills only after 10 failures over
	// at least a second, and at most once in 5 s) or "modern" (since
	// 4.7's should_reclaim_retry: a lowmem (ZONE_DMA, DMA32) request
	// fails, a __GFP_FS one has the OOM killer kill at once, one without
	// __GFP_FS loops). Costly orders, __GFP_NORETRY and atomic requests
	// fail in both.
	GFPSemantics string `mapstructure:"gfp_semantics" json:"gfp_semantics"`
	// RetryMS is the sleep of a looping request before it tries again
	// (2.6 to 4.x: congestion_wait(HZ/50); estimate for the others).
	RetryMS int64 `mapstructure:"retry_ms" json:"retry_ms"`
	// AnonMiB is memory user tasks hold (no swap: only the OOM killer
	// frees it), taken when the workloads start.
	AnonMiB int64 `mapstructure:"anon_mib" json:"anon_mib"`
	// OOMVictimMiB is what one killed task gives back; OOMStallMS the
	// killer's modeled time (choosing, killing, the victim exiting).
	OOMVictimMiB int64 `mapstructure:"oom_victim_mib" json:"oom_victim_mib"`
	OOMStallMS   int64 `mapstructure:"oom_stall_ms" json:"oom_stall_ms"`
}

// DefaultPressure returns no background pressure, with the kernel's
// reclaim batch and a 1 ms stall per batch.
func DefaultPressure() Pressure {
	return Pressure{FillMiBPerS: 0, ReclaimMiBPerS: 200, StallUS: 1000, Batch: 32, StartFull: true,
		GFPSemantics: "modern", RetryMS: 20, AnonMiB: 0, OOMVictimMiB: 8, OOMStallMS: 10}
}

// Validate checks the knobs.
func (p Pressure) Validate() error {
	if p.FillMiBPerS < 0 || p.FillMiBPerS > 1e6 || p.ReclaimMiBPerS < 0 || p.ReclaimMiBPerS > 1e6 {
		return fmt.Errorf("pressure: fill_mib_per_s and reclaim_mib_per_s must be in 0..1e6")
	}
	if p.StallUS < 0 || p.Batch < 1 || p.Batch > 1<<20 {
		return fmt.Errorf("pressure: reclaim_stall_us must be >= 0 and reclaim_batch in 1..1048576")
	}
	if p.GFPSemantics != "modern" && p.GFPSemantics != "2002" {
		return fmt.Errorf("pressure.gfp_semantics %q: valid are modern, 2002", p.GFPSemantics)
	}
	if p.RetryMS < 1 || p.RetryMS > 60_000 || p.OOMStallMS < 0 || p.OOMStallMS > 60_000 {
		return fmt.Errorf("pressure: retry_ms must be in 1..60000 and oom_stall_ms in 0..60000")
	}
	if p.AnonMiB < 0 || p.AnonMiB > 1<<30 || p.OOMVictimMiB < 1 || p.OOMVictimMiB > 1<<30 {
		return fmt.Errorf("pressure: anon_mib must be >= 0 and oom_victim_mib >= 1")
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

	// anon holds user tasks' pages (AnonMiB), oldest first from anonHead:
	// what the OOM killer frees.
	anon     []int32
	anonHead int
	// oom is the 2.5 OOM killer's memory of recent failures.
	oom oom2002

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
		for range m.cfg.AnonMiB * int64(pagesPerMiB) {
			pfn, _, err := m.A.AllocZones(m.all, 0, dma.GFPKernel)
			if err != nil {
				break
			}
			m.anon = append(m.anon, pfn)
		}
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
// any; an atomic caller never reclaims. When reclaim finds nothing, a
// sleeping caller fails, is given pages the OOM killer freed, or must
// sleep and try again: ErrWouldBlock, with the wait in the meter's Sleep.
func (m *Memory) Alloc(zones []int, o int, gfp dma.GFP) (int32, Result, error) {
	m.Advance(m.meter.Now)
	pfn, res, err := m.A.AllocZones(zones, o, gfp)
	for err != nil && gfp.CanSleep() {
		if m.CachePages() > 0 {
			m.Stalls++
			m.meter.Charge(dma.Time(m.cfg.StallUS) * dma.Microsecond)
			for k := 0; k < m.cfg.Batch && m.CachePages() > 0; k++ {
				m.reclaimOne()
			}
		} else if act := m.exhausted(zones, o, gfp); act == oomKilled {
			m.meter.Charge(dma.Time(m.cfg.OOMStallMS) * dma.Millisecond)
		} else {
			if act == loop {
				m.meter.Sleep = dma.Wait{Kind: dma.WaitReclaim, Timeout: dma.Time(m.cfg.RetryMS) * dma.Millisecond, On: dma.NoPool}
				err = dma.ErrWouldBlock
			}
			break
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

// What a sleeping caller does when reclaim found nothing.
type outcome uint8

const (
	fail      outcome = iota // the allocation fails
	loop                     // the caller sleeps and tries again
	oomKilled                // a task was killed: try again now
)

// exhausted applies the page allocator's rules of the configured era to
// a sleeping order-o request that reclaim could not help.
func (m *Memory) exhausted(zones []int, o int, gfp dma.GFP) outcome {
	if o > dma.CostlyOrder || gfp&dma.GFPNoRetry != 0 {
		return fail
	}
	if m.cfg.GFPSemantics == "2002" {
		// __alloc_pages loops (yield, rebalance); try_to_free_pages
		// calls out_of_memory for a __GFP_FS caller.
		if gfp&dma.GFPFS != 0 && m.oom.due(m.meter.Now) {
			return m.kill()
		}
		return loop
	}
	// __alloc_pages_may_oom: the OOM killer does not kill for lowmem;
	// out_of_memory does not compensate for IO-less reclaim but reports
	// progress, so the caller loops.
	if gfp&dma.GFPDMA != 0 || m.lowmem(zones) {
		return fail
	}
	if gfp&dma.GFPFS == 0 {
		return loop
	}
	return m.kill()
}

// lowmem reports whether the request's highest zone is below
// ZONE_NORMAL.
func (m *Memory) lowmem(zones []int) bool {
	n := m.A.Zones[zones[0]].Name
	return n == "DMA" || n == "DMA32"
}

// kill is oom_kill: the oldest task's memory (OOMVictimMiB) goes back to
// the free lists; with no task left to kill the kernel panics.
func (m *Memory) kill() outcome {
	if m.anonHead == len(m.anon) {
		m.meter.Panicked = true
		return fail
	}
	m.meter.OOMKills++
	n := min(len(m.anon)-m.anonHead, int(m.cfg.OOMVictimMiB*int64(pagesPerMiB)))
	for _, pfn := range m.anon[m.anonHead : m.anonHead+n] {
		m.A.Free(pfn, 0)
	}
	m.anonHead += n
	return oomKilled
}

// oom2002 is 2.5's out_of_memory: failures are not an OOM until ten of
// them have come over at least a second with no gap over 5 s, and a kill
// comes at most every 5 s.
type oom2002 struct {
	first, last, lastKill dma.Time
	count                 int
	seen, killed          bool
}

func (k *oom2002) due(now dma.Time) bool {
	since := now - k.last
	k.last = now
	switch {
	case !k.seen || since > 5*dma.Second:
		k.seen = true
	case now-k.first < dma.Second:
		return false
	case k.count+1 < 10:
		k.count++
		return false
	case k.killed && now-k.lastKill < 5*dma.Second:
		k.count++
		return false
	default:
		k.lastKill, k.killed = now, true
		k.first, k.count = now, 0
		return true
	}
	k.first, k.count = now, 0
	return false
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
