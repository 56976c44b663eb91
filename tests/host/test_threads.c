// SPDX-License-Identifier: MIT
/*
 * Threaded mode (hmdev_start(): one thread per engine), as hmirror-dev runs
 * it: a stalled engine blocks neither the management queue nor another
 * engine, TLB_INVAL completes while an engine is stalled and waits for an
 * engine's access in progress, device atomics race host atomics without a
 * lost update, a reset or shutdown stops busy and stalled engines at their
 * next chunk, and an invalidation oracle: once a TLB_INVAL completes (or a
 * shootdown is done), the device never again writes the page it unmapped.
 *
 * Synchronisation is by polling shared state with generous timeouts, and
 * by the test hook holding an engine inside an access; the only sleep is
 * in the one test that checks that something does *not* happen while an
 * access is held.
 */
#include <sched.h>
#include <stdio.h>
#include <time.h>

#include "hmtest.h"
#include "kselftest_harness.h"

#define VA0	0x00007f1234560000ull
#define CTX	1

/* The event loop: doorbells from several test threads, one at a time. */
static pthread_mutex_t evl = PTHREAD_MUTEX_INITIALIZER;

static void ring(struct fakedev *f, unsigned v)
{
	pthread_mutex_lock(&evl);
	hmdev_doorbell(&f->dev, v);
	pthread_mutex_unlock(&evl);
}

FIXTURE(t) {
	struct fakedev f;
	uint64_t root;
};

FIXTURE_SETUP(t)
{
	struct hmdev_config cfg;

	hmdev_config_default(&cfg);
	cfg.sq_entries = 64;
	cfg.cq_entries = 64;
	cfg.engines = 2;
	ASSERT_EQ(0, fakedev_init_xlate(&self->f, &cfg));
	self->root = fk_frame(&self->f);
	fk_ctx_set(&self->f, CTX, self->root);
	fk_reset(&self->f);
	ASSERT_EQ(0, hmdev_start(&self->f.dev));
}

FIXTURE_TEARDOWN(t)
{
	fakedev_free(&self->f);		/* joins the engine threads */
}

#define F	(&self->f)
#define R	(fk_regs(F))
#define QR(q)	(fk_qregs(F, (q)))
#define ROOT	(self->root)

static struct hmirror_cmd mk(uint8_t op, uint64_t src, uint64_t dst,
			     uint64_t len)
{
	struct hmirror_cmd c = { .opcode = op, .ctx = CTX, .src = src,
				 .dst = dst, .len = len };
	return c;
}

static uint32_t fault_tail(struct fakedev *f)
{
	return __atomic_load_n(&fk_fregs(f)->tail, __ATOMIC_ACQUIRE);
}

