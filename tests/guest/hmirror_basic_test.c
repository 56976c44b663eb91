// SPDX-License-Identifier: GPL-2.0
/*
 * Guest kselftest: the spine.  Device discovery, GET_INFO, NOPs through the
 * real rings, fences, interrupts, bad arguments, and unbind/rebind while a
 * file is open.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "hmirror_dev.h"
#include "libhmirror.h"
#include "guest_util.h"

#define PCI_DEVICES	"/sys/bus/pci/devices"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ull + ts.tv_nsec / 1000000;
}

static int read_sysfs(const char *dir, const char *name, char *buf, size_t len)
{
	char path[512];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* Count ivshmem functions, and those bound to hmirror; remember one bound. */
static void count_ivshmem(int *total, int *bound, char *bound_bdf, size_t len)
{
	struct dirent *de;
	DIR *d = opendir(PCI_DEVICES);

	*total = *bound = 0;
	if (!d)
		return;
	while ((de = readdir(d))) {
		char dir[300], val[64], link[320], drv[512];
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(dir, sizeof(dir), PCI_DEVICES "/%s", de->d_name);
		if (read_sysfs(dir, "vendor", val, sizeof(val)) || strcmp(val, "0x1af4"))
			continue;
		if (read_sysfs(dir, "device", val, sizeof(val)) || strcmp(val, "0x1110"))
			continue;
		(*total)++;
		snprintf(link, sizeof(link), "%s/driver", dir);
		n = readlink(link, drv, sizeof(drv) - 1);
		if (n > 0) {
			drv[n] = '\0';
			if (strstr(drv, "/hmirror")) {
				(*bound)++;
				snprintf(bound_bdf, len, "%.63s", de->d_name);
			}
		}
	}
	closedir(d);
}

/* Wait until the driver has handled as many CQ interrupts as the device sent. */
static int wait_irqs_delivered(int fd, uint64_t want, uint64_t *got)
{
	struct drm_hmirror_stats st;
	uint64_t end = now_ms() + 5000;

	do {
		int ret = hmirror_get_stats(fd, &st);

		if (ret)
			return ret;
		*got = st.irqs[HMIRROR_VEC_CQ];
		if (*got >= want)
			return 0;
		usleep(1000);
	} while (now_ms() < end);
	return -ETIME;
}

FIXTURE(dev) {
	int fd;
	struct drm_hmirror_info info;
};

FIXTURE_SETUP(dev)
{
	self->fd = hmirror_open_nth(0);
	ASSERT_GE(self->fd, 0) TH_LOG("open /dev/accel/accel0: %s", strerror(-self->fd));
	ASSERT_EQ(0, hmirror_get_info(self->fd, &self->info));
}

FIXTURE_TEARDOWN(dev)
{
	hmirror_close(self->fd);
}

TEST(binds_only_hmirror_ivshmem)
{
	int total, bound;
	char bdf[64] = "";
	const char *plain = getenv("HMIRROR_PLAIN_IVSHMEM");
	const char *ndev = getenv("HMIRROR_NUM_DEVICES");
	int want = ndev ? atoi(ndev) : 1;

	count_ivshmem(&total, &bound, bdf, sizeof(bdf));
	ASSERT_EQ(want, bound);
	/* The runner adds plain ivshmem devices that must stay unbound. */
	ASSERT_EQ(bound + (plain ? atoi(plain) : 0), total);
	ASSERT_EQ(-ENOENT, hmirror_open(bound + 8));
}

TEST_F(dev, get_info)
{
	struct drm_hmirror_info *i = &self->info;

	ASSERT_EQ(HMIRROR_VERSION_MAJOR, i->version >> 16);
	ASSERT_GE(i->num_engines, 1);
	ASSERT_LE(i->num_engines, HMIRROR_MAX_QUEUES - 1);
	ASSERT_NE(0, i->features & HMIRROR_FEAT_NOP);
	ASSERT_EQ(0, i->sq_entries & (i->sq_entries - 1));
	ASSERT_GE(i->sq_entries, 2);
	ASSERT_EQ(0, i->cq_entries & (i->cq_entries - 1));
	ASSERT_EQ(HMIRROR_NUM_VECTORS, i->num_vectors);
	ASSERT_GE(i->bar_size, HMIRROR_RINGS_OFF);
	for (unsigned int k = 0; k < sizeof(i->reserved) / sizeof(i->reserved[0]); k++)
		ASSERT_EQ(0, i->reserved[k]);
}

