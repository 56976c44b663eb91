// SPDX-License-Identifier: GPL-2.0
/*
 * Guest kselftest: device memory.  Pages migrated into the device's memory
 * (MIGRATE) keep their data wherever they are: read by the device in
 * place, written by it, brought back by a CPU touch (also from a forked
 * child), by MIGRATE, by a device fault through the GUP backend, by
 * eviction when the memory is full.  Device memory in use returns to zero
 * when the pages go (munmap, exit, a SIGKILL mid-migration).  The tests
 * need a device with memory and a kernel with DEVICE_PRIVATE; without
 * them they skip with that reason (tests/guest/expect.stock lists them).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "hmirror_dev.h"
#include "libhmirror.h"
#include "guest_util.h"

#define TO_SYSTEM	DRM_HMIRROR_MIGRATE_TO_SYSTEM

static uint64_t used_pages(int fd)
{
	struct drm_hmirror_stats st;

	if (hmirror_get_stats(fd, &st))
		return UINT64_MAX;
	return st.device_memory_used;
}

/* Device memory use goes back to @want (pages are freed asynchronously). */
static int wait_used(int fd, uint64_t want)
{
	double end = now_s() + 10;

	while (used_pages(fd) != want && now_s() < end)
		usleep(10000);
	return used_pages(fd) == want ? 0 : -1;
}

static int set_backend(int fd, uint32_t backend)
{
	struct drm_hmirror_ctx_options o = {
		.flags = DRM_HMIRROR_CTX_SET, .backend = backend,
	};

	return hmirror_ctx_options(fd, &o);
}

/*
 * Pages of [p, p + npages) the CPU sees in device memory: /proc/self/pagemap
 * shows a device-private entry as a swap entry of a page not present.
 */
static long cpu_sees_in_device(void *p, size_t npages)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	uint64_t e;
	long n = 0;

	if (fd < 0)
		return -1;
	for (size_t i = 0; i < npages; i++) {
		off_t off = ((uintptr_t)p / PAGE + i) * sizeof(e);

		if (pread(fd, &e, sizeof(e), off) != sizeof(e)) {
			n = -1;
			break;
		}
		n += !(e >> 63) && ((e >> 62) & 1);
	}
	close(fd);
	return n;
}

FIXTURE(dm) {
	int fd;
	struct drm_hmirror_info info;
	uint64_t used0;
};

FIXTURE_SETUP(dm)
{
	self->fd = hmirror_open_nth(0);
	ASSERT_GE(self->fd, 0);
	ASSERT_EQ(0, hmirror_get_info(self->fd, &self->info));
	if (!self->info.device_memory_pages)
		SKIP(return, "no device memory (device without FEAT_VRAM or kernel without DEVICE_PRIVATE)");
	/* Device faults map device memory in place with the HMM backend. */
	ASSERT_EQ(0, set_backend(self->fd, DRM_HMIRROR_BACKEND_HMM));
	self->used0 = used_pages(self->fd);
}

FIXTURE_TEARDOWN(dm)
{
	hmirror_close(self->fd);
}

/* Without device memory MIGRATE says so; with it, shared memory stays. */
TEST(migrate_refuses_what_it_cannot_take)
{
	size_t len = 8 * PAGE;
	struct drm_hmirror_info info;
	uint8_t *shared;
	uint64_t moved = 99;
	int fd = hmirror_open_nth(0);

	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, hmirror_get_info(fd, &info));
	shared = mmap(NULL, len, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, shared);
	fill_pattern(shared, len, 3);
	if (!info.device_memory_pages) {
		ASSERT_EQ(-EOPNOTSUPP, hmirror_migrate(fd, (uintptr_t)shared, len,
						       0, &moved));
	} else {
		ASSERT_EQ(0, hmirror_migrate(fd, (uintptr_t)shared, len, 0,
					     &moved));
		ASSERT_EQ(0, moved);
	}
	ASSERT_EQ(0, check_pattern(shared, len, 3));
	hmirror_close(fd);
}

