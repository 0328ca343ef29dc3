package main

import (
	"errors"
	"io"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/dmabench/dmabench/allocators/dmaalloc"
	"github.com/dmabench/dmabench/registry"
	"github.com/dmabench/dmabench/validate"
	"github.com/dmabench/dmabench/workloads/trace"
)

func newValidateCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check the allocator models against data captured on real kernels",
		Long: `validate compares what the models compute with what real kernels did:
  validate ftrace FILE [--sizes T]        kmalloc size classes vs bytes_alloc
  validate pools FILE...                   dma_pool blocks per page vs sysfs pools files
  validate slabinfo FILE... [--cpus N]     SLUB objects and pages per slab vs /proc/slabinfo
  validate kernel --kernel-tree PATH       a kernel tree's mm/dmapool.c vs the model of its design
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
		if err := r.Judge(minMatch); errors.Is(err, validate.ErrNothing) {
			return usageError{Err: err}
		} else {
			return err
		}
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
	var tree string
	var seeds, ops int
	kc := &cobra.Command{
		Use:   "kernel --kernel-tree PATH",
		Short: "Does the tree's dma_pool hand out, operation by operation, the model's addresses (random sequences, then each workload's pool traffic)?",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(_ *cobra.Command, _ []string) error {
			b, names, traffic, err := registry.KernelTraffic(tree)
			if err != nil {
				return err
			}
			return show(validate.Kernel(b, seeds, ops, names, traffic))
		},
	}
	kc.Flags().StringVar(&tree, "kernel-tree", "", "kernel source folder or linux-source tarball `PATH`")
	kc.Flags().IntVar(&seeds, "seeds", 20, "random sequences")
	kc.Flags().IntVar(&ops, "ops", 20000, "operations per sequence and per workload")
	cmd.AddCommand(ft, pools, si, kc)
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
