// SPDX-License-Identifier: MIT
/*
 * The 2.1 polling hints (FEAT_POLL).  An engine stays awake for the
 * driver's drv_poll_us after it runs out of work and says so in
 * dev_polling: a submission or an answer made while dev_polling reads 1
 * (after the ring write, as the driver's protocol has it) needs no
 * doorbell.  An engine with nothing to do goes back to sleep and clears
 * dev_polling.  While the driver's drv_polling is non-zero the device
 * raises no completion or fault interrupt for that queue.
 */
#include <sched.h>
#include <stdio.h>
#include <time.h>

#include "hmtest.h"
#include "kselftest_harness.h"

#define VA0	0x00007f1234560000ull
#define CTX	1
#define TMO_MS	20000

static uint64_t now_ms(void)
{
	return hmdev_now_ns() / 1000000;
}

/* Poll @cond (evaluated once per round) until true or TMO_MS. */
#define WAIT_FOR(cond) ({					\
	uint64_t __end = now_ms() + TMO_MS;			\
	int __ok;						\
	while (!(__ok = !!(cond)) && now_ms() < __end)		\
		sched_yield();					\
	__ok;							\
})

static uint32_t dev_polling(struct fakedev *f, unsigned q)
{
	return __atomic_load_n(&fk_qregs(f, q)->dev_polling, __ATOMIC_SEQ_CST);
}

FIXTURE(p) {
	struct fakedev f;
};

FIXTURE_SETUP(p)
{
	struct hmdev_config cfg;

	hmdev_config_default(&cfg);
	cfg.sq_entries = 64;
	cfg.cq_entries = 64;
	ASSERT_EQ(0, fakedev_init_xlate(&self->f, &cfg));
	fk_reset(&self->f);
	/* The longest the device allows: the test races it less. */
	__atomic_store_n(&fk_regs(&self->f)->drv_poll_us, 1000, __ATOMIC_RELEASE);
	ASSERT_EQ(0, hmdev_start(&self->f.dev));
}

FIXTURE_TEARDOWN(p)
{
	fakedev_free(&self->f);
}

/*
 * Submissions that find dev_polling set after their ring write complete
 * without a doorbell (no tick runs in this test: nothing else would run
 * them); the others ring, as the driver does.
 */
TEST_F(p, awake_engine_needs_no_doorbell)
{
	struct fakedev *f = &self->f;
	unsigned rounds, without = 0;

	for (rounds = 0; rounds < 200 && without < 20; rounds++) {
		uint32_t before = fk_cq_tail(f, 1);

		fk_op(f, 1, HMIRROR_OP_NOP, ++f->seq[1]);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (dev_polling(f, 1))
			without++;
		else
			hmdev_doorbell(&f->dev, HMIRROR_VEC_CQ);
		ASSERT_TRUE(WAIT_FOR(fk_cq_tail(f, 1) == before + 1))
			TH_LOG("round %u: NOP not completed (%s doorbell)", rounds,
			       dev_polling(f, 1) ? "without" : "with");
		fk_set_cq_head(f, 1, fk_cq_tail(f, 1));
	}
	TH_LOG("%u of %u NOPs needed no doorbell", without, rounds);
	ASSERT_GE(without, 1);
}

/* With nothing to do, an engine stops spinning and clears dev_polling. */
TEST_F(p, idle_engine_sleeps)
{
	struct fakedev *f = &self->f;

	fk_op(f, 1, HMIRROR_OP_NOP, ++f->seq[1]);
	hmdev_doorbell(&f->dev, HMIRROR_VEC_CQ);
	ASSERT_TRUE(WAIT_FOR(fk_cq_tail(f, 1) == 1));
	ASSERT_TRUE(WAIT_FOR(dev_polling(f, 1) == 0));
	/* And stays asleep: nothing came. */
	for (int i = 0; i < 100; i++) {
		sched_yield();
		ASSERT_EQ(0, dev_polling(f, 1));
	}
}

static uint64_t spins(struct fakedev *f, unsigned q)
{
	return __atomic_load_n(&f->dev.eng[q].spins, __ATOMIC_RELAXED);
}

static bool kick_pending(struct fakedev *f, unsigned q)
{
	return __atomic_load_n(&f->dev.eng[q].kick, __ATOMIC_ACQUIRE);
}

/*
 * A heartbeat tick kicks every engine to look at its queue (a doorbell may
 * be lost); finding nothing there, an engine goes back to sleep without
 * spinning, or an idle device would burn CPU at every tick.  A doorbell
 * (activity) does make it stay awake.
 */
TEST_F(p, tick_finding_nothing_does_not_spin)
{
	struct fakedev *f = &self->f;
	uint64_t before;

	fk_op(f, 1, HMIRROR_OP_NOP, ++f->seq[1]);
	hmdev_doorbell(&f->dev, HMIRROR_VEC_CQ);
	ASSERT_TRUE(WAIT_FOR(fk_cq_tail(f, 1) == 1));
	ASSERT_TRUE(WAIT_FOR(dev_polling(f, 1) == 0));
	ASSERT_GE(spins(f, 1), 1);
	for (int i = 0; i < 20; i++) {
		before = spins(f, 1);
		hmdev_tick(&f->dev);
		ASSERT_TRUE(WAIT_FOR(!kick_pending(f, 1)));
		/* A spin would begin right after the pass: give it time. */
		nanosleep(&(struct timespec){ .tv_nsec = 2000000 }, NULL);
		ASSERT_TRUE(WAIT_FOR(dev_polling(f, 1) == 0));
		ASSERT_EQ(before, spins(f, 1)) TH_LOG("tick %d", i);
	}
	before = spins(f, 1);
	hmdev_doorbell(&f->dev, HMIRROR_VEC_CQ);
	ASSERT_TRUE(WAIT_FOR(spins(f, 1) > before));
}

