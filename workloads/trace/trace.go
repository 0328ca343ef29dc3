// Package trace reads and writes dmabench's trace format: a versioned,
// line-oriented text file of events (see traces/README.md), gzip
// compressed or not. A Reader is a workload source: it streams, keeping
// only the devices and the set of live ids, so memory grows with live
// objects, not with trace length. A Writer turns any event stream into a
// trace.
package trace

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/workloads/driver"
)

// Header is the first line of every trace.
const Header = "dmabench-trace 1"

// MaxThread bounds thread numbers.
const MaxThread = 1 << 16

// MaxID bounds object ids: a sanity limit only. The reader gives each
// live object a dense slot (see DenseIDs), so memory grows with the
// objects live at once, not with the ids a trace uses.
const MaxID = 999_999_999_999_999_999

// DenseIDs: object ids below it are their own slots (a recording's ids
// are dense already); a higher id is given a slot when it is allocated,
// which returns to use once freed, after reuseAfter others have been.
const DenseIDs = 1 << 16

// reuseAfter is how many freed slots wait before one is reused: a second
// free of a remapped id soon after the first still finds its freed slot
// (a double free, not an unknown one).
const reuseAfter = 4096

// MaxPool bounds pool ids, which index a table.
const MaxPool = 1 << 26

// MaxSize bounds sizes a trace may ask for (1 GiB).
const MaxSize = 1 << 30

// MaxSegs bounds the segments of one scatterlist in a trace.
const MaxSegs = 4096

// Error is a problem in a trace, with where it is.
type Error struct {
	File  string
	Line  int64
	Field string
	Msg   string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, printable(e.Field), printable(e.Msg))
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, printable(e.Msg))
}

// printable escapes control bytes and invalid UTF-8, so that a message
// never writes a trace's raw bytes to a terminal.
func printable(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == utf8.RuneError }) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// kindOf reads an event kind (a switch: no map lookup per line).
func kindOf(b []byte) (dma.Kind, bool) {
	switch string(b) {
	case "alloc":
		return dma.Alloc, true
	case "free":
		return dma.Free, true
	case "map":
		return dma.Map, true
	case "unmap":
		return dma.Unmap, true
	case "map_sg":
		return dma.MapSG, true
	case "unmap_sg":
		return dma.UnmapSG, true
	case "sync":
		return dma.Sync, true
	case "pool_create":
		return dma.PoolCreate, true
	case "pool_destroy":
		return dma.PoolDestroy, true
	}
	return 0, false
}

// dirOf reads a direction.
func dirOf(b []byte) (dma.Dir, bool) {
	switch string(b) {
	case "to_device":
		return dma.ToDevice, true
	case "from_device":
		return dma.FromDevice, true
	case "bidirectional":
		return dma.Bidirectional, true
	case "none":
		return dma.NoDir, true
	}
	return 0, false
}

// Reader reads a trace. It implements dma.Source; Next returns an *Error
// for malformed input and io.EOF at the end.
type Reader struct {
	name  string
	br    *bufio.Reader
	line  int64
	devs  []*dma.Device
	live  []uint64   // bitset of live object ids
	pools []uint64   // bitset of live pool ids
	lasts []dma.Time // per thread: the time of its last event
	// Ids from DenseIDs up are remapped (take, release): remap holds the
	// live ones' slots, dead the freed ones' until their slot is reused,
	// freed the slots waiting for reuse (from freedHead), owner the id
	// each slot above DenseIDs was last given.
	remap, dead map[int64]dma.ID
	freed       []dma.ID
	freedHead   int
	owner       []int64
	segs        []int64
	gflags      map[string]dma.GFP
	// lastGFP and lastGFPFlags: the flags last read, which the next
	// event most often repeats.
	lastGFP      string
	lastGFPFlags dma.GFP
	started      bool
	events       bool // an event line has been read
	cut          bool // a cut line has been read
	bin          bool // the binary encoding (BinHeader)
	binTime      int64
	// The binary decoder's window on br (binNext).
	win    []byte
	wi     int
	winEnd bool
	winErr error
	rawID  int64
	// Meta, when set, is called with each comment and knob as it is read
	// (Convert keeps them); declared is the threads record.
	declared []int
	Meta     func(kind MetaKind, text string)
	thread   int // of the last event
	// Bytes counts the bytes read.
	Bytes int64
}

var _ dma.Source = (*Reader)(nil)

// Uncompressed returns a buffered reader of r's content, decompressing it
// when it starts with the gzip magic number (the name does not matter).
func Uncompressed(r io.Reader) (*bufio.Reader, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("bad gzip: %w", err)
		}
		br = bufio.NewReaderSize(zr, 1<<16)
	}
	return br, nil
}

// NewReader reads a trace named name (for messages) from r, which may be
// gzip-compressed.
func NewReader(name string, r io.Reader) (*Reader, error) {
	br, err := Uncompressed(r)
	if err != nil {
		return nil, &Error{File: name, Line: 1, Msg: err.Error()}
	}
	return &Reader{name: name, br: br, gflags: map[string]dma.GFP{}}, nil
}

