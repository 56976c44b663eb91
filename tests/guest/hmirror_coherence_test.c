// SPDX-License-Identifier: GPL-2.0
/*
 * Guest kselftest: the coherence holes.  Each test drives one way the
 * device could end up reaching memory the CPU no longer maps for it, or
 * one user's trouble reaching another user:
 *
 *  - an invalidation of a fault-ahead page racing the fault's commit;
 *  - user addresses beyond the device's address width (5-level paging);
 *  - non-blockable invalidations (process_mrelease() of a killed
 *    mirroring process), on both fault backends;
 *  - a fault stalled for longer than any deadline, while another process
 *    uses the same engine;
 *  - a device declared dead, or unbound, while commands run or a fault is
 *    blocked: afterwards it must touch no memory, and unbind must return;
 *  - invalidations of unrelated memory, which must cost a fault nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "hmirror_dev.h"
#include "libhmirror.h"
#include "guest_util.h"

static int set_ahead(int fd, uint32_t backend, uint32_t ahead)
{
	struct drm_hmirror_ctx_options o = {
		.flags = DRM_HMIRROR_CTX_SET,
		.backend = backend,
		.fault_ahead = ahead,
	};

	return hmirror_ctx_options(fd, &o);
}

static int count_devices(void)
{
	int n;

	for (n = 0;; n++) {
		int fd = hmirror_open_nth(n);

		if (fd < 0)
			return n;
		hmirror_close(fd);
	}
}

FIXTURE(coh) {
	int fd;
	struct drm_hmirror_info info;
};

FIXTURE_SETUP(coh)
{
	self->fd = hmirror_open_nth(0);
	ASSERT_GE(self->fd, 0);
	ASSERT_EQ(0, hmirror_get_info(self->fd, &self->info));
	/* Every test here needs a translating device: never skip for that. */
	ASSERT_TRUE(self->info.features & HMIRROR_FEAT_TRANSLATE);
}

FIXTURE_TEARDOWN(coh)
{
	char bdf[64], path[256];

	/* A test that failed before using its fault injection disarms it. */
	if (!fd_to_bdf(self->fd, bdf, sizeof(bdf))) {
		snprintf(path, sizeof(path),
			 "/sys/kernel/debug/accel/%s/hmirror_inject", bdf);
		write_sysfs(path, "none");
	}
	hmirror_close(self->fd);
}

/* ---- fault-ahead pages are tracked like the device's own run --------- */

#define AHEAD_PAGES	256

struct ahead_racer {
	uint8_t *p;
	int round;		/* round the racer should run, 0: none */
	int done;		/* last round it finished */
	int quit;
	unsigned int seed;
};

/*
 * Each round: after a random delay (so that it lands anywhere in the
 * device's fault), drop the fault-ahead pages and write new ones.
 */
static void *ahead_racer_main(void *arg)
{
	struct ahead_racer *r = arg;
	int seen = 0;

	while (!__atomic_load_n(&r->quit, __ATOMIC_ACQUIRE)) {
		int round = __atomic_load_n(&r->round, __ATOMIC_ACQUIRE);

		if (round == seen) {
			sched_yield();
			continue;
		}
		usleep(rand_r(&r->seed) % 3000);
		madvise(r->p + PAGE, AHEAD_PAGES * PAGE, MADV_DONTNEED);
		fill_pattern(r->p + PAGE, AHEAD_PAGES * PAGE, 1000 + round);
		seen = round;
		__atomic_store_n(&r->done, round, __ATOMIC_RELEASE);
	}
	return NULL;
}

/*
 * The device faults page 0 with a 256-page fault-ahead window while
 * another thread replaces pages 1..256.  Afterwards the device must see
 * exactly what the CPU sees on every page: a fault-ahead page the CPU
 * dropped between the fault's GUP and its commit must not be committed.
 */
static void race_fault_ahead(struct __test_metadata *_metadata, int fd,
			     uint32_t backend, double seconds)
{
	struct ahead_racer r = { .seed = 42 };
	size_t len = (AHEAD_PAGES + 1) * PAGE;
	uint64_t sum_dev, sum_cpu;
	int round = 0, bad = 0;
	double end;
	pthread_t t;

	ASSERT_EQ(0, set_ahead(fd, backend, AHEAD_PAGES));
	r.p = map_anon(len);
	ASSERT_NE(NULL, r.p);
	fill_pattern(r.p, len, 999);
	ASSERT_EQ(0, pthread_create(&t, NULL, ahead_racer_main, &r));
	end = now_s() + seconds;
	while (now_s() < end && !bad) {
		round++;
		madvise(r.p, PAGE, MADV_DONTNEED);
		__atomic_store_n(&r.round, round, __ATOMIC_RELEASE);
		/* Faults page 0 and, ahead, pages 1..256. */
		ASSERT_EQ(0, hmirror_checksum(fd, 0, (uintptr_t)r.p, PAGE, &sum_dev));
		while (__atomic_load_n(&r.done, __ATOMIC_ACQUIRE) != round)
			sched_yield();
		ASSERT_EQ(0, hmirror_checksum(fd, 0, (uintptr_t)r.p + PAGE,
					      AHEAD_PAGES * PAGE, &sum_dev));
		sum_cpu = hmirror_checksum_cpu(r.p + PAGE, AHEAD_PAGES * PAGE);
		if (sum_dev == sum_cpu)
			continue;
		/* Which pages does the device see wrong? */
		for (int i = 1; i <= AHEAD_PAGES; i++) {
			uint64_t s;

			ASSERT_EQ(0, hmirror_checksum(fd, 0, (uintptr_t)r.p + i * PAGE,
						      PAGE, &s));
			bad += s != hmirror_checksum_cpu(r.p + i * PAGE, PAGE);
		}
	}
	__atomic_store_n(&r.quit, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	TH_LOG("%d rounds, %d pages the device saw differently from the CPU",
	       round, bad);
	ASSERT_EQ(0, bad);
	munmap(r.p, len);
}

TEST_F_TIMEOUT(coh, fault_ahead_racing_invalidation_gup, 60)
{
	race_fault_ahead(_metadata, self->fd, DRM_HMIRROR_BACKEND_GUP, 15);
}

TEST_F_TIMEOUT(coh, fault_ahead_racing_invalidation_hmm, 60)
{
	race_fault_ahead(_metadata, self->fd, DRM_HMIRROR_BACKEND_HMM, 15);
}

/*
 * With the HMM backend, a fault-ahead page that cannot be faulted (past
 * the end of a file) must not fail the device's own run.
 */
TEST_F(coh, fault_ahead_past_eof_hmm)
{
	char path[] = "/tmp/hmirror-eofXXXXXX";
	uint8_t *buf = map_anon(PAGE);
	uint64_t sum;
	uint8_t *p;
	int file;

	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, set_ahead(self->fd, DRM_HMIRROR_BACKEND_HMM, 16));
	file = mkstemp(path);
	ASSERT_GE(file, 0);
	unlink(path);
	/* One page of file, a four-page mapping: pages 1..3 are past EOF. */
	ASSERT_EQ(0, ftruncate(file, PAGE));
	p = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, file, 0);
	ASSERT_NE(MAP_FAILED, p);
	fill_pattern(p, PAGE, 77);
	ASSERT_EQ(0, hmirror_checksum(self->fd, 0, (uintptr_t)p, PAGE, &sum));
	ASSERT_EQ(hmirror_checksum_cpu(p, PAGE), sum);
	ASSERT_EQ(0, hmirror_read(self->fd, 0, (uintptr_t)p, buf, PAGE));
	ASSERT_EQ(0, check_pattern(buf, PAGE, 77));
	/* Past EOF the device faults like the CPU would. */
	ASSERT_EQ(-EFAULT, hmirror_read(self->fd, 0, (uintptr_t)p + PAGE, buf, PAGE));
	munmap(p, 4 * PAGE);
	close(file);
}

