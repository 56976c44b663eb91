/* SPDX-License-Identifier: MIT */
/* Helpers shared by the host tests: a device on a malloc'd BAR. */
#ifndef HMTEST_H
#define HMTEST_H

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "guest_ram.h"
#include "hmdev.h"
#include "hmdev_internal.h"
#include "log.h"

struct fakedev {
	struct hmdev dev;
	void *bar;
	size_t bar_size;
	struct guest_ram ram;		/* fake guest RAM (base NULL: none) */
	unsigned irqs[HMIRROR_NUM_VECTORS];	/* atomic: engine threads */
	unsigned irq_bad;		/* vectors out of range */
	uint32_t sq_tail[HMIRROR_MAX_QUEUES];	/* driver-side copies */
	uint32_t cq_head[HMIRROR_MAX_QUEUES];
	uint32_t reset_gen;
	uint64_t seq[HMIRROR_MAX_QUEUES];	/* last seqno given per queue */
	uint32_t fault_head;		/* driver's fault ring consumer */
	uint64_t frame_next;		/* fk_frame() bump allocator */
	uint32_t ctrl_gen;		/* driver's drv_ctrl_gen */
	uint64_t sd_epoch;		/* driver's last shootdown epoch */
	/* fault records taken (fk_next_fault), to answer them by id */
	struct { uint64_t id; uint16_t tag; uint8_t queue; } seen[1024];
	unsigned nseen;
};

static inline void fake_irq(void *opaque, unsigned v)
{
	struct fakedev *f = opaque;

	if (v < HMIRROR_NUM_VECTORS)
		__atomic_fetch_add(&f->irqs[v], 1, __ATOMIC_SEQ_CST);
	else
		__atomic_fetch_add(&f->irq_bad, 1, __ATOMIC_SEQ_CST);
}

/*
 * Fake guest RAM: @ram_bytes (a multiple of 4 KiB) readable and writable,
 * 2 MiB aligned, between PROT_NONE guards of at least 2 MiB each, so that
 * the device reading or writing up to a whole 2 MiB page past either end
 * crashes the test instead of going unnoticed.
 */
#define FK_GUARD	(2ull << 20)

