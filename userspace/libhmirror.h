/* SPDX-License-Identifier: MIT */
/*
 * libhmirror: a thin C library over the hmirror ioctls (libdrm based).
 *
 * Every call returns 0 (or a file descriptor) on success and a negative
 * errno on failure; errno itself is left as the kernel set it.
 */
#ifndef LIBHMIRROR_H
#define LIBHMIRROR_H

#include <stdint.h>

#include "uapi/hmirror.h"

/*
 * hmirror_open - open the hmirror device /dev/accel/accel<index>
 * @index: accel minor index
 * Returns: a file descriptor, -ENODEV if that node is not an hmirror
 * device, or the -errno of open(2).
 */
int hmirror_open(unsigned int index);

/*
 * hmirror_open_nth - open the @n-th hmirror device (0-based) among the
 * /dev/accel/accel* nodes, skipping other accelerators; minors change
 * when devices are unbound and bound again, this order does not
 * Returns: a file descriptor, or -ENOENT when there are not that many.
 */
int hmirror_open_nth(unsigned int n);

/*
 * hmirror_open_path - open an hmirror device node by path
 * @path: e.g. "/dev/accel/accel0"
 * Returns: a file descriptor, -ENODEV if the node's driver is not
 * "hmirror", or the -errno of open(2).
 */
int hmirror_open_path(const char *path);

/*
 * hmirror_close - close a descriptor from hmirror_open*()
 */
void hmirror_close(int fd);

/*
 * hmirror_get_info - what the device is (version, engines, ring sizes)
 * Returns: 0 or -errno.
 */
int hmirror_get_info(int fd, struct drm_hmirror_info *info);

/*
 * hmirror_submit_nop - queue @count NOPs on @engine
 * @flags: DRM_HMIRROR_NOP_FENCE (last one is a FENCE),
 *	   DRM_HMIRROR_NOP_WAIT (return after the device completed them)
 * @fence: out: sequence number of the last command, for hmirror_wait()
 * Returns: 0 or -errno; -EINTR is not retried (a signal ends a wait),
 * -EIO when the device is dead, -ENODEV once it has been removed.
 */
int hmirror_submit_nop(int fd, uint32_t engine, uint32_t count,
		       uint32_t flags, uint64_t *fence);

/*
 * hmirror_wait - wait until @engine has completed @fence
 * @timeout_ms: 0 polls (-EBUSY when not done); else -ETIME on expiry
 * @completed: out (may be NULL): the engine's last completed sequence number
 * Returns: 0 or -errno, -EINTR on a signal.
 */
int hmirror_wait(int fd, uint32_t engine, uint64_t fence, uint64_t timeout_ms,
		 uint64_t *completed);

/*
 * hmirror_get_stats - driver and device counters
 * Returns: 0 or -errno.
 */
int hmirror_get_stats(int fd, struct drm_hmirror_stats *stats);

/*
 * hmirror_ctx_options - read, and with DRM_HMIRROR_CTX_SET in opts->flags
 * set, the options of the file's context (fault backend, fault-ahead)
 * Returns: 0 or -errno; -EPERM from a process other than the opener.
 */
int hmirror_ctx_options(int fd, struct drm_hmirror_ctx_options *opts);

/*
 * hmirror_exec - run one device operation (struct drm_hmirror_exec) and
 * wait for it; the device faults on the process's pages through the mirror.
 * Returns: 0; -EFAULT (the device touched memory the process cannot access
 * that way; cancelled), -EINTR (a signal ended a fault service; cancelled),
 * -EINVAL for a malformed request, -EIO for a dead device.  Outputs
 * (result, faults, timestamps) are in *x.
 */
int hmirror_exec(int fd, struct drm_hmirror_exec *x);

/* Convenience wrappers around hmirror_exec() on engine @engine. */
int hmirror_read(int fd, uint32_t engine, uint64_t addr, void *buf,
		 uint64_t len);
int hmirror_write(int fd, uint32_t engine, uint64_t addr, const void *buf,
		  uint64_t len);
int hmirror_copy(int fd, uint32_t engine, uint64_t dst, uint64_t src,
		 uint64_t len);
int hmirror_fill(int fd, uint32_t engine, uint64_t addr, uint64_t len,
		 uint64_t pattern);
int hmirror_checksum(int fd, uint32_t engine, uint64_t addr, uint64_t len,
		     uint64_t *sum);
int hmirror_atomic_add(int fd, uint32_t engine, uint64_t addr,
		       uint64_t value, uint64_t *old);
int hmirror_atomic_cmpxchg(int fd, uint32_t engine, uint64_t addr,
			   uint64_t expected, uint64_t desired, uint64_t *old);

/*
 * hmirror_prefetch - mirror [addr, addr + len) now, writable if @write
 * Returns: 0 or -errno (-EFAULT for an inaccessible range).
 */
int hmirror_prefetch(int fd, uint64_t addr, uint64_t len, int write);

/*
 * hmirror_migrate - move [addr, addr + len) into the device's memory, or
 * back with DRM_HMIRROR_MIGRATE_TO_SYSTEM in @flags; *@migrated (may be
 * NULL) gets the pages moved
 * Returns: 0 or -errno (-EOPNOTSUPP without device memory).
 */
int hmirror_migrate(int fd, uint64_t addr, uint64_t len, uint32_t flags,
		    uint64_t *migrated);

/*
 * hmirror_snapshot - the device's view of @npages pages from @addr, one
 * DRM_HMIRROR_SNAP_* byte per page into @out
 * Returns: 0 or -errno.
 */
int hmirror_snapshot(int fd, uint64_t addr, uint64_t npages, uint8_t *out);

/*
 * hmirror_get_ctx_stats - fault and invalidation counters of the file's
 * context.  Returns: 0 or -errno.
 */
int hmirror_get_ctx_stats(int fd, struct drm_hmirror_ctx_stats *st);

/*
 * hmirror_checksum_cpu - what the device's CHECKSUM computes, on the CPU
 * (FNV-1a over 64-bit little-endian words); @len a multiple of 8.
 */
uint64_t hmirror_checksum_cpu(const void *p, uint64_t len);

/*
 * hmirror_dmirror_read - READ through the kernel's test_hmm ioctl ABI
 * (lib/test_hmm_uapi.h), which hmirror's compat nodes /dev/hmm_dmirror0-1
 * speak too: the device copies @npages pages at @addr into @buf
 * @fd: an open /dev/hmm_dmirrorN (hmirror's or test_hmm's)
 * @faults: out (may be NULL): the faults the mirror counted for the call
 * Returns: 0 or -errno.
 */
int hmirror_dmirror_read(int fd, uint64_t addr, void *buf, uint64_t npages,
			 uint64_t *faults);

/*
 * hmirror_dmirror_migrate - MIGRATE_TO_DEV (@to_device) or MIGRATE_TO_SYS
 * through the test_hmm ABI: @npages pages at @addr; to the device, the
 * device's copy is read back into @buf (@npages pages) as test_hmm does
 * @cpages: out (may be NULL): the pages the call reports
 * Returns: 0 or -errno (-EOPNOTSUPP: no device memory).
 */
int hmirror_dmirror_migrate(int fd, uint64_t addr, void *buf, uint64_t npages,
			    int to_device, uint64_t *cpages);

#endif /* LIBHMIRROR_H */
