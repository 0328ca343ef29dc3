// Package virtio generates the DMA traffic of Linux 6.6's virtio drivers
// for a device that uses the DMA API (VIRTIO_F_ACCESS_PLATFORM, as every
// device of a confidential VM must): split virtqueues in coherent memory
// (vring_alloc_queue), and every buffer put on a queue mapped on its own
// (vring_map_one_sg: one dma_map_page per scatterlist entry, no merging),
// including the indirect descriptor table of a request of several entries.
//
//   - Blk is virtio-blk: per request a 16-byte header (to the device), the
//     data pages (up to seg_max entries), a 1-byte status (from the
//     device) and the indirect table, each mapped; unmapped at completion.
//     A request whose mappings fail is requeued after blk-mq's 3 ms.
//   - TX is virtio-net's transmit queue: each packet mapped to the device
//     (the skb's data, GFP_ATOMIC in the xmit path) and unmapped when the
//     device has used it; a packet that finds the queue full or cannot be
//     mapped is dropped. The receive queue is the netrx workload with
//     virtio's sizes (see the registry's virtio-net).
package virtio

import (
	"fmt"
	"math/rand/v2"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/workloads/driver"
)

// vringBytes is a split virtqueue of num entries (descriptors, avail and
// used rings, with their headers and event indices).
func vringBytes(num int) int64 { return int64(16*num + (6 + 2*num) + (6 + 8*num)) }

// BlkConfig holds virtio-blk's knobs.
type BlkConfig struct {
	// Queues (num_queues, one per CPU) of QueueSize descriptors; each
	// keeps QueueDepth requests in flight.
	Queues     int `mapstructure:"queues" json:"queues"`
	QueueSize  int `mapstructure:"queue_size" json:"queue_size"`
	QueueDepth int `mapstructure:"queue_depth" json:"queue_depth"`
	// SegMax is the device's seg_max (QEMU: queue_size - 2).
	SegMax int `mapstructure:"seg_max" json:"seg_max"`
	// Sizes and Weights: the request-size mix.
	Sizes   []int64   `mapstructure:"sizes" json:"sizes"`
	Weights []float64 `mapstructure:"weights" json:"weights"`
	// SegmentBytes: each contiguous piece of a request's data.
	SegmentBytes int64   `mapstructure:"segment_bytes" json:"segment_bytes"`
	ReadShare    float64 `mapstructure:"read_share" json:"read_share"`
	ServiceUS    int64   `mapstructure:"service_us" json:"service_us"`
	RequeueMS    int64   `mapstructure:"requeue_ms" json:"requeue_ms"`
	// MapFailure is the driver's own answer to a failed map: "" (the
	// platform's map_failure), error or bug.
	MapFailure string `mapstructure:"map_failure" json:"map_failure"`
}

// DefaultBlkConfig returns the defaults documented in config.yaml.
func DefaultBlkConfig() BlkConfig {
	return BlkConfig{Queues: 2, QueueSize: 256, QueueDepth: 64, SegMax: 254,
		Sizes: []int64{4096, 16384, 65536, 131072}, Weights: []float64{50, 20, 20, 10},
		SegmentBytes: 4096, ReadShare: 0.7, ServiceUS: 150, RequeueMS: 3}
}

// Validate checks the knobs.
func (c BlkConfig) Validate() error {
	if _, err := dma.ParseDevicePolicy(c.MapFailure); err != nil {
		return fmt.Errorf("virtio_blk.%w", err)
	}
	switch {
	case c.Queues < 1 || c.Queues > 256 || c.QueueSize < 2 || c.QueueSize > 32768 || c.QueueSize&(c.QueueSize-1) != 0:
		return fmt.Errorf("virtio_blk: queues 1..256, queue_size a power of two 2..32768")
	case c.QueueDepth < 1 || c.QueueDepth > c.QueueSize:
		return fmt.Errorf("virtio_blk.queue_depth %d: want 1..queue_size", c.QueueDepth)
	case c.SegMax < 1 || c.SegMax > 4096:
		return fmt.Errorf("virtio_blk.seg_max %d: want 1..4096", c.SegMax)
	case c.SegmentBytes < 512 || c.SegmentBytes > 1<<30 || c.SegmentBytes&(c.SegmentBytes-1) != 0:
		return fmt.Errorf("virtio_blk.segment_bytes %d: want a power of two, 512 B..1 GiB", c.SegmentBytes)
	case c.ReadShare < 0 || c.ReadShare > 1 || c.ServiceUS <= 0 || c.RequeueMS <= 0:
		return fmt.Errorf("virtio_blk: read_share 0..1, service_us and requeue_ms positive")
	}
	return driver.CheckMix("virtio_blk", c.Sizes, c.Weights, 64<<20)
}

