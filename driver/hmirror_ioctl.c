// SPDX-License-Identifier: GPL-2.0
/*
 * hmirror: ioctls.  Every argument is checked before it is used; reserved
 * fields and unknown flags must be zero.
 */
#include <linux/uaccess.h>
#include <drm/drm_drv.h>
#include <drm/drm_file.h>
#include <drm/drm_ioctl.h>

#include "hmirror.h"
#include "hmirror_ctx.h"
#include "hmirror_devmem.h"
#include "hmirror_exec.h"
#include "hmirror_fault.h"
#include "uapi/hmirror.h"

#define HMIRROR_NOP_MAX		4096u
#define HMIRROR_NOP_CHUNK	16u	/* commands per submission, on the stack */
#define HMIRROR_WAIT_MAX_MS	(3600u * 1000u)

static int hmirror_ioctl_get_info(struct drm_device *drm, void *data,
				  struct drm_file *file)
{
	struct hmirror_device *hdev = to_hmirror(drm);
	struct drm_hmirror_info *info = data;

	memset(info, 0, sizeof(*info));
	info->version = hdev->version;
	info->num_engines = hdev->num_queues - 1;
	info->features = hdev->features;
	info->bar_size = hdev->bar_size;
	info->sq_entries = hdev->sq_entries;
	info->cq_entries = hdev->cq_entries;
	info->fault_entries = hdev->fault_entries;
	info->max_contexts = hdev->max_contexts;
	info->tlb_entries = le32_to_cpu(hdev->hdr.tlb_entries);
	info->num_vectors = HMIRROR_NUM_VECTORS;
	info->device_memory_pages = hdev->devmem ? hdev->vram_pages : 0;
	info->va_bits = hdev->va_bits;
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
	struct hmirror_ctx *ctx = file->driver_priv;
	bool wait = args->flags & DRM_HMIRROR_NOP_WAIT;
	struct hmirror_hw_cmd cmds[HMIRROR_NOP_CHUNK];
	struct hmirror_waiter w = { };
	u32 qi, left, n, i;
	u64 last = 0;
	int ret, idx;

	if (args->flags & ~DRM_HMIRROR_NOP_FLAGS || args->pad ||
	    !args->count || args->count > HMIRROR_NOP_MAX)
		return -EINVAL;
	ret = hmirror_engine_queue(hdev, args->engine, &qi);
	if (ret)
		return ret;
	if (!drm_dev_enter(drm, &idx))
		return -ENODEV;

	/* The file's context: a FENCE waits for its own commands only. */
	for (i = 0; i < HMIRROR_NOP_CHUNK; i++)
		cmds[i] = (struct hmirror_hw_cmd){ .opcode = HMIRROR_OP_NOP,
						   .ctx = ctx->id };
	for (left = args->count; left; left -= n) {
		n = min(left, HMIRROR_NOP_CHUNK);
		if (n == left && (args->flags & DRM_HMIRROR_NOP_FENCE))
			cmds[n - 1].opcode = HMIRROR_OP_FENCE;
		/* WAIT: a waiter on the last command, no search for its seqno */
		ret = hmirror_hw_submit(hdev, qi, cmds, n, &last,
					wait && n == left ? &w : NULL,
					HMIRROR_WAIT_INTERRUPTIBLE);
		if (ret)
			goto out_exit;
	}
	args->fence = last;

	/* Bounded by the device's progress, ended by a signal. */
	if (wait)
		ret = hmirror_hw_wait_done(hdev, qi, &w, HMIRROR_WAIT_MAX_MS,
					   HMIRROR_WAIT_INTERRUPTIBLE |
					   HMIRROR_WAIT_POLL);
out_exit:
	drm_dev_exit(idx);
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
	ret = hmirror_hw_wait_seqno(hdev, qi, args->fence, args->timeout_ms,
				    &args->completed, HMIRROR_WAIT_INTERRUPTIBLE);
	drm_dev_exit(idx);
	return ret;
}

static int hmirror_ioctl_stats(struct drm_device *drm, void *data,
			       struct drm_file *file)
{
	struct hmirror_device *hdev = to_hmirror(drm);
	struct drm_hmirror_stats *st = data;
	struct hmirror_devmem_stats dm;
	int v, idx;

