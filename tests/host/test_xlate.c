// SPDX-License-Identifier: MIT
/*
 * Translation and data commands, inline mode (no threads): page tables
 * built by hand in a fake guest RAM, the walker at every level, 2 MiB
 * leaves, bad entries and addresses, the TLB, faults with their batched
 * runs, replay and cancel, and COPY/READ/FILL/ATOMIC checked byte-exact
 * against the CPU.
 */
#include <stdio.h>

#include "hmtest.h"
#include "kselftest_harness.h"

#define VA0	0x00007f1234560000ull	/* every level's index is nonzero */
#define CTX	1

FIXTURE(x) {
	struct fakedev f;
	uint64_t root;
};

FIXTURE_SETUP(x)
{
	struct hmdev_config cfg;

	hmdev_config_default(&cfg);
	cfg.sq_entries = 64;
	cfg.cq_entries = 64;
	cfg.fault_entries = 16;
	cfg.engines = 3;
	ASSERT_EQ(0, fakedev_init_xlate(&self->f, &cfg));
	self->root = fk_frame(&self->f);
	fk_ctx_set(&self->f, CTX, self->root);
	fk_reset(&self->f);
}

FIXTURE_TEARDOWN(x)
{
	fakedev_free(&self->f);
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

/*
 * Submit on @q, ring; the completion or NULL if the command did not finish.
 * Completions are consumed as they come (cq_head follows), so the CQ never
 * fills; a slot stays readable until cq_entries later commands.
 */
static struct hmirror_cpl *run(struct fakedev *f, unsigned q, struct hmirror_cmd c)
{
	uint32_t idx = fk_submit(f, q, c);

	hmdev_doorbell(&f->dev, HMIRROR_VEC_CQ);
	fk_set_cq_head(f, q, fk_cq_tail(f, q));
	return fk_cq_tail(f, q) > idx ? fk_cq(f, q, idx) : NULL;
}

static void pattern(uint8_t *p, uint64_t len, unsigned seed)
{
	uint64_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 131 + seed * 7 + (i >> 12));
}

/* ---- the walker ---------------------------------------------------- */

TEST_F(x, walk_every_level)
{
	/* neighbours in one leaf table, then a new table at each level */
	static const uint64_t vas[] = {
		VA0, VA0 + FK_PG, VA0 + FK_2M, VA0 + (1ull << 30),
		VA0 + (1ull << 39), 0, (1ull << 48) - FK_PG,
	};
	unsigned i, n = sizeof(vas) / sizeof(vas[0]);
	uint64_t g[8];

	for (i = 0; i < n; i++) {
		g[i] = fk_map_new(F, ROOT, vas[i], 1, 1);
		pattern(fk_ptr(F, g[i], FK_PG), FK_PG, i);
	}
	for (i = 0; i < n; i++) {
		struct hmirror_cpl *c = run(F, 1, mk(HMIRROR_OP_READ, vas[i], 0, FK_PG));

		ASSERT_NE(NULL, c);
		EXPECT_EQ(HMIRROR_ST_OK, c->status) TH_LOG("va 0x%llx", (unsigned long long)vas[i]);
		EXPECT_EQ(fk_fnv(fk_ptr(F, g[i], FK_PG), FK_PG), c->result);
		EXPECT_EQ(0, c->nfaults);
	}
	EXPECT_EQ(n, R->cnt_tlb_misses);
	EXPECT_EQ(n, R->cnt_pages_walked);
	EXPECT_EQ(0, R->cnt_tlb_hits);
	EXPECT_EQ(0, R->err_count);
	EXPECT_EQ(n, R->cnt_commands);
	/* a translation in the device TLB per page */
	EXPECT_EQ(n, hmdev_tlb_count(&F->dev, CTX));
}

TEST_F(x, huge_2m_leaves)
{
	uint8_t *h0 = fk_ptr(F, FK_HUGE0, FK_2M), *h1 = fk_ptr(F, FK_HUGE1, FK_2M);
	uint64_t va = 0x40000000ull, dst = 0x80000000ull, g;
	struct hmirror_cpl *c;
	uint8_t *both, want[10000];
	unsigned i;

	/* [va, va+2M) huge at 6M, [va+2M, va+4M) huge above 4G */
	fk_map_huge(F, ROOT, va, FK_HUGE0, 1);
	fk_map_huge(F, ROOT, va + FK_2M, FK_HUGE1, 1);
	pattern(h0, FK_2M, 1);
	pattern(h1, FK_2M, 2);

	c = run(F, 1, mk(HMIRROR_OP_READ, va, 0, 2 * FK_2M));
	ASSERT_NE(NULL, c);
	ASSERT_EQ(HMIRROR_ST_OK, c->status);
	both = malloc(2 * FK_2M);
	ASSERT_NE(NULL, both);
	memcpy(both, h0, FK_2M);
	memcpy(both + FK_2M, h1, FK_2M);
	EXPECT_EQ(fk_fnv(both, 2 * FK_2M), c->result);
	free(both);
	/* two walks; the other 4 MiB/64 KiB chunks hit the 2 MiB entries */
	EXPECT_EQ(2, R->cnt_tlb_misses);
	EXPECT_EQ(2 * FK_2M / HMDEV_CHUNK_MAX - 2, R->cnt_tlb_hits);
	EXPECT_EQ(2, hmdev_tlb_count(&F->dev, CTX));

	/* COPY across the 2 MiB boundary into 4 KiB pages, odd offsets */
	g = fk_map_new(F, ROOT, dst, 4, 1);
	c = run(F, 1, mk(HMIRROR_OP_COPY, va + FK_2M - 5000, dst + 3, 10000));
	ASSERT_NE(NULL, c);
	ASSERT_EQ(HMIRROR_ST_OK, c->status);
	memcpy(want, h0 + FK_2M - 5000, 5000);
	memcpy(want + 5000, h1, 5000);
	for (i = 0; i < 10000; i++) {
		ASSERT_EQ(want[i], *fk_va(F, ROOT, dst + 3 + i)) TH_LOG("byte %u", i);
	}
	EXPECT_EQ(0, *(uint8_t *)fk_ptr(F, g + 2, 1));	/* before dst + 3 */
	/* FILL a 2 MiB page from an unaligned start */
	c = run(F, 2, (struct hmirror_cmd){ .opcode = HMIRROR_OP_FILL, .ctx = CTX,
		       .dst = va + 8, .len = FK_2M, .arg0 = 0x1122334455667788ull });
	ASSERT_NE(NULL, c);
	ASSERT_EQ(HMIRROR_ST_OK, c->status);
	EXPECT_EQ(0x1122334455667788ull, *(uint64_t *)(h0 + 8));
	EXPECT_EQ(0x1122334455667788ull, *(uint64_t *)(h1 + 0));
	EXPECT_EQ(0x1122334455667788ull, *(uint64_t *)(h0 + FK_2M - 8));
	EXPECT_NE(0x1122334455667788ull, *(uint64_t *)(h0 + 0));
	EXPECT_NE(0x1122334455667788ull, *(uint64_t *)(h1 + 8));
	EXPECT_EQ(0, R->err_count);
}

struct badpte {
	int level;		/* where the bad entry sits */
	uint64_t bits;		/* what it holds besides a table/page address */
	int aligned_2m;		/* its address 2 MiB aligned */
};

