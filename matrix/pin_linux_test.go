//go:build linux

package matrix

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPinBindsOneCPUAndGivesThemBack: a worker's thread runs its cells on
// one CPU, the w-th from the top of those the process may use, the same
// in every run; afterwards the thread has all of them again.
func TestPinBindsOneCPUAndGivesThemBack(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil || all.Count() < 2 {
		t.Skipf("affinity %v (%d CPUs): nothing to pin to", err, all.Count())
	}
	var top []int
	for c := 1023; c >= 0 && len(top) < 2; c-- {
		if all.IsSet(c) {
			top = append(top, c)
		}
	}
	for w, want := range top {
		unpin := pin(w)
		var now unix.CPUSet
		if err := unix.SchedGetaffinity(0, &now); err != nil || now.Count() != 1 || !now.IsSet(want) {
			t.Errorf("worker %d: affinity %v after pin, want CPU %d alone", w, now, want)
		}
		unpin()
		if err := unix.SchedGetaffinity(0, &now); err != nil || now != all {
			t.Errorf("worker %d: affinity %v after unpin, want %v", w, now, all)
		}
	}
}
