package trace

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dmabench/dmabench/dma"
)

// This file holds the binary encoding of the trace format: the same
// records as the text (devices, knobs, comments, events, cut), each a
// tag byte and varints, so that a replay reads a file at close to the
// speed it replays events from memory. traces/README.md documents it;
// Convert turns either encoding into the other, losing nothing.

// BinHeader is the first line of a binary trace.
const BinHeader = "dmabench-trace-bin 1"

// Record tags. An event's tag is its kind with its context in bits 4-5;
// the others are above every event's.
const (
	tagDev     = 0x40
	tagKnob    = 0x41
	tagComment = 0x42
	tagCut     = 0x43
	tagThreads = 0x44
)

// maxRecord bounds one binary record (the reader's buffer).
const maxRecord = 1 << 16

// gfpMask holds every GFP bit dma knows.
const gfpMask = dma.GFPAll

var errShort = errors.New("record cut short")

// dec decodes varints from a record.
type dec struct {
	b   []byte
	i   int
	err error
}

func (d *dec) uv() uint64 {
	if i := d.i; uint(i) < uint(len(d.b)) {
		if v := d.b[i]; v < 0x80 {
			d.i = i + 1
			return uint64(v)
		}
	}
	return d.uvLong()
}

// uvLong is uv past one byte (kept apart so that uv inlines).
func (d *dec) uvLong() uint64 {
	if d.err != nil || d.i >= len(d.b) {
		if d.err == nil {
			d.err = errShort
		}
		return 0
	}
	v, n := binary.Uvarint(d.b[d.i:])
	if n <= 0 {
		if n == 0 {
			d.err = errShort
		} else {
			d.err = errors.New("varint overflows 64 bits")
		}
		return 0
	}
	d.i += n
	return v
}

// plainFields is, per kind, how many varints an event record of it holds
// after its tag (time, thread, id and the kind's own), or 0 for the kinds
// with a string or a list (decoded field by field).
var plainFields = [dma.NumKinds]int{dma.Alloc: 9, dma.Free: 3, dma.Map: 7, dma.Unmap: 5, dma.Sync: 4}

// varints decodes len(f) varints into f; false (d.err set) when the
// record ends first or one overflows.
func (d *dec) varints(f []uint64) bool {
	b, i := d.b, d.i
	for j := range f {
		if uint(i) < uint(len(b)) && b[i] < 0x80 {
			f[j] = uint64(b[i])
			i++
			continue
		}
		var v uint64
		for s := uint(0); ; s += 7 {
			if i >= len(b) {
				d.err = errShort
				return false
			}
			c := b[i]
			i++
			if s == 63 && c > 1 {
				d.err = errors.New("varint overflows 64 bits")
				return false
			}
			v |= uint64(c&0x7f) << s
			if c < 0x80 {
				break
			}
		}
		f[j] = v
	}
	d.i = i
	return true
}

func (d *dec) sv() int64 {
	v := d.uv()
	return int64(v>>1) ^ -int64(v&1)
}

func (d *dec) byte() byte {
	if d.err != nil {
		return 0
	}
	if d.i >= len(d.b) {
		d.err = errShort
		return 0
	}
	c := d.b[d.i]
	d.i++
	return c
}

func (d *dec) str() []byte {
	n := d.uv()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.i) {
		d.err = errShort
		return nil
	}
	s := d.b[d.i : d.i+int(n)]
	d.i += int(n)
	return s
}

// binNext reads records up to the next event into e. It decodes from a
// window of the reader's buffer (win, from wi), refilled when less than a
// long record is left.
func (r *Reader) binNext(e *dma.Event) error {
	for {
		if len(r.win)-r.wi < 1024 && !r.winEnd {
			r.refill()
		}
		if r.wi == len(r.win) {
			if r.winErr != nil && r.winErr != io.EOF {
				return r.errf("", "read: %v", r.winErr)
			}
			return io.EOF
		}
		r.line++
		if n, ok := r.binFast(r.win[r.wi:], e); ok {
			r.wi += n
			r.Bytes += int64(n)
			return nil
		}
		isEvent, n, err := r.binRecord(r.win[r.wi:], e)
		if err == errShort && !r.winEnd {
			r.refill() // a long record (a scatterlist, a name)
			isEvent, n, err = r.binRecord(r.win[r.wi:], e)
			if err == errShort && !r.winEnd {
				return r.errf("", "record longer than %d bytes", maxRecord)
			}
		}
		if err != nil {
			if err == errShort {
				return r.errf("", "the file ends inside a record")
			}
			return err
		}
		r.wi += n
		r.Bytes += int64(n)
		if isEvent {
			return nil
		}
	}
}

