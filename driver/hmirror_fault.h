/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hmirror: the fault path (see hmirror_fault.c) and command execution.
 */
#ifndef HMIRROR_FAULT_H
#define HMIRROR_FAULT_H

#include <linux/types.h>

struct hmirror_ctx;
struct hmirror_cmd;
struct hmirror_cpl;

/**
 * struct hmirror_fault_req - what to make present for the device
 * @start: page-aligned first address
 * @npages: pages the device needs, 1 .. HMIRROR_FAULT_MAX_PAGES
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
int hmirror_fault_service(struct hmirror_ctx *ctx,
			  const struct hmirror_fault_req *req);

/**
 * struct hmirror_exec_result - what a command's execution produced
 * @cpl: the device's completion
 * @faults: faults serviced for the command
 * @service_ns: time spent servicing them
 * @count_start: start of a range whose faults are counted apart
 * @count_end: its end (0: none)
 * @counted: faults that started inside [count_start, count_end)
 * @fill_counted: service a fault in the counted range through its end, as
 *	one fault (test_hmm's notion: the device faults the whole request)
 */
struct hmirror_exec_result {
	struct hmirror_cpl *cpl;
	u32 faults;
	u64 service_ns;
	u64 count_start;
	u64 count_end;
	u32 counted;
	bool fill_counted;
};

int hmirror_exec(struct hmirror_ctx *ctx, u32 qi, struct hmirror_cmd *cmd,
		 struct hmirror_exec_result *res);

#endif /* HMIRROR_FAULT_H */
