/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hmirror: internal driver definitions.
 */
#ifndef HMIRROR_H
#define HMIRROR_H

#include <linux/atomic.h>
#include <linux/idr.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/sizes.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <drm/drm_device.h>
#include <drm/drm_ioctl.h>

#include "hmirror_dev.h"
#include "hmirror_pt.h"

#define HMIRROR_DRIVER_NAME	"hmirror"

/* ivshmem BAR0 registers (QEMU docs/specs/ivshmem-spec.txt). */
#define IVSHMEM_REG_INTR_MASK	0x00
#define IVSHMEM_REG_INTR_STATUS	0x04
#define IVSHMEM_REG_IVPOSITION	0x08
#define IVSHMEM_REG_DOORBELL	0x0c
#define IVSHMEM_BAR_REGS	0
#define IVSHMEM_BAR_SHM		2

/* The device model is ivshmem peer 0. */
#define HMIRROR_DEVICE_PEER	0

/*
 * How long the driver trusts a silent device: a heartbeat that has not
 * moved for this long, a reset that is not acknowledged, or a queue that
 * owes work and makes no progress mark the device dead.
 */
#define HMIRROR_HEARTBEAT_TIMEOUT_MS	3000
#define HMIRROR_RESET_TIMEOUT_MS	5000
#define HMIRROR_PROGRESS_TIMEOUT_MS	10000
#define HMIRROR_WATCHDOG_PERIOD_MS	500
/* A dead device has this long to confirm it stopped DMA, then is polled. */
#define HMIRROR_QUIESCE_TIMEOUT_MS	2000
#define HMIRROR_QUIESCE_POLL_MS		1000
/* Waits re-check the rings this often: an interrupt can be lost. */
#define HMIRROR_POLL_SLICE_MS		100
/* The context number of the driver's own commands (never a user's). */
#define HMIRROR_CTX_DRIVER		0
/* Engine tags user contexts leave to the driver's own commands. */
#define HMIRROR_DRIVER_TAGS		8
/* Device memory the driver takes at most: 4 GiB. */
#define HMIRROR_VRAM_PAGES_MAX		SZ_1M

/*
 * The driver's own view of the device's descriptors, in CPU byte order:
 * only hmirror_hw.c reads and writes the little-endian ones of BAR2.
 */

struct hmirror_devmem;

/**
 * struct hmirror_hw_cmd - a command to queue (seqno and tag are the queue's)
 * @opcode: enum hmirror_opcode
 * @flags: ATOMIC sub-operation, else 0
 * @ctx: context number (FENCE: 0 for the whole queue)
 * @src: source virtual address
 * @dst: destination virtual address
 * @len: bytes
 * @arg0: FILL pattern, ATOMIC operand or expected value
 * @arg1: ATOMIC CMPXCHG new value
 */
struct hmirror_hw_cmd {
	u8 opcode;
	u8 flags;
	u16 ctx;
	u64 src;
	u64 dst;
	u64 len;
	u64 arg0;
	u64 arg1;
};

/**
 * struct hmirror_hw_cpl - a command's completion
 * @seqno: the command's sequence number
 * @status: enum hmirror_status
 * @nfaults: faults the command raised
 * @result: READ checksum, ATOMIC old value, COPY/FILL bytes done
 * @t_submit: device clock (ns): fetched
 * @t_fault: first fault, 0 if none
 * @t_answer: last fault answer taken, 0 if none
 * @t_done: completed
 */
struct hmirror_hw_cpl {
	u64 seqno;
	u16 status;
	u32 nfaults;
	u64 result;
	u64 t_submit;
	u64 t_fault;
	u64 t_answer;
	u64 t_done;
};

/**
 * struct hmirror_hw_fault - a fault record
 * @fault_id: its id, for the answer
 * @ctx: the command's context
 * @queue: the engine's queue
 * @access: HMIRROR_ACCESS_*
 * @tag: the command's tag
 * @addr: first faulting virtual address, page aligned
 * @npages: run of missing pages
 * @seqno: the command's sequence number
 */
struct hmirror_hw_fault {
	u64 fault_id;
	u16 ctx;
	u8 queue;
	u8 access;
	u16 tag;
	u64 addr;
	u32 npages;
	u64 seqno;
};

