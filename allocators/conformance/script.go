package conformance

import (
	"io"

	"github.com/dmabench/dmabench/dma"
)

// Script is a source that replays a fixed list of events, for tests that
// drive an allocator through the engine (sleeping callers, wakeups).
type Script struct {
	Events []dma.Event
	i      int
}

var _ dma.Source = (*Script)(nil)

// Next implements dma.Source.
func (s *Script) Next(e *dma.Event) error {
	if s.i == len(s.Events) {
		return io.EOF
	}
	*e = s.Events[s.i]
	s.i++
	return nil
}

// Group is a workload of several scripted threads sharing one id space.
type Group []dma.Source

var _ dma.Threads = Group(nil)

// Threads implements dma.Threads.
func (g Group) Threads() []dma.Source { return g }

// Next is never called: the engine runs the threads.
func (g Group) Next(*dma.Event) error { return io.EOF }
