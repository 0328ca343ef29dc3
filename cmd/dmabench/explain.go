package main

import (
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dmabench/dmabench/report"
)

func newExplainCmd(stdout io.Writer) *cobra.Command {
	var cell string
	var allocs []string
	var seed uint64
	cmd := &cobra.Command{
		Use:   "explain RESULTS.json --cell SCENARIO/PLATFORM -a A,B",
		Short: "Set two designs side by side, pool by pool, and say where they differ",
		Long: `explain sets two allocators' cells of one scenario and platform side by
side, pool by pool, and says for each pool where they differ, or why not.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			i := strings.LastIndex(cell, "/")
			sc, plat, ok := cell[:max(i, 0)], cell[i+1:], i > 0
			if !ok || sc == "" || plat == "" {
				return usagef("explain: --cell %q: want SCENARIO/PLATFORM", cell)
			}
			if len(allocs) != 2 {
				return usagef("explain: -a %q: want two allocators, A,B", strings.Join(allocs, ","))
			}
			docs, err := readDocuments(args)
			if err != nil {
				return err
			}
			if err := report.Explain(stdout, docs[0], sc, plat, allocs[0], allocs[1], seed); err != nil {
				return usageError{Err: err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cell, "cell", "", "the scenario and platform, SCENARIO/PLATFORM")
	cmd.Flags().StringSliceVarP(&allocs, "allocator", "a", nil, "the two allocators to set side by side, A,B")
	cmd.Flags().Uint64VarP(&seed, "seed", "s", 0, "the seed (0: the lowest both have)")
	return cmd
}
