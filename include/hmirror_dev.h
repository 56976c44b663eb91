/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/*
 * hmirror device ABI: the layout of BAR2 (the ivshmem shared memory), the
 * command and completion descriptors, fault records and the device page
 * table format.  Shared by the driver (driver/) and the device model
 * (qemu-device/).  Documentation/device-spec.rst is the prose contract.
 *
 * All multi-byte fields are little-endian (__le16/32/64).  Ring indices are
 * free-running 32-bit counters; the slot is index & (entries - 1).
 */
#ifndef HMIRROR_DEV_H
#define HMIRROR_DEV_H

#include <linux/const.h>
#include <linux/types.h>
#ifdef __KERNEL__
#include <linux/build_bug.h>
#include <linux/stddef.h>
#include <asm/byteorder.h>
#define hmirror_le32(x)		le32_to_cpu(x)
#else
#include <assert.h>
#include <stddef.h>
/* The device model runs on little-endian hosts only (it checks at build). */
#define hmirror_le32(x)		((__u32)(x))
#endif

#define HMIRROR_MAGIC		0x52494d48u	/* "HMIR" */
#define HMIRROR_VERSION_MAJOR	2
#define HMIRROR_VERSION_MINOR	2
#define HMIRROR_VERSION		((HMIRROR_VERSION_MAJOR << 16) | HMIRROR_VERSION_MINOR)

/*
 * Feature bits advertised in hmirror_header.features.  A driver refuses a
 * device that lacks a bit it relies on; HUGE_2M is optional (without it
 * the driver maps 4 KiB leaves only).
 */
#define HMIRROR_FEAT_NOP	_BITULL(0)	/* NOP and FENCE commands */
#define HMIRROR_FEAT_TRANSLATE	_BITULL(1)	/* page walker, TLB, faults */
#define HMIRROR_FEAT_HUGE_2M	_BITULL(2)	/* 2 MiB leaves */
#define HMIRROR_FEAT_ATOMIC	_BITULL(3)	/* ATOMIC command */
#define HMIRROR_FEAT_TIMESTAMPS	_BITULL(4)	/* completion timestamps */
/* 2.1: polling hints (drv_poll_us, dev_polling, drv_polling) */
#define HMIRROR_FEAT_POLL	_BITULL(5)
/* 2.1: device memory (vram_pages, HMIRROR_PTE_VRAM, MIGRATE) */
#define HMIRROR_FEAT_VRAM	_BITULL(6)
/* 2.2: TLB shootdown through shared memory (shootdown_off) */
#define HMIRROR_FEAT_SHOOTDOWN	_BITULL(7)

/*
 * MSI-X vectors (device -> driver) and doorbell vectors (driver -> device).
 * The driver rings the device by writing (0 << 16) | vector to the ivshmem
 * Doorbell register: peer 0 is the device model.
 */
enum hmirror_vector {
	HMIRROR_VEC_CQ = 0,	/* irq: completions; doorbell: new submissions */
	HMIRROR_VEC_FAULT = 1,	/* irq: fault records; doorbell: fault answers */
	HMIRROR_VEC_CTRL = 2,	/* irq: status/error; doorbell: control change */
	HMIRROR_NUM_VECTORS = 3,
};

/* Queues: queue 0 is the management queue (TLB invalidation, management
 * fences), never stalled by a fault; queues 1..num_engines are engines.
 */
#define HMIRROR_QUEUE_MGMT	0
#define HMIRROR_MAX_QUEUES	8

/* ---- BAR2 layout --------------------------------------------------- */

