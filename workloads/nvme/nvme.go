// Package nvme generates an NVMe controller's traffic as Linux 6.6's
// nvme-pci driver makes it: per controller the two dma_pools its pools
// file shows ("prp list page": 4096-byte blocks, 4096-aligned; "prp list
// 256": 256-byte blocks, 256-aligned), and per command its data mapped
// (one dma_map_page for a single segment of at most two controller pages,
// dma_map_sg otherwise) and, past two pages, a PRP list taken GFP_ATOMIC
// from the small pool when 32 entries hold it and from the page pool
// otherwise, chained a page at a time (511 entries and a pointer each).
// Several submission/completion queue pairs, one per CPU, each with its
// queue depth of commands in flight; a command whose mapping or list
// cannot be had is requeued after blk-mq's 3 ms (BLK_MQ_RESOURCE_DELAY).
// The controller sets a 4 KiB - 1 min_align_mask, which swiotlb honours.
package nvme

import (
	"fmt"
	"math/rand/v2"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/workloads/driver"
)

// Config holds the workload's knobs.
type Config struct {
	// Queues is the I/O queue pairs (one per CPU); QueueDepth the
	// commands each keeps in flight.
	Queues     int `mapstructure:"queues" json:"queues"`
	QueueDepth int `mapstructure:"queue_depth" json:"queue_depth"`
	// Sizes and Weights: the request-size mix (bytes, relative weights).
	Sizes   []int64   `mapstructure:"sizes" json:"sizes"`
	Weights []float64 `mapstructure:"weights" json:"weights"`
	// MaxTransferKiB caps a command (the controller's MDTS; the block
	// layer splits larger requests); under swiotlb the driver caps it at
	// dma_max_mapping_size (252 KiB with NVMe's alignment), which a
	// scenario for such a platform sets.
	MaxTransferKiB int64 `mapstructure:"max_transfer_kib" json:"max_transfer_kib"`
	// SegmentBytes is the length of each contiguous piece of a request's
	// data (page-cache pages: 4096; huge pages: up to 2 MiB).
	SegmentBytes int64 `mapstructure:"segment_bytes" json:"segment_bytes"`
	// ReadShare is the fraction of reads.
	ReadShare float64 `mapstructure:"read_share" json:"read_share"`
	// ServiceUS is a command's mean service time (flash: ~80 us).
	ServiceUS int64 `mapstructure:"service_us" json:"service_us"`
	// RequeueMS is BLK_MQ_RESOURCE_DELAY.
	RequeueMS int64 `mapstructure:"requeue_ms" json:"requeue_ms"`
	// MapFailure is the driver's own answer to a failed map: "" (the
	// platform's map_failure), error or bug.
	MapFailure string `mapstructure:"map_failure" json:"map_failure"`
}

// DefaultConfig returns the defaults documented in config.yaml.
func DefaultConfig() Config {
	return Config{Queues: 4, QueueDepth: 32,
		Sizes: []int64{4096, 16384, 65536, 131072, 524288}, Weights: []float64{50, 15, 15, 10, 10},
		MaxTransferKiB: 512, SegmentBytes: 4096, ReadShare: 0.7, ServiceUS: 80, RequeueMS: 3}
}

// Validate checks the knobs.
func (c Config) Validate() error {
	if _, err := dma.ParseDevicePolicy(c.MapFailure); err != nil {
		return fmt.Errorf("nvme.%w", err)
	}
	switch {
	case c.Queues < 1 || c.Queues > 256 || c.QueueDepth < 1 || c.QueueDepth > 4096:
		return fmt.Errorf("nvme: queues 1..256 and queue_depth 1..4096")
	case c.MaxTransferKiB < 4 || c.MaxTransferKiB > 16<<10:
		return fmt.Errorf("nvme.max_transfer_kib %d: want 4..16384", c.MaxTransferKiB)
	case c.SegmentBytes < 512 || c.SegmentBytes > 1<<30 || c.SegmentBytes&(c.SegmentBytes-1) != 0:
		return fmt.Errorf("nvme.segment_bytes %d: want a power of two, 512 B..1 GiB", c.SegmentBytes)
	case c.ReadShare < 0 || c.ReadShare > 1:
		return fmt.Errorf("nvme.read_share %g: want 0..1", c.ReadShare)
	case c.ServiceUS <= 0 || c.RequeueMS <= 0:
		return fmt.Errorf("nvme: service_us and requeue_ms must be positive")
	}
	return driver.CheckMix("nvme", c.Sizes, c.Weights, 64<<20)
}

