/*
 * dmabench's kernel shim: the little of the kernel's environment that
 * mm/dmapool.c and mm/mempool.c use, written for user space. It is
 * force-included before every file the kernel back end compiles; the
 * <linux/...> headers those files include are empty stand-ins, so that
 * everything they need comes from here.
 *
 * GFP bits are dmabench's own (dma.GFP), so that a request's flags pass
 * through the kernel code unchanged to the platform's page allocator.
 */
#ifndef DMABENCH_SHIM_H
#define DMABENCH_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <setjmp.h>
#include <errno.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef long ssize_t_shim;
#define ssize_t ssize_t_shim
typedef unsigned int gfp_t;
typedef uint64_t dma_addr_t;

/* dma.GFP's bits, in its order. */
#define __GFP_DIRECT_RECLAIM 0x001u
#define __GFP_HIGH 0x002u
#define __GFP_IO 0x004u
#define __GFP_FS 0x008u
#define __GFP_DMA 0x010u
#define __GFP_ZERO 0x020u
#define __GFP_NOWARN 0x040u
#define __GFP_KSWAPD_RECLAIM 0x080u
#define __GFP_NOMEMALLOC 0x100u
#define __GFP_NORETRY 0x200u
#define __GFP_WAIT __GFP_DIRECT_RECLAIM
#define __GFP_RECLAIM (__GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM)
#define __GFP_RETRY_MAYFAIL 0
#define __GFP_NOFAIL 0
#define __GFP_COMP 0
#define GFP_KERNEL (__GFP_RECLAIM | __GFP_IO | __GFP_FS)
#define GFP_NOIO (__GFP_RECLAIM)
#define GFP_NOFS (__GFP_RECLAIM | __GFP_IO)
#define GFP_ATOMIC (__GFP_HIGH | __GFP_KSWAPD_RECLAIM)
#define GFP_NOWAIT (__GFP_KSWAPD_RECLAIM)

#define PAGE_SHIFT 12
#define PAGE_SIZE (1UL << PAGE_SHIFT)
#define NUMA_NO_NODE (-1)
#define HZ 100

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#undef __always_inline
#define __always_inline inline __attribute__((always_inline))
#define noinline __attribute__((noinline))
#define __malloc
#define __must_check
#define __init
#define __exit
#define __user
#define __percpu
#define __rcu
#define __force
#define __bitwise
#define __printf(a, b)
#define EXPORT_SYMBOL(x)
#define EXPORT_SYMBOL_GPL(x)
#define READ_ONCE(x) (*(volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))
#define smp_mb() __sync_synchronize()
#define smp_wmb() __sync_synchronize()
#define smp_rmb() __sync_synchronize()

#define min(a, b) ((a) < (b) ? (a) : (b))
#define max(a, b) ((a) > (b) ? (a) : (b))
#define min_t(t, a, b) ((t)(a) < (t)(b) ? (t)(a) : (t)(b))
#define max_t(t, a, b) ((t)(a) > (t)(b) ? (t)(a) : (t)(b))
#define ALIGN(x, a) (((x) + ((__typeof__(x))(a) - 1)) & ~((__typeof__(x))(a) - 1))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

/* Misuse the kernel code detects is counted, not fatal: in the device
 * of the call the glue is serving. */
extern unsigned long *dmabench_shim_errors;
#define BUG() abort()
#define BUG_ON(c) do { if (unlikely(c)) abort(); } while (0)
#define WARN_ON(c) ({ int __w = !!(c); if (__w) (*dmabench_shim_errors)++; __w; })
#define WARN_ON_ONCE(c) WARN_ON(c)
#define VM_WARN_ON_ONCE(c) ((void)0)
#define VM_BUG_ON(c) ((void)0)
#define pr_err(...) ((void)((*dmabench_shim_errors)++))
#define pr_warn(...) ((void)0)
#define pr_info(...) ((void)0)
#define dev_err(d, ...) ((void)((*dmabench_shim_errors)++))
#define dev_warn(d, ...) ((void)0)
#define print_hex_dump(...) ((void)0)
#define might_alloc(f) ((void)0)
#define might_sleep() ((void)0)
#define might_sleep_if(c) ((void)0)
#define might_fault() ((void)0)
#define kmemleak_update_trace(p) ((void)0)

/* Static keys: plain flags, off unless the code turns them on. */
struct static_key_false { int enabled; };
struct static_key_true { int enabled; };
#define DEFINE_STATIC_KEY_FALSE(n) struct static_key_false n = { 0 }
#define DEFINE_STATIC_KEY_TRUE(n) struct static_key_true n = { 1 }
#define DECLARE_STATIC_KEY_FALSE(n) extern struct static_key_false n
#define DECLARE_STATIC_KEY_TRUE(n) extern struct static_key_true n
#define static_branch_likely(k) ((k)->enabled)
#define static_branch_unlikely(k) ((k)->enabled)
#define static_branch_enable(k) ((k)->enabled = 1)
#define static_branch_disable(k) ((k)->enabled = 0)
#define static_key_enabled(k) ((k)->enabled)

