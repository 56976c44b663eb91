// SPDX-License-Identifier: GPL-2.0
/*
 * hmirror: the device's own memory as DEVICE_PRIVATE pages; migration of
 * process pages into it and back, the device copying.
 */
#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/highmem.h>
#include <linux/ioport.h>
#include <linux/memremap.h>
#include <linux/migrate.h>
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/pagemap.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/sizes.h>
#include <drm/drm_drv.h>

#include "hmirror.h"
#include "hmirror_devmem.h"

/**
 * DOC: Device memory
 *
 * A device with ``FEAT_VRAM`` has memory of its own, which the CPU cannot
 * address.  On a kernel with ``DEVICE_PRIVATE`` the driver registers it as
 * ``MEMORY_DEVICE_PRIVATE`` pages (``memremap_pages``: one ``struct page``
 * per 4 KiB of device memory, at pfns of a free physical range; page
 * ``i`` stands for device memory offset ``i * 4096``) owned by the device.
 * Without ``DEVICE_PRIVATE`` (Debian's stock kernel) the memory is not
 * used and migration answers ``-EOPNOTSUPP``.
 *
 * *To device* (``MIGRATE`` ioctl, the compat ``MIGRATE_TO_DEV``):
 * ``migrate_vma_setup`` over each VMA, 64 pages at a time, selects the
 * range's system pages and unmaps them; the driver allocates device pages,
 * the **device copies** the data with one ``MIGRATE`` command (a table of
 * guest-physical / device-memory pairs; a page never touched copies from
 * the zero page), then ``migrate_vma_pages`` and ``migrate_vma_finalize``
 * install the device-private entries.  A page the device could not take
 * stays where it was, and so do pages that must not move: file-backed and
 * shared ones (6.12 refuses them only after the copy) and KSM pages.  6.12
 * would move a KSM page, leaving ksmd's stable tree on a page the CPU
 * cannot read; and collecting one that forked children share, even to
 * decline it, left migration entries behind on an unlocked page (kernel
 * BUG in fork and in the fault path, found by the stress), so VMAs KSM
 * may merge (``VM_MERGEABLE``) are not collected at all.  *To system*: a
 * CPU touch of a device page calls
 * ``migrate_to_ram`` (one page, the device copying back; a dead device's
 * data is gone: ``SIGBUS``); the ``MIGRATE`` ioctl does the same for a
 * range.  Device faults map device-resident pages in place (the HMM
 * backend asks ``hmm_range_fault`` for this device's private pages; the
 * GUP backend faults them back to system memory, as GUP does).  A device
 * write to a device page a fork or mprotect left read-only brings it back
 * first: ``hmm_range_fault`` never faults this device's own pages, so it
 * would hand the read-only page back for ever.
 *
 * *Full*: allocation evicts the least recently used pages (in order of
 * migration or device mapping) back to system memory with
 * ``migrate_device_range`` and tries once more, again for each later page
 * of the chunk only while evicting frees room; a page that finds none
 * stays in system memory.  A migration enters the DRM device per chunk,
 * so removal waits for the chunk in progress before freeing anything.
 * *Removal* refuses new migrations and evicts everything while the
 * device can still copy; a dead device's
 * pages come back zeroed, counted as lost, because the kernel cannot
 * unmap device memory that processes still map.
 *
 * The device's page tables hold a reference on the device pages they map
 * like on system pages; ``migrate_vma_setup`` and ``migrate_device_range``
 * start with the invalidation that drops it, so a mapped page still
 * migrates.  Device memory needs no graveyard: a dead device that still
 * writes it reaches nothing of the system's.
 */

/* Pages per migrate_vma_setup() call and per MIGRATE command. */
#define DEVMEM_CHUNK	64u

/* One page of device memory: on the free list or the LRU list. */
struct hmirror_vram_page {
	struct list_head link;
};