	memset(st, 0, sizeof(*st));
	for (v = 0; v < HMIRROR_NUM_VECTORS; v++)
		st->irqs[v] = atomic64_read(&hdev->irqs[v]);
	st->cmds_submitted = atomic64_read(&hdev->cmds_submitted);
	st->cmds_completed = atomic64_read(&hdev->cmds_completed);
	st->doorbells = atomic64_read(&hdev->doorbells);
	st->doorbells_skipped = atomic64_read(&hdev->doorbells_skipped);
	st->shootdowns = atomic64_read(&hdev->shootdowns);
	st->shootdown_fallbacks = atomic64_read(&hdev->shootdown_fallbacks);
	st->live_contexts = atomic_read(&hdev->live_contexts);
	st->state = (test_bit(HMIRROR_F_DEAD, &hdev->flags) ?
		     DRM_HMIRROR_STATE_DEAD : 0) |
		    (test_bit(HMIRROR_F_QUIESCED, &hdev->flags) ?
		     DRM_HMIRROR_STATE_QUIESCED : 0);
	st->nonblock_deferred = atomic64_read(&hdev->nonblock_deferred);
	st->faults_orphaned = atomic64_read(&hdev->faults_orphaned);
	st->kept_pages = hmirror_pt_graveyard_pages(&hdev->graveyard);
	hmirror_devmem_stats(hdev, &dm);
	st->device_memory_used = dm.used;
	st->migrated_to_device = dm.to_device;
	st->migrated_to_system = dm.to_system;
	st->evicted = dm.evicted;

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

	ret = hmirror_ctx_of_file(file, &ctx);
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
		if (args->backend == DRM_HMIRROR_BACKEND_HMM) {
			ret = hmirror_fault_hmm_enable(ctx);
			if (ret)
				return ret;
		}
		WRITE_ONCE(ctx->backend, args->backend);
		WRITE_ONCE(ctx->fault_ahead, args->fault_ahead);
	}
	args->backend = READ_ONCE(ctx->backend);
	args->fault_ahead = READ_ONCE(ctx->fault_ahead);
	args->ctx_id = ctx->id;
	return 0;
}

static bool ranges_overlap(u64 a, u64 b, u64 len)
{
	return a < b + len && b < a + len;
}

/* Translate an EXEC request into a device command, checking every field. */
static int hmirror_exec_to_cmd(struct hmirror_device *hdev,
			       const struct drm_hmirror_exec *x,
			       struct hmirror_hw_cmd *cmd)
{
	int ret;

	bool has_buf = x->op == DRM_HMIRROR_OP_READ ||
		       x->op == DRM_HMIRROR_OP_WRITE ||
		       x->op == DRM_HMIRROR_OP_COPY;
	bool atomic = x->op == DRM_HMIRROR_OP_ATOMIC_ADD ||
		      x->op == DRM_HMIRROR_OP_ATOMIC_CMPXCHG;

	if (x->flags || x->reserved[0] || x->reserved[1])
		return -EINVAL;
	if (x->len > DRM_HMIRROR_EXEC_MAX_LEN)
		return -EINVAL;
	ret = hmirror_user_range(hdev, x->addr, x->len);
	if (ret)
		return ret;
	if (has_buf) {
		if (ranges_overlap(x->addr, x->buf, x->len))
			return -EINVAL;
		ret = hmirror_user_range(hdev, x->buf, x->len);
		if (ret)
			return ret;
	} else if (x->buf) {
		return -EINVAL;
	}
	if ((x->op == DRM_HMIRROR_OP_FILL || x->op == DRM_HMIRROR_OP_CHECKSUM) &&
	    (!IS_ALIGNED(x->addr, 8) || !IS_ALIGNED(x->len, 8)))
		return -EINVAL;
	if (atomic && (x->len != 8 || !IS_ALIGNED(x->addr, 8)))
		return -EINVAL;
	if (x->op != DRM_HMIRROR_OP_ATOMIC_CMPXCHG && x->value2)
		return -EINVAL;

	memset(cmd, 0, sizeof(*cmd));
	cmd->len = x->len;
	switch (x->op) {
	case DRM_HMIRROR_OP_READ:
		cmd->opcode = HMIRROR_OP_COPY;
		cmd->src = x->addr;
		cmd->dst = x->buf;
		break;
	case DRM_HMIRROR_OP_WRITE:
	case DRM_HMIRROR_OP_COPY:
		cmd->opcode = HMIRROR_OP_COPY;
		cmd->src = x->buf;
		cmd->dst = x->addr;
		break;
	case DRM_HMIRROR_OP_FILL:
		cmd->opcode = HMIRROR_OP_FILL;
		cmd->dst = x->addr;
		cmd->arg0 = x->value;
		break;
	case DRM_HMIRROR_OP_CHECKSUM:
		if (x->value)
			return -EINVAL;
		cmd->opcode = HMIRROR_OP_READ;
		cmd->src = x->addr;
		break;
	case DRM_HMIRROR_OP_ATOMIC_ADD:
	case DRM_HMIRROR_OP_ATOMIC_CMPXCHG:
		cmd->opcode = HMIRROR_OP_ATOMIC;
		cmd->flags = x->op == DRM_HMIRROR_OP_ATOMIC_ADD ?
			     HMIRROR_ATOMIC_FETCH_ADD : HMIRROR_ATOMIC_CMPXCHG;
		cmd->dst = x->addr;
		cmd->arg0 = x->value;
		cmd->arg1 = x->value2;
		break;
	default:
		return -EINVAL;
	}
	return 0;
}