TEST_F(t, stalled_engine_blocks_nothing_else)
{
	struct hmirror_cmd inv = { .opcode = HMIRROR_OP_TLB_INVAL, .ctx = CTX,
				   .src = VA0, .len = 64 * FK_PG };
	struct hmirror_fault fr;
	unsigned i;

	fk_submit(F, 1, mk(HMIRROR_OP_READ, VA0, 0, 64 * FK_PG));
	fk_submit(F, 1, mk(HMIRROR_OP_NOP, 0, 0, 0));
	ring(F, HMIRROR_VEC_CQ);
	ASSERT_TRUE(FK_WAIT_FOR(fault_tail(F) == 1));
	ASSERT_EQ(1, fk_next_fault(F, &fr));
	EXPECT_EQ(64, fr.npages);
	/* the READ is parked, the NOP behind it is done */
	ASSERT_TRUE(FK_WAIT_FOR(__atomic_load_n(&QR(1)->q_status, __ATOMIC_ACQUIRE) ==
			     HMIRROR_Q_STALLED));
	ASSERT_TRUE(FK_WAIT_FOR(fk_cq_tail(F, 1) == 1));
	EXPECT_EQ(2, fk_cq(F, 1, 0)->seqno);
	EXPECT_EQ(1, QR(1)->parked);

	/* the other engine and the management queue run meanwhile */
	for (i = 0; i < 40; i++)
		fk_submit(F, 2, mk(HMIRROR_OP_NOP, 0, 0, 0));
	fk_submit(F, 0, inv);		/* covers the stalled command's range */
	fk_submit(F, 0, mk(HMIRROR_OP_FENCE, 0, 0, 0));
	ring(F, HMIRROR_VEC_CQ);
	ASSERT_TRUE(FK_WAIT_FOR(fk_cq_tail(F, 2) == 40));
	ASSERT_EQ(2, fk_cq_tail(F, 0));	/* queue 0 runs in the doorbell */
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 0, 0)->status);
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 0, 1)->status);	/* fence: at once */
	EXPECT_EQ(1, fk_cq_tail(F, 1));

	/* the driver maps and replays: the engine finishes the READ */
	fk_map_new(F, ROOT, VA0, 64, 0);
	fk_answer_nodb(F, 1, fr.fault_id, HMIRROR_FAULT_REPLAY);
	ring(F, HMIRROR_VEC_FAULT);
	ASSERT_TRUE(FK_WAIT_FOR(fk_cq_tail(F, 1) == 2));
	EXPECT_EQ(1, fk_cq(F, 1, 1)->seqno);
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 1)->status);
	EXPECT_EQ(1, fk_cq(F, 1, 1)->nfaults);
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 0)->status);
	EXPECT_TRUE(FK_WAIT_FOR(fk_irqs(F, HMIRROR_VEC_CQ) >= 3));
	EXPECT_EQ(1, fk_irqs(F, HMIRROR_VEC_FAULT));
	EXPECT_EQ(0, R->err_count);
}

/* ---- TLB_INVAL waits for an access in progress ------------------------ */

struct hold {
	struct fakedev *f;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int holding;		/* the engine is inside its access */
	int release;		/* let it go */
	int inval_done_at_access_end;	/* q0 completions seen then */
	int calls;
};

static void hold_hook(void *opaque, unsigned q, int phase)
{
	struct hold *h = opaque;

	if (q != 1)
		return;
	pthread_mutex_lock(&h->mu);
	if (phase == HMDEV_HOOK_ACCESS && h->calls++ == 0) {
		h->holding = 1;
		pthread_cond_broadcast(&h->cv);
		while (!h->release)
			pthread_cond_wait(&h->cv, &h->mu);
	} else if (phase == HMDEV_HOOK_ACCESSED && h->calls == 1) {
		h->inval_done_at_access_end = (int)fk_cq_tail(h->f, 0);
	}
	pthread_mutex_unlock(&h->mu);
}

static void *inval_thread(void *arg)
{
	struct fakedev *f = arg;
	struct hmirror_cmd inv = { .opcode = HMIRROR_OP_TLB_INVAL, .ctx = CTX,
				   .src = VA0, .len = FK_PG };

	fk_submit(f, 0, inv);
	ring(f, HMIRROR_VEC_CQ);	/* blocks until the access is over */
	return NULL;
}

