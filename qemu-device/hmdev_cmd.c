// SPDX-License-Identifier: MIT
/*
 * Command execution.  A command reaches here already copied out of the ring
 * (stable against guest writes); this file decides what it does and fills
 * the completion status and result.
 *
 * Spine: NOP, FENCE, TLB_INVAL (no TLB yet, so nothing to drop).  COPY, READ,
 * FILL and ATOMIC are rejected with BAD_OPCODE until the page walker and the
 * DMA engines exist.
 *
 * Checks, in order (the first failing one decides): opcode known; reserved0,
 * reserved1 zero and flags valid for the opcode (else BAD_OPCODE, err_info =
 * the offending value); opcode allowed on this queue (else BAD_QUEUE,
 * err_info = opcode).
 */
#include "hmdev.h"

/* Which queues an opcode may run on. */
#define ON_MGMT		(1u << 0)
#define ON_ENGINE	(1u << 1)

typedef enum hmdev_exec (*exec_fn)(struct hmdev *dev, unsigned q,
				   const struct hmirror_cmd *cmd,
				   struct hmirror_cpl *cpl, uint64_t *err_info);

static enum hmdev_exec fail(struct hmirror_cpl *cpl, uint16_t status,
			    uint64_t *err_info, uint64_t info)
{
	cpl->status = status;
	*err_info = info;
	return HMDEV_EXEC_DONE;
}

static enum hmdev_exec exec_nop(struct hmdev *dev, unsigned q,
				const struct hmirror_cmd *cmd,
				struct hmirror_cpl *cpl, uint64_t *err_info)
{
	(void)dev; (void)q; (void)cmd; (void)err_info;
	cpl->status = HMIRROR_ST_OK;
	return HMDEV_EXEC_DONE;
}

/*
 * FENCE: a queue executes in order and every earlier command has completed
 * by the time this one is fetched, so there is nothing to wait for.  (With
 * engine threads a management-queue fence will have to wait for them.)
 */
static enum hmdev_exec exec_fence(struct hmdev *dev, unsigned q,
				  const struct hmirror_cmd *cmd,
				  struct hmirror_cpl *cpl, uint64_t *err_info)
{
	return exec_nop(dev, q, cmd, cpl, err_info);
}

/* TLB_INVAL: no TLB in the spine, so nothing is cached to drop. */
static enum hmdev_exec exec_tlb_inval(struct hmdev *dev, unsigned q,
				      const struct hmirror_cmd *cmd,
				      struct hmirror_cpl *cpl, uint64_t *err_info)
{
	return exec_nop(dev, q, cmd, cpl, err_info);
}

static enum hmdev_exec exec_unimplemented(struct hmdev *dev, unsigned q,
					  const struct hmirror_cmd *cmd,
					  struct hmirror_cpl *cpl,
					  uint64_t *err_info)
{
	(void)dev; (void)q;
	return fail(cpl, HMIRROR_ST_BAD_OPCODE, err_info, cmd->opcode);
}

static const struct {
	unsigned queues;	/* ON_* */
	unsigned max_flags;	/* flags above this are reserved */
	exec_fn exec;
} ops[HMIRROR_NUM_OPS] = {
	[HMIRROR_OP_NOP]	= { ON_MGMT | ON_ENGINE, 0, exec_nop },
	[HMIRROR_OP_FENCE]	= { ON_MGMT | ON_ENGINE, 0, exec_fence },
	[HMIRROR_OP_COPY]	= { ON_ENGINE, 0, exec_unimplemented },
	[HMIRROR_OP_READ]	= { ON_ENGINE, 0, exec_unimplemented },
	[HMIRROR_OP_FILL]	= { ON_ENGINE, 0, exec_unimplemented },
	[HMIRROR_OP_ATOMIC]	= { ON_ENGINE, HMIRROR_ATOMIC_CMPXCHG, exec_unimplemented },
	[HMIRROR_OP_TLB_INVAL]	= { ON_MGMT, 0, exec_tlb_inval },
};

enum hmdev_exec hmdev_cmd_exec(struct hmdev *dev, unsigned q,
			       const struct hmirror_cmd *cmd,
			       struct hmirror_cpl *cpl, uint64_t *err_info)
{
	unsigned where = q == HMIRROR_QUEUE_MGMT ? ON_MGMT : ON_ENGINE;

	cpl->status = HMIRROR_ST_OK;
	cpl->result = 0;
	cpl->nfaults = 0;
	if (cmd->opcode >= HMIRROR_NUM_OPS || !ops[cmd->opcode].exec)
		return fail(cpl, HMIRROR_ST_BAD_OPCODE, err_info, cmd->opcode);
	if (cmd->reserved0)
		return fail(cpl, HMIRROR_ST_BAD_OPCODE, err_info, cmd->reserved0);
	if (cmd->reserved1)
		return fail(cpl, HMIRROR_ST_BAD_OPCODE, err_info, cmd->reserved1);
	if (cmd->flags > ops[cmd->opcode].max_flags)
		return fail(cpl, HMIRROR_ST_BAD_OPCODE, err_info, cmd->flags);
	if (!(ops[cmd->opcode].queues & where))
		return fail(cpl, HMIRROR_ST_BAD_QUEUE, err_info, cmd->opcode);
	return ops[cmd->opcode].exec(dev, q, cmd, cpl, err_info);
}