/*
 * Tests that set the driver's polling parameters; the teardown restores
 * them.
 */
#define PARAMS "/sys/module/hmirror/parameters/"

FIXTURE(poll) {
	int fd;
	struct drm_hmirror_info info;
	char poll_max_us[32], engine_poll_us[32];
};

FIXTURE_SETUP(poll)
{
	self->fd = hmirror_open_nth(0);
	ASSERT_GE(self->fd, 0);
	ASSERT_EQ(0, hmirror_get_info(self->fd, &self->info));
	ASSERT_EQ(0, read_sysfs(PARAMS, "poll_max_us", self->poll_max_us,
				sizeof(self->poll_max_us)));
	ASSERT_EQ(0, read_sysfs(PARAMS, "engine_poll_us", self->engine_poll_us,
				sizeof(self->engine_poll_us)));
}

FIXTURE_TEARDOWN(poll)
{
	write_sysfs(PARAMS "poll_max_us", self->poll_max_us);
	write_sysfs(PARAMS "engine_poll_us", self->engine_poll_us);
	hmirror_close(self->fd);
}

/* Waiters that sleep (no polling): every NOP gets its interrupt. */
TEST_F(poll, nop_fence_and_interrupt)
{
	struct drm_hmirror_stats before, after;
	uint64_t fence, fence2, got;

	ASSERT_EQ(0, write_sysfs(PARAMS "poll_max_us", "0"));
	ASSERT_EQ(0, write_sysfs(PARAMS "engine_poll_us", "0"));

	ASSERT_EQ(0, hmirror_get_stats(self->fd, &before));
	ASSERT_EQ(0, hmirror_submit_nop(self->fd, 0, 1, DRM_HMIRROR_NOP_WAIT, &fence));
	ASSERT_GE(fence, 1);
	ASSERT_EQ(0, hmirror_submit_nop(self->fd, 0, 1, DRM_HMIRROR_NOP_WAIT, &fence2));
	ASSERT_EQ(fence + 1, fence2);
	ASSERT_EQ(0, hmirror_get_stats(self->fd, &after));
	ASSERT_EQ(before.cmds_submitted + 2, after.cmds_submitted);
	ASSERT_GE(after.cmds_completed, before.cmds_completed + 2);
	ASSERT_GE(after.dev_commands, before.dev_commands + 2);
	/* The device raised at least one completion interrupt per batch... */
	ASSERT_GE(after.dev_irqs_sent[HMIRROR_VEC_CQ],
		  before.dev_irqs_sent[HMIRROR_VEC_CQ] + 2);
	/*
	 * ...and they reach the driver (MSI-X through ivshmem works).  Two
	 * eventfd signals before QEMU reads the first become one interrupt,
	 * so only one is certain.
	 */
	ASSERT_EQ(0, wait_irqs_delivered(self->fd,
					 before.irqs[HMIRROR_VEC_CQ] + 1, &got));
	ASSERT_EQ(0, after.dev_errors);
}

/*
 * FEAT_POLL: while an engine stays awake after its work (engine_poll_us)
 * the driver's next submission needs no doorbell, and every command still
 * completes.
 */
