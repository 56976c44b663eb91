// SPDX-License-Identifier: GPL-2.0
/*
 * hmirror: ioctls.  Every argument is checked before it is used; reserved
 * fields and unknown flags must be zero.
 */
#include <linux/slab.h>
#include <drm/drm_drv.h>
#include <drm/drm_file.h>
#include <drm/drm_ioctl.h>

#include "hmirror.h"
#include "hmirror_ctx.h"
#include "uapi/hmirror.h"

#define HMIRROR_NOP_MAX		4096u
#define HMIRROR_NOP_CHUNK	64u
#define HMIRROR_WAIT_MAX_MS	(3600u * 1000u)

static int hmirror_ioctl_get_info(struct drm_device *drm, void *data,
				  struct drm_file *file)
{
	struct hmirror_device *hdev = to_hmirror(drm);
	const struct hmirror_header *h = &hdev->hdr;
	struct drm_hmirror_info *info = data;

	memset(info, 0, sizeof(*info));
	info->version = h->version;
	info->num_engines = hdev->num_queues - 1;
	info->features = h->features;
	info->bar_size = h->bar_size;
	info->sq_entries = h->sq_entries;
	info->cq_entries = h->cq_entries;
	info->fault_entries = h->fault_entries;
	info->max_contexts = h->max_contexts;
	info->tlb_entries = h->tlb_entries;
	info->num_vectors = h->num_vectors;
	return 0;
}

/* Engine n is device queue n + 1; queue 0 is the driver's own. */
static int hmirror_engine_queue(struct hmirror_device *hdev, u32 engine,
				u32 *qi)
{
	if (engine >= hdev->num_queues - 1)
		return -EINVAL;
	*qi = engine + 1;
	return 0;
}

static int hmirror_ioctl_submit_nop(struct drm_device *drm, void *data,
				    struct drm_file *file)
{
	struct hmirror_device *hdev = to_hmirror(drm);
	struct drm_hmirror_submit_nop *args = data;
	struct hmirror_cmd *cmds;
	u32 qi, left, n, i;
	u64 last = 0;
	int ret, idx;

	if (args->flags & ~DRM_HMIRROR_NOP_FLAGS || args->pad ||
	    !args->count || args->count > HMIRROR_NOP_MAX)
		return -EINVAL;
	ret = hmirror_engine_queue(hdev, args->engine, &qi);
	if (ret)
		return ret;

	cmds = kcalloc(HMIRROR_NOP_CHUNK, sizeof(*cmds), GFP_KERNEL);
	if (!cmds)
		return -ENOMEM;
	if (!drm_dev_enter(drm, &idx)) {
		ret = -ENODEV;
		goto out_free;
	}

	for (left = args->count; left; left -= n) {
		n = min(left, HMIRROR_NOP_CHUNK);
		for (i = 0; i < n; i++)
			cmds[i].opcode = HMIRROR_OP_NOP;
		if (n == left && (args->flags & DRM_HMIRROR_NOP_FENCE))
			cmds[n - 1].opcode = HMIRROR_OP_FENCE;
		ret = hmirror_queue_submit(hdev, qi, cmds, n, &last,
					   HMIRROR_WAIT_INTERRUPTIBLE);
		if (ret)
			goto out_exit;
	}
	args->fence = last;

	if (args->flags & DRM_HMIRROR_NOP_WAIT) {
		u64 completed;

		ret = hmirror_queue_wait(hdev, qi, last, HMIRROR_CMD_TIMEOUT_MS,
					 &completed, HMIRROR_WAIT_INTERRUPTIBLE);
		if (ret == -ETIME) {
			hmirror_mark_dead(hdev, "command timed out");
			ret = -EIO;
		}
	}
out_exit:
	drm_dev_exit(idx);
out_free:
	kfree(cmds);
	return ret;
}

static int hmirror_ioctl_wait(struct drm_device *drm, void *data,
			      struct drm_file *file)
{
	struct hmirror_device *hdev = to_hmirror(drm);
	struct drm_hmirror_wait *args = data;
	u32 qi;
	int ret, idx;

