// Package registry is the one place where concrete models are wired to
// names: the ordered tables of platforms, allocators and workloads, the
// run's configuration (every model's knobs), and the Builder that makes a
// cell's machine and sources from them. Only cmd/dmabench reads the
// configuration from files, the environment and flags (viper); this
// package takes it as plain structs.
package registry

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/dmabench/dmabench/allocators/coherent"
	"github.com/dmabench/dmabench/allocators/dmaalloc"
	"github.com/dmabench/dmabench/allocators/dmapool"
	"github.com/dmabench/dmabench/allocators/dmapool26"
	"github.com/dmabench/dmabench/allocators/kernelpool"
	"github.com/dmabench/dmabench/allocators/mempool"
	"github.com/dmabench/dmabench/allocators/pcipool"
	"github.com/dmabench/dmabench/allocators/slab"
	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/engine"
	"github.com/dmabench/dmabench/kernel"
	"github.com/dmabench/dmabench/matrix"
	"github.com/dmabench/dmabench/metrics"
	"github.com/dmabench/dmabench/platforms/iommu"
	"github.com/dmabench/dmabench/platforms/sa1111"
	"github.com/dmabench/dmabench/platforms/x64"
	"github.com/dmabench/dmabench/platforms/x86"
	"github.com/dmabench/dmabench/scenario"
	"github.com/dmabench/dmabench/workloads/netrx"
	"github.com/dmabench/dmabench/workloads/nvme"
	"github.com/dmabench/dmabench/workloads/poolbench"
	"github.com/dmabench/dmabench/workloads/scsi"
	"github.com/dmabench/dmabench/workloads/trace"
	"github.com/dmabench/dmabench/workloads/usb"
	"github.com/dmabench/dmabench/workloads/virtio"
)

// The component tables: the one place where concrete models are wired to
// names. Order is the order `list` shows and validation errors name.

type platformEntry struct {
	name, doc string
	build     func(cfg *Config, m *dma.Meter) (*dma.Platform, error)
}

type allocatorEntry struct {
	name, doc string
	build     func(cfg *Config, p *dma.Platform) (dma.Allocator, error)
	// cached: the model hands out cached kernel memory, so on a
	// non-coherent machine its blocks must not share cache lines.
	cached bool
	// kernel: the real kernel code of a tree (allocator.kernel.tree),
	// not a model; listed apart and built only with a tree.
	kernel bool
}

type workloadEntry struct {
	name, doc string
	// scenarios expands the workload into scenario names (nil: just name).
	scenarios func(cfg *Config) []string
	build     func(cfg *Config, scenario string, seed uint64) ([]dma.Source, error)
}

var platforms = []platformEntry{
	{"x86", "i386 PC: cache-coherent, no IOMMU, 16 MiB ZONE_DMA, free and infallible streaming maps",
		func(cfg *Config, m *dma.Meter) (*dma.Platform, error) {
			p, _, err := x86.New(cfg.Platform.X86, cfg.Platform.Pressure, m)
			return withPolicy(cfg, p, err)
		}},
	{"iommu", "behind an IOMMU: IOVA space per map and coherent allocation, strict or lazy IOTLB invalidation, maps can fail",
		buildIOMMU},
	variant("iommu-lazy", "the iommu platform with lazy invalidation (flush queue), whatever platform.iommu.mode says",
		buildIOMMU, func(c *Config) { c.Platform.IOMMU.Mode = "lazy" }),
	{"sa1111", "SA-1100 + SA-1111: non-coherent 32-byte lines, DMA only to part of RAM, bounce pools, maps can fail",
		buildSA1111},
	variant("sa1111-1mib", "the sa1111 platform as the 2002 driver set it up: the SA-1111 reaches only the first 1 MiB of RAM, whatever platform.sa1111.mode says",
		buildSA1111, func(c *Config) { c.Platform.SA1111.Mode = "first-1mib" }),
	{"cvm", "x86-64 confidential VM (SEV-SNP, TDX): every streaming map bounces through swiotlb, sized at 6% of RAM; coherent memory made shared page by page",
		func(cfg *Config, m *dma.Meter) (*dma.Platform, error) {
			return buildX64("cvm", cfg.Platform.CVM, cfg, m)
		}},
	{"swiotlb", "x86-64 with more than 4 GiB: a device whose mask cannot reach a buffer bounces through the default 64 MiB swiotlb",
		func(cfg *Config, m *dma.Meter) (*dma.Platform, error) {
			return buildX64("swiotlb", cfg.Platform.Swiotlb, cfg, m)
		}},
}

