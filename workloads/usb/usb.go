// Package usb generates the allocation traffic of USB host controller
// drivers: URBs submitted to a UHCI, OHCI or EHCI controller, each needing
// transfer descriptors from the controller's pools at submit, released at
// completion.
//
// TD rules follow the drivers: UHCI needs one TD per 64-byte full-speed
// packet and always allocates with GFP_ATOMIC; an OHCI TD covers 4 KiB and
// an EHCI qTD 16 KiB (five page pointers, less the first page's offset),
// both allocated with the URB's flags; EHCI's pools have a 4 KiB boundary.
// An 8 KiB bulk transfer therefore needs 128 UHCI TDs, 2 OHCI TDs or 1 EHCI
// qTD. Isochronous packets take one TD each on UHCI, one TD per 8 frames on
// OHCI and one iTD (its own pool) per 8 frames on EHCI.
//
// The bus carries a device mix: bulk storage (large transfers, a queue of
// URBs, submitted from process context with GFP_NOIO and data buffers
// mapped per URB), a HID device polled by interrupt URBs and an audio
// device streaming isochronous URBs; both of these resubmit from the
// completion handler with GFP_ATOMIC and use buffers allocated once
// (usb_alloc_coherent), as usbhid and snd-usb-audio do. The driver runs as
// two threads: the process-context submitter and the interrupt handler.
// A submit whose TDs cannot be allocated is unwound, counted in
// urb_submit_failures, and retried later.
package usb

import (
	"fmt"
	"math/rand/v2"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/workloads/driver"
)

// Controller is a USB host controller type.
type Controller uint8

// Controllers.
const (
	UHCI Controller = iota
	OHCI
	EHCI
)

var controllerNames = [...]string{"uhci", "ohci", "ehci"}

func (c Controller) String() string { return controllerNames[c] }

// ParseController reads "uhci", "ohci" or "ehci".
func ParseController(s string) (Controller, error) {
	for i, n := range controllerNames {
		if s == n {
			return Controller(i), nil
		}
	}
	return 0, fmt.Errorf("unknown USB controller %q (valid: uhci, ohci, ehci)", s)
}

// HCD holds one controller type's driver parameters.
type HCD struct {
	// TDSize, TDAlign, TDBoundary: the TD pool as the driver creates it.
	TDSize     int64 `mapstructure:"td_size" json:"td_size"`
	TDAlign    int64 `mapstructure:"td_align" json:"td_align"`
	TDBoundary int64 `mapstructure:"td_boundary" json:"td_boundary"`
	// TDBytes is the payload one bulk TD carries.
	TDBytes int64 `mapstructure:"td_bytes" json:"td_bytes"`
	// QHSize and QHAlign: the queue head (ED) pool; one QH per endpoint.
	QHSize  int64 `mapstructure:"qh_size" json:"qh_size"`
	QHAlign int64 `mapstructure:"qh_align" json:"qh_align"`
	// ISOFrames is the isochronous frames one iso TD covers; ISOSize, if
	// non-zero, puts iso TDs in a pool of their own (EHCI's iTDs).
	ISOFrames int   `mapstructure:"iso_frames" json:"iso_frames"`
	ISOSize   int64 `mapstructure:"iso_size" json:"iso_size"`
	// AtomicTDs: TDs are always allocated with GFP_ATOMIC (UHCI), else
	// with the URB's flags.
	AtomicTDs bool `mapstructure:"atomic_tds" json:"atomic_tds"`
	// BusMbps is the bus rate: 12 (full speed) or 480 (high speed).
	BusMbps int64 `mapstructure:"bus_mbps" json:"bus_mbps"`
}

