package slab

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/allocators/conformance"
	"github.com/dmabench/dmabench/dma"
)

// TestCalculateOrderMatchesSlabinfo pins the SLUB rule against real
// /proc/slabinfo rows (objsize, objperslab, pagesperslab).
func TestCalculateOrderMatchesSlabinfo(t *testing.T) {
	rows := [][3]int64{ // host-b, 16..31 CPUs (min_objects 24)
		{8, 512, 1}, {16, 256, 1}, {32, 128, 1}, {64, 64, 1}, {96, 42, 1}, {128, 32, 1}, {192, 42, 2},
		{256, 32, 2}, {512, 32, 4}, {1024, 32, 8}, {2048, 16, 8}, {4096, 8, 8}, {8192, 4, 8},
		{280, 29, 2}, {1424, 23, 8}, {1056, 31, 8}, // gfs2 caches from host-a's file
	}
	for _, r := range rows {
		o, n := CalculateOrder(r[0], 16, 3)
		if int64(n) != r[1] || int64(1)<<o != r[2] {
			t.Errorf("size %d: %d objects in %d pages, slabinfo says %d in %d", r[0], n, 1<<o, r[1], r[2])
		}
	}
	// host-a's kmalloc-192 (21 objects, 1 page) needs min_objects 20: 8..15 CPUs.
	if o, n := CalculateOrder(192, 8, 3); o != 0 || n != 21 {
		t.Errorf("192 on 8 CPUs: order %d, %d objects", o, n)
	}
	if MinObjects(1) != 8 || MinObjects(4) != 16 || MinObjects(16) != 24 || MinObjects(64) != 32 {
		t.Error("MinObjects")
	}
}

func TestHWCacheAlign(t *testing.T) {
	for _, tc := range [][4]int64{{96, 8, 64, 64}, {24, 8, 64, 32}, {8, 8, 64, 8}, {200, 8, 128, 128}, {48, 16, 32, 32}, {10, 64, 32, 64}} {
		if got := HWCacheAlign(tc[0], tc[1], tc[2]); got != tc[3] {
			t.Errorf("HWCacheAlign(%d, %d, line %d) = %d, want %d", tc[0], tc[1], tc[2], got, tc[3])
		}
	}
}

var dev32 = &dma.Device{Name: "d", Mask: dma.BitMask(32)}

func TestEmptySlabsGoBack(t *testing.T) {
	p := conformance.NewFlat(256)
	a, _ := New(p, DefaultConfig())
	id, _ := a.CreatePool(dma.PoolSpec{Name: "c", Dev: dev32, Size: 256})
	r := &dma.Request{Size: 256, GFP: dma.GFPKernel, Dev: dev32}
	var live []dma.Block
	for i := 0; i < 10000; i++ {
		b, err := a.Alloc(id, r)
		if err != nil {
			t.Fatal(err)
		}
		live = append(live, b)
	}
	peak := p.Meter.CoherentBytes
	for _, b := range live {
		a.Free(b)
	}
	c := &a.caches[id]
	if held := p.Meter.CoherentBytes; held > int64(c.minPart)*(4096<<c.order) || held >= peak {
		t.Fatalf("holding %d of %d bytes after freeing everything; min_partial %d slabs of order %d", held, peak, c.minPart, c.order)
	}
}

func TestGeometryBoundaryAndLines(t *testing.T) {
	p := conformance.NewFlat(256)
	a, _ := New(p, DefaultConfig())
	// A 4 KiB boundary does not bind an order-0 slab: 96 stays 128 (HWCACHE).
	if size, o, _, _ := a.Geometry(dma.PoolSpec{Size: 96, Align: 32, Boundary: 4096}); size != 128 || o != 0 {
		t.Fatalf("ehci_qtd: slot %d order %d", size, o)
	}
	// A 1 KiB boundary with 200-byte blocks: rounded to 256.
	if size, _, _, _ := a.Geometry(dma.PoolSpec{Size: 200, Align: 8, Boundary: 1024}); size != 256 {
		t.Fatalf("bounded: slot %d", size)
	}
	nc := &dma.Platform{Name: "nc", Coherent: false, CacheLine: 32, Pages: p.Pages, Kernel: p.Kernel, Meter: p.Meter}
	d, err := NewDirect(nc, Config{NrCPUs: 1, MaxOrder: 3, CoherentGFP: "caller"})
	if err != nil {
		t.Fatal(err)
	}
	if size, _, _, _ := d.Geometry(dma.PoolSpec{Size: 40, Align: 4}); size != 64 {
		t.Fatalf("slab-direct on a non-coherent machine: slot %d, want whole 32-byte lines", size)
	}
	iommu := &dma.Platform{Name: "iommu", Coherent: true, IOMMU: true, Pages: p.Pages, Kernel: p.Kernel, Meter: p.Meter}
	if _, err := NewDirect(iommu, DefaultConfig()); err != ErrBehindIOMMU {
		t.Fatalf("slab-direct behind an IOMMU: %v", err)
	}
}

func TestConformance(t *testing.T) {
	for _, mag := range []int{0, 32} {
		for _, direct := range []bool{false, true} {
			f := func() (conformance.Target, error) {
				p := conformance.NewFlat(256)
				cfg := DefaultConfig()
				cfg.Magazine = mag
				var a *Allocator
				var err error
				if direct {
					a, err = NewDirect(p, cfg)
				} else {
					a, err = New(p, cfg)
				}
				return conformance.Target{Alloc: a, Plat: p}, err
			}
			conformance.Run(t, "slab", f, conformance.Options{Ops: 50_000}, 1, 2)
		}
	}
}

// TestCorpusSlabinfo: SLUB's order rule gives the objects and pages per
// slab of every kmalloc cache in real /proc/slabinfo snapshots, read by
// the parser `dmabench validate slabinfo` uses.
func TestCorpusSlabinfo(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.slabinfo")
	if len(files) < 2 {
		t.Fatalf("only %d slabinfo files in testdata", len(files))
	}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := ParseSlabinfo(name, f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) < 10 {
			t.Fatalf("%s: only %d kmalloc caches read", name, len(rows))
		}
		cpus := BestCPUs(rows, 3)
		if matched, misses := CheckSlabinfo(name, rows, cpus, 3); matched != len(rows) {
			t.Errorf("%s (nr_cpus %d): matched %d of %d:\n%s", name, cpus, matched, len(rows), strings.Join(misses, "\n"))
		}
	}
}

// FuzzParseSlabinfo: a slabinfo file of any content is read, and checked,
// without a panic.
// go test -fuzz FuzzParseSlabinfo ./allocators/slab
func FuzzParseSlabinfo(f *testing.F) {
	data, _ := os.ReadFile("testdata/host-a.slabinfo")
	f.Add(data)
	f.Add([]byte("slabinfo - version: 2.1\nkmalloc-64 1 2 64 64 1 : tunables 0 0 0 : slabdata 1 1 0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if rows, err := ParseSlabinfo("fuzz", bytes.NewReader(data)); err == nil {
			CheckSlabinfo("fuzz", rows, 1, 3)
		}
	})
}