// binFastOff turns binFast off, for the test that holds it to binRecord.
var binFastOff = false

// binFast decodes the record at the start of b when it is one of the
// common events (alloc, free, map, unmap, sync: varints only) and all is
// as expected: no field out of bounds, a dense id, a thread already seen,
// an allocation the kernel served. It gives e and the reader exactly
// what binRecord would (TestBinFastIsBinRecord holds it to that), in a
// third of the time; ok false, with nothing changed, leaves the record to
// binRecord, which knows every record and reports every error.
func (r *Reader) binFast(b []byte, e *dma.Event) (n int, ok bool) {
	if len(b) == 0 || binFastOff {
		return 0, false
	}
	tag := b[0]
	k, ctx := dma.Kind(tag&0x0f), dma.Context(tag>>4)
	if tag >= tagDev || ctx > dma.HardIRQ || int(k) >= dma.NumKinds {
		return 0, false
	}
	nf := plainFields[k]
	if nf == 0 {
		return 0, false
	}
	var f [9]uint64
	i := 1
	for j := range f[:nf] {
		if i+1 < len(b) {
			if c := b[i]; c < 0x80 {
				f[j] = uint64(c)
				i++
				continue
			} else if d := b[i+1]; d < 0x80 {
				f[j] = uint64(c&0x7f) | uint64(d)<<7
				i += 2
				continue
			}
		}
		v, m := binary.Uvarint(b[min(i, len(b)):])
		if m <= 0 {
			return 0, false
		}
		f[j], i = v, i+m
	}
	t := r.binTime + (int64(f[0]>>1) ^ -int64(f[0]&1))
	th, id := f[1], f[2]
	if t < 0 || t > 1<<62 || th >= uint64(len(r.lasts)) || dma.Time(t) < r.lasts[th] || id >= DenseIDs {
		return 0, false
	}
	var dev, size, align, gfp, dir uint64
	var kernel int64
	pool := dma.NoPool
	switch k {
	case dma.Alloc:
		dev, size, gfp, align, kernel = f[4], f[5], f[6], f[7], int64(f[8]>>1)^-int64(f[8]&1)
		if p := f[3]; p > MaxPool || p > 0 && !bit(r.pools, int64(p-1)) {
			return 0, false
		} else if p > 0 {
			pool = dma.ID(p - 1)
		}
		if size-1 >= MaxSize || align > MaxSize || align&(align-1) != 0 || kernel < 0 || kernel > MaxSize {
			return 0, false
		}
	case dma.Map:
		dev, size, dir, gfp = f[3], f[4], f[5], f[6]
		if size-1 >= MaxSize {
			return 0, false
		}
	case dma.Unmap:
		size, dir = f[3], f[4]
		if size > MaxSize {
			return 0, false
		}
	case dma.Sync:
		dir = f[3]
	}
	if dir > uint64(dma.NoDir) || gfp&^uint64(gfpMask) != 0 {
		return 0, false
	}
	var d *dma.Device
	switch k {
	case dma.Alloc, dma.Map:
		if dev >= uint64(len(r.devs)) || r.devs[dev] == nil || bit(r.live, int64(id)) {
			return 0, false
		}
		d = r.devs[dev]
		setBit(&r.live, int64(id), true)
	case dma.Free, dma.Unmap:
		setBit(&r.live, int64(id), false)
	}
	// Field by field: an event built aside and copied whole stalls on its
	// own stores (a good part of this path's time).
	e.At, e.Kind, e.Ctx, e.Dir, e.Notify, e.GFP = dma.Time(t), k, ctx, dma.Dir(dir), false, dma.GFP(gfp)
	e.Dev, e.ID, e.Pool, e.Size, e.Align, e.Boundary = d, dma.ID(id), pool, int64(size), int64(align), 0
	e.Name, e.Segs, e.Line, e.Kernel = "", nil, r.line, kernel
	r.events, r.binTime, r.thread, r.rawID = true, t, int(th), int64(id)
	r.lasts[th] = dma.Time(t)
	return i, true
}

// refill moves the window on: what was decoded is let go, and up to
// maxRecord bytes are looked at.
func (r *Reader) refill() {
	r.br.Discard(r.wi)
	r.wi = 0
	r.win, r.winErr = r.br.Peek(maxRecord)
	r.winEnd = r.winErr != nil
}

