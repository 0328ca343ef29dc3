package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/dmabench/dmabench/sizing"
)

func newSizeCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "size", Short: "Size kernel resources for a workload"}
	var workload, platform, allocator, configFile string
	var seeds, areas int
	var events int64
	sw := &cobra.Command{
		Use:   "swiotlb -w WORKLOAD|trace:FILE",
		Short: "Find the smallest swiotlb with no failed mapping for a workload or trace",
		Long: `size swiotlb replays a workload or trace on cvm or swiotlb at the kernel's
size, finds the smallest pool (whole segments) with no failed mapping over
the seeds, and prints the high-water marks, what dynamic swiotlb adds, and
the mappings that never fit (docs/swiotlb.md).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if workload == "" {
				return usagef("size swiotlb: -w WORKLOAD is required")
			}
			cfg, err := cellConfig(configFile, workload, allocator, platform, events)
			if err != nil {
				return err
			}
			if seeds < 1 || seeds > 100 || areas < 0 || areas > 4096 {
				return usagef("size swiotlb: -s 1..100 and --areas 0..4096")
			}
			o := sizing.Options{Scenario: workload, Platform: platform, Allocator: allocator, Events: cfg.Events, Areas: areas}
			for s := 1; s <= seeds; s++ {
				o.Seeds = append(o.Seeds, uint64(s))
			}
			r, err := sizing.Swiotlb(cfg, o)
			if err != nil {
				return err
			}
			r.Write(stdout)
			return nil
		},
	}
	f := sw.Flags()
	f.StringVarP(&configFile, "config", "c", "", "config `FILE` (YAML) overriding the embedded config.yaml")
	f.StringVarP(&workload, "workload", "w", "", "workload, scenario or trace:FILE to size for")
	f.StringVarP(&platform, "platform", "p", "cvm", "platform with swiotlb: cvm or swiotlb")
	f.StringVarP(&allocator, "allocator", "a", "dmapool", "allocator the workload's pools use")
	f.IntVarP(&seeds, "seeds", "s", 3, "seeds 1..`N`")
	f.Int64VarP(&events, "events", "n", 0, "`N` events per replay (default: the config's)")
	f.IntVar(&areas, "areas", 0, "swiotlb=,`N` areas (0: from the platform's CPUs)")
	cmd.AddCommand(sw)
	return cmd
}
