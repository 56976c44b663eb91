// SPDX-License-Identifier: GPL-2.0
/*
 * hmirror: device access.  Header validation, the reset and bus-master
 * handshakes, the submission/completion rings with their tags, the fault
 * ring and its answers, interrupts, doorbells, the watchdog, and the dead
 * device: stopped, then proven quiescent before anything it could reach
 * is released.
 *
 * Everything read from BAR2 is written by the device model and is treated
 * as untrusted: indices, tags, sequence numbers and fault records are
 * checked before use and a bad one marks the device dead instead of being
 * followed.
 */
#include <linux/delay.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/io-64-nonatomic-lo-hi.h>
#include <linux/ktime.h>
#include <linux/log2.h>
#include <linux/moduleparam.h>
#include <linux/sched/clock.h>
#include <linux/sched/signal.h>
#include <drm/drm_drv.h>
#include <drm/drm_print.h>

#include "hmirror.h"

/**
 * DOC: Probe and the rings
 *
 * Probe maps BAR0 and only the first page of BAR2, checks the header (anything
 * else is ``-ENODEV``: other ivshmem devices stay unbound; so is a device of
 * another major version, one that lacks a feature the driver relies on —
 * ``NOP``, ``TRANSLATE``, ``ATOMIC``, ``TIMESTAMPS``; ``HUGE_2M`` is optional
 * — or whose ``va_bits`` is neither 48 nor 57), maps the rest, allocates 3
 * MSI-X vectors, *then* runs the reset handshake (QEMU drops interrupts while
 * MSI-X is off, so the handshake polls): ``drv_ctrl = ENABLE | BUS_MASTER``,
 * a new control and reset generation, and both acknowledgements; then it
 * starts the watchdog and registers the DRM device and the compat nodes.
 *
 * Each device queue has an irq-safe spinlock serialising submitters, the
 * completion reaper and the fault drain's hand-over.  A submitter copies a
 * descriptor into the SQ with a sequence number (1, 2, … per queue) and a
 * *tag*, a free slot of the queue's in-flight table (``sq_entries`` slots:
 * sequence number, waiter, context, opcode), writes ``sq_tail`` and rings
 * the doorbell.  Completions come in any order (the device parks a command
 * stalled on a fault and goes on): the reaper (CQ interrupt, every waiter's
 * poll slice, the watchdog — an interrupt can be lost) checks every value
 * the device wrote: an impossible ``cq_tail``, or a completion whose tag is
 * not in flight with that sequence number, marks the device dead instead of
 * being followed.  Engine ``n`` of the uapi is queue ``n + 1``; queue 0 is
 * the driver's management queue (TLB invalidation).
 *
 * One context may have at most a quarter of an engine's tags in flight
 * (``sq_entries / 4``): a process whose commands all stall on faults (a slow
 * userfaultfd handler, say) delays only itself.
 */

/**
 * DOC: Failure handling
 *
 * The device is declared dead when ``dev_status`` says ``GONE``, the
 * heartbeat stops for 3 s (watchdog every 500 ms), a queue owes work and
 * makes no progress for 10 s, a TLB invalidation fails, or the device writes
 * an impossible index, tag, sequence number or fault record.  Marking dead
 * asks the device to stop DMA and reset (``drv_ctrl`` without
 * ``BUS_MASTER``, new control and reset generations), turns PCI bus
 * mastering off, logs the reason once and wakes every waiter; later
 * submissions fail with ``-EIO`` while queries still answer.  Notifier
 * callbacks never wait for a dead device.
 *
 * *Dead means quiesced before anything is freed.*  The device confirms it
 * stopped (``dev_ctrl_ack`` plus ``DMA_OFF``; a model that shut down sets
 * ``GONE`` only after joining its engines, which counts too); a worker polls
 * for that.  Until then, whatever the device could still reach — pages
 * (with their references), DMA mappings, page-table pages — goes to a
 * *graveyard* instead of being released: a zap whose TLB flush failed,
 * and the tables of contexts closed or emptied meanwhile.  The
 * confirmation releases the graveyard; a device that never confirms
 * (a SIGKILLed model, a hung one) keeps it forever, which is a leak, not a
 * corruption.  ``STATS`` reports the state (``DEAD``, ``QUIESCED``) and
 * ``kept_pages``.  Measured under TCG: a killed model is reported dead after
 * ~3.5 s.
 *
 * ``remove`` unregisters the compat nodes, sets ``UNPLUGGED`` and wakes every
 * waiter *before* ``drm_dev_unplug()`` (which waits for ioctls to leave the
 * device; none waits there for long, since fault service runs outside),
 * then asks the device to stop DMA and reset and waits up to 2 s for its
 * confirmation, then empties every context: with the confirmation
 * everything is released, without it kept.  Open files survive the device
 * (their ioctls return ``-ENODEV``); the module cannot be unloaded while a
 * file is open.
 *
 * ``debugfs/accel/<pci>/hmirror_inject`` injects faults for tests: ``dead``
 * declares the device dead; ``leave-after-fault`` makes the next waiter
 * handed a device fault leave as if a fatal signal had come at that moment
 * (its command returns ``-EINTR``, and the fault must still be answered:
 * ``coh.waiter_leaving_with_a_fault_answers_it``); ``none`` disarms what is
 * armed and unused (``hmirror_counters`` shows ``inject_leave_armed``).
 */

#define HMIRROR_MAX_RING_ENTRIES	65536u
/* What the driver cannot work without; HUGE_2M is optional. */
#define HMIRROR_FEAT_REQUIRED	(HMIRROR_FEAT_NOP | HMIRROR_FEAT_TRANSLATE | \
				 HMIRROR_FEAT_ATOMIC | HMIRROR_FEAT_TIMESTAMPS)

static bool ring_size_ok(u32 entries)
{
	return entries >= 2 && entries <= HMIRROR_MAX_RING_ENTRIES &&
	       is_power_of_2(entries);
}

/* One block of BAR2: [off, off + len) */
struct hmirror_bar_block {
	u32 off;
	u64 len;
};

/*
 * The header's blocks must lie inside BAR2 past the header, 8-byte
 * aligned, and apart: the driver uses the offsets the device publishes.
 */
static bool hmirror_blocks_ok(struct hmirror_bar_block *b, int n, u32 bar_size)
{
	int i, j;

	for (i = 0; i < n; i++) {
		if (b[i].off < sizeof(struct hmirror_header) || b[i].off % 8 ||
		    b[i].off > bar_size || b[i].len > bar_size - b[i].off)
			return false;
		for (j = 0; j < i; j++)
			if (b[i].off < b[j].off + b[j].len &&
			    b[j].off < b[i].off + b[i].len)
				return false;
	}
	return true;
}

/**
 * hmirror_hw_check_header - is this ivshmem device an hmirror device?
 * @hdev: device with @shm mapping at least the header
 *
 * Copies the header once and checks every field the driver relies on,
 * keeping CPU-order copies of what it uses, so later code needs no check.
 *
 * Return: 0, or -ENODEV for anything that is not a device this driver
 * understands.
 */
