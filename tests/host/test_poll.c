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
/* test_poll's polls yield instead of sleeping: they race spin windows */
#define WAIT_FOR(cond)	FK_POLL(cond, sched_yield())

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

/*
 * A heartbeat tick kicks every engine to look at its queue (a doorbell may
 * be lost); finding nothing there, an engine goes back to sleep without
 * spinning, or an idle device would burn CPU at every tick.  A doorbell
 * (activity) does make it stay awake.
 */
static void count_passes(void *opaque, unsigned q, int phase)
{
	if (q == 1 && phase == HMDEV_HOOK_PASS)
		__atomic_add_fetch((uint64_t *)opaque, 1, __ATOMIC_RELAXED);
}

TEST_F(p, tick_finding_nothing_does_not_spin)
{
	struct fakedev *f = &self->f;
	uint64_t before, passes = 0, p0;

	/* Set under run_mu: the engine reads the hook inside its pass. */
	pthread_mutex_lock(&f->dev.eng[1].run_mu);
	f->dev.hook_opaque = &passes;
	f->dev.hook = count_passes;
	pthread_mutex_unlock(&f->dev.eng[1].run_mu);

	fk_op(f, 1, HMIRROR_OP_NOP, ++f->seq[1]);
	hmdev_doorbell(&f->dev, HMIRROR_VEC_CQ);
	ASSERT_TRUE(WAIT_FOR(fk_cq_tail(f, 1) == 1));
	ASSERT_TRUE(WAIT_FOR(dev_polling(f, 1) == 0));
	ASSERT_GE(spins(f, 1), 1);
	for (int i = 0; i < 20; i++) {
		before = spins(f, 1);
		p0 = __atomic_load_n(&passes, __ATOMIC_RELAXED);
		hmdev_tick(&f->dev);
		/* The tick did make the engine look at its queue. */
		ASSERT_TRUE(WAIT_FOR(__atomic_load_n(&passes, __ATOMIC_RELAXED) > p0));
		/* A spin would begin right after the pass: give it time. */
		nanosleep(&(struct timespec){ .tv_nsec = 2000000 }, NULL);
		ASSERT_TRUE(WAIT_FOR(dev_polling(f, 1) == 0));
		ASSERT_EQ(before, spins(f, 1)) TH_LOG("tick %d", i);
	}
	before = spins(f, 1);
	hmdev_doorbell(&f->dev, HMIRROR_VEC_CQ);
	ASSERT_TRUE(WAIT_FOR(spins(f, 1) > before));
	pthread_mutex_lock(&f->dev.eng[1].run_mu);
	f->dev.hook = NULL;
	pthread_mutex_unlock(&f->dev.eng[1].run_mu);
}

/*
 * The management queue (TLB_INVAL...) has no engine: the event loop polls
 * it after a doorbell with hmdev_mgmt_poll(), under queue 0's dev_polling.
 * A submission made while the flag is up is run without a doorbell, and
 * one made just as it goes down is seen by the last look.
 */
TEST_F(p, management_queue_polled_without_doorbell)
{
	struct fakedev *f = &self->f;

	ASSERT_EQ(1000u * 1000, hmdev_mgmt_poll_ns(&f->dev));
	ASSERT_FALSE(hmdev_mgmt_poll(&f->dev));		/* nothing yet */
	ASSERT_FALSE(hmdev_mgmt_polling(&f->dev, true));
	ASSERT_EQ(1, dev_polling(f, 0));
	fk_op(f, 0, HMIRROR_OP_NOP, ++f->seq[0]);
	ASSERT_TRUE(hmdev_mgmt_poll(&f->dev));
	ASSERT_EQ(1, fk_cq_tail(f, 0));
	ASSERT_FALSE(hmdev_mgmt_poll(&f->dev));		/* done: no spin on */
	fk_op(f, 0, HMIRROR_OP_NOP, ++f->seq[0]);
	ASSERT_TRUE(hmdev_mgmt_polling(&f->dev, false));	/* last look */
	ASSERT_EQ(0, dev_polling(f, 0));
	ASSERT_TRUE(hmdev_mgmt_poll(&f->dev));
	ASSERT_EQ(2, fk_cq_tail(f, 0));
}

