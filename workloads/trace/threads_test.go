package trace

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/dma"
)

func TestScanThreads(t *testing.T) {
	text := "dmabench-trace 1\n# 9 comment\ndev 0 d mask=0xff\n" +
		"5 3 process alloc id=0 pool=- dev=0 size=8 gfp=GFP_KERNEL\n" +
		"6 1 softirq free id=0\n\n" +
		"7 3 process alloc id=0 pool=- dev=0 size=8 gfp=GFP_KERNEL\n"
	got, err := ScanThreads(strings.NewReader(text))
	if err != nil || !slices.Equal(got, []int{1, 3}) {
		t.Fatalf("threads %v, %v; want [1 3]", got, err)
	}
}

// TestSplitKeepsSegmentsAndBoundsReadAhead: a thread's events read ahead
// for it keep their own segment lists though the reader reuses its
// buffer, and a thread whose next event lies more than MaxAhead events
// ahead is idle until the engine takes some of those.
func TestSplitKeepsSegmentsAndBoundsReadAhead(t *testing.T) {
	var b strings.Builder
	b.WriteString("dmabench-trace 1\ndev 0 d mask=0xffffffff\n")
	n := MaxAhead + 10
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%d 1 softirq map_sg id=%d dev=0 dir=to_device gfp=GFP_ATOMIC segs=%d,512\n", i, i, 4096+i)
	}
	fmt.Fprintf(&b, "%d 0 process alloc id=%d pool=- dev=0 size=8 gfp=GFP_KERNEL\n", n, n)
	r, err := NewReader("t", strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	s := NewSplit(r, []int{0, 1}, func() { closed = true })
	th := s.Threads()
	var e dma.Event
	if err := th[0].Next(&e); err != dma.ErrIdle {
		t.Fatalf("thread 0 with its event %d events ahead: %v, want idle", n, err)
	}
	for i := 0; i < n; i++ {
		if err := th[1].Next(&e); err != nil {
			t.Fatalf("thread 1 event %d: %v", i, err)
		}
		if (i < DenseIDs && e.ID != dma.ID(i)) || !slices.Equal(e.Segs, []int64{int64(4096 + i), 512}) || e.Line != int64(i+3) {
			t.Fatalf("thread 1 event %d: id %d segs %v line %d", i, e.ID, e.Segs, e.Line)
		}
	}
	if err := th[0].Next(&e); err != nil || e.Kind != dma.Alloc || e.Line != int64(n+3) {
		t.Fatalf("thread 0 after the others were taken: %v %v", e.ID, err)
	}
	for _, src := range th {
		if err := src.Next(&e); err != io.EOF {
			t.Fatalf("at the end: %v, want EOF", err)
		}
	}
	if !closed {
		t.Fatal("the file was not closed at the end")
	}
}

// TestScanBoundedByTheReplay: the scan for threads reads no further than
// a replay of limit events can reach.
func TestScanBoundedByTheReplay(t *testing.T) {
	var b strings.Builder
	b.WriteString("dmabench-trace 1\ndev 0 d mask=0xffffffff\n")
	n := MaxAhead + 2*batchMax + 100
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%d 1 process free id=%d\n", i, i%1000)
	}
	fmt.Fprintf(&b, "%d 7 process free id=1\n", n)
	if got, _ := ScanThreadsUpTo(strings.NewReader(b.String()), 50); !slices.Equal(got, []int{1}) {
		t.Errorf("bounded scan: %v, want [1]", got)
	}
	if got, _ := ScanThreads(strings.NewReader(b.String())); !slices.Equal(got, []int{1, 7}) {
		t.Errorf("whole scan: %v, want [1 7]", got)
	}
}
