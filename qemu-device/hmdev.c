// SPDX-License-Identifier: MIT
/*
 * hmirror device model: layout, reset, doorbells, heartbeat and the queue
 * (ring) machinery.  What a command does is in hmdev_cmd.c.
 */
#include <stdio.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "hmdev.h"
#include "log.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "the device ABI is little-endian; the model assumes a LE host");

/* Shared memory is accessed as 64-bit words that may alias anything. */
typedef uint64_t __attribute__((may_alias)) hm_u64a;

#define HM_ERR_LOG_LIMIT	32	/* errors logged per reset unless -v */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

uint64_t hmdev_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool is_pow2(unsigned v)
{
	return v && !(v & (v - 1));
}

/* ---- configuration and layout --------------------------------------- */

void hmdev_config_default(struct hmdev_config *cfg)
{
	cfg->engines = HMDEV_DEF_ENGINES;
	cfg->sq_entries = HMDEV_DEF_SQ;
	cfg->cq_entries = HMDEV_DEF_CQ;
	cfg->fault_entries = HMDEV_DEF_FAULTS;
	cfg->max_contexts = HMDEV_DEF_CONTEXTS;
	cfg->tlb_entries = HMDEV_DEF_TLB;
}

static int check_ring(const char *what, unsigned v, char *err, size_t errlen)
{
	if (!is_pow2(v) || v < 2 || v > HMDEV_MAX_ENTRIES) {
		seterr(err, errlen,
		       "%s must be a power of two in [2, %u], got %u",
		       what, HMDEV_MAX_ENTRIES, v);
		return -1;
	}
	return 0;
}

static uint64_t align4k(uint64_t v)
{
	return (v + 4095) & ~4095ull;
}

/* Layout in 64-bit arithmetic, independent of the header's u32 helpers. */
static uint64_t layout_end64(const struct hmdev_config *cfg)
{
	uint64_t sq = align4k((uint64_t)cfg->sq_entries * sizeof(struct hmirror_cmd));
	uint64_t cq = align4k((uint64_t)cfg->cq_entries * sizeof(struct hmirror_cpl));
	uint64_t fr = align4k((uint64_t)cfg->fault_entries * sizeof(struct hmirror_fault));

	return HMIRROR_RINGS_OFF + (uint64_t)(1 + cfg->engines) * (sq + cq) + fr;
}

int hmdev_config_check(const struct hmdev_config *cfg, char *err, size_t errlen)
{
	if (cfg->engines < 1 || cfg->engines > HMIRROR_MAX_QUEUES - 1) {
		seterr(err, errlen, "engines must be in [1, %d], got %u",
		       HMIRROR_MAX_QUEUES - 1, cfg->engines);
		return -1;
	}
	if (check_ring("sq-entries", cfg->sq_entries, err, errlen) ||
	    check_ring("cq-entries", cfg->cq_entries, err, errlen) ||
	    check_ring("fault-entries", cfg->fault_entries, err, errlen))
		return -1;
	if (cfg->max_contexts < 1 || cfg->max_contexts > HMDEV_MAX_CONTEXTS) {
		seterr(err, errlen, "max-contexts must be in [1, %zu], got %u",
		       (size_t)HMDEV_MAX_CONTEXTS, cfg->max_contexts);
		return -1;
	}
	if (cfg->tlb_entries < 1 || cfg->tlb_entries > HMDEV_MAX_TLB) {
		seterr(err, errlen, "tlb-entries must be in [1, %u], got %u",
		       HMDEV_MAX_TLB, cfg->tlb_entries);
		return -1;
	}
	if (layout_end64(cfg) > (1ull << 31)) {
		seterr(err, errlen, "layout does not fit a 2 GiB BAR");
		return -1;
	}
	return 0;
}

