package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/dmabench/dmabench/cells"
	"github.com/dmabench/dmabench/registry"
	"github.com/dmabench/dmabench/report"
)

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
			docs, err := readDocuments(args)
			if err != nil {
				return err
			}
			doc, err := cells.Merge(args, docs, expectedCells)
			if err != nil {
				return usageError{Err: err}
			}
			if err := report.WriteAtomic(out, func(w io.Writer) error { return report.EncodeJSON(w, doc) }); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: %d cells from %d shards\n", out, len(doc.Cells), len(args))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "merged results file")
	return cmd
}

// readDocuments reads results files given as inputs (compare, merge,
// report): see cells.ReadInputs.
func readDocuments(paths []string) ([]*cells.Document, error) {
	docs, err := cells.ReadInputs(paths, expectedCells)
	if err != nil {
		return nil, usageError{Err: err}
	}
	return docs, nil
}

// expectedCells returns the cells a results file's configuration has.
func expectedCells(raw json.RawMessage) ([]cells.Cell, error) {
	var cfg Config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, err
	}
	return registry.Cells(&cfg), nil
}