static inline int fk_ram_map(struct guest_ram *r, uint64_t ram_bytes)
{
	uint8_t *m;
	uintptr_t a;

	r->reserve_len = ram_bytes + 3 * FK_GUARD;	/* guards + alignment */
	m = mmap(NULL, r->reserve_len, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return -1;
	r->reserve = m;
	a = ((uintptr_t)m + FK_GUARD + FK_GUARD - 1) & ~(uintptr_t)(FK_GUARD - 1);
	r->base = (uint8_t *)a;
	return mprotect(r->base, ram_bytes, PROT_READ | PROT_WRITE);
}

/*
 * 0 on success.  With @ram_bytes, a zeroed fake guest RAM of that size
 * (q35 map with @lowmem, 0 for the default) backs the device.
 */
static inline int fakedev_init_ram(struct fakedev *f, const struct hmdev_config *cfg,
				   uint64_t ram_bytes, uint64_t lowmem)
{
	uint64_t size = hmdev_bar_size(cfg);

	memset(f, 0, sizeof(*f));
	if (ram_bytes) {
		if (guest_ram_set_layout(&f->ram, ram_bytes, lowmem) ||
		    fk_ram_map(&f->ram, ram_bytes))
			return -1;
	}
	/* keep the KTAP output clean; HMTEST_LOG=1 shows the model's log */
	if (!hm_log_file && !getenv("HMTEST_LOG"))
		hm_log_file = fopen("/dev/null", "we");
	if (!size)
		return -1;
	f->bar_size = (size_t)size;
	f->bar = aligned_alloc(4096, f->bar_size);
	if (!f->bar)
		return -1;
	memset(f->bar, 0xa5, f->bar_size);	/* init must clear it */
	return hmdev_init(&f->dev, cfg, f->bar, f->bar_size,
			  ram_bytes ? &f->ram : NULL, fake_irq, f, NULL, 0);
}

static inline int fakedev_init(struct fakedev *f, const struct hmdev_config *cfg)
{
	return fakedev_init_ram(f, cfg, 0, 0);
}

static inline void fakedev_free(struct fakedev *f)
{
	hmdev_fini(&f->dev);
	free(f->bar);
	f->bar = NULL;
	if (f->ram.reserve)
		munmap(f->ram.reserve, f->ram.reserve_len);
	f->ram.reserve = NULL;
	f->ram.base = NULL;
}

/* Make the whole fake guest RAM inaccessible (0) or usable again (1). */
static inline int fk_ram_access(struct fakedev *f, int on)
{
	return mprotect(f->ram.base, f->ram.total,
			on ? PROT_READ | PROT_WRITE : PROT_NONE);
}

static inline unsigned fk_irqs(struct fakedev *f, unsigned v)
{
	return __atomic_load_n(&f->irqs[v], __ATOMIC_SEQ_CST);
}

static inline struct hmirror_header *fk_hdr(struct fakedev *f)
{
	return f->bar;
}

static inline struct hmirror_regs *fk_regs(struct fakedev *f)
{
	return (void *)((char *)f->bar + HMIRROR_REGS_OFF);
}

static inline struct hmirror_queue_regs *fk_qregs(struct fakedev *f, unsigned q)
{
	return (struct hmirror_queue_regs *)((char *)f->bar + HMIRROR_QUEUES_OFF) + q;
}

/* Uses the device's private header copy: tests may scribble on the BAR's. */
static inline struct hmirror_cmd *fk_sq(struct fakedev *f, unsigned q, uint32_t idx)
{
	struct hmirror_cmd *sq = (void *)((char *)f->bar + hmirror_sq_off(&f->dev.hdr, q));

	return &sq[idx & (f->dev.hdr.sq_entries - 1)];
}

static inline struct hmirror_cpl *fk_cq(struct fakedev *f, unsigned q, uint32_t idx)
{
	struct hmirror_cpl *cq = (void *)((char *)f->bar + hmirror_cq_off(&f->dev.hdr, q));

	return &cq[idx & (f->dev.hdr.cq_entries - 1)];
}

/* Driver side: write a command into the next slot (no doorbell). */
static inline void fk_put(struct fakedev *f, unsigned q, const struct hmirror_cmd *c)
{
	*fk_sq(f, q, f->sq_tail[q]) = *c;
	f->sq_tail[q]++;
	__atomic_store_n(&fk_qregs(f, q)->sq_tail, f->sq_tail[q], __ATOMIC_RELEASE);
}

/* A NOP-like command tagged by its SQ index (unique while it is in flight). */
static inline void fk_op(struct fakedev *f, unsigned q, uint8_t op, uint64_t seqno)
{
	struct hmirror_cmd c = { .opcode = op, .seqno = seqno,
				 .tag = (uint16_t)(f->sq_tail[q] &
						   (f->dev.hdr.sq_entries - 1)) };

	fk_put(f, q, &c);
}

/* Driver side: change drv_ctrl and ask the device to act on it (no doorbell). */
static inline void fk_ctrl_nodb(struct fakedev *f, uint32_t ctrl)
{
	__atomic_store_n(&fk_regs(f)->drv_ctrl, ctrl, __ATOMIC_RELEASE);
	__atomic_store_n(&fk_regs(f)->drv_ctrl_gen, ++f->ctrl_gen, __ATOMIC_RELEASE);
}

static inline void fk_ctrl(struct fakedev *f, uint32_t ctrl)
{
	fk_ctrl_nodb(f, ctrl);
	hmdev_doorbell(&f->dev, HMIRROR_VEC_CTRL);
}

/*
 * Driver side of the reset handshake, as the driver's probe does it: zero
 * the driver indices, drv_ctrl = @ctrl (bump drv_ctrl_gen), bump
 * drv_reset_gen, ring CTRL once.
 */
static inline void fk_reset_ctrl(struct fakedev *f, uint32_t ctrl)
{
	unsigned q;

	for (q = 0; q < f->dev.num_queues; q++) {
		f->sq_tail[q] = f->cq_head[q] = 0;
		fk_qregs(f, q)->sq_tail = 0;
		fk_qregs(f, q)->cq_head = 0;
	}
	f->fault_head = 0;
	memset(f->seq, 0, sizeof(f->seq));
	__atomic_store_n((uint32_t *)((char *)f->bar + HMIRROR_FAULT_REGS_OFF), 0,
			 __ATOMIC_RELEASE);	/* fault ring head */
	fk_ctrl_nodb(f, ctrl);
	fk_regs(f)->drv_reset_gen = ++f->reset_gen;
	hmdev_doorbell(&f->dev, HMIRROR_VEC_CTRL);
}

static inline void fk_reset(struct fakedev *f)
{
	fk_reset_ctrl(f, HMIRROR_DRV_ENABLE | HMIRROR_DRV_BUS_MASTER);
}

static inline void fk_set_cq_head(struct fakedev *f, unsigned q, uint32_t v)
{
	f->cq_head[q] = v;
	__atomic_store_n(&fk_qregs(f, q)->cq_head, v, __ATOMIC_RELEASE);
}


/* ---- fake guest RAM, page tables, contexts ---------------------------- */

/*
 * The translation tests use 16 MiB of RAM with lowmem at 8 MiB: guest
 * physical [0, 8M) and [4G, 4G + 8M).  fk_frame() hands out zeroed 4 KiB
 * frames from 1 MiB up to 6 MiB, then from 4G up to 4G + 6 MiB; the 2 MiB
 * frames at 6 MiB and at 4G + 6 MiB are left for huge pages (FK_HUGE0/1).
 */
#define FK_RAM		(16ull << 20)
#define FK_LOWMEM	(8ull << 20)
#define FK_4G		0x100000000ull
#define FK_HUGE0	(6ull << 20)
#define FK_HUGE1	(FK_4G + (6ull << 20))
#define FK_PG		4096ull
#define FK_2M		(2ull << 20)
#define FK_PT_DIR	(HMIRROR_PTE_VALID | HMIRROR_PTE_WRITE)

static inline int fakedev_init_xlate(struct fakedev *f, const struct hmdev_config *cfg)
{
	int r = fakedev_init_ram(f, cfg, FK_RAM, FK_LOWMEM);

	f->frame_next = 1ull << 20;
	return r;
}

static inline void *fk_ptr(struct fakedev *f, uint64_t gpa, uint64_t len)
{
	return guest_ram_ptr(&f->ram, gpa, len);
}

/* A zeroed 4 KiB frame (GPA), 0 when out of frames. */
static inline uint64_t fk_frame(struct fakedev *f)
{
	uint64_t g = f->frame_next;

	if (g == FK_HUGE0)
		g = FK_4G;
	if (g >= FK_HUGE1)
		return 0;
	f->frame_next = g + FK_PG;
	memset(fk_ptr(f, g, FK_PG), 0, FK_PG);
	return g;
}

static inline unsigned fk_idx(uint64_t va, int level)
{
	return (unsigned)(va >> (12 + 9 * (level - 1))) & 511;
}

static inline int fk_levels(struct fakedev *f)
{
	return (int)hmirror_pt_levels(f->dev.hdr.va_bits);
}

/*
 * The entry for @va at @level (1: 4 KiB leaf, 2: 2 MiB leaf, ..., 4 or 5:
 * top), creating directories (VALID | WRITE) on the way if @create.
 */
static inline uint64_t *fk_slot(struct fakedev *f, uint64_t root, uint64_t va,
				int level, int create)
{
	uint64_t table = root, *t;
	int l;

	for (l = fk_levels(f); l > level; l--) {
		uint64_t *e;

		t = fk_ptr(f, table, FK_PG);
		if (!t)
			return NULL;
		e = &t[fk_idx(va, l)];
		if (!(__atomic_load_n(e, __ATOMIC_ACQUIRE) & HMIRROR_PTE_VALID)) {
			if (!create)
				return NULL;
			__atomic_store_n(e, fk_frame(f) | FK_PT_DIR, __ATOMIC_RELEASE);
		}
		table = *e & HMIRROR_PTE_ADDR_MASK;
	}
	t = fk_ptr(f, table, FK_PG);
	return t ? &t[fk_idx(va, level)] : NULL;
}

static inline void fk_set(uint64_t *slot, uint64_t v)
{
	__atomic_store_n(slot, v, __ATOMIC_RELEASE);
}

static inline void fk_map(struct fakedev *f, uint64_t root, uint64_t va,
			  uint64_t gpa, int write)
{
	fk_set(fk_slot(f, root, va, 1, 1), gpa | HMIRROR_PTE_VALID |
	       (write ? HMIRROR_PTE_WRITE : 0));
}

static inline void fk_map_huge(struct fakedev *f, uint64_t root, uint64_t va,
			       uint64_t gpa, int write)
{
	fk_set(fk_slot(f, root, va, 2, 1), gpa | HMIRROR_PTE_VALID |
	       HMIRROR_PTE_HUGE | (write ? HMIRROR_PTE_WRITE : 0));
}

static inline void fk_unmap(struct fakedev *f, uint64_t root, uint64_t va)
{
	uint64_t *e = fk_slot(f, root, va, 1, 0);

	if (e)
		fk_set(e, 0);
}

/*
 * Map @n pages from @va to fresh frames, contiguous in guest-physical
 * space (the tables are made first); returns the first frame's GPA.
 */
static inline uint64_t fk_map_new(struct fakedev *f, uint64_t root, uint64_t va,
				  unsigned n, int write)
{
	uint64_t first = 0, g;
	unsigned i;

	for (i = 0; i < n; i++)
		fk_slot(f, root, va + i * FK_PG, 1, 1);
	for (i = 0; i < n; i++) {
		g = fk_frame(f);
		if (!i)
			first = g;
		fk_map(f, root, va + i * FK_PG, g, write);
	}
	return first;
}

/* ---- device memory (FEAT_VRAM) ---------------------------------------- */

/* Host address of [off, off + len) of the device's memory, or NULL. */
static inline uint8_t *fk_vram(struct fakedev *f, uint64_t off, uint64_t len)
{
	return dev_mem_ptr(&f->dev.vram, off, len);
}

/* A 4 KiB leaf for @va on device-memory offset @off. */
static inline void fk_map_vram(struct fakedev *f, uint64_t root, uint64_t va,
			       uint64_t off, int write)
{
	fk_set(fk_slot(f, root, va, 1, 1), off | HMIRROR_PTE_VALID |
	       HMIRROR_PTE_VRAM | (write ? HMIRROR_PTE_WRITE : 0));
}

/*
 * Host address the page tables give @va (4 KiB or 2 MiB leaf, in guest RAM
 * or device memory), or NULL.
 */
static inline uint8_t *fk_va(struct fakedev *f, uint64_t root, uint64_t va)
{
	uint64_t *e = fk_slot(f, root, va, 2, 0);

	if (e && (*e & HMIRROR_PTE_HUGE))
		return fk_ptr(f, (*e & HMIRROR_PTE_ADDR_MASK) + (va & (FK_2M - 1)), 1);
	e = fk_slot(f, root, va, 1, 0);
	if (!e || !(*e & HMIRROR_PTE_VALID))
		return NULL;
	if (*e & HMIRROR_PTE_VRAM)
		return fk_vram(f, (*e & HMIRROR_PTE_ADDR_MASK) + (va & (FK_PG - 1)), 1);
	return fk_ptr(f, (*e & HMIRROR_PTE_ADDR_MASK) + (va & (FK_PG - 1)), 1);
}

static inline struct hmirror_ctx_entry *fk_ctx(struct fakedev *f, unsigned id)
{
	return (struct hmirror_ctx_entry *)((char *)f->bar + HMIRROR_CTX_OFF) + id;
}

static inline void fk_ctx_set(struct fakedev *f, unsigned id, uint64_t root)
{
	__atomic_store_n(&fk_ctx(f, id)->pt_root, root, __ATOMIC_RELEASE);
	__atomic_store_n(&fk_ctx(f, id)->flags, HMIRROR_CTX_VALID, __ATOMIC_RELEASE);
}

/* ---- threaded tests: clock, short sleeps, bounded polls ---------------- */

#define FK_TMO_MS	20000

static inline uint64_t fk_now_ms(void)
{
	return hmdev_now_ns() / 1000000;
}

static inline void fk_pause_us(unsigned us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

/*
 * Poll @cond until true or FK_TMO_MS, running @pause between rounds.  The
 * condition is evaluated once per round and that value is the verdict:
 * some are true only for a moment (fk_sd_done() turns false again when an
 * engine begins its next access), so evaluating it again after the loop
 * could report a timeout that never happened.
 */
#define FK_POLL(cond, pause) ({					\
	uint64_t __end = fk_now_ms() + FK_TMO_MS;		\
	int __ok;						\
	while (!(__ok = !!(cond)) && fk_now_ms() < __end)	\
		pause;						\
	__ok;							\
})

