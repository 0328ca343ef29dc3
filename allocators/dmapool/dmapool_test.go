package dmapool

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/allocators/conformance"
	"github.com/dmabench/dmabench/dma"
)

var dev32 = &dma.Device{Name: "test", Mask: dma.BitMask(32)}

func TestLayout(t *testing.T) {
	cases := []struct {
		size, align, boundary int64
		wantSize, wantAlloc   int64
		wantBPP               int
	}{
		{96, 32, 4096, 96, 4096, 42},   // ehci_qtd, as in the ehci pools file
		{48, 16, 0, 48, 4096, 85},      // uhci_td
		{64, 32, 0, 64, 4096, 64},      // ohci_td
		{1, 0, 0, 16, 4096, 256},       // minimum block
		{2048, 8, 0, 2048, 4096, 2},    // lpfc_sg_dma_buf_pool
		{128, 8, 0, 128, 4096, 32},     // megasas sense
		{89024, 8, 0, 89024, 89024, 1}, // mr_sense: allocation grows to the block
		{200, 8, 1024, 200, 4096, 20},  // 5 per 1 KiB boundary, 4 boundaries
		{100, 64, 0, 128, 4096, 32},    // rounded to the alignment
		{63, 32, 0, 64, 4096, 64},      // no pci_pool quirk in the 2023 design
		{4096, 4096, 0, 4096, 4096, 1},
		{96, 32, 8192, 96, 4096, 42}, // boundary larger than the allocation
	}
	for _, tc := range cases {
		l, err := NewLayout(tc.size, tc.align, tc.boundary)
		if err != nil {
			t.Errorf("NewLayout(%d,%d,%d): %v", tc.size, tc.align, tc.boundary, err)
			continue
		}
		if l.Size != tc.wantSize || l.Allocation != tc.wantAlloc || l.BlocksPerPage() != tc.wantBPP {
			t.Errorf("NewLayout(%d,%d,%d) = size %d alloc %d bpp %d, want %d %d %d", tc.size, tc.align, tc.boundary,
				l.Size, l.Allocation, l.BlocksPerPage(), tc.wantSize, tc.wantAlloc, tc.wantBPP)
		}
		// The DESIGN formula: (allocation/boundary)*floor(boundary/size).
		if want := int(l.Allocation / l.Boundary * (l.Boundary / l.Size)); want != l.BlocksPerPage() {
			t.Errorf("NewLayout(%d,%d,%d): %d blocks, formula says %d", tc.size, tc.align, tc.boundary, l.BlocksPerPage(), want)
		}
	}
	for _, bad := range [][3]int64{{0, 8, 0}, {64, 3, 0}, {64, 8, 32}, {64, 8, 1000}, {-1, 8, 0}, {64, -8, 0}} {
		if _, err := NewLayout(bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("NewLayout(%v) accepted", bad)
		}
	}
}

// TestCorpusPools checks the layout against real /sys/.../pools files,
// read by the parser `dmabench validate pools` uses: total blocks = pages
// x blocks per page for every pool.
func TestCorpusPools(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.pools")
	if len(files) == 0 {
		t.Fatal("no pools files in testdata")
	}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := ParsePools(name, f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) == 0 {
			t.Fatalf("%s: no pools read", name)
		}
		if matched, misses := CheckPools(name, lines); matched != len(lines) {
			t.Errorf("%s: matched %d of %d:\n%s", name, matched, len(lines), strings.Join(misses, "\n"))
		}
	}
}

