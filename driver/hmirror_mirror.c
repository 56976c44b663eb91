// SPDX-License-Identifier: GPL-2.0
/*
 * hmirror: the mirror's invalidation side.
 *
 * An mmu_notifier on the context's mm records every invalidation while it
 * is active (start .. end) in an interval tree, marks overlapping in-flight
 * device faults stale, clears the device page table in the range under the
 * page-table lock, makes the device drop its TLB entries and waits for
 * that, and only then releases the pages' DMA mappings.  A device fault
 * (the fault path) waits until no active invalidation overlaps its range
 * and commits only if it was not marked stale meanwhile.
 *
 * Rules lockdep is taught (see hmirror_ctx_teach_lockdep and
 * hmirror_inv_wait_map): never wait for an invalidation while holding the
 * page-table lock, and never allocate with GFP_KERNEL under it.
 */
#include <linux/interval_tree.h>
#include <linux/lockdep.h>
#include <linux/mmu_notifier.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include "hmirror.h"
#include "hmirror_ctx.h"
#include "hmirror_mirror.h"
#define CREATE_TRACE_POINTS
#include "hmirror_trace.h"

/*
 * "Waiting for an invalidation to end" as a lock: the notifier holds it
 * while it takes the page-table lock; a fault that waits acquires it, so
 * waiting with the page-table lock held is an inversion lockdep reports.
 */
#ifdef CONFIG_LOCKDEP
static struct lockdep_map hmirror_inv_wait_map = {
	.name = "hmirror_invalidation_wait",
};
#endif

/**
 * struct hmirror_inv - an active invalidation
 * @node: [start, last] in the context's interval tree
 * @range: the notifier's range, to find the node again at _end
 */
struct hmirror_inv {
	struct interval_tree_node node;
	const struct mmu_notifier_range *range;
};

static void hmirror_mirror_inv_end(struct hmirror_mirror *m,
				   const struct mmu_notifier_range *range,
				   struct hmirror_inv *inv);

static struct hmirror_ctx *mn_to_ctx(struct mmu_notifier *mn)
{
	return container_of(mn, struct hmirror_ctx, mirror.mn);
}

/* Caller holds inv_lock. */
static bool hmirror_active_overlaps(struct hmirror_mirror *m, u64 start,
				    u64 end)
{
	if (m->active_unrecorded)
		return true;
	return interval_tree_iter_first(&m->active, start, end - 1);
}

/* Caller holds inv_lock. */
static void hmirror_mark_stale(struct hmirror_mirror *m, u64 start, u64 end,
			       bool everything)
{
	struct hmirror_fault_range *f;

	list_for_each_entry(f, &m->faults, link)
		if (everything || (f->start < end && start < f->end))
			f->stale = true;
}

/**
 * hmirror_mirror_zap - clear [start, end) from the device
 * @ctx: context, page-table lock held
 * @start: first address
 * @end: end address
 *
 * Entries, then the device TLB, then the DMA mappings, in batches of the
 * zap's size.
 */
void hmirror_mirror_zap(struct hmirror_ctx *ctx, u64 start, u64 end)
{
	struct hmirror_mirror *m = &ctx->mirror;
	u64 next = start, from;

	lockdep_assert_held(&ctx->pt.lock);
	while (next < end) {
		from = next;
		next = hmirror_pt_clear(&ctx->pt, from, end, &ctx->zap);
		if (!ctx->zap.n && list_empty(&ctx->zap.tables))
			continue;
		/*
		 * A dead device does no DMA, so its TLB is moot: release
		 * either way.  The wait is bounded (it marks the device dead).
		 */
		hmirror_ctx_tlb_inval(ctx, from, next);
		atomic64_inc(&m->stats.device_flushes);
		atomic64_add(ctx->zap.n, &m->stats.pages_unmapped);
		hmirror_pt_zap_release(&ctx->pt, &ctx->zap);
	}
}