/* Poll @cond every 50 us (see FK_POLL). */
#define FK_WAIT_FOR(cond)	FK_POLL(cond, fk_pause_us(50))

/* ---- commands, faults ---------------------------------------------- */

/* Queue @c on @q with the next seqno and tag @tag; returns its SQ index. */
static inline uint32_t fk_submit_tag(struct fakedev *f, unsigned q,
				     struct hmirror_cmd c, uint16_t tag)
{
	uint32_t idx = f->sq_tail[q];

	c.seqno = ++f->seq[q];
	c.tag = tag;
	fk_put(f, q, &c);
	return idx;
}

/*
 * Queue @c on @q with the next seqno, tagged by its SQ index: unique only
 * while fewer than sq_entries SQ indices lie between the oldest command in
 * flight and the newest (a command parked on a fault is overtaken: a test
 * that keeps submitting past it takes free tags, fk_submit_tag()); returns
 * its SQ index, which is also its CQ index while completions come in order.
 */
static inline uint32_t fk_submit(struct fakedev *f, unsigned q, struct hmirror_cmd c)
{
	return fk_submit_tag(f, q, c,
			     (uint16_t)(f->sq_tail[q] & (f->dev.hdr.sq_entries - 1)));
}

static inline uint32_t fk_cq_tail(struct fakedev *f, unsigned q)
{
	return __atomic_load_n(&fk_qregs(f, q)->cq_tail, __ATOMIC_ACQUIRE);
}

