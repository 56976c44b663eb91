// SPDX-License-Identifier: MIT
/*
 * Device memory (device ABI 2.1, FEAT_VRAM): VRAM leaves (PTE bit 8) under
 * COPY/READ/FILL/ATOMIC, with the data checked in the device's memory and
 * guest RAM checked unchanged; the TLB and TLB_INVAL on such pages; bad
 * VRAM entries and offsets; MIGRATE in every direction with every check of
 * its descriptor, table and entries; bus mastering (it gates guest RAM
 * only); resets (device memory is kept); and engines racing MIGRATE and
 * data commands on one device page in threaded mode.
 *
 * The fixture's device has 1 MiB of device memory (256 pages), so its end
 * is easy to reach.
 */
#include <stdio.h>
#include <time.h>

#include "hmtest.h"
#include "kselftest_harness.h"

#define VA0		0x00007f1234560000ull
#define CTX		1
#define VRAM_MB		1
#define VRAM_PAGES	(VRAM_MB * 256u)
#define VRAM_END	((uint64_t)VRAM_PAGES * FK_PG)
#define V(n)		((uint64_t)(n) * FK_PG)	/* device page n's offset */
#define MV		HMIRROR_MIGRATE_VRAM
#define ON		(HMIRROR_DRV_ENABLE | HMIRROR_DRV_BUS_MASTER)
#define OFF		HMIRROR_DRV_ENABLE

FIXTURE(v) {
	struct fakedev f;
	uint64_t root;
};

static void setup_dev(struct __test_metadata *_metadata, struct fakedev *f,
		      uint64_t *root, unsigned vram_mb)
{
	struct hmdev_config cfg;

	hmdev_config_default(&cfg);
	cfg.sq_entries = 64;
	cfg.cq_entries = 64;
	cfg.fault_entries = 16;
	cfg.engines = 3;
	cfg.vram_mb = vram_mb;
	ASSERT_EQ(0, fakedev_init_xlate(f, &cfg));
	*root = fk_frame(f);
	fk_ctx_set(f, CTX, *root);
	fk_reset(f);
}

FIXTURE_SETUP(v)
{
	setup_dev(_metadata, &self->f, &self->root, VRAM_MB);
}