/**
 * struct hmirror_devmem - the device memory of one device
 * @hdev: its device
 * @pagemap: the DEVICE_PRIVATE pages
 * @res: the physical range their pfns occupy
 * @first_pfn: pfn of device memory offset 0
 * @npages: pages of device memory
 * @zero_dma: the zero page, DMA-mapped: the source of untouched pages
 * @lock: protects @free, @lru, @used and @closing (irq safe: page_free
 *	runs wherever the last reference goes)
 * @free: free pages
 * @lru: pages in use, least recently migrated or mapped first
 * @used: pages in use
 * @closing: the device is going: nothing is allocated any more
 * @vp: per page, its list link
 * @to_device: pages migrated to device memory
 * @to_system: pages migrated back
 * @evicted: of those, evicted for room or removal
 * @lost: pages returned zeroed because the device could not copy them
 */
struct hmirror_devmem {
	struct hmirror_device *hdev;
	struct dev_pagemap pagemap;
	struct resource *res;
	unsigned long first_pfn;
	unsigned long npages;
	dma_addr_t zero_dma;
	spinlock_t lock;	/* see kernel-doc above */
	struct list_head free;
	struct list_head lru;
	unsigned long used;
	bool closing;
	struct hmirror_vram_page *vp;
	atomic64_t to_device;
	atomic64_t to_system;
	atomic64_t evicted;
	atomic64_t lost;
};

/*
 * One MIGRATE command: its table, the system pages' DMA mappings, and the
 * migrate_*() arrays of the chunk (too big for the stack together).
 */
struct devmem_batch {
	struct hmirror_migrate_entry *table;
	dma_addr_t table_dma;
	dma_addr_t sys[DEVMEM_CHUNK];
	unsigned long src[DEVMEM_CHUNK];
	unsigned long dst[DEVMEM_CHUNK];
	unsigned long pfn[DEVMEM_CHUNK];
	enum dma_data_direction dir;
	unsigned int n;
};

static struct device *devmem_dev(struct hmirror_devmem *dm)
{
	return &dm->hdev->pdev->dev;
}

static struct hmirror_devmem *page_devmem(struct page *page)
{
	return container_of(page->pgmap, struct hmirror_devmem, pagemap);
}

static u64 devmem_offset(struct hmirror_devmem *dm, struct page *page)
{
	return (u64)(page_to_pfn(page) - dm->first_pfn) << PAGE_SHIFT;
}

static struct devmem_batch *batch_alloc(struct hmirror_devmem *dm,
					enum dma_data_direction dir)
{
	struct devmem_batch *b = kzalloc(sizeof(*b), GFP_KERNEL);

	if (!b)
		return NULL;
	b->table = dma_alloc_coherent(devmem_dev(dm),
				      DEVMEM_CHUNK * sizeof(*b->table),
				      &b->table_dma, GFP_KERNEL);
	if (!b->table) {
		kfree(b);
		return NULL;
	}
	b->dir = dir;
	return b;
}

static void batch_free(struct hmirror_devmem *dm, struct devmem_batch *b)
{
	dma_free_coherent(devmem_dev(dm), DEVMEM_CHUNK * sizeof(*b->table),
			  b->table, b->table_dma);
	kfree(b);
}

/* Queue one page copy; @sys is the system page's mapping to undo, or 0. */
static void batch_add(struct devmem_batch *b, u64 from, u64 to, dma_addr_t sys)
{
	b->table[b->n].from = cpu_to_le64(from);
	b->table[b->n].to = cpu_to_le64(to);
	b->sys[b->n++] = sys;
}

/* Run the copies queued, then drop the system pages' DMA mappings. */
static int batch_run(struct hmirror_devmem *dm, struct devmem_batch *b)
{
	unsigned int i;
	int ret = 0;

	if (b->n)
		ret = hmirror_hw_migrate(dm->hdev, b->table_dma, b->n);
	for (i = 0; i < b->n; i++)
		if (b->sys[i])
			dma_unmap_page(devmem_dev(dm), b->sys[i], PAGE_SIZE,
				       b->dir);
	b->n = 0;
	return ret;
}