TEST_F(poll, awake_engine_needs_no_doorbell)
{
	struct drm_hmirror_stats before, after;
	uint64_t fence, prev;
	int i;

	if (!(self->info.features & HMIRROR_FEAT_POLL))
		SKIP(return, "device without FEAT_POLL");
	ASSERT_EQ(0, write_sysfs(PARAMS "poll_max_us", "200"));
	ASSERT_EQ(0, write_sysfs(PARAMS "engine_poll_us", "1000"));
	ASSERT_EQ(0, hmirror_submit_nop(self->fd, 0, 1, DRM_HMIRROR_NOP_WAIT, &prev));
	ASSERT_EQ(0, hmirror_get_stats(self->fd, &before));
	for (i = 0; i < 200; i++) {
		ASSERT_EQ(0, hmirror_submit_nop(self->fd, 0, 1, DRM_HMIRROR_NOP_WAIT,
						&fence));
		ASSERT_EQ(prev + 1, fence);
		prev = fence;
	}
	ASSERT_EQ(0, hmirror_get_stats(self->fd, &after));
	ASSERT_EQ(before.cmds_submitted + 200, after.cmds_submitted);
	ASSERT_GE(after.cmds_completed, before.cmds_completed + 200);
	ASSERT_EQ(0, after.dev_errors);
	/* The engine spins 1 ms after each NOP: most need no doorbell. */
	TH_LOG("%llu of 200 submissions rang no doorbell",
	       (unsigned long long)(after.doorbells_skipped - before.doorbells_skipped));
	ASSERT_GT(after.doorbells_skipped, before.doorbells_skipped);
	ASSERT_LT(after.doorbells - before.doorbells, 200);
}

TEST_F(dev, many_nops_wrap_the_ring)
{
	uint64_t fence = 0, prev, completed;
	uint32_t count = 4096;
	int round;

	ASSERT_EQ(0, hmirror_submit_nop(self->fd, 0, 1, DRM_HMIRROR_NOP_WAIT, &prev));
	/* 3 x 4096 commands wrap any ring of up to 4096 entries 3 times. */
	for (round = 0; round < 3; round++) {
		ASSERT_EQ(0, hmirror_submit_nop(self->fd, 0, count,
						DRM_HMIRROR_NOP_FENCE, &fence));
		ASSERT_EQ(prev + count, fence);
		prev = fence;
	}
	ASSERT_EQ(0, hmirror_wait(self->fd, 0, fence, 20000, &completed));
	ASSERT_GE(completed, fence);
}

/*
 * NOP|WAIT returns once the last of its commands completed, however many
 * submissions it took (the driver queues them 16 at a time): a poll of
 * the returned fence right after succeeds.  (A wait on a command of an
 * earlier submission would leave thousands of NOPs to run at 4096.)
 */
TEST_F(dev, nop_wait_waits_for_the_last_command)
{
	static const uint32_t counts[] = { 1, 2, 15, 16, 17, 33, 100, 4096 };
	uint64_t fence, completed;
	unsigned int i, flags;

	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		for (flags = 0; flags <= DRM_HMIRROR_NOP_FENCE; flags += DRM_HMIRROR_NOP_FENCE) {
			ASSERT_EQ(0, hmirror_submit_nop(self->fd, 0, counts[i],
							DRM_HMIRROR_NOP_WAIT | flags,
							&fence));
			ASSERT_EQ(0, hmirror_wait(self->fd, 0, fence, 0, &completed))
				TH_LOG("%u NOPs%s: the last one had not completed",
				       counts[i], flags ? " and a FENCE" : "");
			ASSERT_GE(completed, fence);
		}
	}
}

/*
 * A fault whose service fails leaves nothing parked: a FENCE of the
 * context completes after it.  Booted with swiotlb=force (make check's
 * bounce scenario) every service fails with -EIO, because the driver
 * cannot share a page that needs bounce buffering; the driver used to
 * leave such a fault unanswered, and the command and every later fence
 * of its context waited for good.  Otherwise the command just succeeds.
 */
TEST_F(dev, fence_completes_after_a_failed_fault_service)
{
	uint8_t *p = map_anon(PAGE);
	uint64_t sum = 0, fence;
	char cmdline[1024] = "";
	int ret;
	FILE *f = fopen("/proc/cmdline", "r");

	ASSERT_NE(NULL, p);
	if (f) {
		if (!fgets(cmdline, sizeof(cmdline), f))
			cmdline[0] = 0;
		fclose(f);
	}
	ret = hmirror_checksum(self->fd, 0, (uintptr_t)p, PAGE, &sum);
	if (strstr(cmdline, "swiotlb=force")) {
		ASSERT_EQ(-EIO, ret);
	} else {
		ASSERT_EQ(0, ret);
	}
	ASSERT_EQ(0, hmirror_submit_nop(self->fd, 0, 1,
					DRM_HMIRROR_NOP_FENCE | DRM_HMIRROR_NOP_WAIT,
					&fence));
	munmap(p, PAGE);
}

