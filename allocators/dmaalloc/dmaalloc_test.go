package dmaalloc

import (
	"reflect"
	"testing"

	"github.com/dmabench/dmabench/allocators/conformance"
	"github.com/dmabench/dmabench/allocators/dmapool"
	"github.com/dmabench/dmabench/dma"
)

func TestClasses(t *testing.T) {
	pow := []int64{256, 512, 1024, 2048, 4096, 8192}
	cases := []struct {
		t         Table
		line, min int64
		want      []int64
	}{
		{SLAB, 64, 8, append([]int64{32, 64, 128, 192}, pow...)},
		{SLAB, 32, 8, append([]int64{32, 64, 96, 128, 192}, pow...)},
		{SLAB, 128, 8, append([]int64{32, 64, 128}, pow...)},
		{SLUB, 64, 8, append([]int64{8, 16, 32, 64, 96, 128, 192}, pow...)},
		{SLUB, 32, 32, append([]int64{32, 64, 96, 128, 192}, pow...)}, // SA-1100: KMALLOC_MIN_SIZE 32
		{SLUB, 64, 64, append([]int64{64, 128, 192}, pow...)},
		{SLUB, 128, 128, append([]int64{128}, pow...)},
	}
	for _, tc := range cases {
		if got := Classes(tc.t, tc.line, tc.min); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Classes(%s, line %d, min %d) = %v, want %v", tc.t, tc.line, tc.min, got, tc.want)
		}
	}
}

func TestSizeClassAgainstKernelPairs(t *testing.T) {
	// bytes_req -> bytes_alloc pairs from a 3.6 CONFIG_SLAB i386 boot trace.
	slab := Classes(SLAB, 64, 8)
	for _, pr := range [][2]int64{{2, 32}, {32, 32}, {36, 64}, {72, 128}, {132, 192}, {208, 256}, {272, 512},
		{596, 1024}, {1320, 2048}, {4096, 4096}, {4098, 8192}, {8195, 16384}, {32768, 32768}, {42284, 65536}} {
		if got := SizeClass(slab, pr[0]); got != pr[1] {
			t.Errorf("SLAB kmalloc(%d) = %d, kernel allocated %d", pr[0], got, pr[1])
		}
	}
	slub := Classes(SLUB, 64, 8)
	for _, pr := range [][2]int64{{1, 8}, {9, 16}, {65, 96}, {97, 128}, {129, 192}, {193, 256}, {8193, 12288 + 4096}} {
		if got := SizeClass(slub, pr[0]); got != pr[1] {
			t.Errorf("SLUB kmalloc(%d) = %d, want %d", pr[0], got, pr[1])
		}
	}
}

func newAlloc(t testing.TB, p *dma.Platform, sizes string) *Allocator {
	inner, _ := dmapool.New(p, dmapool.DefaultConfig())
	cfg := DefaultConfig()
	cfg.Sizes = sizes
	a, err := New(p, inner, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestServesByClass(t *testing.T) {
	p := conformance.NewFlat(256)
	a := newAlloc(t, p, "slub")
	dev := &dma.Device{Name: "d", Mask: dma.BitMask(32)}
	for _, tc := range [][2]int64{{20, 32}, {65, 96}, {3000, 4096}, {5000, 8192}} {
		b, err := a.Alloc(dma.NoPool, &dma.Request{Size: tc[0], GFP: dma.GFPKernel, Dev: dev})
		if err != nil || b.Size != tc[1] {
			t.Errorf("dma_alloc(%d): %d bytes (%v), want %d", tc[0], b.Size, err, tc[1])
		}
	}
	// A pool with a boundary gets a power-of-two class.
	id, _ := a.CreatePool(dma.PoolSpec{Name: "qtd", Dev: dev, Size: 96, Align: 32, Boundary: 4096})
	if b, _ := a.Alloc(id, &dma.Request{Size: 96, GFP: dma.GFPKernel, Dev: dev}); b.Size != 128 {
		t.Errorf("bounded 96-byte block: %d bytes, want 128", b.Size)
	}
	nc := &dma.Platform{Name: "nc", CacheLine: 32, Pages: p.Pages, Kernel: p.Kernel, Meter: p.Meter}
	if c := newAlloc(t, nc, "slub").Classes(); c[0] != 32 {
		t.Errorf("non-coherent classes start at %d, want the 32-byte cache line", c[0])
	}
}

// TestClassIsKmallocSize: a request reports the size kmalloc would have
// allocated (Request.Class) while its block may be larger: SLUB's 8-byte
// class in a 16-byte dma_pool block; SLOB's request plus its 8-byte
// header, in the class pool at or above that.
func TestClassIsKmallocSize(t *testing.T) {
	dev := &dma.Device{Name: "d", Mask: dma.BitMask(32)}
	for _, tc := range []struct {
		sizes              string
		req, class, atMost int64
	}{
		{"slub", 8, 8, 16}, {"slub", 90, 96, 96}, {"slob", 20, 28, 32}, {"slob", 4000, 4008, 4096}, {"slob", 5000, 8192, 8192},
	} {
		a := newAlloc(t, conformance.NewFlat(256), tc.sizes)
		r := &dma.Request{Size: tc.req, GFP: dma.GFPKernel, Dev: dev}
		b, err := a.Alloc(dma.NoPool, r)
		if err != nil || r.Class != tc.class || b.Size < tc.class || b.Size > tc.atMost {
			t.Errorf("%s kmalloc(%d): class %d, block %d (%v); want class %d in a block of at most %d", tc.sizes, tc.req, r.Class, b.Size, err, tc.class, tc.atMost)
		}
	}
}

func TestConformance(t *testing.T) {
	for _, sizes := range []string{"slab", "slub", "slob"} {
		f := func() (conformance.Target, error) {
			p := conformance.NewFlat(256)
			return conformance.Target{Alloc: newAlloc(t, p, sizes), Plat: p}, nil
		}
		conformance.Run(t, "dmaalloc/"+sizes, f, conformance.Options{Ops: 50_000}, 1, 2)
	}
}
