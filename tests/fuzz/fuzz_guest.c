// SPDX-License-Identifier: MIT
/*
 * The input language of the device model's fuzz targets: a little program
 * for a hostile guest and its driver.  It lays out guest RAM (fuzz_ram.c),
 * configures the device (or first tries a configuration the model must
 * refuse), then runs up to 256 operations: write page tables (4 KiB and
 * 2 MiB leaves, near or across a RAM window's end, device-memory leaves
 * in and past device memory, hostile entries at any level), context
 * entries, descriptors (structured and raw, any tag), MIGRATE tables
 * (device pages, guest pages, pages outside RAM, hostile low bits), fault
 * answers (driver-like or raw), drv_ctrl (bus mastering), the polling
 * hints, any BAR2 word; ring doorbells, tick; arm a load trigger (a store
 * the guest makes at the instant the device loads a word); probe the RAM
 * map.  At the end everything in flight is answered and reaped: every
 * command must have completed, or been dropped by a reset.
 *
 * Threaded (fuzz_engines): the engines run in their own threads
 * (hmdev_start()) while the program goes on, and a few operations only
 * make sense then: wait for the engines, hold an engine inside a chunk
 * and reset the device under it (a reset mid-command) or turn bus
 * mastering off under it, stop and restart the engine threads (commands
 * stay in flight; stopped, the doorbells run the engines inline).
 *
 * Input: c0 (engines, ring sizes, va_bits, initial reset), c1 (contexts,
 * TLB size, try bad configurations), c2 (device memory), the RAM layout
 * (fuzz_ram.c), then operations of 3 bytes (op, a, b) and their
 * arguments.
 */
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_guest.h"
#include "log.h"

struct fz fz;

static uint64_t root[4];		/* contexts 0..3 start on these tables */
static pthread_t harness;

uint8_t fz_u8(struct fz_in *in)
{
	uint8_t v = 0;

	if (in->n) {
		v = *in->p++;
		in->n--;
	}
	return v;
}

/* Little-endian; each byte read in its own statement (sequenced). */
uint16_t fz_u16(struct fz_in *in)
{
	uint16_t lo = fz_u8(in);

	return (uint16_t)(lo | fz_u8(in) << 8);
}

uint32_t fz_u32(struct fz_in *in)
{
	uint32_t lo = fz_u16(in);

	return lo | (uint32_t)fz_u16(in) << 16;
}

uint64_t fz_u64(struct fz_in *in)
{
	uint64_t lo = fz_u32(in);

	return lo | (uint64_t)fz_u32(in) << 32;
}

void fz_fatal(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz oracle: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	abort();
}

uint64_t fz_vram_page(void)
{
	uint64_t off = fz.vram_next;

	if (!fz.vram_size)
		return 0;
	fz.vram_next = (fz.vram_next + FZ_PG) % fz.vram_size;
	return off;
}

/* The model raises an interrupt (any thread). */
static void raise_irq(void *opaque, unsigned vector)
{
	(void)opaque;
	if (vector >= HMIRROR_NUM_VECTORS)
		fz_fatal("interrupt on vector %u", vector);
}

/* ---- holding an engine inside a chunk (threaded) ----------------------- */

enum { HOLD_IDLE, HOLD_ARMED, HOLD_IN };

static int hold_state;		/* atomic */
static int hold_go;		/* atomic */
static int in_call;		/* the harness is inside a model call (atomic) */
static bool hold_keep;		/* a reset under a held engine: it lets it go */
static unsigned passes[HMIRROR_MAX_QUEUES];	/* queue passes started (atomic) */

static void relax(void)
{
	sched_yield();
}

/*
 * The model's test hook.  PASS: count the passes over each queue.  ACCESS
 * (in an engine thread, inval_lock held for reading, right before a
 * chunk's access): an armed hold keeps the engine there until the harness
 * lets it go, the device stops its engines (a reset, hmdev_stop()), or the
 * harness calls into the model, which may need inval_lock for writing
 * (queue 0's TLB_INVAL, bus mastering off).
 */