/* Offset 0: written once by the device before the guest boots. */
struct hmirror_header {
	__le32 magic;		/* HMIRROR_MAGIC */
	__le32 version;		/* HMIRROR_VERSION */
	__le64 features;		/* HMIRROR_FEAT_* */
	__le32 bar_size;		/* bytes of BAR2 in use */
	__le32 num_queues;	/* 1 management + engines, <= MAX_QUEUES */
	__le32 sq_entries;	/* per queue, power of two */
	__le32 cq_entries;	/* per queue, power of two */
	__le32 fault_entries;	/* fault ring, power of two */
	__le32 max_contexts;	/* context table entries */
	__le32 tlb_entries;	/* device TLB capacity */
	__le32 num_vectors;	/* HMIRROR_NUM_VECTORS */
	__le32 regs_off;		/* struct hmirror_regs */
	__le32 queues_off;	/* struct hmirror_queue_regs[num_queues] */
	__le32 ctx_off;		/* struct hmirror_ctx_entry[max_contexts] */
	__le32 rings_off;	/* rings, see hmirror_sq_off() and friends */
	__le32 fault_regs_off;	/* struct hmirror_fault_regs (0: HMIRROR_FAULT_REGS_OFF) */
	__le32 va_bits;		/* virtual address width: 48 (4 levels) or 57 (5) */
	__le32 vram_pages;	/* 2.1, FEAT_VRAM: 4 KiB pages of device memory */
	__le32 shootdown_off;	/* 2.2, FEAT_SHOOTDOWN: struct hmirror_shootdown */
	__le32 reserved[12];
};

/* Device status (hmirror_regs.dev_status). */
#define HMIRROR_DEV_ALIVE	_BITUL(0)	/* model running */
#define HMIRROR_DEV_ENABLED	_BITUL(1)	/* reset done, executing */
#define HMIRROR_DEV_ERROR	_BITUL(2)	/* see err_* registers */
#define HMIRROR_DEV_GONE	_BITUL(3)	/* model shut down */
/*
 * No access to guest RAM is in progress and none will start: the device
 * acknowledged (dev_ctrl_ack) a drv_ctrl without BUS_MASTER.  Cleared when
 * it acknowledges one with BUS_MASTER.
 */
#define HMIRROR_DEV_DMA_OFF	_BITUL(4)

/*
 * Driver control (hmirror_regs.drv_ctrl).  The device reads it before every
 * access to guest RAM; a change takes effect for certain once the device
 * has acknowledged the drv_ctrl_gen written after it (dev_ctrl_ack).
 */
#define HMIRROR_DRV_ENABLE	_BITUL(0)	/* driver ready, MSI-X enabled */
#define HMIRROR_DRV_BUS_MASTER	_BITUL(1)	/* the device may access guest RAM */

/* Error codes in hmirror_regs.err_code and completion status. */
enum hmirror_status {
	HMIRROR_ST_OK = 0,
	HMIRROR_ST_BAD_OPCODE = 1,
	HMIRROR_ST_BAD_CONTEXT = 2,
	HMIRROR_ST_BAD_ADDRESS = 3,	/* physical address outside guest RAM */
	HMIRROR_ST_BAD_LENGTH = 4,
	HMIRROR_ST_BAD_INDEX = 5,	/* ring index out of range */
	HMIRROR_ST_BAD_PTE = 6,		/* reserved bits or bad level */
	HMIRROR_ST_FAULT = 7,		/* translation fault cancelled */
	HMIRROR_ST_BAD_ALIGN = 8,
	HMIRROR_ST_BAD_QUEUE = 9,
	HMIRROR_ST_ABORTED = 10,	/* queue reset while in flight */
	HMIRROR_ST_BAD_TAG = 11,	/* tag out of range or in use */
};

/*
 * Global registers.  "dev" fields are written by the device only, "drv"
 * fields by the driver only.
 */
struct hmirror_regs {
	__le32 dev_status;	/* HMIRROR_DEV_* */
	__le32 dev_reset_ack;	/* last drv_reset_gen the device acted on */
	__le64 heartbeat;	/* incremented by the device every 50 ms */
	__le64 dev_time_ns;	/* device clock at the last heartbeat */
	__le32 err_count;	/* errors seen since reset */
	__le32 err_code;		/* enum hmirror_status of the last error */
	__le32 err_queue;	/* queue of the last error, or ~0 */
	__le32 err_index;	/* ring index of the last error */
	__le64 err_info;		/* offending value of the last error */
	__le32 irq_sent[HMIRROR_NUM_VECTORS];
	__le32 doorbells_seen;
	/* device counters (all since reset) */
	__le64 cnt_commands;
	__le64 cnt_faults;
	__le64 cnt_replays;
	__le64 cnt_cancels;
	__le64 cnt_tlb_hits;
	__le64 cnt_tlb_misses;
	__le64 cnt_tlb_invals;
	__le64 cnt_pages_walked;
	__le32 dev_ctrl_ack;	/* last drv_ctrl_gen the device acted on */
	__le32 dev_reserved0;
	__le64 cnt_shootdowns;	/* 2.2: shootdown requests applied to the TLB */
	__le64 dev_reserved[6];

