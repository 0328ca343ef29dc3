package nvme

import (
	"testing"

	"github.com/dmabench/dmabench/dma"
)

// TestPRPLists: nvme_pci_setup_prps's choice of pool and list count.
func TestPRPLists(t *testing.T) {
	for _, tc := range []struct {
		length int64
		pool   dma.ID
		n      int
	}{
		{4096, dma.NoPool, 0},       // PRP1
		{8192, dma.NoPool, 0},       // PRP1 + PRP2
		{12288, SmallPool, 1},       // PRP1 and a list of 2
		{132 << 10, SmallPool, 1},   // 32 entries: the 256-byte pool holds them
		{136 << 10, PagePool, 1},    // 33
		{2<<20 + 4096, PagePool, 1}, // 512 entries: one page
		{2<<20 + 8192, PagePool, 2}, // 513: a second page, chained
		{4<<20 + 4096, PagePool, 3}, // 1024: 511 + 511 + 2
	} {
		if pool, n := PRPLists(tc.length); pool != tc.pool || n != tc.n {
			t.Errorf("%d bytes: pool %d x%d, want %d x%d", tc.length, pool, n, tc.pool, tc.n)
		}
	}
}
