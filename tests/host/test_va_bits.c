// SPDX-License-Identifier: MIT
/*
 * Virtual address width (hmirror_header.va_bits): 57 bits walk five
 * levels (level 5 indexed by bits 56..48), so an address above 2^48 is
 * translated by its own tables, never aliased onto the one below; every
 * "below 2^va_bits" bound (operands, TLB_INVAL, TLB keys) follows the
 * width; 48-bit devices keep the four-level walk and refuse 2^48 and up.
 */
#include "hmtest.h"
#include "kselftest_harness.h"

#define CTX	1
#define LO	0x00007f1234560000ull		/* below 2^48 */
#define HI	((1ull << 48) | LO)		/* LO + 2^48: level-5 index 1 */
#define TOP	((1ull << 56) | (1ull << 52) | LO)	/* high bits 56 and 52 */
#define END57	(1ull << 57)
#define HUGE_VA	((TOP & ~(FK_2M - 1)) + (1ull << 30))	/* 2 MiB aligned */

static struct hmirror_cmd rd(uint64_t va, uint64_t len)
{
	struct hmirror_cmd c = { .opcode = HMIRROR_OP_READ, .ctx = CTX,
				 .src = va, .len = len };
	return c;
}

static struct hmirror_cpl *run(struct fakedev *f, unsigned q, struct hmirror_cmd c)
{
	uint32_t idx = fk_submit(f, q, c);

	hmdev_doorbell(&f->dev, HMIRROR_VEC_CQ);
	fk_set_cq_head(f, q, fk_cq_tail(f, q));
	return fk_cq_tail(f, q) > idx ? fk_cq(f, q, idx) : NULL;
}

static int setup(struct fakedev *f, unsigned va_bits, uint64_t *root)
{
	struct hmdev_config cfg;

	hmdev_config_default(&cfg);
	cfg.va_bits = va_bits;
	cfg.sq_entries = 64;
	cfg.cq_entries = 64;
	if (fakedev_init_xlate(f, &cfg))
		return -1;
	*root = fk_frame(f);
	fk_ctx_set(f, CTX, *root);
	fk_reset(f);
	return 0;
}

FIXTURE(v57) {
	struct fakedev f;
	uint64_t root;
};

FIXTURE_SETUP(v57)
{
	ASSERT_EQ(0, setup(&self->f, 57, &self->root));
}

FIXTURE_TEARDOWN(v57)
{
	fakedev_free(&self->f);
}

#define F	(&self->f)
#define R	(fk_regs(F))
#define ROOT	(self->root)

TEST_F(v57, five_levels_and_no_aliasing_above_2_48)
{
	static const uint64_t vas[] = {
		LO, HI, TOP, END57 - FK_PG, 0, 1ull << 48,
	};
	unsigned i, n = sizeof(vas) / sizeof(vas[0]);
	uint64_t g[6], *top_lo, *top_hi;
	struct hmirror_cpl *c;

	EXPECT_EQ(57, fk_hdr(F)->va_bits);
	EXPECT_EQ(5, F->dev.pt_levels);
	for (i = 0; i < n; i++) {
		g[i] = fk_map_new(F, ROOT, vas[i], 1, 1);
		*(uint64_t *)fk_ptr(F, g[i], 8) = 0x1000 + i;
	}
	/* LO and HI differ only in bit 48: two level-5 entries */
	top_lo = fk_slot(F, ROOT, LO, 5, 0);
	top_hi = fk_slot(F, ROOT, HI, 5, 0);
	ASSERT_NE(NULL, top_lo);
	ASSERT_NE(NULL, top_hi);
	EXPECT_EQ(1, top_hi - top_lo);
	EXPECT_NE(*top_lo & HMIRROR_PTE_ADDR_MASK, *top_hi & HMIRROR_PTE_ADDR_MASK);

	for (i = 0; i < n; i++) {
		c = run(F, 1, rd(vas[i], 8));
		ASSERT_NE(NULL, c) TH_LOG("va 0x%llx faulted", (unsigned long long)vas[i]);
		EXPECT_EQ(HMIRROR_ST_OK, c->status) TH_LOG("va 0x%llx", (unsigned long long)vas[i]);
		EXPECT_EQ(fk_fnv(fk_ptr(F, g[i], 8), 8), c->result)
			TH_LOG("va 0x%llx read another page", (unsigned long long)vas[i]);
	}
	EXPECT_EQ(n, R->cnt_tlb_misses);
	EXPECT_EQ(n, hmdev_tlb_count(&F->dev, CTX));

	/* a write above 2^48 lands in its own page only */
	EXPECT_EQ(HMIRROR_ST_OK, run(F, 1, (struct hmirror_cmd){ .opcode = HMIRROR_OP_FILL,
		  .ctx = CTX, .dst = HI, .len = 8, .arg0 = 0xabcdef })->status);
	EXPECT_EQ(0xabcdef, *(uint64_t *)fk_ptr(F, g[1], 8));
	EXPECT_EQ(0x1000, *(uint64_t *)fk_ptr(F, g[0], 8));

	/* a 2 MiB leaf up there */
	fk_map_huge(F, ROOT, HUGE_VA, FK_HUGE1, 1);
	*(uint64_t *)fk_ptr(F, FK_HUGE1 + FK_2M - 8, 8) = 77;
	c = run(F, 2, rd(HUGE_VA + FK_2M - 8, 8));
	ASSERT_NE(NULL, c);
	EXPECT_EQ(fk_fnv(fk_ptr(F, FK_HUGE1 + FK_2M - 8, 8), 8), c->result);
	EXPECT_EQ(0, R->err_count);
}

