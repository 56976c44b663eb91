// SPDX-License-Identifier: GPL-2.0
/*
 * hmirror: a character device speaking the ioctl ABI of the kernel's
 * test_hmm module (lib/test_hmm_uapi.h), served by the real device, so
 * the kernel's unmodified hmm-tests run against it.
 *
 * READ and WRITE are device COPY commands between the target range and
 * the caller's bounce buffer; "faults" counts the device's fault records
 * on the target range, and like test_hmm a fault there is serviced through
 * the end of the request, so one fault covers a whole buffer.  SNAPSHOT
 * reports the CPU page table as hmm_range_fault() sees it without
 * faulting, like test_hmm.  Migration and exclusive access use the
 * device's memory and make_device_exclusive_range(), which need
 * DEVICE_PRIVATE (Debian's kernel lacks it: they answer -EOPNOTSUPP).
 *
 * /dev/hmm_dmirror0 and /dev/hmm_dmirror1 (hmm-tests wants two units) are
 * served by the first two hmirror devices, or both by one; each open is a
 * context of its own.
 */
#include <linux/fs.h>
#include <linux/hmm.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/pgtable.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <drm/drm_drv.h>
#include <drm/drm_print.h>

#include "hmirror.h"
#include "hmirror_compat.h"
#include "hmirror_ctx.h"
#include "hmirror_devmem.h"
#include "hmirror_exec.h"
#include "hmirror_fault.h"
#include "uapi/hmirror.h"

/**
 * DOC: The compat device
 *
 * ``/dev/hmm_dmirror0`` and ``1`` (served by the first and the second
 * hmirror device, or both by the first when there is one; each open is a
 * context of its own, using the HMM backend like test_hmm; root only, mode
 * 0600, like test_hmm's) speak test_hmm's ioctl ABI so the kernel's
 * unmodified ``hmm-tests`` run against the real device: ``READ``/``WRITE``
 * are device COPY commands between the target range and the caller's
 * buffer (a fault on the target is serviced through the end of the
 * request and counted once, and only when its service succeeded:
 * test_hmm's notion of a fault); ``SNAPSHOT`` reports the CPU page table
 * through ``hmm_range_fault`` without faulting (this device's memory as
 * ``DEV_PRIVATE_LOCAL``, another device's as not present);
 * ``MIGRATE_TO_DEV`` migrates the range into the device's memory, then
 * has the device read it back, and answers ``-ENOENT`` when a page did not
 * end up there (shared memory, another device's); ``MIGRATE_TO_SYS``
 * brings it back; ``RELEASE`` evicts the whole device memory;
 * ``EXCLUSIVE`` grants the device exclusive access (and reads the range
 * back) and ``CHECK_EXCLUSIVE`` answers ``-EPERM`` while the device still
 * maps a page of the range.  Without ``DEVICE_PRIVATE`` (Debian's stock
 * kernel) or device memory, those answer ``-EOPNOTSUPP``.  The file maps
 * zeroed pages like test_hmm's.
 */

/* The test_hmm ABI: facts of lib/test_hmm_uapi.h. */
struct hmm_dmirror_cmd {
	__u64 addr;
	__u64 ptr;
	__u64 npages;
	__u64 cpages;
	__u64 faults;
};

#define HMM_DMIRROR_READ		_IOWR('H', 0x00, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_WRITE		_IOWR('H', 0x01, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_MIGRATE_TO_DEV	_IOWR('H', 0x02, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_MIGRATE_TO_SYS	_IOWR('H', 0x03, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_SNAPSHOT		_IOWR('H', 0x04, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_EXCLUSIVE		_IOWR('H', 0x05, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_CHECK_EXCLUSIVE	_IOWR('H', 0x06, struct hmm_dmirror_cmd)
#define HMM_DMIRROR_RELEASE		_IOWR('H', 0x07, struct hmm_dmirror_cmd)

