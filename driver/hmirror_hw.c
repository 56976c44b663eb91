// SPDX-License-Identifier: GPL-2.0
/*
 * hmirror: device access.  Header validation, the reset handshake, the
 * submission/completion rings, interrupts, doorbells and the watchdog that
 * declares a silent or lying device dead.
 *
 * Everything read from BAR2 is written by the device model and is treated
 * as untrusted: indices and sequence numbers are checked before use and a
 * bad one marks the device dead instead of being followed.
 */
#include <linux/delay.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/log2.h>
#include <linux/sched/signal.h>
#include <drm/drm_print.h>

#include "hmirror.h"

#define HMIRROR_MAX_RING_ENTRIES	65536u

static bool ring_size_ok(u32 entries)
{
	return entries >= 2 && entries <= HMIRROR_MAX_RING_ENTRIES &&
	       is_power_of_2(entries);
}

/**
 * hmirror_hw_check_header - is this ivshmem device an hmirror device?
 * @hdev: device with @shm mapping at least the header
 *
 * Copies the header once and checks every field the driver relies on, so
 * later code may use hdev->hdr without re-checking.
 *
 * Return: 0, or -ENODEV for anything that is not a device this driver
 * understands.
 */
int hmirror_hw_check_header(struct hmirror_device *hdev)
{
	struct hmirror_header *h = &hdev->hdr;
	struct device *dev = &hdev->pdev->dev;
	u32 max_ctx;

	memcpy_fromio(h, hdev->shm, sizeof(*h));

	if (h->magic != HMIRROR_MAGIC) {
		dev_info(dev, "ivshmem device without an hmirror header, not binding\n");
		return -ENODEV;
	}
	if ((h->version >> 16) != HMIRROR_VERSION_MAJOR) {
		dev_err(dev, "hmirror device version %u.%u, driver speaks %u.x\n",
			h->version >> 16, h->version & 0xffff,
			HMIRROR_VERSION_MAJOR);
		return -ENODEV;
	}

	max_ctx = (HMIRROR_RINGS_OFF - HMIRROR_CTX_OFF) /
		  sizeof(struct hmirror_ctx_entry);
	if (h->regs_off != HMIRROR_REGS_OFF ||
	    h->queues_off != HMIRROR_QUEUES_OFF ||
	    h->ctx_off != HMIRROR_CTX_OFF ||
	    h->rings_off != HMIRROR_RINGS_OFF ||
	    h->num_queues < 2 || h->num_queues > HMIRROR_MAX_QUEUES ||
	    !ring_size_ok(h->sq_entries) || !ring_size_ok(h->cq_entries) ||
	    !ring_size_ok(h->fault_entries) ||
	    h->max_contexts < 1 || h->max_contexts > max_ctx ||
	    h->num_vectors != HMIRROR_NUM_VECTORS ||
	    h->bar_size > hdev->shm_len) {
		dev_err(dev, "hmirror device header is inconsistent\n");
		return -ENODEV;
	}
	/* Bounded sizes above keep this within u32. */
	if (hmirror_layout_end(h) > h->bar_size) {
		dev_err(dev, "hmirror rings do not fit BAR2 (%u > %u)\n",
			hmirror_layout_end(h), h->bar_size);
		return -ENODEV;
	}
	return 0;
}

static void hmirror_doorbell(struct hmirror_device *hdev, u32 vector)
{
	writel((HMIRROR_DEVICE_PEER << 16) | vector,
	       hdev->regs_bar + IVSHMEM_REG_DOORBELL);
	atomic64_inc(&hdev->doorbells);
}

static void hmirror_wake_all(struct hmirror_device *hdev)
{
	u32 i;

	for (i = 0; i < hdev->num_queues; i++)
		wake_up_all(&hdev->queues[i].wq);
}

