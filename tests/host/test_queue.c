// SPDX-License-Identifier: MIT
/* Queue processing, reset, errors and irqs on a malloc'd BAR. */
#include "hmtest.h"
#include "kselftest_harness.h"

FIXTURE(q) {
	struct fakedev f;
};

FIXTURE_VARIANT(q) {
	unsigned cq_entries;
};

FIXTURE_VARIANT_ADD(q, cq256) { .cq_entries = 256 };

FIXTURE_SETUP(q)
{
	struct hmdev_config cfg;

	hmdev_config_default(&cfg);
	cfg.sq_entries = 16;
	cfg.cq_entries = variant->cq_entries;
	ASSERT_EQ(0, fakedev_init(&self->f, &cfg));
}

FIXTURE_TEARDOWN(q)
{
	fakedev_free(&self->f);
}

#define F (&self->f)
#define R (fk_regs(F))
#define QR(q) (fk_qregs(F, (q)))

TEST_F(q, nothing_runs_before_reset)
{
	fk_op(F, 1, HMIRROR_OP_NOP, 7);
	fk_op(F, 0, HMIRROR_OP_NOP, 8);
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	hmdev_tick(&F->dev);
	EXPECT_EQ(HMIRROR_DEV_ALIVE | HMIRROR_DEV_DMA_OFF, R->dev_status);
	EXPECT_EQ(0, QR(1)->sq_head);
	EXPECT_EQ(0, QR(1)->cq_tail);
	EXPECT_EQ(0, QR(0)->cq_tail);
	EXPECT_EQ(0, R->cnt_commands);
	EXPECT_EQ(0, F->irqs[HMIRROR_VEC_CQ]);
	EXPECT_EQ(0, F->irqs[HMIRROR_VEC_CTRL]);
	EXPECT_EQ(0, fk_cq(F, 1, 0)->seqno);
	/* a CTRL doorbell without a new generation is not a reset */
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CTRL);
	EXPECT_EQ(HMIRROR_DEV_ALIVE | HMIRROR_DEV_DMA_OFF, R->dev_status);
	EXPECT_EQ(0, R->dev_reset_ack);
	EXPECT_EQ(0, R->dev_ctrl_ack);
	EXPECT_EQ(0, F->irqs[HMIRROR_VEC_CTRL]);
}

TEST_F(q, reset_handshake)
{
	R->drv_reset_gen = 5;
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CTRL);
	EXPECT_EQ(5, R->dev_reset_ack);
	/* a reset is no control change: bus mastering stays off */
	EXPECT_EQ(HMIRROR_DEV_ALIVE | HMIRROR_DEV_ENABLED | HMIRROR_DEV_DMA_OFF,
		  R->dev_status);
	EXPECT_EQ(0, R->dev_ctrl_ack);
	EXPECT_EQ(1, F->irqs[HMIRROR_VEC_CTRL]);
	EXPECT_EQ(1, R->irq_sent[HMIRROR_VEC_CTRL]);
	EXPECT_EQ(0, F->irqs[HMIRROR_VEC_CQ]);
	/* same generation again: no second reset, no irq */
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CTRL);
	EXPECT_EQ(1, F->irqs[HMIRROR_VEC_CTRL]);
	/* the tick notices a new generation even without a doorbell */
	R->drv_reset_gen = 6;
	hmdev_tick(&F->dev);
	EXPECT_EQ(6, R->dev_reset_ack);
	EXPECT_EQ(2, F->irqs[HMIRROR_VEC_CTRL]);
	EXPECT_EQ(0, F->irq_bad);
}

TEST_F(q, nops_complete_in_order)
{
	unsigned i;

	fk_reset(F);
	for (i = 0; i < 10; i++)
		fk_op(F, 1, HMIRROR_OP_NOP, 100 + i);
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(1, F->irqs[HMIRROR_VEC_CQ]);
	EXPECT_EQ(1, R->irq_sent[HMIRROR_VEC_CQ]);
	EXPECT_EQ(10, QR(1)->sq_head);
	EXPECT_EQ(10, QR(1)->cq_tail);
	EXPECT_EQ(109, QR(1)->completed_seqno);
	EXPECT_EQ(HMIRROR_Q_IDLE, QR(1)->q_status);
	EXPECT_EQ(10, R->cnt_commands);
	EXPECT_EQ(0, R->err_count);
	EXPECT_EQ(1, R->doorbells_seen);	/* CQ; the reset cleared its own */
	for (i = 0; i < 10; i++) {
		struct hmirror_cpl *c = fk_cq(F, 1, i);

		EXPECT_EQ(100 + i, c->seqno);
		EXPECT_EQ(HMIRROR_ST_OK, c->status);
		EXPECT_EQ(HMIRROR_OP_NOP, c->opcode);
		EXPECT_EQ(1, c->queue);
		EXPECT_EQ(0, c->nfaults);
		EXPECT_NE(0, c->t_submit);
		EXPECT_LE(c->t_submit, c->t_done);
		EXPECT_EQ(0, c->t_fault);
		if (i)
			EXPECT_LE(fk_cq(F, 1, i - 1)->t_done, c->t_submit);
	}
	/* untouched queues */
	EXPECT_EQ(0, QR(0)->cq_tail);
	EXPECT_EQ(0, QR(2)->cq_tail);
	/* nothing new: a doorbell raises no irq */
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(1, F->irqs[HMIRROR_VEC_CQ]);
}

