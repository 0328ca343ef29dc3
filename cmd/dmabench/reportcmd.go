package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dmabench/dmabench/report"
)

func newReportCmd(stdout io.Writer) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "report RESULTS.json... -o report.html|report.md",
		Short: "Write a design comparison report with charts",
		Long: `report writes which allocator wins on each platform and metric, charts
(throughput and memory per allocator and platform, latency percentiles,
fragmentation indices by order, GFP_ATOMIC pressure) and a table per
metric. HTML is one self-contained file with inline SVG that opens
offline; Markdown links SVG files written into a folder beside it.`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			if !strings.HasSuffix(out, ".html") && !strings.HasSuffix(out, ".md") {
				return usagef("report: -o must name a .html or .md file")
			}
			docs, err := readDocuments(args)
			if err != nil {
				return err
			}
			if err := report.WriteReport(out, docs, args); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: report of %d results\n", out, len(docs))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "report file: .html or .md")
	return cmd
}