/**
 * hmirror_mark_dead - stop trusting the device
 * @hdev: device
 * @reason: static string for the log and debugging
 *
 * Turns bus mastering off so the device can do no more harm and wakes every
 * waiter, which then fails with -EIO.  Safe from any context.
 */
void hmirror_mark_dead(struct hmirror_device *hdev, const char *reason)
{
	if (test_and_set_bit(HMIRROR_F_DEAD, &hdev->flags))
		return;
	hdev->dead_reason = reason;
	drm_err(&hdev->drm, "device dead: %s\n", reason);
	pci_clear_master(hdev->pdev);
	hmirror_wake_all(hdev);
}

/**
 * hmirror_hw_status - can the device be used?
 * @hdev: device
 *
 * Return: 0, -ENODEV once removal started, -EIO once the device is dead.
 */
int hmirror_hw_status(struct hmirror_device *hdev)
{
	if (test_bit(HMIRROR_F_UNPLUGGED, &hdev->flags))
		return -ENODEV;
	if (test_bit(HMIRROR_F_DEAD, &hdev->flags))
		return -EIO;
	return 0;
}

/**
 * hmirror_queue_reap - consume completions the device has written
 * @hdev: device
 * @q: queue
 *
 * Called from the interrupt handler and from every waiter, because an
 * interrupt may be lost.  Completions must arrive in submission order.
 */
void hmirror_queue_reap(struct hmirror_device *hdev, struct hmirror_queue *q)
{
	u32 entries = hdev->hdr.cq_entries;
	bool was_full, progressed = false;
	struct hmirror_waiter *w;
	unsigned long irqflags;
	u32 tail;

	spin_lock_irqsave(&q->lock, irqflags);
	if (test_bit(HMIRROR_F_DEAD, &hdev->flags))
		goto out;
	tail = readl(&q->regs->cq_tail);
	if (tail - q->cq_head > entries) {
		spin_unlock_irqrestore(&q->lock, irqflags);
		hmirror_mark_dead(hdev, "completion ring index out of range");
		return;
	}
	was_full = tail - q->cq_head == entries;
	while (q->cq_head != tail) {
		struct hmirror_cpl __iomem *cpl = &q->cq[q->cq_head & (entries - 1)];
		u64 seqno = readq(&cpl->seqno);

		if (seqno != q->completed + 1 || seqno >= q->next_seqno) {
			spin_unlock_irqrestore(&q->lock, irqflags);
			hmirror_mark_dead(hdev, "completion for a command never submitted");
			return;
		}
		if (readw(&cpl->status) != HMIRROR_ST_OK)
			q->errors++;
		w = q->waiters[seqno & (hdev->hdr.sq_entries - 1)];
		if (w && w->seqno == seqno) {
			memcpy_fromio(&w->cpl, cpl, sizeof(w->cpl));
			w->done = true;
			q->waiters[seqno & (hdev->hdr.sq_entries - 1)] = NULL;
		}
		q->completed = seqno;
		q->cq_head++;
		atomic64_inc(&hdev->cmds_completed);
		progressed = true;
	}
	if (progressed) {
		writel(q->cq_head, &q->regs->cq_head);
		/* A full ring stopped the device; tell it there is room. */
		if (was_full)
			hmirror_doorbell(hdev, HMIRROR_VEC_CQ);
	}
out:
	spin_unlock_irqrestore(&q->lock, irqflags);
	if (progressed)
		wake_up_all(&q->wq);
}

static irqreturn_t hmirror_irq_cq(int irq, void *arg)
{
	struct hmirror_device *hdev = arg;
	u32 i;

	atomic64_inc(&hdev->irqs[HMIRROR_VEC_CQ]);
	for (i = 0; i < hdev->num_queues; i++)
		hmirror_queue_reap(hdev, &hdev->queues[i]);
	return IRQ_HANDLED;
}

