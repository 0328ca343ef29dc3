/*
 * dmabench's side of the kernel back end, compiled into the same shared
 * library as the kernel's files: the DMA API under them (pages come from
 * dmabench's platform through callbacks), the calls dmabench makes, and a
 * replay loop that times the kernel code with no cgo crossing per call.
 */
#include <time.h>
#include <sys/mman.h>
#ifdef DMABENCH_MEMPOOL
#include <linux/mempool.h>
#endif

static unsigned long no_device_errors;
unsigned long *dmabench_shim_errors = &no_device_errors;

/* A pool as the glue hands it out: the kernel's, its device, and the
 * calls a mempool over it made (for the modeled costs). */
struct kd_pool {
	struct dma_pool *pool;
	struct device *dev;
	unsigned long elem_allocs, elem_frees;
};

/* serve points the shim's error count at dev's for the call. */
static void serve(struct device *dev) { dmabench_shim_errors = &dev->errors; }

/* Never called: see shim.h. */
void *kmem_cache_alloc(struct kmem_cache *c, gfp_t f) { (void)c; (void)f; abort(); }
void *kmem_cache_alloc_noprof(struct kmem_cache *c, gfp_t f) { (void)c; (void)f; abort(); }
void kmem_cache_free(struct kmem_cache *c, void *p) { (void)c; (void)p; abort(); }
unsigned int kmem_cache_size(struct kmem_cache *c) { (void)c; abort(); }
struct page *alloc_pages(gfp_t f, unsigned int o) { (void)f; (void)o; abort(); }
struct page *alloc_pages_noprof(gfp_t f, unsigned int o) { (void)f; (void)o; abort(); }
void __free_pages(struct page *p, unsigned int o) { (void)p; (void)o; abort(); }
void *page_address(const struct page *p) { (void)p; abort(); }
size_t __ksize(const void *p) { (void)p; abort(); }
size_t ksize(const void *p) { (void)p; abort(); }

struct kd_callbacks {
	int (*alloc)(uintptr_t ctx, size_t size, unsigned gfp, uint64_t *cpu, uint64_t *dma);
	void (*free)(uintptr_t ctx, size_t size, uint64_t cpu, uint64_t dma);
};
static struct kd_callbacks cbs;

void kd_set_callbacks(const struct kd_callbacks *cb) { cbs = *cb; }
unsigned long kd_errors(struct device *dev) { return dev->errors; }

/*
 * The kernel code writes into its pages (free lists live in free
 * blocks), so every page dmabench's platform hands out is backed by host
 * memory; pages[] maps each host allocation to the platform's addresses,
 * sorted by host address.
 */
struct kd_page { uintptr_t host; size_t size; uint64_t cpu, dma; struct device *dev; };
static struct kd_page *pages;
static size_t npages, cappages;

static size_t page_at(uintptr_t host)
{
	size_t lo = 0, hi = npages;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (pages[mid].host <= host)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo; /* first page above host */
}

static int page_add(uintptr_t host, size_t size, uint64_t cpu, uint64_t dma, struct device *dev)
{
	if (npages == cappages) {
		size_t n = cappages ? cappages * 2 : 256;
		struct kd_page *p = realloc(pages, n * sizeof(*p));
		if (!p)
			return -1;
		pages = p;
		cappages = n;
	}
	size_t i = page_at(host);
	memmove(&pages[i + 1], &pages[i], (npages - i) * sizeof(*pages));
	pages[i] = (struct kd_page){ host, size, cpu, dma, dev };
	npages++;
	return 0;
}

static struct kd_page *page_of(uintptr_t host)
{
	size_t i = page_at(host);
	if (i == 0 || host >= pages[i - 1].host + pages[i - 1].size)
		return NULL;
	return &pages[i - 1];
}

/*
 * The timing replay's pages (dev->ctx 0) come from one arena mapped with
 * transparent huge pages, naturally aligned as the buddy allocator's
 * are, as the kernel's direct map is: the kernel code then meets the TLB
 * it meets in a kernel, not one miss per 4 KiB page.
 */
#define ARENA_SIZE (8UL << 30)
static char *arena;
static size_t arena_used;