TEST_F(t, tlb_inval_waits_for_the_access_in_progress)
{
	struct hold h = { .f = F, .mu = PTHREAD_MUTEX_INITIALIZER,
			  .cv = PTHREAD_COND_INITIALIZER };
	uint64_t gs, gd;
	pthread_t th;
	int holding;

	gs = fk_map_new(F, ROOT, VA0, 1, 0);
	gd = fk_map_new(F, ROOT, VA0 + FK_2M, 1, 1);
	memset(fk_ptr(F, gs, FK_PG), 0x3c, FK_PG);
	F->dev.hook_opaque = &h;
	F->dev.hook = hold_hook;

	fk_submit(F, 1, mk(HMIRROR_OP_COPY, VA0, VA0 + FK_2M, FK_PG));
	ring(F, HMIRROR_VEC_CQ);
	pthread_mutex_lock(&h.mu);
	while (!h.holding)
		pthread_cond_wait(&h.cv, &h.mu);
	pthread_mutex_unlock(&h.mu);

	/* the engine holds translations of VA0: invalidate it */
	ASSERT_EQ(0, pthread_create(&th, NULL, inval_thread, F));
	fk_pause_us(200000);	/* it must still be waiting after 200 ms */
	EXPECT_EQ(0, fk_cq_tail(F, 0));
	pthread_mutex_lock(&h.mu);
	holding = h.holding;
	h.release = 1;
	pthread_cond_broadcast(&h.cv);
	pthread_mutex_unlock(&h.mu);
	EXPECT_EQ(1, holding);
	pthread_join(th, NULL);
	/* the completion came after the access, never before */
	EXPECT_EQ(1, fk_cq_tail(F, 0));
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 0, 0)->status);
	EXPECT_EQ(0, h.inval_done_at_access_end);
	ASSERT_TRUE(FK_WAIT_FOR(fk_cq_tail(F, 1) == 1));
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 0)->status);
	EXPECT_EQ(0x3c, *(uint8_t *)fk_ptr(F, gd + FK_PG - 1, 1));
	F->dev.hook = NULL;
	/* the source translation is gone: the next read walks again */
	{
		uint64_t misses = R->cnt_tlb_misses;

		fk_submit(F, 1, mk(HMIRROR_OP_READ, VA0, 0, 8));
		ring(F, HMIRROR_VEC_CQ);
		ASSERT_TRUE(FK_WAIT_FOR(fk_cq_tail(F, 1) == 2));
		EXPECT_EQ(misses + 1, R->cnt_tlb_misses);
	}
}

/* ---- atomics race the CPU ---------------------------------------------- */

#define HOST_THREADS	4
#define HOST_ADDS	20000
#define DEV_ADDS	640	/* a multiple of 2 engines x 16 */

