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
#include "hmirror_fault.h"

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
	struct hmirror_ctx_entry __iomem *e = hdev->shm + HMIRROR_CTX_OFF +
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
 * hmirror_ctx_tlb_inval - make the device forget translations of a range
 * @ctx: context
 * @start: first address
 * @end: end address
 *
 * Queues TLB_INVAL on the management queue, which a stalled engine never
 * blocks, and waits for it uninterruptibly (an invalidation must finish,
 * even in a task being killed) but with a bound.  A device that does not answer is
 * declared dead; afterwards it does no DMA (bus mastering is off).
 *
 * Return: 0, or -EIO/-ENODEV when the device is gone (its TLB is then moot).
 */
int hmirror_ctx_tlb_inval(struct hmirror_ctx *ctx, u64 start, u64 end)
{
	struct hmirror_device *hdev = ctx->hdev;
	struct hmirror_cmd cmd = {
		.opcode = HMIRROR_OP_TLB_INVAL,
		.ctx = ctx->id,
		.src = start,
		.len = end - start,
	};
	u64 seqno, completed;
	int ret, idx;

	/* Notifiers run at any time: after removal BAR2 is gone. */
	if (!drm_dev_enter(&hdev->drm, &idx))
		return -ENODEV;
	ret = hmirror_queue_submit(hdev, HMIRROR_QUEUE_MGMT, &cmd, 1, &seqno, 0);
	if (!ret)
		ret = hmirror_queue_wait(hdev, HMIRROR_QUEUE_MGMT, seqno,
					 HMIRROR_CMD_TIMEOUT_MS, &completed, 0);
	if (ret == -ETIME) {
		hmirror_mark_dead(hdev, "TLB invalidation timed out");
		ret = -EIO;
	}
	drm_dev_exit(idx);
	return ret;
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
	struct hmirror_ctx *ctx;
	int ret, idx;

	if (!current->mm)
		return ERR_PTR(-EINVAL);
	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL);
	if (!ctx)
		return ERR_PTR(-ENOMEM);
	ctx->hdev = hdev;

	ret = hmirror_pt_init(&ctx->pt, &hdev->pdev->dev);
	if (ret)
		goto err_free;
	ret = hmirror_pt_zap_init(&ctx->zap, HMIRROR_ZAP_BATCH);
	if (ret)
		goto err_pt;
	hmirror_ctx_teach_lockdep(ctx);

	/* Context 0 is never handed out: a zeroed descriptor names no one. */
	ret = ida_alloc_range(&hdev->ctx_ida, 1, hdev->hdr.max_contexts - 1,
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
	hmirror_pt_fini(&ctx->pt);
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
 * entries, then frees the page table and the pages' DMA mappings.  With
 * the device gone (dead or unplugged) there is nothing to flush: it does
 * no more DMA.
 */
void hmirror_ctx_destroy(struct hmirror_ctx *ctx)
{
	struct hmirror_device *hdev = ctx->hdev;
	int idx;

	mutex_lock(&hdev->ctx_list_lock);
	list_del(&ctx->link);
	mutex_unlock(&hdev->ctx_list_lock);
	hmirror_fault_fini(ctx);
	hmirror_mirror_fini(ctx);
	if (drm_dev_enter(&hdev->drm, &idx)) {
		hmirror_ctx_write_entry(hdev, ctx->id, 0, 0);
		if (!hmirror_hw_status(hdev))
			hmirror_ctx_tlb_inval(ctx, 0, 1ull << HMIRROR_VA_BITS);
		drm_dev_exit(idx);
	}
	hmirror_pt_fini(&ctx->pt);
	hmirror_pt_zap_destroy(&ctx->zap);
	ida_free(&hdev->ctx_ida, ctx->id);
	mmdrop(ctx->mm);
	atomic_dec(&hdev->live_contexts);
	kfree(ctx);
}

/**
 * hmirror_ctx_get - the calling task's context of @file
 * @file: DRM file
 * @ctx: out
 *
 * Return: 0, or -EPERM when the caller's mm is not the opener's (a
 * context mirrors exactly one address space).
 */
int hmirror_ctx_get(struct drm_file *file, struct hmirror_ctx **ctx)
{
	struct hmirror_ctx *c = file->driver_priv;

	if (!c || c->mm != current->mm)
		return -EPERM;
	*ctx = c;
	return 0;
}