static void *arena_alloc(size_t size)
{
	size_t align = PAGE_SIZE;
	while (align < size)
		align <<= 1;
	if (!arena) {
		void *p = mmap(NULL, ARENA_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		madvise(p, ARENA_SIZE, MADV_HUGEPAGE);
		arena = p;
		arena_used = 0;
	}
	size_t at = (arena_used + align - 1) & ~(align - 1);
	if (at + size > ARENA_SIZE)
		return NULL;
	arena_used = at + size;
	return arena + at;
}

static void arena_release(void)
{
	if (arena)
		munmap(arena, ARENA_SIZE);
	arena = NULL;
	arena_used = 0;
}

/* dev->ctx 0: the replay's arena; otherwise dmabench's platform. */
void *dma_alloc_coherent(struct device *dev, size_t size, dma_addr_t *handle, gfp_t gfp)
{
	void *host = NULL;
	uint64_t cpu, dma;
	if (dev->ctx == 0) {
		host = arena_alloc(size);
		*handle = (uintptr_t)host;
		return host;
	}
	if (posix_memalign(&host, PAGE_SIZE, size))
		return NULL;
	if (cbs.alloc(dev->ctx, size, gfp, &cpu, &dma) != 0) {
		free(host);
		return NULL;
	}
	if (page_add((uintptr_t)host, size, cpu, dma, dev) != 0) {
		cbs.free(dev->ctx, size, cpu, dma);
		free(host);
		return NULL;
	}
	*handle = dma;
	return host;
}

void dma_free_coherent(struct device *dev, size_t size, void *vaddr, dma_addr_t handle)
{
	if (dev->ctx == 0)
		return; /* the arena goes at the replay's end */
	{
		struct kd_page *p = page_of((uintptr_t)vaddr);
		if (p) {
			cbs.free(dev->ctx, size, p->cpu, handle);
			size_t i = p - pages;
			memmove(&pages[i], &pages[i + 1], (npages - i - 1) * sizeof(*pages));
			npages--;
		}
	}
	free(vaddr);
}

struct device *kd_device(uintptr_t ctx)
{
	struct device *d = calloc(1, sizeof(*d));
	if (d) {
		INIT_LIST_HEAD(&d->dma_pools);
		d->ctx = ctx;
	}
	return d;
}

/*
 * kd_device_free lets a device go once its pools are destroyed, with the
 * host memory of the pages the kernel code never gave back (a busy pool's,
 * which dma_pool_destroy leaks as the kernel does).
 */
void kd_device_free(struct device *d)
{
	size_t j = 0;
	for (size_t i = 0; i < npages; i++) {
		if (pages[i].dev == d)
			free((void *)pages[i].host);
		else
			pages[j++] = pages[i];
	}
	npages = j;
	free(d);
}

struct kd_pool *kd_pool_create(struct device *dev, const char *name, size_t size, size_t align, size_t boundary)
{
	struct kd_pool *kp = calloc(1, sizeof(*kp));
	if (!kp)
		return NULL;
	serve(dev);
#ifdef DMABENCH_CREATE_NODE
	kp->pool = dma_pool_create_node(name, dev, size, align, boundary, NUMA_NO_NODE);
#else
	kp->pool = dma_pool_create(name, dev, size, align, boundary);
#endif
	if (!kp->pool) {
		free(kp);
		return NULL;
	}
	kp->dev = dev;
	return kp;
}

void kd_pool_destroy(struct kd_pool *kp)
{
	serve(kp->dev);
	dma_pool_destroy(kp->pool);
	free(kp);
}

/* The platform's CPU address of host address v (0: not a page of ours). */
static uint64_t cpu_of(void *v)
{
	struct kd_page *p = page_of((uintptr_t)v);
	return p ? p->cpu + ((uintptr_t)v - p->host) : 0;
}

static uint64_t dma_of(void *v)
{
	struct kd_page *p = page_of((uintptr_t)v);
	return p ? p->dma + ((uintptr_t)v - p->host) : 0;
}

void *kd_pool_alloc(struct kd_pool *kp, unsigned gfp, uint64_t *cpu, uint64_t *dma)
{
	dma_addr_t h = 0;
	serve(kp->dev);
	void *v = dma_pool_alloc(kp->pool, gfp, &h);
	if (v) {
		*cpu = cpu_of(v);
		*dma = h;
	}
	return v;
}

void kd_pool_free(struct kd_pool *kp, void *vaddr, uint64_t dma)
{
	serve(kp->dev);
	dma_pool_free(kp->pool, vaddr, dma);
}

static uint64_t thread_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * kd_replay replays a pool operation stream on host pages: pools
 * specs[3*i..3*i+2] (size, align, boundary), then ops (kind 0 alloc, 1
 * free; pool; slot), and returns the thread CPU time the operations took.
 * Pool creation and destruction are not timed.
 */
struct kd_op { int32_t kind, pool, slot; uint32_t gfp; };

uint64_t kd_replay(const uint64_t *specs, int npools, const struct kd_op *ops, long nops, int nslots)
{
	struct device *dev = kd_device(0);
	struct kd_pool **pools = calloc(npools, sizeof(*pools));
	void **vaddr = calloc(nslots, sizeof(*vaddr));
	dma_addr_t *dma = calloc(nslots, sizeof(*dma));
	int32_t *owner = calloc(nslots, sizeof(*owner));
	uint64_t took = 0;
	if (!dev || !pools || !vaddr || !dma || !owner)
		goto out;
	for (int i = 0; i < npools; i++)
		pools[i] = kd_pool_create(dev, "replay", specs[3 * i], specs[3 * i + 1], specs[3 * i + 2]);
	uint64_t t0 = thread_ns();
	for (long i = 0; i < nops; i++) {
		const struct kd_op *o = &ops[i];
		if (!pools[o->pool])
			continue;
		if (o->kind == 0) {
			vaddr[o->slot] = dma_pool_alloc(pools[o->pool]->pool, o->gfp, &dma[o->slot]);
			owner[o->slot] = o->pool;
		} else if (vaddr[o->slot]) {
			dma_pool_free(pools[o->pool]->pool, vaddr[o->slot], dma[o->slot]);
			vaddr[o->slot] = NULL;
		}
	}
	took = thread_ns() - t0;
	/* What the stream left live goes back, so that destroy frees its pages. */
	for (int s = 0; s < nslots; s++)
		if (vaddr[s])
			dma_pool_free(pools[owner[s]]->pool, vaddr[s], dma[s]);
	for (int i = 0; i < npools; i++)
		if (pools[i])
			kd_pool_destroy(pools[i]);
	arena_release();
out:
	free(owner);
	free(dma);
	free(vaddr);
	free(pools);
	free(dev);
	return took;
}

#ifdef DMABENCH_MEMPOOL
/*
 * A mempool over a dma_pool. mempool_alloc sleeps in io_schedule_timeout
 * when its reserve is empty: the shim leaves the kernel code there (it
 * holds no lock and nothing allocated at that point) and reports the
 * sleep, which dmabench's engine models; the caller retries.
 */
static jmp_buf *sleeping;

long io_schedule_timeout(long timeout)
{
	if (sleeping)
		longjmp(*sleeping, 1);
	return timeout;
}

static void *elem_alloc(gfp_t gfp, void *data)
{
	struct kd_pool *kp = data;
	dma_addr_t h;
	kp->elem_allocs++;
	return dma_pool_alloc(kp->pool, gfp, &h);
}

static void elem_free(void *e, void *data)
{
	struct kd_pool *kp = data;
	kp->elem_frees++;
	dma_pool_free(kp->pool, e, dma_of(e));
}

void kd_element_calls(struct kd_pool *kp, unsigned long *allocs, unsigned long *frees)
{
	*allocs = kp->elem_allocs;
	*frees = kp->elem_frees;
}

mempool_t *kd_mempool_create(int min_nr, struct kd_pool *inner)
{
	serve(inner->dev);
	return mempool_create(min_nr, elem_alloc, elem_free, inner);
}

/* The mempool's device: its element pool's. */
static void serve_mempool(mempool_t *pool) { serve(((struct kd_pool *)pool->pool_data)->dev); }

/* What a mempool call did, beside its result (kd_mempool_alloc, _free). */
enum { KD_SLEPT = 1, KD_RESERVE = 2, KD_WOKEN = 4 };

/* kd_mempool_alloc is mempool_alloc; *did says whether the caller slept
 * and whether the reserve moved, *curr is the reserve after. */
void *kd_mempool_alloc(mempool_t *pool, unsigned gfp, uint64_t *cpu, uint64_t *dma, int *did, int *curr)
{
	jmp_buf env;
	void *v = NULL;
	int before = pool->curr_nr;
	*did = 0;
	serve_mempool(pool);
	if (setjmp(env)) {
		*did = KD_SLEPT;
	} else {
		sleeping = &env;
		v = mempool_alloc(pool, gfp);
	}
	sleeping = NULL;
	if (v) {
		*cpu = cpu_of(v);
		*dma = dma_of(v);
	}
	if (pool->curr_nr != before)
		*did |= KD_RESERVE;
	*curr = pool->curr_nr;
	return v;
}

/* kd_mempool_free is mempool_free: whether the element went to the
 * reserve, and whether it woke the pool's sleepers. */
int kd_mempool_free(mempool_t *pool, void *v)
{
	int before = pool->curr_nr, did = 0;
	serve_mempool(pool);
	mempool_free(v, pool);
	if (pool->curr_nr != before)
		did |= KD_RESERVE;
	if (pool->wait.woken)
		did |= KD_WOKEN;
	pool->wait.woken = 0;
	return did;
}

int kd_mempool_curr(mempool_t *pool) { return pool->curr_nr; }

/* The platform's CPU address of the reserve's element i. */
uint64_t kd_mempool_element(mempool_t *pool, int i) { return cpu_of(pool->elements[i]); }

void kd_mempool_destroy(mempool_t *pool)
{
	serve_mempool(pool);
	mempool_destroy(pool);
}
#else
long io_schedule_timeout(long timeout) { return timeout; }
#endif
