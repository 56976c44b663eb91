// SPDX-License-Identifier: MIT
/*
 * Device ABI 2.0 queues: tags, parking and out-of-order completion.  A
 * command stalled on a fault (or waiting for fault ring room, or a FENCE
 * waiting for earlier commands of its scope) is parked and its queue goes
 * on; completions carry tag and seqno; answers come through the per-queue
 * table indexed by tag; the CQ never overflows however many commands are
 * parked; fault ids are 64-bit; progress moves.
 *
 * Fixture "p" runs each test twice: inline (doorbells run the queues in
 * the caller) and threaded (one thread per engine, as hmirror-dev runs).
 * Threaded checks poll for states that are stable once reached (nothing
 * moves without the next answer or doorbell), so they never depend on
 * timing.  Fixture "p1" holds the inline-only tests that count exactly.
 */
#include <time.h>

#include "hmtest.h"
#include "kselftest_harness.h"

#define VA	0x00007f1234560000ull	/* context A's buffers */
#define VB	0x0000000040000000ull	/* context B's buffers */
#define CA	1
#define CB	2
#define SQ	16

static struct hmirror_cmd mk(uint8_t op, uint16_t ctx, uint64_t src,
			     uint64_t dst, uint64_t len)
{
	struct hmirror_cmd c = { .opcode = op, .ctx = ctx, .src = src,
				 .dst = dst, .len = len };
	return c;
}

/* Take the next fault record, waiting for it (threaded): 1, or 0 if none came. */
static int next_fault_wait(struct fakedev *f, struct hmirror_fault *fr)
{
	uint64_t end = fk_now_ms() + FK_TMO_MS;

	while (!fk_next_fault(f, fr))
		if (fk_now_ms() >= end)
			return 0;
		else
			fk_pause_us(50);
	return 1;
}

static uint32_t ld32(uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void pattern(uint8_t *p, uint64_t len, unsigned seed)
{
	uint64_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 29 + seed * 13 + (i >> 12));
}

FIXTURE(p) {
	struct fakedev f;
	uint64_t ra, rb;	/* roots of contexts A and B */
};

FIXTURE_VARIANT(p) {
	int threaded;
};

FIXTURE_VARIANT_ADD(p, inline) { .threaded = 0 };
FIXTURE_VARIANT_ADD(p, threaded) { .threaded = 1 };

FIXTURE_SETUP(p)
{
	struct hmdev_config cfg;

	hmdev_config_default(&cfg);
	cfg.sq_entries = SQ;
	cfg.cq_entries = 64;
	cfg.fault_entries = 16;
	cfg.engines = 2;
	ASSERT_EQ(0, fakedev_init_xlate(&self->f, &cfg));
	self->ra = fk_frame(&self->f);
	self->rb = fk_frame(&self->f);
	fk_ctx_set(&self->f, CA, self->ra);
	fk_ctx_set(&self->f, CB, self->rb);
	fk_reset(&self->f);
	if (variant->threaded)
		ASSERT_EQ(0, hmdev_start(&self->f.dev));
}

FIXTURE_TEARDOWN(p)
{
	fakedev_free(&self->f);
}

#define F	(&self->f)
#define R	(fk_regs(F))
#define QR(q)	(fk_qregs(F, (q)))
#define RING(v)	hmdev_doorbell(&F->dev, (v))

/*
 * Context A's command stalls on a fault; context B's commands behind it on
 * the same engine complete while A's fault is unanswered.  Then A's
 * answer comes and A completes, last.
 */
TEST_F(p, stalled_command_does_not_delay_another_context)
{
	struct hmirror_fault fr;
	uint64_t gb, ga, want;
	struct hmirror_cpl *c;

	gb = fk_map_new(F, self->rb, VB, 4, 1);
	pattern(fk_ptr(F, gb, 4 * FK_PG), 4 * FK_PG, 1);
	want = fk_fnv(fk_ptr(F, gb, 4 * FK_PG), 4 * FK_PG);
	fk_map_new(F, self->ra, VA + 64 * FK_PG, 1, 1);	/* A's own, present */

	fk_submit(F, 1, mk(HMIRROR_OP_READ, CA, VA, 0, 64 * FK_PG));	/* seq 1 */
	fk_submit(F, 1, mk(HMIRROR_OP_READ, CB, VB, 0, 4 * FK_PG));	/* seq 2 */
	fk_submit(F, 1, (struct hmirror_cmd){ .opcode = HMIRROR_OP_FILL,
		  .ctx = CB, .dst = VB + 4 * FK_PG - 64, .len = 64,
		  .arg0 = 0x5151515151515151ull });			/* seq 3 */
	/* a later command of the stalled context runs too */
	fk_submit(F, 1, (struct hmirror_cmd){ .opcode = HMIRROR_OP_FILL,
		  .ctx = CA, .dst = VA + 64 * FK_PG, .len = 8, .arg0 = 7 });	/* seq 4 */
	RING(HMIRROR_VEC_CQ);

	ASSERT_EQ(1, next_fault_wait(F, &fr));
	EXPECT_EQ(1, fr.seqno);
	EXPECT_EQ(0, fr.tag);
	ASSERT_TRUE(FK_WAIT_FOR(fk_cq_tail(F, 1) == 3));
	ASSERT_TRUE(FK_WAIT_FOR(ld32(&QR(1)->q_status) == HMIRROR_Q_STALLED));
	EXPECT_EQ(1, QR(1)->parked);
	EXPECT_EQ(4, QR(1)->sq_head);
	c = fk_cq(F, 1, 0);
	EXPECT_EQ(2, c->seqno);
	EXPECT_EQ(1, c->tag);
	EXPECT_EQ(HMIRROR_ST_OK, c->status);
	EXPECT_EQ(want, c->result);
	EXPECT_EQ(3, fk_cq(F, 1, 1)->seqno);
	EXPECT_EQ(2, fk_cq(F, 1, 1)->tag);
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 1)->status);
	EXPECT_EQ(0x5151515151515151ull,
		  *(uint64_t *)fk_ptr(F, gb + 4 * FK_PG - 8, 8));
	EXPECT_EQ(4, fk_cq(F, 1, 2)->seqno);
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 2)->status);
	EXPECT_EQ(7, *(uint64_t *)fk_va(F, self->ra, VA + 64 * FK_PG));
	/* A's READ is untouched by all this: not completed */
	EXPECT_EQ(3, fk_cq_tail(F, 1));

	ga = fk_map_new(F, self->ra, VA, 64, 0);
	pattern(fk_ptr(F, ga, 64 * FK_PG), 64 * FK_PG, 2);
	fk_answer(F, 1, fr.fault_id, HMIRROR_FAULT_REPLAY);
	ASSERT_TRUE(FK_WAIT_FOR(fk_cq_tail(F, 1) == 4));
	c = fk_cq(F, 1, 3);
	EXPECT_EQ(1, c->seqno);
	EXPECT_EQ(0, c->tag);
	EXPECT_EQ(HMIRROR_ST_OK, c->status);
	EXPECT_EQ(1, c->nfaults);
	EXPECT_EQ(fk_fnv(fk_ptr(F, ga, 64 * FK_PG), 64 * FK_PG), c->result);
	EXPECT_EQ(1, QR(1)->completed_seqno);
	ASSERT_TRUE(FK_WAIT_FOR(ld32(&QR(1)->q_status) == HMIRROR_Q_IDLE));
	EXPECT_EQ(0, QR(1)->parked);
	EXPECT_EQ(0, R->err_count);
}

