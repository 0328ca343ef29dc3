//go:build cgo

package kernel

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>

struct kd_callbacks {
	int (*alloc)(uintptr_t, size_t, unsigned int, uint64_t *, uint64_t *);
	void (*free)(uintptr_t, size_t, uint64_t, uint64_t);
};
struct kd_op { int32_t kind, pool, slot; uint32_t gfp; };

extern int dmabenchKernelAlloc(uintptr_t, size_t, unsigned int, uint64_t *, uint64_t *);
extern void dmabenchKernelFree(uintptr_t, size_t, uint64_t, uint64_t);

static void call_set(void *f) {
	struct kd_callbacks cb = { dmabenchKernelAlloc, dmabenchKernelFree };
	((void (*)(const struct kd_callbacks *))f)(&cb);
}
static uintptr_t call_device(void *f, uintptr_t ctx) { return (uintptr_t)((void *(*)(uintptr_t))f)(ctx); }
static void call_p(void *f, uintptr_t p) { ((void (*)(void *))f)((void *)p); }
static uintptr_t call_create(void *f, uintptr_t dev, const char *name, size_t size, size_t align, size_t boundary) {
	return (uintptr_t)((void *(*)(void *, const char *, size_t, size_t, size_t))f)((void *)dev, name, size, align, boundary);
}
static uintptr_t call_alloc(void *f, uintptr_t pool, unsigned int gfp, uint64_t *cpu, uint64_t *dma) {
	return (uintptr_t)((void *(*)(void *, unsigned int, uint64_t *, uint64_t *))f)((void *)pool, gfp, cpu, dma);
}
static void call_free(void *f, uintptr_t pool, uintptr_t v, uint64_t dma) {
	((void (*)(void *, void *, uint64_t))f)((void *)pool, (void *)v, dma);
}
static uintptr_t call_mcreate(void *f, int min, uintptr_t inner) {
	return (uintptr_t)((void *(*)(int, void *))f)(min, (void *)inner);
}
static uintptr_t call_malloc(void *f, uintptr_t m, unsigned int gfp, uint64_t *cpu, uint64_t *dma, int *did, int *curr) {
	return (uintptr_t)((void *(*)(void *, unsigned int, uint64_t *, uint64_t *, int *, int *))f)((void *)m, gfp, cpu, dma, did, curr);
}
static int call_mfree(void *f, uintptr_t m, uintptr_t v) { return ((int (*)(void *, void *))f)((void *)m, (void *)v); }
static int call_int(void *f, uintptr_t m) { return ((int (*)(void *))f)((void *)m); }
static uint64_t call_elem(void *f, uintptr_t m, int i) { return ((uint64_t (*)(void *, int))f)((void *)m, i); }
static unsigned long call_errors(void *f, uintptr_t d) { return ((unsigned long (*)(void *))f)((void *)d); }
static void call_counts(void *f, uintptr_t p, unsigned long *a, unsigned long *b) {
	((void (*)(void *, unsigned long *, unsigned long *))f)((void *)p, a, b);
}
static uint64_t call_replay(void *f, const uint64_t *specs, int npools, const struct kd_op *ops, long nops, int nslots) {
	return ((uint64_t (*)(const uint64_t *, int, const struct kd_op *, long, int))f)(specs, npools, ops, nops, nslots);
}
*/
import "C"

import (
	"fmt"
	"runtime/cgo"
	"sync"
	"unsafe"
)

// lib is a loaded library. Its glue keeps global state, so calls take mu.
type lib struct {
	mu      sync.Mutex
	tree    *Tree
	mempool bool
	fn      map[string]unsafe.Pointer
	devs    map[Device]cgo.Handle
}

var (
	loadedMu sync.Mutex
	loaded   = map[string]*lib{} // by library path: dlopen gives one copy per process
)

