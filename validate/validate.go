// Package validate checks the allocator models against what real kernels
// did, from files captured on them: kmalloc size classes against an
// ftrace capture's bytes_alloc, dma_pool layouts against sysfs pools
// files, SLUB's order rule against /proc/slabinfo. The parsers live with
// the models they check (dmapool.ParsePools, slab.ParseSlabinfo) or the
// format they read (ftrace.Kmallocs); this package opens the files and
// counts.
package validate

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/dmabench/dmabench/allocators/dmaalloc"
	"github.com/dmabench/dmabench/allocators/dmapool"
	"github.com/dmabench/dmabench/allocators/slab"
	"github.com/dmabench/dmabench/ftrace"
	"github.com/dmabench/dmabench/workloads/trace"
)

// Result is what one validation matched: every compared line, and a line
// for each that did not match; Notes say what was chosen on the way.
type Result struct {
	Name           string
	Matched, Total int
	Misses, Notes  []string
	// Skipped counts the lines skipped, by reason (as import skips them).
	Skipped map[string]int
}

// ErrNothing is a validation that found nothing to compare.
var ErrNothing = errors.New("nothing to validate")

// Judge says whether r passes: nil when at least minMatch percent of
// what it compared matched, ErrNothing (wrapped, with the reasons lines
// were skipped) when it compared nothing, an error naming the share
// otherwise (the models disagree with the kernel data).
func (r *Result) Judge(minMatch float64) error {
	if r.Total == 0 {
		return fmt.Errorf("%s: %w; skipped %v", r.Name, ErrNothing, r.SkippedReasons())
	}
	if float64(r.Matched)*100 < minMatch*float64(r.Total) {
		return fmt.Errorf("matched %d of %d: below --min-match", r.Matched, r.Total)
	}
	return nil
}

// Write prints the result: the notes, "NAME: matched M of N", and the
// first 50 misses.
func (r *Result) Write(w io.Writer) {
	for _, n := range r.Notes {
		fmt.Fprintln(w, n)
	}
	fmt.Fprintf(w, "%s: matched %d of %d\n", r.Name, r.Matched, r.Total)
	for i, m := range r.Misses {
		if i == 50 {
			fmt.Fprintf(w, "  ... and %d more\n", len(r.Misses)-50)
			break
		}
		fmt.Fprintf(w, "  %s\n", m)
	}
}

// parseFile opens path (gzip or not) and reads it with parse.
func parseFile[T any](path string, parse func(string, io.Reader) (T, error)) (T, error) {
	var zero T
	r, err := trace.OpenFile(path)
	if err != nil {
		return zero, err
	}
	defer r.Close()
	return parse(path, r)
}

// Ftrace compares every kmalloc event's bytes_alloc in the capture at path
// with what kmalloc allocates for its bytes_req under the table (slab,
// slub or slob) on a machine with cache line line; table "" detects the
// table (DetectSlab). Lines import skips are skipped and counted.
func Ftrace(path, table string, line int64) (*Result, error) {
	r := &Result{Name: path}
	if table == "" {
		d, err := DetectSlab(path)
		if err != nil {
			return nil, err
		}
		table, line = d.Table.String(), d.CacheLine
		r.Notes = append(r.Notes, "detected: "+DescribeSlab(d))
	}
	t, err := dmaalloc.ParseTable(table)
	if err != nil {
		return nil, err
	}
	classes := dmaalloc.Classes(t, line, 8)
	r.Notes = append(r.Notes, fmt.Sprintf("size classes (%s, cache line %d): %v", t, line, classes))
	skipped, err := parseFile(path, func(name string, in io.Reader) (map[string]int, error) {
		return ftrace.Kmallocs(name, in, func(n int, req, got int64) bool {
			r.Total++
			if want := dmaalloc.KmallocSize(t, classes, req); want == got {
				r.Matched++
			} else {
				r.Misses = append(r.Misses, fmt.Sprintf("line %d: bytes_req=%d: kernel %d, model %d", n, req, got, want))
			}
			return true
		})
	})
	r.Skipped = skipped
	for _, s := range r.SkippedReasons() {
		r.Notes = append(r.Notes, "skipped "+s)
	}
	return r, err
}