int hmirror_hw_check_header(struct hmirror_device *hdev)
{
	struct hmirror_header *h = &hdev->hdr;
	struct device *dev = &hdev->pdev->dev;
	struct hmirror_bar_block blocks[6];
	u32 version, num_queues, va_bits;
	u64 features;

	memcpy_fromio(h, hdev->shm, sizeof(*h));
	if (le32_to_cpu(h->magic) != HMIRROR_MAGIC) {
		dev_info(dev, "ivshmem device without an hmirror header, not binding\n");
		return -ENODEV;
	}
	version = le32_to_cpu(h->version);
	if ((version >> 16) != HMIRROR_VERSION_MAJOR) {
		dev_err(dev, "hmirror device version %u.%u, driver speaks %u.x\n",
			version >> 16, version & 0xffff, HMIRROR_VERSION_MAJOR);
		return -ENODEV;
	}
	features = le64_to_cpu(h->features);
	if ((features & HMIRROR_FEAT_REQUIRED) != HMIRROR_FEAT_REQUIRED) {
		dev_err(dev, "hmirror device lacks features 0x%llx\n",
			HMIRROR_FEAT_REQUIRED & ~features);
		return -ENODEV;
	}
	num_queues = le32_to_cpu(h->num_queues);
	va_bits = le32_to_cpu(h->va_bits);
	hdev->bar_size = le32_to_cpu(h->bar_size);
	hdev->sq_entries = le32_to_cpu(h->sq_entries);
	hdev->cq_entries = le32_to_cpu(h->cq_entries);
	hdev->fault_entries = le32_to_cpu(h->fault_entries);
	hdev->max_contexts = le32_to_cpu(h->max_contexts);
	if (num_queues < 2 || num_queues > HMIRROR_MAX_QUEUES ||
	    !ring_size_ok(hdev->sq_entries) || !ring_size_ok(hdev->cq_entries) ||
	    !ring_size_ok(hdev->fault_entries) ||
	    hdev->max_contexts < 2 || hdev->max_contexts > U16_MAX ||
	    le32_to_cpu(h->num_vectors) != HMIRROR_NUM_VECTORS ||
	    (va_bits != HMIRROR_VA_BITS_4LEVEL &&
	     va_bits != HMIRROR_VA_BITS_5LEVEL) ||
	    hdev->bar_size > hdev->shm_len ||
	    !IS_ALIGNED(le32_to_cpu(h->rings_off), SZ_4K)) {
		dev_err(dev, "hmirror device header is inconsistent\n");
		return -ENODEV;
	}
	hdev->regs_off = le32_to_cpu(h->regs_off);
	hdev->queues_off = le32_to_cpu(h->queues_off);
	hdev->fault_regs_off = le32_to_cpu(h->fault_regs_off);
	hdev->ctx_off = le32_to_cpu(h->ctx_off);
	blocks[0] = (struct hmirror_bar_block){ hdev->regs_off,
						sizeof(struct hmirror_regs) };
	blocks[1] = (struct hmirror_bar_block){ hdev->queues_off,
		(u64)num_queues * sizeof(struct hmirror_queue_regs) };
	blocks[2] = (struct hmirror_bar_block){ hdev->fault_regs_off,
						sizeof(struct hmirror_fault_regs) };
	blocks[3] = (struct hmirror_bar_block){ hdev->ctx_off,
		(u64)hdev->max_contexts * sizeof(struct hmirror_ctx_entry) };
	/* Bounded sizes above keep the layout within u32. */
	blocks[4] = (struct hmirror_bar_block){ le32_to_cpu(h->rings_off),
		hmirror_layout_end(h) - le32_to_cpu(h->rings_off) };
	hdev->shootdown = features & HMIRROR_FEAT_SHOOTDOWN;
	hdev->sd_off = le32_to_cpu(h->shootdown_off);
	blocks[5] = (struct hmirror_bar_block){ hdev->sd_off,
						sizeof(struct hmirror_shootdown) };
	if (!hmirror_blocks_ok(blocks, ARRAY_SIZE(blocks) - !hdev->shootdown,
			       hdev->bar_size)) {
		dev_err(dev, "hmirror device layout does not fit BAR2 or overlaps\n");
		return -ENODEV;
	}
	hdev->version = version;
	hdev->features = features;
	hdev->num_queues = num_queues;
	hdev->va_bits = va_bits;
	hdev->va_end = 1ull << va_bits;
	hdev->huge = features & HMIRROR_FEAT_HUGE_2M;
	hdev->poll_hints = features & HMIRROR_FEAT_POLL;
	/* Device memory beyond 4 GiB is refused, not half used. */
	hdev->vram_pages = features & HMIRROR_FEAT_VRAM ?
			   le32_to_cpu(h->vram_pages) : 0;
	if (hdev->vram_pages > HMIRROR_VRAM_PAGES_MAX) {
		dev_err(dev, "hmirror device has more device memory than the driver handles (%u pages)\n",
			hdev->vram_pages);
		hdev->vram_pages = 0;
	}
	return 0;
}

static void hmirror_doorbell(struct hmirror_device *hdev, u32 vector)
{
	writel((HMIRROR_DEVICE_PEER << 16) | vector,
	       hdev->regs_bar + IVSHMEM_REG_DOORBELL);
	atomic64_inc(&hdev->doorbells);
}

/*
 * Tell @q's engine about new work (@vector: HMIRROR_VEC_CQ for submissions
 * and ring room, HMIRROR_VEC_FAULT for answers), written before this call.
 * With FEAT_POLL an engine that is awake says so in dev_polling and looks
 * at the rings again before it sleeps (clearing dev_polling first), so the
 * full barrier between our ring store and that load is all it takes: one
 * of the two sides sees the other's write.
 */
static void hmirror_queue_kick(struct hmirror_device *hdev,
			       struct hmirror_queue *q, u32 vector)
{
	if (hdev->poll_hints) {
		mb();	/* ring writes before the dev_polling load */
		if (readl(&q->regs->dev_polling)) {
			atomic64_inc(&hdev->doorbells_skipped);
			return;
		}
	}
	hmirror_doorbell(hdev, vector);
}

static void hmirror_wake_all(struct hmirror_device *hdev)
{
	u32 i;

	for (i = 0; i < hdev->num_queues; i++)
		wake_up_all(&hdev->queues[i].wq);
}

/*
 * Write drv_ctrl and make the device act on it (and reset it first if
 * @reset): the device acknowledges with dev_ctrl_ack (and dev_reset_ack).
 * Caller is inside drm_dev_enter() or owns the device (probe, remove).
 */
static void hmirror_hw_control(struct hmirror_device *hdev, u32 ctrl,
			       bool reset)
{
	unsigned long irqflags;

	spin_lock_irqsave(&hdev->ctrl_lock, irqflags);
	writel(ctrl, &hdev->regs->drv_ctrl);
	writel(++hdev->ctrl_gen, &hdev->regs->drv_ctrl_gen);
	if (reset)
		writel(++hdev->reset_gen, &hdev->regs->drv_reset_gen);
	spin_unlock_irqrestore(&hdev->ctrl_lock, irqflags);
	hmirror_doorbell(hdev, HMIRROR_VEC_CTRL);
}

/*
 * Stop the device: no DMA, and a reset that drops every command in flight.
 * The rings restart at 0 after a reset, so the driver's indices go first,
 * or the device would fetch stale descriptors.  Submitters check the
 * device's state under the queue lock before touching the rings, and the
 * state says dead or unplugged by now.
 */
static void hmirror_hw_stop(struct hmirror_device *hdev, u32 ctrl)
{
	unsigned long irqflags;
	u32 i;

	for (i = 0; i < hdev->num_queues; i++) {
		struct hmirror_queue *q = &hdev->queues[i];

		spin_lock_irqsave(&q->lock, irqflags);
		writel(0, &q->regs->sq_tail);
		writel(0, &q->regs->cq_head);
		spin_unlock_irqrestore(&q->lock, irqflags);
	}
	hmirror_hw_control(hdev, ctrl, true);
}

/*
 * Has the device acted on the last control (and reset) request?  A model
 * that shut down (GONE) joined its engines first: it does no DMA either.
 */
static bool hmirror_hw_acked(struct hmirror_device *hdev, bool dma_on)
{
	u32 status = readl(&hdev->regs->dev_status);

	if (!dma_on && (status & HMIRROR_DEV_GONE))
		return true;
	if (readl(&hdev->regs->dev_ctrl_ack) != READ_ONCE(hdev->ctrl_gen) ||
	    readl(&hdev->regs->dev_reset_ack) != READ_ONCE(hdev->reset_gen))
		return false;
	if (dma_on)
		return (status & HMIRROR_DEV_ENABLED) &&
		       !(status & HMIRROR_DEV_DMA_OFF);
	return status & HMIRROR_DEV_DMA_OFF;
}

/*
 * The device proved it does no more DMA: whoever kept what it could reach
 * (hdev->quiesced, set by the layer that owns that memory) releases it.
 */
static void hmirror_hw_set_quiesced(struct hmirror_device *hdev)
{
	if (test_and_set_bit(HMIRROR_F_QUIESCED, &hdev->flags))
		return;
	drm_info(&hdev->drm, "device confirmed it stopped DMA\n");
	if (hdev->quiesced)
		hdev->quiesced(hdev);
}

/*
 * After death: poll for the device's proof that it stopped.  Until then
 * nothing it could reach is released (the graveyard keeps it); a device
 * that never answers keeps it forever, which is a leak, not a corruption.
 */
static void hmirror_hw_quiesce_work(struct work_struct *work)
{
	struct hmirror_device *hdev =
		container_of(to_delayed_work(work), struct hmirror_device, quiesce);
	bool acked, late;
	int idx;

	if (test_bit(HMIRROR_F_QUIESCED, &hdev->flags))
		return;
	/* Removal takes over: it asks again and decides. */
	if (!drm_dev_enter(&hdev->drm, &idx))
		return;
	acked = hmirror_hw_acked(hdev, false);
	drm_dev_exit(idx);
	if (acked) {
		hmirror_hw_set_quiesced(hdev);
		return;
	}
	late = time_after(jiffies, hdev->quiesce_deadline);
	if (late && !hdev->quiesce_late) {
		hdev->quiesce_late = true;
		drm_warn(&hdev->drm, "device did not confirm it stopped DMA: keeping what it could reach\n");
	}
	schedule_delayed_work(&hdev->quiesce,
			      msecs_to_jiffies(late ? HMIRROR_QUIESCE_POLL_MS : 10));
}