TEST_F(q, one_cq_irq_per_batch_across_queues)
{
	unsigned q;

	fk_reset(F);
	for (q = 0; q < 3; q++) {
		fk_op(F, q, HMIRROR_OP_NOP, 10 * q + 1);
		fk_op(F, q, HMIRROR_OP_NOP, 10 * q + 2);
	}
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(1, F->irqs[HMIRROR_VEC_CQ]);
	for (q = 0; q < 3; q++) {
		EXPECT_EQ(2, QR(q)->cq_tail);
		EXPECT_EQ(10 * q + 2, QR(q)->completed_seqno);
		EXPECT_EQ(q, fk_cq(F, q, 1)->queue);
	}
	EXPECT_EQ(6, R->cnt_commands);
	/* the next batch raises the next irq */
	fk_op(F, 2, HMIRROR_OP_NOP, 99);
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(2, F->irqs[HMIRROR_VEC_CQ]);
}

TEST_F(q, fence_and_tlb_inval)
{
	fk_reset(F);
	fk_op(F, 1, HMIRROR_OP_NOP, 1);
	fk_op(F, 1, HMIRROR_OP_FENCE, 2);
	fk_op(F, 1, HMIRROR_OP_NOP, 3);
	fk_op(F, 0, HMIRROR_OP_FENCE, 4);
	fk_op(F, 0, HMIRROR_OP_TLB_INVAL, 5);
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(3, QR(1)->cq_tail);
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 1)->status);
	EXPECT_EQ(HMIRROR_OP_FENCE, fk_cq(F, 1, 1)->opcode);
	EXPECT_EQ(3, fk_cq(F, 1, 2)->seqno);
	EXPECT_EQ(2, QR(0)->cq_tail);
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 0, 0)->status);
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 0, 1)->status);
	EXPECT_EQ(HMIRROR_OP_TLB_INVAL, fk_cq(F, 0, 1)->opcode);
	EXPECT_EQ(0, R->err_count);
	EXPECT_EQ(0, F->irqs[HMIRROR_VEC_CTRL] - 1);	/* only the reset's */
}

struct badcmd {
	unsigned q;
	struct hmirror_cmd cmd;
	uint16_t status;
	uint64_t info;
};