// Storage is a bulk mass-storage device.
type Storage struct {
	Enabled bool `mapstructure:"enabled" json:"enabled"`
	// TransferBytes is the size of each bulk URB.
	TransferBytes int64 `mapstructure:"transfer_bytes" json:"transfer_bytes"`
	// QueueDepth is the number of URBs kept in flight.
	QueueDepth int `mapstructure:"queue_depth" json:"queue_depth"`
	// ReadShare is the fraction of URBs that read from the device.
	ReadShare float64 `mapstructure:"read_share" json:"read_share"`
	// ThinkNS is the mean time between a completion and the resubmit.
	ThinkNS int64 `mapstructure:"think_ns" json:"think_ns"`
	// URBFlags is the gfp mask URBs are submitted with (GFP_NOIO).
	URBFlags string `mapstructure:"urb_flags" json:"urb_flags"`
	// DataBuffers: "map" maps each URB's data buffer (dma_map_single,
	// bouncing where the device cannot reach it); "alloc" takes each
	// URB's buffer once, at setup, from DMA-able memory (usb_buffer_alloc,
	// the 2002 answer to bouncing on the SA-1111) and never maps: the
	// driver copies data in and out of it itself, a cost not modeled.
	DataBuffers string `mapstructure:"data_buffers" json:"data_buffers"`
}

// HID is an interrupt-polled input device.
type HID struct {
	Enabled    bool  `mapstructure:"enabled" json:"enabled"`
	Bytes      int64 `mapstructure:"bytes" json:"bytes"`
	IntervalMS int64 `mapstructure:"interval_ms" json:"interval_ms"`
}

// Audio is an isochronous audio stream.
type Audio struct {
	Enabled bool `mapstructure:"enabled" json:"enabled"`
	// FrameBytes is one 1 ms frame's payload (192: 48 kHz, 16-bit stereo).
	FrameBytes int64 `mapstructure:"frame_bytes" json:"frame_bytes"`
	// FramesPerURB and URBs: each URB carries this many frames; this many
	// URBs are queued.
	FramesPerURB int `mapstructure:"frames_per_urb" json:"frames_per_urb"`
	URBs         int `mapstructure:"urbs" json:"urbs"`
}

// Config holds the workload's knobs.
type Config struct {
	Storage Storage `mapstructure:"storage" json:"storage"`
	HID     HID     `mapstructure:"hid" json:"hid"`
	Audio   Audio   `mapstructure:"audio" json:"audio"`
	// RetryNS is how long a failed submit waits before trying again.
	RetryNS int64 `mapstructure:"retry_ns" json:"retry_ns"`
	UHCI    HCD   `mapstructure:"uhci" json:"uhci"`
	OHCI    HCD   `mapstructure:"ohci" json:"ohci"`
	EHCI    HCD   `mapstructure:"ehci" json:"ehci"`
	// MapFailure is the driver's own answer to a failed map: "" (the
	// platform's map_failure), error or bug.
	MapFailure string `mapstructure:"map_failure" json:"map_failure"`
}

// DefaultConfig returns the defaults documented in config.yaml.
func DefaultConfig() Config {
	return Config{
		Storage: Storage{Enabled: true, TransferBytes: 8192, QueueDepth: 4, ReadShare: 0.7, ThinkNS: 20_000, URBFlags: "GFP_NOIO", DataBuffers: "map"},
		HID:     HID{Enabled: true, Bytes: 8, IntervalMS: 10},
		Audio:   Audio{Enabled: true, FrameBytes: 192, FramesPerURB: 8, URBs: 2},
		RetryNS: 1_000_000,
		UHCI:    HCD{TDSize: 48, TDAlign: 16, TDBytes: 64, QHSize: 48, QHAlign: 16, ISOFrames: 1, AtomicTDs: true, BusMbps: 12},
		OHCI:    HCD{TDSize: 64, TDAlign: 32, TDBytes: 4096, QHSize: 64, QHAlign: 16, ISOFrames: 8, BusMbps: 12},
		EHCI:    HCD{TDSize: 96, TDAlign: 32, TDBoundary: 4096, TDBytes: 16384, QHSize: 96, QHAlign: 32, ISOFrames: 8, ISOSize: 192, BusMbps: 480},
	}
}

// HCD returns the parameters for controller c.
func (c *Config) HCD(ctrl Controller) HCD {
	switch ctrl {
	case OHCI:
		return c.OHCI
	case EHCI:
		return c.EHCI
	}
	return c.UHCI
}

