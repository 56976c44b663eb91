#!/usr/bin/env python3
# Regenerate tests/mutants/*.patch: each mutant is a few (file, old, new)
# edits of the driver as it is now.  Run after moving driver code:
#   tests/mutants/mkmutants.py .
import difflib, os, sys
top = sys.argv[1]
M = []
# kernel: the flavour whose guest can catch it ("debug": code that only
# DEVICE_PRIVATE kernels build, run-mutants' device-memory scenario).
def mutant(name, why, edits, kernel="stock"):
    M.append((name, why, edits, kernel))

mutant("skip-tlb-invalidation",
"hmirror_mirror_zap() clears the device page-table entries but never\ninvalidates the device TLB: the device keeps using stale translations\nof pages that are released.",
[("driver/hmirror_mirror.c",
"""		if (hmirror_hw_tlb_inval(ctx->hdev, ctx->id, from, next) &&
		    hmirror_pt_zap_bury(&ctx->zap, &ctx->hdev->graveyard))
			continue;
		hmirror_pt_zap_release(&ctx->pt, &ctx->zap);""",
"""		/* MUTANT: no device TLB invalidation */
		hmirror_pt_zap_release(&ctx->pt, &ctx->zap);""")])

mutant("shootdown-ignores-busy-engines",
"A TLB shootdown returns as soon as it is published, without waiting for\nan engine that is in the middle of an access with an older epoch: that\naccess may still use a translation of the pages being released.",
[("driver/hmirror_hw.c",
"""		while (hmirror_sd_holds(readq(&hdev->sd->dev_seen[qi]), e)) {""",
"""		/* MUTANT: busy engines are not waited for */
		while (!e && hmirror_sd_holds(readq(&hdev->sd->dev_seen[qi]), e)) {""")])

mutant("skip-stale-marking",
"An invalidation no longer marks overlapping in-flight faults stale: a\nfault whose pages were invalidated between its GUP and its commit (the\ninvalidation over by then) commits the old pages.",
[("driver/hmirror_mirror.c",
"""	lockdep_assert_held(&m->inv_lock);
	list_for_each_entry(f, &m->faults, link)
		if (everything || (f->start < end && start < f->end))
			f->stale = true;""",
"""	lockdep_assert_held(&m->inv_lock);
	/* MUTANT: faults are never marked stale */
	list_for_each_entry(f, &m->faults, link)
		if (everything && !f)
			f->stale = true;""")])

mutant("commit-without-validity-check",
"The fault path commits its pages without checking that no invalidation\ntouched the range since the fault's wait.",
[("driver/hmirror_mirror.c",
"""	spin_lock(&m->inv_lock);
	valid = !f->stale && !m->released &&
		!hmirror_active_overlaps(m, f->start, f->end);
	spin_unlock(&m->inv_lock);
	return valid;""",
"""	spin_lock(&m->inv_lock);
	valid = !m->released;	/* MUTANT: stale and active ignored */
	spin_unlock(&m->inv_lock);
	return valid;""")])

mutant("read-fault-mapped-writable",
"Every device leaf is written writable, read faults included: the device\ncan write pages the process may only read (and COW-shared ones).",
[("driver/hmirror_pt.c",
"""	WRITE_ONCE(t->entries[idx], dma | flags | HMIRROR_PTE_VALID |
				    (write ? HMIRROR_PTE_WRITE : 0));""",
"""	WRITE_ONCE(t->entries[idx], dma | flags | HMIRROR_PTE_VALID |
				    HMIRROR_PTE_WRITE);	/* MUTANT */""")])

mutant("ignore-dead-device",
"hmirror_hw_status() never reports a dead device: the driver keeps\nsubmitting to, and waiting for, a device it declared dead.",
[("driver/hmirror_hw.c",
"""	if (test_bit(HMIRROR_F_UNPLUGGED, &hdev->flags))
		return -ENODEV;
	if (test_bit(HMIRROR_F_DEAD, &hdev->flags))
		return -EIO;
	return 0;""",
"""	if (test_bit(HMIRROR_F_UNPLUGGED, &hdev->flags))
		return -ENODEV;
	/* MUTANT: a dead device is used like a live one */
	return 0;""")])

mutant("huge-leaf-partial-invalidation-kept",
"An invalidation that covers only part of a 2 MiB device leaf leaves the\nleaf in place: the device keeps the whole huge page after a THP split,\na partial munmap or mprotect.",
[("driver/hmirror_pt.c",
"""			if (!(e & HMIRROR_PTE_VALID))
				continue;
			if (z->n == z->max) {""",
"""			if (!(e & HMIRROR_PTE_VALID))
				continue;
			/* MUTANT: a huge leaf goes only if fully covered */
			if (huge && (va < start || va + PT_SPAN(level) > end))
				continue;
			if (z->n == z->max) {""")])