/* ---- what the device writes is never lost ---------------------------- */

#define KPF_DIRTY	4

/* The folio behind @p is dirty (/proc/kpageflags), 1 or 0, or -1. */
static int page_dirty(const void *p)
{
	uint64_t entry, flags;
	int fd, ret = -1;

	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		return -1;
	if (pread(fd, &entry, 8, (uintptr_t)p / PAGE * 8) == 8 &&
	    (entry >> 63) & 1) {
		int kf = open("/proc/kpageflags", O_RDONLY);

		if (kf >= 0 && pread(kf, &flags, 8,
				     (entry & ((1ull << 55) - 1)) * 8) == 8)
			ret = (flags >> KPF_DIRTY) & 1;
		if (kf >= 0)
			close(kf);
	}
	close(fd);
	return ret;
}

/*
 * A shared page faulted in for reading is mapped writable but clean (no
 * dirty accounting for shmem).  When the device writes it, the page must
 * become dirty, or reclaim may drop what the device wrote.  Both backends.
 */
static void device_write_dirties(struct __test_metadata *_metadata, int fd,
				 uint32_t backend)
{
	uint8_t *buf = map_anon(PAGE), *p;
	int mfd = memfd_create("hmirror-dirty", 0);

	ASSERT_NE(NULL, buf);
	ASSERT_GE(mfd, 0);
	ASSERT_EQ(0, set_ahead(fd, backend, 0));
	ASSERT_EQ(0, ftruncate(mfd, 4 * PAGE));
	p = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	ASSERT_NE(MAP_FAILED, p);
	for (int i = 0; i < 4; i++)
		(void)*(volatile uint8_t *)(p + i * PAGE);	/* read faults */
	if (page_dirty(p) != 0)
		SKIP(return, "no clean shared page to start from (dirty %d)",
		     page_dirty(p));
	fill_pattern(buf, PAGE, 55);
	ASSERT_EQ(0, hmirror_write(fd, 0, (uintptr_t)p, buf, PAGE));
	ASSERT_EQ(0, check_pattern(p, PAGE, 55));
	ASSERT_EQ(1, page_dirty(p));
	munmap(p, 4 * PAGE);
	close(mfd);
}

TEST_F(coh, device_write_dirties_shared_page_gup)
{
	device_write_dirties(_metadata, self->fd, DRM_HMIRROR_BACKEND_GUP);
}

TEST_F(coh, device_write_dirties_shared_page_hmm)
{
	device_write_dirties(_metadata, self->fd, DRM_HMIRROR_BACKEND_HMM);
}

/* ---- every address the CPU can map is handled ------------------------ */

