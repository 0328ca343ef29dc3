// Package netrx generates a network card's receive traffic: a descriptor
// ring of N entries in one coherent allocation made at start, a 2 KiB
// buffer per slot, packets arriving at a modeled line rate in bursts. For
// each packet the NAPI poll (softirq) unmaps the filled buffer and passes
// it up, then refills empty slots with GFP_ATOMIC. A refill that fails
// leaves its slot empty and later packets that find an empty slot are
// dropped (rx_drops).
//
// Buffers are streaming-mapped per packet (rx_buffers: map, as e1000 does
// with skbs), or blocks from a DMA pool of the allocator under test
// (rx_buffers: pool, as page_pool-style drivers recycle pre-mapped pages).
package netrx

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/workloads/driver"
)

// Config holds the workload's knobs.
type Config struct {
	// RingSize is the rx descriptors (256 as e1000, 512 as ixgbe).
	RingSize int `mapstructure:"ring_size" json:"ring_size"`
	// DescBytes is one descriptor's size.
	DescBytes int64 `mapstructure:"desc_bytes" json:"desc_bytes"`
	// BufBytes is one rx buffer.
	BufBytes int64 `mapstructure:"buf_bytes" json:"buf_bytes"`
	// LineMbps and PacketBytes set the packet rate within a burst.
	LineMbps    int64 `mapstructure:"line_mbps" json:"line_mbps"`
	PacketBytes int64 `mapstructure:"packet_bytes" json:"packet_bytes"`
	// Load is the mean link utilisation; BurstPackets the mean burst.
	Load         float64 `mapstructure:"load" json:"load"`
	BurstPackets float64 `mapstructure:"burst_packets" json:"burst_packets"`
	// Budget is the most packets one poll passes up and the most slots it
	// refills (NAPI weight 64).
	Budget int `mapstructure:"budget" json:"budget"`
	// PollUS is the interrupt coalescing delay: the NAPI poll runs this
	// long after the first packet it will find.
	PollUS int64 `mapstructure:"poll_us" json:"poll_us"`
	// RxBuffers is "map" (per-packet streaming maps) or "pool".
	RxBuffers string `mapstructure:"rx_buffers" json:"rx_buffers"`
	// StackUS is, in pool mode, the mean time (exponential) the stack and
	// the receiving application hold a buffer passed up before it returns
	// to the pool; 0 returns it in the poll. In map mode the buffer is
	// unmapped in the poll whatever this says.
	StackUS  int64 `mapstructure:"stack_us" json:"stack_us"`
	MaskBits int   `mapstructure:"mask_bits" json:"mask_bits"`
	// MapFailure is the driver's own answer to a failed map: "" (the
	// platform's map_failure), error or bug.
	MapFailure string `mapstructure:"map_failure" json:"map_failure"`
}

// DefaultConfig returns the defaults documented in config.yaml.
func DefaultConfig() Config {
	return Config{RingSize: 256, DescBytes: 16, BufBytes: 2048, LineMbps: 1000, PacketBytes: 1500,
		Load: 0.3, BurstPackets: 32, Budget: 64, PollUS: 50, RxBuffers: "map", StackUS: 0, MaskBits: 32}
}

// Validate checks the knobs.
func (c Config) Validate() error {
	if _, err := dma.ParseDevicePolicy(c.MapFailure); err != nil {
		return fmt.Errorf("netrx.%w", err)
	}
	switch {
	case c.RingSize < 8 || c.RingSize > 65536:
		return fmt.Errorf("netrx.ring_size %d: want 8..65536", c.RingSize)
	case c.DescBytes <= 0 || c.BufBytes <= 0 || c.BufBytes > 1<<20:
		return fmt.Errorf("netrx: desc_bytes and buf_bytes (up to 1 MiB) must be positive")
	case c.LineMbps <= 0 || c.PacketBytes <= 0 || c.PacketBytes > c.BufBytes:
		return fmt.Errorf("netrx: line_mbps positive, packet_bytes 1..buf_bytes")
	case c.Load <= 0 || c.Load > 1 || c.BurstPackets < 1:
		return fmt.Errorf("netrx: load in (0,1], burst_packets >= 1")
	case c.Budget < 1 || c.PollUS < 0 || c.StackUS < 0 || c.StackUS > 60_000_000:
		return fmt.Errorf("netrx.budget must be positive, poll_us not negative and stack_us in 0..60000000")
	case c.RxBuffers != "map" && c.RxBuffers != "pool":
		return fmt.Errorf("netrx.rx_buffers %q: valid values are map, pool", c.RxBuffers)
	case c.MaskBits < 24 || c.MaskBits > 64:
		return fmt.Errorf("netrx.mask_bits %d: want 24..64", c.MaskBits)
	}
	return nil
}