/**
 * hmirror_hw_mark_dead - stop trusting the device
 * @hdev: device
 * @reason: static string for the log and debugging
 *
 * Asks the device to stop DMA and reset, turns bus mastering off, wakes
 * every waiter (which then fails with -EIO) and starts waiting for the
 * device's proof that it stopped.  Safe from any context.
 */
void hmirror_hw_mark_dead(struct hmirror_device *hdev, const char *reason)
{
	int idx;

	if (test_and_set_bit(HMIRROR_F_DEAD, &hdev->flags))
		return;
	hdev->dead_reason = reason;
	drm_err(&hdev->drm, "device dead: %s\n", reason);
	if (drm_dev_enter(&hdev->drm, &idx)) {
		hmirror_hw_stop(hdev, HMIRROR_DRV_ENABLE);
		drm_dev_exit(idx);
	}
	pci_clear_master(hdev->pdev);
	hdev->quiesce_deadline = jiffies +
				 msecs_to_jiffies(HMIRROR_QUIESCE_TIMEOUT_MS);
	mod_delayed_work(system_wq, &hdev->quiesce, 0);
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
 * hmirror_hw_dma_stopped - has a dead or removed device proven it does no DMA?
 * @hdev: device
 */
bool hmirror_hw_dma_stopped(struct hmirror_device *hdev)
{
	return test_bit(HMIRROR_F_QUIESCED, &hdev->flags);
}

static u32 *hmirror_ctx_inflight(struct hmirror_device *hdev, u16 ctx, u32 qi)
{
	return &hdev->ctx_inflight[ctx * hdev->num_queues + qi];
}

static bool hmirror_is_data_op(u8 opcode)
{
	return opcode == HMIRROR_OP_COPY || opcode == HMIRROR_OP_READ ||
	       opcode == HMIRROR_OP_FILL || opcode == HMIRROR_OP_ATOMIC;
}

/* A completion as the driver uses it, from the device's little-endian one. */
static void hmirror_hw_read_cpl(struct hmirror_hw_cpl *c,
				const struct hmirror_cpl __iomem *d)
{
	struct hmirror_cpl raw;

	memcpy_fromio(&raw, d, sizeof(raw));
	*c = (struct hmirror_hw_cpl){
		.seqno = le64_to_cpu(raw.seqno),
		.status = le16_to_cpu(raw.status),
		.nfaults = le32_to_cpu(raw.nfaults),
		.result = le64_to_cpu(raw.result),
		.t_submit = le64_to_cpu(raw.t_submit),
		.t_fault = le64_to_cpu(raw.t_fault),
		.t_answer = le64_to_cpu(raw.t_answer),
		.t_done = le64_to_cpu(raw.t_done),
	};
}

/* A fault record as the driver uses it, from the device's one. */
static void hmirror_hw_read_fault(struct hmirror_hw_fault *f,
				  const struct hmirror_fault __iomem *d)
{
	struct hmirror_fault raw;

	memcpy_fromio(&raw, d, sizeof(raw));
	*f = (struct hmirror_hw_fault){
		.fault_id = le64_to_cpu(raw.fault_id),
		.ctx = le16_to_cpu(raw.ctx),
		.queue = raw.queue,
		.access = raw.access,
		.tag = le16_to_cpu(raw.tag),
		.addr = le64_to_cpu(raw.addr),
		.npages = le32_to_cpu(raw.npages),
		.seqno = le64_to_cpu(raw.seqno),
	};
}

/**
 * hmirror_hw_reap - consume completions the device has written
 * @hdev: device
 * @q: queue
 *
 * Called from the interrupt handler, every waiter and the watchdog,
 * because an interrupt may be lost.  Completions come in any order; each
 * must name a tag in flight with its sequence number, and not a command
 * whose fault the driver holds unanswered.
 */
static void hmirror_hw_reap(struct hmirror_device *hdev, struct hmirror_queue *q)
{
	u32 entries = hdev->cq_entries, tags = hdev->sq_entries;
	const char *bad = NULL;
	bool progressed = false;
	unsigned long irqflags;
	u32 tail;

	spin_lock_irqsave(&q->lock, irqflags);
	if (test_bit(HMIRROR_F_DEAD, &hdev->flags))
		goto out;
	tail = readl(&q->regs->cq_tail);
	if (tail - q->cq_head > entries) {
		bad = "completion ring index out of range";
		goto out;
	}
	while (q->cq_head != tail) {
		struct hmirror_cpl __iomem *cpl = &q->cq[q->cq_head & (entries - 1)];
		u16 tag = readw(&cpl->tag);
		u64 seqno = readq(&cpl->seqno);
		struct hmirror_slot *s;

		if (tag >= tags || !seqno || q->slots[tag].seqno != seqno) {
			bad = "completion for a command not in flight";
			break;
		}
		s = &q->slots[tag];
		/*
		 * Parked on a fault the driver holds: the device may only
		 * complete it after the answer (else the waiter could return
		 * with its fault unanswered and faults_held never drop).
		 */
		if (s->fault_out) {
			bad = "completion of a command whose fault is unanswered";
			break;
		}
		if (readw(&cpl->status) != HMIRROR_ST_OK)
			q->errors++;
		if (s->waiter) {
			hmirror_hw_read_cpl(&s->waiter->cpl, cpl);
			s->waiter->done = true;
		}
		if (q->index)
			(*hmirror_ctx_inflight(hdev, s->ctx, q->index))--;
		*s = (struct hmirror_slot){ };
		q->inflight--;
		q->cq_head++;
		atomic64_inc(&hdev->cmds_completed);
		progressed = true;
	}
	if (progressed) {
		writel(q->cq_head, &q->regs->cq_head);
		/* The device fetches only with CQ room: tell it there is. */
		if (q->sq_tail != readl(&q->regs->sq_head))
			hmirror_queue_kick(hdev, q, HMIRROR_VEC_CQ);
	}
out:
	spin_unlock_irqrestore(&q->lock, irqflags);
	if (bad)
		hmirror_hw_mark_dead(hdev, bad);
	if (progressed)
		wake_up_all(&q->wq);
}

/* Write an answer into the tag's slot of the answer table. */
static void __hmirror_hw_answer(struct hmirror_device *hdev, u32 qi,
				const struct hmirror_hw_fault *f, u32 answer)
{
	struct hmirror_fault_answer __iomem *a = &hdev->queues[qi].answers[f->tag];

	/* The device matches the id, so the answer goes first. */
	writel(answer, &a->answer);
	writeq(f->fault_id, &a->fault_id);
	hmirror_queue_kick(hdev, &hdev->queues[qi], HMIRROR_VEC_FAULT);
}

/**
 * hmirror_hw_fault_answer - tell the device to replay or cancel a fault
 * @hdev: device (caller inside drm_dev_enter())
 * @qi: the engine's queue
 * @f: the record, as hmirror_hw_wait_event() handed it over
 * @answer: HMIRROR_FAULT_REPLAY or HMIRROR_FAULT_CANCEL
 */
void hmirror_hw_fault_answer(struct hmirror_device *hdev, u32 qi,
			     const struct hmirror_hw_fault *f, u32 answer)
{
	struct hmirror_queue *q = &hdev->queues[qi];
	struct hmirror_slot *s = &q->slots[f->tag];
	unsigned long irqflags;

	/*
	 * A completion of the command already on the ring came before its
	 * answer: reaped while the fault is still out, it makes the device
	 * dead (hmirror_hw_reap()).  Then, before the answer, the fault is
	 * no longer out: the device may complete the command at once.
	 */
	hmirror_hw_reap(hdev, q);
	spin_lock_irqsave(&q->lock, irqflags);
	if (s->seqno == f->seqno)
		s->fault_out = false;
	spin_unlock_irqrestore(&q->lock, irqflags);
	__hmirror_hw_answer(hdev, qi, f, answer);
	spin_lock_irqsave(&q->lock, irqflags);
	q->faults_held--;
	spin_unlock_irqrestore(&q->lock, irqflags);
}

/* Is @f a record this driver could have caused?  Not yet matched. */
static bool hmirror_fault_plausible(struct hmirror_device *hdev,
				    const struct hmirror_hw_fault *f)
{
	return f->fault_id && f->queue >= 1 && f->queue < hdev->num_queues &&
	       f->tag < hdev->sq_entries &&
	       f->ctx && f->ctx < hdev->max_contexts &&
	       f->access >= HMIRROR_ACCESS_READ &&
	       f->access <= HMIRROR_ACCESS_ATOMIC &&
	       PAGE_ALIGNED(f->addr) && f->addr < hdev->va_end &&
	       f->npages >= 1 && f->npages <= HMIRROR_FAULT_NPAGES_MAX &&
	       ((u64)f->npages << PAGE_SHIFT) <= hdev->va_end - f->addr;
}

/**
 * hmirror_hw_fault_drain - hand the device's fault records to their commands
 * @hdev: device
 *
 * A record is given to the task waiting for the command it names, which
 * services and answers it.  A record naming a command nobody waits for is
 * cancelled here; an impossible one marks the device dead.
 */
static void hmirror_hw_fault_drain(struct hmirror_device *hdev)
{
	u32 entries = hdev->fault_entries;
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
		struct hmirror_waiter *w = NULL;
		struct hmirror_hw_fault f;
		struct hmirror_queue *q;
		struct hmirror_slot *s;

		hmirror_hw_read_fault(&f, &hdev->fault_ring[hdev->fault_head &
							     (entries - 1)]);
		hdev->fault_head++;
		if (!hmirror_fault_plausible(hdev, &f)) {
			bad = "malformed fault record";
			break;
		}
		q = &hdev->queues[f.queue];
		spin_lock(&q->lock);
		s = &q->slots[f.tag];
		if (!s->seqno || s->seqno != f.seqno || s->ctx != f.ctx) {
			bad = "fault for a command not in flight";
		} else if (!hmirror_is_data_op(s->opcode)) {
			bad = "fault for a command that cannot fault";
		} else if (s->fault_out) {
			/* its first fault is with the driver, unanswered */
			bad = "second fault for a stalled command";
		} else if (s->waiter) {
			w = s->waiter;
			w->fault = f;
			w->fault_pending = true;
			s->fault_out = true;
			q->faults_held++;
		}
		spin_unlock(&q->lock);
		if (bad)
			break;
		if (w) {
			wake_up_all(&q->wq);
		} else {
			atomic64_inc(&hdev->faults_orphaned);
			__hmirror_hw_answer(hdev, f.queue, &f, HMIRROR_FAULT_CANCEL);
		}
	}
	writel(hdev->fault_head, &hdev->fault_regs->head);
out:
	spin_unlock_irqrestore(&hdev->fault_lock, irqflags);
	if (bad)
		hmirror_hw_mark_dead(hdev, bad);
}

