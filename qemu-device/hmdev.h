/* SPDX-License-Identifier: MIT */
/*
 * hmirror device model: the device state behind BAR2, independent of the
 * transport (ivshmem) so that tests can drive it on a malloc'd BAR.
 *
 * Trust model: everything in the BAR can be rewritten by the guest at any
 * time.  The device keeps its own copy of every value it relies on (layout,
 * ring indices, status) and only *reads* guest-written fields, once, with
 * acquire loads, validating them before use.  It never reads back what it
 * wrote itself.
 *
 * Threading: the spine is single threaded; hmdev_doorbell() and hmdev_tick()
 * are called from one event loop.  The next stage moves engine queues to
 * their own threads; struct hmdev_queue is the per-engine state for that.
 */
#ifndef HMDEV_H
#define HMDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hmirror_dev.h"

struct guest_ram;

#define HMDEV_BAR_MIN		(1u << 20)
#define HMDEV_MAX_ENTRIES	65536u	/* per ring */
#define HMDEV_MAX_TLB		(1u << 20)
#define HMDEV_MAX_CONTEXTS	((HMIRROR_RINGS_OFF - HMIRROR_CTX_OFF) / \
				 sizeof(struct hmirror_ctx_entry))

struct hmdev_config {
	unsigned engines;	/* queues 1..engines */
	unsigned sq_entries;
	unsigned cq_entries;
	unsigned fault_entries;
	unsigned max_contexts;
	unsigned tlb_entries;
};

#define HMDEV_DEF_ENGINES	2
#define HMDEV_DEF_SQ		256
#define HMDEV_DEF_CQ		256
#define HMDEV_DEF_FAULTS	256
#define HMDEV_DEF_CONTEXTS	64
#define HMDEV_DEF_TLB		1024

#define HMDEV_FEATURES		HMIRROR_FEAT_NOP

void hmdev_config_default(struct hmdev_config *cfg);
/* 0 if valid, else -1 with a one-line reason in err. */
int hmdev_config_check(const struct hmdev_config *cfg, char *err, size_t errlen);
/*
 * Fill @h as the device will publish it (bar_size excepted) and return the
 * layout end in bytes; 0 if the config is invalid.
 */
uint64_t hmdev_layout(const struct hmdev_config *cfg, struct hmirror_header *h);
/* BAR2 size: layout end rounded up to a power of two, >= 1 MiB; 0 if invalid. */
uint64_t hmdev_bar_size(const struct hmdev_config *cfg);

typedef void (*hmdev_irq_fn)(void *opaque, unsigned vector);

/* Device-private state of one queue. */
struct hmdev_queue {
	uint32_t sq_head;	/* next SQ index to fetch */
	uint32_t cq_tail;	/* next CQ index to write */
	uint32_t status;	/* HMIRROR_Q_* */
	uint64_t completed_seqno;
};

struct hmdev {
	uint8_t *bar;
	size_t bar_size;
	struct hmdev_config cfg;
	struct hmirror_header hdr;	/* private copy of the published header */
	unsigned num_queues;
	uint32_t sq_mask, cq_mask;

	/* pointers into the BAR, computed once from the private header */
	struct hmirror_regs *regs;
	struct hmirror_queue_regs *qregs;	/* [num_queues] */
	struct hmirror_fault_regs *fregs;
	struct hmirror_ctx_entry *ctx;		/* [max_contexts] */
	struct hmirror_cmd *sq[HMIRROR_MAX_QUEUES];
	struct hmirror_cpl *cq[HMIRROR_MAX_QUEUES];
	struct hmirror_fault *fault_ring;

	struct hmdev_queue q[HMIRROR_MAX_QUEUES];
	uint32_t status;	/* HMIRROR_DEV_*, mirrored to regs */
	uint32_t reset_ack;	/* last drv_reset_gen acted on */
	uint32_t pending_irqs;	/* vectors to raise at the end of a batch */
	bool gone;		/* hmdev_shutdown() done: ignore the guest */

	/* private copies of the device-written counters (never read back) */
	struct {
		uint64_t heartbeat;
		uint64_t commands;
		uint32_t errors;
		uint32_t doorbells;
		uint32_t irqs[HMIRROR_NUM_VECTORS];
	} cnt;

	const struct guest_ram *ram;	/* may be NULL (tests) */
	hmdev_irq_fn raise_irq;
	void *irq_opaque;
};

/*
 * Write the header and initial registers into @bar (zeroing it) and set up
 * @dev.  Returns 0, or -1 with a reason in err if cfg is invalid or the BAR
 * too small.  The device starts ALIVE, not ENABLED: it executes nothing until
 * the driver's first reset.
 */
int hmdev_init(struct hmdev *dev, const struct hmdev_config *cfg,
	       void *bar, size_t bar_size, const struct guest_ram *ram,
	       hmdev_irq_fn raise_irq, void *irq_opaque,
	       char *err, size_t errlen);

/* The guest rang doorbell @vector (HMIRROR_VEC_*). */
void hmdev_doorbell(struct hmdev *dev, unsigned vector);
/* Heartbeat (every 50 ms): heartbeat, dev_time_ns, reset check, queue poll. */
void hmdev_tick(struct hmdev *dev);
/* The model is going away: dev_status = GONE, CTRL irq. */
void hmdev_shutdown(struct hmdev *dev);

uint64_t hmdev_now_ns(void);

/* ---- internal, shared by hmdev.c and hmdev_cmd.c -------------------- */

/* Record an error in the err_* registers, set DEV_ERROR, queue a CTRL irq. */
void hmdev_error(struct hmdev *dev, uint32_t code, uint32_t queue,
		 uint32_t index, uint64_t info);

/*
 * Execute one command (already copied out of the ring, so stable) on queue
 * @q.  Fills cpl->status and cpl->result.  On an error status sets *err_info
 * to the offending value for the err_* registers.
 */
enum hmdev_exec {
	HMDEV_EXEC_DONE,	/* completion ready in *cpl */
	/* next stage: HMDEV_EXEC_STALL (fault posted, queue waits) */
};
enum hmdev_exec hmdev_cmd_exec(struct hmdev *dev, unsigned q,
			       const struct hmirror_cmd *cmd,
			       struct hmirror_cpl *cpl, uint64_t *err_info);

/* Shared-memory accessors: the guest is another CPU. */
#define hm_load_acq(p)		__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define hm_store_rel(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define hm_store(p, v)		__atomic_store_n((p), (v), __ATOMIC_RELAXED)

#endif