func buildIOMMU(cfg *Config, m *dma.Meter) (*dma.Platform, error) {
	p, _, err := iommu.New(cfg.Platform.IOMMU, cfg.Platform.Pressure, m)
	return withPolicy(cfg, p, err)
}

func buildSA1111(cfg *Config, m *dma.Meter) (*dma.Platform, error) {
	p, _, err := sa1111.New(cfg.Platform.SA1111, cfg.Platform.Pressure, m)
	return withPolicy(cfg, p, err)
}

// buildX64 builds one of the x86-64 machines with swiotlb, from its
// section pc of the config.
func buildX64(name string, pc x64.Config, cfg *Config, m *dma.Meter) (*dma.Platform, error) {
	p, _, err := x64.New(name, pc, cfg.Platform.Pressure, m)
	return withPolicy(cfg, p, err)
}

// variant is a platform built by base with knobs set by set, under a name
// of its own, so that both can run side by side in one matrix.
func variant(name, doc string, base func(*Config, *dma.Meter) (*dma.Platform, error), set func(*Config)) platformEntry {
	return platformEntry{name, doc, func(cfg *Config, m *dma.Meter) (*dma.Platform, error) {
		c := *cfg
		set(&c)
		p, err := base(&c, m)
		if p != nil {
			p.Name = name
		}
		return p, err
	}}
}

// withPolicy applies the map failure policy shared by all platforms.
func withPolicy(cfg *Config, p *dma.Platform, err error) (*dma.Platform, error) {
	if err != nil {
		return nil, err
	}
	pol, err := dma.ParseMapPolicy(cfg.Platform.MapFailure)
	if err != nil {
		return nil, err
	}
	p.MapFailure = pol
	return p, nil
}