mutant("unlock-after-lock-drop",
"After get_user_pages_remote() the fault path unlocks mmap_lock even when\nGUP dropped it (locked == 0): an unlock of a lock it does not hold.",
[("driver/hmirror_fault.c",
"""		if (locked)
			mmap_read_unlock(mm);
		else
			atomic64_inc(&st->lock_drops);""",
"""		mmap_read_unlock(mm);	/* MUTANT: locked not checked */
		if (!locked)
			atomic64_inc(&st->lock_drops);""")])

mutant("fault-ahead-untracked",
"A fault registers only the device's run as in flight, not its\nfault-ahead window, yet commits the window too: an invalidation of an\nahead page between GUP and commit goes unnoticed.",
[("driver/hmirror_fault.c",
"""	/* Everything the fault may commit is in flight from now on. */
	hmirror_mirror_fault_begin(&ctx->mirror, &f, req->start, window_end);""",
"""	/* MUTANT: only the run is in flight */
	hmirror_mirror_fault_begin(&ctx->mirror, &f, req->start,
				   req->start + (req->npages << PAGE_SHIFT));""")])

mutant("va-width-unchecked",
"User ranges are checked against TASK_SIZE only, not the device's address\nwidth: addresses above 2^48 reach a 48-bit device truncated.",
[("driver/hmirror_ctx.c",
"""	if (addr >= hdev->va_end || len > hdev->va_end - addr)
		return -EFAULT;
	return 0;""",
"""	/* MUTANT: the device's va_bits are not checked */
	return 0;""")])

mutant("nonblock-start-fails",
"A non-blockable invalidation is refused with -EAGAIN although the\nnotifier implements invalidate_range_end (the contract forbids it).",
[("driver/hmirror_mirror.c",
"""		queue_work(system_unbound_wq, &m->deferred_work);
		atomic64_inc(&m->stats.nonblock_deferred);
		atomic64_inc(&ctx->hdev->nonblock_deferred);
		trace_hmirror_inv_end(ctx->id, range->start, range->end, 1, 0);
		return 0;""",
"""		queue_work(system_unbound_wq, &m->deferred_work);
		atomic64_inc(&m->stats.nonblock_deferred);
		atomic64_inc(&ctx->hdev->nonblock_deferred);
		trace_hmirror_inv_end(ctx->id, range->start, range->end, 1, 0);
		return -EAGAIN;	/* MUTANT */""")])

mutant("dead-releases-without-quiescence",
"The graveyard starts closed: whatever a dead device could still reach (a\nzap whose TLB flush failed, the tables of a context closed or unplugged\nmeanwhile) is released at once, without the device's proof that it\nstopped DMA.",
[("driver/hmirror_pt.c",
"""	g->pages = 0;
	g->leaked = 0;
}""",
"""	g->pages = 0;
	g->leaked = 0;
	g->closed = true;	/* MUTANT: nothing is ever kept */
}""")])

mutant("deadline-counts-fault-service",
"The progress deadline runs while a fault is with the driver: a fault\nwhose service takes longer than 10 s gets the device declared dead.",
[("driver/hmirror_hw.c",
"""	if (progress != q->progress_seen || q->faults_held || !q->inflight) {""",
"""	/* MUTANT: faults held by the driver do not excuse the device */
	if (progress != q->progress_seen || !q->inflight) {""")])

mutant("fault-service-inside-device-section",
"The command's fault is serviced inside drm_dev_enter(): removal waits\nfor a task blocked in GUP.",
[("driver/hmirror_exec.c",
"""		drm_dev_exit(idx);
		ret = hmirror_exec_fault(ctx, cmd, &f, res);
		if (ret && !fault_err)
			fault_err = ret;
		if (!drm_dev_enter(&hdev->drm, &idx)) {""",
"""		ret = hmirror_exec_fault(ctx, cmd, &f, res);	/* MUTANT: entered */
		drm_dev_exit(idx);
		if (ret && !fault_err)
			fault_err = ret;
		if (!drm_dev_enter(&hdev->drm, &idx)) {""")])

