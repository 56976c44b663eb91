/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hmirror: per-file contexts.
 */
#ifndef HMIRROR_CTX_H
#define HMIRROR_CTX_H

#include <linux/atomic.h>
#include <linux/mm_types.h>
#include <linux/mmu_notifier.h>
#include <linux/mutex.h>

#include "hmirror_mirror.h"
#include "hmirror_pt.h"

struct drm_file;
struct hmirror_device;

/* Fault-path counters of a context; see struct drm_hmirror_ctx_stats. */
struct hmirror_ctx_stats {
	atomic64_t faults;
	atomic64_t pages_faulted;
	atomic64_t ahead_pages;
	atomic64_t retries_stale;
	atomic64_t retries_busy;
	atomic64_t retries_waited;
	atomic64_t lock_drops;
	atomic64_t interrupted;
	atomic64_t efaults;
	atomic64_t service_ns;
};

/**
 * struct hmirror_ctx - one mirrored address space on one device
 * @hdev: device
 * @link: in hdev->ctx_list
 * @mm: the opener's mm (mmgrab'ed: the struct stays, the space may go)
 * @id: index in the device's context table
 * @pt: device page table
 * @zap: scratch for invalidations, used under @pt.lock
 * @mirror: invalidation tracking (the mmu notifier)
 * @hmm_sub: interval notifier giving the HMM backend its sequence
 * @hmm_seq_lock: the sequence changes under it and the HMM backend commits
 *	under it (inside the page-table lock): a spinlock, so the notifier
 *	never has to refuse a non-blockable invalidation
 * @hmm_lock: serialises registering @hmm_sub
 * @hmm_registered: @hmm_sub is registered (set once, under @hmm_lock)
 * @stats: fault-path counters
 * @backend: DRM_HMIRROR_BACKEND_*
 * @fault_ahead: extra pages faulted after a device fault's run
 */
struct hmirror_ctx {
	struct hmirror_device *hdev;
	struct list_head link;
	struct mm_struct *mm;
	u32 id;
	struct hmirror_pt pt;
	struct hmirror_pt_zap zap;
	struct hmirror_mirror mirror;
	struct mmu_interval_notifier hmm_sub;
	spinlock_t hmm_seq_lock;	/* see kernel-doc above */
	struct mutex hmm_lock;	/* see kernel-doc above */
	bool hmm_registered;
	struct hmirror_ctx_stats stats;
	u32 backend;
	u32 fault_ahead;
};

/**
 * struct hmirror_ctx_counter - one counter of a context
 * @name: its name, as in struct drm_hmirror_ctx_stats
 * @uapi: offset of its __u64 in struct drm_hmirror_ctx_stats
 * @ctx: offset of its atomic64_t in struct hmirror_ctx
 */
struct hmirror_ctx_counter {
	const char *name;
	size_t uapi;
	size_t ctx;
};

/* The one list of a context's counters: the STATS ioctl and debugfs. */
extern const struct hmirror_ctx_counter hmirror_ctx_counters[];
extern const unsigned int hmirror_ctx_num_counters;
u64 hmirror_ctx_counter_read(struct hmirror_ctx *ctx,
			     const struct hmirror_ctx_counter *c);

struct hmirror_ctx *hmirror_ctx_create(struct hmirror_device *hdev);
void hmirror_ctx_destroy(struct hmirror_ctx *ctx);
int hmirror_ctx_of_file(struct drm_file *file, struct hmirror_ctx **ctx);
void hmirror_ctx_unplug_all(struct hmirror_device *hdev);
int hmirror_user_range(struct hmirror_device *hdev, u64 addr, u64 len);

#endif /* HMIRROR_CTX_H */
