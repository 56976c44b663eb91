// SPDX-License-Identifier: MIT
/*
 * TLB shootdown through shared memory (FEAT_SHOOTDOWN), the device's side:
 * a published request is applied by the next access before it translates,
 * to its context and range only; requests the device missed (more than
 * HMIRROR_SD_SLOTS at once, a slot being rewritten) drop the whole TLB; a
 * hostile shootdown block is survived; a reset applies everything; and,
 * threaded, an access in progress stays announced busy with the epoch it
 * began with until it ends, which is what the driver waits for.  The
 * threaded invalidation oracle over shootdowns is in test_threads.c.
 */
#include <stdio.h>
#include <time.h>

#include "hmtest.h"
#include "kselftest_harness.h"

#define VA0	0x00007f1234560000ull
#define FAR	0x00007f0000000000ull	/* mapped nowhere */
#define CTX	1

FIXTURE(sd) {
	struct fakedev f;
	uint64_t root;
};

FIXTURE_SETUP(sd)
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
}

FIXTURE_TEARDOWN(sd)
{
	fakedev_free(&self->f);
}

#define F	(&self->f)
#define R	(fk_regs(F))
#define SD	(fk_sd(F))
#define ROOT	(self->root)

/* Inline: run one command on @q to its completion status (-1: none). */
static int run(struct fakedev *f, unsigned q, uint8_t op, uint64_t va,
	       uint64_t len)
{
	struct hmirror_cmd c = { .opcode = op, .ctx = CTX, .src = va,
				 .dst = va, .len = len };
	uint32_t idx = fk_submit(f, q, c);

	hmdev_doorbell(&f->dev, HMIRROR_VEC_CQ);
	fk_set_cq_head(f, q, fk_cq_tail(f, q));
	return fk_cq_tail(f, q) > idx ? fk_cq(f, q, idx)->status : -1;
}

static uint64_t seen(struct fakedev *f, unsigned q)
{
	return __atomic_load_n(&fk_sd(f)->dev_seen[q], __ATOMIC_ACQUIRE);
}

/* Fill the TLB with the 4 pages at VA0. */
static void warm(struct __test_metadata *_metadata, struct fakedev *f)
{
	ASSERT_EQ(HMIRROR_ST_OK, run(f, 1, HMIRROR_OP_READ, VA0, 4 * FK_PG));
	ASSERT_EQ(4, hmdev_tlb_count(&f->dev, CTX));
}

TEST_F(sd, request_is_applied_by_the_next_access_to_its_range_only)
{
	uint64_t e, misses;

	fk_map_new(F, ROOT, VA0, 4, 0);
	warm(_metadata, F);
	EXPECT_EQ(0, seen(F, 1));

	e = fk_sd_publish(F, CTX, VA0 + FK_PG, VA0 + 2 * FK_PG);
	EXPECT_EQ(1, e);
	/* nothing happens until an access */
	EXPECT_EQ(4, hmdev_tlb_count(&F->dev, CTX));
	EXPECT_EQ(0, R->cnt_shootdowns);

	misses = R->cnt_tlb_misses;
	ASSERT_EQ(HMIRROR_ST_OK, run(F, 2, HMIRROR_OP_READ, VA0, 8));
	EXPECT_EQ(misses, R->cnt_tlb_misses);	/* page 0 still cached */
	EXPECT_EQ(3, hmdev_tlb_count(&F->dev, CTX));
	EXPECT_EQ(1, R->cnt_shootdowns);
	EXPECT_EQ(e, seen(F, 2));		/* applied, not busy */
	EXPECT_EQ(0, seen(F, 1));		/* engine 1 did nothing since */

	/* page 1 walks again; pages 2 and 3 still hit */
	ASSERT_EQ(HMIRROR_ST_OK, run(F, 1, HMIRROR_OP_READ, VA0 + FK_PG, 3 * FK_PG));
	EXPECT_EQ(misses + 1, R->cnt_tlb_misses);
	EXPECT_EQ(e, seen(F, 1));

	/* another context's request leaves this one's entries alone */
	fk_sd_publish(F, CTX + 1, VA0, VA0 + 4 * FK_PG);
	ASSERT_EQ(HMIRROR_ST_OK, run(F, 1, HMIRROR_OP_READ, VA0, 8));
	EXPECT_EQ(4, hmdev_tlb_count(&F->dev, CTX));
	EXPECT_EQ(2, R->cnt_shootdowns);
	EXPECT_EQ(0, R->cnt_tlb_invals);	/* no command was involved */
	EXPECT_EQ(0, R->err_count);
}

