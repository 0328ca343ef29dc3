package validate

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/kernel"
)

// kernelTrees returns the trees to validate (see registry's kernelTree).
func kernelTrees(t *testing.T) []string {
	if s := os.Getenv("DMABENCH_KERNEL_TREES"); s != "" {
		return strings.Split(s, ",")
	}
	var trees []string
	for _, v := range []string{"6.1", "6.12"} {
		p := "/usr/src/linux-source-" + v + ".tar.xz"
		if _, err := os.Stat(p); err == nil {
			trees = append(trees, p)
		} else if os.Getenv("DMABENCH_REQUIRE_KERNEL") != "" {
			t.Fatalf("no %s (DMABENCH_REQUIRE_KERNEL is set)", p)
		}
	}
	if len(trees) == 0 {
		t.Skip("no kernel tree: install linux-source-6.1 and linux-source-6.12 (.ci/run does) or set DMABENCH_KERNEL_TREES")
	}
	return trees
}

// TestKernelDifferential: each tree's dma_pool hands out, operation by
// operation, the addresses of the Go model of its design (6.12: dmapool;
// 6.1: dmapool-2.6) over random sequences on every layout rule.
func TestKernelDifferential(t *testing.T) {
	for _, tree := range kernelTrees(t) {
		b, err := kernel.OpenBackend(tree)
		if errors.Is(err, kernel.ErrUnavailable) && os.Getenv("DMABENCH_REQUIRE_KERNEL") == "" {
			t.Skip(err)
		}
		if err != nil {
			t.Fatal(err)
		}
		r, err := Kernel(b, 5, 20_000, nil, func(string) ([]dma.Source, error) { return nil, nil })
		if err != nil {
			t.Fatal(err)
		}
		if r.Matched != r.Total || r.Total < 100_000 {
			var sb strings.Builder
			r.Write(&sb)
			t.Fatalf("%s:\n%s", tree, sb.String())
		}
		t.Logf("%s: %s: matched %d of %d", tree, r.Name, r.Matched, r.Total)
	}
}
