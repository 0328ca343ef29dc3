// Package report writes run results: the versioned JSON results document
// (written atomically) and the terminal table.
package report

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/montanaflynn/stats"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/dmabench/dmabench/cells"
	"github.com/dmabench/dmabench/metrics"
)

// EncodeJSON writes the document as indented JSON.
func EncodeJSON(w io.Writer, doc *cells.Document) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// WriteAtomic writes path through a temporary file in the same folder,
// synced and renamed into place only when everything was written, so a
// reader never sees half a file, a failure (a full disk) leaves none, and
// a symbolic link planted at path is replaced, never written through. A
// path ending in .gz is gzip-compressed. The file is readable by all
// (0644).
func WriteAtomic(path string, write func(io.Writer) error) error {
	return WriteAtomicAll([]string{path}, []func(io.Writer) error{write})
}

// WriteAtomicAll writes each path as WriteAtomic does, renaming them into
// place, in order, only when every one was written: files that belong
// together (a results file and its .bench) come from the same run, or
// none is written.
func WriteAtomicAll(paths []string, writes []func(io.Writer) error) error {
	tmps := make([]string, 0, len(paths))
	clean := func() {
		for _, t := range tmps {
			os.Remove(t)
		}
	}
	for i, path := range paths {
		tmp, err := writeTemp(path, writes[i])
		if err != nil {
			clean()
			return err
		}
		tmps = append(tmps, tmp)
	}
	for i, path := range paths {
		if err := os.Rename(tmps[i], path); err != nil {
			clean()
			return err
		}
	}
	return nil
}

// writeTemp writes a synced temporary file beside path and returns its
// name.
func writeTemp(path string, write func(io.Writer) error) (string, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return "", err
	}
	bw := bufio.NewWriterSize(tmp, 1<<16)
	var w io.Writer = bw
	var zw *gzip.Writer
	if strings.HasSuffix(path, ".gz") {
		zw = gzip.NewWriter(bw)
		w = zw
	}
	err = write(w)
	if err == nil && zw != nil {
		err = zw.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return tmp.Name(), nil
}

type group struct {
	scenario, allocator, platform string
	cells                         []map[string]float64
	refused                       string
}

// groups gathers cells that differ only by seed, in first-seen order.
func groups(results []cells.Result) []*group {
	var out []*group
	index := map[string]*group{}
	for _, r := range results {
		key := r.Scenario + "\x00" + r.Allocator + "\x00" + r.Platform
		g := index[key]
		if g == nil {
			g = &group{scenario: r.Scenario, allocator: r.Allocator, platform: r.Platform}
			index[key] = g
			out = append(out, g)
		}
		if r.Refused != "" {
			g.refused = r.Refused
			continue
		}
		g.cells = append(g.cells, r.Metrics)
	}
	return out
}

func (g *group) values(key string) []float64 {
	v := make([]float64, len(g.cells))
	for i, c := range g.cells {
		v[i] = c[key]
	}
	return v
}

func (g *group) mean(key string) float64 {
	m, _ := stats.Mean(g.values(key))
	return m
}

func (g *group) median(key string) float64 {
	m, _ := stats.Median(g.values(key))
	return m
}

// TableColumns are the metrics the full table shows, before any the
// user names.
var TableColumns = []string{"events", "allocs", "failure_rate", "atomic_share", "peak_live_bytes",
	"peak_reserved_bytes", "frag_internal", "frag_peak_ratio", "modeled_ops_per_sec", "host_ns_per_op"}

// column is a column's value for a person: the median over seeds, and,
// when the seeds differ, their range: "median [min–max]", each in the
// unit the catalog declares; "<res" for a host cost below what the
// measurement resolves; empty when no seed reports it.
func (g *group) column(key string) string {
	var vals []float64
	for _, c := range g.cells {
		if v, ok := c[key]; ok {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return ""
	}
	d, _ := metrics.Lookup(key)
	if key == "host_ns_per_op" && g.median("host_resolved") < 1 {
		return "<res" // below what the measurement resolves
	}
	med, _ := stats.Median(vals)
	lo, hi := d.Human(slices.Min(vals)), d.Human(slices.Max(vals))
	if lo == hi { // the seeds agree, or differ below what is printed
		return d.Human(med)
	}
	return d.Human(med) + " [" + lo + "–" + hi + "]"
}

// TableNote says what the table's values are.
const TableNote = "median over seeds [min–max where the seeds differ]; host costs in thread CPU time with the harness's own (the null allocator's) subtracted; <res: below what the measurement resolves"

// Table prints one row per scenario, allocator and platform with the
// TableColumns and then columns (see column and TableNote).
func Table(w io.Writer, results []cells.Result, columns []string) error {
	t := tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off), tablewriter.WithRowAlignment(tw.AlignRight))
	keys := append(slices.Clone(TableColumns), columns...)
	heads := []any{"scenario", "allocator", "platform", "seeds"}
	for _, k := range keys {
		heads = append(heads, k)
	}
	t.Header(heads...)
	for _, g := range groups(results) {
		if len(g.cells) == 0 {
			row := []any{g.scenario, g.allocator, g.platform, "refused"}
			for len(row) < len(heads) {
				row = append(row, "")
			}
			if err := t.Append(row...); err != nil {
				return err
			}
			continue
		}
		row := []any{g.scenario, g.allocator, g.platform, fmt.Sprint(len(g.cells))}
		for _, k := range keys {
			row = append(row, g.column(k))
		}
		if err := t.Append(row...); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, TableNote)
	if err != nil {
		return err
	}
	return strictLazy(w, groups(results))
}

// strictLazy prints, for each scenario and allocator run both behind the
// strict and the lazy IOMMU, the ratio of their modeled throughput.
func strictLazy(w io.Writer, gs []*group) error {
	for _, s := range gs {
		if s.platform != "iommu" {
			continue
		}
		for _, l := range gs {
			if l.platform == "iommu-lazy" && l.scenario == s.scenario && l.allocator == s.allocator {
				st, lz := s.mean("modeled_ops_per_sec"), l.mean("modeled_ops_per_sec")
				if st > 0 {
					if _, err := fmt.Fprintf(w, "%s/%s: iommu strict %.2f Mops/s, lazy %.2f Mops/s: lazy/strict = %.2f\n",
						s.scenario, s.allocator, st/1e6, lz/1e6, lz/st); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// MetricKeys returns the sorted metric names present in results.
func MetricKeys(results []cells.Result) []string {
	seen := map[string]bool{}
	for _, r := range results {
		for k := range r.Metrics {
			seen[k] = true
		}
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
