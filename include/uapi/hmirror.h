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
#define DRM_HMIRROR_EXEC	0x05
#define DRM_HMIRROR_PREFETCH	0x06
#define DRM_HMIRROR_SNAPSHOT	0x07
#define DRM_HMIRROR_CTX_STATS	0x08
#define DRM_HMIRROR_MIGRATE	0x09

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
 * @va_bits: the device's virtual address width: it reaches user addresses
 *	below 2^va_bits only (48 or 57); addresses above are refused with
 *	-EFAULT
 * @device_memory_pages: 4 KiB pages of device memory MIGRATE can use: 0
 *	when the device has none or the kernel lacks DEVICE_PRIVATE
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
	__u32 va_bits;
	__u32 device_memory_pages;
	__u32 reserved[7];
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
 * @state: DRM_HMIRROR_STATE_* bits
 * @nonblock_deferred: non-blockable invalidations (OOM reaper,
 *	process_mrelease) whose clearing was handed to a worker, all contexts
 * @faults_orphaned: fault records for commands nobody waited for, cancelled
 * @kept_pages: pages a dead device might still reach, kept referenced
 *	until it proves it stopped DMA (or forever)
 * @doorbells_skipped: doorbells not rung because the engine was awake
 *	(device feature HMIRROR_FEAT_POLL, module parameter engine_poll_us)
 * @device_memory_used: pages of device memory holding process data
 * @migrated_to_device: pages migrated into device memory since probe
 * @migrated_to_system: pages migrated back (CPU touch, MIGRATE, eviction)
 * @evicted: of those, pages evicted to make room or at removal
 * @shootdowns: device TLB invalidations done through shared memory
 *	(device feature HMIRROR_FEAT_SHOOTDOWN, module parameter
 *	tlb_shootdown), without a TLB_INVAL command
 * @shootdown_fallbacks: of the invalidations tried that way, those whose
 *	wait for a device access ran out (module parameter sd_spin_us) and
 *	that were done by a TLB_INVAL command instead
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
	__u64 state;
	__u64 nonblock_deferred;
	__u64 faults_orphaned;
	__u64 kept_pages;
	__u64 doorbells_skipped;
	__u64 device_memory_used;
	__u64 migrated_to_device;
	__u64 migrated_to_system;
	__u64 evicted;
	__u64 shootdowns;
	__u64 shootdown_fallbacks;
	__u64 reserved[2];
};

/* drm_hmirror_stats.state */
#define DRM_HMIRROR_STATE_DEAD		(1u << 0)	/* device declared dead */
#define DRM_HMIRROR_STATE_QUIESCED	(1u << 1)	/* and it proved it stopped DMA */

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

/*
 * Device operations on the caller's own virtual addresses, executed by the
 * device through the mirror: the device faults, the driver services the
 * faults, no CPU copy is involved.
 */
enum drm_hmirror_op {
	DRM_HMIRROR_OP_READ = 1,	/* buf <- addr (device reads addr) */
	DRM_HMIRROR_OP_WRITE = 2,	/* addr <- buf (device writes addr) */
	DRM_HMIRROR_OP_COPY = 3,	/* addr <- buf, any two ranges */
	DRM_HMIRROR_OP_FILL = 4,	/* addr <- value repeated (u64) */
	DRM_HMIRROR_OP_CHECKSUM = 5,	/* result <- checksum of addr */
	DRM_HMIRROR_OP_ATOMIC_ADD = 6,	/* *addr += value, result <- old */
	DRM_HMIRROR_OP_ATOMIC_CMPXCHG = 7, /* if *addr == value: *addr = value2 */
};

/* Largest range one EXEC may cover. */
#define DRM_HMIRROR_EXEC_MAX_LEN	(64ull << 20)

