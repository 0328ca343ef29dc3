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
			var docs []*cells.Document
			for _, path := range args {
				data, err := os.ReadFile(path)
				if err != nil {
					return usageError{Err: err}
				}
				doc, err := cells.ParseDocument(path, data)
				if err != nil {
					return usageError{Err: err}
				}
				docs = append(docs, doc)
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
