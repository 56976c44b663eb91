// SPDX-License-Identifier: GPL-2.0
/*
 * Guest kselftest: the mirror.  Each test makes the device read or write
 * the process's memory by virtual address and checks what the device saw
 * against what the CPU sees, after every kind of change to the address
 * space, plus the device page table's view (SNAPSHOT).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "hmirror_dev.h"
#include "libhmirror.h"
#include "guest_util.h"

FIXTURE(mirror) {
	int fd;
	struct drm_hmirror_info info;
};

FIXTURE_SETUP(mirror)
{
	self->fd = hmirror_open_nth(0);
	ASSERT_GE(self->fd, 0);
	ASSERT_EQ(0, hmirror_get_info(self->fd, &self->info));
	if (!(self->info.features & HMIRROR_FEAT_TRANSLATE))
		SKIP(return, "device model without translation");
}

FIXTURE_TEARDOWN(mirror)
{
	hmirror_close(self->fd);
}

TEST_F(mirror, device_reads_anon)
{
	size_t len = 64 * PAGE;
	uint8_t *src = map_anon(len), *dst = map_anon(len);
	struct drm_hmirror_ctx_stats st;

	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, dst);
	fill_pattern(src, len, 1);
	ASSERT_EQ(0, hmirror_read(self->fd, 0, (uintptr_t)src, dst, len));
	ASSERT_EQ(0, check_pattern(dst, len, 1));
	/* The device maps the source read-only, the buffer writable. */
	ASSERT_EQ(64, snap_count(self->fd, src, 64, DRM_HMIRROR_SNAP_READ));
	ASSERT_EQ(64, snap_count(self->fd, dst, 64, DRM_HMIRROR_SNAP_WRITE));
	ASSERT_EQ(0, hmirror_get_ctx_stats(self->fd, &st));
	ASSERT_GE(st.faults, 2);
	ASSERT_GE(st.pages_faulted, 128);
	/* Nothing invalidated these ranges: no retries. */
	ASSERT_EQ(0, st.retries_stale);
	ASSERT_EQ(0, st.retries_waited);
}

TEST_F(mirror, device_writes_anon)
{
	size_t len = 16 * PAGE;
	uint8_t *buf = map_anon(len), *target = map_anon(len);

	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, target);
	fill_pattern(buf, len, 2);
	memset(target, 0xaa, len);
	ASSERT_EQ(0, hmirror_write(self->fd, 0, (uintptr_t)target, buf, len));
	ASSERT_EQ(0, check_pattern(target, len, 2));
	/* Once mirrored, a second write faults no more. */
	{
		struct drm_hmirror_exec x = {
			.op = DRM_HMIRROR_OP_WRITE, .addr = (uintptr_t)target,
			.buf = (uintptr_t)buf, .len = len,
		};

		fill_pattern(buf, len, 3);
		ASSERT_EQ(0, hmirror_exec(self->fd, &x));
		ASSERT_EQ(0, x.faults);
		ASSERT_EQ(0, check_pattern(target, len, 3));
		ASSERT_LE(x.t_submit, x.t_done);
	}
}

TEST_F(mirror, checksum_and_fill)
{
	size_t len = 8 * PAGE + 512;
	uint8_t *p = map_anon(len + PAGE);
	uint64_t sum;

	ASSERT_NE(NULL, p);
	fill_pattern(p, len, 4);
	ASSERT_EQ(0, hmirror_checksum(self->fd, 0, (uintptr_t)p, len, &sum));
	ASSERT_EQ(hmirror_checksum_cpu(p, len), sum);
	ASSERT_EQ(0, hmirror_fill(self->fd, 0, (uintptr_t)p + 8, len - 8,
				  0x0123456789abcdefull));
	ASSERT_EQ(0, check_pattern(p, 8, 4));
	for (size_t i = 8; i < len; i += 8)
		ASSERT_EQ(0x0123456789abcdefull, *(uint64_t *)(p + i));
	/* Past the end nothing changed. */
	ASSERT_EQ(0, p[len]);
}

TEST_F(mirror, untouched_pages_read_zero)
{
	size_t len = 32 * PAGE;
	uint8_t *p = map_anon(len), *out = map_anon(len);
	uint64_t sum;

	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, out);
	memset(out, 0xff, len);
	ASSERT_EQ(0, hmirror_read(self->fd, 0, (uintptr_t)p, out, len));
	for (size_t i = 0; i < len; i++)
		ASSERT_EQ(0, out[i]);
	ASSERT_EQ(0, hmirror_checksum(self->fd, 0, (uintptr_t)p, len, &sum));
	ASSERT_EQ(hmirror_checksum_cpu(out, len), sum);
}

TEST_F(mirror, mprotect_read_only)
{
	size_t len = 4 * PAGE;
	uint8_t *p = map_anon(len), *buf = map_anon(len);

	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, buf);
	fill_pattern(p, len, 5);
	/* Writable first, then read-only: the device must lose write access. */
	ASSERT_EQ(0, hmirror_prefetch(self->fd, (uintptr_t)p, len, 1));
	ASSERT_EQ(4, snap_count(self->fd, p, 4, DRM_HMIRROR_SNAP_WRITE));
	ASSERT_EQ(0, mprotect(p, len, PROT_READ));
	ASSERT_EQ(0, snap_count(self->fd, p, 4, DRM_HMIRROR_SNAP_WRITE));
	fill_pattern(buf, len, 6);
	ASSERT_EQ(-EFAULT, hmirror_write(self->fd, 0, (uintptr_t)p, buf, len));
	ASSERT_EQ(0, check_pattern(p, len, 5));
	ASSERT_EQ(0, hmirror_read(self->fd, 0, (uintptr_t)p, buf, len));
	ASSERT_EQ(0, check_pattern(buf, len, 5));
	ASSERT_EQ(4, snap_count(self->fd, p, 4, DRM_HMIRROR_SNAP_READ));
}

TEST_F(mirror, munmap_then_access)
{
	size_t len = 8 * PAGE;
	uint8_t *p = map_anon(len), *buf = map_anon(len);
	uint64_t sum;

	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, hmirror_prefetch(self->fd, (uintptr_t)p, len, 1));
	ASSERT_EQ(8, snap_count(self->fd, p, 8, DRM_HMIRROR_SNAP_WRITE));
	ASSERT_EQ(0, munmap(p, len));
	ASSERT_EQ(8, snap_count(self->fd, p, 8, DRM_HMIRROR_SNAP_NONE));
	ASSERT_EQ(-EFAULT, hmirror_read(self->fd, 0, (uintptr_t)p, buf, len));
	ASSERT_EQ(-EFAULT, hmirror_write(self->fd, 0, (uintptr_t)p, buf, len));
	ASSERT_EQ(-EFAULT, hmirror_checksum(self->fd, 0, (uintptr_t)p, len, &sum));
}