TEST_F(dm, bad_arguments)
{
	struct drm_hmirror_migrate m = { 0 };
	uint8_t *p = map_anon(4 * PAGE);

	ASSERT_NE(NULL, p);
	m.addr = (uintptr_t)p;
	m.len = PAGE;
	m.flags = 1u << 5;
	ASSERT_EQ(-1, ioctl(self->fd, DRM_IOCTL_HMIRROR_MIGRATE, &m));
	ASSERT_EQ(EINVAL, errno);
	m.flags = 0;
	m.pad = 1;
	ASSERT_EQ(-1, ioctl(self->fd, DRM_IOCTL_HMIRROR_MIGRATE, &m));
	ASSERT_EQ(EINVAL, errno);
	m.pad = 0;
	m.reserved[1] = 1;
	ASSERT_EQ(-1, ioctl(self->fd, DRM_IOCTL_HMIRROR_MIGRATE, &m));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-EINVAL, hmirror_migrate(self->fd, (uintptr_t)p + 1, PAGE, 0, NULL));
	ASSERT_EQ(-EINVAL, hmirror_migrate(self->fd, (uintptr_t)p, 100, 0, NULL));
	ASSERT_EQ(-EINVAL, hmirror_migrate(self->fd, (uintptr_t)p, 0, 0, NULL));
	ASSERT_EQ(-EINVAL, hmirror_migrate(self->fd, (uintptr_t)p,
					   DRM_HMIRROR_EXEC_MAX_LEN + PAGE, 0, NULL));
	/* Beyond the device's address width, or not a user address. */
	ASSERT_EQ(-EFAULT, hmirror_migrate(self->fd, 1ull << self->info.va_bits,
					   PAGE, 0, NULL));
	/* A hole: what comes before it is migrated, then -EFAULT. */
	ASSERT_EQ(0, munmap(p + 2 * PAGE, PAGE));
	p[0] = 1;
	ASSERT_EQ(-EFAULT, hmirror_migrate(self->fd, (uintptr_t)p, 4 * PAGE, 0, NULL));
	ASSERT_EQ(self->used0 + 2, used_pages(self->fd));
	ASSERT_EQ(1, p[0]);
	ASSERT_EQ(0, munmap(p, 2 * PAGE));
	ASSERT_EQ(0, wait_used(self->fd, self->used0));
}

/* The device reads and writes migrated pages in place; the CPU gets both. */
TEST_F(dm, round_trip_keeps_data_and_device_writes)
{
	size_t n = 64, len = n * PAGE;
	uint8_t *p = map_anon(len);
	uint64_t moved, sum, want;
	struct drm_hmirror_stats st0, st1;

	ASSERT_NE(NULL, p);
	fill_pattern(p, len, 11);
	want = hmirror_checksum_cpu(p, len);
	ASSERT_EQ(0, hmirror_get_stats(self->fd, &st0));
	ASSERT_EQ(0, hmirror_migrate(self->fd, (uintptr_t)p, len, 0, &moved));
	ASSERT_EQ(n, moved);
	ASSERT_EQ(self->used0 + n, used_pages(self->fd));
	ASSERT_EQ(n, cpu_sees_in_device(p, n));
	/* The device checksums device memory: no page comes back for it. */
	ASSERT_EQ(0, hmirror_checksum(self->fd, 0, (uintptr_t)p, len, &sum));
	ASSERT_EQ(want, sum);
	ASSERT_EQ(n, snap_has(self->fd, p, n, DRM_HMIRROR_SNAP_DEVICE_MEMORY));
	/* ...and writes it: page 5 gets a pattern of the device's. */
	ASSERT_EQ(0, hmirror_fill(self->fd, 0, (uintptr_t)p + 5 * PAGE, PAGE,
				  0x5a5a5a5a5a5a5a5aull));
	ASSERT_EQ(self->used0 + n, used_pages(self->fd));
	/* The CPU touches page 5 and page 0: they come back, with the data. */
	ASSERT_EQ(0x5a5a5a5a5a5a5a5aull, *(uint64_t *)(p + 5 * PAGE + 64));
	ASSERT_EQ(0, check_pattern(p, PAGE, 11));
	ASSERT_EQ(0, hmirror_get_stats(self->fd, &st1));
	ASSERT_GE(st1.migrated_to_system, st0.migrated_to_system + 2);
	ASSERT_EQ(self->used0 + n - 2, used_pages(self->fd));
	ASSERT_EQ(n - 2, cpu_sees_in_device(p, n));
	/* MIGRATE brings the rest back. */
	ASSERT_EQ(0, hmirror_migrate(self->fd, (uintptr_t)p, len, TO_SYSTEM,
				     &moved));
	ASSERT_EQ(n - 2, moved);
	ASSERT_EQ(0, wait_used(self->fd, self->used0));
	/* Every page as it was, but page 5 as the device wrote it. */
	for (size_t i = 0; i < PAGE / 8; i++)
		ASSERT_EQ(0x5a5a5a5a5a5a5a5aull, ((uint64_t *)(p + 5 * PAGE))[i]);
	for (size_t i = 0; i < len / 8; i++)
		if (i / (PAGE / 8) != 5)
			ASSERT_EQ(11 * 0x9e3779b97f4a7c15ull + i, ((uint64_t *)p)[i]);
	ASSERT_EQ(0, munmap(p, len));
}