/* Map @len at or above 2^48, or NULL when this guest has no 5-level paging. */
static void *map_high(size_t len)
{
	void *hint = (void *)(1ull << 50);
	void *p = mmap(hint, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if ((uintptr_t)p < (1ull << 48)) {
		munmap(p, len);
		return NULL;
	}
	return p;
}

/*
 * A 48-bit device cannot translate addresses above 2^48.  They are refused
 * with -EFAULT everywhere a user address enters, and nothing is mapped at
 * their low alias (the 48-bit truncation of the address).
 */
TEST_F(coh, addresses_beyond_device_va_width)
{
	uint64_t va_end = 1ull << self->info.va_bits;
	uint8_t *buf = map_anon(4 * PAGE), out[4];
	struct drm_hmirror_ctx_stats st;
	uint8_t *p, *alias;
	uint64_t sum;

	ASSERT_NE(NULL, buf);
	if (self->info.va_bits >= 57)
		SKIP(return, "device 0 translates 57-bit addresses");
	p = map_high(4 * PAGE);
	if (!p)
		SKIP(return, "no 5-level paging: nothing maps above 2^48");
	ASSERT_GE((uintptr_t)p, va_end);
	fill_pattern(p, 4 * PAGE, 5);
	alias = map_anon(4 * PAGE);
	ASSERT_NE(NULL, alias);

	ASSERT_EQ(-EFAULT, hmirror_prefetch(self->fd, (uintptr_t)p, 4 * PAGE, 1));
	ASSERT_EQ(-EFAULT, hmirror_read(self->fd, 0, (uintptr_t)p, buf, PAGE));
	ASSERT_EQ(-EFAULT, hmirror_write(self->fd, 0, (uintptr_t)p, buf, PAGE));
	ASSERT_EQ(-EFAULT, hmirror_checksum(self->fd, 0, (uintptr_t)p, PAGE, &sum));
	/* As the other operand of a copy, too. */
	ASSERT_EQ(-EFAULT, hmirror_copy(self->fd, 0, (uintptr_t)buf,
					(uintptr_t)p, PAGE));
	ASSERT_EQ(-EFAULT, hmirror_snapshot(self->fd, (uintptr_t)p, 4, out));
	/* A range that starts below and ends above. */
	ASSERT_EQ(-EFAULT, hmirror_prefetch(self->fd, va_end - PAGE, 2 * PAGE, 0));

	/* Nothing reached the device page table at all. */
	ASSERT_EQ(0, hmirror_get_ctx_stats(self->fd, &st));
	ASSERT_EQ(0, st.mapped);
	ASSERT_EQ(0, snap_count(self->fd, (void *)((uintptr_t)p & (va_end - 1)),
				4, DRM_HMIRROR_SNAP_NONE) - 4);
	munmap(p, 4 * PAGE);
}

/* A 57-bit device (five-level tables) mirrors memory above 2^48 exactly. */
TEST(addresses_above_2_48_on_a_57_bit_device)
{
	struct drm_hmirror_info info;
	uint8_t *buf = map_anon(4 * PAGE);
	int n = count_devices(), i, fd = -1;
	uint8_t *p;

	ASSERT_NE(NULL, buf);
	for (i = 0; i < n && fd < 0; i++) {
		fd = hmirror_open_nth(i);
		ASSERT_GE(fd, 0);
		ASSERT_EQ(0, hmirror_get_info(fd, &info));
		if (info.va_bits < 57) {
			hmirror_close(fd);
			fd = -1;
		}
	}
	if (fd < 0)
		SKIP(return, "no device with va_bits 57 in this guest");
	p = map_high(4 * PAGE);
	if (!p)
		SKIP(return, "no 5-level paging: nothing maps above 2^48");
	fill_pattern(p, 4 * PAGE, 6);
	ASSERT_EQ(0, hmirror_read(fd, 0, (uintptr_t)p, buf, 4 * PAGE));
	ASSERT_EQ(0, check_pattern(buf, 4 * PAGE, 6));
	fill_pattern(buf, 4 * PAGE, 7);
	ASSERT_EQ(0, hmirror_write(fd, 0, (uintptr_t)p, buf, 4 * PAGE));
	ASSERT_EQ(0, check_pattern(p, 4 * PAGE, 7));
	ASSERT_EQ(4, snap_count(fd, p, 4, DRM_HMIRROR_SNAP_WRITE));
	/* munmap clears the high entries; a new mapping there is new data. */
	ASSERT_EQ(0, munmap(p, 4 * PAGE));
	ASSERT_EQ(4, snap_count(fd, p, 4, DRM_HMIRROR_SNAP_NONE));
	ASSERT_EQ(p, mmap(p, 4 * PAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0));
	fill_pattern(p, 4 * PAGE, 8);
	ASSERT_EQ(0, hmirror_read(fd, 0, (uintptr_t)p, buf, 4 * PAGE));
	ASSERT_EQ(0, check_pattern(buf, 4 * PAGE, 8));
	munmap(p, 4 * PAGE);
	hmirror_close(fd);
}

/* ---- non-blockable invalidations --------------------------------------- */

FIXTURE(mrelease) {
	int fd;
};

FIXTURE_VARIANT(mrelease) {
	uint32_t backend;
};

FIXTURE_VARIANT_ADD(mrelease, gup) {
	.backend = DRM_HMIRROR_BACKEND_GUP,
};

FIXTURE_VARIANT_ADD(mrelease, hmm) {
	.backend = DRM_HMIRROR_BACKEND_HMM,
};

FIXTURE_SETUP(mrelease)
{
	self->fd = hmirror_open_nth(0);
	ASSERT_GE(self->fd, 0);
}

FIXTURE_TEARDOWN(mrelease)
{
	hmirror_close(self->fd);
}

#define MRELEASE_LEN	(16ul << 20)

/* A process that mirrors 16 MiB (device maps it writable), then waits. */
static void mirroring_child(int ready, uint32_t backend)
{
	int fd = hmirror_open_nth(0);
	uint8_t *p = map_anon(MRELEASE_LEN);

	if (fd < 0 || !p || set_ahead(fd, backend, 0))
		_exit(2);
	fill_pattern(p, MRELEASE_LEN, 9);
	if (hmirror_prefetch(fd, (uintptr_t)p, MRELEASE_LEN, 1))
		_exit(3);
	if (write(ready, "r", 1) != 1)
		_exit(4);
	for (;;)
		pause();
}

static int pin_to_cpu0(pid_t pid)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(0, &set);
	return sched_setaffinity(pid, sizeof(set), &set);
}

/*
 * process_mrelease() of a SIGKILLed process reaps its memory through a
 * non-blockable invalidation.  The driver must take it (not refuse it:
 * the notifier implements invalidate_range_end), keep the kernel's log
 * clean, and let the context go.  To reap before the victim exits, this
 * process runs SCHED_FIFO on the victim's only CPU.
 */
TEST_F_TIMEOUT(mrelease, reap_killed_mirroring_process, 120)
{
	struct sched_param fifo = { .sched_priority = 10 }, other = { };
	struct drm_hmirror_stats st0, st1;
	cpu_set_t saved;
	int attempt, reaped = 0, ret = 0;

	ASSERT_EQ(0, hmirror_get_stats(self->fd, &st0));
	ASSERT_EQ(0, sched_getaffinity(0, sizeof(saved), &saved));
	for (attempt = 0; attempt < 10 && !reaped; attempt++) {
		int ready[2], pidfd, status;
		char c;
		pid_t pid;

		ASSERT_EQ(0, pipe(ready));
		pid = fork();
		ASSERT_GE(pid, 0);
		if (!pid) {
			close(ready[0]);
			mirroring_child(ready[1], variant->backend);
		}
		close(ready[1]);
		ASSERT_EQ(1, read(ready[0], &c, 1));
		close(ready[0]);
		pidfd = syscall(__NR_pidfd_open, pid, 0);
		ASSERT_GE(pidfd, 0);
		ASSERT_EQ(0, pin_to_cpu0(pid));
		ASSERT_EQ(0, pin_to_cpu0(0));
		ASSERT_EQ(0, sched_setscheduler(0, SCHED_FIFO, &fifo));
		kill(pid, SIGKILL);
		ret = syscall(__NR_process_mrelease, pidfd, 0) ? -errno : 0;
		sched_setscheduler(0, SCHED_OTHER, &other);
		sched_setaffinity(0, sizeof(saved), &saved);
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		close(pidfd);
		ASSERT_EQ(0, hmirror_get_stats(self->fd, &st1));
		reaped = st1.nonblock_deferred > st0.nonblock_deferred;
		TH_LOG("attempt %d: process_mrelease %d, deferred %llu",
		       attempt, ret, (unsigned long long)(st1.nonblock_deferred -
							   st0.nonblock_deferred));
	}
	ASSERT_TRUE(reaped);
	ASSERT_EQ(0, ret);
	/* The victim's context went; nothing is kept for a live device. */
	for (int i = 0; i < 500; i++) {
		ASSERT_EQ(0, hmirror_get_stats(self->fd, &st1));
		if (st1.live_contexts == st0.live_contexts)
			break;
		usleep(10000);
	}
	ASSERT_EQ(st0.live_contexts, st1.live_contexts);
	ASSERT_EQ(0, st1.kept_pages);
	ASSERT_EQ(0, st1.state & DRM_HMIRROR_STATE_DEAD);
}

