package engine_test

import (
	"runtime"
	"testing"

	"github.com/dmabench/dmabench/bench"
	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/engine"
	"github.com/dmabench/dmabench/matrix"
	"github.com/dmabench/dmabench/metrics"
	"github.com/dmabench/dmabench/registry"
)

// BenchmarkReplay replays usb-uhci against dmapool on x86 with full
// metrics, one event per iteration.
func BenchmarkReplay(b *testing.B) {
	for _, w := range []string{"usb-uhci", "usb-ehci"} {
		b.Run(w+"/dmapool/x86", func(b *testing.B) { benchReplay(b, w, "dmapool", "x86") })
	}
}

// decodedStreams holds BenchmarkReplayDecoded's streams by workload.
var decodedStreams = map[string][]dma.Event{}

// BenchmarkReplayDecoded replays the stream a workload served against
// dmapool on x86, pre-decoded in memory, against dmapool on x86 with full
// metrics, one event per iteration: the replay without the workload's
// generation.
func BenchmarkReplayDecoded(b *testing.B) {
	for _, w := range []string{"usb-uhci", "usb-ehci"} {
		b.Run(w+"/dmapool/x86", func(b *testing.B) {
			bl := registry.NewBuilder(defaultConfig(b))
			c := matrix.Cell{Scenario: w, Allocator: "dmapool", Platform: "x86", Seed: 1}
			evs := decodedStreams[w]
			if evs == nil {
				// Once: the benchmark function runs again for each b.N.
				var err error
				if evs, err = bench.Decoded(bl, c, 1_000_000, nil); err != nil {
					b.Fatal(err)
				}
				decodedStreams[w] = evs
				runtime.GC() // the capture's garbage is not the replay's
			}
			b.ReportAllocs()
			b.ResetTimer()
			for left := int64(b.N); left > 0; {
				// Each pass over the stream on a machine of its own.
				b.StopTimer()
				p, a, err := bl.Machine(c)
				if err != nil {
					b.Fatal(err)
				}
				e := engine.New(p, a, &metrics.Recorder{}, &dma.List{Events: evs})
				runtime.GC() // so that no collection of the setup's garbage runs in the replay
				b.StartTimer()
				r, err := replayPass(e, min(left, int64(len(evs))))
				if err != nil || r.Events == 0 {
					b.Fatal(r.Events, err)
				}
				left -= r.Events
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// replayPass is the timed part of BenchmarkReplayDecoded, a function of
// its own so that a profiler can count it alone (valgrind --tool=callgrind
// --toggle-collect='*replayPass*').
//
//go:noinline
func replayPass(e *engine.Engine, n int64) (engine.Result, error) { return e.Run(n) }

// benchReplay times one event per iteration of a replay warmed up by
// 100,000 events.
func benchReplay(b *testing.B, workload, alloc, plat string) {
	e := newReplay(b, workload, alloc, plat)
	e.Run(100_000)
	b.ReportAllocs()
	b.ResetTimer()
	e.Run(int64(b.N))
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAllocators replays usb-ehci on x86 against each allocator
// model, one event per iteration, with full metrics.
func BenchmarkAllocators(b *testing.B) {
	for _, name := range registry.AllocatorNames() {
		b.Run(name, func(b *testing.B) { benchReplay(b, "usb-ehci", name, "x86") })
	}
}

func defaultConfig(t testing.TB) *registry.Config {
	cfg, err := registry.Default()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newReplay(t testing.TB, workload, alloc, plat string) *engine.Engine {
	b := registry.NewBuilder(defaultConfig(t))
	c := matrix.Cell{Scenario: workload, Allocator: alloc, Platform: plat, Seed: 1}
	srcs, err := b.Sources(c)
	if err != nil {
		t.Fatal(err)
	}
	p, a, err := b.Machine(c)
	if err != nil {
		t.Fatal(err)
	}
	return engine.New(p, a, &metrics.Recorder{}, srcs...)
}
