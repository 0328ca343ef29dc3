// Package poolbench generates the pattern of the kernel's dmapool
// benchmark (mm/dmapool_test.c): for one block size, create a pool
// (align = size), allocate blocks = clamp(PAGE_SIZE/size * 512, 1024, 8192)
// blocks with GFP_KERNEL, free them all in allocation order, and repeat for
// a number of rounds.
//
// It is what showed the 2023 rework's point: per-operation cost that grows
// with the number of chunks in pci_pool and stays flat in dma_pool.
package poolbench

import (
	"fmt"
	"io"

	"github.com/dmabench/dmabench/dma"
)

// Config holds the workload's knobs.
type Config struct {
	// Sizes are the block sizes, one scenario each.
	Sizes []int64 `mapstructure:"sizes" json:"sizes"`
	// Rounds is the number of allocate-all/free-all rounds (NR_TESTS).
	Rounds int `mapstructure:"rounds" json:"rounds"`
}

// DefaultConfig returns the dmapool_test parameters.
func DefaultConfig() Config {
	return Config{Sizes: []int64{16, 64, 256, 1024, 4096}, Rounds: 100}
}

// Validate checks the knobs.
func (c Config) Validate() error {
	if len(c.Sizes) == 0 {
		return fmt.Errorf("poolbench.sizes: empty")
	}
	for _, s := range c.Sizes {
		if s <= 0 || s > dma.PageSize || s&(s-1) != 0 {
			return fmt.Errorf("poolbench.sizes: %d is not a power of two up to %d", s, dma.PageSize)
		}
	}
	if c.Rounds < 1 || c.Rounds > 1_000_000 {
		return fmt.Errorf("poolbench.rounds %d: want 1..1000000", c.Rounds)
	}
	return nil
}

// Blocks returns how many blocks a round allocates for block size size.
func Blocks(size int64) int {
	return int(min(max(dma.PageSize/size*512, 1024), 8192))
}

// Scenario returns the scenario name for a block size.
func Scenario(size int64) string { return fmt.Sprintf("poolbench/size=%d", size) }

// ParseScenario returns the block size of a scenario name.
func ParseScenario(name string) (int64, error) {
	var size int64
	if _, err := fmt.Sscanf(name, "poolbench/size=%d", &size); err != nil || Scenario(size) != name {
		return 0, fmt.Errorf("%q is not a poolbench scenario (poolbench/size=N)", name)
	}
	return size, nil
}

// Source emits one block size's rounds. It ends after the last round.
type Source struct {
	size   int64
	blocks int
	rounds int
	dev    dma.Device
	step   int
	round  int
	t      dma.Time
}

var _ dma.Source = (*Source)(nil)

// New returns the source for one block size.
func New(size int64, rounds int) *Source {
	return &Source{size: size, blocks: Blocks(size), rounds: rounds, dev: dma.Device{Name: "dmapool_test", Mask: dma.BitMask(32)}, step: -1}
}

// Name returns the scenario name.
func (s *Source) Name() string { return Scenario(s.size) }

// Next implements dma.Source.
func (s *Source) Next(e *dma.Event) error {
	s.t++
	if s.step < 0 {
		s.step = 0
		*e = dma.Event{At: s.t, Kind: dma.PoolCreate, Ctx: dma.Process, Dev: &s.dev, ID: 0, Pool: dma.NoPool, Name: "dmapool_test", Size: s.size, Align: s.size}
		return nil
	}
	if s.round == s.rounds {
		return io.EOF
	}
	kind, id := dma.Alloc, s.step
	if s.step >= s.blocks {
		kind, id = dma.Free, s.step-s.blocks
	}
	*e = dma.Event{At: s.t, Kind: kind, Ctx: dma.Process, GFP: dma.GFPKernel, Dev: &s.dev, ID: dma.ID(id), Pool: 0, Size: s.size}
	s.step++
	if s.step == 2*s.blocks {
		s.step = 0
		s.round++
	}
	return nil
}
