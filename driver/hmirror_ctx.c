// SPDX-License-Identifier: GPL-2.0
/*
 * hmirror: contexts.  One per open file, bound to the opener's mm, with its
 * own device page table and a slot in the device's context table (the
 * device's notion of an address space, like a PASID).
 */
#include <linux/idr.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <drm/drm_drv.h>
#include <drm/drm_file.h>
#include <drm/drm_print.h>

#include "hmirror.h"
#include "hmirror_ctx.h"
#include "hmirror_devmem.h"
#include "hmirror_fault.h"
#include "uapi/hmirror.h"

/**
 * DOC: Contexts
 *
 * Opening the device (or a compat node) creates a context: the opener's mm
 * (``mmgrab``), a device context number, an empty device page table whose root
 * goes into the device's context table, and an ``mmu_notifier`` on that mm.
 * The HMM backend's ``mmu_interval_notifier`` (covering the whole address
 * space, taking a spinlock on every invalidation) is registered only
 * when a context selects that backend, and for compat contexts (SNAPSHOT).  Every
 * ioctl that uses the context fails with ``-EPERM`` unless the caller's mm is
 * the opener's.  Closing stops the notifiers (``release`` clears and flushes
 * everything if the mm is still alive), clears the context entry, flushes its
 * TLB and frees the page table.  The ``STATS`` ioctl and debugfs report the
 * number of live contexts; tests check it returns to its baseline after a
 * process is killed with a device fault outstanding.
 */

/**
 * DOC: Addresses
 *
 * The device translates user addresses below ``2^va_bits`` only.  One check
 * (``hmirror_user_range``) guards every place a user address enters — EXEC
 * operands, PREFETCH, SNAPSHOT, the compat READ/WRITE/SNAPSHOT — and refuses
 * a range reaching past it with ``-EFAULT``; fault-ahead windows are
 * clipped to it.  Nothing is ever mapped at a truncated alias.  Under
 * 5-level paging a process can map up to ``2^56``: a 57-bit device mirrors
 * all of it.
 */

/* Entries a single invalidation pass clears before flushing the device. */
#define HMIRROR_ZAP_BATCH	512

/*
 * Tell lockdep the page-table lock is taken from reclaim (the mmu notifier
 * runs there), so a GFP_KERNEL allocation under it is reported as the
 * deadlock it is even before reclaim ever hits it.
 */
static void hmirror_ctx_teach_lockdep(struct hmirror_ctx *ctx)
{
	fs_reclaim_acquire(GFP_KERNEL);
	might_lock(&ctx->pt.lock);
	fs_reclaim_release(GFP_KERNEL);
}

static void hmirror_ctx_write_entry(struct hmirror_device *hdev, u32 id,
				    u64 pt_root, u32 flags)
{
	struct hmirror_ctx_entry __iomem *e = hdev->shm + hdev->ctx_off +
					      id * sizeof(*e);

	/*
	 * The device may read the entry at any time: the root is in place
	 * before VALID is set, and VALID is gone before the root goes.
	 */
	if (flags & HMIRROR_CTX_VALID) {
		writeq(pt_root, &e->pt_root);
		writel(flags, &e->flags);
	} else {
		writel(flags, &e->flags);
		writeq(pt_root, &e->pt_root);
	}
}

/**
 * hmirror_ctx_create - a context mirroring the caller's address space
 * @hdev: device
 *
 * Return: the context, or ERR_PTR(-ENOSPC) when the device's context table
 * is full, -ENOMEM, -ENODEV, -EINVAL for a task without an mm.
 */
struct hmirror_ctx *hmirror_ctx_create(struct hmirror_device *hdev)
{
	unsigned long vram_pfn, vram_pages;
	struct hmirror_ctx *ctx;
	int ret, idx;