#define HMM_DMIRROR_PROT_ERROR		0xff
#define HMM_DMIRROR_PROT_NONE		0x00
#define HMM_DMIRROR_PROT_READ		0x01
#define HMM_DMIRROR_PROT_WRITE		0x02
#define HMM_DMIRROR_PROT_PMD		0x04
#define HMM_DMIRROR_PROT_PUD		0x08
#define HMM_DMIRROR_PROT_ZERO		0x10
#define HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL	0x20

#define COMPAT_UNITS		2
/* The compat nodes run their copies on the first engine. */
#define COMPAT_QUEUE		(HMIRROR_QUEUE_MGMT + 1)
#define COMPAT_MAX_PAGES	(DRM_HMIRROR_EXEC_MAX_LEN >> PAGE_SHIFT)
#define COMPAT_SNAP_CHUNK	64

/**
 * struct hmirror_compat_unit - one /dev/hmm_dmirrorN
 * @misc: the character device
 * @name: its name
 * @hdev: serving device, NULL when none
 */
struct hmirror_compat_unit {
	struct miscdevice misc;
	char name[16];
	struct hmirror_device *hdev;
};

/* Serialises add/remove (taken before misc_mtx); open does not take it. */
static DEFINE_MUTEX(hmirror_compat_lock);
/*
 * Protects the units' @hdev: an open takes its device reference under it,
 * and a device that stops serving a unit clears or passes it under it, so
 * an open never references a device past its removal.
 */
static DEFINE_SPINLOCK(hmirror_compat_hdev_lock);

static void hmirror_compat_set_hdev(struct hmirror_compat_unit *u,
				    struct hmirror_device *hdev)
{
	spin_lock(&hmirror_compat_hdev_lock);
	u->hdev = hdev;
	spin_unlock(&hmirror_compat_hdev_lock);
}

static struct hmirror_compat_unit hmirror_compat_units[COMPAT_UNITS];

/**
 * struct hmirror_compat_file - an open unit
 * @ctx: its context
 * @hdev: device, referenced while the file is open
 */
struct hmirror_compat_file {
	struct hmirror_ctx *ctx;
	struct hmirror_device *hdev;
};

static int hmirror_compat_open(struct inode *inode, struct file *file)
{
	struct hmirror_compat_unit *unit =
		container_of(file->private_data, struct hmirror_compat_unit, misc);
	struct hmirror_compat_file *cf;
	struct hmirror_device *hdev;
	int ret = 0, idx;

	cf = kzalloc(sizeof(*cf), GFP_KERNEL);
	if (!cf)
		return -ENOMEM;
	/*
	 * misc_open() holds misc_mtx, which hmirror_compat_add() takes after
	 * its own lock: only the spinlock here.
	 */
	spin_lock(&hmirror_compat_hdev_lock);
	hdev = unit->hdev;
	if (hdev)
		drm_dev_get(&hdev->drm);
	spin_unlock(&hmirror_compat_hdev_lock);
	if (!hdev) {
		ret = -ENODEV;
		goto err_free;
	}
	if (!drm_dev_enter(&hdev->drm, &idx)) {
		ret = -ENODEV;
		goto err_put;
	}
	cf->ctx = hmirror_ctx_create(hdev);
	drm_dev_exit(idx);
	if (IS_ERR(cf->ctx)) {
		ret = PTR_ERR(cf->ctx);
		goto err_put;
	}
	/* Like test_hmm, all of it through hmm_range_fault(). */
	ret = hmirror_fault_hmm_enable(cf->ctx);
	if (ret) {
		hmirror_ctx_destroy(cf->ctx);
		goto err_put;
	}
	WRITE_ONCE(cf->ctx->backend, DRM_HMIRROR_BACKEND_HMM);
	cf->hdev = hdev;
	file->private_data = cf;
	return 0;

err_put:
	drm_dev_put(&hdev->drm);
err_free:
	kfree(cf);
	return ret;
}

static int hmirror_compat_release(struct inode *inode, struct file *file)
{
	struct hmirror_compat_file *cf = file->private_data;

	hmirror_ctx_destroy(cf->ctx);
	drm_dev_put(&cf->hdev->drm);
	kfree(cf);
	return 0;
}