static inline struct hmirror_fault_regs *fk_fregs(struct fakedev *f)
{
	return (void *)((char *)f->bar + HMIRROR_FAULT_REGS_OFF);
}

static inline struct hmirror_fault *fk_fault_slot(struct fakedev *f, uint32_t i)
{
	struct hmirror_fault *r = (void *)((char *)f->bar +
					   hmirror_fault_ring_off(&f->dev.hdr));

	return &r[i & (f->dev.hdr.fault_entries - 1)];
}

/* Driver side: take the next fault record (1) or find none (0). */
static inline int fk_next_fault(struct fakedev *f, struct hmirror_fault *out)
{
	uint32_t tail = __atomic_load_n(&fk_fregs(f)->tail, __ATOMIC_ACQUIRE);
	unsigned n = sizeof(f->seen) / sizeof(f->seen[0]);

	if (tail == f->fault_head)
		return 0;
	memcpy(out, fk_fault_slot(f, f->fault_head), sizeof(*out));
	f->fault_head++;
	__atomic_store_n(&fk_fregs(f)->head, f->fault_head, __ATOMIC_RELEASE);
	f->seen[f->nseen % n].id = out->fault_id;
	f->seen[f->nseen % n].tag = out->tag;
	f->seen[f->nseen % n].queue = out->queue;
	f->nseen++;
	return 1;
}