static struct page *devmem_alloc(struct hmirror_devmem *dm)
{
	struct hmirror_vram_page *v = NULL;
	unsigned long irqflags;
	struct page *page;

	spin_lock_irqsave(&dm->lock, irqflags);
	if (!dm->closing)
		v = list_first_entry_or_null(&dm->free, struct hmirror_vram_page,
					     link);
	if (v) {
		list_del_init(&v->link);
		dm->used++;
	}
	spin_unlock_irqrestore(&dm->lock, irqflags);
	if (!v)
		return NULL;
	page = pfn_to_page(dm->first_pfn + (v - dm->vp));
	/*
	 * One reference, locked: what migrate_vma_pages() wants.  Only then
	 * on the LRU, where an eviction could otherwise take the page
	 * between its first reference and its lock.
	 */
	zone_device_page_init(page);
	spin_lock_irqsave(&dm->lock, irqflags);
	list_move_tail(&v->link, &dm->lru);
	spin_unlock_irqrestore(&dm->lock, irqflags);
	return page;
}

static void devmem_page_free(struct page *page)
{
	struct hmirror_devmem *dm = page_devmem(page);
	struct hmirror_vram_page *v = &dm->vp[page_to_pfn(page) - dm->first_pfn];
	unsigned long irqflags;

	spin_lock_irqsave(&dm->lock, irqflags);
	list_move(&v->link, &dm->free);
	dm->used--;
	spin_unlock_irqrestore(&dm->lock, irqflags);
}

/* A device page that lost its migration: unlock and free it. */
static void devmem_drop(unsigned long *mpfn)
{
	struct page *page = migrate_pfn_to_page(*mpfn);

	if (page) {
		unlock_page(page);
		put_page(page);
	}
	*mpfn = 0;
}

/*
 * System pages for the device pages migrate_*() selected in @src, copied
 * by the device, written into @dst.  @vma places the new pages (NULL:
 * eviction, no mapping known).  When the device cannot copy (@copy false,
 * or the command fails) the pages come back zeroed and count as lost if
 * @lossy, else stay in device memory.
 */
static unsigned long devmem_fill_system(struct hmirror_devmem *dm,
					struct devmem_batch *b,
					struct vm_area_struct *vma, u64 start,
					const unsigned long *src,
					unsigned long *dst, unsigned long n,
					bool lossy)
{
	struct device *dev = devmem_dev(dm);
	bool copy = !hmirror_hw_status(dm->hdev);
	unsigned long i, filled = 0;

	for (i = 0; i < n; i++) {
		struct page *spage = migrate_pfn_to_page(src[i]);
		struct page *dpage;
		dma_addr_t dma;

		dst[i] = 0;
		if (!spage || !(src[i] & MIGRATE_PFN_MIGRATE))
			continue;
		dpage = vma ? alloc_page_vma(GFP_HIGHUSER_MOVABLE, vma,
					     start + (i << PAGE_SHIFT)) :
			      alloc_page(GFP_HIGHUSER_MOVABLE);
		if (!dpage)
			continue;
		lock_page(dpage);
		dst[i] = migrate_pfn(page_to_pfn(dpage)) |
			 (src[i] & MIGRATE_PFN_WRITE);
		filled++;
		if (!copy)
			continue;
		dma = dma_map_page(dev, dpage, 0, PAGE_SIZE, DMA_FROM_DEVICE);
		if (dma_mapping_error(dev, dma)) {
			devmem_drop(&dst[i]);
			filled--;
			continue;
		}
		batch_add(b, devmem_offset(dm, spage) | HMIRROR_MIGRATE_VRAM,
			  dma, dma);
	}
	if (copy && !batch_run(dm, b))
		return filled;
	if (!lossy) {
		for (i = 0; i < n; i++)
			devmem_drop(&dst[i]);
		return 0;
	}
	for (i = 0; i < n; i++)
		if (dst[i])
			clear_highpage(migrate_pfn_to_page(dst[i]));
	atomic64_add(filled, &dm->lost);
	dev_err_ratelimited(dev, "device memory lost: %lu pages come back zeroed\n",
			    filled);
	return filled;
}

