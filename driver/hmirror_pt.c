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

/**
 * DOC: Device page tables
 *
 * Four-level tables (five when the device's ``va_bits`` is 57) in
 * DMA-coherent pages: the device reads entries while the CPU writes them, so
 * there is no ownership to hand back and forth.  Tables are allocated with
 * ``GFP_KERNEL`` *before* the page-table lock is taken
 * (``hmirror_pt_cache_fill``); under the lock, entries are single 64-bit
 * stores and a new table is made visible (``dma_wmb``) before it is linked.
 * A fill reserves a table for every level the range may need, yet most
 * faults need none, and an invalidation that empties a table unlinks it:
 * each context keeps up to ``HMIRROR_PT_SPARE_MAX`` empty tables (unused
 * reservations, and unlinked ones once the device TLB is flushed) for its
 * next fills, so the common fault allocates nothing (``tables_allocated``
 * in the context's counters).  Allocating and zeroing three or four
 * tables per fault was half of a single-page fault's service time.  The
 * spares (at most 12 tables, about 96 KiB with their ``ptr`` arrays) stay
 * with the context until it is destroyed; there is no shrinker.
 * Beside each table the driver keeps, per entry, the child table or the
 * mapped page.
 *
 * Every leaf holds a reference on the page it maps (one on the folio for a
 * 2 MiB leaf), taken at commit and dropped only when the entry is cleared
 * *and* the device TLB flushed.  This is what the notifier contract asks of
 * a secondary MMU that cannot always flush before a page is freed (see
 * Non-blockable invalidations); it is not a pin: every invalidation drops
 * it, so migration, KSM, reclaim and THP splits proceed as without a device.
 * Whether an entry already maps the page a fault wants is decided by
 * comparing pages, never DMA addresses (an IOMMU gives every mapping a new
 * one).  User pages are mapped ``DMA_BIDIRECTIONAL`` for as long as the
 * device may reach them; a platform on which such a mapping would need CPU
 * syncs (bounce buffering, a non-coherent device) cannot share pages with
 * the device, and the fault fails with ``-EIO`` (logged once).
 *
 * Clearing collects cleared leaves and unlinked tables in a "zap" that is
 * released only after the device TLB was flushed, so the device never walks
 * freed memory or reaches a freed page.  Read faults map read-only, write
 * faults writable.
 *
 * A fault maps 2 MiB leaves where it can: a 2 MiB aligned part of the
 * committed range whose 512 pages are one folio, physically contiguous from
 * a 2 MiB boundary (a THP, a hugetlbfs page), becomes one level-2 ``HUGE``
 * entry with one 2 MiB DMA mapping, unless 4 KiB entries are already there
 * (a leaf table, even empty, may still be walked by the device until a
 * flush, so it is only ever removed through a zap).  Each address still
 * reaches exactly the page the CPU maps there.  An invalidation touching any
 * part of a huge leaf clears all of it; SNAPSHOT reports such pages with
 * ``DRM_HMIRROR_SNAP_HUGE``.
 */

#define PT_SPAN(level)		(1ull << HMIRROR_PT_SHIFT(level))
#define PT_DIR_FLAGS		(HMIRROR_PTE_VALID | HMIRROR_PTE_WRITE)

/*
 * A table page is DMA-coherent memory: the device reads entries while the
 * CPU writes them, so there is no ownership to hand back and forth.  It
 * comes zeroed.
 */
static struct hmirror_pt_table *pt_table_alloc(struct device *dev)
{
	struct hmirror_pt_table *t;

	t = kzalloc(sizeof(*t), GFP_KERNEL);
	if (!t)
		return NULL;
	t->ptr = kcalloc(HMIRROR_PT_ENTRIES, sizeof(*t->ptr), GFP_KERNEL);
	if (!t->ptr)
		goto err_table;
	t->entries = dma_alloc_coherent(dev, PAGE_SIZE, &t->dma, GFP_KERNEL);
	if (!t->entries)
		goto err_ptr;
	INIT_LIST_HEAD(&t->free_link);
	return t;

err_ptr:
	kfree(t->ptr);
err_table:
	kfree(t);
	return NULL;
}