FIXTURE_TEARDOWN(v)
{
	fk_ram_access(&self->f, 1);
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

static struct hmirror_cmd fill(uint64_t dst, uint64_t len, uint64_t v)
{
	struct hmirror_cmd c = mk(HMIRROR_OP_FILL, 0, dst, len);

	c.arg0 = v;
	return c;
}

/* MIGRATE of @len entries of the table at guest-physical @table. */
static struct hmirror_cmd mig(uint64_t table, uint64_t len)
{
	struct hmirror_cmd c = { .opcode = HMIRROR_OP_MIGRATE, .src = table,
				 .len = len };
	return c;
}

/*
 * Submit on @q, ring; the completion or NULL if the command did not finish.
 * Completions are consumed as they come (inline mode).
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

static int all_words(const void *p, uint64_t len, uint64_t v)
{
	const uint64_t *w = p;
	uint64_t i;

	for (i = 0; i < len / 8; i++)
		if (w[i] != v)
			return 0;
	return 1;
}

/* A copy of the whole fake guest RAM, to see that nothing changed. */
static uint8_t *ram_snapshot(struct fakedev *f)
{
	uint8_t *s = malloc(f->ram.total);

	if (s)
		memcpy(s, f->ram.base, f->ram.total);
	return s;
}

static int ram_unchanged(struct fakedev *f, const uint8_t *snap)
{
	return !memcmp(snap, f->ram.base, f->ram.total);
}

/* Write MIGRATE table entry @i at guest-physical @table. */
static void entry(struct fakedev *f, uint64_t table, unsigned i, uint64_t from,
		  uint64_t to)
{
	struct hmirror_migrate_entry *e = fk_ptr(f, table + i * sizeof(*e),
						 sizeof(*e));

	e->from = from;
	e->to = to;
}

/* ---- data commands on device memory ------------------------------------ */

TEST_F(v, zero_at_start_and_apart_from_guest_ram)
{
	struct hmirror_cpl *c;
	uint8_t *snap;

	ASSERT_NE(NULL, fk_vram(F, 0, VRAM_END));
	EXPECT_EQ(NULL, fk_vram(F, 0, VRAM_END + 1));
	EXPECT_TRUE(all_words(fk_vram(F, 0, VRAM_END), VRAM_END, 0));

	fk_map_vram(F, ROOT, VA0, V(3), 1);
	snap = ram_snapshot(F);
	ASSERT_NE(NULL, snap);
	c = run(F, 1, fill(VA0, FK_PG, 0x0123456789abcdefull));
	ASSERT_NE(NULL, c);
	EXPECT_EQ(HMIRROR_ST_OK, c->status);
	EXPECT_EQ(FK_PG, c->result);
	EXPECT_TRUE(all_words(fk_vram(F, V(3), FK_PG), FK_PG, 0x0123456789abcdefull));
	/* nothing beside it, nothing in guest RAM */
	EXPECT_TRUE(all_words(fk_vram(F, V(2), FK_PG), FK_PG, 0));
	EXPECT_TRUE(all_words(fk_vram(F, V(4), FK_PG), FK_PG, 0));
	EXPECT_TRUE(ram_unchanged(F, snap));
	c = run(F, 2, mk(HMIRROR_OP_READ, VA0, 0, FK_PG));
	ASSERT_NE(NULL, c);
	EXPECT_EQ(HMIRROR_ST_OK, c->status);
	EXPECT_EQ(fk_fnv(fk_vram(F, V(3), FK_PG), FK_PG), c->result);
	EXPECT_EQ(0, R->err_count);
	EXPECT_EQ(0, R->cnt_faults);
	free(snap);
}

TEST_F(v, copy_read_fill_atomic_on_device_pages)
{
	const uint64_t vv = VA0, vw = VA0 + (2ull << 30);
	const uint64_t vg = VA0 + (1ull << 30), vg2 = VA0 + (3ull << 30);
	uint8_t want[8192], both[8192], *snap;
	struct hmirror_cpl *c;
	uint64_t g, old;
	unsigned i;

	/* two device pages each, not contiguous, and guest pages */
	fk_map_vram(F, ROOT, vv, V(5), 1);
	fk_map_vram(F, ROOT, vv + FK_PG, V(9), 1);
	fk_map_vram(F, ROOT, vw, V(12), 1);
	fk_map_vram(F, ROOT, vw + FK_PG, V(17), 1);
	g = fk_map_new(F, ROOT, vg, 2, 1);
	fk_map_new(F, ROOT, vg2, 3, 1);
	pattern(fk_ptr(F, g, 2 * FK_PG), 2 * FK_PG, 1);

	/* guest -> device, odd offsets, across a page on both sides */
	c = run(F, 1, mk(HMIRROR_OP_COPY, vg + 100, vv + 3, 6000));
	ASSERT_NE(NULL, c);
	ASSERT_EQ(HMIRROR_ST_OK, c->status);
	EXPECT_EQ(6000, c->result);
	for (i = 0; i < 6000; i++)
		ASSERT_EQ(*(uint8_t *)fk_ptr(F, g + 100 + i, 1), *fk_va(F, ROOT, vv + 3 + i))
			TH_LOG("byte %u", i);
	EXPECT_EQ(0, *fk_vram(F, V(5) + 2, 1));
	EXPECT_EQ(*(uint8_t *)fk_ptr(F, g + 100 + FK_PG - 3, 1), *fk_vram(F, V(9), 1));

	/* from here on device pages only: guest RAM must not move */
	snap = ram_snapshot(F);
	ASSERT_NE(NULL, snap);
	/* device -> device */
	for (i = 0; i < 8000; i++)
		want[i] = *fk_va(F, ROOT, vv + 8 + i);
	c = run(F, 2, mk(HMIRROR_OP_COPY, vv + 8, vw + 40, 8000));
	ASSERT_NE(NULL, c);
	ASSERT_EQ(HMIRROR_ST_OK, c->status);
	for (i = 0; i < 8000; i++)
		ASSERT_EQ(want[i], *fk_va(F, ROOT, vw + 40 + i)) TH_LOG("byte %u", i);
	EXPECT_EQ(0, *fk_vram(F, V(12) + 39, 1));
	EXPECT_EQ(want[FK_PG - 40], *fk_vram(F, V(17), 1));
	/* READ over both device pages */
	memcpy(both, fk_vram(F, V(5), FK_PG), FK_PG);
	memcpy(both + FK_PG, fk_vram(F, V(9), FK_PG), FK_PG);
	c = run(F, 3, mk(HMIRROR_OP_READ, vv, 0, 2 * FK_PG));
	ASSERT_NE(NULL, c);
	ASSERT_EQ(HMIRROR_ST_OK, c->status);
	EXPECT_EQ(fk_fnv(both, 2 * FK_PG), c->result);
	/* FILL across the two */
	c = run(F, 1, fill(vv + FK_PG - 16, 32, 0x5a5a5a5a5a5a5a5aull));
	ASSERT_NE(NULL, c);
	ASSERT_EQ(HMIRROR_ST_OK, c->status);
	EXPECT_EQ(0x5a5a5a5a5a5a5a5aull, *(uint64_t *)fk_vram(F, V(5) + FK_PG - 8, 8));
	EXPECT_EQ(0x5a5a5a5a5a5a5a5aull, *(uint64_t *)fk_vram(F, V(9) + 8, 8));
	EXPECT_NE(0x5a5a5a5a5a5a5a5aull, *(uint64_t *)fk_vram(F, V(9) + 16, 8));
	/* ATOMIC fetch-add and compare-exchange (both outcomes) */
	old = *(uint64_t *)fk_vram(F, V(9) + 64, 8);
	c = run(F, 2, (struct hmirror_cmd){ .opcode = HMIRROR_OP_ATOMIC, .ctx = CTX,
		       .dst = vv + FK_PG + 64, .len = 8, .arg0 = 5 });
	ASSERT_NE(NULL, c);
	ASSERT_EQ(HMIRROR_ST_OK, c->status);
	EXPECT_EQ(old, c->result);
	EXPECT_EQ(old + 5, *(uint64_t *)fk_vram(F, V(9) + 64, 8));
	c = run(F, 2, (struct hmirror_cmd){ .opcode = HMIRROR_OP_ATOMIC, .ctx = CTX,
		       .flags = HMIRROR_ATOMIC_CMPXCHG, .dst = vv + FK_PG + 64,
		       .len = 8, .arg0 = old, .arg1 = 77 });
	ASSERT_NE(NULL, c);
	EXPECT_EQ(old + 5, c->result);			/* no match: unchanged */
	EXPECT_EQ(old + 5, *(uint64_t *)fk_vram(F, V(9) + 64, 8));
	c = run(F, 2, (struct hmirror_cmd){ .opcode = HMIRROR_OP_ATOMIC, .ctx = CTX,
		       .flags = HMIRROR_ATOMIC_CMPXCHG, .dst = vv + FK_PG + 64,
		       .len = 8, .arg0 = old + 5, .arg1 = 77 });
	ASSERT_NE(NULL, c);
	EXPECT_EQ(old + 5, c->result);
	EXPECT_EQ(77, *(uint64_t *)fk_vram(F, V(9) + 64, 8));
	EXPECT_TRUE(ram_unchanged(F, snap));

	/* device -> guest */
	for (i = 0; i < 8192; i++)
		want[i] = *fk_va(F, ROOT, vw + i);
	c = run(F, 3, mk(HMIRROR_OP_COPY, vw, vg2 + 1, 8192));
	ASSERT_NE(NULL, c);
	ASSERT_EQ(HMIRROR_ST_OK, c->status);
	for (i = 0; i < 8192; i++)
		ASSERT_EQ(want[i], *fk_va(F, ROOT, vg2 + 1 + i)) TH_LOG("byte %u", i);
	EXPECT_EQ(0, R->err_count);
	EXPECT_EQ(0, R->cnt_faults);
	free(snap);
}

TEST_F(v, tlb_caches_device_pages_and_tlb_inval_drops_them)
{
	struct hmirror_cmd inv = { .opcode = HMIRROR_OP_TLB_INVAL, .ctx = CTX,
				   .src = VA0, .len = FK_PG };
	struct hmirror_cpl *c;
	uint64_t h3, h4, g;

	memset(fk_vram(F, V(3), FK_PG), 0x33, FK_PG);
	memset(fk_vram(F, V(4), FK_PG), 0x44, FK_PG);
	h3 = fk_fnv(fk_vram(F, V(3), 64), 64);
	h4 = fk_fnv(fk_vram(F, V(4), 64), 64);
	fk_map_vram(F, ROOT, VA0, V(3), 0);

	c = run(F, 1, mk(HMIRROR_OP_READ, VA0, 0, 64));
	ASSERT_NE(NULL, c);
	EXPECT_EQ(h3, c->result);
	EXPECT_EQ(1, R->cnt_tlb_misses);
	EXPECT_EQ(0, R->cnt_tlb_hits);
	EXPECT_EQ(1, hmdev_tlb_count(&F->dev, CTX));
	c = run(F, 1, mk(HMIRROR_OP_READ, VA0, 0, 64));
	ASSERT_NE(NULL, c);
	EXPECT_EQ(h3, c->result);
	EXPECT_EQ(1, R->cnt_tlb_hits);

	/* the entry moves to another page, no invalidation: still cached */
	fk_map_vram(F, ROOT, VA0, V(4), 0);
	c = run(F, 2, mk(HMIRROR_OP_READ, VA0, 0, 64));
	ASSERT_NE(NULL, c);
	EXPECT_EQ(h3, c->result);
	EXPECT_EQ(2, R->cnt_tlb_hits);
	EXPECT_EQ(1, R->cnt_tlb_misses);

	c = run(F, 0, inv);
	ASSERT_NE(NULL, c);
	EXPECT_EQ(HMIRROR_ST_OK, c->status);
	EXPECT_EQ(0, hmdev_tlb_count(&F->dev, CTX));
	c = run(F, 2, mk(HMIRROR_OP_READ, VA0, 0, 64));
	ASSERT_NE(NULL, c);
	EXPECT_EQ(h4, c->result);
	EXPECT_EQ(2, R->cnt_tlb_misses);

	/* and from device memory to a guest page the same way */
	g = fk_frame(F);
	memset(fk_ptr(F, g, FK_PG), 0x55, FK_PG);
	fk_map(F, ROOT, VA0, g, 0);
	c = run(F, 3, mk(HMIRROR_OP_READ, VA0, 0, 64));
	ASSERT_NE(NULL, c);
	EXPECT_EQ(h4, c->result);		/* cached */
	run(F, 0, inv);
	c = run(F, 3, mk(HMIRROR_OP_READ, VA0, 0, 64));
	ASSERT_NE(NULL, c);
	EXPECT_EQ(fk_fnv(fk_ptr(F, g, 64), 64), c->result);
	EXPECT_EQ(0, R->err_count);
}

/* A write to a read-only device page faults like any other page. */
TEST_F(v, read_only_device_pages_fault_for_writes)
{
	struct hmirror_fault fr;
	struct hmirror_cpl *c;

	fk_map_vram(F, ROOT, VA0, V(3), 0);
	fk_slot(F, ROOT, VA0 + FK_PG, 1, 1);		/* table, no entry */
	fk_map_vram(F, ROOT, VA0 + 2 * FK_PG, V(4), 0);
	fk_map_vram(F, ROOT, VA0 + 3 * FK_PG, V(5), 1);	/* ends the run */

	c = run(F, 1, mk(HMIRROR_OP_READ, VA0, 0, FK_PG));	/* reads: fine */
	ASSERT_NE(NULL, c);
	EXPECT_EQ(HMIRROR_ST_OK, c->status);
	EXPECT_EQ(NULL, run(F, 1, fill(VA0, 4 * FK_PG, 0x77)));
	ASSERT_EQ(1, fk_next_fault(F, &fr));
	EXPECT_EQ(VA0, fr.addr);
	EXPECT_EQ(HMIRROR_ACCESS_WRITE, fr.access);
	EXPECT_EQ(3, fr.npages);
	/* the driver makes them writable (and maps the hole), replays */
	fk_map_vram(F, ROOT, VA0, V(3), 1);
	fk_map_vram(F, ROOT, VA0 + FK_PG, V(6), 1);
	fk_map_vram(F, ROOT, VA0 + 2 * FK_PG, V(4), 1);
	fk_answer(F, 1, fr.fault_id, HMIRROR_FAULT_REPLAY);
	fk_set_cq_head(F, 1, fk_cq_tail(F, 1));
	ASSERT_EQ(2, fk_cq_tail(F, 1));
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 1)->status);
	EXPECT_EQ(4 * FK_PG, fk_cq(F, 1, 1)->result);
	EXPECT_TRUE(all_words(fk_vram(F, V(3), FK_PG), FK_PG, 0x77));
	EXPECT_TRUE(all_words(fk_vram(F, V(6), FK_PG), FK_PG, 0x77));
	EXPECT_TRUE(all_words(fk_vram(F, V(4), FK_PG), FK_PG, 0x77));
	EXPECT_TRUE(all_words(fk_vram(F, V(5), FK_PG), FK_PG, 0x77));
	EXPECT_EQ(0, R->err_count);
}

