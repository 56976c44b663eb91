// SPDX-License-Identifier: MIT
/*
 * What the device may touch, checked as it happens.
 *
 * Guest RAM.  An independent walker (written from device-spec.rst, not
 * from hmdev_mmu.c) follows every VALID context's tables and collects the
 * frames the device may read (tables, and pages mapped by a leaf) and
 * write (pages mapped with WRITE at every level).  A leaf whose page does
 * not lie wholly in one RAM window (a 2 MiB page straddling a window's
 * end) gives nothing: the device must refuse it.  The sets accumulate
 * until the next reset, because the device may keep using a translation
 * it cached until the driver invalidates it; the guest CPU's stores grow
 * them before they land (fz_cpu_store()).  The device's view of RAM then
 * carries the sets as page protections: not readable, read-only, or
 * read-write; and none at all while bus mastering is off and
 * acknowledged.  Any other access faults, and the SIGSEGV handler names
 * the rule before the sanitizer reports the access with its stack.
 * When the device could rewrite a page table itself (a table frame is
 * writable through some mapping) or the tables are too large to walk,
 * the RAM rule is off until the next reset (fz_ostats.off_calls).
 *
 * MIGRATE (2.1) translates nothing: each entry of its table in guest RAM
 * names a page by guest-physical address or device-memory offset.  Every
 * MIGRATE submitted since the reset (fz_oracle_migrate(), before its
 * descriptor is written) adds its table to the tables the device may read,
 * and the walker reads the table as the device will, entry by entry up to
 * the first one the device must refuse (low bits other than VRAM, a page
 * outside RAM or past the end of device memory): the "from" page readable,
 * the "to" page writable.  A table the device could write is a table it
 * could rewrite: the rule is off, as above.  A descriptor the harness did
 * not write (a scribble on a submission ring or its tail, a ring overrun)
 * could be a MIGRATE of any table: the rule is off until the next reset
 * (fz_oracle_blind()).
 *
 * Device memory (2.1, FEAT_VRAM) is the model's own anonymous mapping,
 * which the guest cannot reach; the oracle protects it page by page the
 * same way: readable if a VRAM leaf maps it (a level-1 entry with VRAM,
 * the offset below vram_pages) or a MIGRATE entry copies from it,
 * writable if the leaf is writable at every level or a MIGRATE entry
 * copies to it.  Bus mastering does not gate device memory, so the DMA
 * lock leaves these pages alone.  An access past its end lands in the
 * model's guard pages, which the fault handler names too.
 *
 * BAR2.  The model's sources are built with -fsanitize-coverage=
 * trace-stores: every store it makes calls __sanitizer_cov_storeN() first,
 * and a store into BAR2 outside the device-written halves of the
 * registers, the completion rings and the fault ring (the header, the
 * driver-written halves, the submission rings, the context table, the
 * answer tables, the rest) aborts.
 *
 * Load triggers.  They are built with trace-loads too: when the device is
 * about to load a watched word for the n-th time, the guest stores a new
 * value somewhere first, at exactly that point of the walk.  So a context
 * can lose VALID between the device's two reads of its flags, and a page
 * can appear between the walk that faulted and the walk that sizes the
 * fault's run, deterministically and in any thread.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_guest.h"

#define MAX_FRAMES	((32u << 20) / 4096)	/* RAM is at most 4 x 6.1 MiB */
#define WALK_BUDGET	256			/* tables per walk */
#define MAX_MIGRATE	512			/* tables between resets */
#define VRAM_GUARD	(64u << 10)		/* dev_mem.c's guards */

enum { P_NONE = 0, P_READ = 1, P_RW = 3 };

struct fz_oracle_stats fz_ostats;

/* pages a leaf mapped since the reset (the TLB may hold them) */
static uint8_t may_read[MAX_FRAMES], may_write[MAX_FRAMES];
/* tables: reachable at the last walk, and since the reset */
static uint8_t table_now[MAX_FRAMES], is_table[MAX_FRAMES];
static uint8_t prot_now[MAX_FRAMES];
static uint32_t visited[MAX_FRAMES][5][2], walk_gen;
static bool rule_off;		/* until the next epoch */
/* blind since the last reset request: its effect outlives the reset */
static bool blind_late;
static bool dirty;		/* tables or contexts changed since the walk */
static bool changed;		/* sets or the DMA lock changed since applied */
static bool prot_dma_locked;
static unsigned walk_tables;

