package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dmabench/dmabench/allocators/dmaalloc"
	"github.com/dmabench/dmabench/allocators/dmapool"
	"github.com/dmabench/dmabench/allocators/slab"
	"github.com/dmabench/dmabench/ftrace"
	"github.com/dmabench/dmabench/workloads/trace"
)

// errBelowMin is returned when a validation matched less than --min-match:
// the models disagree with the kernel data (exit status 1).
type errBelowMin struct{ matched, total int }

func (e errBelowMin) Error() string {
	return fmt.Sprintf("matched %d of %d: below --min-match", e.matched, e.total)
}

func newValidateCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check the allocator models against data captured on real kernels",
		Long: `validate compares what the models compute with what real kernels did:
  validate ftrace FILE --sizes slab|slub   kmalloc size classes vs bytes_alloc
  validate pools FILE...                   dma_pool blocks per page vs sysfs pools files
  validate slabinfo FILE... [--cpus N]     SLUB objects and pages per slab vs /proc/slabinfo
Each prints "matched M of N" and the mismatches, and exits 1 when the share
matched is below --min-match (default 100).`,
	}
	var minMatch float64
	cmd.PersistentFlags().Float64Var(&minMatch, "min-match", 100, "lowest acceptable percentage of matching lines")
	report := func(name string, matched, total int, misses []string) error {
		fmt.Fprintf(stdout, "%s: matched %d of %d\n", name, matched, total)
		for i, m := range misses {
			if i == 50 {
				fmt.Fprintf(stdout, "  ... and %d more\n", len(misses)-50)
				break
			}
			fmt.Fprintf(stdout, "  %s\n", m)
		}
		if total == 0 {
			return usagef("%s: nothing to validate", name)
		}
		if float64(matched)*100 < minMatch*float64(total) {
			return errBelowMin{matched, total}
		}
		return nil
	}

	var sizes string
	var line int64
	ft := &cobra.Command{
		Use:   "ftrace FILE",
		Short: "For every kmalloc event, does the model's size class for bytes_req equal the kernel's bytes_alloc?",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			t, err := dmaalloc.ParseTable(sizes)
			if err != nil {
				return usageError{Err: err}
			}
			classes := dmaalloc.Classes(t, line, 8)
			matched, total, misses, err := validateFtrace(args[0], classes)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "size classes (%s, cache line %d): %v\n", t, line, classes)
			return report(args[0], matched, total, misses)
		},
	}
	ft.Flags().StringVar(&sizes, "sizes", "slab", "size-class table: slab or slub")
	ft.Flags().Int64Var(&line, "cache-line", 64, "L1 cache line of the traced machine (decides the slab table's 96 and 192)")

	pools := &cobra.Command{
		Use:   "pools FILE...",
		Short: "Does each dma_pool's total blocks equal pages x the model's blocks per page?",
		Args:  usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			var m, n int
			var misses []string
			for _, f := range args {
				mm, nn, ms, err := validatePools(f)
				if err != nil {
					return err
				}
				m, n, misses = m+mm, n+nn, append(misses, ms...)
			}
			return report(strings.Join(args, ", "), m, n, misses)
		},
	}

	var cpus string
	var maxOrder int
	si := &cobra.Command{
		Use:   "slabinfo FILE...",
		Short: "For each kmalloc cache, does the SLUB order rule give the same objects and pages per slab?",
		Args:  usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			var m, n int
			var misses []string
			for _, f := range args {
				rows, err := readSlabinfo(f)
				if err != nil {
					return err
				}
				choice, err := chooseCPUs(cpus, rows, maxOrder)
				if err != nil {
					return err
				}
				mm, ms := matchSlabinfo(f, rows, choice, maxOrder)
				fmt.Fprintf(stdout, "%s: nr_cpus %d (min_objects %d)\n", f, choice, slab.MinObjects(choice))
				m, n, misses = m+mm, n+len(rows), append(misses, ms...)
			}
			return report(strings.Join(args, ", "), m, n, misses)
		},
	}
	si.Flags().StringVar(&cpus, "cpus", "auto", "CPU count of the machine, or auto: the count that fits best")
	si.Flags().IntVar(&maxOrder, "max-order", 3, "slub_max_order")
	cmd.AddCommand(ft, pools, si)
	return cmd
}