TEST_F(mirror, munmap_and_new_mapping_at_same_address)
{
	size_t len = 8 * PAGE;
	uint8_t *p = map_anon(len), *q, *buf = map_anon(len);

	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, buf);
	fill_pattern(p, len, 7);
	ASSERT_EQ(0, hmirror_read(self->fd, 0, (uintptr_t)p, buf, len));
	ASSERT_EQ(0, check_pattern(buf, len, 7));
	ASSERT_EQ(0, munmap(p, len));
	q = mmap(p, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ASSERT_EQ(p, q);
	fill_pattern(q, len, 8);
	ASSERT_EQ(0, hmirror_read(self->fd, 0, (uintptr_t)q, buf, len));
	/* The new data, never the old. */
	ASSERT_EQ(0, check_pattern(buf, len, 8));
}

/*
 * munmap empties the device tables the page needed; the next fault, at
 * the same address or a GiB away (new leaf and directory tables), reuses
 * them and still reads what the CPU wrote there.
 */
TEST_F(mirror, faults_after_munmap_reuse_device_tables)
{
	const size_t gib = 1ul << 30;
	const int rounds = 24;
	struct drm_hmirror_ctx_stats st;
	uint64_t after_first = 0;
	uint8_t *area, *buf = map_anon(PAGE);

	ASSERT_NE(NULL, buf);
	/* Address space only: 4 GiB reserved, nothing populated. */
	area = mmap(NULL, 4 * gib, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, area);
	for (int i = 0; i < rounds; i++) {
		uint8_t *p = area + (i % 3) * gib + (size_t)i * PAGE;
		uint8_t *q = mmap(p, PAGE, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
				  -1, 0);

		ASSERT_EQ(p, q);
		fill_pattern(p, PAGE, 20 + i);
		ASSERT_EQ(0, hmirror_read(self->fd, 0, (uintptr_t)p, buf, PAGE));
		ASSERT_EQ(0, check_pattern(buf, PAGE, 20 + i)) TH_LOG("round %d", i);
		ASSERT_EQ(0, hmirror_get_ctx_stats(self->fd, &st));
		ASSERT_GT(st.mapped, 0);
		/* Back to reserved address space: the device entry goes. */
		q = mmap(p, PAGE, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
			 -1, 0);
		ASSERT_EQ(p, q);
		ASSERT_EQ(1, snap_count(self->fd, p, 1, DRM_HMIRROR_SNAP_NONE));
		if (!i)
			after_first = st.tables_allocated;
	}
	ASSERT_EQ(0, hmirror_get_ctx_stats(self->fd, &st));
	ASSERT_EQ(after_first, st.tables_allocated)
		TH_LOG("%d faults after the first allocated %llu tables",
		       rounds - 1,
		       (unsigned long long)(st.tables_allocated - after_first));
	ASSERT_EQ(0, munmap(area, 4 * gib));
}

/*
 * Both ways of flushing the device TLB (module parameter tlb_shootdown):
 * by shootdown through shared memory (no device command) where the device
 * has FEAT_SHOOTDOWN, else by a TLB_INVAL command.  Either way the device
 * must see the new page at an address unmapped and mapped again, never
 * the old one, and a munmap of a mirrored range flushes exactly once.
 */
#define TLB_SHOOTDOWN_PARAM "/sys/module/hmirror/parameters/tlb_shootdown"

FIXTURE(inval) {
	int fd;
	bool shootdown;		/* expected: the variant's and the device's */
};

FIXTURE_VARIANT(inval) {
	const char *param;
};

FIXTURE_VARIANT_ADD(inval, shootdown) {
	.param = "Y",
};

FIXTURE_VARIANT_ADD(inval, tlb_inval_command) {
	.param = "N",
};

FIXTURE_SETUP(inval)
{
	struct drm_hmirror_info info;

	ASSERT_EQ(0, write_sysfs(TLB_SHOOTDOWN_PARAM, variant->param));
	self->fd = hmirror_open_nth(0);
	ASSERT_GE(self->fd, 0);
	ASSERT_EQ(0, hmirror_get_info(self->fd, &info));
	self->shootdown = *variant->param == 'Y' &&
			  (info.features & HMIRROR_FEAT_SHOOTDOWN);
}

FIXTURE_TEARDOWN(inval)
{
	hmirror_close(self->fd);
	write_sysfs(TLB_SHOOTDOWN_PARAM, "Y");
	write_sysfs("/sys/module/hmirror/parameters/sd_spin_us", "50");
}

