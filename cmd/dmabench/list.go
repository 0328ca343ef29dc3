package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/dmabench/dmabench/registry"
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
			rows := func(es []registry.Entry) [][2]string {
				var out [][2]string
				for _, e := range es {
					out = append(out, [2]string{e.Name, e.Doc})
				}
				return out
			}
			a, p, w := rows(registry.Allocators()), rows(registry.Platforms()), rows(registry.Workloads(cfg))
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
