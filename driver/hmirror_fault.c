// SPDX-License-Identifier: GPL-2.0
/*
 * hmirror: the fault path.  Runs in the task that submitted the faulting
 * command (or asked for a prefetch), so signals apply to it.
 *
 * GUP backend: register the range (the device's run and the fault-ahead
 * window: everything the fault may commit), wait until no invalidation
 * overlaps it, fault the pages in with get_user_pages_remote
 * (FOLL_INTERRUPTIBLE) without any driver lock, then under the page-table
 * lock commit them only if no invalidation touched the range meanwhile;
 * else drop everything and retry.  The device page table takes its own
 * reference on each page it maps, dropped only after the entry is cleared
 * and the device TLB flushed; GUP's references are dropped at once.  The
 * notifier, not a pin, keeps the device coherent.
 *
 * HMM backend: the same through hmm_range_fault() and the sequence of an
 * mmu_interval_notifier covering the whole address space.  Fault-ahead
 * pages are faulted if they can be; when one cannot (past EOF, a hole),
 * the window only maps what the CPU already has instead of failing the
 * device's run.
 */
#include <linux/hmm.h>
#include <linux/migrate.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/rmap.h>
#include <linux/mmu_notifier.h>
#include <linux/sched/clock.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/userfaultfd_k.h>

#include "hmirror.h"
#include "hmirror_ctx.h"
#include "hmirror_devmem.h"
#include "hmirror_fault.h"
#include "hmirror_trace.h"
#include "uapi/hmirror.h"

/**
 * DOC: Faults
 *
 * ::
 *
 *   task: EXEC ioctl ── submit command, register waiter ──► device
 *   device: translation miss ── fault record (run of missing pages) ──► ring;
 *           the command is parked, the engine goes on with other commands
 *   irq (or the task's poll): record ─► waiter of that command
 *   task: take the fault off the waiter, leave the device (drm_dev_exit), then
 *     GUP backend:
 *       1. register [start, end + fault-ahead window) as an in-flight fault
 *       2. wait until no active invalidation overlaps it (interruptible)
 *       3. mmap_read_lock; get_user_pages_remote(FOLL_INTERRUPTIBLE
 *          | FOLL_WRITE for writes, &locked); unlock only if locked is still
 *          set — after a lock drop neither the lock nor any vma is ours
 *       4. allocate tables; page-table lock; commit only if not stale and no
 *          active invalidation overlaps, else drop everything and retry
 *       5. put GUP's page references (the device table took its own)
 *     HMM backend: mmu_interval_read_begin, hmm_range_fault under
 *       mmap_read_lock (-EBUSY: retry), page-table lock,
 *       mmu_interval_read_retry: retry, else commit
 *   task: enter the device again, answer REPLAY (or CANCEL on error) in the
 *         tag's slot of the answer table ──► the parked command resumes or
 *         completes with FAULT status; the ioctl returns 0, -EFAULT or -EINTR
 *
 * The run the device reports is serviced in one GUP call, plus the context's
 * fault-ahead window clipped to the VMA of the run's last page and to the
 * device's address range.  *Everything a fault may commit is registered as
 * in flight for its whole duration*, the fault-ahead window included: an
 * invalidation of an ahead page between GUP and commit marks the fault stale
 * like one of the run.  With the HMM backend, ahead pages are faulted too;
 * when one cannot be (past EOF, a hole) the fault is redone with the window
 * optional (mapped where the CPU has the page, skipped elsewhere), so the
 * window never fails the device's run.  Partial results are committed and
 * the device faults again on the rest.  A retry happens only for a real
 * reason (stale, overlapped, hmm ``-EBUSY``) and always waits for the
 * overlapping invalidation to end first, so there is no spinning and no
 * timeout: a fault ends when it succeeds, fails (``-EFAULT``; ``-EPERM``
 * internally for a write to read-only memory), or the task gets a signal
 * (``FOLL_INTERRUPTIBLE``, interruptible waits: ``-EINTR``, the command is
 * cancelled).  A SIGKILLed task blocked in a userfaultfd fault exits
 * within seconds (a guest test checks 5 s).  The fault is taken off its
 * waiter *before* it is answered: the device may raise the command's next
 * fault as soon as it sees the answer.
 *
 * A fault is serviced *outside* ``drm_dev_enter()``: removal never waits for
 * a task blocked in GUP.  If the device went away meanwhile, the command
 * ends with ``-ENODEV`` and nothing is committed (commits check the device
 * under the page-table lock, which removal takes to empty every context).
 *
 * ``hmm_range_fault`` cannot wait for a userfaultfd handler (it faults
 * without ``FAULT_FLAG_ALLOW_RETRY``; the fault would end in SIGBUS and a
 * ``DEBUG_VM`` stack dump), so the HMM backend refuses userfaultfd-armed
 * ranges with ``-EFAULT``.  The GUP backend services them: the handler thread
 * resolves the fault while GUP waits with the lock dropped.
 *
 * Every fault record is validated before it is used: queue, tag, context,
 * access, alignment, run length (at most 512 pages), a command in flight
 * with that tag and sequence number that can fault, no second record for a
 * command whose first is unanswered, and an address inside an operand the
 * command has *with the access that operand needs* (COPY reads ``src`` and
 * writes ``dst``, READ reads ``src``, FILL writes ``dst``, ATOMIC updates
 * ``dst``): a write fault on a checksum's source is impossible, not a
 * reason to break COW.  A record for a command nobody waits for is
 * cancelled; an impossible one marks the device dead.
 */

