// Package scenario composes the workloads of a scenario into the sources
// of one cell: each member gets its own random stream derived from the
// cell's seed, and may be held back until a start time, as a driver that
// loads, or a device plugged in, into a machine already running.
package scenario

import (
	"fmt"

	"github.com/dmabench/dmabench/dma"
)

// Member is one workload of a scenario.
type Member struct {
	// Name is the workload's name, for errors.
	Name string
	// Start holds the member's sources back until this modeled time.
	Start dma.Time
	// Build returns the member's sources for a seed.
	Build func(seed uint64) ([]dma.Source, error)
}

// Seed returns the seed of the i-th member of a cell seeded cell: the
// members draw from streams of their own, and the same cell seed always
// gives each the same one.
func Seed(cell uint64, i int) uint64 { return cell*1000003 + uint64(i) }

// Compose builds the sources of every member, in order, for a cell seeded
// seed.
func Compose(members []Member, seed uint64) ([]dma.Source, error) {
	var all []dma.Source
	for i, m := range members {
		srcs, err := m.Build(Seed(seed, i))
		if err != nil {
			return nil, err
		}
		if m.Start > 0 {
			for _, s := range srcs {
				if err := StartAt(s, m.Start); err != nil {
					return nil, fmt.Errorf("workload %s: %w", m.Name, err)
				}
			}
		}
		all = append(all, srcs...)
	}
	return all, nil
}

// starter is a source (or a thread of one) that can be held back.
type starter interface{ StartAt(dma.Time) }

// StartAt holds src, or every thread of it, until at.
func StartAt(src dma.Source, at dma.Time) error {
	if th, ok := src.(dma.Threads); ok {
		for _, t := range th.Threads() {
			if err := StartAt(t, at); err != nil {
				return err
			}
		}
		return nil
	}
	st, ok := src.(starter)
	if !ok {
		return fmt.Errorf("cannot be started late: %T", src)
	}
	st.StartAt(at)
	return nil
}