/* ---- one context's stall never reaches another ----------------------- */

#define HOLD_S		12	/* longer than any device deadline (10 s) */

struct releaser {
	struct uffd_region *u;
	unsigned int seconds;
};

static int n_notify;
static struct uffd_region *n_region;

/* Tell the parent once the handler holds the fault. */
static void *notify_when_held(void *arg)
{
	(void)arg;
	if (!uffd_region_wait_faults(n_region, 1, 20000))
		(void)!write(n_notify, "s", 1);
	return NULL;
}

static void *release_later(void *arg)
{
	struct releaser *r = arg;

	sleep(r->seconds);
	__atomic_store_n(&r->u->resolve, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Process A's command stalls on a fault its userfaultfd handler holds for
 * 12 s, longer than any deadline of the device.  Meanwhile process B uses
 * the same engine: every one of its commands must complete promptly, and
 * the device must not be declared dead.  A's command completes with the
 * right data once the handler lets go.
 */
TEST_F_TIMEOUT(coh, stalled_fault_delays_only_its_context, 120)
{
	uint8_t *page = map_anon(PAGE), *buf = map_anon(PAGE);
	struct drm_hmirror_stats st;
	double t0, worst = 0, end;
	int notify[2], status, n = 0;
	pid_t pid;
	char c;

	ASSERT_NE(NULL, page);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, pipe(notify));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		struct releaser r;
		struct uffd_region u;
		uint8_t *dst = map_anon(PAGE);
		int fd = hmirror_open_nth(0);
		pthread_t t;

		close(notify[0]);
		if (fd < 0 || !dst || uffd_region_init(&u, PAGE, 300) ||
		    uffd_region_start(&u))
			_exit(2);
		r.u = &u;
		r.seconds = HOLD_S;
		if (pthread_create(&t, NULL, release_later, &r))
			_exit(3);
		n_notify = notify[1];
		n_region = &u;
		if (pthread_create(&t, NULL, notify_when_held, NULL))
			_exit(3);
		/* Engine 0, like B. */
		if (hmirror_read(fd, 0, (uintptr_t)u.area, dst, PAGE))
			_exit(4);
		_exit(check_pattern(dst, PAGE, 300) ? 5 : 0);
	}
	close(notify[1]);
	/* A's fault is now held by its handler. */
	ASSERT_EQ(1, read(notify[0], &c, 1));
	t0 = now_s();
	end = t0 + HOLD_S + 2;
	while (now_s() < end) {
		double s = now_s();
		uint64_t fence, sum;

		ASSERT_EQ(0, hmirror_fill(self->fd, 0, (uintptr_t)page, PAGE, n));
		ASSERT_EQ(0, hmirror_checksum(self->fd, 0, (uintptr_t)page, PAGE, &sum));
		ASSERT_EQ(hmirror_checksum_cpu(page, PAGE), sum);
		/* B's fence waits for B's commands only. */
		ASSERT_EQ(0, hmirror_submit_nop(self->fd, 0, 1, DRM_HMIRROR_NOP_FENCE |
						DRM_HMIRROR_NOP_WAIT, &fence));
		if (now_s() - s > worst)
			worst = now_s() - s;
		n++;
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	TH_LOG("B: %d rounds while A stalled, slowest %.3f s", n, worst);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	ASSERT_LT(worst, 2.0);
	ASSERT_EQ(0, hmirror_get_stats(self->fd, &st));
	ASSERT_EQ(0, st.state & DRM_HMIRROR_STATE_DEAD);
	close(notify[0]);
}

/*
 * A fault whose service takes longer than any device deadline, with
 * nothing else on the engine meanwhile (so the queue's progress counter
 * stands still): the device waits on the driver, not the other way round,
 * and must not be declared dead.
 */
TEST_F_TIMEOUT(coh, long_fault_service_alone_is_no_dead_device, 120)
{
	uint8_t *dst = map_anon(PAGE);
	struct drm_hmirror_stats st;
	struct uffd_region u;
	struct releaser r;
	pthread_t t;

	ASSERT_NE(NULL, dst);
	ASSERT_EQ(0, uffd_region_init(&u, PAGE, 600));
	ASSERT_EQ(0, uffd_region_start(&u));
	r.u = &u;
	r.seconds = HOLD_S;
	ASSERT_EQ(0, pthread_create(&t, NULL, release_later, &r));
	ASSERT_EQ(0, hmirror_read(self->fd, 1, (uintptr_t)u.area, dst, PAGE));
	ASSERT_EQ(0, check_pattern(dst, PAGE, 600));
	pthread_join(t, NULL);
	ASSERT_EQ(0, hmirror_get_stats(self->fd, &st));
	ASSERT_EQ(0, st.state & DRM_HMIRROR_STATE_DEAD);
	uffd_region_fini(&u);
}

/* ---- dead means quiesced; unbind returns and leaves nothing ---------- */

#define BUSY_LEN	(64ul << 20)
/*
 * Enough commands in flight that the device is still busy well after an
 * unbind or a death, if nothing stops it: 64 x 64 MiB, a few seconds.
 */
#define BUSY_THREADS	64
#define BUSY_FDS	8

struct busy {
	const char *bdf;
	uint8_t *area;
	int stop;
	int fills;
	int last[BUSY_THREADS];
	double ended[BUSY_THREADS];	/* now_s() when the thread stopped */
	int fds[BUSY_FDS];
	pthread_t t[BUSY_THREADS];
};

struct busy_arg {
	struct busy *b;
	int i;
};

/* Keep the device filling 64 MiB over and over, on both engines. */
static void *busy_main(void *arg)
{
	struct busy_arg *a = arg;
	struct busy *b = a->b;
	uint64_t v = a->i;
	int ret = 0;

	while (!__atomic_load_n(&b->stop, __ATOMIC_ACQUIRE)) {
		v += BUSY_THREADS;
		ret = hmirror_fill(b->fds[a->i % BUSY_FDS], a->i & 1,
				   (uintptr_t)b->area, BUSY_LEN, v);
		if (ret)
			break;
		__atomic_fetch_add(&b->fills, 1, __ATOMIC_SEQ_CST);
	}
	b->last[a->i] = ret;
	b->ended[a->i] = now_s();
	return NULL;
}

static struct busy_arg busy_args[BUSY_THREADS];

/* Start the load; return once every thread's FILL completed at least once. */
static int busy_start(struct busy *b, const char *bdf)
{
	int i;

	b->bdf = bdf;
	b->area = map_anon(BUSY_LEN);
	if (!b->area)
		return -1;
	for (i = 0; i < BUSY_FDS; i++) {
		b->fds[i] = open_bdf(bdf);
		if (b->fds[i] < 0)
			return -1;
		/* Mirrored up front: the load is DMA, not fault service. */
		if (hmirror_prefetch(b->fds[i], (uintptr_t)b->area, BUSY_LEN, 1))
			return -1;
	}
	for (i = 0; i < BUSY_THREADS; i++) {
		busy_args[i].b = b;
		busy_args[i].i = i;
		if (pthread_create(&b->t[i], NULL, busy_main, &busy_args[i]))
			return -1;
	}
	for (i = 0; i < 60000 &&
	     __atomic_load_n(&b->fills, __ATOMIC_ACQUIRE) < BUSY_THREADS; i++)
		usleep(1000);
	return __atomic_load_n(&b->fills, __ATOMIC_ACQUIRE) < BUSY_THREADS ? -1 : 0;
}

static void busy_stop(struct busy *b)
{
	int i;

	__atomic_store_n(&b->stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < BUSY_THREADS; i++)
		pthread_join(b->t[i], NULL);
	for (i = 0; i < BUSY_FDS; i++)
		hmirror_close(b->fds[i]);
}

/* One word per page: enough to see any FILL chunk land. */
static void sample(const uint8_t *area, uint64_t *out)
{
	size_t i;

	for (i = 0; i < BUSY_LEN / PAGE; i++)
		out[i] = __atomic_load_n((const uint64_t *)(area + i * PAGE),
					 __ATOMIC_RELAXED);
}

/* Pages whose sampled word changed between two samples @ms apart. */
static long changes_over(const uint8_t *area, unsigned int ms)
{
	uint64_t *a = malloc(BUSY_LEN / PAGE * 8), *b = malloc(BUSY_LEN / PAGE * 8);
	long n = 0;
	size_t i;

	if (!a || !b)
		return -1;
	sample(area, a);
	usleep(ms * 1000);
	sample(area, b);
	for (i = 0; i < BUSY_LEN / PAGE; i++)
		n += a[i] != b[i];
	free(a);
	free(b);
	return n;
}

/* The last device: unbinding or killing it spares device 0's users. */
static int last_device_bdf(char *bdf, size_t len)
{
	int fd = hmirror_open_nth(count_devices() - 1), ret;

	if (fd < 0)
		return fd;
	ret = fd_to_bdf(fd, bdf, len);
	hmirror_close(fd);
	return ret;
}

static void rebind_and_check(struct __test_metadata *_metadata, const char *bdf)
{
	uint8_t *p = map_anon(PAGE);
	int fd;

	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, bind_bdf(bdf));
	fd = open_bdf(bdf);
	ASSERT_GE(fd, 0);
	/* A fresh device after the probe's reset. */
	ASSERT_EQ(0, hmirror_fill(fd, 0, (uintptr_t)p, PAGE, 0x5a5a));
	ASSERT_EQ(0x5a5a, *(uint64_t *)p);
	hmirror_close(fd);
}

