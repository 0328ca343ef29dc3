//go:build linux

package matrix

import "golang.org/x/sys/unix"

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