/**
 * struct drm_hmirror_exec - run one device operation and wait for it
 * @op: enum drm_hmirror_op
 * @engine: engine index
 * @addr: target virtual address
 * @buf: the other range (READ, WRITE, COPY); zero otherwise
 * @len: bytes, 1 .. DRM_HMIRROR_EXEC_MAX_LEN; multiple of 8 and @addr
 *	8-aligned for FILL and CHECKSUM; exactly 8 (aligned) for atomics
 * @value: FILL pattern, ATOMIC_ADD addend, CMPXCHG expected value
 * @value2: CMPXCHG new value
 * @flags: zero
 * @faults: out: faults the device raised for this command
 * @result: out: CHECKSUM value, old value of an atomic
 * @t_submit: out: device clock when the device fetched the command (ns)
 * @t_fault: out: device clock at the first fault, 0 if none
 * @t_answer: out: device clock when it saw the last fault answer
 * @t_done: out: device clock at completion
 * @service_ns: out: time the driver spent servicing this command's faults
 * @reserved: zero
 *
 * Returns -EFAULT when the device touched an address the process cannot
 * access that way (the command is cancelled) or a range reaches beyond
 * the device's address width (drm_hmirror_info.va_bits; nothing is run),
 * -EINVAL for a range that is not a user range, -EINTR when a signal
 * ended a fault service (cancelled too) or a fatal signal the wait, -EIO
 * when the device is dead.  The
 * checksum is FNV-1a over 64-bit little-endian words: h = 0xcbf29ce484222325,
 * then for each word h = (h ^ w) * 0x100000001b3.
 */
struct drm_hmirror_exec {
	__u32 op;
	__u32 engine;
	__u64 addr;
	__u64 buf;
	__u64 len;
	__u64 value;
	__u64 value2;
	__u32 flags;
	__u32 faults;
	__u64 result;
	__u64 t_submit;
	__u64 t_fault;
	__u64 t_answer;
	__u64 t_done;
	__u64 service_ns;
	__u64 reserved[2];
};

#define DRM_HMIRROR_PREFETCH_WRITE	(1u << 0)

/**
 * struct drm_hmirror_prefetch - mirror a range before the device uses it
 * @addr: page-aligned start
 * @len: bytes, page multiple, at most DRM_HMIRROR_EXEC_MAX_LEN
 * @flags: DRM_HMIRROR_PREFETCH_WRITE maps writable (breaking COW)
 * @pad: zero
 *
 * Returns -EFAULT when the range cannot be accessed that way or reaches
 * beyond the device's address width (drm_hmirror_info.va_bits).
 */
struct drm_hmirror_prefetch {
	__u64 addr;
	__u64 len;
	__u32 flags;
	__u32 pad;
};

/* Per-page values written by SNAPSHOT. */
#define DRM_HMIRROR_SNAP_NONE	0	/* nothing mapped for the device */
#define DRM_HMIRROR_SNAP_READ	1	/* mapped read-only */
#define DRM_HMIRROR_SNAP_WRITE	2	/* mapped writable */
#define DRM_HMIRROR_SNAP_HUGE	4	/* or-ed: part of a 2 MiB mapping */
#define DRM_HMIRROR_SNAP_DEVICE_MEMORY 8 /* or-ed: in the device's memory */

/* drm_hmirror_migrate.flags */
#define DRM_HMIRROR_MIGRATE_TO_SYSTEM	(1u << 0)	/* else to the device */
#define DRM_HMIRROR_MIGRATE_FLAGS	DRM_HMIRROR_MIGRATE_TO_SYSTEM

/**
 * struct drm_hmirror_migrate - move a range into device memory or back
 * @addr: page-aligned start
 * @len: bytes, page multiple, at most DRM_HMIRROR_EXEC_MAX_LEN
 * @flags: DRM_HMIRROR_MIGRATE_*
 * @pad: zero
 * @migrated: out: pages this call moved.  To the device: private
 *	anonymous pages only (shared and file pages stay, as do pages there
 *	is no room for once the least recently used ones were evicted); the
 *	device copies, the CPU does not.  Back: this device's pages.
 * @reserved: zero
 *
 * Returns -EOPNOTSUPP when drm_hmirror_info.device_memory_pages is 0,
 * -EFAULT when part of the range is not a readable mapping (or beyond the
 * device's address width; what came before is migrated), -EIO when the
 * device could not copy, -EINTR on a fatal signal.  A CPU touch of a page
 * in device memory migrates it back by itself; device faults on it map
 * it in place with the HMM backend (the GUP backend brings it back).
 */
struct drm_hmirror_migrate {
	__u64 addr;
	__u64 len;
	__u32 flags;
	__u32 pad;
	__u64 migrated;
	__u64 reserved[2];
};