/*
 * A device declared dead (here through the fault-injection knob, as a
 * timeout would) while both engines run long FILLs: every waiter fails at
 * once with -EIO, and once the driver says the device confirmed it
 * stopped, memory must not change any more.
 */
TEST_F_TIMEOUT(coh, dead_device_stops_dma, 120)
{
	struct drm_hmirror_stats st;
	struct busy b = { };
	char bdf[64], path[256];
	double declared;
	int fd, i;

	ASSERT_EQ(0, last_device_bdf(bdf, sizeof(bdf)));
	ASSERT_EQ(0, busy_start(&b, bdf));
	ASSERT_GT(changes_over(b.area, 100), 0);
	snprintf(path, sizeof(path), "/sys/kernel/debug/accel/%s/hmirror_inject", bdf);
	declared = now_s();
	ASSERT_EQ(0, write_sysfs(path, "dead"));
	fd = open_bdf(bdf);
	ASSERT_GE(fd, 0);
	for (i = 0; i < 500; i++) {
		ASSERT_EQ(0, hmirror_get_stats(fd, &st));
		if (st.state & DRM_HMIRROR_STATE_QUIESCED)
			break;
		usleep(10000);
	}
	ASSERT_TRUE(st.state & DRM_HMIRROR_STATE_DEAD);
	ASSERT_TRUE(st.state & DRM_HMIRROR_STATE_QUIESCED);
	ASSERT_EQ(0, changes_over(b.area, 500));
	ASSERT_EQ(0, st.kept_pages);
	busy_stop(&b);
	/*
	 * Declared dead, the device is never waited on again: every waiter
	 * fails at once, not when the stuck-queue backstop
	 * (HMIRROR_PROGRESS_TIMEOUT_MS, 10 s) gives up on it.
	 */
	for (i = 0; i < BUSY_THREADS; i++) {
		ASSERT_EQ(-EIO, b.last[i]);
		ASSERT_LT(b.ended[i] - declared, 5.0)
			TH_LOG("busy thread %d failed %.2f s after the device was declared dead",
			       i, b.ended[i] - declared);
	}
	hmirror_close(fd);
	ASSERT_EQ(0, unbind_bdf(bdf));
	rebind_and_check(_metadata, bdf);
}