static void *host_adder(void *arg)
{
	uint64_t *w = arg;
	unsigned i;

	for (i = 0; i < HOST_ADDS; i++)
		__atomic_fetch_add(w, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

TEST_F(t, atomics_race_host_threads_without_lost_updates)
{
	uint64_t g = fk_map_new(F, ROOT, VA0, 1, 1), *w = fk_ptr(F, g + 512, 8);
	struct hmirror_cmd a = { .opcode = HMIRROR_OP_ATOMIC, .ctx = CTX,
				 .dst = VA0 + 512, .len = 8, .arg0 = 1 };
	static uint64_t olds[DEV_ADDS];
	pthread_t th[HOST_THREADS];
	unsigned i, q, n = 0, got[3] = { 0 };

	*w = 0;
	for (i = 0; i < HOST_THREADS; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, host_adder, w));
	/* batches of 32 per engine, consumed as they complete */
	while (n < DEV_ADDS) {
		for (q = 1; q <= 2; q++)
			for (i = 0; i < 16; i++)
				fk_submit(F, q, a);
		ring(F, HMIRROR_VEC_CQ);
		for (q = 1; q <= 2; q++) {
			ASSERT_TRUE(FK_WAIT_FOR(fk_cq_tail(F, q) == got[q] + 16));
			for (i = 0; i < 16; i++) {
				struct hmirror_cpl *c = fk_cq(F, q, got[q] + i);

				ASSERT_EQ(HMIRROR_ST_OK, c->status);
				olds[n++] = c->result;
			}
			got[q] += 16;
			fk_set_cq_head(F, q, got[q]);
		}
	}
	for (i = 0; i < HOST_THREADS; i++)
		pthread_join(th[i], NULL);
	EXPECT_EQ((uint64_t)HOST_THREADS * HOST_ADDS + DEV_ADDS, *w);
	/* every device add saw a different old value */
	qsort(olds, DEV_ADDS, sizeof(olds[0]), cmp_u64);
	for (i = 1; i < DEV_ADDS; i++)
		ASSERT_NE(olds[i - 1], olds[i]);
	/* compare-exchange against the same word, under the same race */
	a.flags = HMIRROR_ATOMIC_CMPXCHG;
	a.arg0 = *w;
	a.arg1 = 7;
	fk_submit(F, 1, a);
	ring(F, HMIRROR_VEC_CQ);
	ASSERT_TRUE(FK_WAIT_FOR(fk_cq_tail(F, 1) == got[1] + 1));
	EXPECT_EQ(a.arg0, fk_cq(F, 1, got[1])->result);
	EXPECT_EQ(7, *w);
}

/* ---- reset and shutdown with busy and stalled engines ------------------- */

static void *reset_thread(void *arg)
{
	struct fakedev *f = arg;

	pthread_mutex_lock(&evl);
	fk_reset(f);			/* waits for the engines to stop */
	pthread_mutex_unlock(&evl);
	return NULL;
}

static void *shutdown_thread(void *arg)
{
	hmdev_shutdown(&((struct fakedev *)arg)->dev);
	return NULL;
}

/*
 * A reset (and a shutdown) stops an engine that is in the middle of a long
 * command at its next chunk, and drops a stalled one.  The hook holds
 * engine 2 inside its third access while the reset begins, so "in the
 * middle" does not depend on how fast the engine is.
 */
TEST_F(t, reset_and_shutdown_stop_busy_and_stalled_engines)
{
	const uint64_t big = 64ull << 20;	/* 1024 chunks */
	struct fk_gate g = FK_GATE_INIT(2, 3);
	uint64_t va, hb;
	pthread_t th;
	unsigned i;

	/* 2 MiB mappings of the same huge frame: a long READ */
	for (va = 0; va < big; va += FK_2M)
		fk_map_huge(F, ROOT, 0x40000000ull + va, FK_HUGE0, 0);
	F->dev.hook_opaque = &g;
	F->dev.hook = fk_gate_hook;
	fk_submit(F, 2, mk(HMIRROR_OP_READ, 0x40000000ull, 0, big));
	fk_submit(F, 1, mk(HMIRROR_OP_READ, VA0, 0, 8));	/* stalls */
	ring(F, HMIRROR_VEC_CQ);
	ASSERT_TRUE(FK_WAIT_FOR(fault_tail(F) == 1));
	fk_gate_wait_holding(&g);			/* engine 2 is mid-command */

	ASSERT_EQ(0, pthread_create(&th, NULL, reset_thread, F));
	/* the reset has begun: it asks the engines to stop, then waits */
	ASSERT_TRUE(FK_WAIT_FOR(__atomic_load_n(&F->dev.abort, __ATOMIC_ACQUIRE)));
	EXPECT_NE(F->reset_gen, __atomic_load_n(&R->dev_reset_ack, __ATOMIC_ACQUIRE));
	fk_gate_open(&g);
	pthread_join(th, NULL);
	/* the engine finished the access it was in and started no other */
	EXPECT_EQ(3, fk_gate_accesses(&g));
	EXPECT_EQ(0, fk_cq(F, 2, 0)->seqno);	/* never completed */
	EXPECT_EQ(F->reset_gen, R->dev_reset_ack);
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(HMIRROR_Q_IDLE, QR(i)->q_status);
		EXPECT_EQ(0, QR(i)->parked);
		EXPECT_EQ(0, QR(i)->cq_tail);
	}
	/* both engines work again */
	fk_submit(F, 1, mk(HMIRROR_OP_NOP, 0, 0, 0));
	fk_submit(F, 2, mk(HMIRROR_OP_NOP, 0, 0, 0));
	ring(F, HMIRROR_VEC_CQ);
	ASSERT_TRUE(FK_WAIT_FOR(fk_cq_tail(F, 1) == 1 && fk_cq_tail(F, 2) == 1));
	EXPECT_EQ(1, fk_cq(F, 1, 0)->seqno);
	EXPECT_EQ(0, R->err_count);

	/* shutdown while busy and stalled again: joins, GONE, nothing runs */
	fk_gate_rearm(&g, 3);
	fk_submit(F, 2, mk(HMIRROR_OP_READ, 0x40000000ull, 0, big));
	fk_submit(F, 1, mk(HMIRROR_OP_READ, VA0, 0, 8));
	ring(F, HMIRROR_VEC_CQ);
	ASSERT_TRUE(FK_WAIT_FOR(fault_tail(F) == 1));
	fk_gate_wait_holding(&g);
	ASSERT_EQ(0, pthread_create(&th, NULL, shutdown_thread, F));
	ASSERT_TRUE(FK_WAIT_FOR(__atomic_load_n(&F->dev.abort, __ATOMIC_ACQUIRE)));
	fk_gate_open(&g);
	pthread_join(th, NULL);
	EXPECT_EQ(3, fk_gate_accesses(&g));
	EXPECT_TRUE(R->dev_status & HMIRROR_DEV_GONE);
	EXPECT_FALSE(F->dev.threaded);
	hb = R->heartbeat;
	hmdev_tick(&F->dev);
	ring(F, HMIRROR_VEC_FAULT);
	EXPECT_EQ(hb, R->heartbeat);
	EXPECT_EQ(1, fk_cq_tail(F, 2));
	EXPECT_EQ(3, fk_gate_accesses(&g));
	F->dev.hook = NULL;
}

