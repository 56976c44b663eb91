// SPDX-License-Identifier: MIT
/*
 * The driver's side of the rings, and what it may rely on.
 *
 * Every command the harness submits is recorded (queue, seqno, tag,
 * descriptor).  Its seqno is epoch << 32 | n: n counts up from 1 after
 * each reset as device-spec.rst asks, and the epoch makes a completion
 * left over from before a reset recognisable.  Each completion, read in
 * ring order, must:
 *  - name a command submitted on this queue since the reset and not
 *    completed yet (every command completes once, or is dropped by a
 *    reset), echo its tag and opcode, and carry a status in range;
 *  - be BAD_TAG exactly when the tag is out of range or an earlier
 *    command with the same tag is still in flight (not completed earlier
 *    in the ring);
 *  - carry the status the spec's static checks give (BAD_OPCODE,
 *    BAD_QUEUE, BAD_LENGTH, BAD_ALIGN, BAD_ADDRESS, BAD_CONTEXT in that
 *    order), else one of the run-time outcomes;
 *  - for COPY and FILL report the bytes done (len when OK), no faults for
 *    a command refused before running, FAULT only after a fault, ordered
 *    timestamps;
 *  - for MIGRATE (2.1) report the pages copied (len when OK, fewer when an
 *    entry failed, none when refused), OK, BAD_ALIGN or BAD_ADDRESS (an
 *    entry) while running, and never a fault: it translates nothing;
 *  - for a FENCE, come after every earlier command of its scope.
 * Each fault record must name a command in flight (queue, tag, seqno,
 * context), one that translates (not MIGRATE), with an access its opcode
 * makes and a page run inside the operand, ids increasing for the
 * device's lifetime.  After the guest scribbled on what these checks rely
 * on (ring indices, rings), they are off until the next reset.
 */
#include <stdio.h>
#include <string.h>

#include "fuzz_guest.h"

struct fz_drv fz_drv;

static const struct hmirror_header *hdr(void)
{
	return &fz.dev.hdr;
}

static struct hmirror_queue_regs *qr(unsigned q)
{
	return &fz.dev.qregs[q];
}

void fz_drv_epoch(void)
{
	unsigned q;

	for (q = 0; q < HMIRROR_MAX_QUEUES; q++)
		fz_drv.q[q].sq_tail = fz_drv.q[q].cq_head = fz_drv.q[q].n = 0;
	fz_drv.fault_head = 0;
	memset(fz_drv.fault_id, 0, sizeof(fz_drv.fault_id));
	fz_drv.hostile = false;
	fz_drv.reset_pending = true;
	fz_drv.epoch++;
}

/* Data commands: they translate virtual addresses, and may fault. */
static bool is_data(uint8_t op)
{
	return op == HMIRROR_OP_COPY || op == HMIRROR_OP_READ ||
	       op == HMIRROR_OP_FILL || op == HMIRROR_OP_ATOMIC;
}

/* Engine-only commands: the data commands and MIGRATE. */
static bool is_engine(uint8_t op)
{
	return is_data(op) || op == HMIRROR_OP_MIGRATE;
}

static bool va_ok(uint64_t va, uint64_t len)
{
	return va < fz.dev.va_end && len <= fz.dev.va_end - va;
}

/*
 * The status device-spec.rst's checks give @c on queue @q before it runs
 * (the tag aside), or -1 when it is decided while running.
 */
