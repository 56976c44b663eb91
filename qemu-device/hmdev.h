/* SPDX-License-Identifier: MIT */
/*
 * hmirror device model, public API: what it takes to run a device behind a
 * BAR (main.c serves it to QEMU's ivshmem; tests use a malloc'd BAR).
 * The device state and the API the model's own files share are in
 * hmdev_internal.h.
 *
 * Trust model: everything in the BAR and in guest RAM can be rewritten by
 * the guest at any time.  The device keeps its own copy of every value it
 * relies on (layout, ring indices, status, commands in flight) and only
 * *reads* guest-written fields, once, with atomic loads, validating them
 * before use.  It never reads back what it wrote itself.
 *
 * Threading.  Two modes, same code:
 *  - inline (tests, fuzzing): nobody calls hmdev_start(); hmdev_doorbell()
 *    and hmdev_tick() run every queue to a stop in the caller's thread;
 *  - threaded (hmirror-dev): hmdev_start() gives every engine queue its
 *    own thread.  hmdev_doorbell()/hmdev_tick() (one event-loop thread)
 *    then run only the management queue themselves and kick the engines,
 *    so a stalled engine never blocks queue 0 or another engine.
 * hmdev_doorbell(), hmdev_tick(), hmdev_shutdown(), hmdev_start() and
 * hmdev_stop() are called from one thread (the event loop).
 */
#ifndef HMDEV_H
#define HMDEV_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "hmirror_dev.h"

struct guest_ram;
struct hmdev;		/* opaque here: hmdev_internal.h */

#define HMDEV_BAR_MIN		(1u << 20)
#define HMDEV_MAX_ENTRIES	65536u	/* per ring */
#define HMDEV_MAX_TLB		(1u << 20)
#define HMDEV_MAX_VRAM_MB	4096u
#define HMDEV_MAX_POLL_US	1000000u
#define HMDEV_MAX_CONTEXTS	((HMIRROR_RINGS_OFF - HMIRROR_CTX_OFF) / \
				 sizeof(struct hmirror_ctx_entry))

struct hmdev_config {
	unsigned engines;	/* queues 1..engines */
	unsigned sq_entries;
	unsigned cq_entries;
	unsigned fault_entries;
	unsigned max_contexts;
	unsigned tlb_entries;
	unsigned va_bits;	/* HMIRROR_VA_BITS_4LEVEL or _5LEVEL */
	unsigned vram_mb;	/* device memory, MiB (0: none, no FEAT_VRAM) */
	bool shootdown;		/* advertise FEAT_SHOOTDOWN */
	bool poll_adapt;	/* engines learn longer spins (engine_poll()) */
	unsigned poll_max_us;	/* longest spin, asked or learned (0: default) */
	unsigned misbehave;	/* HMDEV_LIE_*: for the driver's tests only */
};

/*
 * A device that lies, for the driver's tests (--misbehave): each bit makes
 * the model break one rule of device-spec.rst on purpose.
 *  COMPLETE_FAULTED: a command that posted a fault completes (OK) as soon
 *  as the driver has taken the record off the ring, unanswered.
 */
#define HMDEV_LIE_COMPLETE_FAULTED	(1u << 0)

#define HMDEV_DEF_ENGINES	2
#define HMDEV_DEF_SQ		256
#define HMDEV_DEF_CQ		256
#define HMDEV_DEF_FAULTS	256
#define HMDEV_DEF_CONTEXTS	64
#define HMDEV_DEF_TLB		1024
#define HMDEV_DEF_VA_BITS	HMIRROR_VA_BITS_4LEVEL
#define HMDEV_DEF_VRAM_MB	64
/*
 * Longest an engine spins for work (--poll-max-us), whatever the driver
 * asks (drv_poll_us) or the engine learned (engine_poll()).
 */
#define HMDEV_DEF_POLL_MAX_US	1000u