/* Unbind under the same load: it returns, and memory stops changing. */
TEST_F_TIMEOUT(coh, unbind_stops_dma, 120)
{
	struct busy b = { };
	char bdf[64];
	double t0;
	int i;

	ASSERT_EQ(0, last_device_bdf(bdf, sizeof(bdf)));
	ASSERT_EQ(0, busy_start(&b, bdf));
	ASSERT_GT(changes_over(b.area, 100), 0);
	t0 = now_s();
	ASSERT_EQ(0, unbind_bdf(bdf));
	TH_LOG("unbind took %.3f s", now_s() - t0);
	ASSERT_LT(now_s() - t0, 5.0);
	ASSERT_EQ(0, changes_over(b.area, 500));
	busy_stop(&b);
	for (i = 0; i < BUSY_THREADS; i++)
		ASSERT_EQ(-ENODEV, b.last[i]);
	rebind_and_check(_metadata, bdf);
}

struct blocked_read {
	int fd;
	struct uffd_region *u;
	uint8_t *buf;
	int ret;
};

static void *blocked_read_main(void *arg)
{
	struct blocked_read *r = arg;

	r->ret = hmirror_read(r->fd, 0, (uintptr_t)r->u->area, r->buf, PAGE);
	return NULL;
}

static void *unbind_main(void *arg)
{
	unbind_bdf(arg);
	return NULL;
}

/*
 * A task blocked in a device fault (userfaultfd handler holding it) must
 * not hold up removal: unbind returns promptly, and the task's command
 * ends with -ENODEV once its fault is resolved.
 */
TEST_F_TIMEOUT(coh, unbind_with_fault_blocked, 60)
{
	struct uffd_region u;
	struct blocked_read r = { };
	pthread_t reader, unbinder;
	char bdf[64];
	double t0;
	int done = 0;

	ASSERT_EQ(0, last_device_bdf(bdf, sizeof(bdf)));
	ASSERT_EQ(0, uffd_region_init(&u, PAGE, 400));
	ASSERT_EQ(0, uffd_region_start(&u));
	r.u = &u;
	r.buf = map_anon(PAGE);
	ASSERT_NE(NULL, r.buf);
	r.fd = open_bdf(bdf);
	ASSERT_GE(r.fd, 0);
	ASSERT_EQ(0, pthread_create(&reader, NULL, blocked_read_main, &r));
	ASSERT_EQ(0, uffd_region_wait_faults(&u, 1, 10000));

	t0 = now_s();
	ASSERT_EQ(0, pthread_create(&unbinder, NULL, unbind_main, bdf));
	while (now_s() - t0 < 5 && !done) {
		done = pthread_tryjoin_np(unbinder, NULL) == 0;
		usleep(10000);
	}
	/* Let the fault go either way, so a hung unbind can finish. */
	__atomic_store_n(&u.resolve, 1, __ATOMIC_RELEASE);
	if (!done)
		pthread_join(unbinder, NULL);
	TH_LOG("unbind took %.3f s", now_s() - t0);
	ASSERT_TRUE(done);
	pthread_join(reader, NULL);
	ASSERT_EQ(-ENODEV, r.ret);
	hmirror_close(r.fd);
	uffd_region_fini(&u);
	rebind_and_check(_metadata, bdf);
}

/* ---- invalidations elsewhere cost a fault nothing --------------------- */

struct storm {
	uint8_t *p;
	int stop;
	long rounds;
};

static void *storm_main(void *arg)
{
	struct storm *s = arg;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		madvise(s->p, 64 * PAGE, MADV_DONTNEED);
		mprotect(s->p, 64 * PAGE, PROT_READ);
		mprotect(s->p, 64 * PAGE, PROT_READ | PROT_WRITE);
		s->p[0] = 1;
		s->rounds++;
	}
	return NULL;
}

static int read_sysctl(const char *path)
{
	char v[16] = "";
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	if (read(fd, v, sizeof(v) - 1) <= 0)
		v[0] = 0;
	close(fd);
	return v[0] ? atoi(v) : -1;
}

/*
 * Invalidations of memory the fault does not cover, storming the whole
 * time (on a region the device mirrors too), never make it wait or retry.
 * The kernel's own invalidations of the fault's range are kept away:
 * NUMA balancing (it write-protects whole stretches of the address space
 * now and then) is paused and the ranges are kept out of THP collapse.
 */
TEST_F(coh, disjoint_invalidation_storm_costs_no_retries)
{
	int numa = read_sysctl("/proc/sys/kernel/numa_balancing");
	struct drm_hmirror_ctx_stats st0, st1;
	uint8_t *target = map_anon(64 * PAGE), *buf = map_anon(64 * PAGE);
	struct storm s = { .p = map_anon(64 * PAGE) };
	char was[16];
	pthread_t t;
	int i;

	ASSERT_NE(NULL, target);
	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, s.p);
	ASSERT_EQ(0, madvise(target, 64 * PAGE, MADV_NOHUGEPAGE));
	ASSERT_EQ(0, madvise(buf, 64 * PAGE, MADV_NOHUGEPAGE));
	if (numa > 0)
		ASSERT_EQ(0, write_sysfs("/proc/sys/kernel/numa_balancing", "0"));
	ASSERT_EQ(0, hmirror_prefetch(self->fd, (uintptr_t)s.p, 64 * PAGE, 1));
	ASSERT_EQ(0, hmirror_get_ctx_stats(self->fd, &st0));
	ASSERT_EQ(0, pthread_create(&t, NULL, storm_main, &s));
	for (i = 0; i < 200; i++) {
		madvise(target, 64 * PAGE, MADV_DONTNEED);
		fill_pattern(target, 64 * PAGE, i);
		ASSERT_EQ(0, hmirror_read(self->fd, 0, (uintptr_t)target, buf,
					  64 * PAGE));
		ASSERT_EQ(0, check_pattern(buf, 64 * PAGE, i));
	}
	__atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	ASSERT_EQ(0, hmirror_get_ctx_stats(self->fd, &st1));
	if (numa > 0) {
		snprintf(was, sizeof(was), "%d", numa);
		write_sysfs("/proc/sys/kernel/numa_balancing", was);
	}
	TH_LOG("%ld storm rounds, %llu invalidations, %llu faults",
	       s.rounds, (unsigned long long)(st1.invalidations - st0.invalidations),
	       (unsigned long long)(st1.faults - st0.faults));
	/* The storm ran and the faults happened ... */
	ASSERT_GE(st1.invalidations - st0.invalidations, 200);
	ASSERT_GE(st1.faults - st0.faults, 200);
	/* ... without costing them a single retry or wait. */
	ASSERT_EQ(st0.retries_stale, st1.retries_stale);
	ASSERT_EQ(st0.retries_waited, st1.retries_waited);
	ASSERT_EQ(st0.retries_busy, st1.retries_busy);
}