/* Without drv_poll_us an engine never spins. */
TEST_F(p, no_polling_unless_the_driver_asks)
{
	struct fakedev *f = &self->f;

	__atomic_store_n(&fk_regs(f)->drv_poll_us, 0, __ATOMIC_RELEASE);
	fk_op(f, 1, HMIRROR_OP_NOP, ++f->seq[1]);
	hmdev_doorbell(&f->dev, HMIRROR_VEC_CQ);
	ASSERT_TRUE(WAIT_FOR(fk_cq_tail(f, 1) == 1));
	ASSERT_TRUE(WAIT_FOR(dev_polling(f, 1) == 0));
	/* A submission now, without a doorbell, stays unseen. */
	fk_op(f, 1, HMIRROR_OP_NOP, ++f->seq[1]);
	for (int i = 0; i < 1000; i++)
		sched_yield();
	ASSERT_EQ(1, fk_cq_tail(f, 1));
	hmdev_doorbell(&f->dev, HMIRROR_VEC_CQ);
	ASSERT_TRUE(WAIT_FOR(fk_cq_tail(f, 1) == 2));
}

/* An answer for a parked fault reaches an awake engine without a doorbell. */
TEST_F(p, awake_engine_takes_answers_without_doorbell)
{
	struct fakedev *f = &self->f;
	uint64_t root = fk_frame(f);
	struct hmirror_fault rec;
	unsigned tries;

	fk_ctx_set(f, CTX, root);
	for (tries = 0; tries < 50; tries++) {
		/* A fresh page each round: the last one is in the TLB. */
		uint64_t va = VA0 + (uint64_t)tries * 4096;
		struct hmirror_cmd c = {
			.opcode = HMIRROR_OP_READ, .ctx = CTX, .src = va, .len = 8,
		};
		uint32_t before = fk_cq_tail(f, 1);

		fk_submit(f, 1, c);
		hmdev_doorbell(&f->dev, HMIRROR_VEC_CQ);
		ASSERT_TRUE(WAIT_FOR(fk_next_fault(f, &rec)))
			TH_LOG("no fault record; q_status %u parked %u",
			       fk_qregs(f, 1)->q_status, fk_qregs(f, 1)->parked);
		fk_map_new(f, root, va, 1, 0);
		fk_answer_nodb(f, 1, rec.fault_id, HMIRROR_FAULT_REPLAY);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (!dev_polling(f, 1)) {
			hmdev_doorbell(&f->dev, HMIRROR_VEC_FAULT);
			ASSERT_TRUE(WAIT_FOR(fk_cq_tail(f, 1) == before + 1));
			fk_set_cq_head(f, 1, fk_cq_tail(f, 1));
			continue;
		}
		ASSERT_TRUE(WAIT_FOR(fk_cq_tail(f, 1) == before + 1));
		EXPECT_EQ(HMIRROR_ST_OK, fk_cq(f, 1, before)->status);
		break;
	}
	ASSERT_LT(tries, 50) TH_LOG("the engine was never awake after a fault");
}

/* Inline mode: the device's interrupts, with and without drv_polling. */
FIXTURE(q) {
	struct fakedev f;
};

FIXTURE_SETUP(q)
{
	struct hmdev_config cfg;

	hmdev_config_default(&cfg);
	ASSERT_EQ(0, fakedev_init_xlate(&self->f, &cfg));
	fk_reset(&self->f);
}

FIXTURE_TEARDOWN(q)
{
	fakedev_free(&self->f);
}

TEST_F(q, no_interrupt_while_the_driver_polls)
{
	struct fakedev *f = &self->f;
	uint64_t root = fk_frame(f);
	struct hmirror_cmd c = {
		.opcode = HMIRROR_OP_READ, .ctx = CTX, .src = VA0, .len = 8,
	};
	struct hmirror_fault rec;
	unsigned cq, fault;

	fk_ctx_set(f, CTX, root);
	fk_qregs(f, 1)->drv_polling = 1;
	cq = fk_irqs(f, HMIRROR_VEC_CQ);
	fk_op(f, 1, HMIRROR_OP_NOP, ++f->seq[1]);
	hmdev_doorbell(&f->dev, HMIRROR_VEC_CQ);
	ASSERT_EQ(1, fk_cq_tail(f, 1));
	EXPECT_EQ(cq, fk_irqs(f, HMIRROR_VEC_CQ));
	fault = fk_irqs(f, HMIRROR_VEC_FAULT);
	fk_submit(f, 1, c);
	hmdev_doorbell(&f->dev, HMIRROR_VEC_CQ);
	ASSERT_EQ(1, fk_next_fault(f, &rec));
	EXPECT_EQ(fault, fk_irqs(f, HMIRROR_VEC_FAULT));
	fk_answer(f, 1, rec.fault_id, HMIRROR_FAULT_CANCEL);
	ASSERT_EQ(2, fk_cq_tail(f, 1));
	EXPECT_EQ(cq, fk_irqs(f, HMIRROR_VEC_CQ));

	/* Nobody polls: both interrupts again. */
	fk_qregs(f, 1)->drv_polling = 0;
	fk_submit(f, 1, c);
	hmdev_doorbell(&f->dev, HMIRROR_VEC_CQ);
	ASSERT_EQ(1, fk_next_fault(f, &rec));
	EXPECT_EQ(fault + 1, fk_irqs(f, HMIRROR_VEC_FAULT));
	fk_answer(f, 1, rec.fault_id, HMIRROR_FAULT_CANCEL);
	ASSERT_EQ(3, fk_cq_tail(f, 1));
	EXPECT_EQ(cq + 1, fk_irqs(f, HMIRROR_VEC_CQ));
}

TEST_HARNESS_MAIN
