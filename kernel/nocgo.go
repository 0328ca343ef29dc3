//go:build !cgo

package kernel

import "fmt"

func load(string, *Tree) (Backend, error) {
	return nil, fmt.Errorf("%w: this dmabench was built without cgo (CGO_ENABLED=0), which loading the library needs", ErrUnavailable)
}
