package ftrace

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/dmabench/dmabench"
	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/workloads/driver"
	"github.com/dmabench/dmabench/workloads/trace"
)

// This file converts parsed ftrace lines into dmabench trace events.

// Stats counts what Import converted, by event name, and what it skipped,
// by reason. ImpliedFrees counts allocations at a pointer still live,
// whose free the capture did not trace (a kmalloc-only capture): the free
// is implied and written. Backwards counts timestamps that went back (a
// trace-cmd merge of CPUs); they are held at the last time.
type Stats struct {
	Converted    map[string]int
	Skipped      map[string]int
	ImpliedFrees int
	Backwards    int
	// FailedAllocs counts allocations the traced kernel failed (a null
	// pointer, page=(null)): written with kernel=failed, so that replay
	// asks the model too and counts them (kernel_failures).
	FailedAllocs int
}

// Write prints the counts: the total, then each event and each reason.
func (s *Stats) Write(w io.Writer, in, out string) {
	keys := func(m map[string]int) []string {
		var k []string
		for x := range m {
			k = append(k, x)
		}
		sort.Strings(k)
		return k
	}
	total := 0
	for _, n := range s.Converted {
		total += n
	}
	fmt.Fprintf(w, "%s -> %s: %d events converted\n", in, out, total)
	for _, k := range keys(s.Converted) {
		fmt.Fprintf(w, "  converted %-22s %d\n", k, s.Converted[k])
	}
	for _, k := range keys(s.Skipped) {
		fmt.Fprintf(w, "  skipped   %-60s %d\n", k, s.Skipped[k])
	}
	fmt.Fprintf(w, "  implied_frees %d (allocations at a live pointer: the untraced free written)\n", s.ImpliedFrees)
	fmt.Fprintf(w, "  time_backwards %d (timestamps held at the last one)\n", s.Backwards)
	fmt.Fprintf(w, "  failed_allocs %d (the kernel's allocation failed: replayed as requests, counted as kernel_failures)\n", s.FailedAllocs)
}

// importer turns ftrace events into trace events.
type importer struct {
	tw     *trace.Writer
	st     *Stats
	devs   map[string]*dma.Device
	live   map[string]dma.ID // pointer key -> object id
	sgSegs map[string][]int64
	// pending holds, per CPU, a swiotlb_bounced line until the next line
	// of that CPU says whether a dma_map event of the same mapping
	// follows (6.12+) or not (then the bounce is the mapping).
	pending map[int][]byte
	// bouncedSize: the size of each mapping made from a bounce.
	bouncedSize map[string]int64
	pools       map[string]dma.ID
	ids         driver.IDs
	npool       dma.ID
	t0          int64
	last        dma.Time
	began       bool
}

func (im *importer) dev(name string) *dma.Device {
	d := im.devs[name]
	if d == nil {
		// ftrace does not print masks: devices are taken as 64-bit.
		d = &dma.Device{Name: name, Mask: dma.BitMask(64)}
		im.devs[name] = d
	}
	return d
}

// gfpOf reads gfp_flags as any kernel prints them: symbolic with or
// without "__", or raw hex (then only "may it sleep" is told apart).
func gfpOf(v []byte) dma.GFP {
	s := string(v)
	if strings.HasPrefix(s, "0x") {
		n, _ := strconv.ParseUint(s[2:], 16, 64)
		if n&0x400 != 0 { // ___GFP_DIRECT_RECLAIM since 4.4
			return dma.GFPKernel
		}
		return dma.GFPAtomic
	}
	var g dma.GFP
	for _, part := range strings.Split(s, "|") {
		if p, err := dma.ParseGFP(part); err == nil {
			g |= p
			continue
		}
		switch strings.TrimPrefix(part, "__") {
		case "GFP_HIGHUSER", "GFP_HIGHUSER_MOVABLE", "GFP_USER", "GFP_NOFAIL", "GFP_DIRECT_RECLAIM", "GFP_RECLAIM":
			g |= dma.GFPWait
		}
	}
	return g
}

func ctxOf(l *Line) dma.Context {
	if len(l.Flags) >= 3 {
		switch l.Flags[2] {
		case 'h', 'H':
			return dma.HardIRQ
		case 's':
			return dma.SoftIRQ
		}
	}
	return dma.Process
}