mutant("fences-wait-for-every-context",
"NOPs and FENCEs of SUBMIT_NOP carry context 0: a FENCE waits for every\nearlier command of the engine, other contexts' stalled ones included.",
[("driver/hmirror_ioctl.c",
"""		cmds[i] = (struct hmirror_hw_cmd){ .opcode = HMIRROR_OP_NOP,
						   .ctx = ctx->id };""",
"""		cmds[i] = (struct hmirror_hw_cmd){ .opcode = HMIRROR_OP_NOP,
						   .ctx = 0 * ctx->id };	/* MUTANT */""")])

mutant("forgotten-fault-left-unanswered",
"A waiter that gives up (fatal signal) with a fault handed to it never\nanswers it: the command stays parked in the device forever.",
[("driver/hmirror_hw.c",
"""	if (cancel && !hmirror_hw_status(hdev))
		__hmirror_hw_answer(hdev, qi, &w->fault, HMIRROR_FAULT_CANCEL);""",
"""	/* MUTANT: the fault is never answered */""")])

mutant("hmm-writable-page-left-clean",
"The hmm backend maps a shared page writable for the device without\ndirtying it: reclaim can drop what the device wrote.",
[("driver/hmirror_fault.c",
"""	for_each_set_bit(i, dirty, n) {
		set_page_dirty_lock(pages[i]);
		folio_put(page_folio(pages[i]));
	}""",
"""	for_each_set_bit(i, dirty, n)	/* MUTANT: never dirtied */
		folio_put(page_folio(pages[i]));""")])

mutant("prefetch-stops-short",
"PREFETCH takes the fault service's first batch for the whole range: a\nrange GUP maps only part of (a hole, a guard page) returns 0 with pages\nnever mapped.",
[("driver/hmirror_ioctl.c",
"""		if (!done)
			return -EFAULT;
		req.start += (u64)done << PAGE_SHIFT;""",
"""		if (!done)
			return -EFAULT;
		done = req.npages;	/* MUTANT: partial batches ignored */
		req.start += (u64)done << PAGE_SHIFT;""")])

mutant("devmem-ksm-page-migrated",
"MIGRATE moves KSM pages into device memory too (6.12's migrate_vma_*()\nlets it): ksmd's stable tree then points at a page the CPU cannot read.",
[("driver/hmirror_devmem.c",
"""		if (spage && folio_test_ksm(page_folio(spage)))
			continue;""",
"""		/* MUTANT: KSM pages migrate like any other */"""),
("driver/hmirror_devmem.c",
"""		if (way->to_device && (vma->vm_flags & VM_MERGEABLE))
			continue;""",
"""		/* MUTANT: mergeable VMAs collected */""")], kernel="debug")

mutant("devmem-eviction-without-copy",
"Eviction never has the device copy the pages out: with device memory\nfull nothing can be evicted, so a migration finds no room.",
[("driver/hmirror_devmem.c",
"""	bool copy = !hmirror_hw_status(dm->hdev);""",
"""	bool copy = vma && !hmirror_hw_status(dm->hdev);	/* MUTANT */""")],
kernel="debug")

mutant("device-tables-never-reused",
"Empty device page-table pages are freed instead of kept for the next\nfault: every fault on a fresh mapping allocates (and zeroes) a table at\nevery level again, the cost the spare tables took off the fault path.",
[("driver/hmirror_pt.c",
"""	pt->spare_max = HMIRROR_PT_SPARE_MAX;""",
"""	/* MUTANT: no spare tables */
	pt->spare_max = 0;""")])

outdir = os.path.join(top, "tests/mutants")
patches, errors = {}, []
for name, why, edits, kernel in M:
    out = ["Mutant: " + why + "\n" + "Kernel: " + kernel + "\n\n"]
    byfile = {}
    for fn, old, new in edits:
        byfile.setdefault(fn, []).append((old, new))
    for fn, pairs in byfile.items():
        src = open(os.path.join(top, fn)).read()
        dst = src
        for old, new in pairs:
            n = dst.count(old)
            if n != 1:
                errors.append("%s: %s: %d matches" % (name, fn, n))
            dst = dst.replace(old, new)
        d = difflib.unified_diff(src.splitlines(True), dst.splitlines(True),
                                 "a/" + fn, "b/" + fn, n=3)
        out.append("".join(d))
    patches[name] = "".join(out)
# Nothing is replaced unless every mutant still applies.
if errors:
    sys.exit("\n".join(errors))
for f in os.listdir(outdir):
    if f.endswith(".patch"):
        os.remove(os.path.join(outdir, f))
for name, text in patches.items():
    open(os.path.join(outdir, name + ".patch"), "w").write(text)
    print(name)
