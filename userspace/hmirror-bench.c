// SPDX-License-Identifier: MIT
/*
 * hmirror-bench: device fault latency, each figure beside a baseline
 * measured in the same run on the same kind of pages.
 *
 *  fault      4 KiB device faults (one CHECKSUM of 8 bytes per fresh
 *             mapping of an already-populated page), split into the
 *             device's stages; baseline: the CPU's minor fault on the
 *             same kind of page (first touch of a fresh mapping)
 *  batch      per-page cost of one device fault covering 1 .. 512 pages
 *             and a 2 MiB THP; baseline: CPU minor faults on as many pages
 *  backend    the fault figure with the gup and the hmm backend
 *  inval      munmap of a range the device mirrors; baseline: munmap of
 *             the same range never mirrored
 *  retry      faults while another thread mmaps/munmaps unrelated memory:
 *             retries per fault (should stay near zero)
 *
 * Output: a table on stdout, JSON (-j), and the fault latency samples
 * (-H) for the plot.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "libhmirror.h"

#define PAGE	4096ul
#define HUGE_2M	(2ul << 20)

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

static int dev_fd;
static unsigned int iters = 300;
static FILE *json;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

struct dist {
	uint64_t p50, p90, p99, max, mean;
};

static struct dist summarize(uint64_t *v, size_t n)
{
	struct dist d = { 0 };
	uint64_t sum = 0;

	if (!n)
		return d;
	qsort(v, n, sizeof(*v), cmp_u64);
	for (size_t i = 0; i < n; i++)
		sum += v[i];
	d.p50 = v[n / 2];
	d.p90 = v[(n * 90) / 100];
	d.p99 = v[(n * 99) / 100];
	d.max = v[n - 1];
	d.mean = sum / n;
	return d;
}

static void json_dist(const char *name, const struct dist *d, bool comma)
{
	fprintf(json, "    \"%s\": {\"p50_ns\": %" PRIu64 ", \"p90_ns\": %" PRIu64
		", \"p99_ns\": %" PRIu64 ", \"max_ns\": %" PRIu64 ", \"mean_ns\": %" PRIu64 "}%s\n",
		name, d->p50, d->p90, d->p99, d->max, d->mean, comma ? "," : "");
}

/* A log2 histogram of @v (sorted or not), in microseconds. */
static void print_histogram(const char *name, const uint64_t *v, size_t n)
{
	unsigned long buckets[24] = { 0 };
	unsigned int b, top = 0, lo = 23;

	for (size_t i = 0; i < n; i++) {
		uint64_t us = v[i] / 1000;

		for (b = 0; b < 23 && (1ull << (b + 1)) <= us; b++)
			;
		buckets[b]++;
		if (b > top)
			top = b;
		if (b < lo)
			lo = b;
	}
	printf("  histogram of %s (us):\n", name);
	for (b = lo; b <= top && n; b++) {
		unsigned int bar = (unsigned int)(buckets[b] * 50 / n);

		printf("    %6llu - %-6llu %6lu |%.*s\n", b ? 1ull << b : 0,
		       (1ull << (b + 1)) - 1, buckets[b], bar,
		       "##################################################");
	}
}

static void print_dist(const char *name, const struct dist *d,
		       const struct dist *base)
{
	printf("  %-28s p50 %8.1f us  p90 %8.1f us  p99 %8.1f us  max %8.1f us",
	       name, d->p50 / 1e3, d->p90 / 1e3, d->p99 / 1e3, d->max / 1e3);
	if (base && base->p50)
		printf("  (x%.1f p50 vs baseline)", (double)d->p50 / base->p50);
	printf("\n");
}

/* A memfd of @npages pages, already in the page cache. */
static int populated_memfd(size_t npages)
{
	int fd = memfd_create("hmirror-bench", 0);
	char page[PAGE];

	if (fd < 0)
		return -1;
	memset(page, 0x5a, sizeof(page));
	for (size_t i = 0; i < npages; i++)
		if (write(fd, page, PAGE) != (ssize_t)PAGE) {
			close(fd);
			return -1;
		}
	return fd;
}