// allocatorTable lists the allocator models. It is a function because
// mempool and dmaalloc build their element allocators from it.
func allocatorTable() []allocatorEntry {
	return []allocatorEntry{
		{name: "pcipool", doc: "pci_pool of 2002: per-chunk bitmaps, newest chunk scanned first, linear free lookup, SLAB_KERNEL sleeps 100 ms and retries",
			build: func(cfg *Config, p *dma.Platform) (dma.Allocator, error) {
				return pcipool.New(p, cfg.Allocator.PCIPool)
			}},
		{name: "dmapool", doc: "dma_pool as reworked in 2023: per-pool LIFO free stack, pages kept until destroy",
			build: func(cfg *Config, p *dma.Platform) (dma.Allocator, error) {
				return dmapool.New(p, cfg.Allocator.DMAPool)
			}},
		{name: "dmapool-2.6", doc: "dma_pool before the 2023 rework (2.6 to 6.2): a free chain per page, the page list searched newest first on alloc and on free",
			build: func(cfg *Config, p *dma.Platform) (dma.Allocator, error) {
				return dmapool26.New(p, cfg.Allocator.DMAPool26)
			}},
		{name: "slab", doc: "kmem_cache per pool with slabs from dma_alloc_coherent: SLUB order rule, HWCACHE_ALIGN, empty slabs given back",
			build: func(cfg *Config, p *dma.Platform) (dma.Allocator, error) { return slab.New(p, cfg.Allocator.Slab) }},
		{name: "slab-direct", doc: "kmem_cache memory whose DMA address is its physical address; refused behind an IOMMU and on a confidential VM", cached: true,
			build: func(cfg *Config, p *dma.Platform) (dma.Allocator, error) {
				return slab.NewDirect(p, cfg.Allocator.SlabDirect)
			}},
		{name: "mempool", doc: "mempool_t reserve of min_nr elements over another allocator (allocator.mempool.over)",
			build: func(cfg *Config, p *dma.Platform) (dma.Allocator, error) {
				inner, err := BuildAllocator(cfg, cfg.Allocator.Mempool.Over, p)
				if err != nil {
					return nil, fmt.Errorf("mempool over %s: %w", cfg.Allocator.Mempool.Over, err)
				}
				return mempool.New(p, inner, cfg.Allocator.Mempool)
			}},
		{name: "dmaalloc", doc: "kmalloc-style dma_alloc(dev, size, flags) from size-class pools; a page or more from dma_alloc_coherent",
			build: func(cfg *Config, p *dma.Platform) (dma.Allocator, error) {
				inner, err := BuildAllocator(cfg, cfg.Allocator.DMAAlloc.Pools, p)
				if err != nil {
					return nil, err
				}
				return dmaalloc.New(p, inner, cfg.Allocator.DMAAlloc)
			}},
		{name: "coherent", doc: "every block its own dma_alloc_coherent of whole pages: the baseline",
			build: func(cfg *Config, p *dma.Platform) (dma.Allocator, error) {
				return coherent.New(p, cfg.Allocator.Coherent)
			}},
		{name: "kernel-dmapool", kernel: true, doc: "the kernel tree's own mm/dmapool.c (allocator.kernel.tree, --kernel-tree), compiled with dmabench's shim",
			build: func(cfg *Config, p *dma.Platform) (dma.Allocator, error) {
				b, costs, err := kernelCode(cfg)
				if err != nil {
					return nil, err
				}
				return kernelpool.NewDMAPool(b, p, costs), nil
			}},
		{name: "kernel-mempool", kernel: true, doc: "the kernel tree's own mm/mempool.c over its mm/dmapool.c, reserves as allocator.mempool sets them",
			build: func(cfg *Config, p *dma.Platform) (dma.Allocator, error) {
				b, costs, err := kernelCode(cfg)
				if err != nil {
					return nil, err
				}
				return kernelpool.NewMempool(b, p, costs, cfg.Allocator.Mempool)
			}},
	}
}

// kernelCode is the back end of cfg's kernel tree and the cost table of
// the model of its dma_pool design.
func kernelCode(cfg *Config) (kernel.Backend, kernelpool.Costs, error) {
	b, err := KernelBackend(cfg.Allocator.Kernel.Tree)
	if err != nil {
		return nil, kernelpool.Costs{}, err
	}
	return b, kernelpool.CostsFor(b.Features(), cfg.Allocator.DMAPool, cfg.Allocator.DMAPool26), nil
}

var (
	kernelMu       sync.Mutex
	kernelBackends = map[string]kernel.Backend{}
)

// KernelBackend returns the kernel back end for tree (allocator.kernel.tree),
// built and loaded once per process. A tree that is not set, not there or
// not supported is the user's (a UsageError); no compiler, no cgo, no
// cache folder are the machine's.
func KernelBackend(tree string) (kernel.Backend, error) {
	if tree == "" {
		return nil, Usagef("allocator.kernel.tree is empty: the kernel allocators need a kernel tree (--kernel-tree PATH: a source folder or a linux-source tarball)")
	}
	kernelMu.Lock()
	defer kernelMu.Unlock()
	if b, ok := kernelBackends[tree]; ok {
		return b, nil
	}
	b, err := kernel.OpenBackend(tree)
	if err != nil {
		if errors.Is(err, kernel.ErrUnavailable) {
			return nil, err
		}
		return nil, Usagef("allocator.kernel.tree: %v", err)
	}
	kernelBackends[tree] = b
	return b, nil
}

// buildAllocator builds the named allocator on p.
func BuildAllocator(cfg *Config, name string, p *dma.Platform) (dma.Allocator, error) {
	for _, e := range allocatorTable() {
		if e.name == name {
			return e.build(cfg, p)
		}
	}
	return nil, Usagef("unknown allocator %q (valid: %s)", name, strings.Join(everyAllocatorName(), ", "))
}