/**
 * struct hmirror_slot - a command in flight, by tag
 * @seqno: its sequence number, 0 when the tag is free
 * @waiter: the task waiting for it, or NULL
 * @ctx: its context number (fault records must name it)
 * @opcode: its opcode
 * @fault_out: a fault of it was handed to its waiter and is not answered
 *	yet: the device must not complete it meanwhile
 */
struct hmirror_slot {
	u64 seqno;
	struct hmirror_waiter *waiter;
	u16 ctx;
	u8 opcode;
	bool fault_out;
};

/**
 * struct hmirror_queue - driver side of one submission/completion ring pair
 * @lock: serialises submitters, the completion reaper and the fault drain's
 *	hand-over (irq safe)
 * @regs: the queue's registers in BAR2
 * @sq: submission ring in BAR2
 * @cq: completion ring in BAR2
 * @answers: the queue's fault answer table in BAR2, indexed by tag
 * @slots: commands in flight, indexed by tag (sq_entries)
 * @index: queue number (0 is the management queue)
 * @sq_tail: next submission slot, mirrors regs->sq_tail
 * @cq_head: next completion to read, mirrors regs->cq_head
 * @next_seqno: sequence number the next command gets (starts at 1)
 * @tag_hint: where the next free-tag search starts
 * @inflight: tags in use
 * @faults_held: fault records handed to a waiter and not answered yet:
 *	while non-zero the device may legitimately wait on the driver
 * @errors: completions with a non-OK status
 * @progress_seen: last value of regs->progress the driver saw
 * @progress_stamp: jiffies when it last moved or nothing was owed
 * @wait_ewma_ns: moving average of a polling waiter's wait (hybrid polling)
 * @pollers: waiters spinning on the queue now; mirrored to regs->drv_polling
 *	(0 or 1) so that the device may skip its interrupts
 * @wq: waiters for completions, faults or room
 */
struct hmirror_queue {
	spinlock_t lock;	/* see kernel-doc above */
	struct hmirror_queue_regs __iomem *regs;
	struct hmirror_cmd __iomem *sq;
	struct hmirror_cpl __iomem *cq;
	struct hmirror_fault_answer __iomem *answers;
	struct hmirror_slot *slots;
	u32 index;
	u32 sq_tail;
	u32 cq_head;
	u64 next_seqno;
	u32 tag_hint;
	u32 inflight;
	u32 faults_held;
	u64 errors;
	u64 progress_seen;
	unsigned long progress_stamp;
	u64 wait_ewma_ns;
	u32 pollers;
	wait_queue_head_t wq;
};

/**
 * struct hmirror_waiter - a task waiting for one command
 * @seqno: the command's sequence number
 * @tag: its tag
 * @cpl: the completion, once @done
 * @done: completion seen
 * @fault_pending: the command stalled on @fault, to be answered
 * @fault: the device's fault record, validated
 *
 * Lives on the waiting task's stack; fields change under the queue lock.
 */
struct hmirror_waiter {
	u64 seqno;
	u16 tag;
	struct hmirror_hw_cpl cpl;
	bool done;
	bool fault_pending;
	struct hmirror_hw_fault fault;
};

enum hmirror_flags {
	HMIRROR_F_DEAD,		/* device stopped answering or lied */
	HMIRROR_F_UNPLUGGED,	/* being removed */
	HMIRROR_F_QUIESCED,	/* dead or removed, and confirmed it does no DMA */
};