/**
 * struct hmirror_compat_count - test_hmm's notion of a fault
 * @start: the target range of a READ or WRITE
 * @end: its end
 * @faults: faults on the target that were serviced
 *
 * test_hmm faults the whole rest of the request in one go and counts that
 * once: so does a serviced fault on the target here.
 */
struct hmirror_compat_count {
	u64 start;
	u64 end;
	u64 faults;
};

static void hmirror_compat_serviced(struct hmirror_ctx *ctx,
				    const struct hmirror_fault_req *done,
				    int ret, void *arg)
{
	struct hmirror_compat_count *cnt = arg;
	struct hmirror_fault_req req = { .write = done->write };
	unsigned long mapped;

	if (ret || done->start < cnt->start || done->start >= cnt->end)
		return;
	cnt->faults++;
	/* Best effort: what fails here the device faults on, and is told. */
	req.start = done->start + ((u64)done->npages << PAGE_SHIFT);
	while (req.start < cnt->end) {
		req.npages = min_t(u64, (cnt->end - req.start) >> PAGE_SHIFT,
				   HMIRROR_FAULT_NPAGES_MAX);
		if (hmirror_fault_service(ctx, &req, &mapped) || !mapped)
			break;
		req.start += (u64)mapped << PAGE_SHIFT;
	}
}

/* READ: ptr <- addr; WRITE: addr <- ptr; by the device, engine 0. */
static int hmirror_compat_copy(struct hmirror_compat_file *cf,
			       struct hmm_dmirror_cmd *c, bool write)
{
	struct hmirror_ctx *ctx = cf->ctx;
	struct hmirror_compat_count cnt = { };
	struct hmirror_exec_result res = {
		.serviced = hmirror_compat_serviced,
		.arg = &cnt,
	};
	struct hmirror_hw_cpl cpl = { };
	struct hmirror_hw_cmd cmd = { .opcode = HMIRROR_OP_COPY };
	u64 len;
	int ret;

	if (!c->npages || c->npages > COMPAT_MAX_PAGES ||
	    !PAGE_ALIGNED(c->addr))
		return -EINVAL;
	len = c->npages << PAGE_SHIFT;
	ret = hmirror_user_range(cf->hdev, c->addr, len);
	if (!ret)
		ret = hmirror_user_range(cf->hdev, c->ptr, len);
	if (ret)
		return ret;
	if (c->addr < c->ptr + len && c->ptr < c->addr + len)
		return -EINVAL;
	cmd.len = len;
	cmd.src = write ? c->ptr : c->addr;
	cmd.dst = write ? c->addr : c->ptr;
	res.cpl = &cpl;
	cnt.start = c->addr;
	cnt.end = c->addr + len;

	ret = hmirror_exec(ctx, COMPAT_QUEUE, &cmd, &res);
	c->faults = cnt.faults;
	/* Like test_hmm: the pages done, also when the copy failed midway. */
	if (!ret)
		c->cpages = c->npages;
	else if (ret == -EFAULT || ret == -EINTR)
		c->cpages = min(cpl.result, len) >> PAGE_SHIFT;
	return ret;
}

static u8 hmirror_compat_prot(unsigned long entry)
{
	struct page *page;
	u8 prot;

	if (entry & HMM_PFN_ERROR)
		return HMM_DMIRROR_PROT_ERROR;
	if (!(entry & HMM_PFN_VALID))
		return HMM_DMIRROR_PROT_NONE;
	page = hmm_pfn_to_page(entry);
	/* Only this device's memory is returned (dev_private_owner). */
	if (is_device_private_page(page))
		prot = HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL;
	else
		prot = is_zero_pfn(page_to_pfn(page)) ? HMM_DMIRROR_PROT_ZERO : 0;
	prot |= entry & HMM_PFN_WRITE ? HMM_DMIRROR_PROT_WRITE :
					HMM_DMIRROR_PROT_READ;
	switch (hmm_pfn_to_map_order(entry) + PAGE_SHIFT) {
	case PMD_SHIFT:
		prot |= HMM_DMIRROR_PROT_PMD;
		break;
	case PUD_SHIFT:
		prot |= HMM_DMIRROR_PROT_PUD;
		break;
	}
	return prot;
}