/* Pages migrate_*() selected that are really there (not holes). */
static unsigned long devmem_count_selected(const unsigned long *src,
					   unsigned long n)
{
	unsigned long i, selected = 0;

	for (i = 0; i < n; i++)
		if ((src[i] & MIGRATE_PFN_MIGRATE) && migrate_pfn_to_page(src[i]))
			selected++;
	return selected;
}

static unsigned long devmem_count_moved(const unsigned long *src,
					const unsigned long *dst,
					unsigned long n)
{
	unsigned long i, moved = 0;

	for (i = 0; i < n; i++)
		if ((src[i] & MIGRATE_PFN_MIGRATE) && dst[i])
			moved++;
	return moved;
}

/*
 * Push up to @want of the least recently used pages back to system
 * memory.  Pages being migrated (locked) are skipped.  Returns the pages
 * moved.
 */
static unsigned long devmem_evict(struct hmirror_devmem *dm, unsigned int want,
				  bool lossy)
{
	struct hmirror_vram_page *v;
	struct devmem_batch *b;
	unsigned long irqflags, moved;
	unsigned int i, n = 0;

	b = batch_alloc(dm, DMA_FROM_DEVICE);
	if (!b)
		return 0;
	want = min(want, DEVMEM_CHUNK);
	spin_lock_irqsave(&dm->lock, irqflags);
	list_for_each_entry(v, &dm->lru, link) {
		if (n == want)
			break;
		b->pfn[n++] = dm->first_pfn + (v - dm->vp);
	}
	spin_unlock_irqrestore(&dm->lock, irqflags);
	/* Not contiguous: one page at a time (each is locked and unmapped). */
	for (i = 0; i < n; i++)
		migrate_device_range(&b->src[i], b->pfn[i], 1);
	devmem_fill_system(dm, b, NULL, 0, b->src, b->dst, n, lossy);
	migrate_device_pages(b->src, b->dst, n);
	moved = devmem_count_moved(b->src, b->dst, n);
	migrate_device_finalize(b->src, b->dst, n);
	batch_free(dm, b);
	atomic64_add(moved, &dm->evicted);
	atomic64_add(moved, &dm->to_system);
	return moved;
}

/*
 * Device pages for the system pages migrate_vma_setup() selected, filled
 * by the device.  A page with no room (even after an eviction) or whose
 * copy failed stays in system memory.
 */
static int devmem_fill_device(struct hmirror_devmem *dm,
			      struct devmem_batch *b, struct migrate_vma *args)
{
	struct device *dev = devmem_dev(dm);
	bool evict = true;
	unsigned long i;
	int ret;

	for (i = 0; i < args->npages; i++) {
		unsigned long s = args->src[i];
		struct page *spage = migrate_pfn_to_page(s);
		struct page *dpage;
		dma_addr_t from;

		args->dst[i] = 0;
		if (!(s & MIGRATE_PFN_MIGRATE) ||
		    (spage && is_zone_device_page(spage)))
			continue;
		/*
		 * 6.12's migrate_vma_*() would move a KSM page too, leaving
		 * ksmd's stable tree pointing at a page the CPU cannot read
		 * (and migration entries on an unlocked folio): it stays.
		 */
		if (spage && folio_test_ksm(page_folio(spage)))
			continue;
		/* Only anonymous pages can move; spare the copy and the room. */
		if (spage && !folio_test_anon(page_folio(spage)))
			continue;
		dpage = devmem_alloc(dm);
		/* Full: evict, and again only while evicting frees room. */
		if (!dpage && evict) {
			evict = devmem_evict(dm, DEVMEM_CHUNK, false);
			if (evict)
				dpage = devmem_alloc(dm);
		}
		if (!dpage)
			continue;
		args->dst[i] = migrate_pfn(page_to_pfn(dpage));
		/* Never touched: the device copies the zero page. */
		from = dm->zero_dma;
		if (spage) {
			from = dma_map_page(dev, spage, 0, PAGE_SIZE,
					    DMA_TO_DEVICE);
			if (dma_mapping_error(dev, from)) {
				devmem_drop(&args->dst[i]);
				continue;
			}
		}
		if ((s & MIGRATE_PFN_WRITE) ||
		    (!spage && (args->vma->vm_flags & VM_WRITE)))
			args->dst[i] |= MIGRATE_PFN_WRITE;
		batch_add(b, from, devmem_offset(dm, dpage) | HMIRROR_MIGRATE_VRAM,
			  spage ? from : 0);
	}
	ret = batch_run(dm, b);
	if (ret)
		for (i = 0; i < args->npages; i++)
			devmem_drop(&args->dst[i]);
	return ret;
}

