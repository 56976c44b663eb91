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
	if (hdev->shm_len < HMIRROR_RINGS_OFF) {
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
				     hdev->hdr.bar_size);
	if (IS_ERR(hdev->shm))
		return PTR_ERR(hdev->shm);
	return 0;
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

	hmirror_debugfs_init(hdev);
	ret = drm_dev_register(&hdev->drm, 0);
	if (ret)
		goto err_fini;
	ret = hmirror_compat_add(hdev);
	if (ret)
		goto err_unplug;

	pci_set_drvdata(pdev, hdev);
	drm_info(&hdev->drm, "hmirror %u.%u: %u engines, %u-entry rings, peer %d\n",
		 hdev->hdr.version >> 16, hdev->hdr.version & 0xffff,
		 hdev->num_queues - 1, hdev->hdr.sq_entries,
		 (int)readl(hdev->regs_bar + IVSHMEM_REG_IVPOSITION));
	return 0;

err_unplug:
	/* The node may have been opened already: unplug, not unregister. */
	set_bit(HMIRROR_F_UNPLUGGED, &hdev->flags);
	drm_dev_unplug(&hdev->drm);
	hmirror_hw_fini(hdev);
	hmirror_ctx_unplug_all(hdev);
	goto err_master;
err_fini:
	hmirror_hw_fini(hdev);
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
	set_bit(HMIRROR_F_UNPLUGGED, &hdev->flags);
	for (i = 0; i < hdev->num_queues; i++)
		wake_up_all(&hdev->queues[i].wq);
	drm_dev_unplug(&hdev->drm);
	hmirror_hw_fini(hdev);
	hmirror_ctx_unplug_all(hdev);
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