static irqreturn_t hmirror_irq_fault(int irq, void *arg)
{
	struct hmirror_device *hdev = arg;

	atomic64_inc(&hdev->irqs[HMIRROR_VEC_FAULT]);
	hmirror_fault_drain(hdev);
	return IRQ_HANDLED;
}

static irqreturn_t hmirror_irq_ctrl(int irq, void *arg)
{
	struct hmirror_device *hdev = arg;
	u32 status;

	atomic64_inc(&hdev->irqs[HMIRROR_VEC_CTRL]);
	status = readl(&hdev->regs->dev_status);
	if (status & HMIRROR_DEV_GONE)
		hmirror_mark_dead(hdev, "device model shut down");
	else
		hmirror_wake_all(hdev);
	return IRQ_HANDLED;
}

static const irq_handler_t hmirror_irq_handlers[HMIRROR_NUM_VECTORS] = {
	[HMIRROR_VEC_CQ] = hmirror_irq_cq,
	[HMIRROR_VEC_FAULT] = hmirror_irq_fault,
	[HMIRROR_VEC_CTRL] = hmirror_irq_ctrl,
};

static int hmirror_request_irqs(struct hmirror_device *hdev)
{
	struct pci_dev *pdev = hdev->pdev;
	int ret, v;

	ret = pci_alloc_irq_vectors(pdev, HMIRROR_NUM_VECTORS,
				    HMIRROR_NUM_VECTORS, PCI_IRQ_MSIX);
	if (ret < 0) {
		dev_err(&pdev->dev, "needs %d MSI-X vectors: %d\n",
			HMIRROR_NUM_VECTORS, ret);
		return ret;
	}
	for (v = 0; v < HMIRROR_NUM_VECTORS; v++) {
		ret = devm_request_irq(&pdev->dev, pci_irq_vector(pdev, v),
				       hmirror_irq_handlers[v], 0,
				       HMIRROR_DRIVER_NAME, hdev);
		if (ret) {
			dev_err(&pdev->dev, "irq %d: %d\n", v, ret);
			return ret;
		}
	}
	return 0;
}

/*
 * Reset handshake: the device ignores the rings until it has acknowledged
 * a reset generation.  MSI-X is enabled before this, so from here on the
 * device's interrupts reach us (QEMU drops them while MSI-X is off).
 */
static int hmirror_hw_reset(struct hmirror_device *hdev)
{
	unsigned long deadline;
	u32 gen, status, i;

	for (i = 0; i < hdev->num_queues; i++) {
		struct hmirror_queue *q = &hdev->queues[i];

		writel(0, &q->regs->sq_tail);
		writel(0, &q->regs->cq_head);
		q->sq_tail = 0;
		q->cq_head = 0;
		q->next_seqno = 1;
		q->completed = 0;
	}
	writel(0, &hdev->fault_regs->head);
	hdev->fault_head = 0;
	gen = readl(&hdev->regs->dev_reset_ack) + 1;
	writel(HMIRROR_DRV_ENABLE, &hdev->regs->drv_ctrl);
	writel(gen, &hdev->regs->drv_reset_gen);
	hmirror_doorbell(hdev, HMIRROR_VEC_CTRL);

	deadline = jiffies + msecs_to_jiffies(HMIRROR_RESET_TIMEOUT_MS);
	for (;;) {
		status = readl(&hdev->regs->dev_status);
		if (status & HMIRROR_DEV_GONE)
			return -ENODEV;
		if (readl(&hdev->regs->dev_reset_ack) == gen &&
		    (status & HMIRROR_DEV_ENABLED))
			return 0;
		if (time_after(jiffies, deadline))
			return -ETIMEDOUT;
		usleep_range(1000, 2000);
	}
}