const (
	actSetup uint8 = iota
	actSubmit
	actComplete
	actPacket
)

type request struct {
	ids  []dma.ID // header, data entries, status, indirect table
	lens []int64
	dirs []dma.Dir
}

// BlkStats counts what the device did.
type BlkStats struct {
	Requests, Requeues int64
}

// Blk is one virtio-blk device.
type Blk struct {
	cfg  BlkConfig
	dev  dma.Device
	rng  *rand.Rand
	ids  driver.IDs
	reqs [][]request
	cur  []int
	mix  driver.Mix
	driver.Pairs
	Stats BlkStats
}

var (
	_ dma.Threads  = (*Blk)(nil)
	_ dma.Reporter = (*Blk)(nil)
)

// NewBlk returns a device seeded by seed. cfg must have passed Validate.
func NewBlk(cfg BlkConfig, seed uint64) *Blk {
	b := &Blk{cfg: cfg, dev: dma.Device{Name: "virtio_blk", Mask: dma.BitMask(64), MapFailure: driver.Policy(cfg.MapFailure)}, rng: rand.New(rand.NewPCG(seed, 0xb1c))}
	b.mix = driver.NewMix(cfg.Sizes, cfg.Weights)
	b.reqs = make([][]request, cfg.Queues)
	b.cur = make([]int, cfg.Queues)
	for q := range b.reqs {
		b.reqs[q] = make([]request, cfg.QueueDepth)
		for i := range b.reqs[q] {
			// Header, up to seg_max data entries, status, table.
			n := cfg.SegMax + 3
			b.reqs[q][i] = request{ids: make([]dma.ID, 0, n), lens: make([]int64, 0, n), dirs: make([]dma.Dir, 0, n)}
		}
	}
	b.Pairs = driver.NewPairs("virtio_blk", cfg.Queues, &b.ids, func(q int, irq bool) driver.Handler { return blkHandler{b, q, irq} })
	b.Sub[0].Schedule(driver.Action{Kind: actSetup})
	return b
}

// Next is never called: the engine runs the threads.
func (b *Blk) Next(*dma.Event) error { return dma.ErrIdle }

// Name implements dma.Named.
func (b *Blk) Name() string { return "virtio-blk" }

// Report implements dma.Reporter.
func (b *Blk) Report(add func(string, float64)) {
	add("blk_requests", float64(b.Stats.Requests))
	add("blk_requeues", float64(b.Stats.Requeues))
}

type blkHandler struct {
	b   *Blk
	q   int
	irq bool
}

func (h blkHandler) Expand(t *driver.Thread, a driver.Action) {
	b := h.b
	switch a.Kind {
	case actSetup:
		for range b.cfg.Queues {
			t.Emit(dma.Event{Kind: dma.Alloc, GFP: dma.GFPKernel, Dev: &b.dev, ID: b.ids.Get(), Pool: dma.NoPool, Size: vringBytes(b.cfg.QueueSize)})
		}
		for q := range b.reqs {
			for i := range b.reqs[q] {
				b.Sub[q].Schedule(driver.Action{At: t.Now, Kind: actSubmit, Arg: int32(i)})
			}
		}
	case actSubmit:
		b.submit(t, h.q, int(a.Arg))
	case actComplete:
		r := &b.reqs[h.q][a.Arg]
		for i, id := range r.ids {
			t.Op(dma.Unmap, dma.HardIRQ, 0, r.dirs[i], &b.dev, id, dma.NoPool, r.lens[i])
		}
		b.Sub[h.q].Schedule(driver.Action{At: t.Now, Kind: actSubmit, Arg: a.Arg})
	}
}

