/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hmirror: running one device command for a context (hmirror_exec.c).
 */
#ifndef HMIRROR_EXEC_H
#define HMIRROR_EXEC_H

#include <linux/types.h>

struct hmirror_ctx;
struct hmirror_hw_cmd;
struct hmirror_hw_cpl;
struct hmirror_fault_req;

/**
 * struct hmirror_exec_result - what a command's execution produced
 * @cpl: the device's completion
 * @faults: faults serviced for the command
 * @service_ns: time spent servicing them
 * @serviced: called after each fault's service, before the answer, with
 *	the request and the service's result (NULL: nothing to do); for
 *	callers with their own notion of a fault (the compat device)
 * @arg: for @serviced
 */
struct hmirror_exec_result {
	struct hmirror_hw_cpl *cpl;
	u32 faults;
	u64 service_ns;
	void (*serviced)(struct hmirror_ctx *ctx,
			 const struct hmirror_fault_req *req, int ret, void *arg);
	void *arg;
};

int hmirror_exec(struct hmirror_ctx *ctx, u32 qi, struct hmirror_hw_cmd *cmd,
		 struct hmirror_exec_result *res);

#endif /* HMIRROR_EXEC_H */