TEST_F(dev, wait_poll_and_timeout)
{
	uint64_t fence, completed;
	int ret;

	ASSERT_EQ(0, hmirror_submit_nop(self->fd, 0, 64, 0, &fence));
	ret = hmirror_wait(self->fd, 0, fence, 0, &completed);
	ASSERT_TRUE(ret == 0 || ret == -EBUSY);
	if (ret == -EBUSY) {
		ASSERT_LT(completed, fence);
	}
	ASSERT_EQ(0, hmirror_wait(self->fd, 0, fence, 10000, &completed));
	ASSERT_GE(completed, fence);
	/* Once done, a poll succeeds at once. */
	ASSERT_EQ(0, hmirror_wait(self->fd, 0, fence, 0, &completed));
}

TEST_F(dev, engines_are_independent)
{
	uint64_t f0a, f0b, f1;

	if (self->info.num_engines < 2)
		SKIP(return, "one engine only");
	ASSERT_EQ(0, hmirror_submit_nop(self->fd, 0, 5, DRM_HMIRROR_NOP_WAIT, &f0a));
	ASSERT_EQ(0, hmirror_submit_nop(self->fd, 1, 1, DRM_HMIRROR_NOP_WAIT, &f1));
	ASSERT_EQ(0, hmirror_submit_nop(self->fd, 0, 1, DRM_HMIRROR_NOP_WAIT, &f0b));
	ASSERT_EQ(f0a + 1, f0b);
	ASSERT_EQ(0, hmirror_wait(self->fd, 1, f1, 0, NULL));
}

TEST_F(dev, bad_arguments)
{
	struct drm_hmirror_submit_nop nop;
	struct drm_hmirror_wait w;
	uint64_t fence;

	ASSERT_EQ(-EINVAL, hmirror_submit_nop(self->fd, self->info.num_engines,
					      1, 0, &fence));
	ASSERT_EQ(-EINVAL, hmirror_submit_nop(self->fd, ~0u, 1, 0, &fence));
	ASSERT_EQ(-EINVAL, hmirror_submit_nop(self->fd, 0, 0, 0, &fence));
	ASSERT_EQ(-EINVAL, hmirror_submit_nop(self->fd, 0, 4097, 0, &fence));
	ASSERT_EQ(-EINVAL, hmirror_submit_nop(self->fd, 0, 1, 1u << 7, &fence));

	memset(&nop, 0, sizeof(nop));
	nop.count = 1;
	nop.pad = 1;
	ASSERT_EQ(-1, ioctl(self->fd, DRM_IOCTL_HMIRROR_SUBMIT_NOP, &nop));
	ASSERT_EQ(EINVAL, errno);

	ASSERT_EQ(0, hmirror_submit_nop(self->fd, 0, 1, DRM_HMIRROR_NOP_WAIT, &fence));
	ASSERT_EQ(-EINVAL, hmirror_wait(self->fd, 0, 0, 0, NULL));
	ASSERT_EQ(-EINVAL, hmirror_wait(self->fd, 0, fence + 1, 0, NULL));
	ASSERT_EQ(-EINVAL, hmirror_wait(self->fd, 0, ~0ull, 0, NULL));
	ASSERT_EQ(-EINVAL, hmirror_wait(self->fd, 0, fence, ~0ull, NULL));
	ASSERT_EQ(-EINVAL, hmirror_wait(self->fd, 99, fence, 0, NULL));
	memset(&w, 0, sizeof(w));
	w.fence = fence;
	w.pad = 3;
	ASSERT_EQ(-1, ioctl(self->fd, DRM_IOCTL_HMIRROR_WAIT, &w));
	ASSERT_EQ(EINVAL, errno);

	/* An ioctl number past the driver's table. */
	ASSERT_EQ(-1, ioctl(self->fd, DRM_IOWR(DRM_COMMAND_BASE + 0x3f,
					       struct drm_hmirror_wait), &w));
	ASSERT_EQ(EINVAL, errno);
	/* The user pointer is checked. */
	ASSERT_EQ(-1, ioctl(self->fd, DRM_IOCTL_HMIRROR_GET_INFO, (void *)8));
	ASSERT_EQ(EFAULT, errno);
}