TEST_F(sd, missed_requests_drop_the_whole_tlb)
{
	unsigned i;

	fk_map_new(F, ROOT, VA0, 4, 0);
	warm(_metadata, F);
	/* one more than the slots: the first was overwritten unread */
	for (i = 0; i <= HMIRROR_SD_SLOTS; i++)
		fk_sd_publish(F, CTX, FAR, FAR + FK_PG);
	ASSERT_EQ(HMIRROR_ST_OK, run(F, 1, HMIRROR_OP_READ, VA0, 8));
	EXPECT_EQ(1, hmdev_tlb_count(&F->dev, CTX));	/* only what it walked */
	EXPECT_EQ(HMIRROR_SD_SLOTS + 1, R->cnt_shootdowns);

	/* exactly the slots: every one is read, nothing else dropped */
	warm(_metadata, F);
	for (i = 0; i < HMIRROR_SD_SLOTS; i++)
		fk_sd_publish(F, CTX, FAR, FAR + FK_PG);
	ASSERT_EQ(HMIRROR_ST_OK, run(F, 1, HMIRROR_OP_READ, VA0, 8));
	EXPECT_EQ(4, hmdev_tlb_count(&F->dev, CTX));

	/* a slot caught being rewritten (epoch 0) cannot be trusted */
	fk_sd_publish(F, CTX, FAR, FAR + FK_PG);
	__atomic_store_n(&SD->req[F->sd_epoch % HMIRROR_SD_SLOTS].epoch, 0,
			 __ATOMIC_RELEASE);
	ASSERT_EQ(HMIRROR_ST_OK, run(F, 1, HMIRROR_OP_READ, VA0, 8));
	EXPECT_EQ(1, hmdev_tlb_count(&F->dev, CTX));
	EXPECT_EQ(F->sd_epoch, seen(F, 1));
	EXPECT_EQ(0, R->err_count);
}

TEST_F(sd, hostile_shootdown_block_is_survived)
{
	struct hmirror_sd_req *r;
	uint64_t done, misses;

	fk_map_new(F, ROOT, VA0, 4, 1);
	warm(_metadata, F);
	fk_sd_publish(F, CTX, FAR, FAR + FK_PG);
	ASSERT_EQ(HMIRROR_ST_OK, run(F, 1, HMIRROR_OP_READ, VA0, 8));
	done = F->dev.sd_done;
	EXPECT_EQ(1, done);

	/* an epoch going backwards a little: treated as already applied */
	__atomic_store_n(&SD->drv_epoch, 0, __ATOMIC_SEQ_CST);
	ASSERT_EQ(HMIRROR_ST_OK, run(F, 1, HMIRROR_OP_READ, VA0, 8));
	EXPECT_EQ(done, F->dev.sd_done);
	EXPECT_EQ(4, hmdev_tlb_count(&F->dev, CTX));
	EXPECT_EQ(0, seen(F, 1));	/* it announces what it loaded */

	/* the BUSY bit and a jump past the slots: everything dropped */
	__atomic_store_n(&SD->drv_epoch, HMIRROR_SD_BUSY | 1001, __ATOMIC_SEQ_CST);
	ASSERT_EQ(HMIRROR_ST_OK, run(F, 1, HMIRROR_OP_READ, VA0, 8));
	EXPECT_EQ(1001, F->dev.sd_done);
	EXPECT_EQ(1, hmdev_tlb_count(&F->dev, CTX));
	EXPECT_EQ(1001, seen(F, 1));	/* never BUSY after the access */

	/* the top of the epoch space, far from 1001: dropped again */
	warm(_metadata, F);
	misses = R->cnt_tlb_misses;
	__atomic_store_n(&SD->drv_epoch, ~0ull, __ATOMIC_SEQ_CST);
	ASSERT_EQ(HMIRROR_ST_OK, run(F, 1, HMIRROR_OP_FILL, VA0, 4 * FK_PG));
	EXPECT_EQ(HMIRROR_SD_EPOCH_MASK, F->dev.sd_done);
	EXPECT_EQ(misses + 4, R->cnt_tlb_misses);	/* walked again */
	EXPECT_EQ(4, hmdev_tlb_count(&F->dev, CTX));

	/* wrapping to 0 from the top is one step: its slot is read */
	r = &SD->req[0];
	r->ctx = 0xffff;		/* no such context */
	r->start = ~0ull;
	r->end = 0;			/* empty and inverted */
	__atomic_store_n(&r->epoch, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&SD->drv_epoch, 0, __ATOMIC_SEQ_CST);
	ASSERT_EQ(HMIRROR_ST_OK, run(F, 2, HMIRROR_OP_READ, VA0, 4 * FK_PG));
	EXPECT_EQ(0, F->dev.sd_done);
	EXPECT_EQ(4, hmdev_tlb_count(&F->dev, CTX));
	r = &SD->req[1];
	r->ctx = CTX;
	r->start = 0;
	r->end = ~0ull;			/* past 2^va_bits: clamped */
	__atomic_store_n(&r->epoch, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&SD->drv_epoch, 1, __ATOMIC_SEQ_CST);
	ASSERT_EQ(HMIRROR_ST_OK, run(F, 2, HMIRROR_OP_READ, VA0 + 3 * FK_PG, 8));
	EXPECT_EQ(1, hmdev_tlb_count(&F->dev, CTX));
	EXPECT_EQ(0, R->err_count);
	EXPECT_EQ(HMIRROR_DEV_ALIVE | HMIRROR_DEV_ENABLED,
		  __atomic_load_n(&R->dev_status, __ATOMIC_ACQUIRE));
}

