package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dmabench/dmabench/report"
)

func newReportCmd(stdout io.Writer) *cobra.Command {
	var out, baseline string
	cmd := &cobra.Command{
		Use:   "report RESULTS.json... -o report.html|report.md|report.txt",
		Short: "Write a design comparison report, or an A/B report against a baseline",
		Long: `report writes which allocator wins on each platform and metric (named
only when the difference is beyond noise), charts and a table per metric:
HTML is one self-contained file, Markdown links SVG charts beside it, and
.txt is plain text wrapped at 72 columns for a mail. With --baseline OLD,
or two results measured with other settings, it writes an A/B report
instead: before and after side by side, never an average of the two.`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			if ext := filepath.Ext(out); ext != ".html" && ext != ".md" && ext != ".txt" {
				return usagef("report: -o must name a .html, .md or .txt file")
			}
			if baseline != "" {
				args = append([]string{baseline}, args...)
			}
			docs, err := readDocuments(args)
			if err != nil {
				return err
			}
			if baseline != "" && len(docs) != 2 {
				return usagef("report --baseline OLD: give one results file to set against it")
			}
			if err := report.WriteAny(out, docs, args, baseline != ""); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: a report of %s\n", out, strings.Join(args, ", "))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "report `FILE`: .html, .md or .txt")
	cmd.Flags().StringVar(&baseline, "baseline", "", "the results `FILE` to set the new one against (an A/B report)")
	return cmd
}
