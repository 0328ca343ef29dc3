package report

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/dmabench/dmabench"
	"github.com/dmabench/dmabench/cells"
	"github.com/dmabench/dmabench/metrics"
)

// knobMetrics are what a knob A/B line reports, in this order: those whose
// totals differ, the first three of them.
var knobMetrics = []string{
	"crashed", "alloc_failures", "urb_submit_failures", "map_failures", "rx_drops", "scsi_requeues",
	"oom_kills", "reclaim_retry_sleeps", "pool_retry_sleeps", "mempool_waits",
	"atomic_reserve_dips", "peak_reserved_bytes", "modeled_cpu_ns",
}

// scenarioDef is a scenario as the results' config records it.
type scenarioDef struct {
	Workloads []string         `json:"workloads"`
	StartMS   map[string]int64 `json:"start_ms"`
	Platform  map[string]any   `json:"platform"`
	Allocator map[string]any   `json:"allocator"`
	Workload  map[string]any   `json:"workload"`
}

// settings flattens the knobs a scenario sets to key -> value.
func (s scenarioDef) settings() map[string]string {
	out := map[string]string{}
	for k, m := range map[string]map[string]any{"platform": s.Platform, "allocator": s.Allocator, "workload": s.Workload} {
		dmabench.Knobs(k, m, func(key string, v any) { out[key] = fmt.Sprint(v) })
	}
	for w, ms := range s.StartMS {
		out["start_ms."+w] = fmt.Sprint(ms)
	}
	return out
}

// knobPair is two scenarios of a run that differ only in a knob or two:
// an A/B of that knob, whichever knob a user varied.
type knobPair struct {
	base, twin string
	knobs      string // what the twin sets, as key=value, keys that differ only in their middle folded with *
}

// knobPairs finds the scenarios of doc that run the same workloads and
// differ in the values of at most two knob names (a knob set for several
// allocators counts once), one of them setting every knob the other sets:
// the twin is the one that sets more, or, setting the same knobs, the one
// with the longer name.
func knobPairs(doc *cells.Document, scenarios []string) []knobPair {
	raw, err := json.Marshal(doc.Config)
	if err != nil {
		return nil
	}
	var cfg struct {
		Scenario map[string]scenarioDef `json:"scenario"`
	}
	if json.Unmarshal(raw, &cfg) != nil {
		return nil
	}
	var out []knobPair
	for i, a := range scenarios {
		for _, b := range scenarios[i+1:] {
			da, oka := cfg.Scenario[a]
			db, okb := cfg.Scenario[b]
			if !oka || !okb || !slices.Equal(da.Workloads, db.Workloads) {
				continue
			}
			sa, sb := da.settings(), db.settings()
			onlyA, onlyB := missing(sb, sa), missing(sa, sb)
			if onlyA && onlyB {
				continue // each sets a knob the other does not: two twins of a third
			}
			base, twin, sbase, stwin := a, b, sa, sb
			if onlyA || !onlyB && len(a) > len(b) {
				base, twin, sbase, stwin = b, a, sb, sa
			}
			if k := foldedDiff(sbase, stwin); k != "" {
				out = append(out, knobPair{base: base, twin: twin, knobs: k})
			}
		}
	}
	return out
}

// foldedDiff describes what twin sets differently from base, or "" when
// they are the same or differ in more than two knob names.
func foldedDiff(base, twin map[string]string) string {
	byLeaf := map[string]map[string]bool{} // leaf -> folded key=value
	both := maps.Clone(base)
	maps.Copy(both, twin)
	keys := slices.Sorted(maps.Keys(both))
	// A knob set for several allocators is one knob.
	allocs := map[string]int{}
	for _, k := range keys {
		if parts := strings.Split(k, "."); len(parts) == 3 && parts[0] == "allocator" && (base[k] != twin[k]) {
			allocs[parts[2]]++
		}
	}
	for _, k := range keys {
		vb, inb := base[k]
		vt, intw := twin[k]
		if inb == intw && vb == vt {
			continue
		}
		if !intw {
			vt = "(default)"
		}
		parts := strings.Split(k, ".")
		leaf := parts[len(parts)-1]
		folded := k
		if len(parts) == 3 && parts[0] == "allocator" && allocs[leaf] > 1 {
			folded = "allocator.*." + leaf
		}
		if byLeaf[leaf] == nil {
			byLeaf[leaf] = map[string]bool{}
		}
		byLeaf[leaf][folded+"="+vt] = true
	}
	if len(byLeaf) == 0 || len(byLeaf) > 2 {
		return ""
	}
	var all []string
	for _, leaf := range slices.Sorted(maps.Keys(byLeaf)) {
		all = append(all, slices.Sorted(maps.Keys(byLeaf[leaf]))...)
	}
	return strings.Join(all, ", ")
}

// missing reports whether from sets a knob in sets does not.
func missing(in, from map[string]string) bool {
	for k := range from {
		if _, ok := in[k]; !ok {
			return true
		}
	}
	return false
}

// knobLines sums up each knob pair of a run: the knobs, then per platform
// where any cell differs, the totals over allocators (means over seeds)
// of the metrics that moved, base → twin.
func knobLines(doc *cells.Document, v *view) []string {
	var out []string
	for _, kp := range knobPairs(doc, v.scenarios) {
		var per []string
		for _, p := range v.platforms {
			var moved []string
			for _, m := range knobMetrics {
				var x, y float64
				n := 0
				for _, a := range v.allocators {
					gb, gt := v.groups[key{kp.base, a, p}], v.groups[key{kp.twin, a, p}]
					if len(gb) == 0 || len(gt) == 0 {
						continue
					}
					x += meanOf(gb, m)
					y += meanOf(gt, m)
					n++
				}
				if n == 0 || x == y || math.IsNaN(x) || math.IsNaN(y) {
					continue
				}
				d, _ := metrics.Lookup(m)
				moved = append(moved, fmt.Sprintf("%s %s → %s", m, d.Human(x), d.Human(y)))
			}
			if len(moved) > 0 {
				per = append(per, fmt.Sprintf("  %s: %s", p, strings.Join(moved[:min(len(moved), 3)], ", ")))
			}
		}
		head := fmt.Sprintf("%s against %s (%s):", kp.twin, kp.base, kp.knobs)
		if len(per) == 0 {
			head += " no cell differs"
		}
		out = append(out, head)
		out = append(out, per...)
	}
	return out
}