	if (!current->mm)
		return ERR_PTR(-EINVAL);
	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL);
	if (!ctx)
		return ERR_PTR(-ENOMEM);
	ctx->hdev = hdev;

	ret = hmirror_pt_init(&ctx->pt, &hdev->pdev->dev, hdev->va_bits,
			      hdev->huge);
	if (ret)
		goto err_free;
	if (hmirror_devmem_span(hdev, &vram_pfn, &vram_pages))
		hmirror_pt_set_vram(&ctx->pt, vram_pfn, vram_pages);
	ret = hmirror_pt_zap_init(&ctx->zap, HMIRROR_ZAP_BATCH);
	if (ret)
		goto err_pt;
	hmirror_ctx_teach_lockdep(ctx);

	/* Context 0 is never handed out: a zeroed descriptor names no one. */
	ret = ida_alloc_range(&hdev->ctx_ida, 1, hdev->max_contexts - 1,
			      GFP_KERNEL);
	if (ret < 0)
		goto err_zap;
	ctx->id = ret;

	if (!drm_dev_enter(&hdev->drm, &idx)) {
		ret = -ENODEV;
		goto err_id;
	}
	hmirror_ctx_write_entry(hdev, ctx->id, hmirror_pt_root_dma(&ctx->pt),
				HMIRROR_CTX_VALID);
	drm_dev_exit(idx);

	ctx->mm = current->mm;
	mmgrab(ctx->mm);
	ret = hmirror_mirror_init(ctx, ctx->mm);
	if (ret)
		goto err_mm;
	hmirror_fault_init(ctx);
	atomic_inc(&hdev->live_contexts);
	mutex_lock(&hdev->ctx_list_lock);
	list_add_tail(&ctx->link, &hdev->ctx_list);
	mutex_unlock(&hdev->ctx_list_lock);
	return ctx;

err_mm:
	mmdrop(ctx->mm);
	if (drm_dev_enter(&hdev->drm, &idx)) {
		hmirror_ctx_write_entry(hdev, ctx->id, 0, 0);
		drm_dev_exit(idx);
	}
err_id:
	ida_free(&hdev->ctx_ida, ctx->id);
err_zap:
	hmirror_pt_zap_destroy(&ctx->zap);
err_pt:
	/* The device never saw this table. */
	hmirror_pt_fini(&ctx->pt, NULL);
err_free:
	kfree(ctx);
	return ERR_PTR(ret);
}

/**
 * hmirror_ctx_destroy - tear down a file's context
 * @ctx: context, no ioctl running on it any more
 *
 * Stops the notifier (which clears and flushes every device entry if the
 * mm is still alive), disables the context in the device, flushes its TLB
 * entries, then frees the page table and releases the pages.  If the
 * device cannot be flushed (dead or removed), what it could reach is only
 * released once it proved it stopped DMA.
 */
void hmirror_ctx_destroy(struct hmirror_ctx *ctx)
{
	struct hmirror_device *hdev = ctx->hdev;
	int ret = -ENODEV, idx;

	mutex_lock(&hdev->ctx_list_lock);
	list_del(&ctx->link);
	mutex_unlock(&hdev->ctx_list_lock);
	hmirror_fault_fini(ctx);
	hmirror_mirror_fini(ctx);
	if (drm_dev_enter(&hdev->drm, &idx)) {
		hmirror_ctx_write_entry(hdev, ctx->id, 0, 0);
		ret = hmirror_hw_status(hdev);
		if (!ret)
			ret = hmirror_hw_tlb_inval(hdev, ctx->id, 0,
						   ctx->pt.va_end);
		drm_dev_exit(idx);
	}
	hmirror_pt_fini(&ctx->pt, ret ? &hdev->graveyard : NULL);
	hmirror_pt_zap_destroy(&ctx->zap);
	ida_free(&hdev->ctx_ida, ctx->id);
	mmdrop(ctx->mm);
	atomic_dec(&hdev->live_contexts);
	kfree(ctx);
}

/**
 * hmirror_ctx_unplug_all - the device is gone: empty every context
 * @hdev: device, unplugged and asked to stop (hmirror_hw_fini())
 *
 * Files outlive the device.  Their page tables and the pages the device
 * could reach are released now if the device proved it stopped, else kept
 * in the graveyard; faults on these contexts commit nothing any more.
 */
void hmirror_ctx_unplug_all(struct hmirror_device *hdev)
{
	struct hmirror_ctx *ctx;

	mutex_lock(&hdev->ctx_list_lock);
	list_for_each_entry(ctx, &hdev->ctx_list, link)
		hmirror_pt_fini(&ctx->pt, &hdev->graveyard);
	mutex_unlock(&hdev->ctx_list_lock);
}