uint64_t hmdev_layout(const struct hmdev_config *cfg, struct hmirror_header *h)
{
	uint64_t end;

	if (hmdev_config_check(cfg, NULL, 0))
		return 0;
	memset(h, 0, sizeof(*h));
	h->magic = HMIRROR_MAGIC;
	h->version = HMIRROR_VERSION;
	h->features = HMDEV_FEATURES;
	h->num_queues = 1 + cfg->engines;
	h->sq_entries = cfg->sq_entries;
	h->cq_entries = cfg->cq_entries;
	h->fault_entries = cfg->fault_entries;
	h->max_contexts = cfg->max_contexts;
	h->tlb_entries = cfg->tlb_entries;
	h->num_vectors = HMIRROR_NUM_VECTORS;
	h->regs_off = HMIRROR_REGS_OFF;
	h->queues_off = HMIRROR_QUEUES_OFF;
	h->ctx_off = HMIRROR_CTX_OFF;
	h->rings_off = HMIRROR_RINGS_OFF;
	h->fault_regs_off = HMIRROR_FAULT_REGS_OFF;

	end = layout_end64(cfg);
	/* The header's u32 helpers must agree (no overflow on either side). */
	if (hmirror_layout_end(h) != end)
		return 0;
	return end;
}

uint64_t hmdev_bar_size(const struct hmdev_config *cfg)
{
	struct hmirror_header h;
	uint64_t end = hmdev_layout(cfg, &h), size = HMDEV_BAR_MIN;

	if (!end)
		return 0;
	while (size < end)
		size <<= 1;
	return size;
}

/* ---- irqs, errors --------------------------------------------------- */

static void flush_irqs(struct hmdev *dev)
{
	unsigned v;

	for (v = 0; v < HMIRROR_NUM_VECTORS; v++) {
		if (!(dev->pending_irqs & (1u << v)))
			continue;
		dev->pending_irqs &= ~(1u << v);
		hm_store(&dev->regs->irq_sent[v], ++dev->cnt.irqs[v]);
		if (dev->raise_irq)
			dev->raise_irq(dev->irq_opaque, v);
	}
}

static void set_status(struct hmdev *dev, uint32_t status)
{
	dev->status = status;
	hm_store_rel(&dev->regs->dev_status, status);
}

void hmdev_error(struct hmdev *dev, uint32_t code, uint32_t queue,
		 uint32_t index, uint64_t info)
{
	struct hmirror_regs *r = dev->regs;

	dev->cnt.errors++;
	hm_store(&r->err_code, code);
	hm_store(&r->err_queue, queue);
	hm_store(&r->err_index, index);
	hm_store(&r->err_info, info);
	hm_store_rel(&r->err_count, dev->cnt.errors);
	set_status(dev, dev->status | HMIRROR_DEV_ERROR);
	dev->pending_irqs |= 1u << HMIRROR_VEC_CTRL;
	if (hm_log_verbose || dev->cnt.errors <= HM_ERR_LOG_LIMIT)
		hm_log("error %u on queue %u index %u info 0x%llx%s", code,
		       queue, index, (unsigned long long)info,
		       dev->cnt.errors == HM_ERR_LOG_LIMIT && !hm_log_verbose ?
		       " (further errors not logged)" : "");
}

/* A bad ring index: the queue stops until the next reset. */
static void queue_fail(struct hmdev *dev, unsigned qi, uint32_t index,
		       uint64_t info)
{
	dev->q[qi].status = HMIRROR_Q_ERROR;
	hm_store_rel(&dev->qregs[qi].q_status, HMIRROR_Q_ERROR);
	hmdev_error(dev, HMIRROR_ST_BAD_INDEX, qi, index, info);
}

/* ---- init ----------------------------------------------------------- */

int hmdev_init(struct hmdev *dev, const struct hmdev_config *cfg,
	       void *bar, size_t bar_size, const struct guest_ram *ram,
	       hmdev_irq_fn raise_irq, void *irq_opaque,
	       char *err, size_t errlen)
{
	struct hmirror_header *h = &dev->hdr;
	uint64_t end;
	unsigned q;

	memset(dev, 0, sizeof(*dev));
	if (hmdev_config_check(cfg, err, errlen))
		return -1;
	end = hmdev_layout(cfg, h);
	if (!end) {
		seterr(err, errlen, "inconsistent layout");
		return -1;
	}
	if (!bar || bar_size < end || bar_size > UINT32_MAX) {
		seterr(err, errlen, "BAR of %zu bytes cannot hold the layout (%llu bytes)",
		       bar_size, (unsigned long long)end);
		return -1;
	}
	h->bar_size = (uint32_t)bar_size;

	dev->bar = bar;
	dev->bar_size = bar_size;
	dev->cfg = *cfg;
	dev->num_queues = h->num_queues;
	dev->sq_mask = h->sq_entries - 1;
	dev->cq_mask = h->cq_entries - 1;
	dev->ram = ram;
	dev->raise_irq = raise_irq;
	dev->irq_opaque = irq_opaque;

	dev->regs = (struct hmirror_regs *)(dev->bar + h->regs_off);
	dev->qregs = (struct hmirror_queue_regs *)(dev->bar + h->queues_off);
	dev->fregs = (struct hmirror_fault_regs *)(dev->bar + h->fault_regs_off);
	dev->ctx = (struct hmirror_ctx_entry *)(dev->bar + h->ctx_off);
	for (q = 0; q < dev->num_queues; q++) {
		dev->sq[q] = (struct hmirror_cmd *)(dev->bar + hmirror_sq_off(h, q));
		dev->cq[q] = (struct hmirror_cpl *)(dev->bar + hmirror_cq_off(h, q));
	}
	dev->fault_ring = (struct hmirror_fault *)(dev->bar + hmirror_fault_ring_off(h));

	memset(bar, 0, bar_size);
	memcpy(bar, h, sizeof(*h));
	for (q = 0; q < dev->num_queues; q++)
		dev->q[q].status = HMIRROR_Q_IDLE;
	set_status(dev, HMIRROR_DEV_ALIVE);
	return 0;
}