/* Device commands that all fault (fresh mappings), until killed. */
static void *faulting_fills(void *arg)
{
	int fd = hmirror_open_nth(0);

	(void)arg;
	for (uint64_t i = 0;; i++) {
		uint8_t *p = map_anon(4 * PAGE);

		if (fd < 0 || !p)
			_exit(1);
		hmirror_fill(fd, 0, (uintptr_t)p, 4 * PAGE, i);
		munmap(p, 4 * PAGE);
	}
	return NULL;
}

/*
 * Waits up to @secs seconds for every command the device has queued to
 * complete; @st holds the last figures.  0, or the STATS ioctl's error.
 */
static int all_commands_completed(int fd, double secs,
				  struct drm_hmirror_stats *st)
{
	double end = now_s() + secs;
	int ret;

	do {
		ret = hmirror_get_stats(fd, st);
		if (ret || st->cmds_completed == st->cmds_submitted)
			return ret;
		usleep(10000);
	} while (now_s() < end);
	return 0;
}

/*
 * Processes killed at random moments of faulting commands: a waiter that
 * gives up with a fault already handed to it must still answer it, or the
 * command stays parked in the device for ever.  Afterwards every command
 * the driver submitted has completed.
 */
TEST_F_TIMEOUT(coh, killed_waiters_leave_no_command_behind, 180)
{
	struct drm_hmirror_stats st;
	unsigned int seed = 12345;
	pid_t drainer;
	int i;

	/*
	 * Another process faulting on the same engine all along: its waiters
	 * drain the fault ring, so they hand faults to waiters being killed.
	 */
	drainer = fork();
	ASSERT_GE(drainer, 0);
	if (!drainer) {
		pthread_t t;

		pthread_create(&t, NULL, faulting_fills, NULL);
		faulting_fills(NULL);
	}
	for (i = 0; i < 300; i++) {
		pid_t pid = fork();

		ASSERT_GE(pid, 0);
		if (!pid) {
			pthread_t t[3];
			int k;

			/*
			 * Several threads on one queue drain each other's
			 * faults: one may be handed to a waiter that the kill
			 * is waking at that very moment.
			 */
			for (k = 0; k < 3; k++)
				pthread_create(&t[k], NULL, faulting_fills, NULL);
			faulting_fills(NULL);
		}
		usleep(rand_r(&seed) % 4000);
		ASSERT_EQ(0, kill(pid, SIGKILL));
		ASSERT_EQ(pid, waitpid(pid, NULL, 0));
	}
	ASSERT_EQ(0, kill(drainer, SIGKILL));
	ASSERT_EQ(drainer, waitpid(drainer, NULL, 0));
	ASSERT_EQ(0, all_commands_completed(self->fd, 10, &st));
	ASSERT_EQ(st.cmds_submitted, st.cmds_completed)
		TH_LOG("commands left in the device by killed processes");
	/* And the device still serves. */
	ASSERT_EQ(0, hmirror_fill(self->fd, 0, (uintptr_t)map_anon(PAGE), PAGE, 7));
}

/*
 * The same race, made certain: the driver's fault injection makes the
 * waiter leave just as a fault is handed to it, as a fatal signal at that
 * moment would.  The command ends with -EINTR, and the abandoned fault must
 * still be answered: the device completes the command and goes on serving.
 */
TEST_F_TIMEOUT(coh, waiter_leaving_with_a_fault_answers_it, 60)
{
	struct drm_hmirror_stats st;
	char bdf[64], path[256];
	uint8_t *p = map_anon(PAGE);
	uint64_t x = 0;

	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, fd_to_bdf(self->fd, bdf, sizeof(bdf)));
	snprintf(path, sizeof(path), "/sys/kernel/debug/accel/%s/hmirror_inject", bdf);
	ASSERT_EQ(0, write_sysfs(path, "leave-after-fault"));
	/* Not populated: the device faults, and the waiter leaves. */
	ASSERT_EQ(-EINTR, hmirror_read(self->fd, 0, (uintptr_t)p, &x, 8));
	ASSERT_EQ(0, all_commands_completed(self->fd, 5, &st));
	ASSERT_EQ(st.cmds_submitted, st.cmds_completed)
		TH_LOG("the abandoned fault was never answered: its command is still parked");
	/* The same engine serves the next command. */
	p[0] = 0x5a;
	ASSERT_EQ(0, hmirror_read(self->fd, 0, (uintptr_t)p, &x, 8));
	ASSERT_EQ(0x5a, x);
}

/* ---- nothing an unprivileged user does kills the device for others ------ */

#define HOSTILE_S	20

struct hostile {
	int fd;
	int stop;
	unsigned int seed;
};

