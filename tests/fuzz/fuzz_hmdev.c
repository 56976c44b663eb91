// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the hmirror device model: the input is a little
 * program for a hostile guest that writes page tables, context entries,
 * descriptors (structured and raw, any tag), ring indices, fault answers,
 * drv_ctrl (bus mastering) and any other BAR2 word, and rings doorbells.
 * The model runs inline (no threads), on a fresh device and a zeroed fake
 * guest RAM per input, so a run is deterministic.
 *
 * Guest RAM is 4 MiB (GPA [0, 2M) and [4G, 4G+2M)) between PROT_NONE
 * guards of 2 MiB each, so any access outside it crashes, even a whole
 * 2 MiB page beyond an end; the BAR is a heap block (ASan redzones).  While
 * the device has acknowledged bus mastering off (DMA_OFF) the whole RAM is
 * PROT_NONE during every call into the model, so any guest-RAM access
 * then (walk, chunk, fault sizing) crashes too.  Besides the sanitizers
 * the target checks what the driver relies on: fault records are well
 * formed and name an engine, a tag, a page run of 1..512 pages below
 * 2^va_bits, with ids increasing across resets; completions never overrun
 * a sane CQ and carry a valid tag; a MIGRATE never reports more pages than
 * its table can hold; queue states and parked counts are valid.
 *
 * Device memory (ABI 2.1): 1 MiB (256 pages; none when c0 bit 7 is set).
 * Map operations may write VRAM leaves (offsets up to 320 pages, so some
 * past the end), and MIGRATE tables mix device pages, guest pages, pages
 * outside RAM and hostile low bits.  Device memory is not guest RAM: the
 * device may touch it while guest RAM is PROT_NONE.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "guest_ram.h"
#include "hmdev.h"
#include "hmdev_internal.h"
#include "log.h"

#define RAM_SIZE	(4ull << 20)
#define LOWMEM		(2ull << 20)
#define G4		0x100000000ull
#define PG		4096ull
#define BAR_SIZE	(1u << 20)	/* every configuration below fits */
#define GUARD		(2ull << 20)
#define VRAM_MB		1
#define VRAM_SPAN	320		/* device pages the input names */

static struct guest_ram ram;
static uint8_t *ram_map;	/* guard + RAM + guard */
static int ram_locked;		/* RAM is PROT_NONE now */
static struct hmdev dev;
static int verbose;		/* FUZZ_VERBOSE=1: print completions */
static uint8_t *bar;
static size_t bar_size;

/* Input reader: bytes run out as zeros. */
struct in {
	const uint8_t *p;
	size_t n;
};

static uint8_t u8(struct in *in)
{
	uint8_t v = 0;

	if (in->n) {
		v = *in->p++;
		in->n--;
	}
	return v;
}

/* Little-endian; each byte read in its own statement (sequenced). */
static uint16_t u16(struct in *in)
{
	uint16_t lo = u8(in);

	return (uint16_t)(lo | u8(in) << 8);
}

static uint32_t u32(struct in *in)
{
	uint32_t lo = u16(in);

	return lo | (uint32_t)u16(in) << 16;
}

static uint64_t u64(struct in *in)
{
	uint64_t lo = u32(in);

	return lo | (uint64_t)u32(in) << 32;
}

/* Driver-side state of the harness. */
static struct {
	uint32_t sq_tail[HMIRROR_MAX_QUEUES];
	uint32_t cq_head[HMIRROR_MAX_QUEUES];
	uint64_t seq[HMIRROR_MAX_QUEUES];
	uint32_t fault_head;
	uint32_t reset_gen;
	uint64_t frame_next;	/* bump allocator of 4 KiB frames */
	uint64_t root[4];
	int hostile;		/* indices were scribbled: skip checks */
	struct hmirror_fault last;
	uint32_t ctrl_gen;
} drv;

static int fatal(const char *what)
{
	fprintf(stderr, "fuzz_hmdev: invariant broken: %s\n", what);
	abort();
}

