// SPDX-License-Identifier: MIT
/*
 * Translation: context table, page walker and TLB.
 *
 * Page tables live in guest RAM and the guest CPU edits them while we walk,
 * so every entry is read once with a 64-bit atomic load and every table or
 * page address is checked against guest RAM (guest_ram_ptr()) before it is
 * touched: a 2 MiB page must lie wholly in one RAM window.  Four levels for
 * 48-bit virtual addresses, five for 57-bit ones (hmirror_header.va_bits).
 * Walks run under inval_lock held for reading, after the bus-master check
 * (hmdev_dma_allowed()), like every other guest-RAM access.  Nothing here
 * trusts a value it read for longer than one walk, except the TLB, which
 * only TLB_INVAL, a shootdown (or a reset) empties.  The table geometry is the ABI's
 * (hmirror_dev.h).  Calls guest_ram.c, dev_mem.c and hmdev_state.c
 * (counters) only.
 *
 * Device memory (FEAT_VRAM): a 4 KiB leaf with PTE_VRAM maps an offset into
 * the device's own memory (dev_mem.c) instead of a guest-physical page.
 * Such a page is cached, hit and dropped like any other; the chunk that
 * uses it needs no bus mastering, but the walk that finds it does (the
 * tables are in guest RAM), so without bus mastering only a TLB hit
 * translates.
 *
 * The TLB is set associative (up to 8 ways, LRU within a set), shared by the
 * engines under tlb.mu.  Entries are keyed by (context, virtual page, page
 * size); a lookup tries the 4 KiB key, then the 2 MiB key.  Only present
 * translations are cached; an entry without write permission serves reads
 * only, and a write that finds it is a permission miss (walk again: the
 * driver upgrades read-only entries to writable without an invalidation).
 *
 * Shootdowns (FEAT_SHOOTDOWN) are applied lazily, by the next access of any
 * engine, before it translates: the TLB is only ever used inside an access
 * (hmdev_access_begin/end), so a request the driver published is applied
 * before any later lookup.  The driver's proof that no access still uses a
 * dropped translation is the announcement each engine makes before it
 * applies (dev_seen: BUSY and the epoch) and the Dekker-style order of the
 * two sides: the engine stores BUSY, fences, then loads the driver's epoch;
 * the driver stores its epoch, fences, then loads every dev_seen.  Either
 * the engine sees the new epoch (and applies it before translating) or the
 * driver sees the engine busy on an older one (and waits for that access to
 * end).  One more race: a walk that read an entry just before the driver
 * cleared it must not be cached after another engine applied the request;
 * a walk is cached only if sd_done has not moved since its access began.
 * The guest writes the shootdown block at will: an epoch more than
 * HMIRROR_SD_SLOTS ahead (or behind by more), or a slot that does not hold
 * the epoch it should (overwritten, or rewritten while read), drops the
 * whole TLB, which is always safe.
 */
#include <stdlib.h>
#include <string.h>

#include "dev_mem.h"
#include "guest_ram.h"
#include "hmdev_internal.h"

#define TLB_MAX_WAYS	8u

/* ---- TLB ------------------------------------------------------------ */

/* Bits below a leaf's virtual page number: 4 KiB (level 1), 2 MiB (level 2). */
#define LEAF_SHIFT(huge)	HMIRROR_PT_SHIFT((huge) ? 2 : 1)
#define LEAF_SIZE(huge)		((huge) ? HMIRROR_HUGE_SIZE : HMIRROR_PAGE_SIZE)

/*
 * Key: bit 63 set (0 is "empty"), context in bits 46..61, virtual page
 * number (of the entry's size; below 2^45 for a 57-bit address) in bits
 * 1..45, bit 0 = 2 MiB.
 */
#define KEY_VPN_BITS	(HMIRROR_VA_BITS_5LEVEL - HMIRROR_PT_SHIFT(1))
#define KEY_CTX_SHIFT	(1 + KEY_VPN_BITS)
#define KEY_VPN_MASK	((1ull << KEY_VPN_BITS) - 1)