/*
 * One chunk of a migration, after migrate_vma_setup() selected its pages:
 * have the device copy them, migrate and finalize, count what moved.
 */
static int devmem_step_to_device(struct hmirror_devmem *dm,
				 struct devmem_batch *b,
				 struct migrate_vma *args, unsigned long *moved)
{
	int ret = devmem_fill_device(dm, b, args);

	migrate_vma_pages(args);
	*moved += devmem_count_moved(b->src, b->dst, args->npages);
	migrate_vma_finalize(args);
	return ret;
}

static int devmem_step_to_system(struct hmirror_devmem *dm,
				 struct devmem_batch *b,
				 struct migrate_vma *args, unsigned long *moved)
{
	unsigned long filled;

	filled = devmem_fill_system(dm, b, args->vma, args->start, b->src,
				    b->dst, args->npages, false);
	migrate_vma_pages(args);
	*moved += devmem_count_moved(b->src, b->dst, args->npages);
	migrate_vma_finalize(args);
	/* cpages counts holes too: only real pages left behind fail. */
	if (!filled && devmem_count_selected(b->src, args->npages))
		return -EIO;
	return 0;
}

/**
 * struct devmem_way - what differs between the two ways a range migrates
 * @to_device: into device memory (else back to system memory)
 * @dma: direction of the system pages' DMA mappings
 * @select: the pages migrate_vma_setup() collects
 * @step: copies one chunk
 */
struct devmem_way {
	bool to_device;
	enum dma_data_direction dma;
	unsigned long select;
	int (*step)(struct hmirror_devmem *dm, struct devmem_batch *b,
		    struct migrate_vma *args, unsigned long *moved);
};

static const struct devmem_way devmem_to_device = {
	.to_device = true,
	.dma = DMA_TO_DEVICE,
	.select = MIGRATE_VMA_SELECT_SYSTEM,
	.step = devmem_step_to_device,
};

static const struct devmem_way devmem_to_system = {
	.dma = DMA_FROM_DEVICE,
	.select = MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
	.step = devmem_step_to_system,
};

/*
 * Migrate [start, end) of @mm @way, in chunks of DEVMEM_CHUNK pages within
 * one VMA each.  Each chunk runs inside drm_dev_enter(): removal waits for
 * it before freeing device memory.  A fatal signal stops between chunks.
 */
