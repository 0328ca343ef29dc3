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

// Meter reports cells done. A nil *Meter reports nothing; its methods
// are safe from several workers.
type Meter struct {
	mu    sync.Mutex
	total int
	done  int
	start time.Time
	last  time.Time
	w     io.Writer
	plain bool
	p     *mpb.Progress
	bar   *mpb.Bar
	every time.Duration
}

// Modes are the valid modes, for New.
var Modes = []string{"auto", "bar", "plain", "none"}

// New returns a meter of total cells writing to w in mode: auto (a bar on
// a terminal, plain lines otherwise), bar, plain, or none (nil).
func New(mode string, w io.Writer, total int) (*Meter, error) {
	pr := &Meter{total: total, start: time.Now(), w: w, every: 2 * time.Second}
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
	pr.bar = pr.p.AddBar(int64(total),
		mpb.PrependDecorators(decor.Name("cells "), decor.CountersNoUnit("%d/%d")),
		mpb.AppendDecorators(decor.Percentage(), decor.Name(" ETA "), decor.AverageETA(decor.ET_STYLE_GO)))
	return pr, nil
}

// Cell records one finished cell.
func (pr *Meter) Cell() {
	if pr == nil {
		return
	}
	if pr.bar != nil {
		pr.bar.Increment()
		return
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.done++
	now := time.Now()
	if now.Sub(pr.last) < pr.every && pr.done < pr.total {
		return
	}
	pr.last = now
	el := now.Sub(pr.start)
	eta := time.Duration(float64(el) / float64(pr.done) * float64(pr.total-pr.done))
	fmt.Fprintf(pr.w, "dmabench: %d/%d cells (%.0f%%), %s elapsed, about %s left\n",
		pr.done, pr.total, 100*float64(pr.done)/float64(pr.total), el.Round(100*time.Millisecond), eta.Round(time.Second))
}

// Wait lets the bar finish drawing.
func (pr *Meter) Wait() {
	if pr != nil && pr.p != nil {
		pr.p.Wait()
	}
}
