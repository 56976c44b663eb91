/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the guest kselftests: memory patterns and mappings,
 * sysfs, finding a device again after a rebind, and a userfaultfd region
 * whose faults a test resolves (or holds) at will.
 */
#ifndef GUEST_UTIL_H
#define GUEST_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "libhmirror.h"

#define PAGE		4096ul
#define HUGE_2M		(2ul << 20)
#define HMIRROR_DRIVER	"/sys/bus/pci/drivers/hmirror"

static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline void fill_pattern(void *p, size_t len, uint64_t seed)
{
	uint64_t *w = p;
	size_t i;

	for (i = 0; i < len / 8; i++)
		w[i] = seed * 0x9e3779b97f4a7c15ull + i;
}

static inline int check_pattern(const void *p, size_t len, uint64_t seed)
{
	const uint64_t *w = p;
	size_t i;

	for (i = 0; i < len / 8; i++)
		if (w[i] != seed * 0x9e3779b97f4a7c15ull + i)
			return -1;
	return 0;
}

static inline void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* An address range aligned to @align, from an oversized mapping. */
static inline void *map_aligned(size_t len, size_t align)
{
	uint8_t *p = mmap(NULL, len + align, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t a;

	if (p == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)p + align - 1) & ~(align - 1);
	if (a > (uintptr_t)p)
		munmap(p, a - (uintptr_t)p);
	munmap((void *)(a + len), (uintptr_t)p + len + align - (a + len));
	return (void *)a;
}

/*
 * Pages of [addr, addr + npages) whose SNAPSHOT flags, masked by @mask,
 * equal @want; -1 when the snapshot fails.
 */
static inline int snap_masked(int fd, void *addr, size_t npages, uint8_t mask,
			      uint8_t want)
{
	uint8_t *v = malloc(npages);
	size_t i;
	int n = 0;

	if (!v || hmirror_snapshot(fd, (uintptr_t)addr, npages, v)) {
		free(v);
		return -1;
	}
	for (i = 0; i < npages; i++)
		n += (v[i] & mask) == want;
	free(v);
	return n;
}

/* Pages whose SNAPSHOT flags are exactly @want. */
static inline int snap_count(int fd, void *addr, size_t npages, uint8_t want)
{
	return snap_masked(fd, addr, npages, 0xff, want);
}

/* Pages whose SNAPSHOT has any of @bits set. */
static inline int snap_has(int fd, void *addr, size_t npages, uint8_t bits)
{
	int none = snap_masked(fd, addr, npages, bits, 0);

	return none < 0 ? -1 : (int)npages - none;
}

static inline int write_sysfs(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n < 0 ? -errno : 0;
}

/* A number from a sysfs or procfs file; -1 when it cannot be read. */
static inline long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* The PCI address of the device behind an open accel file. */
static inline int fd_to_bdf(int fd, char *bdf, size_t len)
{
	char path[128], link[256];
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st))
		return -errno;
	snprintf(path, sizeof(path), "/sys/dev/char/%u:%u/device",
		 major(st.st_rdev), minor(st.st_rdev));
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return -errno;
	link[n] = '\0';
	snprintf(bdf, len, "%s", strrchr(link, '/') + 1);
	return 0;
}

/* Open the hmirror device at PCI address @bdf, waiting up to 2 s for it. */
static inline int open_bdf(const char *bdf)
{
	char other[64];
	int i, n;

	for (i = 0; i < 100; i++) {
		for (n = 0;; n++) {
			int f = hmirror_open_nth(n);

			if (f < 0)
				break;
			if (!fd_to_bdf(f, other, sizeof(other)) &&
			    !strcmp(bdf, other))
				return f;
			hmirror_close(f);
		}
		usleep(20000);
	}
	return -ENOENT;
}

static inline int unbind_bdf(const char *bdf)
{
	return write_sysfs(HMIRROR_DRIVER "/unbind", bdf);
}

static inline int bind_bdf(const char *bdf)
{
	return write_sysfs(HMIRROR_DRIVER "/bind", bdf);
}

/*
 * A userfaultfd-armed anonymous region.  The handler thread fills a
 * missing page with fill_pattern(seed + page index) once @resolve is set;
 * until then a fault on the region stays blocked.  @faults counts fault
 * messages seen, @handled the pages copied in.
 */
struct uffd_region {
	int uffd;
	uint8_t *area;
	size_t len;
	uint64_t seed;
	int resolve;
	int stop;
	int faults;
	int handled;
	pthread_t thread;
};

static inline int uffd_region_init(struct uffd_region *u, size_t len,
				   uint64_t seed)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };

	memset(u, 0, sizeof(*u));
	u->len = len;
	u->seed = seed;
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

static inline void *uffd_region_handler(void *arg)
{
	static uint64_t page[PAGE / 8] __attribute__((aligned(4096)));
	struct uffd_region *u = arg;
	uint64_t pending = 0;

	while (!__atomic_load_n(&u->stop, __ATOMIC_ACQUIRE)) {
		struct pollfd pfd = { .fd = u->uffd, .events = POLLIN };
		struct uffdio_copy copy;
		struct uffd_msg msg;

		if (pending && __atomic_load_n(&u->resolve, __ATOMIC_ACQUIRE)) {
			fill_pattern(page, PAGE,
				     u->seed + (pending - (uintptr_t)u->area) / PAGE);
			copy.dst = pending;
			copy.src = (uintptr_t)page;
			copy.len = PAGE;
			copy.mode = 0;
			copy.copy = 0;
			if (!ioctl(u->uffd, UFFDIO_COPY, &copy) || errno == EEXIST)
				__atomic_fetch_add(&u->handled, 1, __ATOMIC_SEQ_CST);
			pending = 0;
		}
		/* Non-blocking: the flags are checked every 20 ms. */
		if (pending || poll(&pfd, 1, 20) <= 0 || !(pfd.revents & POLLIN))
			continue;
		if (read(u->uffd, &msg, sizeof(msg)) != sizeof(msg) ||
		    msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		pending = msg.arg.pagefault.address & ~(PAGE - 1);
		__atomic_fetch_add(&u->faults, 1, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

static inline int uffd_region_start(struct uffd_region *u)
{
	return pthread_create(&u->thread, NULL, uffd_region_handler, u);
}

/* Wait up to @ms for the handler to have seen @n faults. */
static inline int uffd_region_wait_faults(struct uffd_region *u, int n, int ms)
{
	while (__atomic_load_n(&u->faults, __ATOMIC_ACQUIRE) < n && ms-- > 0)
		usleep(1000);
	return __atomic_load_n(&u->faults, __ATOMIC_ACQUIRE) >= n ? 0 : -1;
}

static inline void uffd_region_fini(struct uffd_region *u)
{
	__atomic_store_n(&u->stop, 1, __ATOMIC_RELEASE);
	pthread_join(u->thread, NULL);
	close(u->uffd);
	munmap(u->area, u->len);
}

#endif /* GUEST_UTIL_H */