/* Completions out of order, each with its command's tag and seqno. */
TEST_F(p, out_of_order_completions_carry_tag_and_seqno)
{
	static const uint16_t tags[5] = { 9, 3, 14, 0, 7 };
	/* expected completion order: seqnos, and their tags */
	static const uint64_t order[5] = { 2, 4, 5, 3, 1 };
	struct hmirror_fault fr[3];
	uint64_t g;
	unsigned i;

	g = fk_map_new(F, self->ra, VA + FK_2M, 1, 0);
	fk_submit_tag(F, 1, mk(HMIRROR_OP_READ, CA, VA, 0, 8), tags[0]);	/* faults */
	fk_submit_tag(F, 1, mk(HMIRROR_OP_READ, CA, VA + FK_2M, 0, 8), tags[1]);
	fk_submit_tag(F, 1, mk(HMIRROR_OP_READ, CA, VA + FK_PG, 0, 8), tags[2]);	/* faults */
	fk_submit_tag(F, 1, mk(HMIRROR_OP_NOP, 0, 0, 0, 0), tags[3]);
	fk_submit_tag(F, 1, (struct hmirror_cmd){ .opcode = HMIRROR_OP_FILL,
		      .ctx = CA, .dst = VA + 2 * FK_PG, .len = 8 }, tags[4]);	/* faults */
	RING(HMIRROR_VEC_CQ);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(1, next_fault_wait(F, &fr[i]));
	EXPECT_EQ(1, fr[0].seqno);
	EXPECT_EQ(tags[0], fr[0].tag);
	EXPECT_EQ(3, fr[1].seqno);
	EXPECT_EQ(tags[2], fr[1].tag);
	EXPECT_EQ(5, fr[2].seqno);
	EXPECT_EQ(tags[4], fr[2].tag);
	EXPECT_EQ(HMIRROR_ACCESS_WRITE, fr[2].access);
	ASSERT_TRUE(FK_WAIT_FOR(fk_cq_tail(F, 1) == 2));
	EXPECT_EQ(4, QR(1)->completed_seqno);
	ASSERT_TRUE(FK_WAIT_FOR(QR(1)->parked == 3));

	/* answers in reverse order */
	fk_answer(F, 1, fr[2].fault_id, HMIRROR_FAULT_CANCEL);
	ASSERT_TRUE(FK_WAIT_FOR(fk_cq_tail(F, 1) == 3));
	EXPECT_EQ(5, QR(1)->completed_seqno);
	fk_map_new(F, self->ra, VA + FK_PG, 1, 0);
	fk_answer(F, 1, fr[1].fault_id, HMIRROR_FAULT_REPLAY);
	ASSERT_TRUE(FK_WAIT_FOR(fk_cq_tail(F, 1) == 4));
	EXPECT_EQ(3, QR(1)->completed_seqno);
	fk_answer(F, 1, fr[0].fault_id, HMIRROR_FAULT_CANCEL);
	ASSERT_TRUE(FK_WAIT_FOR(fk_cq_tail(F, 1) == 5));
	EXPECT_EQ(1, QR(1)->completed_seqno);

	for (i = 0; i < 5; i++) {
		struct hmirror_cpl *c = fk_cq(F, 1, i);

		EXPECT_EQ(order[i], c->seqno) TH_LOG("completion %u", i);
		EXPECT_EQ(tags[order[i] - 1], c->tag) TH_LOG("completion %u", i);
		EXPECT_EQ(1, c->queue);
		EXPECT_EQ(0, c->reserved0);
		EXPECT_EQ(0, c->reserved1);
	}
	EXPECT_EQ(HMIRROR_OP_READ, fk_cq(F, 1, 0)->opcode);
	EXPECT_EQ(fk_fnv(fk_ptr(F, g, 8), 8), fk_cq(F, 1, 0)->result);
	EXPECT_EQ(HMIRROR_OP_NOP, fk_cq(F, 1, 1)->opcode);
	EXPECT_EQ(HMIRROR_ST_FAULT, fk_cq(F, 1, 2)->status);
	EXPECT_EQ(HMIRROR_OP_FILL, fk_cq(F, 1, 2)->opcode);
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 3)->status);
	EXPECT_EQ(HMIRROR_ST_FAULT, fk_cq(F, 1, 4)->status);
	EXPECT_EQ(0, R->err_count);
}

