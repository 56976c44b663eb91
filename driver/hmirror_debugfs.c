// SPDX-License-Identifier: GPL-2.0
/*
 * hmirror: debugfs.  /sys/kernel/debug/accel/<minor>/hmirror_counters shows
 * the device's and the driver's counters and every live context's fault
 * and invalidation figures, for users without the ioctl tools.
 */
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/seq_file.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <drm/drm_debugfs.h>
#include <drm/drm_drv.h>
#include <drm/drm_file.h>

#include "hmirror.h"
#include "hmirror_ctx.h"
#include "hmirror_debugfs.h"
#include "hmirror_devmem.h"

/**
 * DOC: Observability
 *
 * Tracepoints ``hmirror:hmirror_fault_begin``, ``_fault_end``,
 * ``_fault_retry`` (cause: stale, conflict, wait, busy, seq),
 * ``hmirror:hmirror_inv_begin`` and ``_inv_end`` (with nanoseconds), for
 * ``trace-cmd record -e hmirror`` or ``perf record -e 'hmirror:*'``.  The
 * debugfs file shows the driver's and the device's counters and every live
 * context's faults, retries by cause, lock drops, invalidations and times.
 */

static void hmirror_debugfs_device(struct seq_file *m,
				   struct hmirror_device *hdev)
{
	static const char * const vec[] = { "cq", "fault", "ctrl" };
	struct hmirror_devmem_stats dm;
	int v, idx;

	seq_printf(m, "state: %s%s%s\n",
		   test_bit(HMIRROR_F_DEAD, &hdev->flags) ? "dead: " : "alive",
		   test_bit(HMIRROR_F_DEAD, &hdev->flags) ? hdev->dead_reason : "",
		   test_bit(HMIRROR_F_QUIESCED, &hdev->flags) ?
		   " (confirmed it stopped DMA)" : "");
	seq_printf(m, "kept_pages: %lu\nnonblock_deferred: %lld\n",
		   hmirror_pt_graveyard_pages(&hdev->graveyard),
		   atomic64_read(&hdev->nonblock_deferred));
	seq_printf(m, "commands_submitted: %lld\ncommands_completed: %lld\n",
		   atomic64_read(&hdev->cmds_submitted),
		   atomic64_read(&hdev->cmds_completed));
	seq_printf(m, "doorbells: %lld\ndoorbells_skipped: %lld\n",
		   atomic64_read(&hdev->doorbells),
		   atomic64_read(&hdev->doorbells_skipped));
	seq_printf(m, "shootdowns: %lld\nshootdown_fallbacks: %lld\n",
		   atomic64_read(&hdev->shootdowns),
		   atomic64_read(&hdev->shootdown_fallbacks));
	hmirror_devmem_stats(hdev, &dm);
	seq_printf(m, "device_memory: %llu pages, %llu used; to device %llu, to system %llu, evicted %llu, lost %llu\n",
		   dm.pages, dm.used, dm.to_device, dm.to_system, dm.evicted,
		   dm.lost);
	seq_printf(m, "faults_orphaned: %lld\ninject_leave_armed: %d\n",
		   atomic64_read(&hdev->faults_orphaned),
		   atomic_read(&hdev->inject_leave));
	for (v = 0; v < HMIRROR_NUM_VECTORS; v++)
		seq_printf(m, "irqs_%s: %lld\n", vec[v],
			   atomic64_read(&hdev->irqs[v]));
	seq_printf(m, "live_contexts: %d\n", atomic_read(&hdev->live_contexts));

	if (!drm_dev_enter(&hdev->drm, &idx))
		return;
	seq_printf(m, "dev_commands: %llu\ndev_faults: %llu\ndev_replays: %llu\n",
		   readq(&hdev->regs->cnt_commands),
		   readq(&hdev->regs->cnt_faults),
		   readq(&hdev->regs->cnt_replays));
	seq_printf(m, "dev_cancels: %llu\ndev_tlb_hits: %llu\ndev_tlb_misses: %llu\n",
		   readq(&hdev->regs->cnt_cancels),
		   readq(&hdev->regs->cnt_tlb_hits),
		   readq(&hdev->regs->cnt_tlb_misses));
	seq_printf(m, "dev_tlb_invals: %llu\ndev_shootdowns: %llu\n",
		   readq(&hdev->regs->cnt_tlb_invals),
		   readq(&hdev->regs->cnt_shootdowns));
	seq_printf(m, "dev_pages_walked: %llu\ndev_errors: %u\n",
		   readq(&hdev->regs->cnt_pages_walked),
		   readl(&hdev->regs->err_count));
	drm_dev_exit(idx);
}

static void hmirror_debugfs_ctx(struct seq_file *m, struct hmirror_ctx *ctx)
{
	unsigned int i;

	seq_printf(m, "context %u: backend=%s fault_ahead=%u mapped=%lu tables=%lu\n",
		   ctx->id, ctx->backend ? "hmm" : "gup", ctx->fault_ahead,
		   READ_ONCE(ctx->pt.mapped), READ_ONCE(ctx->pt.tables));
	/* The STATS ioctl's counters, by the same names. */
	for (i = 0; i < hmirror_ctx_num_counters; i++)
		seq_printf(m, "  %s: %llu\n", hmirror_ctx_counters[i].name,
			   hmirror_ctx_counter_read(ctx, &hmirror_ctx_counters[i]));
}

static int hmirror_debugfs_counters(struct seq_file *m, void *data)
{
	struct drm_debugfs_entry *entry = m->private;
	struct hmirror_device *hdev = to_hmirror(entry->dev);
	struct hmirror_ctx *ctx;

	hmirror_debugfs_device(m, hdev);
	mutex_lock(&hdev->ctx_list_lock);
	list_for_each_entry(ctx, &hdev->ctx_list, link)
		hmirror_debugfs_ctx(m, ctx);
	mutex_unlock(&hdev->ctx_list_lock);
	return 0;
}

/*
 * Fault injection for tests.  "dead" declares the device dead, as a
 * timeout would, while the model is still running, so tests can check that
 * a device declared dead stops touching memory.  "leave-after-fault" makes
 * the next waiter handed a fault leave as if a fatal signal had come just
 * then (its command ends with -EINTR): the abandoned fault must still be
 * answered.  "none" disarms what is armed and not yet used.
 */
static ssize_t hmirror_debugfs_inject(struct file *file, const char __user *ubuf,
				      size_t len, loff_t *ppos)
{
	struct hmirror_device *hdev = file->private_data;
	char buf[24] = { };

	if (len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	if (hmirror_hw_status(hdev) == -ENODEV)
		return -ENODEV;
	if (sysfs_streq(buf, "dead"))
		hmirror_hw_mark_dead(hdev, "declared dead through debugfs");
	else if (sysfs_streq(buf, "leave-after-fault"))
		atomic_inc(&hdev->inject_leave);
	else if (sysfs_streq(buf, "none"))
		atomic_set(&hdev->inject_leave, 0);
	else
		return -EINVAL;
	return len;
}

static const struct file_operations hmirror_inject_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = hmirror_debugfs_inject,
	.llseek = noop_llseek,
};

void hmirror_debugfs_init(struct hmirror_device *hdev)
{
	drm_debugfs_add_file(&hdev->drm, "hmirror_counters",
			     hmirror_debugfs_counters, NULL);
	debugfs_create_file("hmirror_inject", 0200, hdev->drm.debugfs_root,
			    hdev, &hmirror_inject_fops);
}