func newPool(t testing.TB) (*Allocator, *dma.Platform) {
	p := conformance.NewFlat(256)
	a, err := New(p, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return a, p
}

func TestLIFOAndAscendingPages(t *testing.T) {
	a, _ := newPool(t)
	id, err := a.CreatePool(dma.PoolSpec{Name: "td", Dev: dev32, Size: 64, Align: 32})
	if err != nil {
		t.Fatal(err)
	}
	r := &dma.Request{Size: 64, GFP: dma.GFPKernel, Dev: dev32}
	var blocks []dma.Block
	for i := 0; i < 64; i++ {
		b, err := a.Alloc(id, r)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && b.CPU != blocks[i-1].CPU+64 {
			t.Fatalf("block %d at %#x, want %#x: a new page is handed out lowest address first", i, b.CPU, blocks[i-1].CPU+64)
		}
		blocks = append(blocks, b)
	}
	a.Free(blocks[10])
	a.Free(blocks[20])
	if b, _ := a.Alloc(id, r); b.CPU != blocks[20].CPU {
		t.Fatalf("got %#x, want the last freed block %#x", b.CPU, blocks[20].CPU)
	}
	if b, _ := a.Alloc(id, r); b.CPU != blocks[10].CPU {
		t.Fatalf("got %#x, want %#x", b.CPU, blocks[10].CPU)
	}
	if s := a.Stats(); s.ReservedBytes != 4096 {
		t.Fatalf("reserved %d, want one page", s.ReservedBytes)
	}
}

func TestPagesKeptUntilDestroy(t *testing.T) {
	a, p := newPool(t)
	id, _ := a.CreatePool(dma.PoolSpec{Name: "qtd", Dev: dev32, Size: 96, Align: 32, Boundary: 4096})
	r := &dma.Request{Size: 96, GFP: dma.GFPKernel, Dev: dev32}
	var blocks []dma.Block
	for i := 0; i < 1000; i++ {
		b, err := a.Alloc(id, r)
		if err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, b)
	}
	wantPages := int64((1000 + 41) / 42)
	if p.Meter.CoherentBytes != wantPages*4096 {
		t.Fatalf("holding %d bytes, want %d pages", p.Meter.CoherentBytes, wantPages)
	}
	for _, b := range blocks {
		a.Free(b)
	}
	if p.Meter.CoherentBytes != wantPages*4096 {
		t.Fatalf("pages given back before destroy: %d bytes held", p.Meter.CoherentBytes)
	}
	if s := a.Stats(); s.IdlePages != wantPages {
		t.Fatalf("idle pages %d, want %d", s.IdlePages, wantPages)
	}
	if err := a.DestroyPool(id); err != nil {
		t.Fatal(err)
	}
	if p.Meter.CoherentBytes != 0 || a.Stats().ReservedBytes != 0 {
		t.Fatalf("destroy left %d bytes", p.Meter.CoherentBytes)
	}
	if _, err := a.Alloc(id, r); err != dma.ErrBadPool {
		t.Fatalf("alloc from a destroyed pool: %v", err)
	}
}

func TestFailedPageAllocationFails(t *testing.T) {
	a, _ := newPool(t)
	isa := &dma.Device{Name: "isa", Mask: dma.BitMask(24)}
	id, _ := a.CreatePool(dma.PoolSpec{Name: "big", Dev: isa, Size: 1 << 20})
	r := &dma.Request{Size: 1 << 20, GFP: dma.GFPKernel, Dev: isa}
	n := 0
	for ; n < 100; n++ {
		if _, err := a.Alloc(id, r); err != nil {
			if err != dma.ErrNoMem {
				t.Fatalf("error %v, want ErrNoMem", err)
			}
			break
		}
	}
	if n != 16 {
		t.Fatalf("%d 1 MiB blocks fitted in a 16 MiB ISA arena, want 16", n)
	}
	if a.Stats().Failures != 1 {
		t.Fatalf("failures %d", a.Stats().Failures)
	}
}

func TestConformance(t *testing.T) {
	f := func() (conformance.Target, error) {
		p := conformance.NewFlat(256)
		a, err := New(p, DefaultConfig())
		return conformance.Target{Alloc: a, Plat: p}, err
	}
	conformance.Run(t, "dmapool", f, conformance.Options{Ops: 100_000}, 1, 2, 3, 4, 5)
}

func TestAllocFreeAllocatesNothing(t *testing.T) {
	a, _ := newPool(t)
	id, _ := a.CreatePool(dma.PoolSpec{Name: "td", Dev: dev32, Size: 48, Align: 16})
	r := &dma.Request{Size: 48, GFP: dma.GFPAtomic, Dev: dev32}
	var live [128]dma.Block
	warm := func() {
		for i := range live {
			live[i], _ = a.Alloc(id, r)
		}
		for i := range live {
			a.Free(live[i])
		}
	}
	warm()
	if n := testing.AllocsPerRun(100, warm); n != 0 {
		t.Fatalf("%v allocations per steady-state alloc/free round, want 0", n)
	}
}