/*
 * FENCE waits for earlier commands of its own context only; ctx 0 waits
 * for every earlier command of the queue (fences included).  A waiting
 * FENCE is parked and the queue goes on.  Fences on queue 0 never wait.
 */
TEST_F(p, fence_waits_for_its_own_context_only)
{
	struct hmirror_fault fr;

	fk_map_new(F, self->rb, VB, 1, 1);
	fk_submit(F, 1, mk(HMIRROR_OP_READ, CA, VA, 0, 8));	/* 1: parks */
	fk_submit(F, 1, mk(HMIRROR_OP_FENCE, CB, 0, 0, 0));	/* 2: at once */
	fk_submit(F, 1, mk(HMIRROR_OP_FENCE, CA, 0, 0, 0));	/* 3: waits for 1 */
	fk_submit(F, 1, mk(HMIRROR_OP_FENCE, 0, 0, 0, 0));	/* 4: waits for 1-3 */
	fk_submit(F, 1, mk(HMIRROR_OP_READ, CB, VB, 0, 8));	/* 5: runs */
	fk_submit(F, 1, mk(HMIRROR_OP_FENCE, CB, 0, 0, 0));	/* 6: after 5 */
	fk_submit(F, 1, mk(HMIRROR_OP_NOP, CA, 0, 0, 0));	/* 7: runs */
	fk_submit(F, 0, mk(HMIRROR_OP_FENCE, 0, 0, 0, 0));	/* queue 0 */
	RING(HMIRROR_VEC_CQ);
	ASSERT_EQ(1, next_fault_wait(F, &fr));
	ASSERT_TRUE(FK_WAIT_FOR(fk_cq_tail(F, 1) == 4));
	ASSERT_TRUE(FK_WAIT_FOR(ld32(&QR(1)->q_status) == HMIRROR_Q_STALLED));
	EXPECT_EQ(3, QR(1)->parked);
	EXPECT_EQ(2, fk_cq(F, 1, 0)->seqno);
	EXPECT_EQ(HMIRROR_OP_FENCE, fk_cq(F, 1, 0)->opcode);
	EXPECT_EQ(5, fk_cq(F, 1, 1)->seqno);
	EXPECT_EQ(6, fk_cq(F, 1, 2)->seqno);
	EXPECT_EQ(7, fk_cq(F, 1, 3)->seqno);
	EXPECT_EQ(1, fk_cq_tail(F, 0));
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 0, 0)->status);

	/* a fence of context B now: nothing of B in flight, at once */
	fk_submit(F, 1, mk(HMIRROR_OP_FENCE, CB, 0, 0, 0));	/* 8 */
	RING(HMIRROR_VEC_CQ);
	ASSERT_TRUE(FK_WAIT_FOR(fk_cq_tail(F, 1) == 5));
	EXPECT_EQ(8, fk_cq(F, 1, 4)->seqno);

	/* the READ ends: its context's fence, then the whole-queue fence */
	fk_answer(F, 1, fr.fault_id, HMIRROR_FAULT_CANCEL);
	ASSERT_TRUE(FK_WAIT_FOR(fk_cq_tail(F, 1) == 8));
	EXPECT_EQ(1, fk_cq(F, 1, 5)->seqno);
	EXPECT_EQ(HMIRROR_ST_FAULT, fk_cq(F, 1, 5)->status);
	EXPECT_EQ(3, fk_cq(F, 1, 6)->seqno);
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 6)->status);
	EXPECT_EQ(4, fk_cq(F, 1, 7)->seqno);
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 7)->status);
	EXPECT_LE(fk_cq(F, 1, 5)->t_done, fk_cq(F, 1, 6)->t_done);
	ASSERT_TRUE(FK_WAIT_FOR(ld32(&QR(1)->q_status) == HMIRROR_Q_IDLE));
	EXPECT_EQ(0, QR(1)->parked);
	EXPECT_EQ(0, R->err_count);
}

/*
 * Every tag of the queue parked at once (sq_entries commands, more than
 * the fault ring holds): the device takes them all, the ones without ring
 * room are parked too; a further command has no free tag (BAD_TAG).  The
 * driver services the faults as they come and every command completes.
 */