// Validate checks the knobs.
func (c Config) Validate() error {
	if _, err := dma.ParseDevicePolicy(c.MapFailure); err != nil {
		return fmt.Errorf("usb.%w", err)
	}
	s := c.Storage
	if s.DataBuffers != "map" && s.DataBuffers != "alloc" {
		return fmt.Errorf("usb.storage.data_buffers %q: valid values are map, alloc", s.DataBuffers)
	}
	if s.TransferBytes <= 0 || s.TransferBytes > 1<<24 {
		return fmt.Errorf("usb.storage.transfer_bytes %d: want 1..16777216", s.TransferBytes)
	}
	if s.QueueDepth <= 0 || s.QueueDepth > 4096 {
		return fmt.Errorf("usb.storage.queue_depth %d: want 1..4096", s.QueueDepth)
	}
	if s.ReadShare < 0 || s.ReadShare > 1 {
		return fmt.Errorf("usb.storage.read_share %g: want 0..1", s.ReadShare)
	}
	if s.ThinkNS < 0 || c.RetryNS <= 0 {
		return fmt.Errorf("usb.storage.think_ns must be >= 0 and usb.retry_ns > 0")
	}
	if _, err := dma.ParseGFP(s.URBFlags); err != nil {
		return fmt.Errorf("usb.storage.urb_flags: %v", err)
	}
	if c.HID.Bytes <= 0 || c.HID.Bytes > 4096 || c.HID.IntervalMS <= 0 {
		return fmt.Errorf("usb.hid: bytes must be 1..4096 and interval_ms positive")
	}
	if c.Audio.FrameBytes <= 0 || c.Audio.FrameBytes > 1<<16 || c.Audio.FramesPerURB < 1 || c.Audio.FramesPerURB > 1024 || c.Audio.URBs < 1 || c.Audio.URBs > 64 {
		return fmt.Errorf("usb.audio: frame_bytes 1..65536, frames_per_urb 1..1024, urbs 1..64")
	}
	if !s.Enabled && !c.HID.Enabled && !c.Audio.Enabled {
		return fmt.Errorf("usb: no device enabled")
	}
	for i, h := range []HCD{c.UHCI, c.OHCI, c.EHCI} {
		name := "usb." + controllerNames[i]
		switch {
		case h.TDSize <= 0 || h.QHSize <= 0 || h.ISOSize < 0:
			return fmt.Errorf("%s: td_size and qh_size must be positive", name)
		case h.TDBytes <= 0 || h.ISOFrames < 1:
			return fmt.Errorf("%s: td_bytes and iso_frames must be positive", name)
		case h.BusMbps <= 0:
			return fmt.Errorf("%s.bus_mbps must be positive", name)
		case s.TransferBytes/h.TDBytes > 1<<16:
			return fmt.Errorf("%s: %d-byte transfers need more than 65536 TDs", name, s.TransferBytes)
		}
		if c.Audio.Enabled && c.Audio.FrameBytes*8*1000 > h.BusMbps*1_000_000*9/10 {
			return fmt.Errorf("%s: the audio stream needs more than 90%% of the bus", name)
		}
	}
	return nil
}

// Pool ids the workload uses.
const (
	TDPool  dma.ID = 0
	QHPool  dma.ID = 1
	ISOPool dma.ID = 2
)

// Action kinds.
const (
	actSetup uint8 = iota
	actSubmit
	actComplete
)

type epKind uint8

const (
	bulk epKind = iota
	interrupt
	iso
)

type urb struct {
	kind   epKind
	tds    []dma.ID
	n      int // TDs this URB needs
	pool   dma.ID
	tdSize int64
	buf    dma.ID // mapped data buffer (bulk)
	dir    dma.Dir
}

// Stats counts what the workload did.
type Stats struct {
	Submits        int64 // URBs submitted
	SubmitFailures int64 // submits unwound for lack of TDs or mapping
	Completions    int64
	TDs            int64 // TD allocation events
}