/* The tag of fault @id as its record said (0 if never seen). */
static inline uint16_t fk_fault_tag(struct fakedev *f, uint64_t id)
{
	unsigned i, n = sizeof(f->seen) / sizeof(f->seen[0]);

	for (i = 0; i < n; i++)
		if (f->seen[i].id == id && id)
			return f->seen[i].tag;
	return 0;
}

static inline struct hmirror_fault_answer *fk_answer_slot(struct fakedev *f,
							  unsigned q, uint16_t tag)
{
	struct hmirror_fault_answer *a = (void *)((char *)f->bar +
						  hmirror_answers_off(&f->dev.hdr, q));

	return &a[tag];
}

/* Driver side: answer table entry @tag of queue @q: answer, then id. */
static inline void fk_answer_at(struct fakedev *f, unsigned q, uint16_t tag,
				uint64_t id, uint32_t answer)
{
	struct hmirror_fault_answer *a = fk_answer_slot(f, q, tag);

	__atomic_store_n(&a->answer, answer, __ATOMIC_RELAXED);
	__atomic_store_n(&a->fault_id, id, __ATOMIC_RELEASE);
}

/* Answer fault @id at the tag its record named, on queue @q (no doorbell). */
static inline void fk_answer_nodb(struct fakedev *f, unsigned q, uint64_t id,
				  uint32_t answer)
{
	fk_answer_at(f, q, fk_fault_tag(f, id), id, answer);
}

