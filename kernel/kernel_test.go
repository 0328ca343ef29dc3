package kernel

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Trees returns the kernel trees the tests use: DMABENCH_KERNEL_TREES (a
// comma-separated list), or Debian's linux-source tarballs in /usr/src.
func Trees(t testing.TB) []string {
	if s := os.Getenv("DMABENCH_KERNEL_TREES"); s != "" {
		return strings.Split(s, ",")
	}
	trees, _ := filepath.Glob("/usr/src/linux-source-*.tar.xz")
	if len(trees) == 0 {
		t.Skip("no kernel tree: install linux-source-6.1 and linux-source-6.12 (.ci/run does) or set DMABENCH_KERNEL_TREES")
	}
	return trees
}

// flat is a page source handing out consecutive pages.
type flat struct {
	next  uint64
	pages int
}

func (f *flat) AllocPages(size int64, gfp uint32) (uint64, uint64, bool) {
	a := f.next
	f.next += uint64(size)
	f.pages++
	return 0xc0000000 + a, a, true
}

func (f *flat) FreePages(size int64, cpu, dma uint64) { f.pages-- }

// TestBackendRunsTheTreesCode builds each tree's library and runs its
// dma_pool: blocks come out aligned, inside the page source's pages,
// distinct, and every page goes back at destroy.
func TestBackendRunsTheTreesCode(t *testing.T) {
	for _, tree := range Trees(t) {
		b, err := OpenBackend(tree)
		if errors.Is(err, ErrUnavailable) {
			t.Skip(err)
		}
		if err != nil {
			t.Fatal(err)
		}
		src := &flat{next: 1 << 20}
		d := b.NewDevice(src)
		p := b.PoolCreate(d, "td", 48, 16, 4096)
		if p == 0 {
			t.Fatalf("%s: dma_pool_create failed", tree)
		}
		seen := map[uint64]bool{}
		var vs []uintptr
		var ds []uint64
		for i := 0; i < 1000; i++ {
			v, cpu, dma := b.PoolAlloc(p, 0)
			if v == 0 {
				t.Fatalf("%s: alloc %d failed", tree, i)
			}
			if dma%16 != 0 || cpu != dma+0xc0000000 || seen[dma] || dma < 1<<20 || dma >= src.next {
				t.Fatalf("%s: alloc %d: cpu %#x dma %#x", tree, i, cpu, dma)
			}
			seen[dma] = true
			vs, ds = append(vs, v), append(ds, dma)
		}
		for i := range vs {
			b.PoolFree(p, vs[i], ds[i])
		}
		b.PoolDestroy(p)
		if src.pages != 0 || b.Errors(d) != 0 {
			t.Fatalf("%s (Linux %s): %d pages left, %d errors", tree, b.Version(), src.pages, b.Errors(d))
		}
		b.Release(d)
		t.Logf("%s: Linux %s, %+v", tree, b.Version(), b.Features())
	}
}
