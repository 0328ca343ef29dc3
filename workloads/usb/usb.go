// Package usb generates the allocation traffic of USB host controller
// drivers: URBs submitted to a UHCI, OHCI or EHCI controller, each needing
// transfer descriptors from the controller's TD pool at submit and a
// streaming mapping of its data buffer, both released at completion.
//
// TD rules follow the drivers: UHCI needs one TD per 64-byte full-speed
// packet and always allocates with GFP_ATOMIC; an OHCI TD covers 4 KiB and
// an EHCI qTD 16 KiB (five page pointers, less the first page's offset),
// both allocated with the URB's flags; EHCI's qTD pool has a 4 KiB boundary.
// An 8 KiB transfer therefore needs 128 UHCI TDs, 2 OHCI TDs or 1 EHCI qTD.
//
// URBs complete one after another at the bus's rate; the submitter (a
// storage thread) resubmits after a short think time, keeping QueueDepth
// URBs in flight. When a TD cannot be allocated, the URB's TDs are freed
// again, the submit counts as failed and is retried later.
package usb

import (
	"fmt"
	"math/rand/v2"

	"github.com/dmabench/dmabench/dma"
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
	// TDBytes is the payload one TD carries.
	TDBytes int64 `mapstructure:"td_bytes" json:"td_bytes"`
	// QHSize and QHAlign: the queue head (ED) pool; one QH per endpoint.
	QHSize  int64 `mapstructure:"qh_size" json:"qh_size"`
	QHAlign int64 `mapstructure:"qh_align" json:"qh_align"`
	// AtomicTDs: TDs are always allocated with GFP_ATOMIC (UHCI), else
	// with the URB's flags.
	AtomicTDs bool `mapstructure:"atomic_tds" json:"atomic_tds"`
	// BusMbps is the bus rate: 12 (full speed) or 480 (high speed).
	BusMbps int64 `mapstructure:"bus_mbps" json:"bus_mbps"`
}

// Config holds the workload's knobs.
type Config struct {
	// TransferBytes is the size of each bulk URB.
	TransferBytes int64 `mapstructure:"transfer_bytes" json:"transfer_bytes"`
	// QueueDepth is the number of URBs kept in flight.
	QueueDepth int `mapstructure:"queue_depth" json:"queue_depth"`
	// ReadShare is the fraction of URBs that read from the device.
	ReadShare float64 `mapstructure:"read_share" json:"read_share"`
	// ThinkNS is the mean time between a completion and the resubmit.
	ThinkNS int64 `mapstructure:"think_ns" json:"think_ns"`
	// RetryNS is how long a failed submit waits before trying again.
	RetryNS int64 `mapstructure:"retry_ns" json:"retry_ns"`
	// URBFlags is the gfp mask URBs are submitted with (usb-storage: GFP_NOIO).
	URBFlags string `mapstructure:"urb_flags" json:"urb_flags"`
	UHCI     HCD    `mapstructure:"uhci" json:"uhci"`
	OHCI     HCD    `mapstructure:"ohci" json:"ohci"`
	EHCI     HCD    `mapstructure:"ehci" json:"ehci"`
}

