// SPDX-License-Identifier: GPL-2.0
/*
 * hmirror: PCI and DRM glue.  Binds to ivshmem devices that carry an
 * hmirror header in BAR2 and registers a DRM compute accelerator for each.
 */
#include <linux/module.h>
#include <linux/pci.h>
#include <drm/drm_accel.h>
#include <drm/drm_gem.h>
#include <drm/drm_print.h>
#include <drm/drm_drv.h>
#include <drm/drm_ioctl.h>
#include <drm/drm_managed.h>

#include "hmirror.h"
#include "hmirror_compat.h"
#include "hmirror_ctx.h"
#include "hmirror_debugfs.h"
#include "hmirror_devmem.h"

/**
 * DOC: Overview
 *
 * ``hmirror.ko`` is a DRM compute-accelerator driver (``/dev/accel/accelN``)
 * for the device described in ``device-spec.rst``.  It mirrors the address
 * space of the process that opened the device into the device: the device
 * reads, writes and atomically updates the process's memory by virtual
 * address, faulting like a CPU, and the driver keeps the device's page
 * tables coherent with the CPU's through an mmu notifier.
 *
 * One file per concern, calls flowing one way, top to bottom (``make lint``
 * fails on a file-level call cycle)::
 *
 *   hmirror_drv.c      PCI probe/remove, DRM registration    (composes all)
 *   hmirror_ioctl.c    ioctls (include/uapi/hmirror.h)
 *   hmirror_compat.c   /dev/hmm_dmirror0-1: test_hmm's ABI
 *   hmirror_debugfs.c  /sys/kernel/debug/accel/<pci>/hmirror_*
 *   hmirror_ctx.c      contexts: mm binding, user ranges, counters
 *   hmirror_exec.c     running a command, servicing its faults
 *   hmirror_fault.c    the fault path: GUP and HMM backends
 *   hmirror_mirror.c   the mmu notifier: active ranges, stale faults,
 *                      clearing and flushing the device
 *   hmirror_pt.c       device page tables, zaps, the graveyard
 *   hmirror_devmem.c   device memory as DEVICE_PRIVATE pages: migration
 *                      both ways (the device copying), eviction
 *   hmirror_hw.c       the device: header, resets, bus mastering, rings,
 *                      tags, fault ring and answers, interrupts, watchdog,
 *                      the dead device
 *
 * A device fault goes down the chain once: the EXEC ioctl, ``hmirror_exec()``
 * (submit, wait for the command's next event), ``hmirror_fault_service()``,
 * the mirror's in-flight tracking, the page table's commit, and back in
 * ``hmirror_exec()`` the answer through ``hmirror_hw``.  The device layer
 * calls nothing above it: when a dead device proves it stopped, it calls the
 * ``quiesced`` hook the top layer installed.
 */

/**
 * DOC: Locking
 *
 * ==============================  ==============================================
 * lock                            protects
 * ==============================  ==============================================
 * ``hmirror_pt.lock``             mutex: a context's device page table and zap;
 *                                 taken in notifier starts (so in reclaim), so
 *                                 no ``GFP_KERNEL`` allocation and no wait for
 *                                 an invalidation under it; the device TLB flush
 *                                 is waited for under it
 * ``hmirror_mirror.inv_lock``     spinlock: active and deferred ranges,
 *                                 in-flight faults
 * ``hmirror_queue.lock``          irq-safe spinlock: a queue's indices, sequence
 *                                 numbers, tags and their waiters, the
 *                                 context's in-flight counts, faults held
 * ``hmirror_device.ctrl_lock``    irq-safe spinlock: ``drv_ctrl`` and the
 *                                 control/reset generations
 * ``hmirror_device.sd_lock``      spinlock: the shootdown epoch and request
 *                                 slots (publishing only; the wait is outside)
 * ``hmirror_pt_graveyard.lock``   spinlock: the graveyard's lists
 * ``hmirror_pt.spare_lock``       spinlock: a context's spare (empty,
 *                                 unreachable) tables; innermost, nothing
 *                                 allocated or freed under it
 * ``hmirror_ctx.hmm_seq_lock``    spinlock: the HMM backend's sequence and its
 *                                 commits (inside the page-table lock)
 * ``hmirror_device.fault_lock``   irq-safe spinlock: the fault ring's head
 * ``ctx_list_lock``               mutex: the list of live contexts (debugfs)
 * ``hmirror_compat_lock``         mutex: compat node add/remove only (taken
 *                                 before ``misc_mtx``; open does not take it)
 * ``hmirror_compat_hdev_lock``    spinlock: which device a compat unit opens
 *                                 (open takes its device reference under it)
 * ``hmirror_devmem.lock``         irq-safe spinlock: device memory's free and
 *                                 LRU lists (taken wherever the last
 *                                 reference on a device page goes)
 * ==============================  ==============================================
 *
 * Order: page-table lock → ``inv_lock``; page-table lock → queue lock (the
 * flush submits on the management queue); page-table lock → ``sd_lock``
 * (a shootdown publishes); page-table lock (and page locks)
 * → ``spare_lock``; fault lock → queue lock;
 * ``hmm_seq_lock`` → ``hmirror_devmem.lock``.  Migrations hold page locks
 * (``migrate_vma_setup`` takes them) and ``mmap_lock`` but no driver lock
 * while the device copies; an eviction only ever trylocks other pages.
 * ``mmap_lock`` is never held with the page-table lock taken *after* it in the
 * fault path: GUP runs with no driver lock held.
 *
 * Lockdep is taught both rules of the design: at context creation
 * ``fs_reclaim_acquire`` + ``might_lock(pt.lock)`` record that the lock is
 * taken in reclaim, so a ``GFP_KERNEL`` allocation under it is reported as
 * the deadlock it is; and "waiting for an invalidation" is a lockdep map the
 * notifier holds around the page-table lock and a waiting fault acquires, so
 * waiting with the page-table lock held is reported as an inversion.  The
 * debug kernel flavour (``make check KERNEL=debug``) runs every guest suite
 * under lockdep, ``DEBUG_VM``, ``DEBUG_ATOMIC_SLEEP``, ``DEBUG_LIST`` and
 * ``DEBUG_OBJECTS``; it found the compat open/``misc_mtx`` inversion and the
 * HMM/userfaultfd stack dump fixed above.
 */

