package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/spf13/cobra"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/engine"
	"github.com/dmabench/dmabench/matrix"
	"github.com/dmabench/dmabench/metrics"
	"github.com/dmabench/dmabench/workloads/trace"
)

// captured keeps the served events of a run, pre-decoded, up to its
// capacity.
type captured struct{ evs []dma.Event }

func (c *captured) Record(o *engine.Outcome) {
	if o.Misuse == engine.MisuseNone && len(c.evs) < cap(c.evs) {
		e := *o.Event
		e.Segs = append([]int64(nil), e.Segs...)
		c.evs = append(c.evs, e)
	}
}

type nopRecorder struct{}

func (nopRecorder) Record(*engine.Outcome) {}

// bareLoop replays pre-decoded events against a slice-indexed free list:
// the most a Go loop can do with the same events, the harness's limit.
func bareLoop(evs []dma.Event) int64 {
	live := make([]uint64, 1<<16)
	var next, sum uint64
	for i := range evs {
		e := &evs[i]
		id := int(e.ID) & (1<<16 - 1)
		switch e.Kind {
		case dma.Alloc, dma.Map, dma.MapSG:
			next += 64
			live[id] = next
		case dma.Free, dma.Unmap, dma.UnmapSG:
			sum += live[id]
			live[id] = 0
		}
	}
	return int64(sum & 1)
}

func rate(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() }

func peakRSS() string {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "n/a"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:"))
		}
	}
	return "n/a"
}

func newBenchCmd(stdout io.Writer) *cobra.Command {
	var workload, platform, configFile string
	var events int64
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the harness itself: the limit, generation, metrics, each allocator, parsing",
		Long: `bench measures, in one run and side by side, how fast dmabench itself is on
this machine: a bare loop over pre-decoded events (the limit), the
workload's generation alone, the replay against the null allocator with
full metrics, each allocator model on the same workload and platform, and
parsing the trace format; each as events/s and as a share of the limit.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(_ *cobra.Command, _ []string) error {
			cfg, err := loadConfig(configFile, nil)
			if err != nil {
				return err
			}
			cfg.Workloads, cfg.Platforms, cfg.Allocators = []string{workload}, []string{platform}, []string{"dmapool"}
			if err := cfg.Validate(); err != nil {
				return err
			}
			if events < 10_000 {
				return usagef("bench: -n %d: want at least 10000 events", events)
			}
			b := builder{cfg}
			cell := matrix.Cell{Scenario: workload, Allocator: "dmapool", Platform: platform, Seed: 1}
			type row struct {
				name string
				rate float64
				note string
			}
			var rows []row
			replay := func(name string, rec engine.Recorder, null bool, alloc string) error {
				c := cell
				c.Allocator = alloc
				srcs, err := b.Sources(c)
				if err != nil {
					return err
				}
				var e *engine.Engine
				if null {
					n, p := engine.NewNull()
					e = engine.New(p, n, rec, srcs...)
				} else {
					p, a, err := b.Machine(c)
					if err != nil {
						rows = append(rows, row{name, 0, "refused"})
						return nil
					}
					e = engine.New(p, a, rec, srcs...)
				}
				start := time.Now()
				r, err := e.Run(events)
				if err != nil {
					return err
				}
				rows = append(rows, row{name, rate(r.Events, time.Since(start)), ""})
				return nil
			}
			if err := replay("generation + engine, null allocator, no metrics", nopRecorder{}, true, "dmapool"); err != nil {
				return err
			}
			if err := replay("null allocator with full metrics", &metrics.Recorder{}, true, "dmapool"); err != nil {
				return err
			}
			for _, ae := range allocatorTable() {
				if err := replay(ae.name+" on "+platform+" with full metrics", &metrics.Recorder{}, false, ae.name); err != nil {
					return err
				}
			}
			replayRSS := peakRSS()
			// The limit: the stream captured once, pre-decoded (at most
			// 500,000 events, looped), replayed by a bare loop.
			capEvents := min(events, 500_000)
			cp := captured{evs: make([]dma.Event, 0, capEvents)}
			if err := replay("capture", &cp, true, "dmapool"); err != nil {
				return err
			}
			rows = rows[:len(rows)-1]
			rounds := max(events/int64(len(cp.evs)), 1)
			start := time.Now()
			for k := int64(0); k < rounds; k++ {
				bareLoop(cp.evs)
			}
			limit := rate(int64(len(cp.evs))*rounds, time.Since(start))
			rows = append([]row{{"bare loop over pre-decoded events (the limit)", limit, ""}}, rows...)
			// Parsing: the captured stream as a trace, read back.
			var buf bytes.Buffer
			w := trace.NewWriter(&buf)
			for i := range cp.evs {
				w.Write(0, &cp.evs[i])
			}
			if err := w.Flush(); err != nil {
				return err
			}
			start = time.Now()
			r, err := trace.NewReader("bench", bytes.NewReader(buf.Bytes()))
			if err != nil {
				return err
			}
			var e dma.Event
			n := int64(0)
			for r.Next(&e) == nil {
				n++
			}
			d := time.Since(start)
			rows = append(rows, row{"trace parsing", rate(n, d), fmt.Sprintf("%.0f MB/s", float64(buf.Len())/d.Seconds()/1e6)})

			t := tablewriter.NewTable(stdout, tablewriter.WithHeaderAutoFormat(tw.Off), tablewriter.WithRowAlignment(tw.AlignRight))
			t.Header("measurement", "events/s", "of the limit", "note")
			for _, rw := range rows {
				share := ""
				if rw.rate > 0 {
					share = fmt.Sprintf("%.1f%%", 100*rw.rate/limit)
				}
				t.Append(rw.name, fmt.Sprintf("%.1fM", rw.rate/1e6), share, rw.note)
			}
			if err := t.Render(); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "workload %s, platform %s, %d events per measurement, one core; peak RSS of the replays %s\n", workload, platform, events, replayRSS)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&configFile, "config", "c", "", "config file (YAML) overriding the embedded config.yaml")
	f.StringVarP(&workload, "workload", "w", "usb-uhci", "workload or scenario to measure with")
	f.StringVarP(&platform, "platform", "p", "x86", "platform")
	f.Int64VarP(&events, "events", "n", 2_000_000, "events per measurement")
	return cmd
}