/*
 * Does @q owe work and show no progress for the deadline?  It owes work
 * while commands are in flight, unless a fault is with the driver: then
 * every command may legitimately wait on us.  Called by every waiter's
 * poll slice and the watchdog.
 */
static bool hmirror_queue_stuck(struct hmirror_device *hdev,
				struct hmirror_queue *q)
{
	unsigned long irqflags;
	bool stuck = false;
	u64 progress;

	spin_lock_irqsave(&q->lock, irqflags);
	progress = readq(&q->regs->progress);
	if (progress != q->progress_seen || q->faults_held || !q->inflight) {
		q->progress_seen = progress;
		q->progress_stamp = jiffies;
	} else if (time_after(jiffies, q->progress_stamp +
			      msecs_to_jiffies(HMIRROR_PROGRESS_TIMEOUT_MS))) {
		stuck = true;
	}
	spin_unlock_irqrestore(&q->lock, irqflags);
	return stuck;
}

typedef bool (*hmirror_cond_fn)(struct hmirror_device *hdev,
				struct hmirror_queue *q, const void *arg);

/**
 * DOC: Waiting and polling
 *
 * Under emulation the device usually answers well before its interrupt
 * has been delivered and the waiter woken, so a waiter on a command's
 * completion or fault (and a TLB invalidation's) first spins on the rings
 * for a window: twice the queue's recent wait (a moving average), at most
 * ``poll_max_us`` (module parameter, default 200; 0: never), and only
 * ``poll_max_us / 8`` on a queue whose events come late.  Nothing spins
 * with nothing to wait for: idle costs nothing.  Then it sleeps, waking on
 * the interrupt or every poll slice (an interrupt can be lost).
 *
 * With the device's ``FEAT_POLL`` (ABI 2.1) a spinning waiter sets the
 * queue's ``drv_polling`` (a count of spinners under the queue lock) and
 * the device skips that queue's interrupts; a waiter that stops spinning
 * clears it and reads the rings once more.  The device's engines, and its
 * management queue, may stay awake ``engine_poll_us`` (module parameter,
 * default 100; 0: never) after a doorbell or their work, and say so in
 * ``dev_polling``; a submission, a freed CQ slot or a fault answer written
 * while it reads 1 (after a full barrier) rings no doorbell
 * (``doorbells_skipped`` in ``STATS``).  The device does not spin after a
 * heartbeat's look that found nothing, so an idle device costs no CPU, and
 * it yields the host core at every turn of its spin, so a vCPU servicing
 * the fault it waits for is not kept off a small host.  The waiter's spin
 * is timed with ``local_clock()``: the clocksource may be an emulated MMIO
 * counter (hpet under TCG) that costs an exit per read.  ``hmirror-bench``
 * measures interrupts only, the waiter spinning, and both, against each
 * other (Documentation/benchmarks.rst).
 */
static unsigned int poll_max_us = 200;
module_param(poll_max_us, uint, 0644);
MODULE_PARM_DESC(poll_max_us, "longest spin on the rings before a waiter sleeps, us (0: no polling)");

static unsigned int engine_poll_us = 100;
module_param(engine_poll_us, uint, 0644);
MODULE_PARM_DESC(engine_poll_us, "how long the device's engines stay awake after their work, us (0: sleep at once; the device caps it)");

static u64 hmirror_poll_window(struct hmirror_queue *q)
{
	u64 max = (u64)READ_ONCE(poll_max_us) * NSEC_PER_USEC;
	u64 want = 2 * READ_ONCE(q->wait_ewma_ns);

	if (!max)
		return 0;
	return want <= max ? want : max / 8;
}

/* Fold one wait's length into the queue's moving average (1/8 weight). */
static void hmirror_poll_learn(struct hmirror_queue *q, u64 ns)
{
	u64 avg = READ_ONCE(q->wait_ewma_ns);

	WRITE_ONCE(q->wait_ewma_ns, avg - avg / 8 + ns / 8);
}

/*
 * With FEAT_POLL, a spinning waiter tells the device (drv_polling) that it
 * need not interrupt for @q; every waiter tells how long an engine that
 * runs out of work should stay awake for the next command (drv_poll_us,
 * from engine_poll_us).  The count of
 * spinners is kept under the queue lock so that the register always
 * matches it.  Every spinner re-reads the rings after clearing
 * drv_polling: an event the device did not interrupt for is seen there.
 */
static void hmirror_queue_pollers(struct hmirror_device *hdev,
				  struct hmirror_queue *q, bool more)
{
	unsigned long irqflags;

	if (!hdev->poll_hints)
		return;
	spin_lock_irqsave(&q->lock, irqflags);
	if (more) {
		if (!q->pollers++)
			writel(1, &q->regs->drv_polling);
	} else if (!--q->pollers) {
		writel(0, &q->regs->drv_polling);
	}
	spin_unlock_irqrestore(&q->lock, irqflags);
	mb();	/* drv_polling store before the rings are read again */
}

static bool hmirror_queue_poll(struct hmirror_device *hdev,
			       struct hmirror_queue *q, hmirror_cond_fn cond,
			       const void *arg)
{
	u64 window = hmirror_poll_window(q), spun = 0, c0;
	bool met = false;

	/* Every wait: the parameter may have changed since the last one. */
	if (hdev->poll_hints)
		writel(READ_ONCE(engine_poll_us), &hdev->regs->drv_poll_us);
	if (!window)
		return false;
	hmirror_queue_pollers(hdev, q, true);
	/*
	 * The spin is timed by local_clock(): the guest's clocksource may be
	 * an MMIO counter (hpet under emulation), too dear to read per turn.
	 */
	c0 = local_clock();
	while (spun < window) {
		hmirror_hw_reap(hdev, q);
		hmirror_hw_fault_drain(hdev);
		if (cond(hdev, q, arg)) {
			met = true;
			break;
		}
		if (need_resched() || hmirror_hw_status(hdev))
			break;
		cpu_relax();
		spun = local_clock() - c0;
	}
	hmirror_queue_pollers(hdev, q, false);
	/*
	 * The device may have skipped an interrupt for another waiter's
	 * completion or fault after our last look: look once more (a spinner
	 * that gave up gets that from the sleep loop).
	 */
	if (met && hdev->poll_hints) {
		hmirror_hw_reap(hdev, q);
		hmirror_hw_fault_drain(hdev);
	}
	return met;
}