	/* driver-written half, on its own cache line */
	__le32 drv_ctrl;	/* HMIRROR_DRV_* */
	__le32 drv_reset_gen;	/* bump + doorbell CTRL to reset the device */
	__le32 drv_ctrl_gen;	/* bump + doorbell CTRL after changing drv_ctrl */
	/*
	 * 2.1, FEAT_POLL: an engine may spin on its queue for up to this
	 * long after it runs out of work before it sleeps (0: never).
	 */
	__le32 drv_poll_us;
	__le32 drv_reserved[12];
};

/*
 * Per-queue registers: a submission ring (driver produces, device consumes)
 * and a completion ring (device produces, driver consumes).  Commands are
 * fetched in order; a command stalled on a fault is parked and the queue
 * goes on with the next one, so completions may come out of order (each
 * names its tag and seqno).
 */
struct hmirror_queue_regs {
	__le32 sq_tail;		/* drv: next slot the driver will fill */
	__le32 cq_head;		/* drv: next completion the driver will read */
	/*
	 * 2.1, FEAT_POLL: waiters spinning on this queue's completions and
	 * faults: while non-zero, the device need not raise the interrupt.
	 */
	__le32 drv_polling;
	__le32 drv_reserved[13];
	__le32 sq_head;		/* dev: descriptors fetched (copied out) */
	__le32 cq_tail;		/* dev: next completion slot to write */
	__le32 parked;		/* dev: commands waiting (fault answer, fence) */
	__le32 q_status;		/* dev: HMIRROR_Q_* */
	__le64 completed_seqno;	/* dev: seqno of the last completion written */
	/* dev: bumped by every fetch, chunk, fault, answer and completion */
	__le64 progress;
	/*
	 * 2.1, FEAT_POLL: the queue's engine is awake (running or spinning)
	 * and will see new submissions and answers: no doorbell needed.
	 */
	__le32 dev_polling;
	__le32 dev_reserved[7];
};

#define HMIRROR_Q_IDLE		0	/* nothing fetched, nothing to fetch */
#define HMIRROR_Q_RUNNING	1	/* work the device can do now */
#define HMIRROR_Q_STALLED	2	/* every command in flight is parked */
#define HMIRROR_Q_ERROR		3	/* stopped on a bad ring index */

#define HMIRROR_FAULT_REPLAY	1
#define HMIRROR_FAULT_CANCEL	2

/* Context table entry: one address space, like a PASID. */
struct hmirror_ctx_entry {
	__le64 pt_root;		/* guest-physical address of the top table */
	__le32 flags;		/* HMIRROR_CTX_* */
	__le32 reserved[5];
};

#define HMIRROR_CTX_VALID	_BITUL(0)

/* ---- commands ------------------------------------------------------- */

enum hmirror_opcode {
	HMIRROR_OP_NOP = 0,
	HMIRROR_OP_FENCE = 1,		/* completes after all earlier commands */
	HMIRROR_OP_COPY = 2,		/* ctx: dst <- src, len bytes */
	HMIRROR_OP_READ = 3,		/* ctx: checksum of src, len bytes */
	HMIRROR_OP_FILL = 4,		/* ctx: dst <- repeated arg0 (u64) */
	HMIRROR_OP_ATOMIC = 5,		/* ctx: 64-bit atomic at dst */
	HMIRROR_OP_TLB_INVAL = 6,	/* mgmt: ctx, [src, src + len) */
	HMIRROR_OP_MIGRATE = 7,		/* 2.1: len pages, table at src */
	HMIRROR_NUM_OPS
};

/* COPY, READ and FILL move 1 .. HMIRROR_CMD_LEN_MAX bytes (else BAD_LENGTH). */
#define HMIRROR_CMD_LEN_MAX		_BITULL(30)

/*
 * 2.1, MIGRATE: copies 1 .. HMIRROR_MIGRATE_LEN_MAX pages, each named by
 * an entry of a table in guest RAM at guest-physical src (8-byte aligned).
 * Addresses are page aligned; with HMIRROR_MIGRATE_VRAM an address is an
 * offset into device memory, else a guest-physical address.
 */