static bool hmirror_hmm_invalidate(struct mmu_interval_notifier *sub,
				   const struct mmu_notifier_range *range,
				   unsigned long cur_seq)
{
	struct hmirror_ctx *ctx = container_of(sub, struct hmirror_ctx, hmm_sub);

	/* Exclusive access granted to this device: its mapping stays right. */
	if (range->event == MMU_NOTIFY_EXCLUSIVE && range->owner == ctx->hdev)
		return true;
	/*
	 * The sequence changes under the lock its readers commit under.  The
	 * entries a commit made just before are cleared by the context's own
	 * notifier, which the same invalidation calls next.
	 */
	spin_lock(&ctx->hmm_seq_lock);
	mmu_interval_set_seq(sub, cur_seq);
	spin_unlock(&ctx->hmm_seq_lock);
	return true;
}

static const struct mmu_interval_notifier_ops hmirror_hmm_ops = {
	.invalidate = hmirror_hmm_invalidate,
};

void hmirror_fault_init(struct hmirror_ctx *ctx)
{
	spin_lock_init(&ctx->hmm_seq_lock);
	mutex_init(&ctx->hmm_lock);
	ctx->hmm_registered = false;
}

/**
 * hmirror_fault_hmm_enable - give the context the HMM backend's sequence
 * @ctx: context; called by its owner (current->mm is ctx->mm)
 *
 * The interval notifier covers the whole address space and takes the
 * page-table lock on every invalidation, so only contexts that use
 * hmm_range_fault() (the HMM backend, compat SNAPSHOT) pay for it.
 *
 * Return: 0 or an errno from mmu_interval_notifier_insert().
 */
int hmirror_fault_hmm_enable(struct hmirror_ctx *ctx)
{
	int ret = 0;

	mutex_lock(&ctx->hmm_lock);
	if (!ctx->hmm_registered) {
		ret = mmu_interval_notifier_insert(&ctx->hmm_sub, ctx->mm, 0,
						   TASK_SIZE, &hmirror_hmm_ops);
		if (!ret)
			/* Published after the insert: readers test it first. */
			smp_store_release(&ctx->hmm_registered, true);
	}
	mutex_unlock(&ctx->hmm_lock);
	return ret;
}

void hmirror_fault_fini(struct hmirror_ctx *ctx)
{
	if (ctx->hmm_registered)
		mmu_interval_notifier_remove(&ctx->hmm_sub);
	mutex_destroy(&ctx->hmm_lock);
}

/*
 * Do @pages, from the 2 MiB aligned @va, hold 512 physically contiguous
 * pages of one folio, starting on a 2 MiB boundary?  Then one huge leaf
 * maps them (each address still reaches exactly the page the CPU maps
 * there), and one reference on the folio keeps all of them.
 */
static bool hmirror_huge_run(u64 va, struct page **pages, unsigned long left)
{
	struct folio *folio;
	unsigned long pfn, k;

	if (!IS_ALIGNED(va, HMIRROR_HUGE_SIZE) || left < HMIRROR_PT_ENTRIES)
		return false;
	pfn = page_to_pfn(pages[0]);
	folio = page_folio(pages[0]);
	if (!IS_ALIGNED(pfn, HMIRROR_PT_ENTRIES) ||
	    folio_nr_pages(folio) < HMIRROR_PT_ENTRIES)
		return false;
	for (k = 1; k < HMIRROR_PT_ENTRIES; k++)
		if (page_to_pfn(pages[k]) != pfn + k ||
		    page_folio(pages[k]) != folio)
			return false;
	return true;
}