// binRecord decodes the record at the start of b: an event into e
// (isEvent), or a device, knob, comment or cut; n is its length.
func (r *Reader) binRecord(b []byte, e *dma.Event) (isEvent bool, n int, err error) {
	d := dec{b: b}
	tag := d.byte()
	if d.err != nil {
		return false, 0, d.err
	}
	switch tag {
	case tagDev:
		id, name, mask, cmask, minAlign := d.uv(), d.str(), d.uv(), d.uv(), d.uv()
		if d.err != nil {
			return false, 0, r.binErr(d.err)
		}
		return false, d.i, r.declare(int64(min(id, 1<<17)), string(name), mask, cmask, minAlign)
	case tagKnob:
		k, v := d.str(), d.str()
		if d.err != nil {
			return false, 0, r.binErr(d.err)
		}
		_, err := r.knob(append(append(append([]byte("knob "), k...), '='), v...))
		return false, d.i, err
	case tagComment:
		c := d.str()
		if d.err == nil && r.Meta != nil {
			r.Meta(MetaComment, string(c))
		}
		return false, d.i, r.binErr(d.err)
	case tagThreads:
		n := d.uv()
		if n > MaxThread+1 {
			return false, 0, r.errf("threads", "%d threads", n)
		}
		nums := make([]int, 0, n)
		for range n {
			nums = append(nums, int(min(d.uv(), MaxThread+1)))
		}
		if d.err != nil {
			return false, 0, r.binErr(d.err)
		}
		return false, d.i, r.declareThreads(nums)
	case tagCut:
		r.cut = true
		return false, d.i, nil
	}
	k, ctx := dma.Kind(tag&0x0f), dma.Context(tag>>4)
	if k == dma.KindNone || int(k) >= dma.NumKinds || ctx > dma.HardIRQ {
		return false, 0, r.errf("kind", "unknown record tag %#x", tag)
	}
	r.events = true
	*e = dma.Event{Kind: k, Ctx: ctx, Pool: dma.NoPool, Line: r.line}
	have := uint32(fID)
	var dev, size, align, boundary, pool, gfp uint64
	var dir byte
	var kernel int64
	var name []byte
	var t int64
	var th, rawID uint64
	if n := plainFields[k]; n > 0 {
		// The common kinds: every field a varint (a direction, a byte
		// below 0x80, reads as one), decoded in one loop.
		var f [9]uint64
		if !d.varints(f[:n]) {
			return false, 0, r.binErr(d.err)
		}
		t, th, rawID = r.binTime+(int64(f[0]>>1)^-int64(f[0]&1)), f[1], f[2]
		switch k {
		case dma.Alloc:
			pool, dev, size, gfp, align, kernel = f[3], f[4], f[5], f[6], f[7], int64(f[8]>>1)^-int64(f[8]&1)
			have |= fPool | fDev | fSize | fGFP
		case dma.Map:
			dev, size, dir, gfp = f[3], f[4], byte(min(f[5], 255)), f[6]
			have |= fDev | fSize | fDir | fGFP
		case dma.Unmap:
			size, dir = f[3], byte(min(f[4], 255))
			have |= fSize | fDir
		case dma.Sync:
			dir = byte(min(f[3], 255))
			have |= fDir
		}
	} else {
		t = r.binTime + d.sv()
		th = d.uv()
		rawID = d.uv()
	}
	switch k {
	case dma.PoolCreate:
		dev, size, align, boundary, name = d.uv(), d.uv(), d.uv(), d.uv(), d.str()
		have |= fDev | fSize | fName | fBoundary | fBoundary<<1
	case dma.MapSG:
		dev, gfp, dir = d.uv(), d.uv(), d.byte()
		r.binSegs(&d, e)
		have |= fDev | fGFP | fDir | fSegs
	case dma.UnmapSG:
		dir = d.byte()
		r.binSegs(&d, e)
		have |= fDir | fSegs
	}
	if d.err != nil {
		return false, 0, r.binErr(d.err)
	}
	// The text's bounds, field by field.
	switch {
	case t < 0 || t > 1<<62:
		return false, 0, r.errf("time", "%d is out of range", t)
	case th > MaxThread:
		return false, 0, r.errf("thread", "%d exceeds %d", th, MaxThread)
	case rawID > MaxID:
		return false, 0, r.errf("id", "%d exceeds %d", rawID, int64(MaxID))
	case size > MaxSize || align > MaxSize || boundary > MaxSize:
		return false, 0, r.errf("size", "a size, align or boundary exceeds %d", MaxSize)
	case align&(align-1) != 0 || boundary&(boundary-1) != 0:
		return false, 0, r.errf("align", "align %d or boundary %d is not a power of two", align, boundary)
	case gfp&^uint64(gfpMask) != 0:
		return false, 0, r.errf("gfp", "unknown flag bits %#x", gfp&^uint64(gfpMask))
	case dir > byte(dma.NoDir):
		return false, 0, r.errf("dir", "%d is not a direction", dir)
	case kernel < dma.KernelFailed || kernel > MaxSize:
		return false, 0, r.errf("kernel", "%d is out of range", kernel)
	case pool > MaxPool:
		return false, 0, r.errf("pool", "%d exceeds %d", int64(pool)-1, MaxPool-1)
	}
	if have&fDev != 0 {
		if dev >= uint64(len(r.devs)) || r.devs[dev] == nil {
			return false, 0, r.errf("dev", "device %d not declared", dev)
		}
		e.Dev = r.devs[dev]
	}
	r.binTime = t
	if err := r.at(e, t, int64(th)); err != nil {
		return false, 0, err
	}
	e.Size, e.Align, e.Boundary, e.Kernel = int64(size), int64(align), int64(boundary), kernel
	e.GFP, e.Dir = dma.GFP(gfp), dma.Dir(dir)
	if pool > 0 {
		e.Pool = dma.ID(pool - 1)
	}
	if name != nil {
		e.Name = string(name)
	}
	return true, d.i, r.check(e, have, int64(rawID))
}

