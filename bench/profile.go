package bench

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// Profile writes a CPU profile of the process to path (for go tool
// pprof: where the models spend host time) until the returned stop is
// called. An error creating the file is an *os.PathError.
func Profile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		return nil
	}, nil
}