/* ---- reset ---------------------------------------------------------- */

static void do_reset(struct hmdev *dev, uint32_t gen)
{
	struct hmirror_regs *r = dev->regs;
	uint64_t hb;
	unsigned q, v;

	for (q = 0; q < dev->num_queues; q++) {
		struct hmirror_queue_regs *qr = &dev->qregs[q];

		memset(&dev->q[q], 0, sizeof(dev->q[q]));
		dev->q[q].status = HMIRROR_Q_IDLE;
		hm_store(&qr->sq_head, 0);
		hm_store(&qr->cq_tail, 0);
		hm_store(&qr->fault_id, 0);
		hm_store(&qr->q_status, HMIRROR_Q_IDLE);
		hm_store(&qr->completed_seqno, 0);
	}
	hm_store(&dev->fregs->tail, 0);

	hb = dev->cnt.heartbeat;	/* the heartbeat never restarts */
	memset(&dev->cnt, 0, sizeof(dev->cnt));
	dev->cnt.heartbeat = hb;
	hm_store(&r->err_count, 0);
	hm_store(&r->err_code, 0);
	hm_store(&r->err_queue, 0);
	hm_store(&r->err_index, 0);
	hm_store(&r->err_info, 0);
	for (v = 0; v < HMIRROR_NUM_VECTORS; v++)
		hm_store(&r->irq_sent[v], 0);
	hm_store(&r->doorbells_seen, 0);
	hm_store(&r->cnt_commands, 0);
	hm_store(&r->cnt_faults, 0);
	hm_store(&r->cnt_replays, 0);
	hm_store(&r->cnt_cancels, 0);
	hm_store(&r->cnt_tlb_hits, 0);
	hm_store(&r->cnt_tlb_misses, 0);
	hm_store(&r->cnt_tlb_invals, 0);
	hm_store(&r->cnt_pages_walked, 0);

	set_status(dev, HMIRROR_DEV_ALIVE | HMIRROR_DEV_ENABLED);
	dev->reset_ack = gen;
	/* Last: the driver polls the ack, then everything above is visible. */
	hm_store_rel(&r->dev_reset_ack, gen);
	dev->pending_irqs |= 1u << HMIRROR_VEC_CTRL;
	hm_log("reset %u: %u queues enabled", gen, dev->num_queues);
}

static void check_reset(struct hmdev *dev)
{
	uint32_t gen = hm_load_acq(&dev->regs->drv_reset_gen);

	if (gen != dev->reset_ack)
		do_reset(dev, gen);
}

/* ---- queues --------------------------------------------------------- */

/* Copy a descriptor out of shared memory exactly once. */
static void read_cmd(struct hmirror_cmd *dst, const struct hmirror_cmd *src)
{
	const hm_u64a *s = (const hm_u64a *)(const void *)src;
	uint64_t w[sizeof(*dst) / 8];
	unsigned i;

	for (i = 0; i < sizeof(*dst) / 8; i++)
		w[i] = __atomic_load_n(&s[i], __ATOMIC_RELAXED);
	memcpy(dst, w, sizeof(*dst));
}

