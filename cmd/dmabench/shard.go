package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

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
			doc, err := cells.Merge(args, docs, func(raw json.RawMessage) ([]cells.Cell, error) {
				var cfg Config
				if err := json.Unmarshal(raw, &cfg); err != nil {
					return nil, err
				}
				return registry.Cells(&cfg), nil
			})
			if err != nil {
				return usageError{Err: err}
			}
			if err := atomicFile(out, func(w io.Writer) error { return report.EncodeJSON(w, doc) }); err != nil {
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
// report): each once (the same file twice is bad input), each holding
// only cells of its own configuration.
func readDocuments(paths []string) ([]*cells.Document, error) {
	var docs []*cells.Document
	var seen []os.FileInfo
	for _, path := range paths {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, usageError{Err: err}
		}
		for i, s := range seen {
			if os.SameFile(fi, s) {
				return nil, usagef("%s: the same file as %s, given twice", path, paths[i])
			}
		}
		seen = append(seen, fi)
		doc, err := cells.ReadDocument(path)
		if err != nil {
			return nil, usageError{Err: err}
		}
		var cfg Config
		if err := json.Unmarshal(doc.Config.(json.RawMessage), &cfg); err != nil {
			return nil, usagef("%s: config: %v", path, err)
		}
		if err := cells.CheckCells(path, doc, registry.Cells(&cfg)); err != nil {
			return nil, usageError{Err: err}
		}
		docs = append(docs, doc)
	}
	return docs, nil
}