func (r *Reader) errf(field, format string, args ...any) error {
	return &Error{File: r.name, Line: r.line, Field: field, Msg: fmt.Sprintf(format, args...)}
}

func (r *Reader) readLine() ([]byte, error) {
	b, err := r.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, &Error{File: r.name, Line: r.line + 1, Msg: "line longer than 64 KiB"}
	}
	if err != nil && err != io.EOF {
		return nil, &Error{File: r.name, Line: r.line + 1, Msg: "read: " + err.Error()}
	}
	if len(b) == 0 && err == io.EOF {
		return nil, io.EOF
	}
	r.line++
	r.Bytes += int64(len(b))
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n > 1 && b[n-2] == '\r' {
			b = b[:n-2]
		}
	}
	return b, nil
}

// Thread returns the thread number of the event Next returned last.
func (r *Reader) Thread() int { return r.thread }

// CheckHeader reads and checks the trace's first line, if Next has not:
// it reads no more than that line (64 KiB at most), so a file that is not
// a trace is refused at once.
func (r *Reader) CheckHeader() error {
	if r.started {
		return nil
	}
	b, err := r.readLine()
	if err == io.EOF {
		return &Error{File: r.name, Line: 1, Msg: "empty trace: want the header " + strconv.Quote(Header)}
	}
	if err != nil {
		return err
	}
	switch string(b) {
	case Header:
	case BinHeader:
		r.bin = true
	default:
		return r.errf("header", "want %q (or %q), got %.40q", Header, BinHeader, b)
	}
	r.started = true
	return nil
}

// Next implements dma.Source.
func (r *Reader) Next(e *dma.Event) error {
	if r.bin {
		return r.binNext(e) // past the header, which says so
	}
	if err := r.CheckHeader(); err != nil {
		return err
	}
	if r.bin {
		return r.binNext(e)
	}
	for {
		b, err := r.readLine()
		if err != nil {
			return err
		}
		if len(b) > 0 && b[0] >= '0' && b[0] <= '9' {
			r.events = true
			return r.event(b, e)
		}
		if len(b) == 0 {
			continue
		}
		if b[0] == '#' {
			if r.Meta != nil {
				r.Meta(MetaComment, strings.TrimPrefix(string(b[1:]), " "))
			}
			continue
		}
		if bytes.HasPrefix(b, []byte("threads ")) {
			if err := r.threads(string(b[len("threads "):])); err != nil {
				return err
			}
			continue
		}
		if bytes.HasPrefix(b, []byte("dev ")) {
			if err := r.device(b); err != nil {
				return err
			}
			continue
		}
		if bytes.HasPrefix(b, []byte("knob ")) {
			if _, err := r.knob(b); err != nil {
				return err
			}
			continue
		}
		if string(b) == "cut" {
			r.cut = true
			continue
		}
		return r.event(b, e)
	}
}

// fields splits on single spaces without allocating.
func next(b []byte) (tok, rest []byte) {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	// Tokens are a few bytes: a plain loop beats bytes.IndexByte's setup.
	for i, c := range b {
		if c == ' ' {
			return b[:i], b[i+1:]
		}
	}
	return b, nil
}

// cutEq splits key=value.
func cutEq(kv []byte) (key, value []byte, ok bool) {
	for i, c := range kv {
		if c == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, nil, false
}

func (r *Reader) num(field string, v []byte, limit int64) (int64, error) {
	var n int64
	if len(v) == 0 {
		return 0, r.errf(field, "empty value")
	}
	// At most 18 digits cannot wrap an int64, so the limit is checked
	// once, after the arithmetic; a longer number is past every limit.
	if len(v) > 18 {
		return 0, r.errf(field, "%.30s exceeds %d", v, limit)
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, r.errf(field, "%q is not a non-negative integer", v)
		}
		n = n*10 + int64(c-'0')
	}
	if n > limit {
		return 0, r.errf(field, "%s exceeds %d", v, limit)
	}
	return n, nil
}

func (r *Reader) device(b []byte) error {
	_, b = next(b)
	idTok, b := next(b)
	id, err := r.num("dev", idTok, 1<<16)
	if err != nil {
		return err
	}
	name, b := next(b)
	if len(name) == 0 {
		return r.errf("dev", "no name")
	}
	var mask, cmask, minAlign uint64
	for len(b) > 0 {
		var kv []byte
		kv, b = next(b)
		k, v, ok := bytes.Cut(kv, []byte("="))
		if !ok {
			return r.errf("dev", "%q is not key=value", kv)
		}
		m, err := strconv.ParseUint(string(v), 0, 64)
		if err != nil {
			return r.errf(string(k), "%q is not a mask", v)
		}
		switch string(k) {
		case "mask":
			mask = m
		case "cmask":
			cmask = m
		case "minalign":
			minAlign = m
		default:
			return r.errf(string(k), "unknown device field")
		}
	}
	return r.declare(id, string(name), mask, cmask, minAlign)
}

