//go:build unix

package journal

import (
	"os"
	"syscall"
)

// syscallNoFollow keeps the journal and the lock from being opened
// through a symbolic link planted in their place.
const syscallNoFollow = syscall.O_NOFOLLOW

// lockFile takes an exclusive lock on f without waiting; the kernel drops
// it when the process ends, however it ends.
func lockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