static void hmirror_watchdog(struct work_struct *work)
{
	struct hmirror_device *hdev =
		container_of(to_delayed_work(work), struct hmirror_device, watchdog);
	u64 hb;
	u32 i;

	if (hmirror_hw_status(hdev))
		return;
	if (readl(&hdev->regs->dev_status) & HMIRROR_DEV_GONE) {
		hmirror_mark_dead(hdev, "device model shut down");
		return;
	}
	hb = readq(&hdev->regs->heartbeat);
	if (hb != hdev->last_heartbeat) {
		hdev->last_heartbeat = hb;
		hdev->heartbeat_stamp = jiffies;
	} else if (time_after(jiffies, hdev->heartbeat_stamp +
			      msecs_to_jiffies(HMIRROR_HEARTBEAT_TIMEOUT_MS))) {
		hmirror_mark_dead(hdev, "heartbeat stopped");
		return;
	}
	/* Pick up completions and faults whose interrupt went missing. */
	for (i = 0; i < hdev->num_queues; i++)
		hmirror_queue_reap(hdev, &hdev->queues[i]);
	hmirror_fault_drain(hdev);
	schedule_delayed_work(&hdev->watchdog,
			      msecs_to_jiffies(HMIRROR_WATCHDOG_PERIOD_MS));
}

/**
 * hmirror_hw_init - bring the device up
 * @hdev: device whose header was checked by hmirror_hw_check_header()
 *
 * Return: 0 or a negative errno; resources are device-managed.
 */
int hmirror_hw_init(struct hmirror_device *hdev)
{
	const struct hmirror_header *h = &hdev->hdr;
	u32 i;
	int ret;

	hdev->regs = hdev->shm + HMIRROR_REGS_OFF;
	hdev->num_queues = h->num_queues;
	for (i = 0; i < hdev->num_queues; i++) {
		struct hmirror_queue *q = &hdev->queues[i];

		spin_lock_init(&q->lock);
		init_waitqueue_head(&q->wq);
		q->index = i;
		q->regs = hdev->shm + HMIRROR_QUEUES_OFF +
			  i * sizeof(struct hmirror_queue_regs);
		q->sq = hdev->shm + hmirror_sq_off(h, i);
		q->cq = hdev->shm + hmirror_cq_off(h, i);
		q->waiters = devm_kcalloc(&hdev->pdev->dev, h->sq_entries,
					  sizeof(*q->waiters), GFP_KERNEL);
		if (!q->waiters)
			return -ENOMEM;
	}
	spin_lock_init(&hdev->fault_lock);
	hdev->fault_regs = hdev->shm + HMIRROR_FAULT_REGS_OFF;
	hdev->fault_ring = hdev->shm + hmirror_fault_ring_off(h);
	hdev->fault_head = 0;

	ret = hmirror_request_irqs(hdev);
	if (ret)
		return ret;

	ret = hmirror_hw_reset(hdev);
	if (ret) {
		dev_err(&hdev->pdev->dev, "device did not acknowledge reset: %d\n",
			ret);
		return ret;
	}

	hdev->last_heartbeat = readq(&hdev->regs->heartbeat);
	hdev->heartbeat_stamp = jiffies;
	INIT_DELAYED_WORK(&hdev->watchdog, hmirror_watchdog);
	schedule_delayed_work(&hdev->watchdog,
			      msecs_to_jiffies(HMIRROR_WATCHDOG_PERIOD_MS));
	return 0;
}

/**
 * hmirror_hw_fini - quiesce the device before its resources go away
 * @hdev: device
 */
void hmirror_hw_fini(struct hmirror_device *hdev)
{
	cancel_delayed_work_sync(&hdev->watchdog);
	if (!test_bit(HMIRROR_F_DEAD, &hdev->flags)) {
		writel(0, &hdev->regs->drv_ctrl);
		hmirror_doorbell(hdev, HMIRROR_VEC_CTRL);
	}
}

/*
 * Room for new commands on @q: free ring slots, and at most @entries
 * commands in flight so waiter slots never collide.  -1 when the device's
 * sq_head is impossible.
 */
