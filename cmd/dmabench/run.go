package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"time"

	"github.com/spf13/cobra"

	"github.com/dmabench/dmabench/cells"
	"github.com/dmabench/dmabench/progress"
	"github.com/dmabench/dmabench/registry"
	"github.com/dmabench/dmabench/workloads/trace"

	"github.com/dmabench/dmabench/matrix"
	"github.com/dmabench/dmabench/report"
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(configFile, cmd.Flags())
			if err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return registry.Locate(configFile, err)
			}
			si, sn, err := matrix.ParseShard(shard, os.Getenv)
			if err != nil {
				return usageError{Err: err}
			}
			if resume && cfg.Name == "" {
				return usagef("--resume needs --name: the results file to complete")
			}
			return runMatrix(cfg, runOptions{shardI: si, shardN: sn, resume: resume, progress: progressMode}, stdout, stderr)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&configFile, "config", "c", "", "config file (YAML) overriding the embedded config.yaml")
	f.StringSliceP("workload", "w", nil, "workloads to run (comma-separated; see `dmabench list workloads`)")
	f.StringSliceP("allocator", "a", nil, "allocator models (comma-separated; see `dmabench list allocators`)")
	f.StringSliceP("platform", "p", nil, "platform models (comma-separated; see `dmabench list platforms`)")
	f.IntP("seeds", "s", 0, "run seeds 1..N for every cell")
	f.Int64P("events", "n", 0, "events replayed per cell")
	f.StringP("format", "f", "", "output: table, markdown, csv, json, benchfmt or gha")
	f.StringSlice("columns", nil, "further metrics to show as table and markdown columns (comma-separated, e.g. urb_submit_failures,rx_drops)")
	f.String("out", "", "folder for the results file (default results/)")
	f.String("name", "", "results file name without extension (default: UTC timestamp)")
	f.IntP("jobs", "j", 0, "cells run in parallel (0: one per CPU)")
	f.StringVar(&shard, "shard", "", "run shard i of N (i/N), or N with i from JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID")
	f.BoolVar(&resume, "resume", false, "skip cells already in DIR/NAME.json and add the rest to it")
	f.StringVar(&progressMode, "progress", "auto", "progress on stderr: auto (a bar on a terminal, plain lines otherwise), bar, plain, none")
	return cmd
}

type runOptions struct {
	shardI, shardN int
	resume         bool
	progress       string
}

func runMatrix(cfg *Config, opt runOptions, stdout, stderr io.Writer) error {
	all := registry.Cells(cfg)
	cs := all
	if opt.shardN > 1 {
		cs = matrix.Shard(all, opt.shardI, opt.shardN)
	}
	var kept []matrix.Result
	if opt.resume {
		prev, err := existingCells(filepath.Join(cfg.Out, cfg.Name+".json"))
		if err != nil {
			return usageError{Err: err}
		}
		done := map[matrix.Cell]bool{}
		for _, r := range prev {
			done[r.Cell] = true
		}
		var todo []matrix.Cell
		for _, c := range cs {
			if done[c] {
				continue
			}
			todo = append(todo, c)
		}
		kept, cs = prev, todo
	}
	mode := opt.progress
	if mode == "" {
		mode = "none"
	}
	pr, err := progress.New(mode, stderr, len(cs))
	if err != nil {
		return usageError{Err: err}
	}
	start := time.Now()
	results := matrix.Run(cs, registry.NewBuilder(cfg), matrix.Options{Events: cfg.Events, Jobs: cfg.Jobs,
		Done: func(int, *matrix.Result) { pr.Cell() }})
	pr.Wait()
	for _, r := range results {
		if r.Err != nil {
			return fmt.Errorf("cell %s: %w", r.Cell, r.Err)
		}
	}
	name := cfg.Name
	if name == "" {
		name = start.UTC().Format("20060102T150405Z")
	}
	if opt.resume {
		results = matrix.Order(all, append(kept, results...))
	}
	doc := cells.NewDocument(cfg, results)
	for _, w := range cfg.Workloads {
		if path, ok := strings.CutPrefix(w, registry.TracePrefix); ok {
			sum, err := trace.Checksum(path)
			if err != nil {
				return usageError{Err: err}
			}
			if doc.Traces == nil {
				doc.Traces = map[string]string{}
			}
			doc.Traces[path] = sum
		}
	}
	path, err := report.Save(cfg.Out, name, doc)
	if err != nil {
		return err
	}
	if err := report.Print(stdout, cfg.Format, doc, cfg.Columns, cfg.Out, name); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "dmabench: %d cells in %.1fs; results in %s\n", len(cs), time.Since(start).Seconds(), path)
	return nil
}
