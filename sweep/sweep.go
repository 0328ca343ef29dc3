// Package sweep runs a configuration's cells as one named run that loses
// no finished work: it takes the name's lock (package journal), resumes
// from what an earlier run of the name finished, appends every finished
// cell to the journal, stops cleanly when asked, and writes the results
// file and its .bench together at the end.
package sweep

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dmabench/dmabench/cells"
	"github.com/dmabench/dmabench/journal"
	"github.com/dmabench/dmabench/matrix"
	"github.com/dmabench/dmabench/progress"
	"github.com/dmabench/dmabench/registry"
	"github.com/dmabench/dmabench/report"
	"github.com/dmabench/dmabench/workloads/trace"
)

// Options say how to run a configuration's cells.
type Options struct {
	// ShardI of ShardN: the run takes every ShardN-th cell (matrix.Shard).
	ShardI, ShardN int
	// Resume skips the cells the results file or journal of the name
	// already holds.
	Resume bool
	// Progress is the progress mode (progress.Modes).
	Progress string
	// Again is the command line that resumes this run, without --resume
	// and --name, which Run adds.
	Again string
	// Stop, when done, stops the run after saving what was finished.
	Stop context.Context
	// Stdout gets the results in the configured format; Stderr progress
	// and the closing line.
	Stdout, Stderr io.Writer
}

// Interrupted is the error of a run that Stop stopped after saving what
// was finished; it says how many cells and the command that resumes.
type Interrupted struct{ Msg string }

func (e *Interrupted) Error() string { return e.Msg }

// Run runs cfg's cells as one named run: under the name's lock, every
// finished cell appended to the journal, the results file and its .bench
// written together at the end, or when Stop stops the run, with the cells
// finished by then. Bad input is a registry.UsageError; an environment
// failure (the disk) any other error, which says where the finished cells
// are and how to resume.
func Run(cfg *registry.Config, opt Options) error {
	stdout, stderr := opt.Stdout, opt.Stderr
	all := registry.Cells(cfg)
	cs := all
	if opt.ShardN > 1 {
		cs = matrix.Shard(all, opt.ShardI, opt.ShardN)
	}
	if !slices.Contains(progress.Modes, opt.Progress) && opt.Progress != "" {
		return registry.Usagef("--progress %q: valid values are %s", opt.Progress, strings.Join(progress.Modes, ", "))
	}
	start := time.Now()
	name := cfg.Name
	if name == "" {
		name = start.UTC().Format("20060102T150405Z")
	}
	jr, err := journal.Open(cfg.Out, name)
	if errors.Is(err, journal.ErrLocked) {
		return registry.UsageError{Err: err}
	}
	if err != nil {
		return err
	}
	defer jr.Close()
	var kept []matrix.Result
	if opt.Resume {
		if kept, err = jr.Resume(cfg); err != nil {
			return registry.UsageError{Err: err}
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
	mode := opt.Progress
	if mode == "" {
		mode = "none"
	}
	pr, err := progress.New(mode, stderr, len(cs), cfg.Events)
	if err != nil {
		return registry.UsageError{Err: err}
	}
	// Stop stops the run; a journal that cannot be written (a full
	// disk) stops it too.
	parent := opt.Stop
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := context.WithCancel(parent)
	defer stop()
	var journalErr error
	var once sync.Once
	results := matrix.Run(cs, registry.NewBuilder(cfg), matrix.Options{Events: cfg.Events, Jobs: cfg.Jobs, Stop: ctx.Done(),
		Done: func(_ int, r *matrix.Result) {
			if err := jr.Add(r); err != nil {
				once.Do(func() { journalErr = err; stop() })
			}
			pr.Cell(int64(r.Metrics["events"]))
		},
		Progress: pr.Events})
	pr.Wait()
	finished := kept
	for _, r := range results {
		switch {
		case r.Err == nil:
			finished = append(finished, r)
		case !errors.Is(r.Err, matrix.ErrStopped):
			if jr.Added == 0 && !opt.Resume {
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
				return registry.UsageError{Err: err}
			}
			if doc.Traces == nil {
				doc.Traces = map[string]string{}
			}
			doc.Traces[path] = sum
		}
	}
	path, err := report.Save(cfg.Out, name, doc)
	if err != nil || journalErr != nil {
		return fmt.Errorf("%w; the %d cells finished are in %s: %s", errors.Join(journalErr, err), jr.Added+len(kept), jr.Path(".journal"), opt.Again+" --resume --name "+name)
	}
	if err := jr.Finish(); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return &Interrupted{fmt.Sprintf("interrupted: %d of %d cells saved in %s; resume with:\n  %s --resume --name %s", len(finished), len(all), path, opt.Again, name)}
	}
	if err := report.Print(stdout, cfg.Format, doc, cfg.Columns, cfg.Out, name); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "dmabench: %d cells in %.1fs; results in %s\n", len(cs), time.Since(start).Seconds(), path)
	return nil
}