// declare declares device id with its streaming mask and, when not 0, its
// coherent mask and its min_align_mask.
func (r *Reader) declare(id int64, name string, mask, cmask, minAlign uint64) error {
	if id > 1<<16 {
		return r.errf("dev", "%d exceeds %d", id, 1<<16)
	}
	if name == "" || strings.ContainsAny(name, " \n") {
		return r.errf("dev", "%q is not a device name", name)
	}
	if mask == 0 {
		return r.errf("mask", "device %d has no DMA mask", id)
	}
	for _, m := range [...]struct {
		field string
		mask  uint64
	}{{"mask", mask}, {"cmask", cmask}, {"minalign", minAlign}} {
		if m.mask&(m.mask+1) != 0 {
			return r.errf(m.field, "%#x is not a DMA_BIT_MASK(n), all ones from bit 0 up", m.mask)
		}
	}
	for int64(len(r.devs)) <= id {
		r.devs = append(r.devs, nil)
	}
	if r.devs[id] != nil {
		return r.errf("dev", "device %d declared twice", id)
	}
	r.devs[id] = &dma.Device{Name: name, Mask: mask, CoherentMask: cmask, MinAlignMask: minAlign}
	return nil
}

// MetaKind says what a Meta record is.
type MetaKind uint8

// Records that are not events and carry text (a threads record is kept
// as DeclaredThreads).
const (
	MetaComment MetaKind = iota
	MetaKnob
)

// RawID returns the id of the last event as the trace wrote it (Next
// gives a remapped id its slot; see DenseIDs).
func (r *Reader) RawID() int64 { return r.rawID }

// threads reads a text threads record, "0,1,4".
func (r *Reader) threads(list string) error {
	var nums []int
	for _, f := range strings.Split(list, ",") {
		n, err := r.num("threads", []byte(f), MaxThread)
		if err != nil {
			return err
		}
		nums = append(nums, int(n))
	}
	return r.declareThreads(nums)
}

// declareThreads takes a threads record: the threads the trace's events
// come from, ascending, before the first event, which spares a replay the
// pass that finds them (DeclaredThreads).
func (r *Reader) declareThreads(nums []int) error {
	if r.events {
		return r.errf("threads", "after the first event: it comes first")
	}
	for i, n := range nums {
		if n > MaxThread || i > 0 && n <= nums[i-1] {
			return r.errf("threads", "not ascending thread numbers up to %d", MaxThread)
		}
	}
	r.declared = nums
	return nil
}

// DeclaredThreads returns the threads record read so far, or nil.
func (r *Reader) DeclaredThreads() []int { return r.declared }

// Cut reports whether the trace said it was cut (a cut line): recorded
// from a run that was still going when the recording stopped, so that
// objects live at its end were not left behind by the workload.
func (r *Reader) Cut() bool { return r.cut }

// Knob is a setting that shaped a trace (a knob line): the platform and
// scenario knobs of a recorded run, or what an import found out about the
// traced kernel. Replay uses it unless the user set the key.
type Knob struct {
	Key, Value string
	Line       int64
}

// knob reads "knob KEY=VALUE"; knobs come before the first event.
func (r *Reader) knob(b []byte) (Knob, error) {
	if r.events {
		return Knob{}, r.errf("knob", "a knob line after the first event: knobs come first")
	}
	_, b = next(b)
	kv, rest := next(b)
	k, v, ok := bytes.Cut(kv, []byte("="))
	if !ok || len(k) == 0 || len(rest) > 0 {
		return Knob{}, r.errf("knob", "want knob KEY=VALUE (no spaces), got %.60q", kv)
	}
	if r.Meta != nil {
		r.Meta(MetaKnob, string(kv))
	}
	return Knob{Key: string(k), Value: string(v), Line: r.line}, nil
}

// ReadKnobs returns the knob records of the trace at path (text or
// binary), reading no further than its first event.
func ReadKnobs(path string) ([]Knob, error) {
	rc, err := OpenFile(path)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	r, err := NewReader(path, rc)
	if err != nil {
		return nil, err
	}
	var out []Knob
	r.Meta = func(kind MetaKind, text string) {
		if kind == MetaKnob {
			k, v, _ := strings.Cut(text, "=")
			out = append(out, Knob{Key: k, Value: v, Line: r.line})
		}
	}
	var e dma.Event
	if err := r.Next(&e); err != nil && err != io.EOF {
		return nil, err
	}
	return out, nil
}

func bit(set []uint64, id int64) bool {
	w := id >> 6
	return w < int64(len(set)) && set[w]&(1<<(id&63)) != 0
}

func setBit(set *[]uint64, id int64, on bool) {
	w := id >> 6
	for int64(len(*set)) <= w {
		*set = append(*set, 0)
	}
	if on {
		(*set)[w] |= 1 << (id & 63)
	} else {
		(*set)[w] &^= 1 << (id & 63)
	}
}