// The controller's pools, as its pools file names them.
const (
	PagePool  dma.ID = 0 // "prp list page"
	SmallPool dma.ID = 1 // "prp list 256"
)

// ctrlPage is NVME_CTRL_PAGE_SIZE.
const ctrlPage = 4096

// PRPLists returns the PRP list allocations a command of length bytes
// (starting page aligned) takes, as nvme_pci_setup_prps counts them: PRP1
// holds the first page; a second page alone goes in PRP2; otherwise the
// remaining pages' entries go in a list from the small pool when 32 fit,
// else in pages of 512 entries, each but the last giving its final entry
// to the pointer to the next.
func PRPLists(length int64) (dma.ID, int) {
	if length <= 2*ctrlPage {
		return dma.NoPool, 0
	}
	nprps := int((length - ctrlPage + ctrlPage - 1) / ctrlPage)
	if nprps <= 256/8 {
		return SmallPool, 1
	}
	lists, room := 1, ctrlPage/8
	for nprps > room {
		lists++
		room += ctrlPage/8 - 1
	}
	return PagePool, lists
}

const (
	actSetup uint8 = iota
	actSubmit
	actComplete
)

type command struct {
	data  dma.ID
	lists []dma.ID
	pool  dma.ID
	size  int64
	sg    bool
	dir   dma.Dir
	segs  [2][]int64
	turn  int
}

// Stats counts what the controller did.
type Stats struct {
	Commands, Requeues int64
}

// Controller is one NVMe controller: a submit and a completion thread per
// queue.
type Controller struct {
	cfg  Config
	dev  dma.Device
	rng  *rand.Rand
	ids  driver.IDs
	cmds [][]command // per queue
	mix  driver.Mix
	driver.Pairs
	cur   []int // per queue: the command being submitted, or -1
	Stats Stats
}

var (
	_ dma.Threads  = (*Controller)(nil)
	_ dma.Reporter = (*Controller)(nil)
)

// New returns a controller seeded by seed. cfg must have passed Validate.
func New(cfg Config, seed uint64) *Controller {
	c := &Controller{cfg: cfg, rng: rand.New(rand.NewPCG(seed, 0x4e564d65)),
		dev: dma.Device{Name: "nvme", Mask: dma.BitMask(64), MinAlignMask: ctrlPage - 1, MapFailure: driver.Policy(cfg.MapFailure)}}
	c.mix = driver.NewMix(cfg.Sizes, cfg.Weights)
	c.cmds = make([][]command, cfg.Queues)
	for q := range c.cmds {
		c.cmds[q] = make([]command, cfg.QueueDepth)
	}
	c.Pairs = driver.NewPairs("nvme", cfg.Queues, &c.ids, func(q int, irq bool) driver.Handler { return handler{c, q, irq} })
	c.cur = make([]int, cfg.Queues)
	c.Sub[0].Schedule(driver.Action{Kind: actSetup})
	return c
}

// Next is never called: the engine runs the threads.
func (c *Controller) Next(*dma.Event) error { return dma.ErrIdle }

// Name implements dma.Named.
func (c *Controller) Name() string { return "nvme" }

// Report implements dma.Reporter.
func (c *Controller) Report(add func(string, float64)) {
	add("nvme_commands", float64(c.Stats.Commands))
	add("nvme_requeues", float64(c.Stats.Requeues))
}

type handler struct {
	c   *Controller
	q   int
	irq bool
}

func (h handler) Expand(t *driver.Thread, a driver.Action) {
	c := h.c
	switch a.Kind {
	case actSetup:
		t.Emit(dma.Event{Kind: dma.PoolCreate, Dev: &c.dev, ID: PagePool, Pool: dma.NoPool, Name: "prp list page", Size: ctrlPage, Align: ctrlPage})
		t.Emit(dma.Event{Kind: dma.PoolCreate, Dev: &c.dev, ID: SmallPool, Pool: dma.NoPool, Name: "prp list 256", Size: 256, Align: 256})
		for q := range c.cmds {
			for i := range c.cmds[q] {
				c.Sub[q].Schedule(driver.Action{At: t.Now, Kind: actSubmit, Arg: int32(i)})
			}
		}
	case actSubmit:
		c.submit(t, h.q, int(a.Arg))
	case actComplete:
		c.complete(t, h.q, int(a.Arg))
	}
}