struct hmirror_migrate_entry {
	__le64 from;
	__le64 to;
};

#define HMIRROR_MIGRATE_VRAM		_BITULL(0)
#define HMIRROR_MIGRATE_LEN_MAX		512

/* READ checksum: FNV-1a over 64-bit little-endian words. */
#define HMIRROR_FNV_BASIS		0xcbf29ce484222325ull
#define HMIRROR_FNV_PRIME		0x100000001b3ull

/* ATOMIC sub-operations (hmirror_cmd.flags). */
#define HMIRROR_ATOMIC_FETCH_ADD	0
#define HMIRROR_ATOMIC_CMPXCHG		1

/*
 * tag: < sq_entries and unique among the queue's commands in flight
 * (fetched, not completed); echoed in the completion and in fault records,
 * and it indexes the queue's fault answer table.  seqno is the driver's
 * own tag, echoed too.
 */
struct hmirror_cmd {
	__u8 opcode;		/* enum hmirror_opcode */
	__u8 flags;
	__le16 ctx;		/* context table index (FENCE: 0 = whole queue) */
	__le16 tag;
	__le16 reserved0;
	__le64 seqno;		/* driver tag, echoed in the completion */
	__le64 src;		/* virtual address (MIGRATE: table, guest-physical) */
	__le64 dst;		/* virtual address */
	__le64 len;		/* bytes (MIGRATE: pages) */
	__le64 arg0;		/* FILL pattern, ATOMIC operand / expected */
	__le64 arg1;		/* ATOMIC CMPXCHG new value */
	__le64 reserved1;
};

struct hmirror_cpl {
	__le64 seqno;		/* from the command */
	__le16 status;		/* enum hmirror_status */
	__u8 opcode;
	__u8 queue;
	__le32 nfaults;		/* faults this command raised */
	__le64 result;		/* READ checksum, ATOMIC old value, MIGRATE pages */
	__le64 t_submit;		/* device clock (ns): command fetched */
	__le64 t_fault;		/* first fault raised, 0 if none */
	__le64 t_answer;		/* last fault answer seen, 0 if none */
	__le64 t_done;		/* completion written */
	__le16 tag;		/* from the command */
	__le16 reserved0;
	__le32 reserved1;
};

/* ---- faults --------------------------------------------------------- */

#define HMIRROR_ACCESS_READ	1
#define HMIRROR_ACCESS_WRITE	2
#define HMIRROR_ACCESS_ATOMIC	(HMIRROR_ACCESS_READ | HMIRROR_ACCESS_WRITE)

struct hmirror_fault {
	__le64 fault_id;		/* nonzero, unique for the device's lifetime */
	__le16 ctx;
	__u8 queue;
	__u8 access;		/* HMIRROR_ACCESS_* */
	__le16 tag;		/* the faulting command's tag */
	__le16 reserved0;
	__le64 addr;		/* first faulting virtual address, page aligned */
	__le32 npages;		/* run of missing pages in this command */
	__le32 reserved1;
	__le64 seqno;		/* command that faulted */
	__le64 t_fault;		/* device clock */
	__le64 reserved2[2];
};

/*
 * Fault answers: one table per queue (hmirror_answers_off()), sq_entries
 * entries indexed by the faulting command's tag.  The driver writes
 * @answer, then @fault_id (release), then rings the FAULT doorbell; the
 * device acts on an entry whose fault_id equals the parked command's
 * outstanding fault.
 */
struct hmirror_fault_answer {
	__le64 fault_id;		/* drv: the record being answered */
	__le32 answer;		/* drv: HMIRROR_FAULT_REPLAY or _CANCEL */
	__le32 reserved;
};

/* A fault record covers at most this many pages (hmirror_fault.npages). */
#define HMIRROR_FAULT_NPAGES_MAX	512

/* Fault ring producer/consumer, after the queue registers. */
struct hmirror_fault_regs {
	__le32 head;		/* drv: next record the driver will read */
	__le32 drv_reserved[15];
	__le32 tail;	/* dev */
	__le32 dev_reserved[15];
};

/* ---- TLB shootdown (2.2, FEAT_SHOOTDOWN) ---------------------------- */