// Bus is one host controller and its devices: a dma.Threads workload of
// a process-context thread and an interrupt-handler thread.
type Bus struct {
	ctrl  Controller
	hcd   HCD
	cfg   Config
	flags dma.GFP
	dev   dma.Device
	rng   *rand.Rand
	ids   driver.IDs

	proc, irq *driver.Thread
	// cur is the URB each thread's current action submits (-1: none).
	cur      [2]int
	urbs     []urb
	busFree  dma.Time
	bulkXfer dma.Time
	isoEnd   dma.Time
	// Stats is updated as events are generated and outcomes reported.
	Stats Stats
}

var (
	_ dma.Threads  = (*Bus)(nil)
	_ dma.Reporter = (*Bus)(nil)
)

// New returns controller ctrl with the configured devices; randomness
// comes from seed. cfg must have passed Validate.
func New(ctrl Controller, cfg Config, seed uint64) *Bus {
	h := cfg.HCD(ctrl)
	flags, _ := dma.ParseGFP(cfg.Storage.URBFlags)
	b := &Bus{ctrl: ctrl, hcd: h, cfg: cfg, flags: flags, cur: [2]int{-1, -1},
		dev: dma.Device{Name: ctrl.String() + "_hcd", Mask: dma.BitMask(32), MapFailure: driver.Policy(cfg.MapFailure)},
		rng: rand.New(rand.NewPCG(seed, 0x05b0_0d1e_ca5e_0001)),
	}
	b.proc = driver.NewThread(b.Name()+"/process", handler{b, 0}, &b.ids)
	b.irq = driver.NewThread(b.Name()+"/irq", handler{b, 1}, &b.ids)
	bulkMbps := float64(h.BusMbps)
	if cfg.Audio.Enabled {
		bulkMbps -= float64(cfg.Audio.FrameBytes*8) / 1000 // isochronous bandwidth is reserved
	}
	b.bulkXfer = dma.Time(float64(cfg.Storage.TransferBytes*8*1000) / bulkMbps)
	add := func(k epKind, n int, pool dma.ID, size int64) {
		b.urbs = append(b.urbs, urb{kind: k, n: n, tds: make([]dma.ID, n), pool: pool, tdSize: size})
	}
	if cfg.Storage.Enabled {
		for i := 0; i < cfg.Storage.QueueDepth; i++ {
			add(bulk, b.TDsPerURB(), TDPool, h.TDSize)
		}
	}
	if cfg.HID.Enabled {
		add(interrupt, 1, TDPool, h.TDSize)
	}
	if cfg.Audio.Enabled {
		pool, size := TDPool, h.TDSize
		if h.ISOSize > 0 {
			pool, size = ISOPool, h.ISOSize
		}
		for i := 0; i < cfg.Audio.URBs; i++ {
			add(iso, (cfg.Audio.FramesPerURB+h.ISOFrames-1)/h.ISOFrames, pool, size)
		}
	}
	b.proc.Schedule(driver.Action{At: 0, Kind: actSetup})
	return b
}

// Name returns the workload name, e.g. "usb-uhci".
func (b *Bus) Name() string { return "usb-" + b.ctrl.String() }

// Threads implements dma.Threads: the submitter, then the interrupt handler.
func (b *Bus) Threads() []dma.Source { return []dma.Source{b.proc, b.irq} }

// Next is never called: the engine runs the threads.
func (b *Bus) Next(*dma.Event) error { return dma.ErrIdle }

// TDsPerURB returns how many TDs each storage URB needs.
func (b *Bus) TDsPerURB() int {
	return int((b.cfg.Storage.TransferBytes + b.hcd.TDBytes - 1) / b.hcd.TDBytes)
}

// allocBufs: storage's data buffers are allocated once, not mapped.
func (b *Bus) allocBufs() bool { return b.cfg.Storage.DataBuffers == "alloc" }

// Device returns the host controller device.
func (b *Bus) Device() *dma.Device { return &b.dev }

// Report adds the workload's counters to the results.
func (b *Bus) Report(add func(string, float64)) {
	add("urb_submit_failures", float64(b.Stats.SubmitFailures))
	add("urbs_completed", float64(b.Stats.Completions))
}

type handler struct {
	b  *Bus
	th int // 0: process, 1: irq
}

