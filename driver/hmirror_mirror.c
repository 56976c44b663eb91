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
 * A non-blockable invalidation (the OOM reaper, process_mrelease()) may
 * not sleep, yet must not fail either: the notifier implements
 * invalidate_range_end, and the kernel's contract forbids a start that
 * can fail to such a notifier.  It records the range as active and hands
 * the clearing to a worker; the range stays active for faults until the
 * worker is done.  The device keeps reaching the pages meanwhile, which
 * is safe because the device page table holds a reference on every page
 * it maps: nothing it can reach is freed before its entry is cleared and
 * the device TLB flushed.
 *
 * Rules lockdep is taught (see hmirror_ctx_teach_lockdep and
 * hmirror_inv_wait_map): never wait for an invalidation while holding the
 * page-table lock, and never allocate with GFP_KERNEL under it.
 */
#include <linux/interval_tree.h>
#include <linux/lockdep.h>
#include <linux/mmu_notifier.h>
#include <linux/sched/clock.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include "hmirror.h"
#include "hmirror_ctx.h"
#include "hmirror_mirror.h"
#define CREATE_TRACE_POINTS
#include "hmirror_trace.h"

/**
 * DOC: Invalidation
 *
 * ::
 *
 *   CPU changes the mm (munmap, mprotect, fork, migration, KSM, THP split, ...)
 *    └─ invalidate_range_start(range)
 *         ├─ inv_lock: record range as active (interval tree), mark
 *         │            overlapping in-flight faults stale
 *         ├─ page-table lock
 *         │    ├─ clear device entries in range (zap: ≤ 512 per batch)
 *         │    ├─ device TLB flush: a shootdown through shared memory, or
 *         │    │  TLB_INVAL on the management queue, waited for
 *         │    │  (uninterruptible, bounded: a device that makes no
 *         │    │  progress is declared dead)
 *         │    └─ release DMA mappings, page references, emptied tables
 *         │       (a dead device: only once it proved it stopped DMA)
 *         └─ unlock
 *    └─ ... CPU page tables change ...
 *    └─ invalidate_range_end(range): retire the range, wake waiting faults
 *
 * The range record is allocated ``GFP_NOWAIT`` (reclaim may be the caller);
 * if that fails a counter makes *everything* count as active until ``_end``.
 * A range where nothing is mirrored costs a walk of the tables present, no
 * device round trip.  The flush (DOC: TLB shootdown) never waits for an
 * engine stalled on a fault, and is done only once every access that used
 * a flushed translation has finished.
 *
 * Why not one ``mmu_interval_notifier`` over the whole address space, as
 * ``hmm_range_fault`` users do?  Its sequence count changes on *every*
 * invalidation of the process, so a fault retries whenever anything at all
 * changed meanwhile; the active-range tracking here makes a fault wait or
 * retry only for invalidations that overlap it (measured: zero retries under
 * a storm of unrelated invalidations, ``hmirror_coherence_test``).  The HMM
 * backend keeps the interval notifier, as the comparison path.
 */

/**
 * DOC: Non-blockable invalidations
 *
 * The OOM reaper and ``process_mrelease()`` invalidate without being allowed
 * to sleep, and the notifier implements ``invalidate_range_end``, so its
 * start must not fail either (``include/linux/mmu_notifier.h``: a start
 * that fails cannot be told apart; 6.12 warns and calls ``_end`` anyway).
 * Such a start records the range and marks faults stale as usual, adds the
 * range to the context's *deferred* range, queues a worker and returns 0.
 * The deferred range counts as active for faults until the worker has
 * cleared it (page-table lock, zap, TLB flush, release).  Meanwhile the
 * device may still reach the pages of the range — but the device table's
 * page references keep them allocated, so nothing is freed under it; the
 * process is being killed, and what the device writes there is lost with it.
 * The ``STATS`` ioctl counts these (``nonblock_deferred``).
 *
 * The HMM backend's interval notifier takes the page-table lock to bump its
 * sequence; when non-blockable it only try-locks and returns ``false`` if it
 * cannot, which the contract allows for interval notifiers (they have no
 * ``_end``).
 */

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

