package main

import (
	"fmt"
	"io"
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
				lines, err := parseFile(f, dmapool.ParsePools)
				if err != nil {
					return err
				}
				mm, ms := dmapool.CheckPools(f, lines)
				m, n, misses = m+mm, n+len(lines), append(misses, ms...)
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
				rows, err := parseFile(f, slab.ParseSlabinfo)
				if err != nil {
					return err
				}
				choice := slab.BestCPUs(rows, maxOrder)
				if cpus != "auto" {
					if choice, err = strconv.Atoi(cpus); err != nil || choice < 1 || choice > 8192 {
						return usagef("--cpus %q: want a CPU count (1..8192) or auto", cpus)
					}
				}
				mm, ms := slab.CheckSlabinfo(f, rows, choice, maxOrder)
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

// openInput opens a file a user gave, reading gzip transparently; a
// file that cannot be opened is bad input.
func openInput(path string) (io.ReadCloser, error) {
	r, err := trace.OpenFile(path)
	if err != nil {
		return nil, usageError{Err: err}
	}
	return r, nil
}

// parseFile opens path and reads it with parse.
func parseFile[T any](path string, parse func(string, io.Reader) (T, error)) (T, error) {
	var zero T
	r, err := openInput(path)
	if err != nil {
		return zero, err
	}
	defer r.Close()
	return parse(path, r)
}

// validateFtrace checks every kmalloc event's bytes_alloc against the
// size class the model gives its bytes_req.
func validateFtrace(path string, classes []int64) (matched, total int, misses []string, err error) {
	_, err = parseFile(path, func(name string, r io.Reader) (struct{}, error) {
		return struct{}{}, ftrace.Kmallocs(name, r, func(line int, req, got int64) {
			total++
			if want := dmaalloc.SizeClass(classes, req); want == got {
				matched++
			} else {
				misses = append(misses, fmt.Sprintf("line %d: bytes_req=%d: kernel %d, model %d", line, req, got, want))
			}
		})
	})
	return
}
