// SPDX-License-Identifier: MIT
/*
 * hmirror-stress: device commands racing every kind of address-space change,
 * with an integrity oracle.
 *
 * Memory is a set of slots (anonymous, THP, shared memfd, KSM-able).  Every
 * 8-byte word of a page holds a stamp derived from (page id, version, word
 * index); the oracle knows each page's current version.  Workers make the
 * device write new versions, read pages back, checksum them and do atomics,
 * and compare every device result with what the CPU holds.  A stale device
 * translation is always caught: a device read through it returns another
 * version (or another page), a device write through it lands in a page the
 * CPU no longer maps, so the CPU's check of the new version fails.
 *
 * Mutators that keep content (migration, mprotect windows, fork with a
 * writing child, THP split/collapse, KSM merging, MADV_PAGEOUT) run without
 * any lock against the workers; mutators that change content (DONTNEED,
 * munmap + mmap, mremap) take the slot exclusively and update the oracle.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libhmirror.h"

#define PAGE		4096ul
#define WORDS		(PAGE / 8)
#define HUGE_2M		(2ul << 20)
#define MAX_OP_PAGES	32
#define STAMP_KEY	0x6a09e667f3bcc908ull

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE	25
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT	21
#endif
#ifndef MPOL_MF_MOVE
#define MPOL_MF_MOVE	(1 << 1)
#endif

enum slot_kind { SLOT_ANON, SLOT_THP, SLOT_SHARED, SLOT_KSM, SLOT_KINDS };
static const char *const kind_name[] = { "anon", "thp", "shared", "ksm" };

struct slot {
	enum slot_kind kind;
	uint8_t *addr;
	size_t npages;
	int memfd;
	pthread_rwlock_t layout;	/* wr: content-changing mutators */
	pthread_rwlock_t cpu_write;	/* wr: mprotect windows (CPU stores fault) */
	atomic_uint *busy;		/* per page: a worker owns it */
	uint32_t *version;		/* per page, 0 = zero page */
	uint32_t *page_id;		/* per page: stamp identity */
	atomic_ulong protect_epoch;	/* odd while read-only */
	atomic_ulong *counters;		/* atomics target (own page) */
};

enum mutator {
	MUT_MIGRATE, MUT_MPROTECT, MUT_FORK, MUT_KSM, MUT_THP, MUT_DONTNEED,
	MUT_REMAP, MUT_MREMAP, MUT_PAGEOUT, MUT_COUNT
};
static const char *const mut_name[] = {
	"migrate", "mprotect", "fork", "ksm", "thp", "dontneed", "remap",
	"mremap", "pageout",
};

enum opkind { OP_WRITE, OP_READ, OP_CHECKSUM, OP_CPU_WRITE, OP_ATOMIC, OP_KINDS };
static const char *const op_name[] = { "write", "read", "checksum", "cpu_write", "atomic" };

static struct {
	unsigned int seconds, workers, slot_pages, progress;
	uint64_t seed;
	bool mix[MUT_COUNT];
	int numa_nodes;
	const char *json;
} cfg = {
	.seconds = 60, .workers = 3, .slot_pages = 256, .progress = 10,
	.seed = 1,
};

static struct slot slots[SLOT_KINDS];
static int dev_fd;
static unsigned int num_engines = 1;
static atomic_bool stop;
static atomic_ulong ops[OP_KINDS], mut_runs[MUT_COUNT], violations;
static atomic_ulong efault_expected, err_unexpected[4], atomic_adds;
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static unsigned int rnd(uint64_t *s, unsigned int n)
{
	return n ? (unsigned int)(rng_next(s) % n) : 0;
}

static uint64_t stamp(uint32_t id, uint32_t version, unsigned int word)
{
	if (!version)
		return 0;
	return ((uint64_t)id << 40 | (uint64_t)version << 12 | word) ^ STAMP_KEY;
}

static void make_page(uint64_t *dst, uint32_t id, uint32_t version)
{
	for (unsigned int w = 0; w < WORDS; w++)
		dst[w] = stamp(id, version, w);
}

static bool page_is(const uint64_t *p, uint32_t id, uint32_t version)
{
	for (unsigned int w = 0; w < WORDS; w++)
		if (p[w] != stamp(id, version, w))
			return false;
	return true;
}

static double now_s(void);
static double t_start;
static _Atomic double first_violation_s;