TEST_F(x, bad_entries_are_bad_pte)
{
	static const struct badpte bad[] = {
		{ 4, HMIRROR_PTE_VALID | HMIRROR_PTE_HUGE, 1 },	/* HUGE at 4 */
		{ 3, HMIRROR_PTE_VALID | HMIRROR_PTE_HUGE, 1 },	/* 1 GiB: no */
		{ 1, HMIRROR_PTE_VALID | HMIRROR_PTE_HUGE, 1 },	/* HUGE at 1 */
		{ 2, HMIRROR_PTE_VALID | HMIRROR_PTE_HUGE, 0 },	/* misaligned */
		{ 4, HMIRROR_PTE_VALID | (1ull << 2), 0 },
		{ 3, HMIRROR_PTE_VALID | (1ull << 6), 0 },
		{ 2, HMIRROR_PTE_VALID | (1ull << 8), 0 },
		{ 1, HMIRROR_PTE_VALID | (1ull << 11), 0 },
		{ 1, HMIRROR_PTE_VALID | (1ull << 52), 0 },
		{ 2, HMIRROR_PTE_VALID | HMIRROR_PTE_HUGE | (1ull << 63), 1 },
		{ 1, HMIRROR_PTE_VALID | HMIRROR_PTE_WRITE | (1ull << 62), 0 },
	};
	unsigned i, errs = 0;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t va = VA0 + ((uint64_t)i << 39);	/* own top entry */
		uint64_t addr, e, *slot;
		struct hmirror_cpl *c;

		fk_map_new(F, ROOT, va, 1, 1);
		slot = fk_slot(F, ROOT, va, bad[i].level, 0);
		ASSERT_NE(NULL, slot);
		addr = bad[i].aligned_2m ? FK_HUGE0 : (*slot & HMIRROR_PTE_ADDR_MASK);
		if (!bad[i].aligned_2m && bad[i].bits & HMIRROR_PTE_HUGE)
			addr = FK_HUGE0 + FK_PG;
		e = addr | bad[i].bits;
		fk_set(slot, e);
		c = run(F, 1 + i % 3, mk(HMIRROR_OP_READ, va, 0, 8));
		ASSERT_NE(NULL, c);
		EXPECT_EQ(HMIRROR_ST_BAD_PTE, c->status) TH_LOG("case %u", i);
		EXPECT_EQ(0, c->nfaults);
		EXPECT_EQ(++errs, R->err_count);
		EXPECT_EQ(HMIRROR_ST_BAD_PTE, R->err_code);
		EXPECT_EQ(e, R->err_info) TH_LOG("case %u", i);
		EXPECT_EQ(1 + i % 3, R->err_queue);
	}
	EXPECT_EQ(0, R->cnt_faults);
	EXPECT_EQ(0, hmdev_tlb_count(&F->dev, -1));	/* errors are not cached */
}

TEST_F(x, entries_without_valid_fault_whatever_else_they_hold)
{
	uint64_t *slot;
	struct hmirror_cpl *c;
	struct hmirror_fault fr;

	fk_map_new(F, ROOT, VA0, 1, 1);
	slot = fk_slot(F, ROOT, VA0, 1, 0);
	fk_set(slot, ~HMIRROR_PTE_VALID);	/* garbage, but not present */
	c = run(F, 1, mk(HMIRROR_OP_READ, VA0, 0, 8));
	EXPECT_EQ(NULL, c);
	ASSERT_EQ(1, fk_next_fault(F, &fr));
	EXPECT_EQ(VA0, fr.addr);
	EXPECT_EQ(0, R->err_count);
}

TEST_F(x, bad_guest_physical_addresses)
{
	struct {
		int level;
		uint64_t gpa;
	} bad[] = {
		{ 3, FK_LOWMEM },			/* table in the hole */
		{ 2, 0xfffff000ull },			/* just below 4 GiB */
		{ 1, FK_4G + FK_RAM - FK_LOWMEM },	/* page past the end */
		{ 1, 1ull << 51 },
		{ 2, FK_4G + (8ull << 20) - FK_2M + FK_2M },	/* huge past end */
		{ 2, FK_LOWMEM - FK_2M + FK_2M },	/* huge in the hole */
	};
	unsigned i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t va = VA0 + ((uint64_t)i << 39), e;
		struct hmirror_cpl *c;

		fk_map_new(F, ROOT, va, 1, 1);
		e = bad[i].gpa | FK_PT_DIR;
		if (bad[i].level == 2 && !(bad[i].gpa & (FK_2M - 1)))
			e |= HMIRROR_PTE_HUGE;
		fk_set(fk_slot(F, ROOT, va, bad[i].level, 0), e);
		c = run(F, 1, mk(HMIRROR_OP_READ, va, 0, 8));
		ASSERT_NE(NULL, c);
		EXPECT_EQ(HMIRROR_ST_BAD_ADDRESS, c->status) TH_LOG("case %u", i);
		EXPECT_EQ(HMIRROR_ST_BAD_ADDRESS, R->err_code);
		EXPECT_EQ(bad[i].gpa, R->err_info) TH_LOG("case %u", i);
	}
	/* a 2 MiB page straddling the end of low RAM (6M + 2M = 8M is ok) */
	fk_map_huge(F, ROOT, 0x200000000ull, FK_HUGE0, 1);
	EXPECT_EQ(HMIRROR_ST_OK, run(F, 1, mk(HMIRROR_OP_READ, 0x200000000ull, 0, 8))->status);
	/* roots: outside RAM, not 4 KiB aligned */
	fk_ctx_set(F, 2, FK_LOWMEM + FK_PG);
	fk_ctx_set(F, 3, ROOT + 8);
	{
		struct hmirror_cmd c = mk(HMIRROR_OP_READ, VA0, 0, 8);

		c.ctx = 2;
		EXPECT_EQ(HMIRROR_ST_BAD_ADDRESS, run(F, 1, c)->status);
		EXPECT_EQ(FK_LOWMEM + FK_PG, R->err_info);
		c.ctx = 3;
		EXPECT_EQ(HMIRROR_ST_BAD_ADDRESS, run(F, 1, c)->status);
		EXPECT_EQ(ROOT + 8, R->err_info);
	}
	EXPECT_EQ(0, R->cnt_faults);
}

/*
 * A 2 MiB leaf must lie wholly inside one RAM window.  Guest RAM of 14 MiB
 * with lowmem 5 MiB: [0, 5M) and [4G, 4G + 9M), neither end 2 MiB aligned,
 * so an aligned leaf can start inside a window and end past it.  The fake
 * RAM has a 2 MiB PROT_NONE guard after it: a device that checked only the
 * leaf's first byte would read RAM it was not given, or crash.
 */
TEST(huge_leaf_straddling_the_end_of_a_ram_window)
{
	struct hmdev_config cfg;
	struct { struct fakedev f; } st, *self = &st;
	struct hmirror_cmd c = { .opcode = HMIRROR_OP_READ, .ctx = CTX, .len = 8 };
	const uint64_t va = 0x40000000ull, low_end = 5ull << 20;
	const uint64_t high_end = FK_4G + (9ull << 20);
	uint64_t root;
	unsigned i;

	hmdev_config_default(&cfg);
	ASSERT_EQ(0, fakedev_init_ram(F, &cfg, 14ull << 20, low_end));
	F->frame_next = 1ull << 20;	/* a few tables, all below 2 MiB */
	root = fk_frame(F);
	fk_ctx_set(F, CTX, root);
	fk_reset(F);
	EXPECT_EQ(low_end, F->ram.below_4g);
	EXPECT_EQ(high_end - FK_4G, F->ram.above_4g);

	/* wholly inside: fine, up to their last byte */
	fk_map_huge(F, root, va, 2ull << 20, 0);
	fk_map_huge(F, root, va + FK_2M, high_end - FK_2M - (1ull << 20), 0);
	for (i = 0; i < 2; i++) {
		c.src = va + i * FK_2M + FK_2M - 8;
		fk_submit(F, 1, c);
	}
	/* straddling: [4M, 6M) past 5M, [4G + 8M, 4G + 10M) past 4G + 9M */
	fk_map_huge(F, root, va + 2 * FK_2M, 4ull << 20, 0);
	fk_map_huge(F, root, va + 3 * FK_2M, high_end - (1ull << 20), 0);
	c.src = va + 2 * FK_2M;			/* its first byte is RAM */
	fk_submit(F, 1, c);
	c.src = va + 3 * FK_2M;
	fk_submit(F, 1, c);
	c.src = va + 3 * FK_2M + (3ull << 19);	/* 1.5 MiB in: past the end */
	fk_submit(F, 1, c);
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	ASSERT_EQ(5, fk_cq_tail(F, 1));
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 0)->status);
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 1)->status);
	EXPECT_EQ(HMIRROR_ST_BAD_ADDRESS, fk_cq(F, 1, 2)->status);
	EXPECT_EQ(HMIRROR_ST_BAD_ADDRESS, fk_cq(F, 1, 3)->status);
	EXPECT_EQ(HMIRROR_ST_BAD_ADDRESS, fk_cq(F, 1, 4)->status);
	EXPECT_EQ(3, fk_regs(F)->err_count);
	EXPECT_EQ(high_end - (1ull << 20), fk_regs(F)->err_info);	/* the leaf */
	EXPECT_EQ(2, hmdev_tlb_count(&F->dev, CTX));	/* errors not cached */
	EXPECT_EQ(0, fk_regs(F)->cnt_faults);
	fakedev_free(F);
}

TEST(no_guest_ram_at_all)
{
	struct hmdev_config cfg;
	struct { struct fakedev f; } st, *self = &st;
	struct hmirror_cmd c = { .opcode = HMIRROR_OP_READ, .ctx = 1, .src = 0, .len = 8 };

	hmdev_config_default(&cfg);
	ASSERT_EQ(0, fakedev_init(F, &cfg));
	fk_ctx_set(F, 1, 0x1000);
	fk_reset(F);
	fk_submit(F, 1, c);
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(1, fk_cq_tail(F, 1));
	EXPECT_EQ(HMIRROR_ST_BAD_ADDRESS, fk_cq(F, 1, 0)->status);
	EXPECT_EQ(0x1000, R->err_info);
	fakedev_free(F);
}

