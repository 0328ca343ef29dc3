package validate

import (
	"fmt"
	"math/rand/v2"

	"github.com/dmabench/dmabench/allocators/conformance"
	"github.com/dmabench/dmabench/allocators/dmapool"
	"github.com/dmabench/dmabench/allocators/dmapool26"
	"github.com/dmabench/dmabench/allocators/kernelpool"
	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/engine"
	"github.com/dmabench/dmabench/kernel"
)

// kernelSpecs are the pools the random sequences use: every layout rule
// (the smallest blocks, alignment, boundaries, the rework's clamp of a
// boundary to the allocation, blocks of a page and more).
var kernelSpecs = []dma.PoolSpec{
	{Name: "tiny", Size: 2}, {Name: "td", Size: 48, Align: 16, Boundary: 4096},
	{Name: "ed", Size: 64, Align: 64}, {Name: "qtd", Size: 96, Align: 32, Boundary: 4096},
	{Name: "odd", Size: 100, Align: 4}, {Name: "k1", Size: 1024},
	{Name: "half", Size: 2048, Align: 2048}, {Name: "x3000", Size: 3000, Align: 8},
	{Name: "page", Size: 4096, Align: 4096}, {Name: "two", Size: 8192, Align: 4096, Boundary: 8192},
	{Name: "big", Size: 16384, Boundary: 32768}, {Name: "b512", Size: 512, Align: 512, Boundary: 1024},
}

// KernelModel returns the name and a constructor of the Go model of the
// tree's dma_pool design: dmapool for the 2023 rework, dmapool-2.6 before.
func KernelModel(f kernel.Features) (string, func(p *dma.Platform) dma.Allocator) {
	if f.BlockList {
		return "dmapool", func(p *dma.Platform) dma.Allocator { a, _ := dmapool.New(p, dmapool.DefaultConfig()); return a }
	}
	return "dmapool-2.6", func(p *dma.Platform) dma.Allocator { a, _ := dmapool26.New(p, dmapool26.DefaultConfig()); return a }
}

// twin serves every request with the model and with the kernel code, on
// one page source (see newTwin), and compares what they hand out; the
// engine sees the model's blocks.
type twin struct {
	model, kern dma.Allocator
	pools       map[dma.ID]dma.ID    // model pool -> kernel pool
	blocks      map[uint64]dma.Block // model block CPU -> kernel block
	ops, match  int
	first       string // the first divergence
	pages       func() (int64, int64)
	tape        *tape
	mirror      *mirror
}

// settle ends an operation: every page the model took the kernel code
// must have taken too.
func (t *twin) settle(what string) {
	if len(t.tape.got) > 0 || t.mirror.miss > 0 {
		t.diverge("%s: the model took %d pages the kernel code did not, the kernel code asked for %d the model did not", what, len(t.tape.got), t.mirror.miss)
	}
	t.tape.got, t.mirror.miss = t.tape.got[:0], 0
}

func (t *twin) diverge(format string, args ...any) {
	if t.first == "" {
		m, k := t.pages()
		t.first = fmt.Sprintf("op %d: %s; pages held: model %d, kernel code %d", t.ops, fmt.Sprintf(format, args...), m, k)
	}
}

func (t *twin) CreatePool(s dma.PoolSpec) (dma.ID, error) {
	id, err := t.model.CreatePool(s)
	kid, kerr := t.kern.CreatePool(s)
	t.ops++
	if (err == nil) != (kerr == nil) {
		t.diverge("create %q: model %v, kernel code %v", s.Name, err, kerr)
	} else if t.first == "" {
		t.match++
	}
	if err == nil && kerr == nil {
		t.pools[id] = kid
	}
	return id, err
}

func (t *twin) DestroyPool(id dma.ID) error {
	err := t.model.(dma.PoolDestroyer).DestroyPool(id)
	if kid, ok := t.pools[id]; ok {
		t.kern.(dma.PoolDestroyer).DestroyPool(kid)
		delete(t.pools, id)
	}
	return err
}

func (t *twin) Alloc(id dma.ID, r *dma.Request) (dma.Block, error) {
	kid, ok := t.pools[id]
	if id == dma.NoPool {
		kid, ok = dma.NoPool, true
	}
	b, err := t.model.Alloc(id, r)
	if !ok {
		t.tape.got = t.tape.got[:0]
		return b, err
	}
	kr := *r
	kb, kerr := t.kern.Alloc(kid, &kr)
	t.ops++
	t.settle("alloc")
	switch {
	case (err == nil) != (kerr == nil):
		t.diverge("alloc of %d bytes: model %v, kernel code %v", r.Size, err, kerr)
	case err == nil && (b.CPU != kb.CPU || b.DMA != kb.DMA):
		t.diverge("alloc of %d bytes: model %#x (dma %#x), kernel code %#x (dma %#x)", r.Size, b.CPU, b.DMA, kb.CPU, kb.DMA)
	case t.first == "":
		t.match++
	}
	if kerr == nil {
		if err == nil {
			t.blocks[b.CPU] = kb
		} else {
			t.kern.Free(kb)
		}
	}
	return b, err
}

func (t *twin) Free(b dma.Block) {
	t.model.Free(b)
	if kb, ok := t.blocks[b.CPU]; ok {
		delete(t.blocks, b.CPU)
		t.kern.Free(kb)
	}
	t.ops++
	t.settle("free")
	if t.first == "" {
		t.match++
	}
}

type nopRecorder struct{}

func (nopRecorder) Record(*engine.Outcome) {}