TEST_F(q, bad_commands_complete_with_error)
{
	static const struct badcmd bad[] = {
		{ 1, { .opcode = HMIRROR_NUM_OPS, .seqno = 1 }, HMIRROR_ST_BAD_OPCODE, HMIRROR_NUM_OPS },
		{ 1, { .opcode = 255, .seqno = 2 }, HMIRROR_ST_BAD_OPCODE, 255 },
		{ 1, { .opcode = HMIRROR_OP_NOP, .reserved0 = 9, .seqno = 3 }, HMIRROR_ST_BAD_OPCODE, 9 },
		{ 0, { .opcode = HMIRROR_OP_NOP, .reserved1 = 1ull << 63, .seqno = 4 }, HMIRROR_ST_BAD_OPCODE, 1ull << 63 },
		{ 1, { .opcode = HMIRROR_OP_TLB_INVAL, .seqno = 5 }, HMIRROR_ST_BAD_QUEUE, HMIRROR_OP_TLB_INVAL },
		{ 1, { .opcode = HMIRROR_OP_NOP, .flags = 1, .seqno = 12 }, HMIRROR_ST_BAD_OPCODE, 1 },
		{ 0, { .opcode = HMIRROR_OP_FENCE, .flags = 0x80, .seqno = 13 }, HMIRROR_ST_BAD_OPCODE, 0x80 },
		{ 2, { .opcode = HMIRROR_OP_ATOMIC, .flags = 2, .seqno = 14 }, HMIRROR_ST_BAD_OPCODE, 2 },
		/* reserved fields are checked before the queue */
		{ 0, { .opcode = HMIRROR_OP_COPY, .reserved0 = 3, .seqno = 15 }, HMIRROR_ST_BAD_OPCODE, 3 },
		{ 0, { .opcode = HMIRROR_OP_COPY, .seqno = 6 }, HMIRROR_ST_BAD_QUEUE, HMIRROR_OP_COPY },
		{ 0, { .opcode = HMIRROR_OP_ATOMIC, .seqno = 7 }, HMIRROR_ST_BAD_QUEUE, HMIRROR_OP_ATOMIC },
		/* zeroed data commands: static checks fail before any context */
		{ 2, { .opcode = HMIRROR_OP_COPY, .seqno = 8 }, HMIRROR_ST_BAD_LENGTH, 0 },
		{ 2, { .opcode = HMIRROR_OP_READ, .seqno = 9 }, HMIRROR_ST_BAD_LENGTH, 0 },
		{ 2, { .opcode = HMIRROR_OP_FILL, .seqno = 10 }, HMIRROR_ST_BAD_LENGTH, 0 },
		{ 2, { .opcode = HMIRROR_OP_ATOMIC, .seqno = 11 }, HMIRROR_ST_BAD_ALIGN, 0 },
	};
	unsigned i, ctrl;

	fk_reset(F);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const struct badcmd *b = &bad[i];
		uint32_t idx = F->sq_tail[b->q];
		struct hmirror_cpl *c;

		ctrl = F->irqs[HMIRROR_VEC_CTRL];
		fk_put(F, b->q, &b->cmd);
		fk_op(F, b->q, HMIRROR_OP_NOP, 1000 + i);	/* queue keeps going */
		hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
		c = fk_cq(F, b->q, idx);
		EXPECT_EQ(b->cmd.seqno, c->seqno) TH_LOG("case %u", i);
		EXPECT_EQ(b->status, c->status) TH_LOG("case %u", i);
		EXPECT_EQ(b->cmd.opcode, c->opcode) TH_LOG("case %u", i);
		EXPECT_EQ(b->q, c->queue);
		EXPECT_LE(c->t_submit, c->t_done);
		EXPECT_EQ(i + 1, R->err_count) TH_LOG("case %u", i);
		EXPECT_EQ(b->status, R->err_code) TH_LOG("case %u", i);
		EXPECT_EQ(b->q, R->err_queue);
		EXPECT_EQ(idx, R->err_index);
		EXPECT_EQ(b->info, R->err_info) TH_LOG("case %u", i);
		EXPECT_TRUE(R->dev_status & HMIRROR_DEV_ERROR);
		EXPECT_TRUE(R->dev_status & HMIRROR_DEV_ENABLED);
		EXPECT_EQ(ctrl + 1, F->irqs[HMIRROR_VEC_CTRL]) TH_LOG("case %u", i);
		/* the following NOP ran */
		EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, b->q, idx + 1)->status);
		EXPECT_EQ(1000 + i, QR(b->q)->completed_seqno);
		EXPECT_NE(HMIRROR_Q_ERROR, QR(b->q)->q_status);
	}
}

