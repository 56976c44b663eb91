/* SPDX-License-Identifier: MIT */
/*
 * hmirror device model, internal: the device state and the API the model's
 * files share.  Calls go one way, each file using only those below it:
 *
 *   hmdev.c        the device: layout, init, reset, bus-master control,
 *                  doorbells, heartbeat, the queues (fetch, commands in
 *                  flight, parking, fences, completions), engine threads
 *   hmdev_cmd.c    what one command does: its checks, its chunks, its
 *                  faults and the driver's answers
 *   hmdev_mmu.c    translation: context table, page walker, TLB
 *   hmdev_state.c  the device state every layer updates: status, errors,
 *                  counters, pending interrupts, clock, bus-master state,
 *                  queue progress
 *
 * (main.c, above them all, sees hmdev.h only; guest_ram.c and dev_mem.c,
 * below them all, turn guest-physical addresses and device-memory offsets
 * into host addresses.)  Tests that reach into the device include this
 * header.
 *
 * Queues and parking.  A queue's private state (struct hmdev_queue: ring
 * indices, the commands in flight, their lists) is touched by its runner
 * only: the engine thread (threaded, under its run_mu), else the event
 * loop's thread (queue 0; every queue inline).  A reset takes every run_mu,
 * so it too is the only runner while it clears them.  Commands in flight
 * live in a table indexed by their tag; a command stalled on a fault (or
 * waiting for fault ring room, or a FENCE waiting for earlier commands) is
 * *parked* there and the runner goes on with the next commands.  The
 * runner looks at the driver's answer table (for its parked faults) at the
 * start of every pass: a doorbell or a heartbeat tick kicks a pass.
 *
 * Locks (never nested except as listed):
 *  engine[q].run_mu   held by the engine's thread while it runs its queue;
 *                     a reset takes all of them (engines quiesced)
 *  inval_lock (rw)    read: an access (hmdev_access_begin/end): an engine
 *                     checking bus mastering, applying shootdowns,
 *                     translating (walks, fault-run sizing) and accessing
 *                     one chunk: every guest-RAM access happens under a
 *                     read hold, and so does every device-memory access
 *                     (which bus mastering does not gate);
 *                     write: TLB_INVAL dropping entries (so its completion
 *                     follows every access that used a dropped entry), and
 *                     bus mastering turned off (waits out every access)
 *  tlb.mu             the TLB and sd_done (inside inval_lock)
 *  fault_mu           the fault ring producer
 *  err_mu             status and err_* registers
 *  cnt_mu             counters
 * err_mu and cnt_mu are taken inside any of the above, and nothing inside
 * them but cnt_mu inside err_mu (a reset clears both at once).
 */
#ifndef HMDEV_INTERNAL_H
#define HMDEV_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include "dev_mem.h"
#include "hmdev.h"

/* Largest piece of a data command done under one read hold of inval_lock. */
#define HMDEV_CHUNK_MAX		(64u << 10)

/* Shared-memory accessors: the guest is another CPU. */
#define hm_load_acq(p)		__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define hm_load(p)		__atomic_load_n((p), __ATOMIC_RELAXED)
#define hm_store_rel(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define hm_store(p, v)		__atomic_store_n((p), (v), __ATOMIC_RELAXED)

/* Shared memory is accessed as 64-bit words that may alias anything. */
typedef uint64_t __attribute__((may_alias)) hm_u64a;

/* ==== the device state ================================================ */

/*
 * Test hook, called by a queue's runner with inval_lock held for reading,
 * right before (HMDEV_HOOK_ACCESS) and after (HMDEV_HOOK_ACCESSED) it
 * touches memory for one chunk (or one MIGRATE page), and after a walk
 * found a translation, before it is cached (HMDEV_HOOK_WALKED); and,
 * without inval_lock, at the start of every pass over a queue
 * (HMDEV_HOOK_PASS).
 */
enum { HMDEV_HOOK_ACCESS, HMDEV_HOOK_ACCESSED, HMDEV_HOOK_PASS,
       HMDEV_HOOK_WALKED };
typedef void (*hmdev_hook_fn)(void *opaque, unsigned queue, int phase);