TEST_F(p, every_tag_parked_at_once)
{
	struct hmirror_fault fr;
	uint64_t g;
	unsigned i, faults = 0, seen[SQ] = { 0 };

	for (i = 0; i < SQ; i++)
		fk_submit(F, 1, mk(HMIRROR_OP_READ, CA, VA + i * FK_2M, 0, 8));
	RING(HMIRROR_VEC_CQ);
	ASSERT_TRUE(FK_WAIT_FOR(QR(1)->parked == SQ));
	EXPECT_EQ(SQ, QR(1)->sq_head);
	EXPECT_EQ(0, fk_cq_tail(F, 1));
	ASSERT_TRUE(FK_WAIT_FOR(ld32(&QR(1)->q_status) == HMIRROR_Q_STALLED));
	/* every tag in flight: the next command cannot have one */
	fk_submit_tag(F, 1, mk(HMIRROR_OP_NOP, 0, 0, 0, 0), 3);
	RING(HMIRROR_VEC_CQ);
	ASSERT_TRUE(FK_WAIT_FOR(fk_cq_tail(F, 1) == 1));
	EXPECT_EQ(HMIRROR_ST_BAD_TAG, fk_cq(F, 1, 0)->status);
	EXPECT_EQ(17, fk_cq(F, 1, 0)->seqno);
	EXPECT_EQ(HMIRROR_ST_BAD_TAG, R->err_code);
	EXPECT_EQ(3, R->err_info);
	EXPECT_EQ(SQ, QR(1)->parked);

	/* service: map, replay, consume, ring; ticks post the waiting ones */
	g = fk_frame(F);
	*(uint64_t *)fk_ptr(F, g, 8) = 0x1234;
	while (faults < SQ) {
		if (!fk_next_fault(F, &fr)) {
			hmdev_tick(&F->dev);
			ASSERT_EQ(1, next_fault_wait(F, &fr)) TH_LOG("%u faults", faults);
		}
		ASSERT_EQ(1, fr.queue);
		ASSERT_LT(fr.tag, SQ);
		EXPECT_EQ(0, seen[fr.tag]++) TH_LOG("tag %u faulted twice", fr.tag);
		EXPECT_EQ(fr.tag + 1, fr.seqno);
		fk_map(F, self->ra, fr.addr, g, 0);
		fk_answer(F, 1, fr.fault_id, HMIRROR_FAULT_REPLAY);
		faults++;
	}
	ASSERT_TRUE(FK_WAIT_FOR(fk_cq_tail(F, 1) == SQ + 1));
	for (i = 1; i <= SQ; i++) {
		EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, i)->status);
		EXPECT_EQ(fk_fnv(fk_ptr(F, g, 8), 8), fk_cq(F, 1, i)->result);
	}
	EXPECT_EQ(SQ, R->cnt_faults);
	ASSERT_TRUE(FK_WAIT_FOR(QR(1)->parked == 0));
	EXPECT_EQ(1, R->err_count);	/* the BAD_TAG */
}

/*
 * The CQ never overflows with parked commands: fetching stops while
 * unread completions plus commands in flight fill the CQ.  A cq_head
 * moved backwards is then a bad index.
 */
TEST(cq_room_counts_commands_in_flight)
{
	struct hmdev_config cfg;
	struct { struct fakedev f; } st, *self = &st;
	struct hmirror_fault fr[3];
	uint64_t root;
	unsigned i;

	hmdev_config_default(&cfg);
	cfg.sq_entries = SQ;
	cfg.cq_entries = 4;
	ASSERT_EQ(0, fakedev_init_xlate(F, &cfg));
	root = fk_frame(F);
	fk_ctx_set(F, CA, root);
	fk_reset(F);
	for (i = 0; i < 3; i++)		/* seq 1-3: park */
		fk_submit(F, 1, mk(HMIRROR_OP_READ, CA, VA + i * FK_2M, 0, 8));
	for (i = 0; i < 6; i++)		/* seq 4-9 */
		fk_submit(F, 1, mk(HMIRROR_OP_NOP, 0, 0, 0, 0));
	RING(HMIRROR_VEC_CQ);
	/* 3 in flight + 1 completion = 4: no more */
	EXPECT_EQ(4, QR(1)->sq_head);
	EXPECT_EQ(1, fk_cq_tail(F, 1));
	EXPECT_EQ(3, QR(1)->parked);
	EXPECT_EQ(HMIRROR_Q_STALLED, QR(1)->q_status);
	hmdev_tick(&F->dev);
	RING(HMIRROR_VEC_CQ);
	EXPECT_EQ(4, QR(1)->sq_head);
	/* one slot freed: one more command */
	fk_set_cq_head(F, 1, 1);
	RING(HMIRROR_VEC_CQ);
	EXPECT_EQ(5, QR(1)->sq_head);
	EXPECT_EQ(2, fk_cq_tail(F, 1));
	EXPECT_EQ(5, fk_cq(F, 1, 1)->seqno);
	/* the parked ones complete into the room kept for them: CQ full */
	for (i = 0; i < 3; i++)
		ASSERT_EQ(1, fk_next_fault(F, &fr[i]));
	for (i = 0; i < 3; i++)
		fk_answer(F, 1, fr[i].fault_id, HMIRROR_FAULT_CANCEL);
	EXPECT_EQ(5, fk_cq_tail(F, 1));
	EXPECT_EQ(5, QR(1)->sq_head);
	EXPECT_EQ(4, fk_cq_tail(F, 1) - F->cq_head[1]);
	EXPECT_EQ(5, fk_cq(F, 1, 1)->seqno);	/* unread, not overwritten */
	for (i = 0; i < 3; i++)
		EXPECT_EQ(1 + i, fk_cq(F, 1, 2 + i)->seqno);
	EXPECT_EQ(HMIRROR_Q_RUNNING, QR(1)->q_status);	/* CQ full, SQ not empty */
	/* the driver reads everything: the rest runs */
	fk_set_cq_head(F, 1, 5);
	RING(HMIRROR_VEC_CQ);
	EXPECT_EQ(9, fk_cq_tail(F, 1));
	EXPECT_EQ(9, QR(1)->completed_seqno);
	EXPECT_EQ(0, fk_regs(F)->err_count);

	/* two parked again, one completion unread; cq_head goes backwards */
	fk_set_cq_head(F, 1, 9);
	fk_submit(F, 1, mk(HMIRROR_OP_READ, CA, VA, 0, 8));
	fk_submit(F, 1, mk(HMIRROR_OP_READ, CA, VA + FK_2M, 0, 8));
	fk_submit(F, 1, mk(HMIRROR_OP_NOP, 0, 0, 0, 0));
	RING(HMIRROR_VEC_CQ);
	EXPECT_EQ(10, fk_cq_tail(F, 1));
	fk_set_cq_head(F, 1, 8);	/* 2 unread + 2 in flight: 4, legal */
	fk_submit(F, 1, mk(HMIRROR_OP_NOP, 0, 0, 0, 0));
	RING(HMIRROR_VEC_CQ);
	EXPECT_EQ(10, fk_cq_tail(F, 1));
	EXPECT_EQ(0, fk_regs(F)->err_count);
	fk_set_cq_head(F, 1, 7);	/* 3 + 2 > 4: impossible */
	RING(HMIRROR_VEC_CQ);
	EXPECT_EQ(HMIRROR_Q_ERROR, QR(1)->q_status);
	EXPECT_EQ(HMIRROR_ST_BAD_INDEX, fk_regs(F)->err_code);
	EXPECT_EQ(10, fk_regs(F)->err_index);
	EXPECT_EQ(7, fk_regs(F)->err_info);
	fakedev_free(F);
}