func usbWorkload(ctrl usb.Controller) func(cfg *Config, _ string, seed uint64) ([]dma.Source, error) {
	return func(cfg *Config, _ string, seed uint64) ([]dma.Source, error) {
		return []dma.Source{usb.New(ctrl, cfg.Workload.USB, seed)}, nil
	}
}

var workloads = []workloadEntry{
	{name: "usb-uhci", doc: "USB bulk storage on UHCI: one 48-byte TD per 64-byte packet, always GFP_ATOMIC", build: usbWorkload(usb.UHCI)},
	{name: "usb-ohci", doc: "USB bulk storage on OHCI: one 64-byte TD per 4 KiB, the URB's gfp flags", build: usbWorkload(usb.OHCI)},
	{name: "usb-ehci", doc: "USB bulk storage on EHCI: one 96-byte qTD per 16 KiB, 4 KiB boundary", build: usbWorkload(usb.EHCI)},
	{name: "scsi", doc: "SCSI host adapter: a control block and a dma_map_sg'ed scatterlist per command, requeued when memory or mapping fails",
		build: func(cfg *Config, _ string, seed uint64) ([]dma.Source, error) {
			return []dma.Source{scsi.New(cfg.Workload.SCSI, seed)}, nil
		}},
	{name: "netrx", doc: "network rx ring: one coherent descriptor ring, 2 KiB buffers refilled GFP_ATOMIC in softirq; a failed refill drops packets",
		build: func(cfg *Config, _ string, seed uint64) ([]dma.Source, error) {
			return []dma.Source{netrx.New(cfg.Workload.NetRX, seed)}, nil
		}},
	{name: "nvme", doc: "NVMe controller (Linux 6.6 nvme-pci): per command its data mapped and a PRP list from the \"prp list 256\" or \"prp list page\" dma_pool, GFP_ATOMIC; queues per CPU",
		build: func(cfg *Config, _ string, seed uint64) ([]dma.Source, error) {
			return []dma.Source{nvme.New(cfg.Workload.NVMe, seed)}, nil
		}},
	{name: "virtio-blk", doc: "virtio-blk with the DMA API: split virtqueues in coherent memory; per request header, data pages, status and indirect table each mapped",
		build: func(cfg *Config, _ string, seed uint64) ([]dma.Source, error) {
			return []dma.Source{virtio.NewBlk(cfg.Workload.VirtioBlk, seed)}, nil
		}},
	{name: "virtio-net", doc: "virtio-net with the DMA API: rx buffers mapped per packet and refilled GFP_ATOMIC in softirq, tx packets mapped per packet",
		build: func(cfg *Config, _ string, seed uint64) ([]dma.Source, error) {
			return []dma.Source{netrx.New(cfg.Workload.VirtioNet.RX, seed), virtio.NewTX(cfg.Workload.VirtioNet.TX, seed)}, nil
		}},
	{name: "poolbench", doc: "the kernel's dmapool_test: allocate clamp(4096/size*512, 1024, 8192) blocks, free them, 100 rounds; one scenario per size",
		scenarios: func(cfg *Config) []string {
			var out []string
			for _, size := range cfg.Workload.Poolbench.Sizes {
				out = append(out, poolbench.Scenario(size))
			}
			return out
		},
		build: func(cfg *Config, scenario string, _ uint64) ([]dma.Source, error) {
			size, err := poolbench.ParseScenario(scenario)
			if err != nil {
				return nil, err
			}
			return []dma.Source{poolbench.New(size, cfg.Workload.Poolbench.Rounds)}, nil
		}},
}

// scenarios returns the scenario names a workload runs as.
func (w *workloadEntry) ScenarioNames(cfg *Config) []string {
	if w.scenarios == nil {
		return []string{w.name}
	}
	return w.scenarios(cfg)
}

func names[T, U any](entries []T, name func(T) U) []U {
	out := make([]U, len(entries))
	for i, e := range entries {
		out[i] = name(e)
	}
	return out
}

