// SPDX-License-Identifier: MIT
/*
 * Bus mastering (device ABI 2.0): the device touches guest RAM (data
 * chunks, page walks, fault-run sizing) only while drv_ctrl has BUS_MASTER
 * and it has acknowledged that; clearing it stops the engines at their
 * next chunk, and its acknowledgement (dev_ctrl_ack, DMA_OFF) comes only
 * once every access in progress is over.  DMA_OFF holds from init until an
 * acknowledged BUS_MASTER.
 *
 * "No access" is checked the hard way: the fake guest RAM is made
 * PROT_NONE while the device must not touch it, so any load or store the
 * device makes (a walk included) kills the test.
 */
#include <time.h>

#include "hmtest.h"
#include "kselftest_harness.h"

#define VA	0x00007f1234560000ull
#define CTX	1
#define ON	(HMIRROR_DRV_ENABLE | HMIRROR_DRV_BUS_MASTER)
#define OFF	HMIRROR_DRV_ENABLE

static struct hmirror_cmd mk(uint8_t op, uint64_t src, uint64_t dst,
			     uint64_t len)
{
	struct hmirror_cmd c = { .opcode = op, .ctx = CTX, .src = src,
				 .dst = dst, .len = len };
	return c;
}

static struct hmirror_cmd fill(uint64_t dst, uint64_t len, uint64_t v)
{
	struct hmirror_cmd c = mk(HMIRROR_OP_FILL, 0, dst, len);

	c.arg0 = v;
	return c;
}

/* Pages of [g, g + n pages) whose first word is @v. */
static unsigned pages_with(struct fakedev *f, uint64_t g, unsigned n, uint64_t v)
{
	unsigned i, k = 0;

	for (i = 0; i < n; i++)
		k += *(uint64_t *)fk_ptr(f, g + i * FK_PG, 8) == v;
	return k;
}

FIXTURE(d) {
	struct fakedev f;
	uint64_t root;
};

FIXTURE_SETUP(d)
{
	struct hmdev_config cfg;

	hmdev_config_default(&cfg);
	cfg.sq_entries = 64;
	cfg.cq_entries = 64;
	cfg.engines = 2;
	ASSERT_EQ(0, fakedev_init_xlate(&self->f, &cfg));
	self->root = fk_frame(&self->f);
	fk_ctx_set(&self->f, CTX, self->root);
}

FIXTURE_TEARDOWN(d)
{
	fk_ram_access(&self->f, 1);
	fakedev_free(&self->f);
}

#define F	(&self->f)
#define R	(fk_regs(F))
#define QR(q)	(fk_qregs(F, (q)))
#define RING(v)	hmdev_doorbell(&F->dev, (v))

/*
 * From init the device does no DMA: a driver that resets without
 * BUS_MASTER gets NOPs and queue 0 done, but a data command is held before
 * its first walk; setting the bit without a new drv_ctrl_gen changes
 * nothing; acknowledged, the command walks and faults.
 */