static void *map_fd(int fd, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int set_backend(uint32_t backend)
{
	struct drm_hmirror_ctx_options o = {
		.flags = DRM_HMIRROR_CTX_SET, .backend = backend,
	};

	return hmirror_ctx_options(dev_fd, &o);
}

/* ---- fault latency ---------------------------------------------------- */

struct fault_samples {
	uint64_t *total, *detect, *to_driver_and_back, *service, *cpu;
	size_t n;
};

static int run_faults(struct fault_samples *fs, FILE *samples, const char *tag)
{
	int mfd = populated_memfd(1);

	if (mfd < 0)
		return -errno;
	fs->n = 0;
	for (unsigned int i = 0; i < iters; i++) {
		uint8_t *p = map_fd(mfd, PAGE);
		struct drm_hmirror_exec x = {
			.op = DRM_HMIRROR_OP_CHECKSUM, .len = 8,
		};
		uint64_t t0, t1;
		volatile uint8_t sink;
		int ret;

		if (!p)
			return -errno;
		x.addr = (uintptr_t)p;
		t0 = now_ns();
		ret = hmirror_exec(dev_fd, &x);
		t1 = now_ns();
		munmap(p, PAGE);
		if (ret)
			return ret;
		if (x.faults != 1)
			continue;	/* not a single 4 KiB fault: skip */
		fs->total[fs->n] = t1 - t0;
		fs->detect[fs->n] = x.t_fault - x.t_submit;
		/* Device clock: fault raised -> answer seen, minus the service. */
		fs->to_driver_and_back[fs->n] = x.t_answer - x.t_fault > x.service_ns ?
						x.t_answer - x.t_fault - x.service_ns : 0;
		fs->service[fs->n] = x.service_ns;

		/* Baseline: the CPU's minor fault on a fresh mapping of the page. */
		p = map_fd(mfd, PAGE);
		if (!p)
			return -errno;
		t0 = now_ns();
		sink = p[0];
		t1 = now_ns();
		(void)sink;
		munmap(p, PAGE);
		fs->cpu[fs->n] = t1 - t0;
		if (samples)
			fprintf(samples, "%s %" PRIu64 " %" PRIu64 "\n", tag,
				fs->total[fs->n], fs->cpu[fs->n]);
		fs->n++;
	}
	close(mfd);
	return 0;
}

static int bench_faults(FILE *samples, const char *backend_name, bool last)
{
	struct fault_samples fs = { 0 };
	struct dist total, detect, trip, service, cpu;
	size_t sz = iters * sizeof(uint64_t);
	int ret;

	fs.total = malloc(sz);
	fs.detect = malloc(sz);
	fs.to_driver_and_back = malloc(sz);
	fs.service = malloc(sz);
	fs.cpu = malloc(sz);
	if (!fs.total || !fs.detect || !fs.to_driver_and_back || !fs.service || !fs.cpu)
		return -ENOMEM;
	ret = run_faults(&fs, samples, backend_name);
	if (ret)
		return ret;
	total = summarize(fs.total, fs.n);
	detect = summarize(fs.detect, fs.n);
	trip = summarize(fs.to_driver_and_back, fs.n);
	service = summarize(fs.service, fs.n);
	cpu = summarize(fs.cpu, fs.n);

	printf("4 KiB fault latency, %s backend (%zu faults):\n", backend_name, fs.n);
	print_dist("device fault, end to end", &total, &cpu);
	print_dist("  device: fetch -> fault", &detect, NULL);
	print_dist("  device->driver->device", &trip, NULL);
	print_dist("  driver service", &service, NULL);
	print_dist("baseline: CPU minor fault", &cpu, NULL);
	print_histogram("device fault, end to end", fs.total, fs.n);
	print_histogram("baseline CPU minor fault", fs.cpu, fs.n);
	fprintf(json, "  \"fault_%s\": {\n    \"n\": %zu,\n", backend_name, fs.n);
	json_dist("end_to_end", &total, true);
	json_dist("device_detect", &detect, true);
	json_dist("device_driver_roundtrip", &trip, true);
	json_dist("driver_service", &service, true);
	json_dist("baseline_cpu_minor_fault", &cpu, false);
	fprintf(json, "  }%s\n", last ? "" : ",");
	free(fs.total);
	free(fs.detect);
	free(fs.to_driver_and_back);
	free(fs.service);
	free(fs.cpu);
	return 0;
}

/* ---- batch size --------------------------------------------------------- */

static int bench_batch(void)
{
	static const unsigned int sizes[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512 };
	unsigned int reps = iters / 20 ? iters / 20 : 1;
	int mfd = populated_memfd(512);

	if (mfd < 0)
		return -errno;
	printf("per-page cost against batch size (one device fault per batch):\n");
	printf("  %8s %14s %14s %8s\n", "pages", "device ns/pg", "CPU ns/pg", "ratio");
	fprintf(json, "  \"batch\": [\n");
	for (unsigned int s = 0; s < sizeof(sizes) / sizeof(sizes[0]) + 1; s++) {
		bool thp = s == sizeof(sizes) / sizeof(sizes[0]);
		unsigned int n = thp ? 512 : sizes[s];
		uint64_t dev = 0, cpu = 0;

		for (unsigned int r = 0; r < reps; r++) {
			uint8_t *p;
			uint64_t t0, sum;
			int ret;

			if (thp) {
				uint8_t *raw = mmap(NULL, 2 * HUGE_2M, PROT_READ | PROT_WRITE,
						    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

				if (raw == MAP_FAILED)
					return -errno;
				p = (uint8_t *)(((uintptr_t)raw + HUGE_2M - 1) & ~(HUGE_2M - 1));
				madvise(p, HUGE_2M, MADV_HUGEPAGE);
				memset(p, 1, HUGE_2M);
				t0 = now_ns();
				ret = hmirror_checksum(dev_fd, 0, (uintptr_t)p, HUGE_2M, &sum);
				dev += now_ns() - t0;
				/* Baseline: the same THP touched again after DONTNEED. */
				madvise(p, HUGE_2M, MADV_DONTNEED);
				t0 = now_ns();
				for (size_t o = 0; o < HUGE_2M; o += PAGE)
					p[o] = 1;
				cpu += now_ns() - t0;
				munmap(raw, 2 * HUGE_2M);
			} else {
				p = map_fd(mfd, n * PAGE);
				if (!p)
					return -errno;
				t0 = now_ns();
				ret = hmirror_checksum(dev_fd, 0, (uintptr_t)p, n * PAGE, &sum);
				dev += now_ns() - t0;
				munmap(p, n * PAGE);
				p = map_fd(mfd, n * PAGE);
				if (!p)
					return -errno;
				t0 = now_ns();
				for (size_t o = 0; o < n * PAGE; o += PAGE)
					(void)*(volatile uint8_t *)(p + o);
				cpu += now_ns() - t0;
				munmap(p, n * PAGE);
			}
			if (ret)
				return ret;
		}
		dev /= (uint64_t)reps * n;
		cpu /= (uint64_t)reps * n;
		{
			char label[16];

			if (thp)
				snprintf(label, sizeof(label), "2M THP");
			else
				snprintf(label, sizeof(label), "%u", n);
			printf("  %8s %14" PRIu64 " %14" PRIu64 " %8.1f\n", label,
			       dev, cpu, cpu ? (double)dev / cpu : 0);
		}
		fprintf(json, "    {\"pages\": %u, \"thp\": %s, \"device_ns_per_page\": %" PRIu64
			", \"cpu_ns_per_page\": %" PRIu64 "}%s\n", n, thp ? "true" : "false",
			dev, cpu, thp ? "" : ",");
	}
	fprintf(json, "  ],\n");
	close(mfd);
	return 0;
}

/* ---- invalidation --------------------------------------------------------- */

static int bench_inval(void)
{
	static const size_t sizes[] = { 1, 16, 256 };

	printf("invalidation: munmap of a range (p50 of %u):\n", iters / 10);
	fprintf(json, "  \"invalidation\": [\n");
	for (unsigned int s = 0; s < 3; s++) {
		size_t len = sizes[s] * PAGE;
		unsigned int n = iters / 10 ? iters / 10 : 1;
		uint64_t *m = malloc(n * sizeof(*m)), *b = malloc(n * sizeof(*b));
		struct dist dm, db;

		if (!m || !b)
			return -ENOMEM;
		for (unsigned int i = 0; i < n; i++) {
			uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
			uint64_t t0;
			int ret;

			if (p == MAP_FAILED)
				return -errno;
			ret = hmirror_prefetch(dev_fd, (uintptr_t)p, len, 1);
			if (ret)
				return ret;
			t0 = now_ns();
			munmap(p, len);
			m[i] = now_ns() - t0;
			p = mmap(NULL, len, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
			if (p == MAP_FAILED)
				return -errno;
			t0 = now_ns();
			munmap(p, len);
			b[i] = now_ns() - t0;
		}
		dm = summarize(m, n);
		db = summarize(b, n);
		printf("  %4zu pages: mirrored %8.1f us, not mirrored %8.1f us (x%.1f)\n",
		       sizes[s], dm.p50 / 1e3, db.p50 / 1e3,
		       db.p50 ? (double)dm.p50 / db.p50 : 0);
		fprintf(json, "    {\"pages\": %zu, \"mirrored_p50_ns\": %" PRIu64
			", \"baseline_p50_ns\": %" PRIu64 "}%s\n", sizes[s], dm.p50, db.p50,
			s == 2 ? "" : ",");
		free(m);
		free(b);
	}
	fprintf(json, "  ],\n");
	return 0;
}

/* ---- retries under unrelated invalidations ------------------------------- */

static atomic_bool churn_stop;

static void *churn(void *arg)
{
	unsigned long *count = arg;

	while (!atomic_load(&churn_stop)) {
		void *p = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

		if (p != MAP_FAILED)
			munmap(p, 16 * PAGE);
		(*count)++;
	}
	return NULL;
}

static int bench_retry(void)
{
	struct drm_hmirror_ctx_stats s0, s1;
	unsigned long churned = 0;
	unsigned int n = iters / 2 ? iters / 2 : 1;
	int mfd = populated_memfd(1);
	pthread_t t;
	double rate;

	if (mfd < 0)
		return -errno;
	hmirror_get_ctx_stats(dev_fd, &s0);
	atomic_store(&churn_stop, false);
	pthread_create(&t, NULL, churn, &churned);
	for (unsigned int i = 0; i < n; i++) {
		uint8_t *p = map_fd(mfd, PAGE);
		uint64_t sum;
		int ret;

		if (!p)
			return -errno;
		ret = hmirror_checksum(dev_fd, 0, (uintptr_t)p, 8, &sum);
		munmap(p, PAGE);
		if (ret)
			return ret;
	}
	atomic_store(&churn_stop, true);
	pthread_join(t, NULL);
	hmirror_get_ctx_stats(dev_fd, &s1);
	rate = (double)(s1.retries_stale + s1.retries_waited + s1.retries_busy -
			s0.retries_stale - s0.retries_waited - s0.retries_busy) /
	       (double)(s1.faults - s0.faults);
	printf("retries under unrelated invalidation load: %.4f per fault (%llu faults, %lu unrelated mmap/munmap, %llu invalidations seen)\n",
	       rate, (unsigned long long)(s1.faults - s0.faults), churned,
	       (unsigned long long)(s1.invalidations - s0.invalidations));
	fprintf(json, "  \"retry\": {\"faults\": %llu, \"retries_per_fault\": %.5f, \"unrelated_ops\": %lu},\n",
		(unsigned long long)(s1.faults - s0.faults), rate, churned);
	close(mfd);
	return 0;
}

int main(int argc, char **argv)
{
	const char *json_path = NULL, *samples_path = NULL;
	FILE *samples = NULL;
	int opt, ret;

	while ((opt = getopt(argc, argv, "n:j:H:h")) != -1) {
		switch (opt) {
		case 'n':
			iters = strtoul(optarg, NULL, 0);
			break;
		case 'j':
			json_path = optarg;
			break;
		case 'H':
			samples_path = optarg;
			break;
		default:
			fprintf(stderr, "usage: hmirror-bench [-n ITERATIONS] [-j JSON] [-H SAMPLES]\n");
			return opt == 'h' ? 0 : 2;
		}
	}
	if (iters < 20 || iters > 1000000) {
		fprintf(stderr, "hmirror-bench: -n is 20 .. 1000000\n");
		return 2;
	}
	dev_fd = hmirror_open_nth(0);
	if (dev_fd < 0) {
		fprintf(stderr, "hmirror-bench: open: %s\n", strerror(-dev_fd));
		return 1;
	}
	json = json_path ? fopen(json_path, "w") : fopen("/dev/null", "w");
	if (samples_path)
		samples = fopen(samples_path, "w");
	if (!json || (samples_path && !samples)) {
		fprintf(stderr, "hmirror-bench: cannot write output files\n");
		return 1;
	}
	fprintf(json, "{\n  \"iterations\": %u,\n", iters);

	ret = set_backend(DRM_HMIRROR_BACKEND_GUP);
	if (!ret)
		ret = bench_batch();
	if (!ret)
		ret = bench_inval();
	if (!ret)
		ret = bench_retry();
	if (!ret)
		ret = bench_faults(samples, "gup", false);
	if (!ret)
		ret = set_backend(DRM_HMIRROR_BACKEND_HMM);
	if (!ret)
		ret = bench_faults(samples, "hmm", true);
	fprintf(json, "}\n");
	fclose(json);
	if (samples)
		fclose(samples);
	hmirror_close(dev_fd);
	if (ret) {
		fprintf(stderr, "hmirror-bench: failed: %s\n", strerror(-ret));
		return 1;
	}
	return 0;
}
