//go:build cgo

package kernel

/*
#include <stdint.h>
#include <stddef.h>
*/
import "C"

import "runtime/cgo"

// The kernel code's dma_alloc_coherent and dma_free_coherent, through the
// glue: ctx is the device's PageSource.

//export dmabenchKernelAlloc
func dmabenchKernelAlloc(ctx C.uintptr_t, size C.size_t, gfp C.uint, cpu, dma *C.uint64_t) C.int {
	c, d, ok := cgo.Handle(ctx).Value().(PageSource).AllocPages(int64(size), uint32(gfp))
	if !ok {
		return 1
	}
	*cpu, *dma = C.uint64_t(c), C.uint64_t(d)
	return 0
}

//export dmabenchKernelFree
func dmabenchKernelFree(ctx C.uintptr_t, size C.size_t, cpu, dma C.uint64_t) {
	cgo.Handle(ctx).Value().(PageSource).FreePages(int64(size), uint64(cpu), uint64(dma))
}