func (h handler) Expand(t *driver.Thread, a driver.Action) {
	b := h.b
	b.cur[h.th] = -1
	switch a.Kind {
	case actSetup:
		b.setup(t)
	case actSubmit:
		ctx := dma.Process
		if h.th == 1 {
			ctx = dma.HardIRQ
		}
		b.submit(t, h.th, int(a.Arg), ctx)
	case actComplete:
		b.complete(t, h.th, int(a.Arg))
	}
}

func (h handler) Outcome(t *driver.Thread, e *dma.Event, err error) {
	if ui := h.b.cur[h.th]; ui >= 0 && (e.Kind == dma.Alloc || e.Kind == dma.Map) {
		h.b.submitted(t, h.th, ui, e, err)
	}
}

// setup creates the pools, one queue head per endpoint and the buffers
// usbhid and snd-usb-audio allocate once, then starts every URB.
func (b *Bus) setup(t *driver.Thread) {
	names := [...][3]string{{"uhci_td", "uhci_qh", ""}, {"ohci_td", "ohci_ed", ""}, {"ehci_qtd", "ehci_qh", "ehci_itd"}}[b.ctrl]
	h := b.hcd
	t.Emit(dma.Event{Kind: dma.PoolCreate, Dev: &b.dev, ID: TDPool, Pool: dma.NoPool, Name: names[0], Size: h.TDSize, Align: h.TDAlign, Boundary: h.TDBoundary})
	t.Emit(dma.Event{Kind: dma.PoolCreate, Dev: &b.dev, ID: QHPool, Pool: dma.NoPool, Name: names[1], Size: h.QHSize, Align: h.QHAlign, Boundary: h.TDBoundary})
	if b.cfg.Audio.Enabled && h.ISOSize > 0 {
		t.Emit(dma.Event{Kind: dma.PoolCreate, Dev: &b.dev, ID: ISOPool, Pool: dma.NoPool, Name: names[2], Size: h.ISOSize, Align: h.TDAlign, Boundary: h.TDBoundary})
	}
	endpoint := func() {
		t.Emit(dma.Event{Kind: dma.Alloc, GFP: dma.GFPKernel, Dev: &b.dev, ID: b.ids.Get(), Pool: QHPool, Size: h.QHSize})
	}
	if b.cfg.Storage.Enabled {
		endpoint()
		endpoint()
	}
	if b.cfg.HID.Enabled {
		endpoint()
		t.Emit(dma.Event{Kind: dma.Alloc, GFP: dma.GFPKernel, Dev: &b.dev, ID: b.ids.Get(), Pool: dma.NoPool, Size: b.cfg.HID.Bytes})
	}
	if b.cfg.Audio.Enabled {
		endpoint()
		t.Emit(dma.Event{Kind: dma.Alloc, GFP: dma.GFPKernel, Dev: &b.dev, ID: b.ids.Get(), Pool: dma.NoPool,
			Size: b.cfg.Audio.FrameBytes * int64(b.cfg.Audio.FramesPerURB*b.cfg.Audio.URBs)})
	}
	for i := range b.urbs {
		if u := &b.urbs[i]; u.kind == bulk && b.allocBufs() {
			u.buf = b.ids.Get()
			t.Emit(dma.Event{Kind: dma.Alloc, GFP: dma.GFPKernel, Dev: &b.dev, ID: u.buf, Pool: dma.NoPool, Size: b.cfg.Storage.TransferBytes})
		}
	}
	for i := range b.urbs {
		if b.urbs[i].kind == bulk {
			b.proc.Schedule(driver.Action{At: t.Now, Kind: actSubmit, Arg: int32(i)})
		} else {
			b.irq.Schedule(driver.Action{At: t.Now + dma.Microsecond, Kind: actSubmit, Arg: int32(i)})
		}
	}
}

func (b *Bus) tdGFP(u *urb) dma.GFP {
	if u.kind != bulk || b.hcd.AtomicTDs {
		return dma.GFPAtomic
	}
	return b.flags
}