TEST_F(v57, faults_above_2_48)
{
	struct hmirror_fault fr;

	fk_map_new(F, ROOT, HI + 5 * FK_PG, 1, 1);
	EXPECT_EQ(NULL, run(F, 1, rd(HI, 6 * FK_PG)));
	ASSERT_EQ(1, fk_next_fault(F, &fr));
	EXPECT_EQ(HI, fr.addr);
	EXPECT_EQ(5, fr.npages);		/* the run stops at the present page */
	/* the same offsets below 2^48 are not mapped: nothing aliases */
	fk_map_new(F, ROOT, HI, 5, 1);
	fk_answer(F, 1, fr.fault_id, HMIRROR_FAULT_REPLAY);
	EXPECT_EQ(NULL, run(F, 2, rd(LO, 8)));
	ASSERT_EQ(1, fk_cq_tail(F, 1));
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 0)->status);
	/* the last pages below 2^57 */
	EXPECT_EQ(NULL, run(F, 1, rd(END57 - 2 * FK_PG, 2 * FK_PG)));
	ASSERT_EQ(1, fk_next_fault(F, &fr));	/* LO's */
	ASSERT_EQ(1, fk_next_fault(F, &fr));
	EXPECT_EQ(END57 - 2 * FK_PG, fr.addr);
	EXPECT_EQ(2, fr.npages);
}

TEST_F(v57, at_and_above_2_57_is_bad_address)
{
	const struct { struct hmirror_cmd c; uint64_t info; } bad[] = {
		{ rd(END57, 8), END57 },
		{ rd(END57 - 8, 16), END57 - 8 },
		{ rd(1ull << 60, 8), 1ull << 60 },
		{ { .opcode = HMIRROR_OP_FILL, .ctx = CTX, .dst = END57, .len = 8 }, END57 },
		{ { .opcode = HMIRROR_OP_COPY, .ctx = CTX, .src = LO, .dst = END57 - 1,
		    .len = 2 }, END57 - 1 },
		{ { .opcode = HMIRROR_OP_ATOMIC, .ctx = CTX, .dst = ~7ull, .len = 8 }, ~7ull },
	};
	unsigned i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct hmirror_cpl *c = run(F, 1, bad[i].c);

		ASSERT_NE(NULL, c);
		EXPECT_EQ(HMIRROR_ST_BAD_ADDRESS, c->status) TH_LOG("case %u", i);
		EXPECT_EQ(bad[i].info, R->err_info) TH_LOG("case %u", i);
	}
	EXPECT_EQ(0, R->cnt_tlb_misses);
	EXPECT_EQ(0, R->cnt_faults);
}

TEST_F(v57, level_5_entries_are_checked)
{
	uint64_t *l5 = fk_slot(F, ROOT, TOP, 5, 0);
	uint64_t e;

	ASSERT_NE(NULL, l5);
	EXPECT_EQ(0, *l5);
	/* not present: a fault, at level 5 */
	EXPECT_EQ(NULL, run(F, 1, rd(TOP, 8)));
	EXPECT_EQ(1, R->cnt_faults);
	fk_map_new(F, ROOT, TOP, 1, 1);
	e = *l5;
	fk_set(l5, e | HMIRROR_PTE_HUGE);			/* no huge at 5 */
	EXPECT_EQ(HMIRROR_ST_BAD_PTE, run(F, 2, rd(TOP, 8))->status);
	EXPECT_EQ(e | HMIRROR_PTE_HUGE, R->err_info);
	fk_set(l5, e | (1ull << 58));				/* reserved bit */
	EXPECT_EQ(HMIRROR_ST_BAD_PTE, run(F, 2, rd(TOP, 8))->status);
	fk_set(l5, FK_LOWMEM | FK_PT_DIR);			/* table in the hole */
	EXPECT_EQ(HMIRROR_ST_BAD_ADDRESS, run(F, 2, rd(TOP, 8))->status);
	EXPECT_EQ(FK_LOWMEM, R->err_info);
	fk_set(l5, e);
	EXPECT_EQ(HMIRROR_ST_OK, run(F, 2, rd(TOP, 8))->status);
}

