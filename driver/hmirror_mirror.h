/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hmirror: the mirror's invalidation tracking (see hmirror_mirror.c).
 */
#ifndef HMIRROR_MIRROR_H
#define HMIRROR_MIRROR_H

#include <linux/atomic.h>
#include <linux/list.h>
#include <linux/mmu_notifier.h>
#include <linux/rbtree.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

struct hmirror_ctx;

/**
 * struct hmirror_fault_range - a device fault being serviced
 * @link: in hmirror_mirror.faults
 * @start: first address
 * @end: end address
 * @stale: an invalidation overlapped it since its last wait
 */
struct hmirror_fault_range {
	struct list_head link;
	u64 start;
	u64 end;
	bool stale;
};

/* Counters, reported by the STATS ioctl and debugfs. */
struct hmirror_mirror_stats {
	atomic64_t invalidations;	/* notifier starts seen */
	atomic64_t device_flushes;	/* of which needed a device TLB flush */
	atomic64_t pages_unmapped;	/* device entries cleared */
	atomic64_t invalidation_ns;	/* time spent in notifier starts */
	atomic64_t inv_wait_ns;		/* faults waiting for invalidations */
	atomic64_t nonblock_deferred;	/* non-blockable starts deferred */
};

/**
 * struct hmirror_mirror - invalidation state of a context
 * @mn: notifier on the context's mm
 * @inv_lock: protects @active, @active_unrecorded, @deferred_start,
 *	@deferred_end, @faults, @released
 * @active: active invalidations, an interval tree
 * @active_unrecorded: active invalidations that could not be recorded
 *	(allocation failed); while non-zero everything counts as active
 * @deferred_start: start of what non-blockable invalidations left for
 *	@deferred_work to clear; active for faults until it has
 * @deferred_end: its end (empty when not above @deferred_start)
 * @deferred_work: clears the deferred range
 * @faults: in-flight device faults (struct hmirror_fault_range)
 * @inv_wq: faults waiting for invalidations to end
 * @released: the mm is gone; nothing may be mirrored any more
 * @stats: counters
 */
struct hmirror_mirror {
	struct mmu_notifier mn;
	spinlock_t inv_lock;	/* see kernel-doc above */
	struct rb_root_cached active;
	unsigned int active_unrecorded;
	u64 deferred_start;
	u64 deferred_end;
	struct work_struct deferred_work;
	struct list_head faults;
	wait_queue_head_t inv_wq;
	bool released;
	struct hmirror_mirror_stats stats;
};

int hmirror_mirror_init(struct hmirror_ctx *ctx, struct mm_struct *mm);
void hmirror_mirror_fini(struct hmirror_ctx *ctx);

void hmirror_mirror_fault_begin(struct hmirror_mirror *m,
				struct hmirror_fault_range *f, u64 start, u64 end);
void hmirror_mirror_fault_end(struct hmirror_mirror *m,
			      struct hmirror_fault_range *f);
int hmirror_mirror_wait_inactive(struct hmirror_ctx *ctx,
				 struct hmirror_fault_range *f);
bool hmirror_mirror_range_active(struct hmirror_mirror *m,
				 struct hmirror_fault_range *f);
void hmirror_mirror_zap(struct hmirror_ctx *ctx, u64 start, u64 end);
bool hmirror_mirror_fault_valid(struct hmirror_ctx *ctx,
				struct hmirror_fault_range *f);

#endif /* HMIRROR_MIRROR_H */