static void pt_table_free(struct device *dev, struct hmirror_pt_table *t)
{
	dma_free_coherent(dev, PAGE_SIZE, t->entries, t->dma);
	kfree(t->ptr);
	kfree(t);
}

static size_t pt_leaf_size(const struct hmirror_pt_leaf *l)
{
	return l->huge ? HMIRROR_HUGE_SIZE : PAGE_SIZE;
}

/* The device no longer reaches @l: drop its mapping and page reference. */
static void pt_leaf_release(struct device *dev, const struct hmirror_pt_leaf *l)
{
	if (!l->vram)
		dma_unmap_page(dev, l->dma, pt_leaf_size(l), DMA_BIDIRECTIONAL);
	folio_put(page_folio(l->page));
}

/**
 * hmirror_pt_init - allocate an empty page table
 * @pt: page table
 * @dev: device that walks it
 * @va_bits: the device's virtual address width (48 or 57)
 * @huge: the device takes 2 MiB leaves
 *
 * Return: 0 or -ENOMEM.
 */
int hmirror_pt_init(struct hmirror_pt *pt, struct device *dev,
		    unsigned int va_bits, bool huge)
{
	mutex_init(&pt->lock);
	pt->dev = dev;
	pt->levels = hmirror_pt_levels(va_bits);
	pt->va_end = 1ull << va_bits;
	pt->huge = huge;
	pt->mapped = 0;
	pt->vram_pfn = 0;
	pt->vram_pages = 0;
	spin_lock_init(&pt->spare_lock);
	INIT_LIST_HEAD(&pt->spare);
	pt->nspare = 0;
	pt->spare_max = HMIRROR_PT_SPARE_MAX;
	pt->root = pt_table_alloc(dev);
	if (!pt->root)
		return -ENOMEM;
	atomic64_set(&pt->tables_allocated, 1);
	pt->tables = 1;
	return 0;
}

/**
 * hmirror_pt_set_vram - the device memory the table may map
 * @pt: page table, before its first map
 * @first_pfn: pfn of the DEVICE_PRIVATE page standing for offset 0
 * @npages: pages of device memory
 */
