package metrics

import (
	"fmt"
	"strings"
)

// Better says which way a metric improves.
type Better uint8

// Directions.
const (
	// Neither: a count that describes the run (events served, packets
	// received) rather than a quality of the design.
	Neither Better = iota
	// Higher is better (throughput).
	Higher
	// Lower is better (failures, memory, latency).
	Lower
)

func (b Better) String() string {
	return [...]string{"neither", "higher", "lower"}[b]
}

// Unit is what a metric's value counts, for people (tables, reports) and
// for the Go benchmark format.
type Unit string

// Units.
const (
	Count    Unit = "count"
	Bytes    Unit = "B"
	Pages    Unit = "pages"
	Nanos    Unit = "ns"
	Millis   Unit = "ms"
	OpsPerS  Unit = "ops/s"
	Fraction Unit = "fraction" // 0..1, shown as a percentage
	Ratio    Unit = "x"        // a multiple
	Index    Unit = "index"    // the kernel's fragmentation indices, 0..1
	Flag     Unit = "0/1"
)

// Def declares one metric: every key a cell's metrics hold is declared
// once here, and tables, the Go benchmark files, report charts,
// `dmabench list metrics` and docs/metrics.md are generated from it.
type Def struct {
	Key    string
	Unit   Unit
	Better Better
	// Exact: modeled, so the same for a config and seed on any machine;
	// otherwise a host measurement, which is noisy.
	Exact bool
	// Meaning is one line on what the value is.
	Meaning string
	// Producer names who produces it: the recorder (package metrics),
	// the matrix (package matrix, from the platform and engine at the end
	// of a cell), or the model or workload package that reports it.
	Producer string
	// When, if set, says in which cells alone it appears.
	When string
	// Bench is its unit in the Go benchmark files; "" keeps it out of
	// them.
	Bench string
}