// DefaultConfig returns the defaults documented in config.yaml.
func DefaultConfig() Config {
	return Config{
		TransferBytes: 8192, QueueDepth: 4, ReadShare: 0.7,
		ThinkNS: 20_000, RetryNS: 1_000_000, URBFlags: "GFP_NOIO",
		UHCI: HCD{TDSize: 48, TDAlign: 16, TDBytes: 64, QHSize: 48, QHAlign: 16, AtomicTDs: true, BusMbps: 12},
		OHCI: HCD{TDSize: 64, TDAlign: 32, TDBytes: 4096, QHSize: 64, QHAlign: 16, BusMbps: 12},
		EHCI: HCD{TDSize: 96, TDAlign: 32, TDBoundary: 4096, TDBytes: 16384, QHSize: 96, QHAlign: 32, BusMbps: 480},
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
	if c.TransferBytes <= 0 || c.TransferBytes > 1<<24 {
		return fmt.Errorf("usb.transfer_bytes %d: want 1..16777216", c.TransferBytes)
	}
	if c.QueueDepth <= 0 || c.QueueDepth > 4096 {
		return fmt.Errorf("usb.queue_depth %d: want 1..4096", c.QueueDepth)
	}
	if c.ReadShare < 0 || c.ReadShare > 1 {
		return fmt.Errorf("usb.read_share %g: want 0..1", c.ReadShare)
	}
	if c.ThinkNS < 0 || c.RetryNS <= 0 {
		return fmt.Errorf("usb.think_ns must be >= 0 and usb.retry_ns > 0")
	}
	if _, err := dma.ParseGFP(c.URBFlags); err != nil {
		return fmt.Errorf("usb.urb_flags: %v", err)
	}
	for i, h := range []HCD{c.UHCI, c.OHCI, c.EHCI} {
		name := "usb." + controllerNames[i]
		switch {
		case h.TDSize <= 0 || h.QHSize <= 0:
			return fmt.Errorf("%s: td_size and qh_size must be positive", name)
		case h.TDBytes <= 0:
			return fmt.Errorf("%s.td_bytes must be positive", name)
		case h.BusMbps <= 0:
			return fmt.Errorf("%s.bus_mbps must be positive", name)
		case c.TransferBytes/h.TDBytes > 1<<16:
			return fmt.Errorf("%s: %d-byte transfers need more than 65536 TDs", name, c.TransferBytes)
		}
	}
	return nil
}

// Pool ids the source uses.
const (
	TDPool dma.ID = 0
	QHPool dma.ID = 1
)

type action uint8

const (
	actSubmit action = iota
	actComplete
)

type urb struct {
	tds  []dma.ID
	buf  dma.ID
	dir  dma.Dir
	next dma.Time
	act  action
}

type phase uint8

const (
	phSetup phase = iota
	phIdle
	phSubmitTD
	phSubmitMap
	phUnwind
	phCompleteUnmap
	phCompleteFree
)

// Stats counts what the source did.
type Stats struct {
	Submits        int64 // URBs submitted successfully
	SubmitFailures int64 // submits unwound for lack of TDs or mapping
	Completions    int64
	TDs            int64 // TD allocation events
}

// Source generates one controller's events. It implements dma.Source and
// dma.Feedback.
type Source struct {
	ctrl     Controller
	hcd      HCD
	cfg      Config
	urbFlags dma.GFP
	dev      dma.Device
	rng      *rand.Rand
	nTD      int
	xfer     dma.Time

	urbs    []urb
	freeIDs []dma.ID
	nextID  dma.ID
	busFree dma.Time

	ph      phase
	step    int
	cur     int
	now     dma.Time
	oldBus  dma.Time
	unwindN int

	// Stats is updated as events are generated and outcomes reported.
	Stats Stats
}

var (
	_ dma.Source   = (*Source)(nil)
	_ dma.Feedback = (*Source)(nil)
)

// New returns a source for controller ctrl whose randomness comes from
// seed. cfg must have passed Validate.
func New(ctrl Controller, cfg Config, seed uint64) *Source {
	h := cfg.HCD(ctrl)
	flags, _ := dma.ParseGFP(cfg.URBFlags)
	s := &Source{
		ctrl: ctrl, hcd: h, cfg: cfg, urbFlags: flags,
		dev:  dma.Device{Name: ctrl.String() + "_hcd", Mask: dma.BitMask(32)},
		rng:  rand.New(rand.NewPCG(seed, 0x05b0_0d1e_ca5e_0001)),
		nTD:  int((cfg.TransferBytes + h.TDBytes - 1) / h.TDBytes),
		xfer: dma.Time(cfg.TransferBytes * 8 * 1000 / h.BusMbps),
	}
	s.urbs = make([]urb, cfg.QueueDepth)
	for i := range s.urbs {
		s.urbs[i].tds = make([]dma.ID, s.nTD)
	}
	return s
}

// Name returns the workload name, e.g. "usb-uhci".
func (s *Source) Name() string { return "usb-" + s.ctrl.String() }

// TDsPerURB returns how many TDs each URB needs.
func (s *Source) TDsPerURB() int { return s.nTD }

// Device returns the host controller device.
func (s *Source) Device() *dma.Device { return &s.dev }

func (s *Source) newID() dma.ID {
	if n := len(s.freeIDs); n > 0 {
		id := s.freeIDs[n-1]
		s.freeIDs = s.freeIDs[:n-1]
		return id
	}
	s.nextID++
	return s.nextID - 1
}

func (s *Source) putID(id dma.ID) { s.freeIDs = append(s.freeIDs, id) }

func (s *Source) tdGFP() dma.GFP {
	if s.hcd.AtomicTDs {
		return dma.GFPAtomic
	}
	return s.urbFlags
}

// Next implements dma.Source. The stream never ends.
func (s *Source) Next(e *dma.Event) error {
	*e = dma.Event{Dev: &s.dev, Pool: dma.NoPool}
	for {
		switch s.ph {
		case phSetup:
			s.setup(e)
			return nil
		case phIdle:
			s.pick()
			continue
		case phSubmitTD:
			u := &s.urbs[s.cur]
			id := s.newID()
			u.tds[s.step] = id
			*e = dma.Event{At: s.now, Kind: dma.Alloc, Ctx: dma.Process, GFP: s.tdGFP(), Dev: &s.dev, ID: id, Pool: TDPool, Size: s.hcd.TDSize}
			s.Stats.TDs++
			s.step++
			if s.step == s.nTD {
				s.ph = phSubmitMap
			}
			return nil
		case phSubmitMap:
			u := &s.urbs[s.cur]
			u.buf = s.newID()
			*e = dma.Event{At: s.now, Kind: dma.Map, Ctx: dma.Process, Dir: u.dir, GFP: s.urbFlags, Dev: &s.dev, ID: u.buf, Pool: dma.NoPool, Size: s.cfg.TransferBytes}
			s.oldBus = s.busFree
			start := max(s.now, s.busFree)
			u.next = start + s.xfer
			u.act = actComplete
			s.busFree = u.next
			s.Stats.Submits++
			s.ph = phIdle
			return nil
		case phUnwind:
			if s.unwindN == 0 {
				u := &s.urbs[s.cur]
				u.next = s.now + dma.Time(s.cfg.RetryNS)
				u.act = actSubmit
				s.ph = phIdle
				continue
			}
			s.unwindN--
			id := s.urbs[s.cur].tds[s.unwindN]
			*e = dma.Event{At: s.now, Kind: dma.Free, Ctx: dma.Process, Dev: &s.dev, ID: id, Pool: TDPool, Size: s.hcd.TDSize}
			s.putID(id)
			return nil
		case phCompleteUnmap:
			u := &s.urbs[s.cur]
			*e = dma.Event{At: s.now, Kind: dma.Unmap, Ctx: dma.HardIRQ, Dir: u.dir, Dev: &s.dev, ID: u.buf, Pool: dma.NoPool, Size: s.cfg.TransferBytes}
			s.putID(u.buf)
			s.step = 0
			s.ph = phCompleteFree
			return nil
		case phCompleteFree:
			u := &s.urbs[s.cur]
			if s.step == s.nTD {
				s.Stats.Completions++
				think := dma.Time(float64(s.cfg.ThinkNS) * (0.5 + s.rng.Float64()))
				u.next = s.now + think
				u.act = actSubmit
				s.ph = phIdle
				continue
			}
			id := u.tds[s.step]
			*e = dma.Event{At: s.now, Kind: dma.Free, Ctx: dma.HardIRQ, Dev: &s.dev, ID: id, Pool: TDPool, Size: s.hcd.TDSize}
			s.putID(id)
			s.step++
			return nil
		}
	}
}

// setup emits the pool creations and the endpoint's queue head.
func (s *Source) setup(e *dma.Event) {
	names := [...][2]string{{"uhci_td", "uhci_qh"}, {"ohci_td", "ohci_ed"}, {"ehci_qtd", "ehci_qh"}}[s.ctrl]
	switch s.step {
	case 0:
		*e = dma.Event{Kind: dma.PoolCreate, Ctx: dma.Process, Dev: &s.dev, ID: TDPool, Pool: dma.NoPool, Name: names[0], Size: s.hcd.TDSize, Align: s.hcd.TDAlign, Boundary: s.hcd.TDBoundary}
	case 1:
		*e = dma.Event{Kind: dma.PoolCreate, Ctx: dma.Process, Dev: &s.dev, ID: QHPool, Pool: dma.NoPool, Name: names[1], Size: s.hcd.QHSize, Align: s.hcd.QHAlign, Boundary: s.hcd.TDBoundary}
	case 2:
		*e = dma.Event{Kind: dma.Alloc, Ctx: dma.Process, GFP: dma.GFPKernel, Dev: &s.dev, ID: s.newID(), Pool: QHPool, Size: s.hcd.QHSize}
	}
	s.step++
	if s.step == 3 {
		s.ph = phIdle
		s.step = 0
	}
}

// pick starts the earliest pending URB action.
func (s *Source) pick() {
	best := 0
	for i := 1; i < len(s.urbs); i++ {
		if s.urbs[i].next < s.urbs[best].next {
			best = i
		}
	}
	u := &s.urbs[best]
	s.cur = best
	s.now = u.next
	s.step = 0
	if u.act == actComplete {
		s.ph = phCompleteUnmap
		return
	}
	u.dir = dma.ToDevice
	if s.rng.Float64() < s.cfg.ReadShare {
		u.dir = dma.FromDevice
	}
	s.ph = phSubmitTD
}

// Outcome implements dma.Feedback: a failed TD allocation or mapping
// unwinds the submit.
func (s *Source) Outcome(e *dma.Event, err error) {
	if err == nil {
		return
	}
	switch {
	case e.Kind == dma.Alloc && e.Pool == TDPool:
		s.putID(e.ID)
		s.unwindN = s.step - 1
	case e.Kind == dma.Map:
		s.putID(e.ID)
		s.busFree = s.oldBus
		s.Stats.Submits--
		s.unwindN = s.nTD
	default:
		return
	}
	s.Stats.SubmitFailures++
	s.ph = phUnwind
}
