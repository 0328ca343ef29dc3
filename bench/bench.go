// Package bench measures dmabench itself: how fast the harness replays a
// workload's events, from a bare loop over pre-decoded events (the limit)
// through the engine with full metrics against the null allocator and
// each allocator model, to generating the workload as it is served,
// parsing a trace and replaying it. It is what `dmabench bench` runs; the
// Go benchmarks of each stage sit next to the code they measure.
package bench

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/montanaflynn/stats"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/dmabench/dmabench/dma"
	"github.com/dmabench/dmabench/engine"
	"github.com/dmabench/dmabench/matrix"
	"github.com/dmabench/dmabench/metrics"
	"github.com/dmabench/dmabench/workloads/trace"
)

// captured keeps the served events of a run, pre-decoded, up to its
// capacity, and writes them as a trace when it has a trace recorder.
type captured struct {
	evs []dma.Event
	rec *trace.Recorder
}

func (c *captured) Record(o *engine.Outcome) {
	if o.Served() && len(c.evs) < cap(c.evs) {
		e := *o.Event
		e.Segs = append([]int64(nil), e.Segs...)
		// A trace does not carry Notify, which only a driver's own
		// bookkeeping asks for.
		e.Notify = false
		c.evs = append(c.evs, e)
		if c.rec != nil {
			// Through a trace.Recorder, which gives the workloads of a
			// scenario trace ids of their own.
			k := e.Kind
			c.rec.Record(o.Workload, o.Source, &e, o.Err != nil && (k == dma.Alloc || k == dma.Map || k == dma.MapSG))
		}
	}
}

// Decoded runs cell's workload on its platform and allocator for n events
// and returns the events served, pre-decoded: the stream a trace of the
// run holds, which replays against the same machine with the same
// modeled results. With rec, it writes them as that trace too.
func Decoded(b matrix.Builder, c matrix.Cell, n int64, rec *trace.Recorder) ([]dma.Event, error) {
	srcs, err := b.Sources(c)
	if err != nil {
		return nil, err
	}
	p, a, err := b.Machine(c)
	if err != nil {
		return nil, err
	}
	cp := captured{evs: make([]dma.Event, 0, n), rec: rec}
	if _, err := engine.New(p, a, &cp, srcs...).Run(n); err != nil {
		return nil, err
	}
	return cp.evs, nil
}

// nopRecorder keeps no metrics: plain events go to a Tally no one reads
// (so the engine takes the path it takes with metrics), the rest nowhere.
type nopRecorder struct{ t engine.Tally }

func (*nopRecorder) Record(*engine.Outcome)             {}
func (r *nopRecorder) TallyOn(*dma.Meter) *engine.Tally { return &r.t }

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

// Options says what to measure with.
type Options struct {
	// Workload and Platform: the cell the stream comes from, served
	// through dmapool.
	Workload, Platform string
	// Events per measurement, and Rounds: every measurement runs once
	// per round, in turn; the median round is reported.
	Events int64
	Rounds int
	// Allocators are the models replayed over the captured stream.
	Allocators []string
}

// Row is one measurement's result.
type Row struct {
	Name string
	// Median, Min and Max events/s over the rounds.
	Median, Min, Max float64
	// OfLimit is Median over the bare loop's median; OfNull, for an
	// allocator model, the median over rounds of its rate over the null
	// allocator's on the same kind of stream in the same round (0 for
	// the others).
	OfLimit, OfNull float64
	// OfMemory, for a file replay, is the median over rounds of its rate
	// over the replay of the same stream from memory through the same
	// model (0 for the others).
	OfMemory float64
	// OfParts, for every model replayed at once from one decoding of the
	// file, is the median over rounds of its time over the time of one
	// parse of the file and each model's replay from memory, added up.
	OfParts float64
	Note    string
	Refused bool
}

// Report is a whole bench run.
type Report struct {
	Options
	Rows []Row
	// Captured is the length of the captured stream; PeakRSS the peak
	// resident set of the generated replays, as /proc says.
	Captured int
	PeakRSS  string
}

// measure is one measurement: its runs, one per round.
type measure struct {
	name    string
	run     func() (events int64, d time.Duration, err error)
	bytes   int64 // per round, for a MB/s note
	rates   []float64
	refused bool
	model   bool // an allocator model: compared with the null allocator
	// vs, for a file replay, is the replay of the same stream from
	// memory, compared round by round.
	vs *measure
	// parse and parts, for every model replayed at once from one
	// decoding, are what it is compared with, round by round: one parse
	// of the file and each model's replay from memory, their times for
	// as many events added up.
	parse *measure
	parts []*measure
}