/* Every misuse a process that may open the device can think of, in a loop. */
static void *hostile_main(void *arg)
{
	struct hostile *h = arg;
	uint8_t *ro = mmap(NULL, 16 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
			   -1, 0);
	uint8_t *big = map_anon(16ul << 20), *none = mmap(NULL, PAGE, PROT_NONE,
						MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t v, fence;

	while (!__atomic_load_n(&h->stop, __ATOMIC_ACQUIRE)) {
		unsigned int r = rand_r(&h->seed);
		uint8_t *tmp;

		switch (r % 10) {
		case 0:	/* unmapped, PROT_NONE, read-only, kernel addresses */
			hmirror_fill(h->fd, r & 1, 0x1000, PAGE, 1);
			hmirror_fill(h->fd, r & 1, (uintptr_t)none, PAGE, 1);
			hmirror_atomic_add(h->fd, r & 1, (uintptr_t)ro, 1, &v);
			hmirror_fill(h->fd, r & 1, 0xffffffff80000000ull, PAGE, 1);
			break;
		case 1:	/* the largest commands there are */
			hmirror_fill(h->fd, r & 1, (uintptr_t)big, 16ul << 20, r);
			break;
		case 2:	/* rings full of NOPs nobody waits for */
			hmirror_submit_nop(h->fd, r & 1, 4096, 0, &fence);
			break;
		case 3:	/* waits for fences that never were */
			hmirror_wait(h->fd, r & 1, ~0ull, 1, NULL);
			hmirror_wait(h->fd, r & 1, 0, 0, NULL);
			break;
		case 4:	/* a mapping that goes away under the device */
			tmp = map_anon(64 * PAGE);
			if (tmp) {
				hmirror_prefetch(h->fd, (uintptr_t)tmp, 64 * PAGE, 1);
				munmap(tmp, 64 * PAGE);
				hmirror_fill(h->fd, r & 1, (uintptr_t)tmp, 64 * PAGE, 2);
			}
			break;
		case 5:	/* protection storms on mirrored memory */
			mprotect(big, 1 << 20, PROT_READ);
			hmirror_fill(h->fd, r & 1, (uintptr_t)big, 1 << 20, 3);
			mprotect(big, 1 << 20, PROT_READ | PROT_WRITE);
			madvise(big, 1 << 20, MADV_DONTNEED);
			break;
		case 6: { /* a process killed in the middle of a command */
			pid_t pid = fork();

			if (!pid) {
				int fd = hmirror_open_nth(0);

				if (fd >= 0)
					hmirror_fill(fd, 0, (uintptr_t)big, 16ul << 20, 4);
				_exit(0);
			}
			if (pid > 0) {
				usleep(r % 20000);
				kill(pid, SIGKILL);
				waitpid(pid, NULL, 0);
			}
			break;
		}
		case 7:	/* beyond the device's address width */
			hmirror_prefetch(h->fd, 1ull << 56, PAGE, 1);
			break;
		default: /* checksums over memory another thread unmaps */
			hmirror_checksum(h->fd, r & 1, (uintptr_t)big, 8 << 20, &v);
			break;
		}
	}
	return NULL;
}

/* The unprivileged child: many contexts, many threads, all of the above. */
static void hostile_child(void)
{
	struct hostile h[8];
	pthread_t t[8];
	int extra[24], i;

	if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
		_exit(2);
	/* Hold contexts, as many as a quarter of the device's table. */
	for (i = 0; i < 24; i++)
		extra[i] = hmirror_open_nth(0);
	for (i = 0; i < 8; i++) {
		h[i].fd = hmirror_open_nth(0);
		h[i].stop = 0;
		h[i].seed = i + 1;
		if (h[i].fd < 0 || pthread_create(&t[i], NULL, hostile_main, &h[i]))
			_exit(3);
	}
	sleep(HOSTILE_S);
	for (i = 0; i < 8; i++)
		__atomic_store_n(&h[i].stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	(void)extra;
	_exit(0);
}

static void chmod_accel_nodes(mode_t mode)
{
	char path[64];
	int i;

	for (i = 0; i < 64; i++) {
		snprintf(path, sizeof(path), "/dev/accel/accel%d", i);
		chmod(path, mode);
	}
}

/*
 * A user who may open the device (a udev rule grants that on real systems;
 * here the nodes are opened up for the test) runs as nobody and misuses it
 * in every way above for 20 s.  Meanwhile another process's commands keep
 * completing, and afterwards the device is alive and nothing is left over.
 */
TEST_F_TIMEOUT(coh, unprivileged_user_cannot_kill_the_device, 180)
{
	struct drm_hmirror_stats st0, st1;
	uint8_t *page = map_anon(PAGE);
	double end, worst = 0;
	int status, n = 0;
	pid_t pid;

	ASSERT_NE(NULL, page);
	ASSERT_EQ(0, hmirror_get_stats(self->fd, &st0));
	chmod_accel_nodes(0666);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid)
		hostile_child();
	end = now_s() + HOSTILE_S + 2;
	while (now_s() < end) {
		double t = now_s();
		uint64_t sum;

		ASSERT_EQ(0, hmirror_fill(self->fd, n & 1, (uintptr_t)page, PAGE, n));
		ASSERT_EQ(0, hmirror_checksum(self->fd, n & 1, (uintptr_t)page,
					      PAGE, &sum));
		ASSERT_EQ(hmirror_checksum_cpu(page, PAGE), sum);
		if (now_s() - t > worst)
			worst = now_s() - t;
		n++;
		usleep(10000);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	chmod_accel_nodes(0600);
	TH_LOG("%d commands beside the hostile user, slowest %.3f s", n, worst);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	for (int i = 0; i < 500; i++) {
		ASSERT_EQ(0, hmirror_get_stats(self->fd, &st1));
		if (st1.live_contexts == st0.live_contexts)
			break;
		usleep(10000);
	}
	ASSERT_EQ(0, st1.state & DRM_HMIRROR_STATE_DEAD);
	ASSERT_EQ(st0.live_contexts, st1.live_contexts);
	ASSERT_EQ(0, st1.kept_pages);
}

/* ---- compat nodes: like test_hmm's ------------------------------------- */

/* test_hmm's ABI (lib/test_hmm_uapi.h): facts, for the compat test. */
struct hmm_dmirror_cmd {
	uint64_t addr;
	uint64_t ptr;
	uint64_t npages;
	uint64_t cpages;
	uint64_t faults;
};

#define HMM_DMIRROR_READ	_IOWR('H', 0x00, struct hmm_dmirror_cmd)

/*
 * Like test_hmm, a READ that fails midway reports the pages it did
 * (cpages) and counts only the faults it serviced.
 */
TEST(compat_partial_read_reports_pages_done)
{
	uint8_t *p = map_anon(8 * PAGE), *buf = map_anon(8 * PAGE);
	struct hmm_dmirror_cmd c = { };
	int fd = open("/dev/hmm_dmirror0", O_RDWR);

	ASSERT_GE(fd, 0);
	ASSERT_NE(NULL, p);
	ASSERT_NE(NULL, buf);
	fill_pattern(p, 8 * PAGE, 31);
	/* The second half cannot be read. */
	ASSERT_EQ(0, mprotect(p + 4 * PAGE, 4 * PAGE, PROT_NONE));
	c.addr = (uintptr_t)p;
	c.ptr = (uintptr_t)buf;
	c.npages = 8;
	ASSERT_EQ(-1, ioctl(fd, HMM_DMIRROR_READ, &c));
	ASSERT_EQ(EFAULT, errno);
	ASSERT_EQ(4, c.cpages);
	ASSERT_EQ(1, c.faults);
	ASSERT_EQ(0, check_pattern(buf, 4 * PAGE, 31));
	close(fd);
}

TEST(compat_nodes_are_root_only)
{
	struct stat st;

	ASSERT_EQ(0, stat("/dev/hmm_dmirror0", &st));
	ASSERT_EQ(0600, st.st_mode & 0777);
	ASSERT_EQ(0, st.st_uid);
}

TEST_HARNESS_MAIN