/* Where a command in flight stands (struct hmdev_inflight.state). */
enum hmdev_slot_state {
	HMDEV_SLOT_FREE,	/* no command with this tag in flight */
	HMDEV_SLOT_READY,	/* runnable: on the ready list or running */
	HMDEV_SLOT_FAULT,	/* parked: fault posted, waiting for its answer */
	HMDEV_SLOT_ROOM,	/* parked: fault built, waiting for ring room */
	HMDEV_SLOT_FENCE,	/* parked: FENCE waiting for earlier commands */
};

#define HMDEV_NO_TAG	0xffffffffu	/* end of a list of tags */

/* A list of commands in flight, linked by tag. */
struct hmdev_list {
	uint32_t head, tail;
};

/* A command the queue has fetched and not completed yet (private copy). */
struct hmdev_inflight {
	struct hmirror_cmd cmd;
	struct hmirror_cpl cpl;
	struct hmirror_fault rec;	/* fault record being posted */
	uint64_t err_info;	/* offending value when cpl.status != OK */
	uint64_t done;		/* bytes done (MIGRATE: pages' bytes); they
				 * stay done across faults and errors */
	uint64_t acc;		/* READ: checksum so far */
	uint64_t fault_id;	/* posted fault awaiting its answer, 0 none */
	uint32_t index;		/* SQ index it came from (err_index) */
	uint8_t state;		/* enum hmdev_slot_state */
	bool checked;		/* static checks done */
	bool quiet;		/* non-OK status that is no error (CANCEL) */
	/* links (tags), HMDEV_NO_TAG at the ends */
	uint32_t q_prev, q_next;	/* the queue's commands in flight */
	uint32_t c_prev, c_next;	/* the same context's, fetch order */
	uint32_t r_next;		/* ready list */
};

/* Device-private state of one queue; touched by its runner only. */
struct hmdev_queue {
	uint32_t sq_head;	/* next SQ index to fetch */
	uint32_t cq_tail;	/* next CQ index to write */
	uint32_t status;	/* HMIRROR_Q_* */
	uint32_t in_flight;	/* fetched, not completed (parked included) */
	uint32_t parked;	/* in states FAULT, ROOM, FENCE */
	uint64_t completed_seqno;
	uint64_t progress;
	struct hmdev_inflight *slot;	/* [sq_entries], indexed by tag */
	struct hmdev_list all;		/* in flight, fetch order */
	/*
	 * In flight by context, fetch order: [ctx] for ctx < max_contexts,
	 * [max_contexts] for every other ctx value (such commands never park).
	 */
	struct hmdev_list *by_ctx;
	struct hmdev_list ready;	/* runnable, oldest first */
	struct hmdev_inflight bad_tag;	/* completed at fetch, no slot */
};

struct hmdev_engine {
	pthread_t thread;
	pthread_mutex_t run_mu;		/* held while the queue runs */
	pthread_mutex_t kick_mu;
	pthread_cond_t kick_cv;
	/* under kick_mu; engine_poll() also loads kick without it */
	bool kick, stop;
	/* under kick_mu: a doorbell kicked it (activity: stay awake after) */
	bool kick_busy;
	bool started;
	uint64_t spins;		/* atomic: spin windows begun (engine_poll) */
	/* adaptive polling, the engine thread's own (engine_poll()) */
	uint64_t learned_ns;	/* window learned from late commands; atomic */
	uint64_t spin_t0;	/* when the last spin window began */
	bool spun_out;		/* it ended with no work: the engine slept */
	struct hmdev *dev;
	unsigned qi;
};

/* One cached translation. */
struct hmdev_tlbe {
	uint64_t key;		/* 0: empty; see tlb_key() */
	uint8_t *host;		/* host address of the page */
	uint64_t gpa;		/* guest-physical address (vram: offset) of it */
	uint64_t stamp;		/* last use, for LRU within a set */
	bool writable;
	bool vram;		/* the page is device memory */
};

struct hmdev_tlb {
	pthread_mutex_t mu;
	struct hmdev_tlbe *e;	/* [n] */
	unsigned n, ways, nsets;
	uint64_t clock;
};

/* The result of translating one virtual address. */
struct hmdev_xlate {
	uint8_t *host;		/* host address of va */
	uint64_t gpa;		/* guest-physical address (vram: offset) of va */
	uint64_t avail;		/* bytes from va to the end of its page */
	bool writable;
	bool huge;
	bool vram;		/* device memory: not gated by bus mastering */
};

struct hmdev {
	uint8_t *bar;
	size_t bar_size;
	struct hmdev_config cfg;
	struct hmirror_header hdr;	/* private copy of the published header */
	unsigned num_queues;
	uint32_t sq_mask, cq_mask, fault_mask;