// SkippedReasons lists the skipped lines, "reason: count", by reason.
func (r *Result) SkippedReasons() []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(r.Skipped)) {
		out = append(out, fmt.Sprintf("%s: %d", k, r.Skipped[k]))
	}
	return out
}

// maxDetect bounds the kmalloc events DetectSlab reads: the first ones
// tell the tables apart as well as all would.
const maxDetect = 100_000

// DetectSlab finds the slab allocator of the kernel a capture came from
// (dmaalloc.Detect) from its first maxDetect kmalloc events; a capture
// without any gives a Detection with Total 0.
func DetectSlab(path string) (dmaalloc.Detection, error) {
	var pairs [][2]int64
	_, err := parseFile(path, func(name string, in io.Reader) (map[string]int, error) {
		return ftrace.Kmallocs(name, in, func(_ int, req, got int64) bool {
			pairs = append(pairs, [2]int64{req, got})
			return len(pairs) < maxDetect
		})
	})
	if err != nil || len(pairs) == 0 {
		return dmaalloc.Detection{}, err
	}
	return dmaalloc.Detect(pairs), nil
}

// DescribeSlab says what a detection found, for a person.
func DescribeSlab(d dmaalloc.Detection) string {
	if d.Total == 0 {
		return "not found: the capture has no kmalloc events (dmaalloc replays with the sizes configured)"
	}
	what := strings.ToUpper(d.Table.String())
	if d.Table == dmaalloc.SLAB {
		what += fmt.Sprintf(" (cache line %d)", d.CacheLine)
	}
	return fmt.Sprintf("%s: its sizes match %d of %d kmalloc events", what, d.Matched, d.Total)
}

// SlabKnobs are the knob lines an imported trace carries for a detected
// slab allocator, so that replay's dma_alloc uses the kernel's sizes.
func SlabKnobs(d dmaalloc.Detection) [][2]string {
	if d.Total == 0 {
		return nil
	}
	out := [][2]string{{"allocator.dmaalloc.sizes", d.Table.String()}}
	if d.Table == dmaalloc.SLAB {
		out = append(out, [2]string{"allocator.dmaalloc.cache_line", fmt.Sprint(d.CacheLine)})
	}
	return out
}

// Pools compares each pool's total blocks in the pools files with its
// pages times the blocks per page dma_pool lays out.
func Pools(paths []string) (*Result, error) {
	r := &Result{Name: strings.Join(paths, ", ")}
	for _, f := range paths {
		lines, err := parseFile(f, dmapool.ParsePools)
		if err != nil {
			return nil, err
		}
		m, ms := dmapool.CheckPools(f, lines)
		r.Matched, r.Total, r.Misses = r.Matched+m, r.Total+len(lines), append(r.Misses, ms...)
	}
	return r, nil
}

// Slabinfo compares each kmalloc cache of the slabinfo files with SLUB's
// order rule at slub_max_order maxOrder, for cpus CPUs (0: the count that
// fits each file best).
func Slabinfo(paths []string, cpus, maxOrder int) (*Result, error) {
	r := &Result{Name: strings.Join(paths, ", ")}
	for _, f := range paths {
		rows, err := parseFile(f, slab.ParseSlabinfo)
		if err != nil {
			return nil, err
		}
		n := cpus
		if n == 0 {
			n = slab.BestCPUs(rows, maxOrder)
		}
		m, ms := slab.CheckSlabinfo(f, rows, n, maxOrder)
		r.Notes = append(r.Notes, fmt.Sprintf("%s: nr_cpus %d (min_objects %d)", f, n, slab.MinObjects(n)))
		r.Matched, r.Total, r.Misses = r.Matched+m, r.Total+len(rows), append(r.Misses, ms...)
	}
	return r, nil
}