// Catalog declares every metric, in the order tables and docs show them.
var Catalog = []Def{
	{"events", Count, Neither, true, "events served", "recorder", "", ""},
	{"allocs", Count, Neither, true, "allocations that succeeded", "recorder", "", ""},
	{"frees", Count, Neither, true, "frees served", "recorder", "", ""},
	{"alloc_failures", Count, Lower, true, "allocations that failed", "recorder", "", ""},
	{"failure_rate", Fraction, Lower, true, "failed allocations over all allocation attempts", "recorder", "", "failure-rate"},
	{"first_alloc_failure_ms", Millis, Neither, true, "modeled time of the first failed allocation", "recorder", "cells with a failed allocation", ""},
	{"last_alloc_failure_ms", Millis, Neither, true, "modeled time of the last failed allocation: a model that keeps its pages fails only while its pools grow", "recorder", "cells with a failed allocation", ""},
	{"atomic_share", Fraction, Neither, true, "allocation attempts made with a non-sleeping gfp mask (GFP_ATOMIC)", "recorder", "", "atomic-share"},
	{"atomic_alloc_failures", Count, Lower, true, "non-sleeping allocations (and map buffers) that failed", "recorder", "", ""},
	{"maps", Count, Neither, true, "streaming mappings made", "recorder", "", ""},
	{"unmaps", Count, Neither, true, "streaming mappings released", "recorder", "", ""},
	{"map_failures", Count, Lower, true, "maps that failed as maps (aperture or bounce memory exhausted)", "recorder", "", "map-failures"},
	{"buffer_failures", Count, Lower, true, "maps whose data buffer could not be allocated", "recorder", "", ""},
	{"peak_live_bytes", Bytes, Lower, true, "highest sum of bytes requested from the allocator and not yet freed", "recorder", "", "peak-live-B"},
	{"peak_reserved_bytes", Bytes, Lower, true, "highest number of bytes the allocator held from the page allocator", "recorder", "", "peak-reserved-B"},
	{"peak_mapped_bytes", Bytes, Neither, true, "highest sum of bytes in live streaming mappings", "recorder", "", ""},
	{"frag_internal", Fraction, Lower, true, "1 - live/reserved when reserved peaked: the allocator's memory serving no request then", "recorder", "", "frag-internal"},
	{"frag_peak_ratio", Ratio, Lower, true, "peak_reserved_bytes / peak_live_bytes", "recorder", "", ""},
	{"atomic_reserve_dips", Count, Lower, true, "page allocations that succeeded only by going below the min watermark", "recorder", "", "atomic-dips"},
	{"modeled_cpu_ns", Nanos, Lower, true, "modeled CPU time over alloc, free, map and unmap events", "recorder", "", ""},
	{"modeled_ops_per_sec", OpsPerS, Higher, true, "alloc, free, map and unmap events per second of modeled CPU time", "recorder", "", "modeled-ops/s"},
	{"modeled_ms", Millis, Neither, true, "modeled time the cell covered, up to its last event", "recorder", "", ""},
	{"latency_p50_ns", Nanos, Lower, true, "median modeled latency of an allocation attempt: CPU cost plus any sleep", "recorder", "", ""},
	{"latency_p99_ns", Nanos, Lower, true, "99th percentile of the modeled allocation latency", "recorder", "", "latency-p99-ns"},
	{"latency_max_ns", Nanos, Lower, true, "longest modeled allocation latency", "recorder", "", ""},
	{"mempool_waits", Count, Lower, true, "requests that slept in a mempool with its reserve empty", "recorder", "", ""},
	{"mempool_wait_p99_ns", Nanos, Lower, true, "99th percentile of those sleeps", "recorder", "", ""},
	{"pool_retry_sleeps", Count, Lower, true, "pci_pool SLAB_KERNEL callers that slept and retried", "recorder", "", ""},
	{"reclaim_retry_sleeps", Count, Lower, true, "sleeping requests of order <= 3 that found nothing to reclaim and looped in the page allocator until memory came back (pressure.gfp_semantics)", "recorder", "", ""},
	{"wait_max_ns", Nanos, Lower, true, "longest sleep of any kind", "recorder", "", ""},
	{"stalls", Count, Lower, true, "requests parked past 60 s of modeled time: callers that would sleep forever", "recorder", "", ""},
	{"pool_errors", Count, Lower, true, "pool creates or destroys the allocator refused", "recorder", "", ""},
	{"misuse_unknown_free", Count, Lower, true, "frees or unmaps of an id never live", "recorder", "", ""},
	{"misuse_double_free", Count, Lower, true, "frees or unmaps of an id already freed", "recorder", "", ""},
	{"misuse_mismatch", Count, Lower, true, "unmaps of another size or direction, a free of a mapping, an alloc larger than its pool's blocks", "recorder", "", ""},
	{"misuse_id_reused", Count, Lower, true, "allocs or maps of an id still live", "recorder", "", ""},
	{"misuse_unknown_pool", Count, Lower, true, "allocs from, or destroys of, a pool never created", "recorder", "", ""},
	{"misuse_destroy_with_live", Count, Lower, true, "destroys of a pool with blocks still allocated (served: the model leaks what the kernel leaks)", "recorder", "", ""},
	{"misuse_free_after_destroy", Count, Lower, true, "frees of a block whose pool was destroyed (not passed to the model)", "recorder", "", ""},
	{"misuse_alloc_after_destroy", Count, Lower, true, "allocs from a pool already destroyed (not passed to the model)", "recorder", "", ""},
	{"kernel_compared", Count, Neither, true, "allocations whose trace records what the kernel allocated", "recorder", "replays of traces with kernel sizes", ""},
	{"kernel_size_differences", Count, Lower, true, "of those, allocations whose size differs from the kernel's: the size class dma_alloc chose (its block may be larger: frag_internal), or the block other models gave", "recorder", "replays of traces with kernel sizes", ""},
	{"kernel_failures", Count, Neither, true, "allocations the traced kernel failed (kernel=failed): asked of the model too, and given back at once when it serves them", "recorder", "replays of traces with kernel sizes", ""},
	{"kernel_failures_served", Count, Neither, true, "of those, the ones the model served: where it would have avoided the kernel's failure", "recorder", "replays of traces with kernel sizes", ""},
	{"atomic_failures", Count, Lower, true, "page allocations by callers that may not sleep that failed", "recorder", "", "atomic-failures"},
	{"oom_kills", Count, Lower, true, "tasks the modeled OOM killer killed to free memory for a sleeping request (pressure.gfp_semantics, anon_mib)", "recorder", "", ""},
	{"bounce_maps", Count, Lower, true, "streaming maps that bounced", "recorder", "", ""},
	{"bounce_bytes", Bytes, Lower, true, "bytes copied through bounce buffers", "recorder", "", ""},
	{"iotlb_flushes", Count, Lower, true, "IOTLB invalidations (per unmap when strict, per flush when lazy)", "recorder", "", ""},
	{"iova_peak_bytes", Bytes, Lower, true, "most IOVA space in use", "recorder", "", ""},
	{"sg_segments", Count, Neither, true, "scatterlist segments mapped", "recorder", "", ""},
	{"sg_entries", Count, Neither, true, "DMA segments they became (fewer when the IOMMU merges)", "recorder", "", ""},
	{"host_ns_per_op", Nanos, Lower, false, "host ns per operation with the harness's own cost subtracted: the 20% trimmed mean over batch pairs of the thread CPU time difference", "recorder", "", "host-ns/op"},
	{"host_ns_per_op_lo", Nanos, Neither, false, "lower end of the 95% confidence interval of host_ns_per_op", "recorder", "", ""},
	{"host_ns_per_op_hi", Nanos, Neither, false, "upper end of the 95% confidence interval of host_ns_per_op", "recorder", "", ""},
	{"host_resolved", Flag, Higher, false, "1 when the interval excludes 0: the model's host cost is told apart from the harness's (tables show <res otherwise)", "recorder", "", ""},
	{"host_harness_ratio", Ratio, Lower, false, "the model's host cost per event as a multiple of the harness's (the engine and metrics over the null allocator; a trace's decoding is left out of both), in the same batch pairs", "recorder", "", "host-vs-harness"},
	{"pages_held_idle", Pages, Lower, true, "pages the allocator holds at the end with no live block in them", "matrix", "", ""},
	{"live_at_end", Count, Neither, true, "objects still live when the cell stopped", "matrix", "", ""},
	{"leaks", Count, Lower, true, "objects a finite workload (a trace) left live at its end", "matrix", "", ""},
	{"crashed", Flag, Lower, true, "1 when the cell stopped as the machine would: a failed map under map_failure: bug, or the OOM killer with no task left to kill (a panic)", "matrix", "", ""},
	{"crash_time_ns", Nanos, Neither, true, "modeled time of that crash", "matrix", "cells that crashed", ""},
	{"unusable_index_max", Index, Lower, true, "highest unusable free space index at order 3, sampled every 16,384 events and at the end", "matrix", "", ""},
	{"min_free_headroom_pages", Pages, Higher, true, "lowest free pages minus the min watermark over all zones; negative when atomic callers dipped below min", "matrix", "", ""},
	{"mempool_reserve_min", Count, Higher, true, "lowest reserve level any pool reached", "allocators/mempool", "", ""},
	{"host_kernel_ns_per_op", Nanos, Lower, false, "host ns per pool operation of the kernel tree's own dma_pool: the cell's pool operations replayed inside the library, no cgo crossing, on huge-page-backed pages; median of 5 replays", "allocators/kernelpool", "kernel-dmapool cells", "kernel-ns/op"},
	{"kernel_errors", Count, Lower, true, "errors the kernel tree's code reported (dev_err, pr_err, WARN_ON): a free it found bad, a busy pool destroyed", "allocators/kernelpool", "kernel allocator cells", ""},
	{"mempool_resize_short", Count, Lower, true, "elements a mempool_resize grow could not allocate (frees refill them later)", "allocators/mempool", "mempool cells with resize_at_ms set", ""},
	{"cache_lines_maintained", Count, Lower, true, "cache lines cleaned or invalidated for DMA: maps, unmaps and syncs, and slab-direct's objects handed over and freed", "platforms/sa1111", "sa1111 platforms", ""},
	{"cacheline_overlaps", Count, Lower, true, "cached DMA buffers that shared a cache line with another live one (dma_cache_alignment below the line), as DMA-API debugging's cacheline tracking reports them", "platforms/sa1111", "sa1111 platforms", ""},
	{"swiotlb_slots", Count, Neither, true, "swiotlb's 2 KiB slots at the end (io_tlb_nslabs; dynamic pools included)", "platforms/x64", "cvm and swiotlb platforms", ""},
	{"swiotlb_used_peak", Count, Lower, true, "the most slots in use at once (io_tlb_used_hiwater)", "platforms/x64", "cvm and swiotlb platforms", ""},
	{"swiotlb_full", Count, Lower, true, "mappings that found no slots: \"swiotlb buffer is full\", oversize ones included", "platforms/x64", "cvm and swiotlb platforms", ""},
	{"swiotlb_oversize", Count, Lower, true, "mappings larger than one segment (256 KiB less the device's minimum alignment): they never fit, whatever the pool's size", "platforms/x64", "cvm and swiotlb platforms", ""},
	{"swiotlb_oversize_max_bytes", Bytes, Neither, true, "the largest of those mappings (0: none)", "platforms/x64", "cvm and swiotlb platforms", ""},
	{"swiotlb_transient_pools", Count, Neither, true, "transient pools dynamic swiotlb made for a mapping that found no slot", "platforms/x64", "cvm and swiotlb platforms", ""},
	{"swiotlb_pools_added", Count, Neither, true, "pools dynamic swiotlb's worker added", "platforms/x64", "cvm and swiotlb platforms", ""},
	{"decrypted_pages", Count, Lower, true, "pages made shared or private again (set_memory_decrypted/encrypted) for coherent memory and dynamic pools", "platforms/x64", "cvm and swiotlb platforms", ""},
	{"urbs_completed", Count, Neither, true, "URBs completed", "workloads/usb", "", ""},
	{"urb_submit_failures", Count, Lower, true, "USB submits unwound for lack of TDs or mapping", "workloads/usb", "", ""},
	{"scsi_commands", Count, Neither, true, "SCSI commands completed", "workloads/scsi", "", ""},
	{"scsi_requeues", Count, Lower, true, "SCSI commands requeued for lack of memory or mapping", "workloads/scsi", "", ""},
	{"rx_packets", Count, Neither, true, "packets received", "workloads/netrx", "", ""},
	{"rx_drops", Count, Lower, true, "packets dropped at an empty ring slot", "workloads/netrx", "", ""},
	{"rx_drop_rate", Fraction, Lower, true, "drops / (packets + drops)", "workloads/netrx", "", ""},
	{"rx_refill_failures", Count, Lower, true, "ring refills whose buffer could not be had", "workloads/netrx", "", ""},
}