/* ---- guest memory helpers -------------------------------------------- */

static uint64_t *gptr(uint64_t gpa)
{
	return guest_ram_ptr(&ram, gpa, 8);
}

/* Frames: [64K, 1.5M) then [4G, 4G + 1.5M); the two 2 MiB frames stay free. */
static uint64_t frame(void)
{
	uint64_t g = drv.frame_next;

	if (g == 0x180000ull)
		g = G4;
	if (g >= G4 + 0x180000ull)
		g = 0x10000ull;		/* wrap: reuse (aliasing is fine) */
	drv.frame_next = g + PG;
	return g;
}

/* The last two are 57-bit addresses (out of range on 48-bit devices). */
static const uint64_t va_base[8] = {
	0, 0x1000, 0x7f1234560000ull, 0x40000000ull, 0xffffffff000ull,
	(1ull << 48) - 0x10000, (1ull << 48) | 0x7f1234560000ull,
	(1ull << 57) - 0x10000,
};

static uint64_t va_of(uint8_t sel, uint8_t page, uint16_t off)
{
	return va_base[sel & 7] + (uint64_t)page * PG + (off & 0x1fff);
}

/* Entry for @va at @level in the tables under @root, creating directories. */
static uint64_t *slot(uint64_t root, uint64_t va, int level)
{
	uint64_t table = root, *e;
	int l;

	for (l = (int)hmirror_pt_levels(dev.hdr.va_bits); l > level; l--) {
		e = gptr(table + 8 * ((va >> (12 + 9 * (l - 1))) & 511));
		if (!e)
			return NULL;
		if (!(*e & HMIRROR_PTE_VALID) || (*e & HMIRROR_PTE_HUGE))
			*e = frame() | HMIRROR_PTE_VALID | HMIRROR_PTE_WRITE;
		table = *e & HMIRROR_PTE_ADDR_MASK;
	}
	return gptr(table + 8 * ((va >> (12 + 9 * (level - 1))) & 511));
}

static uint64_t len_of(uint8_t sel, struct in *in)
{
	/*
	 * No valid length above 16 MiB: a hostile table can map 1 GiB (512
	 * huge entries made by a FILL) and a few such commands take minutes
	 * under the sanitizers.  The 1 GiB limit itself is a host test.
	 */
	static const uint64_t lens[16] = {
		0, 1, 7, 8, 16, 4095, 4096, 4097, 8192, 3 * 4096 + 24,
		64 * 4096, 2ull << 20, (2ull << 20) + 8, 16ull << 20,
		(1ull << 30) + 8, ~0ull,
	};

	if (sel & 0x10)
		return u16(in);
	return lens[sel & 15];
}

/* ---- the driver's side of the rings ------------------------------------ */

static struct hmirror_queue_regs *qr(unsigned q)
{
	return &dev.qregs[q];
}

static void put_cmd(unsigned q, const struct hmirror_cmd *c)
{
	struct hmirror_cmd *s = &dev.sq[q][drv.sq_tail[q] & dev.sq_mask];

	memcpy(s, c, sizeof(*c));
	drv.sq_tail[q]++;
	__atomic_store_n(&qr(q)->sq_tail, drv.sq_tail[q], __ATOMIC_RELEASE);
}

