// SPDX-License-Identifier: GPL-2.0
/*
 * hmirror: device page tables.
 *
 * The device walks these tables in guest RAM while the CPU edits them, so
 * every entry is written with a single 64-bit store, a new table is zeroed
 * and made visible before it is linked, and nothing the device might still
 * be using (a cleared page, an unlinked table) is released before the
 * caller has invalidated the device TLB: clearing fills a "zap" that is
 * released afterwards.
 *
 * Tables are allocated with GFP_KERNEL before the page-table lock is taken
 * (struct hmirror_pt_cache): the mmu notifier takes that lock from reclaim.
 */
#include <linux/dma-mapping.h>
#include <linux/gfp.h>
#include <linux/lockdep.h>
#include <linux/mm.h>
#include <linux/slab.h>

#include "hmirror_dev.h"
#include "hmirror_pt.h"

#define PT_IDX(va, level)	(((va) >> HMIRROR_PT_SHIFT(level)) & (HMIRROR_PT_ENTRIES - 1))
#define PT_SPAN(level)		(1ull << HMIRROR_PT_SHIFT(level))
#define PT_DIR_FLAGS		(HMIRROR_PTE_VALID | HMIRROR_PTE_WRITE)

static struct hmirror_pt_table *pt_table_alloc(bool directory)
{
	struct hmirror_pt_table *t;
	struct page *page;

	t = kzalloc(sizeof(*t), GFP_KERNEL);
	if (!t)
		return NULL;
	page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	if (!page)
		goto err_table;
	t->entries = page_address(page);
	if (directory) {
		t->child = kcalloc(HMIRROR_PT_ENTRIES, sizeof(*t->child),
				   GFP_KERNEL);
		if (!t->child)
			goto err_page;
	}
	INIT_LIST_HEAD(&t->free_link);
	return t;

err_page:
	__free_page(page);
err_table:
	kfree(t);
	return NULL;
}

/* Map for the device; the table is zero, so no sync is needed after. */
static int pt_table_map(struct device *dev, struct hmirror_pt_table *t)
{
	t->dma = dma_map_page(dev, virt_to_page(t->entries), 0, PAGE_SIZE,
			      DMA_TO_DEVICE);
	return dma_mapping_error(dev, t->dma) ? -ENOMEM : 0;
}

static void pt_table_free(struct device *dev, struct hmirror_pt_table *t)
{
	if (dev && t->dma)
		dma_unmap_page(dev, t->dma, PAGE_SIZE, DMA_TO_DEVICE);
	free_page((unsigned long)t->entries);
	kfree(t->child);
	kfree(t);
}

/**
 * hmirror_pt_init - allocate an empty page table
 * @pt: page table
 * @dev: device that walks it
 *
 * Return: 0 or -ENOMEM.
 */
int hmirror_pt_init(struct hmirror_pt *pt, struct device *dev)
{
	int ret;

	mutex_init(&pt->lock);
	pt->dev = dev;
	pt->mapped = 0;
	pt->root = pt_table_alloc(true);
	if (!pt->root)
		return -ENOMEM;
	ret = pt_table_map(dev, pt->root);
	if (ret) {
		pt_table_free(NULL, pt->root);
		pt->root = NULL;
		return ret;
	}
	pt->tables = 1;
	return 0;
}

dma_addr_t hmirror_pt_root_dma(struct hmirror_pt *pt)
{
	return pt->root->dma;
}

/* Upper bound of tables at @level that [start, end) can need. */
static unsigned int pt_tables_spanned(u64 start, u64 end, int level)
{
	u64 shift = HMIRROR_PT_SHIFT(level + 1);

	return ((end - 1) >> shift) - (start >> shift) + 1;
}

/**
 * hmirror_pt_cache_fill - allocate the tables a map of [start, end) may need
 * @c: cache, empty or left over from an earlier fill
 * @start: first address, page aligned
 * @end: end address, at most HMIRROR_PT_MAX_BATCH pages after @start
 *
 * Called without the page-table lock.  Tables are not DMA-mapped until
 * they are used.
 *
 * Return: 0, -E2BIG for too large a range, -ENOMEM.
 */
int hmirror_pt_cache_fill(struct hmirror_pt_cache *c, u64 start, u64 end)
{
	unsigned int want = 0;
	int level;

	if (end <= start || (end - start) >> PAGE_SHIFT > HMIRROR_PT_MAX_BATCH)
		return -E2BIG;
	/* Leaf tables (level 1) and directories (levels 2 and 3). */
	for (level = 1; level < HMIRROR_PT_LEVELS; level++)
		want += pt_tables_spanned(start, end, level);
	if (want > HMIRROR_PT_CACHE)
		return -E2BIG;
	while (c->n < want) {
		/* Every cached table gets a child array: any may be a directory. */
		struct hmirror_pt_table *t = pt_table_alloc(true);

		if (!t)
			return -ENOMEM;
		c->t[c->n++] = t;
	}
	return 0;
}