func PlatformNames() []string {
	return names(platforms, func(e platformEntry) string { return e.name })
}

// AllocatorNames lists the models; KernelAllocatorNames the allocators
// that run a kernel tree's code.
func AllocatorNames() []string { return allocatorNames(false) }

func KernelAllocatorNames() []string { return allocatorNames(true) }

// everyAllocatorName lists the models and the kernel allocators.
func everyAllocatorName() []string {
	return names(allocatorTable(), func(e allocatorEntry) string { return e.name })
}

func allocatorNames(kernel bool) []string {
	var out []string
	for _, e := range allocatorTable() {
		if e.kernel == kernel {
			out = append(out, e.name)
		}
	}
	return out
}
func WorkloadNames() []string {
	return names(workloads, func(e workloadEntry) string { return e.name })
}

// checkNames returns a usage error naming the first unknown name and the
// valid ones.
func checkNames(kind string, got, valid []string) error {
	if len(got) == 0 {
		return Usagef("no %ss given (valid: %s)", kind, strings.Join(valid, ", "))
	}
	for _, g := range got {
		found := false
		for _, v := range valid {
			if g == v {
				found = true
			}
		}
		if !found {
			return Usagef("unknown %s %q (valid: %s)", kind, g, strings.Join(valid, ", "))
		}
	}
	return nil
}

// Builder wires a config's models for matrix.Run. It is safe for
// concurrent use: every call builds fresh values.
type Builder struct {
	cfg    *Config
	traces trace.Opener
}

var _ matrix.Builder = (*Builder)(nil)

// NewBuilder returns a builder for cfg's cells.
func NewBuilder(cfg *Config) *Builder {
	b := &Builder{cfg: cfg}
	b.traces.Limit = cfg.Events
	return b
}

// Machine implements matrix.Builder.
func (b *Builder) Machine(c matrix.Cell) (*dma.Platform, dma.Allocator, error) {
	var pe *platformEntry
	for i := range platforms {
		if platforms[i].name == c.Platform {
			pe = &platforms[i]
		}
	}
	if pe == nil {
		return nil, nil, fmt.Errorf("cell %s: unknown platform", c)
	}
	cfg := b.cfg.ForScenario(c.Scenario)
	p, err := pe.build(cfg, &dma.Meter{})
	if err != nil {
		return nil, nil, fmt.Errorf("platform %s: %w", c.Platform, err)
	}
	a, err := BuildAllocator(cfg, c.Allocator, p)
	if err != nil {
		return nil, nil, fmt.Errorf("allocator %s on %s: %w", c.Allocator, c.Platform, err)
	}
	return p, a, nil
}

// workloadOf returns the workload a scenario belongs to.
func (b *Builder) workloadOf(scenario string) *workloadEntry {
	for i := range workloads {
		for _, s := range workloads[i].ScenarioNames(b.cfg) {
			if s == scenario {
				return &workloads[i]
			}
		}
	}
	return nil
}

// ShareKey implements matrix.Sharer: the cells that replay one trace
// share its decoding.
func (b *Builder) ShareKey(c matrix.Cell) string {
	if path, ok := strings.CutPrefix(c.Scenario, TracePrefix); ok {
		return path
	}
	return ""
}

// SharedSources implements matrix.Sharer: one decoding of the trace the
// cells replay, read by each one's real and null replay.
func (b *Builder) SharedSources(cells []matrix.Cell) (real, null [][]dma.Source, err error) {
	sh, err := b.openTrace(b.ShareKey(cells[0]))
	if err != nil {
		return nil, nil, err
	}
	for range cells {
		real = append(real, []dma.Source{sh.Source()})
		null = append(null, []dma.Source{sh.Source()})
	}
	return real, null, nil
}

// openTrace opens a trace for replay; a file that cannot be opened is the
// user's error.
func (b *Builder) openTrace(path string) (*trace.Shared, error) {
	sh, err := b.traces.OpenShared(path)
	if pe := (*os.PathError)(nil); errors.As(err, &pe) {
		return nil, UsageError{err}
	}
	return sh, err
}