static int hmirror_mn_invalidate_start(struct mmu_notifier *mn,
				       const struct mmu_notifier_range *range)
{
	struct hmirror_ctx *ctx = mn_to_ctx(mn);
	struct hmirror_mirror *m = &ctx->mirror;
	bool blockable = mmu_notifier_range_blockable(range);
	struct hmirror_inv *inv;
	ktime_t t0 = ktime_get();

	/* No reclaim from here: reclaim may be what called us. */
	inv = kmalloc(sizeof(*inv), GFP_NOWAIT | __GFP_NOWARN);
	spin_lock(&m->inv_lock);
	if (inv) {
		inv->node.start = range->start;
		inv->node.last = range->end - 1;
		inv->range = range;
		interval_tree_insert(&inv->node, &m->active);
	} else {
		/* Unrecorded: treated as covering everything until _end. */
		m->active_unrecorded++;
	}
	hmirror_mark_stale(m, range->start, range->end, !inv);
	spin_unlock(&m->inv_lock);
	atomic64_inc(&m->stats.invalidations);
	trace_hmirror_inv_begin(ctx->id, range->start, range->end,
				range->event, blockable);

	lock_map_acquire(&hmirror_inv_wait_map);
	if (blockable) {
		mutex_lock(&ctx->pt.lock);
	} else if (!mutex_trylock(&ctx->pt.lock)) {
		lock_map_release(&hmirror_inv_wait_map);
		goto again;
	}
	if (!blockable && !hmirror_pt_range_empty(&ctx->pt, range->start,
						  range->end)) {
		/* Flushing the device would sleep. */
		mutex_unlock(&ctx->pt.lock);
		lock_map_release(&hmirror_inv_wait_map);
		goto again;
	}
	hmirror_mirror_zap(ctx, range->start, range->end);
	mutex_unlock(&ctx->pt.lock);
	lock_map_release(&hmirror_inv_wait_map);
	t0 = ktime_sub(ktime_get(), t0);
	atomic64_add(ktime_to_ns(t0), &m->stats.invalidation_ns);
	trace_hmirror_inv_end(ctx->id, range->start, range->end, 0,
			      ktime_to_ns(t0));
	return 0;

again:
	/* _end is not called for a failed _start: undo the record now. */
	hmirror_mirror_inv_end(m, range, inv);
	atomic64_inc(&m->stats.nonblock_eagain);
	trace_hmirror_inv_end(ctx->id, range->start, range->end, -EAGAIN, 0);
	return -EAGAIN;
}

/**
 * hmirror_mirror_inv_end - retire an active invalidation and wake waiters
 * @m: mirror
 * @range: the notifier's range
 * @inv: its record if known, else looked up (NULL when unrecorded)
 */
static void hmirror_mirror_inv_end(struct hmirror_mirror *m,
				   const struct mmu_notifier_range *range,
				   struct hmirror_inv *inv)
{
	struct interval_tree_node *it;

	spin_lock(&m->inv_lock);
	for (it = interval_tree_iter_first(&m->active, range->start,
					   range->end - 1);
	     !inv && it; it = interval_tree_iter_next(it, range->start,
						       range->end - 1)) {
		struct hmirror_inv *cand = container_of(it, struct hmirror_inv, node);

		if (cand->range == range)
			inv = cand;
	}
	if (inv)
		interval_tree_remove(&inv->node, &m->active);
	else if (!WARN_ON_ONCE(!m->active_unrecorded))
		m->active_unrecorded--;
	spin_unlock(&m->inv_lock);
	kfree(inv);
	wake_up_all(&m->inv_wq);
}

static void hmirror_mn_invalidate_end(struct mmu_notifier *mn,
				      const struct mmu_notifier_range *range)
{
	hmirror_mirror_inv_end(&mn_to_ctx(mn)->mirror, range, NULL);
}

/* The mm is going away (exit or exec): the device must forget it all. */
static void hmirror_mn_release(struct mmu_notifier *mn, struct mm_struct *mm)
{
	struct hmirror_ctx *ctx = mn_to_ctx(mn);
	struct hmirror_mirror *m = &ctx->mirror;

	spin_lock(&m->inv_lock);
	m->released = true;
	hmirror_mark_stale(m, 0, 0, true);
	spin_unlock(&m->inv_lock);

	lock_map_acquire(&hmirror_inv_wait_map);
	mutex_lock(&ctx->pt.lock);
	hmirror_mirror_zap(ctx, 0, 1ull << HMIRROR_VA_BITS);
	mutex_unlock(&ctx->pt.lock);
	lock_map_release(&hmirror_inv_wait_map);
	wake_up_all(&m->inv_wq);
}

static const struct mmu_notifier_ops hmirror_mn_ops = {
	.invalidate_range_start = hmirror_mn_invalidate_start,
	.invalidate_range_end = hmirror_mn_invalidate_end,
	.release = hmirror_mn_release,
};