/*
 * Always advertised; HMIRROR_FEAT_VRAM too when vram_mb > 0, and
 * HMIRROR_FEAT_SHOOTDOWN with shootdown (the default).
 */
#define HMDEV_FEATURES		(HMIRROR_FEAT_NOP | HMIRROR_FEAT_TRANSLATE | \
				 HMIRROR_FEAT_HUGE_2M | HMIRROR_FEAT_ATOMIC | \
				 HMIRROR_FEAT_TIMESTAMPS | HMIRROR_FEAT_POLL)

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

/* Raise interrupt @vector (HMIRROR_VEC_*) to the driver. */
typedef void (*hmdev_irq_fn)(void *opaque, unsigned vector);

/*
 * A device on @bar: the header and initial registers are written into it
 * (zeroing it).  Returns the device, or NULL with a reason in err if cfg is
 * invalid, the BAR too small or memory short.  The device starts ALIVE, not
 * ENABLED: it executes nothing until the driver's first reset.  @ram may be
 * NULL (no guest RAM: every access is BAD_ADDRESS).  @raise_irq may be
 * called from any thread once the device is threaded.
 */
struct hmdev *hmdev_create(const struct hmdev_config *cfg, void *bar,
			   size_t bar_size, const struct guest_ram *ram,
			   hmdev_irq_fn raise_irq, void *irq_opaque,
			   char *err, size_t errlen);
/* Stop the engine threads if any, free the device (NULL: nothing). */
void hmdev_destroy(struct hmdev *dev);

/* Threaded mode: one thread per engine.  0, or -1 (nothing started). */
int hmdev_start(struct hmdev *dev);
/* Stop and join the engine threads (idempotent); commands stay in flight. */
void hmdev_stop(struct hmdev *dev);

/* The guest rang doorbell @vector (HMIRROR_VEC_*). */
void hmdev_doorbell(struct hmdev *dev, unsigned vector);
/* Same, for @rings rings coalesced by the eventfd (doorbells_seen). */
void hmdev_doorbell_n(struct hmdev *dev, unsigned vector, uint64_t rings);
/*
 * After a doorbell the event loop watches the management queue for a
 * while instead of sleeping (the engines do the same for theirs), so a
 * TLB invalidation needs no doorbell: hmdev_mgmt_wake() after a doorbell
 * starts the window (drv_poll_us) and tells the driver (queue 0's
 * dev_polling); while hmdev_mgmt_awake() says so, the loop waits without
 * blocking and calls hmdev_mgmt_turn() between (it runs what was submitted,
 * extends the window on progress, else yields the core); once the window
 * is over, hmdev_mgmt_awake() clears dev_polling, looks once more, and
 * returns false.  Event loop only.  The parts, for tests:
 * hmdev_mgmt_poll_ns() is the window (0: none), hmdev_mgmt_polling() sets
 * or clears dev_polling (clearing, true if a submission is waiting), and
 * hmdev_mgmt_poll() runs queue 0: true if that made progress (fetched or
 * completed a command), false for nothing or a queue that cannot move
 * (failed, CQ full).
 */
void hmdev_mgmt_wake(struct hmdev *dev);
bool hmdev_mgmt_awake(struct hmdev *dev);
void hmdev_mgmt_turn(struct hmdev *dev);
uint64_t hmdev_mgmt_poll_ns(struct hmdev *dev);
bool hmdev_mgmt_polling(struct hmdev *dev, bool on);
bool hmdev_mgmt_poll(struct hmdev *dev);
/* Heartbeat (every 50 ms): heartbeat, dev_time_ns, reset check, queue poll. */
void hmdev_tick(struct hmdev *dev);
/* The model is going away: engines joined, dev_status = GONE, CTRL irq. */
void hmdev_shutdown(struct hmdev *dev);
/*
 * Commands fetched, and every event the device counts (commands, faults,
 * replays, TLB invalidations, doorbells), since the last reset.
 */
void hmdev_activity(struct hmdev *dev, uint64_t *commands, uint64_t *events);

#endif