// BufPool is the rx buffer pool's id in pool mode.
const BufPool dma.ID = 0

const (
	actSetup uint8 = iota
	actPacket
	actPoll
	actRecycle // the stack frees a pool buffer passed up (Arg: its id)
)

// Stats counts what the ring saw.
type Stats struct {
	Packets, Drops, Refills, RefillFailures int64
	// Maps counts buffer maps (or pool allocations) issued.
	Maps int64
}

// NIC is one receive ring, served by its softirq.
type NIC struct {
	cfg     Config
	pool    bool
	dev     dma.Device
	rng     *rand.Rand
	ids     driver.IDs
	th      *driver.Thread
	slots   []dma.ID // buffer in each slot, or -1
	head    int      // next slot the card fills
	clean   int      // next filled slot the poll passes up
	filled  int      // slots the card filled that the poll has not seen
	polling bool     // a poll is scheduled
	tail    int      // next slot to refill
	pending []int    // slots of this poll's refill events, in order
	next    int      // the pending refill whose outcome comes next
	pktTime float64
	gap     float64
	left    float64 // packets left in the current burst
	// Stats is updated as events are generated and outcomes reported.
	Stats Stats
}

var (
	_ dma.Source   = (*driver.Thread)(nil)
	_ dma.Reporter = (*NIC)(nil)
	_ dma.Threads  = (*NIC)(nil)
)

// New returns a NIC seeded by seed. cfg must have passed Validate.
func New(cfg Config, seed uint64) *NIC {
	n := &NIC{cfg: cfg, pool: cfg.RxBuffers == "pool", dev: dma.Device{Name: "eth0", Mask: dma.BitMask(cfg.MaskBits), MapFailure: driver.Policy(cfg.MapFailure)},
		rng: rand.New(rand.NewPCG(seed, 0x7e7)), slots: make([]dma.ID, cfg.RingSize)}
	for i := range n.slots {
		n.slots[i] = -1
	}
	n.pktTime = float64(cfg.PacketBytes*8*1000) / float64(cfg.LineMbps) // ns
	n.gap = cfg.BurstPackets * n.pktTime * (1 - cfg.Load) / cfg.Load
	n.th = driver.NewThread("netrx/softirq", n, &n.ids)
	n.th.Schedule(driver.Action{Kind: actSetup})
	return n
}

// Threads implements dma.Threads (one thread: the softirq).
func (n *NIC) Threads() []dma.Source { return []dma.Source{n.th} }

// Next is never called: the engine runs the thread.
func (n *NIC) Next(*dma.Event) error { return dma.ErrIdle }

// Report adds the ring's counters.
// Name implements dma.Named.
func (n *NIC) Name() string { return "netrx" }

// Report implements dma.Reporter.
func (n *NIC) Report(add func(string, float64)) {
	add("rx_packets", float64(n.Stats.Packets))
	add("rx_drops", float64(n.Stats.Drops))
	add("rx_refill_failures", float64(n.Stats.RefillFailures))
	rate := 0.0
	if n.Stats.Packets+n.Stats.Drops > 0 {
		rate = float64(n.Stats.Drops) / float64(n.Stats.Packets+n.Stats.Drops)
	}
	add("rx_drop_rate", rate)
}

// Ring returns the ring size.
func (n *NIC) Ring() int { return len(n.slots) }

// Expand implements driver.Handler.
func (n *NIC) Expand(t *driver.Thread, a driver.Action) {
	switch a.Kind {
	case actSetup:
		t.Emit(dma.Event{Kind: dma.Alloc, GFP: dma.GFPKernel, Dev: &n.dev, ID: n.ids.Get(), Pool: dma.NoPool, Size: int64(n.cfg.RingSize) * n.cfg.DescBytes})
		if n.pool {
			t.Emit(dma.Event{Kind: dma.PoolCreate, Dev: &n.dev, ID: BufPool, Pool: dma.NoPool, Name: "rx_buf", Size: n.cfg.BufBytes, Align: 64})
		}
		// e1000 fills the ring at open with netdev_alloc_skb: GFP_ATOMIC.
		n.refill(t, dma.Process, dma.GFPAtomic, n.cfg.RingSize)
		n.th.Schedule(driver.Action{At: t.Now + dma.Microsecond, Kind: actPacket})
	case actPacket:
		n.packet(t)
		n.th.Schedule(driver.Action{At: t.Now + n.nextGap(), Kind: actPacket})
	case actPoll:
		n.poll(t)
	case actRecycle:
		t.Op(dma.Free, dma.Process, 0, 0, &n.dev, dma.ID(a.Arg), BufPool, n.cfg.BufBytes)
	}
}