static inline void fk_answer(struct fakedev *f, unsigned q, uint64_t id,
			     uint32_t answer)
{
	fk_answer_nodb(f, q, id, answer);
	hmdev_doorbell(&f->dev, HMIRROR_VEC_FAULT);
}

/*
 * The completion of the command with @seqno among the last cq_entries
 * written on @q, or NULL.  Completions may come out of order.
 */
static inline struct hmirror_cpl *fk_find_cpl(struct fakedev *f, unsigned q,
					      uint64_t seqno)
{
	uint32_t tail = __atomic_load_n(&fk_qregs(f, q)->cq_tail, __ATOMIC_ACQUIRE);
	uint32_t i, n = f->dev.hdr.cq_entries;

	for (i = 1; i <= n && i <= tail; i++)
		if (fk_cq(f, q, tail - i)->seqno == seqno)
			return fk_cq(f, q, tail - i);
	return NULL;
}

/* ---- holding an engine inside an access (the test hook) --------------- */

/*
 * With fk_gate_hook as dev.hook and a struct fk_gate as hook_opaque, the
 * engine of queue @q stops inside its @at-th access (1-based: HOOK_ACCESS,
 * inval_lock held for reading) until fk_gate_open().  @on_accessed, if
 * set, runs at every HOOK_ACCESSED of queue @q (still under the lock).
 */
struct fk_gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned q, at;
	int phase;		/* what holds: HMDEV_HOOK_ACCESS (0) or _WALKED */
	unsigned accesses;	/* times queue @q reached @phase */
	int holding, release;
	void (*on_accessed)(struct fk_gate *g, unsigned n);
	void *arg;
	uint64_t note;		/* for on_accessed */
	unsigned passes[HMIRROR_MAX_QUEUES];	/* passes begun, any queue */
};

#define FK_GATE_INIT(queue, nth) { .mu = PTHREAD_MUTEX_INITIALIZER, \
	.cv = PTHREAD_COND_INITIALIZER, .q = (queue), .at = (nth) }

static inline void fk_gate_hook(void *opaque, unsigned q, int phase)
{
	struct fk_gate *g = opaque;

	if (phase == HMDEV_HOOK_PASS) {
		if (q < HMIRROR_MAX_QUEUES)
			__atomic_fetch_add(&g->passes[q], 1, __ATOMIC_SEQ_CST);
		return;
	}
	if (q != g->q)
		return;
	pthread_mutex_lock(&g->mu);
	if (phase == g->phase && ++g->accesses == g->at) {
		g->holding = 1;
		pthread_cond_broadcast(&g->cv);
		while (!g->release)
			pthread_cond_wait(&g->cv, &g->mu);
	} else if (phase == HMDEV_HOOK_ACCESSED && g->on_accessed) {
		g->on_accessed(g, g->accesses);
	}
	pthread_mutex_unlock(&g->mu);
}