void hmirror_pt_set_vram(struct hmirror_pt *pt, unsigned long first_pfn,
			 unsigned long npages)
{
	pt->vram_pfn = first_pfn;
	pt->vram_pages = npages;
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
 * @pt: page table the tables are for
 * @c: cache, empty or left over from an earlier fill
 * @start: first address, page aligned
 * @end: end address, at most HMIRROR_PT_MAX_BATCH pages after @start
 *
 * Called without the page-table lock (the allocation may reclaim, and
 * reclaim calls the notifier, which takes that lock).  The worst case is
 * reserved (a new table at every level), taken first from the spare
 * tables earlier drains and zaps kept: a fault usually allocates nothing.
 *
 * Return: 0, -E2BIG for too large a range, -ENOMEM.
 */
int hmirror_pt_cache_fill(struct hmirror_pt *pt, struct hmirror_pt_cache *c,
			  u64 start, u64 end)
{
	unsigned int want = 0;
	int level;

	if (end <= start || (end - start) >> PAGE_SHIFT > HMIRROR_PT_MAX_BATCH)
		return -E2BIG;
	/* Leaf tables (level 1) and directories (levels 2 .. levels - 1). */
	for (level = 1; level < pt->levels; level++)
		want += pt_tables_spanned(start, end, level);
	if (want > HMIRROR_PT_CACHE)
		return -E2BIG;
	if (c->n < want) {
		spin_lock(&pt->spare_lock);
		while (c->n < want && pt->nspare) {
			struct hmirror_pt_table *t;

			t = list_first_entry(&pt->spare, struct hmirror_pt_table,
					     free_link);
			list_del_init(&t->free_link);
			pt->nspare--;
			c->t[c->n++] = t;
		}
		spin_unlock(&pt->spare_lock);
	}
	while (c->n < want) {
		struct hmirror_pt_table *t = pt_table_alloc(pt->dev);

		if (!t)
			return -ENOMEM;
		atomic64_inc(&pt->tables_allocated);
		c->t[c->n++] = t;
	}
	return 0;
}

/*
 * An empty table no device can reach any more (never linked, or unlinked
 * and the device TLB flushed since) is kept for the next fill while there
 * is room, else freed.  Empty means zeroed: every entry set was counted in
 * @used and is cleared before @used drops.
 */
static void pt_table_recycle(struct hmirror_pt *pt, struct hmirror_pt_table *t)
{
	bool keep;

	spin_lock(&pt->spare_lock);
	keep = !t->used && pt->nspare < pt->spare_max;
	if (keep) {
		list_add(&t->free_link, &pt->spare);
		pt->nspare++;
	}
	spin_unlock(&pt->spare_lock);
	if (!keep)
		pt_table_free(pt->dev, t);
}

/**
 * hmirror_pt_cache_drain - give back the tables a map did not use
 * @pt: page table the tables are for
 * @c: cache, emptied
 *
 * No device has seen them: they are kept for the next fill while there is
 * room (HMIRROR_PT_SPARE_MAX), the rest are freed.
 */
void hmirror_pt_cache_drain(struct hmirror_pt *pt, struct hmirror_pt_cache *c)
{
	while (c->n)
		pt_table_recycle(pt, c->t[--c->n]);
}

/* Free the spare tables; later drains free theirs at once. */
static void pt_spare_free(struct hmirror_pt *pt)
{
	struct hmirror_pt_table *t, *tmp;
	LIST_HEAD(spare);

	spin_lock(&pt->spare_lock);
	list_splice_init(&pt->spare, &spare);
	pt->nspare = 0;
	pt->spare_max = 0;
	spin_unlock(&pt->spare_lock);
	list_for_each_entry_safe(t, tmp, &spare, free_link)
		pt_table_free(pt->dev, t);
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

	if (!t)
		return -ENODEV;
	for (level = pt->levels; level > leaf_level; level--) {
		unsigned int idx = HMIRROR_PT_INDEX(va, level);

		if (READ_ONCE(t->entries[idx]) & HMIRROR_PTE_HUGE)
			return -EEXIST;
		if (!t->ptr[idx]) {
			struct hmirror_pt_table *n;

			if (!c->n)
				return -ENOMEM;
			n = c->t[--c->n];
			t->ptr[idx] = n;
			t->used++;
			pt->tables++;
			/* The zeroed table is visible before the link. */
			dma_wmb();
			WRITE_ONCE(t->entries[idx], n->dma | PT_DIR_FLAGS);
		}
		t = t->ptr[idx];
	}
	*out = t;
	return 0;
}

/*
 * Write a leaf mapping @page (@size bytes) into entry @idx of @t.  An entry
 * already mapping @page is kept (gaining write access if asked); one
 * mapping another page means an invalidation was missed: -EEXIST.  The
 * table takes its own reference on the page: the device may reach it
 * until the entry is cleared *and* the device TLB flushed.
 */
static int pt_set_leaf(struct hmirror_pt *pt, struct hmirror_pt_table *t,
		       unsigned int idx, struct page *page, size_t size,
		       u64 flags, bool write)
{
	u64 old = READ_ONCE(t->entries[idx]);
	unsigned long vram_index;
	dma_addr_t dma;

	if (old & HMIRROR_PTE_VALID) {
		/* Same page: compare pages, not DMA addresses (IOMMU remaps). */
		if (t->ptr[idx] != page ||
		    (old & HMIRROR_PTE_HUGE) != (flags & HMIRROR_PTE_HUGE))
			return -EEXIST;
		if (write && !(old & HMIRROR_PTE_WRITE))
			WRITE_ONCE(t->entries[idx], old | HMIRROR_PTE_WRITE);
		return 0;
	}
	/*
	 * A page of this device's memory (DEVICE_PRIVATE): the entry holds
	 * its offset in device memory; there is nothing to DMA-map.
	 */
	if (is_device_private_page(page)) {
		vram_index = page_to_pfn(page) - pt->vram_pfn;
		if (size != PAGE_SIZE || vram_index >= pt->vram_pages)
			return -EIO;
		folio_get(page_folio(page));
		t->ptr[idx] = page;
		WRITE_ONCE(t->entries[idx],
			   ((u64)vram_index << PAGE_SHIFT) | HMIRROR_PTE_VRAM |
			   HMIRROR_PTE_VALID | (write ? HMIRROR_PTE_WRITE : 0));
		t->used++;
		pt->mapped++;
		return 0;
	}
	dma = dma_map_page(pt->dev, page, 0, size, DMA_BIDIRECTIONAL);
	if (dma_mapping_error(pt->dev, dma))
		return -ENOMEM;
	/*
	 * The device and the CPU share the page for as long as it is mapped:
	 * a mapping that needs CPU syncs (bounce buffers, a non-coherent
	 * device) cannot be shared like that.
	 */
	if (dma_need_sync(pt->dev, dma)) {
		dma_unmap_page(pt->dev, dma, size, DMA_BIDIRECTIONAL);
		dev_warn_once(pt->dev, "DMA to user pages needs CPU syncs here (bounce buffering?): cannot mirror\n");
		return -EIO;
	}
	/* The device needs a huge leaf's address aligned like its size. */
	if (!IS_ALIGNED(dma, size)) {
		dma_unmap_page(pt->dev, dma, size, DMA_BIDIRECTIONAL);
		return -EBUSY;
	}
	folio_get(page_folio(page));
	t->ptr[idx] = page;
	WRITE_ONCE(t->entries[idx], dma | flags | HMIRROR_PTE_VALID |
				    (write ? HMIRROR_PTE_WRITE : 0));
	t->used++;
	pt->mapped += size >> PAGE_SHIFT;
	return 0;
}

/**
 * hmirror_pt_map - map a run of pages for the device, 4 KiB entries
 * @pt: page table, lock held
 * @c: tables allocated by hmirror_pt_cache_fill() for a range holding the run
 * @va: user virtual address of the first page, page aligned; the run ends
 *	below @pt->va_end
 * @pages: the pages the CPU maps from @va; the caller's references stay
 *	the caller's (the table takes its own)
 * @n: number of pages
 * @write: give the device write access
 * @mapped: out: pages mapped from @va (all of them on success, those
 *	before the failing one otherwise)
 *
 * The tables are walked once per leaf table, not per page.  An entry
 * already mapping its page is kept (and gains write access if asked); an
 * entry mapping another page means an invalidation was missed by the
 * caller and is refused with -EEXIST.
 *
 * Return: 0, -EEXIST, -ENOMEM, -EIO (the platform cannot share the page).
 */
int hmirror_pt_map(struct hmirror_pt *pt, struct hmirror_pt_cache *c,
		   u64 va, struct page **pages, unsigned long n, bool write,
		   unsigned long *mapped)
{
	struct hmirror_pt_table *t = NULL;
	unsigned long i;
	int ret = 0;

	lockdep_assert_held(&pt->lock);
	for (i = 0; i < n; i++, va += PAGE_SIZE) {
		unsigned int idx = HMIRROR_PT_INDEX(va, 1);

		/* A new leaf table at every 2 MiB boundary. */
		if (!t || !idx) {
			ret = pt_walk_alloc(pt, c, va, 1, &t);
			if (ret)
				break;
		}
		ret = pt_set_leaf(pt, t, idx, pages[i], PAGE_SIZE, 0, write);
		if (ret)
			break;
	}
	*mapped = i;
	return ret;
}

/**
 * hmirror_pt_map_huge - map 2 MiB of one folio at once
 * @pt: page table, lock held
 * @c: tables allocated by hmirror_pt_cache_fill() for a range holding @va
 * @va: user virtual address, 2 MiB aligned
 * @head: first of the 512 pages of one folio the CPU maps from @va
 * @write: give the device write access
 *
 * Return: 0; -EBUSY when the device takes no 2 MiB leaves, 4 KiB entries
 * exist there or the DMA address is not 2 MiB aligned (the caller maps
 * 4 KiB pages instead); -EEXIST, -ENOMEM, -EIO as hmirror_pt_map().
 */
int hmirror_pt_map_huge(struct hmirror_pt *pt, struct hmirror_pt_cache *c,
			u64 va, struct page *head, bool write)
{
	struct hmirror_pt_table *t;
	unsigned int idx = HMIRROR_PT_INDEX(va, 2);
	u64 e;
	int ret;

	lockdep_assert_held(&pt->lock);
	if (!pt->huge)
		return -EBUSY;
	ret = pt_walk_alloc(pt, c, va, 2, &t);
	if (ret)
		return ret;
	/*
	 * A leaf table, even empty, may still be walked by the device until
	 * its TLB is flushed: it goes only through a zap, not here.
	 */
	e = READ_ONCE(t->entries[idx]);
	if ((e & HMIRROR_PTE_VALID) && !(e & HMIRROR_PTE_HUGE))
		return -EBUSY;
	return pt_set_leaf(pt, t, idx, head, HMIRROR_HUGE_SIZE,
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
	if (va >= pt->va_end || !t)
		return 0;
	for (level = pt->levels; level > 1; level--) {
		u64 e = READ_ONCE(t->entries[HMIRROR_PT_INDEX(va, level)]);

		if (level == 2 && (e & HMIRROR_PTE_HUGE))
			return e;
		t = t->ptr[HMIRROR_PT_INDEX(va, level)];
		if (!t)
			return 0;
	}
	return READ_ONCE(t->entries[HMIRROR_PT_INDEX(va, 1)]);
}

static bool pt_is_leaf(int level, u64 e)
{
	return level == 1 || (level == 2 && (e & HMIRROR_PTE_HUGE));
}

static bool pt_table_empty_in(struct hmirror_pt_table *t, int level, u64 base,
			      u64 start, u64 end)
{
	unsigned int idx = HMIRROR_PT_INDEX(max(start, base), level);
	u64 va = base + ((u64)idx << HMIRROR_PT_SHIFT(level));

	for (; idx < HMIRROR_PT_ENTRIES && va < end;
	     idx++, va += PT_SPAN(level)) {
		u64 e = READ_ONCE(t->entries[idx]);

		if (pt_is_leaf(level, e)) {
			if (e & HMIRROR_PTE_VALID)
				return false;
		} else if (t->ptr[idx] &&
			   !pt_table_empty_in(t->ptr[idx], level - 1, va,
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
	end = min(end, pt->va_end);
	if (start >= end || !pt->mapped || !pt->root)
		return true;
	return pt_table_empty_in(pt->root, pt->levels, 0, start, end);
}

int hmirror_pt_zap_init(struct hmirror_pt_zap *z, unsigned int max)
{
	z->leaf = kcalloc(max, sizeof(*z->leaf), GFP_KERNEL);
	if (!z->leaf)
		return -ENOMEM;
	z->max = max;
	z->n = 0;
	INIT_LIST_HEAD(&z->tables);
	return 0;
}

void hmirror_pt_zap_destroy(struct hmirror_pt_zap *z)
{
	kfree(z->leaf);
	z->leaf = NULL;
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
	unsigned int idx = HMIRROR_PT_INDEX(max(start, base), level);
	u64 va = base + ((u64)idx << HMIRROR_PT_SHIFT(level));

	for (; idx < HMIRROR_PT_ENTRIES && va < end;
	     idx++, va += PT_SPAN(level)) {
		u64 e = READ_ONCE(t->entries[idx]);

		if (pt_is_leaf(level, e)) {
			bool huge = level == 2;

			if (!(e & HMIRROR_PTE_VALID))
				continue;
			if (z->n == z->max) {
				*next = max(va, start);
				return false;
			}
			/* A huge leaf goes whole, even if the range covers part. */
			WRITE_ONCE(t->entries[idx], 0);
			z->leaf[z->n++] = (struct hmirror_pt_leaf){
				.dma = e & HMIRROR_PTE_ADDR_MASK,
				.page = t->ptr[idx],
				.huge = huge,
				.vram = e & HMIRROR_PTE_VRAM,
			};
			t->ptr[idx] = NULL;
			t->used--;
			pt->mapped -= huge ? HMIRROR_PT_ENTRIES : 1;
		} else {
			struct hmirror_pt_table *child = t->ptr[idx];
			bool done;

			if (!child)
				continue;
			done = pt_clear_table(pt, child, level - 1, va,
					      start, end, z, next);
			if (!child->used) {
				WRITE_ONCE(t->entries[idx], 0);
				t->ptr[idx] = NULL;
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
 * caller invalidates the device TLB, calls hmirror_pt_zap_release() (or
 * hmirror_pt_zap_bury()) and continues from there.
 */
u64 hmirror_pt_clear(struct hmirror_pt *pt, u64 start, u64 end,
		     struct hmirror_pt_zap *z)
{
	u64 limit = min(end, pt->va_end);
	u64 next;

	lockdep_assert_held(&pt->lock);
	if (start >= limit || !pt->root)
		return end;
	if (!pt_clear_table(pt, pt->root, pt->levels, 0, start, limit, z,
			    &next))
		return next;
	return end;
}

/**
 * hmirror_pt_zap_release - release what hmirror_pt_clear() collected
 * @pt: page table
 * @z: zap, emptied
 *
 * Only once the device TLB no longer holds the cleared entries, or the
 * device is known to do no more DMA.
 */
void hmirror_pt_zap_release(struct hmirror_pt *pt, struct hmirror_pt_zap *z)
{
	struct hmirror_pt_table *t, *tmp;
	unsigned int i;

	for (i = 0; i < z->n; i++)
		pt_leaf_release(pt->dev, &z->leaf[i]);
	z->n = 0;
	/* Unlinked tables are empty: the next faults may use them again. */
	list_for_each_entry_safe(t, tmp, &z->tables, free_link) {
		list_del(&t->free_link);
		pt_table_recycle(pt, t);
	}
}

/**
 * struct hmirror_pt_grave - leaves kept for a device that may still reach
 * them
 * @link: in hmirror_pt_graveyard.leaves
 * @n: entries in @leaf
 * @leaf: the leaves
 */
struct hmirror_pt_grave {
	struct list_head link;
	unsigned int n;
	struct hmirror_pt_leaf leaf[] __counted_by(n);
};

void hmirror_pt_graveyard_init(struct hmirror_pt_graveyard *g)
{
	spin_lock_init(&g->lock);
	INIT_LIST_HEAD(&g->leaves);
	INIT_LIST_HEAD(&g->tables);
	g->pages = 0;
	g->leaked = 0;
}

/**
 * hmirror_pt_zap_bury - keep what a zap collected instead of releasing it
 * @z: zap
 * @g: graveyard of a device not known to be quiescent
 *
 * Pages stay referenced and DMA-mapped, tables allocated, until
 * hmirror_pt_graveyard_close().  Never sleeps (notifier context); when
 * the record cannot be allocated the leaves are leaked: never released,
 * which is safe, and counted.
 *
 * Return: true, @z emptied; false when @g is closed (the device proved it
 * stopped): @z is untouched and the caller releases it.
 */
bool hmirror_pt_zap_bury(struct hmirror_pt_zap *z,
			 struct hmirror_pt_graveyard *g)
{
	struct hmirror_pt_grave *grave = NULL;
	unsigned long pages = 0;
	unsigned int i, kept;

	/*
	 * Device memory is the device's own: a device that still writes it
	 * reaches nothing of the system's, and a dead device's memory is
	 * never handed out again.  Its pages go now, so that removal does
	 * not wait for them forever.
	 */
	for (i = kept = 0; i < z->n; i++) {
		if (z->leaf[i].vram)
			folio_put(page_folio(z->leaf[i].page));
		else
			z->leaf[kept++] = z->leaf[i];
	}
	z->n = kept;
	for (i = 0; i < z->n; i++)
		pages += z->leaf[i].huge ? HMIRROR_PT_ENTRIES : 1;
	if (z->n) {
		grave = kmalloc(struct_size(grave, leaf, z->n),
				GFP_NOWAIT | __GFP_NOWARN);
		if (grave) {
			grave->n = z->n;
			memcpy(grave->leaf, z->leaf, z->n * sizeof(*z->leaf));
		}
	}
	spin_lock(&g->lock);
	if (g->closed) {
		spin_unlock(&g->lock);
		kfree(grave);
		return false;
	}
	if (grave) {
		list_add_tail(&grave->link, &g->leaves);
		g->pages += pages;
	} else {
		g->leaked += pages;
	}
	list_splice_tail_init(&z->tables, &g->tables);
	spin_unlock(&g->lock);
	z->n = 0;
	return true;
}

/**
 * hmirror_pt_graveyard_pages - pages kept (or leaked) for a device that may
 * still reach them
 * @g: graveyard
 */
unsigned long hmirror_pt_graveyard_pages(struct hmirror_pt_graveyard *g)
{
	unsigned long n;

	spin_lock(&g->lock);
	n = g->pages + g->leaked;
	spin_unlock(&g->lock);
	return n;
}

/**
 * hmirror_pt_graveyard_close - the device proved it stopped: release all
 * @g: graveyard; later burials are refused (released by their callers)
 * @dev: the device everything was mapped for
 */
void hmirror_pt_graveyard_close(struct hmirror_pt_graveyard *g,
				struct device *dev)
{
	struct hmirror_pt_grave *grave, *gtmp;
	struct hmirror_pt_table *t, *ttmp;
	LIST_HEAD(leaves);
	LIST_HEAD(tables);
	unsigned int i;

	spin_lock(&g->lock);
	g->closed = true;
	list_splice_init(&g->leaves, &leaves);
	list_splice_init(&g->tables, &tables);
	g->pages = 0;
	spin_unlock(&g->lock);
	list_for_each_entry_safe(grave, gtmp, &leaves, link) {
		for (i = 0; i < grave->n; i++)
			pt_leaf_release(dev, &grave->leaf[i]);
		kfree(grave);
	}
	list_for_each_entry_safe(t, ttmp, &tables, free_link) {
		list_del(&t->free_link);
		pt_table_free(dev, t);
	}
}

/**
 * hmirror_pt_fini - free the whole table, root included
 * @pt: page table no device can walk any more (context disabled and its TLB
 *	flushed), or one a dead device might still walk
 * @g: NULL when the device cannot reach anything any more; else the
 *	graveyard of a device not known to be quiescent, which keeps it all
 *	unless it is closed
 *
 * Afterwards @pt is empty: lookups find nothing and maps fail (-ENODEV),
 * so late notifier calls and faults on a context whose device went away
 * are harmless.  Idempotent.
 */
void hmirror_pt_fini(struct hmirror_pt *pt, struct hmirror_pt_graveyard *g)
{
	struct hmirror_pt_leaf leaf[32];
	struct hmirror_pt_zap z = {
		.leaf = leaf,
		.max = ARRAY_SIZE(leaf),
	};
	u64 next = 0;

	pt_spare_free(pt);
	if (!pt->root)
		return;
	INIT_LIST_HEAD(&z.tables);
	mutex_lock(&pt->lock);
	do {
		next = hmirror_pt_clear(pt, next, pt->va_end, &z);
		if (next >= pt->va_end) {
			list_add_tail(&pt->root->free_link, &z.tables);
			pt->root = NULL;
			pt->tables = 0;
		}
		if (!g || !hmirror_pt_zap_bury(&z, g))
			hmirror_pt_zap_release(pt, &z);
	} while (next < pt->va_end);
	mutex_unlock(&pt->lock);
}