/*
 * @seen: the first word the device returned (reads), or NULL when the CPU
 * view is what is wrong (writes); the log shows expected, seen and CPU.
 */
static void violation(const struct slot *s, size_t page, const char *what,
		      uint32_t expect, const uint64_t *seen)
{
	const uint64_t *p = (const uint64_t *)(s->addr + page * PAGE);
	double zero = 0;

	if (!atomic_fetch_add(&violations, 1))
		atomic_compare_exchange_strong(&first_violation_s, &zero,
					       now_s() - t_start);
	pthread_mutex_lock(&report_lock);
	fprintf(stderr,
		"hmirror-stress: VIOLATION at %.2f s: %s: slot=%s page=%zu expected version %u (word0 0x%016" PRIx64 "), device saw 0x%016" PRIx64 ", CPU holds 0x%016" PRIx64 "\n",
		now_s() - t_start, what, kind_name[s->kind], page, expect, stamp(s->page_id[page], expect, 0),
		seen ? *seen : p[0], p[0]);
	pthread_mutex_unlock(&report_lock);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- slots ---------------------------------------------------------- */

static int slot_map(struct slot *s)
{
	size_t len = s->npages * PAGE;
	int flags = MAP_PRIVATE | MAP_ANONYMOUS;
	void *p;

	if (s->kind == SLOT_SHARED) {
		p = mmap(s->addr, len, PROT_READ | PROT_WRITE,
			 MAP_SHARED | (s->addr ? MAP_FIXED : 0), s->memfd, 0);
	} else if (s->kind == SLOT_THP && !s->addr) {
		uint8_t *raw = mmap(NULL, len + HUGE_2M, PROT_READ | PROT_WRITE,
				    flags, -1, 0);
		uintptr_t a;

		if (raw == MAP_FAILED)
			return -errno;
		a = ((uintptr_t)raw + HUGE_2M - 1) & ~(HUGE_2M - 1);
		if (a > (uintptr_t)raw)
			munmap(raw, a - (uintptr_t)raw);
		munmap((void *)(a + len), (uintptr_t)raw + len + HUGE_2M - (a + len));
		p = (void *)a;
	} else {
		p = mmap(s->addr, len, PROT_READ | PROT_WRITE,
			 flags | (s->addr ? MAP_FIXED : 0), -1, 0);
	}
	if (p == MAP_FAILED)
		return -errno;
	s->addr = p;
	if (s->kind == SLOT_THP)
		madvise(p, len, MADV_HUGEPAGE);
	if (s->kind == SLOT_KSM)
		madvise(p, len, MADV_MERGEABLE);
	return 0;
}

/* KSM pages only merge when identical: one identity for the whole slot. */
static uint32_t slot_page_id(const struct slot *s, size_t page)
{
	return s->kind == SLOT_KSM ? 0xfffff : (uint32_t)(s->kind << 16 | page);
}

static int slot_init(struct slot *s, enum slot_kind kind, size_t npages)
{
	int ret;

	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->npages = npages;
	s->memfd = -1;
	if (kind == SLOT_SHARED) {
		s->memfd = memfd_create("hmirror-stress", 0);
		if (s->memfd < 0 || ftruncate(s->memfd, npages * PAGE))
			return -errno;
	}
	ret = slot_map(s);
	if (ret)
		return ret;
	pthread_rwlock_init(&s->layout, NULL);
	pthread_rwlock_init(&s->cpu_write, NULL);
	s->busy = calloc(npages, sizeof(*s->busy));
	s->version = calloc(npages, sizeof(*s->version));
	s->page_id = calloc(npages, sizeof(*s->page_id));
	s->counters = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!s->busy || !s->version || !s->page_id || s->counters == MAP_FAILED)
		return -ENOMEM;
	for (size_t p = 0; p < npages; p++) {
		s->page_id[p] = slot_page_id(s, p);
		s->version[p] = 1;
		make_page((uint64_t *)(s->addr + p * PAGE), s->page_id[p], 1);
	}
	return 0;
}

/* Claim pages [p0, p0 + n) for one worker, all or none. */
static bool claim(struct slot *s, size_t p0, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned int zero = 0;

		if (!atomic_compare_exchange_strong(&s->busy[p0 + i], &zero, 1)) {
			while (i--)
				atomic_store(&s->busy[p0 + i], 0);
			return false;
		}
	}
	return true;
}