TEST(cq_full_backpressure)
{
	struct hmdev_config cfg;
	struct fakedev f, *fp = &f;
	unsigned i;

	hmdev_config_default(&cfg);
	cfg.sq_entries = 8;
	cfg.cq_entries = 4;
	ASSERT_EQ(0, fakedev_init(fp, &cfg));
	fk_reset(fp);
	for (i = 1; i <= 6; i++)
		fk_op(fp, 1, HMIRROR_OP_NOP, i);
	hmdev_doorbell(&fp->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(4, fk_qregs(fp, 1)->cq_tail);
	EXPECT_EQ(4, fk_qregs(fp, 1)->sq_head);
	EXPECT_EQ(4, fk_qregs(fp, 1)->completed_seqno);
	EXPECT_EQ(HMIRROR_Q_RUNNING, fk_qregs(fp, 1)->q_status);
	EXPECT_EQ(1, fp->irqs[HMIRROR_VEC_CQ]);
	EXPECT_EQ(0, fk_regs(fp)->err_count);
	/* still full: nothing moves, no irq */
	hmdev_doorbell(&fp->dev, HMIRROR_VEC_CQ);
	hmdev_tick(&fp->dev);
	EXPECT_EQ(4, fk_qregs(fp, 1)->cq_tail);
	EXPECT_EQ(1, fp->irqs[HMIRROR_VEC_CQ]);
	/* the driver consumed two: the tick (no doorbell) resumes */
	fk_set_cq_head(fp, 1, 2);
	hmdev_tick(&fp->dev);
	EXPECT_EQ(6, fk_qregs(fp, 1)->cq_tail);
	EXPECT_EQ(6, fk_qregs(fp, 1)->sq_head);
	EXPECT_EQ(6, fk_qregs(fp, 1)->completed_seqno);
	EXPECT_EQ(HMIRROR_Q_IDLE, fk_qregs(fp, 1)->q_status);
	EXPECT_EQ(5, fk_cq(fp, 1, 4)->seqno);	/* wrapped into slot 0 */
	EXPECT_EQ(6, fk_cq(fp, 1, 5)->seqno);
	EXPECT_EQ(3, fk_cq(fp, 1, 2)->seqno);	/* unconsumed, untouched */
	EXPECT_EQ(2, fp->irqs[HMIRROR_VEC_CQ]);
	EXPECT_EQ(0, fk_regs(fp)->err_count);
	fakedev_free(fp);
}

TEST_F(q, full_sq_ring_is_legal)
{
	unsigned i;

	fk_reset(F);
	for (i = 0; i < 16; i++)	/* sq_tail - sq_head == sq_entries */
		fk_op(F, 2, HMIRROR_OP_NOP, i);
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(16, QR(2)->cq_tail);
	EXPECT_EQ(HMIRROR_Q_IDLE, QR(2)->q_status);
	EXPECT_EQ(0, R->err_count);
}

static void hostile_sq_tail(struct __test_metadata *_metadata,
			    struct fakedev *f, uint32_t bad_tail)
{
	unsigned ctrl;

	fk_reset(f);
	fk_op(f, 1, HMIRROR_OP_NOP, 1);
	hmdev_doorbell(&f->dev, HMIRROR_VEC_CQ);
	ASSERT_EQ(1, fk_qregs(f, 1)->cq_tail);
	ctrl = f->irqs[HMIRROR_VEC_CTRL];

	fk_qregs(f, 1)->sq_tail = bad_tail;
	fk_op(f, 2, HMIRROR_OP_NOP, 2);
	hmdev_doorbell(&f->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(HMIRROR_Q_ERROR, fk_qregs(f, 1)->q_status);
	EXPECT_EQ(1, fk_qregs(f, 1)->sq_head);
	EXPECT_EQ(1, fk_qregs(f, 1)->cq_tail);
	EXPECT_EQ(1, fk_regs(f)->err_count);
	EXPECT_EQ(HMIRROR_ST_BAD_INDEX, fk_regs(f)->err_code);
	EXPECT_EQ(1, fk_regs(f)->err_queue);
	EXPECT_EQ(1, fk_regs(f)->err_index);
	EXPECT_EQ(bad_tail, fk_regs(f)->err_info);
	EXPECT_TRUE(fk_regs(f)->dev_status & HMIRROR_DEV_ERROR);
	EXPECT_EQ(ctrl + 1, f->irqs[HMIRROR_VEC_CTRL]);
	/* the other queue ran in the same batch */
	EXPECT_EQ(1, fk_qregs(f, 2)->cq_tail);
	EXPECT_EQ(2, fk_qregs(f, 2)->completed_seqno);

	/* stopped until reset, even with a sane tail again; no error storm */
	fk_qregs(f, 1)->sq_tail = 2;
	hmdev_doorbell(&f->dev, HMIRROR_VEC_CQ);
	hmdev_tick(&f->dev);
	EXPECT_EQ(1, fk_qregs(f, 1)->cq_tail);
	EXPECT_EQ(1, fk_regs(f)->err_count);
	EXPECT_EQ(ctrl + 1, f->irqs[HMIRROR_VEC_CTRL]);

	/* reset revives it */
	fk_reset(f);
	EXPECT_EQ(HMIRROR_Q_IDLE, fk_qregs(f, 1)->q_status);
	EXPECT_EQ(0, fk_regs(f)->err_count);
	EXPECT_FALSE(fk_regs(f)->dev_status & HMIRROR_DEV_ERROR);
	fk_op(f, 1, HMIRROR_OP_NOP, 3);
	hmdev_doorbell(&f->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(1, fk_qregs(f, 1)->cq_tail);
	EXPECT_EQ(3, fk_cq(f, 1, 0)->seqno);
}

TEST_F(q, hostile_sq_tail_too_far)
{
	hostile_sq_tail(_metadata, F, 1 + 16 + 1);
}

TEST_F(q, hostile_sq_tail_behind_head)
{
	hostile_sq_tail(_metadata, F, 0);	/* head 1: tail - head = ~0 */
}

TEST_F(q, hostile_sq_tail_huge)
{
	hostile_sq_tail(_metadata, F, 0x80000000u);
}

TEST_F(q, hostile_cq_head)
{
	fk_reset(F);
	fk_op(F, 1, HMIRROR_OP_NOP, 1);
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	/* claims to have consumed completions that were never produced */
	fk_set_cq_head(F, 1, 1000);
	fk_op(F, 1, HMIRROR_OP_NOP, 2);
	fk_op(F, 0, HMIRROR_OP_NOP, 3);
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(HMIRROR_Q_ERROR, QR(1)->q_status);
	EXPECT_EQ(1, QR(1)->cq_tail);
	EXPECT_EQ(1, QR(1)->sq_head);
	EXPECT_EQ(HMIRROR_ST_BAD_INDEX, R->err_code);
	EXPECT_EQ(1, R->err_queue);
	EXPECT_EQ(1, R->err_index);
	EXPECT_EQ(1000, R->err_info);
	EXPECT_EQ(2, F->irqs[HMIRROR_VEC_CTRL]);
	EXPECT_EQ(1, QR(0)->cq_tail);	/* queue 0 unaffected */
}

TEST_F(q, reset_clears_everything)
{
	unsigned q;

	fk_reset(F);
	for (q = 0; q < 3; q++)
		fk_op(F, q, HMIRROR_OP_NOP, 50 + q);
	fk_op(F, 1, 200, 9);				/* error */
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	fk_qregs(F, 2)->sq_tail = 999;			/* queue error */
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	ASSERT_EQ(2, R->err_count);
	ASSERT_EQ(HMIRROR_Q_ERROR, QR(2)->q_status);
	ASSERT_NE(0, R->cnt_commands);

	fk_reset(F);
	EXPECT_EQ(F->reset_gen, R->dev_reset_ack);
	EXPECT_EQ(HMIRROR_DEV_ALIVE | HMIRROR_DEV_ENABLED, R->dev_status);
	EXPECT_EQ(0, R->err_count);
	EXPECT_EQ(0, R->err_code);
	EXPECT_EQ(0, R->err_queue);
	EXPECT_EQ(0, R->err_index);
	EXPECT_EQ(0, R->err_info);
	EXPECT_EQ(0, R->cnt_commands);
	EXPECT_EQ(0, R->irq_sent[HMIRROR_VEC_CQ]);
	EXPECT_EQ(1, R->irq_sent[HMIRROR_VEC_CTRL]);	/* the reset's own */
	EXPECT_EQ(0, R->doorbells_seen);		/* counted, then cleared */
	for (q = 0; q < 3; q++) {
		EXPECT_EQ(0, QR(q)->sq_head);
		EXPECT_EQ(0, QR(q)->cq_tail);
		EXPECT_EQ(0, QR(q)->parked);
		EXPECT_EQ(0, QR(q)->progress);
		EXPECT_EQ(0, QR(q)->completed_seqno);
		EXPECT_EQ(HMIRROR_Q_IDLE, QR(q)->q_status);
	}
	/* restarts from index 0 */
	fk_op(F, 1, HMIRROR_OP_NOP, 77);
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(77, fk_cq(F, 1, 0)->seqno);
	EXPECT_EQ(1, QR(1)->cq_tail);
}

TEST_F(q, index_wraparound)
{
	const uint32_t start = 0xfffffffdu;
	unsigned i;

	fk_reset(F);
	/* as if 2^32 - 3 commands had run: device and driver agree */
	F->dev.q[1].sq_head = F->dev.q[1].cq_tail = start;
	F->sq_tail[1] = start;
	QR(1)->sq_tail = start;
	fk_set_cq_head(F, 1, start);
	for (i = 0; i < 6; i++)
		fk_op(F, 1, HMIRROR_OP_NOP, i + 1);
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(start + 6, QR(1)->cq_tail);
	EXPECT_EQ(start + 6, QR(1)->sq_head);
	EXPECT_EQ(6, QR(1)->completed_seqno);
	EXPECT_EQ(0, R->err_count);
	for (i = 0; i < 6; i++)
		EXPECT_EQ(i + 1, fk_cq(F, 1, start + i)->seqno);
}

TEST_F(q, scribbled_header_is_ignored)
{
	struct hmirror_header *h = fk_hdr(F);

	/* the guest may write anything over the header */
	h->sq_entries = 0x40000000;
	h->cq_entries = 0x40000000;
	h->rings_off = 0xfffff000;
	h->num_queues = 200;
	h->bar_size = 0;
	fk_reset(F);
	fk_op(F, 2, HMIRROR_OP_NOP, 42);
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(1, QR(2)->cq_tail);
	EXPECT_EQ(42, fk_cq(F, 2, 0)->seqno);
	/* bogus doorbell vectors are counted and ignored */
	hmdev_doorbell(&F->dev, 77);
	hmdev_doorbell(&F->dev, ~0u);
	EXPECT_EQ(0, F->irq_bad);
	EXPECT_EQ(3, R->doorbells_seen);
}

/*
 * drv_ctrl is acted on only with a new drv_ctrl_gen, and ENABLE itself is
 * informational: clearing it (driver unload) stops nothing.
 */
TEST_F(q, drv_ctrl_needs_a_new_generation)
{
	uint32_t ctrl;

	fk_reset(F);
	EXPECT_EQ(F->ctrl_gen, R->dev_ctrl_ack);
	ctrl = F->irqs[HMIRROR_VEC_CTRL];
	fk_op(F, 1, HMIRROR_OP_NOP, 1);
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(1, QR(1)->cq_tail);
	R->drv_ctrl = 0;			/* no generation bump */
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CTRL);
	hmdev_tick(&F->dev);
	EXPECT_EQ(ctrl, F->irqs[HMIRROR_VEC_CTRL]);
	EXPECT_EQ(HMIRROR_DEV_ALIVE | HMIRROR_DEV_ENABLED, R->dev_status);
	EXPECT_EQ(F->reset_gen, R->dev_reset_ack);
	EXPECT_EQ(F->ctrl_gen, R->dev_ctrl_ack);
	/* ENABLE clear, BUS_MASTER set, acknowledged: everything runs */
	fk_ctrl(F, HMIRROR_DRV_BUS_MASTER);
	EXPECT_EQ(F->ctrl_gen, R->dev_ctrl_ack);
	EXPECT_EQ(ctrl + 1, F->irqs[HMIRROR_VEC_CTRL]);
	fk_op(F, 1, HMIRROR_OP_NOP, 2);
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(2, QR(1)->cq_tail);
	EXPECT_EQ(HMIRROR_DEV_ALIVE | HMIRROR_DEV_ENABLED, R->dev_status);
}

TEST_F(q, heartbeat)
{
	uint64_t t0;

	EXPECT_EQ(0, R->heartbeat);
	hmdev_tick(&F->dev);
	EXPECT_EQ(1, R->heartbeat);
	t0 = R->dev_time_ns;
	EXPECT_NE(0, t0);
	hmdev_tick(&F->dev);
	EXPECT_EQ(2, R->heartbeat);
	EXPECT_LE(t0, R->dev_time_ns);
	/* reset does not restart the heartbeat */
	fk_reset(F);
	hmdev_tick(&F->dev);
	EXPECT_EQ(3, R->heartbeat);
	EXPECT_EQ(0, F->irqs[HMIRROR_VEC_CQ]);
}

TEST_F(q, shutdown_sets_gone)
{
	fk_reset(F);
	fk_op(F, 1, 250, 1);
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	ASSERT_EQ(2, F->irqs[HMIRROR_VEC_CTRL]);
	hmdev_shutdown(&F->dev);
	EXPECT_TRUE(R->dev_status & HMIRROR_DEV_GONE);
	EXPECT_FALSE(R->dev_status & HMIRROR_DEV_ALIVE);
	EXPECT_FALSE(R->dev_status & HMIRROR_DEV_ENABLED);
	EXPECT_TRUE(R->dev_status & HMIRROR_DEV_ERROR);	/* err_* still valid */
	EXPECT_EQ(3, F->irqs[HMIRROR_VEC_CTRL]);
	/* nothing runs any more */
	fk_op(F, 1, HMIRROR_OP_NOP, 2);
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	hmdev_tick(&F->dev);
	fk_reset(F);
	EXPECT_EQ(1, QR(1)->cq_tail);
	EXPECT_TRUE(R->dev_status & HMIRROR_DEV_GONE);
	EXPECT_EQ(3, F->irqs[HMIRROR_VEC_CTRL]);
}

TEST_HARNESS_MAIN
