package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dmabench/dmabench/cells"
	"github.com/dmabench/dmabench/matrix"
	"github.com/dmabench/dmabench/registry"
	"github.com/dmabench/dmabench/report"
)

// shardSpec is "i/N" (1 <= i <= N), or "N" with i taken from the
// environment of an indexed job.
func parseShard(s string) (i, n int, err error) {
	if s == "" {
		return 1, 1, nil
	}
	is, ns, explicit := strings.Cut(s, "/")
	if !explicit {
		ns = is
	}
	n, err = strconv.Atoi(ns)
	if err != nil || n < 1 {
		return 0, 0, usagef("--shard %q: want i/N or N", s)
	}
	if explicit {
		i, err = strconv.Atoi(is)
		if err != nil || i < 1 || i > n {
			return 0, 0, usagef("--shard %q: want 1 <= i <= N", s)
		}
		return i, n, nil
	}
	for _, env := range []string{"JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"} {
		if v := os.Getenv(env); v != "" {
			k, err := strconv.Atoi(v)
			if err != nil || k < 0 || k >= n {
				return 0, 0, usagef("--shard %d: %s=%q is not an index in 0..%d", n, env, v, n-1)
			}
			return k + 1, n, nil
		}
	}
	return 0, 0, usagef("--shard %d: no shard index: give i/%d or set JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID", n, n)
}

// shardCells keeps every n-th cell starting at the i-th: a deterministic
// slice that spreads workloads evenly over shards.
func shardCells(cells []matrix.Cell, i, n int) []matrix.Cell {
	var out []matrix.Cell
	for k, c := range cells {
		if k%n == i-1 {
			out = append(out, c)
		}
	}
	return out
}

// existingCells reads a results file's cells (for --resume).
func existingCells(path string) ([]matrix.Result, error) {
	doc, err := cells.ReadDocument(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return doc.Cells, nil
}

// order sorts results into the order of the full cell list.
func order(all []matrix.Cell, results []matrix.Result) []matrix.Result {
	pos := map[matrix.Cell]int{}
	for i, c := range all {
		pos[c] = i
	}
	out := make([]matrix.Result, 0, len(results))
	out = append(out, results...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && pos[out[j].Cell] < pos[out[j-1].Cell]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func newMergeCmd(stdout io.Writer) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "merge SHARD.json... -o FILE",
		Short: "Join the results of a sharded sweep, naming any missing cell",
		Args:  usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			if out == "" {
				return usagef("merge: -o FILE is required")
			}
			var first *cells.Document
			var results []matrix.Result
			seen := map[matrix.Cell]bool{}
			var cfg Config
			for i, path := range args {
				data, err := os.ReadFile(path)
				if err != nil {
					return usageError{Err: err}
				}
				doc, err := cells.ParseDocument(path, data)
				if err != nil {
					return usageError{Err: err}
				}
				if i == 0 {
					first = doc
					if err := json.Unmarshal(doc.Config.(json.RawMessage), &cfg); err != nil {
						return usagef("%s: config: %v", path, err)
					}
				} else if report.ConfigHash(doc.Config) != report.ConfigHash(first.Config) {
					return usagef("%s: measured another configuration than %s", path, args[0])
				}
				for _, r := range doc.Cells {
					if seen[r.Cell] {
						return usagef("%s: cell %s appears twice", path, r.Cell)
					}
					seen[r.Cell] = true
					results = append(results, r)
				}
			}
			all := registry.Cells(&cfg)
			var missing []string
			for _, c := range all {
				if !seen[c] {
					missing = append(missing, c.String())
				}
			}
			if len(missing) > 0 {
				return usagef("merge: %d cells missing:\n  %s", len(missing), strings.Join(missing, "\n  "))
			}
			doc := cells.NewDocument(first.Config, order(all, results))
			if err := atomicFile(out, func(w io.Writer) error { return report.EncodeJSON(w, doc) }); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: %d cells from %d shards\n", out, len(results), len(args))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "merged results file")
	return cmd
}