/* device-memory pages, as the RAM frames above (no tables, no DMA lock) */
static uint8_t vmay_read[FZ_VRAM_MAX_PAGES], vmay_write[FZ_VRAM_MAX_PAGES];
static uint8_t vprot_now[FZ_VRAM_MAX_PAGES];
static uint64_t vpages;		/* of this device */

/* MIGRATE tables submitted since the last epoch */
static struct mig {
	uint64_t src, len;
} mig[MAX_MIGRATE];
static unsigned nmig;

/* Values the walk sees instead of memory (stores about to happen). */
struct override {
	const void *at;		/* CPU view of RAM, or BAR2 */
	uint64_t v;
	unsigned size;
};
#define MAX_OVR		4	/* a store, and the triggers armed */
static struct override ovr[MAX_OVR];
static unsigned novr;

/* ---- load triggers ---------------------------------------------------- */

/*
 * Fields are written and read atomically: the model's log writer thread
 * outlives an input, so it may still compare a load against a trigger of
 * the last input while this one reuses its slot (it never matches: it
 * loads neither BAR2 nor guest RAM).
 */
struct trigger {
	const void *watch;	/* device view of RAM, or BAR2 */
	void *dst;
	uint64_t v;
	unsigned size;
	int count;		/* loads left */
};

/*
 * Two can be armed at once: with engines running, the program gets ahead
 * of them, and a trigger must wait for the load it watches.  A third
 * replaces the older one.
 */
#define MAX_ARMED	2
#define MAX_TRIGGERS	300	/* more than the ops of one input */
static struct trigger trig_pool[MAX_TRIGGERS];
static unsigned trig_used, trig_next;
static struct trigger *trig_armed[MAX_ARMED];	/* atomic */
static struct trigger *trig_pending;	/* being armed: the walk counts it */
static int trig_fired;			/* atomic */