/*
 * Sleep on @q until @cond holds, re-checking the rings every poll slice
 * (an interrupt can be lost).  Ends with 0; -ETIME at *@deadline (jiffies;
 * NULL for none); -EINTR on a signal (HMIRROR_WAIT_INTERRUPTIBLE), on a fatal
 * one (HMIRROR_WAIT_KILLABLE), never otherwise; -EIO or -ENODEV when the
 * device goes.  A queue that owes work and makes no progress is declared
 * dead here, so no wait is unbounded on a broken device.
 */
static int hmirror_queue_sleep(struct hmirror_device *hdev,
			       struct hmirror_queue *q, hmirror_cond_fn cond,
			       const void *arg, const unsigned long *deadline,
			       unsigned int flags)
{
	u64 t0 = local_clock();
	long slice, ret;

	if (flags & HMIRROR_WAIT_POLL) {
		if (hmirror_queue_poll(hdev, q, cond, arg)) {
			hmirror_poll_learn(q, local_clock() - t0);
			return 0;
		}
	}
	for (;;) {
		hmirror_hw_reap(hdev, q);
		hmirror_hw_fault_drain(hdev);
		if (cond(hdev, q, arg)) {
			if (flags & HMIRROR_WAIT_POLL)
				hmirror_poll_learn(q, local_clock() - t0);
			return 0;
		}
		ret = hmirror_hw_status(hdev);
		if (ret)
			return ret;
		if (hmirror_queue_stuck(hdev, q)) {
			hmirror_hw_mark_dead(hdev, "queue made no progress");
			return -EIO;
		}
		slice = msecs_to_jiffies(HMIRROR_POLL_SLICE_MS);
		if (deadline) {
			if (time_after_eq(jiffies, *deadline))
				return -ETIME;
			slice = min_t(long, slice, *deadline - jiffies);
		}
#define HMIRROR_WOKEN	(cond(hdev, q, arg) || hmirror_hw_status(hdev))
		if (flags & HMIRROR_WAIT_INTERRUPTIBLE)
			ret = wait_event_interruptible_timeout(q->wq, HMIRROR_WOKEN,
							       slice);
		else if (flags & HMIRROR_WAIT_KILLABLE)
			ret = wait_event_killable_timeout(q->wq, HMIRROR_WOKEN,
							  slice);
		else
			ret = wait_event_timeout(q->wq, HMIRROR_WOKEN, slice);
#undef HMIRROR_WOKEN
		if (ret < 0)
			return -EINTR;
	}
}

/*
 * Commands that may be queued on @q for context @ctx now: free ring slots,
 * free tags, and the context's share of the engine.  -1 when the device's
 * sq_head is impossible.  Queue lock held.
 */
static long hmirror_sq_room(struct hmirror_device *hdev,
			    struct hmirror_queue *q, u16 ctx)
{
	u32 entries = hdev->sq_entries;
	u32 used = q->sq_tail - readl(&q->regs->sq_head);
	long room;

	lockdep_assert_held(&q->lock);
	if (used > entries)
		return -1;
	room = min(entries - used, entries - q->inflight);
	if (!q->index || ctx == HMIRROR_CTX_DRIVER)
		return room;
	/*
	 * One context's stalled commands never take the whole engine, and
	 * all of them never take the tags kept for the driver's own
	 * commands (migrations), which a fault service may wait for.
	 */
	room = min_t(long, room, hdev->ctx_cap -
		     min(hdev->ctx_cap, *hmirror_ctx_inflight(hdev, ctx, q->index)));
	return min_t(long, room, (long)(entries - hdev->driver_tags) -
				 (long)q->inflight);
}

static bool hmirror_room_cond(struct hmirror_device *hdev,
			      struct hmirror_queue *q, const void *arg)
{
	const u16 *ctx = arg;
	unsigned long irqflags;
	long room;

	spin_lock_irqsave(&q->lock, irqflags);
	room = hmirror_sq_room(hdev, q, *ctx);
	spin_unlock_irqrestore(&q->lock, irqflags);
	/* An impossible sq_head is reported by the submitter. */
	return room != 0;
}

static u16 hmirror_tag_alloc(struct hmirror_device *hdev,
			     struct hmirror_queue *q)
{
	u32 entries = hdev->sq_entries, i, tag;

	for (i = 0; i < entries; i++) {
		tag = (q->tag_hint + i) & (entries - 1);
		if (!q->slots[tag].seqno) {
			q->tag_hint = tag + 1;
			return tag;
		}
	}
	/* The caller checked there is a free tag. */
	return U16_MAX;
}

/**
 * hmirror_hw_submit - put commands on a queue and ring the doorbell
 * @hdev: device (caller inside drm_dev_enter())
 * @qi: queue index, < hdev->num_queues
 * @cmds: commands, all of one context; seqno and tag are assigned here
 * @count: number of commands
 * @last_seqno: out: sequence number of the last command queued
 * @w: waiter to register for the last of the commands, zeroed, or NULL
 * @flags: HMIRROR_WAIT_* for the wait for room
 *
 * Waits for room: ring slots, tags, and the context's share of an engine.
 * A registered waiter must go through hmirror_hw_forget() if the caller
 * abandons it before its completion.
 *
 * Return: 0, -EINTR, -EIO or -ENODEV.  On error some commands may already
 * be queued; @last_seqno then names the last one that was.
 */
int hmirror_hw_submit(struct hmirror_device *hdev, u32 qi,
		      const struct hmirror_hw_cmd *cmds, u32 count,
		      u64 *last_seqno,
		      struct hmirror_waiter *w, unsigned int flags)
{
	struct hmirror_queue *q = &hdev->queues[qi];
	u32 entries = hdev->sq_entries;
	u16 ctx = cmds[0].ctx;
	unsigned long irqflags;
	long room;
	u32 n;
	int ret;

	*last_seqno = 0;
	while (count) {
		/* Room is the common case: no wait, no clock read. */
		if (!hmirror_room_cond(hdev, q, &ctx)) {
			ret = hmirror_queue_sleep(hdev, q, hmirror_room_cond,
						  &ctx, NULL, flags);
			if (ret)
				return ret;
		}

		spin_lock_irqsave(&q->lock, irqflags);
		ret = hmirror_hw_status(hdev);
		room = ret ? 0 : hmirror_sq_room(hdev, q, ctx);
		if (room < 0) {
			spin_unlock_irqrestore(&q->lock, irqflags);
			hmirror_hw_mark_dead(hdev, "submission ring index out of range");
			return -EIO;
		}
		if (ret) {
			spin_unlock_irqrestore(&q->lock, irqflags);
			return ret;
		}
		for (n = 0; n < min_t(u32, room, count); n++) {
			struct hmirror_cmd __iomem *slot =
				&q->sq[q->sq_tail & (entries - 1)];
			const struct hmirror_hw_cmd *c = &cmds[n];
			u16 tag = hmirror_tag_alloc(hdev, q);
			u64 seqno = q->next_seqno++;
			struct hmirror_waiter *cw = n + 1 == count ? w : NULL;
			struct hmirror_cmd raw = {
				.opcode = c->opcode,
				.flags = c->flags,
				.ctx = cpu_to_le16(c->ctx),
				.tag = cpu_to_le16(tag),
				.seqno = cpu_to_le64(seqno),
				.src = cpu_to_le64(c->src),
				.dst = cpu_to_le64(c->dst),
				.len = cpu_to_le64(c->len),
				.arg0 = cpu_to_le64(c->arg0),
				.arg1 = cpu_to_le64(c->arg1),
			};

			q->slots[tag] = (struct hmirror_slot){
				.seqno = seqno,
				.waiter = cw,
				.ctx = c->ctx,
				.opcode = c->opcode,
			};
			q->inflight++;
			if (qi)
				(*hmirror_ctx_inflight(hdev, c->ctx, qi))++;
			if (cw) {
				cw->seqno = seqno;
				cw->tag = tag;
			}
			memcpy_toio(slot, &raw, sizeof(raw));
			q->sq_tail++;
			*last_seqno = seqno;
		}
		/* writel orders the descriptor stores before the tail. */
		writel(q->sq_tail, &q->regs->sq_tail);
		spin_unlock_irqrestore(&q->lock, irqflags);
		atomic64_add(n, &hdev->cmds_submitted);
		hmirror_queue_kick(hdev, q, HMIRROR_VEC_CQ);
		cmds += n;
		count -= n;
	}
	return 0;
}