/* ---- static checks ----------------------------------------------------- */

struct badcmd {
	struct hmirror_cmd c;
	uint16_t status;
	uint64_t info;
};

TEST_F(x, static_checks)
{
	const uint64_t top = 1ull << 48;
	const struct badcmd bad[] = {
		{ mk(HMIRROR_OP_COPY, VA0, VA0 + FK_2M, 0), HMIRROR_ST_BAD_LENGTH, 0 },
		{ mk(HMIRROR_OP_READ, VA0, 0, 0), HMIRROR_ST_BAD_LENGTH, 0 },
		{ mk(HMIRROR_OP_FILL, 0, VA0, 0), HMIRROR_ST_BAD_LENGTH, 0 },
		{ mk(HMIRROR_OP_COPY, VA0, VA0, (1ull << 30) + 1), HMIRROR_ST_BAD_LENGTH, (1ull << 30) + 1 },
		{ mk(HMIRROR_OP_READ, VA0, 0, ~0ull), HMIRROR_ST_BAD_LENGTH, ~0ull },
		{ mk(HMIRROR_OP_READ, VA0 + 4, 0, 8), HMIRROR_ST_BAD_ALIGN, VA0 + 4 },
		{ mk(HMIRROR_OP_READ, VA0, 0, 12), HMIRROR_ST_BAD_ALIGN, 12 },
		{ mk(HMIRROR_OP_FILL, 0, VA0 + 1, 8), HMIRROR_ST_BAD_ALIGN, VA0 + 1 },
		{ mk(HMIRROR_OP_FILL, 0, VA0, 9), HMIRROR_ST_BAD_ALIGN, 9 },
		{ mk(HMIRROR_OP_ATOMIC, 0, VA0 + 4, 8), HMIRROR_ST_BAD_ALIGN, VA0 + 4 },
		{ mk(HMIRROR_OP_ATOMIC, 0, VA0, 16), HMIRROR_ST_BAD_ALIGN, 16 },
		{ mk(HMIRROR_OP_ATOMIC, 0, VA0, 0), HMIRROR_ST_BAD_ALIGN, 0 },
		{ mk(HMIRROR_OP_READ, top, 0, 8), HMIRROR_ST_BAD_ADDRESS, top },
		{ mk(HMIRROR_OP_READ, top - 8, 0, 16), HMIRROR_ST_BAD_ADDRESS, top - 8 },
		{ mk(HMIRROR_OP_READ, ~0ull - 7, 0, 8), HMIRROR_ST_BAD_ADDRESS, ~0ull - 7 },
		{ mk(HMIRROR_OP_COPY, VA0, top - 1, 2), HMIRROR_ST_BAD_ADDRESS, top - 1 },
		{ mk(HMIRROR_OP_COPY, 1ull << 63, VA0, 2), HMIRROR_ST_BAD_ADDRESS, 1ull << 63 },
		{ mk(HMIRROR_OP_FILL, 0, top - 8, 16), HMIRROR_ST_BAD_ADDRESS, top - 8 },
		{ mk(HMIRROR_OP_ATOMIC, 0, top, 8), HMIRROR_ST_BAD_ADDRESS, top },
	};
	unsigned i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct hmirror_cpl *c = run(F, 2, bad[i].c);

		ASSERT_NE(NULL, c);
		EXPECT_EQ(bad[i].status, c->status) TH_LOG("case %u", i);
		EXPECT_EQ(bad[i].status, R->err_code) TH_LOG("case %u", i);
		EXPECT_EQ(bad[i].info, R->err_info) TH_LOG("case %u", i);
		EXPECT_EQ(i + 1, R->err_count);
		EXPECT_EQ(2, R->err_queue);
		EXPECT_EQ(i, R->err_index);
	}
	/* nothing reached the walker, nothing faulted */
	EXPECT_EQ(0, R->cnt_tlb_misses);
	EXPECT_EQ(0, R->cnt_faults);
	EXPECT_EQ(i, R->cnt_commands);
	/* the last byte below 2^48 is fine (and faults: nothing mapped) */
	EXPECT_EQ(NULL, run(F, 1, mk(HMIRROR_OP_READ, top - 8, 0, 8)));
	EXPECT_EQ(1, R->cnt_faults);
}

TEST_F(x, contexts)
{
	struct hmirror_cmd c = mk(HMIRROR_OP_READ, VA0, 0, 8);
	unsigned max = F->dev.hdr.max_contexts;
	uint64_t g = fk_map_new(F, ROOT, VA0, 1, 1);

	*(uint64_t *)fk_ptr(F, g, 8) = 42;
	c.ctx = (uint16_t)max;
	EXPECT_EQ(HMIRROR_ST_BAD_CONTEXT, run(F, 1, c)->status);
	EXPECT_EQ(max, R->err_info);
	c.ctx = 0xffff;
	EXPECT_EQ(HMIRROR_ST_BAD_CONTEXT, run(F, 1, c)->status);
	EXPECT_EQ(0xffff, R->err_info);
	c.ctx = 5;				/* never set up */
	EXPECT_EQ(HMIRROR_ST_BAD_CONTEXT, run(F, 1, c)->status);
	EXPECT_EQ(5, R->err_info);
	/* the same tables under two ids */
	fk_ctx_set(F, max - 1, ROOT);
	c.ctx = (uint16_t)(max - 1);
	EXPECT_EQ(HMIRROR_ST_OK, run(F, 1, c)->status);
	c.ctx = CTX;
	EXPECT_EQ(HMIRROR_ST_OK, run(F, 1, c)->status);
	EXPECT_EQ(2, R->cnt_tlb_misses);	/* entries are per context */
	EXPECT_EQ(1, hmdev_tlb_count(&F->dev, max - 1));

	/* disabled: the driver clears VALID, then flushes the context */
	fk_ctx(F, max - 1)->flags = 0;
	{
		struct hmirror_cmd inv = { .opcode = HMIRROR_OP_TLB_INVAL,
					   .ctx = (uint16_t)(max - 1),
					   .len = 1ull << 48 };

		EXPECT_EQ(HMIRROR_ST_OK, run(F, 0, inv)->status);
		inv.ctx = (uint16_t)max;
		EXPECT_EQ(HMIRROR_ST_BAD_CONTEXT, run(F, 0, inv)->status);
		EXPECT_EQ(max, R->err_info);
		EXPECT_EQ(0, R->err_queue);
	}
	EXPECT_EQ(0, hmdev_tlb_count(&F->dev, max - 1));
	EXPECT_EQ(1, hmdev_tlb_count(&F->dev, CTX));
	c.ctx = (uint16_t)(max - 1);
	EXPECT_EQ(HMIRROR_ST_BAD_CONTEXT, run(F, 1, c)->status);
	/* flags bits other than VALID do not matter */
	fk_ctx(F, 7)->pt_root = ROOT;
	fk_ctx(F, 7)->flags = HMIRROR_CTX_VALID | 0xf0;
	c.ctx = 7;
	EXPECT_EQ(HMIRROR_ST_OK, run(F, 1, c)->status);
	EXPECT_EQ(fk_fnv(fk_ptr(F, g, 8), 8), fk_cq(F, 1, F->sq_tail[1] - 1)->result);
}

TEST_F(x, context_disabled_while_stalled)
{
	struct hmirror_fault fr;

	EXPECT_EQ(NULL, run(F, 1, mk(HMIRROR_OP_READ, VA0, 0, 2 * FK_PG)));
	ASSERT_EQ(1, fk_next_fault(F, &fr));
	/* the driver tears the context down, then answers */
	fk_ctx(F, CTX)->flags = 0;
	fk_answer(F, 1, fr.fault_id, HMIRROR_FAULT_REPLAY);
	ASSERT_EQ(1, fk_cq_tail(F, 1));
	EXPECT_EQ(HMIRROR_ST_BAD_CONTEXT, fk_cq(F, 1, 0)->status);
	EXPECT_EQ(CTX, R->err_info);
	EXPECT_EQ(1, fk_cq(F, 1, 0)->nfaults);
}

/* ---- faults -------------------------------------------------------- */