/*
 * Commit @n pages from @start, as 2 MiB leaves where they allow it.
 * Page-table lock held, tables in @c; never sleeps.  -EEXIST with
 * *@conflict means an entry maps another page: an invalidation this fault
 * should have seen was missed, and the caller clears the entry and lets
 * the fault retry.  Nothing is committed for a device that is dead or
 * going away.
 */
static int hmirror_fault_commit(struct hmirror_ctx *ctx,
				struct hmirror_pt_cache *c, u64 start,
				struct page **pages, unsigned long n, bool write,
				u64 *conflict)
{
	unsigned long i = 0;
	int ret;

	lockdep_assert_held(&ctx->pt.lock);
	ret = hmirror_hw_status(ctx->hdev);
	if (ret)
		return ret;
	while (i < n) {
		u64 va = start + (i << PAGE_SHIFT);
		unsigned long run, mapped;

		if (hmirror_huge_run(va, pages + i, n - i)) {
			ret = hmirror_pt_map_huge(&ctx->pt, c, va, pages[i], write);
			if (!ret) {
				i += HMIRROR_PT_ENTRIES;
				continue;
			}
			if (ret != -EBUSY)
				goto fail;
			/* 4 KiB entries are there already: map 4 KiB. */
		}
		/* 4 KiB entries up to the next 2 MiB boundary, one table */
		run = min_t(unsigned long, n - i,
			    (HMIRROR_HUGE_SIZE - (va & (HMIRROR_HUGE_SIZE - 1))) >>
			    PAGE_SHIFT);
		ret = hmirror_pt_map(&ctx->pt, c, va, pages + i, run, write,
				     &mapped);
		i += mapped;
		if (ret)
			goto fail;
	}
	return 0;

fail:
	*conflict = start + (i << PAGE_SHIFT);
	return ret;
}

/* After a commit: a conflicting entry is cleared, and the fault retries. */
static int hmirror_fault_resolve_conflict(struct hmirror_ctx *ctx, int ret,
					  u64 conflict)
{
	if (ret != -EEXIST)
		return ret;
	hmirror_mirror_zap(ctx, conflict, conflict + PAGE_SIZE);
	return -EAGAIN;
}

/*
 * The window a fault registers and may commit: the device's run plus the
 * fault-ahead window, within the device's address range.
 */
static u64 hmirror_fault_window_end(struct hmirror_ctx *ctx,
				    const struct hmirror_fault_req *req)
{
	u64 end = req->start + ((u64)(req->npages + req->ahead) << PAGE_SHIFT);

	return min(end, ctx->pt.va_end);
}

/*
 * Pages to fault: the device's run, plus the fault-ahead window clipped
 * to the VMA of the run's last page and to @window_end.  mmap_lock held.
 */
static unsigned long hmirror_fault_span(struct mm_struct *mm, u64 start,
					unsigned long npages, u64 window_end)
{
	u64 run_end = start + (npages << PAGE_SHIFT);
	struct vm_area_struct *vma;

	mmap_assert_locked(mm);
	if (window_end <= run_end)
		return npages;
	vma = vma_lookup(mm, run_end - 1);
	if (!vma)
		return npages;
	return npages + (min_t(u64, window_end, vma->vm_end) - run_end) /
			PAGE_SIZE;
}

/* @n pages committed for @req: the excess came from the fault-ahead window. */
static void hmirror_fault_count(struct hmirror_ctx_stats *st,
				const struct hmirror_fault_req *req,
				unsigned long n)
{
	atomic64_add(n, &st->pages_faulted);
	if (n > req->npages)
		atomic64_add(n - req->npages, &st->ahead_pages);
}

static int hmirror_fault_gup(struct hmirror_ctx *ctx,
			     const struct hmirror_fault_req *req,
			     struct page **pages, unsigned long *done)
{
	struct hmirror_ctx_stats *st = &ctx->stats;
	unsigned int gup_flags = FOLL_INTERRUPTIBLE |
				 (req->write ? FOLL_WRITE : 0);
	u64 window_end = hmirror_fault_window_end(ctx, req);
	struct hmirror_fault_range f;
	struct hmirror_pt_cache c = { };
	struct mm_struct *mm = ctx->mm;
	unsigned long span;
	u64 conflict;
	long got;
	int locked, ret;