static void release(struct slot *s, size_t p0, size_t n)
{
	for (size_t i = 0; i < n; i++)
		atomic_store(&s->busy[p0 + i], 0);
}

/* ---- workers -------------------------------------------------------- */

static void count_error(int ret)
{
	int k = ret == -EFAULT ? 0 : ret == -EINTR ? 1 : ret == -EIO ? 2 : 3;

	atomic_fetch_add(&err_unexpected[k], 1);
	pthread_mutex_lock(&report_lock);
	fprintf(stderr, "hmirror-stress: unexpected error %d (%s)\n", ret, strerror(-ret));
	pthread_mutex_unlock(&report_lock);
}

/*
 * After a device write of version @v + 1 that may have stopped part way
 * (a fault cancelled by an mprotect window), every page is old or new.
 */
static void settle_pages(struct slot *s, size_t p0, size_t n, bool all_new)
{
	for (size_t i = 0; i < n; i++) {
		size_t p = p0 + i;
		const uint64_t *cpu = (const uint64_t *)(s->addr + p * PAGE);
		uint32_t v = s->version[p];

		if (page_is(cpu, s->page_id[p], v + 1)) {
			s->version[p] = v + 1;
		} else if (!all_new && page_is(cpu, s->page_id[p], v)) {
			continue;
		} else {
			violation(s, p, all_new ? "device write not visible to the CPU" :
				  "page neither old nor new after a cancelled write", v + 1, NULL);
			/* Resynchronise on what the CPU holds. */
			make_page((uint64_t *)(s->addr + p * PAGE), s->page_id[p], v + 1);
			s->version[p] = v + 1;
		}
	}
}

