// This file holds sleeping and waking: a request the allocator asks to
// wait is parked in modeled time, woken by a free on its pool or by its
// timeout, and reported as a stall when it sleeps past StallAfter.

package engine

import "github.com/dmabench/dmabench/dma"

// wake lets requests parked on a pool retry now.
func (e *Engine) wake(pool dma.ID, now dma.Time) {
	for i := range e.srcs {
		s := &e.srcs[i]
		if s.parked && s.wait.On == pool && s.wakeAt > now {
			s.wakeAt = now
			e.rescan = true
		}
	}
}

// park puts a request to sleep as the allocator asked, or reports a stall
// when it has slept too long. It returns true when an outcome is recorded.
func (e *Engine) park(s *source, now dma.Time) bool {
	if !s.parked {
		s.parked = true
		s.since = now
	} else {
		e.Retries++
	}
	// The allocator set the request's Wait, or the page allocator the
	// meter's Sleep (a loop in __alloc_pages); both are cleared here for
	// the next request, which request does not clear.
	m := e.plat.Meter
	w := e.req.Wait
	if w.Kind == 0 {
		w = m.Sleep
	}
	s.wait, e.req.Wait, m.Sleep = w, dma.Wait{}, dma.Wait{}
	s.wakeAt = now + max(s.wait.Timeout, 1)
	if s.wakeAt-s.since <= e.StallAfter {
		return false
	}
	s.parked = false
	e.out.Err = ErrStalled
	e.out.Wait = now - s.since
	e.out.WaitKind = s.wait.Kind
	return true
}