// event parses "<t> <thread> <ctx> <kind> key=value...".
func (r *Reader) event(b []byte, e *dma.Event) error {
	*e = dma.Event{Pool: dma.NoPool, Line: r.line}
	tTok, b := next(b)
	t, err := r.num("time", tTok, 1<<62)
	if err != nil {
		return err
	}
	thTok, b := next(b)
	th, err := r.num("thread", thTok, MaxThread)
	if err != nil {
		return err
	}
	if err := r.at(e, t, th); err != nil {
		return err
	}
	ctxTok, b := next(b)
	switch string(ctxTok) {
	case "process":
		e.Ctx = dma.Process
	case "softirq":
		e.Ctx = dma.SoftIRQ
	case "hardirq":
		e.Ctx = dma.HardIRQ
	default:
		return r.errf("context", "%q is not process, softirq or hardirq", ctxTok)
	}
	kindTok, b := next(b)
	k, ok := kindOf(kindTok)
	if !ok {
		return r.errf("kind", "unknown event %.30q", kindTok)
	}
	e.Kind = k
	// have has a bit for each field given: one given twice is an error.
	have := uint32(0)
	r.segs = r.segs[:0]
	var rawID int64
	for len(b) > 0 {
		var kv []byte
		kv, b = next(b)
		if len(kv) == 0 {
			continue
		}
		key, v, ok := cutEq(kv)
		if !ok {
			return r.errf("", "%.40q is not key=value", kv)
		}
		switch string(key) {
		case "id":
			if have&fID != 0 {
				return r.errf("id", "given twice")
			}
			have |= fID
			n, err := r.num("id", v, MaxID)
			if err != nil {
				return err
			}
			rawID = n
		case "pool":
			if have&fPool != 0 {
				return r.errf("pool", "given twice")
			}
			have |= fPool
			if string(v) == "-" {
				e.Pool = dma.NoPool
			} else {
				n, err := r.num("pool", v, MaxPool-1)
				if err != nil {
					return err
				}
				e.Pool = dma.ID(n)
			}
		case "dev":
			if have&fDev != 0 {
				return r.errf("dev", "given twice")
			}
			have |= fDev
			n, err := r.num("dev", v, 1<<16)
			if err != nil {
				return err
			}
			if n >= int64(len(r.devs)) || r.devs[n] == nil {
				return r.errf("dev", "device %d not declared", n)
			}
			e.Dev = r.devs[n]
		case "size":
			if have&fSize != 0 {
				return r.errf("size", "given twice")
			}
			have |= fSize
			n, err := r.num("size", v, MaxSize)
			if err != nil {
				return err
			}
			e.Size = n
		case "align", "boundary":
			if f := uint32(fBoundary) << (key[0] & 1); have&f != 0 {
				return r.errf(string(key), "given twice")
			} else {
				have |= f
			}
			n, err := r.num(string(key), v, MaxSize)
			if err != nil {
				return err
			}
			if n&(n-1) != 0 {
				return r.errf(string(key), "%d is not a power of two", n)
			}
			if key[0] == 'a' {
				e.Align = n
			} else {
				e.Boundary = n
			}
		case "kernel":
			if have&fKernel != 0 {
				return r.errf("kernel", "given twice")
			}
			have |= fKernel
			if string(v) == "failed" {
				e.Kernel = dma.KernelFailed
				break
			}
			n, err := r.num("kernel", v, MaxSize)
			if err != nil {
				return err
			}
			e.Kernel = n
		case "gfp":
			if len(v) == 0 {
				return r.errf("gfp", "empty value")
			}
			if have&fGFP != 0 {
				return r.errf("gfp", "given twice")
			}
			have |= fGFP
			if string(v) != r.lastGFP {
				g, ok := r.gflags[string(v)]
				if !ok {
					var err error
					if g, err = dma.ParseGFP(string(v)); err != nil {
						return r.errf("gfp", "%v", err)
					}
					r.gflags[string(v)] = g
				}
				r.lastGFP, r.lastGFPFlags = string(v), g
			}
			e.GFP = r.lastGFPFlags
		case "dir":
			if have&fDir != 0 {
				return r.errf("dir", "given twice")
			}
			have |= fDir
			d, ok := dirOf(v)
			if !ok {
				return r.errf("dir", "%q is not bidirectional, to_device, from_device or none", v)
			}
			e.Dir = d
		case "name":
			if have&fName != 0 {
				return r.errf("name", "given twice")
			}
			have |= fName
			name, err := unescapeName(v)
			if err != nil {
				return r.errf("name", "%v", err)
			}
			e.Name = name
		case "segs":
			if have&fSegs != 0 {
				return r.errf("segs", "given twice")
			}
			have |= fSegs
			for len(v) > 0 {
				i := bytes.IndexByte(v, ',')
				tok := v
				if i >= 0 {
					tok, v = v[:i], v[i+1:]
				} else {
					v = nil
				}
				n, err := r.num("segs", tok, MaxSize)
				if err != nil {
					return err
				}
				if n == 0 {
					return r.errf("segs", "empty segment")
				}
				if len(r.segs) == MaxSegs {
					return r.errf("segs", "more than %d segments", MaxSegs)
				}
				r.segs = append(r.segs, n)
			}
			e.Segs = r.segs
		default:
			return r.errf(string(key), "unknown field")
		}
	}
	return r.check(e, have, rawID)
}