// Run measures with opt on the machines b builds.
func Run(b matrix.Builder, opt Options) (*Report, error) {
	allocators := opt.Allocators
	var err error
	cell := matrix.Cell{Scenario: opt.Workload, Allocator: "dmapool", Platform: opt.Platform, Seed: 1}
	// A measurement runs once per round; rounds go through every
	// measurement in turn, so that a machine whose speed drifts
	// slows them all alike, and the median round is reported.
	var ms []*measure
	add := func(m *measure) *measure { ms = append(ms, m); return m }
	nop := func() engine.Recorder { return &nopRecorder{} }
	full := func() engine.Recorder { return &metrics.Recorder{} }
	// machine builds the platform and allocator a measurement
	// replays on (the null allocator when alloc is "").
	machine := func(alloc string) (*dma.Platform, dma.Allocator, error) {
		if alloc == "" {
			n, p := engine.NewNull()
			return p, n, nil
		}
		c := cell
		c.Allocator = alloc
		return b.Machine(c)
	}
	// live measures the workload generated as it is served.
	live := func(name string, rec func() engine.Recorder, alloc string) *measure {
		m := &measure{name: name, model: alloc != ""}
		m.run = func() (int64, time.Duration, error) {
			srcs, err := b.Sources(cell)
			if err != nil {
				return 0, 0, err
			}
			p, a, err := machine(alloc)
			if err != nil {
				m.refused = true
				return 0, 0, nil
			}
			e := engine.New(p, a, rec(), srcs...)
			start := time.Now()
			r, err := e.Run(opt.Events)
			return r.Events, time.Since(start), err
		}
		return add(m)
	}
	// The stream dmapool served, captured once, pre-decoded (at
	// most 500,000 events): the bare loop, the replays from
	// memory and the parsing below all go over it. Peak RSS is
	// read before it takes its memory.
	var buf bytes.Buffer
	tr := trace.NewRecorder(trace.NewWriter(&buf))
	var evs []dma.Event
	// decodedReplay measures the captured stream replayed from
	// memory, pass after pass, each on a machine of its own built
	// before the clock starts.
	decodedReplay := func(name string, alloc string) *measure {
		m := &measure{name: name, model: alloc != ""}
		m.run = func() (int64, time.Duration, error) {
			var n int64
			var d time.Duration
			for n < opt.Events {
				p, a, err := machine(alloc)
				if err != nil {
					m.refused = true
					return 0, 0, nil
				}
				e := engine.New(p, a, &metrics.Recorder{}, &dma.List{Events: evs})
				start := time.Now()
				r, err := e.Run(min(opt.Events-n, int64(len(evs))))
				d += time.Since(start)
				if err != nil {
					return 0, 0, err
				}
				if r.Events == 0 {
					return 0, 0, fmt.Errorf("bench: the captured stream replayed no events")
				}
				n += r.Events
			}
			return n, d, nil
		}
		return m
	}
	limit := &measure{name: "bare loop over pre-decoded events (the limit)"}
	ms = append(ms, limit)
	nullDecoded := add(decodedReplay("pre-decoded stream: null allocator, full metrics", ""))
	var dmapoolDecoded *measure
	models := map[string]*measure{}
	for _, name := range allocators {
		m := add(decodedReplay("pre-decoded stream: "+name+" on "+opt.Platform+", full metrics", name))
		models[name] = m
		if name == "dmapool" {
			dmapoolDecoded = m
		}
	}
	genOnly := live("generated: null allocator, no metrics (counts thrown away)", nop, "")
	nullLive := live("generated: null allocator, full metrics", full, "")
	dmapoolLive := live("generated: dmapool on "+opt.Platform+", full metrics", full, "dmapool")
	// The generated measurements run first, alone, for the peak
	// RSS of a replay.
	for _, m := range []*measure{genOnly, nullLive, dmapoolLive} {
		n, d, err := m.run()
		if err != nil {
			return nil, err
		}
		m.rates = append(m.rates, rate(n, d))
	}
	replayRSS := peakRSS()
	evs, err = Decoded(b, cell, min(opt.Events, 500_000), tr)
	if err != nil {
		return nil, err
	}
	loops := max(opt.Events/int64(len(evs)), 1)
	limit.run = func() (int64, time.Duration, error) {
		start := time.Now()
		for k := int64(0); k < loops; k++ {
			bareLoop(evs)
		}
		return int64(len(evs)) * loops, time.Since(start), nil
	}
	// Parsing: the captured stream as a trace, read back.
	if err := tr.W.Flush(); err != nil {
		return nil, err
	}
	// The same stream in the binary encoding, and both as files, for the
	// end-to-end replay: open (threads from the trace), parse, engine,
	// dmapool, metrics.
	// Both files carry their threads, as record writes them.
	threads, err := trace.ScanThreads(bytes.NewReader(buf.Bytes()))
	if err != nil {
		return nil, err
	}
	var text, bin bytes.Buffer
	for _, tw := range []*trace.Writer{trace.NewWriter(&text), trace.NewBinaryWriter(&bin)} {
		if _, err := trace.Convert("bench", bytes.NewReader(buf.Bytes()), tw, threads); err != nil {
			return nil, err
		}
	}
	var binParse *measure // parsing the binary file
	var binPath string
	dir, err := os.MkdirTemp("", "dmabench-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	for _, enc := range []struct {
		name, file string
		data       []byte
	}{{"text", "bench.trace", text.Bytes()}, {"binary", "bench.trace.bin", bin.Bytes()}} {
		data := enc.data
		parse := add(&measure{name: "trace parsing, " + enc.name, bytes: int64(len(data)), run: func() (int64, time.Duration, error) {
			start := time.Now()
			r, err := trace.NewReader("bench", bytes.NewReader(data))
			if err != nil {
				return 0, 0, err
			}
			var e dma.Event
			n := int64(0)
			for r.Next(&e) == nil {
				n++
			}
			return n, time.Since(start), nil
		}})
		path := filepath.Join(dir, enc.file)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return nil, err
		}
		if enc.name == "binary" {
			binParse, binPath = parse, path
		}
		add(&measure{name: "file replay, " + enc.name + ": dmapool on " + opt.Platform + ", full metrics", vs: dmapoolDecoded, run: func() (int64, time.Duration, error) {
			p, a, err := machine("dmapool")
			if err != nil {
				return 0, 0, err
			}
			var n int64
			var d time.Duration
			for n < opt.Events {
				start := time.Now()
				src, err := (&trace.Opener{}).Open(path)
				if err != nil {
					return 0, 0, err
				}
				res, err := engine.New(p, a, &metrics.Recorder{}, src).Run(opt.Events - n)
				d += time.Since(start)
				if err != nil || res.Events == 0 {
					return 0, 0, fmt.Errorf("bench: file replay: %d events, %v", res.Events, err)
				}
				n += res.Events
				if p, a, err = machine("dmapool"); err != nil {
					return 0, 0, err
				}
			}
			return n, d, nil
		}})
	}
	// Every model at once over the binary file, as a run's cells that
	// replay one trace do: one decoding, read in place by each model's
	// replay in turn. Against one parse of the file plus each model's
	// replay from memory (their times added up, round by round).
	every := &measure{name: "file replay, binary: every model, one decoding", parse: binParse}
	for _, name := range allocators {
		every.parts = append(every.parts, models[name])
	}
	every.run = func() (int64, time.Duration, error) {
		var plats []*dma.Platform
		var allocs []dma.Allocator
		for _, name := range allocators {
			p, a, err := machine(name)
			if err != nil {
				continue // refused, as its replay from memory is
			}
			plats, allocs = append(plats, p), append(allocs, a)
		}
		start := time.Now()
		sh, err := (&trace.Opener{}).OpenShared(binPath)
		if err != nil {
			return 0, 0, err
		}
		srcs := make([]dma.Source, len(plats))
		engines := make([]*engine.Engine, len(plats))
		left := make([]int64, len(plats))
		for i := range plats {
			srcs[i] = sh.Source()
			engines[i] = engine.New(plats[i], allocs[i], &metrics.Recorder{}, srcs[i])
			left[i] = int64(len(evs))
		}
		var n int64
		for busy := true; busy; {
			busy = false
			for i, e := range engines {
				if left[i] == 0 {
					continue
				}
				k := min(left[i], matrix.Batch*matrix.Turn)
				res, err := e.Run(k)
				if err != nil {
					return 0, 0, err
				}
				n += res.Events
				if left[i] -= res.Events; res.Events < k {
					left[i] = 0
				}
				busy = busy || left[i] > 0
			}
		}
		matrix.CloseSources(srcs)
		return n, time.Since(start), nil
	}
	add(every)
	runRound := func(ms []*measure) error {
		for _, m := range ms {
			n, d, err := m.run()
			if err != nil {
				return err
			}
			if !m.refused {
				m.rates = append(m.rates, rate(n, d))
			}
		}
		return nil
	}
	// The first round for what has not run yet; then every
	// measurement in turn.
	var rest []*measure
	for _, m := range ms {
		if len(m.rates) == 0 {
			rest = append(rest, m)
		}
	}
	if err := runRound(rest); err != nil {
		return nil, err
	}
	for r := 1; r < opt.Rounds; r++ {
		if err := runRound(ms); err != nil {
			return nil, err
		}
	}
	rep := &Report{Options: opt, Captured: len(evs), PeakRSS: replayRSS}
	median := func(rs []float64) float64 {
		v, _ := stats.Median(rs)
		return v
	}
	lim := median(limit.rates)
	for _, m := range ms {
		row := Row{Name: m.name, Refused: m.refused}
		if !m.refused {
			row.Median = median(m.rates)
			row.Min, _ = stats.Min(m.rates)
			row.Max, _ = stats.Max(m.rates)
			row.OfLimit = row.Median / lim
			if m.model {
				// Against the null allocator on the same kind of stream,
				// round by round.
				null := nullDecoded
				if m == dmapoolLive {
					null = nullLive
				}
				row.OfNull = median(ratios(m, null))
			}
			if m.bytes > 0 {
				row.Note = fmt.Sprintf("%.0f MB/s", row.Median*float64(m.bytes)/float64(len(evs))/1e6)
			}
			if m.parse != nil {
				// Seconds an event of the parse and of each model's
				// replay from memory, added up, against the measurement's
				// seconds for as many events of each model.
				var rs []float64
				for i := range m.rates {
					sum, models := 1/m.parse.rates[i], 0
					for _, p := range m.parts {
						if i < len(p.rates) { // not refused
							sum += 1 / p.rates[i]
							models++
						}
					}
					rs = append(rs, float64(models)/m.rates[i]/sum)
				}
				row.OfParts = median(rs)
				row.Note = fmt.Sprintf("%.0f%% of 1 parse + each from memory", 100*row.OfParts)
			}
			if m.vs != nil && len(m.vs.rates) > 0 {
				row.OfMemory = median(ratios(m, m.vs))
				row.Note = fmt.Sprintf("%.0f%% of in-memory", 100*row.OfMemory)
			}
		}
		rep.Rows = append(rep.Rows, row)
	}
	return rep, nil
}