/* Consume completions like the driver (only when indices are sane). */
static void reap(void)
{
	unsigned q;

	for (q = 0; q < dev.num_queues; q++) {
		uint32_t tail = __atomic_load_n(&qr(q)->cq_tail, __ATOMIC_ACQUIRE);

		if (drv.hostile)
			continue;
		if (tail - drv.cq_head[q] > dev.hdr.cq_entries)
			fatal("cq_tail ran past a sane cq_head");
		for (; drv.cq_head[q] != tail; drv.cq_head[q]++) {
			struct hmirror_cpl *c = &dev.cq[q][drv.cq_head[q] & dev.cq_mask];

			if (c->tag >= dev.hdr.sq_entries &&
			    c->status != HMIRROR_ST_BAD_TAG)
				fatal("completion with a tag out of range");
			if (c->queue != q)
				fatal("completion names another queue");
			if (c->opcode == HMIRROR_OP_MIGRATE && c->queue &&
			    c->result > HMIRROR_MIGRATE_LEN_MAX)
				fatal("MIGRATE copied more pages than a table holds");
			if (verbose)
				fprintf(stderr, "q%u seq %llu tag %u op %u status %u faults %u result 0x%llx\n",
					q, (unsigned long long)c->seqno, c->tag,
					c->opcode, c->status, c->nfaults,
					(unsigned long long)c->result);
		}
		__atomic_store_n(&qr(q)->cq_head, tail, __ATOMIC_RELEASE);
	}
}

static void check_fault(const struct hmirror_fault *f)
{
	if (!f->fault_id)
		fatal("fault_id 0");
	if (f->queue < 1 || f->queue >= dev.num_queues)
		fatal("fault on no engine");
	if (f->access < HMIRROR_ACCESS_READ || f->access > HMIRROR_ACCESS_ATOMIC)
		fatal("fault access");
	if (f->addr & (PG - 1))
		fatal("fault addr not page aligned");
	if (f->npages < 1 || f->npages > HMIRROR_FAULT_NPAGES_MAX)
		fatal("fault npages out of 1..512");
	if (f->addr >= dev.va_end || f->npages > (dev.va_end - f->addr) / PG)
		fatal("fault run beyond 2^va_bits");
	if (f->ctx >= dev.hdr.max_contexts)
		fatal("fault on a context that cannot exist");
	if (f->tag >= dev.hdr.sq_entries)
		fatal("fault names a tag out of range");
	if (f->fault_id <= drv.last.fault_id && drv.last.fault_id &&
	    !drv.hostile)
		fatal("fault ids not increasing");
}

/* Take the next fault record; 1 if there was one. */
static int next_fault(struct hmirror_fault *f)
{
	uint32_t tail = __atomic_load_n(&dev.fregs->tail, __ATOMIC_ACQUIRE);

	if (tail == drv.fault_head)
		return 0;
	if (tail - drv.fault_head > dev.hdr.fault_entries) {
		if (!drv.hostile)
			fatal("fault tail ran past a sane head");
		/* the guest wrote the tail itself: catch up, read nothing */
		drv.fault_head = tail;
		__atomic_store_n(&dev.fregs->head, tail, __ATOMIC_RELEASE);
		return 0;
	}
	memcpy(f, &dev.fault_ring[drv.fault_head & dev.fault_mask], sizeof(*f));
	drv.fault_head++;
	__atomic_store_n(&dev.fregs->head, drv.fault_head, __ATOMIC_RELEASE);
	/* after a scribble on the registers the guest reads what it wrote */
	if (!drv.hostile) {
		check_fault(f);
		drv.last = *f;
	}
	return 1;
}

/* Answer table entry @tag of queue @q: the answer, then the id. */
static void answer(unsigned q, uint16_t tag, uint64_t id, uint32_t a)
{
	struct hmirror_fault_answer *t = &dev.answers[q][tag % dev.hdr.sq_entries];

	__atomic_store_n(&t->answer, a, __ATOMIC_RELAXED);
	__atomic_store_n(&t->fault_id, id, __ATOMIC_RELEASE);
}

static void check_queues(void)
{
	unsigned q;

	if (drv.hostile)
		return;		/* the guest wrote these registers itself */
	for (q = 0; q < dev.num_queues; q++) {
		uint32_t st = __atomic_load_n(&qr(q)->q_status, __ATOMIC_ACQUIRE);
		uint32_t parked = __atomic_load_n(&qr(q)->parked, __ATOMIC_ACQUIRE);

		if (st > HMIRROR_Q_ERROR)
			fatal("queue status");
		if (q == 0 && (st == HMIRROR_Q_STALLED || parked))
			fatal("management queue stalled");
		if (parked > dev.hdr.sq_entries || parked > dev.hdr.cq_entries)
			fatal("more commands parked than can be in flight");
		if (st == HMIRROR_Q_STALLED && !parked)
			fatal("stalled with nothing parked");
	}
}