// Fields an event line may give (have bits).
const (
	fID = 1 << iota
	fDev
	fSize
	fPool
	fBoundary // and fBoundary<<1 for align
	_
	fKernel
	fGFP
	fDir
	fName
	fSegs
)

// at checks and sets event e's time t on thread th: never before the
// thread's last event.
func (r *Reader) at(e *dma.Event, t, th int64) error {
	r.thread = int(th)
	for len(r.lasts) <= int(th) {
		r.lasts = append(r.lasts, 0)
	}
	if dma.Time(t) < r.lasts[th] {
		return r.errf("time", "%d goes back in time on thread %d (previous %d)", t, th, r.lasts[th])
	}
	r.lasts[th], e.At = dma.Time(t), dma.Time(t)
	return nil
}

// check applies the rules every event obeys whatever its encoding, given
// the fields it has (have) and its id as written (rawID): the fields its
// kind needs, pools that exist, ids not reused while live; and gives a
// remapped id its slot.
func (r *Reader) check(e *dma.Event, have uint32, rawID int64) error {
	k := e.Kind
	need := func(mask uint32, what string) error {
		if have&mask != mask {
			return r.errf(what, "missing for %s", k)
		}
		return nil
	}
	if have&fID == 0 {
		return need(fID, "id")
	}
	id := rawID
	r.rawID = rawID
	switch {
	case k == dma.PoolCreate || k == dma.PoolDestroy:
		if id >= MaxPool {
			return r.errf("id", "pool id %d exceeds %d", id, MaxPool-1)
		}
		e.ID = dma.ID(id)
	case id < DenseIDs:
		e.ID = dma.ID(id)
	default:
		e.ID = DenseIDs // never live; a remapped id's slot is set below
	}
	switch k {
	case dma.PoolCreate:
		if err := need(fDev|fSize, "dev and size"); err != nil {
			return err
		}
		if e.Size == 0 {
			return r.errf("size", "pool of 0-byte blocks")
		}
		if bit(r.pools, id) {
			return r.errf("id", "pool %d created while it exists", id)
		}
		setBit(&r.pools, id, true)
	case dma.PoolDestroy:
		setBit(&r.pools, id, false)
	case dma.Alloc, dma.Map, dma.MapSG:
		if err := need(fDev, "dev"); err != nil {
			return err
		}
		if k != dma.MapSG {
			if err := need(fSize, "size"); err != nil {
				return err
			}
			if e.Size == 0 {
				return r.errf("size", "0-byte %s", k)
			}
		} else if len(e.Segs) == 0 {
			return r.errf("segs", "missing for map_sg")
		}
		if k == dma.Alloc && e.Pool != dma.NoPool && !bit(r.pools, int64(e.Pool)) {
			return r.errf("pool", "pool %d does not exist", e.Pool)
		}
		if id < DenseIDs && bit(r.live, id) || id >= DenseIDs && r.remap[id] != 0 {
			return r.errf("id", "id %d reused while live (allocated and not yet freed)", id)
		}
		switch {
		case k == dma.Alloc && e.Kernel == dma.KernelFailed:
			// Given back at once (see dma.KernelFailed): never live.
		case id < DenseIDs:
			setBit(&r.live, id, true)
		default:
			e.ID = r.take(id)
		}
	case dma.Free, dma.Unmap, dma.UnmapSG, dma.Sync:
		// Frees of ids that are not live are misuse, found by the engine
		// and reported with this line; they are not malformed input.
		if id < DenseIDs {
			if k != dma.Sync {
				setBit(&r.live, id, false)
			}
			break
		}
		e.ID = r.release(id, k != dma.Sync)
	}
	return nil
}

// take gives remapped id a slot: a freed one once reuseAfter are
// waiting, else a new one.
func (r *Reader) take(id int64) dma.ID {
	if r.remap == nil {
		r.remap, r.dead = map[int64]dma.ID{}, map[int64]dma.ID{}
	}
	var slot dma.ID
	if len(r.freed)-r.freedHead > reuseAfter {
		slot = r.freed[r.freedHead]
		r.freedHead++
		if r.freedHead > len(r.freed)/2 {
			r.freed = append(r.freed[:0], r.freed[r.freedHead:]...)
			r.freedHead = 0
		}
		delete(r.dead, r.owner[slot-DenseIDs-1])
	} else {
		// Slot DenseIDs is never given: it stands for an id never live.
		slot = dma.ID(DenseIDs + 1 + len(r.owner))
		r.owner = append(r.owner, 0)
	}
	r.owner[slot-DenseIDs-1] = id
	delete(r.dead, id)
	r.remap[id] = slot
	return slot
}