// heldPages reports the pages a flat platform's allocator holds.
func heldPages(a dma.Allocator) int64 {
	if s, ok := a.(dma.StatsReporter); ok {
		return s.Stats().ReservedBytes / dma.PageSize
	}
	return -1
}

// tape is the model's page source: the platform's, with every page it
// hands out noted for the kernel code's turn.
type tape struct {
	inner dma.Pages
	got   []dma.Block
}

func (t *tape) AllocPages(dev *dma.Device, order int, gfp dma.GFP) (dma.Block, error) {
	b, err := t.inner.AllocPages(dev, order, gfp)
	if err == nil {
		t.got = append(t.got, b)
	}
	return b, err
}

func (t *tape) FreePages(b dma.Block) { t.inner.FreePages(b) }

// mirror is the kernel code's page source: in each operation it hands out
// the pages the model was given in the same operation, in order; a page
// the model did not take is a divergence. The pages are the model's, so
// the kernel code's frees return nothing.
type mirror struct {
	t    *tape
	miss int
}

func (m *mirror) AllocPages(_ *dma.Device, order int, _ dma.GFP) (dma.Block, error) {
	if len(m.t.got) == 0 || m.t.got[0].Size != dma.PageSize<<order {
		m.miss++
		return dma.Block{}, dma.ErrNoMem
	}
	b := m.t.got[0]
	m.t.got = m.t.got[1:]
	return b, nil
}

func (m *mirror) FreePages(dma.Block) {}

// newTwin builds the model and the kernel code over one page source: the
// engine's platform serves the model, and the kernel code gets the very
// pages the model got, operation by operation.
func newTwin(b kernel.Backend) (*twin, *dma.Platform) {
	_, model := KernelModel(b.Features())
	pm := conformance.NewFlat(256)
	tp := &tape{inner: pm.Pages}
	mp := *pm
	mp.Pages = tp
	mr := &mirror{t: tp}
	pk := mp
	pk.Pages, pk.Meter = mr, &dma.Meter{}
	m := model(&mp)
	costs := kernelpool.CostsFor(b.Features(), dmapool.DefaultConfig(), dmapool26.DefaultConfig())
	k := kernelpool.NewDMAPool(b, &pk, costs)
	t := &twin{model: m, kern: k, pools: map[dma.ID]dma.ID{}, blocks: map[uint64]dma.Block{}, tape: tp, mirror: mr}
	t.pages = func() (int64, int64) { return heldPages(m), heldPages(k) }
	return t, &mp
}

// Kernel runs the differential validation of a kernel tree's dma_pool
// against the Go model of its design, both on page sources that hand out
// the same pages in the same order: seeds random sequences of ops
// operations over kernelSpecs' pools (allocations, frees, a pool emptied
// and destroyed now and then), then each workload's pool traffic as the
// engine serves it. Every operation must give the same addresses; the
// first divergence of each run is reported.
func Kernel(b kernel.Backend, seeds, ops int, workloads []string, sources func(string) ([]dma.Source, error)) (*Result, error) {
	name, _ := KernelModel(b.Features())
	r := &Result{Name: fmt.Sprintf("kernel: Linux %s's mm/dmapool.c against %s, operation by operation", b.Version(), name)}
	add := func(what string, t *twin) {
		r.Total += t.ops
		r.Matched += t.match
		r.Notes = append(r.Notes, fmt.Sprintf("%s: %d of %d operations the same", what, t.match, t.ops))
		if t.first != "" {
			r.Total = max(r.Total, r.Matched+1) // a divergence is never a match
			r.Misses = append(r.Misses, what+": "+t.first)
		}
	}
	for seed := 1; seed <= seeds; seed++ {
		t, _ := newTwin(b)
		random(t, uint64(seed), ops)
		t.kern.(dma.Closer).Close()
		add(fmt.Sprintf("random sequence, seed %d", seed), t)
	}
	for _, w := range workloads {
		srcs, err := sources(w)
		if err != nil {
			return nil, err
		}
		t, p := newTwin(b)
		_, err = engine.New(p, t, nopRecorder{}, srcs...).Run(int64(ops))
		t.kern.(dma.Closer).Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", w, err)
		}
		add("workload "+w, t)
	}
	return r, nil
}

// random drives t with a seeded sequence of n operations.
func random(t *twin, seed uint64, n int) {
	rng := rand.New(rand.NewPCG(seed, 0x6b65726e656c))
	dev := &dma.Device{Name: "validate", Mask: dma.BitMask(32)}
	ids := make([]dma.ID, len(kernelSpecs))
	live := make([][]dma.Block, len(kernelSpecs))
	create := func(i int) {
		s := kernelSpecs[i]
		s.Dev = dev
		ids[i], _ = t.CreatePool(s)
	}
	for i := range kernelSpecs {
		create(i)
	}
	for t.ops < n && t.first == "" {
		i := rng.IntN(len(kernelSpecs))
		switch x := rng.IntN(1000); {
		case x == 0:
			// Empty the pool and start it again: its pages go back.
			for _, b := range live[i] {
				t.Free(b)
			}
			live[i] = live[i][:0]
			t.DestroyPool(ids[i])
			create(i)
		case x < 520 || len(live[i]) == 0:
			req := dma.Request{Size: max(kernelSpecs[i].Size, 1), GFP: dma.GFPKernel, Dev: dev}
			if b, err := t.Alloc(ids[i], &req); err == nil {
				live[i] = append(live[i], b)
			}
		default:
			k := rng.IntN(len(live[i]))
			t.Free(live[i][k])
			live[i][k] = live[i][len(live[i])-1]
			live[i] = live[i][:len(live[i])-1]
		}
	}
}