TEST_F(sd, reset_counts_every_request_applied)
{
	fk_map_new(F, ROOT, VA0, 4, 0);
	warm(_metadata, F);
	fk_sd_publish(F, CTX, FAR, FAR + FK_PG);
	fk_sd_publish(F, CTX, FAR, FAR + FK_PG);
	fk_reset(F);
	EXPECT_EQ(0, hmdev_tlb_count(&F->dev, -1));
	EXPECT_EQ(2, F->dev.sd_done);
	EXPECT_EQ(2, seen(F, 1));
	EXPECT_EQ(2, seen(F, 2));
	EXPECT_EQ(0, R->cnt_shootdowns);	/* counters restart */
	warm(_metadata, F);
	EXPECT_EQ(0, R->cnt_shootdowns);
}

TEST(without_the_feature_the_block_is_ignored)
{
	struct hmdev_config cfg;
	struct fakedev f;
	uint64_t root;

	hmdev_config_default(&cfg);
	cfg.shootdown = false;
	ASSERT_EQ(0, fakedev_init_xlate(&f, &cfg));
	root = fk_frame(&f);
	fk_ctx_set(&f, CTX, root);
	fk_reset(&f);
	fk_map_new(&f, root, VA0, 4, 0);
	warm(_metadata, &f);
	fk_sd_publish(&f, CTX, VA0, VA0 + 4 * FK_PG);
	ASSERT_EQ(HMIRROR_ST_OK, run(&f, 1, HMIRROR_OP_READ, VA0, 8));
	EXPECT_EQ(4, hmdev_tlb_count(&f.dev, CTX));
	EXPECT_EQ(0, seen(&f, 1));
	fakedev_free(&f);
}

/* ---- threaded: the busy announcement ---------------------------------- */