	/* Everything the fault may commit is in flight from now on. */
	hmirror_mirror_fault_begin(&ctx->mirror, &f, req->start, window_end);
	for (;;) {
		if (hmirror_mirror_range_active(&ctx->mirror, &f)) {
			atomic64_inc(&st->retries_waited);
			trace_hmirror_fault_retry(ctx->id, req->start, "wait");
		}
		ret = hmirror_mirror_wait_inactive(ctx, &f);
		if (ret)
			break;

		if (!mmget_not_zero(mm)) {
			ret = -ESRCH;
			break;
		}
		if (mmap_read_lock_killable(mm)) {
			mmput(mm);
			ret = -EINTR;
			break;
		}
		span = hmirror_fault_span(mm, req->start, req->npages,
					  window_end);
		locked = 1;
		got = get_user_pages_remote(mm, req->start, span, gup_flags,
					    pages, &locked);
		/* After a lock drop neither the lock nor any vma is ours. */
		if (locked)
			mmap_read_unlock(mm);
		else
			atomic64_inc(&st->lock_drops);
		mmput(mm);
		if (got <= 0) {
			ret = got ? got : -EFAULT;
			break;
		}

		ret = hmirror_pt_cache_fill(&ctx->pt, &c, req->start,
					    req->start + ((u64)got << PAGE_SHIFT));
		if (ret) {
			release_pages(pages, got);
			break;
		}
		mutex_lock(&ctx->pt.lock);
		if (!hmirror_mirror_fault_valid(ctx, &f)) {
			ret = -EAGAIN;
			atomic64_inc(&st->retries_stale);
			trace_hmirror_fault_retry(ctx->id, req->start, "stale");
		} else {
			ret = hmirror_fault_commit(ctx, &c, req->start, pages,
						   got, req->write, &conflict);
			ret = hmirror_fault_resolve_conflict(ctx, ret, conflict);
			if (ret == -EAGAIN) {
				atomic64_inc(&st->retries_stale);
				trace_hmirror_fault_retry(ctx->id, req->start,
							  "conflict");
			}
		}
		mutex_unlock(&ctx->pt.lock);
		/* The device table holds its own references. */
		release_pages(pages, got);
		if (ret == -EAGAIN)
			continue;
		if (!ret) {
			hmirror_fault_count(st, req, got);
			*done = min_t(unsigned long, got, req->npages);
		}
		break;
	}
	hmirror_pt_cache_drain(&ctx->pt, &c);
	hmirror_mirror_fault_end(&ctx->mirror, &f);
	return ret;
}

/*
 * Pages from @start, at most @npages, inside VMAs that allow the access:
 * how far GUP would get.  hmm_range_fault() fails the whole range on one
 * bad page, so the HMM backend faults this prefix, and the device faults
 * again at the bad page (which then fails alone).  mmap_lock held.
 */
static unsigned long hmirror_fault_accessible(struct mm_struct *mm, u64 start,
					      unsigned long npages, bool write)
{
	unsigned long want = VM_READ | (write ? VM_WRITE : 0);
	u64 end = start + ((u64)npages << PAGE_SHIFT), addr = start;
	struct vm_area_struct *vma;

	mmap_assert_locked(mm);
	/* VMA by VMA while they follow each other without a hole. */
	while ((vma = vma_lookup(mm, addr)) &&
	       (vma->vm_flags & want) == want) {
		addr = vma->vm_end;
		if (addr >= end)
			return npages;
	}
	return (addr - start) >> PAGE_SHIFT;
}

/*
 * hmm_range_fault() cannot wait for a userfaultfd handler (it faults
 * without FAULT_FLAG_ALLOW_RETRY, so the fault would end in SIGBUS): refuse
 * such ranges up front.  mmap_lock held.
 */
static bool hmirror_range_uffd_armed(struct mm_struct *mm, u64 start, u64 end)
{
	VMA_ITERATOR(vmi, mm, start);
	struct vm_area_struct *vma;

	mmap_assert_locked(mm);
	for_each_vma_range(vmi, vma, end)
		if (userfaultfd_armed(vma))
			return true;
	return false;
}

/*
 * Commit what hmm_range_fault() returned: maximal runs of valid pages with
 * the same access, so an optional fault-ahead page that is missing or
 * read-only is skipped or mapped read-only.  Page-table lock held, the
 * sequence checked: the pages are still mapped, so the device table may
 * take its references.
 */