/* ---- bad device-memory entries ---------------------------------------- */

TEST_F(v, offset_past_device_memory_is_bad_address)
{
	static const uint64_t bad[] = {
		VRAM_END, VRAM_END + FK_PG, 1ull << 32, HMIRROR_PTE_ADDR_MASK,
	};
	struct hmirror_cpl *c;
	unsigned i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t va = VA0 + i * FK_PG;

		fk_map_vram(F, ROOT, va, bad[i], 1);
		c = run(F, 1 + i % 3, fill(va, 8, 1));
		ASSERT_NE(NULL, c);
		EXPECT_EQ(HMIRROR_ST_BAD_ADDRESS, c->status) TH_LOG("case %u", i);
		EXPECT_EQ(0, c->result);
		EXPECT_EQ(HMIRROR_ST_BAD_ADDRESS, R->err_code);
		EXPECT_EQ(bad[i], R->err_info) TH_LOG("case %u", i);
		EXPECT_EQ(i + 1, R->err_count);
	}
	EXPECT_EQ(0, hmdev_tlb_count(&F->dev, -1));	/* errors not cached */
	/* the last page is device memory */
	fk_map_vram(F, ROOT, VA0, VRAM_END - FK_PG, 1);
	c = run(F, 1, fill(VA0 + FK_PG - 8, 8, 0xabcd));
	ASSERT_NE(NULL, c);
	EXPECT_EQ(HMIRROR_ST_OK, c->status);
	EXPECT_EQ(0xabcd, *(uint64_t *)fk_vram(F, VRAM_END - 8, 8));
	EXPECT_EQ(0, R->cnt_faults);
}

TEST_F(v, vram_on_a_directory_or_a_huge_leaf_is_bad_pte)
{
	static const struct {
		int level;
		uint64_t bits;
	} bad[] = {
		{ 4, FK_PT_DIR | HMIRROR_PTE_VRAM },
		{ 3, FK_PT_DIR | HMIRROR_PTE_VRAM },
		{ 2, FK_PT_DIR | HMIRROR_PTE_VRAM },
		{ 2, FK_PT_DIR | HMIRROR_PTE_VRAM | HMIRROR_PTE_HUGE },
		{ 1, FK_PT_DIR | HMIRROR_PTE_VRAM | HMIRROR_PTE_HUGE },
		{ 1, FK_PT_DIR | HMIRROR_PTE_VRAM | (1ull << 9) },
	};
	unsigned i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t va = VA0 + ((uint64_t)i << 39);	/* own top entry */
		uint64_t *slot, e;
		struct hmirror_cpl *c;

		fk_map_vram(F, ROOT, va, V(1), 1);
		slot = fk_slot(F, ROOT, va, bad[i].level, 0);
		ASSERT_NE(NULL, slot);
		/* directories keep their table's address, leaves an offset */
		e = (bad[i].level == 1 || (bad[i].bits & HMIRROR_PTE_HUGE) ?
		     0 : (*slot & HMIRROR_PTE_ADDR_MASK)) | bad[i].bits;
		fk_set(slot, e);
		c = run(F, 1, mk(HMIRROR_OP_READ, va, 0, 8));
		ASSERT_NE(NULL, c);
		EXPECT_EQ(HMIRROR_ST_BAD_PTE, c->status) TH_LOG("case %u", i);
		EXPECT_EQ(e, R->err_info) TH_LOG("case %u", i);
		EXPECT_EQ(i + 1, R->err_count);
	}
	EXPECT_EQ(0, R->cnt_faults);
	EXPECT_EQ(0, hmdev_tlb_count(&F->dev, -1));
}

