// SPDX-License-Identifier: MIT
/*
 * libhmirror: see libhmirror.h.
 *
 * drmIoctl() restarts on EINTR, which is right for queries but would hide
 * the -EINTR a signal must produce for device waits; those use ioctl(2).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <xf86drm.h>

#include "libhmirror.h"

static int neg_errno(int ret)
{
	return ret < 0 ? -errno : ret;
}

int hmirror_open_path(const char *path)
{
	drmVersionPtr ver;
	int fd, is_hmirror;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ver = drmGetVersion(fd);
	is_hmirror = ver && ver->name && !strcmp(ver->name, "hmirror");
	drmFreeVersion(ver);
	if (!is_hmirror) {
		close(fd);
		return -ENODEV;
	}
	return fd;
}

int hmirror_open(unsigned int index)
{
	char path[64];

	snprintf(path, sizeof(path), "/dev/accel/accel%u", index);
	return hmirror_open_path(path);
}

int hmirror_open_nth(unsigned int n)
{
	unsigned int minor, seen = 0;

	for (minor = 0; minor < 64; minor++) {
		int fd = hmirror_open(minor);

		if (fd == -ENODEV || fd == -ENOENT)
			continue;
		if (fd < 0)
			return fd;
		if (seen++ == n)
			return fd;
		close(fd);
	}
	return -ENOENT;
}

void hmirror_close(int fd)
{
	if (fd >= 0)
		close(fd);
}

int hmirror_get_info(int fd, struct drm_hmirror_info *info)
{
	memset(info, 0, sizeof(*info));
	return neg_errno(drmIoctl(fd, DRM_IOCTL_HMIRROR_GET_INFO, info));
}

int hmirror_submit_nop(int fd, uint32_t engine, uint32_t count,
		       uint32_t flags, uint64_t *fence)
{
	struct drm_hmirror_submit_nop args = {
		.engine = engine, .count = count, .flags = flags,
	};
	int ret = neg_errno(ioctl(fd, DRM_IOCTL_HMIRROR_SUBMIT_NOP, &args));

	if (fence)
		*fence = args.fence;
	return ret;
}

int hmirror_wait(int fd, uint32_t engine, uint64_t fence, uint64_t timeout_ms,
		 uint64_t *completed)
{
	struct drm_hmirror_wait args = {
		.engine = engine, .fence = fence, .timeout_ms = timeout_ms,
	};
	int ret = neg_errno(ioctl(fd, DRM_IOCTL_HMIRROR_WAIT, &args));

	if (completed)
		*completed = args.completed;
	return ret;
}

int hmirror_get_stats(int fd, struct drm_hmirror_stats *stats)
{
	memset(stats, 0, sizeof(*stats));
	return neg_errno(drmIoctl(fd, DRM_IOCTL_HMIRROR_STATS, stats));
}

int hmirror_ctx_options(int fd, struct drm_hmirror_ctx_options *opts)
{
	return neg_errno(drmIoctl(fd, DRM_IOCTL_HMIRROR_CTX_OPTIONS, opts));
}

int hmirror_exec(int fd, struct drm_hmirror_exec *x)
{
	return neg_errno(ioctl(fd, DRM_IOCTL_HMIRROR_EXEC, x));
}

static int exec_simple(int fd, uint32_t op, uint32_t engine, uint64_t addr,
		       uint64_t buf, uint64_t len, uint64_t value,
		       uint64_t value2, uint64_t *result)
{
	struct drm_hmirror_exec x = {
		.op = op, .engine = engine, .addr = addr, .buf = buf,
		.len = len, .value = value, .value2 = value2,
	};
	int ret = hmirror_exec(fd, &x);

	if (result)
		*result = x.result;
	return ret;
}

int hmirror_read(int fd, uint32_t engine, uint64_t addr, void *buf,
		 uint64_t len)
{
	return exec_simple(fd, DRM_HMIRROR_OP_READ, engine, addr,
			   (uintptr_t)buf, len, 0, 0, NULL);
}

int hmirror_write(int fd, uint32_t engine, uint64_t addr, const void *buf,
		  uint64_t len)
{
	return exec_simple(fd, DRM_HMIRROR_OP_WRITE, engine, addr,
			   (uintptr_t)buf, len, 0, 0, NULL);
}

int hmirror_copy(int fd, uint32_t engine, uint64_t dst, uint64_t src,
		 uint64_t len)
{
	return exec_simple(fd, DRM_HMIRROR_OP_COPY, engine, dst, src, len, 0,
			   0, NULL);
}

int hmirror_fill(int fd, uint32_t engine, uint64_t addr, uint64_t len,
		 uint64_t pattern)
{
	return exec_simple(fd, DRM_HMIRROR_OP_FILL, engine, addr, 0, len,
			   pattern, 0, NULL);
}

int hmirror_checksum(int fd, uint32_t engine, uint64_t addr, uint64_t len,
		     uint64_t *sum)
{
	return exec_simple(fd, DRM_HMIRROR_OP_CHECKSUM, engine, addr, 0, len,
			   0, 0, sum);
}

int hmirror_atomic_add(int fd, uint32_t engine, uint64_t addr,
		       uint64_t value, uint64_t *old)
{
	return exec_simple(fd, DRM_HMIRROR_OP_ATOMIC_ADD, engine, addr, 0, 8,
			   value, 0, old);
}

int hmirror_atomic_cmpxchg(int fd, uint32_t engine, uint64_t addr,
			   uint64_t expected, uint64_t desired, uint64_t *old)
{
	return exec_simple(fd, DRM_HMIRROR_OP_ATOMIC_CMPXCHG, engine, addr, 0,
			   8, expected, desired, old);
}

int hmirror_prefetch(int fd, uint64_t addr, uint64_t len, int write)
{
	struct drm_hmirror_prefetch p = {
		.addr = addr, .len = len,
		.flags = write ? DRM_HMIRROR_PREFETCH_WRITE : 0,
	};

	return neg_errno(ioctl(fd, DRM_IOCTL_HMIRROR_PREFETCH, &p));
}

int hmirror_migrate(int fd, uint64_t addr, uint64_t len, uint32_t flags,
		    uint64_t *migrated)
{
	struct drm_hmirror_migrate m = {
		.addr = addr, .len = len, .flags = flags,
	};
	int ret = neg_errno(ioctl(fd, DRM_IOCTL_HMIRROR_MIGRATE, &m));

	if (migrated)
		*migrated = m.migrated;
	return ret;
}

int hmirror_snapshot(int fd, uint64_t addr, uint64_t npages, uint8_t *out)
{
	struct drm_hmirror_snapshot s = {
		.addr = addr, .npages = npages, .out = (uintptr_t)out,
	};

	return neg_errno(drmIoctl(fd, DRM_IOCTL_HMIRROR_SNAPSHOT, &s));
}

int hmirror_get_ctx_stats(int fd, struct drm_hmirror_ctx_stats *st)
{
	memset(st, 0, sizeof(*st));
	return neg_errno(drmIoctl(fd, DRM_IOCTL_HMIRROR_CTX_STATS, st));
}

uint64_t hmirror_checksum_cpu(const void *p, uint64_t len)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ull, w;
	uint64_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&w, b + i, 8);
		h = (h ^ w) * 0x100000001b3ull;
	}
	return h;
}

/* The test_hmm ABI: facts of lib/test_hmm_uapi.h. */
struct dmirror_cmd {
	uint64_t addr;
	uint64_t ptr;
	uint64_t npages;
	uint64_t cpages;
	uint64_t faults;
};