/* The CPU's page table for [start, end), without faulting anything in. */
static int hmirror_compat_snap_chunk(struct hmirror_ctx *ctx, u64 start,
				     u64 end, u8 *out)
{
	unsigned long pfns[COMPAT_SNAP_CHUNK];
	struct hmm_range range = {
		.notifier = &ctx->hmm_sub,
		.start = start,
		.end = end,
		.hmm_pfns = pfns,
		.dev_private_owner = ctx->hdev,
	};
	unsigned long i;
	int ret;

	do {
		if (fatal_signal_pending(current))
			return -EINTR;
		range.notifier_seq = mmu_interval_read_begin(range.notifier);
		if (mmap_read_lock_killable(ctx->mm))
			return -EINTR;
		ret = hmm_range_fault(&range);
		mmap_read_unlock(ctx->mm);
	} while (ret == -EBUSY);
	if (ret)
		return ret;
	for (i = 0; i < (end - start) >> PAGE_SHIFT; i++)
		out[i] = hmirror_compat_prot(pfns[i]);
	return 0;
}

static int hmirror_compat_snapshot(struct hmirror_compat_file *cf,
				   struct hmm_dmirror_cmd *c)
{
	u8 __user *uptr = u64_to_user_ptr(c->ptr);
	struct hmirror_ctx *ctx = cf->ctx;
	u8 buf[COMPAT_SNAP_CHUNK];
	u64 start, end, n;
	int ret = 0;

	if (!c->npages || c->npages > COMPAT_MAX_PAGES || !PAGE_ALIGNED(c->addr))
		return -EINVAL;
	ret = hmirror_user_range(cf->hdev, c->addr, c->npages << PAGE_SHIFT);
	if (ret)
		return ret;
	if (!mmget_not_zero(ctx->mm))
		return -EINVAL;
	end = c->addr + (c->npages << PAGE_SHIFT);
	for (start = c->addr; start < end; start += n << PAGE_SHIFT) {
		n = min_t(u64, (end - start) >> PAGE_SHIFT, COMPAT_SNAP_CHUNK);
		ret = hmirror_compat_snap_chunk(ctx, start,
						start + (n << PAGE_SHIFT), buf);
		if (ret)
			break;
		if (copy_to_user(uptr, buf, n)) {
			ret = -EFAULT;
			break;
		}
		uptr += n;
	}
	mmput(ctx->mm);
	if (!ret)
		c->cpages = c->npages;
	return ret;
}

/* Is every page of [start, end) in this device's memory? -ENOENT if not. */
static int hmirror_compat_resident(struct hmirror_compat_file *cf, u64 start,
				   u64 end)
{
	u8 buf[COMPAT_SNAP_CHUNK];
	u64 n, i;
	int ret = 0;

	if (!mmget_not_zero(cf->ctx->mm))
		return -EINVAL;
	for (; start < end && !ret; start += n << PAGE_SHIFT) {
		n = min_t(u64, (end - start) >> PAGE_SHIFT, COMPAT_SNAP_CHUNK);
		ret = hmirror_compat_snap_chunk(cf->ctx, start,
						start + (n << PAGE_SHIFT), buf);
		for (i = 0; i < n && !ret; i++)
			if ((buf[i] & ~HMM_DMIRROR_PROT_WRITE &
			     ~HMM_DMIRROR_PROT_READ) !=
			    HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL)
				ret = -ENOENT;
	}
	mmput(cf->ctx->mm);
	return ret;
}

/* test_hmm returns what the device holds of the range: read it back. */
static int hmirror_compat_read_back(struct hmirror_compat_file *cf,
				    struct hmm_dmirror_cmd *c)
{
	int ret = hmirror_compat_copy(cf, c, false);

	c->faults = 0;
	return ret;
}

static int hmirror_compat_migrate(struct hmirror_compat_file *cf,
				  struct hmm_dmirror_cmd *c, unsigned int cmd)
{
	u64 start = c->addr, end;
	unsigned long moved;
	int ret;