/* ---- inline only: exact counts ----------------------------------------- */

FIXTURE(p1) {
	struct fakedev f;
	uint64_t ra;
};

FIXTURE_SETUP(p1)
{
	struct hmdev_config cfg;

	hmdev_config_default(&cfg);
	cfg.sq_entries = SQ;
	cfg.cq_entries = 64;
	cfg.fault_entries = 16;
	cfg.engines = 2;
	ASSERT_EQ(0, fakedev_init_xlate(&self->f, &cfg));
	self->ra = fk_frame(&self->f);
	fk_ctx_set(&self->f, CA, self->ra);
	fk_reset(&self->f);
}

FIXTURE_TEARDOWN(p1)
{
	fakedev_free(&self->f);
}

/* Tags: out of range and duplicate ones complete at once with BAD_TAG. */
TEST_F(p1, bad_tags)
{
	struct hmirror_fault fr;
	uint32_t idx;
	unsigned errs = 0;

	/* out of range, on an engine and on queue 0 */
	idx = fk_submit_tag(F, 1, mk(HMIRROR_OP_NOP, 0, 0, 0, 0), SQ);
	fk_submit_tag(F, 1, mk(HMIRROR_OP_NOP, 0, 0, 0, 0), 0xffff);
	fk_submit_tag(F, 1, mk(HMIRROR_OP_NOP, 0, 0, 0, 0), SQ - 1);	/* fine */
	RING(HMIRROR_VEC_CQ);
	EXPECT_EQ(0xffff, R->err_info);
	fk_submit_tag(F, 0, mk(HMIRROR_OP_FENCE, 0, 0, 0, 0), SQ + 1);
	RING(HMIRROR_VEC_CQ);
	ASSERT_EQ(3, fk_cq_tail(F, 1));
	EXPECT_EQ(HMIRROR_ST_BAD_TAG, fk_cq(F, 1, 0)->status);
	EXPECT_EQ(SQ, fk_cq(F, 1, 0)->tag);		/* echoed */
	EXPECT_EQ(1, fk_cq(F, 1, 0)->seqno);
	EXPECT_EQ(HMIRROR_OP_NOP, fk_cq(F, 1, 0)->opcode);
	EXPECT_EQ(HMIRROR_ST_BAD_TAG, fk_cq(F, 1, 1)->status);
	EXPECT_EQ(0xffff, fk_cq(F, 1, 1)->tag);
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 2)->status);
	EXPECT_EQ(SQ - 1, fk_cq(F, 1, 2)->tag);
	ASSERT_EQ(1, fk_cq_tail(F, 0));
	EXPECT_EQ(HMIRROR_ST_BAD_TAG, fk_cq(F, 0, 0)->status);
	errs += 3;
	EXPECT_EQ(errs, R->err_count);
	EXPECT_EQ(0, R->err_queue);
	EXPECT_EQ(SQ + 1, R->err_info);
	(void)idx;

	/* a duplicate of a parked command's tag; the parked one lives on */
	fk_submit_tag(F, 1, mk(HMIRROR_OP_READ, CA, VA, 0, 8), 5);	/* seq 4 */
	idx = fk_submit_tag(F, 1, mk(HMIRROR_OP_NOP, 0, 0, 0, 0), 5);	/* seq 5 */
	fk_submit_tag(F, 1, mk(HMIRROR_OP_NOP, 0, 0, 0, 0), 6);	/* seq 6 */
	RING(HMIRROR_VEC_CQ);
	ASSERT_EQ(1, fk_next_fault(F, &fr));
	EXPECT_EQ(5, fr.tag);
	ASSERT_EQ(5, fk_cq_tail(F, 1));
	EXPECT_EQ(5, fk_cq(F, 1, 3)->seqno);
	EXPECT_EQ(HMIRROR_ST_BAD_TAG, fk_cq(F, 1, 3)->status);
	EXPECT_EQ(5, fk_cq(F, 1, 3)->tag);
	EXPECT_EQ(++errs, R->err_count);
	EXPECT_EQ(5, R->err_info);
	EXPECT_EQ(1, R->err_queue);
	EXPECT_EQ(idx, R->err_index);
	EXPECT_EQ(6, fk_cq(F, 1, 4)->seqno);
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 4)->status);
	EXPECT_EQ(1, QR(1)->parked);
	/* the parked command is still answerable at its tag */
	fk_answer(F, 1, fr.fault_id, HMIRROR_FAULT_CANCEL);
	ASSERT_EQ(6, fk_cq_tail(F, 1));
	EXPECT_EQ(4, fk_cq(F, 1, 5)->seqno);
	EXPECT_EQ(HMIRROR_ST_FAULT, fk_cq(F, 1, 5)->status);
	/* completed: its tag is free again */
	fk_submit_tag(F, 1, mk(HMIRROR_OP_NOP, 0, 0, 0, 0), 5);
	RING(HMIRROR_VEC_CQ);
	ASSERT_EQ(7, fk_cq_tail(F, 1));
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 6)->status);
	EXPECT_EQ(errs, R->err_count);
}