static int static_status(const struct hmirror_cmd *c, unsigned q)
{
	uint64_t a;

	if (c->opcode >= HMIRROR_NUM_OPS || c->reserved0 || c->reserved1 ||
	    c->flags > (c->opcode == HMIRROR_OP_ATOMIC ? 1 : 0))
		return HMIRROR_ST_BAD_OPCODE;
	/* MIGRATE: the fields it does not use must be zero */
	if (c->opcode == HMIRROR_OP_MIGRATE &&
	    (c->ctx || c->dst || c->arg0 || c->arg1))
		return HMIRROR_ST_BAD_OPCODE;
	if (q == HMIRROR_QUEUE_MGMT ? is_engine(c->opcode) :
	    c->opcode == HMIRROR_OP_TLB_INVAL)
		return HMIRROR_ST_BAD_QUEUE;
	if (c->opcode == HMIRROR_OP_MIGRATE) {
		if (!c->len || c->len > HMIRROR_MIGRATE_LEN_MAX)
			return HMIRROR_ST_BAD_LENGTH;
		if (c->src & 7)
			return HMIRROR_ST_BAD_ALIGN;
		/* the whole table in one RAM window (guest-physical) */
		if (!fz_ram_has(c->src, c->len * sizeof(struct hmirror_migrate_entry)))
			return HMIRROR_ST_BAD_ADDRESS;
		return -1;	/* its entries are read while it runs */
	}
	if (c->opcode == HMIRROR_OP_TLB_INVAL)
		return c->ctx >= hdr()->max_contexts ? HMIRROR_ST_BAD_CONTEXT :
		       HMIRROR_ST_OK;
	if (!is_data(c->opcode))
		return HMIRROR_ST_OK;		/* NOP, FENCE */
	if (c->opcode == HMIRROR_OP_ATOMIC) {
		if ((c->dst & 7) || c->len != 8)
			return HMIRROR_ST_BAD_ALIGN;
	} else {
		if (!c->len || c->len > HMIRROR_CMD_LEN_MAX)
			return HMIRROR_ST_BAD_LENGTH;
		a = c->opcode == HMIRROR_OP_READ ? c->src : c->dst;
		if (c->opcode != HMIRROR_OP_COPY && ((a | c->len) & 7))
			return HMIRROR_ST_BAD_ALIGN;
	}
	if ((c->opcode == HMIRROR_OP_COPY || c->opcode == HMIRROR_OP_READ) &&
	    !va_ok(c->src, c->len))
		return HMIRROR_ST_BAD_ADDRESS;
	if (c->opcode != HMIRROR_OP_READ && !va_ok(c->dst, c->len))
		return HMIRROR_ST_BAD_ADDRESS;
	if (c->ctx >= hdr()->max_contexts)
		return HMIRROR_ST_BAD_CONTEXT;
	return -1;
}

int fz_drv_submit(unsigned q, struct hmirror_cmd *c, bool force)
{
	struct fz_drvq *d = &fz_drv.q[q];
	uint64_t w[sizeof(*c) / 8];
	uint64_t *s;
	uint32_t head;
	unsigned i;

	if (d->n + 1 >= FZ_MAX_CMDS)
		return -1;
	/* a reset restarts the indices: until it is done, sq_head is 0 */
	head = fz_drv.reset_pending ? 0 :
	       __atomic_load_n(&qr(q)->sq_head, __ATOMIC_ACQUIRE);
	if (d->sq_tail - head >= hdr()->sq_entries) {
		if (!force)
			return -1;
		fz_drv.hostile = true;	/* overruns the ring */
		/* the device may fetch a slot half old, half new */
		fz_oracle_blind();
	}
	c->seqno = (uint64_t)fz_drv.epoch << 32 | ++d->n;
	d->cmd[d->n] = (struct fz_cmd){ *c, static_status(c, q), false };
	/* a MIGRATE reaches memory by its table: the oracle first */
	if (c->opcode == HMIRROR_OP_MIGRATE && d->cmd[d->n].expect < 0)
		fz_oracle_migrate(c->src, c->len);
	memcpy(w, c, sizeof(w));
	s = (uint64_t *)(void *)&fz.dev.sq[q][d->sq_tail & fz.dev.sq_mask];
	for (i = 0; i < sizeof(w) / 8; i++)
		__atomic_store_n(&s[i], w[i], __ATOMIC_RELAXED);
	d->sq_tail++;
	__atomic_store_n(&qr(q)->sq_tail, d->sq_tail, __ATOMIC_RELEASE);
	return 0;
}

static void read_words(void *dst, const void *src, size_t len)
{
	const uint64_t *s = src;
	uint64_t w[8];
	size_t i;

	for (i = 0; i < len / 8; i++)
		w[i] = __atomic_load_n(&s[i], __ATOMIC_RELAXED);
	memcpy(dst, w, len);
}