/* Without device memory, bit 8 is reserved as in 2.0. */
TEST(vram_bit_without_the_feature_is_bad_pte)
{
	struct { struct fakedev f; uint64_t root; } st, *self = &st;
	struct hmirror_cpl *c;
	uint64_t e, t, g;

	setup_dev(_metadata, F, &ROOT, 0);
	EXPECT_EQ(0, fk_hdr(F)->features & HMIRROR_FEAT_VRAM);
	EXPECT_EQ(0, fk_hdr(F)->vram_pages);
	EXPECT_EQ(NULL, fk_vram(F, 0, 1));
	fk_map_vram(F, ROOT, VA0, 0, 1);
	e = *fk_slot(F, ROOT, VA0, 1, 0);
	c = run(F, 1, mk(HMIRROR_OP_READ, VA0, 0, 8));
	ASSERT_NE(NULL, c);
	EXPECT_EQ(HMIRROR_ST_BAD_PTE, c->status);
	EXPECT_EQ(e, R->err_info);
	/* the same entry without the bit is fine */
	fk_map(F, ROOT, VA0, 0, 1);
	c = run(F, 1, mk(HMIRROR_OP_READ, VA0, 0, 8));
	ASSERT_NE(NULL, c);
	EXPECT_EQ(HMIRROR_ST_OK, c->status);

	/* MIGRATE: guest pages only; any device address is past the end */
	t = fk_frame(F);
	g = fk_frame(F);
	pattern(fk_ptr(F, g, FK_PG), FK_PG, 3);
	entry(F, t, 0, g, g + FK_PG);
	entry(F, t, 1, g, 0 | MV);
	c = run(F, 2, mig(t, 2));
	ASSERT_NE(NULL, c);
	EXPECT_EQ(HMIRROR_ST_BAD_ADDRESS, c->status);
	EXPECT_EQ(MV, R->err_info);
	EXPECT_EQ(1, c->result);
	EXPECT_EQ(0, memcmp(fk_ptr(F, g, FK_PG), fk_ptr(F, g + FK_PG, FK_PG), FK_PG));
	fk_ram_access(F, 1);
	fakedev_free(F);
}

/* ---- MIGRATE ------------------------------------------------------------- */

TEST_F(v, migrate_every_direction)
{
	uint64_t t = fk_frame(F), g1 = fk_frame(F), g2 = fk_frame(F);
	uint64_t g3 = fk_frame(F), g4 = fk_frame(F), g5 = fk_frame(F);
	uint64_t p0 = QR(1)->progress, big = FK_4G + (1ull << 20);
	uint8_t keep[FK_PG];
	struct hmirror_cpl *c;
	unsigned i;

	pattern(fk_ptr(F, g1, FK_PG), FK_PG, 1);
	pattern(fk_ptr(F, g4, FK_PG), FK_PG, 4);
	pattern(fk_vram(F, V(20), FK_PG), FK_PG, 20);
	memcpy(keep, fk_vram(F, V(20), FK_PG), FK_PG);
	/* in order: each entry sees what the ones before it did */
	entry(F, t, 0, g1, V(10) | MV);			/* guest -> device */
	entry(F, t, 1, V(10) | MV, V(11) | MV);		/* device -> device */
	entry(F, t, 2, V(11) | MV, g2);			/* device -> guest */
	entry(F, t, 3, g2, g3);				/* guest -> guest */
	entry(F, t, 4, g4, g5);
	entry(F, t, 5, V(20) | MV, V(20) | MV);		/* onto itself */
	entry(F, t, 6, V(255) | MV, FK_4G + (8ull << 20) - FK_PG);	/* last pages */

	c = run(F, 1, mig(t, 7));
	ASSERT_NE(NULL, c);
	EXPECT_EQ(HMIRROR_ST_OK, c->status);
	EXPECT_EQ(7, c->result);
	EXPECT_EQ(0, c->nfaults);
	EXPECT_EQ(HMIRROR_OP_MIGRATE, c->opcode);
	EXPECT_EQ(0, memcmp(fk_ptr(F, g1, FK_PG), fk_vram(F, V(10), FK_PG), FK_PG));
	EXPECT_EQ(0, memcmp(fk_ptr(F, g1, FK_PG), fk_vram(F, V(11), FK_PG), FK_PG));
	EXPECT_EQ(0, memcmp(fk_ptr(F, g1, FK_PG), fk_ptr(F, g2, FK_PG), FK_PG));
	EXPECT_EQ(0, memcmp(fk_ptr(F, g1, FK_PG), fk_ptr(F, g3, FK_PG), FK_PG));
	EXPECT_EQ(0, memcmp(fk_ptr(F, g4, FK_PG), fk_ptr(F, g5, FK_PG), FK_PG));
	EXPECT_EQ(0, memcmp(keep, fk_vram(F, V(20), FK_PG), FK_PG));
	EXPECT_TRUE(all_words(fk_vram(F, V(9), FK_PG), FK_PG, 0));
	EXPECT_TRUE(all_words(fk_vram(F, V(12), FK_PG), FK_PG, 0));
	/* no translation at all; a chunk per page */
	EXPECT_EQ(0, R->cnt_tlb_misses + R->cnt_tlb_hits + R->cnt_pages_walked);
	EXPECT_LE(p0 + 7, QR(1)->progress);
	EXPECT_EQ(0, R->err_count);

	/* the longest table, on another engine, 8 KiB of entries */
	for (i = 0; i < HMIRROR_MIGRATE_LEN_MAX; i++)
		entry(F, big, i, g4, V(i % VRAM_PAGES) | MV);
	c = run(F, 3, mig(big, HMIRROR_MIGRATE_LEN_MAX));
	ASSERT_NE(NULL, c);
	EXPECT_EQ(HMIRROR_ST_OK, c->status);
	EXPECT_EQ(HMIRROR_MIGRATE_LEN_MAX, c->result);
	EXPECT_EQ(0, memcmp(fk_ptr(F, g4, FK_PG), fk_vram(F, V(255), FK_PG), FK_PG));
}

struct badmig {
	struct hmirror_cmd c;
	unsigned q;
	uint16_t status;
	uint64_t info;
};