void hmirror_pt_cache_drain(struct hmirror_pt_cache *c)
{
	while (c->n)
		pt_table_free(NULL, c->t[--c->n]);
}

static struct hmirror_pt_table *pt_cache_take(struct hmirror_pt *pt,
					      struct hmirror_pt_cache *c,
					      bool directory)
{
	struct hmirror_pt_table *t;

	if (!c->n)
		return NULL;
	t = c->t[--c->n];
	if (pt_table_map(pt->dev, t)) {
		c->t[c->n++] = t;
		return NULL;
	}
	if (!directory) {
		kfree(t->child);
		t->child = NULL;
	}
	return t;
}

/*
 * The table at @leaf_level (1 for 4 KiB leaves, 2 for 2 MiB ones) that
 * holds @va's entry, creating directories from @c on the way.  A huge
 * leaf on the way to a 4 KiB entry is a conflict: -EEXIST.
 */
static int pt_walk_alloc(struct hmirror_pt *pt, struct hmirror_pt_cache *c,
			 u64 va, int leaf_level, struct hmirror_pt_table **out)
{
	struct hmirror_pt_table *t = pt->root;
	int level;

	for (level = HMIRROR_PT_LEVELS; level > leaf_level; level--) {
		unsigned int idx = PT_IDX(va, level);

		if (READ_ONCE(t->entries[idx]) & HMIRROR_PTE_HUGE)
			return -EEXIST;
		if (!t->child[idx]) {
			struct hmirror_pt_table *n = pt_cache_take(pt, c, level > 2);

			if (!n)
				return -ENOMEM;
			t->child[idx] = n;
			t->used++;
			pt->tables++;
			/* The zeroed table is visible before the link. */
			dma_wmb();
			WRITE_ONCE(t->entries[idx], n->dma | PT_DIR_FLAGS);
		}
		t = t->child[idx];
	}
	*out = t;
	return 0;
}

/*
 * Write a leaf mapping @page (@size bytes) into @slot of @t.  An entry
 * already mapping it is kept (gaining write access if asked); one mapping
 * something else means an invalidation was missed: -EEXIST.
 */
static int pt_set_leaf(struct hmirror_pt *pt, struct hmirror_pt_table *t,
		       u64 *slot, struct page *page, size_t size, u64 flags,
		       bool write)
{
	dma_addr_t dma;
	u64 old;

	dma = dma_map_page(pt->dev, page, 0, size, DMA_BIDIRECTIONAL);
	if (dma_mapping_error(pt->dev, dma))
		return -ENOMEM;
	/* The device needs a huge leaf's address aligned like its size. */
	if (!IS_ALIGNED(dma, size)) {
		dma_unmap_page(pt->dev, dma, size, DMA_BIDIRECTIONAL);
		return -EBUSY;
	}
	old = READ_ONCE(*slot);
	if (old & HMIRROR_PTE_VALID) {
		dma_unmap_page(pt->dev, dma, size, DMA_BIDIRECTIONAL);
		if ((old & HMIRROR_PTE_ADDR_MASK) != dma ||
		    (old & HMIRROR_PTE_HUGE) != (flags & HMIRROR_PTE_HUGE))
			return -EEXIST;
		if (write && !(old & HMIRROR_PTE_WRITE))
			WRITE_ONCE(*slot, old | HMIRROR_PTE_WRITE);
		return 0;
	}
	WRITE_ONCE(*slot, dma | flags | HMIRROR_PTE_VALID |
			  (write ? HMIRROR_PTE_WRITE : 0));
	t->used++;
	pt->mapped += size >> PAGE_SHIFT;
	return 0;
}

/**
 * hmirror_pt_map - map one page for the device
 * @pt: page table, lock held
 * @c: tables allocated by hmirror_pt_cache_fill() for a range holding @va
 * @va: user virtual address, page aligned, below 2^48
 * @page: the page the CPU maps at @va
 * @write: give the device write access
 *
 * An entry already mapping @page is kept (and gains write access if
 * asked); an entry mapping another page means an invalidation was missed
 * by the caller and is refused with -EEXIST.
 *
 * Return: 0, -EEXIST, -ENOMEM.
 */