// Sources implements matrix.Builder: a trace (trace:FILE), the members of
// a configured scenario, or one workload.
func (b *Builder) Sources(c matrix.Cell) ([]dma.Source, error) {
	if path, ok := strings.CutPrefix(c.Scenario, TracePrefix); ok {
		sh, err := b.openTrace(path)
		if err != nil {
			return nil, err
		}
		return []dma.Source{sh.Source()}, nil
	}
	if sc, ok := b.cfg.Scenario[c.Scenario]; ok {
		cfg := b.cfg.ForScenario(c.Scenario)
		members := make([]scenario.Member, len(sc.Workloads))
		for i, w := range sc.Workloads {
			we := b.workloadOf(w)
			if we == nil {
				return nil, fmt.Errorf("scenario %s: unknown workload %q", c.Scenario, w)
			}
			members[i] = scenario.Member{Name: w, Start: dma.Time(sc.StartMS[w]) * dma.Millisecond,
				Build: func(seed uint64) ([]dma.Source, error) { return we.build(cfg, w, seed) }}
		}
		srcs, err := scenario.Compose(members, c.Seed)
		if err != nil {
			return nil, fmt.Errorf("scenario %s: %w", c.Scenario, err)
		}
		return srcs, nil
	}
	w := b.workloadOf(c.Scenario)
	if w == nil {
		return nil, fmt.Errorf("cell %s: unknown scenario", c)
	}
	return w.build(b.cfg, c.Scenario, c.Seed)
}

// ScenarioNames lists the configured scenarios, sorted.
func ScenarioNames(cfg *Config) []string {
	return slices.Sorted(maps.Keys(cfg.Scenario))
}

// Cells expands a config into its cells, in a fixed order: workloads (and
// the scenarios each runs as) in the order given, then allocators,
// platforms and seeds.
func Cells(cfg *Config) []matrix.Cell {
	var scenarios []string
	for _, w := range cfg.Workloads {
		if we := workloadByName(w); we != nil {
			scenarios = append(scenarios, we.ScenarioNames(cfg)...)
		} else {
			scenarios = append(scenarios, w)
		}
	}
	return matrix.Expand(scenarios, cfg.Allocators, cfg.Platforms, cfg.SeedValues())
}

func workloadByName(name string) *workloadEntry {
	for i := range workloads {
		if workloads[i].name == name {
			return &workloads[i]
		}
	}
	return nil
}

// Entry names a model or workload and says what it stands for.
type Entry struct{ Name, Doc string }

// Allocators lists the allocator models, in table order.
func Allocators() []Entry {
	return names(allocatorTable(), func(e allocatorEntry) Entry { return Entry{e.name, e.doc} })
}

// Platforms lists the platform models, in table order.
func Platforms() []Entry {
	return names(platforms, func(e platformEntry) Entry { return Entry{e.name, e.doc} })
}

// Workloads lists the workloads, then cfg's scenarios with what they run.
func Workloads(cfg *Config) []Entry {
	out := names(workloads, func(e workloadEntry) Entry { return Entry{e.name, e.doc} })
	for _, name := range ScenarioNames(cfg) {
		sc := cfg.Scenario[name]
		doc := "scenario: " + strings.Join(sc.Workloads, " + ") + " on one machine"
		for _, wl := range sc.Workloads {
			if ms := sc.StartMS[wl]; ms > 0 {
				doc += fmt.Sprintf(", %s starting at %d ms", wl, ms)
			}
		}
		if set := sc.Settings(); len(set) > 0 {
			doc += "; " + strings.Join(set, ", ")
		}
		out = append(out, Entry{name, doc})
	}
	return out
}

// poolNamer records the names of the pools a workload creates.
type poolNamer struct{ names []string }

func (p *poolNamer) Record(o *engine.Outcome) {
	if e := o.Event; e.Kind == dma.PoolCreate && !slices.Contains(p.names, e.Name) {
		p.names = append(p.names, e.Name)
	}
}