	/* pointers into the BAR, computed once from the private header */
	struct hmirror_regs *regs;
	struct hmirror_queue_regs *qregs;	/* [num_queues] */
	struct hmirror_fault_regs *fregs;
	struct hmirror_ctx_entry *ctx;		/* [max_contexts] */
	struct hmirror_cmd *sq[HMIRROR_MAX_QUEUES];
	struct hmirror_cpl *cq[HMIRROR_MAX_QUEUES];
	struct hmirror_fault *fault_ring;
	struct hmirror_fault_answer *answers[HMIRROR_MAX_QUEUES];
	/* FEAT_SHOOTDOWN's block, NULL without it (hmdev_mmu.c) */
	struct hmirror_shootdown *sd;
	/* last shootdown epoch the TLB applied (under tlb.mu; atomic) */
	uint64_t sd_done;
	/* per queue, its runner only: epoch its last access announced */
	uint64_t sd_seen[HMIRROR_MAX_QUEUES];
	uint64_t va_end;	/* 2^va_bits */
	unsigned pt_levels;
	/* entry bits that make a VALID entry BAD_PTE (PTE_VRAM without VRAM) */
	uint64_t pte_rsvd;
	struct dev_mem vram;	/* device memory (FEAT_VRAM), kept by resets */

	struct hmdev_queue q[HMIRROR_MAX_QUEUES];
	struct hmdev_engine eng[HMIRROR_MAX_QUEUES];	/* [1..num_queues-1] */
	bool threaded;
	uint32_t status;	/* HMIRROR_DEV_*, mirrored to regs (atomic) */
	uint32_t reset_ack;	/* last drv_reset_gen acted on */
	uint32_t ctrl_ack;	/* last drv_ctrl_gen acted on */
	bool dma_off;		/* DMA_OFF: no guest RAM access (atomic; set
				 * under inval_lock held for writing) */
	uint32_t pending_irqs;	/* vectors to raise (atomic) */
	bool gone;		/* hmdev_shutdown() done (atomic) */
	bool abort;		/* engines: stop at the next chunk (atomic) */

	pthread_mutex_t err_mu, cnt_mu, fault_mu;
	pthread_rwlock_t inval_lock;
	struct hmdev_tlb tlb;

	/* fault ring producer, under fault_mu */
	uint32_t fault_tail;
	uint64_t fault_seq;	/* last fault_id handed out; never reset */
	bool fault_ring_bad;	/* driver's head was impossible: until reset */

	/*
	 * Private copies of the device-written counters (never read back),
	 * touched by hmdev_state.c only.  Under cnt_mu, except errors (err_mu)
	 * and heartbeat (the event loop's thread only).
	 */
	struct {
		uint64_t heartbeat;
		uint64_t commands;
		uint64_t faults;
		uint64_t replays;
		uint64_t cancels;
		uint64_t tlb_hits;
		uint64_t tlb_misses;
		uint64_t tlb_invals;
		uint64_t pages_walked;
		uint64_t shootdowns;
		uint32_t errors;
		uint32_t doorbells;
		uint32_t irqs[HMIRROR_NUM_VECTORS];
	} cnt;

	const struct guest_ram *ram;	/* may be NULL (tests): no RAM at all */
	hmdev_irq_fn raise_irq;
	void *irq_opaque;
	hmdev_hook_fn hook;		/* tests only, may be NULL */
	void *hook_opaque;
	/* event loop only: queue 0 watched until then (ns), 0: asleep */
	uint64_t mgmt_until;
};

/* ==== hmdev_state.c: status, errors, counters, irqs, clock, bus master == */

/* The device clock (CLOCK_MONOTONIC, ns). */
uint64_t hmdev_now_ns(void);

uint32_t hmdev_status(struct hmdev *dev);
/* dev_status = (dev_status & ~@clear) | @set (err_mu). */
void hmdev_set_status(struct hmdev *dev, uint32_t clear, uint32_t set);
/* Record an error in the err_* registers, set DEV_ERROR, queue a CTRL irq. */
void hmdev_error(struct hmdev *dev, uint32_t code, uint32_t queue,
		 uint32_t index, uint64_t info);

/* Queue an interrupt on @vector, raised by the next hmdev_flush_irqs(). */
void hmdev_pend_irq(struct hmdev *dev, unsigned vector);
bool hmdev_driver_polls(struct hmdev *dev, unsigned qi);
/* Raise the queued interrupts, counting them (irq_sent). */
void hmdev_flush_irqs(struct hmdev *dev);

