package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// progress reports cells done: a bar with an ETA on a terminal, plain
// lines every few seconds otherwise, or nothing.
type progress struct {
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

func newProgress(mode string, w io.Writer, total int) (*progress, error) {
	pr := &progress{total: total, start: time.Now(), w: w, every: 2 * time.Second}
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
		return nil, usagef("--progress %q: valid values are auto, bar, plain, none", mode)
	}
	pr.p = mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithAutoRefresh())
	pr.bar = pr.p.AddBar(int64(total),
		mpb.PrependDecorators(decor.Name("cells "), decor.CountersNoUnit("%d/%d")),
		mpb.AppendDecorators(decor.Percentage(), decor.Name(" ETA "), decor.AverageETA(decor.ET_STYLE_GO)))
	return pr, nil
}

// cell records one finished cell; safe from several workers.
func (pr *progress) cell() {
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

func (pr *progress) wait() {
	if pr != nil && pr.p != nil {
		pr.p.Wait()
	}
}
