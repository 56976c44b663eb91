/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hmirror: per-file contexts.
 */
#ifndef HMIRROR_CTX_H
#define HMIRROR_CTX_H

#include <linux/mm_types.h>

#include "hmirror_mirror.h"
#include "hmirror_pt.h"

struct drm_file;
struct hmirror_device;

/**
 * struct hmirror_ctx - one mirrored address space on one device
 * @hdev: device
 * @mm: the opener's mm (mmgrab'ed: the struct stays, the space may go)
 * @id: index in the device's context table
 * @pt: device page table
 * @zap: scratch for invalidations, used under @pt.lock
 * @mirror: invalidation tracking (the mmu notifier)
 * @backend: DRM_HMIRROR_BACKEND_*
 * @fault_ahead: extra pages faulted after a device fault's run
 */
struct hmirror_ctx {
	struct hmirror_device *hdev;
	struct mm_struct *mm;
	u32 id;
	struct hmirror_pt pt;
	struct hmirror_pt_zap zap;
	struct hmirror_mirror mirror;
	u32 backend;
	u32 fault_ahead;
};

int hmirror_ctx_create(struct hmirror_device *hdev, struct drm_file *file);
void hmirror_ctx_destroy(struct hmirror_ctx *ctx);
int hmirror_ctx_get(struct drm_file *file, struct hmirror_ctx **ctx);
int hmirror_ctx_tlb_inval(struct hmirror_ctx *ctx, u64 start, u64 end);

#endif /* HMIRROR_CTX_H */