// release returns the slot of remapped id for a free (free true) or a
// sync: its live slot, which a free lets go; the slot it last had, for a
// second free; else a slot never live, for a free of nothing.
func (r *Reader) release(id int64, free bool) dma.ID {
	if slot, ok := r.remap[id]; ok {
		if free {
			delete(r.remap, id)
			r.dead[id] = slot
			r.freed = append(r.freed, slot)
		}
		return slot
	}
	if slot, ok := r.dead[id]; ok {
		return slot
	}
	return DenseIDs
}

// Writer writes events as a trace. It is not safe for concurrent use.
type Writer struct {
	w       *bufio.Writer
	devs    map[*dma.Device]int
	buf     []byte
	err     error
	bin     bool     // the binary encoding
	binTime dma.Time // of the last event written
	// lastGFP and lastGFPText: the flags last written, spelled.
	lastGFP     dma.GFP
	lastGFPText string
}

// NewWriter writes the header to w and returns a Writer of text.
func NewWriter(w io.Writer) *Writer {
	tw := &Writer{w: bufio.NewWriterSize(w, 1<<16), devs: map[*dma.Device]int{}}
	tw.w.WriteString(Header + "\n")
	return tw
}

// NewBinaryWriter writes the binary header to w and returns a Writer of
// the binary encoding.
func NewBinaryWriter(w io.Writer) *Writer {
	tw := &Writer{w: bufio.NewWriterSize(w, 1<<16), devs: map[*dma.Device]int{}, bin: true}
	tw.w.WriteString(BinHeader + "\n")
	return tw
}

// IsBinaryName reports whether a trace file named name is written in the
// binary encoding: a name ending in .bin (or .bin.gz).
func IsBinaryName(name string) bool {
	return strings.HasSuffix(strings.TrimSuffix(name, ".gz"), ".bin")
}

// NewWriterFor writes a trace to w in the encoding a file named name asks
// for (IsBinaryName): binary or text.
func NewWriterFor(name string, w io.Writer) *Writer {
	if IsBinaryName(name) {
		return NewBinaryWriter(w)
	}
	return NewWriter(w)
}

// Threads writes a threads record: the threads the events come from
// (ascending), before the first event.
func (tw *Writer) Threads(nums []int) {
	if tw.err != nil || len(nums) == 0 {
		return
	}
	if tw.bin {
		b := binary.AppendUvarint(append(tw.buf[:0], tagThreads), uint64(len(nums)))
		for _, n := range nums {
			b = binary.AppendUvarint(b, uint64(n))
		}
		_, tw.err = tw.w.Write(b)
		tw.buf = b
		return
	}
	parts := make([]string, len(nums))
	for i, n := range nums {
		parts[i] = strconv.Itoa(n)
	}
	_, tw.err = fmt.Fprintf(tw.w, "threads %s\n", strings.Join(parts, ","))
}

var ctxNames = [...]string{"process", "softirq", "hardirq"}

// Write appends one event, declaring its device first if new. thread
// numbers the driver thread it came from.
func (tw *Writer) Write(thread int, e *dma.Event) { tw.WriteID(thread, e, int64(e.ID)) }

