package trace

import (
	"errors"
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

// TestSplitRefusesAThreadNotScanned: an event on a thread the scan did
// not list ends the replay with an error naming its line and field,
// whether the engine asks for a batch or for one event.
func TestSplitRefusesAThreadNotScanned(t *testing.T) {
	text := "dmabench-trace 1\ndev 0 d mask=0xff\n" +
		"5 1 process alloc id=0 pool=- dev=0 size=8 gfp=GFP_KERNEL\n" +
		"6 4 process alloc id=1 pool=- dev=0 size=8 gfp=GFP_KERNEL\n"
	for _, batch := range []bool{true, false} {
		r, err := NewReader("t", strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		th := NewSplit(r, []int{1}, nil).Threads()[0]
		var e dma.Event
		// The first call hands out line 3's event; the second meets line 4.
		if batch {
			if _, err = th.(dma.Batcher).NextBatch(); err == nil {
				_, err = th.(dma.Batcher).NextBatch()
			}
		} else if err = th.Next(&e); err == nil {
			err = th.Next(&e)
		}
		var te *Error
		if !errors.As(err, &te) || te.Line != 4 || te.Field != "thread" || !strings.Contains(te.Msg, "thread 4") {
			t.Errorf("batch %v: %v, want line 4's thread refused", batch, err)
		}
	}
}

// TestSharedLetsGoOfWhatNoReplayNeeds: a Shared keeps the decoded events
// from the slowest replay's place on, and no more: a replay far behind
// holds them all, one closed holds none, and each replay reads every
// event, in order, whatever the others do. Its decoding is timed, chunk
// by chunk, by the clock it is given.
func TestSharedLetsGoOfWhatNoReplayNeeds(t *testing.T) {
	var b strings.Builder
	b.WriteString("dmabench-trace 1\ndev 0 d mask=0xffffffff\n")
	const n = 50 * chunkLen
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%d 0 process free id=%d\n", i, i%100)
	}
	for _, threads := range [][]int{{0}, {0, 7}} {
		r, err := NewReader("t", strings.NewReader(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		sh := NewShared(r, threads, nil)
		var now int64
		sh.SetClock(func() int64 { now++; return now }) // each decoding takes 1
		fast, slow := sh.Source(), sh.Source()
		first := func(s dma.Source) dma.Source {
			if sp, ok := s.(*Split); ok {
				return sp.Threads()[0]
			}
			return s
		}
		read := func(s dma.Source, k int, from int64) {
			t.Helper()
			var e dma.Event
			for i := range k {
				if err := first(s).Next(&e); err != nil || e.At != dma.Time(from)+dma.Time(i) {
					t.Fatalf("threads %v: event %d: at %d, %v", threads, int(from)+i, e.At, err)
				}
			}
		}
		read(fast, 20*chunkLen, 0)
		if got := len(sh.chunks); got < 20 {
			t.Fatalf("threads %v: %d chunks kept with a replay at the start", threads, got)
		}
		read(slow, 10*chunkLen, 0)
		read(fast, chunkLen, 20*chunkLen) // decodes one more chunk, letting go of those behind slow
		if got := len(sh.chunks); got > 13 {
			t.Fatalf("threads %v: %d chunks kept, the slowest replay %d chunks behind the fastest", threads, got, 11)
		}
		slow.(dma.Closer).Close()
		read(fast, 3*chunkLen, 21*chunkLen)
		if got := len(sh.chunks); got > 2 {
			t.Fatalf("threads %v: %d chunks kept for a closed replay", threads, got)
		}
		if d := sh.DecodeNS(); d != sh.base+int64(len(sh.chunks)) || fast.(Decoder).Decoder() != sh {
			t.Fatalf("threads %v: decoding timed at %d for %d chunks", threads, d, sh.base+int64(len(sh.chunks)))
		}
	}
}
