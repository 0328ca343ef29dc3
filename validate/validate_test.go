package validate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/allocators/dmaalloc"
)

// TestFtraceDetectsEachSlabAllocator: with no table given, validate finds
// the slab allocator of each capture (a SLAB one from a real 3.6 boot, a
// SLUB and a SLOB one written in their kernels' shapes) and matches every
// kmalloc event.
func TestFtraceDetectsEachSlabAllocator(t *testing.T) {
	for file, want := range map[string]dmaalloc.Table{
		"kmem-slab-3.6-i386.log.gz": dmaalloc.SLAB,
		"slub-6x.txt":               dmaalloc.SLUB,
		"slob-3x.txt":               dmaalloc.SLOB,
	} {
		path := filepath.Join("..", "ftrace", "testdata", file)
		d, err := DetectSlab(path)
		if err != nil {
			t.Fatal(err)
		}
		if d.Table != want || d.Matched != d.Total || d.Total == 0 {
			t.Errorf("%s: detected %+v, want %s matching all", file, d, want)
		}
		r, err := Ftrace(path, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if r.Matched != r.Total || r.Total != d.Total {
			t.Errorf("%s: matched %d of %d", file, r.Matched, r.Total)
		}
		// The wrong table misses some.
		other := "slub"
		if want == dmaalloc.SLUB {
			other = "slob"
		}
		if r, _ := Ftrace(path, other, 64); r.Matched == r.Total {
			t.Errorf("%s: table %s matched all %d too: the test cannot tell tables apart", file, other, r.Total)
		}
	}
}

// TestFtraceSkipsWhatImportSkips: a corrupted line, a kmalloc without
// usable sizes and a failed kmalloc are skipped and counted, as import
// skips them; validate goes on to the lines after them.
func TestFtraceSkipsWhatImportSkips(t *testing.T) {
	text := `  a-1 [000] ....  1.000000: kmalloc: call_site=c1 ptr=c0001000 bytes_req=20 bytes_alloc=32 gfp_flags=GFP_KERNEL
  a-1 [000] ....  1.000001: kmalloc: call_site=c1 ptr=c0001
  a-1 [000] ....  1.000002: kmalloc: call_site=c1 ptr=c0002000 bytes_req=x bytes_alloc=32 gfp_flags=GFP_KERNEL
  a-1 [000] ....  1.000003: kmalloc: call_site=c1 ptr=  (null) bytes_req=20 bytes_alloc=32 gfp_flags=GFP_ATOMIC
garbage that is no event at all
  a-1 [000] ....  1.000004: kmalloc: call_site=c1 ptr=c0003000 bytes_req=40 bytes_alloc=64 gfp_flags=GFP_KERNEL
`
	path := filepath.Join(t.TempDir(), "cap.txt")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Ftrace(path, "slab", 64)
	if err != nil {
		t.Fatal(err)
	}
	if r.Total != 2 || r.Matched != 2 {
		t.Errorf("matched %d of %d, want 2 of 2", r.Matched, r.Total)
	}
	notes := strings.Join(r.Notes, "\n")
	for _, want := range []string{"kmalloc: no usable bytes_req/bytes_alloc: 2", "kmalloc: failed allocation: no size to compare: 1", "not an ftrace event line (wrapped or corrupted): 1"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
}