static long hmirror_sq_room(struct hmirror_queue *q, u32 entries)
{
	u32 used = q->sq_tail - readl(&q->regs->sq_head);
	u64 inflight = READ_ONCE(q->next_seqno) - 1 - READ_ONCE(q->completed);

	if (used > entries)
		return -1;
	return min_t(u64, entries - used,
		     inflight < entries ? entries - inflight : 0);
}

/*
 * Sleep on @q until @done(q) holds, re-checking the rings every poll slice
 * in case an interrupt was lost.  Gives up with -ETIME at @deadline (in
 * jiffies), -EINTR on a signal when @interruptible, -EIO/-ENODEV if the
 * device goes away.  Invalidations sleep uninterruptibly: they must finish
 * even in a task that is being killed, and the deadline bounds them.
 */
static int hmirror_queue_sleep(struct hmirror_device *hdev,
			       struct hmirror_queue *q,
			       bool (*done)(struct hmirror_queue *q, u64 arg),
			       u64 arg, unsigned long deadline,
			       bool interruptible)
{
	long slice, ret;

	for (;;) {
		hmirror_queue_reap(hdev, q);
		if (done(q, arg))
			return 0;
		ret = hmirror_hw_status(hdev);
		if (ret)
			return ret;
		if (time_after_eq(jiffies, deadline))
			return -ETIME;
		slice = min_t(long, deadline - jiffies,
			      msecs_to_jiffies(HMIRROR_POLL_SLICE_MS));
		if (!interruptible) {
			wait_event_timeout(q->wq, done(q, arg) ||
					   hmirror_hw_status(hdev), slice);
			continue;
		}
		ret = wait_event_interruptible_timeout(q->wq,
						       done(q, arg) ||
						       hmirror_hw_status(hdev),
						       slice);
		if (ret < 0)
			return -EINTR;
	}
}

static bool hmirror_seqno_done(struct hmirror_queue *q, u64 seqno)
{
	return READ_ONCE(q->completed) >= seqno;
}

static bool hmirror_sq_not_full(struct hmirror_queue *q, u64 entries)
{
	return hmirror_sq_room(q, entries) > 0;
}

/**
 * __hmirror_queue_submit - put commands on a queue and ring the doorbell
 * @hdev: device
 * @qi: queue index, < hdev->num_queues
 * @cmds: commands; their seqno fields are assigned here
 * @count: number of commands
 * @last_seqno: out: sequence number of the last command
 * @flags: HMIRROR_WAIT_*
 * @w: waiter to register for the (single) command, or NULL
 *
 * Waits for ring space if needed.
 *
 * Return: 0, -EINTR, -EIO or -ENODEV.  On error some commands may already
 * be queued; @last_seqno then names the last one that was.
 */
static int __hmirror_queue_submit(struct hmirror_device *hdev, u32 qi,
				  const struct hmirror_cmd *cmds, u32 count,
				  u64 *last_seqno, unsigned int flags,
				  struct hmirror_waiter *w)
{
	struct hmirror_queue *q = &hdev->queues[qi];
	u32 entries = hdev->hdr.sq_entries;
	unsigned long irqflags;
	long room;
	u32 n;
	int ret;