/* Expect one fault record with these fields; returns its id. */
static uint64_t expect_fault(struct __test_metadata *_metadata,
			     struct fakedev *f, unsigned q, unsigned access,
			     uint64_t addr, uint32_t npages, uint64_t seqno)
{
	struct hmirror_fault fr;
	uint32_t i;

	if (!fk_next_fault(f, &fr)) {
		EXPECT_TRUE(0) TH_LOG("no fault record");
		return 0;
	}
	EXPECT_NE(0, fr.fault_id);
	EXPECT_EQ(CTX, fr.ctx);
	EXPECT_EQ(q, fr.queue);
	EXPECT_EQ(access, fr.access);
	EXPECT_EQ(addr, fr.addr);
	EXPECT_EQ(npages, fr.npages);
	EXPECT_EQ(seqno, fr.seqno);
	EXPECT_NE(0, fr.t_fault);
	/* fk_submit() tags commands by SQ index: seqno - 1 since the reset */
	EXPECT_EQ((seqno - 1) & (f->dev.hdr.sq_entries - 1), fr.tag);
	EXPECT_EQ(0, fr.reserved0);
	EXPECT_EQ(0, fr.reserved1);
	for (i = 0; i < 2; i++)
		EXPECT_EQ(0, fr.reserved2[i]);
	EXPECT_LE(1, fk_qregs(f, q)->parked);
	return fr.fault_id;
}

TEST_F(x, read_fault_replay)
{
	const unsigned n = 64;
	uint32_t idx, faults_irq;
	uint64_t id;
	struct hmirror_cpl *c;
	uint64_t g, t0 = hmdev_now_ns();
	uint8_t ref[64 * 4096];

	faults_irq = fk_irqs(F, HMIRROR_VEC_FAULT);
	idx = fk_submit(F, 1, mk(HMIRROR_OP_READ, VA0, 0, n * FK_PG));
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(0, fk_cq_tail(F, 1));
	id = expect_fault(_metadata, F, 1, HMIRROR_ACCESS_READ, VA0, n, 1);
	EXPECT_EQ(faults_irq + 1, fk_irqs(F, HMIRROR_VEC_FAULT));
	EXPECT_EQ(1, R->cnt_faults);
	EXPECT_EQ(1, fk_fregs(F)->tail);
	EXPECT_EQ(1, QR(1)->sq_head);		/* consumed */
	EXPECT_LE(t0, fk_fault_slot(F, 0)->t_fault);
	EXPECT_EQ(0, R->err_count);

	/* nothing moves without the answer, whatever rings */
	hmdev_doorbell(&F->dev, HMIRROR_VEC_FAULT);
	hmdev_tick(&F->dev);
	EXPECT_EQ(0, fk_cq_tail(F, 1));
	EXPECT_EQ(1, R->cnt_faults);

	/* the driver maps the run and replays */
	g = fk_map_new(F, ROOT, VA0, n, 0);
	pattern(fk_ptr(F, g, n * FK_PG), n * FK_PG, 9);
	memcpy(ref, fk_ptr(F, g, n * FK_PG), sizeof(ref));
	fk_answer(F, 1, id, HMIRROR_FAULT_REPLAY);
	ASSERT_EQ(1, fk_cq_tail(F, 1));
	c = fk_cq(F, 1, idx);
	EXPECT_EQ(HMIRROR_ST_OK, c->status);
	EXPECT_EQ(fk_fnv(ref, sizeof(ref)), c->result);
	EXPECT_EQ(1, c->nfaults);
	EXPECT_EQ(fk_fault_slot(F, 0)->t_fault, c->t_fault);
	EXPECT_LE(c->t_submit, c->t_fault);
	EXPECT_LE(c->t_fault, c->t_answer);
	EXPECT_LE(c->t_answer, c->t_done);
	EXPECT_EQ(0, QR(1)->parked);
	EXPECT_EQ(HMIRROR_Q_IDLE, QR(1)->q_status);
	EXPECT_EQ(1, R->cnt_replays);
	EXPECT_EQ(0, R->cnt_cancels);
	EXPECT_EQ(0, R->err_count);
	/* the run's walks and the replay's: 64 + 1 miss + 64 walks */
	EXPECT_EQ(1 + n, R->cnt_tlb_misses);
	EXPECT_EQ(n + 1 + n, R->cnt_pages_walked);
	EXPECT_EQ(1, fk_irqs(F, HMIRROR_VEC_CQ));
}

TEST_F(x, fault_ids_increase_and_stalled_engine_blocks_only_itself)
{
	uint64_t id1, id2, id3;

	fk_map_new(F, ROOT, VA0 + 16 * FK_PG, 1, 1);
	fk_submit(F, 1, mk(HMIRROR_OP_READ, VA0, 0, 32 * FK_PG));
	fk_submit(F, 1, mk(HMIRROR_OP_FENCE, 0, 0, 0));	/* waits its turn */
	fk_submit(F, 2, mk(HMIRROR_OP_READ, VA0 + FK_PG, 0, 32 * FK_PG));
	fk_submit(F, 3, mk(HMIRROR_OP_READ, VA0 + 16 * FK_PG, 0, 8));
	fk_submit(F, 0, (struct hmirror_cmd){ .opcode = HMIRROR_OP_TLB_INVAL,
		  .ctx = CTX, .src = 0, .len = ~0ull });
	fk_submit(F, 0, mk(HMIRROR_OP_FENCE, 0, 0, 0));
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	id1 = expect_fault(_metadata, F, 1, HMIRROR_ACCESS_READ, VA0, 16, 1);
	id2 = expect_fault(_metadata, F, 2, HMIRROR_ACCESS_READ, VA0 + FK_PG, 15, 1);
	EXPECT_LT(id1, id2);
	EXPECT_EQ(1, fk_cq_tail(F, 3));		/* engine 3 unaffected */
	EXPECT_EQ(2, fk_cq_tail(F, 0));		/* management too */
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 0, 0)->status);
	EXPECT_EQ(1, R->cnt_tlb_invals);
	EXPECT_EQ(0, fk_cq_tail(F, 1));		/* FENCE behind the fault */
	/* answers in any order; one doorbell per answer */
	fk_answer(F, 2, id2, HMIRROR_FAULT_CANCEL);
	EXPECT_EQ(1, fk_cq_tail(F, 2));
	EXPECT_EQ(HMIRROR_ST_FAULT, fk_cq(F, 2, 0)->status);
	EXPECT_EQ(0, fk_cq_tail(F, 1));
	/* engine 1 faults again on replay (the driver mapped nothing) */
	fk_answer(F, 1, id1, HMIRROR_FAULT_REPLAY);
	id3 = expect_fault(_metadata, F, 1, HMIRROR_ACCESS_READ, VA0, 16, 1);
	EXPECT_LT(id2, id3);
	fk_answer(F, 1, id3, HMIRROR_FAULT_CANCEL);
	ASSERT_EQ(2, fk_cq_tail(F, 1));
	EXPECT_EQ(HMIRROR_ST_FAULT, fk_cq(F, 1, 0)->status);
	EXPECT_EQ(2, fk_cq(F, 1, 0)->nfaults);
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 1)->status);
	EXPECT_EQ(HMIRROR_OP_FENCE, fk_cq(F, 1, 1)->opcode);
	EXPECT_LE(fk_cq(F, 1, 0)->t_done, fk_cq(F, 1, 1)->t_done);
	EXPECT_EQ(3, R->cnt_faults);
	EXPECT_EQ(1, R->cnt_replays);
	EXPECT_EQ(2, R->cnt_cancels);
	EXPECT_EQ(0, R->err_count);		/* a cancel is no error */
}

