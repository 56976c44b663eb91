// SPDX-License-Identifier: GPL-2.0
/*
 * hmirror: running one device command for a context.  The submitting task
 * waits for its command and services the command's faults itself, so a
 * signal reaches the fault service (the command is then cancelled) and the
 * cost of a fault lands on the task that caused it.
 */
#include <linux/sched/clock.h>
#include <linux/sched/signal.h>
#include <drm/drm_drv.h>
#include <drm/drm_print.h>

#include "hmirror.h"
#include "hmirror_ctx.h"
#include "hmirror_exec.h"
#include "hmirror_fault.h"

/**
 * DOC: Fault isolation
 *
 * A command stalled on a fault delays only its context: the device parks it
 * and keeps running the queue's other commands (out-of-order completion),
 * a FENCE waits for its own context's earlier commands only, and one
 * context can hold at most a quarter of an engine's tags.  Real GPUs do the
 * same: only the faulting channel stalls.  Parking in the device, rather
 * than one queue per context, keeps the number of queues small and fixed
 * while any number of contexts share an engine.
 *
 * Deadlines measure the device's lack of progress, never a fault's
 * service: every queue publishes a ``progress`` counter (fetches, chunks,
 * faults, answers, completions).  A queue with commands in flight whose
 * counter has not moved for 10 s, while no fault of it is with the driver,
 * declares the device dead; a queue whose commands all wait on the driver
 * owes nothing.  The command wait ends only on a fatal signal (the command
 * runs at device speed unless it faults); waits for ring room and for a
 * fence (``NOP|WAIT``, the ``WAIT`` ioctl) end on any signal.
 */

/*
 * The device may only fault on an operand the command has, with the access
 * that operand needs (COPY reads src and writes dst, READ reads src, FILL
 * writes dst, ATOMIC updates dst), inside its page-rounded range.
 */
static bool hmirror_fault_in_cmd(const struct hmirror_hw_cmd *cmd,
				 const struct hmirror_hw_fault *f)
{
	u64 fs = f->addr, fe = f->addr + ((u64)f->npages << PAGE_SHIFT);
	struct {
		u64 base;
		u8 access;
	} ops[2];
	int i, n = 0;

	switch (cmd->opcode) {
	case HMIRROR_OP_COPY:
		ops[n].base = cmd->src;
		ops[n++].access = HMIRROR_ACCESS_READ;
		ops[n].base = cmd->dst;
		ops[n++].access = HMIRROR_ACCESS_WRITE;
		break;
	case HMIRROR_OP_READ:
		ops[n].base = cmd->src;
		ops[n++].access = HMIRROR_ACCESS_READ;
		break;
	case HMIRROR_OP_FILL:
		ops[n].base = cmd->dst;
		ops[n++].access = HMIRROR_ACCESS_WRITE;
		break;
	case HMIRROR_OP_ATOMIC:
		ops[n].base = cmd->dst;
		ops[n++].access = HMIRROR_ACCESS_ATOMIC;
		break;
	}
	for (i = 0; i < n; i++) {
		u64 lo = round_down(ops[i].base, PAGE_SIZE);
		u64 hi = round_up(ops[i].base + cmd->len, PAGE_SIZE);

		if (f->access == ops[i].access && fs >= lo && fe <= hi)
			return true;
	}
	return false;
}

/*
 * Service @f for the command.  Returns the service's error; -EIO for a
 * record the command cannot have caused (the device is then dead).  Runs
 * without any device access: the caller answers.
 */
static int hmirror_exec_fault(struct hmirror_ctx *ctx,
			      const struct hmirror_hw_cmd *cmd,
			      const struct hmirror_hw_fault *f,
			      struct hmirror_exec_result *res)
{
	struct hmirror_fault_req req = {
		.start = f->addr,
		.npages = f->npages,
		.ahead = READ_ONCE(ctx->fault_ahead),
		.write = f->access & HMIRROR_ACCESS_WRITE,
	};
	u64 t0 = local_clock();	/* hpet under TCG: an exit per read */
	int ret;

	if (f->ctx != ctx->id || !hmirror_fault_in_cmd(cmd, f)) {
		hmirror_hw_mark_dead(ctx->hdev, "fault outside the faulting command");
		return -EIO;
	}
	ret = hmirror_fault_service(ctx, &req, NULL);
	if (res->serviced)
		res->serviced(ctx, &req, ret, res->arg);
	res->faults++;
	res->service_ns += local_clock() - t0;
	return ret;
}

/**
 * hmirror_exec - run one command in @ctx on queue @qi and wait for it
 * @ctx: the caller's context
 * @qi: engine queue
 * @cmd: command; ctx, seqno and tag are filled in here
 * @res: out: completion and fault figures
 *
 * The device is entered (drm_dev_enter()) only while the driver talks to
 * it, never while a fault is serviced: removal must not wait for a task
 * blocked in GUP (on a userfaultfd handler, say).  The wait for the device
 * ends only on a fatal signal: the command runs at device speed unless it
 * faults, and signals act in the fault service.
 *
 * Return: 0; -EFAULT or -EINTR when a fault service failed and the command
 * was cancelled; -EINTR on a fatal signal; -EIO when the device failed or
 * rejected the command; -ENODEV once the device is removed.
 */
int hmirror_exec(struct hmirror_ctx *ctx, u32 qi, struct hmirror_hw_cmd *cmd,
		 struct hmirror_exec_result *res)
{
	struct hmirror_device *hdev = ctx->hdev;
	struct hmirror_waiter w = { };
	int fault_err = 0, ret, idx;
	struct hmirror_hw_fault f;
	u64 seqno;

	cmd->ctx = ctx->id;
	if (!drm_dev_enter(&hdev->drm, &idx))
		return -ENODEV;
	ret = hmirror_hw_submit(hdev, qi, cmd, 1, &seqno, &w,
				HMIRROR_WAIT_INTERRUPTIBLE);
	while (!ret) {
		ret = hmirror_hw_wait_event(hdev, qi, &w, &f,
					    HMIRROR_WAIT_KILLABLE |
					    HMIRROR_WAIT_POLL);
		if (ret <= 0)
			break;
		drm_dev_exit(idx);
		ret = hmirror_exec_fault(ctx, cmd, &f, res);
		if (ret && !fault_err)
			fault_err = ret;
		if (!drm_dev_enter(&hdev->drm, &idx)) {
			/* Removed meanwhile: it stopped the device. */
			hmirror_hw_forget(hdev, qi, &w);
			return -ENODEV;
		}
		/*
		 * A dead device takes no answer.  A live one gets CANCEL for a
		 * service that failed with -EIO too (a platform that cannot
		 * share the page): left unanswered, the command would stay
		 * parked for good, and its context's fences with it.
		 */
		if (ret == -EIO && hmirror_hw_status(hdev)) {
			hmirror_hw_forget(hdev, qi, &w);
			break;
		}
		hmirror_hw_fault_answer(hdev, qi, &f, ret ? HMIRROR_FAULT_CANCEL :
							    HMIRROR_FAULT_REPLAY);
		ret = 0;
	}
	drm_dev_exit(idx);
	if (ret)
		return ret;

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
}