TEST_F(inval, device_sees_the_new_page_after_munmap)
{
	static const size_t sizes[] = { 1, 16, 256 };
	uint8_t *buf = map_anon(256 * PAGE);

	ASSERT_NE(NULL, buf);
	for (unsigned int i = 0; i < 3; i++) {
		size_t len = sizes[i] * PAGE;
		struct drm_hmirror_stats a, b;
		struct drm_hmirror_ctx_stats ca, cb;
		uint8_t *p = map_anon(len), *q;
		uint64_t via_shootdown, via_command;

		ASSERT_NE(NULL, p);
		fill_pattern(p, len, 40 + i);
		ASSERT_EQ(0, hmirror_prefetch(self->fd, (uintptr_t)p, len, 1));
		ASSERT_EQ(0, hmirror_read(self->fd, 0, (uintptr_t)p, buf, len));
		ASSERT_EQ(0, check_pattern(buf, len, 40 + i));

		ASSERT_EQ(0, hmirror_get_stats(self->fd, &a));
		ASSERT_EQ(0, hmirror_get_ctx_stats(self->fd, &ca));
		ASSERT_EQ(0, munmap(p, len));
		ASSERT_EQ(0, hmirror_get_stats(self->fd, &b));
		ASSERT_EQ(0, hmirror_get_ctx_stats(self->fd, &cb));
		ASSERT_EQ(ca.device_flushes + 1, cb.device_flushes);
		via_shootdown = b.shootdowns - a.shootdowns;
		via_command = b.dev_commands - a.dev_commands;
		TH_LOG("%zu pages: %llu shootdowns (%llu fell back), %llu device commands",
		       sizes[i], (unsigned long long)via_shootdown,
		       (unsigned long long)(b.shootdown_fallbacks - a.shootdown_fallbacks),
		       (unsigned long long)via_command);
		if (self->shootdown) {
			/* a fallback is a TLB_INVAL: one or the other, once */
			ASSERT_EQ(1, via_shootdown + via_command);
			ASSERT_EQ(via_command,
				  b.shootdown_fallbacks - a.shootdown_fallbacks);
		} else {
			ASSERT_EQ(0, via_shootdown);
			ASSERT_EQ(1, via_command);
		}

		q = mmap(p, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		ASSERT_EQ(p, q);
		fill_pattern(q, len, 50 + i);
		ASSERT_EQ(0, hmirror_read(self->fd, 0, (uintptr_t)q, buf, len));
		ASSERT_EQ(0, check_pattern(buf, len, 50 + i));
		fill_pattern(buf, len, 60 + i);
		ASSERT_EQ(0, hmirror_write(self->fd, 1, (uintptr_t)q, buf, len));
		ASSERT_EQ(0, check_pattern(q, len, 60 + i));
		ASSERT_EQ(0, munmap(q, len));
	}
}

/* Keeps both engines busy with long FILLs until told to stop. */
struct busy_fill {
	int fd;
	uint8_t *area;
	size_t len;
	volatile int stop;
	int err;
	unsigned long fills;
};

static void *busy_fill_thread(void *arg)
{
	struct busy_fill *b = arg;

	while (!b->stop && !b->err) {
		for (uint32_t eng = 0; eng < 2 && !b->err; eng++)
			b->err = hmirror_fill(b->fd, eng, (uintptr_t)b->area,
					      b->len, b->fills);
		b->fills++;
	}
	return NULL;
}

/*
 * With sd_spin_us=0 the driver may not wait at all for an engine in the
 * middle of an access: every shootdown that finds one busy falls back to
 * TLB_INVAL.  With an engine kept busy by 64 MiB FILLs, some of 200
 * munmaps find it busy (about one in five here; a driver that ignored
 * busy engines would report none), and the device must still never see
 * an unmapped page.
 */
TEST_F(inval, munmap_while_engines_are_busy)
{
	const size_t big = 64ul << 20;
	struct busy_fill b = { .fd = self->fd, .len = big };
	struct drm_hmirror_stats a, z;
	struct drm_hmirror_ctx_stats ca, cz;
	uint8_t *buf = map_anon(PAGE);
	pthread_t th;
	int i, rounds = 100;

	ASSERT_NE(NULL, buf);
	b.area = map_anon(big);
	ASSERT_NE(NULL, b.area);
	ASSERT_EQ(0, hmirror_prefetch(self->fd, (uintptr_t)b.area, big, 1));
	ASSERT_EQ(0, write_sysfs("/sys/module/hmirror/parameters/sd_spin_us", "0"));
	ASSERT_EQ(0, hmirror_get_stats(self->fd, &a));
	ASSERT_EQ(0, hmirror_get_ctx_stats(self->fd, &ca));
	ASSERT_EQ(0, pthread_create(&th, NULL, busy_fill_thread, &b));
	for (i = 0; i < rounds; i++) {
		uint8_t *p = map_anon(PAGE), *q;

		if (!p)
			break;
		fill_pattern(p, PAGE, 70 + i);
		if (hmirror_prefetch(self->fd, (uintptr_t)p, PAGE, 1))
			break;
		munmap(p, PAGE);
		q = mmap(p, PAGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (q != p)
			break;
		fill_pattern(q, PAGE, 170 + i);
		if (hmirror_read(self->fd, 0, (uintptr_t)q, buf, PAGE) ||
		    check_pattern(buf, PAGE, 170 + i))
			break;
		munmap(q, PAGE);
	}
	b.stop = 1;
	pthread_join(th, NULL);
	write_sysfs("/sys/module/hmirror/parameters/sd_spin_us", "50");
	ASSERT_EQ(rounds, i) TH_LOG("round %d: the device did not see the new page", i);
	ASSERT_EQ(0, b.err);
	ASSERT_EQ(0, hmirror_get_stats(self->fd, &z));
	ASSERT_EQ(0, hmirror_get_ctx_stats(self->fd, &cz));
	TH_LOG("%d munmaps during %lu rounds of FILLs: %llu shootdowns, %llu fell back",
	       rounds, b.fills, (unsigned long long)(z.shootdowns - a.shootdowns),
	       (unsigned long long)(z.shootdown_fallbacks - a.shootdown_fallbacks));
	if (!self->shootdown) {
		ASSERT_EQ(0, z.shootdowns - a.shootdowns);
		return;
	}
	/* every flush (two per round at least) one way or the other */
	ASSERT_LE(2 * rounds, cz.device_flushes - ca.device_flushes);
	ASSERT_EQ(cz.device_flushes - ca.device_flushes,
		  z.shootdowns - a.shootdowns +
		  z.shootdown_fallbacks - a.shootdown_fallbacks);
	ASSERT_LT(0, z.shootdown_fallbacks - a.shootdown_fallbacks)
		TH_LOG("busy engines went unnoticed");
}

TEST_F(mirror, partial_munmap)
{
	size_t len = 16 * PAGE;
	uint8_t *p = map_anon(len), *buf = map_anon(len);

	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, buf);
	fill_pattern(p, len, 9);
	ASSERT_EQ(0, hmirror_prefetch(self->fd, (uintptr_t)p, len, 0));
	ASSERT_EQ(0, munmap(p + 4 * PAGE, 4 * PAGE));
	ASSERT_EQ(12, snap_count(self->fd, p, 16, DRM_HMIRROR_SNAP_READ));
	ASSERT_EQ(0, hmirror_read(self->fd, 0, (uintptr_t)p, buf, 4 * PAGE));
	ASSERT_EQ(0, check_pattern(buf, 4 * PAGE, 9));
	ASSERT_EQ(-EFAULT, hmirror_read(self->fd, 0, (uintptr_t)p, buf, len));
}

TEST_F(mirror, mremap_moves_the_device_view)
{
	size_t len = 8 * PAGE;
	uint8_t *p = map_anon(len), *q, *buf = map_anon(len);
	void *hole;

	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, buf);
	fill_pattern(p, len, 10);
	ASSERT_EQ(0, hmirror_prefetch(self->fd, (uintptr_t)p, len, 1));
	hole = map_anon(len);
	ASSERT_NE(NULL, hole);
	q = mremap(p, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, hole);
	ASSERT_EQ(hole, q);
	ASSERT_EQ(8, snap_count(self->fd, p, 8, DRM_HMIRROR_SNAP_NONE));
	ASSERT_EQ(-EFAULT, hmirror_read(self->fd, 0, (uintptr_t)p, buf, len));
	ASSERT_EQ(0, hmirror_read(self->fd, 0, (uintptr_t)q, buf, len));
	ASSERT_EQ(0, check_pattern(buf, len, 10));
}

TEST_F(mirror, madv_dontneed_reads_zeros)
{
	size_t len = 8 * PAGE;
	uint8_t *p = map_anon(len), *buf = map_anon(len);

	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, buf);
	fill_pattern(p, len, 11);
	ASSERT_EQ(0, hmirror_read(self->fd, 0, (uintptr_t)p, buf, len));
	ASSERT_EQ(0, madvise(p, len, MADV_DONTNEED));
	memset(buf, 0x55, len);
	ASSERT_EQ(0, hmirror_read(self->fd, 0, (uintptr_t)p, buf, len));
	for (size_t i = 0; i < len; i++)
		ASSERT_EQ(0, buf[i]);
}