// submit maps a request's buffers one by one, as virtqueue_add does.
func (b *Blk) submit(t *driver.Thread, q, ri int) {
	r := &b.reqs[q][ri]
	b.cur[q] = ri
	size := min(b.mix.Pick(b.rng), int64(b.cfg.SegMax)*b.cfg.SegmentBytes)
	dir := dma.ToDevice
	if b.rng.Float64() < b.cfg.ReadShare {
		dir = dma.FromDevice
	}
	r.ids, r.lens, r.dirs = r.ids[:0], r.lens[:0], r.dirs[:0]
	b.add(t, r, 16, dma.ToDevice, dma.GFPNoIO) // struct virtio_blk_outhdr, in the request
	entries := 2
	for left := size; left > 0; left -= b.cfg.SegmentBytes {
		b.add(t, r, min(left, b.cfg.SegmentBytes), dir, dma.GFPNoIO)
		entries++
	}
	b.add(t, r, 1, dma.FromDevice, dma.GFPNoIO) // the status byte
	// Several entries go through an indirect table (kmalloc, GFP_ATOMIC),
	// mapped to the device.
	b.add(t, r, int64(16*entries), dma.ToDevice, dma.GFPAtomic).Notify = true
}

// add maps one buffer of request r on its own (vring_map_one_sg).
func (b *Blk) add(t *driver.Thread, r *request, n int64, d dma.Dir, gfp dma.GFP) *dma.Event {
	id := b.ids.Get()
	r.ids, r.lens, r.dirs = append(r.ids, id), append(r.lens, n), append(r.dirs, d)
	return t.Op(dma.Map, dma.Process, gfp, d, &b.dev, id, dma.NoPool, n)
}

func (h blkHandler) Outcome(t *driver.Thread, e *dma.Event, err error) {
	b := h.b
	if h.irq {
		return
	}
	ri := b.cur[h.q]
	r := &b.reqs[h.q][ri]
	if err == nil {
		b.Stats.Requests++
		service := dma.Time(float64(b.cfg.ServiceUS*1000) * (0.5 + b.rng.Float64()))
		b.IRQ[h.q].Schedule(driver.Action{At: t.Now + service, Kind: actComplete, Arg: int32(ri)})
		return
	}
	// A mapping failed: vring_map_one_sg's unwinding unmaps what was
	// mapped; the request is requeued.
	t.Drop()
	had := true
	for i, id := range r.ids {
		if id == e.ID {
			had = false
		}
		if had {
			t.Op(dma.Unmap, dma.Process, 0, r.dirs[i], &b.dev, id, dma.NoPool, r.lens[i])
		} else {
			b.ids.Put(id)
		}
	}
	b.Stats.Requeues++
	t.Schedule(driver.Action{At: t.Now + dma.Time(b.cfg.RequeueMS)*dma.Millisecond, Kind: actSubmit, Arg: int32(ri)})
}

// TXConfig holds virtio-net transmit's knobs.
type TXConfig struct {
	QueueSize int `mapstructure:"queue_size" json:"queue_size"`
	// PacketsPerSec and PacketBytes: the offered load.
	PacketsPerSec int64 `mapstructure:"packets_per_sec" json:"packets_per_sec"`
	PacketBytes   int64 `mapstructure:"packet_bytes" json:"packet_bytes"`
	// DoneUS is how long the device takes to use a packet.
	DoneUS int64 `mapstructure:"done_us" json:"done_us"`
	// MapFailure is the driver's own answer to a failed map: "" (the
	// platform's map_failure), error or bug.
	MapFailure string `mapstructure:"map_failure" json:"map_failure"`
}

// DefaultTXConfig returns the defaults documented in config.yaml.
func DefaultTXConfig() TXConfig {
	return TXConfig{QueueSize: 256, PacketsPerSec: 100000, PacketBytes: 1514, DoneUS: 50}
}