static inline void fk_gate_wait_holding(struct fk_gate *g)
{
	pthread_mutex_lock(&g->mu);
	while (!g->holding)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

static inline void fk_gate_open(struct fk_gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->release = 1;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

static inline unsigned fk_gate_accesses(struct fk_gate *g)
{
	unsigned n;

	pthread_mutex_lock(&g->mu);
	n = g->accesses;
	pthread_mutex_unlock(&g->mu);
	return n;
}

static inline unsigned fk_gate_passes(struct fk_gate *g, unsigned q)
{
	return __atomic_load_n(&g->passes[q], __ATOMIC_SEQ_CST);
}

/*
 * Threaded: return once engine @q has run a whole pass that began after
 * its pass count was @p0 (so a pass after whatever was rung after reading
 * @p0); 0 on timeout.
 */
static inline int fk_gate_wait_pass(struct fakedev *f, struct fk_gate *g,
				    unsigned q, unsigned p0, unsigned timeout_ms)
{
	uint64_t end = hmdev_now_ns() + (uint64_t)timeout_ms * 1000000;
	struct timespec ts = { 0, 50000 };

	while (fk_gate_passes(g, q) == p0) {
		if (hmdev_now_ns() > end)
			return 0;
		nanosleep(&ts, NULL);
	}
	/* a pass holds run_mu until it ends */
	pthread_mutex_lock(&f->dev.eng[q].run_mu);
	pthread_mutex_unlock(&f->dev.eng[q].run_mu);
	return 1;
}

/* Start over: count from 0, hold at the @at-th access again. */
static inline void fk_gate_rearm(struct fk_gate *g, unsigned at)
{
	pthread_mutex_lock(&g->mu);
	g->accesses = 0;
	g->at = at;
	g->holding = g->release = 0;
	pthread_mutex_unlock(&g->mu);
}

/* ---- shootdown, the driver's side ----------------------------------- */

static inline struct hmirror_shootdown *fk_sd(struct fakedev *f)
{
	return (void *)((char *)f->bar + HMIRROR_SHOOTDOWN_OFF);
}

/*
 * Publish a request to drop @ctx's [start, end) as the driver does: slot
 * marked as being rewritten, fields, slot epoch, drv_epoch, full fence.
 * Returns its epoch.  One publisher at a time (the driver's sd_lock).
 */
static inline uint64_t fk_sd_publish(struct fakedev *f, unsigned ctx,
				     uint64_t start, uint64_t end)
{
	struct hmirror_shootdown *sd = fk_sd(f);
	uint64_t e = ++f->sd_epoch;
	struct hmirror_sd_req *r = &sd->req[e % HMIRROR_SD_SLOTS];

	__atomic_store_n(&r->epoch, 0, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&r->start, start, __ATOMIC_RELAXED);
	__atomic_store_n(&r->end, end, __ATOMIC_RELAXED);
	__atomic_store_n(&r->ctx, (uint16_t)ctx, __ATOMIC_RELAXED);
	__atomic_store_n(&r->epoch, e, __ATOMIC_RELEASE);
	__atomic_store_n(&sd->drv_epoch, e, __ATOMIC_SEQ_CST);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return e;
}

/* Is request @e done: no engine busy in an access that began before it? */
static inline int fk_sd_done(struct fakedev *f, uint64_t e)
{
	unsigned q;

	for (q = 1; q < f->dev.num_queues; q++) {
		uint64_t v = __atomic_load_n(&fk_sd(f)->dev_seen[q], __ATOMIC_ACQUIRE);

		uint64_t behind = (e - v) & HMIRROR_SD_EPOCH_MASK;

		if ((v & HMIRROR_SD_BUSY) && behind &&
		    behind <= HMIRROR_SD_EPOCH_MASK / 2)
			return 0;
	}
	return 1;
}

/* CPU reference of the READ checksum. */
static inline uint64_t fk_fnv(const void *p, uint64_t len)
{
	uint64_t h = HMIRROR_FNV_BASIS, w, i;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&w, (const char *)p + i, 8);
		h = (h ^ w) * HMIRROR_FNV_PRIME;
	}
	return h;
}

#endif