static uint64_t tlb_key(unsigned ctx, uint64_t va, bool huge)
{
	unsigned shift = LEAF_SHIFT(huge);

	return (1ull << 63) | ((uint64_t)(ctx & 0xffff) << KEY_CTX_SHIFT) |
	       (((va >> shift) & KEY_VPN_MASK) << 1) | (huge ? 1 : 0);
}

static unsigned key_ctx(uint64_t key)
{
	return (unsigned)((key >> KEY_CTX_SHIFT) & 0xffff);
}

static uint64_t key_start(uint64_t key)
{
	return ((key >> 1) & KEY_VPN_MASK) << LEAF_SHIFT(key & 1);
}

static uint64_t key_size(uint64_t key)
{
	return LEAF_SIZE(key & 1);
}

int hmdev_tlb_init(struct hmdev_tlb *t, unsigned entries)
{
	memset(t, 0, sizeof(*t));
	if (!entries)
		return -1;
	t->e = calloc(entries, sizeof(*t->e));
	if (!t->e)
		return -1;
	t->n = entries;
	t->ways = entries < TLB_MAX_WAYS ? entries : TLB_MAX_WAYS;
	t->nsets = (entries + t->ways - 1) / t->ways;
	if (pthread_mutex_init(&t->mu, NULL)) {
		free(t->e);
		t->e = NULL;
		return -1;
	}
	return 0;
}

void hmdev_tlb_fini(struct hmdev_tlb *t)
{
	if (!t->e)
		return;
	pthread_mutex_destroy(&t->mu);
	free(t->e);
	t->e = NULL;
}

/* Entries [*lo, *hi) of the set holding @key. */
static void tlb_set(const struct hmdev_tlb *t, uint64_t key, unsigned *lo,
		    unsigned *hi)
{
	uint64_t h = key * 0x9e3779b97f4a7c15ull;
	unsigned s = (unsigned)((h >> 32) % t->nsets);

	*lo = s * t->ways;
	*hi = *lo + t->ways < t->n ? *lo + t->ways : t->n;
}

static struct hmdev_tlbe *tlb_find(struct hmdev_tlb *t, uint64_t key)
{
	unsigned i, lo, hi;

	tlb_set(t, key, &lo, &hi);
	for (i = lo; i < hi; i++)
		if (t->e[i].key == key)
			return &t->e[i];
	return NULL;
}

static void tlb_insert(struct hmdev_tlb *t, uint64_t key, uint8_t *host,
		       uint64_t gpa, bool writable, bool vram)
{
	struct hmdev_tlbe *v = NULL;
	unsigned i, lo, hi;

	tlb_set(t, key, &lo, &hi);
	for (i = lo; i < hi; i++) {
		struct hmdev_tlbe *e = &t->e[i];

		if (e->key == key) {
			v = e;
			break;
		}
		if (!v || (v->key && (!e->key || e->stamp < v->stamp)))
			v = e;
	}
	v->key = key;
	v->host = host;
	v->gpa = gpa;
	v->writable = writable;
	v->vram = vram;
	v->stamp = ++t->clock;
}

static void tlb_drop_locked(struct hmdev_tlb *t, unsigned ctx, uint64_t start,
			    uint64_t end, uint64_t va_end)
{
	const unsigned s4 = LEAF_SHIFT(false), s2 = LEAF_SHIFT(true);
	uint64_t n4, n2, p;
	unsigned i;

	if (end > va_end)
		end = va_end;
	if (start >= end)
		return;
	n4 = ((end - 1) >> s4) - (start >> s4) + 1;
	n2 = ((end - 1) >> s2) - (start >> s2) + 1;
	if ((n4 + n2) * t->ways <= t->n) {
		/* few pages: probe their sets */
		for (p = start >> s4; p <= (end - 1) >> s4; p++) {
			struct hmdev_tlbe *e = tlb_find(t, tlb_key(ctx, p << s4, false));

			if (e)
				e->key = 0;
		}
		for (p = start >> s2; p <= (end - 1) >> s2; p++) {
			struct hmdev_tlbe *e = tlb_find(t, tlb_key(ctx, p << s2, true));

			if (e)
				e->key = 0;
		}
		return;
	}
	for (i = 0; i < t->n; i++) {
		struct hmdev_tlbe *e = &t->e[i];
		uint64_t lo, hi;

		if (!e->key || key_ctx(e->key) != ctx)
			continue;
		lo = key_start(e->key);
		hi = lo + key_size(e->key);
		if (lo < end && start < hi)
			e->key = 0;
	}
}