/* ---- invalidation oracle ----------------------------------------------- */

#define OR_PAGES	8
#define OR_MUTATIONS	150
#define OR_CANARY	0xdeadbeefcafef00dull

struct oracle {
	struct fakedev *f;
	uint64_t root;
	pthread_mutex_t pt;		/* the driver's page-table lock */
	uint64_t frame[OR_PAGES];	/* current frame of each page */
	uint64_t retired[OR_MUTATIONS];
	unsigned nretired;
	unsigned mutated;	/* frames retired so far, read by the filler */
	int stop;
	unsigned faults, bad_faults;
	bool shootdown;		/* invalidate by shootdown, not TLB_INVAL */
	bool slow_service;	/* every 20th fault's service pauses 5 ms */
	unsigned fallbacks;	/* shootdowns that ended as a TLB_INVAL */
};

/* The driver's fault service: map the run to the current frames, replay. */
static void *oracle_faults(void *arg)
{
	struct oracle *o = arg;
	struct hmirror_fault fr;
	uint32_t i;

	while (!__atomic_load_n(&o->stop, __ATOMIC_ACQUIRE)) {
		if (!fk_next_fault(o->f, &fr)) {
			fk_pause_us(20);
			continue;
		}
		o->faults++;
		pthread_mutex_lock(&o->pt);
		for (i = 0; i < fr.npages; i++) {
			uint64_t va = fr.addr + i * FK_PG, p = (va - VA0) / FK_PG;

			if (va < VA0 || p >= OR_PAGES) {
				o->bad_faults++;
				continue;
			}
			fk_map(o->f, o->root, va, o->frame[p], 1);
		}
		/* a preempted driver: later commands overtake the parked one */
		if (o->slow_service && o->faults % 20 == 0)
			fk_pause_us(5000);
		pthread_mutex_unlock(&o->pt);
		fk_answer_nodb(o->f, fr.queue, fr.fault_id, HMIRROR_FAULT_REPLAY);
		ring(o->f, HMIRROR_VEC_FAULT);
	}
	return NULL;
}

