// Package sizing answers "how big must swiotlb be for this workload?":
// it replays a workload or a trace on a platform with swiotlb (cvm or
// swiotlb) at the kernel's size, then finds the smallest pool, in whole
// segments as the kernel rounds it, with which no mapping fails over
// every seed, and says what dynamic swiotlb would add and which mappings
// can never fit.
package sizing

import (
	"fmt"
	"slices"
	"strings"

	"github.com/dmabench/dmabench/matrix"
	"github.com/dmabench/dmabench/platforms/swiotlb"
	"github.com/dmabench/dmabench/registry"
)

// Options say what to size.
type Options struct {
	Scenario, Platform, Allocator string
	Seeds                         []uint64
	Events                        int64
	// Areas, when not 0, sets swiotlb=,N.
	Areas int
}

// Run is what the replays at one size saw, over the seeds.
type Run struct {
	Slots    int64
	Peak     int64 // highest high-water mark over the seeds
	Failed   int64 // failed mappings that a larger pool would have served
	Oversize int64 // mappings larger than one segment
	// OversizeBytes is the largest of those.
	OversizeBytes int64
	Transient     int64 // dynamic: transient pools made
	Added         int64 // dynamic: pools the worker added
}

// Result is the answer.
type Result struct {
	Options
	Default, Found, Dynamic Run
	// Fits: a size without failures was found (up to MaxSlots).
	Fits     bool
	MaxSlots int64
	Areas    int
}

// section is the config section of a platform with swiotlb.
func section(platform string) (string, error) {
	switch platform {
	case "cvm", "swiotlb":
		return "platform." + platform, nil
	}
	return "", registry.Usagef("size swiotlb: -p %s: the platforms with swiotlb are cvm and swiotlb", platform)
}

// Swiotlb sizes swiotlb for o on cfg.
func Swiotlb(cfg *registry.Config, o Options) (*Result, error) {
	sec, err := section(o.Platform)
	if err != nil {
		return nil, err
	}
	var base [][2]string
	if o.Areas > 0 {
		base = append(base, [2]string{sec + ".areas", fmt.Sprint(o.Areas)})
	}
	// config is cfg with knobs kv over base, and the trace's knobs where
	// the workload is a trace.
	config := func(kv ...[2]string) (*registry.Config, error) {
		c, err := cfg.With(slices.Concat(base, kv)...)
		if err != nil {
			return nil, err
		}
		c.Workloads = []string{o.Scenario}
		_, err = c.ApplyTraceKnobs()
		return c, err
	}
	// run replays at slots (0: the kernel's size).
	run := func(slots int64, dynamic bool) (Run, error) {
		c, err := config([2]string{sec + ".slots", fmt.Sprint(slots)}, [2]string{sec + ".dynamic", fmt.Sprint(dynamic)})
		if err != nil {
			return Run{}, err
		}
		r := Run{}
		for _, seed := range o.Seeds {
			res := matrix.RunCell(matrix.Cell{Scenario: o.Scenario, Allocator: o.Allocator, Platform: o.Platform, Seed: seed}, registry.NewBuilder(c), o.Events)
			if res.Err != nil {
				return Run{}, res.Err
			}
			m := res.Metrics
			r.Slots = int64(m["swiotlb_slots"])
			r.Peak = max(r.Peak, int64(m["swiotlb_used_peak"]))
			r.Failed += int64(m["swiotlb_full"] - m["swiotlb_oversize"])
			r.Oversize += int64(m["swiotlb_oversize"])
			r.OversizeBytes = max(r.OversizeBytes, int64(m["swiotlb_oversize_max_bytes"]))
			r.Transient += int64(m["swiotlb_transient_pools"])
			r.Added += int64(m["swiotlb_pools_added"])
		}
		return r, nil
	}
	c, err := config()
	if err != nil {
		return nil, err
	}
	pc := c.ForScenario(o.Scenario).Platform.CVM
	if o.Platform == "swiotlb" {
		pc = c.ForScenario(o.Scenario).Platform.Swiotlb
	}
	res := &Result{Options: o}
	res.MaxSlots = swiotlb.SlotsFor(pc.RAMMiB << 20 / 4)
	res.Areas = swiotlb.Areas(pc.PoolSlots(), pc.CPUs, o.Areas)
	if res.Default, err = run(0, false); err != nil {
		return nil, err
	}
	if res.Dynamic, err = run(0, true); err != nil {
		return nil, err
	}
	// The smallest number of segments with no failure, by bisection,
	// taking failures to fall as the pool grows (areas resize with it, so
	// this is the search's assumption, not a law).
	lo, hi := int64(1), res.MaxSlots/swiotlb.SegSize
	top, err := run(hi*swiotlb.SegSize, false)
	if err != nil {
		return nil, err
	}
	if top.Failed > 0 {
		res.Found = top
		return res, nil
	}
	res.Fits, res.Found = true, top
	for lo < hi {
		mid := (lo + hi) / 2
		r, err := run(mid*swiotlb.SegSize, false)
		if err != nil {
			return nil, err
		}
		if r.Failed == 0 {
			hi, res.Found = mid, r
		} else {
			lo = mid + 1
		}
	}
	return res, nil
}

func mib(slots int64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", float64(slots<<swiotlb.SlotShift)/(1<<20)), "0"), ".") + " MiB"
}

// Write prints the result for a person.
func (r *Result) Write(w interface{ Write([]byte) (int, error) }) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("swiotlb for %s on %s (allocator %s), %d seed(s), %d events each; Linux 6.6's swiotlb, %d area(s)",
		r.Scenario, r.Platform, r.Allocator, len(r.Seeds), r.Events, r.Areas)
	p("  the kernel's size for this platform: %d slots (%s): high-water %d slots (%s), %d failed mappings",
		r.Default.Slots, mib(r.Default.Slots), r.Default.Peak, mib(r.Default.Peak), r.Default.Failed)
	if r.Fits {
		p("  smallest size with no failed mapping: %d slots (%s), swiotlb=%d: high-water %d slots (%s)",
			r.Found.Slots, mib(r.Found.Slots), r.Found.Slots, r.Found.Peak, mib(r.Found.Peak))
	} else {
		p("  no size up to %d slots (%s, a quarter of memory) avoids failed mappings: %d still fail", r.MaxSlots, mib(r.MaxSlots), r.Found.Failed)
	}
	p("  dynamic swiotlb (CONFIG_SWIOTLB_DYNAMIC) at the kernel's size: %d transient pools, %d pools added, %d failed mappings",
		r.Dynamic.Transient, r.Dynamic.Added, r.Dynamic.Failed)
	if r.Default.Oversize > 0 {
		p("  never fit: %d mappings larger than one segment (256 KiB less the device's alignment), up to %d bytes: no pool size serves them",
			r.Default.Oversize, r.Default.OversizeBytes)
	} else {
		p("  never fit: none (no mapping larger than one segment)")
	}
}