func dirOf(v []byte) dma.Dir {
	switch string(v) {
	case "TO_DEVICE":
		return dma.ToDevice
	case "FROM_DEVICE":
		return dma.FromDevice
	case "NONE":
		return dma.NoDir
	}
	return dma.Bidirectional
}

func isNull(p []byte) bool {
	s := strings.TrimLeft(string(p), "0x")
	return len(p) == 0 || string(p) == "(null)" || s == ""
}

// body returns the fields after an event's leading device name (dma
// events) or "IOMMU:" tag.
func firstTok(b []byte) ([]byte, []byte) {
	b = bytes.TrimLeft(b, " ")
	i := bytes.IndexByte(b, ' ')
	if i < 0 {
		return b, nil
	}
	return b[:i], b[i+1:]
}

func parseList(v []byte) []int64 {
	v = bytes.Trim(v, "{}")
	var out []int64
	for _, p := range bytes.Split(v, []byte(",")) {
		if n, err := strconv.ParseInt(string(bytes.TrimSpace(p)), 0, 64); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// usableSegs reports whether a scatterlist fits the trace format: at most
// trace.MaxSegs segments of at most trace.MaxSize bytes.
func usableSegs(segs []int64) bool {
	if len(segs) == 0 || len(segs) > trace.MaxSegs {
		return false
	}
	for _, n := range segs {
		if n > trace.MaxSize {
			return false
		}
	}
	return true
}

// Import converts the ftrace or trace-cmd text r (named name, for
// errors) into dmabench trace events written to tw, and flushes it. A
// line it cannot use is skipped and counted by reason; only a read error
// (a line past 1 MiB, say) stops it, as a *dma.InputError naming the
// line.
//
// knobs are written as the trace's knob lines (what was found out about
// the traced kernel, such as its slab allocator), and notes as comments.
func Import(name string, r io.Reader, tw *trace.Writer, knobs [][2]string, notes ...string) (Stats, error) {
	st := &Stats{Converted: map[string]int{}, Skipped: map[string]int{}}
	tw.Comment(fmt.Sprintf("imported by dmabench %s from %s", dmabench.Version, name))
	for _, n := range notes {
		tw.Comment(n)
	}
	for _, kv := range knobs {
		tw.Knob(kv[0], kv[1])
	}
	im := &importer{tw: tw, st: st, devs: map[string]*dma.Device{}, live: map[string]dma.ID{},
		sgSegs: map[string][]int64{}, pools: map[string]dma.ID{}, pending: map[int][]byte{}, bouncedSize: map[string]int64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	n := 0
	var first []byte // the file's first line, for an error
	firstEvent, events := 0, 0
	for sc.Scan() {
		n++
		if n == 1 {
			first = bytes.Clone(sc.Bytes()[:min(len(sc.Bytes()), 80)])
		}
		l, err := Parse(sc.Bytes())
		if err == ErrNotEvent {
			continue
		}
		if err != nil {
			st.Skipped[unparsed(sc.Bytes())]++
			continue
		}
		if events++; firstEvent == 0 {
			firstEvent = n
		}
		if raw, ok := im.pending[l.CPU]; ok {
			delete(im.pending, l.CPU)
			im.settle(raw, &l)
		}
		if string(l.Event) == "swiotlb_bounced" {
			im.pending[l.CPU] = bytes.Clone(sc.Bytes())
			continue
		}
		if reason := im.event(&l); reason != "" {
			st.Skipped[reason]++
		}
	}
	for _, cpu := range slices.Sorted(maps.Keys(im.pending)) {
		im.settle(im.pending[cpu], nil)
	}
	if err := sc.Err(); err != nil {
		return *st, &dma.InputError{File: name, Line: n + 1, Err: err}
	}
	// A capture that gives no event is the wrong file (trace-cmd's binary
	// trace.dat, a log) or a capture of other events: an empty trace
	// would replay nothing, so it is refused.
	converted := 0
	for _, k := range st.Converted {
		converted += k
	}
	switch {
	case converted > 0:
	case n == 0:
		return *st, dma.Inputf(name, 1, "", "the file is empty: give the text of trace-cmd report, or of tracefs trace or trace_pipe")
	case events == 0:
		return *st, dma.Inputf(name, 1, "", "no ftrace event line in %d lines (the first: %q): give the text of trace-cmd report, or of tracefs trace or trace_pipe", n, first)
	default:
		return *st, dma.Inputf(name, firstEvent, "", "none of its %d events is one dmabench converts (kmem, dma, iommu, swiotlb: trace-cmd record -e kmem -e dma -e iommu); skipped: %s", events, st.skippedText())
	}
	return *st, tw.Flush()
}

// skippedText lists the reasons lines were skipped, most frequent first,
// for a message.
func (s *Stats) skippedText() string {
	reasons := slices.Collect(maps.Keys(s.Skipped))
	slices.SortFunc(reasons, func(a, b string) int { return cmp.Or(s.Skipped[b]-s.Skipped[a], strings.Compare(a, b)) })
	var parts []string
	for i, r := range reasons {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more reasons", len(reasons)-3))
			break
		}
		parts = append(parts, fmt.Sprintf("%s (%d)", r, s.Skipped[r]))
	}
	return strings.Join(parts, ", ")
}

func (im *importer) emit(l *Line, e dma.Event) {
	if !im.began {
		im.began, im.t0 = true, l.TS
	}
	t := dma.Time(l.TS - im.t0)
	if t < im.last {
		t = im.last // trace-cmd merges CPUs: keep time from going back
		im.st.Backwards++
	}
	im.last = t
	e.At, e.Ctx = t, ctxOf(l)
	im.tw.Write(l.CPU, &e)
}

// take starts tracking an allocation under key. An allocation at a key
// still live means its release was not traced: with release (a free, or
// a bounce's unmap), it is implied and written first (at line l's time),
// so the capture replays as it ran.
//
// A mapping at a key still live with no release to imply is skipped
// instead: which unmap the capture lost cannot be told.
func (im *importer) take(l *Line, key string, release *dma.Event) (dma.ID, bool) {
	if old, ok := im.live[key]; ok {
		if release == nil {
			return 0, false
		}
		e := *release
		e.ID, e.Pool = old, dma.NoPool
		im.emit(l, e)
		delete(im.live, key)
		im.ids.Put(old)
		im.st.ImpliedFrees++
	}
	id := im.ids.Get()
	im.live[key] = id
	return id, true
}

func (im *importer) drop(key string) (dma.ID, bool) {
	id, ok := im.live[key]
	if ok {
		delete(im.live, key)
		im.ids.Put(id)
	}
	return id, ok
}

// event converts one line; it returns why it skipped it, or "".
func (im *importer) event(l *Line) string {
	ev := string(l.Event)
	if l.CPU < 0 || l.CPU >= trace.MaxThread {
		// The CPU becomes the event's thread; no machine has this many.
		return fmt.Sprintf("CPU number past %d", trace.MaxThread-1)
	}
	b := l.Body
	f := func(k string) []byte { v, _ := Field(b, k); return v }
	num := func(k string) (int64, bool) { n, err := Int(b, k); return n, err == nil && n >= 0 }
	// An unmap's size that no map can have (unreadable, or past
	// trace.MaxSize) is written as 0, which matches no mapping: the unmap
	// still releases its mapping and counts as a mismatch, as DMA-API
	// debugging would report it.
	unmapSize := func() int64 {
		if n, ok := num("size"); ok && n <= trace.MaxSize {
			return n
		}
		return 0
	}
	kernel := im.dev("kernel")
	switch ev {
	case "kmalloc", "kmalloc_node", "kmem_cache_alloc", "kmem_cache_alloc_node":
		req, ok1 := num("bytes_req")
		got, ok2 := num("bytes_alloc")
		ptr := f("ptr")
		if !ok1 || !ok2 || req == 0 || req > trace.MaxSize || got > trace.MaxSize {
			return ev + ": no usable bytes_req/bytes_alloc"
		}
		e := dma.Event{Kind: dma.Alloc, Pool: dma.NoPool, Dev: kernel, Size: req, GFP: gfpOf(f("gfp_flags"))}
		if strings.HasPrefix(ev, "kmalloc") {
			e.Kernel = got
		}
		if !strings.HasPrefix(ev, "kmalloc") {
			// A cache is what identifies it in the capture: its name
			// where printed, else its call site and sizes (two caches of
			// one size stay apart).
			cache := string(f("name"))
			if cache == "" {
				cache = fmt.Sprintf("cache@%s/%d/%d", f("call_site"), req, got)
			}
			pool, ok := im.pools[cache]
			if !ok {
				pool = im.npool
				im.npool++
				im.pools[cache] = pool
				im.emit(l, dma.Event{Kind: dma.PoolCreate, ID: pool, Pool: dma.NoPool, Dev: kernel, Size: req, Name: cache})
			}
			e.Pool = pool
		}
		if isNull(ptr) {
			im.failed(l, e) // the kernel's caller got NULL
			break
		}
		e.ID, _ = im.take(l, "mem:"+string(ptr), &freed)
		im.emit(l, e)
	case "kfree", "kmem_cache_free":
		ptr := f("ptr")
		if isNull(ptr) {
			return ev + ": free of a null pointer"
		}
		id, ok := im.drop("mem:" + string(ptr))
		if !ok {
			return ev + ": free of memory allocated before the trace began"
		}
		im.emit(l, dma.Event{Kind: dma.Free, ID: id, Pool: dma.NoPool})
	case "mm_page_alloc":
		order, ok := num("order")
		pfn := f("pfn")
		if !ok || order > dma.MaxOrder {
			return ev + ": no usable order"
		}
		if page, has := Field(b, "page"); has && isNull(page) || len(pfn) == 0 || string(pfn) == "0" || string(pfn) == "0x0" {
			im.failed(l, dma.Event{Kind: dma.Alloc, Pool: dma.NoPool, Dev: kernel, Size: dma.PageSize << order, GFP: gfpOf(f("gfp_flags"))})
			break
		}
		id, _ := im.take(l, "page:"+string(pfn), &freed)
		im.emit(l, dma.Event{Kind: dma.Alloc, ID: id, Pool: dma.NoPool, Dev: kernel, Size: dma.PageSize << order, GFP: gfpOf(f("gfp_flags"))})
	case "mm_page_free", "mm_page_free_batched", "mm_page_free_direct", "mm_pagevec_free":
		id, ok := im.drop("page:" + string(f("pfn")))
		if !ok {
			return ev + ": free of a page allocated before the trace began"
		}
		im.emit(l, dma.Event{Kind: dma.Free, ID: id, Pool: dma.NoPool})
	case "dma_alloc", "dma_alloc_pages":
		dev, rest := firstTok(b)
		b = rest
		size, ok := num("size")
		addr := f("dma_addr")
		if !ok || size == 0 || size > trace.MaxSize || len(addr) == 0 {
			return ev + ": no usable size/dma_addr"
		}
		e := dma.Event{Kind: dma.Alloc, Pool: dma.NoPool, Dev: im.dev(string(dev)), Size: size, GFP: gfpOf(f("flags"))}
		if virt, _ := Field(b, "virt_addr"); isNull(virt) || string(addr) == "0" {
			// Failed: the event records dma_addr 0 for a NULL virt_addr.
			im.failed(l, e)
			break
		}
		e.ID, _ = im.take(l, "dma:"+string(dev)+":"+string(addr), &freed)
		im.emit(l, e)
	case "dma_free", "dma_free_pages":
		dev, rest := firstTok(b)
		b = rest
		id, ok := im.drop("dma:" + string(dev) + ":" + string(f("dma_addr")))
		if !ok {
			return ev + ": free of memory allocated before the trace began"
		}
		im.emit(l, dma.Event{Kind: dma.Free, ID: id, Pool: dma.NoPool})
	case "dma_map_page", "dma_map_resource", "dma_map_phys":
		dev, rest := firstTok(b)
		b = rest
		size, ok := num("size")
		if !ok || size == 0 || size > trace.MaxSize {
			return ev + ": no usable size"
		}
		id, ok := im.take(l, "map:"+string(dev)+":"+string(f("dma_addr")), nil)
		if !ok {
			return ev + ": mapping already live"
		}
		im.emit(l, dma.Event{Kind: dma.Map, ID: id, Pool: dma.NoPool, Dev: im.dev(string(dev)), Size: size, Dir: dirOf(f("dir")), GFP: dma.GFPAtomic})
	case "dma_unmap_page", "dma_unmap_resource", "dma_unmap_phys":
		dev, rest := firstTok(b)
		b = rest
		size := unmapSize()
		id, ok := im.drop("map:" + string(dev) + ":" + string(f("dma_addr")))
		if !ok {
			return ev + ": unmap of a mapping made before the trace began"
		}
		im.emit(l, dma.Event{Kind: dma.Unmap, ID: id, Pool: dma.NoPool, Size: size, Dir: dirOf(f("dir"))})
	case "dma_map_sg":
		dev, rest := firstTok(b)
		b = rest
		segs := parseList(f("sizes"))
		key := "sg:" + string(dev) + ":" + string(f("phys_addrs"))
		if !usableSegs(segs) {
			return ev + ": no usable segment sizes"
		}
		id, ok := im.take(l, key, nil)
		if !ok {
			return ev + ": scatterlist already live"
		}
		im.sgSegs[key] = segs
		im.emit(l, dma.Event{Kind: dma.MapSG, ID: id, Pool: dma.NoPool, Dev: im.dev(string(dev)), Dir: dirOf(f("dir")), GFP: dma.GFPAtomic, Segs: segs})
	case "dma_unmap_sg":
		dev, rest := firstTok(b)
		b = rest
		key := "sg:" + string(dev) + ":" + string(f("phys_addrs"))
		id, ok := im.drop(key)
		if !ok {
			return ev + ": unmap of a scatterlist mapped before the trace began"
		}
		im.emit(l, dma.Event{Kind: dma.UnmapSG, ID: id, Pool: dma.NoPool, Dir: dirOf(f("dir")), Segs: im.sgSegs[key]})
		delete(im.sgSegs, key)
	case "dma_sync_single_for_cpu", "dma_sync_single_for_device":
		dev, rest := firstTok(b)
		b = rest
		id, ok := im.live["map:"+string(dev)+":"+string(f("dma_addr"))]
		if !ok {
			return ev + ": sync of a mapping made before the trace began"
		}
		im.emit(l, dma.Event{Kind: dma.Sync, ID: id, Pool: dma.NoPool, Dir: dirOf(f("dir"))})
	case "map":
		size, ok := num("size")
		iova := f("iova")
		if !ok || size == 0 || size > trace.MaxSize || len(iova) == 0 {
			return ev + ": no usable iova/size"
		}
		id, ok := im.take(l, "iommu:"+string(iova), nil)
		if !ok {
			return ev + ": iova already mapped"
		}
		im.emit(l, dma.Event{Kind: dma.Map, ID: id, Pool: dma.NoPool, Dev: im.dev("iommu"), Size: size, Dir: dma.Bidirectional, GFP: dma.GFPAtomic})
	case "unmap":
		size := unmapSize()
		id, ok := im.drop("iommu:" + string(f("iova")))
		if !ok {
			return ev + ": unmap of an iova mapped before the trace began"
		}
		im.emit(l, dma.Event{Kind: dma.Unmap, ID: id, Pool: dma.NoPool, Size: size, Dir: dma.Bidirectional})
	case "swiotlb_bounced":
		// A bounce with no map event of its own (a kernel before 6.12's
		// dma tracepoints): the bounce is the mapping. Its direction is
		// not printed (bidirectional); its unmap is not traced, so it is
		// implied when the same buffer bounces again.
		dev, addr, size, ok := bouncedFields(b)
		if !ok || size > trace.MaxSize {
			return ev + ": no usable dev_name/dev_addr/size"
		}
		key := "map:" + dev + ":" + addr
		id, _ := im.take(l, key, &dma.Event{Kind: dma.Unmap, Size: im.bouncedSize[key], Dir: dma.Bidirectional})
		im.bouncedSize[key] = size
		im.emit(l, dma.Event{Kind: dma.Map, ID: id, Pool: dma.NoPool, Dev: im.dev(dev), Size: size, Dir: dma.Bidirectional, GFP: dma.GFPAtomic})
	case "bprint", "bputs", "print":
		return "trace_printk line"
	default:
		if !bytes.Contains(b, []byte("=")) {
			// A tracepoint prints key=value fields; a trace_printk
			// from a kernel function prints text under its name.
			return "trace_printk line"
		}
		return ev + ": event not modeled"
	}
	im.st.Converted[ev]++
	return ""
}

// Kmallocs calls fn for every kmalloc and kmalloc_node event of the
// ftrace text r (named name) with its line, bytes_req and bytes_alloc:
// what `dmabench validate ftrace` compares with the size classes. It
// reads the capture as Import does: a line Import skips is skipped and
// counted under the same reason (skipped), never an error; only a read
// error stops it, or fn returning false (it has seen enough).
func Kmallocs(name string, r io.Reader, fn func(line int, req, got int64) bool) (skipped map[string]int, err error) {
	skipped = map[string]int{}
	err = dma.ScanLines(name, r, func(n int, b []byte) error {
		l, err := Parse(b)
		if err == ErrNotEvent {
			return nil // headers and comments
		}
		if err != nil {
			skipped[unparsed(b)]++ // as Import skips it
			return nil
		}
		ev := string(l.Event)
		if ev != "kmalloc" && ev != "kmalloc_node" {
			return nil
		}
		req, err1 := Int(l.Body, "bytes_req")
		got, err2 := Int(l.Body, "bytes_alloc")
		if err1 != nil || err2 != nil || req <= 0 || req > trace.MaxSize || got < req || got > trace.MaxSize {
			skipped[ev+": no usable bytes_req/bytes_alloc"]++
			return nil
		}
		if ptr, _ := Field(l.Body, "ptr"); isNull(ptr) {
			skipped[ev+": failed allocation: no size to compare"]++
			return nil
		}
		if !fn(n, req, got) {
			return errEnough
		}
		return nil
	})
	if err == errEnough {
		err = nil
	}
	return skipped, err
}

// errEnough stops Kmallocs when its caller has seen enough.
var errEnough = errors.New("enough")

// settle decides a pending swiotlb_bounced line by the line that came
// next on its CPU (next; nil at the end): dropped when it is the dma_map
// event of the same mapping, which is converted in its place; else
// converted as the mapping itself. Either way the bounce gives its
// device's DMA mask, which no other event prints, if the device is new.
func (im *importer) settle(raw []byte, next *Line) {
	l, err := Parse(raw)
	if err != nil {
		return
	}
	dev, _, _, ok := bouncedFields(l.Body)
	if ok {
		if _, known := im.devs[dev]; !known {
			if m, err := strconv.ParseUint(string(fieldOr(l.Body, "dma_mask")), 16, 64); err == nil && m != 0 && m&(m+1) == 0 {
				im.devs[dev] = &dma.Device{Name: dev, Mask: m}
			}
		}
	}
	if next != nil && strings.HasPrefix(string(next.Event), "dma_map_") {
		if d, _ := firstTok(next.Body); string(d) == dev {
			im.st.Skipped["swiotlb_bounced: its dma_map event is converted"]++
			return
		}
	}
	if reason := im.event(&l); reason != "" {
		im.st.Skipped[reason]++
	}
}

// bouncedFields reads "dev_name: NAME dma_mask=... dev_addr=ADDR size=N".
func bouncedFields(b []byte) (dev, addr string, size int64, ok bool) {
	rest, found := bytes.CutPrefix(bytes.TrimLeft(b, " "), []byte("dev_name:"))
	if !found {
		return "", "", 0, false
	}
	d, _ := firstTok(rest)
	n, err := Int(b, "size")
	a := fieldOr(b, "dev_addr")
	if len(d) == 0 || err != nil || n <= 0 || len(a) == 0 {
		return "", "", 0, false
	}
	return string(d), string(a), n, true
}

func fieldOr(b []byte, k string) []byte { v, _ := Field(b, k); return v }

// failed writes an allocation the traced kernel failed (kernel=failed),
// under an id free for the moment: it is never live.
func (im *importer) failed(l *Line, e dma.Event) {
	e.ID, e.Kernel = im.ids.Get(), dma.KernelFailed
	im.emit(l, e)
	im.ids.Put(e.ID)
	im.st.FailedAllocs++
}

// freed is the release implied for an allocation whose free was not traced.
var freed = dma.Event{Kind: dma.Free}

// unparsed says why a line that is not an event line was skipped: a
// function tracer's "func <-caller", a stack trace's "=> frame", or a
// line cut or corrupted (a wrapped line, a partial write).
func unparsed(b []byte) string {
	t := bytes.TrimSpace(b)
	switch {
	case bytes.HasPrefix(t, []byte("=>")) || bytes.Contains(t, []byte("<stack trace>")) || bytes.Contains(t, []byte("<user stack trace>")):
		return "stack trace line"
	case bytes.Contains(t, []byte(" <-")):
		return "function tracer line"
	}
	return "not an ftrace event line (wrapped or corrupted)"
}
