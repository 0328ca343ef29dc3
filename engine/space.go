// This file holds the id space: the live objects and pools of a
// workload, indexed by the dense ids its events carry, and the misuse an
// event that does not match them is.

package engine

import (
	"slices"

	"github.com/dmabench/dmabench/dma"
)

type state uint8

const (
	stNone state = iota
	stFreed
	// The live states, from stAlloc on.
	stAlloc
	stMap
	stSG
	// stOrphan: a block whose pool was destroyed while it was allocated.
	// It died with its pool: its free is MisuseFreeAfterDestroy and never
	// reaches the model, which leaked it as the kernel does. Its id stays
	// taken until that free.
	stOrphan
)

// live reports a state of an object still allocated or mapped.
func (st state) live() bool { return st >= stAlloc }

type object struct {
	blk  dma.Block
	size int64
	line int64 // trace line that made it live
	st   state
	dir  dma.Dir
	sg   int32 // scatterlist slot, for stSG
	pool int32 // the space's pool an stAlloc object came from, or -1
}

// set makes o a live object (field by field: see serve). Its sg is left
// as it was: only an stSG object, which is set whole, has one.
func (o *object) set(blk dma.Block, size int64, st state, dir dma.Dir, line int64, pool dma.ID) {
	o.blk, o.size, o.st, o.dir, o.line, o.pool = blk, size, st, dir, line, int32(pool)
}

type poolRef struct {
	id   dma.ID
	size int64 // block size the pool was created with
	live bool
	// room is size+1 while the pool is live, else 0: plain's one check
	// that an alloc of n bytes fits a live pool, n < room.
	room uint64
	// failed: the workload's last create of this pool failed. Its
	// allocations fail (ErrBadPool) as a driver's would after a failed
	// probe; they are not misuse.
	failed bool
	// destroyed: the pool was created and then destroyed; an alloc from
	// it is MisuseAllocAfterDestroy.
	destroyed bool
	// use is what the pool's callers did, for the results' breakdown.
	use PoolUse
}

// PoolUse is what a workload's callers did with one of its pools
// (dma.PoolUse). (Served allocations are not split by gfp mask: that
// would cost the fast path five instructions an event.)
type PoolUse = dma.PoolUse

// orphan kills the live blocks of pool id with it (see stOrphan) and
// returns how many there were. It walks every object: destroys are rare.
func (sp *space) orphan(id dma.ID) int {
	n := 0
	for i := range sp.objs {
		if o := &sp.objs[i]; o.st == stAlloc && o.pool == int32(id) {
			o.st = stOrphan
			n++
		}
	}
	return n
}

// space holds the live objects and pools of one workload; the threads of a
// dma.Threads workload share one.
type space struct {
	objs  []object
	pools []poolRef
	// sgs holds mapped scatterlists' blocks, by slot; slots are reused.
	sgs    [][]dma.Block
	sgFree []int32
}

func (sp *space) sgSlot(n int) int32 {
	var i int32
	if k := len(sp.sgFree); k > 0 {
		i = sp.sgFree[k-1]
		sp.sgFree = sp.sgFree[:k-1]
	} else {
		sp.sgs = append(sp.sgs, nil)
		i = int32(len(sp.sgs) - 1)
	}
	if cap(sp.sgs[i]) < n {
		sp.sgs[i] = make([]dma.Block, n)
	}
	sp.sgs[i] = sp.sgs[i][:n]
	return i
}

// grow extends a table indexed by id to hold id, zeroed, with one copy of
// what it held however far id jumps.
func grow[T any](s []T, id dma.ID) []T {
	if n := int(id) + 1 - len(s); n > 0 {
		s = slices.Grow(s, n)
		s = s[:len(s)+n]
		clear(s[len(s)-n:])
	}
	return s
}

// claim returns the slot for a new object id, or nil when the id is
// still live (MisuseIDReused).
func claim(s *source, id dma.ID) *object {
	sp := s.sp
	if uint(id) >= uint(len(sp.objs)) {
		sp.objs = grow(sp.objs, id)
	}
	if obj := &sp.objs[id]; !obj.st.live() {
		return obj
	}
	return nil
}

func (e *Engine) lookup(s *source, id dma.ID, want state) (*object, Misuse) {
	if obj := s.sp.in(id, want); obj != nil {
		return obj, MisuseNone
	}
	return nil, s.sp.misuse(id)
}

// in returns object id if it is in state want, else nil.
func (sp *space) in(id dma.ID, want state) *object {
	if i := int(id); uint(i) < uint(len(sp.objs)) {
		if obj := &sp.objs[i]; obj.st == want {
			return obj
		}
	}
	return nil
}

// misuse says what a free, unmap or sync of id is when id is not live in
// the state it asks for. It stays out of line, off lookup's path.
//
//go:noinline
func (sp *space) misuse(id dma.ID) Misuse {
	if uint(id) >= uint(len(sp.objs)) {
		return MisuseUnknownFree
	}
	switch sp.objs[id].st {
	case stNone:
		return MisuseUnknownFree
	case stFreed:
		return MisuseDoubleFree
	}
	return MisuseMismatch
}
