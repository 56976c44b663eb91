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
