package conformance

import (
	"io"

	"github.com/dmabench/dmabench/dma"
)

// Group is a workload of several scripted threads sharing one id space.
type Group []dma.Source

var _ dma.Threads = Group(nil)

// Threads implements dma.Threads.
func (g Group) Threads() []dma.Source { return g }

// Next is never called: the engine runs the threads.
func (g Group) Next(*dma.Event) error { return io.EOF }