/**
 * struct hmirror_device - one hmirror PCI function
 * @drm: the DRM accel device (must be first for devm_drm_dev_alloc)
 * @pdev: PCI device
 * @regs_bar: ivshmem BAR0 registers
 * @shm: BAR2, the device's shared memory
 * @shm_len: mapped length of BAR2
 * @hdr: copy of the validated device header (little-endian)
 * @version: its version, major << 16 | minor
 * @features: its HMIRROR_FEAT_* bits
 * @bar_size: bytes of BAR2 it uses
 * @sq_entries: submission ring entries per queue (and tags per queue)
 * @cq_entries: completion ring entries per queue
 * @fault_entries: fault ring entries
 * @max_contexts: context table entries
 * @regs_off: BAR2 offset of struct hmirror_regs
 * @queues_off: BAR2 offset of the queue registers
 * @fault_regs_off: BAR2 offset of the fault ring registers
 * @ctx_off: BAR2 offset of the context table
 * @va_bits: the device's virtual address width (48 or 57)
 * @va_end: first user address the device cannot translate
 * @huge: the device takes 2 MiB leaves
 * @poll_hints: the device has FEAT_POLL: it tells when it needs no doorbell
 *	and skips interrupts while a waiter spins
 * @shootdown: the device has FEAT_SHOOTDOWN (DOC: TLB shootdown)
 * @sd_off: BAR2 offset of its block
 * @sd: the shootdown block in BAR2 (with @shootdown)
 * @sd_lock: serialises shootdown publishers
 * @sd_epoch: last shootdown epoch published (under @sd_lock)
 * @regs: global registers in BAR2
 * @queues: one per device queue
 * @num_queues: queues in use (management + engines)
 * @ctx_cap: commands one context may have in flight on one engine
 * @driver_tags: tags of each engine user contexts leave to the driver
 * @vram_pages: 4 KiB pages of device memory the device has (0: none)
 * @devmem: the device memory as the kernel's DEVICE_PRIVATE pages, NULL
 *	when there is none or the kernel lacks DEVICE_PRIVATE
 * @ctx_inflight: per context number and queue, commands in flight (under
 *	the queue's lock)
 * @flags: enum hmirror_flags bits
 * @ctrl_lock: serialises drv_ctrl / generation writes
 * @ctrl_gen: last drv_ctrl_gen written
 * @reset_gen: last drv_reset_gen written
 * @quiesce: after death: wait for the device to confirm it stopped DMA
 * @quiesce_deadline: jiffies after which the wait is reported as failed
 * @quiesce_late: that was reported
 * @graveyard: what a dead device might still reach, until it quiesces
 * @quiesced: called once the device proved it does no more DMA (a dead or
 *	removed device), to release what it could reach
 * @irqs: interrupts handled per vector
 * @doorbells: doorbells rung
 * @doorbells_skipped: doorbells not needed: the engine was awake (FEAT_POLL)
 * @shootdowns: invalidations done by shootdown
 * @shootdown_fallbacks: shootdowns that waited too long and fell back to
 *	TLB_INVAL
 * @cmds_submitted: commands queued
 * @cmds_completed: completions consumed
 * @nonblock_deferred: non-blockable invalidations handed to a worker
 * @watchdog: periodic heartbeat and progress check
 * @last_heartbeat: heartbeat value seen last by the watchdog
 * @heartbeat_stamp: jiffies when @last_heartbeat last changed
 * @dead_reason: why the device was marked dead (static string)
 * @ctx_ida: device context numbers in use
 * @live_contexts: contexts alive (open files)
 * @fault_lock: serialises fault ring consumers
 * @fault_regs: fault ring registers in BAR2
 * @fault_ring: fault records in BAR2
 * @fault_head: next record to read, mirrors fault_regs->head
 * @faults_orphaned: records naming no waiting command, cancelled
 * @inject_leave: fault injection (debugfs): waiters still to leave as if a
 *	fatal signal came just as a fault was handed to them
 * @ctx_list_lock: protects @ctx_list
 * @ctx_list: live contexts (struct hmirror_ctx.link)
 */