TEST_F(dev, contexts_per_open_file)
{
	struct drm_hmirror_ctx_options o1 = {0}, o2 = {0};
	struct drm_hmirror_stats st0, st1, st2;
	int fd2;

	ASSERT_EQ(0, hmirror_get_stats(self->fd, &st0));
	ASSERT_GE(st0.live_contexts, 1);
	fd2 = hmirror_open_nth(0);
	ASSERT_GE(fd2, 0);
	ASSERT_EQ(0, hmirror_get_stats(self->fd, &st1));
	ASSERT_EQ(st0.live_contexts + 1, st1.live_contexts);

	ASSERT_EQ(0, hmirror_ctx_options(self->fd, &o1));
	ASSERT_EQ(0, hmirror_ctx_options(fd2, &o2));
	ASSERT_NE(0, o1.ctx_id);
	ASSERT_NE(o1.ctx_id, o2.ctx_id);
	ASSERT_LT(o1.ctx_id, self->info.max_contexts);
	ASSERT_EQ(DRM_HMIRROR_BACKEND_GUP, o1.backend);

	/*
	 * Closing a context flushes its device TLB once: by a shootdown
	 * through shared memory, or by a TLB_INVAL command on the management
	 * queue (without FEAT_SHOOTDOWN, with tlb_shootdown=N, or as a
	 * shootdown's fallback).
	 */
	hmirror_close(fd2);
	ASSERT_EQ(0, hmirror_get_stats(self->fd, &st2));
	ASSERT_EQ(st0.live_contexts, st2.live_contexts);
	ASSERT_EQ(1, (st2.shootdowns - st1.shootdowns) +
		     (st2.dev_commands - st1.dev_commands));
	ASSERT_EQ(0, st2.dev_errors);
}

TEST_F(dev, context_options)
{
	struct drm_hmirror_ctx_options o = {0};

	o.flags = DRM_HMIRROR_CTX_SET;
	o.backend = DRM_HMIRROR_BACKEND_HMM;
	o.fault_ahead = 16;
	ASSERT_EQ(0, hmirror_ctx_options(self->fd, &o));
	memset(&o, 0, sizeof(o));
	ASSERT_EQ(0, hmirror_ctx_options(self->fd, &o));
	ASSERT_EQ(DRM_HMIRROR_BACKEND_HMM, o.backend);
	ASSERT_EQ(16, o.fault_ahead);

	o.flags = DRM_HMIRROR_CTX_SET;
	o.backend = 2;
	ASSERT_EQ(-EINVAL, hmirror_ctx_options(self->fd, &o));
	o.backend = DRM_HMIRROR_BACKEND_GUP;
	o.fault_ahead = DRM_HMIRROR_FAULT_AHEAD_MAX + 1;
	ASSERT_EQ(-EINVAL, hmirror_ctx_options(self->fd, &o));
	o.fault_ahead = 0;
	o.flags = 1u << 5;
	ASSERT_EQ(-EINVAL, hmirror_ctx_options(self->fd, &o));
	o.flags = 0;
	o.reserved[1] = 1;
	ASSERT_EQ(-EINVAL, hmirror_ctx_options(self->fd, &o));
	/* A refused SET changed nothing. */
	memset(&o, 0, sizeof(o));
	ASSERT_EQ(0, hmirror_ctx_options(self->fd, &o));
	ASSERT_EQ(16, o.fault_ahead);
}

