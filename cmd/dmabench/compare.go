package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dmabench/dmabench/cells"
	"github.com/dmabench/dmabench/metrics"
	"github.com/dmabench/dmabench/report"
)

// errRegression makes compare exit 1.
type errRegression struct{ what []string }

func (e errRegression) Error() string {
	return fmt.Sprintf("%d significant regressions: %s", len(e.what), strings.Join(e.what, "; "))
}

func newCompareCmd(stdout io.Writer) *cobra.Command {
	var metricKeys []string
	var threshold, alpha float64
	var holm bool
	var allow []string
	var format string
	var onlyChanged bool
	cmd := &cobra.Command{
		Use:   "compare OLD.json NEW.json",
		Short: "Compare two results and fail on a significant regression",
		Long: `compare matches the cells of two results and compares each metric's
per-seed samples: modeled metrics exactly (they are deterministic for a
seed; the default metrics), host timings, when named with --metric (they
drift between runs: compare two runs made side by side), with a
Mann-Whitney U test, as benchstat does
(golang.org/x/perf), their p-values adjusted for the number of cells
tested (Holm-Bonferroni; --holm=false tests each cell alone, as benchstat
does, and then a result compared with itself over 30 cells shows a
"significant" change in about one of them). It prints old, new, delta and
p per cell ("~": no significant change) and a geometric mean per metric.
Exit status: 1 when a
chosen metric got significantly worse by more than --threshold percent, 2
when the results cannot be compared (cells that do not match are listed),
0 otherwise.`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if alpha <= 0 || alpha >= 1 || threshold < 0 {
				return usagef("compare: --alpha must be in (0,1) and --threshold >= 0")
			}
			for _, m := range metricKeys {
				if _, ok := metrics.Lookup(m); !ok {
					return usagef("compare: --metric %q: unknown metric (valid: %s)", m, strings.Join(metrics.Keys(), ", "))
				}
			}
			docs, err := readDocuments(args)
			if err != nil {
				return err
			}
			old, new := docs[0], docs[1]
			if d := cells.ConfigDiff(old.Config, new.Config, allow...); len(d) > 0 {
				return usagef("compare: %s and %s were measured with other settings: %s", args[0], args[1], cells.Incomparable(old.Config, new.Config, d))
			}
			changes, missing := report.Compare(old, new, report.CompareOptions{Metrics: metricKeys, Threshold: threshold, Alpha: alpha, Holm: holm})
			if len(missing) > 0 {
				return usagef("compare: cells do not match:\n  %s", strings.Join(missing, "\n  "))
			}
			if !slices.Contains(report.CompareFormats, format) {
				return usagef("compare: -f %q: valid formats are %s", format, strings.Join(report.CompareFormats, ", "))
			}
			if s1, s2 := cells.SeedSet(old), cells.SeedSet(new); s1 != s2 {
				fmt.Fprintf(stdout, "note: the seeds differ (%s: %s; %s: %s); each cell compares all its seeds as samples\n", args[0], s1, args[1], s2)
			}
			if err := report.WriteCompare(stdout, format, changes, metricKeys, threshold, onlyChanged); err != nil {
				return err
			}
			for _, note := range report.Unreachable(changes, alpha) {
				fmt.Fprintln(stdout, note)
			}
			if note := report.HostNote(metricKeys, !cmd.Flags().Changed("metric")); note != "" {
				fmt.Fprintln(stdout, note)
			}
			if bad := report.Regressions(changes); len(bad) > 0 {
				return errRegression{bad}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&metricKeys, "metric", report.CompareMetrics, "metrics to compare (host timings only when named)")
	f.StringVarP(&format, "format", "f", "table", "output: table, markdown, or gha (GitHub ::error/::notice annotations)")
	f.BoolVar(&onlyChanged, "only-changed", false, "show only the significant changes")
	f.Float64Var(&threshold, "threshold", 5, "percent a metric may get worse before compare fails")
	f.Float64Var(&alpha, "alpha", 0.05, "significance level")
	f.StringSliceVar(&allow, "allow", nil, "config `KEYS` (dotted, as in config.yaml; a section allows every key below it) that may differ between the two results: the knobs an A/B changes")
	f.BoolVar(&holm, "holm", true, "adjust p-values for the number of cells compared (Holm-Bonferroni)")
	return cmd
}