TEST_F(sd, access_in_progress_stays_busy_until_it_ends)
{
	struct fk_gate g = FK_GATE_INIT(1, 1);
	uint64_t e, v, gs, gd;

	gs = fk_map_new(F, ROOT, VA0, 1, 0);
	gd = fk_map_new(F, ROOT, VA0 + FK_2M, 1, 1);
	memset(fk_ptr(F, gs, FK_PG), 0x5a, FK_PG);
	F->dev.hook = fk_gate_hook;
	F->dev.hook_opaque = &g;
	ASSERT_EQ(0, hmdev_start(&F->dev));

	fk_submit(F, 1, (struct hmirror_cmd){ .opcode = HMIRROR_OP_COPY,
		  .ctx = CTX, .src = VA0, .dst = VA0 + FK_2M, .len = FK_PG });
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	fk_gate_wait_holding(&g);	/* translated, about to copy */

	fk_unmap(F, ROOT, VA0);
	e = fk_sd_publish(F, CTX, VA0, VA0 + FK_PG);
	v = seen(F, 1);
	EXPECT_EQ(HMIRROR_SD_BUSY, v & HMIRROR_SD_BUSY);
	EXPECT_GT(e, v & HMIRROR_SD_EPOCH_MASK);
	EXPECT_FALSE(fk_sd_done(F, e));
	fk_pause_us(100000);
	EXPECT_FALSE(fk_sd_done(F, e)) TH_LOG("done while the access is held");
	EXPECT_EQ(v, seen(F, 1));

	/* an access that begins now, on the other engine, has applied it */
	fk_submit(F, 2, (struct hmirror_cmd){ .opcode = HMIRROR_OP_READ,
		  .ctx = CTX, .src = VA0 + FK_2M, .len = 8 });
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	ASSERT_TRUE(FK_WAIT_FOR(fk_cq_tail(F, 2) == 1));
	EXPECT_EQ(e, seen(F, 2));
	EXPECT_FALSE(fk_sd_done(F, e));

	fk_gate_open(&g);
	ASSERT_TRUE(FK_WAIT_FOR(fk_sd_done(F, e)));
	ASSERT_TRUE(FK_WAIT_FOR(fk_cq_tail(F, 1) == 1));
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 0)->status);
	EXPECT_EQ(0x5a, *(uint8_t *)fk_ptr(F, gd + FK_PG - 1, 1));
	EXPECT_EQ(0, seen(F, 1) & HMIRROR_SD_BUSY);

	/* the unmapped source now faults instead of hitting a stale entry */
	fk_submit(F, 1, (struct hmirror_cmd){ .opcode = HMIRROR_OP_READ,
		  .ctx = CTX, .src = VA0, .len = 8 });
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	ASSERT_TRUE(FK_WAIT_FOR(__atomic_load_n(&fk_fregs(F)->tail,
					     __ATOMIC_ACQUIRE) == 1));
	F->dev.hook = NULL;
}

/*
 * A walk that read an entry just before the driver cleared it, and is
 * cached only after another engine applied the request, would leave a
 * translation behind that nobody drops: the walk's result must not be
 * cached then (it is still used by its own access, which the driver
 * waits for).
 */
TEST_F(sd, walk_overtaken_by_a_shootdown_is_not_cached)
{
	struct fk_gate g = FK_GATE_INIT(1, 1);
	uint64_t e, gs, faults;

	g.phase = HMDEV_HOOK_WALKED;
	gs = fk_map_new(F, ROOT, VA0, 1, 1);
	fk_map_new(F, ROOT, VA0 + FK_2M, 1, 1);
	F->dev.hook = fk_gate_hook;
	F->dev.hook_opaque = &g;
	ASSERT_EQ(0, hmdev_start(&F->dev));

	fk_submit(F, 1, (struct hmirror_cmd){ .opcode = HMIRROR_OP_FILL,
		  .ctx = CTX, .dst = VA0, .len = FK_PG, .arg0 = 0x1111 });
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	fk_gate_wait_holding(&g);	/* walked VA0, not cached yet */

	fk_unmap(F, ROOT, VA0);
	e = fk_sd_publish(F, CTX, VA0, VA0 + FK_PG);
	/* engine 2 applies it (nothing of VA0 cached yet) */
	fk_submit(F, 2, (struct hmirror_cmd){ .opcode = HMIRROR_OP_READ,
		  .ctx = CTX, .src = VA0 + FK_2M, .len = 8 });
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	ASSERT_TRUE(FK_WAIT_FOR(fk_cq_tail(F, 2) == 1));
	EXPECT_EQ(e, F->dev.sd_done);
	EXPECT_FALSE(fk_sd_done(F, e));

	fk_gate_open(&g);
	ASSERT_TRUE(FK_WAIT_FOR(fk_sd_done(F, e)));
	ASSERT_TRUE(FK_WAIT_FOR(fk_cq_tail(F, 1) == 1));
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 0)->status);
	EXPECT_EQ(0x1111, *(uint64_t *)fk_ptr(F, gs, 8));	/* its own access */
	F->dev.hook = NULL;

	/* done: the frame is the driver's again; nothing may reach it */
	EXPECT_EQ(1, hmdev_tlb_count(&F->dev, CTX));	/* VA0 + 2M only */
	faults = R->cnt_faults;
	fk_submit(F, 2, (struct hmirror_cmd){ .opcode = HMIRROR_OP_FILL,
		  .ctx = CTX, .dst = VA0, .len = FK_PG, .arg0 = 0x2222 });
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	ASSERT_TRUE(FK_WAIT_FOR(R->cnt_faults == faults + 1));
	EXPECT_EQ(0x1111, *(uint64_t *)fk_ptr(F, gs, 8))
		TH_LOG("the device wrote a frame after its shootdown was done");
}

TEST_HARNESS_MAIN