// submit maps a command's data and builds its PRP list.
func (c *Controller) submit(t *driver.Thread, q, ci int) {
	cmd := &c.cmds[q][ci]
	c.cur[q] = ci
	cmd.size = min(c.mix.Pick(c.rng), c.cfg.MaxTransferKiB<<10)
	cmd.dir = dma.ToDevice
	if c.rng.Float64() < c.cfg.ReadShare {
		cmd.dir = dma.FromDevice
	}
	cmd.data = c.ids.Get()
	cmd.sg = cmd.size > c.cfg.SegmentBytes || cmd.size > 2*ctrlPage
	var last *dma.Event
	if cmd.sg {
		cmd.turn ^= 1
		segs := cmd.segs[cmd.turn][:0]
		for left := cmd.size; left > 0; left -= c.cfg.SegmentBytes {
			segs = append(segs, min(left, c.cfg.SegmentBytes))
		}
		cmd.segs[cmd.turn] = segs
		last = t.Op(dma.MapSG, dma.Process, dma.GFPNoIO, cmd.dir, &c.dev, cmd.data, dma.NoPool, 0)
		last.Segs = segs
	} else {
		last = t.Op(dma.Map, dma.Process, dma.GFPNoIO, cmd.dir, &c.dev, cmd.data, dma.NoPool, cmd.size)
	}
	pool, n := PRPLists(cmd.size)
	cmd.pool, cmd.lists = pool, cmd.lists[:0]
	size := int64(256)
	if pool == PagePool {
		size = ctrlPage
	}
	for range n {
		id := c.ids.Get()
		cmd.lists = append(cmd.lists, id)
		last = t.Op(dma.Alloc, dma.Process, dma.GFPAtomic, 0, &c.dev, id, pool, size)
	}
	// The last event's success rings the doorbell: the service time runs.
	last.Notify = true
}

func (h handler) Outcome(t *driver.Thread, e *dma.Event, err error) {
	c := h.c
	if h.irq {
		return
	}
	ci := c.cur[h.q]
	if ci < 0 {
		return
	}
	cmd := &c.cmds[h.q][ci]
	if err == nil {
		if !e.Notify {
			return
		}
		c.cur[h.q] = -1
		c.Stats.Commands++
		service := dma.Time(float64(c.cfg.ServiceUS*1000) * (0.5 + c.rng.Float64()))
		c.IRQ[h.q].Schedule(driver.Action{At: t.Now + service, Kind: actComplete, Arg: int32(ci)})
		return
	}
	// No mapping or no list: undo what was had and requeue. The data is
	// mapped first, then the lists in order: what came before the failed
	// event was had, what came after was never asked for.
	c.cur[h.q] = -1
	t.Drop()
	if e.Kind == dma.Map || e.Kind == dma.MapSG {
		c.ids.Put(cmd.data)
		for _, id := range cmd.lists {
			c.ids.Put(id)
		}
	} else {
		c.unmap(t, cmd, dma.Process)
		had := true
		for _, id := range cmd.lists {
			if id == e.ID {
				had = false
			}
			if had {
				t.Op(dma.Free, dma.Process, 0, 0, &c.dev, id, cmd.pool, 0)
			} else {
				c.ids.Put(id)
			}
		}
	}
	c.Stats.Requeues++
	t.Schedule(driver.Action{At: t.Now + dma.Time(c.cfg.RequeueMS)*dma.Millisecond, Kind: actSubmit, Arg: int32(ci)})
}

func (c *Controller) unmap(t *driver.Thread, cmd *command, ctx dma.Context) {
	if cmd.sg {
		t.Op(dma.UnmapSG, ctx, 0, cmd.dir, &c.dev, cmd.data, dma.NoPool, 0).Segs = cmd.segs[cmd.turn]
	} else {
		t.Op(dma.Unmap, ctx, 0, cmd.dir, &c.dev, cmd.data, dma.NoPool, cmd.size)
	}
}

// complete is the completion interrupt: the list freed, the data
// unmapped, and the queue's next command submitted.
func (c *Controller) complete(t *driver.Thread, q, ci int) {
	cmd := &c.cmds[q][ci]
	for _, id := range cmd.lists {
		t.Op(dma.Free, dma.HardIRQ, 0, 0, &c.dev, id, cmd.pool, 0)
	}
	c.unmap(t, cmd, dma.HardIRQ)
	c.Sub[q].Schedule(driver.Action{At: t.Now, Kind: actSubmit, Arg: int32(ci)})
}