TEST_F(v, migrate_checks_its_descriptor_and_table)
{
	const uint64_t t = fk_frame(F), g = fk_frame(F);
	const uint64_t hi_end = FK_4G + (8ull << 20);
	struct hmirror_cmd c;
	struct badmig bad[24];
	unsigned n = 0, i;

#define BAD(cmd, queue, st, inf) \
	bad[n++] = (struct badmig){ (cmd), (queue), (st), (inf) }
	BAD(mig(t, 0), 1, HMIRROR_ST_BAD_LENGTH, 0);
	BAD(mig(t, HMIRROR_MIGRATE_LEN_MAX + 1), 2, HMIRROR_ST_BAD_LENGTH, 513);
	BAD(mig(t, ~0ull), 3, HMIRROR_ST_BAD_LENGTH, ~0ull);
	BAD(mig(t + 4, 1), 1, HMIRROR_ST_BAD_ALIGN, t + 4);
	BAD(mig(t + 1, 0), 1, HMIRROR_ST_BAD_LENGTH, 0);	/* length first */
	BAD(mig(t + 1, 1), 1, HMIRROR_ST_BAD_ALIGN, t + 1);
	BAD(mig(FK_LOWMEM, 1), 1, HMIRROR_ST_BAD_ADDRESS, FK_LOWMEM);
	/* the table's last entry past the end of a RAM window */
	BAD(mig(FK_LOWMEM - 16, 2), 2, HMIRROR_ST_BAD_ADDRESS, FK_LOWMEM - 16);
	BAD(mig(hi_end - 8192 + 16, 512), 2, HMIRROR_ST_BAD_ADDRESS,
	    hi_end - 8192 + 16);
	BAD(mig(~0ull - 7, 1), 3, HMIRROR_ST_BAD_ADDRESS, ~0ull - 7);
	BAD(mig(~0ull - 15, 2), 3, HMIRROR_ST_BAD_ADDRESS, ~0ull - 15);
	/* fields MIGRATE does not use */
	c = mig(t, 1); c.ctx = 1;
	BAD(c, 1, HMIRROR_ST_BAD_OPCODE, 1);
	c = mig(t, 1); c.dst = 0x1000;
	BAD(c, 1, HMIRROR_ST_BAD_OPCODE, 0x1000);
	c = mig(t, 1); c.arg0 = 5;
	BAD(c, 2, HMIRROR_ST_BAD_OPCODE, 5);
	c = mig(t, 1); c.arg1 = 1ull << 63;
	BAD(c, 2, HMIRROR_ST_BAD_OPCODE, 1ull << 63);
	c = mig(t, 1); c.flags = 1;
	BAD(c, 3, HMIRROR_ST_BAD_OPCODE, 1);
	c = mig(t, 1); c.reserved0 = 2;
	BAD(c, 3, HMIRROR_ST_BAD_OPCODE, 2);
	c = mig(t, 0); c.flags = 0x80;				/* before the length */
	BAD(c, 3, HMIRROR_ST_BAD_OPCODE, 0x80);
	c = mig(t, 1); c.ctx = 3;				/* before the queue */
	BAD(c, 0, HMIRROR_ST_BAD_OPCODE, 3);
	/* engine queues only */
	BAD(mig(t, 1), 0, HMIRROR_ST_BAD_QUEUE, HMIRROR_OP_MIGRATE);
	BAD(mig(t, 0), 0, HMIRROR_ST_BAD_QUEUE, HMIRROR_OP_MIGRATE);
#undef BAD

	/* a valid entry everywhere a table could be read */
	pattern(fk_ptr(F, g, FK_PG), FK_PG, 9);
	for (i = 0; i < 2; i++)
		entry(F, t, i, g, V(10) | MV);
	entry(F, FK_LOWMEM - 16, 0, g, V(10) | MV);
	for (i = 0; i < n; i++) {
		struct hmirror_cpl *cp = run(F, bad[i].q, bad[i].c);

		ASSERT_NE(NULL, cp) TH_LOG("case %u", i);
		EXPECT_EQ(bad[i].status, cp->status) TH_LOG("case %u", i);
		EXPECT_EQ(0, cp->result) TH_LOG("case %u", i);
		EXPECT_EQ(bad[i].status, R->err_code) TH_LOG("case %u", i);
		EXPECT_EQ(bad[i].info, R->err_info) TH_LOG("case %u", i);
		EXPECT_EQ(bad[i].q, R->err_queue) TH_LOG("case %u", i);
		EXPECT_EQ(i + 1, R->err_count);
	}
	/* nothing was copied */
	EXPECT_TRUE(all_words(fk_vram(F, V(10), FK_PG), FK_PG, 0));
	/* and the valid one does it */
	EXPECT_EQ(HMIRROR_ST_OK, run(F, 1, mig(t, 2))->status);
	EXPECT_EQ(0, memcmp(fk_ptr(F, g, FK_PG), fk_vram(F, V(10), FK_PG), FK_PG));
}