/**
 * hmirror_mirror_init - start mirroring @mm
 * @ctx: context whose page table is set up
 * @mm: the opener's mm (current->mm)
 *
 * Return: 0 or a negative errno from mmu_notifier_register().
 */
int hmirror_mirror_init(struct hmirror_ctx *ctx, struct mm_struct *mm)
{
	struct hmirror_mirror *m = &ctx->mirror;

	spin_lock_init(&m->inv_lock);
	m->active = RB_ROOT_CACHED;
	INIT_LIST_HEAD(&m->faults);
	init_waitqueue_head(&m->inv_wq);
	m->mn.ops = &hmirror_mn_ops;
	return mmu_notifier_register(&m->mn, mm);
}

/**
 * hmirror_mirror_fini - stop mirroring
 * @ctx: context; no fault is in flight any more
 *
 * After this no notifier callback runs for @ctx (SRCU synchronised).
 */
void hmirror_mirror_fini(struct hmirror_ctx *ctx)
{
	mmu_notifier_unregister(&ctx->mirror.mn, ctx->mm);
}

/**
 * hmirror_mirror_wait_inactive - wait until no invalidation overlaps
 * @ctx: context
 * @f: the fault's registered range; its stale mark is cleared on success
 *
 * Must not be called with the page-table lock held (lockdep checks).
 *
 * Return: 0, -EINTR on a signal, -ESRCH once the mm is gone.
 */
int hmirror_mirror_wait_inactive(struct hmirror_ctx *ctx,
				 struct hmirror_fault_range *f)
{
	struct hmirror_mirror *m = &ctx->mirror;
	ktime_t t0 = 0;
	int ret = 0;

	lock_map_acquire(&hmirror_inv_wait_map);
	lock_map_release(&hmirror_inv_wait_map);
	for (;;) {
		spin_lock(&m->inv_lock);
		if (m->released) {
			ret = -ESRCH;
		} else if (!hmirror_active_overlaps(m, f->start, f->end)) {
			f->stale = false;
			spin_unlock(&m->inv_lock);
			break;
		}
		spin_unlock(&m->inv_lock);
		if (ret)
			break;
		if (!t0)
			t0 = ktime_get();
		ret = wait_event_interruptible(m->inv_wq,
					       READ_ONCE(m->released) ||
					       !hmirror_mirror_range_active(m, f));
		if (ret) {
			ret = -EINTR;
			break;
		}
	}
	if (t0)
		atomic64_add(ktime_to_ns(ktime_sub(ktime_get(), t0)),
			     &m->stats.inv_wait_ns);
	return ret;
}

/**
 * hmirror_mirror_range_active - does an active invalidation overlap @f?
 * @m: mirror
 * @f: fault range
 */
bool hmirror_mirror_range_active(struct hmirror_mirror *m,
				 struct hmirror_fault_range *f)
{
	bool busy;

	spin_lock(&m->inv_lock);
	busy = hmirror_active_overlaps(m, f->start, f->end);
	spin_unlock(&m->inv_lock);
	return busy;
}

void hmirror_mirror_fault_begin(struct hmirror_mirror *m,
				struct hmirror_fault_range *f, u64 start, u64 end)
{
	f->start = start;
	f->end = end;
	f->stale = false;
	spin_lock(&m->inv_lock);
	list_add(&f->link, &m->faults);
	spin_unlock(&m->inv_lock);
}

void hmirror_mirror_fault_end(struct hmirror_mirror *m,
			      struct hmirror_fault_range *f)
{
	spin_lock(&m->inv_lock);
	list_del(&f->link);
	spin_unlock(&m->inv_lock);
}

/**
 * hmirror_mirror_fault_valid - may the fault commit its pages?
 * @m: mirror
 * @f: registered fault range
 *
 * Called with the page-table lock held, just before writing entries: an
 * invalidation that started after the fault's wait has either marked it
 * stale or is still active (it then blocks on the page-table lock before
 * clearing, and will clear what is committed now).
 *
 * Return: true when nothing invalidated the range since the wait.
 */
bool hmirror_mirror_fault_valid(struct hmirror_mirror *m,
				struct hmirror_fault_range *f)
{
	bool valid;

	spin_lock(&m->inv_lock);
	valid = !f->stale && !m->released &&
		!hmirror_active_overlaps(m, f->start, f->end);
	spin_unlock(&m->inv_lock);
	return valid;
}