/**
 * struct drm_hmirror_snapshot - the device's view of a range, per page
 * @addr: page-aligned start
 * @npages: pages, 1 .. 65536
 * @out: user pointer to @npages bytes of DRM_HMIRROR_SNAP_* values
 * @pad: zero
 *
 * Returns -EFAULT for a range beyond the device's address width.
 */
struct drm_hmirror_snapshot {
	__u64 addr;
	__u64 npages;
	__u64 out;
	__u64 pad;
};

/**
 * struct drm_hmirror_ctx_stats - counters of the calling file's context
 * @faults: device faults serviced (fault records, plus prefetch calls)
 * @pages_faulted: pages committed to the device page table
 * @ahead_pages: of those, pages from the fault-ahead window
 * @retries_stale: commits abandoned: an invalidation hit the range
 * @retries_busy: retries because hmm_range_fault() saw an invalidation
 * @retries_waited: faults that had to wait for an active invalidation
 * @lock_drops: GUP calls that dropped mmap_lock (locked == 0)
 * @interrupted: fault services ended by a signal
 * @efaults: fault services that failed (command cancelled, -EFAULT)
 * @service_ns: total time servicing faults
 * @invalidations: notifier invalidations seen
 * @device_flushes: of which cleared entries and flushed the device TLB
 * @pages_unmapped: device entries cleared by invalidations
 * @invalidation_ns: total time in invalidation starts
 * @inv_wait_ns: total time faults waited for invalidations
 * @nonblock_deferred: non-blockable invalidations handed to a worker
 * @mapped: pages the device page table maps now
 * @tables_allocated: device page-table pages allocated over the context's
 *	life, root included (empty tables are reused before new ones are
 *	allocated)
 * @reserved: zero
 */
struct drm_hmirror_ctx_stats {
	__u64 faults;
	__u64 pages_faulted;
	__u64 ahead_pages;
	__u64 retries_stale;
	__u64 retries_busy;
	__u64 retries_waited;
	__u64 lock_drops;
	__u64 interrupted;
	__u64 efaults;
	__u64 service_ns;
	__u64 invalidations;
	__u64 device_flushes;
	__u64 pages_unmapped;
	__u64 invalidation_ns;
	__u64 inv_wait_ns;
	__u64 nonblock_deferred;
	__u64 mapped;
	__u64 tables_allocated;
	__u64 reserved[6];
};

#define DRM_IOCTL_HMIRROR_GET_INFO \
	DRM_IOR(DRM_COMMAND_BASE + DRM_HMIRROR_GET_INFO, struct drm_hmirror_info)
#define DRM_IOCTL_HMIRROR_SUBMIT_NOP \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_HMIRROR_SUBMIT_NOP, struct drm_hmirror_submit_nop)
#define DRM_IOCTL_HMIRROR_WAIT \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_HMIRROR_WAIT, struct drm_hmirror_wait)
#define DRM_IOCTL_HMIRROR_STATS \
	DRM_IOR(DRM_COMMAND_BASE + DRM_HMIRROR_STATS, struct drm_hmirror_stats)
#define DRM_IOCTL_HMIRROR_EXEC \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_HMIRROR_EXEC, struct drm_hmirror_exec)
#define DRM_IOCTL_HMIRROR_PREFETCH \
	DRM_IOW(DRM_COMMAND_BASE + DRM_HMIRROR_PREFETCH, struct drm_hmirror_prefetch)
#define DRM_IOCTL_HMIRROR_SNAPSHOT \
	DRM_IOW(DRM_COMMAND_BASE + DRM_HMIRROR_SNAPSHOT, struct drm_hmirror_snapshot)
#define DRM_IOCTL_HMIRROR_CTX_STATS \
	DRM_IOR(DRM_COMMAND_BASE + DRM_HMIRROR_CTX_STATS, struct drm_hmirror_ctx_stats)
#define DRM_IOCTL_HMIRROR_CTX_OPTIONS \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_HMIRROR_CTX_OPTIONS, struct drm_hmirror_ctx_options)
#define DRM_IOCTL_HMIRROR_MIGRATE \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_HMIRROR_MIGRATE, struct drm_hmirror_migrate)

#if defined(__cplusplus)
}
#endif

#endif /* _UAPI_HMIRROR_H */