static struct hmirror_ctx *mn_to_ctx(struct mmu_notifier *mn)
{
	return container_of(mn, struct hmirror_ctx, mirror.mn);
}

static bool hmirror_active_overlaps(struct hmirror_mirror *m, u64 start,
				    u64 end)
{
	lockdep_assert_held(&m->inv_lock);
	if (m->active_unrecorded)
		return true;
	if (m->deferred_start < m->deferred_end &&
	    start < m->deferred_end && m->deferred_start < end)
		return true;
	return interval_tree_iter_first(&m->active, start, end - 1);
}

static void hmirror_mark_stale(struct hmirror_mirror *m, u64 start, u64 end,
			       bool everything)
{
	struct hmirror_fault_range *f;

	lockdep_assert_held(&m->inv_lock);
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
		atomic64_inc(&m->stats.device_flushes);
		atomic64_add(ctx->zap.n, &m->stats.pages_unmapped);
		/*
		 * The wait is bounded: a device that makes no progress is
		 * declared dead.  A dead device's TLB cannot be trusted to
		 * be clean: what it could reach is released only once it
		 * proved it stopped.
		 */
		if (hmirror_hw_tlb_inval(ctx->hdev, ctx->id, from, next) &&
		    hmirror_pt_zap_bury(&ctx->zap, &ctx->hdev->graveyard))
			continue;
		hmirror_pt_zap_release(&ctx->pt, &ctx->zap);
	}
}

static void hmirror_mirror_clear_locked(struct hmirror_ctx *ctx, u64 start,
					u64 end)
{
	lock_map_acquire(&hmirror_inv_wait_map);
	mutex_lock(&ctx->pt.lock);
	hmirror_mirror_zap(ctx, start, end);
	mutex_unlock(&ctx->pt.lock);
	lock_map_release(&hmirror_inv_wait_map);
}

/*
 * The driver granting this device exclusive access (make_device_exclusive
 * replaces the CPU's entries, not the page): what the device maps stays
 * right, and a fault mapping those very pages must not be sent back.
 */
static bool hmirror_own_exclusive(struct hmirror_ctx *ctx,
				  const struct mmu_notifier_range *range)
{
	return range->event == MMU_NOTIFY_EXCLUSIVE &&
	       range->owner == ctx->hdev;
}

static int hmirror_mn_invalidate_start(struct mmu_notifier *mn,
				       const struct mmu_notifier_range *range)
{
	struct hmirror_ctx *ctx = mn_to_ctx(mn);
	struct hmirror_mirror *m = &ctx->mirror;
	bool blockable = mmu_notifier_range_blockable(range);
	struct hmirror_inv *inv;
	u64 t0 = local_clock();

	if (hmirror_own_exclusive(ctx, range))
		return 0;

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
	if (!blockable) {
		/* Active for faults until the worker has cleared it. */
		if (m->deferred_start >= m->deferred_end) {
			m->deferred_start = range->start;
			m->deferred_end = range->end;
		} else {
			m->deferred_start = min(m->deferred_start, range->start);
			m->deferred_end = max(m->deferred_end, range->end);
		}
	}
	spin_unlock(&m->inv_lock);
	atomic64_inc(&m->stats.invalidations);
	trace_hmirror_inv_begin(ctx->id, range->start, range->end,
				range->event, blockable);

	if (!blockable) {
		/*
		 * Sleeping is not allowed and failing is not either (see the
		 * top of this file): the worker clears and flushes; the
		 * device's page references keep the pages until then.
		 */
		queue_work(system_unbound_wq, &m->deferred_work);
		atomic64_inc(&m->stats.nonblock_deferred);
		atomic64_inc(&ctx->hdev->nonblock_deferred);
		trace_hmirror_inv_end(ctx->id, range->start, range->end, 1, 0);
		return 0;
	}
	hmirror_mirror_clear_locked(ctx, range->start, range->end);
	t0 = local_clock() - t0;
	atomic64_add(t0, &m->stats.invalidation_ns);
	trace_hmirror_inv_end(ctx->id, range->start, range->end, 0, t0);
	return 0;
}