TEST_F(d, no_dma_from_init_until_bus_master_is_acknowledged)
{
	struct hmirror_fault fr;

	EXPECT_EQ(HMIRROR_DEV_ALIVE | HMIRROR_DEV_DMA_OFF, R->dev_status);
	/* BUS_MASTER written but never acknowledged (no drv_ctrl_gen), reset */
	R->drv_ctrl = ON;
	R->drv_reset_gen = ++F->reset_gen;
	RING(HMIRROR_VEC_CTRL);
	EXPECT_EQ(F->reset_gen, R->dev_reset_ack);
	EXPECT_EQ(HMIRROR_DEV_ALIVE | HMIRROR_DEV_ENABLED | HMIRROR_DEV_DMA_OFF,
		  R->dev_status);
	EXPECT_EQ(0, R->dev_ctrl_ack);

	ASSERT_EQ(0, fk_ram_access(F, 0));	/* any access kills the test */
	fk_submit(F, 1, mk(HMIRROR_OP_NOP, 0, 0, 0));
	fk_submit(F, 1, mk(HMIRROR_OP_READ, VA, 0, 64 * FK_PG));	/* held */
	fk_submit(F, 1, mk(HMIRROR_OP_NOP, 0, 0, 0));	/* behind it */
	fk_submit(F, 0, (struct hmirror_cmd){ .opcode = HMIRROR_OP_TLB_INVAL,
		  .ctx = CTX, .len = ~0ull });
	fk_submit(F, 0, mk(HMIRROR_OP_FENCE, 0, 0, 0));
	RING(HMIRROR_VEC_CQ);
	hmdev_tick(&F->dev);
	EXPECT_EQ(1, fk_cq_tail(F, 1));
	EXPECT_EQ(2, QR(1)->sq_head);
	EXPECT_EQ(0, QR(1)->parked);		/* held, not parked */
	EXPECT_EQ(HMIRROR_Q_RUNNING, QR(1)->q_status);
	EXPECT_EQ(2, fk_cq_tail(F, 0));		/* queue 0 runs */
	EXPECT_EQ(0, R->cnt_tlb_misses);
	EXPECT_EQ(0, R->cnt_pages_walked);
	EXPECT_EQ(0, fk_fregs(F)->tail);	/* no walk, no fault sizing */

	/* acknowledged off, then written on without a new generation */
	fk_ctrl(F, OFF);
	EXPECT_EQ(F->ctrl_gen, R->dev_ctrl_ack);
	EXPECT_TRUE(R->dev_status & HMIRROR_DEV_DMA_OFF);
	R->drv_ctrl = ON;
	RING(HMIRROR_VEC_CQ);
	RING(HMIRROR_VEC_FAULT);
	RING(HMIRROR_VEC_CTRL);
	EXPECT_EQ(1, fk_cq_tail(F, 1));
	EXPECT_EQ(0, R->cnt_pages_walked);
	EXPECT_TRUE(R->dev_status & HMIRROR_DEV_DMA_OFF);

	ASSERT_EQ(0, fk_ram_access(F, 1));
	fk_ctrl(F, ON);
	EXPECT_EQ(F->ctrl_gen, R->dev_ctrl_ack);
	EXPECT_FALSE(R->dev_status & HMIRROR_DEV_DMA_OFF);
	ASSERT_EQ(1, fk_next_fault(F, &fr));
	EXPECT_EQ(64, fr.npages);
	EXPECT_EQ(2, fk_cq_tail(F, 1));		/* the NOP behind it */
	EXPECT_EQ(1 + 64, R->cnt_pages_walked);
	EXPECT_EQ(0, R->err_count);
}

static void clear_bus_master(struct fk_gate *g, unsigned n)
{
	struct fakedev *f = g->arg;

	/* the driver, on another CPU, turns bus mastering off */
	if (n == 5)
		__atomic_store_n(&fk_regs(f)->drv_ctrl, OFF, __ATOMIC_RELEASE);
}

/*
 * BUS_MASTER cleared while a FILL runs: the engine stops before its next
 * chunk (the command stays in flight, not parked); once acknowledged no
 * access happens, whatever rings; BUS_MASTER back without its
 * acknowledgement does nothing; acknowledged, the FILL finishes.
 */
TEST_F(d, bus_master_off_stops_at_the_next_chunk)
{
	struct fk_gate g = FK_GATE_INIT(1, 0);	/* never holds */
	uint64_t gd, p0;
	uint8_t *snap;

	fk_reset(F);
	gd = fk_map_new(F, self->root, VA, 64, 1);
	g.on_accessed = clear_bus_master;
	g.arg = F;
	F->dev.hook_opaque = &g;
	F->dev.hook = fk_gate_hook;
	fk_submit(F, 1, fill(VA, 64 * FK_PG, 0x7777));	/* 64 chunks */
	RING(HMIRROR_VEC_CQ);
	EXPECT_EQ(5, fk_gate_accesses(&g));
	EXPECT_EQ(5, pages_with(F, gd, 64, 0x7777));
	EXPECT_EQ(0x7777, *(uint64_t *)fk_ptr(F, gd + 5 * FK_PG - 8, 8));
	EXPECT_EQ(0, *(uint64_t *)fk_ptr(F, gd + 5 * FK_PG, 8));
	EXPECT_EQ(0, fk_cq_tail(F, 1));
	EXPECT_EQ(0, QR(1)->parked);
	EXPECT_EQ(HMIRROR_Q_RUNNING, QR(1)->q_status);
	EXPECT_EQ(1 + 5, QR(1)->progress);
	/* queue 0 is not affected */
	fk_submit(F, 0, (struct hmirror_cmd){ .opcode = HMIRROR_OP_TLB_INVAL,
		  .ctx = CTX, .src = VA, .len = FK_PG });
	RING(HMIRROR_VEC_CQ);
	EXPECT_EQ(1, fk_cq_tail(F, 0));

	/* the driver asks for the acknowledgement */
	fk_ctrl(F, OFF);
	EXPECT_EQ(F->ctrl_gen, R->dev_ctrl_ack);
	EXPECT_TRUE(R->dev_status & HMIRROR_DEV_DMA_OFF);
	snap = malloc(64 * FK_PG);
	ASSERT_NE(NULL, snap);
	memcpy(snap, fk_ptr(F, gd, 64 * FK_PG), 64 * FK_PG);
	p0 = QR(1)->progress;

	ASSERT_EQ(0, fk_ram_access(F, 0));
	fk_submit(F, 1, mk(HMIRROR_OP_READ, VA + FK_2M, 0, 8));	/* would walk */
	RING(HMIRROR_VEC_CQ);
	RING(HMIRROR_VEC_FAULT);
	hmdev_tick(&F->dev);
	/* BUS_MASTER back in drv_ctrl, not acknowledged (no new gen) */
	R->drv_ctrl = ON;
	RING(HMIRROR_VEC_CQ);
	hmdev_tick(&F->dev);
	ASSERT_EQ(0, fk_ram_access(F, 1));
	EXPECT_EQ(0, memcmp(snap, fk_ptr(F, gd, 64 * FK_PG), 64 * FK_PG));
	EXPECT_EQ(5, fk_gate_accesses(&g));
	EXPECT_EQ(p0, QR(1)->progress);
	EXPECT_EQ(0, fk_cq_tail(F, 1));
	EXPECT_EQ(0, fk_fregs(F)->tail);

	fk_ctrl(F, ON);
	EXPECT_FALSE(R->dev_status & HMIRROR_DEV_DMA_OFF);
	ASSERT_EQ(1, fk_cq_tail(F, 1));
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 0)->status);
	EXPECT_EQ(1, fk_cq(F, 1, 0)->seqno);
	EXPECT_EQ(64, pages_with(F, gd, 64, 0x7777));
	EXPECT_EQ(64, fk_gate_accesses(&g));
	EXPECT_EQ(1, fk_fregs(F)->tail);	/* the READ walked and faulted */
	EXPECT_EQ(0, R->err_count);
	F->dev.hook = NULL;
	free(snap);
}