#define PCI_VENDOR_ID_IVSHMEM	0x1af4	/* Red Hat, Inc. (virtio range) */
#define PCI_DEVICE_ID_IVSHMEM	0x1110

DEFINE_DRM_ACCEL_FOPS(hmirror_fops);

static int hmirror_open(struct drm_device *drm, struct drm_file *file)
{
	struct hmirror_ctx *ctx = hmirror_ctx_create(to_hmirror(drm));

	if (IS_ERR(ctx))
		return PTR_ERR(ctx);
	file->driver_priv = ctx;
	return 0;
}

static void hmirror_postclose(struct drm_device *drm, struct drm_file *file)
{
	if (file->driver_priv)
		hmirror_ctx_destroy(file->driver_priv);
}

static const struct drm_driver hmirror_drm_driver = {
	.driver_features = DRIVER_COMPUTE_ACCEL,
	.fops = &hmirror_fops,
	.open = hmirror_open,
	.postclose = hmirror_postclose,
	.ioctls = hmirror_ioctls,
	.num_ioctls = HMIRROR_NUM_IOCTLS,
	.name = HMIRROR_DRIVER_NAME,
	.desc = "hmirror shared virtual memory device",
	.major = HMIRROR_VERSION_MAJOR,
	.minor = HMIRROR_VERSION_MINOR,
};

/*
 * Map just the header first: other ivshmem devices may carry gigabytes of
 * shared memory that this driver has no business mapping.
 */
static int hmirror_map_bars(struct hmirror_device *hdev)
{
	struct pci_dev *pdev = hdev->pdev;
	void __iomem *hdr;
	int ret;

	hdev->regs_bar = pcim_iomap_region(pdev, IVSHMEM_BAR_REGS,
					   HMIRROR_DRIVER_NAME);
	if (IS_ERR(hdev->regs_bar))
		return PTR_ERR(hdev->regs_bar);

	hdev->shm_len = pci_resource_len(pdev, IVSHMEM_BAR_SHM);
	if (hdev->shm_len < PAGE_SIZE) {
		dev_info(&pdev->dev, "ivshmem BAR2 too small for hmirror, not binding\n");
		return -ENODEV;
	}
	ret = pcim_request_region(pdev, IVSHMEM_BAR_SHM, HMIRROR_DRIVER_NAME);
	if (ret)
		return ret;

	hdr = pci_iomap_range(pdev, IVSHMEM_BAR_SHM, 0, PAGE_SIZE);
	if (!hdr)
		return -ENOMEM;
	hdev->shm = hdr;
	ret = hmirror_hw_check_header(hdev);
	hdev->shm = NULL;
	pci_iounmap(pdev, hdr);
	if (ret)
		return ret;

	hdev->shm = pcim_iomap_range(pdev, IVSHMEM_BAR_SHM, 0,
				     hdev->bar_size);
	if (IS_ERR(hdev->shm))
		return PTR_ERR(hdev->shm);
	return 0;
}