/* A device write after fork lands in the parent only. */
TEST_F(mirror, fork_cow)
{
	size_t len = 4 * PAGE;
	uint8_t *p = map_anon(len), *buf = map_anon(len);
	int to_child[2], to_parent[2], status;
	char c;
	pid_t pid;

	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, buf);
	fill_pattern(p, len, 12);
	/* Mirrored writable before the fork. */
	ASSERT_EQ(0, hmirror_prefetch(self->fd, (uintptr_t)p, len, 1));
	ASSERT_EQ(0, pipe(to_child));
	ASSERT_EQ(0, pipe(to_parent));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		/* Wait for the parent's device write, then check our copy. */
		if (read(to_child[0], &c, 1) != 1)
			_exit(2);
		_exit(check_pattern(p, len, 12) ? 1 : 0);
	}
	/* fork write-protected the parent's pages: the device lost write. */
	ASSERT_EQ(0, snap_count(self->fd, p, 4, DRM_HMIRROR_SNAP_WRITE));
	fill_pattern(buf, len, 13);
	ASSERT_EQ(0, hmirror_write(self->fd, 0, (uintptr_t)p, buf, len));
	ASSERT_EQ(0, check_pattern(p, len, 13));
	ASSERT_EQ(1, write(to_child[1], "x", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
}

TEST_F(mirror, shared_mapping_across_fork)
{
	size_t len = 4 * PAGE;
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, -1, 0), *buf = map_anon(len);
	int to_child[2], status;
	char c;
	pid_t pid;

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, pipe(to_child));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		if (read(to_child[0], &c, 1) != 1)
			_exit(2);
		_exit(check_pattern(p, len, 14) ? 1 : 0);
	}
	fill_pattern(buf, len, 14);
	ASSERT_EQ(0, hmirror_write(self->fd, 0, (uintptr_t)p, buf, len));
	ASSERT_EQ(1, write(to_child[1], "x", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
}

TEST_F(mirror, memfd_and_tmpfs_file)
{
	size_t len = 8 * PAGE;
	uint8_t *buf = map_anon(len), *p, *q;
	char path[] = "/tmp/hmirror-file-XXXXXX";
	int mfd, tfd;

	ASSERT_NE(NULL, buf);
	mfd = memfd_create("hmirror", 0);
	ASSERT_GE(mfd, 0);
	ASSERT_EQ(0, ftruncate(mfd, len));
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	ASSERT_NE(MAP_FAILED, p);
	fill_pattern(buf, len, 15);
	ASSERT_EQ(0, hmirror_write(self->fd, 0, (uintptr_t)p, buf, len));
	/* Through a second mapping of the same file. */
	q = mmap(NULL, len, PROT_READ, MAP_SHARED, mfd, 0);
	ASSERT_NE(MAP_FAILED, q);
	ASSERT_EQ(0, check_pattern(q, len, 15));

	tfd = mkstemp(path);
	ASSERT_GE(tfd, 0);
	unlink(path);
	ASSERT_EQ(0, ftruncate(tfd, len));
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, tfd, 0);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, hmirror_write(self->fd, 0, (uintptr_t)p, buf, len));
	ASSERT_EQ(len, (size_t)pread(tfd, buf, len, 0));
	ASSERT_EQ(0, check_pattern(buf, len, 15));
	/* Truncation invalidates: the device faults again and gets -EFAULT. */
	ASSERT_EQ(0, ftruncate(tfd, 0));
	ASSERT_EQ(-EFAULT, hmirror_read(self->fd, 0, (uintptr_t)p, buf, PAGE));
	close(tfd);
	close(mfd);
}

/* KiB of the mapping holding @p that the kernel backs with huge pages. */
static long anon_huge_kb(const void *p)
{
	char line[256];
	unsigned long lo, hi;
	long kb = -1;
	int inside = 0;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' '))
			inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		else if (inside && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

TEST_F(mirror, transparent_huge_page)
{
	size_t len = HUGE_2M;
	uint8_t *p = map_aligned(len, HUGE_2M), *buf = map_anon(len);

	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, buf);
	madvise(p, len, MADV_HUGEPAGE);
	fill_pattern(p, len, 16);
	ASSERT_EQ(0, hmirror_read(self->fd, 0, (uintptr_t)p, buf, len));
	ASSERT_EQ(0, check_pattern(buf, len, 16));
	/* A THP is mirrored with one 2 MiB device leaf. */
	if (anon_huge_kb(p) >= 2048) {
		ASSERT_EQ(512, snap_count(self->fd, p, 512,
					  DRM_HMIRROR_SNAP_READ | DRM_HMIRROR_SNAP_HUGE));
	} else {
		TH_LOG("no THP here (AnonHugePages %ld kB): 4 KiB leaves",
		       anon_huge_kb(p));
	}
	fill_pattern(buf, len, 17);
	ASSERT_EQ(0, hmirror_write(self->fd, 0, (uintptr_t)p, buf, len));
	ASSERT_EQ(0, check_pattern(p, len, 17));
	/*
	 * The CPU maps it with PTEs now (a read-only page split the PMD; the
	 * folio stays whole and contiguous), so the device may still map it
	 * with one 2 MiB leaf, and dropping one page invalidates only that
	 * page: the whole leaf must go, not stay for the other 511.
	 */
	ASSERT_EQ(0, mprotect(p + PAGE, PAGE, PROT_READ));
	ASSERT_EQ(0, mprotect(p + PAGE, PAGE, PROT_READ | PROT_WRITE));
	ASSERT_EQ(0, hmirror_read(self->fd, 0, (uintptr_t)p, buf, len));
	ASSERT_EQ(0, check_pattern(buf, len, 17));
	if (snap_has(self->fd, p, 512, DRM_HMIRROR_SNAP_HUGE))
		TH_LOG("a PTE-mapped THP mirrored with a 2 MiB leaf");
	ASSERT_EQ(0, madvise(p + PAGE, PAGE, MADV_DONTNEED));
	ASSERT_EQ(0, snap_has(self->fd, p, 512, DRM_HMIRROR_SNAP_HUGE));
	ASSERT_EQ(0, hmirror_read(self->fd, 0, (uintptr_t)p, buf, 2 * PAGE));
	ASSERT_EQ(0, check_pattern(buf, PAGE, 17));
	for (size_t i = PAGE; i < 2 * PAGE; i++)
		ASSERT_EQ(0, buf[i]);
}

TEST_F(mirror, hugetlbfs)
{
	size_t len = HUGE_2M;
	uint8_t *buf = map_anon(len);
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);

	if (p == MAP_FAILED)
		SKIP(return, "no huge pages reserved (hugepages= on the kernel command line)");
	ASSERT_NE(NULL, buf);
	fill_pattern(p, len, 18);
	ASSERT_EQ(0, hmirror_read(self->fd, 0, (uintptr_t)p, buf, len));
	ASSERT_EQ(0, check_pattern(buf, len, 18));
	/* A 2 MiB huge page is one 2 MiB device leaf. */
	ASSERT_EQ(512, snap_count(self->fd, p, 512,
				  DRM_HMIRROR_SNAP_READ | DRM_HMIRROR_SNAP_HUGE));
	fill_pattern(buf, len, 19);
	ASSERT_EQ(0, hmirror_write(self->fd, 0, (uintptr_t)p, buf, len));
	ASSERT_EQ(0, check_pattern(p, len, 19));
	munmap(p, len);
}