/* The device reads pages [p0, p0 + n); each must be the oracle's version. */
static void device_read_check(struct slot *s, size_t p0, size_t n,
			      unsigned int eng, uint64_t *buf, const char *what)
{
	int ret = hmirror_read(dev_fd, eng, (uintptr_t)(s->addr + p0 * PAGE),
			       buf, n * PAGE);

	if (ret) {
		count_error(ret);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (!page_is(buf + i * WORDS, s->page_id[p0 + i], s->version[p0 + i]))
			violation(s, p0 + i, what, s->version[p0 + i], buf + i * WORDS);
}

static void worker_op(uint64_t *rs, uint64_t *buf)
{
	struct slot *s = &slots[rnd(rs, SLOT_KINDS)];
	enum opkind op = rnd(rs, OP_KINDS);
	unsigned int eng = rnd(rs, num_engines);
	size_t n, p0, len;
	unsigned long epoch;
	uint8_t *addr;
	int ret;

	pthread_rwlock_rdlock(&s->layout);
	n = 1 + rnd(rs, rnd(rs, 4) ? 4 : MAX_OP_PAGES);
	if (n > s->npages)
		n = s->npages;
	p0 = rnd(rs, s->npages - n + 1);
	if (!claim(s, p0, n)) {
		pthread_rwlock_unlock(&s->layout);
		return;
	}
	addr = s->addr + p0 * PAGE;
	len = n * PAGE;
	epoch = atomic_load(&s->protect_epoch);

	switch (op) {
	case OP_WRITE:
		for (size_t i = 0; i < n; i++)
			make_page(buf + i * WORDS, s->page_id[p0 + i], s->version[p0 + i] + 1);
		ret = hmirror_write(dev_fd, eng, (uintptr_t)addr, buf, len);
		if (!ret) {
			settle_pages(s, p0, n, true);
		} else if (ret == -EFAULT && (epoch & 1 ||
				atomic_load(&s->protect_epoch) != epoch)) {
			atomic_fetch_add(&efault_expected, 1);
			settle_pages(s, p0, n, false);
		} else {
			count_error(ret);
			settle_pages(s, p0, n, false);
		}
		break;
	case OP_READ:
		device_read_check(s, p0, n, eng, buf, "device read returned stale data");
		break;
	case OP_CHECKSUM: {
		uint64_t sum, want;

		for (size_t i = 0; i < n; i++)
			make_page(buf + i * WORDS, s->page_id[p0 + i], s->version[p0 + i]);
		want = hmirror_checksum_cpu(buf, len);
		ret = hmirror_checksum(dev_fd, eng, (uintptr_t)addr, len, &sum);
		if (ret)
			count_error(ret);
		else if (sum != want)
			violation(s, p0, "device checksum differs from the CPU's",
				  s->version[p0], &sum);
		break;
	}
	case OP_CPU_WRITE:
		/* The CPU changes the data; the device must see it at once. */
		pthread_rwlock_rdlock(&s->cpu_write);
		for (size_t i = 0; i < n; i++) {
			make_page((uint64_t *)(addr + i * PAGE), s->page_id[p0 + i],
				  s->version[p0 + i] + 1);
			s->version[p0 + i]++;
		}
		pthread_rwlock_unlock(&s->cpu_write);
		device_read_check(s, p0, n, eng, buf, "device missed a CPU store");
		break;
	case OP_ATOMIC: {
		uint64_t old;

		ret = hmirror_atomic_add(dev_fd, eng,
					 (uintptr_t)&s->counters[rnd(rs, 8)], 1, &old);
		if (ret)
			count_error(ret);
		else
			atomic_fetch_add(&atomic_adds, 1);
		/* The CPU adds to the same words concurrently. */
		atomic_fetch_add(&s->counters[rnd(rs, 8)], 1);
		atomic_fetch_add(&atomic_adds, 1);
		break;
	}
	default:
		break;
	}
	release(s, p0, n);
	pthread_rwlock_unlock(&s->layout);
	atomic_fetch_add(&ops[op], 1);
}

static void *worker_main(void *arg)
{
	uint64_t rs = cfg.seed * 0x9e3779b97f4a7c15ull + (uintptr_t)arg + 1;
	uint64_t *buf = mmap(NULL, MAX_OP_PAGES * PAGE, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (buf == MAP_FAILED)
		return NULL;
	while (!atomic_load(&stop))
		worker_op(&rs, buf);
	munmap(buf, MAX_OP_PAGES * PAGE);
	return NULL;
}

/* ---- mutators -------------------------------------------------------- */

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void mut_migrate(uint64_t *rs)
{
	struct slot *s = &slots[rnd(rs, SLOT_KINDS)];
	void *pages[16];
	int nodes[16], status[16];
	unsigned int n = 1 + rnd(rs, 16), i;

	if (cfg.numa_nodes < 2)
		return;
	pthread_rwlock_rdlock(&s->layout);
	for (i = 0; i < n; i++) {
		pages[i] = s->addr + rnd(rs, s->npages) * PAGE;
		nodes[i] = rnd(rs, cfg.numa_nodes);
	}
	syscall(__NR_move_pages, 0, n, pages, nodes, status, MPOL_MF_MOVE);
	pthread_rwlock_unlock(&s->layout);
}

static void mut_mprotect(uint64_t *rs)
{
	struct slot *s = &slots[rnd(rs, SLOT_KINDS)];
	size_t p0, n;

	pthread_rwlock_rdlock(&s->layout);
	n = 1 + rnd(rs, 16);
	p0 = rnd(rs, s->npages - n + 1);
	pthread_rwlock_wrlock(&s->cpu_write);
	atomic_fetch_add(&s->protect_epoch, 1);
	mprotect(s->addr + p0 * PAGE, n * PAGE, PROT_READ);
	sleep_ms(1 + rnd(rs, 5));
	mprotect(s->addr + p0 * PAGE, n * PAGE, PROT_READ | PROT_WRITE);
	atomic_fetch_add(&s->protect_epoch, 1);
	pthread_rwlock_unlock(&s->cpu_write);
	pthread_rwlock_unlock(&s->layout);
}

/* A child that writes its copy-on-write view and checks it never sees data
 * it did not expect; the parent's device writes must not reach it.
 */
static void mut_fork(uint64_t *rs)
{
	struct slot *s = &slots[rnd(rs, SLOT_KINDS)];
	int status;
	pid_t pid;

	if (s->kind == SLOT_SHARED)
		return;
	pthread_rwlock_rdlock(&s->layout);
	pid = fork();
	if (pid == 0) {
		volatile uint64_t *w = (uint64_t *)s->addr;
		size_t p;

		/* Every page holds one of its own stamps, or zeros. */
		for (p = 0; p < s->npages; p++) {
			uint64_t x = w[p * WORDS] ^ STAMP_KEY;

			if (w[p * WORDS] && (x >> 40) != s->page_id[p])
				_exit(3);
		}
		/*
		 * Write our copy (breaking COW); an mprotect window of the
		 * parent may have been inherited, so make it writable first.
		 */
		if (mprotect(s->addr, s->npages * PAGE, PROT_READ | PROT_WRITE))
			_exit(4);
		for (p = 0; p < s->npages; p += 7)
			w[p * WORDS + 1] = 0xdeadbeef;
		_exit(0);
	}
	pthread_rwlock_unlock(&s->layout);
	if (pid > 0 && waitpid(pid, &status, 0) == pid) {
		if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
			atomic_fetch_add(&violations, 1);
			fprintf(stderr, "hmirror-stress: VIOLATION fork child saw another page's data\n");
		} else if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			atomic_fetch_add(&err_unexpected[3], 1);
			fprintf(stderr, "hmirror-stress: fork child failed (status 0x%x)\n",
				status);
		}
	}
}

