package ftrace

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/workloads/trace"
)

// FuzzImport: whatever text comes in, the importer does not panic and what
// it writes is a trace the reader accepts.
func FuzzImport(f *testing.F) {
	for _, name := range []string{"testdata/firewire-gfp-atomic-6.2.txt", "testdata/ath12k-dma-iommu-6.12.txt"} {
		data, _ := os.ReadFile(name)
		f.Add(data)
	}
	f.Add([]byte(" a b-1 [0] 1.0: kfree: ptr=  (null)\nx-2 [1] d..1 2.5: kmalloc: ptr=0x10 bytes_req=8 bytes_alloc=8 gfp_flags=0x400\n"))
	f.Add([]byte("t-1 [0] 1.0: dma_map_sg: dev dir=TO_DEVICE sizes={4096,512} phys_addrs={0x1,0x2}\nt-1 [0] 2.0: dma_unmap_sg: dev dir=TO_DEVICE phys_addrs={0x1,0x2}\n"))
	// bytes_alloc past the trace format's 1 GiB (once written as kernel=,
	// which the reader refuses).
	f.Add([]byte("t-1 [0] 1.0: kmalloc: call_site=x ptr=0x10 bytes_req=8 bytes_alloc=2000000000 gfp_flags=GFP_KERNEL\n"))
	// Scatterlists past the format's bounds: a 2 GB segment, 5000 segments.
	f.Add([]byte("t-1 [0] 1.0: dma_map_sg: dev dir=TO_DEVICE sizes={2000000000,512} phys_addrs={0x1,0x2}\n"))
	f.Add([]byte("t-1 [0] 1.0: dma_map_sg: dev dir=TO_DEVICE sizes={" + strings.Repeat("512,", 5000) + "512} phys_addrs={0x1}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		if _, err := Import("fuzz", bytes.NewReader(data), trace.NewWriter(&out), nil); err != nil {
			return
		}
		r, err := trace.NewReader("imported", bytes.NewReader(out.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		for {
			var e dma.Event
			err := r.Next(&e)
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatalf("the importer wrote a trace the reader rejects: %v\n%s", err, out.Bytes())
			}
		}
	})
}