struct adder {
	uint64_t *word;
	int fd;
	int device;
	long n;
	int err;
};

static void *adder_thread(void *arg)
{
	struct adder *a = arg;
	uint64_t old;
	long i;

	for (i = 0; i < a->n; i++) {
		if (a->device) {
			int ret = hmirror_atomic_add(a->fd, i & 1, (uintptr_t)a->word,
						     1, &old);

			if (ret) {
				a->err = ret;
				break;
			}
		} else {
			__atomic_fetch_add(a->word, 1, __ATOMIC_SEQ_CST);
		}
	}
	return NULL;
}

TEST_F(mirror, atomics_device_and_cpu_no_lost_update)
{
	uint64_t *word = map_anon(PAGE), old;
	struct adder a[4];
	pthread_t t[4];
	int i;

	ASSERT_NE(NULL, word);
	for (i = 0; i < 4; i++) {
		a[i] = (struct adder){ .word = word, .fd = self->fd,
				       .device = i < 2, .n = 2000 };
		ASSERT_EQ(0, pthread_create(&t[i], NULL, adder_thread, &a[i]));
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ASSERT_EQ(0, a[i].err);
	}
	ASSERT_EQ(8000, *word);
	ASSERT_EQ(0, hmirror_atomic_cmpxchg(self->fd, 0, (uintptr_t)word, 8000,
					    42, &old));
	ASSERT_EQ(8000, old);
	ASSERT_EQ(42, *word);
	ASSERT_EQ(0, hmirror_atomic_cmpxchg(self->fd, 0, (uintptr_t)word, 1, 7,
					    &old));
	ASSERT_EQ(42, old);
	ASSERT_EQ(42, *word);
}

TEST_F(mirror, two_contexts_one_process)
{
	size_t len = 4 * PAGE;
	uint8_t *p = map_anon(len), *buf = map_anon(len);
	int fd2 = hmirror_open_nth(0);

	ASSERT_GE(fd2, 0);
	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, buf);
	fill_pattern(p, len, 20);
	ASSERT_EQ(0, hmirror_prefetch(self->fd, (uintptr_t)p, len, 0));
	ASSERT_EQ(0, hmirror_prefetch(fd2, (uintptr_t)p, len, 0));
	/* One change invalidates both contexts. */
	fill_pattern(buf, len, 21);
	ASSERT_EQ(0, hmirror_write(fd2, 0, (uintptr_t)p, buf, len));
	memset(buf, 0, len);
	ASSERT_EQ(0, hmirror_read(self->fd, 1 % self->info.num_engines,
				  (uintptr_t)p, buf, len));
	ASSERT_EQ(0, check_pattern(buf, len, 21));
	ASSERT_EQ(0, munmap(p, len));
	ASSERT_EQ(4, snap_count(self->fd, p, 4, DRM_HMIRROR_SNAP_NONE));
	ASSERT_EQ(4, snap_count(fd2, p, 4, DRM_HMIRROR_SNAP_NONE));
	hmirror_close(fd2);
}

TEST_F(mirror, gup_and_hmm_backends_agree)
{
	struct drm_hmirror_ctx_options o = { .flags = DRM_HMIRROR_CTX_SET };
	size_t len = 16 * PAGE;
	uint8_t *p = map_anon(len), *buf = map_anon(len);
	uint64_t s1, s2;

	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, buf);
	fill_pattern(p, len, 22);
	ASSERT_EQ(0, hmirror_checksum(self->fd, 0, (uintptr_t)p, len, &s1));
	ASSERT_EQ(0, munmap(buf, len));
	o.backend = DRM_HMIRROR_BACKEND_HMM;
	ASSERT_EQ(0, hmirror_ctx_options(self->fd, &o));
	ASSERT_EQ(0, madvise(p, len, MADV_DONTNEED));
	fill_pattern(p, len, 22);
	ASSERT_EQ(0, hmirror_checksum(self->fd, 0, (uintptr_t)p, len, &s2));
	ASSERT_EQ(s1, s2);
	ASSERT_EQ(hmirror_checksum_cpu(p, len), s2);
}

TEST_F(mirror, fault_ahead_window)
{
	struct drm_hmirror_ctx_options o = { .flags = DRM_HMIRROR_CTX_SET };
	struct drm_hmirror_ctx_stats st0, st1;
	size_t len = 64 * PAGE;
	uint8_t *p = map_anon(len);
	uint64_t sum;

	ASSERT_NE(NULL, p);
	fill_pattern(p, len, 23);
	o.fault_ahead = 32;
	ASSERT_EQ(0, hmirror_ctx_options(self->fd, &o));
	ASSERT_EQ(0, hmirror_get_ctx_stats(self->fd, &st0));
	ASSERT_EQ(0, hmirror_checksum(self->fd, 0, (uintptr_t)p, 8, &sum));
	ASSERT_EQ(0, hmirror_get_ctx_stats(self->fd, &st1));
	/* One page asked for, 32 more mapped ahead. */
	ASSERT_EQ(32, st1.ahead_pages - st0.ahead_pages);
	ASSERT_EQ(33, snap_count(self->fd, p, 64, DRM_HMIRROR_SNAP_READ));
}

TEST_F(mirror, bad_exec_arguments)
{
	uint8_t *p = map_anon(2 * PAGE);
	struct drm_hmirror_exec x;

	ASSERT_NE(NULL, p);
#define BAD(...) do { \
		x = (struct drm_hmirror_exec){ __VA_ARGS__ }; \
		EXPECT_EQ(-EINVAL, hmirror_exec(self->fd, &x)); \
	} while (0)
	BAD(.op = 0, .addr = (uintptr_t)p, .len = 8);
	BAD(.op = 99, .addr = (uintptr_t)p, .len = 8);
	BAD(.op = DRM_HMIRROR_OP_FILL, .addr = (uintptr_t)p, .len = 0);
	BAD(.op = DRM_HMIRROR_OP_FILL, .addr = (uintptr_t)p + 1, .len = 8);
	BAD(.op = DRM_HMIRROR_OP_FILL, .addr = (uintptr_t)p, .len = 12);
	BAD(.op = DRM_HMIRROR_OP_FILL, .addr = (uintptr_t)p, .len = 8, .flags = 1);
	BAD(.op = DRM_HMIRROR_OP_FILL, .addr = (uintptr_t)p, .len = 8, .buf = 8);
	BAD(.op = DRM_HMIRROR_OP_FILL, .addr = (uintptr_t)p, .len = 8, .engine = 99);
	BAD(.op = DRM_HMIRROR_OP_FILL, .addr = (uintptr_t)p, .len = 8,
	    .reserved = { 1, 0 });
	BAD(.op = DRM_HMIRROR_OP_FILL, .addr = ~0ull - 7, .len = 8);
	BAD(.op = DRM_HMIRROR_OP_FILL, .addr = (uintptr_t)p,
	    .len = DRM_HMIRROR_EXEC_MAX_LEN + 8);
	BAD(.op = DRM_HMIRROR_OP_COPY, .addr = (uintptr_t)p,
	    .buf = (uintptr_t)p + 8, .len = 64);
	BAD(.op = DRM_HMIRROR_OP_ATOMIC_ADD, .addr = (uintptr_t)p, .len = 16);
	BAD(.op = DRM_HMIRROR_OP_ATOMIC_ADD, .addr = (uintptr_t)p + 4, .len = 8);
	BAD(.op = DRM_HMIRROR_OP_ATOMIC_ADD, .addr = (uintptr_t)p, .len = 8,
	    .value2 = 1);
