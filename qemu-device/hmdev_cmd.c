// SPDX-License-Identifier: MIT
/*
 * Command execution.  A command reaches here already copied out of the ring
 * (stable against guest writes); this file decides what it does, runs it
 * chunk by chunk, raises its faults, and fills the completion status and
 * result.  Each opcode has one entry in the opcode table (opcodes[]): the
 * queues it may run on, its flags and, for a data command, its operands,
 * its alignment rule, its chunk action and its result.  It calls
 * hmdev_mmu.c (translation) and hmdev_state.c, never the queue machinery
 * above it: a FENCE's wait for earlier commands is the queue's decision.
 *
 * Checks, in order (the first failing one decides):
 *  1. opcode known; reserved0, reserved1 zero, flags valid for the
 *     opcode, and the fields the opcode does not use (MIGRATE: ctx, dst,
 *     arg0, arg1) zero (else BAD_OPCODE, err_info = the offending value);
 *  2. opcode allowed on this queue (else BAD_QUEUE, err_info = opcode);
 *  3. data commands: length (BAD_LENGTH, err_info = len), alignment
 *     (BAD_ALIGN, err_info = the address, or len), virtual range below
 *     2^va_bits (BAD_ADDRESS, err_info = the address), context valid
 *     (BAD_CONTEXT, err_info = ctx); MIGRATE: length (BAD_LENGTH), table
 *     alignment (BAD_ALIGN, err_info = src), table in guest RAM
 *     (BAD_ADDRESS, err_info = src); TLB_INVAL: ctx < max_contexts.
 * (The tag was checked at fetch: BAD_TAG.)
 * Then, while running: BAD_PTE (err_info = the entry), BAD_ADDRESS
 * (err_info = the guest-physical address or device-memory offset),
 * BAD_CONTEXT (the context went invalid), FAULT (cancelled); MIGRATE:
 * BAD_ALIGN or BAD_ADDRESS (err_info = the entry's field as written).
 * Bytes (pages) done before an error stay done.
 *
 * A data command is cut in chunks that never cross a page (4 KiB or 2 MiB)
 * of any operand nor HMDEV_CHUNK_MAX bytes.  Each chunk is one access
 * (hmdev_access_begin/end): translated and performed under inval_lock held
 * for reading, so a TLB_INVAL (write side) completes only after every
 * access that used a translation it dropped, and announced in the
 * shootdown block (FEAT_SHOOTDOWN), whose requests it applies first.
 * The same read hold covers the bus-master check before the chunk and the
 * sizing of a fault's run (page walks), so turning bus mastering off (write
 * side) waits out every guest-RAM access in progress and no later one
 * starts.  A command that stalls on a fault parks (PARK_FAULT, PARK_ROOM);
 * its queue goes on with other commands until the answer comes.
 *
 * Device memory (FEAT_VRAM) is reached through the same chunks: a
 * translation may name a device-memory page, which the chunk actions
 * access like guest RAM (words with relaxed atomics, COPY with memmove:
 * other engines may touch the same page at the same time, as guest CPUs
 * do guest RAM).  Bus mastering gates guest-RAM accesses only, so a chunk
 * whose operands all hit device-memory TLB entries runs while it is off.
 * MIGRATE copies whole pages (guest RAM or device memory), one page per
 * read hold, each entry of its table read once into private
 * memory; its table read is a guest-RAM access, so it is held while bus
 * mastering is off.  It never translates, so it never faults.
 */
#include <string.h>

#include "hmdev_internal.h"

/* Which queues an opcode may run on. */
#define ON_MGMT		(1u << 0)
#define ON_ENGINE	(1u << 1)

/* Descriptor fields an opcode does not use and requires zero. */
#define ZERO_CTX	(1u << 0)
#define ZERO_DST	(1u << 1)
#define ZERO_ARG0	(1u << 2)
#define ZERO_ARG1	(1u << 3)

typedef enum hmdev_exec (*exec_fn)(struct hmdev *dev, unsigned q,
				   struct hmdev_inflight *in);