/* Flush by TLB_INVAL: queue 0 completes it within the doorbell. */
static void oracle_tlb_inval(struct oracle *o, const struct hmirror_cmd *inv)
{
	uint32_t idx = fk_submit(o->f, 0, *inv);

	ring(o->f, HMIRROR_VEC_CQ);
	if (fk_cq_tail(o->f, 0) != idx + 1)
		__atomic_store_n(&o->stop, 2, __ATOMIC_RELEASE);
	fk_set_cq_head(o->f, 0, idx + 1);
}

/*
 * Flush by shootdown, as the driver does: publish, spin a bounded time
 * until it is done, else fall back to TLB_INVAL (an engine preempted in
 * the middle of an access on this small host can hold it up for long).
 */
static void oracle_shootdown(struct oracle *o, const struct hmirror_cmd *inv)
{
	uint64_t e = fk_sd_publish(o->f, CTX, inv->src, inv->src + FK_PG);
	uint64_t end = hmdev_now_ns() + 2000000;	/* 2 ms */

	/* one look per round: done can turn false again as an access begins */
	while (!fk_sd_done(o->f, e)) {
		if (hmdev_now_ns() >= end) {
			o->fallbacks++;
			oracle_tlb_inval(o, inv);
			return;
		}
		sched_yield();
	}
}

/* The notifier: unmap a page, flush the device TLB, retire the frame. */
static void *oracle_mutator(void *arg)
{
	struct oracle *o = arg;
	struct hmirror_cmd inv = { .opcode = HMIRROR_OP_TLB_INVAL, .ctx = CTX,
				   .len = FK_PG };
	unsigned m, p;
	uint64_t old, *w, i;

	for (m = 0; m < OR_MUTATIONS; m++) {
		p = (m * 5 + 3) % OR_PAGES;
		pthread_mutex_lock(&o->pt);
		fk_unmap(o->f, o->root, VA0 + p * FK_PG);
		old = o->frame[p];
		o->frame[p] = fk_frame(o->f);
		inv.src = VA0 + p * FK_PG;
		if (o->shootdown)
			oracle_shootdown(o, &inv);
		else
			oracle_tlb_inval(o, &inv);
		pthread_mutex_unlock(&o->pt);
		/* from now on the device must never write the old frame */
		w = fk_ptr(o->f, old, FK_PG);
		for (i = 0; i < FK_PG / 8; i++)
			__atomic_store_n(&w[i], OR_CANARY, __ATOMIC_RELAXED);
		o->retired[o->nretired++] = old;
		__atomic_store_n(&o->mutated, o->nretired, __ATOMIC_RELEASE);
		fk_pause_us(200);
	}
	return NULL;
}