	if (args->pad || args->timeout_ms > HMIRROR_WAIT_MAX_MS)
		return -EINVAL;
	ret = hmirror_engine_queue(hdev, args->engine, &qi);
	if (ret)
		return ret;
	if (!args->fence || args->fence >= READ_ONCE(hdev->queues[qi].next_seqno))
		return -EINVAL;

	if (!drm_dev_enter(drm, &idx))
		return -ENODEV;
	ret = hmirror_queue_wait(hdev, qi, args->fence, args->timeout_ms,
				 &args->completed, HMIRROR_WAIT_INTERRUPTIBLE);
	drm_dev_exit(idx);
	return ret;
}

static int hmirror_ioctl_stats(struct drm_device *drm, void *data,
			       struct drm_file *file)
{
	struct hmirror_device *hdev = to_hmirror(drm);
	struct drm_hmirror_stats *st = data;
	int v, idx;

	memset(st, 0, sizeof(*st));
	for (v = 0; v < HMIRROR_NUM_VECTORS; v++)
		st->irqs[v] = atomic64_read(&hdev->irqs[v]);
	st->cmds_submitted = atomic64_read(&hdev->cmds_submitted);
	st->cmds_completed = atomic64_read(&hdev->cmds_completed);
	st->doorbells = atomic64_read(&hdev->doorbells);
	st->live_contexts = atomic_read(&hdev->live_contexts);

	/* Device-side counters only while the BAR is still mapped. */
	if (!drm_dev_enter(drm, &idx))
		return 0;
	for (v = 0; v < HMIRROR_NUM_VECTORS; v++)
		st->dev_irqs_sent[v] = readl(&hdev->regs->irq_sent[v]);
	st->dev_commands = readq(&hdev->regs->cnt_commands);
	st->dev_errors = readl(&hdev->regs->err_count);
	drm_dev_exit(idx);
	return 0;
}

static int hmirror_ioctl_ctx_options(struct drm_device *drm, void *data,
				     struct drm_file *file)
{
	struct drm_hmirror_ctx_options *args = data;
	struct hmirror_ctx *ctx;
	int ret;

	ret = hmirror_ctx_get(file, &ctx);
	if (ret)
		return ret;
	if (args->flags & ~DRM_HMIRROR_CTX_FLAGS ||
	    args->reserved[0] || args->reserved[1])
		return -EINVAL;
	if (args->flags & DRM_HMIRROR_CTX_SET) {
		if (args->backend != DRM_HMIRROR_BACKEND_GUP &&
		    args->backend != DRM_HMIRROR_BACKEND_HMM)
			return -EINVAL;
		if (args->fault_ahead > DRM_HMIRROR_FAULT_AHEAD_MAX)
			return -EINVAL;
		WRITE_ONCE(ctx->backend, args->backend);
		WRITE_ONCE(ctx->fault_ahead, args->fault_ahead);
	}
	args->backend = READ_ONCE(ctx->backend);
	args->fault_ahead = READ_ONCE(ctx->fault_ahead);
	args->ctx_id = ctx->id;
	return 0;
}

const struct drm_ioctl_desc hmirror_ioctls[HMIRROR_NUM_IOCTLS] = {
	DRM_IOCTL_DEF_DRV(HMIRROR_GET_INFO, hmirror_ioctl_get_info, 0),
	DRM_IOCTL_DEF_DRV(HMIRROR_SUBMIT_NOP, hmirror_ioctl_submit_nop, 0),
	DRM_IOCTL_DEF_DRV(HMIRROR_WAIT, hmirror_ioctl_wait, 0),
	DRM_IOCTL_DEF_DRV(HMIRROR_STATS, hmirror_ioctl_stats, 0),
	DRM_IOCTL_DEF_DRV(HMIRROR_CTX_OPTIONS, hmirror_ioctl_ctx_options, 0),
};

static_assert(DRM_HMIRROR_CTX_OPTIONS + 1 == HMIRROR_NUM_IOCTLS);
