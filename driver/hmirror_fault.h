/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hmirror: the fault path (see hmirror_fault.c).
 */
#ifndef HMIRROR_FAULT_H
#define HMIRROR_FAULT_H

#include <linux/types.h>

struct hmirror_ctx;

/**
 * struct hmirror_fault_req - what to make present for the device
 * @start: page-aligned first address
 * @npages: pages the device needs, 1 .. HMIRROR_FAULT_NPAGES_MAX
 * @ahead: extra pages to fault after them, clipped to the VMA
 * @write: map writable (write fault: breaks COW)
 */
struct hmirror_fault_req {
	u64 start;
	unsigned long npages;
	unsigned long ahead;
	bool write;
};

void hmirror_fault_init(struct hmirror_ctx *ctx);
int hmirror_fault_hmm_enable(struct hmirror_ctx *ctx);
void hmirror_fault_fini(struct hmirror_ctx *ctx);
#if IS_ENABLED(CONFIG_DEVICE_PRIVATE)
int hmirror_fault_exclusive(struct hmirror_ctx *ctx, u64 start,
			    unsigned long npages);
#else
static inline int hmirror_fault_exclusive(struct hmirror_ctx *ctx, u64 start,
					  unsigned long npages)
{
	return -EOPNOTSUPP;
}
#endif
int hmirror_fault_service(struct hmirror_ctx *ctx,
			  const struct hmirror_fault_req *req,
			  unsigned long *done);

#endif /* HMIRROR_FAULT_H */