static void mut_thp(uint64_t *rs)
{
	struct slot *s = &slots[SLOT_THP];
	size_t len = s->npages * PAGE;

	pthread_rwlock_rdlock(&s->layout);
	if (rnd(rs, 2)) {
		/* Split: an mprotect inside a huge page breaks the PMD. */
		size_t p = rnd(rs, s->npages);

		pthread_rwlock_wrlock(&s->cpu_write);
		atomic_fetch_add(&s->protect_epoch, 1);
		mprotect(s->addr + p * PAGE, PAGE, PROT_READ);
		mprotect(s->addr + p * PAGE, PAGE, PROT_READ | PROT_WRITE);
		atomic_fetch_add(&s->protect_epoch, 1);
		pthread_rwlock_unlock(&s->cpu_write);
	} else {
		madvise(s->addr, len, MADV_COLLAPSE);
	}
	pthread_rwlock_unlock(&s->layout);
}

static void mut_ksm(uint64_t *rs)
{
	struct slot *s = &slots[SLOT_KSM];
	uint32_t v = 1 + rnd(rs, 1000);

	/* Make the pages identical again so ksmd merges them. */
	pthread_rwlock_wrlock(&s->layout);
	for (size_t p = 0; p < s->npages; p++) {
		while (atomic_load(&s->busy[p]))
			sched_yield();
		make_page((uint64_t *)(s->addr + p * PAGE), s->page_id[p], v);
		s->version[p] = v;
	}
	madvise(s->addr, s->npages * PAGE, MADV_MERGEABLE);
	pthread_rwlock_unlock(&s->layout);
}

static void mut_dontneed(uint64_t *rs)
{
	struct slot *s = &slots[rnd(rs, SLOT_KINDS)];
	size_t n, p0;

	if (s->kind == SLOT_SHARED)
		return;	/* shared memory keeps its content */
	pthread_rwlock_wrlock(&s->layout);
	n = 1 + rnd(rs, 32);
	if (n > s->npages)
		n = s->npages;
	p0 = rnd(rs, s->npages - n + 1);
	madvise(s->addr + p0 * PAGE, n * PAGE, MADV_DONTNEED);
	for (size_t i = 0; i < n; i++)
		s->version[p0 + i] = 0;
	pthread_rwlock_unlock(&s->layout);
}

/*
 * A new mapping over the old one at the same address (MAP_FIXED replaces
 * it in one step, so no other thread can take the range in between): the
 * device must see the new, zeroed pages.
 */
static void mut_remap(uint64_t *rs)
{
	struct slot *s = &slots[rnd(rs, SLOT_KINDS)];

	if (s->kind == SLOT_SHARED || s->kind == SLOT_THP)
		return;
	pthread_rwlock_wrlock(&s->layout);
	if (slot_map(s)) {
		fprintf(stderr, "hmirror-stress: remap failed: %s\n", strerror(errno));
		atomic_store(&stop, true);
	}
	for (size_t p = 0; p < s->npages; p++)
		s->version[p] = 0;
	pthread_rwlock_unlock(&s->layout);
}