// binSegs decodes a scatterlist's segment lengths into e.
func (r *Reader) binSegs(d *dec, e *dma.Event) {
	r.segs = r.segs[:0]
	n := d.uv()
	if n > MaxSegs {
		d.err = fmt.Errorf("segs: more than %d segments", MaxSegs)
		return
	}
	for range n {
		s := d.uv()
		if d.err == nil && (s == 0 || s > MaxSize) {
			d.err = fmt.Errorf("segs: segment of %d bytes", s)
		}
		r.segs = append(r.segs, int64(s))
	}
	e.Segs = r.segs
}

func (r *Reader) binErr(err error) error {
	if err == nil || err == errShort {
		return err
	}
	return r.errf("", "%v", err)
}

// enc appends varints.
func appendSV(b []byte, v int64) []byte { return binary.AppendUvarint(b, uint64(v<<1^v>>63)) }

func appendStr(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// binEvent appends event e (on thread th, device number dev) as a record.
func (tw *Writer) binEvent(b []byte, th, dev int, e *dma.Event, id int64) []byte {
	b = append(b, byte(e.Kind)|byte(e.Ctx)<<4)
	b = appendSV(b, int64(e.At-tw.binTime))
	tw.binTime = e.At
	b = binary.AppendUvarint(b, uint64(th))
	b = binary.AppendUvarint(b, uint64(id))
	u := func(v int64) { b = binary.AppendUvarint(b, uint64(max(v, 0))) }
	switch e.Kind {
	case dma.PoolCreate:
		u(int64(dev))
		u(e.Size)
		u(e.Align)
		u(e.Boundary)
		b = appendStr(b, e.Name)
	case dma.Alloc:
		u(int64(e.Pool) + 1)
		u(int64(dev))
		u(e.Size)
		u(int64(e.GFP))
		u(e.Align)
		b = appendSV(b, e.Kernel)
	case dma.Map:
		u(int64(dev))
		u(e.Size)
		b = append(b, byte(e.Dir))
		u(int64(e.GFP))
	case dma.Unmap:
		u(e.Size)
		b = append(b, byte(e.Dir))
	case dma.MapSG, dma.UnmapSG:
		if e.Kind == dma.MapSG {
			u(int64(dev))
			u(int64(e.GFP))
		}
		b = append(b, byte(e.Dir))
		u(int64(len(e.Segs)))
		for _, s := range e.Segs {
			u(s)
		}
	case dma.Sync:
		b = append(b, byte(e.Dir))
	}
	return b
}

// Convert copies the trace in (named name) to tw, text to binary or
// binary to text, record by record: comments, knobs, threads, devices (as
// events first use them), events with their ids as written, and the cut
// line; it flushes tw and returns the events copied. A malformed input
// stops it with the reader's error. threads, when not nil, is written as
// the threads record (ScanThreads of in), in place of in's own.
func Convert(name string, in io.Reader, tw *Writer, threads []int) (int64, error) {
	r, err := NewReader(name, in)
	if err != nil {
		return 0, err
	}
	tw.Threads(threads)
	r.Meta = func(kind MetaKind, text string) {
		if kind == MetaComment {
			tw.Comment(text)
			return
		}
		k, v, _ := strings.Cut(text, "=")
		tw.Knob(k, v)
	}
	var n int64
	var e dma.Event
	for {
		err := r.Next(&e)
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, err
		}
		if n == 0 && threads == nil {
			tw.Threads(r.DeclaredThreads()) // read before the first event
		}
		tw.WriteID(r.Thread(), &e, r.RawID())
		n++
	}
	if r.Cut() {
		tw.Cut()
	}
	return n, tw.Flush()
}