void hmdev_tlb_drop(struct hmdev *dev, unsigned ctx, uint64_t start,
		    uint64_t end)
{
	pthread_mutex_lock(&dev->tlb.mu);
	tlb_drop_locked(&dev->tlb, ctx, start, end, dev->va_end);
	pthread_mutex_unlock(&dev->tlb.mu);
}

void hmdev_tlb_flush(struct hmdev *dev)
{
	struct hmdev_tlb *t = &dev->tlb;
	uint64_t e = 0;
	unsigned q;

	pthread_mutex_lock(&t->mu);
	memset(t->e, 0, (size_t)t->n * sizeof(*t->e));
	t->clock = 0;
	if (dev->sd) {
		e = hm_load_acq(&dev->sd->drv_epoch) & HMIRROR_SD_EPOCH_MASK;
		__atomic_store_n(&dev->sd_done, e, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&t->mu);
	if (!dev->sd)
		return;
	for (q = 0; q < dev->num_queues; q++) {
		dev->sd_seen[q] = e;
		hm_store_rel(&dev->sd->dev_seen[q], e);
	}
}

/* ---- shootdown ------------------------------------------------------ */

/*
 * Apply the requests published up to epoch @e (tlb.mu held).  Returns the
 * number of epochs the TLB moved by.
 */
static uint64_t sd_apply_locked(struct hmdev *dev, uint64_t e)
{
	struct hmdev_tlb *t = &dev->tlb;
	uint64_t done = dev->sd_done, k;
	uint64_t ahead = (e - done) & HMIRROR_SD_EPOCH_MASK;
	uint64_t behind = (done - e) & HMIRROR_SD_EPOCH_MASK;

	if (!ahead || behind <= HMIRROR_SD_SLOTS)
		return 0;	/* applied, or another engine applied more */
	for (k = (done + 1) & HMIRROR_SD_EPOCH_MASK;
	     ahead <= HMIRROR_SD_SLOTS && k != ((e + 1) & HMIRROR_SD_EPOCH_MASK);
	     k = (k + 1) & HMIRROR_SD_EPOCH_MASK) {
		struct hmirror_sd_req *r = &dev->sd->req[k % HMIRROR_SD_SLOTS];
		uint64_t e1, e2, start, end;
		unsigned ctx;

		e1 = hm_load_acq(&r->epoch);
		start = hm_load(&r->start);
		end = hm_load(&r->end);
		ctx = hm_load(&r->ctx);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		e2 = hm_load(&r->epoch);
		if (e1 != k || e2 != k)
			break;		/* missed: drop everything below */
		if (ctx < dev->hdr.max_contexts)
			tlb_drop_locked(t, ctx, start, end, dev->va_end);
	}
	if (ahead > HMIRROR_SD_SLOTS || k != ((e + 1) & HMIRROR_SD_EPOCH_MASK)) {
		memset(t->e, 0, (size_t)t->n * sizeof(*t->e));
		t->clock = 0;
	}
	__atomic_store_n(&dev->sd_done, e, __ATOMIC_RELAXED);
	return ahead;
}

void hmdev_access_begin(struct hmdev *dev, unsigned q, struct hmdev_access *a)
{
	struct hmirror_shootdown *sd = dev->sd;
	uint64_t e, moved = 0;

	pthread_rwlock_rdlock(&dev->inval_lock);
	a->q = q;
	a->epoch = 0;
	if (sd) {
		/* announce, fence, then look: see the top of this file */
		__atomic_store_n(&sd->dev_seen[q], dev->sd_seen[q] | HMIRROR_SD_BUSY,
				 __ATOMIC_SEQ_CST);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		e = hm_load_acq(&sd->drv_epoch) & HMIRROR_SD_EPOCH_MASK;
		pthread_mutex_lock(&dev->tlb.mu);
		if (e != dev->sd_done)
			moved = sd_apply_locked(dev, e);
		a->epoch = dev->sd_done;
		pthread_mutex_unlock(&dev->tlb.mu);
		if (moved)
			HMDEV_CNT_ADD(dev, shootdowns, moved);
		dev->sd_seen[q] = e;
		hm_store_rel(&sd->dev_seen[q], e | HMIRROR_SD_BUSY);
	}
	a->dma = hmdev_dma_allowed(dev);
}

void hmdev_access_end(struct hmdev *dev, struct hmdev_access *a)
{
	if (dev->sd)
		hm_store_rel(&dev->sd->dev_seen[a->q], dev->sd_seen[a->q]);
	pthread_rwlock_unlock(&dev->inval_lock);
}

unsigned hmdev_tlb_count(struct hmdev *dev, int ctx)
{
	struct hmdev_tlb *t = &dev->tlb;
	unsigned i, n = 0;

	pthread_mutex_lock(&t->mu);
	for (i = 0; i < t->n; i++)
		if (t->e[i].key && (ctx < 0 || key_ctx(t->e[i].key) == (unsigned)ctx))
			n++;
	pthread_mutex_unlock(&t->mu);
	return n;
}

/* ---- context table and walker --------------------------------------- */

int hmdev_ctx_root(struct hmdev *dev, unsigned ctx, uint64_t *root)
{
	struct hmirror_ctx_entry *e;
	uint64_t r;

	if (ctx >= dev->hdr.max_contexts)
		return HMIRROR_ST_BAD_CONTEXT;
	e = &dev->ctx[ctx];
	/*
	 * The driver writes the root before VALID and clears VALID before it
	 * changes the root: a root read between two VALID reads is one the
	 * context had while it was valid.
	 */
	if (!(hm_load_acq(&e->flags) & HMIRROR_CTX_VALID))
		return HMIRROR_ST_BAD_CONTEXT;
	r = hm_load_acq(&e->pt_root);
	if (!(hm_load_acq(&e->flags) & HMIRROR_CTX_VALID))
		return HMIRROR_ST_BAD_CONTEXT;
	*root = r;
	return 0;
}

void *hmdev_phys_ptr(struct hmdev *dev, bool vram, uint64_t addr,
		     uint64_t len)
{
	return vram ? dev_mem_ptr(&dev->vram, addr, len) :
		      guest_ram_ptr(dev->ram, addr, len);
}

enum hmdev_walk hmdev_walk(struct hmdev *dev, uint64_t root, uint64_t va,
			   struct hmdev_xlate *x, uint64_t *info)
{
	uint64_t table = root, addr = 0, size = HMIRROR_PAGE_SIZE, off;
	bool writable = true, vram = false;
	uint8_t *page;
	int level;

	if (root & ~HMIRROR_PTE_ADDR_MASK) {
		*info = root;
		return HMDEV_WALK_BAD_ADDR;
	}
	for (level = (int)dev->pt_levels; level >= 1; level--) {
		const hm_u64a *t = guest_ram_ptr(dev->ram, table,
						 HMIRROR_PT_ENTRIES * sizeof(*t));
		unsigned idx = (unsigned)HMIRROR_PT_INDEX(va, level);
		uint64_t e;

		if (!t) {
			*info = table;
			return HMDEV_WALK_BAD_ADDR;
		}
		e = __atomic_load_n(&t[idx], __ATOMIC_ACQUIRE);
		if (!(e & HMIRROR_PTE_VALID))
			return HMDEV_WALK_NONE;
		if (e & dev->pte_rsvd) {
			*info = e;
			return HMDEV_WALK_BAD_PTE;
		}
		writable = writable && (e & HMIRROR_PTE_WRITE);
		addr = e & HMIRROR_PTE_ADDR_MASK;
		/* device memory: 4 KiB leaves only */
		vram = e & HMIRROR_PTE_VRAM;
		if (vram && (level != 1 || (e & HMIRROR_PTE_HUGE))) {
			*info = e;
			return HMDEV_WALK_BAD_PTE;
		}
		if (e & HMIRROR_PTE_HUGE) {
			if (level != 2 || (addr & (HMIRROR_HUGE_SIZE - 1))) {
				*info = e;
				return HMDEV_WALK_BAD_PTE;
			}
			size = HMIRROR_HUGE_SIZE;
			break;
		}
		table = addr;
	}
	page = hmdev_phys_ptr(dev, vram, addr, size);
	if (!page) {
		*info = addr;	/* vram: the offset */
		return HMDEV_WALK_BAD_ADDR;
	}
	off = va & (size - 1);
	x->host = page + off;
	x->gpa = addr + off;
	x->avail = size - off;
	x->writable = writable;
	x->huge = size == HMIRROR_HUGE_SIZE;
	x->vram = vram;
	return HMDEV_WALK_OK;
}

int hmdev_translate(struct hmdev *dev, const struct hmdev_access *a,
		    unsigned ctx, uint64_t va, unsigned access,
		    struct hmdev_xlate *x, uint64_t *info)
{
	bool write = access & HMIRROR_ACCESS_WRITE, dma = a->dma;
	struct hmdev_tlb *t = &dev->tlb;
	struct hmdev_tlbe *e;
	uint64_t root, size, off;
	int huge, st;

	pthread_mutex_lock(&t->mu);
	for (huge = 0; huge < 2; huge++) {
		e = tlb_find(t, tlb_key(ctx, va, huge));
		if (!e || (write && !e->writable))
			continue;
		if (!dma && !e->vram)
			break;		/* guest RAM: HOLD */
		e->stamp = ++t->clock;
		size = LEAF_SIZE(huge);
		off = va & (size - 1);
		x->host = e->host + off;
		x->gpa = e->gpa + off;
		x->avail = size - off;
		x->writable = e->writable;
		x->huge = huge;
		x->vram = e->vram;
		pthread_mutex_unlock(&t->mu);
		HMDEV_CNT_ADD(dev, tlb_hits, 1);
		return HMIRROR_ST_OK;
	}
	pthread_mutex_unlock(&t->mu);
	if (!dma)
		return HMDEV_ST_HOLD;	/* a walk reads guest RAM */
	HMDEV_CNT_ADD(dev, tlb_misses, 1);
	HMDEV_CNT_ADD(dev, pages_walked, 1);

	st = hmdev_ctx_root(dev, ctx, &root);
	if (st) {
		*info = ctx;
		return st;
	}
	switch (hmdev_walk(dev, root, va, x, info)) {
	case HMDEV_WALK_OK:
		break;
	case HMDEV_WALK_NONE:
		return HMIRROR_ST_FAULT;
	case HMDEV_WALK_BAD_PTE:
		return HMIRROR_ST_BAD_PTE;
	default:
		return HMIRROR_ST_BAD_ADDRESS;
	}
	if (write && !x->writable)
		return HMIRROR_ST_FAULT;	/* permission: not cached */
	size = LEAF_SIZE(x->huge);
	off = va & (size - 1);
	if (dev->hook)
		dev->hook(dev->hook_opaque, a->q, HMDEV_HOOK_WALKED);
	pthread_mutex_lock(&t->mu);
	if (a->epoch == dev->sd_done)
		tlb_insert(t, tlb_key(ctx, va, x->huge), x->host - off,
			   x->gpa - off, x->writable, x->vram);
	pthread_mutex_unlock(&t->mu);
	return HMIRROR_ST_OK;
}

uint32_t hmdev_fault_run(struct hmdev *dev, unsigned ctx, uint64_t addr,
			 uint64_t end, unsigned access)
{
	bool write = access & HMIRROR_ACCESS_WRITE;
	struct hmdev_xlate x;
	uint64_t root, va, info, walked = 0;
	uint32_t n = 0;

	if (end > dev->va_end)
		end = dev->va_end;
	if (!hmdev_ctx_root(dev, ctx, &root)) {
		for (va = addr; va < end && n < HMIRROR_FAULT_NPAGES_MAX;
		     va += HMIRROR_PAGE_SIZE) {
			enum hmdev_walk w = hmdev_walk(dev, root, va, &x, &info);

			walked++;
			if (w == HMDEV_WALK_NONE ||
			    (w == HMDEV_WALK_OK && write && !x.writable))
				n++;
			else
				break;
		}
	}
	/* The page that faulted is in the run even if it changed since. */
	if (!n)
		n = 1;
	hmdev_tlb_drop(dev, ctx, addr, addr + (uint64_t)n * HMIRROR_PAGE_SIZE);
	HMDEV_CNT_ADD(dev, pages_walked, walked);
	return n;
}