/* Untouched pages migrate as zeroes (the device copies the zero page). */
TEST_F(dm, untouched_pages_migrate_as_zeroes)
{
	size_t n = 16, len = n * PAGE;
	uint8_t *p = map_anon(len);
	uint64_t moved, sum;

	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, hmirror_migrate(self->fd, (uintptr_t)p, len, 0, &moved));
	ASSERT_EQ(n, moved);
	ASSERT_EQ(0, hmirror_checksum(self->fd, 0, (uintptr_t)p, len, &sum));
	ASSERT_EQ(hmirror_checksum_cpu(memset(malloc(len), 0, len), len), sum);
	for (size_t i = 0; i < len; i++)
		ASSERT_EQ(0, p[i]);
	ASSERT_EQ(0, munmap(p, len));
	ASSERT_EQ(0, wait_used(self->fd, self->used0));
}

/* A device fault through the GUP backend brings the page back. */
TEST_F(dm, gup_backend_fault_brings_pages_back)
{
	size_t n = 8, len = n * PAGE;
	uint8_t *p = map_anon(len), *buf = map_anon(len);
	uint64_t moved;

	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, buf);
	fill_pattern(p, len, 12);
	ASSERT_EQ(0, hmirror_migrate(self->fd, (uintptr_t)p, len, 0, &moved));
	ASSERT_EQ(n, moved);
	ASSERT_EQ(0, set_backend(self->fd, DRM_HMIRROR_BACKEND_GUP));
	ASSERT_EQ(0, hmirror_read(self->fd, 0, (uintptr_t)p, buf, len));
	ASSERT_EQ(0, check_pattern(buf, len, 12));
	ASSERT_EQ(0, wait_used(self->fd, self->used0));
	ASSERT_EQ(0, snap_has(self->fd, p, n, DRM_HMIRROR_SNAP_DEVICE_MEMORY));
	ASSERT_EQ(0, check_pattern(p, len, 12));
}

/* More than the device holds: the oldest pages are evicted, none lost. */
TEST_F(dm, eviction_when_full_keeps_every_page)
{
	uint64_t cap = self->info.device_memory_pages, moved, total = 0;
	size_t n = cap + cap / 2, len = n * PAGE;
	struct drm_hmirror_stats st0, st1;
	uint8_t *p = map_anon(len);

	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, hmirror_get_stats(self->fd, &st0));
	fill_pattern(p, len, 13);
	for (size_t off = 0; off < len; off += DRM_HMIRROR_EXEC_MAX_LEN) {
		size_t l = len - off < DRM_HMIRROR_EXEC_MAX_LEN ?
			   len - off : DRM_HMIRROR_EXEC_MAX_LEN;

		ASSERT_EQ(0, hmirror_migrate(self->fd, (uintptr_t)p + off, l, 0,
					     &moved));
		total += moved;
	}
	ASSERT_EQ(0, hmirror_get_stats(self->fd, &st1));
	TH_LOG("%zu pages into %llu pages of device memory: %llu moved, %llu evicted",
	       n, (unsigned long long)cap, (unsigned long long)total,
	       (unsigned long long)(st1.evicted - st0.evicted));
	ASSERT_GE(st1.evicted - st0.evicted, n - cap);
	ASSERT_LE(used_pages(self->fd), cap);
	/* Least recently used first: the newest pages stayed, the oldest went. */
	ASSERT_EQ(256, cpu_sees_in_device(p + len - 256 * PAGE, 256));
	ASSERT_EQ(0, cpu_sees_in_device(p, 256));
	ASSERT_EQ(0, check_pattern(p, len, 13));
	ASSERT_EQ(0, munmap(p, len));
	ASSERT_EQ(0, wait_used(self->fd, self->used0));
}