// PoolNames returns the names of the pools workload (a workload or a
// configured scenario) creates, in the order it creates them: its first
// events replayed against the null allocator, as its drivers create their
// pools when they load.
func PoolNames(cfg *Config, workload string) ([]string, error) {
	if sc, ok := cfg.Scenario[workload]; ok {
		// Its members' pools, with the scenario's knobs (a member that
		// starts late creates its pools late).
		var out []string
		for _, w := range sc.Workloads {
			names, err := PoolNames(cfg.ForScenario(workload), w)
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				if !slices.Contains(out, n) {
					out = append(out, n)
				}
			}
		}
		return out, nil
	}
	b := NewBuilder(cfg)
	var scenarios []string
	if we := workloadByName(workload); we != nil {
		scenarios = we.ScenarioNames(cfg)
	} else {
		scenarios = []string{workload}
	}
	var rec poolNamer
	for _, sc := range scenarios {
		srcs, err := b.Sources(matrix.Cell{Scenario: sc, Seed: 1})
		if err != nil {
			return nil, err
		}
		null, plat := engine.NewNull()
		if _, err := engine.New(plat, null, &rec, srcs...).Run(20_000); err != nil {
			return nil, err
		}
	}
	return rec.names, nil
}

// allPoolNames returns the pools every workload creates.
func allPoolNames(cfg *Config) ([]string, error) {
	var out []string
	for _, w := range append(WorkloadNames(), ScenarioNames(cfg)...) {
		names, err := PoolNames(cfg, w)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// PoolEntries lists, per workload (or just workload), the pools it
// creates.
func PoolEntries(cfg *Config, workload string) ([]Entry, error) {
	ws := append(WorkloadNames(), ScenarioNames(cfg)...)
	if workload != "" {
		if !slices.Contains(ws, workload) {
			return nil, Usagef("list pools: unknown workload %q (valid: %s)", workload, strings.Join(ws, ", "))
		}
		ws = []string{workload}
	}
	var es []Entry
	for _, w := range ws {
		names, err := PoolNames(cfg, w)
		if err != nil {
			return nil, err
		}
		es = append(es, Entry{Name: w, Doc: strings.Join(names, ", ")})
	}
	return es, nil
}

// MetricEntries lists the metric catalog: unit, which way is better,
// modeled or host, and meaning.
func MetricEntries() []Entry {
	var es []Entry
	for _, d := range metrics.Catalog {
		kind := "modeled"
		if !d.Exact {
			kind = "host"
		}
		doc := fmt.Sprintf("%-8s %-7s %-7s %s", d.Unit, d.Better, kind, d.Meaning)
		if d.When != "" {
			doc += " (only in " + d.When + ")"
		}
		es = append(es, Entry{Name: d.Key, Doc: doc})
	}
	return es
}

// KernelTraffic returns what `validate kernel` needs of tree: its back
// end, every workload (as cells name them) and their sources.
func KernelTraffic(tree string) (kernel.Backend, []string, func(string) ([]dma.Source, error), error) {
	cfg, err := Default()
	if err != nil {
		return nil, nil, nil, err
	}
	b, err := KernelBackend(tree)
	if err != nil {
		return nil, nil, nil, err
	}
	bld := NewBuilder(cfg)
	return b, bld.TrafficNames(), bld.PoolTraffic, nil
}

// PoolTraffic returns workload w's sources for a differential run (seed 1):
// the workloads of a validation, not a cell's.
func (b *Builder) PoolTraffic(w string) ([]dma.Source, error) {
	return b.Sources(matrix.Cell{Scenario: w, Allocator: "dmapool", Platform: "x86", Seed: 1})
}

// TrafficNames lists every workload, expanded as cells name them
// (poolbench/size=N), for a differential run.
func (b *Builder) TrafficNames() []string {
	var out []string
	for i := range workloads {
		out = append(out, workloads[i].ScenarioNames(b.cfg)...)
	}
	return out
}