/* Move a slot; its old address must be dead to the device. */
static void mut_mremap(uint64_t *rs)
{
	struct slot *s = &slots[rnd(rs, SLOT_KINDS)];
	size_t len = s->npages * PAGE;
	uint8_t probe[64];
	void *dst, *old;
	int ret;

	if (s->kind == SLOT_THP)
		return;
	pthread_rwlock_wrlock(&s->layout);
	dst = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (dst != MAP_FAILED) {
		old = s->addr;
		if (mremap(s->addr, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst) == dst) {
			s->addr = dst;
			/*
			 * Hold the old range inaccessible (unless another
			 * thread mapped it first) and make sure the device
			 * cannot reach the data there any more.
			 */
			if (mmap(old, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
				 MAP_FIXED_NOREPLACE, -1, 0) == old) {
				ret = hmirror_read(dev_fd, 0, (uintptr_t)old, probe,
						   sizeof(probe));
				if (ret != -EFAULT) {
					atomic_fetch_add(&violations, 1);
					fprintf(stderr, "hmirror-stress: VIOLATION device read of a moved-away range returned %d\n",
						ret);
				}
				munmap(old, len);
			}
		} else {
			munmap(dst, len);
		}
	}
	pthread_rwlock_unlock(&s->layout);
}

static void mut_pageout(uint64_t *rs)
{
	struct slot *s = &slots[rnd(rs, SLOT_KINDS)];

	pthread_rwlock_rdlock(&s->layout);
	madvise(s->addr, s->npages * PAGE, MADV_PAGEOUT);
	pthread_rwlock_unlock(&s->layout);
}

static void (*const mut_fn[MUT_COUNT])(uint64_t *) = {
	mut_migrate, mut_mprotect, mut_fork, mut_ksm, mut_thp, mut_dontneed,
	mut_remap, mut_mremap, mut_pageout,
};
/* Pause between runs (ms): slow mutators would otherwise starve workers. */
static const unsigned int mut_pause[MUT_COUNT] = {
	5, 5, 50, 500, 20, 10, 30, 30, 100,
};

static void *mutator_main(void *arg)
{
	enum mutator m = (enum mutator)(uintptr_t)arg;
	uint64_t rs = cfg.seed * 0xbf58476d1ce4e5b9ull + m + 101;

	while (!atomic_load(&stop)) {
		mut_fn[m](&rs);
		atomic_fetch_add(&mut_runs[m], 1);
		sleep_ms(mut_pause[m]);
	}
	return NULL;
}

/* ---- setup, report ---------------------------------------------------- */

static int count_numa_nodes(void)
{
	char buf[64];
	int n = 1, a, b;
	FILE *f = fopen("/sys/devices/system/node/online", "r");

	if (f && fgets(buf, sizeof(buf), f)) {
		if (sscanf(buf, "%d-%d", &a, &b) == 2)
			n = b - a + 1;
	}
	if (f)
		fclose(f);
	return n;
}

static unsigned long kernel_taint(void)
{
	unsigned long t = 0;
	FILE *f = fopen("/proc/sys/kernel/tainted", "r");

	if (f) {
		if (fscanf(f, "%lu", &t) != 1)
			t = 0;
		fclose(f);
	}
	return t;
}

static void write_file(const char *path, const char *val)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fputs(val, f);
		fclose(f);
	}
}

static unsigned long total_ops(void)
{
	unsigned long t = 0;

	for (int i = 0; i < OP_KINDS; i++)
		t += atomic_load(&ops[i]);
	return t;
}

