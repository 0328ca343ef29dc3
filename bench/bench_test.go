package bench_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/dmabench/dmabench/bench"
	"github.com/dmabench/dmabench/engine"
	"github.com/dmabench/dmabench/matrix"
	"github.com/dmabench/dmabench/metrics"
	"github.com/dmabench/dmabench/registry"
	"github.com/dmabench/dmabench/workloads/trace"
)

// fileReplay benchmarks the end-to-end replay of a usb-uhci capture
// through dmapool on x86, from a file in the encoding w writes: open,
// parse, split into threads, engine, model, metrics. Reported per event.
func fileReplay(b *testing.B, w func(*bytes.Buffer) *trace.Writer, name string) {
	fileReplayOf(b, "usb-uhci", w, name)
}

// fileReplayOf is fileReplay of workload wl's capture.
func fileReplayOf(b *testing.B, wl string, w func(*bytes.Buffer) *trace.Writer, name string) {
	cfg, err := registry.Default()
	if err != nil {
		b.Fatal(err)
	}
	reg := registry.NewBuilder(cfg)
	cell := matrix.Cell{Scenario: wl, Allocator: "dmapool", Platform: "x86", Seed: 1}
	var text bytes.Buffer
	tr := trace.NewRecorder(trace.NewWriter(&text))
	if _, err := bench.Decoded(reg, cell, 200_000, tr); err != nil {
		b.Fatal(err)
	}
	if err := tr.W.Flush(); err != nil {
		b.Fatal(err)
	}
	threads, err := trace.ScanThreads(bytes.NewReader(text.Bytes()))
	if err != nil {
		b.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := trace.Convert("bench", bytes.NewReader(text.Bytes()), w(&out), threads); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), name)
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	replayFile(b, reg, cell, path)
}

// replayFile is the timed loop of fileReplay, apart so that a profile
// tells it from the set-up.
func replayFile(b *testing.B, reg *registry.Builder, cell matrix.Cell, path string) {
	var events int64
	for range b.N {
		b.StopTimer()
		p, a, err := reg.Machine(cell)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		src, err := (&trace.Opener{}).Open(path)
		if err != nil {
			b.Fatal(err)
		}
		res, err := engine.New(p, a, &metrics.Recorder{}, src).Run(0)
		if err != nil {
			b.Fatal(err)
		}
		events += res.Events
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
}

func BenchmarkFileReplayBinary(b *testing.B) {
	fileReplay(b, func(o *bytes.Buffer) *trace.Writer { return trace.NewBinaryWriter(o) }, "uhci.trace.bin")
}

// BenchmarkFileReplayOneThread is BenchmarkFileReplayBinary with a
// capture of one thread (netrx), which the replay reads without a split.
func BenchmarkFileReplayOneThread(b *testing.B) {
	fileReplayOf(b, "netrx", func(o *bytes.Buffer) *trace.Writer { return trace.NewBinaryWriter(o) }, "netrx.trace.bin")
}

func BenchmarkFileReplayText(b *testing.B) {
	fileReplay(b, func(o *bytes.Buffer) *trace.Writer { return trace.NewWriter(o) }, "uhci.trace")
}
