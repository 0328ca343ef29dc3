package trace

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/dmabench/dmabench/dma"
)

// richText is a trace with every record the format has: comments, knobs,
// threads, devices, every event kind, ids past DenseIDs, a pool id past
// them and a pool name with a space, a failed kernel
// allocation, threads out of time order, and a cut line.
const richText = Header + `
# a comment
knob platform.pressure.fill_mib_per_s=400
threads 0,3,5
dev 0 ehci mask=0xffffffff minalign=0xfff
dev 1 lowdev mask=0xffffff cmask=0xffffffff
0 0 process pool_create id=2 dev=0 size=96 align=32 boundary=4096 name=ehci_qtd
5 0 process alloc id=0 pool=2 dev=0 size=96 gfp=GFP_NOIO
6 3 softirq alloc id=999999999999999000 pool=- dev=1 size=100 gfp=GFP_ATOMIC|__GFP_ZERO align=64 kernel=128
7 3 softirq alloc id=9 pool=- dev=1 size=3000 gfp=GFP_ATOMIC kernel=failed
4 5 process map id=1 dev=1 size=8192 dir=from_device gfp=GFP_KERNEL
9 3 hardirq sync id=1 dir=from_device
10 3 hardirq unmap id=1 size=8192 dir=from_device
11 0 process map_sg id=70000 dev=0 dir=to_device gfp=GFP_NOIO segs=4096,4096,512
12 0 process unmap_sg id=70000 dir=to_device segs=4096,4096,512
13 3 softirq free id=999999999999999000
13 3 softirq free id=999999999999999000
14 0 process free id=0
15 0 process pool_destroy id=2
16 0 process pool_create id=70001 dev=1 size=64 align=64 boundary=0 name=a%20pool
17 0 process pool_destroy id=70001
cut
`

type record struct {
	Ev    dma.Event
	Raw   int64
	Th    int
	Metas []string
}

// records reads a trace into its events, each with its raw id, thread
// and the records before it.
func records(t *testing.T, data []byte) ([]record, bool) {
	t.Helper()
	r, err := NewReader("t", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var metas []string
	r.Meta = func(k MetaKind, s string) { metas = append(metas, fmt.Sprint(k, ":", s)) }
	var out []record
	for {
		var e dma.Event
		err := r.Next(&e)
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatal(err)
			}
			break
		}
		e.Segs = append([]int64(nil), e.Segs...)
		e.Line = 0
		if e.Dev != nil {
			e.Dev = &dma.Device{Name: e.Dev.Name, Mask: e.Dev.Mask, CoherentMask: e.Dev.CoherentMask, MinAlignMask: e.Dev.MinAlignMask}
		}
		out = append(out, record{e, r.RawID(), r.Thread(), metas})
		metas = nil
	}
	return out, r.Cut()
}

// TestBinaryRoundTrip: text to binary to text loses nothing: the same
// events (ids as written, threads, times), knobs, comments, threads and
// cut, and the binary replays the same events as the text.
func TestBinaryRoundTrip(t *testing.T) {
	var bin, text bytes.Buffer
	if n, err := Convert("rich", strings.NewReader(richText), NewBinaryWriter(&bin), nil); err != nil || n != 15 {
		t.Fatalf("to binary: %d events, %v", n, err)
	}
	if _, err := Convert("rich.bin", bytes.NewReader(bin.Bytes()), NewWriter(&text), nil); err != nil {
		t.Fatal(err)
	}
	want, wantCut := records(t, []byte(richText))
	for name, data := range map[string][]byte{"binary": bin.Bytes(), "text again": text.Bytes()} {
		got, cut := records(t, data)
		if !reflect.DeepEqual(got, want) || cut != wantCut {
			t.Errorf("%s differs:\n got %+v\nwant %+v", name, got, want)
		}
	}
	if bin.Len()*2 > len(richText) {
		t.Errorf("binary %d bytes for %d of text", bin.Len(), len(richText))
	}
	threads, err := ScanThreads(bytes.NewReader(bin.Bytes()))
	if err != nil || !reflect.DeepEqual(threads, []int{0, 3, 5}) {
		t.Errorf("threads of the binary: %v %v", threads, err)
	}
}