static void write_cpl(struct hmirror_cpl *dst, const struct hmirror_cpl *src)
{
	hm_u64a *d = (hm_u64a *)(void *)dst;
	uint64_t w[sizeof(*src) / 8];
	unsigned i;

	memcpy(w, src, sizeof(*src));
	for (i = 0; i < sizeof(*src) / 8; i++)
		__atomic_store_n(&d[i], w[i], __ATOMIC_RELAXED);
}

/* Run queue @qi until its SQ snapshot is empty or its CQ full. */
static unsigned queue_run(struct hmdev *dev, unsigned qi)
{
	struct hmdev_queue *q = &dev->q[qi];
	struct hmirror_queue_regs *qr = &dev->qregs[qi];
	uint32_t tail, cq_head, used;
	unsigned done = 0;

	if (q->status == HMIRROR_Q_ERROR)
		return 0;
	tail = hm_load_acq(&qr->sq_tail);
	if (tail - q->sq_head > dev->hdr.sq_entries) {
		queue_fail(dev, qi, q->sq_head, tail);
		return 0;
	}

	while (q->sq_head != tail) {
		struct hmirror_cmd cmd;
		struct hmirror_cpl cpl;
		uint64_t info = 0;

		cq_head = hm_load_acq(&qr->cq_head);
		used = q->cq_tail - cq_head;
		if (used > dev->hdr.cq_entries) {
			queue_fail(dev, qi, q->cq_tail, cq_head);
			return done;
		}
		if (used == dev->hdr.cq_entries)
			break;	/* CQ full: resume on the next doorbell or tick */

		read_cmd(&cmd, &dev->sq[qi][q->sq_head & dev->sq_mask]);
		memset(&cpl, 0, sizeof(cpl));
		cpl.t_submit = hmdev_now_ns();
		cpl.seqno = cmd.seqno;
		cpl.opcode = cmd.opcode;
		cpl.queue = (uint8_t)qi;
		hmdev_cmd_exec(dev, qi, &cmd, &cpl, &info);
		if (cpl.status != HMIRROR_ST_OK)
			hmdev_error(dev, cpl.status, qi, q->sq_head, info);
		cpl.t_done = hmdev_now_ns();
		write_cpl(&dev->cq[qi][q->cq_tail & dev->cq_mask], &cpl);

		q->sq_head++;
		q->cq_tail++;
		q->completed_seqno = cmd.seqno;
		hm_store(&dev->regs->cnt_commands, ++dev->cnt.commands);
		hm_store_rel(&qr->completed_seqno, q->completed_seqno);
		hm_store_rel(&qr->sq_head, q->sq_head);
		hm_store_rel(&qr->cq_tail, q->cq_tail);
		done++;
	}
	q->status = q->sq_head != tail ? HMIRROR_Q_RUNNING : HMIRROR_Q_IDLE;
	hm_store_rel(&qr->q_status, q->status);
	return done;
}

static void run_queues(struct hmdev *dev)
{
	unsigned qi, done = 0;

	if (!(dev->status & HMIRROR_DEV_ENABLED))
		return;
	for (qi = 0; qi < dev->num_queues; qi++)
		done += queue_run(dev, qi);
	if (done)
		dev->pending_irqs |= 1u << HMIRROR_VEC_CQ;
}

/* ---- entry points --------------------------------------------------- */

void hmdev_doorbell(struct hmdev *dev, unsigned vector)
{
	if (dev->gone)
		return;
	hm_store(&dev->regs->doorbells_seen, ++dev->cnt.doorbells);
	hm_dbg("doorbell %u", vector);
	if (vector == HMIRROR_VEC_CTRL)
		check_reset(dev);
	/* CQ: new submissions.  FAULT (answers) and CTRL: a rescan is cheap. */
	run_queues(dev);
	flush_irqs(dev);
}

void hmdev_tick(struct hmdev *dev)
{
	if (dev->gone)
		return;
	hm_store(&dev->regs->dev_time_ns, hmdev_now_ns());
	hm_store_rel(&dev->regs->heartbeat, ++dev->cnt.heartbeat);
	check_reset(dev);
	run_queues(dev);
	flush_irqs(dev);
}

void hmdev_shutdown(struct hmdev *dev)
{
	if (dev->gone)
		return;
	set_status(dev, HMIRROR_DEV_GONE | (dev->status & HMIRROR_DEV_ERROR));
	dev->pending_irqs = 1u << HMIRROR_VEC_CTRL;
	flush_irqs(dev);
	dev->gone = true;
}