/*
 * The event loop's window over queue 0: woken by a doorbell, it runs a
 * submission made without a doorbell at its next turn, and the look when
 * the window closes (dev_polling cleared first) runs one left behind.
 */
TEST_F(p, management_queue_window_opens_and_closes)
{
	struct fakedev *f = &self->f;

	ASSERT_FALSE(hmdev_mgmt_awake(&f->dev));		/* asleep at first */
	hmdev_mgmt_wake(&f->dev);
	ASSERT_TRUE(hmdev_mgmt_awake(&f->dev));
	ASSERT_EQ(1, dev_polling(f, 0));
	fk_op(f, 0, HMIRROR_OP_NOP, ++f->seq[0]);
	hmdev_mgmt_turn(&f->dev);
	ASSERT_EQ(1, fk_cq_tail(f, 0));
	/* Left for the closing look: no turn runs it. */
	fk_op(f, 0, HMIRROR_OP_NOP, ++f->seq[0]);
	ASSERT_TRUE(WAIT_FOR(!hmdev_mgmt_awake(&f->dev)));
	ASSERT_EQ(0, dev_polling(f, 0));
	ASSERT_EQ(2, fk_cq_tail(f, 0));
	ASSERT_FALSE(hmdev_mgmt_awake(&f->dev));
}

/*
 * A management queue that cannot move must not look like work, or the
 * event loop would spin on it without end: a failed queue (an impossible
 * sq_tail), and one whose CQ is full of unread completions.
 */
TEST_F(p, stuck_management_queue_is_no_work)
{
	struct fakedev *f = &self->f;
	uint32_t n = f->dev.hdr.cq_entries;

	/* CQ full: n NOPs completed, none read, one more waiting. */
	for (uint32_t i = 0; i < n; i++)
		fk_op(f, 0, HMIRROR_OP_NOP, ++f->seq[0]);
	ASSERT_TRUE(hmdev_mgmt_poll(&f->dev));
	ASSERT_EQ(n, fk_cq_tail(f, 0));
	fk_op(f, 0, HMIRROR_OP_NOP, ++f->seq[0]);
	for (int i = 0; i < 10; i++) {
		ASSERT_FALSE(hmdev_mgmt_poll(&f->dev)) TH_LOG("CQ full, turn %d", i);
	}
	/* Read them: it moves again. */
	fk_set_cq_head(f, 0, fk_cq_tail(f, 0));
	ASSERT_TRUE(hmdev_mgmt_poll(&f->dev));
	ASSERT_EQ(n + 1, fk_cq_tail(f, 0));
	fk_set_cq_head(f, 0, fk_cq_tail(f, 0));
	/* A tail the ring cannot hold fails the queue. */
	__atomic_store_n(&fk_qregs(f, 0)->sq_tail, f->sq_tail[0] + 5 * n,
			 __ATOMIC_RELEASE);
	hmdev_mgmt_poll(&f->dev);
	ASSERT_EQ(HMIRROR_Q_ERROR, fk_qregs(f, 0)->q_status);
	for (int i = 0; i < 10; i++) {
		ASSERT_FALSE(hmdev_mgmt_poll(&f->dev)) TH_LOG("failed, turn %d", i);
	}
}

static uint64_t learned_us(struct fakedev *f, unsigned q)
{
	return __atomic_load_n(&f->dev.eng[q].learned_ns, __ATOMIC_RELAXED) / 1000;
}

/*
 * The engines' configuration, changed under both run locks: they read it
 * inside their passes.
 */
static void set_poll_config(struct fakedev *f, bool adapt, unsigned max_us)
{
	pthread_mutex_lock(&f->dev.eng[1].run_mu);
	pthread_mutex_lock(&f->dev.eng[2].run_mu);
	f->dev.cfg.poll_adapt = adapt;
	f->dev.cfg.poll_max_us = max_us;
	pthread_mutex_unlock(&f->dev.eng[2].run_mu);
	pthread_mutex_unlock(&f->dev.eng[1].run_mu);
}

/*
 * Wait for engine 1 to run out of its spin and sleep, then give it a NOP
 * @delay_us later: with no delay the command came just after its window,
 * the case the engine learns from.
 */