// Validate checks the knobs.
func (c TXConfig) Validate() error {
	if _, err := dma.ParseDevicePolicy(c.MapFailure); err != nil {
		return fmt.Errorf("virtio_net.tx.%w", err)
	}
	switch {
	case c.QueueSize < 2 || c.QueueSize > 32768 || c.QueueSize&(c.QueueSize-1) != 0:
		return fmt.Errorf("virtio_net.tx.queue_size %d: want a power of two 2..32768", c.QueueSize)
	case c.PacketsPerSec < 1 || c.PacketsPerSec > 100_000_000:
		return fmt.Errorf("virtio_net.tx.packets_per_sec %d: want 1..1e8", c.PacketsPerSec)
	case c.PacketBytes < 60 || c.PacketBytes > 65536:
		return fmt.Errorf("virtio_net.tx.packet_bytes %d: want 60..65536", c.PacketBytes)
	case c.DoneUS <= 0:
		return fmt.Errorf("virtio_net.tx.done_us must be positive")
	}
	return nil
}

// TX is one transmit queue.
type TX struct {
	cfg      TXConfig
	dev      dma.Device
	rng      *rand.Rand
	ids      driver.IDs
	th       *driver.Thread
	inFlight int
	// Sent and Dropped count packets.
	Sent, Dropped int64
}

var (
	_ dma.Threads  = (*TX)(nil)
	_ dma.Reporter = (*TX)(nil)
)

// NewTX returns a transmit queue seeded by seed.
func NewTX(cfg TXConfig, seed uint64) *TX {
	x := &TX{cfg: cfg, dev: dma.Device{Name: "virtio_net", Mask: dma.BitMask(64), MapFailure: driver.Policy(cfg.MapFailure)}, rng: rand.New(rand.NewPCG(seed, 0x7e))}
	x.th = driver.NewThread("virtio_net/tx", x, &x.ids)
	x.th.Schedule(driver.Action{Kind: actSetup})
	return x
}

// Threads implements dma.Threads.
func (x *TX) Threads() []dma.Source { return []dma.Source{x.th} }

// Next is never called: the engine runs the thread.
func (x *TX) Next(*dma.Event) error { return dma.ErrIdle }

// Name implements dma.Named.
func (x *TX) Name() string { return "virtio-net/tx" }

// Report implements dma.Reporter.
func (x *TX) Report(add func(string, float64)) {
	add("tx_packets", float64(x.Sent))
	add("tx_drops", float64(x.Dropped))
}

// Expand implements driver.Handler.
func (x *TX) Expand(t *driver.Thread, a driver.Action) {
	switch a.Kind {
	case actSetup:
		t.Emit(dma.Event{Kind: dma.Alloc, GFP: dma.GFPKernel, Dev: &x.dev, ID: x.ids.Get(), Pool: dma.NoPool, Size: vringBytes(x.cfg.QueueSize)})
		x.th.Schedule(driver.Action{At: t.Now + dma.Microsecond, Kind: actPacket})
	case actPacket:
		gap := dma.Time(x.rng.ExpFloat64() * 1e9 / float64(x.cfg.PacketsPerSec))
		x.th.Schedule(driver.Action{At: t.Now + max(gap, 1), Kind: actPacket})
		if x.inFlight == x.cfg.QueueSize {
			x.Dropped++ // queue full: the stack drops (or requeues) it
			return
		}
		id := x.ids.Get()
		x.inFlight++
		t.Op(dma.Map, dma.SoftIRQ, dma.GFPAtomic, dma.ToDevice, &x.dev, id, dma.NoPool, x.cfg.PacketBytes).Notify = true
	case actComplete:
		// free_old_xmit: the device used it.
		x.inFlight--
		t.Op(dma.Unmap, dma.SoftIRQ, 0, dma.ToDevice, &x.dev, dma.ID(a.Arg), dma.NoPool, x.cfg.PacketBytes)
	}
}

// Outcome implements driver.Handler.
func (x *TX) Outcome(t *driver.Thread, e *dma.Event, err error) {
	if e.Kind != dma.Map {
		return
	}
	if err != nil {
		x.inFlight--
		x.Dropped++
		x.ids.Put(e.ID)
		return
	}
	x.Sent++
	done := dma.Time(x.rng.ExpFloat64() * float64(x.cfg.DoneUS) * float64(dma.Microsecond))
	x.th.Schedule(driver.Action{At: t.Now + max(done, 1), Kind: actComplete, Arg: int32(e.ID)})
}