func load(path string, t *Tree) (Backend, error) {
	loadedMu.Lock()
	defer loadedMu.Unlock()
	if l, ok := loaded[path]; ok {
		return l, nil
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	h := C.dlopen(cpath, C.RTLD_NOW|C.RTLD_LOCAL)
	if h == nil {
		return nil, fmt.Errorf("kernel back end: loading %s: %s", path, C.GoString(C.dlerror()))
	}
	l := &lib{tree: t, fn: map[string]unsafe.Pointer{}, devs: map[Device]cgo.Handle{}}
	names := []string{"kd_set_callbacks", "kd_device", "kd_device_free", "kd_pool_create", "kd_pool_alloc",
		"kd_pool_free", "kd_pool_destroy", "kd_errors", "kd_replay"}
	if t.Mempool != nil {
		l.mempool = true
		names = append(names, "kd_mempool_create", "kd_mempool_alloc", "kd_mempool_free", "kd_mempool_curr",
			"kd_mempool_destroy", "kd_element_calls", "kd_mempool_element")
	}
	for _, n := range names {
		cn := C.CString(n)
		f := C.dlsym(h, cn)
		C.free(unsafe.Pointer(cn))
		if f == nil {
			return nil, fmt.Errorf("kernel back end: %s has no %s", path, n)
		}
		l.fn[n] = f
	}
	C.call_set(l.fn["kd_set_callbacks"])
	loaded[path] = l
	return l, nil
}

func (l *lib) Version() string    { return l.tree.Version }
func (l *lib) Features() Features { return l.tree.Features }
func (l *lib) HasMempool() bool   { return l.mempool }

func (l *lib) NewDevice(src PageSource) Device {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := cgo.NewHandle(src)
	d := Device(C.call_device(l.fn["kd_device"], C.uintptr_t(h)))
	l.devs[d] = h
	return d
}

func (l *lib) Release(d Device) {
	l.mu.Lock()
	defer l.mu.Unlock()
	C.call_p(l.fn["kd_device_free"], C.uintptr_t(d))
	if h, ok := l.devs[d]; ok {
		h.Delete()
		delete(l.devs, d)
	}
}

func (l *lib) PoolCreate(d Device, name string, size, align, boundary int64) Pool {
	l.mu.Lock()
	defer l.mu.Unlock()
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	return Pool(C.call_create(l.fn["kd_pool_create"], C.uintptr_t(d), cn, C.size_t(size), C.size_t(align), C.size_t(boundary)))
}

func (l *lib) PoolAlloc(p Pool, gfp uint32) (uintptr, uint64, uint64) {
	var cpu, dma C.uint64_t
	l.mu.Lock()
	v := C.call_alloc(l.fn["kd_pool_alloc"], C.uintptr_t(p), C.uint(gfp), &cpu, &dma)
	l.mu.Unlock()
	return uintptr(v), uint64(cpu), uint64(dma)
}

func (l *lib) PoolFree(p Pool, vaddr uintptr, dma uint64) {
	l.mu.Lock()
	C.call_free(l.fn["kd_pool_free"], C.uintptr_t(p), C.uintptr_t(vaddr), C.uint64_t(dma))
	l.mu.Unlock()
}

func (l *lib) PoolDestroy(p Pool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	C.call_p(l.fn["kd_pool_destroy"], C.uintptr_t(p))
}

func (l *lib) MempoolCreate(minNr int, inner Pool) Mempool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Mempool(C.call_mcreate(l.fn["kd_mempool_create"], C.int(minNr), C.uintptr_t(inner)))
}

// The glue's flags of what a mempool call did (KD_SLEPT, KD_RESERVE,
// KD_WOKEN).
const (
	didSlept   = 1
	didReserve = 2
	didWoken   = 4
)

func (l *lib) MempoolAlloc(m Mempool, gfp uint32) (uintptr, uint64, uint64, MempoolDid) {
	var cpu, dma C.uint64_t
	var did, curr C.int
	l.mu.Lock()
	v := C.call_malloc(l.fn["kd_mempool_alloc"], C.uintptr_t(m), C.uint(gfp), &cpu, &dma, &did, &curr)
	l.mu.Unlock()
	return uintptr(v), uint64(cpu), uint64(dma), MempoolDid{Slept: did&didSlept != 0, Reserve: did&didReserve != 0, Curr: int(curr)}
}

func (l *lib) MempoolFree(m Mempool, vaddr uintptr) (bool, bool) {
	l.mu.Lock()
	did := C.call_mfree(l.fn["kd_mempool_free"], C.uintptr_t(m), C.uintptr_t(vaddr))
	l.mu.Unlock()
	return did&didReserve != 0, did&didWoken != 0
}

func (l *lib) MempoolCurr(m Mempool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(C.call_int(l.fn["kd_mempool_curr"], C.uintptr_t(m)))
}

func (l *lib) MempoolElement(m Mempool, i int) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return uint64(C.call_elem(l.fn["kd_mempool_element"], C.uintptr_t(m), C.int(i)))
}

func (l *lib) ElementCalls(p Pool) (uint64, uint64) {
	if !l.mempool {
		return 0, 0
	}
	var a, f C.ulong
	l.mu.Lock()
	defer l.mu.Unlock()
	C.call_counts(l.fn["kd_element_calls"], C.uintptr_t(p), &a, &f)
	return uint64(a), uint64(f)
}

func (l *lib) MempoolDestroy(m Mempool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	C.call_p(l.fn["kd_mempool_destroy"], C.uintptr_t(m))
}

func (l *lib) Replay(pools [][3]int64, ops []Op, slots int) uint64 {
	if len(pools) == 0 || len(ops) == 0 {
		return 0
	}
	cspecs := C.malloc(C.size_t(len(pools)) * 3 * 8)
	defer C.free(cspecs)
	specs := unsafe.Slice((*C.uint64_t)(cspecs), 3*len(pools))
	for i, p := range pools {
		specs[3*i], specs[3*i+1], specs[3*i+2] = C.uint64_t(p[0]), C.uint64_t(p[1]), C.uint64_t(p[2])
	}
	cops := C.malloc(C.size_t(len(ops)) * C.size_t(unsafe.Sizeof(C.struct_kd_op{})))
	defer C.free(cops)
	cs := unsafe.Slice((*C.struct_kd_op)(cops), len(ops))
	for i, o := range ops {
		cs[i] = C.struct_kd_op{kind: C.int32_t(o.Kind), pool: C.int32_t(o.Pool), slot: C.int32_t(o.Slot), gfp: C.uint32_t(o.GFP)}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return uint64(C.call_replay(l.fn["kd_replay"], (*C.uint64_t)(cspecs), C.int(len(pools)), (*C.struct_kd_op)(cops), C.long(len(ops)), C.int(slots)))
}

func (l *lib) Errors(d Device) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return uint64(C.call_errors(l.fn["kd_errors"], C.uintptr_t(d)))
}
