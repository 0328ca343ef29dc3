package trace_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/engine"
	"github.com/dmabench/dmabench/workloads/trace"
)

// oneBlock is the null allocator with room for one block per pool: a
// caller that may sleep waits for a free in the pool, which wakes it.
type oneBlock struct {
	*engine.Null
	meter *dma.Meter
	live  map[dma.ID]bool
}

func (a *oneBlock) Alloc(pool dma.ID, r *dma.Request) (dma.Block, error) {
	if a.live[pool] {
		r.Wait = dma.Wait{Kind: dma.WaitPoolRetry, Timeout: 100 * dma.Millisecond, On: pool}
		return dma.Block{}, dma.ErrWouldBlock
	}
	a.live[pool] = true
	b, err := a.Null.Alloc(pool, r)
	b.Pool = pool
	return b, err
}

func (a *oneBlock) Free(b dma.Block) {
	a.live[b.Pool] = false
	a.meter.Wake = b.Pool + 1
}

// TestTraceThreadsSleepApart: a trace replays as its threads, so a
// request sleeping on one thread does not hold back another thread's free
// that comes after it in the file, and wakes it as in the traced kernel;
// events of one time keep their file order across threads.
func TestTraceThreadsSleepApart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sleep.trace")
	text := "dmabench-trace 1\ndev 0 d mask=0xffffffff\n" +
		"0 0 process pool_create id=0 dev=0 size=64 name=p\n" +
		"1 0 process alloc id=0 pool=0 dev=0 size=64 gfp=GFP_KERNEL\n" +
		"2 0 process alloc id=1 pool=0 dev=0 size=64 gfp=GFP_KERNEL\n" + // sleeps
		"3000 1 hardirq free id=0\n" +
		"3000 1 hardirq alloc id=0 pool=- dev=0 size=8 gfp=GFP_ATOMIC\n" + // id 0 again, after its free
		"5000 0 process free id=1\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var o trace.Opener
	src, err := o.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := src.(dma.Threads); !ok {
		t.Fatalf("a trace of two threads opens as %T, want one source per thread", src)
	}
	n, p := engine.NewNull()
	var rec tape
	e := engine.New(p, &oneBlock{Null: n, meter: p.Meter, live: map[dma.ID]bool{}}, &rec, src)
	if _, err := e.Run(0); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range rec {
		got = append(got, fmt.Sprintf("%s %d at %d err=%v misuse=%v", o.kind, o.id, o.at, o.err, o.misuse))
	}
	want := []string{
		"pool_create 0 at 0 err=<nil> misuse=none",
		"alloc 0 at 1 err=<nil> misuse=none",
		"free 0 at 3000 err=<nil> misuse=none",
		"alloc 1 at 3000 err=<nil> misuse=none", // woken by the free
		"alloc 0 at 3000 err=<nil> misuse=none",
		"free 1 at 5000 err=<nil> misuse=none",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("served\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

type tapeEntry struct {
	kind   dma.Kind
	id     dma.ID
	at     dma.Time
	err    error
	misuse engine.Misuse
}

type tape []tapeEntry

func (t *tape) Record(o *engine.Outcome) {
	*t = append(*t, tapeEntry{o.Event.Kind, o.Event.ID, o.Event.At, o.Err, o.Misuse})
}