int hmirror_pt_map(struct hmirror_pt *pt, struct hmirror_pt_cache *c,
		   u64 va, struct page *page, bool write)
{
	struct hmirror_pt_table *t;
	int ret;

	lockdep_assert_held(&pt->lock);
	ret = pt_walk_alloc(pt, c, va, 1, &t);
	if (ret)
		return ret;
	return pt_set_leaf(pt, t, &t->entries[PT_IDX(va, 1)], page, PAGE_SIZE,
			   0, write);
}

/**
 * hmirror_pt_map_huge - map 2 MiB of physically contiguous pages at once
 * @pt: page table, lock held
 * @c: tables allocated by hmirror_pt_cache_fill() for a range holding @va
 * @va: user virtual address, 2 MiB aligned
 * @head: first of the 512 contiguous pages the CPU maps from @va
 * @write: give the device write access
 *
 * Return: 0; -EBUSY when 4 KiB entries exist there or the DMA address is
 * not 2 MiB aligned (the caller maps 4 KiB pages instead); -EEXIST,
 * -ENOMEM as hmirror_pt_map().
 */
int hmirror_pt_map_huge(struct hmirror_pt *pt, struct hmirror_pt_cache *c,
			u64 va, struct page *head, bool write)
{
	struct hmirror_pt_table *t;
	unsigned int idx = PT_IDX(va, 2);
	int ret;

	lockdep_assert_held(&pt->lock);
	ret = pt_walk_alloc(pt, c, va, 2, &t);
	if (ret)
		return ret;
	/*
	 * A leaf table, even empty, may still be walked by the device until
	 * its TLB is flushed: it goes only through a zap, not here.
	 */
	if (t->child[idx])
		return -EBUSY;
	return pt_set_leaf(pt, t, &t->entries[idx], head, HMIRROR_HUGE_SIZE,
			   HMIRROR_PTE_HUGE, write);
}

/**
 * hmirror_pt_lookup - the device's view of one address
 * @pt: page table, lock held
 * @va: user virtual address
 *
 * Return: the leaf entry (0 when nothing is mapped).
 */
u64 hmirror_pt_lookup(struct hmirror_pt *pt, u64 va)
{
	struct hmirror_pt_table *t = pt->root;
	int level;

	lockdep_assert_held(&pt->lock);
	if (va >> HMIRROR_VA_BITS)
		return 0;
	for (level = HMIRROR_PT_LEVELS; level > 1; level--) {
		u64 e = READ_ONCE(t->entries[PT_IDX(va, level)]);

		if (level == 2 && (e & HMIRROR_PTE_HUGE))
			return e;
		t = t->child[PT_IDX(va, level)];
		if (!t)
			return 0;
	}
	return READ_ONCE(t->entries[PT_IDX(va, 1)]);
}

static bool pt_table_empty_in(struct hmirror_pt_table *t, int level, u64 base,
			      u64 start, u64 end)
{
	unsigned int idx = PT_IDX(max(start, base), level);
	u64 va = base + ((u64)idx << HMIRROR_PT_SHIFT(level));

	for (; idx < HMIRROR_PT_ENTRIES && va < end;
	     idx++, va += PT_SPAN(level)) {
		if (level == 1 || (level == 2 &&
				   (READ_ONCE(t->entries[idx]) & HMIRROR_PTE_HUGE))) {
			if (READ_ONCE(t->entries[idx]) & HMIRROR_PTE_VALID)
				return false;
		} else if (t->child[idx] &&
			   !pt_table_empty_in(t->child[idx], level - 1, va,
					      start, end)) {
			return false;
		}
	}
	return true;
}

/**
 * hmirror_pt_range_empty - is nothing mapped for the device in [start, end)?
 * @pt: page table, lock held
 * @start: first address
 * @end: end address
 *
 * Cost follows the tables present, so ranges never mirrored are cheap.
 */
bool hmirror_pt_range_empty(struct hmirror_pt *pt, u64 start, u64 end)
{
	lockdep_assert_held(&pt->lock);
	end = min_t(u64, end, 1ull << HMIRROR_VA_BITS);
	if (start >= end || !pt->mapped)
		return true;
	return pt_table_empty_in(pt->root, HMIRROR_PT_LEVELS, 0, start, end);
}

int hmirror_pt_zap_init(struct hmirror_pt_zap *z, unsigned int max)
{
	z->dma = kcalloc(max, sizeof(*z->dma), GFP_KERNEL);
	if (!z->dma)
		return -ENOMEM;
	z->max = max;
	z->n = 0;
	INIT_LIST_HEAD(&z->tables);
	return 0;
}

void hmirror_pt_zap_destroy(struct hmirror_pt_zap *z)
{
	kfree(z->dma);
	z->dma = NULL;
}