static int hmirror_fault_hmm_commit(struct hmirror_ctx *ctx,
				    struct hmirror_pt_cache *c, u64 start,
				    const unsigned long *pfns,
				    struct page **pages, unsigned long n,
				    bool write, unsigned long *committed,
				    unsigned long *dirty, u64 *conflict)
{
	unsigned long i = 0, j;
	int ret;

	lockdep_assert_held(&ctx->pt.lock);
	lockdep_assert_held(&ctx->hmm_seq_lock);
	*committed = 0;
	while (i < n) {
		bool w = write && (pfns[i] & HMM_PFN_WRITE);

		if (!(pfns[i] & HMM_PFN_VALID)) {
			i++;
			continue;
		}
		for (j = i + 1; j < n && (pfns[j] & HMM_PFN_VALID) &&
		     (write && (pfns[j] & HMM_PFN_WRITE)) == w; j++)
			;
		ret = hmirror_fault_commit(ctx, c, start + (i << PAGE_SHIFT),
					   pages + i, j - i, w, conflict);
		if (ret)
			return ret;
		*committed += j - i;
		/* Still mapped (the sequence held): safe to reference. */
		for (; i < j; i++) {
			if (is_device_private_page(pages[i])) {
				hmirror_devmem_touch(ctx->hdev, pages[i]);
			} else if (w) {
				folio_get(page_folio(pages[i]));
				__set_bit(i, dirty);
			}
		}
	}
	return 0;
}

/*
 * hmm_range_fault() does not dirty what it returns writable (GUP with
 * FOLL_WRITE does): a shared page faulted in for reading is writable but
 * clean, and reclaim would drop what the device writes into it.  Mark
 * what the device may write dirty, as a CPU write fault would.  Each page
 * carries a reference taken under the commit; no driver lock is held.
 */
static void hmirror_fault_hmm_dirty(struct page **pages, unsigned long n,
				    unsigned long *dirty)
{
	unsigned long i;

	for_each_set_bit(i, dirty, n) {
		set_page_dirty_lock(pages[i]);
		folio_put(page_folio(pages[i]));
	}
}

/*
 * hmm_range_fault() returns this device's own pages as they are, never
 * faulting them: one a fork or mprotect left read-only stays read-only
 * however often a write faults it.  Bring the device's run's read-only
 * device pages back to system memory, where the next round's write fault
 * makes them writable.  No lock held.  -EAGAIN: go round again.
 */
static int hmirror_fault_hmm_unshare(struct hmirror_ctx *ctx,
				     const struct hmirror_fault_req *req,
				     const unsigned long *pfns,
				     struct page **pages, unsigned long n)
{
	unsigned long i, first = ULONG_MAX, last = 0, moved;
	int ret;

	if (!req->write)
		return 0;
	/* The device's run, as far as this round faulted it. */
	for (i = 0; i < min(n, req->npages); i++) {
		if (!pages[i] || (pfns[i] & HMM_PFN_WRITE) ||
		    !is_device_private_page(pages[i]))
			continue;
		first = min(first, i);
		last = i;
	}
	if (first == ULONG_MAX)
		return 0;
	ret = hmirror_devmem_to_system(ctx->hdev, ctx->mm,
				       req->start + ((u64)first << PAGE_SHIFT),
				       req->start + ((u64)(last + 1) << PAGE_SHIFT),
				       &moved);
	if (ret)
		return ret;
	/* Nothing moved: someone else is migrating them; go round again. */
	return -EAGAIN;
}