/*
 * --misbehave complete-faulted, the lie the driver's dead-device scenario
 * needs: a command that posted a fault completes OK, unanswered, once its
 * record is taken (here, inline, nobody takes it: after 100 ms); an
 * honest device (the default) waits for the answer.
 */
TEST_F(p1, lie_completes_a_faulted_command_unanswered)
{
	struct hmirror_fault fr;

	F->dev.cfg.misbehave = HMDEV_LIE_COMPLETE_FAULTED;
	fk_submit(F, 1, mk(HMIRROR_OP_READ, CA, VA, 0, 8));
	RING(HMIRROR_VEC_CQ);
	ASSERT_EQ(1, fk_cq_tail(F, 1));
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 0)->status);
	EXPECT_EQ(0, QR(1)->parked);
	ASSERT_EQ(1, fk_next_fault(F, &fr));	/* posted all the same */
	EXPECT_EQ(fk_cq(F, 1, 0)->seqno, fr.seqno);

	F->dev.cfg.misbehave = 0;
	fk_submit(F, 1, mk(HMIRROR_OP_READ, CA, VA, 0, 8));
	RING(HMIRROR_VEC_CQ);
	ASSERT_EQ(1, fk_next_fault(F, &fr));
	RING(HMIRROR_VEC_FAULT);
	EXPECT_EQ(1, fk_cq_tail(F, 1));
	EXPECT_EQ(1, QR(1)->parked);
	fk_answer(F, 1, fr.fault_id, HMIRROR_FAULT_CANCEL);
	ASSERT_EQ(2, fk_cq_tail(F, 1));
	EXPECT_EQ(HMIRROR_ST_FAULT, fk_cq(F, 1, 1)->status);
}

/*
 * Answers are taken from the table entry at the command's tag, when its id
 * is the command's outstanding fault id; anything else there is ignored.
 * A bad answer value cancels and is an error.  The tick looks too.
 */
TEST_F(p1, answers_by_tag)
{
	struct hmirror_fault f1, f2;
	uint64_t g;

	fk_submit_tag(F, 1, mk(HMIRROR_OP_READ, CA, VA, 0, 8), 2);
	fk_submit_tag(F, 1, mk(HMIRROR_OP_READ, CA, VA + FK_2M, 0, 8), 9);
	RING(HMIRROR_VEC_CQ);
	ASSERT_EQ(1, fk_next_fault(F, &f1));
	ASSERT_EQ(1, fk_next_fault(F, &f2));
	ASSERT_EQ(2, f1.tag);
	ASSERT_EQ(9, f2.tag);
	EXPECT_LT(f1.fault_id, f2.fault_id);

	fk_answer_at(F, 1, 2, f2.fault_id, HMIRROR_FAULT_REPLAY);	/* other's id */
	fk_answer_at(F, 1, 9, f1.fault_id, HMIRROR_FAULT_CANCEL);
	fk_answer_at(F, 2, 2, f1.fault_id, HMIRROR_FAULT_CANCEL);	/* other queue */
	fk_answer_at(F, 1, 3, f1.fault_id, HMIRROR_FAULT_CANCEL);	/* other tag */
	RING(HMIRROR_VEC_FAULT);
	hmdev_tick(&F->dev);
	EXPECT_EQ(0, fk_cq_tail(F, 1));
	EXPECT_EQ(2, QR(1)->parked);
	EXPECT_EQ(0, R->cnt_cancels + R->cnt_replays);

	/* a value that is no answer: cancels, error FAULT with the value */
	fk_answer_at(F, 1, 9, f2.fault_id, 77);
	hmdev_tick(&F->dev);			/* no doorbell needed */
	ASSERT_EQ(1, fk_cq_tail(F, 1));
	EXPECT_EQ(2, fk_cq(F, 1, 0)->seqno);
	EXPECT_EQ(HMIRROR_ST_FAULT, fk_cq(F, 1, 0)->status);
	EXPECT_EQ(1, R->err_count);
	EXPECT_EQ(HMIRROR_ST_FAULT, R->err_code);
	EXPECT_EQ(77, R->err_info);
	EXPECT_EQ(1, R->err_queue);
	EXPECT_EQ(1, QR(1)->parked);

	g = fk_map_new(F, self->ra, VA, 1, 0);
	*(uint64_t *)fk_ptr(F, g, 8) = 99;
	fk_answer_at(F, 1, 2, f1.fault_id, HMIRROR_FAULT_REPLAY);
	RING(HMIRROR_VEC_FAULT);
	ASSERT_EQ(2, fk_cq_tail(F, 1));
	EXPECT_EQ(1, fk_cq(F, 1, 1)->seqno);
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 1)->status);
	EXPECT_EQ(fk_fnv(fk_ptr(F, g, 8), 8), fk_cq(F, 1, 1)->result);
	EXPECT_EQ(1, R->cnt_replays);
	EXPECT_EQ(0, QR(1)->parked);
	/* the same entry again, for a command that reuses the tag: stale */
	fk_submit_tag(F, 1, mk(HMIRROR_OP_READ, CA, VA + 2 * FK_2M, 0, 8), 2);
	RING(HMIRROR_VEC_CQ);
	EXPECT_EQ(1, QR(1)->parked);
	EXPECT_EQ(2, fk_cq_tail(F, 1));
}

