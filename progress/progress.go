// Package progress reports a run's progress on stderr: a bar with an ETA
// on a terminal (mpb), plain lines every few seconds otherwise, or
// nothing.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// Meter reports a run's progress by the events replayed inside its cells,
// so a long cell shows movement and the ETA comes from the work done. A
// nil *Meter reports nothing; its methods are safe from several workers.
type Meter struct {
	mu            sync.Mutex
	cells, done   int
	perCell       int64
	total, events int64
	start, last   time.Time
	w             io.Writer
	plain         bool
	p             *mpb.Progress
	bar           *mpb.Bar
	every         time.Duration
	// task and unit: a single task's name and what it counts (NewTask).
	task, unit string
}

// NewTask returns a meter of one task (a record, an import) of total
// units (events, bytes), on New's rules; Events reports the units done.
func NewTask(mode string, w io.Writer, task string, total int64, unit string) (*Meter, error) {
	pr, err := New(mode, w, 1, total)
	if pr != nil {
		pr.task, pr.unit = task, unit
	}
	return pr, err
}

// Modes are the valid modes, for New.
var Modes = []string{"auto", "bar", "plain", "none"}

// New returns a meter of cells cells of up to perCell events each, writing
// to w in mode: auto (a bar on a terminal, plain lines otherwise), bar,
// plain, or none (nil).
func New(mode string, w io.Writer, cells int, perCell int64) (*Meter, error) {
	pr := &Meter{cells: cells, perCell: perCell, total: int64(cells) * perCell, start: time.Now(), w: w, every: 2 * time.Second}
	pr.last = pr.start
	switch mode {
	case "none":
		return nil, nil
	case "auto":
		f, ok := w.(*os.File)
		if !ok || !isatty.IsTerminal(f.Fd()) {
			pr.plain = true
			return pr, nil
		}
		if cols, _, err := term.GetSize(int(f.Fd())); err != nil || cols < 20 {
			pr.plain = true // a terminal without a width: no room for a bar
			return pr, nil
		}
	case "plain":
		pr.plain = true
		return pr, nil
	case "bar":
	default:
		return nil, fmt.Errorf("--progress %q: valid values are %s", mode, strings.Join(Modes, ", "))
	}
	pr.p = mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithAutoRefresh())
	// One unit more per cell, added when it finishes: the bar completes
	// with the last cell, not with the last event.
	pr.bar = pr.p.AddBar(pr.total+int64(cells),
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
			pr.mu.Lock()
			defer pr.mu.Unlock()
			if pr.task != "" {
				return pr.task
			}
			return fmt.Sprintf("cells %d/%d", pr.done, pr.cells)
		})),
		mpb.AppendDecorators(decor.Percentage(), decor.Name(" ETA "), decor.AverageETA(decor.ET_STYLE_GO)))
	return pr, nil
}

// Events records n events replayed in a running cell.
func (pr *Meter) Events(n int64) {
	if pr == nil {
		return
	}
	if pr.bar != nil {
		pr.bar.IncrInt64(n)
	}
	pr.mu.Lock()
	pr.events += n
	pr.mu.Unlock()
	pr.line(false)
}

// Cell records a finished cell that replayed served events: the events it
// did not need (a trace that ended, a crash) count as done.
func (pr *Meter) Cell(served int64) {
	if pr == nil {
		return
	}
	rest := max(pr.perCell-served, 0)
	pr.mu.Lock()
	pr.done++
	pr.events += rest
	last := pr.done == pr.cells
	pr.mu.Unlock()
	if pr.bar != nil {
		pr.bar.IncrInt64(rest + 1)
	}
	pr.line(last)
}

// line prints a plain progress line every few seconds, and at the end.
func (pr *Meter) line(last bool) {
	if !pr.plain {
		return
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	now := time.Now()
	if now.Sub(pr.last) < pr.every && !last || pr.events == 0 {
		return
	}
	pr.last = now
	el := now.Sub(pr.start)
	share := float64(pr.events) / float64(max(pr.total, 1))
	eta := time.Duration(float64(el) / share * (1 - share))
	if pr.task != "" {
		fmt.Fprintf(pr.w, "dmabench: %s: %.0f%% of %d %s, %.3g M %s/s, %s elapsed, about %s left\n", pr.task, 100*share, pr.total, pr.unit,
			float64(pr.events)/max(el.Seconds(), 1e-9)/1e6, pr.unit, el.Round(100*time.Millisecond), eta.Round(time.Second))
		return
	}
	fmt.Fprintf(pr.w, "dmabench: %d/%d cells, %.0f%% of events, %s elapsed, about %s left\n",
		pr.done, pr.cells, 100*share, el.Round(100*time.Millisecond), eta.Round(time.Second))
}

// Wait lets the bar finish drawing.
func (pr *Meter) Wait() {
	if pr != nil && pr.p != nil {
		pr.p.Wait()
	}
}

// Reader counts the bytes read through r as done (a task in bytes: the
// input's size, compressed or not, since r reads the file itself).
func Reader(r io.Reader, pr *Meter) io.Reader {
	if pr == nil {
		return r
	}
	return &counting{r, pr}
}

type counting struct {
	r  io.Reader
	pr *Meter
}

func (c *counting) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.pr.Events(int64(n))
	return n, err
}
