/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * hmirror userspace ABI: ioctls on /dev/accel/accelN.
 *
 * Every struct is fixed-size and 64-bit aligned; reserved fields and
 * unknown flags must be zero or the ioctl fails with -EINVAL.
 */
#ifndef _UAPI_HMIRROR_H
#define _UAPI_HMIRROR_H

#include "drm.h"

#if defined(__cplusplus)
extern "C" {
#endif

#define DRM_HMIRROR_GET_INFO	0x00
#define DRM_HMIRROR_SUBMIT_NOP	0x01
#define DRM_HMIRROR_WAIT	0x02
#define DRM_HMIRROR_STATS	0x03
#define DRM_HMIRROR_CTX_OPTIONS	0x04

/**
 * struct drm_hmirror_info - what the device is (DRM_IOCTL_HMIRROR_GET_INFO)
 * @version: device version, major << 16 | minor
 * @num_engines: engines usable by commands (queues minus management)
 * @features: HMIRROR_FEAT_* bits from the device header
 * @bar_size: bytes of BAR2 the device uses
 * @sq_entries: submission ring entries per queue
 * @cq_entries: completion ring entries per queue
 * @fault_entries: fault ring entries
 * @max_contexts: device context table entries
 * @tlb_entries: device TLB capacity
 * @num_vectors: MSI-X vectors in use
 * @reserved: zero
 */
struct drm_hmirror_info {
	__u32 version;
	__u32 num_engines;
	__u64 features;
	__u32 bar_size;
	__u32 sq_entries;
	__u32 cq_entries;
	__u32 fault_entries;
	__u32 max_contexts;
	__u32 tlb_entries;
	__u32 num_vectors;
	__u32 reserved[9];
};

/* drm_hmirror_submit_nop.flags */
#define DRM_HMIRROR_NOP_FENCE	(1u << 0)	/* end the batch with a FENCE */
#define DRM_HMIRROR_NOP_WAIT	(1u << 1)	/* wait for the last command */
#define DRM_HMIRROR_NOP_FLAGS	(DRM_HMIRROR_NOP_FENCE | DRM_HMIRROR_NOP_WAIT)

/**
 * struct drm_hmirror_submit_nop - queue NOP commands on an engine
 * @engine: engine index, 0 .. num_engines - 1
 * @count: NOPs to queue, 1 .. 4096
 * @flags: DRM_HMIRROR_NOP_*
 * @pad: zero
 * @fence: out: sequence number of the last command queued
 */
struct drm_hmirror_submit_nop {
	__u32 engine;
	__u32 count;
	__u32 flags;
	__u32 pad;
	__u64 fence;
};

/**
 * struct drm_hmirror_wait - wait until an engine has completed a fence
 * @engine: engine index
 * @pad: zero
 * @fence: sequence number returned by a submit on this engine
 * @timeout_ms: 0 polls once (-EBUSY if not done), else bounded wait
 *	(-ETIME when it runs out)
 * @completed: out: the engine's last completed sequence number
 */
struct drm_hmirror_wait {
	__u32 engine;
	__u32 pad;
	__u64 fence;
	__u64 timeout_ms;
	__u64 completed;
};

/**
 * struct drm_hmirror_stats - driver and device counters
 * @irqs: interrupts handled by the driver per vector (cq, fault, ctrl)
 * @dev_irqs_sent: interrupts the device says it raised, per vector
 * @cmds_submitted: commands this device has queued since probe
 * @cmds_completed: completions the driver has consumed since probe
 * @dev_commands: commands the device has executed since reset
 * @dev_errors: errors the device has reported since reset
 * @doorbells: doorbells the driver has rung
 * @live_contexts: contexts (open files) alive on this device
 * @reserved: zero
 */
struct drm_hmirror_stats {
	__u64 irqs[4];
	__u64 dev_irqs_sent[4];
	__u64 cmds_submitted;
	__u64 cmds_completed;
	__u64 dev_commands;
	__u64 dev_errors;
	__u64 doorbells;
	__u64 live_contexts;
	__u64 reserved[10];
};

/* Fault backends (drm_hmirror_ctx_options.backend). */
#define DRM_HMIRROR_BACKEND_GUP	0	/* get_user_pages_remote() */
#define DRM_HMIRROR_BACKEND_HMM	1	/* hmm_range_fault() */

/* drm_hmirror_ctx_options.flags */
#define DRM_HMIRROR_CTX_SET	(1u << 0)	/* apply the fields, else only read */
#define DRM_HMIRROR_CTX_FLAGS	DRM_HMIRROR_CTX_SET

#define DRM_HMIRROR_FAULT_AHEAD_MAX	512

/**
 * struct drm_hmirror_ctx_options - the calling file's context
 * @flags: DRM_HMIRROR_CTX_*
 * @backend: DRM_HMIRROR_BACKEND_*
 * @fault_ahead: pages faulted beyond a device fault's run, clipped to the
 *	VMA, 0 .. DRM_HMIRROR_FAULT_AHEAD_MAX
 * @ctx_id: out: the device context number
 * @reserved: zero
 *
 * Always returns the options in force.  Only the process that opened the
 * file may use its context (-EPERM otherwise).
 */
struct drm_hmirror_ctx_options {
	__u32 flags;
	__u32 backend;
	__u32 fault_ahead;
	__u32 ctx_id;
	__u64 reserved[2];
};

#define DRM_IOCTL_HMIRROR_GET_INFO \
	DRM_IOR(DRM_COMMAND_BASE + DRM_HMIRROR_GET_INFO, struct drm_hmirror_info)
#define DRM_IOCTL_HMIRROR_SUBMIT_NOP \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_HMIRROR_SUBMIT_NOP, struct drm_hmirror_submit_nop)
#define DRM_IOCTL_HMIRROR_WAIT \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_HMIRROR_WAIT, struct drm_hmirror_wait)
#define DRM_IOCTL_HMIRROR_STATS \
	DRM_IOR(DRM_COMMAND_BASE + DRM_HMIRROR_STATS, struct drm_hmirror_stats)
#define DRM_IOCTL_HMIRROR_CTX_OPTIONS \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_HMIRROR_CTX_OPTIONS, struct drm_hmirror_ctx_options)

#if defined(__cplusplus)
}
#endif

#endif /* _UAPI_HMIRROR_H */