/*
 * Guest RAM is PROT_NONE during a call into the model exactly when the
 * model has acknowledged bus mastering off and will not turn it on in
 * this call (a new drv_ctrl_gen with BUS_MASTER set).
 */
static void ram_lock(int lock)
{
	if (lock == ram_locked)
		return;
	if (mprotect(ram.base, RAM_SIZE, lock ? PROT_NONE : PROT_READ | PROT_WRITE))
		abort();
	ram_locked = lock;
}

static int dma_must_be_off(void)
{
	int turning_on = dev.ctrl_ack != __atomic_load_n(&dev.regs->drv_ctrl_gen,
							 __ATOMIC_ACQUIRE) &&
			 (__atomic_load_n(&dev.regs->drv_ctrl, __ATOMIC_ACQUIRE) &
			  HMIRROR_DRV_BUS_MASTER);

	return __atomic_load_n(&dev.dma_off, __ATOMIC_ACQUIRE) && !turning_on;
}

static void doorbell(unsigned v)
{
	ram_lock(dma_must_be_off());
	hmdev_doorbell(&dev, v);
	ram_lock(0);
}

static void tick(void)
{
	ram_lock(dma_must_be_off());
	hmdev_tick(&dev);
	ram_lock(0);
}

/* drv_ctrl = @ctrl, announced by a new drv_ctrl_gen. */
static void set_ctrl(uint32_t ctrl)
{
	__atomic_store_n(&dev.regs->drv_ctrl, ctrl, __ATOMIC_RELEASE);
	__atomic_store_n(&dev.regs->drv_ctrl_gen, ++drv.ctrl_gen, __ATOMIC_RELEASE);
}

/* The driver's probe: zero its indices, bus mastering on, reset, ring. */
static void reset(void)
{
	unsigned q;

	for (q = 0; q < dev.num_queues; q++) {
		drv.sq_tail[q] = drv.cq_head[q] = 0;
		drv.seq[q] = 0;
		qr(q)->sq_tail = 0;
		qr(q)->cq_head = 0;
	}
	drv.fault_head = 0;
	dev.fregs->head = 0;
	drv.hostile = 0;
	set_ctrl(HMIRROR_DRV_ENABLE | HMIRROR_DRV_BUS_MASTER);
	dev.regs->drv_reset_gen = ++drv.reset_gen;
	doorbell(HMIRROR_VEC_CTRL);
}

/*
 * One MIGRATE address: @s bit 0 a device page, else a guest page (bits 1-2:
 * low frames, high frames, the hole below 4 GiB, page 0 upwards); bit 3:
 * hostile low bits from the input.
 */
static uint64_t migrate_addr(struct in *in, uint8_t s)
{
	static const uint64_t base[4] = { 0x10000ull, G4, LOWMEM, 0 };
	uint64_t a;

	if (s & 1)
		a = (u16(in) % VRAM_SPAN) * PG | HMIRROR_MIGRATE_VRAM;
	else
		a = base[(s >> 1) & 3] + (uint64_t)u8(in) * PG;
	if (s & 8)
		a ^= u16(in) & (PG - 1);
	return a;
}

/*
 * MIGRATE on queue @q.  @b: bits 0-1 entries - 1; 2 table in a high frame
 * (else low); 3 length from the input; 4 table address offset from the
 * input; 5 a field that must be zero (ctx, dst, arg0, arg1, flags by the
 * next byte) set.
 */