/*
 * The driver's "dead" path, one CTRL doorbell: BUS_MASTER off and a reset
 * together; then its probe: BUS_MASTER on and a reset together.
 */
TEST_F(d, reset_and_bus_master_change_in_one_doorbell)
{
	struct hmirror_fault fr;

	fk_reset(F);
	fk_submit(F, 1, mk(HMIRROR_OP_READ, VA, 0, 8));		/* parks */
	RING(HMIRROR_VEC_CQ);
	ASSERT_EQ(1, fk_next_fault(F, &fr));
	EXPECT_EQ(1, QR(1)->parked);

	/* indices restart at 0 after a reset: the driver zeroes its own */
	F->sq_tail[1] = 0;
	QR(1)->sq_tail = 0;
	fk_ctrl_nodb(F, OFF);
	R->drv_reset_gen = ++F->reset_gen;
	RING(HMIRROR_VEC_CTRL);
	EXPECT_EQ(F->reset_gen, R->dev_reset_ack);
	EXPECT_EQ(F->ctrl_gen, R->dev_ctrl_ack);
	EXPECT_EQ(HMIRROR_DEV_ALIVE | HMIRROR_DEV_ENABLED | HMIRROR_DEV_DMA_OFF,
		  R->dev_status);
	EXPECT_EQ(0, QR(1)->parked);
	EXPECT_EQ(0, QR(1)->sq_head);

	/* the probe of the next driver */
	fk_reset(F);
	EXPECT_EQ(F->reset_gen, R->dev_reset_ack);
	EXPECT_EQ(F->ctrl_gen, R->dev_ctrl_ack);
	EXPECT_EQ(HMIRROR_DEV_ALIVE | HMIRROR_DEV_ENABLED, R->dev_status);
	fk_map_new(F, self->root, VA, 1, 0);
	fk_submit(F, 1, mk(HMIRROR_OP_READ, VA, 0, 8));
	RING(HMIRROR_VEC_CQ);
	ASSERT_EQ(1, fk_cq_tail(F, 1));
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 0)->status);
	/* the heartbeat acts on a new drv_ctrl_gen without a doorbell */
	fk_ctrl_nodb(F, OFF);
	hmdev_tick(&F->dev);
	EXPECT_EQ(F->ctrl_gen, R->dev_ctrl_ack);
	EXPECT_TRUE(R->dev_status & HMIRROR_DEV_DMA_OFF);
}

/* ---- threaded: the acknowledgement waits out the access in progress ---- */

static pthread_mutex_t evl = PTHREAD_MUTEX_INITIALIZER;

static void ring(struct fakedev *f, unsigned v)
{
	pthread_mutex_lock(&evl);
	hmdev_doorbell(&f->dev, v);
	pthread_mutex_unlock(&evl);
}

static void *ctrl_doorbell_thread(void *arg)
{
	ring(arg, HMIRROR_VEC_CTRL);	/* blocks until the access is over */
	return NULL;
}

