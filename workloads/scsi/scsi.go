// Package scsi generates a SCSI host adapter's traffic: per command a
// control block (a chain/sense block) from the adapter's pool and a
// scatterlist of pages built per request, dma_map_sg'ed at submit and
// unmapped at completion after a modeled service time, with a queue of
// commands in flight. Commands are queued from the block layer's dispatch
// (which may not sleep: GFP_ATOMIC) and completed by the interrupt
// handler. A command that cannot get its block or its mapping is requeued
// and retried after SCSI's queue delay (scsi_requeues).
package scsi

import (
	"fmt"
	"math/rand/v2"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/workloads/driver"
)

// Config holds the workload's knobs.
type Config struct {
	// QueueDepth is the commands kept in flight (can_queue).
	QueueDepth int `mapstructure:"queue_depth" json:"queue_depth"`
	// SGTablesize caps segments per command (128; old hosts 255).
	SGTablesize int `mapstructure:"sg_tablesize" json:"sg_tablesize"`
	// Sizes and Weights: the request-size mix (bytes, relative weights).
	Sizes   []int64   `mapstructure:"sizes" json:"sizes"`
	Weights []float64 `mapstructure:"weights" json:"weights"`
	// ReadShare is the fraction of reads.
	ReadShare float64 `mapstructure:"read_share" json:"read_share"`
	// ServiceUS is the mean service time of a command (~5 ms).
	ServiceUS int64 `mapstructure:"service_us" json:"service_us"`
	// BlockSize, BlockAlign: the per-command control block pool.
	BlockSize  int64 `mapstructure:"block_size" json:"block_size"`
	BlockAlign int64 `mapstructure:"block_align" json:"block_align"`
	// RequeueMS is the delay before a requeued command is retried
	// (SCSI_QUEUE_DELAY, 3 ms).
	RequeueMS int64 `mapstructure:"requeue_ms" json:"requeue_ms"`
	// MaskBits is the adapter's DMA mask.
	MaskBits int `mapstructure:"mask_bits" json:"mask_bits"`
	// MapFailure is the driver's own answer to a failed map: "" (the
	// platform's map_failure), error or bug.
	MapFailure string `mapstructure:"map_failure" json:"map_failure"`
}

// DefaultConfig returns the defaults documented in config.yaml.
func DefaultConfig() Config {
	return Config{
		QueueDepth: 32, SGTablesize: 128,
		Sizes:     []int64{4096, 16384, 65536, 131072, 524288},
		Weights:   []float64{40, 20, 20, 10, 10},
		ReadShare: 0.6, ServiceUS: 5000, BlockSize: 128, BlockAlign: 8, RequeueMS: 3, MaskBits: 32,
	}
}

// Validate checks the knobs.
func (c Config) Validate() error {
	if _, err := dma.ParseDevicePolicy(c.MapFailure); err != nil {
		return fmt.Errorf("scsi.%w", err)
	}
	switch {
	case c.QueueDepth < 1 || c.QueueDepth > 4096:
		return fmt.Errorf("scsi.queue_depth %d: want 1..4096", c.QueueDepth)
	case c.SGTablesize < 1 || c.SGTablesize > 2048:
		return fmt.Errorf("scsi.sg_tablesize %d: want 1..2048", c.SGTablesize)
	case c.ReadShare < 0 || c.ReadShare > 1:
		return fmt.Errorf("scsi.read_share %g: want 0..1", c.ReadShare)
	case c.ServiceUS <= 0 || c.RequeueMS <= 0:
		return fmt.Errorf("scsi: service_us and requeue_ms must be positive")
	case c.BlockSize <= 0 || c.BlockSize > 65536 || c.BlockAlign < 0 || c.BlockAlign&(c.BlockAlign-1) != 0:
		return fmt.Errorf("scsi: block_size 1..65536 and block_align a power of two")
	case c.MaskBits < 24 || c.MaskBits > 64:
		return fmt.Errorf("scsi.mask_bits %d: want 24..64", c.MaskBits)
	}
	return driver.CheckMix("scsi", c.Sizes, c.Weights, 16<<20)
}

// Pool id of the control block pool.
const BlockPool dma.ID = 0

const (
	actSetup uint8 = iota
	actSubmit
	actComplete
)

type command struct {
	block, sg dma.ID
	// Two segment lists, used in turn: the completion's unmap_sg event
	// still points at the last one when the next submit builds its own.
	lists [2][]int64
	segs  []int64
	dir   dma.Dir
	turn  int
}

// Stats counts what the adapter did.
type Stats struct {
	Commands, Requeues, Completions, Segments int64
}

// Host is one adapter: a dispatch thread and an interrupt handler.
type Host struct {
	cfg  Config
	dev  dma.Device
	rng  *rand.Rand
	ids  driver.IDs
	cmds []command
	mix  driver.Mix
	cur  [2]int
	disp *driver.Thread
	irq  *driver.Thread
	// Stats is updated as events are generated and outcomes reported.
	Stats Stats
}

var (
	_ dma.Threads  = (*Host)(nil)
	_ dma.Reporter = (*Host)(nil)
)