// TestBinaryRefusesWhatTextRefuses: the binary reader applies the text's
// rules to records a faulty writer made: an alloc of a live id, a thread
// going back in time, a pool that does not exist, a 0-byte alloc, an
// undeclared device; a record cut short; an unknown tag. Each names its
// record as the text names its line.
func TestBinaryRefusesWhatTextRefuses(t *testing.T) {
	dir := t.TempDir()
	d := &dma.Device{Name: "d", Mask: dma.BitMask(32)}
	records := func(evs ...dma.Event) []byte {
		var bin bytes.Buffer
		tw := NewBinaryWriter(&bin)
		for i := range evs {
			tw.Write(0, &evs[i])
		}
		tw.Flush()
		return bin.Bytes()
	}
	alloc := func(at dma.Time, id dma.ID) dma.Event {
		return dma.Event{At: at, Kind: dma.Alloc, ID: id, Pool: dma.NoPool, Dev: d, Size: 8, GFP: dma.GFPKernel}
	}
	noPool, empty := alloc(0, 2), alloc(0, 2)
	noPool.Pool, empty.Size = 3, 0
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"live":   {records(alloc(0, 1), alloc(1, 1)), "live:4: id: id 1 reused while live"},
		"back":   {records(alloc(5, 1), dma.Event{At: 4, Kind: dma.Free, ID: 1}), "back:4: time: 4 goes back in time"},
		"nopool": {records(noPool), "nopool:3: pool: pool 3 does not exist"},
		"empty":  {records(empty), "empty:3: size: 0-byte alloc"},
		// An alloc naming device 5, which no record declared.
		"nodev": {append([]byte(BinHeader+"\n"), byte(dma.Alloc), 0, 0, 1, 0, 5, 8, 0, 0, 0), "nodev:2: dev: device 5 not declared"},
	} {
		if _, err := readAll(t, name, tc.data); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	p := filepath.Join(dir, "x.bin")
	var bin bytes.Buffer
	Convert("x", strings.NewReader(richText), NewBinaryWriter(&bin), nil)
	for cut := len(BinHeader) + 2; cut < bin.Len(); cut += 7 {
		os.WriteFile(p, bin.Bytes()[:cut], 0o644)
		if _, err := readAll(t, p, bin.Bytes()[:cut]); err != nil {
			var te *Error
			if !errors.As(err, &te) {
				t.Fatalf("cut at %d: %v is not a *trace.Error", cut, err)
			}
		}
	}
	// Cut inside the last record (the cut line's tag is its last byte;
	// the event before it ends two bytes before that at the least).
	if _, err := readAll(t, p, bin.Bytes()[:bin.Len()-2]); err == nil || !strings.Contains(err.Error(), "the file ends inside a record") {
		t.Errorf("a record cut short: %v", err)
	}
	bad := append([]byte(BinHeader+"\n"), 0x3f)
	if _, err := readAll(t, "tag", bad); err == nil || !strings.Contains(err.Error(), "tag:2") {
		t.Errorf("unknown tag: %v", err)
	}
}

// FuzzBinaryReader: no byte string after the binary header panics the
// reader or makes it accept an impossible event, and the fast path reads
// it as binRecord alone does.
func FuzzBinaryReader(f *testing.F) {
	var bin bytes.Buffer
	Convert("seed", strings.NewReader(richText), NewBinaryWriter(&bin), nil)
	f.Add(bin.Bytes()[len(BinHeader)+1:])
	f.Fuzz(func(t *testing.T, data []byte) {
		trace := append([]byte(BinHeader+"\n"), data...)
		evs, _ := readAll(t, "fuzz", trace)
		for _, e := range evs {
			if e.ID < 0 || e.Size < 0 || e.Size > MaxSize || e.Kernel < dma.KernelFailed {
				t.Fatalf("accepted %+v", e)
			}
		}
		if slow, quick := decodeEach(trace, true), decodeEach(trace, false); !slices.Equal(slow, quick) {
			t.Fatalf("binFast differs from binRecord:\n%q\n%q", slow, quick)
		}
	})
}

// BenchmarkParseBinary is BenchmarkParse over the binary encoding.
func BenchmarkParseBinary(b *testing.B) {
	var bin bytes.Buffer
	if _, err := Convert("bench", bytes.NewReader(write(b, benchEvents())), NewBinaryWriter(&bin), nil); err != nil {
		b.Fatal(err)
	}
	benchParse(b, bin.Bytes())
}

// TestReadKnobsBothEncodings: the knobs come out of a binary trace as out
// of its text.
func TestReadKnobsBothEncodings(t *testing.T) {
	dir := t.TempDir()
	var bin bytes.Buffer
	Convert("rich", strings.NewReader(richText), NewBinaryWriter(&bin), nil)
	for name, data := range map[string][]byte{"k.trace": []byte(richText), "k.trace.bin": bin.Bytes()} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		k, err := ReadKnobs(p)
		if err != nil || len(k) != 1 || k[0].Key != "platform.pressure.fill_mib_per_s" || k[0].Value != "400" {
			t.Errorf("%s: knobs %+v, %v", name, k, err)
		}
	}
}

// decodeEach reads a binary trace with binRecord alone (slow) or with
// binFast in front, and returns what each step gave: the event, its raw
// id and thread, or the error.
func decodeEach(data []byte, slow bool) []string {
	binFastOff = slow
	defer func() { binFastOff = false }()
	r, err := NewReader("t", bytes.NewReader(data))
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for {
		var e dma.Event
		if err := r.Next(&e); err != nil {
			return append(out, err.Error(), fmt.Sprint("cut ", r.Cut()))
		}
		dev := ""
		if e.Dev != nil {
			dev = fmt.Sprintf("%+v", *e.Dev)
		}
		e.Dev = nil
		out = append(out, fmt.Sprintf("%+v dev=%s raw=%d thread=%d", e, dev, r.RawID(), r.Thread()))
	}
}