static int late_nop(struct __test_metadata *_metadata, struct fakedev *f,
		    unsigned delay_us)
{
	uint32_t before = fk_cq_tail(f, 1);

	if (!WAIT_FOR(dev_polling(f, 1) == 0))
		return -1;
	if (delay_us)
		fk_pause_us(delay_us);
	fk_op(f, 1, HMIRROR_OP_NOP, ++f->seq[1]);
	hmdev_doorbell(&f->dev, HMIRROR_VEC_CQ);
	if (!WAIT_FOR(fk_cq_tail(f, 1) == before + 1))
		return -1;
	fk_set_cq_head(f, 1, fk_cq_tail(f, 1));
	return 0;
}

/*
 * Adaptive polling: a command that comes just after an engine's spin ran
 * out makes it learn a longer window (at least the driver's, at most
 * poll_max_us); a window that runs out halves it; a doorbell with nothing
 * behind it teaches nothing.  Each late command comes within microseconds
 * here, but a test thread preempted on a loaded host may come milliseconds
 * later: the test allows a second for it, so it does not time the host.
 */
TEST_F(p, engine_learns_a_longer_window)
{
	const unsigned max_us = 1000000;
	struct fakedev *f = &self->f;
	uint64_t l0, before;
	int i;

	set_poll_config(f, true, max_us);
	__atomic_store_n(&fk_regs(f)->drv_poll_us, 100, __ATOMIC_RELEASE);
	/* A first spin to be late for. */
	ASSERT_EQ(0, late_nop(_metadata, f, 0));
	for (i = 0; i < 5 && learned_us(f, 1) <= 100; i++)
		ASSERT_EQ(0, late_nop(_metadata, f, 0));
	ASSERT_TRUE(WAIT_FOR(dev_polling(f, 1) == 0));
	l0 = learned_us(f, 1);
	TH_LOG("learned %llu us after %d late commands", (unsigned long long)l0, i + 1);
	/* The spin after the command ran out: half of what it learned. */
	ASSERT_LT(50, l0);
	ASSERT_GE(max_us / 2, l0);
	/* A doorbell with no command: one more spin runs out, half again. */
	before = spins(f, 1);
	hmdev_doorbell(&f->dev, HMIRROR_VEC_CQ);
	ASSERT_TRUE(WAIT_FOR(spins(f, 1) > before));
	ASSERT_TRUE(WAIT_FOR(dev_polling(f, 1) == 0));
	ASSERT_EQ(l0 / 2, learned_us(f, 1)) TH_LOG("from %llu us",
						    (unsigned long long)l0);
}

/* Without --poll-adapt an engine spins for drv_poll_us and learns nothing. */
TEST_F(p, no_adaptation_when_turned_off)
{
	struct fakedev *f = &self->f;

	set_poll_config(f, false, 1000000);
	__atomic_store_n(&fk_regs(f)->drv_poll_us, 100, __ATOMIC_RELEASE);
	for (int i = 0; i < 10; i++)
		ASSERT_EQ(0, late_nop(_metadata, f, 0));
	ASSERT_TRUE(WAIT_FOR(dev_polling(f, 1) == 0));
	ASSERT_EQ(0, learned_us(f, 1));
}

/*
 * poll_max_us caps every window: a command later than that after the spin
 * began teaches nothing (500 us late: under the default 1000 us, over
 * the 200 us set here), and the driver's drv_poll_us is cut to it.
 */
TEST_F(p, command_later_than_the_longest_spin_teaches_nothing)
{
	struct fakedev *f = &self->f;

	set_poll_config(f, true, 200);
	__atomic_store_n(&fk_regs(f)->drv_poll_us, 100, __ATOMIC_RELEASE);
	ASSERT_EQ(100u * 1000, hmdev_mgmt_poll_ns(&f->dev));
	for (int i = 0; i < 5; i++)
		ASSERT_EQ(0, late_nop(_metadata, f, 500));
	ASSERT_TRUE(WAIT_FOR(dev_polling(f, 1) == 0));
	ASSERT_EQ(0, learned_us(f, 1));
	__atomic_store_n(&fk_regs(f)->drv_poll_us, 1000, __ATOMIC_RELEASE);
	ASSERT_EQ(200u * 1000, hmdev_mgmt_poll_ns(&f->dev));
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