/*
 * An invalidation without a command: the driver clears its page-table
 * entries, then publishes a request (context and range) under a new epoch;
 * an engine picks up every published request before its next translation.
 * Each engine announces in dev_seen[queue], before every access (one chunk,
 * its translations, its walks), the epoch it has applied, with
 * HMIRROR_SD_BUSY set until the access ends.  A request of epoch E is done
 * once no engine shows BUSY with an epoch below E.  Requests live in
 * req[E % HMIRROR_SD_SLOTS]; one the device missed (overwritten, or being
 * rewritten while it read it) makes it drop its whole TLB.
 */
#define HMIRROR_SD_SLOTS	16
#define HMIRROR_SD_BUSY		_BITULL(63)
#define HMIRROR_SD_EPOCH_MASK	(HMIRROR_SD_BUSY - 1)

struct hmirror_sd_req {
	__le64 epoch;		/* drv: written last; 0 while the slot is rewritten */
	__le64 start;		/* drv: range to drop, [start, end) */
	__le64 end;
	__le16 ctx;		/* drv: context */
	__le16 reserved0;
	__le32 reserved1;
};

struct hmirror_shootdown {
	__le64 drv_epoch;	/* drv: epoch of the last request published */
	__le64 drv_reserved[7];
	struct hmirror_sd_req req[HMIRROR_SD_SLOTS];	/* drv */
	__le64 dev_seen[HMIRROR_MAX_QUEUES];	/* dev: per queue, see above */
};

/* ---- device page tables --------------------------------------------- */

/*
 * Levels of 512 eight-byte entries, like x86-64: four for 48-bit virtual
 * addresses, five for 57-bit ones (hmirror_header.va_bits).  A level-1
 * entry maps 4 KiB; a level-2 entry with HUGE maps 2 MiB.
 */
#define HMIRROR_VA_BITS_4LEVEL	48
#define HMIRROR_VA_BITS_5LEVEL	57
#define HMIRROR_PT_MAX_LEVELS	5
#define HMIRROR_PT_ENTRIES	512
/* Bits of address below the entries of a level-@level table. */
#define HMIRROR_PT_SHIFT(level)	(12 + 9 * ((level) - 1))
#define HMIRROR_PT_INDEX(va, level) \
	(((va) >> HMIRROR_PT_SHIFT(level)) & (HMIRROR_PT_ENTRIES - 1))
#define HMIRROR_PAGE_SIZE	_BITULL(HMIRROR_PT_SHIFT(1))
#define HMIRROR_HUGE_SIZE	_BITULL(HMIRROR_PT_SHIFT(2))
#define HMIRROR_PTE_VALID	_BITULL(0)
#define HMIRROR_PTE_WRITE	_BITULL(1)
#define HMIRROR_PTE_HUGE	_BITULL(7)
/*
 * 2.1, FEAT_VRAM: a 4 KiB leaf whose address is an offset into device
 * memory (below vram_pages * 4 KiB).  Without FEAT_VRAM the bit is
 * reserved, like those of HMIRROR_PTE_RSVD_MASK.
 */
#define HMIRROR_PTE_VRAM	_BITULL(8)
#define HMIRROR_PTE_ADDR_MASK	0x000ffffffffff000ull
#define HMIRROR_PTE_RSVD_MASK	(~(HMIRROR_PTE_ADDR_MASK | HMIRROR_PTE_VALID | \
				   HMIRROR_PTE_WRITE | HMIRROR_PTE_HUGE | \
				   HMIRROR_PTE_VRAM))

static inline __u32 hmirror_pt_levels(__u32 va_bits)
{
	return va_bits == HMIRROR_VA_BITS_5LEVEL ? 5 : 4;
}

/* ---- layout helpers ------------------------------------------------- */

#define HMIRROR_REGS_OFF	0x100
#define HMIRROR_QUEUES_OFF	0x400
#define HMIRROR_SHOOTDOWN_OFF	0x800
#define HMIRROR_FAULT_REGS_OFF	0xc00
#define HMIRROR_CTX_OFF		0x1000
#define HMIRROR_RINGS_OFF	0x10000

/*
 * Rings start at rings_off: for each queue its SQ then its CQ, then the
 * fault ring, then each queue's fault answer table.  Every ring and table
 * starts on a 4 KiB boundary.
 */
#define HMIRROR_ALIGN_4K(x)	(((x) + 4095u) & ~4095u)