/* In the order of struct drm_hmirror_ctx_stats. */
const struct hmirror_ctx_counter hmirror_ctx_counters[] = {
	{ "faults", offsetof(struct drm_hmirror_ctx_stats, faults),
	  offsetof(struct hmirror_ctx, stats.faults) },
	{ "pages_faulted", offsetof(struct drm_hmirror_ctx_stats, pages_faulted),
	  offsetof(struct hmirror_ctx, stats.pages_faulted) },
	{ "ahead_pages", offsetof(struct drm_hmirror_ctx_stats, ahead_pages),
	  offsetof(struct hmirror_ctx, stats.ahead_pages) },
	{ "retries_stale", offsetof(struct drm_hmirror_ctx_stats, retries_stale),
	  offsetof(struct hmirror_ctx, stats.retries_stale) },
	{ "retries_busy", offsetof(struct drm_hmirror_ctx_stats, retries_busy),
	  offsetof(struct hmirror_ctx, stats.retries_busy) },
	{ "retries_waited", offsetof(struct drm_hmirror_ctx_stats, retries_waited),
	  offsetof(struct hmirror_ctx, stats.retries_waited) },
	{ "lock_drops", offsetof(struct drm_hmirror_ctx_stats, lock_drops),
	  offsetof(struct hmirror_ctx, stats.lock_drops) },
	{ "interrupted", offsetof(struct drm_hmirror_ctx_stats, interrupted),
	  offsetof(struct hmirror_ctx, stats.interrupted) },
	{ "efaults", offsetof(struct drm_hmirror_ctx_stats, efaults),
	  offsetof(struct hmirror_ctx, stats.efaults) },
	{ "service_ns", offsetof(struct drm_hmirror_ctx_stats, service_ns),
	  offsetof(struct hmirror_ctx, stats.service_ns) },
	{ "invalidations", offsetof(struct drm_hmirror_ctx_stats, invalidations),
	  offsetof(struct hmirror_ctx, mirror.stats.invalidations) },
	{ "device_flushes", offsetof(struct drm_hmirror_ctx_stats, device_flushes),
	  offsetof(struct hmirror_ctx, mirror.stats.device_flushes) },
	{ "pages_unmapped", offsetof(struct drm_hmirror_ctx_stats, pages_unmapped),
	  offsetof(struct hmirror_ctx, mirror.stats.pages_unmapped) },
	{ "invalidation_ns", offsetof(struct drm_hmirror_ctx_stats, invalidation_ns),
	  offsetof(struct hmirror_ctx, mirror.stats.invalidation_ns) },
	{ "inv_wait_ns", offsetof(struct drm_hmirror_ctx_stats, inv_wait_ns),
	  offsetof(struct hmirror_ctx, mirror.stats.inv_wait_ns) },
	{ "nonblock_deferred", offsetof(struct drm_hmirror_ctx_stats, nonblock_deferred),
	  offsetof(struct hmirror_ctx, mirror.stats.nonblock_deferred) },
	{ "tables_allocated", offsetof(struct drm_hmirror_ctx_stats, tables_allocated),
	  offsetof(struct hmirror_ctx, pt.tables_allocated) },
};

const unsigned int hmirror_ctx_num_counters = ARRAY_SIZE(hmirror_ctx_counters);

/**
 * hmirror_ctx_counter_read - the value of one of a context's counters
 * @ctx: context
 * @c: an entry of hmirror_ctx_counters
 */
u64 hmirror_ctx_counter_read(struct hmirror_ctx *ctx,
			     const struct hmirror_ctx_counter *c)
{
	return atomic64_read((atomic64_t *)((u8 *)ctx + c->ctx));
}

/**
 * hmirror_user_range - may [addr, addr + len) be handed to the device?
 * @hdev: device
 * @addr: user virtual address
 * @len: bytes
 *
 * Return: 0; -EINVAL when it is not a user range (empty, wrapping, past
 * TASK_SIZE); -EFAULT when it reaches past the device's address width,
 * which it could never translate (aliasing it would be worse).
 */
int hmirror_user_range(struct hmirror_device *hdev, u64 addr, u64 len)
{
	if (!len || addr >= TASK_SIZE || len > TASK_SIZE - addr)
		return -EINVAL;
	if (addr >= hdev->va_end || len > hdev->va_end - addr)
		return -EFAULT;
	return 0;
}

/**
 * hmirror_ctx_of_file - the calling task's context of @file
 * @file: DRM file
 * @ctx: out
 *
 * Return: 0, or -EPERM when the caller's mm is not the opener's (a
 * context mirrors exactly one address space).
 */
int hmirror_ctx_of_file(struct drm_file *file, struct hmirror_ctx **ctx)
{
	struct hmirror_ctx *c = file->driver_priv;

	if (!c || c->mm != current->mm)
		return -EPERM;
	*ctx = c;
	return 0;
}