/* Locks: the kernel back end runs one thread per pool set. */
typedef struct { int held; } spinlock_t;
struct mutex { int held; };
#define DEFINE_MUTEX(n) struct mutex n = { 0 }
#define DEFINE_SPINLOCK(n) spinlock_t n = { 0 }
#define spin_lock_init(l) ((l)->held = 0)
#define spin_lock(l) ((void)(l))
#define spin_unlock(l) ((void)(l))
#define spin_lock_irq(l) ((void)(l))
#define spin_unlock_irq(l) ((void)(l))
#define spin_lock_irqsave(l, f) ((void)(l), (f) = 0)
#define spin_unlock_irqrestore(l, f) ((void)(l), (void)(f))
#define mutex_lock(m) ((void)(m))
#define mutex_unlock(m) ((void)(m))

/* Lists. */
struct list_head { struct list_head *next, *prev; };
#define LIST_HEAD_INIT(n) { &(n), &(n) }
#define LIST_HEAD(n) struct list_head n = LIST_HEAD_INIT(n)
static inline void INIT_LIST_HEAD(struct list_head *l) { l->next = l; l->prev = l; }
static inline void list_add(struct list_head *n, struct list_head *h)
{
	n->next = h->next;
	n->prev = h;
	h->next->prev = n;
	h->next = n;
}
static inline void list_add_tail(struct list_head *n, struct list_head *h)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}
static inline void list_del(struct list_head *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->next = e->prev = NULL;
}
static inline int list_empty(const struct list_head *h) { return h->next == h; }
#define list_entry(p, t, m) container_of(p, t, m)
#define list_first_entry(h, t, m) list_entry((h)->next, t, m)
#define list_for_each_entry(pos, head, member) \
	for (pos = list_entry((head)->next, __typeof__(*pos), member); \
	     &pos->member != (head); \
	     pos = list_entry(pos->member.next, __typeof__(*pos), member))
#define list_for_each_entry_safe(pos, n, head, member) \
	for (pos = list_entry((head)->next, __typeof__(*pos), member), \
	     n = list_entry(pos->member.next, __typeof__(*pos), member); \
	     &pos->member != (head); \
	     pos = n, n = list_entry(n->member.next, __typeof__(*n), member))

/* Wait queues: a sleep leaves the kernel code (see io_schedule_timeout);
 * a wakeup is reported to dmabench, which wakes its sleepers. */
typedef struct wait_queue_head { int woken; } wait_queue_head_t;
struct wait_queue_entry { int unused; };
typedef struct wait_queue_entry wait_queue_entry_t;
#define DEFINE_WAIT(w) wait_queue_entry_t w = { 0 }
#define init_wait(w) ((void)(w))
#define init_waitqueue_head(q) ((q)->woken = 0)
#define TASK_UNINTERRUPTIBLE 2
#define prepare_to_wait(q, w, s) ((void)(q), (void)(w))
#define finish_wait(q, w) ((void)(q), (void)(w))
#define wq_has_sleeper(q) (1)
#define waitqueue_active(q) (1)
static inline void wake_up(wait_queue_head_t *q) { q->woken = 1; }
long io_schedule_timeout(long timeout);

/* Memory for the kernel code's own structures. */
#define kmalloc(s, f) malloc(s)
#define kmalloc_node(s, f, n) malloc(s)
#define kmalloc_noprof(s, f) malloc(s)
#define kmalloc_node_noprof(s, f, n) (((f) & __GFP_ZERO) ? calloc(1, s) : malloc(s))
#define kmalloc_array(n, s, f) malloc((n) * (s))
#define kmalloc_array_node(n, s, f, nd) malloc((n) * (s))
#define kmalloc_array_noprof(n, s, f) malloc((n) * (s))
#define kmalloc_array_node_noprof(n, s, f, nd) malloc((n) * (s))
#define kcalloc(n, s, f) calloc(n, s)
#define kzalloc(s, f) calloc(1, s)
#define kzalloc_node(s, f, n) calloc(1, s)
#define kfree(p) free((void *)(p))
#define kvfree(p) free((void *)(p))
#define kvmalloc(s, f) malloc(s)
#define kvmalloc_noprof(s, f) malloc(s)
#define want_init_on_alloc(f) (((f) & __GFP_ZERO) != 0)
#define want_init_on_free() (0)
#define alloc_hooks(x) (x)