static void migrate(struct in *in, unsigned q, uint8_t b)
{
	struct hmirror_migrate_entry *t;
	struct hmirror_cmd c;
	unsigned n = 1 + (b & 3), i;
	uint64_t table = frame();

	if ((b & 4) && table < G4)
		table = G4 + (table & 0xfffff);
	for (i = 0; i < n; i++) {
		uint8_t s = u8(in);

		t = (void *)gptr(table + i * sizeof(*t));
		if (!t)
			break;
		t->from = migrate_addr(in, s);
		t->to = migrate_addr(in, s >> 4);
	}
	memset(&c, 0, sizeof(c));
	c.opcode = HMIRROR_OP_MIGRATE;
	c.src = table;
	c.len = n;
	if (b & 8)
		c.len = u16(in);
	if (b & 0x10)
		c.src += (int16_t)u16(in);
	if (b & 0x20) {
		uint8_t f = u8(in);

		switch (f % 5) {
		case 0: c.ctx = 1; break;
		case 1: c.dst = PG; break;
		case 2: c.arg0 = 1; break;
		case 3: c.arg1 = 1; break;
		default: c.flags = f; break;
		}
	}
	c.tag = (uint16_t)(drv.sq_tail[q] & dev.sq_mask);
	c.seqno = ++drv.seq[q];
	put_cmd(q, &c);
}

/* ---- setup ------------------------------------------------------------- */