/* Add @n to a counter and publish it (lock-free). */
void hmdev_cnt_add(struct hmdev *dev, uint64_t *priv, __le64 *reg, uint64_t n);
#define HMDEV_CNT_ADD(dev, name, n) \
	hmdev_cnt_add((dev), &(dev)->cnt.name, &(dev)->regs->cnt_##name, (n))
/* @rings doorbells seen (doorbells_seen). */
void hmdev_count_doorbells(struct hmdev *dev, uint64_t rings);
/* One heartbeat: dev_time_ns, then heartbeat (the event loop only). */
void hmdev_heartbeat(struct hmdev *dev);

/*
 * Device reset: counters (the heartbeat apart), errors and interrupt counts
 * to zero, status ALIVE | ENABLED with DMA_OFF as it was (bus mastering is
 * not reset).  Every runner is quiesced.
 */
void hmdev_state_reset(struct hmdev *dev);

/*
 * May the device access guest RAM now?  Call with inval_lock held for
 * reading, before the access, and keep holding it through the access.
 */
bool hmdev_dma_allowed(struct hmdev *dev);
/*
 * Bus mastering on or off, and DMA_OFF in dev_status.  Off waits out every
 * guest-RAM access in progress (inval_lock for writing).
 */
void hmdev_set_bus_master(struct hmdev *dev, bool on);

/* Bump queue @q's progress register (its runner only). */
void hmdev_progress(struct hmdev *dev, unsigned q);

/* ==== hmdev_mmu.c: translation ======================================== */

int hmdev_tlb_init(struct hmdev_tlb *tlb, unsigned entries);
void hmdev_tlb_fini(struct hmdev_tlb *tlb);
/* Drop every entry of @ctx overlapping [start, end) (end clamped to 2^va_bits). */
void hmdev_tlb_drop(struct hmdev *dev, unsigned ctx, uint64_t start,
		    uint64_t end);
/*
 * Drop everything (reset): every runner is quiesced.  With FEAT_SHOOTDOWN
 * the published requests count as applied and no queue is in an access.
 */
void hmdev_tlb_flush(struct hmdev *dev);
/* Valid entries of @ctx (all contexts if ctx < 0): tests. */
unsigned hmdev_tlb_count(struct hmdev *dev, int ctx);

/*
 * One access: a chunk of a data command (its translations, walks, fault-run
 * sizing and memory accesses) or one MIGRATE page.  hmdev_access_begin()
 * takes inval_lock for reading, applies the shootdown requests the driver
 * published (FEAT_SHOOTDOWN: announcing the access in dev_seen[@q] first)
 * and checks bus mastering; hmdev_access_end() announces the end and drops
 * the lock.  Translations happen only between the two.
 */
struct hmdev_access {
	unsigned q;
	uint64_t epoch;		/* sd_done when the access began */
	bool dma;		/* hmdev_dma_allowed() under this hold */
};
void hmdev_access_begin(struct hmdev *dev, unsigned q, struct hmdev_access *a);
void hmdev_access_end(struct hmdev *dev, struct hmdev_access *a);

/*
 * Read context @ctx's entry.  0 and *root, or HMIRROR_ST_BAD_CONTEXT (id
 * out of range or not VALID).
 */
int hmdev_ctx_root(struct hmdev *dev, unsigned ctx, uint64_t *root);

/* Walker outcomes. */
enum hmdev_walk {
	HMDEV_WALK_OK,		/* present; x->writable says if writable */
	HMDEV_WALK_NONE,	/* not present */
	HMDEV_WALK_BAD_PTE,	/* *info = the entry */
	HMDEV_WALK_BAD_ADDR,	/* *info = the guest-physical address */
};
/*
 * Walk @root's tables for @va (< 2^va_bits), no TLB.  Counts nothing.
 * Caller holds inval_lock for reading and checked hmdev_dma_allowed().
 */
enum hmdev_walk hmdev_walk(struct hmdev *dev, uint64_t root, uint64_t va,
			   struct hmdev_xlate *x, uint64_t *info);

/* hmdev_translate(): bus mastering is off and the access needs it. */
#define HMDEV_ST_HOLD	0x10000

/*
 * Translate @va for @access (HMIRROR_ACCESS_*) through the TLB, inside
 * access @a.  Returns HMIRROR_ST_OK with *x, HMIRROR_ST_FAULT when the page
 * is not present or not writable for a write (nothing cached), or an error
 * status with *info.  Without a->dma nothing walks and only device memory
 * may be accessed: a TLB hit on a device-memory page translates, anything
 * else is HMDEV_ST_HOLD (counted nowhere).  A walk's result is cached only
 * if no shootdown was applied since the access began (the walk may have
 * read an entry the driver cleared before it).
 */
int hmdev_translate(struct hmdev *dev, const struct hmdev_access *a,
		    unsigned ctx, uint64_t va, unsigned access,
		    struct hmdev_xlate *x, uint64_t *info);

/*
 * Host address of [addr, addr + len) in device memory (@vram: addr is an
 * offset) or guest RAM (a guest-physical address), or NULL if not all of
 * it is there.  Touches nothing: the caller accesses it, for guest RAM
 * under a read hold of inval_lock after hmdev_dma_allowed().
 */
void *hmdev_phys_ptr(struct hmdev *dev, bool vram, uint64_t addr,
		     uint64_t len);

/*
 * Pages from @addr (page aligned) that would fault for @access, stopping
 * at @end, at the first page that would not, or at
 * HMIRROR_FAULT_NPAGES_MAX; at least 1.  Drops their TLB entries.  Walks
 * guest RAM: caller holds inval_lock for reading and checked
 * hmdev_dma_allowed().
 */
uint32_t hmdev_fault_run(struct hmdev *dev, unsigned ctx, uint64_t addr,
			 uint64_t end, unsigned access);

/* ==== hmdev_cmd.c: what a command does ================================ */

/*
 * What running a command did (hmdev_cmd_run(), hmdev_cmd_retry_fault()):
 *  DONE        in->cpl.status (and result) are final: complete it;
 *  PARK_FAULT  a fault record is posted (in->fault_id): wait for its answer;
 *  PARK_ROOM   a fault record is built, the fault ring is full: retry;
 *  FENCE       a FENCE that passed its checks: it completes (status OK)
 *              once every earlier-fetched command of its scope (its
 *              context; ctx 0: the whole queue) has completed, which the
 *              queue, keeper of the order, decides (it parks it till then);
 *  HOLD        bus mastering is off (or the engines are stopping): the
 *              command keeps its place and runs again from where it stopped.
 */
enum hmdev_exec {
	HMDEV_EXEC_DONE,
	HMDEV_EXEC_PARK_FAULT,
	HMDEV_EXEC_PARK_ROOM,
	HMDEV_EXEC_FENCE,
	HMDEV_EXEC_HOLD,
};

/*
 * Run the command in @in (already copied out of the ring, so stable) on
 * queue @q, from where it stopped.
 */
enum hmdev_exec hmdev_cmd_run(struct hmdev *dev, unsigned q,
			      struct hmdev_inflight *in);
/* A PARK_ROOM command: try to post its fault record again. */
enum hmdev_exec hmdev_cmd_retry_fault(struct hmdev *dev, unsigned q,
				      struct hmdev_inflight *in);

/* The driver's answer to a parked fault (hmdev_cmd_take_answer()). */
enum hmdev_answer {
	HMDEV_ANSWER_NONE,	/* not answered yet */
	HMDEV_ANSWER_REPLAY,	/* run again from where it stopped */
	HMDEV_ANSWER_DONE,	/* cancelled: in->cpl.status is final */
};
/* Has the driver answered @in's outstanding fault?  Takes nothing. */
bool hmdev_cmd_answer_ready(struct hmdev *dev, unsigned q,
			    const struct hmdev_inflight *in);
enum hmdev_answer hmdev_cmd_take_answer(struct hmdev *dev, unsigned q,
					struct hmdev_inflight *in);

/* ==== hmdev.c: the device in storage the caller provides ============== */

/*
 * hmdev_create() and hmdev_destroy() without the allocation, for a struct
 * hmdev embedded in a test's fixture: the same contract.  A device that
 * was set up must be released with hmdev_fini().
 */
int hmdev_init(struct hmdev *dev, const struct hmdev_config *cfg,
	       void *bar, size_t bar_size, const struct guest_ram *ram,
	       hmdev_irq_fn raise_irq, void *irq_opaque,
	       char *err, size_t errlen);
void hmdev_fini(struct hmdev *dev);

#endif