	*last_seqno = 0;
	while (count) {
		ret = hmirror_queue_sleep(hdev, q, hmirror_sq_not_full, entries,
					  jiffies + msecs_to_jiffies(HMIRROR_CMD_TIMEOUT_MS),
					  flags & HMIRROR_WAIT_INTERRUPTIBLE);
		if (ret == -ETIME) {
			hmirror_mark_dead(hdev, "submission ring stuck");
			ret = -EIO;
		}
		if (ret)
			return ret;

		spin_lock_irqsave(&q->lock, irqflags);
		ret = hmirror_hw_status(hdev);
		room = ret ? 0 : hmirror_sq_room(q, entries);
		if (room < 0)
			ret = -EIO;
		if (ret) {
			spin_unlock_irqrestore(&q->lock, irqflags);
			if (ret == -EIO)
				hmirror_mark_dead(hdev, "submission ring index out of range");
			return ret;
		}
		for (n = 0; n < min_t(u32, room, count); n++) {
			struct hmirror_cmd __iomem *slot =
				&q->sq[q->sq_tail & (entries - 1)];
			struct hmirror_cmd cmd = cmds[n];

			cmd.seqno = q->next_seqno++;
			if (w) {
				w->seqno = cmd.seqno;
				q->waiters[cmd.seqno & (entries - 1)] = w;
			}
			memcpy_toio(slot, &cmd, sizeof(cmd));
			q->sq_tail++;
			*last_seqno = cmd.seqno;
		}
		/* writel orders the descriptor stores before the tail. */
		writel(q->sq_tail, &q->regs->sq_tail);
		spin_unlock_irqrestore(&q->lock, irqflags);
		atomic64_add(n, &hdev->cmds_submitted);
		hmirror_doorbell(hdev, HMIRROR_VEC_CQ);
		cmds += n;
		count -= n;
	}
	return 0;
}

int hmirror_queue_submit(struct hmirror_device *hdev, u32 qi,
			 const struct hmirror_cmd *cmds, u32 count,
			 u64 *last_seqno, unsigned int flags)
{
	return __hmirror_queue_submit(hdev, qi, cmds, count, last_seqno,
				      flags, NULL);
}

/**
 * hmirror_queue_submit_wait - queue one command whose result is wanted
 * @hdev: device
 * @qi: queue index
 * @cmd: command
 * @w: waiter, zeroed; gets the seqno, later the completion or a fault
 * @flags: HMIRROR_WAIT_*
 *
 * The caller must hmirror_queue_forget() @w before it goes out of scope.
 *
 * Return: 0, -EINTR, -EIO or -ENODEV.
 */
int hmirror_queue_submit_wait(struct hmirror_device *hdev, u32 qi,
			      const struct hmirror_cmd *cmd,
			      struct hmirror_waiter *w, unsigned int flags)
{
	u64 seqno;

	return __hmirror_queue_submit(hdev, qi, cmd, 1, &seqno, flags, w);
}

/**
 * hmirror_queue_forget - unregister a waiter (completed or abandoned)
 * @hdev: device
 * @qi: queue index
 * @w: waiter
 */
void hmirror_queue_forget(struct hmirror_device *hdev, u32 qi,
			  struct hmirror_waiter *w)
{
	struct hmirror_queue *q = &hdev->queues[qi];
	u32 slot = w->seqno & (hdev->hdr.sq_entries - 1);
	unsigned long irqflags;

	spin_lock_irqsave(&q->lock, irqflags);
	if (q->waiters[slot] == w)
		q->waiters[slot] = NULL;
	spin_unlock_irqrestore(&q->lock, irqflags);
}

/* Is @f a record this driver could have caused?  Not yet matched. */
static bool hmirror_fault_plausible(struct hmirror_device *hdev,
				    const struct hmirror_fault *f)
{
	return f->fault_id && f->queue >= 1 && f->queue < hdev->num_queues &&
	       f->ctx && f->ctx < hdev->hdr.max_contexts &&
	       f->access >= HMIRROR_ACCESS_READ &&
	       f->access <= HMIRROR_ACCESS_ATOMIC &&
	       PAGE_ALIGNED(f->addr) && !(f->addr >> HMIRROR_VA_BITS) &&
	       f->npages >= 1 && f->npages <= HMIRROR_FAULT_MAX_PAGES &&
	       !((f->addr + ((u64)f->npages << PAGE_SHIFT) - 1) >> HMIRROR_VA_BITS);
}

/**
 * hmirror_fault_drain - hand the device's fault records to their commands
 * @hdev: device
 *
 * A record is given to the task waiting for the command it names, which
 * services and answers it.  A record naming a command nobody waits for
 * is cancelled here; an impossible record marks the device dead.
 */
