package trace

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/dma"
)

var dev = &dma.Device{Name: "ehci_hcd", Mask: dma.BitMask(32)}

func sample() []dma.Event {
	return []dma.Event{
		{At: 0, Kind: dma.PoolCreate, ID: 0, Pool: dma.NoPool, Dev: dev, Size: 96, Align: 32, Boundary: 4096, Name: "ehci_qtd"},
		{At: 5, Kind: dma.Alloc, ID: 0, Pool: 0, Dev: dev, Size: 96, GFP: dma.GFPNoIO},
		{At: 5, Kind: dma.Map, Ctx: dma.Process, ID: 1, Pool: dma.NoPool, Dev: dev, Size: 8192, Dir: dma.FromDevice, GFP: dma.GFPNoIO},
		{At: 7, Kind: dma.MapSG, Ctx: dma.SoftIRQ, ID: 2, Pool: dma.NoPool, Dev: dev, Dir: dma.ToDevice, GFP: dma.GFPAtomic, Segs: []int64{4096, 4096, 100}},
		{At: 9, Kind: dma.Alloc, ID: 3, Pool: dma.NoPool, Dev: dev, Size: 29, GFP: dma.GFPKernel | dma.GFPZero, Kernel: 32},
		{At: 10, Kind: dma.UnmapSG, Ctx: dma.HardIRQ, ID: 2, Pool: dma.NoPool, Dir: dma.ToDevice, Segs: []int64{4096, 4096, 100}},
		{At: 10, Kind: dma.Unmap, Ctx: dma.HardIRQ, ID: 1, Pool: dma.NoPool, Size: 8192, Dir: dma.FromDevice},
		{At: 11, Kind: dma.Free, Ctx: dma.HardIRQ, ID: 0, Pool: dma.NoPool},
		{At: 12, Kind: dma.PoolDestroy, ID: 0, Pool: dma.NoPool},
	}
}