/* The record of @seqno on queue @q, or NULL. */
static struct fz_cmd *find(unsigned q, uint64_t seqno)
{
	struct fz_drvq *d = &fz_drv.q[q];
	uint32_t n = (uint32_t)seqno;

	if (seqno >> 32 != fz_drv.epoch || !n || n > d->n)
		return NULL;
	return &d->cmd[n];
}

static void check_cpl(unsigned q, const struct hmirror_cpl *c)
{
	struct fz_drvq *d = &fz_drv.q[q];
	struct fz_cmd *r = find(q, c->seqno);
	uint32_t n = (uint32_t)c->seqno, j;
	bool busy = false, translates = is_data(r ? r->c.opcode : 0);
	bool migrate = r && r->c.opcode == HMIRROR_OP_MIGRATE;

	if (c->queue != q)
		fz_fatal("q%u: a completion names queue %u", q, c->queue);
	if (!r)
		fz_fatal("q%u: completion for seqno 0x%llx, never submitted since the reset",
			 q, (unsigned long long)c->seqno);
	if (r->done)
		fz_fatal("q%u: seqno 0x%llx completed twice", q,
			 (unsigned long long)c->seqno);
	if (c->tag != r->c.tag || c->opcode != r->c.opcode)
		fz_fatal("q%u seqno 0x%llx: completion echoes tag %u opcode %u, command had %u %u",
			 q, (unsigned long long)c->seqno, c->tag, c->opcode,
			 r->c.tag, r->c.opcode);
	if (c->status > HMIRROR_ST_BAD_TAG || c->status == HMIRROR_ST_ABORTED)
		fz_fatal("q%u seqno 0x%llx: status %u", q,
			 (unsigned long long)c->seqno, c->status);

	for (j = 1; j < n; j++)
		if (!d->cmd[j].done && d->cmd[j].c.tag == r->c.tag)
			busy = true;
	if ((c->status == HMIRROR_ST_BAD_TAG) !=
	    (r->c.tag >= hdr()->sq_entries || busy))
		fz_fatal("q%u seqno 0x%llx tag %u: status %u, but the tag is %s",
			 q, (unsigned long long)c->seqno, r->c.tag, c->status,
			 r->c.tag >= hdr()->sq_entries ? "out of range" :
			 busy ? "in flight" : "free");
	r->done = true;
	fz_drv.completions++;
	if (c->status == HMIRROR_ST_BAD_TAG) {
		if (c->nfaults || c->result)
			fz_fatal("q%u: a BAD_TAG completion with faults or a result", q);
		return;
	}

	if (r->expect >= 0 && c->status != r->expect)
		fz_fatal("q%u seqno 0x%llx op %u: status %u, the spec's checks say %d",
			 q, (unsigned long long)c->seqno, r->c.opcode, c->status,
			 r->expect);
	if (r->expect < 0 && migrate) {
		/* an entry's low bits, or its page outside RAM / device memory */
		if (c->status != HMIRROR_ST_OK && c->status != HMIRROR_ST_BAD_ALIGN &&
		    c->status != HMIRROR_ST_BAD_ADDRESS)
			fz_fatal("q%u seqno 0x%llx MIGRATE: status %u while running",
				 q, (unsigned long long)c->seqno, c->status);
	} else if (r->expect < 0) {
		switch (c->status) {
		case HMIRROR_ST_OK: case HMIRROR_ST_BAD_CONTEXT:
		case HMIRROR_ST_BAD_ADDRESS: case HMIRROR_ST_BAD_PTE:
		case HMIRROR_ST_FAULT:
			break;
		case HMIRROR_ST_BAD_INDEX:
			if (fz_drv.hostile)
				break;
			/* fall through: our fault head was never impossible */
		default:
			fz_fatal("q%u seqno 0x%llx op %u: status %u while running",
				 q, (unsigned long long)c->seqno, r->c.opcode,
				 c->status);
		}
	}
	if ((r->expect >= 0 || !translates) &&
	    (c->nfaults || c->t_fault || c->t_answer))
		fz_fatal("q%u seqno 0x%llx op %u: faults on a command that %s",
			 q, (unsigned long long)c->seqno, r->c.opcode,
			 r->expect >= 0 ? "never ran" : "translates nothing");
	if (c->status == HMIRROR_ST_FAULT && !c->nfaults)
		fz_fatal("q%u seqno 0x%llx: FAULT without a fault", q,
			 (unsigned long long)c->seqno);
	if (r->c.opcode == HMIRROR_OP_COPY || r->c.opcode == HMIRROR_OP_FILL) {
		if (c->status == HMIRROR_ST_OK ? c->result != r->c.len :
		    r->expect >= 0 ? c->result != 0 : c->result >= r->c.len)
			fz_fatal("q%u seqno 0x%llx: %llu bytes done of %llu, status %u",
				 q, (unsigned long long)c->seqno,
				 (unsigned long long)c->result,
				 (unsigned long long)r->c.len, c->status);
	}
	if (migrate) {
		if (c->status == HMIRROR_ST_OK ? c->result != r->c.len :
		    r->expect >= 0 ? c->result != 0 : c->result >= r->c.len)
			fz_fatal("q%u seqno 0x%llx: MIGRATE copied %llu pages of %llu, status %u",
				 q, (unsigned long long)c->seqno,
				 (unsigned long long)c->result,
				 (unsigned long long)r->c.len, c->status);
	}
	if (c->t_done < c->t_submit ||
	    (c->nfaults && (c->t_fault < c->t_submit || c->t_fault > c->t_done)) ||
	    (!c->nfaults && (c->t_fault || c->t_answer)) ||
	    (c->t_answer && (c->t_answer < c->t_fault || c->t_answer > c->t_done)))
		fz_fatal("q%u seqno 0x%llx: timestamps out of order", q,
			 (unsigned long long)c->seqno);
	if (r->c.opcode == HMIRROR_OP_FENCE && c->status == HMIRROR_ST_OK) {
		for (j = 1; j < n; j++)
			if (!d->cmd[j].done &&
			    (!r->c.ctx || d->cmd[j].c.ctx == r->c.ctx))
				fz_fatal("q%u: FENCE seqno 0x%llx ctx %u completed before seqno %u of its scope",
					 q, (unsigned long long)c->seqno, r->c.ctx, j);
	}
}