/* Devices. */
struct device {
	struct list_head dma_pools;
	uintptr_t ctx;		/* dmabench's device */
	unsigned long errors;	/* what the kernel code reported */
};
struct device_attribute { const char *name; };
#define DEVICE_ATTR_RO(n) struct device_attribute dev_attr_##n = { #n }
static inline int device_create_file(struct device *d, const struct device_attribute *a) { (void)d; (void)a; return 0; }
static inline void device_remove_file(struct device *d, const struct device_attribute *a) { (void)d; (void)a; }
static inline const char *dev_name(const struct device *d) { (void)d; return "dmabench"; }
static inline int dev_to_node(struct device *d) { (void)d; return NUMA_NO_NODE; }
typedef void (*dr_release_t)(struct device *dev, void *res);
typedef int (*dr_match_t)(struct device *dev, void *res, void *match_data);
static inline void *devres_alloc(dr_release_t r, size_t s, gfp_t f) { (void)r; (void)f; return calloc(1, s); }
static inline void devres_add(struct device *d, void *res) { (void)d; (void)res; }
static inline void devres_free(void *res) { free(res); }
static inline int devres_release(struct device *d, dr_release_t r, dr_match_t m, void *md) { (void)d; (void)r; (void)m; (void)md; return 0; }
#define sysfs_emit(buf, ...) snprintf(buf, PAGE_SIZE, __VA_ARGS__)
#define sysfs_emit_at(buf, at, ...) snprintf((buf) + (at), PAGE_SIZE - (at), __VA_ARGS__)
#define scnprintf(buf, n, ...) snprintf(buf, n, __VA_ARGS__)
static inline ssize_t strscpy(char *d, const char *s, size_t n)
{
	size_t l = strlen(s);
	if (n == 0)
		return -7;
	if (l >= n) {
		memcpy(d, s, n - 1);
		d[n - 1] = 0;
		return -7;
	}
	memcpy(d, s, l + 1);
	return (ssize_t)l;
}

/* Slab caches, pages and KASAN: mempool.c's element allocators for them
 * are compiled but never called (dmabench's mempools sit on dma_pools). */
struct kmem_cache;
struct page;
void *kmem_cache_alloc(struct kmem_cache *c, gfp_t f);
void *kmem_cache_alloc_noprof(struct kmem_cache *c, gfp_t f);
void kmem_cache_free(struct kmem_cache *c, void *p);
unsigned int kmem_cache_size(struct kmem_cache *c);
struct page *alloc_pages(gfp_t f, unsigned int order);
struct page *alloc_pages_noprof(gfp_t f, unsigned int order);
void __free_pages(struct page *p, unsigned int order);
void *page_address(const struct page *p);
size_t __ksize(const void *p);
size_t ksize(const void *p);
#define kmap_local_page(p) page_address(p)
#define kunmap_local(a) ((void)(a))
#define kasan_enabled() (0)
#define kasan_unpoison_range(p, s) ((void)0)
#define kasan_unpoison_pages(p, o, i) ((void)0)
#define kasan_poison_pages(p, o, i) ((void)0)
#define kasan_slab_free_mempool(p) ((void)0)
#define kasan_mempool_poison_object(p) (true)
#define kasan_mempool_unpoison_object(p, s) ((void)0)
#define kasan_mempool_poison_pages(p, o) (true)
#define kasan_mempool_unpoison_pages(p, o) ((void)0)

/* The DMA API: pages from dmabench's platform (kernel/shim/glue.c). */
void *dma_alloc_coherent(struct device *dev, size_t size, dma_addr_t *handle, gfp_t gfp);
void dma_free_coherent(struct device *dev, size_t size, void *vaddr, dma_addr_t handle);

#define POOL_POISON_FREED 0xa7
#define POOL_POISON_ALLOCATED 0xa9

/* Declarations the files expect from their own headers. */
struct dma_pool;
#ifdef DMABENCH_CREATE_NODE
/* Mainline: dma_pool_create is dmapool.h's inline wrapper. */
struct dma_pool *dma_pool_create_node(const char *name, struct device *dev, size_t size, size_t align, size_t boundary, int node);
static inline struct dma_pool *dma_pool_create(const char *name, struct device *dev, size_t size, size_t align, size_t boundary)
{
	return dma_pool_create_node(name, dev, size, align, boundary, NUMA_NO_NODE);
}
#else
struct dma_pool *dma_pool_create(const char *name, struct device *dev, size_t size, size_t align, size_t boundary);
#endif
void dma_pool_destroy(struct dma_pool *pool);
void *dma_pool_alloc(struct dma_pool *pool, gfp_t mem_flags, dma_addr_t *handle);
void dma_pool_free(struct dma_pool *pool, void *vaddr, dma_addr_t addr);
struct dma_pool *dmam_pool_create(const char *name, struct device *dev, size_t size, size_t align, size_t allocation);
void dmam_pool_destroy(struct dma_pool *pool);

#endif