static int devmem_migrate(struct hmirror_device *hdev, struct mm_struct *mm,
			  u64 start, u64 end, const struct devmem_way *way,
			  unsigned long *migrated)
{
	struct hmirror_devmem *dm = hdev->devmem;
	struct devmem_batch *b;
	u64 addr, next;
	int ret = 0, idx;

	*migrated = 0;
	if (!dm)
		return -EOPNOTSUPP;
	b = batch_alloc(dm, way->dma);
	if (!b)
		return -ENOMEM;
	if (!mmget_not_zero(mm)) {
		ret = -ESRCH;
		goto out_batch;
	}
	if (mmap_read_lock_killable(mm)) {
		ret = -EINTR;
		goto out_mm;
	}
	for (addr = start; addr < end; addr = next) {
		struct vm_area_struct *vma = vma_lookup(mm, addr);
		struct migrate_vma args = {
			.src = b->src,
			.dst = b->dst,
			.pgmap_owner = hdev,
			.flags = way->select,
		};

		if (!vma || !(vma->vm_flags & VM_READ)) {
			ret = -EFAULT;
			break;
		}
		next = min3(end, addr + ((u64)DEVMEM_CHUNK << PAGE_SHIFT),
			    (u64)vma->vm_end);
		/* KSM may merge these pages at any time (DOC block). */
		if (way->to_device && (vma->vm_flags & VM_MERGEABLE))
			continue;
		args.vma = vma;
		args.start = addr;
		args.end = next;
		if (!drm_dev_enter(&hdev->drm, &idx)) {
			ret = -ENODEV;
			break;
		}
		ret = migrate_vma_setup(&args);
		if (!ret)
			ret = way->step(dm, b, &args, migrated);
		drm_dev_exit(idx);
		if (ret)
			break;
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
	}
	mmap_read_unlock(mm);
	atomic64_add(*migrated, way->to_device ? &dm->to_device :
						 &dm->to_system);
out_mm:
	mmput(mm);
out_batch:
	batch_free(dm, b);
	return ret;
}

/**
 * hmirror_devmem_to_device - migrate a range of @mm into device memory
 * @hdev: device
 * @mm: address space
 * @start: page-aligned start
 * @end: page-aligned end
 * @migrated: out: pages this call moved (pages already there, shared or
 *	file pages and pages with no room are not)
 *
 * Return: 0; -EOPNOTSUPP without device memory; -EFAULT when part of the
 * range is not a readable mapping (what came before it is migrated);
 * -ESRCH when @mm is gone; -EINTR on a fatal signal; -ENOMEM; -EIO or
 * -ENODEV when the device is dead or gone (nothing more is migrated).
 */
int hmirror_devmem_to_device(struct hmirror_device *hdev, struct mm_struct *mm,
			     u64 start, u64 end, unsigned long *migrated)
{
	int ret;

	*migrated = 0;
	if (!hdev->devmem)
		return -EOPNOTSUPP;
	/* A dead device copies nothing: do not even collect. */
	ret = hmirror_hw_status(hdev);
	if (ret)
		return ret;
	return devmem_migrate(hdev, mm, start, end, &devmem_to_device,
			      migrated);
}

/**
 * hmirror_devmem_to_system - migrate this device's pages of a range back
 * @hdev: device
 * @mm: address space
 * @start: page-aligned start
 * @end: page-aligned end
 * @migrated: out: pages moved back
 *
 * Return: as hmirror_devmem_to_device(); -EIO when the device could not
 * copy (the pages stay in device memory).
 */
int hmirror_devmem_to_system(struct hmirror_device *hdev, struct mm_struct *mm,
			     u64 start, u64 end, unsigned long *migrated)
{
	return devmem_migrate(hdev, mm, start, end, &devmem_to_system,
			      migrated);
}

/* A CPU touched a page in device memory: bring it back, the device copying. */
static vm_fault_t devmem_migrate_to_ram(struct vm_fault *vmf)
{
	struct hmirror_devmem *dm = page_devmem(vmf->page);
	unsigned long src = 0, dst = 0;
	struct migrate_vma args = {
		.vma = vmf->vma,
		.start = vmf->address & PAGE_MASK,
		.end = (vmf->address & PAGE_MASK) + PAGE_SIZE,
		.src = &src,
		.dst = &dst,
		.pgmap_owner = dm->hdev,
		.flags = MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
		.fault_page = vmf->page,
	};
	struct devmem_batch *b;
	vm_fault_t ret = 0;

	b = batch_alloc(dm, DMA_FROM_DEVICE);
	if (!b)
		return VM_FAULT_OOM;
	if (migrate_vma_setup(&args)) {
		ret = VM_FAULT_SIGBUS;
		goto out;
	}
	/*
	 * Without a copy the data is gone: the process must not see zeroes.
	 * Nothing selected (the entry changed meanwhile): fault again.
	 */
	if (devmem_count_selected(&src, 1) &&
	    !devmem_fill_system(dm, b, args.vma, args.start, &src, &dst, 1,
				false))
		ret = VM_FAULT_SIGBUS;
	migrate_vma_pages(&args);
	atomic64_add(devmem_count_moved(&src, &dst, 1), &dm->to_system);
	migrate_vma_finalize(&args);
out:
	batch_free(dm, b);
	return ret;
}