#undef BAD
	/* A kernel address is not the process's. */
	x = (struct drm_hmirror_exec){ .op = DRM_HMIRROR_OP_FILL,
				       .addr = 0xffff888000000000ull, .len = 8 };
	EXPECT_EQ(-EINVAL, hmirror_exec(self->fd, &x));
	ASSERT_EQ(-EINVAL, hmirror_prefetch(self->fd, (uintptr_t)p + 1, PAGE, 0));
	ASSERT_EQ(-EINVAL, hmirror_prefetch(self->fd, (uintptr_t)p, 100, 0));
	ASSERT_EQ(-EINVAL, hmirror_snapshot(self->fd, (uintptr_t)p, 0, p));
	ASSERT_EQ(-EFAULT, hmirror_snapshot(self->fd, (uintptr_t)p, 1, (void *)8));
	/* An address that was never mapped faults. */
	ASSERT_EQ(-EFAULT, hmirror_fill(self->fd, 0, 0x10000, 8, 0));
}

/*
 * A PREFETCH over a range the process cannot access that way fails with
 * -EFAULT, also when GUP mapped a part before the bad page: success on a
 * partial range would lie.
 */
static void prefetch_partly_read_only(struct __test_metadata *_metadata,
				      int fd, uint32_t backend)
{
	struct drm_hmirror_ctx_options o = {
		.flags = DRM_HMIRROR_CTX_SET, .backend = backend,
	};
	uint8_t *p = map_anon(8 * PAGE);

	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, hmirror_ctx_options(fd, &o));
	memset(p, 1, 8 * PAGE);
	ASSERT_EQ(0, mprotect(p + 4 * PAGE, 4 * PAGE, PROT_READ));
	ASSERT_EQ(-EFAULT, hmirror_prefetch(fd, (uintptr_t)p, 8 * PAGE, 1));
	/* Reading is allowed all along. */
	ASSERT_EQ(0, hmirror_prefetch(fd, (uintptr_t)p, 8 * PAGE, 0));
	ASSERT_EQ(4, snap_count(fd, p + 4 * PAGE, 4, DRM_HMIRROR_SNAP_READ));
}

TEST_F(mirror, prefetch_of_a_partly_read_only_range_fails)
{
	prefetch_partly_read_only(_metadata, self->fd, DRM_HMIRROR_BACKEND_GUP);
}

/* The HMM backend faults the writable prefix, then fails at the rest. */
TEST_F(mirror, prefetch_of_a_partly_read_only_range_fails_hmm)
{
	prefetch_partly_read_only(_metadata, self->fd, DRM_HMIRROR_BACKEND_HMM);
}

/* ---- userfaultfd: a device fault resolved (or not) by user space ------ */

struct uffd_ctx {
	int uffd;
	uint8_t *area;
	size_t len;
	uint64_t seed;
	int resolve;		/* 1: copy pages in, 0: stop (atomic access) */
	int handled;
	pthread_t thread;
};

static int uffd_setup(struct uffd_ctx *u, size_t len)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };

	u->len = len;
	u->area = map_anon(len);
	if (!u->area)
		return -1;
	/* Not user-mode-only: the driver's GUP faults come from the kernel. */
	u->uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (u->uffd < 0)
		return -1;
	if (ioctl(u->uffd, UFFDIO_API, &api))
		return -1;
	reg.range.start = (uintptr_t)u->area;
	reg.range.len = len;
	return ioctl(u->uffd, UFFDIO_REGISTER, &reg);
}