/**
 * hmirror_hw_forget - abandon a waiter before its command completed
 * @hdev: device (caller inside drm_dev_enter(), or the device is gone)
 * @qi: queue index
 * @w: waiter
 *
 * The command stays in flight in the device; its completion frees the tag
 * and a later fault of it is cancelled as an orphan.  A fault already
 * handed to @w is cancelled here.
 */
void hmirror_hw_forget(struct hmirror_device *hdev, u32 qi,
		       struct hmirror_waiter *w)
{
	struct hmirror_queue *q = &hdev->queues[qi];
	struct hmirror_slot *s = &q->slots[w->tag];
	unsigned long irqflags;
	bool cancel = false;

	spin_lock_irqsave(&q->lock, irqflags);
	if (s->waiter == w && s->seqno == w->seqno) {
		s->waiter = NULL;
		cancel = w->fault_pending;
		w->fault_pending = false;
		if (cancel) {
			s->fault_out = false;	/* answered below */
			q->faults_held--;
		}
	}
	spin_unlock_irqrestore(&q->lock, irqflags);
	if (cancel && !hmirror_hw_status(hdev))
		__hmirror_hw_answer(hdev, qi, &w->fault, HMIRROR_FAULT_CANCEL);
}

static bool hmirror_event_cond(struct hmirror_device *hdev,
			       struct hmirror_queue *q, const void *arg)
{
	const struct hmirror_waiter *w = arg;

	return READ_ONCE(w->done) || READ_ONCE(w->fault_pending);
}

/*
 * Fault injection (debugfs "leave-after-fault"): a waiter that a signal
 * may end leaves as if a fatal signal had ended its sleep just before a
 * fault was handed to it, the few-microsecond race hmirror_hw_forget()
 * must answer for; real signals hit it too rarely to show it is handled.
 */
static bool hmirror_inject_leave(struct hmirror_device *hdev,
				 const struct hmirror_waiter *w,
				 unsigned int flags)
{
	return (flags & (HMIRROR_WAIT_KILLABLE | HMIRROR_WAIT_INTERRUPTIBLE)) &&
	       READ_ONCE(w->fault_pending) && !READ_ONCE(w->done) &&
	       atomic_add_unless(&hdev->inject_leave, -1, 0);
}

/**
 * hmirror_hw_wait_event - wait for a command's next event
 * @hdev: device (caller inside drm_dev_enter())
 * @qi: queue index
 * @w: the command's waiter
 * @fault: out: the fault record, when one came
 * @flags: HMIRROR_WAIT_* (none: only the device's failure ends the wait)
 *
 * A fault handed over here is the caller's to answer with
 * hmirror_hw_fault_answer(); the device may raise the command's next fault
 * as soon as it sees the answer, so the record is taken off @w first.
 *
 * Return: 0 when the command completed (w->cpl), 1 when @fault was filled,
 * -EINTR, -EIO or -ENODEV (the waiter is then forgotten).
 */
int hmirror_hw_wait_event(struct hmirror_device *hdev, u32 qi,
			  struct hmirror_waiter *w, struct hmirror_hw_fault *fault,
			  unsigned int flags)
{
	struct hmirror_queue *q = &hdev->queues[qi];
	unsigned long irqflags;
	int ret;

	ret = hmirror_queue_sleep(hdev, q, hmirror_event_cond, w, NULL, flags);
	if (!ret && hmirror_inject_leave(hdev, w, flags))
		ret = -EINTR;
	if (ret) {
		hmirror_hw_forget(hdev, qi, w);
		return ret;
	}
	spin_lock_irqsave(&q->lock, irqflags);
	if (w->done) {
		ret = 0;
	} else {
		*fault = w->fault;
		w->fault_pending = false;
		ret = 1;
	}
	spin_unlock_irqrestore(&q->lock, irqflags);
	return ret;
}

static bool hmirror_done_cond(struct hmirror_device *hdev,
			      struct hmirror_queue *q, const void *arg)
{
	const struct hmirror_waiter *w = arg;

	return READ_ONCE(w->done);
}

/**
 * hmirror_hw_wait_done - wait for a command that cannot fault to complete
 * @hdev: device (caller inside drm_dev_enter())
 * @qi: queue index
 * @w: the command's waiter (a NOP or FENCE: a fault record for one makes
 *	the device dead, so none is ever handed to @w)
 * @timeout_ms: how long at most
 * @flags: HMIRROR_WAIT_*
 *
 * The same wait as hmirror_hw_wait_seqno() for one command whose waiter
 * the caller registered, without its look at every tag of the queue.
 *
 * Return: 0 when it completed (w->cpl), -ETIME (it stays in flight),
 * -EINTR, -EIO or -ENODEV; the waiter is forgotten on every error.
 */
int hmirror_hw_wait_done(struct hmirror_device *hdev, u32 qi,
			 struct hmirror_waiter *w, unsigned long timeout_ms,
			 unsigned int flags)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(timeout_ms);
	int ret;

	ret = hmirror_queue_sleep(hdev, &hdev->queues[qi], hmirror_done_cond,
				  w, &deadline, flags);
	if (ret) {
		hmirror_hw_forget(hdev, qi, w);
		/* Forgotten, @w no longer changes: done since the last look? */
		if (ret == -ETIME && READ_ONCE(w->done))
			ret = 0;
	}
	return ret;
}

/* Lowest sequence number still in flight on @q, or next_seqno.  Lock held. */
static u64 hmirror_oldest_inflight(struct hmirror_device *hdev,
				   struct hmirror_queue *q)
{
	u64 oldest = q->next_seqno;
	u32 t;

	lockdep_assert_held(&q->lock);
	for (t = 0; t < hdev->sq_entries; t++)
		if (q->slots[t].seqno && q->slots[t].seqno < oldest)
			oldest = q->slots[t].seqno;
	return oldest;
}

/**
 * hmirror_hw_seqno_done - has the command @seqno of queue @qi completed?
 * @hdev: device
 * @qi: queue index
 * @seqno: a sequence number the queue has handed out
 */
bool hmirror_hw_seqno_done(struct hmirror_device *hdev, u32 qi, u64 seqno)
{
	struct hmirror_queue *q = &hdev->queues[qi];
	unsigned long irqflags;
	bool done = true;
	u32 t;

	spin_lock_irqsave(&q->lock, irqflags);
	for (t = 0; t < hdev->sq_entries; t++)
		if (q->slots[t].seqno == seqno)
			done = false;
	spin_unlock_irqrestore(&q->lock, irqflags);
	return done;
}

static bool hmirror_seqno_cond(struct hmirror_device *hdev,
			       struct hmirror_queue *q, const void *arg)
{
	return hmirror_hw_seqno_done(hdev, q->index, *(const u64 *)arg);
}

/**
 * hmirror_hw_wait_seqno - wait until one command has completed
 * @hdev: device (caller inside drm_dev_enter())
 * @qi: queue index
 * @seqno: sequence number already handed out on @qi
 * @timeout_ms: 0 to poll once
 * @completed: out: every command up to this sequence number has completed
 * @flags: HMIRROR_WAIT_*
 *
 * Commands complete in any order (a command stalled on a fault does not
 * hold up later ones), so this waits for @seqno itself.
 *
 * Return: 0, -EBUSY (poll, not done), -ETIME, -EINTR, -EIO or -ENODEV.
 */
int hmirror_hw_wait_seqno(struct hmirror_device *hdev, u32 qi, u64 seqno,
			  unsigned long timeout_ms, u64 *completed,
			  unsigned int flags)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(timeout_ms);
	struct hmirror_queue *q = &hdev->queues[qi];
	unsigned long irqflags;
	int ret;

	ret = hmirror_queue_sleep(hdev, q, hmirror_seqno_cond, &seqno,
				  &deadline, flags);
	spin_lock_irqsave(&q->lock, irqflags);
	*completed = hmirror_oldest_inflight(hdev, q) - 1;
	spin_unlock_irqrestore(&q->lock, irqflags);
	/* Done since the last look: the verdict must agree with *completed. */
	if (ret == -ETIME && *completed >= seqno)
		ret = 0;
	if (ret == -ETIME && !timeout_ms)
		ret = -EBUSY;
	return ret;
}