// submit emits a URB's TD allocations (and its buffer's map) on t.
func (b *Bus) submit(t *driver.Thread, th, ui int, ctx dma.Context) {
	u := &b.urbs[ui]
	b.cur[th] = ui
	gfp := b.tdGFP(u)
	tds := u.tds[:u.n]
	for k := range tds {
		tds[k] = b.ids.Get()
	}
	var last *dma.Event
	if evs := t.Ops(tds, dma.Alloc, ctx, gfp, 0, &b.dev, u.pool, u.tdSize); len(evs) > 0 {
		last = &evs[len(evs)-1]
	}
	b.Stats.TDs += int64(u.n)
	if u.kind == bulk {
		u.dir = dma.ToDevice
		if b.rng.Float64() < b.cfg.Storage.ReadShare {
			u.dir = dma.FromDevice
		}
		if !b.allocBufs() {
			u.buf = b.ids.Get()
			last = t.Op(dma.Map, ctx, b.flags, u.dir, &b.dev, u.buf, dma.NoPool, b.cfg.Storage.TransferBytes)
		}
	}
	last.Notify = true // its success books the completion
}

// submitted handles the outcome of one event of a submit: the last one's
// success books the completion; a failure unwinds the submit.
func (b *Bus) submitted(t *driver.Thread, th, ui int, e *dma.Event, err error) {
	u := &b.urbs[ui]
	mapped := u.kind == bulk && !b.allocBufs()
	last := e.Kind == dma.Map || (!mapped && e.ID == u.tds[u.n-1])
	if err == nil {
		if last {
			b.cur[th] = -1
			b.book(ui, t.Now)
		}
		return
	}
	b.cur[th] = -1
	got := u.n
	if e.Kind == dma.Alloc {
		for k := range u.tds[:u.n] {
			if u.tds[k] == e.ID {
				got = k
				break
			}
		}
		for k := got; k < u.n; k++ {
			b.ids.Put(u.tds[k]) // the failed allocation and the dropped ones
		}
		if mapped {
			b.ids.Put(u.buf)
		}
	} else {
		b.ids.Put(u.buf)
	}
	t.Drop()
	for k := got - 1; k >= 0; k-- {
		t.Op(dma.Free, e.Ctx, 0, 0, &b.dev, u.tds[k], u.pool, u.tdSize)
	}
	b.Stats.SubmitFailures++
	t.Schedule(driver.Action{At: t.Now + dma.Time(b.cfg.RetryNS), Kind: actSubmit, Arg: int32(ui)})
}

// book schedules a submitted URB's completion.
func (b *Bus) book(ui int, now dma.Time) {
	u := &b.urbs[ui]
	b.Stats.Submits++
	var done dma.Time
	switch u.kind {
	case bulk:
		done = max(now, b.busFree) + b.bulkXfer
		b.busFree = done
	case interrupt:
		done = now + dma.Time(b.cfg.HID.IntervalMS)*dma.Millisecond
	case iso:
		// Queued iso URBs play back to back.
		done = max(now, b.isoEnd) + dma.Time(b.cfg.Audio.FramesPerURB)*dma.Millisecond
		b.isoEnd = done
	}
	b.irq.Schedule(driver.Action{At: done, Kind: actComplete, Arg: int32(ui)})
}

// complete is the interrupt handler giving a URB back: its buffer is
// unmapped and its TDs freed; storage resubmits from process context after
// the thread wakes, HID and audio resubmit here with GFP_ATOMIC.
func (b *Bus) complete(t *driver.Thread, th, ui int) {
	u := &b.urbs[ui]
	b.Stats.Completions++
	if u.kind == bulk && !b.allocBufs() {
		t.Op(dma.Unmap, dma.HardIRQ, 0, u.dir, &b.dev, u.buf, dma.NoPool, b.cfg.Storage.TransferBytes)
	}
	t.Ops(u.tds[:u.n], dma.Free, dma.HardIRQ, 0, 0, &b.dev, u.pool, u.tdSize)
	if u.kind == bulk {
		think := dma.Time(float64(b.cfg.Storage.ThinkNS) * (0.5 + b.rng.Float64()))
		b.proc.Schedule(driver.Action{At: t.Now + think, Kind: actSubmit, Arg: int32(ui)})
		return
	}
	b.submit(t, th, ui, dma.HardIRQ)
}
