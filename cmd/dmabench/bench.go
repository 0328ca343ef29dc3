package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/dmabench/dmabench/bench"
	"github.com/dmabench/dmabench/registry"
)

func newBenchCmd(stdout io.Writer) *cobra.Command {
	var workload, platform, configFile string
	var events int64
	var rounds int
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the harness itself: the limit, generation, metrics, each allocator, parsing",
		Long: `bench measures, in one run and side by side, how fast dmabench itself
replays events on this machine: a bare loop (the limit), the engine over a
captured stream against each model, the workload generated as served, and
trace parsing; median of interleaved rounds (docs/performance.md).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(_ *cobra.Command, _ []string) error {
			cfg, err := loadConfig(configFile, nil)
			if err != nil {
				return err
			}
			cfg.Workloads, cfg.Platforms, cfg.Allocators = []string{workload}, []string{platform}, []string{"dmapool"}
			if err := cfg.Validate(); err != nil {
				return err
			}
			if events < 10_000 {
				return usagef("bench: -n %d: want at least 10000 events", events)
			}
			if rounds < 1 {
				return usagef("bench: -r %d: want at least 1 round", rounds)
			}
			rep, err := bench.Run(registry.NewBuilder(cfg), bench.Options{Workload: workload, Platform: platform,
				Events: events, Rounds: rounds, Allocators: registry.AllocatorNames()})
			if err != nil {
				return err
			}
			return rep.Write(stdout)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&configFile, "config", "c", "", "config file (YAML) overriding the embedded config.yaml")
	f.StringVarP(&workload, "workload", "w", "usb-uhci", "workload or scenario to measure with")
	f.StringVarP(&platform, "platform", "p", "x86", "platform")
	f.Int64VarP(&events, "events", "n", 2_000_000, "events per measurement")
	f.IntVarP(&rounds, "rounds", "r", 5, "rounds: every measurement runs once per round, in turn; the median is shown")
	return cmd
}
