package main

import (
	"fmt"
	"strings"

	"github.com/dmabench/dmabench/allocators/dmapool"
	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/matrix"
	"github.com/dmabench/dmabench/platforms/x86"
	"github.com/dmabench/dmabench/workloads/usb"
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
}

type workloadEntry struct {
	name, doc string
	build     func(cfg *Config, seed uint64) ([]dma.Source, error)
}

var platforms = []platformEntry{
	{"x86", "i386 PC: cache-coherent, no IOMMU, 16 MiB ZONE_DMA, free and infallible streaming maps",
		func(cfg *Config, m *dma.Meter) (*dma.Platform, error) {
			p, _, err := x86.New(cfg.Platform.X86, m)
			return p, err
		}},
}

var allocators = []allocatorEntry{
	{"dmapool", "dma_pool as reworked in 2023: per-pool LIFO free stack, pages kept until destroy",
		func(cfg *Config, p *dma.Platform) (dma.Allocator, error) {
			return dmapool.New(p, cfg.Allocator.DMAPool)
		}},
}

func usbWorkload(ctrl usb.Controller) func(cfg *Config, seed uint64) ([]dma.Source, error) {
	return func(cfg *Config, seed uint64) ([]dma.Source, error) {
		return []dma.Source{usb.New(ctrl, cfg.Workload.USB, seed)}, nil
	}
}

var workloads = []workloadEntry{
	{"usb-uhci", "USB bulk storage on UHCI: one 48-byte TD per 64-byte packet, always GFP_ATOMIC", usbWorkload(usb.UHCI)},
	{"usb-ohci", "USB bulk storage on OHCI: one 64-byte TD per 4 KiB, the URB's gfp flags", usbWorkload(usb.OHCI)},
	{"usb-ehci", "USB bulk storage on EHCI: one 96-byte qTD per 16 KiB, 4 KiB boundary", usbWorkload(usb.EHCI)},
}

func names[T any](entries []T, name func(T) string) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = name(e)
	}
	return out
}

func platformNames() []string {
	return names(platforms, func(e platformEntry) string { return e.name })
}
func allocatorNames() []string {
	return names(allocators, func(e allocatorEntry) string { return e.name })
}
func workloadNames() []string {
	return names(workloads, func(e workloadEntry) string { return e.name })
}

// checkNames returns a usage error naming the first unknown name and the
// valid ones.
func checkNames(kind string, got, valid []string) error {
	if len(got) == 0 {
		return usagef("no %ss given (valid: %s)", kind, strings.Join(valid, ", "))
	}
	for _, g := range got {
		found := false
		for _, v := range valid {
			if g == v {
				found = true
			}
		}
		if !found {
			return usagef("unknown %s %q (valid: %s)", kind, g, strings.Join(valid, ", "))
		}
	}
	return nil
}

// builder wires a config's models for matrix.Run.
type builder struct{ cfg *Config }

var _ matrix.Builder = builder{}

func (b builder) Machine(c matrix.Cell) (*dma.Platform, dma.Allocator, error) {
	var pe *platformEntry
	for i := range platforms {
		if platforms[i].name == c.Platform {
			pe = &platforms[i]
		}
	}
	var ae *allocatorEntry
	for i := range allocators {
		if allocators[i].name == c.Allocator {
			ae = &allocators[i]
		}
	}
	if pe == nil || ae == nil {
		return nil, nil, fmt.Errorf("cell %s: unknown platform or allocator", c)
	}
	p, err := pe.build(b.cfg, &dma.Meter{})
	if err != nil {
		return nil, nil, fmt.Errorf("platform %s: %w", c.Platform, err)
	}
	a, err := ae.build(b.cfg, p)
	if err != nil {
		return nil, nil, fmt.Errorf("allocator %s on %s: %w", c.Allocator, c.Platform, err)
	}
	return p, a, nil
}

func (b builder) Sources(c matrix.Cell) ([]dma.Source, error) {
	for _, w := range workloads {
		if w.name == c.Scenario {
			return w.build(b.cfg, c.Seed)
		}
	}
	return nil, fmt.Errorf("cell %s: unknown workload", c)
}