func write(t testing.TB, evs []dma.Event) []byte {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for i := range evs {
		w.Write(0, &evs[i])
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readAll(t testing.TB, name string, data []byte) ([]dma.Event, error) {
	r, err := NewReader(name, bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	var out []dma.Event
	for {
		var e dma.Event
		err := r.Next(&e)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		e.Segs = append([]int64(nil), e.Segs...)
		out = append(out, e)
	}
}

func TestRoundTrip(t *testing.T) {
	in := sample()
	data := write(t, in)
	for _, gz := range []bool{false, true} {
		d := data
		if gz {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(data)
			zw.Close()
			d = b.Bytes()
		}
		out, err := readAll(t, "t", d)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != len(in) {
			t.Fatalf("%d events back, wrote %d", len(out), len(in))
		}
		for i := range in {
			a, b := in[i], out[i]
			if a.At != b.At || a.Kind != b.Kind || a.ID != b.ID || a.Ctx != b.Ctx || a.GFP != b.GFP || a.Dir != b.Dir ||
				a.Size != b.Size || a.Name != b.Name || a.Kernel != b.Kernel || len(a.Segs) != len(b.Segs) ||
				(a.Kind == dma.Alloc && a.Pool != b.Pool) || (a.Dev != nil && b.Dev.Name != a.Dev.Name) {
				t.Fatalf("event %d: wrote %+v, read %+v", i, a, b)
			}
			if b.Line != int64(i+3) {
				t.Fatalf("event %d on line %d", i, b.Line)
			}
		}
	}
}

// TestBadInput: every broken file gives one error naming file, line and
// field, never a panic.
func TestBadInput(t *testing.T) {
	want := map[string]string{
		"negative-size.trace":  "negative-size.trace:3: size:",
		"huge-size.trace":      "huge-size.trace:3: size:",
		"id-reused.trace":      "id-reused.trace:4: id: id 1 reused while live",
		"time-backwards.trace": "time-backwards.trace:4: time:",
		"no-header.trace":      "no-header.trace:1: header:",
		"bad-gfp.trace":        "bad-gfp.trace:3: gfp:",
		"undeclared-dev.trace": "undeclared-dev.trace:2: dev: device 3 not declared",
		"truncated.trace":      "truncated.trace:3: kind:",
		"binary.trace":         "binary.trace:1: header:",
		"bad-gzip.trace.gz":    "bad-gzip.trace.gz:",
		"huge-id.trace":        "huge-id.trace:3: id:",
		"no-pool.trace":        "no-pool.trace:3: pool: pool 7 does not exist",
		"mask-not-bits.trace":  "mask-not-bits.trace:2: mask: 0x1000 is not a DMA_BIT_MASK(n)",
	}
	files, _ := filepath.Glob("testdata/bad/*")
	if len(files) != len(want) {
		t.Fatalf("%d files in testdata/bad, %d expectations", len(files), len(want))
	}
	for _, f := range files {
		data, _ := os.ReadFile(f)
		_, err := readAll(t, filepath.Base(f), data)
		var te *Error
		if !errors.As(err, &te) {
			t.Errorf("%s: error %v, want a *trace.Error", f, err)
			continue
		}
		if w := want[filepath.Base(f)]; !strings.HasPrefix(err.Error(), w) {
			t.Errorf("%s: %q, want it to start with %q", f, err, w)
		}
	}
}

func TestRecorderRemapsIDs(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	r := NewRecorder(w)
	d := &dma.Device{Name: "d", Mask: dma.BitMask(32)}
	// Two workloads using the same ids; one allocation fails.
	r.Record(0, 0, &dma.Event{Kind: dma.Alloc, ID: 0, Pool: dma.NoPool, Dev: d, Size: 8}, false)
	r.Record(1, 1, &dma.Event{Kind: dma.Alloc, ID: 0, Pool: dma.NoPool, Dev: d, Size: 8}, false)
	r.Record(1, 1, &dma.Event{Kind: dma.Alloc, ID: 1, Pool: dma.NoPool, Dev: d, Size: 8}, true)
	r.Record(0, 0, &dma.Event{Kind: dma.Free, ID: 0}, false)
	r.Record(1, 1, &dma.Event{Kind: dma.Alloc, ID: 1, Pool: dma.NoPool, Dev: d, Size: 8}, false)
	w.Flush()
	evs, err := readAll(t, "rec", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	ids := []dma.ID{evs[0].ID, evs[1].ID, evs[2].ID, evs[3].ID, evs[4].ID}
	if ids[0] == ids[1] || ids[2] == ids[0] || ids[2] == ids[1] || ids[3] != ids[0] || ids[4] != ids[0] {
		t.Fatalf("trace ids %v: want two distinct live ids, a retired one for the failure, and reuse after the free", ids)
	}
}

func FuzzReader(f *testing.F) {
	f.Add(write(f, sample()))
	files, _ := filepath.Glob("testdata/bad/*")
	for _, name := range files {
		data, _ := os.ReadFile(name)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader("fuzz", bytes.NewReader(data))
		if err != nil {
			return
		}
		for i := 0; i < 100000; i++ {
			var e dma.Event
			err := r.Next(&e)
			if err == io.EOF {
				return
			}
			if err != nil {
				var te *Error
				if !errors.As(err, &te) {
					t.Fatalf("error %v is not a *trace.Error", err)
				}
				return
			}
			if e.ID < 0 || e.Size < 0 || e.Size > MaxSize || (e.Kind != dma.PoolCreate && e.Kind != dma.PoolDestroy && e.Kind != dma.Free && e.Kind != dma.Unmap && e.Kind != dma.UnmapSG && e.Kind != dma.Sync && e.Dev == nil) {
				t.Fatalf("accepted a bad event %+v", e)
			}
		}
	})
}

// benchEvents is the stream the parse benchmarks read: allocs and frees
// of 512 ids in turn.
func benchEvents() []dma.Event {
	var evs []dma.Event
	for i := 0; i < 20000; i++ {
		id := dma.ID(i % 512)
		evs = append(evs,
			dma.Event{At: dma.Time(i * 100), Kind: dma.Alloc, ID: id, Pool: dma.NoPool, Dev: dev, Size: 48, GFP: dma.GFPAtomic},
			dma.Event{At: dma.Time(i*100 + 50), Kind: dma.Free, Ctx: dma.HardIRQ, ID: id, Pool: dma.NoPool})
	}
	return evs
}

// BenchmarkParse measures parsing throughput in MB/s.
func BenchmarkParse(b *testing.B) { benchParse(b, write(b, benchEvents())) }

// benchParse reads the trace data over and over.
func benchParse(b *testing.B, data []byte) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r, _ := NewReader("bench", bytes.NewReader(data))
		var e dma.Event
		for r.Next(&e) == nil {
		}
	}
}

// TestRemappedIDs: ids past DenseIDs get dense slots as they are read, so
// a trace whose ids never repeat keeps its slots near the objects live at
// once; a second free of such an id still finds its freed slot, and a
// free of an id never seen gets a slot never live.
func TestRemappedIDs(t *testing.T) {
	var b strings.Builder
	b.WriteString(Header + "\ndev 0 d mask=0xffffffff\n")
	const n = 200_000
	for i := range n {
		id := int64(1)<<40 + int64(i)*7919
		fmt.Fprintf(&b, "%d 0 process alloc id=%d pool=- dev=0 size=64 gfp=GFP_KERNEL\n", i, id)
		if i >= 10 {
			fmt.Fprintf(&b, "%d 0 process free id=%d\n", i, id-10*7919)
		}
	}
	last := int64(1)<<40 + int64(n-1)*7919
	fmt.Fprintf(&b, "%d 0 process free id=%d\n%d 0 process free id=%d\n%d 0 process free id=%d\n", n, last, n, last, n, int64(5)<<50)
	r, err := NewReader("ids", strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	var evs []dma.Event
	maxSlot := dma.ID(0)
	for {
		var e dma.Event
		if err := r.Next(&e); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		maxSlot = max(maxSlot, e.ID)
		evs = append(evs, e)
	}
	if limit := dma.ID(DenseIDs + 1 + 11 + reuseAfter + 1); maxSlot > limit {
		t.Errorf("highest slot %d for %d ids with 11 live at once: want at most %d", maxSlot, n, limit)
	}
	k := len(evs)
	if evs[k-3].ID != evs[k-2].ID || evs[k-2].ID == DenseIDs {
		t.Errorf("a second free got slot %d, the first %d: want the same, freed slot", evs[k-2].ID, evs[k-3].ID)
	}
	if evs[k-1].ID != DenseIDs {
		t.Errorf("a free of an id never seen got slot %d, want %d (never live)", evs[k-1].ID, DenseIDs)
	}
}
