//go:build linux

package matrix

import (
	"slices"

	"golang.org/x/sys/unix"
)

// threadCPU returns the CPU time the calling OS thread has used, in ns:
// what a cell's host timings are measured in, so that time the thread
// spent descheduled (another process, the other cell on a shared core)
// does not count. The caller locks its goroutine to the thread.
func threadCPU() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}

// pin binds the calling OS thread, which the caller has locked its
// goroutine to, to one CPU while it runs a cell, and returns what gives
// the thread back its CPUs. Worker w takes the w-th CPU from the top of
// the ones the process may use, the same one in every run: a thread the
// kernel moves between CPUs, or a run that lands on another CPU than the
// last, reads another machine (on the project's 2-core VM, two CPUs gave
// one cell 0.33 and 0.40 as its host_harness_ratio, and five runs held
// 221 of 416 cells' host_harness_ratio within 10% unpinned against 309
// and 331 with the process pinned to either CPU; docs/design.md has the
// interleaved sets). Where affinity cannot be set, the thread stays as it is.
// It suits measurements in thread CPU time only: bench, which reads wall
// time, spread 63% between rounds pinned against 35% unpinned (time
// another task takes on the pinned CPU counts, and the thread cannot move
// to an idle one).
func pin(w int) (unpin func()) {
	var all unix.CPUSet
	if unix.SchedGetaffinity(0, &all) != nil {
		return func() {}
	}
	var cpus []int
	for c := range 1024 {
		if all.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	if len(cpus) < 2 {
		return func() {}
	}
	slices.Reverse(cpus)
	var one unix.CPUSet
	one.Set(cpus[w%len(cpus)])
	if unix.SchedSetaffinity(0, &one) != nil {
		return func() {}
	}
	return func() { unix.SchedSetaffinity(0, &all) }
}
