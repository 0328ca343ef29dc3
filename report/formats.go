package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dmabench/dmabench/cells"
)

// Formats are the outputs Print knows, the first the default.
var Formats = []string{"summary", "table", "markdown", "csv", "json", "benchfmt", "gha"}

// Save writes a run's results file dir/name.json and its Go benchmark
// twin dir/name.bench, atomically and together (both or neither), and
// returns the .json's path.
func Save(dir, name string, doc *cells.Document) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path, bench := filepath.Join(dir, name+".json"), filepath.Join(dir, name+".bench")
	err := WriteAtomicAll([]string{bench, path}, []func(io.Writer) error{
		func(w io.Writer) error { return WriteBench(w, doc) },
		func(w io.Writer) error { return EncodeJSON(w, doc) },
	})
	if err != nil {
		return "", fmt.Errorf("writing %s and %s: %w", path, bench, err)
	}
	return path, nil
}

// Print writes doc to w in format (one of Formats), with columns as the
// extra metrics of the table and Markdown outputs. gha writes
// github-action-benchmark's two files beside the results, dir/name-*.json,
// and names them on w.
func Print(w io.Writer, format string, doc *cells.Document, columns []string, dir, name string) error {
	switch format {
	case "json":
		return EncodeJSON(w, doc)
	case "benchfmt":
		return WriteBench(w, doc)
	case "csv":
		return WriteCSV(w, doc)
	case "markdown":
		return WriteMarkdown(w, doc, columns)
	case "gha":
		return writeGHA(dir, name, w, doc)
	case "table":
		return Table(w, doc.Cells, columns)
	case "summary", "":
		return Summary(w, doc, filepath.Join(dir, name+".json"))
	}
	return fmt.Errorf("format %q: valid formats are %v", format, Formats)
}

// writeGHA writes github-action-benchmark's two files (bigger and smaller
// is better) beside the results and names them.
func writeGHA(dir, name string, stdout io.Writer, doc *cells.Document) error {
	bigger, smaller := GHA(doc)
	for _, f := range []struct {
		suffix  string
		entries []GHAEntry
	}{{"-bigger.json", bigger}, {"-smaller.json", smaller}} {
		path := filepath.Join(dir, name+f.suffix)
		if err := WriteAtomic(path, func(w io.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(f.entries)
		}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %d entries (github-action-benchmark customBiggerIsBetter/customSmallerIsBetter)\n", path, len(f.entries))
	}
	return nil
}