static void trig_load(const void *p)
{
	struct trigger *t;
	unsigned i;

	for (i = 0; i < MAX_ARMED; i++) {
		void *dst;
		uint64_t v;

		t = __atomic_load_n(&trig_armed[i], __ATOMIC_ACQUIRE);
		if (!t || __atomic_load_n(&t->watch, __ATOMIC_RELAXED) != p ||
		    __atomic_sub_fetch(&t->count, 1, __ATOMIC_ACQ_REL) != 0)
			continue;
		dst = __atomic_load_n(&t->dst, __ATOMIC_RELAXED);
		v = __atomic_load_n(&t->v, __ATOMIC_RELAXED);
		if (__atomic_load_n(&t->size, __ATOMIC_RELAXED) == 8)
			__atomic_store_n((uint64_t *)dst, v, __ATOMIC_RELEASE);
		else
			__atomic_store_n((uint32_t *)dst, (uint32_t)v, __ATOMIC_RELEASE);
		__atomic_store_n(&trig_fired, 1, __ATOMIC_RELEASE);
		__atomic_fetch_add(&fz_ostats.triggers_fired, 1, __ATOMIC_RELAXED);
		__atomic_compare_exchange_n(&trig_armed[i], &t, NULL, false,
					    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
	}
}

/* ---- BAR2 stores ------------------------------------------------------ */

struct range {
	uint32_t lo, hi;
	const char *what;
};
static struct range owned[4 + 2 * HMIRROR_MAX_QUEUES];
static unsigned nowned;
static bool bar_on;

static void own(uint32_t lo, uint32_t len, const char *what)
{
	owned[nowned++] = (struct range){ lo, lo + len, what };
}

void fz_bar_watch(bool on)
{
	const struct hmirror_header *h = &fz.dev.hdr;
	unsigned q;

	nowned = 0;
	if (on) {
		own(HMIRROR_REGS_OFF, offsetof(struct hmirror_regs, drv_ctrl),
		    "registers");
		for (q = 0; q < h->num_queues; q++) {
			own(HMIRROR_QUEUES_OFF + q * sizeof(struct hmirror_queue_regs) +
			    offsetof(struct hmirror_queue_regs, sq_head),
			    sizeof(struct hmirror_queue_regs) -
			    offsetof(struct hmirror_queue_regs, sq_head), "queue");
			own(hmirror_cq_off(h, q), h->cq_entries *
			    sizeof(struct hmirror_cpl), "CQ");
		}
		own(HMIRROR_FAULT_REGS_OFF + offsetof(struct hmirror_fault_regs, tail),
		    sizeof(struct hmirror_fault_regs) -
		    offsetof(struct hmirror_fault_regs, tail), "fault registers");
		own(hmirror_fault_ring_off(h), h->fault_entries *
		    sizeof(struct hmirror_fault), "fault ring");
	}
	__atomic_store_n(&bar_on, on, __ATOMIC_RELEASE);
}

static const char *bar_region(uint32_t off)
{
	const struct hmirror_header *h = &fz.dev.hdr;
	unsigned q;

	if (off < HMIRROR_REGS_OFF)
		return "the header";
	if (off < HMIRROR_QUEUES_OFF)
		return "the driver's half of the registers";
	if (off < HMIRROR_FAULT_REGS_OFF)
		return "the driver's half of a queue's registers";
	if (off < HMIRROR_CTX_OFF)
		return "the driver's half of the fault registers";
	if (off < HMIRROR_RINGS_OFF)
		return "the context table";
	for (q = 0; q < h->num_queues; q++)
		if (off >= hmirror_sq_off(h, q) && off < hmirror_cq_off(h, q))
			return "a submission ring";
	if (off >= hmirror_answers_off(h, 0) && off < hmirror_layout_end(h))
		return "an answer table";
	return "BAR2 outside the layout";
}

static void bar_store(const void *p, unsigned size)
{
	uintptr_t a = (uintptr_t)p, b = (uintptr_t)fz.bar;
	uint32_t off;
	unsigned i;

	if (!__atomic_load_n(&bar_on, __ATOMIC_ACQUIRE) || a < b ||
	    a >= b + FZ_BAR_SIZE)
		return;
	off = (uint32_t)(a - b);
	for (i = 0; i < nowned; i++)
		if (off >= owned[i].lo && off + size <= owned[i].hi)
			return;
	fz_fatal("the device stored %u bytes at BAR2 offset 0x%x: %s, which only the driver writes",
		 size, off, bar_region(off));
}

/*
 * SanitizerCoverage callbacks: the model's sources only are built with
 * trace-loads and trace-stores.
 */
void __sanitizer_cov_load1(uint8_t *p);
void __sanitizer_cov_load2(uint16_t *p);
void __sanitizer_cov_load4(uint32_t *p);
void __sanitizer_cov_load8(uint64_t *p);
void __sanitizer_cov_load16(__int128 *p);
void __sanitizer_cov_store1(uint8_t *p);
void __sanitizer_cov_store2(uint16_t *p);
void __sanitizer_cov_store4(uint32_t *p);
void __sanitizer_cov_store8(uint64_t *p);
void __sanitizer_cov_store16(__int128 *p);

void __sanitizer_cov_load1(uint8_t *p) { (void)p; }
void __sanitizer_cov_load2(uint16_t *p) { (void)p; }
void __sanitizer_cov_load4(uint32_t *p) { trig_load(p); }
void __sanitizer_cov_load8(uint64_t *p) { trig_load(p); }
void __sanitizer_cov_load16(__int128 *p) { (void)p; }
void __sanitizer_cov_store1(uint8_t *p) { bar_store(p, 1); }
void __sanitizer_cov_store2(uint16_t *p) { bar_store(p, 2); }
void __sanitizer_cov_store4(uint32_t *p) { bar_store(p, 4); }
void __sanitizer_cov_store8(uint64_t *p) { bar_store(p, 8); }
void __sanitizer_cov_store16(__int128 *p) { bar_store(p, 16); }

/* ---- the walker ------------------------------------------------------- */

static uint64_t load64(const void *p)
{
	unsigned i;

	if (!novr)
		return __atomic_load_n((const uint64_t *)p, __ATOMIC_ACQUIRE);
	for (i = 0; i < novr; i++)
		if (ovr[i].at == p && ovr[i].size == 8)
			return ovr[i].v;
	return __atomic_load_n((const uint64_t *)p, __ATOMIC_ACQUIRE);
}

static uint32_t load32(const void *p)
{
	unsigned i;

	for (i = 0; i < novr; i++)
		if (ovr[i].at == p && ovr[i].size == 4)
			return (uint32_t)ovr[i].v;
	return __atomic_load_n((const uint32_t *)p, __ATOMIC_ACQUIRE);
}

static uint64_t frame_of(uint64_t gpa)
{
	return fz_ram_off(gpa) / FZ_PG;
}

static void mark(uint64_t gpa, uint64_t len, bool write)
{
	uint64_t f = frame_of(gpa), n = len / FZ_PG;

	for (; n; n--, f++) {
		if (!may_read[f] || (write && !may_write[f]))
			changed = true;
		may_read[f] = 1;
		if (write)
			may_write[f] = 1;
	}
}

static void mark_vram(uint64_t off, bool write)
{
	uint64_t p = off / FZ_PG;

	if (!vmay_read[p] || (write && !vmay_write[p]))
		changed = true;
	vmay_read[p] = 1;
	if (write)
		vmay_write[p] = 1;
}

/* Entry bits that make a VALID entry BAD_PTE: VRAM too without FEAT_VRAM. */
static uint64_t pte_rsvd(void)
{
	return HMIRROR_PTE_RSVD_MASK |
	       (fz.dev.hdr.features & HMIRROR_FEAT_VRAM ? 0 : HMIRROR_PTE_VRAM);
}

static void walk_table(uint64_t table, int level, bool writable)
{
	uint64_t f, e, a;
	unsigned i;
	bool w;

	if (!fz_ram_has(table, FZ_PG))
		return;		/* the device says BAD_ADDRESS, touches nothing */
	f = frame_of(table);
	if (visited[f][level - 1][writable] == walk_gen)
		return;
	visited[f][level - 1][writable] = walk_gen;
	if (++walk_tables > WALK_BUDGET) {
		rule_off = true;
		return;
	}
	if (!table_now[f] && !may_read[f] && !may_write[f])
		changed = true;
	table_now[f] = is_table[f] = 1;
	for (i = 0; i < 512; i++) {
		e = load64(fz_ram.cpu + fz_ram_off(table) + 8 * i);
		if (!(e & HMIRROR_PTE_VALID) || (e & pte_rsvd()))
			continue;	/* not present, or BAD_PTE */
		w = writable && (e & HMIRROR_PTE_WRITE);
		a = e & HMIRROR_PTE_ADDR_MASK;
		if (e & HMIRROR_PTE_VRAM) {
			/* a 4 KiB leaf only (else BAD_PTE), below the end */
			if (level == 1 && !(e & HMIRROR_PTE_HUGE) && a < fz.vram_size)
				mark_vram(a, w);
		} else if (e & HMIRROR_PTE_HUGE) {
			/* only at level 2, aligned, and wholly in one window */
			if (level == 2 && !(a & (FZ_HUGE - 1)) &&
			    fz_ram_has(a, FZ_HUGE))
				mark(a, FZ_HUGE, w);
		} else if (level == 1) {
			if (fz_ram_has(a, FZ_PG))
				mark(a, FZ_PG, w);
		} else {
			walk_table(a, level - 1, w);
		}
	}
}

static bool readable_table(uint64_t f)
{
	return fz.threaded ? is_table[f] : table_now[f];
}

static uint8_t wanted(uint64_t f)
{
	if (fz.dma_locked)
		return P_NONE;
	if (rule_off || may_write[f])
		return P_RW;
	return may_read[f] || readable_table(f) ? P_READ : P_NONE;
}

/*
 * A MIGRATE page address as written in an entry: true if the device may
 * copy it (bits 1-11 clear; bit 0: a device-memory offset below the end,
 * else a guest page wholly in RAM).
 */
static bool migrate_page_ok(uint64_t a)
{
	uint64_t page = a & ~(FZ_PG - 1);

	if (a & (FZ_PG - 1) & ~HMIRROR_MIGRATE_VRAM)
		return false;			/* BAD_ALIGN */
	if (a & HMIRROR_MIGRATE_VRAM)
		return page < fz.vram_size;	/* else BAD_ADDRESS */
	return fz_ram_has(page, FZ_PG);
}

static void mark_migrate_page(uint64_t a, bool write)
{
	if (a & HMIRROR_MIGRATE_VRAM)
		mark_vram(a & ~(FZ_PG - 1), write);
	else
		mark(a & ~(FZ_PG - 1), FZ_PG, write);
}

/*
 * The table of a MIGRATE (in one RAM window: fz_oracle_migrate() saw it),
 * entry by entry as the device reads it, up to the first it must refuse.
 */
static void walk_migrate(const struct mig *m)
{
	const uint64_t esz = sizeof(struct hmirror_migrate_entry);
	uint64_t f, last, i, from, to;
	const uint8_t *t = fz_ram.cpu + fz_ram_off(m->src);

	last = frame_of(m->src + m->len * esz - 1);
	for (f = frame_of(m->src); f <= last; f++) {
		if (!table_now[f] && !may_read[f] && !may_write[f])
			changed = true;
		table_now[f] = is_table[f] = 1;
	}
	for (i = 0; i < m->len; i++) {
		from = load64(t + i * esz);
		to = load64(t + i * esz + 8);
		if (!migrate_page_ok(from) || !migrate_page_ok(to))
			break;
		mark_migrate_page(from, false);
		mark_migrate_page(to, true);
	}
}

static void walk_once(void)
{
	const struct hmdev *d = &fz.dev;
	unsigned c;

	if (++walk_gen == 0) {
		memset(visited, 0, sizeof(visited));
		walk_gen = 1;
	}
	walk_tables = 0;
	fz_ostats.walks++;
	for (c = 0; c < d->hdr.max_contexts && !rule_off; c++) {
		uint64_t root;

		if (!(load32(&d->ctx[c].flags) & HMIRROR_CTX_VALID))
			continue;
		root = load64(&d->ctx[c].pt_root);
		if (root & ~HMIRROR_PTE_ADDR_MASK)
			continue;	/* BAD_ADDRESS */
		walk_table(root, (int)d->pt_levels, true);
	}
	for (c = 0; c < nmig && !rule_off; c++)
		walk_migrate(&mig[c]);
}

/* The current tables, and again with each set of armed triggers fired. */
static void walk(void)
{
	struct trigger *t[MAX_ARMED + 1];
	unsigned n = 0, i, set, base = novr;
	uint64_t f;

	for (i = 0; i < MAX_ARMED; i++)
		if ((t[n] = __atomic_load_n(&trig_armed[i], __ATOMIC_ACQUIRE)))
			n++;
	if (trig_pending)
		t[n++] = trig_pending;
	/*
	 * Inline, a table unlinked since the last walk is no longer read by
	 * any walk (the TLB caches leaves only); with engines running, a walk
	 * that began before the unlink may still read it.
	 */
	if (!fz.threaded) {
		memset(table_now, 0, fz_ram.nframes);
		changed = true;
	}
	for (set = 0; set < 1u << n && !rule_off; set++) {
		novr = base;
		for (i = 0; i < n; i++)
			if (set & (1u << i))
				ovr[novr++] = (struct override){ t[i]->dst, t[i]->v,
								  t[i]->size };
		walk_once();
	}
	novr = base;
	/* the device could rewrite a table it walks: no rule until reset */
	for (f = 0; f < fz_ram.nframes && !rule_off; f++)
		if (readable_table(f) && may_write[f])
			rule_off = true;
	if (rule_off) {
		fz_ostats.off_calls++;
		changed = true;
	}
	dirty = false;
}

/* Device memory: not gated by bus mastering. */
static uint8_t wanted_vram(uint64_t p)
{
	if (rule_off || vmay_write[p])
		return P_RW;
	return vmay_read[p] ? P_READ : P_NONE;
}

/* Protect pages [0, n) of @base as @want says, runs at a time. */
static void protect(uint8_t *base, uint64_t n, uint8_t *now,
		    uint8_t (*want_of)(uint64_t), const char *what)
{
	uint64_t f = 0, g;

	while (f < n) {
		uint8_t want = want_of(f);

		if (want == now[f]) {
			f++;
			continue;
		}
		for (g = f + 1; g < n; g++) {
			if (want_of(g) != want || now[g] == want)
				break;
		}
		if (mprotect(base + f * FZ_PG, (g - f) * FZ_PG,
			     want == P_RW ? PROT_READ | PROT_WRITE :
			     want == P_READ ? PROT_READ : PROT_NONE))
			fz_fatal("mprotect %s", what);
		memset(now + f, want, g - f);
		f = g;
	}
}

static void apply(void)
{
	if (!changed && prot_dma_locked == fz.dma_locked)
		return;
	prot_dma_locked = fz.dma_locked;
	changed = false;
	protect(fz_ram.r.base, fz_ram.nframes, prot_now, wanted,
		"the device view of RAM");
	protect(fz.dev.vram.base, vpages, vprot_now, wanted_vram,
		"device memory");
}

void fz_oracle_sync(void)
{
	if (__atomic_exchange_n(&trig_fired, 0, __ATOMIC_ACQ_REL))
		dirty = true;
	if (dirty && !rule_off)
		walk();
	apply();
}

static void add_migrate(uint64_t src, uint64_t len)
{
	if (nmig == MAX_MIGRATE) {
		rule_off = true;	/* too many to follow */
		return;
	}
	mig[nmig++] = (struct mig){ src, len };
	fz_ostats.migrate_tables++;
}

void fz_oracle_epoch(void)
{
	uint64_t n = fz_ram.nframes;
	unsigned q;
	uint32_t j;

	memset(may_read, 0, n);
	memset(may_write, 0, n);
	memset(is_table, 0, n);
	memset(table_now, 0, n);
	memset(vmay_read, 0, vpages);
	memset(vmay_write, 0, vpages);
	/*
	 * A scribbled sq_tail or ring slot since the request survives the
	 * reset (the request zeroed the tails before it, not after).
	 */
	rule_off = blind_late;
	/*
	 * The MIGRATEs submitted since the reset was requested (the driver's
	 * records start there) wait in the rings: they run after it.
	 */
	nmig = 0;
	for (q = 1; q < fz.dev.num_queues; q++)
		for (j = 1; j <= fz_drv.q[q].n; j++) {
			const struct fz_cmd *r = &fz_drv.q[q].cmd[j];

			if (r->c.opcode == HMIRROR_OP_MIGRATE && r->expect < 0)
				add_migrate(r->c.src, r->c.len);
		}
	dirty = changed = true;
	fz_oracle_sync();
}

void fz_oracle_migrate(uint64_t src, uint64_t len)
{
	if (rule_off)
		return;
	add_migrate(src, len);
	dirty = true;
	fz_oracle_sync();
}

void fz_oracle_reset_requested(void)
{
	blind_late = false;
}

void fz_oracle_blind(void)
{
	blind_late = true;
	if (rule_off)
		return;
	rule_off = true;
	fz_ostats.off_calls++;
	changed = true;
	apply();
}

/* A store that may change what the tables say: grow the sets first. */
static void before_store(const void *at, uint64_t v, unsigned size)
{
	if (rule_off)
		return;
	dirty = true;
	if (!fz.threaded)
		return;		/* the walk before the next model call does */
	ovr[novr++] = (struct override){ at, v, size };	/* novr was 0 */
	walk();
	novr--;
	dirty = true;		/* the store itself is still to come */
	apply();
}

void fz_cpu_store(uint64_t gpa, uint64_t v)
{
	uint64_t *p = fz_cpu_word(gpa);

	if (!p)
		return;
	if (is_table[frame_of(gpa)])
		before_store(p, v, 8);
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

void fz_ctx_store64(void *bar_word, uint64_t v)
{
	before_store(bar_word, v, 8);
	__atomic_store_n((uint64_t *)bar_word, v, __ATOMIC_RELEASE);
}

void fz_ctx_store32(void *bar_word, uint32_t v)
{
	before_store(bar_word, v, 4);
	__atomic_store_n((uint32_t *)bar_word, v, __ATOMIC_RELEASE);
}

const void *fz_dev_addr(uint64_t gpa)
{
	return fz_ram.r.base + fz_ram_off(gpa);
}

void fz_trigger_arm(const void *watch, unsigned count, void *dst,
		    unsigned size, uint64_t v)
{
	struct trigger *t;

	if (trig_used == MAX_TRIGGERS || !count)
		return;
	t = &trig_pool[trig_used++];
	__atomic_store_n(&t->watch, watch, __ATOMIC_RELAXED);
	__atomic_store_n(&t->dst, dst, __ATOMIC_RELAXED);
	__atomic_store_n(&t->v, v, __ATOMIC_RELAXED);
	__atomic_store_n(&t->size, size, __ATOMIC_RELAXED);
	__atomic_store_n(&t->count, (int)count, __ATOMIC_RELAXED);
	/* published only after the sets include the store it will do */
	trig_pending = t;
	dirty = true;
	fz_oracle_sync();
	__atomic_store_n(&trig_armed[trig_next++ % MAX_ARMED], t, __ATOMIC_RELEASE);
	trig_pending = NULL;
}

void fz_trigger_disarm(void)
{
	unsigned i;

	for (i = 0; i < MAX_ARMED; i++)
		__atomic_store_n(&trig_armed[i], NULL, __ATOMIC_RELEASE);
}

/* ---- faults on the device's view -------------------------------------- */

static struct sigaction old_segv;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr, base = (uintptr_t)fz_ram.r.base;
	uintptr_t vbase = (uintptr_t)fz.dev.vram.base;
	const char *why = NULL;
	char buf[256];
	int n;

	(void)uc;
	if (base && a >= base && a < base + fz_ram.total) {
		uint64_t f = (a - base) / FZ_PG;

		why = fz.dma_locked ? "bus mastering is off and acknowledged" :
		      may_write[f] ? "no rule (a store on a writable frame?)" :
		      may_read[f] || readable_table(f) ?
		      "no context maps this frame writable" :
		      "no context maps this frame, nor reaches it as a table";
		n = snprintf(buf, sizeof(buf),
			     "fuzz oracle: the device touched guest RAM at offset 0x%llx (gpa 0x%llx): %s\n",
			     (unsigned long long)(a - base),
			     (unsigned long long)fz_ram_gpa(a - base), why);
	} else if (base && a >= base + fz_ram.total &&
		   a < base + fz_ram.total + FZ_HUGE) {
		n = snprintf(buf, sizeof(buf),
			     "fuzz oracle: the device touched 0x%llx bytes past the end of guest RAM\n",
			     (unsigned long long)(a - base - fz_ram.total));
	} else if (vbase && a >= vbase && a < vbase + fz.vram_size) {
		uint64_t p = (a - vbase) / FZ_PG;

		why = vmay_write[p] ? "no rule (a store on a writable page?)" :
		      vmay_read[p] ? "no VRAM leaf maps this page writable, no MIGRATE copies to it" :
		      "no VRAM leaf maps this page, no MIGRATE names it";
		n = snprintf(buf, sizeof(buf),
			     "fuzz oracle: the device touched device memory at offset 0x%llx: %s\n",
			     (unsigned long long)(a - vbase), why);
	} else if (vbase && a + VRAM_GUARD >= vbase &&
		   a < vbase + fz.vram_size + VRAM_GUARD) {
		n = snprintf(buf, sizeof(buf),
			     "fuzz oracle: the device touched the guard %s device memory (offset %lld)\n",
			     a < vbase ? "before" : "after",
			     (long long)(a - vbase));
	} else {
		n = 0;
	}
	if (n > 0 && write(2, buf, (size_t)n) < 0)
		(void)0;
	/* the access faults again, and the sanitizer reports it with its stack */
	sigaction(sig, &old_segv, NULL);
}

void fz_oracle_init_once(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, &old_segv))
		fz_fatal("sigaction SIGSEGV");
}

void fz_oracle_new_device(void)
{
	fz_trigger_disarm();
	trig_used = trig_next = 0;
	trig_pending = NULL;
	__atomic_store_n(&trig_fired, 0, __ATOMIC_RELEASE);
	memset(prot_now, P_RW, sizeof(prot_now));	/* as guest_ram_open maps it */
	memset(vprot_now, P_RW, sizeof(vprot_now));	/* as dev_mem_init does */
	vpages = fz.vram_size / FZ_PG;
	if (vpages > FZ_VRAM_MAX_PAGES)
		fz_fatal("device memory of %llu pages", (unsigned long long)vpages);
	nmig = 0;
	blind_late = false;
	prot_dma_locked = false;
	novr = 0;
}