	if (!c->npages || c->npages > COMPAT_MAX_PAGES || !PAGE_ALIGNED(start))
		return -EINVAL;
	end = start + (c->npages << PAGE_SHIFT);
	ret = hmirror_user_range(cf->hdev, start, end - start);
	if (ret)
		return ret;
	switch (cmd) {
	case HMM_DMIRROR_MIGRATE_TO_DEV:
		ret = hmirror_devmem_to_device(cf->hdev, cf->ctx->mm, start, end,
					       &moved);
		break;
	case HMM_DMIRROR_MIGRATE_TO_SYS:
		ret = hmirror_devmem_to_system(cf->hdev, cf->ctx->mm, start, end,
					       &moved);
		c->cpages = moved;
		break;
	default:
		ret = hmirror_fault_exclusive(cf->ctx, start, c->npages);
		break;
	}
	/* test_hmm's answer for a hole or an unreadable mapping. */
	if (ret == -EFAULT && cmd != HMM_DMIRROR_EXCLUSIVE)
		ret = -EINVAL;
	if (ret || cmd == HMM_DMIRROR_MIGRATE_TO_SYS)
		return ret;
	if (cmd == HMM_DMIRROR_MIGRATE_TO_DEV) {
		ret = hmirror_compat_resident(cf, start, end);
		if (ret)
			return ret;
	}
	return hmirror_compat_read_back(cf, c);
}

/* -EPERM while the device still maps a page of the range. */
static int hmirror_compat_check_exclusive(struct hmirror_compat_file *cf,
					  struct hmm_dmirror_cmd *c)
{
	struct hmirror_ctx *ctx = cf->ctx;
	bool empty;
	int ret;

	if (!c->npages || c->npages > COMPAT_MAX_PAGES || !PAGE_ALIGNED(c->addr))
		return -EINVAL;
	ret = hmirror_user_range(cf->hdev, c->addr, c->npages << PAGE_SHIFT);
	if (ret)
		return ret;
	mutex_lock(&ctx->pt.lock);
	empty = hmirror_pt_range_empty(&ctx->pt, c->addr,
				       c->addr + (c->npages << PAGE_SHIFT));
	mutex_unlock(&ctx->pt.lock);
	return empty ? 0 : -EPERM;
}

static long hmirror_compat_ioctl(struct file *file, unsigned int cmd,
				 unsigned long arg)
{
	struct hmirror_compat_file *cf = file->private_data;
	void __user *uarg = (void __user *)arg;
	struct hmm_dmirror_cmd c;
	int ret;

	switch (cmd) {
	case HMM_DMIRROR_READ:
	case HMM_DMIRROR_WRITE:
	case HMM_DMIRROR_SNAPSHOT:
		break;
	case HMM_DMIRROR_MIGRATE_TO_DEV:
	case HMM_DMIRROR_MIGRATE_TO_SYS:
	case HMM_DMIRROR_EXCLUSIVE:
	case HMM_DMIRROR_CHECK_EXCLUSIVE:
	case HMM_DMIRROR_RELEASE:
		/* Device memory and exclusive access need DEVICE_PRIVATE. */
		if (!cf->hdev->devmem)
			return -EOPNOTSUPP;
		break;
	default:
		return -ENOTTY;
	}
	if (cf->ctx->mm != current->mm)
		return -EPERM;
	if (copy_from_user(&c, uarg, sizeof(c)))
		return -EFAULT;
	c.cpages = 0;
	c.faults = 0;

	switch (cmd) {
	case HMM_DMIRROR_SNAPSHOT:
		ret = hmirror_compat_snapshot(cf, &c);
		break;
	case HMM_DMIRROR_READ:
	case HMM_DMIRROR_WRITE:
		ret = hmirror_compat_copy(cf, &c, cmd == HMM_DMIRROR_WRITE);
		break;
	case HMM_DMIRROR_CHECK_EXCLUSIVE:
		ret = hmirror_compat_check_exclusive(cf, &c);
		break;
	case HMM_DMIRROR_RELEASE:
		ret = hmirror_devmem_evict_all(cf->hdev);
		break;
	default:
		ret = hmirror_compat_migrate(cf, &c, cmd);
		break;
	}
	if (copy_to_user(uarg, &c, sizeof(c)))
		return -EFAULT;
	return ret;
}