/*
 * TLB entries keep 57-bit pages apart from the context id; TLB_INVAL
 * clamps at 2^57, not 2^48.
 */
TEST_F(v57, tlb_holds_and_drops_57_bit_pages)
{
	struct hmirror_cmd inv = { .opcode = HMIRROR_OP_TLB_INVAL, .ctx = CTX };
	uint64_t root2 = fk_frame(F), g1, g2, g3;
	struct hmirror_cmd c2 = rd(TOP, 8);

	fk_ctx_set(F, 2, root2);
	g1 = fk_map_new(F, ROOT, TOP, 1, 1);
	g2 = fk_map_new(F, root2, TOP, 1, 1);
	*(uint64_t *)fk_ptr(F, g1, 8) = 1;
	*(uint64_t *)fk_ptr(F, g2, 8) = 2;
	EXPECT_EQ(fk_fnv(fk_ptr(F, g1, 8), 8), run(F, 1, rd(TOP, 8))->result);
	c2.ctx = 2;
	EXPECT_EQ(fk_fnv(fk_ptr(F, g2, 8), 8), run(F, 1, c2)->result);
	EXPECT_EQ(1, hmdev_tlb_count(&F->dev, CTX));
	EXPECT_EQ(1, hmdev_tlb_count(&F->dev, 2));
	/* a hit the second time */
	EXPECT_EQ(HMIRROR_ST_OK, run(F, 1, rd(TOP, 8))->status);
	EXPECT_EQ(1, R->cnt_tlb_hits);

	/* everything of ctx 1: must reach above 2^48 (clamp at 2^57) */
	inv.src = 0;
	inv.len = ~0ull;
	EXPECT_EQ(HMIRROR_ST_OK, run(F, 0, inv)->status);
	EXPECT_EQ(0, hmdev_tlb_count(&F->dev, CTX));
	EXPECT_EQ(1, hmdev_tlb_count(&F->dev, 2));
	/* remap TOP: the device sees the new page */
	g3 = fk_frame(F);
	*(uint64_t *)fk_ptr(F, g3, 8) = 3;
	fk_map(F, ROOT, TOP, g3, 1);
	EXPECT_EQ(fk_fnv(fk_ptr(F, g3, 8), 8), run(F, 1, rd(TOP, 8))->result);
	/* a small range up there, probed */
	inv.ctx = 2;
	inv.src = TOP;
	inv.len = FK_PG;
	EXPECT_EQ(HMIRROR_ST_OK, run(F, 0, inv)->status);
	EXPECT_EQ(0, hmdev_tlb_count(&F->dev, 2));
	EXPECT_EQ(1, hmdev_tlb_count(&F->dev, CTX));
	EXPECT_EQ(0, R->err_count);
}

/* 48 bits: four levels, and 2^48 and up are out of range. */
TEST(va48_refuses_2_48_and_walks_four_levels)
{
	struct { struct fakedev f; uint64_t root; } st, *self = &st;
	struct hmirror_cmd inv = { .opcode = HMIRROR_OP_TLB_INVAL, .ctx = CTX,
				   .src = 1ull << 48, .len = 1ull << 50 };
	uint64_t g;

	ASSERT_EQ(0, setup(F, 48, &self->root));
	EXPECT_EQ(48, fk_hdr(F)->va_bits);
	EXPECT_EQ(4, F->dev.pt_levels);
	g = fk_map_new(F, ROOT, LO, 1, 1);
	*(uint64_t *)fk_ptr(F, g, 8) = 5;
	/* the top table is level 4: LO's entry at index bits 47..39 */
	EXPECT_NE(0, ((uint64_t *)fk_ptr(F, ROOT, FK_PG))[(LO >> 39) & 511]);
	EXPECT_EQ(fk_fnv(fk_ptr(F, g, 8), 8), run(F, 1, rd(LO, 8))->result);
	EXPECT_EQ(HMIRROR_ST_BAD_ADDRESS, run(F, 1, rd(HI, 8))->status);
	EXPECT_EQ(HI, R->err_info);
	EXPECT_EQ(HMIRROR_ST_BAD_ADDRESS, run(F, 1, rd((1ull << 48) - 8, 16))->status);
	EXPECT_EQ(HMIRROR_ST_OK, run(F, 0, inv)->status);	/* clamped: nothing */
	EXPECT_EQ(1, hmdev_tlb_count(&F->dev, CTX));
	EXPECT_EQ(0, R->cnt_faults);
	fakedev_free(F);
}

TEST_HARNESS_MAIN