void fz_drv_reap(void)
{
	unsigned q;

	if (fz_drv.reset_pending)
		return;		/* the CQ indices restart when it is done */
	for (q = 0; q < fz.dev.num_queues; q++) {
		struct fz_drvq *d = &fz_drv.q[q];
		uint32_t tail = __atomic_load_n(&qr(q)->cq_tail, __ATOMIC_ACQUIRE);
		struct hmirror_cpl c;

		if (tail - d->cq_head > hdr()->cq_entries) {
			if (!fz_drv.hostile)
				fz_fatal("q%u: cq_tail %u ran past cq_head %u", q,
					 tail, d->cq_head);
			continue;
		}
		for (; d->cq_head != tail; d->cq_head++) {
			read_words(&c, &fz.dev.cq[q][d->cq_head & fz.dev.cq_mask],
				   sizeof(c));
			if (fz.verbose)
				fprintf(stderr, "q%u seq %#llx tag %u op %u status %u faults %u result %#llx\n",
					q, (unsigned long long)c.seqno, c.tag,
					c.opcode, c.status, c.nfaults,
					(unsigned long long)c.result);
			if (!fz_drv.hostile)
				check_cpl(q, &c);
		}
		__atomic_store_n(&qr(q)->cq_head, tail, __ATOMIC_RELEASE);
	}
}

