package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dmabench/dmabench/registry"
)

// listKinds are what list shows, in order.
var listKinds = []string{"allocators", "platforms", "workloads", "metrics", "pools"}

func newListCmd(stdout io.Writer) *cobra.Command {
	var configFile, workload string
	cmd := &cobra.Command{
		Use:       "list [allocators|platforms|workloads|metrics|pools]",
		Short:     "List the models, workloads, metrics and pools this build knows",
		ValidArgs: listKinds,
		Args:      usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			kinds := listKinds
			if len(args) == 1 {
				if !slices.Contains(listKinds, args[0]) {
					return usagef("list: unknown kind %q (valid: %s)", args[0], strings.Join(listKinds, ", "))
				}
				kinds = args[:1]
			}
			cfg, err := loadConfig(configFile, nil)
			if err != nil {
				return err
			}
			for _, k := range kinds {
				var es []registry.Entry
				switch k {
				case "allocators":
					es = registry.Allocators()
				case "platforms":
					es = registry.Platforms()
				case "workloads":
					es = registry.Workloads(cfg)
				case "metrics":
					es = registry.MetricEntries()
				case "pools":
					if es, err = registry.PoolEntries(cfg, workload); err != nil {
						return err
					}
				}
				fmt.Fprintf(stdout, "%s:\n", k)
				w := 15
				for _, e := range es {
					w = max(w, len(e.Name))
				}
				for _, e := range es {
					fmt.Fprintf(stdout, "  %-*s %s\n", w, e.Name, e.Doc)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&configFile, "config", "c", "", "config file whose scenarios to list too")
	cmd.Flags().StringVarP(&workload, "workload", "w", "", "with pools: only this workload's (the names allocator.mempool.min_nr_by_pool takes)")
	return cmd
}
