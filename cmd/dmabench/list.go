package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dmabench/dmabench/metrics"
	"github.com/dmabench/dmabench/registry"
)

// listKinds are what list shows, in order.
var listKinds = []string{"allocators", "platforms", "workloads", "metrics"}

func newListCmd(stdout io.Writer) *cobra.Command {
	var configFile string
	cmd := &cobra.Command{
		Use:       "list [allocators|platforms|workloads|metrics]",
		Short:     "List the models, workloads and metrics this build knows",
		ValidArgs: listKinds,
		Args:      usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			kinds := listKinds
			if len(args) == 1 {
				if !slices.Contains(listKinds, args[0]) {
					return usagef("list: unknown kind %q (valid: %s)", args[0], strings.Join(listKinds, ", "))
				}
				kinds = args[:1]
			}
			cfg, err := loadConfig(configFile, nil)
			if err != nil {
				return err
			}
			for _, k := range kinds {
				var es []registry.Entry
				switch k {
				case "allocators":
					es = registry.Allocators()
				case "platforms":
					es = registry.Platforms()
				case "workloads":
					es = registry.Workloads(cfg)
				case "metrics":
					es = metricEntries()
				}
				fmt.Fprintf(stdout, "%s:\n", k)
				w := 15
				for _, e := range es {
					w = max(w, len(e.Name))
				}
				for _, e := range es {
					fmt.Fprintf(stdout, "  %-*s %s\n", w, e.Name, e.Doc)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&configFile, "config", "c", "", "config file whose scenarios to list too")
	return cmd
}

// metricEntries lists the metric catalog: unit, which way is better,
// modeled or host, and meaning.
func metricEntries() []registry.Entry {
	var es []registry.Entry
	for _, d := range metrics.Catalog {
		kind := "modeled"
		if !d.Exact {
			kind = "host"
		}
		doc := fmt.Sprintf("%-8s %-7s %-7s %s", d.Unit, d.Better, kind, d.Meaning)
		if d.When != "" {
			doc += " (only in " + d.When + ")"
		}
		es = append(es, registry.Entry{Name: d.Key, Doc: doc})
	}
	return es
}
