package matrix

import (
	"slices"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/dma"
)

// sharer shares the sources of cells whose scenario starts with "trace:".
type sharer struct{}

func (sharer) Machine(Cell) (*dma.Platform, dma.Allocator, error) { return nil, nil, nil }
func (sharer) Sources(Cell) ([]dma.Source, error)                 { return nil, nil }
func (sharer) ShareKey(c Cell) string {
	if strings.HasPrefix(c.Scenario, "trace:") {
		return c.Scenario
	}
	return ""
}
func (sharer) SharedSources([]Cell) (real, null [][]dma.Source, err error) { return nil, nil, nil }

// TestPlan: the cells of one trace run in groups of at most GroupMax, in
// at least one group a worker where there are enough cells; other cells
// alone; every cell in exactly one unit.
func TestPlan(t *testing.T) {
	var cells []Cell
	for i := range 20 {
		cells = append(cells, Cell{Scenario: "trace:a", Seed: uint64(i)})
		if i%5 == 0 {
			cells = append(cells, Cell{Scenario: "usb-uhci", Seed: uint64(i)}, Cell{Scenario: "trace:b", Seed: uint64(i)})
		}
	}
	for _, tc := range []struct {
		jobs int
		want []int // unit sizes
	}{
		{1, []int{6, 7, 7, 1, 4, 1, 1, 1}},
		{4, []int{5, 5, 5, 5, 1, 1, 1, 1, 1, 1, 1, 1}},
	} {
		var sh sharer
		units := plan(cells, sh, tc.jobs)
		var sizes, seen []int
		for _, u := range units {
			sizes = append(sizes, len(u))
			seen = append(seen, u...)
			for _, i := range u {
				if sh.ShareKey(cells[i]) != sh.ShareKey(cells[u[0]]) || len(u) > GroupMax {
					t.Fatalf("-j %d: unit %v mixes keys or is too large", tc.jobs, u)
				}
			}
		}
		slices.Sort(seen)
		for i := range seen {
			if seen[i] != i {
				t.Fatalf("-j %d: cells in units %v", tc.jobs, units)
			}
		}
		if len(seen) != len(cells) || !slices.Equal(sizes, tc.want) {
			t.Errorf("-j %d: unit sizes %v, want %v", tc.jobs, sizes, tc.want)
		}
	}
}