/* A command waiting for fault ring room is parked; the queue goes on. */
TEST(fault_ring_room_wait_is_parked)
{
	struct hmdev_config cfg;
	struct { struct fakedev f; } st, *self = &st;
	struct hmirror_fault fr;
	uint64_t root;

	hmdev_config_default(&cfg);
	cfg.fault_entries = 2;
	ASSERT_EQ(0, fakedev_init_xlate(F, &cfg));
	root = fk_frame(F);
	fk_ctx_set(F, CA, root);
	fk_reset(F);
	fk_submit(F, 1, mk(HMIRROR_OP_READ, CA, VA, 0, 8));
	fk_submit(F, 1, mk(HMIRROR_OP_READ, CA, VA + FK_2M, 0, 8));
	fk_submit(F, 1, mk(HMIRROR_OP_READ, CA, VA + 2 * FK_2M, 0, 8));	/* no room */
	fk_submit(F, 1, mk(HMIRROR_OP_FENCE, CA, 0, 0, 0));
	fk_submit(F, 1, mk(HMIRROR_OP_NOP, 0, 0, 0, 0));
	RING(HMIRROR_VEC_CQ);
	EXPECT_EQ(2, fk_fregs(F)->tail);
	EXPECT_EQ(4, QR(1)->parked);		/* 2 faults, 1 room, 1 fence */
	EXPECT_EQ(1, fk_cq_tail(F, 1));
	EXPECT_EQ(5, fk_cq(F, 1, 0)->seqno);
	EXPECT_EQ(HMIRROR_Q_STALLED, QR(1)->q_status);
	/* room: the next pass posts the third record */
	ASSERT_EQ(1, fk_next_fault(F, &fr));
	fk_answer(F, 1, fr.fault_id, HMIRROR_FAULT_CANCEL);
	EXPECT_EQ(3, fk_fregs(F)->tail);
	EXPECT_EQ(3, QR(1)->parked);
	ASSERT_EQ(1, fk_next_fault(F, &fr));
	fk_answer(F, 1, fr.fault_id, HMIRROR_FAULT_CANCEL);
	ASSERT_EQ(1, fk_next_fault(F, &fr));
	EXPECT_EQ(VA + 2 * FK_2M, fr.addr);
	EXPECT_EQ(3, fr.seqno);
	fk_answer(F, 1, fr.fault_id, HMIRROR_FAULT_CANCEL);
	ASSERT_EQ(5, fk_cq_tail(F, 1));
	EXPECT_EQ(4, fk_cq(F, 1, 4)->seqno);	/* the fence, last */
	EXPECT_EQ(0, QR(1)->parked);
	EXPECT_EQ(HMIRROR_Q_IDLE, QR(1)->q_status);
	fakedev_free(F);
}

/*
 * Fault ids are 64 bits: an answer that matches only the low 32 bits is
 * not the answer; ids go on increasing across a reset.
 */
TEST_F(p1, fault_ids_are_64_bit_and_increase_across_resets)
{
	struct hmirror_fault f1, f2, f3;

	F->dev.fault_seq = 0xfffffffeull;	/* as if 2^32 - 2 faults were posted */
	fk_submit(F, 1, mk(HMIRROR_OP_READ, CA, VA, 0, 8));
	fk_submit(F, 2, mk(HMIRROR_OP_READ, CA, VA, 0, 8));
	RING(HMIRROR_VEC_CQ);
	ASSERT_EQ(1, fk_next_fault(F, &f1));
	ASSERT_EQ(1, fk_next_fault(F, &f2));
	EXPECT_EQ(0xffffffffull, f1.fault_id);
	EXPECT_EQ(0x100000000ull, f2.fault_id);
	/* same low 32 bits, other high bits; and the low 32 bits alone */
	fk_answer_at(F, 2, f2.tag, f2.fault_id + (1ull << 32), HMIRROR_FAULT_CANCEL);
	RING(HMIRROR_VEC_FAULT);
	fk_answer_at(F, 2, f2.tag, (uint32_t)f2.fault_id, HMIRROR_FAULT_CANCEL);
	RING(HMIRROR_VEC_FAULT);
	fk_answer_at(F, 1, f1.tag, f1.fault_id + (1ull << 32), HMIRROR_FAULT_CANCEL);
	RING(HMIRROR_VEC_FAULT);
	EXPECT_EQ(0, fk_cq_tail(F, 1));
	EXPECT_EQ(0, fk_cq_tail(F, 2));
	fk_answer(F, 2, f2.fault_id, HMIRROR_FAULT_CANCEL);
	EXPECT_EQ(1, fk_cq_tail(F, 2));
	EXPECT_EQ(0, fk_cq_tail(F, 1));

	fk_reset(F);
	fk_submit(F, 1, mk(HMIRROR_OP_READ, CA, VA, 0, 8));
	RING(HMIRROR_VEC_CQ);
	ASSERT_EQ(1, fk_next_fault(F, &f3));
	EXPECT_EQ(0x100000001ull, f3.fault_id);
	/* the late answer to the dropped f1, at the same tag: ignored */
	fk_answer_at(F, 1, f1.tag, f1.fault_id, HMIRROR_FAULT_CANCEL);
	RING(HMIRROR_VEC_FAULT);
	EXPECT_EQ(0, fk_cq_tail(F, 1));
	EXPECT_EQ(1, QR(1)->parked);
}

