package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/dmabench/dmabench/matrix"
	"github.com/dmabench/dmabench/sweep"
)

func newRunCmd(stdout, stderr io.Writer) *cobra.Command {
	var configFile, shard, progressMode string
	var resume bool
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Replay workloads against allocator models on modeled platforms",
		Long: `run replays every workload x allocator x platform x seed in the config
(the embedded config.yaml unless -c is given) and prints a table of the
results. It also writes DIR/NAME.json with the full config, seed, tool
version, host facts and every cell's metrics.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(configFile, cmd.Flags())
			if err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return locateKnob(configFile, err)
			}
			notes, err := cfg.ApplyTraceKnobs()
			if err != nil {
				return err
			}
			for _, n := range notes {
				fmt.Fprintln(stderr, "note:", n)
			}
			si, sn, err := matrix.ParseShard(shard, os.Getenv)
			if err != nil {
				return usageError{Err: err}
			}
			if resume && cfg.Name == "" {
				return usagef("--resume needs --name: the results file to complete")
			}
			// SIGINT and SIGTERM stop the run after saving what finished.
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return sweep.Run(cfg, sweep.Options{ShardI: si, ShardN: sn, Resume: resume, Progress: progressMode,
				Again: againCommand(cmd, args), Stop: ctx, Stdout: stdout, Stderr: stderr})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&configFile, "config", "c", "", "config `FILE` (YAML) overriding the embedded config.yaml")
	f.StringSliceP("workload", "w", nil, "workloads to run, a comma-separated `LIST` (dmabench list workloads)")
	f.StringSliceP("allocator", "a", nil, "allocator models, a comma-separated `LIST` (dmabench list allocators)")
	f.StringSliceP("platform", "p", nil, "platform models, a comma-separated `LIST` (dmabench list platforms)")
	f.IntP("seeds", "s", 0, "run seeds 1..`N` for every cell")
	f.StringSlice("seed-list", nil, "run these seeds, a comma-separated `LIST` (3,7,11), instead of 1..N")
	f.Int64P("events", "n", 0, "`N` events replayed per cell")
	f.StringP("format", "f", "", "output `FORMAT`: summary (one screen, the default), table (every cell), markdown, csv, json, benchfmt or gha")
	f.StringSlice("columns", nil, "further metrics, a comma-separated `LIST`, as table and markdown columns (dmabench list metrics)")
	f.String("out", "", "`DIR` for the results file (default results/)")
	f.String("name", "", "results file `NAME` without extension (default: UTC timestamp)")
	f.IntP("jobs", "j", 0, "`N` cells run in parallel (0: one per CPU)")
	f.StringArray("set", nil, "set any knob, `KEY=VALUE` with KEY as in config.yaml (platform.x86.ram_mib=64); repeatable")
	f.String("kernel-tree", "", "kernel source folder or linux-source tarball `PATH` for -a kernel-dmapool,kernel-mempool")
	f.StringVar(&shard, "shard", "", "run shard `I/N`, or N with I from JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID")
	f.BoolVar(&resume, "resume", false, "skip the cells DIR/NAME.json or its journal already holds (an interrupted or killed run) and add the rest; refused when they were measured with other settings")
	f.StringVar(&progressMode, "progress", "auto", "progress on stderr, `MODE`: auto (a bar on a terminal, plain lines otherwise), bar, plain, none")
	return cmd
}

// againCommand is the command line that runs cmd again with the flags
// the user set, but --resume and --name, which the caller adds.
func againCommand(cmd *cobra.Command, args []string) string {
	parts := append([]string{cmd.CommandPath()}, args...)
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if f.Name == "resume" || f.Name == "name" || f.Name == "workload" && cmd.Name() == "replay" {
			return // replay's workload is its argument
		}
		v := f.Value.String()
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			v = strings.Join(sv.GetSlice(), ",")
		}
		parts = append(parts, "--"+f.Name+"="+shellQuote(v))
	})
	return strings.Join(parts, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`*?[]{}();&|<>!#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