/* A forked child touches a page in device memory: each sees its own data. */
TEST_F(dm, forked_child_touches_device_pages)
{
	size_t n = 16, len = n * PAGE;
	uint8_t *p = map_anon(len);
	uint64_t moved;
	int status;
	pid_t pid;

	ASSERT_NE(NULL, p);
	fill_pattern(p, len, 14);
	ASSERT_EQ(0, hmirror_migrate(self->fd, (uintptr_t)p, len, 0, &moved));
	ASSERT_EQ(n, moved);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		/* Reads what the parent wrote, then writes its own copy. */
		if (check_pattern(p, len, 14))
			_exit(1);
		fill_pattern(p, len, 15);
		_exit(check_pattern(p, len, 15) ? 2 : 0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	/* The child's writes stayed the child's. */
	ASSERT_EQ(0, check_pattern(p, len, 14));
	ASSERT_EQ(0, munmap(p, len));
	ASSERT_EQ(0, wait_used(self->fd, self->used0));
}

/*
 * A fork leaves the parent's pages in device memory read-only; a device
 * write to them must bring them back and write (hmm_range_fault() alone
 * would hand the same read-only page back for ever).  Both backends.
 */
TEST_F_TIMEOUT(dm, device_write_after_fork_to_device_pages, 60)
{
	static const uint32_t backends[] = {
		DRM_HMIRROR_BACKEND_HMM, DRM_HMIRROR_BACKEND_GUP,
	};
	size_t n = 8, len = n * PAGE;
	uint8_t *p = map_anon(len), *buf = map_anon(len);
	uint64_t moved;
	int status;
	pid_t pid;

	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, buf);
	for (size_t b = 0; b < 2; b++) {
		ASSERT_EQ(0, set_backend(self->fd, backends[b]));
		fill_pattern(p, len, 30 + b);
		ASSERT_EQ(0, hmirror_migrate(self->fd, (uintptr_t)p, len, 0,
					     &moved));
		ASSERT_EQ(n, moved);
		pid = fork();
		ASSERT_GE(pid, 0);
		if (!pid)
			_exit(0);
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		fill_pattern(buf, len, 40 + b);
		ASSERT_EQ(0, hmirror_write(self->fd, 0, (uintptr_t)p, buf, len));
		ASSERT_EQ(0, check_pattern(p, len, 40 + b));
	}
	ASSERT_EQ(0, munmap(p, len));
	ASSERT_EQ(0, wait_used(self->fd, self->used0));
}

/*
 * MIGRATE back over a range that is mostly holes (never touched) with one
 * page in device memory: the holes are nothing to move, not a failure.
 */
TEST_F(dm, to_system_across_untouched_pages)
{
	size_t n = 192, len = n * PAGE;
	uint8_t *p = map_anon(len);
	uint64_t moved;

	ASSERT_NE(NULL, p);
	fill_pattern(p + 150 * PAGE, PAGE, 50);
	ASSERT_EQ(0, hmirror_migrate(self->fd, (uintptr_t)p + 150 * PAGE, PAGE,
				     0, &moved));
	ASSERT_EQ(1, moved);
	ASSERT_EQ(0, hmirror_migrate(self->fd, (uintptr_t)p, len, TO_SYSTEM,
				     &moved));
	ASSERT_EQ(1, moved);
	ASSERT_EQ(0, cpu_sees_in_device(p, n));
	ASSERT_EQ(0, check_pattern(p + 150 * PAGE, PAGE, 50));
	ASSERT_EQ(0, munmap(p, len));
}

/* munmap and process exit free device memory. */
TEST_F(dm, munmap_and_exit_free_device_memory)
{
	size_t n = 32, len = n * PAGE;
	uint8_t *p = map_anon(len);
	uint64_t moved;
	int status;
	pid_t pid;

	ASSERT_NE(NULL, p);
	fill_pattern(p, len, 16);
	ASSERT_EQ(0, hmirror_migrate(self->fd, (uintptr_t)p, len, 0, &moved));
	ASSERT_EQ(n, moved);
	ASSERT_EQ(self->used0 + n, used_pages(self->fd));
	ASSERT_EQ(0, munmap(p, len));
	ASSERT_EQ(0, wait_used(self->fd, self->used0));

	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		int fd = hmirror_open_nth(0);
		uint8_t *q = map_anon(len);

		if (fd < 0 || !q)
			_exit(1);
		fill_pattern(q, len, 17);
		if (hmirror_migrate(fd, (uintptr_t)q, len, 0, &moved) || moved != n)
			_exit(2);
		/* Exit with the pages in device memory and the file open. */
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	ASSERT_EQ(0, wait_used(self->fd, self->used0));
}

