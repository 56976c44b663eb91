// SPDX-License-Identifier: GPL-2.0
/*
 * hmirror: running one device command for a context.  The submitting task
 * waits for its command and services the command's faults itself, so a
 * signal reaches the fault service (the command is then cancelled) and the
 * cost of a fault lands on the task that caused it.
 */
#include <linux/sched/signal.h>
#include <drm/drm_print.h>

#include "hmirror.h"
#include "hmirror_ctx.h"
#include "hmirror_fault.h"

/* The device may only fault inside the ranges the command names. */
static bool hmirror_fault_in_cmd(const struct hmirror_cmd *cmd,
				 const struct hmirror_fault *f)
{
	u64 fs = f->addr, fe = f->addr + ((u64)f->npages << PAGE_SHIFT);
	u64 ranges[2][2] = {
		{ cmd->src, cmd->src + cmd->len },
		{ cmd->dst, cmd->dst + cmd->len },
	};
	int i;

	for (i = 0; i < 2; i++) {
		u64 lo = round_down(ranges[i][0], PAGE_SIZE);
		u64 hi = round_up(ranges[i][1], PAGE_SIZE);

		if (cmd->len && fs >= lo && fe <= hi)
			return true;
	}
	return false;
}

/*
 * Make the rest of [req->start, end) present too, best effort: what fails
 * here the device will fault on, and be told then.
 */
static void hmirror_exec_fill(struct hmirror_ctx *ctx,
			      const struct hmirror_fault_req *done, u64 end)
{
	struct hmirror_fault_req req = { .write = done->write };

	req.start = done->start + ((u64)done->npages << PAGE_SHIFT);
	while (req.start < end) {
		req.npages = min_t(u64, (end - req.start) >> PAGE_SHIFT,
				   HMIRROR_FAULT_MAX_PAGES);
		if (!req.npages || hmirror_fault_service(ctx, &req))
			break;
		req.start += (u64)req.npages << PAGE_SHIFT;
	}
}

/* Service @f and answer the device.  Returns the service's error. */
static int hmirror_exec_fault(struct hmirror_ctx *ctx, u32 qi,
			      const struct hmirror_cmd *cmd,
			      const struct hmirror_fault *f,
			      struct hmirror_exec_result *res)
{
	struct hmirror_device *hdev = ctx->hdev;
	struct hmirror_fault_req req = {
		.start = f->addr,
		.npages = f->npages,
		.ahead = READ_ONCE(ctx->fault_ahead),
		.write = f->access & HMIRROR_ACCESS_WRITE,
	};
	ktime_t t0 = ktime_get();
	int ret;

	if (f->ctx != ctx->id || !hmirror_fault_in_cmd(cmd, f)) {
		hmirror_mark_dead(hdev, "fault outside the faulting command");
		return -EIO;
	}
	ret = hmirror_fault_service(ctx, &req);
	if (f->addr >= res->count_start && f->addr < res->count_end) {
		res->counted++;
		if (!ret && res->fill_counted)
			hmirror_exec_fill(ctx, &req, res->count_end);
	}
	hmirror_fault_answer(hdev, qi, f->fault_id,
			     ret ? HMIRROR_FAULT_CANCEL : HMIRROR_FAULT_REPLAY);
	res->faults++;
	res->service_ns += ktime_to_ns(ktime_sub(ktime_get(), t0));
	return ret;
}

/**
 * hmirror_exec - run one command in @ctx on queue @qi and wait for it
 * @ctx: the caller's context
 * @qi: engine queue
 * @cmd: command; ctx and seqno are filled in here
 * @res: out: completion and fault figures
 *
 * Return: 0; -EFAULT or -EINTR when a fault service failed and the command
 * was cancelled; -EIO when the device failed or rejected the command;
 * -ENODEV once the device is removed.
 */
int hmirror_exec(struct hmirror_ctx *ctx, u32 qi, struct hmirror_cmd *cmd,
		 struct hmirror_exec_result *res)
{
	struct hmirror_device *hdev = ctx->hdev;
	struct hmirror_queue *q = &hdev->queues[qi];
	struct hmirror_waiter w = { };
	unsigned long deadline, irqflags;
	struct hmirror_fault f;
	int fault_err = 0, ret;
	bool done, faulted;

	cmd->ctx = ctx->id;
	ret = hmirror_queue_submit_wait(hdev, qi, cmd, &w,
					HMIRROR_WAIT_INTERRUPTIBLE);
	if (ret)
		return ret;

	deadline = jiffies + msecs_to_jiffies(HMIRROR_CMD_TIMEOUT_MS);
	for (;;) {
		hmirror_queue_reap(hdev, q);
		hmirror_fault_drain(hdev);

		spin_lock_irqsave(&q->lock, irqflags);
		done = w.done;
		faulted = !done && w.fault_pending;
		if (faulted) {
			/*
			 * Taken before it is answered: the device may raise
			 * the command's next fault as soon as it sees the
			 * answer, and that one must find the waiter free.
			 */
			f = w.fault;
			w.fault_pending = false;
		}
		spin_unlock_irqrestore(&q->lock, irqflags);
		if (done)
			break;
		if (faulted) {
			ret = hmirror_exec_fault(ctx, qi, cmd, &f, res);
			if (ret && !fault_err)
				fault_err = ret;
			/* Only the device's own time counts against it. */
			deadline = jiffies + msecs_to_jiffies(HMIRROR_CMD_TIMEOUT_MS);
			continue;
		}
		ret = hmirror_hw_status(hdev);
		if (ret)
			goto out_forget;
		if (time_after(jiffies, deadline)) {
			hmirror_mark_dead(hdev, "command timed out");
			ret = -EIO;
			goto out_forget;
		}
		/*
		 * Not interruptible: without a fault to cancel, the command
		 * runs at device speed; signals act in the fault service.
		 */
		wait_event_timeout(q->wq, READ_ONCE(w.done) ||
				   READ_ONCE(w.fault_pending) ||
				   hmirror_hw_status(hdev),
				   msecs_to_jiffies(HMIRROR_POLL_SLICE_MS));
	}

	*res->cpl = w.cpl;
	switch (w.cpl.status) {
	case HMIRROR_ST_OK:
		return 0;
	case HMIRROR_ST_FAULT:
		return fault_err ? fault_err : -EFAULT;
	default:
		/* The driver checked the command: the device is wrong. */
		drm_dbg_driver(&hdev->drm, "command %llu op %u: status %u\n",
			       w.cpl.seqno, cmd->opcode, w.cpl.status);
		return -EIO;
	}

out_forget:
	hmirror_queue_forget(hdev, qi, &w);
	return ret;
}
