package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/dmabench/dmabench/allocators/dmaalloc"
	"github.com/dmabench/dmabench/validate"
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
  validate ftrace FILE [--sizes T]        kmalloc size classes vs bytes_alloc
  validate pools FILE...                   dma_pool blocks per page vs sysfs pools files
  validate slabinfo FILE... [--cpus N]     SLUB objects and pages per slab vs /proc/slabinfo
Each prints "matched M of N" and the mismatches, and exits 1 when the share
matched is below --min-match (default 100).`,
	}
	var minMatch float64
	cmd.PersistentFlags().Float64Var(&minMatch, "min-match", 100, "lowest acceptable percentage of matching lines")
	// show prints a validation and judges it against --min-match.
	show := func(r *validate.Result, err error) error {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return usageError{Err: err}
		}
		if err != nil {
			return err
		}
		r.Write(stdout)
		if r.Total == 0 {
			return usagef("%s: nothing to validate; skipped %v", r.Name, r.SkippedReasons())
		}
		if float64(r.Matched)*100 < minMatch*float64(r.Total) {
			return errBelowMin{r.Matched, r.Total}
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
			if _, err := dmaalloc.ParseTable(sizes); err != nil && sizes != "" {
				return usageError{Err: err}
			}
			return show(validate.Ftrace(args[0], sizes, line))
		},
	}
	ft.Flags().StringVar(&sizes, "sizes", "", "size-class table: slab, slub or slob (default: the one that fits the capture best, said in the output)")
	ft.Flags().Int64Var(&line, "cache-line", 64, "L1 cache line of the traced machine (decides the slab table's 96 and 192)")
	pools := &cobra.Command{
		Use:   "pools FILE...",
		Short: "Does each dma_pool's total blocks equal pages x the model's blocks per page?",
		Args:  usageArgs(cobra.MinimumNArgs(1)),
		RunE:  func(_ *cobra.Command, args []string) error { return show(validate.Pools(args)) },
	}
	var cpus string
	var maxOrder int
	si := &cobra.Command{
		Use:   "slabinfo FILE...",
		Short: "For each kmalloc cache, does the SLUB order rule give the same objects and pages per slab?",
		Args:  usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			n := 0
			if cpus != "auto" {
				var err error
				if n, err = strconv.Atoi(cpus); err != nil || n < 1 || n > 8192 {
					return usagef("--cpus %q: want a CPU count (1..8192) or auto", cpus)
				}
			}
			return show(validate.Slabinfo(args, n, maxOrder))
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
