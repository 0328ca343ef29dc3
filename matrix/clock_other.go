//go:build !linux

package matrix

import "time"

var start = time.Now()

// threadCPU falls back to wall time where there is no per-thread CPU
// clock to be had without cgo.
func threadCPU() int64 { return int64(time.Since(start)) }

// pin does nothing where threads cannot be bound to a CPU without cgo.
func pin(int) (unpin func()) { return func() {} }