static void invalidation_oracle(struct __test_metadata *_metadata,
				FIXTURE_DATA(t) *self, bool shootdown,
				bool slow_service)
{
	struct oracle o = { .f = F, .root = ROOT, .pt = PTHREAD_MUTEX_INITIALIZER,
			    .shootdown = shootdown, .slow_service = slow_service };
	pthread_t tf, tm;
	unsigned i, q, n, bad = 0, bad_st = 0, done[3] = { 0 }, sub[3] = { 0 };
	unsigned overlap;
	uint64_t pat = 1, busy[3] = { 0 };	/* tags in flight (sq_entries 64) */
	bool stuck = false;

	for (i = 0; i < OR_PAGES; i++)
		o.frame[i] = fk_frame(F);
	ASSERT_EQ(0, pthread_create(&tf, NULL, oracle_faults, &o));
	ASSERT_EQ(0, pthread_create(&tm, NULL, oracle_mutator, &o));
	/*
	 * Both engines FILL the pages with ever new patterns meanwhile, at
	 * least 3000 times and until the last frame is retired.  A FILL
	 * parked on a fault is overtaken by later ones, so an SQ-index tag
	 * could come round again while it is parked: take a free tag.  No
	 * ASSERT until the threads are joined: they use @o.
	 */
	for (n = 0; (n < 3000 ||
		     __atomic_load_n(&o.mutated, __ATOMIC_ACQUIRE) < OR_MUTATIONS) &&
		    !stuck && !bad_st &&
		    !__atomic_load_n(&o.stop, __ATOMIC_ACQUIRE); n++) {
		uint16_t tag;

		q = 1 + n % 2;
		tag = (uint16_t)__builtin_ctzll(~busy[q]);
		busy[q] |= 1ull << tag;
		fk_submit_tag(F, q, (struct hmirror_cmd){ .opcode = HMIRROR_OP_FILL,
			      .ctx = CTX, .dst = VA0, .len = OR_PAGES * FK_PG,
			      .arg0 = pat++ }, tag);
		sub[q]++;
		ring(F, HMIRROR_VEC_CQ);
		if (sub[q] - done[q] < 8)
			continue;
		if (!FK_WAIT_FOR(fk_cq_tail(F, q) != done[q])) {
			stuck = true;
			break;
		}
		while (done[q] != fk_cq_tail(F, q)) {
			struct hmirror_cpl *c = fk_cq(F, q, done[q]++);
			uint64_t bit = 1ull << (c->tag & 63);

			/* failed, or completed a tag not in flight */
			bad_st += c->status != HMIRROR_ST_OK || c->tag > 63 ||
				  !(busy[q] & bit);
			busy[q] &= ~bit;
		}
		fk_set_cq_head(F, q, done[q]);
	}
	overlap = __atomic_load_n(&o.mutated, __ATOMIC_ACQUIRE);
	pthread_join(tm, NULL);
	for (q = 1; q <= 2; q++)
		stuck |= !FK_WAIT_FOR(fk_cq_tail(F, q) == sub[q]);
	if (!__atomic_load_n(&o.stop, __ATOMIC_ACQUIRE))	/* keep a 2 */
		__atomic_store_n(&o.stop, 1, __ATOMIC_RELEASE);
	pthread_join(tf, NULL);
	ASSERT_FALSE(stuck);
	ASSERT_EQ(0, bad_st);
	/* the fills ran until the last invalidation, so every canary counts */
	EXPECT_EQ(OR_MUTATIONS, overlap);
	EXPECT_EQ(1, o.stop);		/* no TLB_INVAL stayed incomplete */
	EXPECT_EQ(0, o.bad_faults);
	EXPECT_LT(0, o.faults);
	for (i = 0; i < o.nretired; i++) {
		uint64_t *w = fk_ptr(F, o.retired[i], FK_PG), k;

		for (k = 0; k < FK_PG / 8; k++)
			if (w[k] != OR_CANARY) {
				bad++;
				break;
			}
	}
	EXPECT_EQ(0, bad) TH_LOG("%u retired frames written after their invalidation", bad);
	EXPECT_EQ(shootdown ? o.fallbacks : OR_MUTATIONS, R->cnt_tlb_invals);
	if (shootdown) {	/* applied, by now or by the next access */
		EXPECT_LT(0, R->cnt_shootdowns);
		EXPECT_GE(OR_MUTATIONS, R->cnt_shootdowns);
	}
	EXPECT_EQ(0, R->err_count);
	TH_LOG("%u fills, %u faults, %u invalidations (%u by TLB_INVAL after a shootdown's wait ran out)",
	       n, o.faults, o.nretired, o.fallbacks);
}

TEST_F(t, invalidation_oracle)
{
	invalidation_oracle(_metadata, self, false, false);
}

/* The same over shootdowns: the driver spins on dev_seen, no command. */
TEST_F(t, invalidation_oracle_shootdown)
{
	invalidation_oracle(_metadata, self, true, false);
}

/*
 * The same with a fault service that now and then takes 5 ms, as a
 * preempted driver does: parked commands are overtaken by dozens of later
 * ones, and their tags must not come round while they wait.
 */
TEST_F(t, invalidation_oracle_slow_fault_service)
{
	invalidation_oracle(_metadata, self, false, true);
}

TEST_HARNESS_MAIN