TEST_F(x, run_stops_at_a_present_page_and_at_the_operand)
{
	uint64_t id;

	fk_map_new(F, ROOT, VA0 + 10 * FK_PG, 1, 1);
	/* pages 0..9 missing, 10 present */
	EXPECT_EQ(NULL, run(F, 1, mk(HMIRROR_OP_READ, VA0, 0, 20 * FK_PG)));
	fk_answer(F, 1, expect_fault(_metadata, F, 1, HMIRROR_ACCESS_READ,
				     VA0, 10, 1), HMIRROR_FAULT_CANCEL);
	/* page-rounded operand: [VA0 + 100, VA0 + 100 + 2 pages) spans 3 */
	EXPECT_EQ(NULL, run(F, 1, mk(HMIRROR_OP_READ, VA0 + 104, 0, 2 * FK_PG)));
	fk_answer(F, 1, expect_fault(_metadata, F, 1, HMIRROR_ACCESS_READ,
				     VA0, 3, 2), HMIRROR_FAULT_CANCEL);
	/* faulting in the middle: the run starts at the faulting page */
	EXPECT_EQ(NULL, run(F, 1, mk(HMIRROR_OP_READ, VA0 + 10 * FK_PG, 0, 5 * FK_PG)));
	fk_answer(F, 1, expect_fault(_metadata, F, 1, HMIRROR_ACCESS_READ,
				     VA0 + 11 * FK_PG, 4, 3), HMIRROR_FAULT_CANCEL);
	/* a bad entry ends the run too (the replay reports it) */
	fk_map_new(F, ROOT, VA0 + 30 * FK_PG, 1, 1);
	fk_set(fk_slot(F, ROOT, VA0 + 30 * FK_PG, 1, 0),
	       *fk_slot(F, ROOT, VA0 + 30 * FK_PG, 1, 0) | (1ull << 9));
	EXPECT_EQ(NULL, run(F, 1, mk(HMIRROR_OP_READ, VA0 + 20 * FK_PG, 0, 20 * FK_PG)));
	fk_answer(F, 1, expect_fault(_metadata, F, 1, HMIRROR_ACCESS_READ,
				     VA0 + 20 * FK_PG, 10, 4), HMIRROR_FAULT_REPLAY);
	id = expect_fault(_metadata, F, 1, HMIRROR_ACCESS_READ, VA0 + 20 * FK_PG, 10, 4);
	fk_map_new(F, ROOT, VA0 + 20 * FK_PG, 10, 1);
	fk_answer(F, 1, id, HMIRROR_FAULT_REPLAY);
	ASSERT_EQ(4, fk_cq_tail(F, 1));
	EXPECT_EQ(HMIRROR_ST_BAD_PTE, fk_cq(F, 1, 3)->status);
	EXPECT_EQ(2, fk_cq(F, 1, 3)->nfaults);
}

TEST_F(x, run_is_capped_at_512)
{
	const unsigned n = 600;
	uint64_t id;

	EXPECT_EQ(NULL, run(F, 1, mk(HMIRROR_OP_READ, VA0, 0, n * FK_PG)));
	id = expect_fault(_metadata, F, 1, HMIRROR_ACCESS_READ, VA0, 512, 1);
	fk_map_new(F, ROOT, VA0, 512, 0);
	fk_answer(F, 1, id, HMIRROR_FAULT_REPLAY);
	id = expect_fault(_metadata, F, 1, HMIRROR_ACCESS_READ, VA0 + 512 * FK_PG,
			  n - 512, 1);
	fk_map_new(F, ROOT, VA0 + 512 * FK_PG, n - 512, 0);
	fk_answer(F, 1, id, HMIRROR_FAULT_REPLAY);
	ASSERT_EQ(1, fk_cq_tail(F, 1));
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 0)->status);
	EXPECT_EQ(2, fk_cq(F, 1, 0)->nfaults);
	/* a 2 MiB read of nothing is one fault of 512 */
	EXPECT_EQ(NULL, run(F, 2, mk(HMIRROR_OP_READ, 0x40000000ull, 0, FK_2M)));
	expect_fault(_metadata, F, 2, HMIRROR_ACCESS_READ, 0x40000000ull, 512, 1);
}

TEST_F(x, copy_faults_once_per_operand)
{
	const unsigned n = 64;
	uint64_t src = VA0, dst = VA0 + 0x10000000ull, gs, gd;
	uint64_t id;
	struct hmirror_cpl *c;

	EXPECT_EQ(NULL, run(F, 1, mk(HMIRROR_OP_COPY, src, dst, n * FK_PG)));
	id = expect_fault(_metadata, F, 1, HMIRROR_ACCESS_READ, src, n, 1);
	gs = fk_map_new(F, ROOT, src, n, 0);
	pattern(fk_ptr(F, gs, n * FK_PG), n * FK_PG, 3);
	fk_answer(F, 1, id, HMIRROR_FAULT_REPLAY);
	id = expect_fault(_metadata, F, 1, HMIRROR_ACCESS_WRITE, dst, n, 1);
	gd = fk_map_new(F, ROOT, dst, n, 1);
	fk_answer(F, 1, id, HMIRROR_FAULT_REPLAY);
	ASSERT_EQ(1, fk_cq_tail(F, 1));
	c = fk_cq(F, 1, 0);
	EXPECT_EQ(HMIRROR_ST_OK, c->status);
	EXPECT_EQ(2, c->nfaults);
	EXPECT_EQ(0, memcmp(fk_ptr(F, gs, n * FK_PG), fk_ptr(F, gd, n * FK_PG),
			    n * FK_PG));
	EXPECT_EQ(2, R->cnt_faults);
	EXPECT_EQ(0, fk_fregs(F)->tail - F->fault_head);
}

TEST_F(x, write_permission)
{
	uint64_t g, gd;
	uint64_t id;
	struct hmirror_cpl *c;

	/* dst: 3 read-only pages, then a writable one */
	g = fk_map_new(F, ROOT, VA0, 3, 0);
	fk_map_new(F, ROOT, VA0 + 3 * FK_PG, 1, 1);
	/* reading read-only pages is fine and caches them read-only */
	c = run(F, 1, mk(HMIRROR_OP_READ, VA0, 0, 4 * FK_PG));
	ASSERT_NE(NULL, c);
	EXPECT_EQ(HMIRROR_ST_OK, c->status);
	EXPECT_EQ(4, hmdev_tlb_count(&F->dev, CTX));
	/* a FILL over them is one write fault of 3; their entries go */
	EXPECT_EQ(NULL, run(F, 1, (struct hmirror_cmd){ .opcode = HMIRROR_OP_FILL,
		  .ctx = CTX, .dst = VA0, .len = 4 * FK_PG, .arg0 = 7 }));
	id = expect_fault(_metadata, F, 1, HMIRROR_ACCESS_WRITE, VA0, 3, 2);
	EXPECT_EQ(1, hmdev_tlb_count(&F->dev, CTX));
	EXPECT_EQ(0, *(uint64_t *)fk_ptr(F, g, 8));
	/* the driver upgrades the entries in place */
	fk_map(F, ROOT, VA0, g, 1);
	fk_map(F, ROOT, VA0 + FK_PG, g + FK_PG, 1);
	fk_map(F, ROOT, VA0 + 2 * FK_PG, g + 2 * FK_PG, 1);
	fk_answer(F, 1, id, HMIRROR_FAULT_REPLAY);
	ASSERT_EQ(2, fk_cq_tail(F, 1));
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 1)->status);
	EXPECT_EQ(7, *(uint64_t *)fk_ptr(F, g + 3 * FK_PG - 8, 8));

	/* a read-only directory entry makes everything below read-only */
	gd = fk_map_new(F, ROOT, VA0 + (1ull << 30), 2, 1);
	{
		uint64_t *dir = fk_slot(F, ROOT, VA0 + (1ull << 30), 3, 0);

		fk_set(dir, *dir & ~HMIRROR_PTE_WRITE);
	}
	c = run(F, 2, mk(HMIRROR_OP_READ, VA0 + (1ull << 30), 0, 16));
	ASSERT_NE(NULL, c);
	EXPECT_EQ(HMIRROR_ST_OK, c->status);
	EXPECT_EQ(NULL, run(F, 2, mk(HMIRROR_OP_COPY, VA0 + 3 * FK_PG,
				     VA0 + (1ull << 30), 2 * FK_PG)));
	id = expect_fault(_metadata, F, 2, HMIRROR_ACCESS_WRITE,
			  VA0 + (1ull << 30), 2, 2);
	fk_answer(F, 2, id, HMIRROR_FAULT_CANCEL);
	EXPECT_EQ(HMIRROR_ST_FAULT, fk_cq(F, 2, 1)->status);
	EXPECT_EQ(0, *(uint64_t *)fk_ptr(F, gd, 8));
	/* atomics need write permission and report ATOMIC */
	EXPECT_EQ(NULL, run(F, 3, (struct hmirror_cmd){ .opcode = HMIRROR_OP_ATOMIC,
		  .ctx = CTX, .dst = VA0 + (1ull << 30) + 8, .len = 8, .arg0 = 1 }));
	expect_fault(_metadata, F, 3, HMIRROR_ACCESS_ATOMIC, VA0 + (1ull << 30), 1, 1);
}