// FuzzDMAPool drives the model with arbitrary operations and checks it
// against the conformance checker and a reference: a free stack (the block
// handed out is the one freed last) and pages = ceil(peak live / blocks per
// page), since a page is added only when no block is free.
func FuzzDMAPool(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 1, 0, 2})
	f.Add([]byte{5, 200, 3, 17, 0, 0, 255, 1, 1, 1, 9})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 3 {
			return
		}
		size := int64(data[0])*24 + 1
		align := int64(1) << (data[1] % 8)
		boundary := int64(0)
		if data[2]&1 == 1 {
			boundary = int64(1) << (12 - data[2]%4)
		}
		l, err := NewLayout(size, align, boundary)
		if err != nil {
			return
		}
		a, p := newPool(t)
		id, err := a.CreatePool(dma.PoolSpec{Name: "fuzz", Dev: dev32, Size: size, Align: align, Boundary: boundary})
		if err != nil {
			t.Fatalf("layout accepted but pool refused: %v", err)
		}
		c := &conformance.Checker{}
		rules := conformance.Rules{Size: size, Align: align, Boundary: boundary, Mask: dev32.Coherent()}
		var live, stack []dma.Block
		peak := 0
		for _, op := range data[3:] {
			if op%3 != 0 || len(live) == 0 {
				b, err := a.Alloc(id, &dma.Request{Size: size, GFP: dma.GFPKernel, Dev: dev32})
				if err != nil {
					t.Fatal(err)
				}
				if n := len(stack); n > 0 {
					if stack[n-1].CPU != b.CPU {
						t.Fatalf("got %#x, reference free stack top is %#x", b.CPU, stack[n-1].CPU)
					}
					stack = stack[:n-1]
				}
				c.Alloc(rules, b)
				live = append(live, b)
				peak = max(peak, len(live))
			} else {
				i := int(op) % len(live)
				b := live[i]
				live = append(live[:i], live[i+1:]...)
				c.Free(b)
				a.Free(b)
				stack = append(stack, b)
			}
		}
		c.CheckStats(a.Stats(), p.Meter.CoherentBytes)
		if c.Total() > 0 {
			t.Fatalf("violations: %v", c.First)
		}
		bpp := l.BlocksPerPage()
		if want := int64((peak+bpp-1)/bpp) * (dma.PageSize << dma.Order(l.Allocation)); a.Stats().ReservedBytes != want {
			t.Fatalf("reserved %d, reference %d (peak live %d, %d per page)", a.Stats().ReservedBytes, want, peak, bpp)
		}
	})
}

func BenchmarkAllocFree(b *testing.B) {
	a, _ := newPool(b)
	id, _ := a.CreatePool(dma.PoolSpec{Name: "td", Dev: dev32, Size: 48, Align: 16})
	r := &dma.Request{Size: 48, GFP: dma.GFPAtomic, Dev: dev32}
	var live [128]dma.Block
	b.ReportAllocs()
	for b.Loop() {
		for i := range live {
			live[i], _ = a.Alloc(id, r)
		}
		for i := range live {
			a.Free(live[i])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2*len(live)), "ns/op-each")
}

// TestPageUseCountedFromTheFreeStack: the live blocks of each page, which
// the model counts from the free stack when asked, match a count kept
// by hand through random allocs and frees: idle pages in Stats, blocks in
// use in Pools.
func TestPageUseCountedFromTheFreeStack(t *testing.T) {
	a, _ := newPool(t)
	id, _ := a.CreatePool(dma.PoolSpec{Name: "qtd", Dev: dev32, Size: 96, Align: 32, Boundary: 4096})
	r := &dma.Request{Size: 96, GFP: dma.GFPKernel, Dev: dev32}
	rng := rand.New(rand.NewPCG(3, 3))
	var live []dma.Block
	perPage := map[uint64]int{}
	for i := 0; i < 20000; i++ {
		if len(live) > 0 && (rng.IntN(2) == 0 || len(live) > 500) {
			k := rng.IntN(len(live))
			b := live[k]
			live[k] = live[len(live)-1]
			live = live[:len(live)-1]
			a.Free(b)
			perPage[b.CPU&^4095]--
		} else {
			b, err := a.Alloc(id, r)
			if err != nil {
				t.Fatal(err)
			}
			live = append(live, b)
			perPage[b.CPU&^4095]++
		}
		if i%997 != 0 {
			continue
		}
		info := a.Pools()
		busy := 0
		for _, n := range perPage {
			if n > 0 {
				busy++
			}
		}
		if info[0].InUse != int64(len(live)) || a.Stats().IdlePages != info[0].Pages-int64(busy) {
			t.Fatalf("event %d: in use %d (want %d), idle pages %d of %d (want %d)", i, info[0].InUse, len(live), a.Stats().IdlePages, info[0].Pages, info[0].Pages-int64(busy))
		}
	}
}

// FuzzParsePools: a pools file of any content is read, and checked,
// without a panic.
// go test -fuzz FuzzParsePools ./allocators/dmapool
func FuzzParsePools(f *testing.F) {
	data, _ := os.ReadFile("testdata/ehci.pools")
	f.Add(data)
	f.Add([]byte("poolinfo - 0.1\nbuffer-32 0 0 32 0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if lines, err := ParsePools("fuzz", bytes.NewReader(data)); err == nil {
			CheckPools("fuzz", lines)
		}
	})
}