static void check_fault(const struct hmirror_fault *f)
{
	const struct hmirror_header *h = hdr();
	struct fz_cmd *r;
	uint64_t base, len, lo, hi;

	if (!f->fault_id)
		fz_fatal("fault_id 0");
	if (f->fault_id <= fz_drv.last_fault_id)
		fz_fatal("fault id %llu after %llu", (unsigned long long)f->fault_id,
			 (unsigned long long)fz_drv.last_fault_id);
	fz_drv.last_fault_id = f->fault_id;
	if (f->queue < 1 || f->queue >= h->num_queues)
		fz_fatal("fault on queue %u, no engine", f->queue);
	if (f->access < HMIRROR_ACCESS_READ || f->access > HMIRROR_ACCESS_ATOMIC)
		fz_fatal("fault access %u", f->access);
	if ((f->addr & (FZ_PG - 1)) || f->npages < 1 ||
	    f->npages > HMIRROR_FAULT_NPAGES_MAX)
		fz_fatal("fault at 0x%llx of %u pages", (unsigned long long)f->addr,
			 f->npages);
	if (f->reserved0 || f->reserved1 || f->reserved2[0] || f->reserved2[1])
		fz_fatal("fault record with reserved fields set");

	r = find(f->queue, f->seqno);
	if (!r)
		fz_fatal("fault for q%u seqno 0x%llx, never submitted since the reset",
			 f->queue, (unsigned long long)f->seqno);
	/* a guessed answer may have let it finish before we read this */
	if (r->done && !fz_drv.guessed)
		fz_fatal("fault for q%u seqno 0x%llx, which completed already",
			 f->queue, (unsigned long long)f->seqno);
	if (f->tag != r->c.tag || f->ctx != r->c.ctx || !is_data(r->c.opcode))
		fz_fatal("fault for q%u seqno 0x%llx names tag %u ctx %u, the command has %u %u (op %u)",
			 f->queue, (unsigned long long)f->seqno, f->tag, f->ctx,
			 r->c.tag, r->c.ctx, r->c.opcode);
	switch (r->c.opcode) {
	case HMIRROR_OP_READ:
		if (f->access != HMIRROR_ACCESS_READ)
			fz_fatal("READ faults for access %u", f->access);
		break;
	case HMIRROR_OP_FILL:
		if (f->access != HMIRROR_ACCESS_WRITE)
			fz_fatal("FILL faults for access %u", f->access);
		break;
	case HMIRROR_OP_ATOMIC:
		if (f->access != HMIRROR_ACCESS_ATOMIC)
			fz_fatal("ATOMIC faults for access %u", f->access);
		break;
	default:
		if (f->access == HMIRROR_ACCESS_ATOMIC)
			fz_fatal("COPY faults for an atomic access");
		break;
	}
	base = f->access == HMIRROR_ACCESS_READ ? r->c.src : r->c.dst;
	len = r->c.len;
	lo = base & ~(FZ_PG - 1);
	hi = (base + len + FZ_PG - 1) & ~(FZ_PG - 1);
	if (f->addr < lo || f->addr >= hi ||
	    f->npages > (hi - f->addr) / FZ_PG)
		fz_fatal("fault run 0x%llx + %u pages outside the operand [0x%llx, 0x%llx)",
			 (unsigned long long)f->addr, f->npages,
			 (unsigned long long)lo, (unsigned long long)hi);
}

int fz_drv_next_fault(struct hmirror_fault *f)
{
	uint32_t tail = __atomic_load_n(&fz.dev.fregs->tail, __ATOMIC_ACQUIRE);

	if (fz_drv.reset_pending)
		return 0;
	if (tail == fz_drv.fault_head)
		return 0;
	if (tail - fz_drv.fault_head > hdr()->fault_entries) {
		if (!fz_drv.hostile)
			fz_fatal("fault tail %u ran past head %u", tail,
				 fz_drv.fault_head);
		/* the guest wrote the tail itself: catch up, read nothing */
		fz_drv.fault_head = tail;
		__atomic_store_n(&fz.dev.fregs->head, tail, __ATOMIC_RELEASE);
		return 0;
	}
	read_words(f, &fz.dev.fault_ring[fz_drv.fault_head & fz.dev.fault_mask],
		   sizeof(*f));
	fz_drv.fault_head++;
	__atomic_store_n(&fz.dev.fregs->head, fz_drv.fault_head, __ATOMIC_RELEASE);
	fz_drv.faults++;
	if (!fz_drv.hostile) {
		check_fault(f);
		fz_drv.fault_id[f->queue][f->tag] = f->fault_id;
	}
	return 1;
}