static void report(FILE *out, const struct drm_hmirror_ctx_stats *st,
		   double secs, bool json, unsigned long taint_new)
{
	unsigned long errs = 0;

	for (int i = 0; i < 4; i++)
		errs += atomic_load(&err_unexpected[i]);
	if (!json) {
		fprintf(out, "hmirror-stress: %.0f s, seed %" PRIu64 ", %u workers, %d NUMA node(s)\n",
			secs, cfg.seed, cfg.workers, cfg.numa_nodes);
		fprintf(out, "  ops: %lu (%.0f/s):", total_ops(), total_ops() / secs);
		for (int i = 0; i < OP_KINDS; i++)
			fprintf(out, " %s %lu", op_name[i], atomic_load(&ops[i]));
		fprintf(out, "\n  mutations:");
		for (int i = 0; i < MUT_COUNT; i++)
			if (cfg.mix[i])
				fprintf(out, " %s %lu", mut_name[i], atomic_load(&mut_runs[i]));
		fprintf(out, "\n  faults %llu (pages %llu), invalidations %llu (device flushes %llu)\n",
			(unsigned long long)st->faults, (unsigned long long)st->pages_faulted,
			(unsigned long long)st->invalidations,
			(unsigned long long)st->device_flushes);
		fprintf(out, "  retries: stale %llu, hmm-busy %llu, waited %llu; lock drops %llu\n",
			(unsigned long long)st->retries_stale,
			(unsigned long long)st->retries_busy,
			(unsigned long long)st->retries_waited,
			(unsigned long long)st->lock_drops);
		fprintf(out, "  errors: expected -EFAULT %lu; unexpected -EFAULT %lu, -EINTR %lu, -EIO %lu, other %lu\n",
			atomic_load(&efault_expected), atomic_load(&err_unexpected[0]),
			atomic_load(&err_unexpected[1]), atomic_load(&err_unexpected[2]),
			atomic_load(&err_unexpected[3]));
		fprintf(out, "  kernel taint change: 0x%lx\n", taint_new);
		fprintf(out, "  integrity violations: %lu", atomic_load(&violations));
		if (atomic_load(&violations))
			fprintf(out, " (first after %.1f s)", atomic_load(&first_violation_s));
		fprintf(out, "\n");
		return;
	}
	fprintf(out, "{\"seconds\": %.1f, \"seed\": %" PRIu64 ", \"workers\": %u, \"ops\": %lu, "
		"\"faults\": %llu, \"pages_faulted\": %llu, \"invalidations\": %llu, "
		"\"device_flushes\": %llu, \"retries_stale\": %llu, \"retries_busy\": %llu, "
		"\"retries_waited\": %llu, \"lock_drops\": %llu, \"efault_expected\": %lu, "
		"\"errors_unexpected\": %lu, \"violations\": %lu, \"first_violation_s\": %.1f, "
		"\"taint_new\": %lu}\n",
		secs, cfg.seed, cfg.workers, total_ops(),
		(unsigned long long)st->faults, (unsigned long long)st->pages_faulted,
		(unsigned long long)st->invalidations,
		(unsigned long long)st->device_flushes,
		(unsigned long long)st->retries_stale,
		(unsigned long long)st->retries_busy,
		(unsigned long long)st->retries_waited,
		(unsigned long long)st->lock_drops, atomic_load(&efault_expected),
		errs, atomic_load(&violations), atomic_load(&first_violation_s), taint_new);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hmirror-stress [-d SECONDS] [-s SEED] [-t WORKERS] [-p SLOT_PAGES]\n"
		"                      [-m MIX] [-b BACKEND] [-i PROGRESS_S] [-j JSON_FILE]\n"
		"  MIX: comma list of");
	for (int i = 0; i < MUT_COUNT; i++)
		fprintf(f, " %s", mut_name[i]);
	fprintf(f, " (default: all), or none\n  BACKEND: gup (default) or hmm\n");
}

static int parse_mix(const char *s)
{
	char *copy = strdup(s), *tok, *save;

	memset(cfg.mix, 0, sizeof(cfg.mix));
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int i;

		if (!strcmp(tok, "none"))
			continue;
		for (i = 0; i < MUT_COUNT; i++)
			if (!strcmp(tok, mut_name[i]))
				break;
		if (i == MUT_COUNT) {
			fprintf(stderr, "hmirror-stress: unknown mutator '%s'\n", tok);
			free(copy);
			return -1;
		}
		cfg.mix[i] = true;
	}
	free(copy);
	return 0;
}