static const struct dev_pagemap_ops hmirror_devmem_ops = {
	.page_free = devmem_page_free,
	.migrate_to_ram = devmem_migrate_to_ram,
};

/**
 * hmirror_devmem_evict_all - move every page back to system memory
 * @hdev: device
 *
 * Pages being migrated meanwhile are retried for a while.
 *
 * Return: 0, -EOPNOTSUPP without device memory, -EBUSY when some stayed.
 */
int hmirror_devmem_evict_all(struct hmirror_device *hdev)
{
	struct hmirror_devmem *dm = hdev->devmem;
	unsigned int idle = 0;

	if (!dm)
		return -EOPNOTSUPP;
	while (READ_ONCE(dm->used)) {
		if (devmem_evict(dm, DEVMEM_CHUNK, false)) {
			idle = 0;
		} else {
			if (++idle > 100)
				return -EBUSY;
			usleep_range(10000, 20000);
		}
		cond_resched();
	}
	return 0;
}

/**
 * hmirror_devmem_touch - the device mapped @page: it is used again
 * @hdev: device
 * @page: a page of its memory, referenced by the caller
 */
void hmirror_devmem_touch(struct hmirror_device *hdev, struct page *page)
{
	struct hmirror_devmem *dm = hdev->devmem;
	unsigned long irqflags;

	if (!dm || page->pgmap != &dm->pagemap)
		return;
	spin_lock_irqsave(&dm->lock, irqflags);
	list_move_tail(&dm->vp[page_to_pfn(page) - dm->first_pfn].link,
		       &dm->lru);
	spin_unlock_irqrestore(&dm->lock, irqflags);
}

/**
 * hmirror_devmem_span - the pfns standing for the device's memory
 * @hdev: device
 * @first_pfn: out: pfn of offset 0
 * @npages: out: pages
 *
 * Return: false when the device memory is not in use.
 */
bool hmirror_devmem_span(struct hmirror_device *hdev, unsigned long *first_pfn,
			 unsigned long *npages)
{
	if (!hdev->devmem)
		return false;
	*first_pfn = hdev->devmem->first_pfn;
	*npages = hdev->devmem->npages;
	return true;
}

void hmirror_devmem_stats(struct hmirror_device *hdev,
			  struct hmirror_devmem_stats *st)
{
	struct hmirror_devmem *dm = hdev->devmem;

	*st = (struct hmirror_devmem_stats){ };
	if (!dm)
		return;
	st->pages = dm->npages;
	st->used = READ_ONCE(dm->used);
	st->to_device = atomic64_read(&dm->to_device);
	st->to_system = atomic64_read(&dm->to_system);
	st->evicted = atomic64_read(&dm->evicted);
	st->lost = atomic64_read(&dm->lost);
}

/**
 * hmirror_devmem_init - register the device's memory as DEVICE_PRIVATE
 * @hdev: device, header checked (@hdev->vram_pages)
 *
 * Return: 0 (also when there is no device memory), or an errno.
 */