/* An opcode's own static checks: 0, or a status with in->err_info set. */
typedef int (*check_fn)(struct hmdev *dev, struct hmdev_inflight *in);

/* ---- what an opcode is --------------------------------------------- */

/* Where a data command's operand starts. */
enum operand_addr { AT_SRC, AT_DST };

/* One operand of a data command, as its opcode defines it. */
struct operand_desc {
	enum operand_addr at;
	unsigned access;	/* HMIRROR_ACCESS_* */
};

/* One operand of the current chunk: where it starts, its translation. */
struct operand {
	uint64_t base;		/* the command's address */
	unsigned access;
	struct hmdev_xlate x;
};

/* A data command's action on one chunk of @n bytes of its operands. */
typedef void (*chunk_fn)(struct hmdev_inflight *in, const struct operand *opnd,
			 uint64_t n);

/* What a command's completion result is. */
enum cmd_result {
	RESULT_NONE,		/* 0 */
	RESULT_BYTES_DONE,	/* bytes done, complete or not */
	RESULT_CHECKSUM,	/* the checksum, once complete */
	RESULT_BY_CHUNK,	/* whatever its chunk action set */
	RESULT_PAGES_DONE,	/* pages done, complete or not */
};

struct data_op {
	unsigned noperands;
	struct operand_desc operand[2];	/* checked and translated in order */
	/*
	 * Exactly one naturally aligned 64-bit word: an address that is not
	 * is BAD_ALIGN, then a len that is not 8.  Else len must be in
	 * [1, HMIRROR_CMD_LEN_MAX] (BAD_LENGTH), and each address, then
	 * len, a multiple of @align (BAD_ALIGN).
	 */
	bool one_word;
	unsigned align;
	chunk_fn chunk;
};

/* ---- the data commands' chunk actions ------------------------------- */

static void chunk_copy(struct hmdev_inflight *in, const struct operand *opnd,
		       uint64_t n)
{
	(void)in;
	memmove(opnd[1].x.host, opnd[0].x.host, n);
}

/* READ checksum: FNV-1a over the 64-bit words. */
static void chunk_read(struct hmdev_inflight *in, const struct operand *opnd,
		       uint64_t n)
{
	const hm_u64a *w = (const hm_u64a *)(const void *)opnd[0].x.host;
	uint64_t h = in->acc, i;

	for (i = 0; i < n / 8; i++)
		h = (h ^ __atomic_load_n(&w[i], __ATOMIC_RELAXED)) * HMIRROR_FNV_PRIME;
	in->acc = h;
}

static void chunk_fill(struct hmdev_inflight *in, const struct operand *opnd,
		       uint64_t n)
{
	hm_u64a *w = (hm_u64a *)(void *)opnd[0].x.host;
	uint64_t i;

	for (i = 0; i < n / 8; i++)
		__atomic_store_n(&w[i], in->cmd.arg0, __ATOMIC_RELAXED);
}