// openInput opens a file, reading gzip transparently.
func openInput(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usageError{Err: err}
	}
	br, err := trace.Uncompressed(f)
	if err != nil {
		f.Close()
		return nil, usagef("%s: %v", path, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{br, f}, nil
}

// scanLines calls fn for each line with its number; fn's error stops it.
func scanLines(path string, fn func(n int, line []byte) error) error {
	r, err := openInput(path)
	if err != nil {
		return err
	}
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		if err := fn(n, sc.Bytes()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return usagef("%s:%d: %v", path, n+1, err)
	}
	return nil
}

func validateFtrace(path string, classes []int64) (matched, total int, misses []string, err error) {
	err = scanLines(path, func(n int, b []byte) error {
		l, perr := ftrace.Parse(b)
		if perr != nil {
			return nil // not an event line: headers, comments, other formats
		}
		if ev := string(l.Event); ev != "kmalloc" && ev != "kmalloc_node" {
			return nil
		}
		req, e1 := ftrace.Int(l.Body, "bytes_req")
		got, e2 := ftrace.Int(l.Body, "bytes_alloc")
		if e1 != nil || e2 != nil {
			return usagef("%s:%d: %s event: %v", path, n, l.Event, firstErr(e1, e2))
		}
		if req <= 0 || req > 1<<40 || got < req {
			return usagef("%s:%d: bytes_req=%d bytes_alloc=%d is not a kmalloc", path, n, req, got)
		}
		total++
		if want := dmaalloc.SizeClass(classes, req); want == got {
			matched++
		} else {
			misses = append(misses, fmt.Sprintf("line %d: bytes_req=%d: kernel %d, model %d", n, req, got, want))
		}
		return nil
	})
	return
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func validatePools(path string) (matched, total int, misses []string, err error) {
	err = scanLines(path, func(n int, b []byte) error {
		f := strings.Fields(string(b))
		if len(f) == 0 || (n == 1 && bytes.HasPrefix(b, []byte("poolinfo"))) {
			return nil
		}
		if len(f) < 5 {
			return usagef("%s:%d: want a name and four numbers, got %q", path, n, b)
		}
		var nums [4]int64
		for i := 0; i < 4; i++ {
			v, err := strconv.ParseInt(f[len(f)-4+i], 10, 64)
			if err != nil || v < 0 {
				return usagef("%s:%d: field %d (%q) is not a count", path, n, len(f)-3+i, f[len(f)-4+i])
			}
			nums[i] = v
		}
		name := strings.Join(f[:len(f)-4], " ")
		total++
		l, lerr := dmapool.NewLayout(nums[2], 0, 0)
		if lerr != nil {
			misses = append(misses, fmt.Sprintf("line %d: %s: block size %d: %v", n, name, nums[2], lerr))
			return nil
		}
		if want := nums[3] * int64(l.BlocksPerPage()); want == nums[1] {
			matched++
		} else {
			misses = append(misses, fmt.Sprintf("line %d: %s: %d pages x %d per page = %d blocks, kernel has %d", n, name, nums[3], l.BlocksPerPage(), want, nums[1]))
		}
		return nil
	})
	return
}

var kmallocCache = regexp.MustCompile(`^(dma-)?kmalloc(-rcl|-cg|-rnd-\d+)?-\d+k?$`)

type slabRow struct {
	line              int
	name              string
	size, objs, pages int64
}

func readSlabinfo(path string) ([]slabRow, error) {
	var rows []slabRow
	err := scanLines(path, func(n int, b []byte) error {
		if n == 1 {
			if !bytes.HasPrefix(b, []byte("slabinfo - version: 2.")) {
				return usagef("%s:1: not /proc/slabinfo (want \"slabinfo - version: 2.x\")", path)
			}
			return nil
		}
		f := strings.Fields(string(b))
		if len(f) == 0 || f[0] == "#" || !kmallocCache.MatchString(f[0]) {
			return nil
		}
		if len(f) < 6 {
			return usagef("%s:%d: %s: want at least 6 columns", path, n, f[0])
		}
		var v [3]int64
		for i := 0; i < 3; i++ {
			x, err := strconv.ParseInt(f[3+i], 10, 64)
			if err != nil || x <= 0 {
				return usagef("%s:%d: %s: column %d (%q) is not a positive number", path, n, f[0], 4+i, f[3+i])
			}
			v[i] = x
		}
		rows = append(rows, slabRow{line: n, name: f[0], size: v[0], objs: v[1], pages: v[2]})
		return nil
	})
	return rows, err
}

func matchSlabinfo(path string, rows []slabRow, cpus, maxOrder int) (int, []string) {
	matched := 0
	var misses []string
	for _, r := range rows {
		o, objs := slab.CalculateOrder(r.size, cpus, maxOrder)
		if int64(objs) == r.objs && int64(1)<<o == r.pages {
			matched++
		} else {
			misses = append(misses, fmt.Sprintf("%s:%d: %s (%d bytes): kernel %d objects in %d pages, model %d in %d",
				path, r.line, r.name, r.size, r.objs, r.pages, objs, 1<<o))
		}
	}
	return matched, misses
}

// chooseCPUs returns the CPU count to use: the given one, or for "auto" the
// smallest count whose min_objects matches the most rows.
func chooseCPUs(s string, rows []slabRow, maxOrder int) (int, error) {
	if s != "auto" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 8192 {
			return 0, usagef("--cpus %q: want a CPU count (1..8192) or auto", s)
		}
		return n, nil
	}
	best, bestN := 1, -1
	for n := 1; n <= 8192; n *= 2 {
		if m, _ := matchSlabinfo("", rows, n, maxOrder); m > bestN {
			best, bestN = n, m
		}
	}
	return best, nil
}