// ratios returns m's rate over base's, round by round.
func ratios(m, base *measure) []float64 {
	var out []float64
	for i := range min(len(m.rates), len(base.rates)) {
		out = append(out, m.rates[i]/base.rates[i])
	}
	return out
}

// Write prints the report as a table and a line that says what was
// measured.
func (r *Report) Write(w io.Writer) error {
	t := tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off), tablewriter.WithRowAlignment(tw.AlignRight))
	t.Header("measurement", "events/s", "of the limit", "of null", "spread", "note")
	for _, m := range r.Rows {
		if m.Refused {
			t.Append(m.Name, "", "", "", "", "refused")
			continue
		}
		ofNull := ""
		if m.OfNull > 0 {
			ofNull = fmt.Sprintf("%.0f%%", 100*m.OfNull)
		}
		t.Append(m.Name, fmt.Sprintf("%.1fM", m.Median/1e6), fmt.Sprintf("%.1f%%", 100*m.OfLimit), ofNull,
			fmt.Sprintf("%.1f–%.1fM", m.Min/1e6, m.Max/1e6), m.Note)
	}
	if err := t.Render(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "workload %s, platform %s, %d events per measurement (the captured stream: %d, replayed pass after pass, each pass on a new machine), one core; median of %d interleaved rounds (spread: slowest–fastest; of null: median of per-round ratios); peak RSS of the generated replays %s\n", r.Workload, r.Platform, r.Events, r.Captured, r.Rounds, r.PeakRSS)
	return err
}