static int hmirror_ioctl_exec(struct drm_device *drm, void *data,
			      struct drm_file *file)
{
	struct hmirror_device *hdev = to_hmirror(drm);
	struct drm_hmirror_exec *x = data;
	struct hmirror_exec_result res = { };
	struct hmirror_ctx *ctx;
	struct hmirror_hw_cpl cpl = { };
	struct hmirror_hw_cmd cmd;
	int ret;
	u32 qi;

	ret = hmirror_ctx_of_file(file, &ctx);
	if (ret)
		return ret;
	ret = hmirror_engine_queue(hdev, x->engine, &qi);
	if (ret)
		return ret;
	ret = hmirror_exec_to_cmd(hdev, x, &cmd);
	if (ret)
		return ret;

	res.cpl = &cpl;
	ret = hmirror_exec(ctx, qi, &cmd, &res);
	/* The uapi reports any inaccessible address as -EFAULT. */
	if (ret == -EPERM)
		ret = -EFAULT;

	x->faults = res.faults;
	x->service_ns = res.service_ns;
	x->result = cpl.result;
	x->t_submit = cpl.t_submit;
	x->t_fault = cpl.t_fault;
	x->t_answer = cpl.t_answer;
	x->t_done = cpl.t_done;
	return ret;
}

static int hmirror_ioctl_prefetch(struct drm_device *drm, void *data,
				  struct drm_file *file)
{
	struct drm_hmirror_prefetch *args = data;
	struct hmirror_fault_req req = { };
	struct hmirror_ctx *ctx;
	unsigned long done;
	u64 left;
	int ret;

	ret = hmirror_ctx_of_file(file, &ctx);
	if (ret)
		return ret;
	if (args->flags & ~DRM_HMIRROR_PREFETCH_WRITE || args->pad ||
	    !PAGE_ALIGNED(args->addr) || !PAGE_ALIGNED(args->len) ||
	    args->len > DRM_HMIRROR_EXEC_MAX_LEN)
		return -EINVAL;
	ret = hmirror_user_range(ctx->hdev, args->addr, args->len);
	if (ret)
		return ret;

	req.write = args->flags & DRM_HMIRROR_PREFETCH_WRITE;
	req.start = args->addr;
	/* Until every page is mapped: GUP may stop short of a bad page. */
	for (left = args->len >> PAGE_SHIFT; left; left -= done) {
		req.npages = min_t(u64, left, HMIRROR_FAULT_NPAGES_MAX);
		ret = hmirror_fault_service(ctx, &req, &done);
		if (ret)
			return ret == -EPERM ? -EFAULT : ret;
		if (!done)
			return -EFAULT;
		req.start += (u64)done << PAGE_SHIFT;
	}
	return 0;
}

#define HMIRROR_SNAPSHOT_MAX	65536u
#define HMIRROR_SNAPSHOT_CHUNK	512u

static u8 hmirror_snap_value(u64 pte)
{
	u8 v;

	if (!(pte & HMIRROR_PTE_VALID))
		return DRM_HMIRROR_SNAP_NONE;
	v = pte & HMIRROR_PTE_WRITE ? DRM_HMIRROR_SNAP_WRITE :
				      DRM_HMIRROR_SNAP_READ;
	if (pte & HMIRROR_PTE_HUGE)
		v |= DRM_HMIRROR_SNAP_HUGE;
	if (pte & HMIRROR_PTE_VRAM)
		v |= DRM_HMIRROR_SNAP_DEVICE_MEMORY;
	return v;
}

static int hmirror_ioctl_snapshot(struct drm_device *drm, void *data,
				  struct drm_file *file)
{
	struct drm_hmirror_snapshot *args = data;
	u8 __user *out = u64_to_user_ptr(args->out);
	u8 buf[HMIRROR_SNAPSHOT_CHUNK];
	struct hmirror_ctx *ctx;
	u64 i, n, va;
	int ret;