// New returns an adapter seeded by seed. cfg must have passed Validate.
func New(cfg Config, seed uint64) *Host {
	h := &Host{cfg: cfg, dev: dma.Device{Name: "scsi_host", Mask: dma.BitMask(cfg.MaskBits), MapFailure: driver.Policy(cfg.MapFailure)},
		rng: rand.New(rand.NewPCG(seed, 0x5c51)), cur: [2]int{-1, -1}}
	h.mix = driver.NewMix(cfg.Sizes, cfg.Weights)
	h.cmds = make([]command, cfg.QueueDepth)
	for i := range h.cmds {
		for k := range h.cmds[i].lists {
			h.cmds[i].lists[k] = make([]int64, 0, cfg.SGTablesize)
		}
	}
	h.disp = driver.NewThread("scsi/dispatch", handler{h, 0}, &h.ids)
	h.irq = driver.NewThread("scsi/irq", handler{h, 1}, &h.ids)
	h.disp.Schedule(driver.Action{Kind: actSetup})
	return h
}

// Threads implements dma.Threads.
func (h *Host) Threads() []dma.Source { return []dma.Source{h.disp, h.irq} }

// Next is never called: the engine runs the threads.
func (h *Host) Next(*dma.Event) error { return dma.ErrIdle }

// Report adds the adapter's counters.
// Name implements dma.Named.
func (h *Host) Name() string { return "scsi" }

// Report implements dma.Reporter.
func (h *Host) Report(add func(string, float64)) {
	add("scsi_requeues", float64(h.Stats.Requeues))
	add("scsi_commands", float64(h.Stats.Completions))
}

type handler struct {
	h  *Host
	th int
}

func (hd handler) Expand(t *driver.Thread, a driver.Action) {
	h := hd.h
	h.cur[hd.th] = -1
	switch a.Kind {
	case actSetup:
		t.Emit(dma.Event{Kind: dma.PoolCreate, Dev: &h.dev, ID: BlockPool, Pool: dma.NoPool, Name: "scsi_cmd_block", Size: h.cfg.BlockSize, Align: h.cfg.BlockAlign})
		for i := range h.cmds {
			h.disp.Schedule(driver.Action{At: t.Now, Kind: actSubmit, Arg: int32(i)})
		}
	case actSubmit:
		h.submit(t, hd.th, int(a.Arg))
	case actComplete:
		h.complete(t, int(a.Arg))
	}
}

// submit builds a command: its block, then a scatterlist of scattered
// pages (one segment each, at most sg_tablesize) mapped with dma_map_sg.
func (h *Host) submit(t *driver.Thread, th, ci int) {
	c := &h.cmds[ci]
	h.cur[th] = ci
	size := h.mix.Pick(h.rng)
	c.turn ^= 1
	c.segs = c.lists[c.turn][:0]
	for size > 0 && len(c.segs) < h.cfg.SGTablesize {
		n := min(size, dma.PageSize)
		c.segs = append(c.segs, n)
		size -= n
	}
	c.lists[c.turn] = c.segs
	c.dir = dma.ToDevice
	if h.rng.Float64() < h.cfg.ReadShare {
		c.dir = dma.FromDevice
	}
	c.block, c.sg = h.ids.Get(), h.ids.Get()
	t.Op(dma.Alloc, dma.SoftIRQ, dma.GFPAtomic, 0, &h.dev, c.block, BlockPool, h.cfg.BlockSize)
	// The data pages are page-cache pages the filesystem allocated with
	// GFP_NOIO before the request reached the driver; only what the
	// mapping itself needs (bounce buffers) is atomic.
	sg := t.Op(dma.MapSG, dma.SoftIRQ, dma.GFPNoIO, c.dir, &h.dev, c.sg, dma.NoPool, 0)
	sg.Segs, sg.Notify = c.segs, true // its success starts the service time
}

func (hd handler) Outcome(t *driver.Thread, e *dma.Event, err error) {
	h := hd.h
	ci := h.cur[hd.th]
	if ci < 0 || (e.Kind != dma.Alloc && e.Kind != dma.MapSG) {
		return
	}
	c := &h.cmds[ci]
	if err == nil {
		if e.Kind == dma.MapSG {
			h.cur[hd.th] = -1
			h.Stats.Commands++
			h.Stats.Segments += int64(len(c.segs))
			service := dma.Time(float64(h.cfg.ServiceUS*1000) * (0.5 + h.rng.Float64()))
			h.irq.Schedule(driver.Action{At: t.Now + service, Kind: actComplete, Arg: int32(ci)})
		}
		return
	}
	// No block or no mapping: undo and requeue.
	h.cur[hd.th] = -1
	t.Drop()
	h.ids.Put(c.sg) // failed or dropped: never live
	if e.Kind == dma.MapSG {
		t.Op(dma.Free, dma.SoftIRQ, 0, 0, &h.dev, c.block, BlockPool, h.cfg.BlockSize)
	} else {
		h.ids.Put(c.block)
	}
	h.Stats.Requeues++
	t.Schedule(driver.Action{At: t.Now + dma.Time(h.cfg.RequeueMS)*dma.Millisecond, Kind: actSubmit, Arg: int32(ci)})
}

// complete is the interrupt handler finishing a command; the block layer
// then dispatches the next one.
func (h *Host) complete(t *driver.Thread, ci int) {
	c := &h.cmds[ci]
	h.Stats.Completions++
	t.Op(dma.UnmapSG, dma.HardIRQ, 0, c.dir, &h.dev, c.sg, dma.NoPool, 0).Segs = c.segs
	t.Op(dma.Free, dma.HardIRQ, 0, 0, &h.dev, c.block, BlockPool, h.cfg.BlockSize)
	h.disp.Schedule(driver.Action{At: t.Now, Kind: actSubmit, Arg: int32(ci)})
}