TEST_F(x, tlb_permission_miss_rewalks)
{
	uint64_t g = fk_map_new(F, ROOT, VA0, 1, 0);
	struct hmirror_cpl *c;

	EXPECT_EQ(HMIRROR_ST_OK, run(F, 1, mk(HMIRROR_OP_READ, VA0, 0, 8))->status);
	EXPECT_EQ(1, R->cnt_tlb_misses);
	EXPECT_EQ(HMIRROR_ST_OK, run(F, 1, mk(HMIRROR_OP_READ, VA0, 0, 8))->status);
	EXPECT_EQ(1, R->cnt_tlb_hits);
	/* upgraded to writable without any invalidation */
	fk_map(F, ROOT, VA0, g, 1);
	c = run(F, 1, (struct hmirror_cmd){ .opcode = HMIRROR_OP_FILL, .ctx = CTX,
		.dst = VA0, .len = 8, .arg0 = 0xabc });
	ASSERT_NE(NULL, c);
	EXPECT_EQ(HMIRROR_ST_OK, c->status);
	EXPECT_EQ(0, c->nfaults);
	EXPECT_EQ(2, R->cnt_tlb_misses);	/* the permission miss */
	EXPECT_EQ(1, R->cnt_tlb_hits);
	EXPECT_EQ(0xabc, *(uint64_t *)fk_ptr(F, g, 8));
	/* now cached writable: a write hits */
	EXPECT_EQ(HMIRROR_ST_OK, run(F, 1, (struct hmirror_cmd){ .opcode = HMIRROR_OP_FILL,
		  .ctx = CTX, .dst = VA0, .len = 8, .arg0 = 1 })->status);
	EXPECT_EQ(2, R->cnt_tlb_hits);
	EXPECT_EQ(1, hmdev_tlb_count(&F->dev, CTX));
}

TEST_F(x, replay_keeps_the_bytes_done)
{
	uint64_t src = VA0, dst = VA0 + 0x100000ull, gs, gd, gs2;
	uint64_t id;
	uint8_t *d;

	/* src pages 0,1 present, 2 missing; COPY of 3 pages from +100 */
	gs = fk_map_new(F, ROOT, src, 2, 0);
	pattern(fk_ptr(F, gs, 2 * FK_PG), 2 * FK_PG, 5);
	gd = fk_map_new(F, ROOT, dst, 3, 1);
	EXPECT_EQ(NULL, run(F, 1, mk(HMIRROR_OP_COPY, src + 100, dst, 3 * FK_PG - 200)));
	id = expect_fault(_metadata, F, 1, HMIRROR_ACCESS_READ, src + 2 * FK_PG, 1, 1);
	d = fk_ptr(F, gd, 3 * FK_PG);
	/* everything before the missing page is already there */
	EXPECT_EQ(0, memcmp(d, (uint8_t *)fk_ptr(F, gs, 2 * FK_PG) + 100,
			    2 * FK_PG - 100));
	EXPECT_EQ(0, d[2 * FK_PG - 100]);
	/* the bytes done are not redone: change the source under them */
	memset(fk_ptr(F, gs, FK_PG), 0xee, FK_PG);
	gs2 = fk_map_new(F, ROOT, src + 2 * FK_PG, 1, 0);
	pattern(fk_ptr(F, gs2, FK_PG), FK_PG, 6);
	fk_answer(F, 1, id, HMIRROR_FAULT_REPLAY);
	ASSERT_EQ(1, fk_cq_tail(F, 1));
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 0)->status);
	EXPECT_EQ(3 * FK_PG - 200, fk_cq(F, 1, 0)->result);	/* bytes done */
	EXPECT_NE(0xee, d[0]);
	EXPECT_EQ(0, memcmp(d + 2 * FK_PG - 100, fk_ptr(F, gs2, FK_PG), FK_PG - 100));
	EXPECT_EQ(0, d[3 * FK_PG - 200]);	/* not past len */
}

/* A cancelled COPY or FILL reports the bytes it did before the fault. */
TEST_F(x, cancelled_copy_and_fill_report_bytes_done)
{
	uint64_t src = VA0, dst = VA0 + 0x100000ull, id;

	fk_map_new(F, ROOT, src, 2, 0);
	fk_map_new(F, ROOT, dst, 3, 1);
	EXPECT_EQ(NULL, run(F, 1, mk(HMIRROR_OP_COPY, src, dst, 3 * FK_PG)));
	id = expect_fault(_metadata, F, 1, HMIRROR_ACCESS_READ, src + 2 * FK_PG, 1, 1);
	fk_answer(F, 1, id, HMIRROR_FAULT_CANCEL);
	ASSERT_EQ(1, fk_cq_tail(F, 1));
	EXPECT_EQ(HMIRROR_ST_FAULT, fk_cq(F, 1, 0)->status);
	EXPECT_EQ(2 * FK_PG, fk_cq(F, 1, 0)->result);

	/* FILL of 4 pages from dst + 8: the fourth page is missing */
	EXPECT_EQ(NULL, run(F, 1, mk(HMIRROR_OP_FILL, 0, dst + 8, 4 * FK_PG - 8)));
	id = expect_fault(_metadata, F, 1, HMIRROR_ACCESS_WRITE, dst + 3 * FK_PG, 1, 2);
	fk_answer(F, 1, id, HMIRROR_FAULT_CANCEL);
	ASSERT_EQ(2, fk_cq_tail(F, 1));
	EXPECT_EQ(HMIRROR_ST_FAULT, fk_cq(F, 1, 1)->status);
	EXPECT_EQ(3 * FK_PG - 8, fk_cq(F, 1, 1)->result);
}

TEST_F(x, answers)
{
	uint64_t id;
	uint32_t ctrl;

	EXPECT_EQ(NULL, run(F, 1, mk(HMIRROR_OP_READ, VA0, 0, 8)));
	id = expect_fault(_metadata, F, 1, HMIRROR_ACCESS_READ, VA0, 1, 1);
	/* another id, or the id without a doorbell yet: still waiting */
	fk_answer(F, 1, id + 1, HMIRROR_FAULT_REPLAY);
	fk_answer(F, 1, 0, HMIRROR_FAULT_CANCEL);
	fk_answer(F, 2, id, HMIRROR_FAULT_CANCEL);	/* wrong queue */
	EXPECT_EQ(0, fk_cq_tail(F, 1));
	EXPECT_EQ(HMIRROR_Q_STALLED, QR(1)->q_status);
	/* an answer that is neither REPLAY nor CANCEL cancels, as an error */
	ctrl = fk_irqs(F, HMIRROR_VEC_CTRL);
	fk_answer_nodb(F, 1, id, 77);
	hmdev_tick(&F->dev);			/* the tick notices it too */
	ASSERT_EQ(1, fk_cq_tail(F, 1));
	EXPECT_EQ(HMIRROR_ST_FAULT, fk_cq(F, 1, 0)->status);
	EXPECT_EQ(1, R->err_count);
	EXPECT_EQ(HMIRROR_ST_FAULT, R->err_code);
	EXPECT_EQ(77, R->err_info);
	EXPECT_EQ(1, R->err_queue);
	EXPECT_EQ(ctrl + 1, fk_irqs(F, HMIRROR_VEC_CTRL));
	EXPECT_EQ(0, R->cnt_cancels);
	EXPECT_EQ(0, R->cnt_replays);
	EXPECT_EQ(HMIRROR_Q_IDLE, QR(1)->q_status);
	EXPECT_EQ(0, QR(1)->parked);
	EXPECT_NE(0, fk_cq(F, 1, 0)->t_answer);
	/* an old answer does not match the next fault */
	EXPECT_EQ(NULL, run(F, 1, mk(HMIRROR_OP_READ, VA0, 0, 8)));
	EXPECT_NE(id, expect_fault(_metadata, F, 1, HMIRROR_ACCESS_READ, VA0, 1, 2));
	EXPECT_EQ(1, fk_cq_tail(F, 1));
}

TEST(fault_ring_full_waits)
{
	struct hmdev_config cfg;
	struct { struct fakedev f; uint64_t root; } st, *self = &st;
	struct hmirror_fault fr;
	struct hmirror_cmd c = { .opcode = HMIRROR_OP_READ, .ctx = CTX, .len = 8 };
	uint64_t root, ids[4] = { 0 };
	unsigned q;

	hmdev_config_default(&cfg);
	cfg.engines = 3;
	cfg.fault_entries = 2;
	ASSERT_EQ(0, fakedev_init_xlate(F, &cfg));
	root = fk_frame(F);
	fk_ctx_set(F, CTX, root);
	fk_reset(F);
	for (q = 1; q <= 3; q++) {
		c.src = VA0 + q * FK_2M;
		fk_submit(F, q, c);
	}
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(2, fk_fregs(F)->tail);
	EXPECT_EQ(HMIRROR_Q_STALLED, fk_qregs(F, 1)->q_status);
	EXPECT_EQ(HMIRROR_Q_STALLED, fk_qregs(F, 2)->q_status);
	/* waiting for ring room is parked too */
	EXPECT_EQ(HMIRROR_Q_STALLED, fk_qregs(F, 3)->q_status);
	EXPECT_EQ(1, fk_qregs(F, 3)->parked);
	EXPECT_EQ(2, fk_regs(F)->cnt_faults);
	hmdev_tick(&F->dev);
	EXPECT_EQ(2, fk_fregs(F)->tail);
	/* the driver consumes one record: the tick posts the third */
	ASSERT_EQ(1, fk_next_fault(F, &fr));
	EXPECT_EQ(1, fr.queue);
	ids[fr.queue] = fr.fault_id;
	hmdev_tick(&F->dev);
	EXPECT_EQ(3, fk_fregs(F)->tail);
	EXPECT_EQ(HMIRROR_Q_STALLED, fk_qregs(F, 3)->q_status);
	ASSERT_EQ(1, fk_next_fault(F, &fr));
	ids[fr.queue] = fr.fault_id;
	ASSERT_EQ(1, fk_next_fault(F, &fr));
	ids[fr.queue] = fr.fault_id;
	EXPECT_EQ(3, fr.queue);
	EXPECT_EQ(VA0 + 3 * FK_2M, fr.addr);
	EXPECT_EQ(0, fk_next_fault(F, &fr));
	for (q = 1; q <= 3; q++)
		fk_answer(F, q, ids[q], HMIRROR_FAULT_CANCEL);
	for (q = 1; q <= 3; q++)
		EXPECT_EQ(1, fk_cq_tail(F, q));
	EXPECT_EQ(0, fk_regs(F)->err_count);
	fakedev_free(F);
}