void fz_drv_cancel_all(void)
{
	unsigned q;
	uint32_t j;

	for (q = 1; q < fz.dev.num_queues; q++)
		for (j = 1; j <= fz_drv.q[q].n; j++) {
			uint16_t tag = fz_drv.q[q].cmd[j].c.tag;

			if (!fz_drv.q[q].cmd[j].done && tag < fz.dev.hdr.sq_entries &&
			    fz_drv.fault_id[q][tag])
				fz_drv_answer(q, tag, fz_drv.fault_id[q][tag],
					      HMIRROR_FAULT_CANCEL);
		}
}

void fz_drv_answer(unsigned q, uint32_t tag, uint64_t id, uint32_t answer)
{
	struct hmirror_fault_answer *a =
		&fz.dev.answers[q % fz.dev.num_queues][tag % hdr()->sq_entries];

	__atomic_store_n(&a->answer, answer, __ATOMIC_RELAXED);
	__atomic_store_n(&a->fault_id, id, __ATOMIC_RELEASE);
}

unsigned fz_drv_outstanding(void)
{
	unsigned q, n = 0;
	uint32_t j;

	for (q = 0; q < fz.dev.num_queues; q++)
		for (j = 1; j <= fz_drv.q[q].n; j++)
			n += !fz_drv.q[q].cmd[j].done;
	return n;
}

void fz_drv_dump(void)
{
	unsigned q;
	uint32_t j;

	for (q = 0; q < fz.dev.num_queues; q++) {
		fprintf(stderr, "q%u: sq_tail %u sq_head %u cq_tail %u cq_head %u status %u parked %u\n",
			q, fz_drv.q[q].sq_tail,
			__atomic_load_n(&qr(q)->sq_head, __ATOMIC_ACQUIRE),
			__atomic_load_n(&qr(q)->cq_tail, __ATOMIC_ACQUIRE),
			fz_drv.q[q].cq_head,
			__atomic_load_n(&qr(q)->q_status, __ATOMIC_ACQUIRE),
			__atomic_load_n(&qr(q)->parked, __ATOMIC_ACQUIRE));
		for (j = 1; j <= fz_drv.q[q].n; j++)
			if (!fz_drv.q[q].cmd[j].done)
				fprintf(stderr, "  open: n %u op %u tag %u ctx %u len %llu expect %d\n",
					j, fz_drv.q[q].cmd[j].c.opcode,
					fz_drv.q[q].cmd[j].c.tag, fz_drv.q[q].cmd[j].c.ctx,
					(unsigned long long)fz_drv.q[q].cmd[j].c.len,
					fz_drv.q[q].cmd[j].expect);
	}
}

void fz_drv_check_queues(void)
{
	const struct hmirror_header *h = hdr();
	unsigned q;

	if (fz_drv.hostile)
		return;		/* the guest wrote these registers itself */
	for (q = 0; q < h->num_queues; q++) {
		uint32_t st = __atomic_load_n(&qr(q)->q_status, __ATOMIC_ACQUIRE);
		uint32_t parked = __atomic_load_n(&qr(q)->parked, __ATOMIC_ACQUIRE);

		if (st > HMIRROR_Q_ERROR)
			fz_fatal("q%u: status %u", q, st);
		/* our indices are never bad: only the guest's scribbles are */
		if (st == HMIRROR_Q_ERROR && !fz_drv.reset_pending)
			fz_fatal("q%u: stopped on a bad index the driver never wrote", q);
		if (q == HMIRROR_QUEUE_MGMT && (st == HMIRROR_Q_STALLED || parked))
			fz_fatal("the management queue parked something");
		if (parked > h->sq_entries || parked > h->cq_entries)
			fz_fatal("q%u: %u parked, more than can be in flight", q, parked);
		/* with engines running, status and parked are read at two times */
		if (!fz.threaded && st == HMIRROR_Q_STALLED && !parked)
			fz_fatal("q%u: stalled with nothing parked", q);
	}
}
