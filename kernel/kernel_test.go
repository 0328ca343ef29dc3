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

// TestCreateNodeTree: a tree whose dma_pool_create is
// dma_pool_create_node (mainline's shape, made here from 6.12's file by
// adding the node argument) is recognised and runs.
func TestCreateNodeTree(t *testing.T) {
	var src string
	for _, tree := range Trees(t) {
		if strings.Contains(tree, "6.12") {
			src = tree
		}
	}
	if src == "" {
		t.Skip("no Linux 6.12 tree")
	}
	cache, err := CacheDir()
	if err != nil {
		t.Skip(err)
	}
	base, err := Open(src, cache)
	if err != nil {
		t.Fatal(err)
	}
	old := "struct dma_pool *dma_pool_create(const char *name, struct device *dev,\n\t\t\t\t size_t size, size_t align, size_t boundary)"
	if !strings.Contains(string(base.DMAPool), old) {
		t.Skip("6.12's dma_pool_create is not spelled as this test expects")
	}
	dir := t.TempDir()
	node := strings.Replace(string(base.DMAPool), old,
		"struct dma_pool *dma_pool_create_node(const char *name, struct device *dev,\n\t\tsize_t size, size_t align, size_t boundary, int node)", 1)
	node = strings.Replace(node, "EXPORT_SYMBOL(dma_pool_create);", "EXPORT_SYMBOL(dma_pool_create_node);", 1)
	for name, b := range map[string]string{"Makefile": "VERSION = 6\nPATCHLEVEL = 99\nSUBLEVEL = 0\n", "mm/dmapool.c": node} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := OpenBackend(dir)
	if errors.Is(err, ErrUnavailable) && (strings.Contains(err.Error(), "without cgo") || strings.Contains(err.Error(), "no C compiler")) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if f := b.Features(); !f.CreateNode || !f.BlockList || b.HasMempool() || b.Version() != "6.99.0" {
		t.Fatalf("features %+v, mempool %v, version %s", f, b.HasMempool(), b.Version())
	}
	src2 := &flat{next: 1 << 20}
	d := b.NewDevice(src2)
	p := b.PoolCreate(d, "x", 64, 64, 0)
	if v, _, dma := b.PoolAlloc(p, 0); v == 0 || dma != 1<<20 {
		t.Fatalf("alloc: %#x at dma %#x", v, dma)
	}
}