// Lookup returns the declaration of key, and whether there is one.
func Lookup(key string) (Def, bool) {
	for _, d := range Catalog {
		if d.Key == key {
			return d, true
		}
	}
	return Def{}, false
}

// MustLookup returns the declaration of key. A key produced without a
// declaration is a bug of dmabench (a test checks every cell of the
// default run), so it stops with the key's name.
func MustLookup(key string) Def {
	d, ok := Lookup(key)
	if !ok {
		panic(fmt.Sprintf("metric %q has no declaration in metrics.Catalog", key))
	}
	return d
}

// Keys returns every declared key, in catalog order.
func Keys() []string {
	out := make([]string, len(Catalog))
	for i, d := range Catalog {
		out[i] = d.Key
	}
	return out
}

// WriteMarkdown writes the catalog as docs/metrics.md.
func WriteMarkdown(b *strings.Builder) {
	b.WriteString("# Metrics\n\n")
	b.WriteString("Generated from `metrics.Catalog` by `go test ./metrics -run TestMetricsDoc -update`; do not edit by hand.\n")
	b.WriteString("Every key a cell's `metrics` hold is declared once there: its unit, which way is better, whether it is\n")
	b.WriteString("modeled (exact: the same for a config and seed on any machine) or a host measurement (noisy), what it means,\n")
	b.WriteString("and who produces it. `dmabench list metrics` prints the same.\n\n")
	b.WriteString("| metric | unit | better | kind | meaning | produced by | benchfmt unit |\n|---|---|---|---|---|---|---|\n")
	for _, d := range Catalog {
		kind := "modeled"
		if !d.Exact {
			kind = "host"
		}
		meaning := d.Meaning
		if d.When != "" {
			meaning += " (only in " + d.When + ")"
		}
		bench := ""
		if d.Bench != "" {
			bench = "`" + d.Bench + "`"
		}
		fmt.Fprintf(b, "| `%s` | %s | %s | %s | %s | %s | %s |\n", d.Key, d.Unit, d.Better, kind, meaning, d.Producer, bench)
	}
}