/*
 * Clear leaves of @t (at @level, covering addresses from @base) inside
 * [start, end).  Returns false when the zap is full; *next is then the
 * first address not cleared.
 */
static bool pt_clear_table(struct hmirror_pt *pt, struct hmirror_pt_table *t,
			   int level, u64 base, u64 start, u64 end,
			   struct hmirror_pt_zap *z, u64 *next)
{
	unsigned int idx = PT_IDX(max(start, base), level);
	u64 va = base + ((u64)idx << HMIRROR_PT_SHIFT(level));

	for (; idx < HMIRROR_PT_ENTRIES && va < end;
	     idx++, va += PT_SPAN(level)) {
		u64 e = READ_ONCE(t->entries[idx]);

		if (level == 1 || (level == 2 && (e & HMIRROR_PTE_HUGE))) {
			bool huge = level == 2;

			if (!(e & HMIRROR_PTE_VALID))
				continue;
			if (z->n == z->max) {
				*next = max(va, start);
				return false;
			}
			/* A huge leaf goes whole, even if the range covers part. */
			WRITE_ONCE(t->entries[idx], 0);
			z->dma[z->n++] = (e & HMIRROR_PTE_ADDR_MASK) |
					 (huge ? HMIRROR_ZAP_HUGE : 0);
			t->used--;
			pt->mapped -= huge ? HMIRROR_PT_ENTRIES : 1;
		} else {
			struct hmirror_pt_table *child = t->child[idx];
			bool done;

			if (!child)
				continue;
			done = pt_clear_table(pt, child, level - 1, va,
					      start, end, z, next);
			if (!child->used) {
				WRITE_ONCE(t->entries[idx], 0);
				t->child[idx] = NULL;
				t->used--;
				pt->tables--;
				list_add(&child->free_link, &z->tables);
			}
			if (!done)
				return false;
		}
	}
	return true;
}

/**
 * hmirror_pt_clear - clear device entries in [start, end)
 * @pt: page table, lock held
 * @start: first address
 * @end: end address
 * @z: collects what must be released once the device TLB is clean
 *
 * Return: @end when all is cleared, else where a full @z stopped; the
 * caller invalidates the device TLB, calls hmirror_pt_zap_release() and
 * continues from there.
 */
u64 hmirror_pt_clear(struct hmirror_pt *pt, u64 start, u64 end,
		     struct hmirror_pt_zap *z)
{
	u64 limit = min_t(u64, end, 1ull << HMIRROR_VA_BITS);
	u64 next;

	lockdep_assert_held(&pt->lock);
	if (start >= limit)
		return end;
	if (!pt_clear_table(pt, pt->root, HMIRROR_PT_LEVELS, 0, start, limit,
			    z, &next))
		return next;
	return end;
}

/**
 * hmirror_pt_zap_release - release what hmirror_pt_clear() collected
 * @pt: page table
 * @z: zap, emptied
 *
 * Only after the device TLB no longer holds the cleared entries.
 */
void hmirror_pt_zap_release(struct hmirror_pt *pt, struct hmirror_pt_zap *z)
{
	struct hmirror_pt_table *t, *tmp;
	unsigned int i;

	for (i = 0; i < z->n; i++)
		dma_unmap_page(pt->dev, z->dma[i] & ~(dma_addr_t)HMIRROR_ZAP_HUGE,
			       z->dma[i] & HMIRROR_ZAP_HUGE ? HMIRROR_HUGE_SIZE : PAGE_SIZE,
			       DMA_BIDIRECTIONAL);
	z->n = 0;
	list_for_each_entry_safe(t, tmp, &z->tables, free_link) {
		list_del(&t->free_link);
		pt_table_free(pt->dev, t);
	}
}

/**
 * hmirror_pt_fini - free the whole table
 * @pt: page table no device can walk any more (context disabled, TLB clean)
 */
void hmirror_pt_fini(struct hmirror_pt *pt)
{
	struct hmirror_pt_zap z;
	u64 next = 0;
	dma_addr_t one;

	if (!pt->root)
		return;
	/* One slot suffices: nothing is waiting on the device any more. */
	z.dma = &one;
	z.max = 1;
	z.n = 0;
	INIT_LIST_HEAD(&z.tables);
	mutex_lock(&pt->lock);
	do {
		next = hmirror_pt_clear(pt, next, 1ull << HMIRROR_VA_BITS, &z);
		hmirror_pt_zap_release(pt, &z);
	} while (next < (1ull << HMIRROR_VA_BITS));
	mutex_unlock(&pt->lock);
	pt_table_free(pt->dev, pt->root);
	pt->root = NULL;
	mutex_destroy(&pt->lock);
}