/* The old value is the result. */
static void chunk_atomic(struct hmdev_inflight *in, const struct operand *opnd,
			 uint64_t n)
{
	const struct hmirror_cmd *c = &in->cmd;
	uint64_t *p = (uint64_t *)(void *)opnd[0].x.host;

	(void)n;
	if (c->flags == HMIRROR_ATOMIC_CMPXCHG) {
		uint64_t exp = c->arg0;

		__atomic_compare_exchange_n(p, &exp, c->arg1, false,
					    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		in->cpl.result = exp;
	} else {
		in->cpl.result = __atomic_fetch_add(p, c->arg0, __ATOMIC_SEQ_CST);
	}
}

/* ---- the opcode table ----------------------------------------------- */

static enum hmdev_exec exec_nop(struct hmdev *dev, unsigned q,
				struct hmdev_inflight *in);
static enum hmdev_exec exec_fence(struct hmdev *dev, unsigned q,
				  struct hmdev_inflight *in);
static enum hmdev_exec exec_tlb_inval(struct hmdev *dev, unsigned q,
				      struct hmdev_inflight *in);
static enum hmdev_exec exec_data(struct hmdev *dev, unsigned q,
				 struct hmdev_inflight *in);
static int check_data(struct hmdev *dev, struct hmdev_inflight *in);
static enum hmdev_exec exec_migrate(struct hmdev *dev, unsigned q,
				    struct hmdev_inflight *in);
static int check_migrate(struct hmdev *dev, struct hmdev_inflight *in);

static const struct opcode {
	unsigned queues;	/* ON_* */
	unsigned max_flags;	/* flags above this are reserved */
	unsigned zero;		/* ZERO_*: BAD_OPCODE unless zero */
	check_fn check;		/* static checks, after the queue's */
	exec_fn exec;
	enum cmd_result result;
	struct data_op data;	/* exec_data's */
} opcodes[HMIRROR_NUM_OPS] = {
	[HMIRROR_OP_NOP] = {
		.queues = ON_MGMT | ON_ENGINE, .exec = exec_nop,
	},
	[HMIRROR_OP_FENCE] = {
		.queues = ON_MGMT | ON_ENGINE, .exec = exec_fence,
	},
	[HMIRROR_OP_COPY] = {
		.queues = ON_ENGINE, .check = check_data, .exec = exec_data,
		.result = RESULT_BYTES_DONE,
		.data = {
			.noperands = 2,
			.operand = { { AT_SRC, HMIRROR_ACCESS_READ },
				     { AT_DST, HMIRROR_ACCESS_WRITE } },
			.align = 1,
			.chunk = chunk_copy,
		},
	},
	[HMIRROR_OP_READ] = {
		.queues = ON_ENGINE, .check = check_data, .exec = exec_data,
		.result = RESULT_CHECKSUM,
		.data = {
			.noperands = 1,
			.operand = { { AT_SRC, HMIRROR_ACCESS_READ } },
			.align = 8,
			.chunk = chunk_read,
		},
	},
	[HMIRROR_OP_FILL] = {
		.queues = ON_ENGINE, .check = check_data, .exec = exec_data,
		.result = RESULT_BYTES_DONE,
		.data = {
			.noperands = 1,
			.operand = { { AT_DST, HMIRROR_ACCESS_WRITE } },
			.align = 8,
			.chunk = chunk_fill,
		},
	},
	[HMIRROR_OP_ATOMIC] = {
		.queues = ON_ENGINE, .max_flags = HMIRROR_ATOMIC_CMPXCHG,
		.check = check_data, .exec = exec_data,
		.result = RESULT_BY_CHUNK,
		.data = {
			.noperands = 1,
			.operand = { { AT_DST, HMIRROR_ACCESS_ATOMIC } },
			.one_word = true,
			.chunk = chunk_atomic,
		},
	},
	[HMIRROR_OP_TLB_INVAL] = {
		.queues = ON_MGMT, .exec = exec_tlb_inval,
	},
	[HMIRROR_OP_MIGRATE] = {
		.queues = ON_ENGINE,
		.zero = ZERO_CTX | ZERO_DST | ZERO_ARG0 | ZERO_ARG1,
		.check = check_migrate, .exec = exec_migrate,
		.result = RESULT_PAGES_DONE,
	},
};

static const struct opcode *opcode_of(const struct hmirror_cmd *c)
{
	return c->opcode < HMIRROR_NUM_OPS && opcodes[c->opcode].exec ?
	       &opcodes[c->opcode] : NULL;
}

static uint64_t operand_addr(const struct hmirror_cmd *c,
			     const struct operand_desc *d)
{
	return d->at == AT_SRC ? c->src : c->dst;
}

/*
 * The command is over: its status, the offending value when it failed,
 * and the result its opcode reports.
 */
static enum hmdev_exec finish(struct hmdev_inflight *in, uint16_t status,
			      uint64_t info)
{
	const struct opcode *op = opcode_of(&in->cmd);

	in->cpl.status = status;
	in->err_info = info;
	switch (op ? op->result : RESULT_NONE) {
	case RESULT_BYTES_DONE:
		in->cpl.result = in->done;
		break;
	case RESULT_CHECKSUM:
		if (status == HMIRROR_ST_OK)
			in->cpl.result = in->acc;
		break;
	case RESULT_PAGES_DONE:
		in->cpl.result = in->done / HMIRROR_PAGE_SIZE;
		break;
	default:
		break;
	}
	return HMDEV_EXEC_DONE;
}

/* ---- commands without data ------------------------------------------ */

static enum hmdev_exec exec_nop(struct hmdev *dev, unsigned q,
				struct hmdev_inflight *in)
{
	(void)dev; (void)q;
	return finish(in, HMIRROR_ST_OK, 0);
}

/*
 * FENCE: nothing to do but wait for every earlier-fetched command of its
 * context (ctx 0: of the whole queue); the queue, which knows that order,
 * parks it until then and completes it.
 */
static enum hmdev_exec exec_fence(struct hmdev *dev, unsigned q,
				  struct hmdev_inflight *in)
{
	(void)dev; (void)q;
	in->cpl.status = HMIRROR_ST_OK;
	return HMDEV_EXEC_FENCE;
}

/*
 * TLB_INVAL: drop the context's entries overlapping [src, src + len)
 * (clamped to 2^va_bits) with inval_lock held for writing: taking it waits
 * for every chunk in progress, and no engine can insert a translation of
 * the range between the drop and the completion.  The context need not be
 * VALID (the driver disables a context, then flushes it).
 */
static enum hmdev_exec exec_tlb_inval(struct hmdev *dev, unsigned q,
				      struct hmdev_inflight *in)
{
	const struct hmirror_cmd *c = &in->cmd;
	uint64_t end;

	(void)q;
	if (c->ctx >= dev->hdr.max_contexts)
		return finish(in, HMIRROR_ST_BAD_CONTEXT, c->ctx);
	end = c->len > UINT64_MAX - c->src ? UINT64_MAX : c->src + c->len;
	pthread_rwlock_wrlock(&dev->inval_lock);
	hmdev_tlb_drop(dev, c->ctx, c->src, end);
	pthread_rwlock_unlock(&dev->inval_lock);
	HMDEV_CNT_ADD(dev, tlb_invals, 1);
	return finish(in, HMIRROR_ST_OK, 0);
}

/* ---- data commands: checks, faults, chunks -------------------------- */

/* [va, va + len) must lie below 2^va_bits (no overflow). */
static bool va_ok(const struct hmdev *dev, uint64_t va, uint64_t len)
{
	return va < dev->va_end && len <= dev->va_end - va;
}

/* Static checks of a data command.  0 or a status (err_info set). */
static int check_data(struct hmdev *dev, struct hmdev_inflight *in)
{
	const struct hmirror_cmd *c = &in->cmd;
	const struct data_op *d = &opcodes[c->opcode].data;
	uint64_t root, a;
	unsigned i;

	if (d->one_word) {
		a = operand_addr(c, &d->operand[0]);
		if (a & (sizeof(uint64_t) - 1)) {
			in->err_info = a;
			return HMIRROR_ST_BAD_ALIGN;
		}
		if (c->len != sizeof(uint64_t)) {
			in->err_info = c->len;
			return HMIRROR_ST_BAD_ALIGN;
		}
	} else {
		if (!c->len || c->len > HMIRROR_CMD_LEN_MAX) {
			in->err_info = c->len;
			return HMIRROR_ST_BAD_LENGTH;
		}
		for (i = 0; i < d->noperands; i++) {
			a = operand_addr(c, &d->operand[i]);
			if (a & (d->align - 1)) {
				in->err_info = a;
				return HMIRROR_ST_BAD_ALIGN;
			}
		}
		if (c->len & (d->align - 1)) {
			in->err_info = c->len;
			return HMIRROR_ST_BAD_ALIGN;
		}
	}
	for (i = 0; i < d->noperands; i++) {
		a = operand_addr(c, &d->operand[i]);
		if (!va_ok(dev, a, c->len)) {
			in->err_info = a;
			return HMIRROR_ST_BAD_ADDRESS;
		}
	}
	if (hmdev_ctx_root(dev, c->ctx, &root)) {
		in->err_info = c->ctx;
		return HMIRROR_ST_BAD_CONTEXT;
	}
	in->acc = HMIRROR_FNV_BASIS;
	return 0;
}

/*
 * --misbehave complete-faulted, a device that breaks the protocol for the
 * driver's tests: once the driver has taken the record off the ring (its
 * head passed @pos; at most 100 ms), the command completes OK, unanswered,
 * while the driver services its fault.
 */
static enum hmdev_exec lie_complete_faulted(struct hmdev *dev,
					    struct hmdev_inflight *in,
					    uint32_t pos)
{
	uint64_t end = hmdev_now_ns() + 100000000ull;

	hmdev_flush_irqs(dev);
	while ((int32_t)(hm_load_acq(&dev->fregs->head) - pos) < 0 &&
	       !__atomic_load_n(&dev->abort, __ATOMIC_ACQUIRE) &&
	       hmdev_now_ns() < end)
		sched_yield();
	in->fault_id = 0;
	return finish(in, HMIRROR_ST_OK, 0);
}

/*
 * Try to put the built fault record on the ring: PARK_FAULT (posted),
 * PARK_ROOM (ring full, retried on the next pass) or DONE (BAD_INDEX: the
 * driver's head is impossible).  Touches no guest RAM.
 */
static enum hmdev_exec fault_post(struct hmdev *dev, unsigned q,
				  struct hmdev_inflight *in)
{
	uint32_t entries = dev->hdr.fault_entries, head, pos;
	hm_u64a *d;
	uint64_t w[sizeof(struct hmirror_fault) / 8], id;
	unsigned i;

	pthread_mutex_lock(&dev->fault_mu);
	head = hm_load_acq(&dev->fregs->head);
	if (dev->fault_ring_bad || dev->fault_tail - head > entries) {
		/* the driver claims records it never got: no faults until reset */
		dev->fault_ring_bad = true;
		pthread_mutex_unlock(&dev->fault_mu);
		return finish(in, HMIRROR_ST_BAD_INDEX, head);
	}
	if (dev->fault_tail - head == entries) {
		pthread_mutex_unlock(&dev->fault_mu);
		return HMDEV_EXEC_PARK_ROOM;
	}
	/* 64 bits from 1: never 0, never wraps, never reused */
	id = ++dev->fault_seq;
	in->rec.fault_id = id;
	in->rec.t_fault = hmdev_now_ns();
	memcpy(w, &in->rec, sizeof(w));
	d = (hm_u64a *)(void *)&dev->fault_ring[dev->fault_tail & dev->fault_mask];
	for (i = 0; i < sizeof(w) / 8; i++)
		hm_store(&d[i], w[i]);
	in->fault_id = id;
	pos = ++dev->fault_tail;
	hm_store_rel(&dev->fregs->tail, pos);
	pthread_mutex_unlock(&dev->fault_mu);

	in->cpl.nfaults++;
	if (!in->cpl.t_fault)
		in->cpl.t_fault = in->rec.t_fault;
	HMDEV_CNT_ADD(dev, faults, 1);
	hmdev_progress(dev, q);
	if (!hmdev_driver_polls(dev, q))
		hmdev_pend_irq(dev, HMIRROR_VEC_FAULT);
	if (dev->cfg.misbehave & HMDEV_LIE_COMPLETE_FAULTED)
		return lie_complete_faulted(dev, in, pos);
	return HMDEV_EXEC_PARK_FAULT;
}

enum hmdev_exec hmdev_cmd_retry_fault(struct hmdev *dev, unsigned q,
				      struct hmdev_inflight *in)
{
	return fault_post(dev, q, in);
}

/*
 * The operand at @va (its range ends at @hi) needs a fault for @access:
 * size the run of faulting pages up to the operand's page-rounded end and
 * drop their TLB entries.  The run is sized by walking guest RAM: called
 * inside an access, bus mastering checked.
 */
static void fault_build(struct hmdev *dev, unsigned q,
			struct hmdev_inflight *in, uint64_t va, uint64_t hi,
			unsigned access)
{
	uint64_t addr = va & ~(HMIRROR_PAGE_SIZE - 1);
	uint64_t end = (hi + HMIRROR_PAGE_SIZE - 1) & ~(HMIRROR_PAGE_SIZE - 1);
	struct hmirror_fault *r = &in->rec;

	memset(r, 0, sizeof(*r));
	r->ctx = in->cmd.ctx;
	r->queue = (uint8_t)q;
	r->access = (uint8_t)access;
	r->tag = in->cmd.tag;
	r->addr = addr;
	r->npages = hmdev_fault_run(dev, in->cmd.ctx, addr, end, access);
	r->seqno = in->cmd.seqno;
}

/*
 * Translate @op at offset @done: 0, FAULT, HMDEV_ST_HOLD (needs guest RAM,
 * @dma false), or an error status with *info.
 */
static int op_translate(struct hmdev *dev, const struct hmdev_access *a,
			struct hmdev_inflight *in, struct operand *op,
			uint64_t done, uint64_t *info)
{
	return hmdev_translate(dev, a, in->cmd.ctx, op->base + done,
			       op->access, &op->x, info);
}

/* COPY, READ, FILL, ATOMIC: run chunks from in->done. */
static enum hmdev_exec exec_data(struct hmdev *dev, unsigned q,
				 struct hmdev_inflight *in)
{
	const struct hmirror_cmd *c = &in->cmd;
	const struct data_op *d = &opcodes[c->opcode].data;
	struct operand opnd[2];
	struct hmdev_access a;
	unsigned i;
	int st = 0;

	for (i = 0; i < d->noperands; i++)
		opnd[i] = (struct operand){
			.base = operand_addr(c, &d->operand[i]),
			.access = d->operand[i].access,
		};

	while (in->done < c->len) {
		uint64_t n = c->len - in->done, info = 0;

		if (__atomic_load_n(&dev->abort, __ATOMIC_ACQUIRE))
			return HMDEV_EXEC_HOLD;	/* reset or shutdown */
		if (n > HMDEV_CHUNK_MAX)
			n = HMDEV_CHUNK_MAX;
		/* without a.dma, only device memory whose translation is cached */
		hmdev_access_begin(dev, q, &a);
		for (i = 0; i < d->noperands; i++) {
			st = op_translate(dev, &a, in, &opnd[i], in->done, &info);
			if (st)
				break;
			if (n > opnd[i].x.avail)
				n = opnd[i].x.avail;
		}
		if (i < d->noperands) {
			if (st == HMDEV_ST_HOLD) {
				hmdev_access_end(dev, &a);
				return HMDEV_EXEC_HOLD;	/* until BUS_MASTER is back */
			}
			if (st == HMIRROR_ST_FAULT) {
				fault_build(dev, q, in, opnd[i].base + in->done,
					    opnd[i].base + c->len, opnd[i].access);
				hmdev_access_end(dev, &a);
				return fault_post(dev, q, in);
			}
			hmdev_access_end(dev, &a);
			return finish(in, (uint16_t)st, info);
		}
		if (dev->hook)
			dev->hook(dev->hook_opaque, q, HMDEV_HOOK_ACCESS);
		d->chunk(in, opnd, n);
		if (dev->hook)
			dev->hook(dev->hook_opaque, q, HMDEV_HOOK_ACCESSED);
		hmdev_access_end(dev, &a);
		in->done += n;
		hmdev_progress(dev, q);
	}
	return finish(in, HMIRROR_ST_OK, 0);
}

/* ---- MIGRATE: whole pages, by a table in guest RAM ----------------- */

static int check_migrate(struct hmdev *dev, struct hmdev_inflight *in)
{
	const struct hmirror_cmd *c = &in->cmd;

	if (!c->len || c->len > HMIRROR_MIGRATE_LEN_MAX) {
		in->err_info = c->len;
		return HMIRROR_ST_BAD_LENGTH;
	}
	if (c->src & (sizeof(uint64_t) - 1)) {
		in->err_info = c->src;
		return HMIRROR_ST_BAD_ALIGN;
	}
	/* the whole table in one RAM window (a check of numbers, no access) */
	if (!hmdev_phys_ptr(dev, false, c->src,
			    c->len * sizeof(struct hmirror_migrate_entry))) {
		in->err_info = c->src;
		return HMIRROR_ST_BAD_ADDRESS;
	}
	return 0;
}

/* Below a page, only HMIRROR_MIGRATE_VRAM may be set. */
static bool migrate_aligned(uint64_t a)
{
	return !(a & (HMIRROR_PAGE_SIZE - 1) & ~HMIRROR_MIGRATE_VRAM);
}

static void *migrate_page(struct hmdev *dev, uint64_t a)
{
	return hmdev_phys_ptr(dev, a & HMIRROR_MIGRATE_VRAM,
			      a & ~(HMIRROR_PAGE_SIZE - 1), HMIRROR_PAGE_SIZE);
}

/*
 * The pages of entry @e: 0, or BAD_ALIGN then BAD_ADDRESS, from then to
 * (*info = the field as written).
 */
static int migrate_resolve(struct hmdev *dev,
			   const struct hmirror_migrate_entry *e,
			   void **from, void **to, uint64_t *info)
{
	if (!migrate_aligned(e->from)) {
		*info = e->from;
		return HMIRROR_ST_BAD_ALIGN;
	}
	if (!migrate_aligned(e->to)) {
		*info = e->to;
		return HMIRROR_ST_BAD_ALIGN;
	}
	*from = migrate_page(dev, e->from);
	if (!*from) {
		*info = e->from;
		return HMIRROR_ST_BAD_ADDRESS;
	}
	*to = migrate_page(dev, e->to);
	if (!*to) {
		*info = e->to;
		return HMIRROR_ST_BAD_ADDRESS;
	}
	return 0;
}

/* A page in words, like FILL and READ: others may access it meanwhile. */
static void copy_page(void *to, const void *from)
{
	const hm_u64a *s = (const hm_u64a *)from;
	hm_u64a *d = (hm_u64a *)to;
	unsigned i;

	for (i = 0; i < HMIRROR_PAGE_SIZE / sizeof(*d); i++)
		__atomic_store_n(&d[i], __atomic_load_n(&s[i], __ATOMIC_RELAXED),
				 __ATOMIC_RELAXED);
}

/*
 * MIGRATE: entry by entry from in->done, each under its own read hold of
 * inval_lock (an access; bus mastering checked: the table is guest RAM), read once
 * into private memory, checked, then its page copied.
 */
static enum hmdev_exec exec_migrate(struct hmdev *dev, unsigned q,
				    struct hmdev_inflight *in)
{
	const struct hmirror_cmd *c = &in->cmd;
	const uint64_t esize = sizeof(struct hmirror_migrate_entry);

	while (in->done < c->len * HMIRROR_PAGE_SIZE) {
		uint64_t i = in->done / HMIRROR_PAGE_SIZE, info = 0;
		struct hmirror_migrate_entry e;
		struct hmdev_access a;
		const hm_u64a *t;
		void *from = NULL, *to = NULL;
		int st;

		if (__atomic_load_n(&dev->abort, __ATOMIC_ACQUIRE))
			return HMDEV_EXEC_HOLD;	/* reset or shutdown */
		hmdev_access_begin(dev, q, &a);
		if (!a.dma) {
			hmdev_access_end(dev, &a);
			return HMDEV_EXEC_HOLD;	/* until BUS_MASTER is back */
		}
		t = hmdev_phys_ptr(dev, false, c->src + i * esize, esize);
		if (!t) {	/* cannot happen: check_migrate() saw it all */
			hmdev_access_end(dev, &a);
			return finish(in, HMIRROR_ST_BAD_ADDRESS, c->src);
		}
		e.from = __atomic_load_n(&t[0], __ATOMIC_RELAXED);
		e.to = __atomic_load_n(&t[1], __ATOMIC_RELAXED);
		st = migrate_resolve(dev, &e, &from, &to, &info);
		if (st) {
			hmdev_access_end(dev, &a);
			return finish(in, (uint16_t)st, info);
		}
		if (dev->hook)
			dev->hook(dev->hook_opaque, q, HMDEV_HOOK_ACCESS);
		copy_page(to, from);
		if (dev->hook)
			dev->hook(dev->hook_opaque, q, HMDEV_HOOK_ACCESSED);
		hmdev_access_end(dev, &a);
		in->done += HMIRROR_PAGE_SIZE;
		hmdev_progress(dev, q);
	}
	return finish(in, HMIRROR_ST_OK, 0);
}

/*
 * The driver's answer to @in's posted fault, from the queue's answer table
 * at @in's tag: the driver writes the answer, then the fault id (release).
 * An entry with another id (older fault, another command) is not ours.
 */
bool hmdev_cmd_answer_ready(struct hmdev *dev, unsigned q,
			    const struct hmdev_inflight *in)
{
	const struct hmirror_fault_answer *a = &dev->answers[q][in->cmd.tag];

	return in->fault_id && hm_load_acq(&a->fault_id) == in->fault_id;
}

enum hmdev_answer hmdev_cmd_take_answer(struct hmdev *dev, unsigned q,
					struct hmdev_inflight *in)
{
	const struct hmirror_fault_answer *a = &dev->answers[q][in->cmd.tag];
	uint32_t answer;

	if (!in->fault_id || hm_load_acq(&a->fault_id) != in->fault_id)
		return HMDEV_ANSWER_NONE;
	answer = hm_load(&a->answer);
	in->cpl.t_answer = hmdev_now_ns();
	in->fault_id = 0;
	switch (answer) {
	case HMIRROR_FAULT_REPLAY:
		HMDEV_CNT_ADD(dev, replays, 1);
		return HMDEV_ANSWER_REPLAY;
	case HMIRROR_FAULT_CANCEL:
		HMDEV_CNT_ADD(dev, cancels, 1);
		in->quiet = true;	/* an outcome, not an error */
		finish(in, HMIRROR_ST_FAULT, in->rec.addr);
		return HMDEV_ANSWER_DONE;
	default:
		/* not an answer: cancel, and record the bad value */
		finish(in, HMIRROR_ST_FAULT, answer);
		return HMDEV_ANSWER_DONE;
	}
}

enum hmdev_exec hmdev_cmd_run(struct hmdev *dev, unsigned q,
			      struct hmdev_inflight *in)
{
	const struct hmirror_cmd *cmd = &in->cmd;
	const struct opcode *op = opcode_of(cmd);
	unsigned where = q == HMIRROR_QUEUE_MGMT ? ON_MGMT : ON_ENGINE;
	int st;

	if (!in->checked) {
		in->checked = true;
		in->cpl.status = HMIRROR_ST_OK;
		in->cpl.result = 0;
		in->cpl.nfaults = 0;
		if (!op)
			return finish(in, HMIRROR_ST_BAD_OPCODE, cmd->opcode);
		if (cmd->reserved0)
			return finish(in, HMIRROR_ST_BAD_OPCODE, cmd->reserved0);
		if (cmd->reserved1)
			return finish(in, HMIRROR_ST_BAD_OPCODE, cmd->reserved1);
		if (cmd->flags > op->max_flags)
			return finish(in, HMIRROR_ST_BAD_OPCODE, cmd->flags);
		if ((op->zero & ZERO_CTX) && cmd->ctx)
			return finish(in, HMIRROR_ST_BAD_OPCODE, cmd->ctx);
		if ((op->zero & ZERO_DST) && cmd->dst)
			return finish(in, HMIRROR_ST_BAD_OPCODE, cmd->dst);
		if ((op->zero & ZERO_ARG0) && cmd->arg0)
			return finish(in, HMIRROR_ST_BAD_OPCODE, cmd->arg0);
		if ((op->zero & ZERO_ARG1) && cmd->arg1)
			return finish(in, HMIRROR_ST_BAD_OPCODE, cmd->arg1);
		if (!(op->queues & where))
			return finish(in, HMIRROR_ST_BAD_QUEUE, cmd->opcode);
		if (op->check) {
			st = op->check(dev, in);
			if (st)
				return finish(in, (uint16_t)st, in->err_info);
		}
	}
	return op->exec(dev, q, in);
}