/* Clear what non-blockable invalidations left, then let faults in again. */
static void hmirror_mirror_deferred_work(struct work_struct *work)
{
	struct hmirror_ctx *ctx = container_of(work, struct hmirror_ctx,
					       mirror.deferred_work);
	struct hmirror_mirror *m = &ctx->mirror;
	u64 start, end;

	spin_lock(&m->inv_lock);
	start = m->deferred_start;
	end = m->deferred_end;
	spin_unlock(&m->inv_lock);
	if (start >= end)
		return;
	hmirror_mirror_clear_locked(ctx, start, end);
	spin_lock(&m->inv_lock);
	/* A deferral that came meanwhile re-queued this work: keep it. */
	if (m->deferred_start == start && m->deferred_end == end) {
		m->deferred_start = 0;
		m->deferred_end = 0;
	}
	spin_unlock(&m->inv_lock);
	wake_up_all(&m->inv_wq);
}

/**
 * hmirror_mirror_inv_end - retire an active invalidation and wake waiters
 * @m: mirror
 * @range: the notifier's range
 */
static void hmirror_mirror_inv_end(struct hmirror_mirror *m,
				   const struct mmu_notifier_range *range)
{
	struct hmirror_inv *inv = NULL;
	struct interval_tree_node *it;

	spin_lock(&m->inv_lock);
	for (it = interval_tree_iter_first(&m->active, range->start,
					   range->end - 1);
	     it; it = interval_tree_iter_next(it, range->start, range->end - 1)) {
		struct hmirror_inv *cand = container_of(it, struct hmirror_inv, node);

		if (cand->range == range) {
			inv = cand;
			break;
		}
	}
	if (inv)
		interval_tree_remove(&inv->node, &m->active);
	else if (m->active_unrecorded)
		m->active_unrecorded--;
	spin_unlock(&m->inv_lock);
	kfree(inv);
	wake_up_all(&m->inv_wq);
}

static void hmirror_mn_invalidate_end(struct mmu_notifier *mn,
				      const struct mmu_notifier_range *range)
{
	if (!hmirror_own_exclusive(mn_to_ctx(mn), range))
		hmirror_mirror_inv_end(&mn_to_ctx(mn)->mirror, range);
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

	hmirror_mirror_clear_locked(ctx, 0, ctx->pt.va_end);
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
	INIT_WORK(&m->deferred_work, hmirror_mirror_deferred_work);
	m->mn.ops = &hmirror_mn_ops;
	return mmu_notifier_register(&m->mn, mm);
}

/**
 * hmirror_mirror_fini - stop mirroring
 * @ctx: context; no fault is in flight any more
 *
 * After this no notifier callback or deferred clearing runs for @ctx
 * (SRCU synchronised) and no invalidation record is left.
 */
void hmirror_mirror_fini(struct hmirror_ctx *ctx)
{
	struct hmirror_mirror *m = &ctx->mirror;
	struct interval_tree_node *it;

	mmu_notifier_unregister(&m->mn, ctx->mm);
	cancel_work_sync(&m->deferred_work);
	/*
	 * An invalidation between its start and its end when we left the
	 * mm never reaches our _end: its record is freed here.
	 */
	while ((it = interval_tree_iter_first(&m->active, 0, ULONG_MAX))) {
		interval_tree_remove(it, &m->active);
		kfree(container_of(it, struct hmirror_inv, node));
	}
	m->active_unrecorded = 0;
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
 * @ctx: context, page-table lock held
 * @f: registered fault range
 *
 * Called with the page-table lock held, just before writing entries: an
 * invalidation that started after the fault's wait has either marked it
 * stale or is still active (it then blocks on the page-table lock before
 * clearing, and will clear what is committed now).
 *
 * Return: true when nothing invalidated the range since the wait.
 */
bool hmirror_mirror_fault_valid(struct hmirror_ctx *ctx,
				struct hmirror_fault_range *f)
{
	struct hmirror_mirror *m = &ctx->mirror;
	bool valid;

	lockdep_assert_held(&ctx->pt.lock);
	spin_lock(&m->inv_lock);
	valid = !f->stale && !m->released &&
		!hmirror_active_overlaps(m, f->start, f->end);
	spin_unlock(&m->inv_lock);
	return valid;
}