TEST_F(x, fault_ring_bad_head)
{
	/* the driver claims records that were never written */
	fk_fregs(F)->head = 5;
	EXPECT_EQ(HMIRROR_ST_BAD_INDEX, run(F, 1, mk(HMIRROR_OP_READ, VA0, 0, 8))->status);
	EXPECT_EQ(HMIRROR_ST_BAD_INDEX, R->err_code);
	EXPECT_EQ(5, R->err_info);
	EXPECT_EQ(0, fk_fregs(F)->tail);
	/* sticky until reset, even with a sane head */
	fk_fregs(F)->head = 0;
	EXPECT_EQ(HMIRROR_ST_BAD_INDEX, run(F, 2, mk(HMIRROR_OP_READ, VA0, 0, 8))->status);
	EXPECT_EQ(2, R->err_count);
	/* commands that do not fault are fine */
	fk_map_new(F, ROOT, VA0, 1, 1);
	EXPECT_EQ(HMIRROR_ST_OK, run(F, 1, mk(HMIRROR_OP_READ, VA0, 0, 8))->status);
	fk_reset(F);
	F->fault_head = 0;
	F->seq[1] = F->seq[2] = 0;
	EXPECT_EQ(NULL, run(F, 1, mk(HMIRROR_OP_READ, VA0 + FK_PG, 0, 8)));
	expect_fault(_metadata, F, 1, HMIRROR_ACCESS_READ, VA0 + FK_PG, 1, 1);
}

TEST_F(x, reset_drops_stalled_commands)
{
	uint64_t id, id2;

	EXPECT_EQ(NULL, run(F, 1, mk(HMIRROR_OP_READ, VA0, 0, 8)));
	fk_submit(F, 1, mk(HMIRROR_OP_NOP, 0, 0, 0));
	id = expect_fault(_metadata, F, 1, HMIRROR_ACCESS_READ, VA0, 1, 1);
	fk_map_new(F, ROOT, VA0, 1, 1);
	EXPECT_EQ(HMIRROR_ST_OK, run(F, 2, mk(HMIRROR_OP_READ, VA0, 0, 8))->status);
	EXPECT_EQ(1, hmdev_tlb_count(&F->dev, -1));
	fk_reset(F);
	F->fault_head = 0;
	F->seq[1] = F->seq[2] = 0;
	EXPECT_EQ(0, QR(1)->parked);
	EXPECT_EQ(HMIRROR_Q_IDLE, QR(1)->q_status);
	EXPECT_EQ(0, QR(1)->sq_head);
	EXPECT_EQ(0, QR(1)->cq_tail);
	EXPECT_EQ(0, fk_fregs(F)->tail);
	EXPECT_EQ(0, R->cnt_faults);
	EXPECT_EQ(0, R->cnt_tlb_misses);
	EXPECT_EQ(0, R->cnt_pages_walked);
	EXPECT_EQ(0, hmdev_tlb_count(&F->dev, -1));	/* the TLB is empty */
	/* the old answer arrives late: nothing happens */
	fk_answer(F, 1, id, HMIRROR_FAULT_REPLAY);
	EXPECT_EQ(0, fk_cq_tail(F, 1));
	/* the queue works again from index 0, and fault ids go on */
	EXPECT_EQ(NULL, run(F, 1, mk(HMIRROR_OP_READ, VA0 + FK_PG, 0, 8)));
	id2 = expect_fault(_metadata, F, 1, HMIRROR_ACCESS_READ, VA0 + FK_PG, 1, 1);
	EXPECT_GT(id2, id);
	fk_answer(F, 1, id2, HMIRROR_FAULT_CANCEL);
	EXPECT_EQ(1, fk_cq_tail(F, 1));
	EXPECT_EQ(1, fk_cq(F, 1, 0)->seqno);
}

/* ---- TLB ----------------------------------------------------------- */

TEST(tlb_capacity_and_invalidation)
{
	struct hmdev_config cfg;
	struct { struct fakedev f; uint64_t root; } st, *self = &st;
	struct hmirror_cmd c = { .opcode = HMIRROR_OP_READ, .ctx = CTX, .len = 8 };
	struct hmirror_cmd inv = { .opcode = HMIRROR_OP_TLB_INVAL, .ctx = CTX };
	uint64_t root;
	unsigned i;

	hmdev_config_default(&cfg);
	cfg.tlb_entries = 6;	/* one set of 6 ways */
	ASSERT_EQ(0, fakedev_init_xlate(F, &cfg));
	root = fk_frame(F);
	fk_ctx_set(F, CTX, root);
	fk_reset(F);
	fk_map_new(F, root, VA0, 16, 1);
	fk_map_huge(F, root, 0x40000000ull, FK_HUGE0, 1);
	for (i = 0; i < 16; i++) {
		c.src = VA0 + i * FK_PG;
		fk_submit(F, 1, c);
	}
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(16, fk_cq_tail(F, 1));
	EXPECT_EQ(6, hmdev_tlb_count(&F->dev, CTX));	/* capacity */
	EXPECT_EQ(16, fk_regs(F)->cnt_tlb_misses);
	/* LRU: the last 6 are in, the first are not */
	c.src = VA0 + 15 * FK_PG;
	fk_submit(F, 1, c);
	c.src = VA0 + 10 * FK_PG;
	fk_submit(F, 1, c);
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(2, fk_regs(F)->cnt_tlb_hits);
	c.src = VA0;
	fk_submit(F, 1, c);
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(17, fk_regs(F)->cnt_tlb_misses);

	/* 11 was the least recently used: now {0, 10, 12, 13, 14, 15} */
	c.src = VA0 + 11 * FK_PG;
	fk_submit(F, 1, c);
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(18, fk_regs(F)->cnt_tlb_misses);
	EXPECT_EQ(2, fk_regs(F)->cnt_tlb_hits);
	/* (11 evicted 12 again) invalidate [11, 13): 11 goes */
	inv.src = VA0 + 11 * FK_PG;
	inv.len = 2 * FK_PG;
	fk_submit(F, 0, inv);
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(1, fk_regs(F)->cnt_tlb_invals);
	EXPECT_EQ(5, hmdev_tlb_count(&F->dev, CTX));
	/* a 2 MiB entry goes when any byte of it is invalidated */
	c.src = 0x40000000ull + 12345 * 8;
	fk_submit(F, 1, c);
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(6, hmdev_tlb_count(&F->dev, CTX));
	inv.src = 0x40000000ull + FK_2M - 1;
	inv.len = 1;
	fk_submit(F, 0, inv);
	/* len 0, and ranges past 2^48 or wrapping: fine, clamped */
	inv.src = 0x40000000ull;
	inv.len = 0;
	fk_submit(F, 0, inv);
	inv.src = ~0ull - 10;
	inv.len = 100;
	fk_submit(F, 0, inv);
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(4, fk_cq_tail(F, 0));
	for (i = 0; i < 4; i++)
		EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 0, i)->status);
	EXPECT_EQ(5, hmdev_tlb_count(&F->dev, CTX));
	EXPECT_EQ(4, fk_regs(F)->cnt_tlb_invals);
	/* everything */
	inv.src = 0;
	inv.len = ~0ull;
	fk_submit(F, 0, inv);
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(0, hmdev_tlb_count(&F->dev, -1));
	EXPECT_EQ(0, fk_regs(F)->err_count);
	fakedev_free(F);
}

