package iommu

import (
	"fmt"
	"testing"
)

// BenchmarkDomainChurn: allocate and free one page while n ranges stay
// live (the range caches hold thousands on a busy machine).
func BenchmarkDomainChurn(b *testing.B) {
	for _, n := range []int{64, 2048, 32768} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			d := NewDomain(1)
			for i := 0; i < n; i++ {
				if _, ok := d.Alloc(uint64(1+i%4), 1<<20); !ok {
					b.Fatal("full")
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				pfn, ok := d.Alloc(1, 1<<20)
				if !ok {
					b.Fatal("full")
				}
				d.Free(pfn)
			}
		})
	}
}