struct hmirror_device {
	struct drm_device drm;
	struct pci_dev *pdev;
	void __iomem *regs_bar;
	void __iomem *shm;
	resource_size_t shm_len;
	struct hmirror_header hdr;
	u32 version;
	u64 features;
	u32 bar_size;
	u32 sq_entries;
	u32 cq_entries;
	u32 fault_entries;
	u32 max_contexts;
	u32 regs_off;
	u32 queues_off;
	u32 fault_regs_off;
	u32 ctx_off;
	u32 va_bits;
	u64 va_end;
	bool huge;
	bool poll_hints;
	bool shootdown;
	u32 sd_off;
	struct hmirror_shootdown __iomem *sd;
	spinlock_t sd_lock;	/* see kernel-doc above */
	u64 sd_epoch;
	struct hmirror_regs __iomem *regs;
	struct hmirror_queue queues[HMIRROR_MAX_QUEUES];
	u32 num_queues;
	u32 ctx_cap;
	u32 driver_tags;
	u32 vram_pages;
	struct hmirror_devmem *devmem;
	u32 *ctx_inflight;
	unsigned long flags;
	spinlock_t ctrl_lock;	/* see kernel-doc above */
	u32 ctrl_gen;
	u32 reset_gen;
	struct delayed_work quiesce;
	unsigned long quiesce_deadline;
	bool quiesce_late;
	struct hmirror_pt_graveyard graveyard;
	void (*quiesced)(struct hmirror_device *hdev);
	atomic64_t irqs[HMIRROR_NUM_VECTORS];
	atomic64_t doorbells;
	atomic64_t doorbells_skipped;
	atomic64_t shootdowns;
	atomic64_t shootdown_fallbacks;
	atomic64_t cmds_submitted;
	atomic64_t cmds_completed;
	atomic64_t nonblock_deferred;
	struct delayed_work watchdog;
	u64 last_heartbeat;
	unsigned long heartbeat_stamp;
	const char *dead_reason;
	struct ida ctx_ida;
	atomic_t live_contexts;
	spinlock_t fault_lock;	/* see kernel-doc above */
	struct hmirror_fault_regs __iomem *fault_regs;
	struct hmirror_fault __iomem *fault_ring;
	u32 fault_head;
	atomic64_t faults_orphaned;
	atomic_t inject_leave;
	struct mutex ctx_list_lock;	/* see kernel-doc above */
	struct list_head ctx_list;
};

static inline struct hmirror_device *to_hmirror(struct drm_device *drm)
{
	return container_of(drm, struct hmirror_device, drm);
}

/* hmirror_hw.c: device access */
int hmirror_hw_check_header(struct hmirror_device *hdev);
int hmirror_hw_init(struct hmirror_device *hdev);
void hmirror_hw_fini(struct hmirror_device *hdev);
void hmirror_hw_mark_dead(struct hmirror_device *hdev, const char *reason);
int hmirror_hw_status(struct hmirror_device *hdev);
bool hmirror_hw_dma_stopped(struct hmirror_device *hdev);
/*
 * How a wait ends early: on any signal, on a fatal one, or (neither flag)
 * only when the device fails; every wait is bounded by the device's
 * progress.
 */
#define HMIRROR_WAIT_INTERRUPTIBLE	BIT(0)
#define HMIRROR_WAIT_KILLABLE		BIT(1)
/* Spin on the rings for a short, learnt window before sleeping. */
#define HMIRROR_WAIT_POLL		BIT(2)
int hmirror_hw_submit(struct hmirror_device *hdev, u32 qi,
		      const struct hmirror_hw_cmd *cmds, u32 count,
		      u64 *last_seqno, struct hmirror_waiter *w,
		      unsigned int flags);
int hmirror_hw_wait_seqno(struct hmirror_device *hdev, u32 qi, u64 seqno,
			  unsigned long timeout_ms, u64 *completed,
			  unsigned int flags);
int hmirror_hw_wait_done(struct hmirror_device *hdev, u32 qi,
			 struct hmirror_waiter *w, unsigned long timeout_ms,
			 unsigned int flags);
int hmirror_hw_wait_event(struct hmirror_device *hdev, u32 qi,
			  struct hmirror_waiter *w, struct hmirror_hw_fault *fault,
			  unsigned int flags);
void hmirror_hw_forget(struct hmirror_device *hdev, u32 qi,
		       struct hmirror_waiter *w);
void hmirror_hw_fault_answer(struct hmirror_device *hdev, u32 qi,
			     const struct hmirror_hw_fault *f, u32 answer);
int hmirror_hw_migrate(struct hmirror_device *hdev, dma_addr_t table, u32 n);
int hmirror_hw_tlb_inval(struct hmirror_device *hdev, u32 ctx, u64 start,
			 u64 end);
bool hmirror_hw_seqno_done(struct hmirror_device *hdev, u32 qi, u64 seqno);

/* hmirror_ioctl.c: the table is indexed by ioctl number */
#define HMIRROR_NUM_IOCTLS	10
extern const struct drm_ioctl_desc hmirror_ioctls[HMIRROR_NUM_IOCTLS];

#endif /* HMIRROR_H */