/* Like test_hmm: the file maps zeroed pages (a VM_MIXEDMAP mapping). */
static int hmirror_compat_mmap(struct file *file, struct vm_area_struct *vma)
{
	unsigned long addr;
	int ret;

	for (addr = vma->vm_start; addr < vma->vm_end; addr += PAGE_SIZE) {
		struct page *page = alloc_page(GFP_KERNEL | __GFP_ZERO);

		if (!page)
			return -ENOMEM;
		ret = vm_insert_page(vma, addr, page);
		/* The mapping holds its own reference now. */
		put_page(page);
		if (ret)
			return ret;
	}
	return 0;
}

static const struct file_operations hmirror_compat_fops = {
	.owner = THIS_MODULE,
	.open = hmirror_compat_open,
	.release = hmirror_compat_release,
	.unlocked_ioctl = hmirror_compat_ioctl,
	.mmap = hmirror_compat_mmap,
	.llseek = default_llseek,
};

/**
 * hmirror_compat_add - let @hdev serve compat units
 * @hdev: a probed device
 *
 * The first device serves both units; a second one takes over
 * /dev/hmm_dmirror1, so hmm-tests' two-device cases run across two real
 * devices.  Later devices serve none.
 *
 * Return: 0 or an errno from misc_register().
 */
int hmirror_compat_add(struct hmirror_device *hdev)
{
	struct hmirror_compat_unit *u1 = &hmirror_compat_units[1];
	int i, ret = 0;

	mutex_lock(&hmirror_compat_lock);
	if (hmirror_compat_units[0].hdev) {
		/* Opens from now on use the new device; open files keep theirs. */
		if (u1->hdev == hmirror_compat_units[0].hdev)
			hmirror_compat_set_hdev(u1, hdev);
		goto out;
	}
	for (i = 0; i < COMPAT_UNITS; i++) {
		struct hmirror_compat_unit *u = &hmirror_compat_units[i];

		snprintf(u->name, sizeof(u->name), "hmm_dmirror%d", i);
		u->misc.minor = MISC_DYNAMIC_MINOR;
		u->misc.name = u->name;
		u->misc.fops = &hmirror_compat_fops;
		/* Root only, like test_hmm's nodes. */
		u->misc.mode = 0600;
		/* Set before the node exists: an open never sees NULL. */
		hmirror_compat_set_hdev(u, hdev);
		ret = misc_register(&u->misc);
		if (ret) {
			drm_err(&hdev->drm, "cannot register /dev/%s: %d\n",
				u->name, ret);
			hmirror_compat_set_hdev(u, NULL);
			while (--i >= 0) {
				misc_deregister(&hmirror_compat_units[i].misc);
				hmirror_compat_set_hdev(&hmirror_compat_units[i],
							NULL);
			}
			goto out;
		}
	}
out:
	mutex_unlock(&hmirror_compat_lock);
	return ret;
}

/**
 * hmirror_compat_remove - stop serving compat units from @hdev
 * @hdev: device being removed
 *
 * A unit @hdev served passes to the device serving the other unit, if
 * any; with none left both nodes go.  Open files keep their context (and
 * a reference on the device); their ioctls fail with -ENODEV.
 */
void hmirror_compat_remove(struct hmirror_device *hdev)
{
	struct hmirror_device *other = NULL;
	int i;

	mutex_lock(&hmirror_compat_lock);
	for (i = 0; i < COMPAT_UNITS; i++)
		if (hmirror_compat_units[i].hdev &&
		    hmirror_compat_units[i].hdev != hdev)
			other = hmirror_compat_units[i].hdev;
	for (i = 0; i < COMPAT_UNITS; i++) {
		struct hmirror_compat_unit *u = &hmirror_compat_units[i];

		if (u->hdev != hdev)
			continue;
		if (other) {
			hmirror_compat_set_hdev(u, other);
			continue;
		}
		hmirror_compat_set_hdev(u, NULL);
		misc_deregister(&u->misc);
	}
	mutex_unlock(&hmirror_compat_lock);
}