// WriteID is Write with the event's id given apart: an id as a trace
// wrote it, which may exceed dma.ID (see Reader.RawID).
func (tw *Writer) WriteID(thread int, e *dma.Event, id int64) {
	if tw.err != nil {
		return
	}
	dev := -1
	if e.Dev != nil {
		var ok bool
		if dev, ok = tw.devs[e.Dev]; !ok {
			dev = len(tw.devs)
			tw.devs[e.Dev] = dev
			if tw.bin {
				b := binary.AppendUvarint(append(tw.buf[:0], tagDev), uint64(dev))
				b = appendStr(b, e.Dev.Name)
				b = binary.AppendUvarint(binary.AppendUvarint(b, e.Dev.Mask), e.Dev.CoherentMask)
				b = binary.AppendUvarint(b, e.Dev.MinAlignMask)
				tw.w.Write(b)
				tw.buf = b
			} else {
				fmt.Fprintf(tw.w, "dev %d %s mask=%#x", dev, e.Dev.Name, e.Dev.Mask)
				if e.Dev.CoherentMask != 0 {
					fmt.Fprintf(tw.w, " cmask=%#x", e.Dev.CoherentMask)
				}
				if e.Dev.MinAlignMask != 0 {
					fmt.Fprintf(tw.w, " minalign=%#x", e.Dev.MinAlignMask)
				}
				tw.w.WriteByte('\n')
			}
		}
	}
	if tw.bin {
		tw.buf = tw.binEvent(tw.buf[:0], thread, dev, e, id)
		_, tw.err = tw.w.Write(tw.buf)
		return
	}
	b := tw.buf[:0]
	b = strconv.AppendInt(b, int64(e.At), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(thread), 10)
	b = append(b, ' ')
	b = append(b, ctxNames[e.Ctx]...)
	b = append(b, ' ')
	b = append(b, e.Kind.String()...)
	b = append(b, " id="...)
	b = strconv.AppendInt(b, id, 10)
	switch e.Kind {
	case dma.PoolCreate:
		b = kv(b, " dev=", int64(dev))
		b = kv(b, " size=", e.Size)
		b = kv(b, " align=", max(e.Align, 0))
		b = kv(b, " boundary=", max(e.Boundary, 0))
		b = appendName(append(b, " name="...), e.Name)
	case dma.Alloc:
		if e.Pool == dma.NoPool {
			b = append(b, " pool=-"...)
		} else {
			b = kv(b, " pool=", int64(e.Pool))
		}
		b = kv(b, " dev=", int64(dev))
		b = kv(b, " size=", e.Size)
		b = tw.gfp(b, e.GFP)
		if e.Align > 1 {
			b = kv(b, " align=", e.Align)
		}
		if e.Kernel > 0 {
			b = kv(b, " kernel=", e.Kernel)
		} else if e.Kernel == dma.KernelFailed {
			b = append(b, " kernel=failed"...)
		}
	case dma.Map:
		b = kv(b, " dev=", int64(dev))
		b = kv(b, " size=", e.Size)
		b = append(append(b, " dir="...), e.Dir.String()...)
		b = tw.gfp(b, e.GFP)
	case dma.Unmap:
		b = kv(b, " size=", e.Size)
		b = append(append(b, " dir="...), e.Dir.String()...)
	case dma.MapSG, dma.UnmapSG:
		if e.Kind == dma.MapSG {
			b = kv(b, " dev=", int64(dev))
			b = tw.gfp(b, e.GFP)
		}
		b = append(append(append(b, " dir="...), e.Dir.String()...), " segs="...)
		for i, n := range e.Segs {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, n, 10)
		}
	case dma.Sync:
		b = append(append(b, " dir="...), e.Dir.String()...)
	}
	b = append(b, '\n')
	_, tw.err = tw.w.Write(b)
	tw.buf = b
}

