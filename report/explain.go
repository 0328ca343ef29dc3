package report

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/dmabench/dmabench/cells"
	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/metrics"
)

// explainMetrics are the cell metrics Explain sets side by side.
var explainMetrics = []string{"peak_reserved_bytes", "pages_held_idle", "failure_rate", "alloc_failures", "atomic_reserve_dips",
	"mempool_waits", "pool_retry_sleeps", "modeled_ops_per_sec", "latency_p99_ns"}

// Explain sets two allocators' results for one scenario and platform side
// by side, pool by pool, from the cells of seed seed (0: the lowest seed
// both have): what each held for each pool (pages at peak and at the end,
// idle pages, blocks per page), what its callers got (allocations,
// failures, sleeps) and the page allocations that dipped into the
// reserves, then the cell metrics; and it says, for every pool, whether
// the two differ and where, so that "no difference" comes with its reason.
func Explain(w io.Writer, doc *cells.Document, scenario, platform, a, b string, seed uint64) error {
	find := func(alloc string) map[uint64]*cells.Result {
		out := map[uint64]*cells.Result{}
		for i := range doc.Cells {
			c := &doc.Cells[i]
			if c.Scenario == scenario && c.Platform == platform && c.Allocator == alloc {
				out[c.Seed] = c
			}
		}
		return out
	}
	ra, rb := find(a), find(b)
	if seed == 0 {
		for s := range ra {
			if rb[s] != nil && (seed == 0 || s < seed) {
				seed = s
			}
		}
	}
	ca, cb := ra[seed], rb[seed]
	switch {
	case ca == nil || cb == nil:
		return fmt.Errorf("explain: no cell %s/%s/%s and %s/%s/%s of one seed in the results", scenario, a, platform, scenario, b, platform)
	case ca.Refused != "":
		return fmt.Errorf("explain: %s refused %s: %s", a, platform, ca.Refused)
	case cb.Refused != "":
		return fmt.Errorf("explain: %s refused %s: %s", b, platform, cb.Refused)
	}
	fmt.Fprintf(w, "%s on %s, seed %d: %s against %s, pool by pool\n\n", scenario, platform, seed, a, b)
	t := tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off), tablewriter.WithRowAlignment(tw.AlignRight))
	t.Header("workload", "pool", "block", "page", "per page", "pages peak", "pages end", "idle", "held peak", "allocs", "failures (atomic)", "dips", "waits", "design")
	var verdicts []string
	for _, pa := range ca.Pools {
		i := slices.IndexFunc(cb.Pools, func(p cells.PoolResult) bool { return p.Workload == pa.Workload && p.Name == pa.Name })
		if i < 0 {
			continue
		}
		pb := cb.Pools[i]
		for _, r := range []struct {
			name string
			p    cells.PoolResult
		}{{a, pa}, {b, pb}} {
			m := r.p.Model
			if m == nil {
				m = &dmaPoolNone
			}
			t.Append(r.p.Workload, r.p.Name, fmt.Sprint(m.BlockSize), bytesHuman(m.PageBytes), fmt.Sprint(m.PerPage), fmt.Sprint(m.PeakPages), fmt.Sprint(m.Pages),
				fmt.Sprint(m.IdlePages), bytesHuman(m.PeakPages*m.PageBytes), fmt.Sprint(r.p.Allocs), fmt.Sprintf("%d (%d)", r.p.Failures, r.p.AtomicFailures), fmt.Sprint(m.Dips), fmt.Sprint(r.p.Waits), r.name)
		}
		verdicts = append(verdicts, poolVerdict(a, b, pa, pb))
	}
	if err := t.Render(); err != nil {
		return err
	}
	for _, v := range verdicts {
		fmt.Fprintln(w, v)
	}
	fmt.Fprintf(w, "\n%-24s %18s %18s\n", "metric", a, b)
	for _, k := range explainMetrics {
		d := metrics.MustLookup(k)
		va, oka := ca.Metrics[k]
		vb, okb := cb.Metrics[k]
		if !oka && !okb {
			continue
		}
		mark := ""
		if va != vb {
			mark = "  differs"
		}
		fmt.Fprintf(w, "%-24s %18s %18s%s\n", k, d.Human(va), d.Human(vb), mark)
	}
	return nil
}

// bytesHuman prints n bytes as the results' byte metrics are printed.
func bytesHuman(n int64) string { return metrics.MustLookup("peak_reserved_bytes").Human(float64(n)) }

// dmaPoolNone stands for a pool the model keeps no stats of (a
// size-based model).
var dmaPoolNone = dma.PoolStats{ReserveMin: -1}

// poolVerdict says whether two allocators' results for one pool differ,
// and where.
func poolVerdict(a, b string, pa, pb cells.PoolResult) string {
	ma, mb := pa.Model, pb.Model
	if ma == nil {
		ma = &dmaPoolNone
	}
	if mb == nil {
		mb = &dmaPoolNone
	}
	var diffs []string
	add := func(what string, x, y int64) {
		if x != y {
			diffs = append(diffs, fmt.Sprintf("%s %d against %d", what, x, y))
		}
	}
	// Memory is compared in bytes: a slab's page allocation may be of a
	// higher order than a pool's page (128 slabs of 32 KiB hold what
	// 1024 pages of 4 KiB do).
	addBytes := func(what string, x, y int64) {
		if x != y {
			diffs = append(diffs, fmt.Sprintf("%s %s against %s", what, bytesHuman(x), bytesHuman(y)))
		}
	}
	if ma.PageBytes != mb.PageBytes {
		diffs = append(diffs, fmt.Sprintf("%d blocks per %s page allocation against %d per %s", ma.PerPage, bytesHuman(ma.PageBytes), mb.PerPage, bytesHuman(mb.PageBytes)))
	} else {
		add("blocks per page", ma.PerPage, mb.PerPage)
	}
	addBytes("held at peak", ma.PeakPages*ma.PageBytes, mb.PeakPages*mb.PageBytes)
	addBytes("held at the end", ma.Pages*ma.PageBytes, mb.Pages*mb.PageBytes)
	addBytes("idle", ma.IdlePages*ma.PageBytes, mb.IdlePages*mb.PageBytes)
	add("failures", pa.Failures, pb.Failures)
	add("reserve dips", ma.Dips, mb.Dips)
	add("sleeps", pa.Waits, pb.Waits)
	name := pa.Workload + "/" + pa.Name
	if len(diffs) == 0 {
		return fmt.Sprintf("%s: no difference: both lay out %s of %d B per %d-byte page, held %s at peak and %d at the end, and served %s with %s",
			name, plural(int(ma.PerPage), "block"), ma.BlockSize, ma.PageBytes, plural(int(ma.PeakPages), "page"), ma.Pages,
			plural(int(pa.Allocs), "allocation"), plural(int(pa.Failures), "failure"))
	}
	return fmt.Sprintf("%s: %s against %s: %s", name, a, b, strings.Join(diffs, ", "))
}