TEST_F(v, migrate_stops_at_a_bad_entry_and_keeps_the_pages_before)
{
	const uint64_t t = fk_frame(F), g = fk_frame(F), g2 = fk_frame(F);
	const struct {
		uint64_t from, to;	/* entry 2 */
		uint16_t status;
		int info_to;		/* err_info is to, else from */
	} bad[] = {
		{ 0x10, V(32) | MV, HMIRROR_ST_BAD_ALIGN, 0 },		/* g | 0x10 */
		{ V(32) | MV | 0x800, V(33) | MV, HMIRROR_ST_BAD_ALIGN, 0 },
		{ V(32) | MV, V(33) | MV | 2, HMIRROR_ST_BAD_ALIGN, 1 },
		{ V(32) | 8, V(33) | MV, HMIRROR_ST_BAD_ALIGN, 0 },
		{ VRAM_END | MV, V(33) | MV, HMIRROR_ST_BAD_ADDRESS, 0 },
		{ V(32) | MV, VRAM_END | MV, HMIRROR_ST_BAD_ADDRESS, 1 },
		{ V(32) | MV, (1ull << 63) | MV, HMIRROR_ST_BAD_ADDRESS, 1 },
		{ ~0xfffull | MV, V(33) | MV, HMIRROR_ST_BAD_ADDRESS, 0 },
		{ FK_LOWMEM, V(33) | MV, HMIRROR_ST_BAD_ADDRESS, 0 },
		{ V(32) | MV, FK_4G + (8ull << 20), HMIRROR_ST_BAD_ADDRESS, 1 },
		{ ~0xfffull, V(33) | MV, HMIRROR_ST_BAD_ADDRESS, 0 },
		/* alignment of both before either address */
		{ VRAM_END | MV, V(33) | MV | 4, HMIRROR_ST_BAD_ALIGN, 1 },
	};
	struct hmirror_cpl *c;
	unsigned i;

	pattern(fk_ptr(F, g, FK_PG), FK_PG, 5);
	memset(fk_ptr(F, g2, FK_PG), 0x3c, FK_PG);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t from = bad[i].from == 0x10 ? g | 0x10 : bad[i].from;

		memset(fk_vram(F, V(30), 4 * FK_PG), 0, 4 * FK_PG);
		entry(F, t, 0, g, V(30) | MV);
		entry(F, t, 1, g, V(31) | MV);
		entry(F, t, 2, from, bad[i].to);
		entry(F, t, 3, g, V(33) | MV);
		c = run(F, 1 + i % 3, mig(t, 4));
		ASSERT_NE(NULL, c);
		EXPECT_EQ(bad[i].status, c->status) TH_LOG("case %u", i);
		EXPECT_EQ(2, c->result) TH_LOG("case %u", i);
		EXPECT_EQ(bad[i].info_to ? bad[i].to : from, R->err_info)
			TH_LOG("case %u", i);
		EXPECT_EQ(1 + i % 3, R->err_queue);
		EXPECT_EQ(i + 1, R->err_count);
		/* the two before are done, the bad one and the next are not */
		EXPECT_EQ(0, memcmp(fk_ptr(F, g, FK_PG), fk_vram(F, V(30), FK_PG), FK_PG));
		EXPECT_EQ(0, memcmp(fk_ptr(F, g, FK_PG), fk_vram(F, V(31), FK_PG), FK_PG));
		EXPECT_TRUE(all_words(fk_vram(F, V(32), 2 * FK_PG), 2 * FK_PG, 0))
			TH_LOG("case %u", i);
	}
	/* an entry that copies a page over its own table: fine */
	memset(fk_vram(F, V(40), FK_PG), 0x3c, FK_PG);
	entry(F, t, 0, V(40) | MV, t);
	c = run(F, 2, mig(t, 1));
	ASSERT_NE(NULL, c);
	EXPECT_EQ(HMIRROR_ST_OK, c->status);
	EXPECT_EQ(1, c->result);
	EXPECT_TRUE(all_words(fk_ptr(F, t, FK_PG), FK_PG, 0x3c3c3c3c3c3c3c3cull));
	/* g2 was never a source */
	EXPECT_TRUE(all_words(fk_ptr(F, g2, FK_PG), FK_PG, 0x3c3c3c3c3c3c3c3cull));
}

struct rewrite {
	uint64_t *e;		/* host address of the table */
	unsigned calls;
};

/* At the first page access: entry 0 becomes what entry 1 is. */
static void rewrite_entry0(void *opaque, unsigned q, int phase)
{
	struct rewrite *w = opaque;

	(void)q;
	if (phase == HMDEV_HOOK_ACCESS && !w->calls++) {
		__atomic_store_n(&w->e[0], w->e[2], __ATOMIC_RELAXED);
		__atomic_store_n(&w->e[1], w->e[3], __ATOMIC_RELAXED);
	}
}

/*
 * The device reads each entry once, into its own memory: an entry the
 * driver rewrites after the device read it changes nothing.
 */
TEST_F(v, migrate_reads_each_entry_once)
{
	const uint64_t t = fk_frame(F), g = fk_frame(F), g2 = fk_frame(F);
	struct rewrite w = { .e = fk_ptr(F, t, 32) };
	struct hmirror_cpl *c;

	pattern(fk_ptr(F, g, FK_PG), FK_PG, 6);
	pattern(fk_ptr(F, g2, FK_PG), FK_PG, 7);
	entry(F, t, 0, g, V(50) | MV);
	entry(F, t, 1, g2, V(51) | MV);		/* what entry 0 becomes */
	F->dev.hook = rewrite_entry0;
	F->dev.hook_opaque = &w;
	c = run(F, 1, mig(t, 1));
	F->dev.hook = NULL;
	ASSERT_NE(NULL, c);
	EXPECT_EQ(HMIRROR_ST_OK, c->status);
	EXPECT_EQ(1, w.calls);
	EXPECT_EQ(g2, w.e[0]);			/* rewritten before the copy */
	EXPECT_EQ(0, memcmp(fk_ptr(F, g, FK_PG), fk_vram(F, V(50), FK_PG), FK_PG));
	EXPECT_TRUE(all_words(fk_vram(F, V(51), FK_PG), FK_PG, 0));
}

/* ---- bus mastering --------------------------------------------------- */

static void clear_bus_master(struct fk_gate *g, unsigned n)
{
	struct fakedev *f = g->arg;

	if (n == 3)
		__atomic_store_n(&fk_regs(f)->drv_ctrl, OFF, __ATOMIC_RELEASE);
}

/*
 * MIGRATE reads its table in guest RAM: with bus mastering off it is held
 * before it (nothing behind it runs), and it resumes where it stopped
 * once BUS_MASTER is acknowledged again.  Guest RAM is PROT_NONE while it
 * must not be touched.
 */
TEST_F(v, migrate_is_held_while_bus_mastering_is_off)
{
	struct fk_gate g = FK_GATE_INIT(2, 0);	/* never holds */
	const uint64_t t = fk_frame(F);
	unsigned i;

	memset(fk_vram(F, V(60), FK_PG), 0x61, FK_PG);
	for (i = 0; i < 8; i++)
		entry(F, t, i, V(60) | MV, V(70 + i) | MV);

	fk_ctrl(F, OFF);
	EXPECT_TRUE(R->dev_status & HMIRROR_DEV_DMA_OFF);
	ASSERT_EQ(0, fk_ram_access(F, 0));
	fk_submit(F, 1, mig(t, 1));
	fk_submit(F, 1, mk(HMIRROR_OP_NOP, 0, 0, 0));
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	hmdev_tick(&F->dev);
	EXPECT_EQ(0, fk_cq_tail(F, 1));
	EXPECT_EQ(0, QR(1)->parked);
	EXPECT_EQ(HMIRROR_Q_RUNNING, QR(1)->q_status);
	EXPECT_TRUE(all_words(fk_vram(F, V(70), FK_PG), FK_PG, 0));
	ASSERT_EQ(0, fk_ram_access(F, 1));
	fk_ctrl(F, ON);
	ASSERT_EQ(2, fk_cq_tail(F, 1));
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 0)->status);
	EXPECT_EQ(1, fk_cq(F, 1, 0)->result);
	EXPECT_TRUE(all_words(fk_vram(F, V(70), FK_PG), FK_PG, 0x6161616161616161ull));
	fk_set_cq_head(F, 1, 2);

	/* turned off in the middle: stops after the third page */
	memset(fk_vram(F, V(70), FK_PG), 0, FK_PG);
	g.on_accessed = clear_bus_master;
	g.arg = F;
	F->dev.hook_opaque = &g;
	F->dev.hook = fk_gate_hook;
	fk_submit(F, 2, mig(t, 8));
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	EXPECT_EQ(3, fk_gate_accesses(&g));
	EXPECT_EQ(0, fk_cq_tail(F, 2));
	for (i = 0; i < 8; i++)
		EXPECT_EQ(i < 3, all_words(fk_vram(F, V(70 + i), FK_PG), FK_PG,
					   0x6161616161616161ull)) TH_LOG("page %u", i);
	fk_ctrl(F, OFF);
	ASSERT_EQ(0, fk_ram_access(F, 0));
	hmdev_tick(&F->dev);
	ASSERT_EQ(0, fk_ram_access(F, 1));
	EXPECT_EQ(3, fk_gate_accesses(&g));
	fk_ctrl(F, ON);
	ASSERT_EQ(1, fk_cq_tail(F, 2));
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 2, 0)->status);
	EXPECT_EQ(8, fk_cq(F, 2, 0)->result);
	EXPECT_EQ(8, fk_gate_accesses(&g));		/* none done twice */
	for (i = 0; i < 8; i++)
		EXPECT_TRUE(all_words(fk_vram(F, V(70 + i), FK_PG), FK_PG,
				      0x6161616161616161ull)) TH_LOG("page %u", i);
	EXPECT_EQ(0, R->err_count);
	F->dev.hook = NULL;
}