/**
 * DOC: TLB shootdown
 *
 * With the device's ``FEAT_SHOOTDOWN`` (ABI 2.2) an invalidation needs no
 * command: under ``sd_lock`` the driver writes a request (context, range)
 * into the slot of a new epoch (slot epoch 0 first, then the fields, then
 * the slot epoch, then ``drv_epoch``), then, after a full barrier, reads
 * every engine's ``dev_seen``.  An engine announces each access (a chunk
 * of a command, with its translations and walks) there before it looks at
 * ``drv_epoch``, with ``BUSY`` and the epoch it applied; so an engine not
 * busy, or busy on this epoch or a later one, cannot use a translation
 * the request dropped, and while one shows busy on an older epoch the
 * driver spins, reading it again (not waiting for "a change": an access
 * writes ``dev_seen`` twice as it begins).  Accesses are short (at most
 * 64 KiB of host memcpy), so the wait is bounded by ``sd_spin_us``
 * (module parameter, default 50, at most 1000); past it, or with the device's
 * ``dev_seen`` frozen (a stopped model), the driver falls back to a
 * ``TLB_INVAL`` command, which waits for the access with the device's
 * progress deadline behind it.  ``tlb_shootdown=0`` (module parameter,
 * read at every invalidation) uses ``TLB_INVAL`` only.  ``STATS`` counts
 * both (``shootdowns``, ``shootdown_fallbacks``).
 */
static bool tlb_shootdown = true;
module_param(tlb_shootdown, bool, 0644);
MODULE_PARM_DESC(tlb_shootdown, "invalidate the device TLB through shared memory when the device can (else TLB_INVAL commands)");

static unsigned int sd_spin_us = 50;
module_param(sd_spin_us, uint, 0644);
MODULE_PARM_DESC(sd_spin_us, "longest wait for a device access in progress before a shootdown falls back to TLB_INVAL, us (at most 1000)");
/* A spin in a notifier holds the mm's locks: never long, whatever is asked. */
#define HMIRROR_SD_SPIN_MAX_US	1000u

/* Publish a request to drop @ctx's [start, end); returns its epoch. */
static u64 hmirror_sd_publish(struct hmirror_device *hdev, u32 ctx, u64 start,
			      u64 end)
{
	struct hmirror_sd_req __iomem *r;
	u64 e;

	spin_lock(&hdev->sd_lock);
	e = ++hdev->sd_epoch & HMIRROR_SD_EPOCH_MASK;
	if (!e)		/* 0 marks a slot being rewritten */
		e = ++hdev->sd_epoch & HMIRROR_SD_EPOCH_MASK;
	r = &hdev->sd->req[e % HMIRROR_SD_SLOTS];
	writeq(0, &r->epoch);
	wmb();	/* a reader that sees the new fields sees the slot epoch 0 */
	writeq(start, &r->start);
	writeq(end, &r->end);
	writew(ctx, &r->ctx);
	wmb();	/* the fields before the slot's epoch */
	writeq(e, &r->epoch);
	writeq(e, &hdev->sd->drv_epoch);
	spin_unlock(&hdev->sd_lock);
	return e;
}

/*
 * Does @seen (an engine's dev_seen) show an access that began before the
 * request of epoch @e?  BUSY with an epoch behind @e, compared modulo the
 * epoch space (the epoch the driver starts from at probe is the BAR's).
 */
static bool hmirror_sd_holds(u64 seen, u64 e)
{
	u64 behind = (e - seen) & HMIRROR_SD_EPOCH_MASK;

	return (seen & HMIRROR_SD_BUSY) && behind &&
	       behind <= HMIRROR_SD_EPOCH_MASK / 2;
}

/*
 * Invalidate by shootdown: true once no device access can use a
 * translation of the range; false if the wait timed out (the caller
 * falls back to TLB_INVAL).  The condition is read again, not "the value
 * changed": an engine writes dev_seen twice as an access begins (BUSY
 * with its previous epoch, then BUSY with the one it applied), and the
 * second may still be older than @e when requests come close together.
 */
static bool hmirror_hw_shootdown(struct hmirror_device *hdev, u32 ctx,
				 u64 start, u64 end)
{
	u64 e = hmirror_sd_publish(hdev, ctx, start, end), deadline = 0;
	u32 qi;

	mb();	/* drv_epoch before the dev_seen loads; the device pairs */
	for (qi = 1; qi < hdev->num_queues; qi++) {
		while (hmirror_sd_holds(readq(&hdev->sd->dev_seen[qi]), e)) {
			u64 now = local_clock();

			if (!deadline)
				deadline = now + (u64)min(READ_ONCE(sd_spin_us),
							  HMIRROR_SD_SPIN_MAX_US) *
						 NSEC_PER_USEC;
			if (now > deadline) {
				atomic64_inc(&hdev->shootdown_fallbacks);
				return false;
			}
			cpu_relax();
		}
	}
	atomic64_inc(&hdev->shootdowns);
	return true;
}

/**
 * hmirror_hw_tlb_inval - make the device forget translations of a range
 * @hdev: device
 * @ctx: context number
 * @start: first address
 * @end: end address
 *
 * By shootdown when the device has it (DOC: TLB shootdown), else (or when
 * the shootdown's wait runs out) by TLB_INVAL on the management queue,
 * which a stalled engine never blocks, waited for without a signal (an
 * invalidation must finish, even in a task being killed); a device that
 * makes no progress is declared dead, which bounds the wait.  Either way,
 * success means every device access that used a dropped translation has
 * finished.
 *
 * Return: 0, or -EIO/-ENODEV when the device is dead or gone: the caller
 * must not release what the device could reach before it proved it
 * stopped (hmirror_hw_dma_stopped()).
 */
int hmirror_hw_tlb_inval(struct hmirror_device *hdev, u32 ctx, u64 start,
			 u64 end)
{
	struct hmirror_hw_cmd cmd = {
		.opcode = HMIRROR_OP_TLB_INVAL,
		.ctx = ctx,
		.src = start,
		.len = end - start,
	};
	struct hmirror_waiter w = { };
	struct hmirror_hw_fault f;
	u64 seqno;
	int ret, idx;

	/* Notifiers run at any time: after removal BAR2 is gone. */
	if (!drm_dev_enter(&hdev->drm, &idx))
		return -ENODEV;
	ret = hmirror_hw_status(hdev);
	if (!ret && hdev->shootdown && READ_ONCE(tlb_shootdown) &&
	    hmirror_hw_shootdown(hdev, ctx, start, end))
		goto out;
	ret = hmirror_hw_submit(hdev, HMIRROR_QUEUE_MGMT, &cmd, 1, &seqno,
				&w, 0);
	if (!ret) {
		ret = hmirror_hw_wait_event(hdev, HMIRROR_QUEUE_MGMT, &w, &f,
					    HMIRROR_WAIT_POLL);
		/* Queue 0 never faults (a record for it is refused). */
		if (!ret && w.cpl.status != HMIRROR_ST_OK) {
			hmirror_hw_mark_dead(hdev, "TLB invalidation failed");
			ret = -EIO;
		}
	}
out:
	drm_dev_exit(idx);
	return ret;
}

/**
 * hmirror_hw_migrate - copy pages between guest RAM and device memory
 * @hdev: device
 * @table: DMA address of @n struct hmirror_migrate_entry
 * @n: entries, 1 .. HMIRROR_MIGRATE_MAX
 *
 * Runs one MIGRATE on an engine (the one after the caller's CPU, so
 * concurrent migrations spread), as the driver's own context: the tags
 * kept for it mean a queue full of stalled user commands never blocks it,
 * which matters because a fault service may be what waits here.  The wait
 * takes no signal (a page half migrated helps nobody) and is bounded by
 * the device's progress deadline.
 *
 * Return: 0 when every entry was copied; -EIO when the device refused
 * one or failed, -ENODEV when it is gone.
 */
int hmirror_hw_migrate(struct hmirror_device *hdev, dma_addr_t table, u32 n)
{
	u32 qi = 1 + raw_smp_processor_id() % (hdev->num_queues - 1);
	struct hmirror_hw_cmd cmd = {
		.opcode = HMIRROR_OP_MIGRATE,
		.ctx = HMIRROR_CTX_DRIVER,
		.src = table,
		.len = n,
	};
	struct hmirror_waiter w = { };
	struct hmirror_hw_fault f;
	u64 seqno;
	int ret, idx;

	if (!drm_dev_enter(&hdev->drm, &idx))
		return -ENODEV;
	ret = hmirror_hw_submit(hdev, qi, &cmd, 1, &seqno, &w, 0);
	while (!ret) {
		ret = hmirror_hw_wait_event(hdev, qi, &w, &f, HMIRROR_WAIT_POLL);
		if (ret <= 0)
			break;
		/* MIGRATE never faults: a record for it is cancelled. */
		hmirror_hw_fault_answer(hdev, qi, &f, HMIRROR_FAULT_CANCEL);
		ret = 0;
	}
	drm_dev_exit(idx);
	if (!ret && (w.cpl.status != HMIRROR_ST_OK || w.cpl.result != n)) {
		dev_err_ratelimited(&hdev->pdev->dev, "MIGRATE of %u pages: status %u, %llu copied\n",
				    n, w.cpl.status, w.cpl.result);
		ret = -EIO;
	}
	return ret;
}