int hmirror_devmem_init(struct hmirror_device *hdev)
{
	struct device *dev = &hdev->pdev->dev;
	struct hmirror_devmem *dm;
	unsigned long i;
	void *addr;
	int ret;

	if (!hdev->vram_pages)
		return 0;
	dm = kzalloc(sizeof(*dm), GFP_KERNEL);
	if (!dm)
		return -ENOMEM;
	dm->hdev = hdev;
	dm->npages = hdev->vram_pages;
	spin_lock_init(&dm->lock);
	INIT_LIST_HEAD(&dm->free);
	INIT_LIST_HEAD(&dm->lru);
	atomic64_set(&dm->to_device, 0);
	atomic64_set(&dm->to_system, 0);
	atomic64_set(&dm->evicted, 0);
	atomic64_set(&dm->lost, 0);
	dm->vp = kvcalloc(dm->npages, sizeof(*dm->vp), GFP_KERNEL);
	if (!dm->vp) {
		ret = -ENOMEM;
		goto err_free;
	}
	for (i = 0; i < dm->npages; i++)
		list_add_tail(&dm->vp[i].link, &dm->free);
	dm->zero_dma = dma_map_page(dev, ZERO_PAGE(0), 0, PAGE_SIZE,
				    DMA_TO_DEVICE);
	if (dma_mapping_error(dev, dm->zero_dma)) {
		ret = -ENOMEM;
		goto err_vp;
	}
	/* Hotplug works in 2 MiB subsections: the tail is never handed out. */
	dm->res = request_free_mem_region(&iomem_resource,
					  ALIGN(dm->npages << PAGE_SHIFT, SZ_2M),
					  "hmirror device memory");
	if (IS_ERR(dm->res)) {
		ret = PTR_ERR(dm->res);
		goto err_zero;
	}
	dm->pagemap.type = MEMORY_DEVICE_PRIVATE;
	dm->pagemap.range.start = dm->res->start;
	dm->pagemap.range.end = dm->res->end;
	dm->pagemap.nr_range = 1;
	dm->pagemap.ops = &hmirror_devmem_ops;
	dm->pagemap.owner = hdev;
	addr = memremap_pages(&dm->pagemap, dev_to_node(dev));
	if (IS_ERR(addr)) {
		ret = PTR_ERR(addr);
		goto err_region;
	}
	dm->first_pfn = dm->res->start >> PAGE_SHIFT;
	hdev->devmem = dm;
	return 0;

err_region:
	release_mem_region(dm->res->start, resource_size(dm->res));
err_zero:
	dma_unmap_page(dev, dm->zero_dma, PAGE_SIZE, DMA_TO_DEVICE);
err_vp:
	kvfree(dm->vp);
err_free:
	kfree(dm);
	return ret;
}

/**
 * hmirror_devmem_close - the device is going: empty its memory
 * @hdev: device, still able to copy if it is alive
 *
 * No page is allocated from now on; every page comes back to system
 * memory, copied by the device, or zeroed (and counted lost) when it
 * cannot copy any more.  Waits for pages in the middle of a migration.
 */
void hmirror_devmem_close(struct hmirror_device *hdev)
{
	struct hmirror_devmem *dm = hdev->devmem;
	unsigned long irqflags;
	unsigned int rounds = 0;

	if (!dm)
		return;
	spin_lock_irqsave(&dm->lock, irqflags);
	dm->closing = true;
	spin_unlock_irqrestore(&dm->lock, irqflags);
	while (READ_ONCE(dm->used)) {
		if (!devmem_evict(dm, DEVMEM_CHUNK, true))
			usleep_range(10000, 20000);
		if (++rounds % 1000 == 0)
			dev_warn(devmem_dev(dm), "%lu pages of device memory still in use\n",
				 READ_ONCE(dm->used));
		cond_resched();
	}
}

/**
 * hmirror_devmem_fini - unregister the device memory
 * @hdev: device, after hmirror_devmem_close() and once no device page
 *	table references a device page any more
 */
void hmirror_devmem_fini(struct hmirror_device *hdev)
{
	struct hmirror_devmem *dm = hdev->devmem;

	if (!dm)
		return;
	memunmap_pages(&dm->pagemap);
	release_mem_region(dm->res->start, resource_size(dm->res));
	dma_unmap_page(&hdev->pdev->dev, dm->zero_dma, PAGE_SIZE, DMA_TO_DEVICE);
	hdev->devmem = NULL;
	kvfree(dm->vp);
	kfree(dm);
}