int main(int argc, char **argv)
{
	struct drm_hmirror_ctx_options o = { .flags = DRM_HMIRROR_CTX_SET };
	struct drm_hmirror_ctx_stats st;
	struct drm_hmirror_info info;
	pthread_t threads[64];
	unsigned int nthreads = 0;
	unsigned long taint0, taint1;
	double t0, last;
	int opt, ret;

	for (int i = 0; i < MUT_COUNT; i++)
		cfg.mix[i] = true;
	while ((opt = getopt(argc, argv, "d:s:t:p:m:b:i:j:h")) != -1) {
		switch (opt) {
		case 'd': cfg.seconds = strtoul(optarg, NULL, 0); break;
		case 's': cfg.seed = strtoull(optarg, NULL, 0); break;
		case 't': cfg.workers = strtoul(optarg, NULL, 0); break;
		case 'p': cfg.slot_pages = strtoul(optarg, NULL, 0); break;
		case 'i': cfg.progress = strtoul(optarg, NULL, 0); break;
		case 'j': cfg.json = optarg; break;
		case 'm':
			if (parse_mix(optarg))
				return 2;
			break;
		case 'b':
			if (!strcmp(optarg, "hmm"))
				o.backend = DRM_HMIRROR_BACKEND_HMM;
			else if (strcmp(optarg, "gup")) {
				usage(stderr);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!cfg.seed)
		cfg.seed = 1;
	if (cfg.workers < 1 || cfg.workers > 32 || cfg.slot_pages < 16 ||
	    cfg.slot_pages > 65536) {
		fprintf(stderr, "hmirror-stress: 1..32 workers, 16..65536 slot pages\n");
		return 2;
	}
	cfg.slot_pages = (cfg.slot_pages + 511) & ~511u;	/* whole THPs */

	dev_fd = hmirror_open_nth(0);
	if (dev_fd < 0) {
		fprintf(stderr, "hmirror-stress: open: %s\n", strerror(-dev_fd));
		return 1;
	}
	if (hmirror_get_info(dev_fd, &info) || hmirror_ctx_options(dev_fd, &o)) {
		fprintf(stderr, "hmirror-stress: device setup failed\n");
		return 1;
	}
	num_engines = info.num_engines ? info.num_engines : 1;
	cfg.numa_nodes = count_numa_nodes();
	write_file("/sys/kernel/mm/ksm/run", "1");
	write_file("/sys/kernel/mm/ksm/sleep_millisecs", "20");
	for (int k = 0; k < SLOT_KINDS; k++) {
		ret = slot_init(&slots[k], k, k == SLOT_KSM ? 64 : cfg.slot_pages);
		if (ret) {
			fprintf(stderr, "hmirror-stress: slot %s: %s\n", kind_name[k], strerror(-ret));
			return 1;
		}
	}
	taint0 = kernel_taint();
	t0 = last = t_start = now_s();
	for (unsigned int i = 0; i < cfg.workers; i++)
		pthread_create(&threads[nthreads++], NULL, worker_main, (void *)(uintptr_t)i);
	for (int m = 0; m < MUT_COUNT; m++)
		if (cfg.mix[m])
			pthread_create(&threads[nthreads++], NULL, mutator_main,
				       (void *)(uintptr_t)m);

	while (now_s() - t0 < cfg.seconds && !atomic_load(&stop)) {
		sleep_ms(200);
		if (cfg.progress && now_s() - last >= cfg.progress) {
			last = now_s();
			hmirror_get_ctx_stats(dev_fd, &st);
			printf("# hmirror-stress: %.0f s ops %lu faults %llu invalidations %llu retries %llu violations %lu\n",
			       last - t0, total_ops(), (unsigned long long)st.faults,
			       (unsigned long long)st.invalidations,
			       (unsigned long long)(st.retries_stale + st.retries_busy),
			       atomic_load(&violations));
			fflush(stdout);
		}
	}
	atomic_store(&stop, true);
	for (unsigned int i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);

	/* Every atomic, from device or CPU, landed exactly once. */
	{
		unsigned long sum = 0;

		for (int k = 0; k < SLOT_KINDS; k++)
			for (int w = 0; w < 8; w++)
				sum += atomic_load(&slots[k].counters[w]);
		if (sum != atomic_load(&atomic_adds)) {
			atomic_fetch_add(&violations, 1);
			fprintf(stderr, "hmirror-stress: VIOLATION atomics: %lu in memory, %lu done\n",
				sum, atomic_load(&atomic_adds));
		}
	}
	/* And a final full comparison of every page. */
	for (int k = 0; k < SLOT_KINDS; k++) {
		struct slot *s = &slots[k];

		for (size_t p = 0; p < s->npages; p++)
			if (!page_is((uint64_t *)(s->addr + p * PAGE), s->page_id[p], s->version[p]))
				violation(s, p, "final check: CPU view differs from the oracle",
					  s->version[p], NULL);
	}

	taint1 = kernel_taint() & ~taint0;
	hmirror_get_ctx_stats(dev_fd, &st);
	report(stdout, &st, now_s() - t0, false, taint1);
	if (cfg.json) {
		FILE *f = fopen(cfg.json, "w");

		if (f) {
			report(f, &st, now_s() - t0, true, taint1);
			fclose(f);
		}
	}
	hmirror_close(dev_fd);
	{
		unsigned long errs = 0;

		for (int i = 0; i < 4; i++)
			errs += atomic_load(&err_unexpected[i]);
		/* Taint bit 9 (W): a kernel warning happened during the run. */
		if (atomic_load(&violations) || errs || (taint1 & (1ul << 9)))
			return 1;
	}
	return 0;
}