/* The device proved it stopped DMA: what it could reach may go now. */
static void hmirror_quiesced(struct hmirror_device *hdev)
{
	hmirror_pt_graveyard_close(&hdev->graveyard, &hdev->pdev->dev);
}

static void hmirror_ida_release(struct drm_device *drm, void *ida)
{
	ida_destroy(ida);
}

static int hmirror_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct hmirror_device *hdev;
	int ret;

	hdev = devm_drm_dev_alloc(&pdev->dev, &hmirror_drm_driver,
				  struct hmirror_device, drm);
	if (IS_ERR(hdev))
		return PTR_ERR(hdev);
	hdev->pdev = pdev;
	hmirror_pt_graveyard_init(&hdev->graveyard);
	hdev->quiesced = hmirror_quiesced;
	mutex_init(&hdev->ctx_list_lock);
	INIT_LIST_HEAD(&hdev->ctx_list);
	ida_init(&hdev->ctx_ida);
	ret = drmm_add_action_or_reset(&hdev->drm, hmirror_ida_release,
				       &hdev->ctx_ida);
	if (ret)
		return ret;

	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;

	ret = hmirror_map_bars(hdev);
	if (ret)
		return ret;

	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
	if (ret)
		return ret;
	pci_set_master(pdev);

	ret = hmirror_hw_init(hdev);
	if (ret)
		goto err_master;
	/* Without its memory the device still mirrors: not fatal. */
	ret = hmirror_devmem_init(hdev);
	if (ret)
		drm_warn(&hdev->drm, "device memory not usable: %d\n", ret);

	hmirror_debugfs_init(hdev);
	ret = drm_dev_register(&hdev->drm, 0);
	if (ret)
		goto err_fini;
	ret = hmirror_compat_add(hdev);
	if (ret)
		goto err_unplug;

	pci_set_drvdata(pdev, hdev);
	drm_info(&hdev->drm, "hmirror %u.%u: %u engines, %u-entry rings, peer %d\n",
		 hdev->version >> 16, hdev->version & 0xffff,
		 hdev->num_queues - 1, hdev->sq_entries,
		 (int)readl(hdev->regs_bar + IVSHMEM_REG_IVPOSITION));
	return 0;

err_unplug:
	/* The node may have been opened already: unplug, not unregister. */
	hmirror_devmem_close(hdev);
	set_bit(HMIRROR_F_UNPLUGGED, &hdev->flags);
	drm_dev_unplug(&hdev->drm);
	hmirror_hw_fini(hdev);
	hmirror_ctx_unplug_all(hdev);
	hmirror_devmem_fini(hdev);
	goto err_master;
err_fini:
	hmirror_hw_fini(hdev);
	hmirror_devmem_fini(hdev);
err_master:
	pci_clear_master(pdev);
	return ret;
}

/*
 * Waiters sleep inside drm_dev_enter(); they are woken before
 * drm_dev_unplug() waits for them to leave.  Nothing waits there for long:
 * fault service (GUP, userfaultfd) runs outside.  Then the device is asked
 * to stop DMA and reset; with its proof every context's mappings are
 * released, without it they are kept (never freed while it may reach
 * them).  Open files outlive the device; their ioctls fail with -ENODEV.
 */
static void hmirror_remove(struct pci_dev *pdev)
{
	struct hmirror_device *hdev = pci_get_drvdata(pdev);
	u32 i;

	hmirror_compat_remove(hdev);
	/* The device copies process data out of its memory while it can. */
	hmirror_devmem_close(hdev);
	set_bit(HMIRROR_F_UNPLUGGED, &hdev->flags);
	for (i = 0; i < hdev->num_queues; i++)
		wake_up_all(&hdev->queues[i].wq);
	drm_dev_unplug(&hdev->drm);
	hmirror_hw_fini(hdev);
	hmirror_ctx_unplug_all(hdev);
	/* No device table references a device page any more. */
	hmirror_devmem_fini(hdev);
}

static const struct pci_device_id hmirror_pci_ids[] = {
	{ PCI_DEVICE(PCI_VENDOR_ID_IVSHMEM, PCI_DEVICE_ID_IVSHMEM) },
	{ }
};
MODULE_DEVICE_TABLE(pci, hmirror_pci_ids);

static struct pci_driver hmirror_pci_driver = {
	.name = HMIRROR_DRIVER_NAME,
	.id_table = hmirror_pci_ids,
	.probe = hmirror_probe,
	.remove = hmirror_remove,
};
module_pci_driver(hmirror_pci_driver);

MODULE_DESCRIPTION("hmirror: process address space mirroring into an emulated device");
MODULE_LICENSE("GPL");