/* SIGKILL in the middle of migrations: nothing leaks, nothing warns. */
TEST_F(dm, sigkill_during_migration)
{
	size_t len = 4 << 20;
	int round, status;
	pid_t pid;

	for (round = 0; round < 3; round++) {
		pid = fork();
		ASSERT_GE(pid, 0);
		if (!pid) {
			int fd = hmirror_open_nth(0);
			uint8_t *q = map_anon(len);

			if (fd < 0 || !q)
				_exit(1);
			fill_pattern(q, len, 18);
			for (;;) {
				hmirror_migrate(fd, (uintptr_t)q, len, 0, NULL);
				hmirror_migrate(fd, (uintptr_t)q, len, TO_SYSTEM, NULL);
			}
		}
		usleep(100000 + round * 150000);
		ASSERT_EQ(0, kill(pid, SIGKILL));
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		ASSERT_TRUE(WIFSIGNALED(status));
	}
	ASSERT_EQ(0, wait_used(self->fd, self->used0));
}

/* A second device reading pages in the first's memory brings them back. */
TEST_F(dm, other_device_reads_pages_in_device_memory)
{
	size_t n = 8, len = n * PAGE;
	uint8_t *p = map_anon(len), *buf = map_anon(len);
	int fd1 = hmirror_open_nth(1);
	uint64_t moved;

	if (fd1 < 0)
		SKIP(return, "one hmirror device only");
	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, set_backend(fd1, DRM_HMIRROR_BACKEND_HMM));
	fill_pattern(p, len, 19);
	ASSERT_EQ(0, hmirror_migrate(self->fd, (uintptr_t)p, len, 0, &moved));
	ASSERT_EQ(n, moved);
	ASSERT_EQ(0, hmirror_read(fd1, 0, (uintptr_t)p, buf, len));
	ASSERT_EQ(0, check_pattern(buf, len, 19));
	ASSERT_EQ(0, wait_used(self->fd, self->used0));
	ASSERT_EQ(0, check_pattern(p, len, 19));
	hmirror_close(fd1);
}

/*
 * A KSM page is shared by every mapping ksmd merged into it and its
 * stable-tree node points at it: moved into device memory, ksmd would
 * compare against a page the CPU cannot address.  MIGRATE leaves it in
 * system memory and still moves the unmerged page beside it.
 */
TEST_F_TIMEOUT(dm, ksm_pages_stay_in_system_memory, 90)
{
	size_t len = 3 * PAGE;
	uint8_t *p = map_anon(len);
	long run = read_long("/sys/kernel/mm/ksm/run");
	uint64_t moved = 0;
	int i;

	ASSERT_NE(NULL, p);
	if (run < 0)
		SKIP(return, "no KSM");
	ASSERT_EQ(0, write_sysfs("/sys/kernel/mm/ksm/sleep_millisecs", "10"));
	ASSERT_EQ(0, write_sysfs("/sys/kernel/mm/ksm/pages_to_scan", "5000"));
	ASSERT_EQ(0, write_sysfs("/sys/kernel/mm/ksm/run", "1"));
	fill_pattern(p, PAGE, 910);
	fill_pattern(p + PAGE, PAGE, 910);
	fill_pattern(p + 2 * PAGE, PAGE, 911);
	ASSERT_EQ(0, madvise(p, 2 * PAGE, MADV_MERGEABLE));
	for (i = 0; i < 600 && read_long("/proc/self/ksm_merging_pages") < 2; i++)
		usleep(100000);
	ASSERT_EQ(2, read_long("/proc/self/ksm_merging_pages"))
		TH_LOG("ksmd did not merge the two pages in 60 s");
	ASSERT_EQ(0, hmirror_migrate(self->fd, (uintptr_t)p, len, 0, &moved));
	EXPECT_EQ(1, moved);
	EXPECT_EQ(1, cpu_sees_in_device(p + 2 * PAGE, 1));
	EXPECT_EQ(0, cpu_sees_in_device(p, 2));
	EXPECT_EQ(2, read_long("/proc/self/ksm_merging_pages"));
	/* Let ksmd walk its stable tree a few times with the pages where they are. */
	usleep(500000);
	ASSERT_EQ(0, check_pattern(p, PAGE, 910));
	ASSERT_EQ(0, check_pattern(p + PAGE, PAGE, 910));
	ASSERT_EQ(0, check_pattern(p + 2 * PAGE, PAGE, 911));
	madvise(p, 2 * PAGE, MADV_UNMERGEABLE);
	munmap(p, len);
	if (run != 1) {
		char v[24];

		snprintf(v, sizeof(v), "%ld", run);
		write_sysfs("/sys/kernel/mm/ksm/run", v);
	}
}

TEST_HARNESS_MAIN