// TestBinFastIsBinRecord: the fast path for the common records gives
// every event, raw id, thread and error that binRecord alone gives, on
// random traces of every kind (ids below and past DenseIDs, pools that
// exist and not, live ids reused, failed kernel allocations, sizes and
// alignments in and out of bounds, new threads, time going back), whole
// and with bytes broken.
func TestBinFastIsBinRecord(t *testing.T) {
	devs := []*dma.Device{{Name: "a", Mask: dma.BitMask(32)}, {Name: "b", Mask: dma.BitMask(24), CoherentMask: dma.BitMask(32)}}
	kinds := []dma.Kind{dma.Alloc, dma.Free, dma.Map, dma.Unmap, dma.Sync, dma.PoolCreate, dma.PoolDestroy, dma.MapSG, dma.UnmapSG}
	pick := func(rng *rand.Rand, vs ...int64) int64 { return vs[rng.IntN(len(vs))] }
	fast := 0
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var bin bytes.Buffer
		tw := NewBinaryWriter(&bin)
		at := dma.Time(0)
		live := map[dma.ID]dma.Kind{}
		pools := map[dma.ID]bool{}
		ids := []dma.ID{0, 1, 2, 63, 64, 4095, DenseIDs - 1, DenseIDs, DenseIDs + 1, 1 << 30}
		for range 2000 {
			at += dma.Time(pick(rng, 0, 1, 100, 70_000))
			e := dma.Event{At: at, Kind: kinds[rng.IntN(len(kinds))], Ctx: dma.Context(rng.IntN(3)),
				ID: ids[rng.IntN(len(ids))], Pool: dma.NoPool, Dev: devs[rng.IntN(2)], Size: pick(rng, 8, 96, 4096),
				Align: pick(rng, 0, 0, 32, 4096), GFP: dma.GFP(pick(rng, int64(dma.GFPKernel), int64(dma.GFPAtomic))),
				Dir: dma.Dir(rng.IntN(3)), Kernel: pick(rng, 0, 0, 128, dma.KernelFailed), Name: "p"}
			switch k := e.Kind; {
			case k == dma.PoolCreate || k == dma.PoolDestroy:
				e.ID = dma.ID(rng.IntN(6))
				if pools[e.ID] == (k == dma.PoolCreate) {
					continue
				}
				pools[e.ID] = k == dma.PoolCreate
			case k == dma.Alloc || k == dma.Map || k == dma.MapSG:
				if _, ok := live[e.ID]; ok {
					continue
				}
				if k == dma.Alloc && rng.IntN(2) == 0 {
					for p, ok := range pools {
						if ok {
							e.Pool = p
						}
					}
				}
				if k != dma.Alloc || e.Kernel != dma.KernelFailed {
					live[e.ID] = k
				}
			default:
				k0, ok := live[e.ID]
				if !ok || k == dma.Free && k0 != dma.Alloc || k == dma.Unmap && k0 != dma.Map || k == dma.UnmapSG && k0 != dma.MapSG {
					continue
				}
				if k != dma.Sync {
					delete(live, e.ID)
				}
			}
			if e.Kind == dma.MapSG || e.Kind == dma.UnmapSG {
				e.Segs = []int64{4096, 512}
			}
			if rng.IntN(800) == 0 {
				// Something a faulty writer would write.
				switch rng.IntN(6) {
				case 0:
					e.At -= 5
				case 1:
					e.Size = pick(rng, 0, MaxSize+1)
				case 2:
					e.Align = 48
				case 3:
					e.GFP = 1 << 31
				case 4:
					e.Pool = 5
				case 5:
					e.Dir = 9
				}
			}
			tw.Write(rng.IntN(4), &e)
		}
		if err := tw.Flush(); err != nil {
			t.Fatal(err)
		}
		data := bin.Bytes()
		if seed%2 == 1 {
			data = bytes.Clone(data)
			for range 1 + rng.IntN(3) {
				data[len(BinHeader)+1+rng.IntN(len(data)-len(BinHeader)-1)] = byte(rng.Uint32())
			}
		}
		slow, quick := decodeEach(data, true), decodeEach(data, false)
		if !slices.Equal(slow, quick) {
			for i := range min(len(slow), len(quick)) {
				if slow[i] != quick[i] {
					t.Fatalf("seed %d, step %d:\nbinRecord %s\n  binFast %s", seed, i, slow[i], quick[i])
				}
			}
			t.Fatalf("seed %d: %d steps, %d with binFast", seed, len(slow), len(quick))
		}
		fast += len(quick)
	}
	if fast < 80_000 {
		t.Fatalf("only %d steps compared", fast)
	}
}
