package dmabench_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/dmabench/dmabench"

// allowed lists, per package directory pattern, the packages of this module
// its non-test code may import. Imports point one way, down:
//
//	cmd -> report -> cells -> dma
//	cmd -> registry -> matrix -> metrics -> engine -> dma
//	       registry -> {allocators, platforms, workloads, scenario} -> dma
//	cmd -> bench -> matrix; cmd -> ftrace -> workloads/trace
//
// A pattern ending in /* matches every package below that folder.
// TestNoFolderCycle checks that no folder reaches back to itself.
var allowed = []struct {
	pkg string
	may []string
}{
	{pkg: ".", may: nil},
	{pkg: "dma", may: nil},
	{pkg: "engine", may: []string{"dma"}},
	{pkg: "metrics", may: []string{"dma", "engine"}},
	{pkg: "cells", may: []string{".", "dma"}},
	{pkg: "matrix", may: []string{".", "dma", "engine", "metrics", "cells", "workloads/trace"}},
	{pkg: "report", may: []string{".", "dma", "cells", "metrics"}},
	// The kernel code's allocators take the cost tables and layouts of
	// the models of its designs.
	{pkg: "allocators/kernelpool", may: []string{"dma", "kernel", "allocators/dmapool", "allocators/dmapool26", "allocators/mempool"}},
	{pkg: "allocators/*", may: []string{"dma"}},
	{pkg: "platforms/pagealloc", may: []string{"dma"}},
	{pkg: "platforms/swiotlb", may: []string{"dma"}},
	{pkg: "platforms/*", may: []string{"dma", "platforms/pagealloc", "platforms/swiotlb"}},
	{pkg: "workloads/driver", may: []string{"dma"}},
	{pkg: "workloads/*", may: []string{"dma", "workloads/driver"}},
	{pkg: "scenario", may: []string{"dma"}},
	{pkg: "ftrace", may: []string{".", "dma", "workloads/driver", "workloads/trace"}},
	{pkg: "bench", may: []string{"dma", "engine", "metrics", "matrix", "workloads/trace"}},
	{pkg: "registry", may: []string{".", "dma", "engine", "kernel", "matrix", "metrics", "scenario", "allocators/*", "platforms/*", "workloads/*"}},
	{pkg: "progress", may: nil},
	{pkg: "kernel", may: nil},
	{pkg: "journal", may: []string{"cells"}},
	{pkg: "sweep", may: []string{"cells", "journal", "matrix", "progress", "registry", "report", "workloads/trace"}},
	{pkg: "sizing", may: []string{"matrix", "platforms/swiotlb", "registry"}},
	{pkg: "validate", may: []string{"allocators/*", "dma", "engine", "ftrace", "kernel", "workloads/trace"}},
	{pkg: "cmd/dmabench", may: []string{"*"}},
}

// TestNoFolderCycle: no top-level folder imports, through any chain of the
// allowed imports, a package of its own folder from another folder (engine
// may not import metrics/x while metrics imports engine).
func TestNoFolderCycle(t *testing.T) {
	top := func(p string) string { f, _, _ := strings.Cut(p, "/"); return f }
	edges := map[string]map[string]bool{}
	for _, r := range allowed {
		for _, m := range r.may {
			if m == "*" {
				continue
			}
			from, to := top(r.pkg), top(strings.TrimSuffix(m, "/*"))
			if from == to {
				continue
			}
			if edges[from] == nil {
				edges[from] = map[string]bool{}
			}
			edges[from][to] = true
		}
	}
	var visit func(start, at string, seen map[string]bool)
	visit = func(start, at string, seen map[string]bool) {
		for next := range edges[at] {
			if next == start {
				t.Errorf("folder %s reaches itself through %s", start, at)
				continue
			}
			if !seen[next] {
				seen[next] = true
				visit(start, next, seen)
			}
		}
	}
	for f := range edges {
		visit(f, f, map[string]bool{})
	}
}

// onlyCmd are third-party packages only cmd/dmabench may use, and the
// packages besides it that may: the command line's; the config loader's,
// which registry owns with the config.
var onlyCmd = map[string][]string{
	"github.com/spf13/cobra": nil,
	"github.com/spf13/viper": {"registry"},
	"github.com/spf13/pflag": {"registry"},
}

func rulesFor(dir string) ([]string, bool) {
	for _, r := range allowed {
		if r.pkg == dir {
			return r.may, true
		}
		if base, ok := strings.CutSuffix(r.pkg, "/*"); ok && strings.HasPrefix(dir, base+"/") {
			return r.may, true
		}
	}
	return nil, false
}

func TestImportDirection(t *testing.T) {
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		may, ok := rulesFor(dir)
		if !ok {
			t.Errorf("%s: package %s has no import rule; add it to the allowed table", path, dir)
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			for c, also := range onlyCmd {
				if strings.HasPrefix(p, c) && dir != "cmd/dmabench" && !slices.Contains(also, dir) {
					t.Errorf("%s imports %s: only cmd/dmabench may", path, p)
				}
			}
			if p != module && !strings.HasPrefix(p, module+"/") {
				continue
			}
			rel := strings.TrimPrefix(strings.TrimPrefix(p, module), "/")
			if rel == "" {
				rel = "."
			}
			ok := false
			for _, m := range may {
				base, sub := strings.CutSuffix(m, "/*")
				if m == "*" || m == rel || sub && strings.HasPrefix(rel, base+"/") {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s imports %s: %s may import only %v", path, rel, dir, may)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 10 {
		t.Fatalf("checked only %d files", checked)
	}
}

// TestCmdOnlyWires: cmd/dmabench stays the command line's wiring, at most
// 1,000 lines outside its tests; logic belongs in the packages below it.
func TestCmdOnlyWires(t *testing.T) {
	files, err := filepath.Glob("cmd/dmabench/*.go")
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines += strings.Count(string(data), "\n")
	}
	if lines > 1000 {
		t.Errorf("cmd/dmabench has %d lines outside its tests: move logic into a package (at most 1,000)", lines)
	}
}