/*
 * Bus mastering gates guest RAM only: with it off, a chunk whose operands
 * are device pages with cached translations runs; one that needs a walk
 * (the tables are guest RAM) or a guest page is held until it is back.
 */
TEST_F(v, device_pages_are_not_gated_by_bus_mastering)
{
	const uint64_t va_cold = VA0 + FK_PG, va_g = VA0 + (1ull << 30);
	uint64_t misses, g;

	fk_map_vram(F, ROOT, VA0, V(80), 1);
	fk_map_vram(F, ROOT, va_cold, V(81), 1);
	g = fk_map_new(F, ROOT, va_g, 1, 1);
	/* warm the TLB for VA0 and the guest page, writable */
	ASSERT_EQ(HMIRROR_ST_OK, run(F, 1, fill(VA0, 8, 1))->status);
	ASSERT_EQ(HMIRROR_ST_OK, run(F, 2, fill(va_g, 8, 1))->status);
	fk_set_cq_head(F, 1, fk_cq_tail(F, 1));
	misses = R->cnt_tlb_misses;

	fk_ctrl(F, OFF);
	ASSERT_EQ(0, fk_ram_access(F, 0));
	fk_submit(F, 1, fill(VA0, FK_PG, 0x8080));
	fk_submit(F, 1, mk(HMIRROR_OP_COPY, VA0, VA0 + 2048, 1024));
	fk_submit(F, 1, (struct hmirror_cmd){ .opcode = HMIRROR_OP_ATOMIC,
		  .ctx = CTX, .dst = VA0 + 8, .len = 8, .arg0 = 1 });
	fk_submit(F, 2, fill(va_g, FK_PG, 0x8181));		/* guest page */
	fk_submit(F, 3, fill(va_cold, FK_PG, 0x8282));	/* needs a walk */
	hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
	hmdev_tick(&F->dev);
	ASSERT_EQ(0, fk_ram_access(F, 1));
	ASSERT_EQ(4, fk_cq_tail(F, 1));
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 1)->status);
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 2)->status);
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 1, 3)->status);
	EXPECT_EQ(0x8080, fk_cq(F, 1, 3)->result);
	EXPECT_EQ(0x8081, *(uint64_t *)fk_vram(F, V(80) + 8, 8));
	EXPECT_EQ(0x8080, *(uint64_t *)fk_vram(F, V(80) + 2048, 8));
	EXPECT_EQ(0x8080, *(uint64_t *)fk_vram(F, V(80) + FK_PG - 8, 8));
	EXPECT_EQ(1, fk_cq_tail(F, 2));			/* the warm-up only */
	EXPECT_EQ(0, fk_cq_tail(F, 3));
	EXPECT_EQ(misses, R->cnt_tlb_misses);		/* nothing walked */
	EXPECT_TRUE(all_words(fk_vram(F, V(81), FK_PG), FK_PG, 0));
	EXPECT_EQ(1, *(uint64_t *)fk_ptr(F, g, 8));

	fk_ctrl(F, ON);
	ASSERT_EQ(2, fk_cq_tail(F, 2));
	ASSERT_EQ(1, fk_cq_tail(F, 3));
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 2, 1)->status);
	EXPECT_EQ(HMIRROR_ST_OK, fk_cq(F, 3, 0)->status);
	EXPECT_TRUE(all_words(fk_ptr(F, g, FK_PG), FK_PG, 0x8181));
	EXPECT_TRUE(all_words(fk_vram(F, V(81), FK_PG), FK_PG, 0x8282));
	EXPECT_EQ(0, R->err_count);
}

/* ---- resets -------------------------------------------------------------- */

TEST_F(v, device_memory_survives_resets)
{
	struct hmirror_cpl *c;
	uint64_t h;

	fk_map_vram(F, ROOT, VA0, V(90), 1);
	c = run(F, 1, fill(VA0, FK_PG, 0x9090909090909090ull));
	ASSERT_NE(NULL, c);
	ASSERT_EQ(HMIRROR_ST_OK, c->status);
	pattern(fk_vram(F, V(91), FK_PG), FK_PG, 91);
	h = fk_fnv(fk_vram(F, V(91), FK_PG), FK_PG);

	fk_reset_ctrl(F, OFF);		/* the driver's dead path */
	EXPECT_EQ(F->reset_gen, R->dev_reset_ack);
	fk_reset(F);
	EXPECT_EQ(F->reset_gen, R->dev_reset_ack);
	EXPECT_EQ(0, hmdev_tlb_count(&F->dev, -1));
	EXPECT_EQ(0, R->cnt_commands);
	EXPECT_TRUE(all_words(fk_vram(F, V(90), FK_PG), FK_PG, 0x9090909090909090ull));
	c = run(F, 2, mk(HMIRROR_OP_READ, VA0, 0, FK_PG));
	ASSERT_NE(NULL, c);
	EXPECT_EQ(fk_fnv(fk_vram(F, V(90), FK_PG), FK_PG), c->result);
	fk_map_vram(F, ROOT, VA0 + FK_PG, V(91), 0);
	c = run(F, 2, mk(HMIRROR_OP_READ, VA0 + FK_PG, 0, FK_PG));
	ASSERT_NE(NULL, c);
	EXPECT_EQ(h, c->result);
}

/* ---- threads --------------------------------------------------------------- */

FIXTURE(vt) {
	struct fakedev f;
	uint64_t root;
};

FIXTURE_SETUP(vt)
{
	setup_dev(_metadata, &self->f, &self->root, VRAM_MB);
	ASSERT_EQ(0, hmdev_start(&self->f.dev));
}