TEST(tlb_invalidation_probes_and_scans_agree)
{
	/* many entries in a large TLB: small ranges probe, large ones scan */
	struct hmdev_config cfg;
	struct { struct fakedev f; uint64_t root; } st, *self = &st;
	struct hmirror_cmd c = { .opcode = HMIRROR_OP_READ, .ctx = CTX, .len = 8 };
	struct hmirror_cmd inv = { .opcode = HMIRROR_OP_TLB_INVAL, .ctx = CTX };
	uint64_t root, g;
	unsigned i;

	hmdev_config_default(&cfg);
	cfg.tlb_entries = 4096;
	ASSERT_EQ(0, fakedev_init_xlate(F, &cfg));
	root = fk_frame(F);
	fk_ctx_set(F, CTX, root);
	fk_ctx_set(F, 2, root);
	fk_reset(F);
	g = fk_frame(F);
	for (i = 0; i < 200; i++)
		fk_map(F, root, VA0 + i * FK_PG, g, 0);
	for (i = 0; i < 200; i++) {
		c.src = VA0 + i * FK_PG;
		c.ctx = CTX;
		fk_submit(F, 1, c);
		c.ctx = 2;
		fk_submit(F, 2, c);
	}
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	ASSERT_EQ(200, hmdev_tlb_count(&F->dev, CTX));
	ASSERT_EQ(200, hmdev_tlb_count(&F->dev, 2));
	inv.src = VA0 + 10 * FK_PG;	/* 5 pages: probed */
	inv.len = 5 * FK_PG;
	fk_submit(F, 0, inv);
	inv.src = VA0 + 100 * FK_PG;	/* 1 TiB: scanned */
	inv.len = 1ull << 40;
	fk_submit(F, 0, inv);
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(95, hmdev_tlb_count(&F->dev, CTX));
	EXPECT_EQ(200, hmdev_tlb_count(&F->dev, 2));	/* other context */
	fakedev_free(F);
}

/* ---- data commands against the CPU ------------------------------------ */

TEST_F(x, atomics)
{
	uint64_t g = fk_map_new(F, ROOT, VA0, 1, 1), *w = fk_ptr(F, g + 64, 8);
	struct hmirror_cmd a = { .opcode = HMIRROR_OP_ATOMIC, .ctx = CTX,
				 .dst = VA0 + 64, .len = 8 };
	struct hmirror_cpl *c;

	*w = 100;
	a.arg0 = 5;
	c = run(F, 1, a);
	EXPECT_EQ(HMIRROR_ST_OK, c->status);
	EXPECT_EQ(100, c->result);
	EXPECT_EQ(105, *w);
	a.arg0 = -6ull;				/* wraps like the CPU */
	EXPECT_EQ(105, run(F, 1, a)->result);
	EXPECT_EQ(99, *w);
	a.flags = HMIRROR_ATOMIC_CMPXCHG;
	a.arg0 = 99;
	a.arg1 = 1234;
	c = run(F, 2, a);
	EXPECT_EQ(HMIRROR_ST_OK, c->status);
	EXPECT_EQ(99, c->result);
	EXPECT_EQ(1234, *w);
	a.arg0 = 99;				/* fails: old value back */
	a.arg1 = 5;
	c = run(F, 2, a);
	EXPECT_EQ(HMIRROR_ST_OK, c->status);
	EXPECT_EQ(1234, c->result);
	EXPECT_EQ(1234, *w);
	EXPECT_EQ(0, w[-1]);
	EXPECT_EQ(0, w[1]);
	EXPECT_EQ(0, R->err_count);
}

/* Reference model: the same command on flat shadow buffers. */
struct shadow {
	uint8_t *mem;		/* [VA_SPAN) shadow of [BASE, BASE + VA_SPAN) */
};

#define BASE	0x10000000ull
#define SPAN	(3 * FK_2M)	/* 4 KiB pages, a 2 MiB page, 4 KiB pages */

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

TEST_F(x, random_commands_match_the_cpu)
{
	uint8_t *sh = malloc(SPAN);
	uint64_t s = 0x9e3779b97f4a7c15ull, i, off;
	unsigned n, bad = 0;

	ASSERT_NE(NULL, sh);
	/* [BASE, +2M): 4 KiB frames above 4G and below; then 2M; then 4K */
	for (off = 0; off < SPAN; off += FK_PG) {
		if (off == FK_2M) {
			fk_map_huge(F, ROOT, BASE + off, FK_HUGE1, 1);
			off += FK_2M - FK_PG;
			continue;
		}
		fk_map(F, ROOT, BASE + off, fk_frame(F), 1);
	}
	for (off = 0; off < SPAN; off += 8) {
		uint64_t v = rnd(&s);

		memcpy(sh + off, &v, 8);
	}
	for (off = 0; off < SPAN; off += FK_PG)
		memcpy(fk_va(F, ROOT, BASE + off), sh + off, FK_PG);
	for (n = 0; n < 400; n++) {
		unsigned op = rnd(&s) % 4, q = 1 + rnd(&s) % 3;
		uint64_t len = 1 + rnd(&s) % (rnd(&s) % 3 ? 9000 : 300000);
		uint64_t a = rnd(&s) % (SPAN - len - 8), b = rnd(&s) % (SPAN - len - 8);
		struct hmirror_cmd c = { .ctx = CTX };
		struct hmirror_cpl *cp;
		uint64_t want = 0;

		switch (op) {
		case 0:	/* COPY, any alignment, may overlap */
			c.opcode = HMIRROR_OP_COPY;
			c.src = BASE + a;
			c.dst = BASE + b;
			c.len = len;
			break;
		case 1:
			c.opcode = HMIRROR_OP_READ;
			c.src = BASE + (a & ~7ull);
			c.len = (len + 7) & ~7ull;
			want = fk_fnv(sh + (a & ~7ull), c.len);
			break;
		case 2:
			c.opcode = HMIRROR_OP_FILL;
			c.dst = BASE + (a & ~7ull);
			c.len = (len + 7) & ~7ull;
			c.arg0 = rnd(&s);
			for (i = 0; i < c.len; i += 8)
				memcpy(sh + (a & ~7ull) + i, &c.arg0, 8);
			break;
		default:
			c.opcode = HMIRROR_OP_ATOMIC;
			c.flags = rnd(&s) & 1;
			c.dst = BASE + (a & ~7ull);
			c.len = 8;
			c.arg0 = rnd(&s) % 4 ? rnd(&s) : 0;
			c.arg1 = rnd(&s);
			memcpy(&want, sh + (a & ~7ull), 8);
			if (c.flags) {
				if (want == c.arg0)
					memcpy(sh + (a & ~7ull), &c.arg1, 8);
			} else {
				uint64_t v = want + c.arg0;

				memcpy(sh + (a & ~7ull), &v, 8);
			}
			break;
		}
		if (op == 0) {
			/* forward chunks through one mapping = memmove only
			 * when chunks do not overlap: avoid overlaps */
			if (a < b + len && b < a + len)
				continue;
			memmove(sh + b, sh + a, len);
		}
		cp = run(F, q, c);
		ASSERT_NE(NULL, cp) TH_LOG("cmd %u op %u src 0x%llx dst 0x%llx len %llu fault 0x%llx",
			n, op, (unsigned long long)c.src, (unsigned long long)c.dst,
			(unsigned long long)c.len, (unsigned long long)fk_fault_slot(F, 0)->addr);
		ASSERT_EQ(HMIRROR_ST_OK, cp->status) TH_LOG("cmd %u op %u", n, op);
		if (op == 1 || op == 3)
			ASSERT_EQ(want, cp->result) TH_LOG("cmd %u op %u", n, op);
	}
	for (off = 0; off < SPAN; off += FK_PG)
		if (memcmp(fk_va(F, ROOT, BASE + off), sh + off, FK_PG) && bad++ < 5)
			TH_LOG("page 0x%llx differs", (unsigned long long)off);
	EXPECT_EQ(0, bad);
	EXPECT_EQ(0, R->err_count);
	EXPECT_EQ(0, R->cnt_faults);
	free(sh);
}

TEST_F(x, overlapping_copy_is_forward_memmove_per_chunk)
{
	uint64_t g = fk_map_new(F, ROOT, VA0, 1, 1);
	uint8_t *p = fk_ptr(F, g, FK_PG), want[FK_PG];
	struct hmirror_cpl *c;

	pattern(p, FK_PG, 11);
	memcpy(want, p, FK_PG);
	memmove(want + 10, want, 1000);
	c = run(F, 1, mk(HMIRROR_OP_COPY, VA0, VA0 + 10, 1000));
	EXPECT_EQ(HMIRROR_ST_OK, c->status);
	EXPECT_EQ(0, memcmp(want, p, FK_PG));
}

TEST_HARNESS_MAIN