// Human formats v, a value of d, for a person: bytes in B, KiB, MiB or
// GiB; durations in ns, µs, ms or s; rates in ops/s, k, M or G ops/s;
// fractions as percentages; counts in full. Never in exponent notation.
func (d Def) Human(v float64) string {
	abs := v
	if abs < 0 {
		abs = -abs
	}
	scaled := func(steps []string, base float64) string {
		i := 0
		for abs >= base && i < len(steps)-1 {
			v, abs = v/base, abs/base
			i++
		}
		return trim(v) + " " + steps[i]
	}
	switch d.Unit {
	case Bytes:
		return scaled([]string{"B", "KiB", "MiB", "GiB", "TiB"}, 1024)
	case Nanos:
		return scaled([]string{"ns", "µs", "ms", "s"}, 1000)
	case Millis:
		return trim(v) + " ms"
	case OpsPerS:
		return scaled([]string{"ops/s", "k ops/s", "M ops/s", "G ops/s"}, 1000)
	case Fraction:
		return trim(100*v) + "%"
	case Ratio:
		return trim(v) + "x"
	case Index:
		return fmt.Sprintf("%.3f", v)
	}
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d", int64(v))
	}
	return trim(v)
}

// trim prints v with three significant digits or more, in plain decimal.
func trim(v float64) string {
	a := v
	if a < 0 {
		a = -a
	}
	switch {
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	case a >= 0.001:
		return fmt.Sprintf("%.3f", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.9f", v), "0"), ".")
}
