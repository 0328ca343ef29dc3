package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

func newListCmd(stdout io.Writer) *cobra.Command {
	var configFile string
	cmd := &cobra.Command{
		Use:       "list [allocators|platforms|workloads]",
		Short:     "List the models and workloads this build knows",
		ValidArgs: []string{"allocators", "platforms", "workloads"},
		Args:      usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			what := "all"
			if len(args) == 1 {
				what = args[0]
			}
			show := func(title string, rows [][2]string) {
				fmt.Fprintf(stdout, "%s:\n", title)
				w := 15
				for _, r := range rows {
					w = max(w, len(r[0]))
				}
				for _, r := range rows {
					fmt.Fprintf(stdout, "  %-*s %s\n", w, r[0], r[1])
				}
			}
			cfg, err := loadConfig(configFile, nil)
			if err != nil {
				return err
			}
			var a, p, w [][2]string
			for _, e := range allocatorTable() {
				a = append(a, [2]string{e.name, e.doc})
			}
			for _, e := range platforms {
				p = append(p, [2]string{e.name, e.doc})
			}
			for _, e := range workloads {
				w = append(w, [2]string{e.name, e.doc})
			}
			for _, name := range scenarioNames(cfg) {
				sc := cfg.Scenario[name]
				doc := "scenario: " + strings.Join(sc.Workloads, " + ") + " on one machine"
				for _, wl := range sc.Workloads {
					if ms := sc.StartMS[wl]; ms > 0 {
						doc += fmt.Sprintf(", %s starting at %d ms", wl, ms)
					}
				}
				if set := sc.settings(); len(set) > 0 {
					doc += "; " + strings.Join(set, ", ")
				}
				w = append(w, [2]string{name, doc})
			}
			switch what {
			case "allocators":
				show("allocators", a)
			case "platforms":
				show("platforms", p)
			case "workloads":
				show("workloads", w)
			case "all":
				show("allocators", a)
				show("platforms", p)
				show("workloads", w)
			default:
				return usagef("list: unknown kind %q (valid: allocators, platforms, workloads)", what)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&configFile, "config", "c", "", "config file whose scenarios to list too")
	return cmd
}