static irqreturn_t hmirror_irq_cq(int irq, void *arg)
{
	struct hmirror_device *hdev = arg;
	u32 i;

	atomic64_inc(&hdev->irqs[HMIRROR_VEC_CQ]);
	for (i = 0; i < hdev->num_queues; i++)
		hmirror_hw_reap(hdev, &hdev->queues[i]);
	return IRQ_HANDLED;
}

static irqreturn_t hmirror_irq_fault(int irq, void *arg)
{
	struct hmirror_device *hdev = arg;

	atomic64_inc(&hdev->irqs[HMIRROR_VEC_FAULT]);
	hmirror_hw_fault_drain(hdev);
	return IRQ_HANDLED;
}

static irqreturn_t hmirror_irq_ctrl(int irq, void *arg)
{
	struct hmirror_device *hdev = arg;
	u32 status;

	atomic64_inc(&hdev->irqs[HMIRROR_VEC_CTRL]);
	status = readl(&hdev->regs->dev_status);
	if (status & HMIRROR_DEV_GONE)
		hmirror_hw_mark_dead(hdev, "device model shut down");
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

/* Poll (interrupts may not flow yet) until the device acknowledged. */
static int hmirror_hw_wait_ack(struct hmirror_device *hdev, bool dma_on,
			       unsigned int timeout_ms)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(timeout_ms);

	for (;;) {
		if (hmirror_hw_acked(hdev, dma_on))
			return 0;
		if (readl(&hdev->regs->dev_status) & HMIRROR_DEV_GONE)
			return -ENODEV;
		if (time_after(jiffies, deadline))
			return -ETIMEDOUT;
		usleep_range(1000, 2000);
	}
}

/*
 * Reset handshake: the device ignores the rings until it has acknowledged
 * a reset generation, and touches no guest RAM until it acknowledged bus
 * mastering.  MSI-X is enabled before this, so from here on the device's
 * interrupts reach us (QEMU drops them while MSI-X is off).
 */
static int hmirror_hw_reset(struct hmirror_device *hdev)
{
	u32 i;

	for (i = 0; i < hdev->num_queues; i++) {
		struct hmirror_queue *q = &hdev->queues[i];

		writel(0, &q->regs->sq_tail);
		writel(0, &q->regs->cq_head);
		q->sq_tail = 0;
		q->cq_head = 0;
		q->next_seqno = 1;
		q->inflight = 0;
		/* Start polling; each queue learns its own window. */
		q->wait_ewma_ns = 50 * NSEC_PER_USEC;
		q->faults_held = 0;
		q->progress_stamp = jiffies;
	}
	writel(0, &hdev->fault_regs->head);
	hdev->fault_head = 0;
	hdev->ctrl_gen = readl(&hdev->regs->dev_ctrl_ack);
	hdev->reset_gen = readl(&hdev->regs->dev_reset_ack);
	hmirror_hw_control(hdev, HMIRROR_DRV_ENABLE | HMIRROR_DRV_BUS_MASTER,
			   true);
	return hmirror_hw_wait_ack(hdev, true, HMIRROR_RESET_TIMEOUT_MS);
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
		hmirror_hw_mark_dead(hdev, "device model shut down");
		return;
	}
	hb = readq(&hdev->regs->heartbeat);
	if (hb != hdev->last_heartbeat) {
		hdev->last_heartbeat = hb;
		hdev->heartbeat_stamp = jiffies;
	} else if (time_after(jiffies, hdev->heartbeat_stamp +
			      msecs_to_jiffies(HMIRROR_HEARTBEAT_TIMEOUT_MS))) {
		hmirror_hw_mark_dead(hdev, "heartbeat stopped");
		return;
	}
	/* Pick up completions and faults whose interrupt went missing. */
	for (i = 0; i < hdev->num_queues; i++)
		hmirror_hw_reap(hdev, &hdev->queues[i]);
	hmirror_hw_fault_drain(hdev);
	for (i = 0; i < hdev->num_queues; i++) {
		if (hmirror_queue_stuck(hdev, &hdev->queues[i])) {
			hmirror_hw_mark_dead(hdev, "queue made no progress");
			return;
		}
	}
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
	struct device *dev = &hdev->pdev->dev;
	u32 i;
	int ret;

	spin_lock_init(&hdev->ctrl_lock);
	INIT_DELAYED_WORK(&hdev->quiesce, hmirror_hw_quiesce_work);
	INIT_DELAYED_WORK(&hdev->watchdog, hmirror_watchdog);
	hdev->regs = hdev->shm + hdev->regs_off;
	spin_lock_init(&hdev->sd_lock);
	if (hdev->shootdown) {
		hdev->sd = hdev->shm + hdev->sd_off;
		/* Go on from a previous driver's epochs: never behind them. */
		hdev->sd_epoch = readq(&hdev->sd->drv_epoch) &
				 HMIRROR_SD_EPOCH_MASK;
	}
	/* A quarter of an engine per context, so four can stall at once. */
	hdev->ctx_cap = max(1u, hdev->sq_entries / 4);
	hdev->driver_tags = min(HMIRROR_DRIVER_TAGS, hdev->sq_entries / 2);
	hdev->ctx_inflight = devm_kcalloc(dev, hdev->max_contexts * hdev->num_queues,
					  sizeof(*hdev->ctx_inflight),
					  GFP_KERNEL);
	if (!hdev->ctx_inflight)
		return -ENOMEM;
	for (i = 0; i < hdev->num_queues; i++) {
		struct hmirror_queue *q = &hdev->queues[i];

		spin_lock_init(&q->lock);
		init_waitqueue_head(&q->wq);
		q->index = i;
		q->regs = hdev->shm + hdev->queues_off +
			  i * sizeof(struct hmirror_queue_regs);
		q->sq = hdev->shm + hmirror_sq_off(h, i);
		q->cq = hdev->shm + hmirror_cq_off(h, i);
		q->answers = hdev->shm + hmirror_answers_off(h, i);
		q->slots = devm_kcalloc(dev, hdev->sq_entries, sizeof(*q->slots),
					GFP_KERNEL);
		if (!q->slots)
			return -ENOMEM;
	}
	spin_lock_init(&hdev->fault_lock);
	hdev->fault_regs = hdev->shm + hdev->fault_regs_off;
	hdev->fault_ring = hdev->shm + hmirror_fault_ring_off(h);
	hdev->fault_head = 0;

	ret = hmirror_request_irqs(hdev);
	if (ret)
		return ret;

	ret = hmirror_hw_reset(hdev);
	if (ret) {
		dev_err(dev, "device did not acknowledge reset: %d\n", ret);
		/* An interrupt may have declared it dead meanwhile. */
		cancel_delayed_work_sync(&hdev->quiesce);
		return ret;
	}

	hdev->last_heartbeat = readq(&hdev->regs->heartbeat);
	hdev->heartbeat_stamp = jiffies;
	schedule_delayed_work(&hdev->watchdog,
			      msecs_to_jiffies(HMIRROR_WATCHDOG_PERIOD_MS));
	return 0;
}

/**
 * hmirror_hw_fini - stop the device for good before its resources go away
 * @hdev: device, unplugged (no new drm_dev_enter() section can start)
 *
 * Asks the device to stop DMA and reset, and waits (bounded) for its
 * proof.  With it, everything the device could reach may be released;
 * without it, nothing is (see hmirror_hw_dma_stopped()).
 */
void hmirror_hw_fini(struct hmirror_device *hdev)
{
	cancel_delayed_work_sync(&hdev->watchdog);
	cancel_delayed_work_sync(&hdev->quiesce);
	hmirror_hw_stop(hdev, 0);
	if (!hmirror_hw_wait_ack(hdev, false, HMIRROR_QUIESCE_TIMEOUT_MS))
		hmirror_hw_set_quiesced(hdev);
	else
		drm_warn(&hdev->drm, "device did not confirm it stopped DMA: keeping what it could reach\n");
	pci_clear_master(hdev->pdev);
}