void hmirror_fault_drain(struct hmirror_device *hdev)
{
	u32 entries = hdev->hdr.fault_entries;
	unsigned long irqflags;
	const char *bad = NULL;
	u32 tail;

	spin_lock_irqsave(&hdev->fault_lock, irqflags);
	if (hmirror_hw_status(hdev))
		goto out;
	tail = readl(&hdev->fault_regs->tail);
	if (tail - hdev->fault_head > entries) {
		bad = "fault ring index out of range";
		goto out;
	}
	while (hdev->fault_head != tail) {
		struct hmirror_fault f;
		struct hmirror_queue *q;
		struct hmirror_waiter *w;
		bool orphan = false;

		memcpy_fromio(&f, &hdev->fault_ring[hdev->fault_head & (entries - 1)],
			      sizeof(f));
		hdev->fault_head++;
		if (!hmirror_fault_plausible(hdev, &f)) {
			bad = "malformed fault record";
			break;
		}
		q = &hdev->queues[f.queue];
		spin_lock(&q->lock);
		if (f.seqno <= q->completed || f.seqno >= q->next_seqno) {
			bad = "fault for a command not in flight";
		} else {
			w = q->waiters[f.seqno & (hdev->hdr.sq_entries - 1)];
			if (w && w->seqno == f.seqno && !w->fault_pending) {
				w->fault = f;
				w->fault_pending = true;
			} else {
				orphan = true;
			}
		}
		spin_unlock(&q->lock);
		if (bad)
			break;
		if (orphan) {
			atomic64_inc(&hdev->faults_orphaned);
			hmirror_fault_answer(hdev, f.queue, f.fault_id,
					     HMIRROR_FAULT_CANCEL);
		} else {
			wake_up_all(&q->wq);
		}
	}
	writel(hdev->fault_head, &hdev->fault_regs->head);
out:
	spin_unlock_irqrestore(&hdev->fault_lock, irqflags);
	if (bad)
		hmirror_mark_dead(hdev, bad);
}

/**
 * hmirror_fault_answer - tell a stalled engine to replay or cancel
 * @hdev: device
 * @qi: the engine's queue
 * @fault_id: the record's id
 * @answer: HMIRROR_FAULT_REPLAY or HMIRROR_FAULT_CANCEL
 */
void hmirror_fault_answer(struct hmirror_device *hdev, u32 qi, u32 fault_id,
			  u32 answer)
{
	struct hmirror_queue_regs __iomem *regs = hdev->queues[qi].regs;

	/* The device matches the id, so the answer goes first. */
	writel(answer, &regs->fault_answer);
	writel(fault_id, &regs->fault_answer_id);
	hmirror_doorbell(hdev, HMIRROR_VEC_FAULT);
}

/**
 * hmirror_queue_wait - wait for a sequence number to complete
 * @hdev: device
 * @qi: queue index
 * @seqno: sequence number already submitted on @qi
 * @timeout_ms: 0 to poll once
 * @completed: out: last completed sequence number
 * @flags: HMIRROR_WAIT_*
 *
 * Return: 0, -EBUSY (poll, not done), -ETIME, -EINTR, -EIO or -ENODEV.
 */
int hmirror_queue_wait(struct hmirror_device *hdev, u32 qi, u64 seqno,
		       unsigned long timeout_ms, u64 *completed,
		       unsigned int flags)
{
	struct hmirror_queue *q = &hdev->queues[qi];
	int ret;

	ret = hmirror_queue_sleep(hdev, q, hmirror_seqno_done, seqno,
				  jiffies + msecs_to_jiffies(timeout_ms),
				  flags & HMIRROR_WAIT_INTERRUPTIBLE);
	*completed = READ_ONCE(q->completed);
	if (ret == -ETIME && !timeout_ms)
		ret = -EBUSY;
	return ret;
}