FIXTURE_TEARDOWN(vt)
{
	fakedev_free(&self->f);		/* joins the engine threads */
}

#define WORD_A	0xaaaaaaaaaaaaaaaaull
#define WORD_B	0xbbbbbbbbbbbbbbbbull
#define WORD_C	0xccccccccccccccccull

/* Every word of a page the racers wrote is one of theirs: none torn. */
static int words_from_writers(const void *p)
{
	const uint64_t *w = p;
	unsigned i;

	for (i = 0; i < FK_PG / 8; i++)
		if (w[i] && w[i] != WORD_A && w[i] != WORD_B && w[i] != WORD_C)
			return 0;
	return 1;
}

enum { K_OTHER, K_PEEK, K_ADD };
#define RACE_ROUNDS	40
#define RACE_PER	12	/* commands per engine per round */
#define RACE_ADDS	(RACE_ROUNDS * (RACE_PER / 4) * 3)

struct race {
	struct fakedev *f;
	uint8_t kind[4][RACE_ROUNDS * RACE_PER + 2];	/* by seqno */
};

static void sub(struct race *r, unsigned q, struct hmirror_cmd c, int kind)
{
	fk_submit(r->f, q, c);
	r->kind[q][r->f->seq[q]] = (uint8_t)kind;
}

/*
 * Three engines hammer device page 100 at once: MIGRATE into it, out of it
 * and to another device page, FILL, COPY, READ and ATOMIC on it through
 * its translation, while queue 0 drops that translation every round, and
 * every engine adds to a counter in device page 101.  Whatever the order,
 * every command completes OK, no word is torn (FILL, MIGRATE and ATOMIC
 * access words), every ATOMIC on page 100 sees a value some writer wrote,
 * the counter's fetch-adds saw each value 0 .. N - 1 exactly once, and
 * ASan/UBSan see nothing.
 */
TEST_F(vt, engines_race_migrate_and_data_commands_on_one_device_page)
{
	const uint64_t va_p = VA0, va_q = VA0 + FK_PG, va_g = VA0 + (1ull << 30);
	uint64_t tin = fk_frame(F), tout = fk_frame(F), tvv = fk_frame(F);
	uint64_t gc = fk_frame(F), gout = fk_frame(F);
	static struct race race;
	static uint8_t add_seen[RACE_ADDS];
	uint32_t want[4] = { 0 };
	unsigned r, q, k, bad_peek = 0, bad_add = 0, bad_status = 0;

	memset(&race, 0, sizeof(race));
	memset(add_seen, 0, sizeof(add_seen));
	race.f = F;
	fk_map_vram(F, ROOT, va_p, V(100), 1);
	fk_map_vram(F, ROOT, va_q, V(101), 1);
	fk_map_new(F, ROOT, va_g, 1, 1);
	memset(fk_ptr(F, gc, FK_PG), 0xcc, FK_PG);
	entry(F, tin, 0, gc, V(100) | MV);
	entry(F, tout, 0, V(100) | MV, gout);
	entry(F, tvv, 0, V(100) | MV, V(102) | MV);

	for (r = 0; r < RACE_ROUNDS; r++) {
		for (k = 0; k < RACE_PER; k++) {
			struct hmirror_cmd add = { .opcode = HMIRROR_OP_ATOMIC,
				.ctx = CTX, .dst = va_q, .len = 8, .arg0 = 1 };
			struct hmirror_cmd peek = { .opcode = HMIRROR_OP_ATOMIC,
				.ctx = CTX, .dst = va_p + 8 * (k + r), .len = 8 };

			switch (k % 4) {
			case 0:
				sub(&race, 1, mig(tin, 1), K_OTHER);
				sub(&race, 2, fill(va_p, FK_PG, r & 1 ? WORD_A : WORD_B),
				    K_OTHER);
				sub(&race, 3, mk(HMIRROR_OP_COPY, va_p, va_g, FK_PG),
				    K_OTHER);
				break;
			case 1:
				sub(&race, 1, mig(tout, 1), K_OTHER);
				sub(&race, 2, peek, K_PEEK);
				sub(&race, 3, mig(tvv, 1), K_OTHER);
				break;
			case 2:
				for (q = 1; q < 4; q++)
					sub(&race, q, add, K_ADD);
				break;
			default:
				sub(&race, 1, peek, K_PEEK);
				sub(&race, 2, mk(HMIRROR_OP_READ, va_p, 0, FK_PG),
				    K_OTHER);
				sub(&race, 3, fill(va_p + 512, 1024, WORD_C), K_OTHER);
				break;
			}
		}
		sub(&race, 0, (struct hmirror_cmd){ .opcode = HMIRROR_OP_TLB_INVAL,
		    .ctx = CTX, .src = va_p, .len = FK_PG }, K_OTHER);
		want[0] += 1;
		for (q = 1; q < 4; q++)
			want[q] += RACE_PER;
		hmdev_doorbell(&F->dev, HMIRROR_VEC_CQ);
		for (q = 0; q < 4; q++) {
			uint64_t end = fk_now_ms() + FK_TMO_MS;

			while (fk_cq_tail(F, q) != want[q] && fk_now_ms() < end)
				fk_pause_us(50);
			ASSERT_EQ(want[q], fk_cq_tail(F, q)) TH_LOG("round %u queue %u", r, q);
			for (k = F->cq_head[q]; k != want[q]; k++) {
				struct hmirror_cpl *c = fk_cq(F, q, k);
				uint64_t v = c->result;

				bad_status += c->status != HMIRROR_ST_OK;
				ASSERT_GT(sizeof(race.kind[q]), c->seqno);
				switch (race.kind[q][c->seqno]) {
				case K_PEEK:
					bad_peek += v && v != WORD_A && v != WORD_B &&
						    v != WORD_C;
					break;
				case K_ADD:
					if (v >= RACE_ADDS || add_seen[v]++)
						bad_add++;
					break;
				}
			}
			fk_set_cq_head(F, q, want[q]);
		}
	}
	EXPECT_EQ(0, bad_status);
	EXPECT_EQ(0, bad_peek);
	EXPECT_EQ(0, bad_add);
	EXPECT_EQ(0, R->err_count);
	EXPECT_EQ(RACE_ADDS, *(uint64_t *)fk_vram(F, V(101), 8));
	EXPECT_TRUE(words_from_writers(fk_vram(F, V(100), FK_PG)));
	EXPECT_TRUE(words_from_writers(fk_vram(F, V(102), FK_PG)));
	EXPECT_TRUE(words_from_writers(fk_ptr(F, gout, FK_PG)));
	EXPECT_EQ(want[0] + want[1] + want[2] + want[3], R->cnt_commands);
	EXPECT_LT(0, R->cnt_tlb_invals);
}

TEST_HARNESS_MAIN