	ret = hmirror_ctx_of_file(file, &ctx);
	if (ret)
		return ret;
	if (args->pad || !args->npages || args->npages > HMIRROR_SNAPSHOT_MAX ||
	    !PAGE_ALIGNED(args->addr))
		return -EINVAL;
	ret = hmirror_user_range(ctx->hdev, args->addr,
				 args->npages << PAGE_SHIFT);
	if (ret)
		return ret;

	va = args->addr;
	for (i = 0; i < args->npages; i += n) {
		u64 k;

		n = min_t(u64, args->npages - i, HMIRROR_SNAPSHOT_CHUNK);
		mutex_lock(&ctx->pt.lock);
		for (k = 0; k < n; k++, va += PAGE_SIZE)
			buf[k] = hmirror_snap_value(hmirror_pt_lookup(&ctx->pt, va));
		mutex_unlock(&ctx->pt.lock);
		if (copy_to_user(out + i, buf, n))
			return -EFAULT;
	}
	return 0;
}

static int hmirror_ioctl_ctx_stats(struct drm_device *drm, void *data,
				   struct drm_file *file)
{
	struct drm_hmirror_ctx_stats *st = data;
	struct hmirror_ctx *ctx;
	unsigned int i;
	int ret;

	ret = hmirror_ctx_of_file(file, &ctx);
	if (ret)
		return ret;
	memset(st, 0, sizeof(*st));
	for (i = 0; i < hmirror_ctx_num_counters; i++) {
		const struct hmirror_ctx_counter *c = &hmirror_ctx_counters[i];

		*(u64 *)((u8 *)st + c->uapi) = hmirror_ctx_counter_read(ctx, c);
	}
	st->mapped = READ_ONCE(ctx->pt.mapped);
	return 0;
}

static int hmirror_ioctl_migrate(struct drm_device *drm, void *data,
				 struct drm_file *file)
{
	struct drm_hmirror_migrate *args = data;
	struct hmirror_ctx *ctx;
	unsigned long moved = 0;
	int ret;

	ret = hmirror_ctx_of_file(file, &ctx);
	if (ret)
		return ret;
	if (args->flags & ~DRM_HMIRROR_MIGRATE_FLAGS || args->pad ||
	    args->reserved[0] || args->reserved[1] ||
	    !PAGE_ALIGNED(args->addr) || !PAGE_ALIGNED(args->len) ||
	    !args->len || args->len > DRM_HMIRROR_EXEC_MAX_LEN)
		return -EINVAL;
	ret = hmirror_user_range(ctx->hdev, args->addr, args->len);
	if (ret)
		return ret;
	if (args->flags & DRM_HMIRROR_MIGRATE_TO_SYSTEM)
		ret = hmirror_devmem_to_system(ctx->hdev, ctx->mm, args->addr,
					       args->addr + args->len, &moved);
	else
		ret = hmirror_devmem_to_device(ctx->hdev, ctx->mm, args->addr,
					       args->addr + args->len, &moved);
	args->migrated = moved;
	return ret == -ESRCH ? -EFAULT : ret;
}

const struct drm_ioctl_desc hmirror_ioctls[HMIRROR_NUM_IOCTLS] = {
	DRM_IOCTL_DEF_DRV(HMIRROR_GET_INFO, hmirror_ioctl_get_info, 0),
	DRM_IOCTL_DEF_DRV(HMIRROR_SUBMIT_NOP, hmirror_ioctl_submit_nop, 0),
	DRM_IOCTL_DEF_DRV(HMIRROR_WAIT, hmirror_ioctl_wait, 0),
	DRM_IOCTL_DEF_DRV(HMIRROR_STATS, hmirror_ioctl_stats, 0),
	DRM_IOCTL_DEF_DRV(HMIRROR_CTX_OPTIONS, hmirror_ioctl_ctx_options, 0),
	DRM_IOCTL_DEF_DRV(HMIRROR_EXEC, hmirror_ioctl_exec, 0),
	DRM_IOCTL_DEF_DRV(HMIRROR_PREFETCH, hmirror_ioctl_prefetch, 0),
	DRM_IOCTL_DEF_DRV(HMIRROR_SNAPSHOT, hmirror_ioctl_snapshot, 0),
	DRM_IOCTL_DEF_DRV(HMIRROR_CTX_STATS, hmirror_ioctl_ctx_stats, 0),
	DRM_IOCTL_DEF_DRV(HMIRROR_MIGRATE, hmirror_ioctl_migrate, 0),
};

static_assert(DRM_HMIRROR_MIGRATE + 1 == HMIRROR_NUM_IOCTLS);