static int hmirror_fault_hmm(struct hmirror_ctx *ctx,
			     const struct hmirror_fault_req *req,
			     unsigned long *pfns, struct page **pages,
			     unsigned long *done)
{
	DECLARE_BITMAP(dirty, HMIRROR_PT_MAX_BATCH);
	unsigned long need = HMM_PFN_REQ_FAULT |
			     (req->write ? HMM_PFN_REQ_WRITE : 0);
	u64 window_end = hmirror_fault_window_end(ctx, req);
	struct hmirror_ctx_stats *st = &ctx->stats;
	struct hmirror_pt_cache c = { };
	struct mm_struct *mm = ctx->mm;
	struct hmm_range range = {
		.notifier = &ctx->hmm_sub,
		.start = req->start,
		.hmm_pfns = pfns,
		.pfn_flags_mask = HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE,
		/* This device's memory is mapped where it is. */
		.dev_private_owner = ctx->hdev,
	};
	bool ahead_optional = false;
	unsigned long i, n, run = 0, committed;
	u64 conflict;
	int ret;

	/* Pairs with hmirror_fault_hmm_enable(): the notifier is in place. */
	if (!smp_load_acquire(&ctx->hmm_registered))
		return -EINVAL;
	if (!mmget_not_zero(mm))
		return -ESRCH;
	for (;;) {
		if (signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		range.notifier_seq = mmu_interval_read_begin(range.notifier);
		if (mmap_read_lock_killable(mm)) {
			ret = -EINTR;
			break;
		}
		n = hmirror_fault_span(mm, req->start, req->npages, window_end);
		/* Like GUP: the run up to the first page it may not access. */
		run = hmirror_fault_accessible(mm, req->start, req->npages,
					       req->write);
		if (!run) {
			mmap_read_unlock(mm);
			ret = -EFAULT;
			break;
		}
		if (run < req->npages)
			n = run;
		range.end = req->start + (n << PAGE_SHIFT);
		/* The device's run must be faulted; the window may be. */
		for (i = 0; i < n; i++)
			pfns[i] = i < req->npages || !ahead_optional ? need : 0;
		if (hmirror_range_uffd_armed(mm, range.start, range.end))
			ret = -EFAULT;
		else
			ret = hmm_range_fault(&range);
		mmap_read_unlock(mm);
		if (ret == -EBUSY) {
			atomic64_inc(&st->retries_busy);
			trace_hmirror_fault_retry(ctx->id, req->start, "busy");
			continue;
		}
		if ((ret == -EFAULT || ret == -EPERM) && n > req->npages &&
		    !ahead_optional) {
			/*
			 * Maybe only an ahead page cannot be faulted: try
			 * again with the window optional, so it never fails
			 * the device's run.
			 */
			ahead_optional = true;
			continue;
		}
		if (ret)
			break;

		for (i = 0; i < n; i++)
			pages[i] = pfns[i] & HMM_PFN_VALID ?
				   hmm_pfn_to_page(pfns[i]) : NULL;
		ret = hmirror_fault_hmm_unshare(ctx, req, pfns, pages, n);
		if (ret == -EAGAIN)
			continue;
		if (ret)
			break;
		ret = hmirror_pt_cache_fill(&ctx->pt, &c, range.start,
					    range.end);
		if (ret)
			break;
		bitmap_zero(dirty, n);
		mutex_lock(&ctx->pt.lock);
		spin_lock(&ctx->hmm_seq_lock);
		if (mmu_interval_read_retry(range.notifier, range.notifier_seq))
			ret = -EAGAIN;
		else
			ret = hmirror_fault_hmm_commit(ctx, &c, req->start, pfns,
						       pages, n, req->write,
						       &committed, dirty,
						       &conflict);
		spin_unlock(&ctx->hmm_seq_lock);
		ret = hmirror_fault_resolve_conflict(ctx, ret, conflict);
		mutex_unlock(&ctx->pt.lock);
		hmirror_fault_hmm_dirty(pages, n, dirty);
		if (ret == -EAGAIN) {
			atomic64_inc(&st->retries_stale);
			trace_hmirror_fault_retry(ctx->id, req->start, "seq");
			continue;
		}
		if (!ret) {
			hmirror_fault_count(st, req, committed);
			*done = min_t(unsigned long, run, req->npages);
		}
		break;
	}
	hmirror_pt_cache_drain(&ctx->pt, &c);
	mmput(mm);
	return ret;
}

#if IS_ENABLED(CONFIG_DEVICE_PRIVATE)
/* Pages made exclusive at a time. */
#define HMIRROR_EXCL_CHUNK	64
#define HMIRROR_EXCL_TRIES	8

/*
 * make_device_exclusive_range() refuses large folios (a tail page, or a
 * folio still mapped elsewhere once one page is exclusive): split the
 * PMD-mapped THPs of [start, end) first.  migrate_vma_setup() splits what
 * it collects; nothing is migrated (no destination), finalize puts every
 * page back.  A folio mapped by PTEs already stays large.  mmap_lock held.
 */
static void hmirror_exclusive_split(struct mm_struct *mm, u64 start, u64 end)
{
	unsigned long src[HMIRROR_EXCL_CHUNK], dst[HMIRROR_EXCL_CHUNK] = { };
	struct vm_area_struct *vma;

	/* VMA by VMA: a chunk may cross from one into the next. */
	while (start < end && (vma = vma_lookup(mm, start))) {
		struct migrate_vma args = {
			.vma = vma,
			.src = src,
			.dst = dst,
			.start = start,
			.end = min_t(u64, end, vma->vm_end),
			.flags = MIGRATE_VMA_SELECT_SYSTEM,
		};

		if (vma_is_anonymous(vma) && !migrate_vma_setup(&args))
			migrate_vma_finalize(&args);
		start = args.end;
	}
}

/*
 * Bring [start, end) to the state make_device_exclusive_range() leaves
 * alone: THPs split, COW broken, pages present and writable, an earlier
 * grant revoked.  All of that invalidates, so it happens before the
 * attempt is tracked.  mmap_lock held.
 */
static int hmirror_exclusive_settle(struct mm_struct *mm, u64 start, u64 end,
				    struct page **pages)
{
	unsigned long i, n = (end - start) >> PAGE_SHIFT;
	long got;

	hmirror_exclusive_split(mm, start, end);
	got = get_user_pages_remote(mm, start, n, FOLL_WRITE | FOLL_SPLIT_PMD,
				    pages, NULL);
	if (got < 0)
		return got;
	for (i = 0; i < got; i++)
		put_page(pages[i]);
	return got == n ? 0 : -EFAULT;
}

/* Make [start, end) exclusive and map it for the device. */
static int hmirror_exclusive_chunk(struct hmirror_ctx *ctx,
				   struct hmirror_pt_cache *c, u64 start,
				   u64 end)
{
	unsigned long i, n = (end - start) >> PAGE_SHIFT;
	struct page *pages[HMIRROR_EXCL_CHUNK];
	struct hmirror_fault_range f;
	struct mm_struct *mm = ctx->mm;
	int ret = -EBUSY, tries, got;
	u64 conflict = 0;

	for (tries = 0; tries < HMIRROR_EXCL_TRIES && ret == -EBUSY; tries++) {
		if (mmap_read_lock_killable(mm))
			return -EINTR;
		ret = hmirror_exclusive_settle(mm, start, end, pages);
		mmap_read_unlock(mm);
		if (ret)
			return ret;
		hmirror_mirror_fault_begin(&ctx->mirror, &f, start, end);
		ret = hmirror_mirror_wait_inactive(ctx, &f);
		if (ret) {
			hmirror_mirror_fault_end(&ctx->mirror, &f);
			return ret;
		}
		if (mmap_read_lock_killable(mm)) {
			hmirror_mirror_fault_end(&ctx->mirror, &f);
			return -EINTR;
		}
		got = make_device_exclusive_range(mm, start, end, pages,
						  ctx->hdev);
		mmap_read_unlock(mm);
		if (got < 0) {
			hmirror_mirror_fault_end(&ctx->mirror, &f);
			return got;
		}
		ret = got == n ? 0 : -EFAULT;
		for (i = 0; i < got; i++)
			if (!pages[i])
				ret = -EBUSY;
		if (!ret)
			ret = hmirror_pt_cache_fill(&ctx->pt, c, start, end);
		if (!ret) {
			mutex_lock(&ctx->pt.lock);
			if (!hmirror_mirror_fault_valid(ctx, &f))
				ret = -EBUSY;
			else
				ret = hmirror_fault_commit(ctx, c, start, pages,
							   n, true, &conflict);
			ret = hmirror_fault_resolve_conflict(ctx, ret, conflict);
			mutex_unlock(&ctx->pt.lock);
			if (ret == -EAGAIN)
				ret = -EBUSY;
		}
		/* The device table holds its own references. */
		for (i = 0; i < got; i++) {
			if (pages[i]) {
				unlock_page(pages[i]);
				put_page(pages[i]);
			}
		}
		hmirror_mirror_fault_end(&ctx->mirror, &f);
	}
	return ret;
}

/**
 * hmirror_fault_exclusive - let the device alone access a range
 * @ctx: context, of the calling process
 * @start: page-aligned start
 * @npages: pages
 *
 * For device atomics: make_device_exclusive_range() replaces the CPU's
 * entries with ones whose next CPU touch revokes the device's access (an
 * MMU_NOTIFY_EXCLUSIVE invalidation, which clears the device's entries),
 * and the pages are mapped writable for the device under the fault
 * path's validity check.  Large folios are split first where the kernel
 * allows a module to (PMD-mapped THPs), which test_hmm does not do.
 *
 * Return: 0; -EBUSY when a page could not be made exclusive (a large
 * folio mapped by PTEs, a page locked by someone else) or invalidations
 * kept racing; -EFAULT when the range is not writable anonymous memory;
 * -EINTR on a fatal signal; -ESRCH when the mm is gone; -ENOMEM.
 */
int hmirror_fault_exclusive(struct hmirror_ctx *ctx, u64 start,
			    unsigned long npages)
{
	u64 end = start + ((u64)npages << PAGE_SHIFT), next;
	struct hmirror_pt_cache c = { };
	int ret = 0;

	if (!mmget_not_zero(ctx->mm))
		return -ESRCH;
	for (; start < end && !ret; start = next) {
		next = min_t(u64, end,
			     start + ((u64)HMIRROR_EXCL_CHUNK << PAGE_SHIFT));
		ret = hmirror_exclusive_chunk(ctx, &c, start, next);
	}
	hmirror_pt_cache_drain(&ctx->pt, &c);
	mmput(ctx->mm);
	return ret;
}
#endif

/* Faults of up to this many pages keep their page arrays on the stack. */
#define HMIRROR_FAULT_STACK_PAGES	16

/* A write to memory the process may read but not write: -EPERM. */
static int hmirror_fault_refine(struct hmirror_ctx *ctx,
				const struct hmirror_fault_req *req)
{
	struct vm_area_struct *vma;
	int ret = -EFAULT;

	if (!req->write || !mmget_not_zero(ctx->mm))
		return ret;
	if (!mmap_read_lock_killable(ctx->mm)) {
		vma = vma_lookup(ctx->mm, req->start);
		if (vma && (vma->vm_flags & VM_READ) &&
		    !(vma->vm_flags & VM_WRITE))
			ret = -EPERM;
		mmap_read_unlock(ctx->mm);
	}
	mmput(ctx->mm);
	return ret;
}

/**
 * hmirror_fault_service - make a range present for the device
 * @ctx: context (the caller's mm is the context's)
 * @req: range, access and fault-ahead window
 * @done: out: pages of the run (from @req->start) now mapped, on success;
 *	fewer than @req->npages when GUP stopped at a page it could not
 *	fault (the next call there fails); NULL if unwanted
 *
 * Return: 0; -EPERM for a write to memory mapped without write permission;
 * -EFAULT when the range cannot be accessed otherwise (or the mm is gone);
 * -EINTR on a signal; -ENOMEM; -EIO (dead device, or a platform that
 * cannot share pages with it) or -ENODEV (device removed): nothing is
 * committed for those.
 */
int hmirror_fault_service(struct hmirror_ctx *ctx,
			  const struct hmirror_fault_req *req,
			  unsigned long *done)
{
	struct hmirror_ctx_stats *st = &ctx->stats;
	unsigned long max = req->npages + req->ahead, mapped = 0;
	/* Small faults, the common ones, allocate nothing. */
	struct page *stack_pages[HMIRROR_FAULT_STACK_PAGES];
	unsigned long stack_pfns[HMIRROR_FAULT_STACK_PAGES];
	bool small = max <= HMIRROR_FAULT_STACK_PAGES;
	unsigned long *pfns = small ? stack_pfns : NULL;
	struct page **pages = small ? stack_pages : NULL;
	u64 t0 = local_clock();
	int ret;

	if (!req->npages || req->npages > HMIRROR_FAULT_NPAGES_MAX ||
	    req->ahead > HMIRROR_FAULT_NPAGES_MAX)
		return -EINVAL;
	if (!small)
		pages = kvmalloc_array(max, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	atomic64_inc(&st->faults);
	trace_hmirror_fault_begin(ctx->id, req->start, req->npages, req->ahead,
				  req->write);
	if (READ_ONCE(ctx->backend) == DRM_HMIRROR_BACKEND_HMM) {
		if (!small)
			pfns = kvmalloc_array(max, sizeof(*pfns), GFP_KERNEL);
		ret = pfns ? hmirror_fault_hmm(ctx, req, pfns, pages, &mapped) :
			     -ENOMEM;
		if (!small)
			kvfree(pfns);
	} else {
		ret = hmirror_fault_gup(ctx, req, pages, &mapped);
	}
	if (done)
		*done = mapped;
	if (!small)
		kvfree(pages);

	if (ret == -EINTR || ret == -ERESTARTSYS) {
		ret = -EINTR;
		atomic64_inc(&st->interrupted);
	} else if (ret && ret != -ENOMEM && ret != -EIO && ret != -ENODEV) {
		/* The process cannot access the range that way. */
		if (ret != -EPERM)
			ret = hmirror_fault_refine(ctx, req);
		atomic64_inc(&st->efaults);
	}
	t0 = local_clock() - t0;
	atomic64_add(t0, &st->service_ns);
	trace_hmirror_fault_end(ctx->id, req->start, ret, t0);
	return ret;
}