/*
 * progress moves by one on every fetch, chunk done, fault posted, answer
 * taken and completion, and not otherwise: a queue whose commands all wait
 * for the driver does not move, however often it is rung.
 */
TEST_F(p1, progress_moves)
{
	struct hmirror_fault fr;
	uint64_t p0;

	p0 = QR(1)->progress;
	EXPECT_EQ(0, p0);
	fk_submit(F, 1, mk(HMIRROR_OP_NOP, 0, 0, 0, 0));
	RING(HMIRROR_VEC_CQ);
	EXPECT_EQ(p0 + 2, QR(1)->progress);		/* fetch, completion */

	fk_map_new(F, self->ra, VA, 3, 0);
	p0 = QR(1)->progress;
	fk_submit(F, 1, mk(HMIRROR_OP_READ, CA, VA, 0, 3 * FK_PG));
	RING(HMIRROR_VEC_CQ);
	EXPECT_EQ(p0 + 1 + 3 + 1, QR(1)->progress);	/* 3 chunks */

	p0 = QR(1)->progress;
	fk_submit(F, 1, mk(HMIRROR_OP_READ, CA, VA + 2 * FK_PG, 0, 2 * FK_PG));
	RING(HMIRROR_VEC_CQ);
	EXPECT_EQ(p0 + 1 + 1 + 1, QR(1)->progress);	/* chunk, then a fault */
	ASSERT_EQ(1, fk_next_fault(F, &fr));
	p0 = QR(1)->progress;
	RING(HMIRROR_VEC_CQ);
	RING(HMIRROR_VEC_FAULT);
	hmdev_tick(&F->dev);
	EXPECT_EQ(p0, QR(1)->progress);			/* waits on the driver */
	EXPECT_EQ(HMIRROR_Q_STALLED, QR(1)->q_status);
	fk_map_new(F, self->ra, VA + 3 * FK_PG, 1, 0);
	fk_answer(F, 1, fr.fault_id, HMIRROR_FAULT_REPLAY);
	EXPECT_EQ(p0 + 1 + 1 + 1, QR(1)->progress);	/* answer, chunk, cpl */

	p0 = QR(1)->progress;
	fk_submit_tag(F, 1, mk(HMIRROR_OP_NOP, 0, 0, 0, 0), SQ);
	RING(HMIRROR_VEC_CQ);
	EXPECT_EQ(p0 + 2, QR(1)->progress);		/* BAD_TAG: fetch, cpl */
	EXPECT_EQ(0, QR(2)->progress);			/* per queue */
	fk_reset(F);
	EXPECT_EQ(0, QR(1)->progress);
}

/* A reset drops parked commands of every kind; their tags are free again. */
TEST_F(p1, reset_drops_parked_commands)
{
	struct hmirror_fault f1, f2;
	unsigned i;

	fk_submit(F, 1, mk(HMIRROR_OP_READ, CA, VA, 0, 8));
	fk_submit(F, 1, mk(HMIRROR_OP_FENCE, 0, 0, 0, 0));
	fk_submit(F, 2, mk(HMIRROR_OP_READ, CA, VA + FK_2M, 0, 8));
	fk_submit(F, 2, mk(HMIRROR_OP_FENCE, CA, 0, 0, 0));
	RING(HMIRROR_VEC_CQ);
	ASSERT_EQ(1, fk_next_fault(F, &f1));
	ASSERT_EQ(1, fk_next_fault(F, &f2));
	EXPECT_EQ(2, QR(1)->parked);
	EXPECT_EQ(2, QR(2)->parked);

	fk_reset(F);
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(0, QR(i)->parked);
		EXPECT_EQ(HMIRROR_Q_IDLE, QR(i)->q_status);
		EXPECT_EQ(0, QR(i)->sq_head);
		EXPECT_EQ(0, QR(i)->cq_tail);
	}
	/* the late answers change nothing */
	fk_answer(F, 1, f1.fault_id, HMIRROR_FAULT_REPLAY);
	fk_answer(F, 2, f2.fault_id, HMIRROR_FAULT_CANCEL);
	EXPECT_EQ(0, fk_cq_tail(F, 1));
	EXPECT_EQ(0, fk_cq_tail(F, 2));
	/* the same tags again: no BAD_TAG, the fence does not wait */
	fk_submit(F, 1, mk(HMIRROR_OP_NOP, 0, 0, 0, 0));
	fk_submit(F, 1, mk(HMIRROR_OP_FENCE, 0, 0, 0, 0));
	fk_submit(F, 2, mk(HMIRROR_OP_NOP, CA, 0, 0, 0));
	fk_submit(F, 2, mk(HMIRROR_OP_FENCE, CA, 0, 0, 0));
	RING(HMIRROR_VEC_CQ);
	ASSERT_EQ(2, fk_cq_tail(F, 1));
	ASSERT_EQ(2, fk_cq_tail(F, 2));
	for (i = 0; i < 2; i++) {
		EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, i)->status);
		EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 2, i)->status);
	}
	EXPECT_EQ(0, R->err_count);
}

TEST_HARNESS_MAIN