static void *uffd_handler(void *arg)
{
	struct uffd_ctx *u = arg;
	static uint64_t page[PAGE / 8] __attribute__((aligned(4096)));

	while (__atomic_load_n(&u->resolve, __ATOMIC_ACQUIRE)) {
		struct pollfd pfd = { .fd = u->uffd, .events = POLLIN };
		struct uffd_msg msg;
		struct uffdio_copy copy;
		uint64_t addr;

		/* Non-blocking: the stop flag is checked every 100 ms. */
		if (poll(&pfd, 1, 100) <= 0 || !(pfd.revents & POLLIN))
			continue;
		if (read(u->uffd, &msg, sizeof(msg)) != sizeof(msg))
			continue;
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		addr = msg.arg.pagefault.address & ~(PAGE - 1);
		fill_pattern(page, PAGE, u->seed + (addr - (uintptr_t)u->area) / PAGE);
		copy.dst = addr;
		copy.src = (uintptr_t)page;
		copy.len = PAGE;
		copy.mode = 0;
		copy.copy = 0;
		if (!ioctl(u->uffd, UFFDIO_COPY, &copy))
			__atomic_fetch_add(&u->handled, 1, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

TEST_F(mirror, userfaultfd_resolves_device_fault)
{
	struct drm_hmirror_ctx_stats st;
	struct uffd_ctx u = { .seed = 100, .resolve = 1 };
	size_t len = 4 * PAGE;
	uint8_t *buf = map_anon(len);

	ASSERT_NE(NULL, buf);
	if (uffd_setup(&u, len))
		SKIP(return, "userfaultfd unavailable: %s", strerror(errno));
	ASSERT_EQ(0, pthread_create(&u.thread, NULL, uffd_handler, &u));
	ASSERT_EQ(0, hmirror_read(self->fd, 0, (uintptr_t)u.area, buf, len));
	for (size_t i = 0; i < 4; i++)
		ASSERT_EQ(0, check_pattern(buf + i * PAGE, PAGE, 100 + i));
	ASSERT_GE(u.handled, 1);
	ASSERT_EQ(0, hmirror_get_ctx_stats(self->fd, &st));
	/* handle_userfault() drops mmap_lock: the driver saw locked == 0. */
	ASSERT_GE(st.lock_drops, 1);
	__atomic_store_n(&u.resolve, 0, __ATOMIC_RELEASE);
	pthread_join(u.thread, NULL);
	close(u.uffd);
}

/* hmm_range_fault() cannot wait for a userfaultfd handler: -EFAULT. */
TEST_F(mirror, userfaultfd_hmm_backend_fails)
{
	struct drm_hmirror_ctx_options o = {
		.flags = DRM_HMIRROR_CTX_SET, .backend = DRM_HMIRROR_BACKEND_HMM,
	};
	struct uffd_ctx u = { .seed = 200, .resolve = 1 };
	uint8_t *buf = map_anon(PAGE);

	ASSERT_NE(NULL, buf);
	if (uffd_setup(&u, PAGE))
		SKIP(return, "userfaultfd unavailable");
	ASSERT_EQ(0, hmirror_ctx_options(self->fd, &o));
	ASSERT_EQ(0, pthread_create(&u.thread, NULL, uffd_handler, &u));
	ASSERT_EQ(-EFAULT, hmirror_read(self->fd, 0, (uintptr_t)u.area, buf, PAGE));
	ASSERT_EQ(0, u.handled);
	__atomic_store_n(&u.resolve, 0, __ATOMIC_RELEASE);
	pthread_join(u.thread, NULL);
	close(u.uffd);
}

static void on_sigusr1(int sig)
{
	(void)sig;
}

struct kicker {
	pthread_t target;
	unsigned int ms;
};

static void *kick_thread(void *arg)
{
	struct kicker *k = arg;

	usleep(k->ms * 1000);
	pthread_kill(k->target, SIGUSR1);
	return NULL;
}

TEST_F(mirror, signal_interrupts_blocked_device_fault)
{
	struct sigaction sa = { .sa_handler = on_sigusr1 };	/* no SA_RESTART */
	struct drm_hmirror_ctx_stats st0, st1;
	struct uffd_ctx u = { .resolve = 0 };
	struct kicker k = { .target = pthread_self(), .ms = 300 };
	uint8_t *buf = map_anon(PAGE), *ok = map_anon(PAGE);
	pthread_t t;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, ok);
	if (uffd_setup(&u, PAGE))
		SKIP(return, "userfaultfd unavailable");
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	ASSERT_EQ(0, hmirror_get_ctx_stats(self->fd, &st0));
	ASSERT_EQ(0, pthread_create(&t, NULL, kick_thread, &k));
	/* Nobody resolves the fault: only the signal ends the wait. */
	ASSERT_EQ(-EINTR, hmirror_read(self->fd, 0, (uintptr_t)u.area, buf, PAGE));
	pthread_join(t, NULL);
	ASSERT_EQ(0, hmirror_get_ctx_stats(self->fd, &st1));
	ASSERT_EQ(st0.interrupted + 1, st1.interrupted);
	/* The command was cancelled: the engine is free for the next one. */
	fill_pattern(ok, PAGE, 300);
	ASSERT_EQ(0, hmirror_read(self->fd, 0, (uintptr_t)ok, buf, PAGE));
	ASSERT_EQ(0, check_pattern(buf, PAGE, 300));
	close(u.uffd);
}

static unsigned long live_contexts(int fd)
{
	struct drm_hmirror_stats st;

	return hmirror_get_stats(fd, &st) ? ~0ul : st.live_contexts;
}

/* A SIGKILLed process whose device fault is blocked exits promptly and
 * its context goes away.
 */
TEST_F(mirror, sigkill_while_fault_blocked)
{
	unsigned long base = live_contexts(self->fd);
	int status = 0, i;
	pid_t pid, w = 0;

	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		struct uffd_ctx u = { .resolve = 0 };
		uint8_t *buf = map_anon(PAGE);
		int fd = hmirror_open_nth(0);

		if (fd < 0 || !buf || uffd_setup(&u, PAGE))
			_exit(2);
		hmirror_read(fd, 0, (uintptr_t)u.area, buf, PAGE);
		_exit(3);	/* must not get here: killed while blocked */
	}
	for (i = 0; i < 200 && live_contexts(self->fd) != base + 1; i++)
		usleep(10000);
	ASSERT_EQ(base + 1, live_contexts(self->fd));
	usleep(300000);
	ASSERT_EQ(0, waitpid(pid, &status, WNOHANG));	/* still blocked */
	ASSERT_EQ(0, kill(pid, SIGKILL));
	for (i = 0; i < 500 && w != pid; i++) {
		w = waitpid(pid, &status, WNOHANG);
		if (w != pid)
			usleep(10000);
	}
	ASSERT_EQ(pid, w) TH_LOG("killed process did not exit within 5 s");
	ASSERT_TRUE(WIFSIGNALED(status));
	for (i = 0; i < 200 && live_contexts(self->fd) != base; i++)
		usleep(10000);
	ASSERT_EQ(base, live_contexts(self->fd));
}

struct reader {
	int fd;
	uint8_t *addr, *buf;
	size_t len;
	int ret;
};

static void *reader_thread(void *arg)
{
	struct reader *r = arg;

	r->ret = hmirror_read(r->fd, 0, (uintptr_t)r->addr, r->buf, r->len);
	return NULL;
}

/* Closing the file while a device fault is outstanding: the context lives
 * until the command ends, then goes.
 */
TEST_F(mirror, close_with_fault_outstanding)
{
	struct uffd_ctx u = { .seed = 400, .resolve = 0 };
	unsigned long base = live_contexts(self->fd);
	struct reader r = { .len = PAGE };
	pthread_t t;
	int i;

	r.fd = hmirror_open_nth(0);
	ASSERT_GE(r.fd, 0);
	r.buf = map_anon(PAGE);
	ASSERT_NE(NULL, r.buf);
	if (uffd_setup(&u, PAGE))
		SKIP(return, "userfaultfd unavailable");
	r.addr = u.area;
	ASSERT_EQ(base + 1, live_contexts(self->fd));
	ASSERT_EQ(0, pthread_create(&t, NULL, reader_thread, &r));
	usleep(200000);
	ASSERT_EQ(0, close(r.fd));
	/* The blocked ioctl holds the file: the context is still alive. */
	ASSERT_EQ(base + 1, live_contexts(self->fd));
	__atomic_store_n(&u.resolve, 1, __ATOMIC_RELEASE);
	ASSERT_EQ(0, pthread_create(&u.thread, NULL, uffd_handler, &u));
	pthread_join(t, NULL);
	ASSERT_EQ(0, r.ret);
	ASSERT_EQ(0, check_pattern(r.buf, PAGE, 400));
	for (i = 0; i < 200 && live_contexts(self->fd) != base; i++)
		usleep(10000);
	ASSERT_EQ(base, live_contexts(self->fd));
	__atomic_store_n(&u.resolve, 0, __ATOMIC_RELEASE);
	pthread_join(u.thread, NULL);
	close(u.uffd);
}

struct zapper {
	struct uffd_ctx *u;
	uint8_t *target;
};

/* Invalidate the range under a blocked fault, then let the fault finish. */
static void *zap_then_resolve(void *arg)
{
	struct zapper *z = arg;

	usleep(200000);
	madvise(z->target, PAGE, MADV_DONTNEED);
	__atomic_store_n(&z->u->resolve, 1, __ATOMIC_RELEASE);
	uffd_handler(z->u);
	return NULL;
}

/* An invalidation racing a fault makes it retry; an untouched fault does not. */
TEST_F(mirror, stats_count_retries_from_racing_invalidations)
{
	struct drm_hmirror_ctx_stats st0, st1, st2;
	struct uffd_ctx u = { .seed = 500, .resolve = 0 };
	struct zapper z = { .u = &u };
	uint8_t *buf = map_anon(PAGE), *plain = map_anon(PAGE);
	pthread_t t;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, plain);
	if (uffd_setup(&u, PAGE))
		SKIP(return, "userfaultfd unavailable");
	z.target = u.area;
	/* Untouched by any invalidation: zero retries. */
	ASSERT_EQ(0, hmirror_get_ctx_stats(self->fd, &st0));
	fill_pattern(plain, PAGE, 501);
	ASSERT_EQ(0, hmirror_read(self->fd, 0, (uintptr_t)plain, buf, PAGE));
	ASSERT_EQ(0, hmirror_get_ctx_stats(self->fd, &st1));
	ASSERT_EQ(st0.retries_stale, st1.retries_stale);
	ASSERT_EQ(st0.retries_waited, st1.retries_waited);

	ASSERT_EQ(0, pthread_create(&t, NULL, zap_then_resolve, &z));
	ASSERT_EQ(0, hmirror_read(self->fd, 0, (uintptr_t)u.area, buf, PAGE));
	__atomic_store_n(&u.resolve, 0, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	/* After the retry the device read what the handler put there. */
	ASSERT_EQ(0, check_pattern(buf, PAGE, 500));
	ASSERT_EQ(0, hmirror_get_ctx_stats(self->fd, &st2));
	ASSERT_GE(st2.retries_stale, st1.retries_stale + 1);
	ASSERT_GE(st2.invalidations, st1.invalidations + 1);
	close(u.uffd);
}

TEST_F_TIMEOUT(mirror, ksm_merge_then_device_write, 90)
{
	size_t len = 2 * PAGE;
	uint8_t *p = map_anon(len), *buf = map_anon(PAGE);
	int i;

	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, buf);
	if (read_long("/sys/kernel/mm/ksm/run") < 0)
		SKIP(return, "no KSM");
	write_sysfs("/sys/kernel/mm/ksm/sleep_millisecs", "10");
	write_sysfs("/sys/kernel/mm/ksm/pages_to_scan", "5000");
	write_sysfs("/sys/kernel/mm/ksm/run", "1");
	fill_pattern(p, PAGE, 600);
	fill_pattern(p + PAGE, PAGE, 600);
	ASSERT_EQ(0, hmirror_prefetch(self->fd, (uintptr_t)p, len, 0));
	ASSERT_EQ(0, madvise(p, len, MADV_MERGEABLE));
	for (i = 0; i < 600 && read_long("/sys/kernel/mm/ksm/pages_sharing") < 1; i++)
		usleep(100000);
	ASSERT_GE(read_long("/sys/kernel/mm/ksm/pages_sharing"), 1)
		TH_LOG("ksmd did not merge in 60 s");
	/* Merging replaced the pages: the device mapping was invalidated. */
	ASSERT_EQ(2, snap_count(self->fd, p, 2, DRM_HMIRROR_SNAP_NONE));
	fill_pattern(buf, PAGE, 601);
	ASSERT_EQ(0, hmirror_write(self->fd, 0, (uintptr_t)p, buf, PAGE));
	ASSERT_EQ(0, check_pattern(p, PAGE, 601));
	ASSERT_EQ(0, check_pattern(p + PAGE, PAGE, 600));
	madvise(p, len, MADV_UNMERGEABLE);
}