static inline __u32 hmirror_sq_off(const struct hmirror_header *h, __u32 q)
{
	__u32 sq = HMIRROR_ALIGN_4K(hmirror_le32(h->sq_entries) *
				    (__u32)sizeof(struct hmirror_cmd));
	__u32 cq = HMIRROR_ALIGN_4K(hmirror_le32(h->cq_entries) *
				    (__u32)sizeof(struct hmirror_cpl));

	return hmirror_le32(h->rings_off) + q * (sq + cq);
}

static inline __u32 hmirror_cq_off(const struct hmirror_header *h, __u32 q)
{
	return hmirror_sq_off(h, q) +
		HMIRROR_ALIGN_4K(hmirror_le32(h->sq_entries) *
				 (__u32)sizeof(struct hmirror_cmd));
}

static inline __u32 hmirror_fault_ring_off(const struct hmirror_header *h)
{
	return hmirror_sq_off(h, hmirror_le32(h->num_queues));
}

static inline __u32 hmirror_answers_off(const struct hmirror_header *h, __u32 q)
{
	return hmirror_fault_ring_off(h) +
		HMIRROR_ALIGN_4K(hmirror_le32(h->fault_entries) *
				 (__u32)sizeof(struct hmirror_fault)) +
		q * HMIRROR_ALIGN_4K(hmirror_le32(h->sq_entries) *
				     (__u32)sizeof(struct hmirror_fault_answer));
}

static inline __u32 hmirror_layout_end(const struct hmirror_header *h)
{
	return hmirror_answers_off(h, hmirror_le32(h->num_queues));
}

/* Sizes both sides rely on. */
static_assert(sizeof(struct hmirror_cmd) == 64, "cmd size");
static_assert(sizeof(struct hmirror_cpl) == 64, "cpl size");
static_assert(sizeof(struct hmirror_fault) == 64, "fault size");
static_assert(sizeof(struct hmirror_queue_regs) == 128, "queue regs");
static_assert(sizeof(struct hmirror_header) == 128, "header size");
static_assert(sizeof(struct hmirror_header) <= HMIRROR_REGS_OFF, "header fits");
static_assert(sizeof(struct hmirror_fault_regs) == 128, "fault regs");
static_assert(HMIRROR_FAULT_REGS_OFF + sizeof(struct hmirror_fault_regs) <=
		      HMIRROR_CTX_OFF, "fault regs fit");
static_assert(sizeof(struct hmirror_ctx_entry) == 32, "ctx entry");
static_assert(sizeof(struct hmirror_fault_answer) == 16, "answer size");
static_assert(sizeof(struct hmirror_migrate_entry) == 16, "migrate entry");
static_assert(offsetof(struct hmirror_header, vram_pages) == 72, "vram_pages");
static_assert(sizeof(struct hmirror_regs) == 256, "regs size");
static_assert(HMIRROR_REGS_OFF + sizeof(struct hmirror_regs) <=
		      HMIRROR_QUEUES_OFF, "regs fit");
static_assert(HMIRROR_QUEUES_OFF + HMIRROR_MAX_QUEUES *
		      sizeof(struct hmirror_queue_regs) <= HMIRROR_FAULT_REGS_OFF,
		      "queue regs fit");

static_assert(sizeof(struct hmirror_sd_req) == 32, "shootdown request");
static_assert(offsetof(struct hmirror_header, shootdown_off) == 76, "shootdown_off");
static_assert(HMIRROR_QUEUES_OFF + HMIRROR_MAX_QUEUES *
		      sizeof(struct hmirror_queue_regs) <= HMIRROR_SHOOTDOWN_OFF &&
	      HMIRROR_SHOOTDOWN_OFF + sizeof(struct hmirror_shootdown) <=
		      HMIRROR_FAULT_REGS_OFF, "shootdown block fits");

/* The driver-written halves start on their own 64-byte line. */
static_assert(offsetof(struct hmirror_regs, drv_ctrl) == 192, "regs split");
static_assert(offsetof(struct hmirror_queue_regs, sq_head) == 64, "queue split");
static_assert(offsetof(struct hmirror_fault_regs, tail) == 64, "fault split");
static_assert(offsetof(struct hmirror_shootdown, dev_seen) % 64 == 0,
	      "shootdown split");

#endif /* HMIRROR_DEV_H */
