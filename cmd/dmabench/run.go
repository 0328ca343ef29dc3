package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"

	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/dmabench/dmabench/cells"
	"github.com/dmabench/dmabench/journal"
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
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(configFile, cmd.Flags())
			if err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return locateKnob(configFile, err)
			}
			si, sn, err := matrix.ParseShard(shard, os.Getenv)
			if err != nil {
				return usageError{Err: err}
			}
			if resume && cfg.Name == "" {
				return usagef("--resume needs --name: the results file to complete")
			}
			return runMatrix(cfg, runOptions{shardI: si, shardN: sn, resume: resume, progress: progressMode, again: againCommand(cmd, args)}, stdout, stderr)
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
	f.BoolVar(&resume, "resume", false, "skip the cells DIR/NAME.json or its journal already holds (an interrupted or killed run) and add the rest; refused when they were measured with other settings")
	f.StringVar(&progressMode, "progress", "auto", "progress on stderr: auto (a bar on a terminal, plain lines otherwise), bar, plain, none")
	return cmd
}

type runOptions struct {
	shardI, shardN int
	resume         bool
	progress       string
	// again is the command line that resumes this run.
	again string
}

// interrupted: SIGINT or SIGTERM stopped the run after saving what was
// finished. It exits 130.
type interrupted struct{ msg string }

func (e interrupted) Error() string { return e.msg }

func runMatrix(cfg *Config, opt runOptions, stdout, stderr io.Writer) error {
	all := registry.Cells(cfg)
	cs := all
	if opt.shardN > 1 {
		cs = matrix.Shard(all, opt.shardI, opt.shardN)
	}
	if !slices.Contains(progress.Modes, opt.progress) && opt.progress != "" {
		return usagef("--progress %q: valid values are %s", opt.progress, strings.Join(progress.Modes, ", "))
	}
	start := time.Now()
	name := cfg.Name
	if name == "" {
		name = start.UTC().Format("20060102T150405Z")
	}
	jr, err := journal.Open(cfg.Out, name)
	if errors.Is(err, journal.ErrLocked) {
		return usageError{Err: err}
	}
	if err != nil {
		return err
	}
	defer jr.Close()
	var kept []matrix.Result
	if opt.resume {
		if kept, err = jr.Resume(cfg); err != nil {
			return usageError{Err: err}
		}
		done := map[matrix.Cell]bool{}
		for _, r := range kept {
			done[r.Cell] = true
		}
		cs = slices.DeleteFunc(slices.Clone(cs), func(c matrix.Cell) bool { return done[c] })
	} else if err := os.Remove(jr.Path(".journal")); err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := jr.Begin(cfg); err != nil {
		return err
	}
	mode := opt.progress
	if mode == "" {
		mode = "none"
	}
	pr, err := progress.New(mode, stderr, len(cs))
	if err != nil {
		return usageError{Err: err}
	}
	// SIGINT and SIGTERM stop the run; a journal that cannot be written
	// (a full disk) stops it too.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var journalErr error
	var once sync.Once
	results := matrix.Run(cs, registry.NewBuilder(cfg), matrix.Options{Events: cfg.Events, Jobs: cfg.Jobs, Stop: ctx.Done(),
		Done: func(_ int, r *matrix.Result) {
			if err := jr.Add(r); err != nil {
				once.Do(func() { journalErr = err; stop() })
			}
			pr.Cell()
		}})
	pr.Wait()
	finished := kept
	for _, r := range results {
		switch {
		case r.Err == nil:
			finished = append(finished, r)
		case !errors.Is(r.Err, matrix.ErrStopped):
			if jr.Added == 0 && !opt.resume {
				jr.Abandon()
			}
			return fmt.Errorf("cell %s: %w", r.Cell, r.Err)
		}
	}
	doc := cells.NewDocument(cfg, matrix.Order(all, finished))
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
	if err != nil || journalErr != nil {
		return fmt.Errorf("%w; the %d cells finished are in %s: %s", errors.Join(journalErr, err), jr.Added+len(kept), jr.Path(".journal"), opt.again+" --resume --name "+name)
	}
	if err := jr.Finish(); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return interrupted{fmt.Sprintf("interrupted: %d of %d cells saved in %s; resume with:\n  %s --resume --name %s", len(finished), len(all), path, opt.again, name)}
	}
	if err := report.Print(stdout, cfg.Format, doc, cfg.Columns, cfg.Out, name); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "dmabench: %d cells in %.1fs; results in %s\n", len(cs), time.Since(start).Seconds(), path)
	return nil
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