static void setup_once(void)
{
	static int done;

	if (done)
		return;
	done = 1;
	verbose = getenv("FUZZ_VERBOSE") != NULL;
	hm_log_file = verbose ? stderr : fopen("/dev/null", "we");
	ram_map = mmap(NULL, GUARD + RAM_SIZE + GUARD, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram_map == MAP_FAILED)
		abort();
	if (mprotect(ram_map + GUARD, RAM_SIZE, PROT_READ | PROT_WRITE))
		abort();
	guest_ram_set_layout(&ram, RAM_SIZE, LOWMEM);
	ram.base = ram_map + GUARD;
	/* one heap block (ASan redzones around it), reused: init clears it */
	bar = malloc(BAR_SIZE);
	if (!bar)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	struct hmdev_config cfg;
	uint8_t c0 = u8(&in), c1 = u8(&in);
	unsigned steps = 0, i;

	setup_once();
	madvise(ram.base, RAM_SIZE, MADV_DONTNEED);	/* zero again */
	memset(&drv, 0, sizeof(drv));
	drv.frame_next = 0x10000ull;

	hmdev_config_default(&cfg);
	cfg.engines = 1 + c0 % 3;
	cfg.sq_entries = 4 << (c0 >> 2 & 1);
	cfg.cq_entries = 2 << (c0 >> 3 & 3);
	cfg.fault_entries = 2 << (c0 >> 5 & 1);
	cfg.max_contexts = 4 + (c1 & 3);
	cfg.tlb_entries = 1 + (c1 >> 2) % 20;
	cfg.va_bits = c0 & 0x40 ? HMIRROR_VA_BITS_5LEVEL : HMIRROR_VA_BITS_4LEVEL;
	cfg.vram_mb = c0 & 0x80 ? 0 : VRAM_MB;
	bar_size = (size_t)hmdev_bar_size(&cfg);
	if (bar_size != BAR_SIZE ||
	    hmdev_init(&dev, &cfg, bar, bar_size, &ram, NULL, NULL, NULL, 0))
		abort();
	for (i = 0; i < 4; i++) {
		drv.root[i] = frame();
		dev.ctx[i].pt_root = drv.root[i];
		dev.ctx[i].flags = i ? HMIRROR_CTX_VALID : 0;
	}
	if (!(c1 & 0x80))
		reset();

	while (in.n && steps++ < 256) {
		uint8_t op = u8(&in), a = u8(&in), b = u8(&in);
		unsigned q = a % dev.num_queues;
		struct hmirror_cmd c;
		struct hmirror_fault f;
		uint64_t va, *e;

		switch (op % 22) {
		case 0: case 1: case 2: {	/* map a page (or 2 MiB) */
			uint8_t pg = u8(&in);

			/*
			 * b: bit 0 writable, bits 1-2 root, 5 device page
			 * (its number follows), 6 high frame, 7 huge
			 */
			uint64_t root = drv.root[1 + ((b >> 1) & 3) % 3];

			va = va_of(a, pg, 0) & ~(PG - 1);
			if (b & 0x20) {
				uint64_t off = (u16(&in) % VRAM_SPAN) * PG;

				e = slot(root, va, 1);
				if (e)
					*e = off | HMIRROR_PTE_VALID | HMIRROR_PTE_VRAM |
					     (b & 1 ? HMIRROR_PTE_WRITE : 0) |
					     (b & 0x80 ? HMIRROR_PTE_HUGE : 0);
			} else if (b & 0x80) {
				e = slot(root, va & ~((2ull << 20) - 1), 2);
				if (e)
					*e = (b & 0x40 ? G4 : 0) | HMIRROR_PTE_VALID |
					     HMIRROR_PTE_HUGE | (b & 1 ? HMIRROR_PTE_WRITE : 0);
			} else {
				e = slot(root, va, 1);
				if (e)
					*e = frame() | HMIRROR_PTE_VALID |
					     (b & 1 ? HMIRROR_PTE_WRITE : 0);
			}
			break;
		}
		case 3: {		/* hostile entry at some level */
			uint64_t v = u64(&in);

			/* b: bits 0-1 root, 2-3 level, 6 raw value (else flip a bit) */
			va = va_of(a, u8(&in), 0);
			e = slot(drv.root[1 + (b & 3) % 3], va, 1 + (b >> 2) % 4);
			if (e)
				*e = (b & 0x40) ? v : (*e ^ (1ull << (v & 63)));
			break;
		}
		case 4:			/* unmap */
			va = va_of(a, u8(&in), 0);
			e = slot(drv.root[1 + (b & 3) % 3], va, 1 + (b >> 2) % 2);
			if (e)
				*e = 0;
			break;
		case 5: {		/* context entry */
			unsigned id = b % (dev.hdr.max_contexts + 2);

			if (id >= HMDEV_MAX_CONTEXTS)
				break;
			dev.ctx[id].flags = a & 1 ? HMIRROR_CTX_VALID : a;
			dev.ctx[id].pt_root = a & 2 ? u64(&in) : drv.root[a >> 2 & 3];
			break;
		}
		case 6: case 7: case 8: case 9: {	/* structured command */
			/* s2 bit 3: tag from the input, else the SQ index's */
			uint8_t s1 = u8(&in), s2 = u8(&in), ls = u8(&in), pg;
			uint16_t off;

			memset(&c, 0, sizeof(c));
			c.opcode = b % (HMIRROR_NUM_OPS + 1);
			c.flags = (ls & 0x20) ? 1 : 0;
			c.ctx = (ls & 0x40) ? u16(&in) : 1 + (s1 >> 4) % 3;
			pg = u8(&in);
			off = (ls & 0x80) ? u16(&in) : 0;
			c.src = va_of(s1, pg, off);
			pg = u8(&in);
			off = (ls & 0x80) ? u16(&in) : 0;
			c.dst = va_of(s2, pg, off);
			c.len = len_of(ls, &in);
			c.arg0 = u64(&in);
			c.arg1 = u64(&in);
			c.tag = (s2 & 0x08) ? u16(&in) :
				(uint16_t)(drv.sq_tail[q] & dev.sq_mask);
			c.seqno = ++drv.seq[q];
			put_cmd(q, &c);
			break;
		}
		case 10: {		/* raw descriptor */
			uint8_t raw[64];

			for (i = 0; i < 64; i++)
				raw[i] = u8(&in);
			memcpy(&c, raw, 64);
			put_cmd(q, &c);
			break;
		}
		case 11:
			doorbell(b & 0x80 ? b : b % HMIRROR_NUM_VECTORS);
			break;
		case 12:
			tick();
			break;
		case 13:		/* answer the next fault, driver-like */
			if (next_fault(&f)) {
				if (b & 1) {
					/* service: map the run */
					for (i = 0; i < f.npages; i++) {
						e = slot(drv.root[f.ctx & 3],
							 f.addr + i * PG, 1);
						if (e && f.ctx && f.ctx < 4)
							*e = frame() | HMIRROR_PTE_VALID |
							     HMIRROR_PTE_WRITE;
					}
				}
				/* b: 2 right id, 4 cancel, 8 bad value, 16 other tag */
				answer(f.queue, b & 0x10 ? f.tag + 1 : f.tag,
				       b & 2 ? f.fault_id : f.fault_id + (b >> 2),
				       b & 4 ? HMIRROR_FAULT_CANCEL :
				       b & 8 ? b : HMIRROR_FAULT_REPLAY);
				doorbell(HMIRROR_VEC_FAULT);
			}
			break;
		case 14: {		/* raw answer table entry */
			uint16_t tag = u16(&in);
			uint64_t id = u64(&in);

			answer(q, tag, id, u32(&in));
			break;
		}
		case 15:
			reap();
			break;
		case 16: {		/* scribble on any BAR2 word */
			uint32_t off = u16(&in), v;

			off = (off | (uint32_t)(b & 0xf) << 16) & ~3u &
			      (uint32_t)(bar_size - 1);
			v = u32(&in);

			memcpy(bar + off, &v, 4);
			if (off >= HMIRROR_QUEUES_OFF && off < HMIRROR_CTX_OFF)
				drv.hostile = 1;
			break;
		}
		case 17:
			reset();
			break;
		case 18:		/* TLB_INVAL */
			memset(&c, 0, sizeof(c));
			c.opcode = HMIRROR_OP_TLB_INVAL;
			c.ctx = 1 + b % 4;
			c.src = va_of(a, u8(&in), 0);
			b = u8(&in);
			c.len = len_of(b, &in);
			c.seqno = ++drv.seq[0];
			put_cmd(0, &c);
			break;
		case 19:		/* drv_ctrl: bus mastering on or off */
			/*
			 * b: 1 BUS_MASTER, 2 no new gen, 4 ring CTRL, 8 also
			 * reset (and ring: the harness forgets its rings now)
			 */
			if (b & 2)
				dev.regs->drv_ctrl = b & 1 ? HMIRROR_DRV_BUS_MASTER : 0;
			else
				set_ctrl(HMIRROR_DRV_ENABLE |
					 (b & 1 ? HMIRROR_DRV_BUS_MASTER : 0));
			if (b & 8) {
				for (i = 0; i < dev.num_queues; i++) {
					drv.sq_tail[i] = drv.cq_head[i] = 0;
					drv.seq[i] = 0;
					qr(i)->sq_tail = 0;
					qr(i)->cq_head = 0;
				}
				drv.fault_head = 0;
				dev.fregs->head = 0;
				drv.hostile = 0;
				dev.regs->drv_reset_gen = ++drv.reset_gen;
			}
			if (b & 0xc)
				doorbell(HMIRROR_VEC_CTRL);
			break;
		case 21:		/* MIGRATE with a table of 1..4 entries */
			migrate(&in, q, b);
			break;
		default:		/* guest CPU writes data */
			e = gptr((a & 1 ? G4 : 0) + (u32(&in) & (LOWMEM - 8)));
			va = u64(&in);
			if (e)
				*e = va;
			break;
		}
		check_queues();
	}
	/* drain: answer everything with CANCEL, ring, until quiet */
	for (i = 0; i < 64; i++) {
		struct hmirror_fault f;

		while (next_fault(&f))
			answer(f.queue, f.tag, f.fault_id, HMIRROR_FAULT_CANCEL);
		reap();
		doorbell(HMIRROR_VEC_FAULT);
	}
	check_queues();
	hmdev_shutdown(&dev);
	hmdev_fini(&dev);
	return 0;
}