static void hold_hook(void *opaque, unsigned q, int phase)
{
	int armed = HOLD_ARMED;

	(void)opaque;
	if (phase == HMDEV_HOOK_PASS) {
		__atomic_fetch_add(&passes[q], 1, __ATOMIC_ACQ_REL);
		return;
	}
	if (phase != HMDEV_HOOK_ACCESS || q == HMIRROR_QUEUE_MGMT ||
	    pthread_equal(pthread_self(), harness) ||
	    __atomic_load_n(&in_call, __ATOMIC_ACQUIRE) ||
	    !__atomic_compare_exchange_n(&hold_state, &armed, HOLD_IN, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return;
	while (!__atomic_load_n(&hold_go, __ATOMIC_ACQUIRE) &&
	       !__atomic_load_n(&fz.dev.abort, __ATOMIC_ACQUIRE) &&
	       !__atomic_load_n(&in_call, __ATOMIC_ACQUIRE))
		relax();
	__atomic_store_n(&hold_state, HOLD_IDLE, __ATOMIC_RELEASE);
}

static void hold_arm(void)
{
	__atomic_store_n(&hold_go, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&hold_state, HOLD_ARMED, __ATOMIC_RELEASE);
}

/* An engine is held: let it go and wait until it is out. */
static void hold_release(void)
{
	if (__atomic_load_n(&hold_state, __ATOMIC_ACQUIRE) != HOLD_IN)
		return;
	__atomic_store_n(&hold_go, 1, __ATOMIC_RELEASE);
	while (__atomic_load_n(&hold_state, __ATOMIC_ACQUIRE) == HOLD_IN)
		relax();
	__atomic_store_n(&hold_go, 0, __ATOMIC_RELEASE);
}

static void hold_disarm(void)
{
	int armed = HOLD_ARMED;

	__atomic_compare_exchange_n(&hold_state, &armed, HOLD_IDLE, false,
				    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
	hold_release();
}

/* ---- calls into the model ---------------------------------------------- */

/*
 * The device has acknowledged bus mastering off and this call cannot turn
 * it on (a new drv_ctrl_gen with BUS_MASTER): guest RAM is PROT_NONE for
 * the device.  (The model's own state is the truth of what it acked.)
 */
static bool dma_must_be_off(void)
{
	const struct hmirror_regs *r = fz.dev.regs;
	bool turning_on =
		fz.dev.ctrl_ack != __atomic_load_n(&r->drv_ctrl_gen, __ATOMIC_ACQUIRE) &&
		(__atomic_load_n(&r->drv_ctrl, __ATOMIC_ACQUIRE) &
		 HMIRROR_DRV_BUS_MASTER);

	return __atomic_load_n(&fz.dev.dma_off, __ATOMIC_ACQUIRE) && !turning_on;
}

static void before_call(void)
{
	if (!hold_keep) {
		__atomic_store_n(&in_call, 1, __ATOMIC_RELEASE);
		hold_release();
	}
	fz.dma_locked = dma_must_be_off();
	fz_oracle_sync();
}

static void after_call(void)
{
	__atomic_store_n(&in_call, 0, __ATOMIC_RELEASE);
	/* the model's own ack, not the register the guest can scribble on */
	if (fz_drv.reset_pending && fz.dev.reset_ack == fz_drv.reset_gen) {
		fz_drv.reset_pending = false;
		if (!fz_drv.hostile &&
		    __atomic_load_n(&fz.dev.regs->dev_reset_ack, __ATOMIC_ACQUIRE) !=
		    fz_drv.reset_gen)
			fz_fatal("reset %u done, dev_reset_ack says %u", fz_drv.reset_gen,
				 __atomic_load_n(&fz.dev.regs->dev_reset_ack,
						 __ATOMIC_ACQUIRE));
		/* nothing from before the reset runs on: shrink */
		fz_oracle_epoch();
	}
	fz.dma_locked = dma_must_be_off();
	fz_oracle_sync();
	if (!fz.threaded) {
		unsigned c, n = 0, all = hmdev_tlb_count(&fz.dev, -1);

		/* only translations of contexts that exist are cached */
		for (c = 0; c < fz.dev.hdr.max_contexts; c++)
			n += hmdev_tlb_count(&fz.dev, (int)c);
		if (all > fz.dev.hdr.tlb_entries || n != all)
			fz_fatal("TLB: %u entries, %u of valid contexts, capacity %u",
				 all, n, fz.dev.hdr.tlb_entries);
	}
}

static void doorbell_n(unsigned v, uint64_t rings)
{
	before_call();
	hmdev_doorbell_n(&fz.dev, v, rings);
	after_call();
}

static void doorbell(unsigned v)
{
	doorbell_n(v, 1);
}

static void tick(void)
{
	before_call();
	hmdev_tick(&fz.dev);
	after_call();
}

/* Every engine started @n passes since @snap. */
static bool engines_passed(const unsigned *snap, unsigned n)
{
	unsigned q;

	for (q = 1; q < fz.dev.num_queues; q++)
		if (__atomic_load_n(&passes[q], __ATOMIC_ACQUIRE) - snap[q] < n)
			return false;
	return true;
}

/*
 * Arm a hold, kick the engines, and wait until one is held in a chunk
 * (true) or none will be: each has begun a pass since the kick, and, kicked
 * again, begun another, so the first one ended (false).
 */
static bool hold_engine(void)
{
	unsigned snap[HMIRROR_MAX_QUEUES], q, i, round;
	int armed = HOLD_ARMED;

	if (!(__atomic_load_n(&fz.dev.status, __ATOMIC_ACQUIRE) &
	      HMIRROR_DEV_ENABLED))
		return false;		/* the engines run nothing */
	for (q = 0; q < HMIRROR_MAX_QUEUES; q++)
		snap[q] = __atomic_load_n(&passes[q], __ATOMIC_ACQUIRE);
	hold_arm();
	for (round = 1; round <= 2; round++) {
		doorbell(HMIRROR_VEC_CQ);
		for (i = 0; i < 100000; i++) {
			if (__atomic_load_n(&hold_state, __ATOMIC_ACQUIRE) == HOLD_IN)
				return true;
			if (engines_passed(snap, round))
				break;
			relax();
		}
	}
	if (__atomic_compare_exchange_n(&hold_state, &armed, HOLD_IDLE, false,
					__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return false;
	/* an engine took it meanwhile (and may have left it at once) */
	return __atomic_load_n(&hold_state, __ATOMIC_ACQUIRE) == HOLD_IN;
}

/* ---- the driver's control --------------------------------------------- */

static struct hmirror_queue_regs *qr(unsigned q)
{
	return &fz.dev.qregs[q];
}

/* Stopped engines do not poll: nothing may say so. */
static void check_not_polling(const char *when)
{
	unsigned q;

	for (q = 0; q < fz.dev.num_queues; q++)
		if (__atomic_load_n(&qr(q)->dev_polling, __ATOMIC_ACQUIRE))
			fz_fatal("q%u: dev_polling set %s", q, when);
}

/*
 * drv_ctrl = @ctrl, announced by a new drv_ctrl_gen: new whatever the
 * guest scribbled on either generation word, and not the one acked.
 */
static void set_ctrl(uint32_t ctrl)
{
	struct hmirror_regs *r = fz.dev.regs;
	uint32_t gen = fz_drv.ctrl_gen, v;

	v = __atomic_load_n(&r->drv_ctrl_gen, __ATOMIC_ACQUIRE);
	gen = (v > gen ? v : gen) + 1;
	if (gen == fz.dev.ctrl_ack)
		gen++;
	fz_drv.ctrl_gen = gen;
	fz_drv.ctrl = ctrl;
	__atomic_store_n(&r->drv_ctrl, ctrl, __ATOMIC_RELEASE);
	__atomic_store_n(&r->drv_ctrl_gen, gen, __ATOMIC_RELEASE);
}

/*
 * Zero our indices and request a reset (the probe and the dead path do
 * this); @ring: ring CTRL now, and check the device acted on it at once.
 */
static void request_reset(bool ring)
{
	struct hmirror_regs *r = fz.dev.regs;
	uint32_t gen = fz_drv.reset_gen, v;
	unsigned q;

	if (!fz_drv.hostile)
		fz_drv_reap();
	fz_drv_epoch();
	for (q = 0; q < fz.dev.num_queues; q++) {
		__atomic_store_n(&qr(q)->sq_tail, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&qr(q)->cq_head, 0, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&fz.dev.fregs->head, 0, __ATOMIC_RELEASE);
	fz_oracle_reset_requested();
	/* a new generation, whatever the guest scribbled over either word */
	v = __atomic_load_n(&r->dev_reset_ack, __ATOMIC_ACQUIRE);
	gen = v > gen ? v : gen;
	v = __atomic_load_n(&r->drv_reset_gen, __ATOMIC_ACQUIRE);
	gen = (v > gen ? v : gen) + 1;
	if (gen == fz.dev.reset_ack)
		gen++;
	fz_drv.reset_gen = gen;
	__atomic_store_n(&r->drv_reset_gen, gen, __ATOMIC_RELEASE);
	if (!ring)
		return;		/* the next CTRL doorbell or tick does it */
	doorbell(HMIRROR_VEC_CTRL);
	if (fz_drv.reset_pending)
		fz_fatal("the CTRL doorbell did not act on reset %u", gen);
	/* nothing was submitted since: nothing translated since */
	if (!fz.threaded && hmdev_tlb_count(&fz.dev, -1))
		fz_fatal("entries left in the TLB after a reset");
}

/* ---- guest memory -------------------------------------------------------- */

/* The last two are 57-bit addresses (out of range on 48-bit devices). */
static const uint64_t va_base[8] = {
	0, 0x1000, 0x7f1234560000ull, 0x40000000ull, 0xffffffff000ull,
	(1ull << 48) - 0x10000, (1ull << 48) | 0x7f1234560000ull,
	(1ull << 57) - 0x10000,
};

static uint64_t va_of(uint8_t sel, uint8_t page, uint16_t off)
{
	return va_base[sel & 7] + (uint64_t)page * FZ_PG + (off & 0x1fff);
}

static unsigned pt_index(uint64_t va, int level)
{
	return (unsigned)(va >> (12 + 9 * (level - 1))) & 511;
}

/*
 * Guest-physical address of the entry for @va at @level under @rt,
 * creating directories; 0 if the walk leaves RAM.
 */
static uint64_t slot(uint64_t rt, uint64_t va, int level)
{
	uint64_t table = rt, ea, e, *p;
	int l;

	for (l = (int)fz.dev.pt_levels; l > level; l--) {
		ea = table + 8 * pt_index(va, l);
		p = fz_cpu_word(ea);
		if (!p)
			return 0;
		e = __atomic_load_n(p, __ATOMIC_ACQUIRE);
		if (!(e & HMIRROR_PTE_VALID) || (e & HMIRROR_PTE_HUGE)) {
			e = fz_frame_table() | HMIRROR_PTE_VALID | HMIRROR_PTE_WRITE;
			fz_cpu_store(ea, e);
		}
		table = e & HMIRROR_PTE_ADDR_MASK;
	}
	ea = table + 8 * pt_index(va, level);
	return fz_cpu_word(ea) ? ea : 0;
}

static uint64_t load_gpa(uint64_t gpa)
{
	uint64_t *p = fz_cpu_word(gpa);

	return p ? __atomic_load_n(p, __ATOMIC_ACQUIRE) : 0;
}

/* A 4 KiB frame at the edge of a RAM window, or just outside it. */
static uint64_t edge_frame(uint8_t sel)
{
	const uint64_t e[8] = {
		fz_ram.below - FZ_PG, fz_ram.below, FZ_G4, FZ_G4 - FZ_PG,
		FZ_G4 + fz_ram.above - FZ_PG, FZ_G4 + fz_ram.above, 0,
		fz_ram.total - FZ_PG,
	};

	return e[sel & 7] & HMIRROR_PTE_ADDR_MASK;
}

static uint64_t len_of(uint8_t sel, struct fz_in *in)
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
		return fz_u16(in);
	return lens[sel & 15];
}

/* ---- configuration ------------------------------------------------------- */

/* Configurations the model must refuse, each with a reason. */
static void bad_config(uint8_t sel)
{
	static uint8_t small_bar[4096];
	struct hmdev_config cfg;
	struct hmirror_header h;
	struct hmdev_tlb tlb;
	char err[256] = "";

	hmdev_config_default(&cfg);
	switch (sel % 11) {
	case 0: cfg.engines = sel & 0x80 ? HMIRROR_MAX_QUEUES : 0; break;
	case 1: cfg.sq_entries = 3 + 2 * (sel >> 4); break;	/* odd */
	case 2: cfg.cq_entries = sel & 0x80 ? 1 : 2 * HMDEV_MAX_ENTRIES; break;
	case 3: cfg.fault_entries = 0; break;
	case 4: cfg.max_contexts = sel & 0x80 ? 0 : HMDEV_MAX_CONTEXTS + 1; break;
	case 5: cfg.tlb_entries = sel & 0x80 ? 0 : HMDEV_MAX_TLB + 1; break;
	case 6: cfg.va_bits = (sel & 0x80) ? 47 + (sel >> 4 & 1) * 2 : 56 + (sel >> 4 & 1) * 2; break;
	case 7: cfg.fault_entries = 2 * HMDEV_MAX_ENTRIES; break;
	case 10: cfg.vram_mb = HMDEV_MAX_VRAM_MB + 1 + (sel >> 4); break;
	case 8:
		/* valid, but the BAR cannot hold it (or there is none) */
		if (!hmdev_init(&fz.dev, &cfg, sel & 0x80 ? NULL : small_bar,
				sizeof(small_bar), NULL, NULL, NULL, err, sizeof(err)) ||
		    !err[0])
			fz_fatal("hmdev_init accepted a BAR too small");
		hmdev_fini(&fz.dev);
		return;
	default: {
		uint64_t end, size;

		if (hmdev_tlb_init(&tlb, 0) != -1)
			fz_fatal("a TLB of 0 entries");
		hmdev_tlb_fini(&tlb);
		/* the largest valid layout: BAR2 a power of two that holds it */
		cfg.engines = HMIRROR_MAX_QUEUES - 1;
		cfg.sq_entries = cfg.cq_entries = HMDEV_MAX_ENTRIES;
		cfg.fault_entries = HMDEV_MAX_ENTRIES;
		end = hmdev_layout(&cfg, &h);
		size = hmdev_bar_size(&cfg);
		if (!end || size < end || (size & (size - 1)) || size < HMDEV_BAR_MIN ||
		    end != hmirror_layout_end(&h))
			fz_fatal("layout end %llu, BAR %llu", (unsigned long long)end,
				 (unsigned long long)size);
		return;
	}
	}
	if (!hmdev_config_check(&cfg, err, sizeof(err)) || !err[0])
		fz_fatal("hmdev_config_check accepted a bad configuration");
	if (hmdev_bar_size(&cfg) || hmdev_layout(&cfg, &h))
		fz_fatal("a layout for a bad configuration");
	err[0] = '\0';
	if (!hmdev_init(&fz.dev, &cfg, fz.bar, FZ_BAR_SIZE, NULL, NULL, NULL,
			err, sizeof(err)) || !err[0])
		fz_fatal("hmdev_init accepted a bad configuration");
	hmdev_fini(&fz.dev);
}

static void setup_once(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	fz.verbose = getenv("FUZZ_VERBOSE") != NULL;
	hm_log_file = fz.verbose ? stderr : fopen("/dev/null", "we");
	/* one heap block (ASan redzones around it), reused: init clears it */
	fz.bar = malloc(FZ_BAR_SIZE);
	if (!fz.bar)
		abort();
	fz_oracle_init_once();
}

/* ---- the operations ------------------------------------------------------ */

enum {
	OP_MAP0, OP_MAP1, OP_MAP2,	/* map a page or 2 MiB */
	OP_HOSTILE_PTE, OP_UNMAP, OP_CTX,
	OP_CMD0, OP_CMD1, OP_CMD2, OP_CMD3,	/* structured command */
	OP_RAW_CMD, OP_DOORBELL, OP_TICK, OP_SERVICE, OP_RAW_ANSWER,
	OP_REAP, OP_SCRIBBLE, OP_RESET, OP_TLB_INVAL, OP_CTRL, OP_CPU_WRITE,
	OP_TRIGGER, OP_PROBE, OP_WAIT, OP_RESET_MID, OP_BUS_OFF_MID,
	OP_STOP_START, OP_BURST, OP_MIGRATE, OP_POLL,
	NUM_OPS
};

static unsigned ctx_root_sel(uint8_t b)
{
	return 1 + b % 3;
}

/* A device page the input names: some past the end of device memory. */
static uint64_t vram_of(struct fz_in *in)
{
	return (fz_u16(in) % fz.vram_span) * FZ_PG;
}

static void op_map(struct fz_in *in, uint8_t a, uint8_t b)
{
	/*
	 * b: bit 0 writable, bits 1-2 root, 5 a device page (its number
	 * follows; with 7 the HUGE bit too, with 6 at level 2: both BAD_PTE),
	 * 6 edge frame (huge: misaligned by some pages), 7 huge
	 */
	uint8_t pg = fz_u8(in);
	uint64_t rt = root[ctx_root_sel((b >> 1) & 3)];
	uint64_t va = va_of(a, pg, 0) & ~(FZ_PG - 1), e;
	uint64_t w = (b & 1) ? HMIRROR_PTE_WRITE : 0;

	if (b & 0x20) {
		uint64_t off = vram_of(in);

		e = slot(rt, va, (b & 0x40) ? 2 : 1);
		if (e)
			fz_cpu_store(e, off | HMIRROR_PTE_VALID | HMIRROR_PTE_VRAM | w |
				     ((b & 0x80) ? HMIRROR_PTE_HUGE : 0));
	} else if (b & 0x80) {
		uint64_t gpa = fz_huge_gpa(fz_u8(in));

		if (b & 0x40)
			gpa += FZ_PG * (1 + fz_u8(in));
		e = slot(rt, va & ~(FZ_HUGE - 1), 2);
		if (e)
			fz_cpu_store(e, gpa | HMIRROR_PTE_VALID | HMIRROR_PTE_HUGE | w);
	} else {
		e = slot(rt, va, 1);
		if (e)
			fz_cpu_store(e, ((b & 0x40) ? edge_frame(fz_u8(in)) :
					 fz_frame_data()) | HMIRROR_PTE_VALID | w);
	}
}

static void op_cmd(struct fz_in *in, unsigned q, uint8_t b)
{
	/* s2 bit 3: tag from the input, else the SQ index's; bit 4: overrun */
	uint8_t s1 = fz_u8(in), s2 = fz_u8(in), ls = fz_u8(in), pg;
	struct hmirror_cmd c;
	uint16_t off;

	memset(&c, 0, sizeof(c));
	c.opcode = b % (HMIRROR_NUM_OPS + 1);
	c.flags = (ls & 0x20) ? 1 : 0;
	c.ctx = (ls & 0x40) ? fz_u16(in) : (uint16_t)(1 + (s1 >> 4) % 3);
	pg = fz_u8(in);
	off = (ls & 0x80) ? fz_u16(in) : 0;
	c.src = va_of(s1, pg, off);
	pg = fz_u8(in);
	off = (ls & 0x80) ? fz_u16(in) : 0;
	c.dst = va_of(s2, pg, off);
	c.len = len_of(ls, in);
	c.arg0 = fz_u64(in);
	c.arg1 = fz_u64(in);
	c.tag = (s2 & 0x08) ? fz_u16(in) :
		(uint16_t)(fz_drv.q[q].sq_tail & fz.dev.sq_mask);
	fz_drv_submit(q, &c, s2 & 0x10);
}

static void op_service(uint8_t b)
{
	struct hmirror_fault f;
	uint64_t e, id;
	unsigned i;

	if (!fz_drv_next_fault(&f))
		return;
	if ((b & 1) && f.ctx && f.ctx < 4) {
		/* service: map the run (b & 0x20: to device memory, if any) */
		for (i = 0; i < f.npages; i++) {
			e = slot(root[f.ctx], f.addr + i * FZ_PG, 1);
			if (e)
				fz_cpu_store(e, ((b & 0x20) && fz.vram_size ?
						 fz_vram_page() | HMIRROR_PTE_VRAM :
						 fz_frame_data()) |
					     HMIRROR_PTE_VALID | HMIRROR_PTE_WRITE);
		}
	}
	/* b: 2 right id, 4 cancel, 8 bad value, 16 other tag */
	id = (b & 2) ? f.fault_id : f.fault_id + (b >> 2);
	if (id > fz_drv.last_fault_id || (b & 0x10))
		fz_drv.guessed = true;
	fz_drv_answer(f.queue, (b & 0x10) ? f.tag + 1u : f.tag, id,
		      (b & 4) ? HMIRROR_FAULT_CANCEL :
		      (b & 8) ? b : HMIRROR_FAULT_REPLAY);
	doorbell(HMIRROR_VEC_FAULT);
}

/*
 * BAR2 offset @off is a word the device fetches descriptors by: a
 * submission ring, or a queue's registers (sq_tail: slots nobody wrote).
 */
static bool sq_word(uint32_t off)
{
	const struct hmirror_header *h = &fz.dev.hdr;
	unsigned q;

	if (off >= HMIRROR_QUEUES_OFF && off < HMIRROR_FAULT_REGS_OFF)
		return true;
	for (q = 0; q < fz.dev.num_queues; q++)
		if (off >= hmirror_sq_off(h, q) &&
		    off < hmirror_sq_off(h, q) + h->sq_entries * sizeof(struct hmirror_cmd))
			return true;
	return false;
}

static void op_scribble(struct fz_in *in, uint8_t b)
{
	const struct hmirror_header *h = &fz.dev.hdr;
	uint32_t off = fz_u16(in), v = fz_u32(in);

	off = (off | (uint32_t)(b & 0xf) << 16) & ~3u & (FZ_BAR_SIZE - 1);
	if (off >= HMIRROR_CTX_OFF && off < HMIRROR_RINGS_OFF) {
		/* the context table: the oracle must know */
		fz_ctx_store32((uint32_t *)(void *)(fz.bar + off), v);
		return;
	}
	if (off >= hmirror_answers_off(h, 0) && off < hmirror_layout_end(h))
		fz_drv.guessed = true;		/* an answer nobody read */
	else if (off >= HMIRROR_REGS_OFF && off < hmirror_answers_off(h, 0) &&
		 (off >= HMIRROR_RINGS_OFF || off < HMIRROR_CTX_OFF))
		fz_drv.hostile = true;		/* registers and rings */
	if (sq_word(off))
		fz_oracle_blind();	/* a descriptor nobody wrote: a MIGRATE? */
	__atomic_store_n((uint32_t *)(void *)(fz.bar + off), v, __ATOMIC_RELEASE);
}

static void op_ctrl(uint8_t b)
{
	struct hmirror_regs *r = fz.dev.regs;

	/*
	 * b: 1 BUS_MASTER, 2 no new gen, 4 ring CTRL, 8 also reset (and
	 * ring: the driver's dead path)
	 */
	if (b & 2)
		__atomic_store_n(&r->drv_ctrl, (b & 1) ? HMIRROR_DRV_BUS_MASTER : 0,
				 __ATOMIC_RELEASE);
	else
		set_ctrl(HMIRROR_DRV_ENABLE | ((b & 1) ? HMIRROR_DRV_BUS_MASTER : 0));
	if (b & 8) {
		request_reset(true);
		return;
	}
	if (b & 4)
		doorbell(HMIRROR_VEC_CTRL);
}

/* A guest write at the instant the device loads a word. */
static void op_trigger(struct fz_in *in, uint8_t a, uint8_t b)
{
	struct hmirror_ctx_entry *ce = &fz.dev.ctx[1 + a % 3];
	uint64_t e, v, rt = root[ctx_root_sel(b >> 4)];
	uint32_t flags = __atomic_load_n(&ce->flags, __ATOMIC_ACQUIRE);
	uint64_t *p;

	switch (b & 3) {
	case 0:
		/* the context loses VALID between the device's two reads */
		fz_trigger_arm(&ce->pt_root, 1 + ((b >> 2) & 3), &ce->flags, 4,
			       (b & 0x40) ? 0 : flags & ~HMIRROR_CTX_VALID);
		break;
	case 1:
		/*
		 * A missing page appears on the second load of its entry: the
		 * walk that faulted saw it missing, the one sizing the run
		 * sees it present.
		 */
		e = slot(rt, va_of(a, fz_u8(in), 0), 1);
		p = fz_cpu_word(e);
		if (e && p)
			fz_trigger_arm(fz_dev_addr(e), 2 + ((b >> 2) & 1), p, 8,
				       fz_frame_data() | HMIRROR_PTE_VALID |
				       ((b & 0x40) ? HMIRROR_PTE_WRITE : 0));
		break;
	case 2:
		/* an entry at any level changes under a walk */
		e = slot(rt, va_of(a, fz_u8(in), 0), 1 + ((b >> 6) & 3) %
			 (int)fz.dev.pt_levels);
		p = fz_cpu_word(e);
		v = fz_u64(in);
		if (e && p)
			fz_trigger_arm(fz_dev_addr(e), 1 + ((b >> 2) & 3), p, 8,
				       (b & 0x20) ? v : load_gpa(e) ^ (1ull << (v & 63)));
		break;
	default:
		/* the root moves while the context stays VALID */
		fz_trigger_arm(&ce->flags, 1 + ((b >> 2) & 3), &ce->pt_root, 8,
			       root[(b >> 4) & 3]);
		break;
	}
}

/* Hold an engine in a chunk, then reset the device under it. */
static void op_reset_mid(void)
{
	if (!fz.threaded) {
		request_reset(true);
		return;
	}
	if (hold_engine()) {
		hold_keep = true;	/* the reset itself lets it go */
		request_reset(true);
		hold_keep = false;
		if (__atomic_load_n(&hold_state, __ATOMIC_ACQUIRE) == HOLD_IN)
			fz_fatal("a reset finished with an engine inside a chunk");
	} else {
		request_reset(true);
	}
	hold_disarm();
}

/* Hold an engine in a chunk, turn bus mastering off, let it go. */
static void op_bus_off_mid(void)
{
	struct hmirror_regs *r = fz.dev.regs;

	if (fz.threaded) {
		if (hold_engine())
			__atomic_store_n(&r->drv_ctrl, HMIRROR_DRV_ENABLE,
					 __ATOMIC_RELEASE);
		hold_disarm();	/* its next chunk sees BUS_MASTER clear */
	}
	set_ctrl(HMIRROR_DRV_ENABLE);
	doorbell(HMIRROR_VEC_CTRL);
	if (!__atomic_load_n(&fz.dev.dma_off, __ATOMIC_ACQUIRE) ||
	    !(__atomic_load_n(&r->dev_status, __ATOMIC_ACQUIRE) &
	      HMIRROR_DEV_DMA_OFF))
		fz_fatal("bus mastering off not acknowledged by the CTRL doorbell");
}

static void op_wait(uint8_t b)
{
	unsigned i, q, n = 1 + (b & 15);

	if (!fz.threaded) {
		doorbell(HMIRROR_VEC_CQ);
		return;
	}
	/* until every engine queue is idle or stalled, or a while */
	for (i = 0; i < 256 * n; i++) {
		for (q = 1; q < fz.dev.num_queues; q++)
			if (__atomic_load_n(&qr(q)->q_status, __ATOMIC_ACQUIRE) ==
			    HMIRROR_Q_RUNNING)
				break;
		if (q == fz.dev.num_queues && !(b & 0x80))
			return;
		relax();
	}
}

static void op_stop_start(uint8_t b)
{
	if (!fz.threaded) {
		tick();
		return;
	}
	hold_release();
	hmdev_stop(&fz.dev);
	if (fz.dev.threaded)
		fz_fatal("hmdev_stop left the device threaded");
	check_not_polling("with the engines stopped");
	/* stopped: a doorbell runs the engines in this thread */
	if (b & 1)
		doorbell(HMIRROR_VEC_CQ);
	if (b & 2)
		tick();
	if (hmdev_start(&fz.dev))
		fz_fatal("hmdev_start failed");
	if (b & 4)
		hmdev_start(&fz.dev);	/* idempotent */
}

/* Several one-page READs of consecutive pages: fills the fault ring. */
static void op_burst(uint8_t a, uint8_t b)
{
	unsigned q = 1 + a % (fz.dev.num_queues - 1), i, n = 1 + (b & 7);
	struct hmirror_cmd c;

	for (i = 0; i < n; i++) {
		memset(&c, 0, sizeof(c));
		c.opcode = HMIRROR_OP_READ;
		c.ctx = (uint16_t)ctx_root_sel(b >> 3);
		c.src = va_of(a >> 4, (uint8_t)(16 * i + (b >> 5)), 0);
		c.len = (b & 0x80) ? 2 * FZ_PG : 8;
		c.tag = (uint16_t)(fz_drv.q[q].sq_tail & fz.dev.sq_mask);
		fz_drv_submit(q, &c, false);
	}
	doorbell(HMIRROR_VEC_CQ);
}

/*
 * A page address for a MIGRATE entry, by the selector nibble @s: bit 0 a
 * device page (u16, some past the end), else bits 1-2: a data frame, a
 * 4 KiB frame at a RAM window's edge or just outside (u8), any RAM page
 * (u16), any value (u64); bit 3: hostile low bits (u16) on top.
 */
static uint64_t migrate_addr(struct fz_in *in, uint8_t s)
{
	uint64_t a;

	if (s & 1) {
		a = vram_of(in) | HMIRROR_MIGRATE_VRAM;
	} else {
		switch ((s >> 1) & 3) {
		case 0: a = fz_frame_data(); break;
		case 1: a = edge_frame(fz_u8(in)); break;
		case 2: a = fz_ram_gpa(fz_u16(in) % fz_ram.nframes * FZ_PG); break;
		default: a = fz_u64(in); break;
		}
	}
	if (s & 8)
		a ^= fz_u16(in) & (FZ_PG - 1);
	return a;
}

/*
 * MIGRATE on queue @q (queue 0: BAD_QUEUE).  @b: bits 0-1 entries - 1,
 * 2 the table at a window's edge (u8; else a table frame), 3 len from the
 * input (u16; else the entries written), 4 the table address moved by an
 * offset from the input (s16), 5 a field that must be zero set (u8: ctx,
 * dst, arg0, arg1 or flags).  Each entry: a selector byte (low nibble
 * from, high nibble to: migrate_addr()), then the two addresses' bytes.
 * The guest CPU writes the table (the oracle sees it), then submits.
 */
static void op_migrate(struct fz_in *in, unsigned q, uint8_t b)
{
	const uint64_t esz = sizeof(struct hmirror_migrate_entry);
	unsigned n = 1 + (b & 3), i;
	uint64_t table, from, to;
	struct hmirror_cmd c;

	table = (b & 4) ? edge_frame(fz_u8(in)) : fz_frame_table();
	for (i = 0; i < n; i++) {
		uint8_t s = fz_u8(in);

		from = migrate_addr(in, s);
		to = migrate_addr(in, s >> 4);
		fz_cpu_store(table + i * esz, from);
		fz_cpu_store(table + i * esz + 8, to);
	}
	memset(&c, 0, sizeof(c));
	c.opcode = HMIRROR_OP_MIGRATE;
	c.src = table;
	c.len = n;
	if (b & 8)
		c.len = fz_u16(in);
	if (b & 0x10)
		c.src += (uint64_t)(int64_t)(int16_t)fz_u16(in);
	if (b & 0x20) {
		uint8_t f = fz_u8(in);

		switch (f % 5) {
		case 0: c.ctx = 1; break;
		case 1: c.dst = FZ_PG; break;
		case 2: c.arg0 = 1; break;
		case 3: c.arg1 = 1; break;
		default: c.flags = f; break;
		}
	}
	c.tag = (uint16_t)(fz_drv.q[q].sq_tail & fz.dev.sq_mask);
	fz_drv_submit(q, &c, false);
}

/*
 * The polling hints (2.1, FEAT_POLL).  @b: bits 0-1 drv_poll_us (0, 20,
 * 200, or 5000, which the model caps); bit 2: queue @q's drv_polling
 * becomes bit 3 (while set the device may skip its interrupts).
 */
static void op_poll(unsigned q, uint8_t b)
{
	static const uint32_t us[4] = { 0, 20, 200, 5000 };

	__atomic_store_n(&fz.dev.regs->drv_poll_us, us[b & 3], __ATOMIC_RELEASE);
	if (b & 4)
		__atomic_store_n(&qr(q)->drv_polling, (b >> 3) & 1,
				 __ATOMIC_SEQ_CST);
}

static void step(struct fz_in *in)
{
	uint8_t op = fz_u8(in), a = fz_u8(in), b = fz_u8(in);
	unsigned q = a % fz.dev.num_queues, i;
	struct hmirror_cmd c;
	uint64_t va, e;

	if (fz.verbose)
		fprintf(stderr, "op %u a %#x b %#x\n", op % NUM_OPS, a, b);
	switch (op % NUM_OPS) {
	case OP_MAP0: case OP_MAP1: case OP_MAP2:
		op_map(in, a, b);
		break;
	case OP_HOSTILE_PTE: {
		uint64_t v = fz_u64(in);

		/* b: bits 0-1 root, 2-3 level, 6 raw value (else flip a bit) */
		va = va_of(a, fz_u8(in), 0);
		e = slot(root[ctx_root_sel(b & 3)], va, 1 + (b >> 2) % 4);
		if (e)
			fz_cpu_store(e, (b & 0x40) ? v : load_gpa(e) ^ (1ull << (v & 63)));
		break;
	}
	case OP_UNMAP:
		va = va_of(a, fz_u8(in), 0);
		e = slot(root[ctx_root_sel(b & 3)], va, 1 + (b >> 2) % 2);
		if (e)
			fz_cpu_store(e, 0);
		break;
	case OP_CTX: {
		unsigned id = b % (fz.dev.hdr.max_contexts + 2);
		struct hmirror_ctx_entry *ce = &fz.dev.ctx[id];

		if (id >= HMDEV_MAX_CONTEXTS)
			break;
		/* the driver's order: VALID off, root, VALID on */
		if (a & 1) {
			fz_ctx_store32(&ce->flags, 0);
			fz_ctx_store64(&ce->pt_root, (a & 2) ? fz_u64(in) :
				       root[a >> 2 & 3]);
			fz_ctx_store32(&ce->flags, HMIRROR_CTX_VALID);
		} else {
			fz_ctx_store32(&ce->flags, a);
			fz_ctx_store64(&ce->pt_root, (a & 2) ? fz_u64(in) :
				       root[a >> 2 & 3]);
		}
		break;
	}
	case OP_CMD0: case OP_CMD1: case OP_CMD2: case OP_CMD3:
		op_cmd(in, q, b);
		break;
	case OP_RAW_CMD: {
		uint8_t raw[64];

		for (i = 0; i < 64; i++)
			raw[i] = fz_u8(in);
		memcpy(&c, raw, 64);
		fz_drv_submit(q, &c, b & 1);	/* its seqno is ours */
		break;
	}
	case OP_DOORBELL:
		if (b & 0x40)
			doorbell_n(b % HMIRROR_NUM_VECTORS, (b >> 4) & 3);
		else
			doorbell(b & 0x80 ? b : b % HMIRROR_NUM_VECTORS);
		break;
	case OP_TICK:
		tick();
		break;
	case OP_SERVICE:
		op_service(b);
		break;
	case OP_RAW_ANSWER: {
		uint16_t tag = fz_u16(in);
		uint64_t id = fz_u64(in);

		if (id > fz_drv.last_fault_id)
			fz_drv.guessed = true;
		fz_drv_answer(q, tag, id, fz_u32(in));
		break;
	}
	case OP_REAP:
		fz_drv_reap();
		break;
	case OP_SCRIBBLE:
		op_scribble(in, b);
		break;
	case OP_RESET:
		request_reset(!(b & 1));
		break;
	case OP_TLB_INVAL:
		memset(&c, 0, sizeof(c));
		c.opcode = HMIRROR_OP_TLB_INVAL;
		c.ctx = (uint16_t)(1 + b % 4);
		c.src = va_of(a, fz_u8(in), 0);
		b = fz_u8(in);
		c.len = len_of(b, in);
		c.tag = (uint16_t)(fz_drv.q[0].sq_tail & fz.dev.sq_mask);
		fz_drv_submit(0, &c, false);
		break;
	case OP_CTRL:
		op_ctrl(b);
		break;
	case OP_CPU_WRITE: {
		/* the guest CPU writes any word of RAM (a table, a page) */
		bool high = (a & 1) && fz_ram.above;
		uint64_t size = high ? fz_ram.above : fz_ram.below;

		va = (high ? FZ_G4 : 0) + ((fz_u32(in) % size) & ~7ull);
		fz_cpu_store(va, fz_u64(in));
		break;
	}
	case OP_TRIGGER:
		op_trigger(in, a, b);
		break;
	case OP_PROBE:
		fz_ram_probe(in);
		break;
	case OP_WAIT:
		op_wait(b);
		break;
	case OP_RESET_MID:
		op_reset_mid();
		break;
	case OP_BUS_OFF_MID:
		op_bus_off_mid();
		break;
	case OP_STOP_START:
		op_stop_start(b);
		break;
	case OP_BURST:
		op_burst(a, b);
		break;
	case OP_MIGRATE:
		op_migrate(in, q, b);
		break;
	default:
		op_poll(q, b);
		break;
	}
	fz_drv_check_queues();
}

/* Answer and reap everything; every command must complete. */
static void drain(void)
{
	struct hmirror_fault f;
	unsigned round, q;

	hold_disarm();
	if (!(__atomic_load_n(&fz.dev.status, __ATOMIC_ACQUIRE) &
	      HMIRROR_DEV_ENABLED) || fz_drv.reset_pending)
		fz_drv.hostile = true;	/* never enabled, or a reset in limbo */
	for (q = 0; q < fz.dev.num_queues; q++)
		if (__atomic_load_n(&qr(q)->q_status, __ATOMIC_ACQUIRE) ==
		    HMIRROR_Q_ERROR)
			fz_drv.hostile = true;	/* its commands stay until reset */
	if (fz_drv.hostile) {
		request_reset(true);
		return;
	}
	set_ctrl(HMIRROR_DRV_ENABLE | HMIRROR_DRV_BUS_MASTER);
	doorbell(HMIRROR_VEC_CTRL);
	for (round = 0;; round++) {
		while (fz_drv_next_fault(&f))
			;
		/* records answered wrong or overwritten before: again */
		fz_drv_cancel_all();
		fz_drv_reap();
		fz_drv_check_queues();
		if (!fz_drv_outstanding())
			break;
		if (!fz.threaded && round == 1024) {
			fz_drv_dump();
			fz_fatal("%u commands never completed", fz_drv_outstanding());
		}
		doorbell(HMIRROR_VEC_FAULT);
		if (fz.threaded) {
			if (round % 16 == 15)
				tick();
			/* a drain that does not end: say what is left */
			if (round == 100000 && fz.verbose) {
				fz_drv_dump();
				fprintf(stderr, "fault tail %u head %u dma_off %d status %#x\n",
					__atomic_load_n(&fz.dev.fregs->tail, __ATOMIC_ACQUIRE),
					fz_drv.fault_head,
					__atomic_load_n(&fz.dev.dma_off, __ATOMIC_ACQUIRE),
					__atomic_load_n(&fz.dev.regs->dev_status, __ATOMIC_ACQUIRE));
			}
			relax();
		}
	}
	fz_drv_check_queues();
}

int fz_run(const uint8_t *data, size_t size, bool threaded)
{
	struct fz_in in = { data, size };
	struct hmdev_config cfg;
	uint8_t c0 = fz_u8(&in), c1 = fz_u8(&in), c2 = fz_u8(&in);
	static const unsigned vram_mb[4] = { 1, 0, 2, 4 };
	const struct hmirror_header *h;
	unsigned steps = 0, i;
	char err[256];

	setup_once();
	h = (const void *)fz.bar;
	fz.threaded = threaded;
	harness = pthread_self();
	if (c1 & 0x80)
		bad_config(fz_u8(&in));
	fz_ram_open(&in);
	memset(&fz_drv, 0, sizeof(fz_drv));
	memset(&fz_ostats, 0, sizeof(fz_ostats));

	hmdev_config_default(&cfg);
	cfg.engines = 1 + (c0 & 3);
	cfg.sq_entries = 4 << (c0 >> 2 & 1);
	cfg.cq_entries = 2 << (c0 >> 3 & 3);
	cfg.fault_entries = 2 << (c0 >> 5 & 1);
	cfg.max_contexts = 4 + (c1 & 3);
	cfg.tlb_entries = 1 + (c1 >> 2) % 32;
	cfg.va_bits = c0 & 0x40 ? HMIRROR_VA_BITS_5LEVEL : HMIRROR_VA_BITS_4LEVEL;
	/* c2: bits 0-1 device memory (1, none, 2 or 4 MiB); 2-7 unused */
	cfg.vram_mb = vram_mb[c2 & 3];
	if (hmdev_bar_size(&cfg) != FZ_BAR_SIZE ||
	    hmdev_init(&fz.dev, &cfg, fz.bar, FZ_BAR_SIZE, &fz_ram.r, raise_irq,
		       NULL, err, sizeof(err)))
		fz_fatal("hmdev_init: %s", err);
	/* the published header says 2.1, polling, and the device memory */
	if (h->version != HMIRROR_VERSION || !(h->features & HMIRROR_FEAT_POLL) ||
	    !(h->features & HMIRROR_FEAT_VRAM) != !cfg.vram_mb ||
	    h->vram_pages != cfg.vram_mb * (1u << 20) / FZ_PG)
		fz_fatal("header: version %#x features %#llx vram_pages %u for %u MiB",
			 h->version, (unsigned long long)h->features,
			 h->vram_pages, cfg.vram_mb);
	fz.vram_size = (uint64_t)h->vram_pages * FZ_PG;
	fz.vram_span = h->vram_pages ? h->vram_pages + h->vram_pages / 4 : 320;
	fz.vram_next = 0;
	fz_oracle_new_device();
	fz_bar_watch(true);
	for (i = 0; i < 4; i++) {
		root[i] = fz_frame_table();
		fz.dev.ctx[i].pt_root = root[i];
		fz.dev.ctx[i].flags = i ? HMIRROR_CTX_VALID : 0;
	}
	fz.dma_locked = true;
	fz_oracle_epoch();
	if (threaded) {
		fz.dev.hook = hold_hook;
		if (hmdev_start(&fz.dev))
			fz_fatal("hmdev_start failed");
	}
	if (!(c0 & 0x80)) {
		set_ctrl(HMIRROR_DRV_ENABLE | HMIRROR_DRV_BUS_MASTER);
		request_reset(true);
	}

	while (in.n && steps++ < 256)
		step(&in);
	drain();

	if (threaded) {
		hmdev_stop(&fz.dev);
		hmdev_stop(&fz.dev);	/* idempotent */
	}
	check_not_polling("at the end");
	hmdev_shutdown(&fz.dev);
	if (!(__atomic_load_n(&fz.dev.regs->dev_status, __ATOMIC_ACQUIRE) &
	      HMIRROR_DEV_GONE))
		fz_fatal("GONE not set by hmdev_shutdown");
	/* gone: doorbells and ticks are ignored */
	i = __atomic_load_n(&fz.dev.regs->doorbells_seen, __ATOMIC_ACQUIRE);
	hmdev_doorbell(&fz.dev, HMIRROR_VEC_CQ);
	hmdev_tick(&fz.dev);
	hmdev_shutdown(&fz.dev);
	if (__atomic_load_n(&fz.dev.regs->doorbells_seen, __ATOMIC_ACQUIRE) != i)
		fz_fatal("a doorbell counted after shutdown");
	fz_bar_watch(false);
	hmdev_fini(&fz.dev);
	fz_ram_close();
	if (fz.verbose)
		fprintf(stderr, "completions %llu, faults %llu, walks %llu, RAM rule off %llu times, triggers fired %llu, MIGRATE tables %llu\n",
			(unsigned long long)fz_drv.completions,
			(unsigned long long)fz_drv.faults,
			(unsigned long long)fz_ostats.walks,
			(unsigned long long)fz_ostats.off_calls,
			(unsigned long long)fz_ostats.triggers_fired,
			(unsigned long long)fz_ostats.migrate_tables);
	return 0;
}