#define DMIRROR_IOCTL_READ	_IOWR('H', 0x00, struct dmirror_cmd)
#define DMIRROR_IOCTL_TO_DEV	_IOWR('H', 0x02, struct dmirror_cmd)
#define DMIRROR_IOCTL_TO_SYS	_IOWR('H', 0x03, struct dmirror_cmd)

int hmirror_dmirror_read(int fd, uint64_t addr, void *buf, uint64_t npages,
			 uint64_t *faults)
{
	struct dmirror_cmd c = {
		.addr = addr, .ptr = (uintptr_t)buf, .npages = npages,
	};
	int ret = neg_errno(ioctl(fd, DMIRROR_IOCTL_READ, &c));

	if (faults)
		*faults = c.faults;
	return ret;
}

int hmirror_dmirror_migrate(int fd, uint64_t addr, void *buf, uint64_t npages,
			    int to_device, uint64_t *cpages)
{
	struct dmirror_cmd c = {
		.addr = addr, .ptr = (uintptr_t)buf, .npages = npages,
	};
	int ret = neg_errno(ioctl(fd, to_device ? DMIRROR_IOCTL_TO_DEV :
					     DMIRROR_IOCTL_TO_SYS, &c));

	if (cpages)
		*cpages = c.cpages;
	return ret;
}