static void note_ack(struct fk_gate *g, unsigned n)
{
	struct fakedev *f = g->arg;

	/* the access the engine was held in ends: was it acknowledged yet? */
	if (n == g->at)
		g->note = __atomic_load_n(&fk_regs(f)->dev_ctrl_ack, __ATOMIC_ACQUIRE);
}

/*
 * Engine 1 is held inside a FILL chunk; the driver clears BUS_MASTER and
 * asks for the acknowledgement.  It must not come while the access is in
 * progress; once it has come, guest RAM stays as it is (the whole RAM is
 * made inaccessible, and the engine is kicked again and again) until
 * BUS_MASTER is acknowledged back on.
 */
TEST_F(d, bus_master_off_waits_out_the_access_in_progress)
{
	struct fk_gate g = FK_GATE_INIT(1, 10);
	uint32_t gen0;
	uint64_t gd;
	uint8_t *snap;
	pthread_t th;
	unsigned i, p1, p2;

	fk_reset(F);
	gd = fk_map_new(F, self->root, VA, 256, 1);
	g.on_accessed = note_ack;
	g.arg = F;
	F->dev.hook_opaque = &g;
	F->dev.hook = fk_gate_hook;
	ASSERT_EQ(0, hmdev_start(&F->dev));
	fk_submit(F, 1, fill(VA, 256 * FK_PG, 0x4242));
	ring(F, HMIRROR_VEC_CQ);
	fk_gate_wait_holding(&g);		/* inside access 10 */

	gen0 = R->dev_ctrl_ack;
	fk_ctrl_nodb(F, OFF);
	ASSERT_EQ(0, pthread_create(&th, NULL, ctrl_doorbell_thread, F));
	fk_pause_us(200000);	/* the acknowledgement must still not be there */
	EXPECT_EQ(gen0, __atomic_load_n(&R->dev_ctrl_ack, __ATOMIC_ACQUIRE));
	EXPECT_FALSE(__atomic_load_n(&R->dev_status, __ATOMIC_ACQUIRE) &
		     HMIRROR_DEV_DMA_OFF);
	fk_gate_open(&g);
	pthread_join(th, NULL);
	EXPECT_EQ(F->ctrl_gen, R->dev_ctrl_ack);
	EXPECT_TRUE(R->dev_status & HMIRROR_DEV_DMA_OFF);
	EXPECT_EQ(gen0, g.note);		/* access ended before the ack */
	EXPECT_EQ(10, fk_gate_accesses(&g));	/* and none began after it */

	snap = malloc(256 * FK_PG);
	ASSERT_NE(NULL, snap);
	memcpy(snap, fk_ptr(F, gd, 256 * FK_PG), 256 * FK_PG);
	ASSERT_EQ(0, fk_ram_access(F, 0));
	fk_submit(F, 2, mk(HMIRROR_OP_READ, VA, 0, 8));	/* would walk */
	for (i = 0; i < 20; i++) {
		ring(F, i % 2 ? HMIRROR_VEC_CQ : HMIRROR_VEC_FAULT);
		pthread_mutex_lock(&evl);
		hmdev_tick(&F->dev);
		pthread_mutex_unlock(&evl);
	}
	/* both engines run a pass after all that, with RAM still off limits */
	p1 = fk_gate_passes(&g, 1);
	p2 = fk_gate_passes(&g, 2);
	ring(F, HMIRROR_VEC_CQ);
	ASSERT_TRUE(fk_gate_wait_pass(F, &g, 1, p1, FK_TMO_MS));
	ASSERT_TRUE(fk_gate_wait_pass(F, &g, 2, p2, FK_TMO_MS));
	ASSERT_EQ(0, fk_ram_access(F, 1));
	EXPECT_EQ(0, memcmp(snap, fk_ptr(F, gd, 256 * FK_PG), 256 * FK_PG));
	EXPECT_EQ(10, pages_with(F, gd, 256, 0x4242));
	EXPECT_EQ(10, fk_gate_accesses(&g));
	EXPECT_EQ(0, fk_cq_tail(F, 1));
	EXPECT_EQ(0, fk_cq_tail(F, 2));

	/* on again, acknowledged: both commands finish */
	fk_ctrl_nodb(F, ON);
	ring(F, HMIRROR_VEC_CTRL);
	ASSERT_TRUE(FK_WAIT_FOR(fk_cq_tail(F, 1) == 1 && fk_cq_tail(F, 2) == 1));
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 0)->status);
	EXPECT_EQ(256, pages_with(F, gd, 256, 0x4242));
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 2, 0)->status);
	EXPECT_EQ(0, R->err_count);
	hmdev_stop(&F->dev);
	F->dev.hook = NULL;
	free(snap);
}

TEST_HARNESS_MAIN