// appendName appends a pool's name with its spaces, percent signs and
// control bytes written %XX (a kernel's pool may be "prp list page").
func appendName(b []byte, name string) []byte {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c == '%' || c == 0x7f {
			b = append(b, '%', "0123456789ABCDEF"[c>>4], "0123456789ABCDEF"[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}

// unescapeName reads a name written by appendName.
func unescapeName(v []byte) (string, error) {
	if bytes.IndexByte(v, '%') < 0 {
		return string(v), nil
	}
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		if v[i] != '%' {
			out = append(out, v[i])
			continue
		}
		if i+2 >= len(v) {
			return "", fmt.Errorf("%q: a %% not followed by two hex digits", v)
		}
		n, err := strconv.ParseUint(string(v[i+1:i+3]), 16, 8)
		if err != nil {
			return "", fmt.Errorf("%q: a %% not followed by two hex digits", v)
		}
		out = append(out, byte(n))
		i += 2
	}
	return string(out), nil
}

// kv appends key and n in decimal.
func kv(b []byte, key string, n int64) []byte {
	return strconv.AppendInt(append(b, key...), n, 10)
}

// gfp appends " gfp=" and flags, spelled once per distinct value.
func (tw *Writer) gfp(b []byte, g dma.GFP) []byte {
	if g != tw.lastGFP || tw.lastGFPText == "" {
		tw.lastGFP, tw.lastGFPText = g, g.String()
	}
	return append(append(b, " gfp="...), tw.lastGFPText...)
}

// Knob writes a knob line (see Knob); knobs go before the first event.
func (tw *Writer) Knob(key, value string) {
	switch {
	case tw.err != nil:
	case tw.bin:
		_, tw.err = tw.w.Write(appendStr(appendStr([]byte{tagKnob}, key), value))
	default:
		_, tw.err = fmt.Fprintf(tw.w, "knob %s=%s\n", key, value)
	}
}

// Cut writes a cut line (see Reader.Cut), after the last event.
func (tw *Writer) Cut() {
	switch {
	case tw.err != nil:
	case tw.bin:
		tw.err = tw.w.WriteByte(tagCut)
	default:
		_, tw.err = tw.w.WriteString("cut\n")
	}
}

// Comment writes a comment line.
func (tw *Writer) Comment(s string) {
	switch {
	case tw.err != nil:
	case tw.bin:
		_, tw.err = tw.w.Write(appendStr([]byte{tagComment}, s))
	default:
		_, tw.err = fmt.Fprintf(tw.w, "# %s\n", strings.ReplaceAll(s, "\n", " "))
	}
}

// Flush writes out buffered data and returns the first error.
func (tw *Writer) Flush() error {
	if tw.err != nil {
		return tw.err
	}
	return tw.w.Flush()
}

// ErrNotTrace reports a file that is not a trace at all.
var ErrNotTrace = errors.New("not a dmabench trace")

// Recorder turns the events of several workloads into one trace: each
// workload's object and pool ids are mapped to trace ids; an id returns to
// use once its free is written; the id of an allocation that failed is
// never reused (replayed elsewhere it may succeed and stay live).
//
// A free that broke the rules is written too, so that the replay counts
// the same misuse: a second free of an object as a free of the trace id
// it last had (while no other object has taken that id), any other free
// of nothing as a free of an id never used.
type Recorder struct {
	W      *Writer
	objs   [][]int32 // per workload: its id -> trace id + 1, while live
	last   [][]int32 // per workload: its id -> the trace id + 1 it last had
	holder []holder  // per trace id: the workload object that last had it
	pools  [][]int32
	ids    driver.IDs
	nextP  int32
	// latest is the latest time written.
	latest  dma.Time
	Written int64
}

type holder struct{ ws, id int32 }

// NewRecorder writes to w.
func NewRecorder(w *Writer) *Recorder { return &Recorder{W: w} }

func slot(m *[][]int32, ws int, id dma.ID) *int32 {
	for len(*m) <= ws {
		*m = append(*m, nil)
	}
	for int(id) >= len((*m)[ws]) {
		(*m)[ws] = append((*m)[ws], 0)
	}
	return &(*m)[ws][id]
}

// take gives workload ws's object id the trace id tid.
func (r *Recorder) take(ws int, id, tid dma.ID) {
	*slot(&r.objs, ws, id) = int32(tid) + 1
	*slot(&r.last, ws, id) = int32(tid) + 1
	for int(tid) >= len(r.holder) {
		r.holder = append(r.holder, holder{-1, -1})
	}
	r.holder[tid] = holder{int32(ws), int32(id)}
}

// Record writes one event of workload ws from thread th; failed reports
// whether an alloc or map failed. Allocs and maps that broke the rules
// (an id still live, a pool that does not exist) cannot be written as a
// trace forbids them: the caller leaves them out.
func (r *Recorder) Record(ws, th int, e *dma.Event, failed bool) {
	ev := *e
	switch e.Kind {
	case dma.PoolCreate:
		p := slot(&r.pools, ws, e.ID)
		*p = r.nextP + 1
		r.nextP++
		ev.ID = dma.ID(*p - 1)
	case dma.PoolDestroy:
		ev.ID = dma.ID(*slot(&r.pools, ws, e.ID) - 1)
	case dma.Alloc, dma.Map, dma.MapSG:
		if e.Kind == dma.Alloc && e.Pool != dma.NoPool {
			ev.Pool = dma.ID(*slot(&r.pools, ws, e.Pool) - 1)
		}
		if failed {
			ev.ID = r.ids.Fresh() // retired: never reused
			r.take(ws, e.ID, ev.ID)
			*slot(&r.objs, ws, e.ID) = 0
			break
		}
		if e.At < r.latest {
			// A caller that slept is written at the time it went to
			// sleep: an id freed since then was still live then.
			ev.ID = r.ids.Fresh()
		} else {
			ev.ID = r.ids.Get()
		}
		r.take(ws, e.ID, ev.ID)
	case dma.Free, dma.Unmap, dma.UnmapSG, dma.Sync:
		o := slot(&r.objs, ws, e.ID)
		if *o == 0 {
			r.RecordMisuse(ws, th, e)
			return
		}
		ev.ID = dma.ID(*o - 1)
		if e.Kind != dma.Sync {
			*o = 0
			r.ids.Put(ev.ID)
		}
	}
	r.latest = max(r.latest, ev.At)
	r.W.Write(th, &ev)
	r.Written++
}

// RecordMisuse writes a free, unmap or pool destroy of workload ws that
// broke the rules and was not served, leaving the mapping of ids as it
// was: the free of a live object's mapping (the wrong kind of free) as
// that object's id, a second free as the trace id the object last had
// (while no other object has taken it), a free of nothing as an id never
// used. A pool never created is left out: a trace forbids it.
func (r *Recorder) RecordMisuse(ws, th int, e *dma.Event) {
	ev := *e
	switch e.Kind {
	case dma.PoolDestroy:
		p := *slot(&r.pools, ws, e.ID)
		if p == 0 {
			return
		}
		ev.ID = dma.ID(p - 1)
	case dma.Free, dma.Unmap, dma.UnmapSG, dma.Sync:
		last := *slot(&r.last, ws, e.ID)
		switch o := *slot(&r.objs, ws, e.ID); {
		case o != 0:
			ev.ID = dma.ID(o - 1)
		case last != 0 && r.holder[last-1] == holder{int32(ws), int32(e.ID)}:
			ev.ID = dma.ID(last - 1)
		default:
			ev.ID = r.ids.Fresh()
		}
	default:
		return
	}
	r.W.Write(th, &ev)
	r.Written++
}
