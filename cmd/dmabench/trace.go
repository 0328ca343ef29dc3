package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/dmabench/dmabench/progress"
	"github.com/dmabench/dmabench/registry"

	"github.com/dmabench/dmabench/matrix"
	"github.com/dmabench/dmabench/report"
	"github.com/dmabench/dmabench/workloads/trace"
)

func newRecordCmd(stdout, stderr io.Writer) *cobra.Command {
	var workload, platform, allocator, out, configFile, progressMode string
	var events int64
	var seed uint64
	cmd := &cobra.Command{
		Use:   "record -w WORKLOAD -o FILE",
		Short: "Write the event stream of a synthetic workload or scenario as a trace",
		Long: `record runs a workload (or scenario) on a platform and allocator and writes
every event it served, in order, as a dmabench trace (gzip when FILE ends
in .gz; in the binary encoding when FILE ends in .bin or .bin.gz, which
replays faster). Replaying the trace on the same platform and allocator
gives the same modeled metrics as running the workload.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := cellConfig(configFile, workload, allocator, platform, 0)
			if err != nil {
				return err
			}
			if err := registry.CheckOutputFile("record: -o", out); err != nil {
				return err
			}
			if events < 1 {
				return usagef("record: -n %d: want at least 1 event", events)
			}
			c := matrix.Cell{Scenario: workload, Allocator: allocator, Platform: platform, Seed: seed}
			pr, err := progress.NewTask(progressMode, stderr, "record "+workload, events, "events")
			if err != nil {
				return usageError{Err: err}
			}
			defer pr.Wait()
			var written int64
			err = report.WriteAtomic(out, func(w io.Writer) error {
				b := registry.NewBuilder(cfg)
				written, err = matrix.Record(c, b, events, trace.NewWriterFor(out, w), b.TraceKnobs(c), pr.Events)
				return err
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: %d events of %s (platform %s, allocator %s, seed %d)\n", out, written, workload, platform, allocator, seed)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&configFile, "config", "c", "", "config file (YAML) overriding the embedded config.yaml")
	f.StringVarP(&workload, "workload", "w", "", "workload or scenario to record")
	f.StringVarP(&platform, "platform", "p", "x86", "platform to run it on")
	f.StringVarP(&allocator, "allocator", "a", "dmapool", "allocator to run it against")
	f.Int64VarP(&events, "events", "n", 10000, "events to record")
	f.Uint64VarP(&seed, "seed", "s", 1, "seed")
	f.StringVarP(&out, "output", "o", "", "trace file to write (.gz: compressed; .bin or .bin.gz: the binary encoding)")
	f.StringVar(&progressMode, "progress", "auto", "progress on stderr, `MODE`: auto (a bar on a terminal, plain lines otherwise), bar, plain, none")
	return cmd
}

func newReplayCmd(stdout, stderr io.Writer) *cobra.Command {
	run := newRunCmd(stdout, stderr)
	cmd := &cobra.Command{
		Use:   "replay FILE",
		Short: "Replay a trace against allocators and platforms (as run -w trace:FILE)",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("workload") {
				return usagef("replay: -w does not apply: the trace is the workload (run -w trace:FILE,OTHER mixes them)")
			}
			if err := cmd.Flags().Set("workload", registry.TracePrefix+args[0]); err != nil {
				return err
			}
			return run.RunE(cmd, args)
		},
	}
	cmd.Flags().AddFlagSet(run.Flags())
	cmd.Flags().MarkHidden("workload")
	return cmd
}

func newConvertCmd(stdout io.Writer) *cobra.Command {
	var out string
	return &cobra.Command{
		Use:   "convert IN OUT",
		Short: "Convert a trace between the text and the binary encoding (by OUT's name)",
		Long: `convert copies a trace record by record into the encoding OUT's name asks
for: binary when it ends in .bin or .bin.gz, text otherwise (gzip for
.gz). Nothing is lost: comments, knobs, threads, devices, every event with
its id as written, the cut line.`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(_ *cobra.Command, args []string) error {
			out = args[1]
			if err := registry.CheckOutputFile("convert: OUT", out); err != nil {
				return err
			}
			in, err := openInput(args[0])
			if err != nil {
				return err
			}
			threads, err := trace.ScanThreads(in) // one pass, written up front
			in.Close()
			if err != nil {
				return err
			}
			if in, err = openInput(args[0]); err != nil {
				return err
			}
			defer in.Close()
			var n int64
			if err := report.WriteAtomic(out, func(w io.Writer) error {
				n, err = trace.Convert(args[0], in, trace.NewWriterFor(out, w), threads)
				return err
			}); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s -> %s: %d events\n", args[0], out, n)
			return nil
		},
	}
}
