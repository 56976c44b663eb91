// SPDX-License-Identifier: MIT
/*
 * hmirror device model: layout, reset, doorbells, heartbeat, the queue
 * (ring) machinery and the engine threads.  What a command does is in
 * hmdev_cmd.c, translation in hmdev_mmu.c.
 */
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hmdev.h"
#include "log.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "the device ABI is little-endian; the model assumes a LE host");

#define HM_ERR_LOG_LIMIT	32	/* errors logged per reset unless -v */


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
		hm_seterr(err, errlen,
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
		hm_seterr(err, errlen, "engines must be in [1, %d], got %u",
		       HMIRROR_MAX_QUEUES - 1, cfg->engines);
		return -1;
	}
	if (check_ring("sq-entries", cfg->sq_entries, err, errlen) ||
	    check_ring("cq-entries", cfg->cq_entries, err, errlen) ||
	    check_ring("fault-entries", cfg->fault_entries, err, errlen))
		return -1;
	if (cfg->max_contexts < 1 || cfg->max_contexts > HMDEV_MAX_CONTEXTS) {
		hm_seterr(err, errlen, "max-contexts must be in [1, %zu], got %u",
		       (size_t)HMDEV_MAX_CONTEXTS, cfg->max_contexts);
		return -1;
	}
	if (cfg->tlb_entries < 1 || cfg->tlb_entries > HMDEV_MAX_TLB) {
		hm_seterr(err, errlen, "tlb-entries must be in [1, %u], got %u",
		       HMDEV_MAX_TLB, cfg->tlb_entries);
		return -1;
	}
	if (layout_end64(cfg) > (1ull << 31)) {
		hm_seterr(err, errlen, "layout does not fit a 2 GiB BAR");
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

/* ---- irqs, errors, counters ----------------------------------------- */

void hmdev_pend_irq(struct hmdev *dev, unsigned vector)
{
	__atomic_fetch_or(&dev->pending_irqs, 1u << vector, __ATOMIC_SEQ_CST);
}

void hmdev_flush_irqs(struct hmdev *dev)
{
	uint32_t p = __atomic_exchange_n(&dev->pending_irqs, 0, __ATOMIC_ACQ_REL);
	unsigned v;

	for (v = 0; v < HMIRROR_NUM_VECTORS; v++) {
		if (!(p & (1u << v)))
			continue;
		pthread_mutex_lock(&dev->cnt_mu);
		hm_store(&dev->regs->irq_sent[v], ++dev->cnt.irqs[v]);
		pthread_mutex_unlock(&dev->cnt_mu);
		if (dev->raise_irq)
			dev->raise_irq(dev->irq_opaque, v);
	}
}

void hmdev_cnt_add(struct hmdev *dev, uint64_t *priv, __u64 *reg, uint64_t n)
{
	pthread_mutex_lock(&dev->cnt_mu);
	*priv += n;
	hm_store(reg, *priv);
	pthread_mutex_unlock(&dev->cnt_mu);
}

static uint32_t get_status(struct hmdev *dev)
{
	return __atomic_load_n(&dev->status, __ATOMIC_ACQUIRE);
}

/* err_mu held (or no other thread running). */
static void set_status(struct hmdev *dev, uint32_t status)
{
	__atomic_store_n(&dev->status, status, __ATOMIC_RELEASE);
	hm_store_rel(&dev->regs->dev_status, status);
}

void hmdev_error(struct hmdev *dev, uint32_t code, uint32_t queue,
		 uint32_t index, uint64_t info)
{
	struct hmirror_regs *r = dev->regs;
	uint32_t n;

	pthread_mutex_lock(&dev->err_mu);
	n = ++dev->cnt.errors;
	hm_store(&r->err_code, code);
	hm_store(&r->err_queue, queue);
	hm_store(&r->err_index, index);
	hm_store(&r->err_info, info);
	hm_store_rel(&r->err_count, n);
	set_status(dev, dev->status | HMIRROR_DEV_ERROR);
	pthread_mutex_unlock(&dev->err_mu);
	hmdev_pend_irq(dev, HMIRROR_VEC_CTRL);
	if (hm_log_verbose || n <= HM_ERR_LOG_LIMIT)
		hm_log("error %u on queue %u index %u info 0x%llx%s", code,
		       queue, index, (unsigned long long)info,
		       n == HM_ERR_LOG_LIMIT && !hm_log_verbose ?
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

static int init_locks(struct hmdev *dev)
{
	pthread_rwlockattr_t ra;
	unsigned q;

	/* A TLB_INVAL must not starve behind a stream of engine chunks. */
	if (pthread_rwlockattr_init(&ra))
		return -1;
	pthread_rwlockattr_setkind_np(&ra,
				      PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	if (pthread_rwlock_init(&dev->inval_lock, &ra)) {
		pthread_rwlockattr_destroy(&ra);
		return -1;
	}
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&dev->err_mu, NULL);
	pthread_mutex_init(&dev->cnt_mu, NULL);
	pthread_mutex_init(&dev->fault_mu, NULL);
	for (q = 0; q < HMIRROR_MAX_QUEUES; q++) {
		struct hmdev_engine *e = &dev->eng[q];

		pthread_mutex_init(&e->run_mu, NULL);
		pthread_mutex_init(&e->kick_mu, NULL);
		pthread_cond_init(&e->kick_cv, NULL);
		e->dev = dev;
		e->qi = q;
	}
	return 0;
}

static void fini_locks(struct hmdev *dev)
{
	unsigned q;

	for (q = 0; q < HMIRROR_MAX_QUEUES; q++) {
		pthread_mutex_destroy(&dev->eng[q].run_mu);
		pthread_mutex_destroy(&dev->eng[q].kick_mu);
		pthread_cond_destroy(&dev->eng[q].kick_cv);
	}
	pthread_mutex_destroy(&dev->err_mu);
	pthread_mutex_destroy(&dev->cnt_mu);
	pthread_mutex_destroy(&dev->fault_mu);
	pthread_rwlock_destroy(&dev->inval_lock);
}

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
		hm_seterr(err, errlen, "inconsistent layout");
		return -1;
	}
	if (!bar || bar_size < end || bar_size > UINT32_MAX) {
		hm_seterr(err, errlen, "BAR of %zu bytes cannot hold the layout (%llu bytes)",
		       bar_size, (unsigned long long)end);
		return -1;
	}
	if (hmdev_tlb_init(&dev->tlb, cfg->tlb_entries)) {
		hm_seterr(err, errlen, "cannot allocate a TLB of %u entries",
		       cfg->tlb_entries);
		return -1;
	}
	if (init_locks(dev)) {
		hmdev_tlb_fini(&dev->tlb);
		hm_seterr(err, errlen, "cannot initialise locks");
		return -1;
	}
	h->bar_size = (uint32_t)bar_size;

	dev->bar = bar;
	dev->bar_size = bar_size;
	dev->cfg = *cfg;
	dev->num_queues = h->num_queues;
	dev->sq_mask = h->sq_entries - 1;
	dev->cq_mask = h->cq_entries - 1;
	dev->fault_mask = h->fault_entries - 1;
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

void hmdev_destroy(struct hmdev *dev)
{
	if (!dev->tlb.e)
		return;		/* never set up */
	hmdev_stop(dev);
	fini_locks(dev);
	hmdev_tlb_fini(&dev->tlb);
}

/* ---- reset ---------------------------------------------------------- */

/* Every engine is quiesced (its run_mu held by the caller). */
static void do_reset(struct hmdev *dev, uint32_t gen)
{
	struct hmirror_regs *r = dev->regs;
	uint64_t hb;
	unsigned q, v, aborted = 0;

	for (q = 0; q < dev->num_queues; q++) {
		struct hmirror_queue_regs *qr = &dev->qregs[q];

		/* a command in flight (stalled or not) is dropped */
		aborted += dev->q[q].busy;
		memset(&dev->q[q], 0, sizeof(dev->q[q]));
		dev->q[q].status = HMIRROR_Q_IDLE;
		hm_store(&qr->sq_head, 0);
		hm_store(&qr->cq_tail, 0);
		hm_store(&qr->fault_id, 0);
		hm_store(&qr->q_status, HMIRROR_Q_IDLE);
		hm_store(&qr->completed_seqno, 0);
	}
	pthread_mutex_lock(&dev->fault_mu);
	dev->fault_tail = 0;	/* fault_seq goes on: old answers never match */
	dev->fault_ring_bad = false;
	hm_store(&dev->fregs->tail, 0);
	pthread_mutex_unlock(&dev->fault_mu);
	hmdev_tlb_flush(dev);

	pthread_mutex_lock(&dev->err_mu);
	pthread_mutex_lock(&dev->cnt_mu);
	pthread_mutex_lock(&dev->tlb.mu);
	hb = dev->cnt.heartbeat;	/* the heartbeat never restarts */
	memset(&dev->cnt, 0, sizeof(dev->cnt));
	dev->cnt.heartbeat = hb;
	pthread_mutex_unlock(&dev->tlb.mu);
	pthread_mutex_unlock(&dev->cnt_mu);
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
	pthread_mutex_unlock(&dev->err_mu);
	dev->reset_ack = gen;
	/* Last: the driver polls the ack, then everything above is visible. */
	hm_store_rel(&r->dev_reset_ack, gen);
	hmdev_pend_irq(dev, HMIRROR_VEC_CTRL);
	hm_log("reset %u: %u queues enabled%s", gen, dev->num_queues,
	       aborted ? ", commands in flight dropped" : "");
}

static void kick(struct hmdev_engine *e)
{
	pthread_mutex_lock(&e->kick_mu);
	e->kick = true;
	pthread_cond_signal(&e->kick_cv);
	pthread_mutex_unlock(&e->kick_mu);
}

static void kick_engines(struct hmdev *dev)
{
	unsigned q;

	if (!dev->threaded)
		return;
	for (q = 1; q < dev->num_queues; q++)
		kick(&dev->eng[q]);
}

static void check_reset(struct hmdev *dev)
{
	uint32_t gen = hm_load_acq(&dev->regs->drv_reset_gen);
	unsigned q;

	if (gen == dev->reset_ack)
		return;
	/* Stop the engines at their next chunk and wait until they are out. */
	__atomic_store_n(&dev->abort, true, __ATOMIC_RELEASE);
	for (q = 1; q < dev->num_queues; q++)
		pthread_mutex_lock(&dev->eng[q].run_mu);
	do_reset(dev, gen);
	__atomic_store_n(&dev->abort, false, __ATOMIC_RELEASE);
	for (q = dev->num_queues - 1; q >= 1; q--)
		pthread_mutex_unlock(&dev->eng[q].run_mu);
	kick_engines(dev);
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

/* Take the next descriptor: it is consumed (sq_head) once copied. */
static void fetch(struct hmdev *dev, unsigned qi)
{
	struct hmdev_queue *q = &dev->q[qi];
	struct hmdev_inflight *in = &q->cur;

	memset(in, 0, sizeof(*in));
	read_cmd(&in->cmd, &dev->sq[qi][q->sq_head & dev->sq_mask]);
	in->index = q->sq_head;
	in->cpl.t_submit = hmdev_now_ns();
	in->cpl.seqno = in->cmd.seqno;
	in->cpl.opcode = in->cmd.opcode;
	in->cpl.queue = (uint8_t)qi;
	q->busy = true;
	q->sq_head++;
	hm_store_rel(&dev->qregs[qi].sq_head, q->sq_head);
}

static void complete(struct hmdev *dev, unsigned qi)
{
	struct hmdev_queue *q = &dev->q[qi];
	struct hmirror_queue_regs *qr = &dev->qregs[qi];
	struct hmdev_inflight *in = &q->cur;

	if (in->cpl.status != HMIRROR_ST_OK && !in->quiet)
		hmdev_error(dev, in->cpl.status, qi, in->index, in->err_info);
	in->cpl.t_done = hmdev_now_ns();
	/* the slot was free when the command was fetched */
	write_cpl(&dev->cq[qi][q->cq_tail & dev->cq_mask], &in->cpl);
	q->busy = false;
	q->cq_tail++;
	q->completed_seqno = in->cmd.seqno;
	HMDEV_CNT_ADD(dev, commands, 1);
	hm_store_rel(&qr->completed_seqno, q->completed_seqno);
	hm_store_rel(&qr->cq_tail, q->cq_tail);
}

/*
 * Run queue @qi until its SQ snapshot is empty, its CQ full, or its
 * command stalls on a fault.  Returns the completions written.
 */
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

	for (;;) {
		if (__atomic_load_n(&dev->abort, __ATOMIC_ACQUIRE))
			return done;
		if (!q->busy) {
			if (q->sq_head == tail)
				break;
			cq_head = hm_load_acq(&qr->cq_head);
			used = q->cq_tail - cq_head;
			if (used > dev->hdr.cq_entries) {
				queue_fail(dev, qi, q->cq_tail, cq_head);
				return done;
			}
			if (used == dev->hdr.cq_entries)
				break;	/* CQ full: resume on a doorbell or tick */
			fetch(dev, qi);
		}
		if (hmdev_cmd_run(dev, qi, &q->cur) == HMDEV_EXEC_STALL)
			break;
		complete(dev, qi);
		done++;
	}
	if (q->busy)
		q->status = q->cur.fault_id ? HMIRROR_Q_STALLED : HMIRROR_Q_RUNNING;
	else
		q->status = q->sq_head != tail ? HMIRROR_Q_RUNNING : HMIRROR_Q_IDLE;
	hm_store_rel(&qr->q_status, q->status);
	return done;
}

static bool enabled(struct hmdev *dev)
{
	return (get_status(dev) & HMIRROR_DEV_ENABLED) &&
	       !__atomic_load_n(&dev->gone, __ATOMIC_ACQUIRE);
}

/* Event-loop side: queue 0 here; engines here (inline) or kicked. */
static void run_queues(struct hmdev *dev)
{
	unsigned qi, done = 0;

	if (!enabled(dev))
		return;
	if (dev->threaded) {
		done = queue_run(dev, HMIRROR_QUEUE_MGMT);
		kick_engines(dev);
	} else {
		for (qi = 0; qi < dev->num_queues; qi++)
			done += queue_run(dev, qi);
	}
	if (done)
		hmdev_pend_irq(dev, HMIRROR_VEC_CQ);
}

/* ---- engine threads ------------------------------------------------- */

static void *engine_main(void *arg)
{
	struct hmdev_engine *e = arg;
	struct hmdev *dev = e->dev;
	unsigned done;

	for (;;) {
		pthread_mutex_lock(&e->kick_mu);
		while (!e->kick && !e->stop)
			pthread_cond_wait(&e->kick_cv, &e->kick_mu);
		if (e->stop) {
			pthread_mutex_unlock(&e->kick_mu);
			break;
		}
		e->kick = false;
		pthread_mutex_unlock(&e->kick_mu);

		pthread_mutex_lock(&e->run_mu);
		done = enabled(dev) ? queue_run(dev, e->qi) : 0;
		pthread_mutex_unlock(&e->run_mu);
		if (done)
			hmdev_pend_irq(dev, HMIRROR_VEC_CQ);
		hmdev_flush_irqs(dev);
	}
	return NULL;
}

int hmdev_start(struct hmdev *dev)
{
	unsigned q;

	if (dev->threaded)
		return 0;
	for (q = 1; q < dev->num_queues; q++) {
		struct hmdev_engine *e = &dev->eng[q];

		e->stop = false;
		e->kick = true;		/* look at the queue once */
		if (pthread_create(&e->thread, NULL, engine_main, e)) {
			dev->threaded = true;
			hmdev_stop(dev);
			return -1;
		}
		e->started = true;
	}
	dev->threaded = true;
	return 0;
}

void hmdev_stop(struct hmdev *dev)
{
	unsigned q;

	if (!dev->threaded)
		return;
	__atomic_store_n(&dev->abort, true, __ATOMIC_RELEASE);
	for (q = 1; q < dev->num_queues; q++) {
		struct hmdev_engine *e = &dev->eng[q];

		if (!e->started)
			continue;
		pthread_mutex_lock(&e->kick_mu);
		e->stop = true;
		pthread_cond_signal(&e->kick_cv);
		pthread_mutex_unlock(&e->kick_mu);
		pthread_join(e->thread, NULL);
		e->started = false;
	}
	dev->threaded = false;
	__atomic_store_n(&dev->abort, false, __ATOMIC_RELEASE);
}

/* ---- entry points --------------------------------------------------- */

void hmdev_doorbell(struct hmdev *dev, unsigned vector)
{
	hmdev_doorbell_n(dev, vector, 1);
}

void hmdev_doorbell_n(struct hmdev *dev, unsigned vector, uint64_t rings)
{
	if (__atomic_load_n(&dev->gone, __ATOMIC_ACQUIRE) || !rings)
		return;
	dev->cnt.doorbells += (uint32_t)rings;
	hm_store(&dev->regs->doorbells_seen, dev->cnt.doorbells);
	hm_dbg("doorbell %u", vector);
	if (vector == HMIRROR_VEC_CTRL)
		check_reset(dev);
	/* CQ: new submissions or room; FAULT: answers; CTRL: rescan. */
	run_queues(dev);
	hmdev_flush_irqs(dev);
}

void hmdev_tick(struct hmdev *dev)
{
	if (__atomic_load_n(&dev->gone, __ATOMIC_ACQUIRE))
		return;
	hm_store(&dev->regs->dev_time_ns, hmdev_now_ns());
	hm_store_rel(&dev->regs->heartbeat, ++dev->cnt.heartbeat);
	check_reset(dev);
	run_queues(dev);
	hmdev_flush_irqs(dev);
}

void hmdev_shutdown(struct hmdev *dev)
{
	if (__atomic_load_n(&dev->gone, __ATOMIC_ACQUIRE))
		return;
	hmdev_stop(dev);
	pthread_mutex_lock(&dev->err_mu);
	set_status(dev, HMIRROR_DEV_GONE | (dev->status & HMIRROR_DEV_ERROR));
	pthread_mutex_unlock(&dev->err_mu);
	__atomic_store_n(&dev->pending_irqs, 1u << HMIRROR_VEC_CTRL,
			 __ATOMIC_RELEASE);
	hmdev_flush_irqs(dev);
	__atomic_store_n(&dev->gone, true, __ATOMIC_RELEASE);
}