/* A context mirrors its opener's address space only. */
TEST_F(dev, context_refuses_other_mm)
{
	struct drm_hmirror_ctx_options o = {0};
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		/* The inherited file names the parent's context. */
		_exit(hmirror_ctx_options(self->fd, &o) == -EPERM ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	ASSERT_EQ(0, hmirror_ctx_options(self->fd, &o));
}

/* debugfs shows the same counters as the ioctl. */
TEST_F(dev, debugfs_counters)
{
	struct drm_hmirror_stats st;
	char path[400], buf[8192], want[64];
	struct dirent *de;
	ssize_t n;
	int fd = -1;
	DIR *d;

	/* One directory per device, named after its PCI address. */
	d = opendir("/sys/kernel/debug/accel");
	ASSERT_NE(NULL, d);
	while (fd < 0 && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path),
			 "/sys/kernel/debug/accel/%s/hmirror_counters", de->d_name);
		fd = open(path, O_RDONLY);
	}
	closedir(d);
	ASSERT_GE(fd, 0) TH_LOG("no hmirror_counters in debugfs");
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	ASSERT_GT(n, 0);
	buf[n] = '\0';
	ASSERT_EQ(0, hmirror_get_stats(self->fd, &st));
	snprintf(want, sizeof(want), "live_contexts: %llu\n",
		 (unsigned long long)st.live_contexts);
	ASSERT_NE(NULL, strstr(buf, want)) TH_LOG("%s", buf);
	ASSERT_NE(NULL, strstr(buf, "state: alive"));
	ASSERT_NE(NULL, strstr(buf, "context "));
}

TEST(tracepoints_registered)
{
	static const char * const ev[] = {
		"hmirror_fault_begin", "hmirror_fault_end", "hmirror_fault_retry",
		"hmirror_inv_begin", "hmirror_inv_end",
	};
	char path[160];
	unsigned int i;

	for (i = 0; i < sizeof(ev) / sizeof(ev[0]); i++) {
		snprintf(path, sizeof(path),
			 "/sys/kernel/tracing/events/hmirror/%s/format", ev[i]);
		ASSERT_EQ(0, access(path, R_OK)) TH_LOG("%s", path);
	}
}

/* The module cannot go while a file is open; removal of the device can. */
TEST(unbind_and_rebind_while_open)
{
	char bdf[64] = "", bdf2[64] = "", path[256];
	struct drm_hmirror_info info;
	uint64_t fence;
	int fd, fd2 = -1, n, i;

	fd = hmirror_open_nth(0);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, fd_to_bdf(fd, bdf, sizeof(bdf)));
	ASSERT_EQ(0, hmirror_submit_nop(fd, 0, 1, DRM_HMIRROR_NOP_WAIT, &fence));

	ASSERT_EQ(-1, syscall(__NR_delete_module, "hmirror", O_NONBLOCK));
	ASSERT_TRUE(errno == EWOULDBLOCK || errno == EBUSY);

	snprintf(path, sizeof(path), HMIRROR_DRIVER "/unbind");
	ASSERT_EQ(0, write_sysfs(path, bdf));
	/* The open file now fails cleanly. */
	ASSERT_EQ(-ENODEV, hmirror_submit_nop(fd, 0, 1, DRM_HMIRROR_NOP_WAIT, &fence));
	ASSERT_EQ(-ENODEV, hmirror_wait(fd, 0, 1, 0, NULL));
	hmirror_close(fd);

	snprintf(path, sizeof(path), HMIRROR_DRIVER "/bind");
	ASSERT_EQ(0, write_sysfs(path, bdf));
	/* Find the same device again, wherever its new minor is. */
	for (i = 0; i < 100 && fd2 < 0; i++) {
		for (n = 0; fd2 < 0; n++) {
			int f = hmirror_open_nth(n);

			if (f < 0)
				break;
			if (!fd_to_bdf(f, bdf2, sizeof(bdf2)) && !strcmp(bdf, bdf2))
				fd2 = f;
			else
				hmirror_close(f);
		}
		if (fd2 < 0)
			usleep(20000);
	}
	ASSERT_GE(fd2, 0);
	ASSERT_EQ(0, hmirror_get_info(fd2, &info));
	/* A fresh reset: sequence numbers start again. */
	ASSERT_EQ(0, hmirror_submit_nop(fd2, 0, 1, DRM_HMIRROR_NOP_WAIT, &fence));
	ASSERT_EQ(1, fence);
	hmirror_close(fd2);
}

TEST_HARNESS_MAIN