// nextGap is the time to the next packet: line rate within a burst, an
// exponential idle gap between bursts (geometric burst lengths).
func (n *NIC) nextGap() dma.Time {
	if n.left <= 1 {
		n.left = 1 + math.Floor(n.rng.ExpFloat64()*(n.cfg.BurstPackets-1))
		return dma.Time(n.pktTime + n.rng.ExpFloat64()*n.gap)
	}
	n.left--
	return dma.Time(n.pktTime)
}

// packet: the card writes into slot head if it holds a buffer, else the
// packet is dropped; either way the interrupt schedules a NAPI poll
// (coalesced). Nothing is allocated here: the card does DMA.
func (n *NIC) packet(t *driver.Thread) {
	if n.slots[n.head] < 0 || n.filled == len(n.slots) {
		// No buffer: dropped. The card raises its "out of rx buffers"
		// interrupt, so a poll comes to refill.
		n.Stats.Drops++
	} else {
		n.Stats.Packets++
		n.filled++
		n.head = (n.head + 1) % len(n.slots)
	}
	if !n.polling {
		n.polling = true
		n.th.Schedule(driver.Action{At: t.Now + dma.Time(n.cfg.PollUS)*dma.Microsecond, Kind: actPoll})
	}
}

// poll is the NAPI poll in softirq: it passes up to budget received
// packets up the stack (unmapping their buffers), then refills empty slots
// with GFP_ATOMIC. Packets left over get another poll.
func (n *NIC) poll(t *driver.Thread) {
	n.polling = false
	for k := 0; k < n.cfg.Budget && n.filled > 0; k++ {
		id := n.slots[n.clean]
		if n.pool && n.cfg.StackUS > 0 {
			hold := dma.Time(n.rng.ExpFloat64() * float64(n.cfg.StackUS) * float64(dma.Microsecond))
			n.th.Schedule(driver.Action{At: t.Now + hold, Kind: actRecycle, Arg: int32(id)})
		} else if n.pool {
			t.Op(dma.Free, dma.SoftIRQ, 0, 0, &n.dev, id, BufPool, n.cfg.BufBytes)
		} else {
			t.Op(dma.Unmap, dma.SoftIRQ, 0, dma.FromDevice, &n.dev, id, dma.NoPool, n.cfg.BufBytes)
		}
		n.slots[n.clean] = -1
		n.clean = (n.clean + 1) % len(n.slots)
		n.filled--
	}
	n.refill(t, dma.SoftIRQ, dma.GFPAtomic, n.cfg.Budget)
	if n.filled > 0 {
		n.polling = true
		n.th.Schedule(driver.Action{At: t.Now + dma.Microsecond, Kind: actPoll})
	}
}

// refill emits buffers for empty slots from tail, at most budget.
func (n *NIC) refill(t *driver.Thread, ctx dma.Context, gfp dma.GFP, budget int) {
	n.pending, n.next = n.pending[:0], 0
	for k, s := 0, n.tail; k < budget && n.slots[s] == -1; k++ {
		id := n.ids.Get()
		if n.pool {
			t.Op(dma.Alloc, ctx, gfp, 0, &n.dev, id, BufPool, n.cfg.BufBytes).Notify = true
		} else {
			t.Op(dma.Map, ctx, gfp, dma.FromDevice, &n.dev, id, dma.NoPool, n.cfg.BufBytes).Notify = true
		}
		n.pending = append(n.pending, s)
		n.slots[s] = -2 - id // reserved for this refill
		s = (s + 1) % len(n.slots)
		if s == n.head {
			break
		}
	}
}

// Outcome implements driver.Handler: a refilled slot is filled; a failed
// refill leaves its slot and the rest of this poll's slots empty.
func (n *NIC) Outcome(t *driver.Thread, e *dma.Event, err error) {
	if (e.Kind != dma.Map && e.Kind != dma.Alloc) || e.Pool == dma.NoPool && e.Kind == dma.Alloc || n.next == len(n.pending) {
		return
	}
	s := n.pending[n.next]
	n.next++
	n.Stats.Maps++
	if err == nil {
		n.slots[s] = e.ID
		n.tail = (s + 1) % len(n.slots)
		n.Stats.Refills++
		return
	}
	n.Stats.RefillFailures++
	n.ids.Put(e.ID)
	n.slots[s] = -1
	for _, r := range n.pending[n.next:] {
		n.ids.Put(-2 - n.slots[r])
		n.slots[r] = -1
	}
	n.next = len(n.pending)
	t.Drop()
}
