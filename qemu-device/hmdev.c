// SPDX-License-Identifier: MIT
/*
 * hmirror device model, the device: layout, init, reset, bus-master
 * control, doorbells, heartbeat, the queue (ring) machinery and the engine
 * threads.  The top of the model: what a command does is hmdev_cmd.c's
 * business, translation hmdev_mmu.c's, the shared device state (status,
 * errors, counters, irqs) hmdev_state.c's; none of them calls back here.
 */
#include <sched.h>
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "hmdev_internal.h"
#include "log.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "the device ABI is little-endian; the model assumes a LE host");

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
	cfg->va_bits = HMDEV_DEF_VA_BITS;
	cfg->vram_mb = HMDEV_DEF_VRAM_MB;
	cfg->shootdown = true;
	cfg->poll_adapt = true;
	cfg->poll_max_us = HMDEV_DEF_POLL_MAX_US;
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
	uint64_t ans = align4k((uint64_t)cfg->sq_entries *
			       sizeof(struct hmirror_fault_answer));

	return HMIRROR_RINGS_OFF + (uint64_t)(1 + cfg->engines) * (sq + cq + ans) + fr;
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
	if (cfg->va_bits != HMIRROR_VA_BITS_4LEVEL &&
	    cfg->va_bits != HMIRROR_VA_BITS_5LEVEL) {
		hm_seterr(err, errlen, "va-bits must be %d or %d, got %u",
			  HMIRROR_VA_BITS_4LEVEL, HMIRROR_VA_BITS_5LEVEL,
			  cfg->va_bits);
		return -1;
	}
	if (cfg->vram_mb > HMDEV_MAX_VRAM_MB) {
		hm_seterr(err, errlen, "vram-mb must be in [0, %u], got %u",
			  HMDEV_MAX_VRAM_MB, cfg->vram_mb);
		return -1;
	}
	if (cfg->poll_max_us > HMDEV_MAX_POLL_US) {
		hm_seterr(err, errlen,
			  "poll-max-us must be at most %u (0: the default), got %u",
			  HMDEV_MAX_POLL_US, cfg->poll_max_us);
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
	h->features = HMDEV_FEATURES | (cfg->vram_mb ? HMIRROR_FEAT_VRAM : 0) |
		      (cfg->shootdown ? HMIRROR_FEAT_SHOOTDOWN : 0);
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
	h->va_bits = cfg->va_bits;
	h->vram_pages = cfg->vram_mb * (uint32_t)((1u << 20) / HMIRROR_PAGE_SIZE);
	h->shootdown_off = cfg->shootdown ? HMIRROR_SHOOTDOWN_OFF : 0;

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

/* ---- init ----------------------------------------------------------- */

static int init_locks(struct hmdev *dev)
{
	pthread_rwlockattr_t ra;
	unsigned q;

	/*
	 * A TLB_INVAL or a bus-master-off must not starve behind a stream of
	 * engine chunks: writers first.
	 */
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

static const struct hmdev_list empty_list = { HMDEV_NO_TAG, HMDEV_NO_TAG };

/* Nothing in flight (init and reset). */
static void queue_clear(struct hmdev *dev, struct hmdev_queue *q)
{
	uint32_t t, n;

	for (t = q->all.head; t != HMDEV_NO_TAG; t = n) {
		n = q->slot[t].q_next;
		q->slot[t].state = HMDEV_SLOT_FREE;
	}
	for (n = 0; n <= dev->hdr.max_contexts; n++)
		q->by_ctx[n] = empty_list;
	q->all = q->ready = empty_list;
	q->sq_head = q->cq_tail = 0;
	q->in_flight = q->parked = 0;
	q->completed_seqno = q->progress = 0;
	q->status = HMIRROR_Q_IDLE;
}

static void free_queues(struct hmdev *dev)
{
	unsigned q;

	for (q = 0; q < HMIRROR_MAX_QUEUES; q++) {
		free(dev->q[q].slot);
		free(dev->q[q].by_ctx);
		dev->q[q].slot = NULL;
		dev->q[q].by_ctx = NULL;
	}
}

static int alloc_queues(struct hmdev *dev)
{
	unsigned q;

	for (q = 0; q < dev->num_queues; q++) {
		struct hmdev_queue *qu = &dev->q[q];

		/* calloc: FREE is 0, and untouched tags cost no memory */
		qu->slot = calloc(dev->hdr.sq_entries, sizeof(*qu->slot));
		qu->by_ctx = calloc(dev->hdr.max_contexts + 1, sizeof(*qu->by_ctx));
		if (!qu->slot || !qu->by_ctx) {
			free_queues(dev);
			return -1;
		}
		qu->all = empty_list;
		queue_clear(dev, qu);
	}
	return 0;
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
	dev->num_queues = h->num_queues;
	if (alloc_queues(dev)) {
		hm_seterr(err, errlen, "cannot allocate the queues' command tables");
		return -1;
	}
	if (hmdev_tlb_init(&dev->tlb, cfg->tlb_entries)) {
		free_queues(dev);
		hm_seterr(err, errlen, "cannot allocate a TLB of %u entries",
		       cfg->tlb_entries);
		return -1;
	}
	if (dev_mem_init(&dev->vram, (uint64_t)h->vram_pages * HMIRROR_PAGE_SIZE)) {
		hmdev_tlb_fini(&dev->tlb);
		free_queues(dev);
		hm_seterr(err, errlen, "cannot allocate %u MiB of device memory",
			  cfg->vram_mb);
		return -1;
	}
	if (init_locks(dev)) {
		dev_mem_fini(&dev->vram);
		hmdev_tlb_fini(&dev->tlb);
		free_queues(dev);
		hm_seterr(err, errlen, "cannot initialise locks");
		return -1;
	}
	h->bar_size = (uint32_t)bar_size;

	dev->bar = bar;
	dev->bar_size = bar_size;
	dev->cfg = *cfg;
	if (!dev->cfg.poll_max_us)
		dev->cfg.poll_max_us = HMDEV_DEF_POLL_MAX_US;
	dev->sq_mask = h->sq_entries - 1;
	dev->cq_mask = h->cq_entries - 1;
	dev->fault_mask = h->fault_entries - 1;
	dev->va_end = 1ull << h->va_bits;
	dev->pt_levels = hmirror_pt_levels(h->va_bits);
	dev->pte_rsvd = HMIRROR_PTE_RSVD_MASK |
			(h->features & HMIRROR_FEAT_VRAM ? 0 : HMIRROR_PTE_VRAM);
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
		dev->answers[q] = (struct hmirror_fault_answer *)
			(dev->bar + hmirror_answers_off(h, q));
	}
	dev->fault_ring = (struct hmirror_fault *)(dev->bar + hmirror_fault_ring_off(h));
	if (h->features & HMIRROR_FEAT_SHOOTDOWN)
		dev->sd = (struct hmirror_shootdown *)(dev->bar + h->shootdown_off);

	memset(bar, 0, bar_size);
	memcpy(bar, h, sizeof(*h));
	/* no DMA until the driver turns bus mastering on and we acknowledge */
	dev->dma_off = true;
	hmdev_set_status(dev, ~0u, HMIRROR_DEV_ALIVE | HMIRROR_DEV_DMA_OFF);
	return 0;
}

void hmdev_fini(struct hmdev *dev)
{
	if (!dev->tlb.e)
		return;		/* never set up */
	hmdev_stop(dev);
	fini_locks(dev);
	dev_mem_fini(&dev->vram);
	hmdev_tlb_fini(&dev->tlb);
	free_queues(dev);
}

struct hmdev *hmdev_create(const struct hmdev_config *cfg, void *bar,
			   size_t bar_size, const struct guest_ram *ram,
			   hmdev_irq_fn raise_irq, void *irq_opaque,
			   char *err, size_t errlen)
{
	struct hmdev *dev = malloc(sizeof(*dev));

	if (!dev) {
		hm_seterr(err, errlen, "cannot allocate the device");
		return NULL;
	}
	if (hmdev_init(dev, cfg, bar, bar_size, ram, raise_irq, irq_opaque,
		       err, errlen)) {
		free(dev);
		return NULL;
	}
	return dev;
}

void hmdev_destroy(struct hmdev *dev)
{
	if (!dev)
		return;
	hmdev_fini(dev);
	free(dev);
}

/* ---- reset and control ---------------------------------------------- */

static void publish_queue(struct hmdev *dev, unsigned qi)
{
	struct hmirror_queue_regs *qr = &dev->qregs[qi];
	struct hmdev_queue *q = &dev->q[qi];

	hm_store(&qr->sq_head, q->sq_head);
	hm_store(&qr->cq_tail, q->cq_tail);
	hm_store(&qr->parked, q->parked);
	hm_store(&qr->q_status, q->status);
	hm_store(&qr->completed_seqno, q->completed_seqno);
	hm_store(&qr->progress, q->progress);
}

/* Every engine is quiesced (its run_mu held by the caller). */
static void do_reset(struct hmdev *dev, uint32_t gen)
{
	struct hmirror_regs *r = dev->regs;
	unsigned q, aborted = 0;

	for (q = 0; q < dev->num_queues; q++) {
		/* commands in flight (parked or not) are dropped */
		aborted += dev->q[q].in_flight;
		queue_clear(dev, &dev->q[q]);
		publish_queue(dev, q);
	}
	pthread_mutex_lock(&dev->fault_mu);
	dev->fault_tail = 0;	/* fault_seq goes on: old answers never match */
	dev->fault_ring_bad = false;
	hm_store(&dev->fregs->tail, 0);
	pthread_mutex_unlock(&dev->fault_mu);
	hmdev_tlb_flush(dev);

	/*
	 * counters and errors; bus mastering is not reset (drv_ctrl_gen
	 * says), nor is device memory (memory, not state)
	 */
	hmdev_state_reset(dev);
	dev->reset_ack = gen;
	/* Last: the driver polls the ack, then everything above is visible. */
	hm_store_rel(&r->dev_reset_ack, gen);
	hmdev_pend_irq(dev, HMIRROR_VEC_CTRL);
	hm_log("reset %u: %u queues enabled%s", gen, dev->num_queues,
	       aborted ? ", commands in flight dropped" : "");
}

static void kick(struct hmdev_engine *e, bool busy)
{
	pthread_mutex_lock(&e->kick_mu);
	e->kick_busy |= busy;
	/* atomic: engine_poll() looks at it without kick_mu */
	__atomic_store_n(&e->kick, true, __ATOMIC_RELEASE);
	pthread_cond_signal(&e->kick_cv);
	pthread_mutex_unlock(&e->kick_mu);
}

/* @busy: for a doorbell (the driver is active), not a tick's look */
static void kick_engines(struct hmdev *dev, bool busy)
{
	unsigned q;

	if (!dev->threaded)
		return;
	for (q = 1; q < dev->num_queues; q++)
		kick(&dev->eng[q], busy);
}

static void check_reset(struct hmdev *dev)
{
	uint32_t gen = hm_load_acq(&dev->regs->drv_reset_gen);
	unsigned q;

	if (gen == dev->reset_ack)
		return;
	/*
	 * Stop the engines at their next chunk and wait until they are out:
	 * no guest RAM is touched while the reset runs.
	 */
	__atomic_store_n(&dev->abort, true, __ATOMIC_RELEASE);
	for (q = 1; q < dev->num_queues; q++)
		pthread_mutex_lock(&dev->eng[q].run_mu);
	do_reset(dev, gen);
	__atomic_store_n(&dev->abort, false, __ATOMIC_RELEASE);
	for (q = dev->num_queues - 1; q >= 1; q--)
		pthread_mutex_unlock(&dev->eng[q].run_mu);
	/* the caller's run_queues() kicks the engines */
}

/* A new drv_ctrl_gen: act on drv_ctrl, then acknowledge. */
static void check_ctrl(struct hmdev *dev)
{
	uint32_t gen = hm_load_acq(&dev->regs->drv_ctrl_gen), ctrl;

	if (gen == dev->ctrl_ack)
		return;
	ctrl = hm_load_acq(&dev->regs->drv_ctrl);
	hmdev_set_bus_master(dev, ctrl & HMIRROR_DRV_BUS_MASTER);
	dev->ctrl_ack = gen;
	hm_store_rel(&dev->regs->dev_ctrl_ack, gen);
	hmdev_pend_irq(dev, HMIRROR_VEC_CTRL);
	hm_dbg("drv_ctrl 0x%x acknowledged (gen %u)", ctrl, gen);
}

/* ---- commands in flight ---------------------------------------------- */

/*
 * Lists of tags.  Every command in flight is on its queue's "all" list
 * and on its context's list (fetch order, so a FENCE can tell whether an
 * earlier command of its scope is still in flight); runnable ones also on
 * the ready list.
 */
static void list_append(struct hmdev_list *l, struct hmdev_inflight *slot,
			uint32_t tag, bool by_ctx)
{
	uint32_t *prev = by_ctx ? &slot[tag].c_prev : &slot[tag].q_prev;
	uint32_t *next = by_ctx ? &slot[tag].c_next : &slot[tag].q_next;

	*prev = l->tail;
	*next = HMDEV_NO_TAG;
	if (l->tail == HMDEV_NO_TAG)
		l->head = tag;
	else if (by_ctx)
		slot[l->tail].c_next = tag;
	else
		slot[l->tail].q_next = tag;
	l->tail = tag;
}

static void list_remove(struct hmdev_list *l, struct hmdev_inflight *slot,
			uint32_t tag, bool by_ctx)
{
	uint32_t prev = by_ctx ? slot[tag].c_prev : slot[tag].q_prev;
	uint32_t next = by_ctx ? slot[tag].c_next : slot[tag].q_next;

	if (prev == HMDEV_NO_TAG)
		l->head = next;
	else if (by_ctx)
		slot[prev].c_next = next;
	else
		slot[prev].q_next = next;
	if (next == HMDEV_NO_TAG)
		l->tail = prev;
	else if (by_ctx)
		slot[next].c_prev = prev;
	else
		slot[next].q_prev = prev;
}

static void ready_push(struct hmdev_queue *q, uint32_t tag, bool front)
{
	q->slot[tag].r_next = HMDEV_NO_TAG;
	if (q->ready.head == HMDEV_NO_TAG) {
		q->ready.head = q->ready.tail = tag;
	} else if (front) {
		q->slot[tag].r_next = q->ready.head;
		q->ready.head = tag;
	} else {
		q->slot[q->ready.tail].r_next = tag;
		q->ready.tail = tag;
	}
}

static uint32_t ready_pop(struct hmdev_queue *q)
{
	uint32_t tag = q->ready.head;

	if (tag != HMDEV_NO_TAG) {
		q->ready.head = q->slot[tag].r_next;
		if (q->ready.head == HMDEV_NO_TAG)
			q->ready.tail = HMDEV_NO_TAG;
	}
	return tag;
}

static struct hmdev_list *ctx_list(struct hmdev *dev, struct hmdev_queue *q,
				   uint16_t ctx)
{
	return &q->by_ctx[ctx < dev->hdr.max_contexts ? ctx : dev->hdr.max_contexts];
}

static bool is_parked(uint8_t state)
{
	return state == HMDEV_SLOT_FAULT || state == HMDEV_SLOT_ROOM ||
	       state == HMDEV_SLOT_FENCE;
}

static void set_state(struct hmdev *dev, unsigned qi,
		      struct hmdev_inflight *in, uint8_t state)
{
	struct hmdev_queue *q = &dev->q[qi];
	bool was = is_parked(in->state), now = is_parked(state);

	in->state = state;
	if (was != now) {
		q->parked += now ? 1 : -1;
		hm_store_rel(&dev->qregs[qi].parked, q->parked);
	}
}

/*
 * Has every earlier-fetched command of the FENCE @in's scope (its context;
 * ctx 0: the whole queue) completed?
 */
static bool fence_ready(struct hmdev *dev, unsigned qi,
			const struct hmdev_inflight *in)
{
	struct hmdev_queue *q = &dev->q[qi];
	uint32_t tag = in->cmd.tag;

	/*
	 * Fetch-ordered lists: the FENCE is ready when it heads the list of
	 * its scope.  (Commands with a ctx >= max_contexts share one list:
	 * they all complete at fetch, so that list never holds one behind
	 * another.)
	 */
	if (in->cmd.ctx == 0)
		return q->all.head == tag;
	return ctx_list(dev, q, in->cmd.ctx)->head == tag;
}

/* A parked FENCE that now heads its scope becomes runnable. */
static void release_fence(struct hmdev *dev, unsigned qi, uint32_t tag,
			  bool whole_queue)
{
	struct hmdev_inflight *in;

	if (tag == HMDEV_NO_TAG)
		return;
	in = &dev->q[qi].slot[tag];
	if (in->state != HMDEV_SLOT_FENCE || (in->cmd.ctx == 0) != whole_queue)
		return;
	set_state(dev, qi, in, HMDEV_SLOT_READY);
	ready_push(&dev->q[qi], tag, false);
}

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

/*
 * Write @in's completion.  Its CQ slot is free: a command is fetched only
 * while completions written and unread plus commands in flight leave room.
 * @in_table: @in is in the tag table (not a BAD_TAG at fetch).
 */
static void complete(struct hmdev *dev, unsigned qi, struct hmdev_inflight *in,
		     bool in_table)
{
	struct hmdev_queue *q = &dev->q[qi];
	struct hmirror_queue_regs *qr = &dev->qregs[qi];
	uint32_t tag = in->cmd.tag;
	struct hmdev_list *cl;

	if (in->cpl.status != HMIRROR_ST_OK && !in->quiet)
		hmdev_error(dev, in->cpl.status, qi, in->index, in->err_info);
	in->cpl.t_done = hmdev_now_ns();
	write_cpl(&dev->cq[qi][q->cq_tail & dev->cq_mask], &in->cpl);
	q->cq_tail++;
	q->completed_seqno = in->cmd.seqno;
	HMDEV_CNT_ADD(dev, commands, 1);
	hm_store_rel(&qr->completed_seqno, q->completed_seqno);
	hm_store_rel(&qr->cq_tail, q->cq_tail);
	hmdev_progress(dev, qi);
	if (!in_table)
		return;

	cl = ctx_list(dev, q, in->cmd.ctx);
	list_remove(&q->all, q->slot, tag, false);
	list_remove(cl, q->slot, tag, true);
	set_state(dev, qi, in, HMDEV_SLOT_FREE);
	q->in_flight--;
	/* fences that waited for this one may now head their scope */
	release_fence(dev, qi, q->all.head, true);
	release_fence(dev, qi, cl->head, false);
}

/*
 * Take the next descriptor: it is consumed (sq_head) once copied.  Returns
 * its tag, or HMDEV_NO_TAG when it completed at once with BAD_TAG.
 */
static uint32_t fetch(struct hmdev *dev, unsigned qi)
{
	struct hmdev_queue *q = &dev->q[qi];
	struct hmirror_cmd cmd;
	struct hmdev_inflight *in;
	uint32_t index = q->sq_head;

	read_cmd(&cmd, &dev->sq[qi][index & dev->sq_mask]);
	q->sq_head++;
	hm_store_rel(&dev->qregs[qi].sq_head, q->sq_head);
	hmdev_progress(dev, qi);

	if (cmd.tag >= dev->hdr.sq_entries ||
	    q->slot[cmd.tag].state != HMDEV_SLOT_FREE)
		in = &q->bad_tag;
	else
		in = &q->slot[cmd.tag];
	memset(in, 0, sizeof(*in));
	in->cmd = cmd;
	in->index = index;
	in->cpl.t_submit = hmdev_now_ns();
	in->cpl.seqno = cmd.seqno;
	in->cpl.opcode = cmd.opcode;
	in->cpl.queue = (uint8_t)qi;
	in->cpl.tag = cmd.tag;
	if (in == &q->bad_tag) {
		in->cpl.status = HMIRROR_ST_BAD_TAG;
		in->err_info = cmd.tag;
		complete(dev, qi, in, false);
		return HMDEV_NO_TAG;
	}
	in->state = HMDEV_SLOT_READY;
	list_append(&q->all, q->slot, cmd.tag, false);
	list_append(ctx_list(dev, q, cmd.ctx), q->slot, cmd.tag, true);
	q->in_flight++;
	return cmd.tag;
}

/*
 * Run a runnable command.  Returns 1 if it completed, 0 if it parked, -1
 * if it is held (bus mastering off, or engines stopping): it then keeps
 * the head of the ready list and the pass ends.
 */
static int run_one(struct hmdev *dev, unsigned qi, uint32_t tag)
{
	struct hmdev_inflight *in = &dev->q[qi].slot[tag];

	switch (hmdev_cmd_run(dev, qi, in)) {
	case HMDEV_EXEC_FENCE:
		/*
		 * Queue 0 never parks anything, so its fences complete at
		 * once; a parked FENCE runs again once it heads its scope.
		 */
		if (!fence_ready(dev, qi, in)) {
			set_state(dev, qi, in, HMDEV_SLOT_FENCE);
			return 0;
		}
		complete(dev, qi, in, true);
		return 1;
	case HMDEV_EXEC_DONE:
		complete(dev, qi, in, true);
		return 1;
	case HMDEV_EXEC_PARK_FAULT:
		set_state(dev, qi, in, HMDEV_SLOT_FAULT);
		return 0;
	case HMDEV_EXEC_PARK_ROOM:
		set_state(dev, qi, in, HMDEV_SLOT_ROOM);
		return 0;
	default:
		ready_push(&dev->q[qi], tag, true);
		return -1;
	}
}

/*
 * Parked commands: take the driver's answers, retry fault records waiting
 * for ring room.  Touches no guest RAM.  Returns the completions written.
 */
static unsigned service_parked(struct hmdev *dev, unsigned qi)
{
	struct hmdev_queue *q = &dev->q[qi];
	unsigned done = 0;
	bool room = true;
	uint32_t t, next;

	for (t = q->all.head; t != HMDEV_NO_TAG; t = next) {
		struct hmdev_inflight *in = &q->slot[t];

		/* completing @in unlinks it only: fences released are not */
		next = in->q_next;
		switch (in->state) {
		case HMDEV_SLOT_FAULT:
			switch (hmdev_cmd_take_answer(dev, qi, in)) {
			case HMDEV_ANSWER_NONE:
				break;
			case HMDEV_ANSWER_REPLAY:
				hmdev_progress(dev, qi);
				set_state(dev, qi, in, HMDEV_SLOT_READY);
				ready_push(q, t, false);
				break;
			default:
				hmdev_progress(dev, qi);
				complete(dev, qi, in, true);
				done++;
				break;
			}
			break;
		case HMDEV_SLOT_ROOM:
			if (!room)
				break;
			switch (hmdev_cmd_retry_fault(dev, qi, in)) {
			case HMDEV_EXEC_PARK_ROOM:
				room = false;	/* the ring is still full */
				break;
			case HMDEV_EXEC_PARK_FAULT:
				set_state(dev, qi, in, HMDEV_SLOT_FAULT);
				break;
			default:
				complete(dev, qi, in, true);
				done++;
				break;
			}
			break;
		case HMDEV_SLOT_FENCE:
			if (fence_ready(dev, qi, in)) {
				set_state(dev, qi, in, HMDEV_SLOT_READY);
				ready_push(q, t, false);
			}
			break;
		default:
			break;
		}
	}
	return done;
}

/* ---- queues --------------------------------------------------------- */

/* A bad ring index: the queue stops until the next reset. */
static void queue_fail(struct hmdev *dev, unsigned qi, uint32_t index,
		       uint64_t info)
{
	dev->q[qi].status = HMIRROR_Q_ERROR;
	hm_store_rel(&dev->qregs[qi].q_status, HMIRROR_Q_ERROR);
	hmdev_error(dev, HMIRROR_ST_BAD_INDEX, qi, index, info);
}

/*
 * One pass over queue @qi: answers and parked commands first, then the
 * runnable commands, then new ones from the SQ until its snapshot is
 * empty, the CQ room is all spoken for, or a command is held.  Returns
 * the completions written.
 */
static unsigned queue_run(struct hmdev *dev, unsigned qi)
{
	struct hmdev_queue *q = &dev->q[qi];
	struct hmirror_queue_regs *qr = &dev->qregs[qi];
	uint32_t tail, cq_head, used, tag;
	unsigned done = 0;
	bool held = false;
	int r;

	if (dev->hook)
		dev->hook(dev->hook_opaque, qi, HMDEV_HOOK_PASS);
	if (q->status == HMIRROR_Q_ERROR)
		return 0;
	tail = hm_load_acq(&qr->sq_tail);
	if (tail - q->sq_head > dev->hdr.sq_entries) {
		queue_fail(dev, qi, q->sq_head, tail);
		return 0;
	}
	if (q->parked)
		done += service_parked(dev, qi);

	while (!__atomic_load_n(&dev->abort, __ATOMIC_ACQUIRE)) {
		tag = ready_pop(q);
		if (tag == HMDEV_NO_TAG) {
			if (q->sq_head == tail)
				break;
			/*
			 * Room: every command in flight will need a CQ slot.
			 * More than cq_entries between unread completions and
			 * commands in flight means cq_head moved backwards
			 * or past cq_tail.
			 */
			cq_head = hm_load_acq(&qr->cq_head);
			used = q->cq_tail - cq_head;
			if (used > dev->hdr.cq_entries ||
			    used + q->in_flight > dev->hdr.cq_entries) {
				queue_fail(dev, qi, q->cq_tail, cq_head);
				return done;
			}
			if (used + q->in_flight == dev->hdr.cq_entries)
				break;	/* resume on a doorbell or tick */
			tag = fetch(dev, qi);
			if (tag == HMDEV_NO_TAG) {
				done++;		/* BAD_TAG */
				continue;
			}
		}
		r = run_one(dev, qi, tag);
		if (r < 0) {
			held = true;
			break;
		}
		done += (unsigned)r;
	}

	if (held || q->ready.head != HMDEV_NO_TAG)
		q->status = HMIRROR_Q_RUNNING;
	else if (!q->in_flight)
		q->status = q->sq_head != tail ? HMIRROR_Q_RUNNING : HMIRROR_Q_IDLE;
	else if (q->parked == q->in_flight)
		q->status = HMIRROR_Q_STALLED;
	else
		q->status = HMIRROR_Q_RUNNING;
	hm_store_rel(&qr->q_status, q->status);
	return done;
}

static bool enabled(struct hmdev *dev)
{
	return (hmdev_status(dev) & HMIRROR_DEV_ENABLED) &&
	       !__atomic_load_n(&dev->gone, __ATOMIC_ACQUIRE);
}

/*
 * Event-loop side: queue 0 here; engines here (inline) or kicked, @busy
 * for a doorbell.
 */
static void run_queues(struct hmdev *dev, bool busy)
{
	unsigned qi, done = 0;

	if (!enabled(dev))
		return;
	if (dev->threaded) {
		if (queue_run(dev, HMIRROR_QUEUE_MGMT) &&
		    !hmdev_driver_polls(dev, HMIRROR_QUEUE_MGMT))
			done = 1;
		kick_engines(dev, busy);
	} else {
		for (qi = 0; qi < dev->num_queues; qi++)
			if (queue_run(dev, qi) && !hmdev_driver_polls(dev, qi))
				done = 1;
	}
	if (done)
		hmdev_pend_irq(dev, HMIRROR_VEC_CQ);
}

/* ---- engine polling ------------------------------------------------- */

/*
 * Work an engine could do now, looked at without running anything: a
 * descriptor it may fetch, an answer for a parked command, a runnable
 * command while bus mastering allows.  Engine's run_mu held.
 */
static bool engine_has_work(struct hmdev *dev, unsigned qi)
{
	struct hmdev_queue *q = &dev->q[qi];
	struct hmirror_queue_regs *qr = &dev->qregs[qi];
	uint32_t t;

	if (q->status == HMIRROR_Q_ERROR || !enabled(dev) ||
	    __atomic_load_n(&dev->abort, __ATOMIC_ACQUIRE))
		return false;
	if (q->ready.head != HMDEV_NO_TAG && hmdev_dma_allowed(dev))
		return true;
	if (hm_load_acq(&qr->sq_tail) != q->sq_head &&
	    q->cq_tail - hm_load_acq(&qr->cq_head) + q->in_flight <
	    dev->hdr.cq_entries)
		return true;
	if (!q->parked)
		return false;
	for (t = q->all.head; t != HMDEV_NO_TAG; t = q->slot[t].q_next)
		if (q->slot[t].state == HMDEV_SLOT_FAULT &&
		    hmdev_cmd_answer_ready(dev, qi, &q->slot[t]))
			return true;
	return false;
}

static void engine_set_polling(struct hmdev *dev, unsigned qi, bool on)
{
	__atomic_store_n(&dev->qregs[qi].dev_polling, on ? 1 : 0,
			 __ATOMIC_SEQ_CST);
}

/* The driver's drv_poll_us, capped by the device, in ns. */
static uint64_t poll_window_ns(struct hmdev *dev)
{
	uint64_t us = hm_load(&dev->regs->drv_poll_us);

	return (us > dev->cfg.poll_max_us ? dev->cfg.poll_max_us : us) * 1000;
}

/*
 * Adaptive polling (hybrid, as NVMe hosts poll): a command that comes a
 * little after an engine gave up spinning pays the doorbell and the
 * engine's wake-up, tens of microseconds on a loaded host.  So an engine
 * whose spin ran out and whose next wake-up fetched a command learns a
 * window 5/4 of the time from the start of that spin to the command (when
 * that is under cfg.poll_max_us); a window that runs out halves what it
 * learned.  A steady stream of commands a few hundred microseconds apart
 * finds the engine awake; an idle device still sleeps after one window.
 * Only with the driver's drv_poll_us, never longer than cfg.poll_max_us.
 */
static uint64_t engine_window_ns(struct hmdev *dev, struct hmdev_engine *e)
{
	uint64_t base = poll_window_ns(dev), learned;

	if (!base || !dev->cfg.poll_adapt)
		return base;
	learned = __atomic_load_n(&e->learned_ns, __ATOMIC_RELAXED);
	return learned > base ? learned : base;
}

/* First pass after a wake-up: it fetched a command (@fetched) at @now. */
static void engine_learn(struct hmdev *dev, struct hmdev_engine *e,
			 bool fetched, uint64_t now)
{
	const uint64_t max = dev->cfg.poll_max_us * 1000ull;
	uint64_t idle = now - e->spin_t0, want = idle + idle / 4;

	if (dev->cfg.poll_adapt && e->spun_out && fetched && idle < max)
		__atomic_store_n(&e->learned_ns, want < max ? want : max,
				 __ATOMIC_RELAXED);
	e->spun_out = false;
}

/*
 * After a doorbell or a pass that did something (@spin), an engine whose
 * driver asks for it (drv_poll_us) spins on its queue for that long, or
 * what it learned (above), before it sleeps, so new submissions and
 * answers need no doorbell: while it is awake, dev_polling tells the
 * driver so.  A tick's look at a queue that finds nothing does not spin:
 * an idle device costs no CPU.  The spin yields the core at every turn,
 * so a vCPU that needs it (to service the fault the engine waits for) is
 * not kept off it on a small host.  Going to sleep, it clears
 * dev_polling, then looks once more (the fence pairs with the driver's
 * between its ring write and its reading of dev_polling).  Returns true
 * when there is work.  run_mu held.
 */
static bool engine_poll(struct hmdev *dev, struct hmdev_engine *e, bool spin)
{
	uint64_t window = spin ? engine_window_ns(dev, e) : 0, t0, now;

	t0 = now = hmdev_now_ns();
	if (window) {
		__atomic_add_fetch(&e->spins, 1, __ATOMIC_RELAXED);
		e->spun_out = false;
		e->spin_t0 = t0;
	}
	while (now - t0 < window) {
		if (__atomic_load_n(&dev->abort, __ATOMIC_ACQUIRE) ||
		    __atomic_load_n(&e->kick, __ATOMIC_ACQUIRE))
			break;
		if (engine_has_work(dev, e->qi))
			return true;
		sched_yield();
		now = hmdev_now_ns();
	}
	if (window && now - t0 >= window) {	/* ran out: sleep, forget half */
		e->spun_out = true;
		__atomic_store_n(&e->learned_ns,
				 __atomic_load_n(&e->learned_ns, __ATOMIC_RELAXED) / 2,
				 __ATOMIC_RELAXED);
	}
	engine_set_polling(dev, e->qi, false);
	if (engine_has_work(dev, e->qi)) {
		engine_set_polling(dev, e->qi, true);
		return true;
	}
	return false;
}

/* ---- management queue polling (event loop) ---------------------------- */

uint64_t hmdev_mgmt_poll_ns(struct hmdev *dev)
{
	return dev->threaded && enabled(dev) ? poll_window_ns(dev) : 0;
}

static bool mgmt_pending(struct hmdev *dev)
{
	return hm_load_acq(&dev->qregs[HMIRROR_QUEUE_MGMT].sq_tail) !=
	       dev->q[HMIRROR_QUEUE_MGMT].sq_head;
}

/*
 * True only for progress (a command fetched or completed): a queue that
 * cannot move (failed, or its CQ full of completions the driver has not
 * read) must not keep the event loop spinning.
 */
bool hmdev_mgmt_poll(struct hmdev *dev)
{
	struct hmdev_queue *q = &dev->q[HMIRROR_QUEUE_MGMT];
	uint32_t head = q->sq_head;
	unsigned done;

	if (!mgmt_pending(dev) || !enabled(dev) ||
	    q->status == HMIRROR_Q_ERROR)
		return false;
	done = queue_run(dev, HMIRROR_QUEUE_MGMT);
	if (done && !hmdev_driver_polls(dev, HMIRROR_QUEUE_MGMT))
		hmdev_pend_irq(dev, HMIRROR_VEC_CQ);
	hmdev_flush_irqs(dev);
	return done || q->sq_head != head;
}

bool hmdev_mgmt_polling(struct hmdev *dev, bool on)
{
	engine_set_polling(dev, HMIRROR_QUEUE_MGMT, on);
	/* Cleared (seq_cst) before the last look: see engine_poll(). */
	return !on && mgmt_pending(dev);
}

void hmdev_mgmt_wake(struct hmdev *dev)
{
	uint64_t ns = hmdev_mgmt_poll_ns(dev);

	if (!ns)
		return;
	hmdev_mgmt_polling(dev, true);
	dev->mgmt_until = hmdev_now_ns() + ns;
}

bool hmdev_mgmt_awake(struct hmdev *dev)
{
	if (!dev->mgmt_until)
		return false;
	if (hmdev_now_ns() < dev->mgmt_until)
		return true;
	dev->mgmt_until = 0;
	if (hmdev_mgmt_polling(dev, false))
		hmdev_mgmt_poll(dev);
	return false;
}

void hmdev_mgmt_turn(struct hmdev *dev)
{
	if (hmdev_mgmt_poll(dev))
		dev->mgmt_until = hmdev_now_ns() + hmdev_mgmt_poll_ns(dev);
	else
		sched_yield();
}

/* ---- engine threads ------------------------------------------------- */

static void *engine_main(void *arg)
{
	struct hmdev_engine *e = arg;
	struct hmdev *dev = e->dev;
	struct hmdev_queue *q = &dev->q[e->qi];
	uint32_t head, parked;
	unsigned done;
	bool more, busy, woke;

	for (;;) {
		pthread_mutex_lock(&e->kick_mu);
		while (!e->kick && !e->stop)
			pthread_cond_wait(&e->kick_cv, &e->kick_mu);
		if (e->stop) {
			pthread_mutex_unlock(&e->kick_mu);
			break;
		}
		e->kick = false;
		busy = e->kick_busy;
		e->kick_busy = false;
		pthread_mutex_unlock(&e->kick_mu);

		engine_set_polling(dev, e->qi, true);
		for (woke = true;; woke = false) {
			uint64_t t_pass;

			pthread_mutex_lock(&e->run_mu);
			head = q->sq_head;
			parked = q->parked;
			t_pass = woke ? hmdev_now_ns() : 0;	/* before the work */
			done = enabled(dev) ? queue_run(dev, e->qi) : 0;
			if (woke)
				engine_learn(dev, e, q->sq_head != head, t_pass);
			pthread_mutex_unlock(&e->run_mu);
			if (done && !hmdev_driver_polls(dev, e->qi))
				hmdev_pend_irq(dev, HMIRROR_VEC_CQ);
			hmdev_flush_irqs(dev);
			pthread_mutex_lock(&e->run_mu);
			/* Doorbell, fetched, completed, or posted a fault. */
			more = engine_poll(dev, e, busy || done ||
						   q->sq_head != head ||
						   q->parked > parked);
			busy = false;
			pthread_mutex_unlock(&e->run_mu);
			if (!more)
				break;
		}
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
	hmdev_count_doorbells(dev, rings);
	hm_dbg("doorbell %u", vector);
	if (vector == HMIRROR_VEC_CTRL) {
		/* a reset first, then the control change, when both wait */
		check_reset(dev);
		check_ctrl(dev);
	}
	/* CQ: new submissions or room; FAULT: answers; CTRL: rescan. */
	run_queues(dev, true);
	hmdev_flush_irqs(dev);
}

void hmdev_tick(struct hmdev *dev)
{
	if (__atomic_load_n(&dev->gone, __ATOMIC_ACQUIRE))
		return;
	hmdev_heartbeat(dev);
	check_reset(dev);
	check_ctrl(dev);
	run_queues(dev, false);
	hmdev_flush_irqs(dev);
}

void hmdev_shutdown(struct hmdev *dev)
{
	uint32_t keep = HMIRROR_DEV_ERROR | HMIRROR_DEV_DMA_OFF;

	if (__atomic_load_n(&dev->gone, __ATOMIC_ACQUIRE))
		return;
	hmdev_stop(dev);
	hmdev_set_status(dev, ~keep, HMIRROR_DEV_GONE);
	__atomic_store_n(&dev->pending_irqs, 1u << HMIRROR_VEC_CTRL,
			 __ATOMIC_RELEASE);
	hmdev_flush_irqs(dev);
	__atomic_store_n(&dev->gone, true, __ATOMIC_RELEASE);
}