TEST_F(mirror, numa_migration)
{
	const char *nodes = getenv("HMIRROR_NUMA_NODES");
	size_t len = 4 * PAGE;
	uint8_t *p = map_anon(len), *buf = map_anon(len);
	void *pages[4];
	int target[4], status[4], i;

	if (!nodes || atoi(nodes) < 2)
		SKIP(return, "needs two NUMA nodes");
	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, buf);
	fill_pattern(p, len, 700);
	ASSERT_EQ(0, hmirror_prefetch(self->fd, (uintptr_t)p, len, 1));
	/* Where are they now?  Move each to the other node. */
	for (i = 0; i < 4; i++)
		pages[i] = p + i * PAGE;
	ASSERT_EQ(0, syscall(__NR_move_pages, 0, 4, pages, NULL, status, 0));
	for (i = 0; i < 4; i++) {
		ASSERT_GE(status[i], 0);
		target[i] = !status[i];
	}
	ASSERT_EQ(0, syscall(__NR_move_pages, 0, 4, pages, target, status, 2));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(target[i], status[i]);
	ASSERT_EQ(4, snap_count(self->fd, p, 4, DRM_HMIRROR_SNAP_NONE));
	ASSERT_EQ(0, hmirror_read(self->fd, 0, (uintptr_t)p, buf, len));
	ASSERT_EQ(0, check_pattern(buf, len, 700));
	fill_pattern(buf, len, 701);
	ASSERT_EQ(0, hmirror_write(self->fd, 0, (uintptr_t)p, buf, len));
	ASSERT_EQ(0, check_pattern(p, len, 701));
}

TEST_F(mirror, two_devices_one_process)
{
	const char *ndev = getenv("HMIRROR_NUM_DEVICES");
	size_t len = 4 * PAGE;
	uint8_t *p = map_anon(len), *buf = map_anon(len);
	int fd1;

	if (!ndev || atoi(ndev) < 2)
		SKIP(return, "needs two hmirror devices");
	fd1 = hmirror_open_nth(1);
	ASSERT_GE(fd1, 0);
	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, buf);
	fill_pattern(buf, len, 800);
	ASSERT_EQ(0, hmirror_write(self->fd, 0, (uintptr_t)p, buf, len));
	memset(buf, 0, len);
	ASSERT_EQ(0, hmirror_read(fd1, 0, (uintptr_t)p, buf, len));
	ASSERT_EQ(0, check_pattern(buf, len, 800));
	ASSERT_EQ(0, munmap(p, len));
	ASSERT_EQ(4, snap_count(self->fd, p, 4, DRM_HMIRROR_SNAP_NONE));
	ASSERT_EQ(4, snap_count(fd1, p, 4, DRM_HMIRROR_SNAP_NONE));
	ASSERT_EQ(-EFAULT, hmirror_read(fd1, 0, (uintptr_t)p, buf, len));
	hmirror_close(fd1);
}

TEST_HARNESS_MAIN
