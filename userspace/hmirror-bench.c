// SPDX-License-Identifier: MIT
/*
 * hmirror-bench: device costs, each beside a baseline measured in the same
 * run doing the same work (Documentation/benchmarks.rst says why each pair
 * is the same work).
 *
 *  latency   per iteration, in rotating order: a NOP round trip; the
 *            floor under any ioctl-submitted command (a getppid() system
 *            call and a GET_INFO ioctl, which does nothing); with the
 *            gup backend, and with the hmm one, a CHECKSUM of 8 bytes on a
 *            fresh mapping of a page-cache page (one device fault) and the
 *            same command again on the now mirrored page; two CPU minor
 *            faults on fresh mappings of the same page (the first after
 *            device work, the second warm).  Fault cost = fault -
 *            mirrored, per sample; each fault split into stages that sum
 *            to its end-to-end time.
 *  batch     CHECKSUM of 1 .. 512 pages of a fresh mapping (one fault) and
 *            again mirrored, against the CPU checksumming the same pages of
 *            a fresh mapping and again mapped
 *  thp       the same over a 2 MiB shmem THP, both sides checked PMD-mapped
 *  inval     munmap of a mirrored range against an unmirrored one
 *  retry     both backends' retries while another thread mmaps and munmaps
 *            unrelated memory
 *  copy      device COPY of 64 MiB already mirrored against memcpy
 *  polling   a NOP round trip and a gup fault pair with interrupts only,
 *            with the waiter spinning (poll_max_us), and with the device's
 *            engines spinning too (engine_poll_us, FEAT_POLL), rotated;
 *            needs root (module parameters, restored after)
 *  compat    (-C NODE) the single-page fault through the test_hmm ABI, for
 *            hmirror's compat node and the kernel's test_hmm in turn;
 *            (-c STATE alone) their comparison
 *
 * Output: a report on stdout ending with a summary, JSON (-j) with a
 * "ratios" object, and latency samples (-H) for tests/plot-latency.gp.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
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

#define PAGE		4096ul
#define HUGE_2M		(2ul << 20)
#define COPY_LEN	(64ul << 20)
/* Iterations run before the latency samples are kept (first-use costs). */
#define WARMUP		3

static int dev_fd = -1;
static unsigned int iters = 300;
static FILE *json;		/* /dev/null without -j */

/* The headline: p50 ratios of this run; NAN when not measured. */
static struct {
	double nop_vs_cpu_fault;
	double null_ioctl_vs_cpu_fault;
	double syscall_vs_cpu_fault;
	double fault_vs_cpu_fault;
	double fault_hmm_vs_cpu_fault;
	double fault_cost_vs_cpu_fault;
	double fault_cost_hmm_vs_cpu_fault;
	double nop_vs_cpu_fault_warm;
	double fault_vs_cpu_fault_warm;
	double fault_cost_vs_cpu_fault_warm;
	double munmap_vs_not[3];
	double munmap_command_vs_not[3];	/* the same, by TLB_INVAL */
	double per_page_512_vs_cpu;
	double per_page_512_hmm_vs_cpu;
	double thp_vs_cpu;
	double copy_64m_guest_memcpy_vs_device;
	double nop_waiter_polls_vs_interrupts;
	double fault_waiter_polls_vs_interrupts;
	double nop_both_poll_vs_interrupts;
	double fault_both_poll_vs_interrupts;
} ratio = {
	NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, { NAN, NAN, NAN },
	{ NAN, NAN, NAN }, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN,
};

/* Summary lines, printed again at the end. */
static char summary[32][192];
static unsigned int nsummary;

#define SUMMARY(...) do {						\
	if (nsummary < sizeof(summary) / sizeof(summary[0]))		\
		snprintf(summary[nsummary++], sizeof(summary[0]),	\
			 __VA_ARGS__);					\
} while (0)

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double div_or_nan(double a, double b)
{
	return b != 0 ? a / b : NAN;
}

/* ---- samples and their distribution ----------------------------------- */

struct series {
	int64_t *v;
	size_t n, cap;
};

static int push(struct series *s, int64_t x)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		int64_t *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = x;
	return 0;
}

static void series_free(struct series *s)
{
	free(s->v);
	*s = (struct series){ 0 };
}

/* Percentiles by nearest rank; negatives are kept and counted. */
struct dist {
	size_t n, negatives;
	int64_t p50, p90, p99, min, max, mean;
};

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int64_t rank(const int64_t *sorted, size_t n, unsigned int pct)
{
	size_t r = (n * pct + 99) / 100;

	return sorted[r ? r - 1 : 0];
}

static struct dist summarize(const struct series *s)
{
	struct dist d = { .n = s->n };
	int64_t *v, sum = 0;

	if (!s->n)
		return d;
	v = malloc(s->n * sizeof(*v));
	if (!v) {
		d.n = 0;
		return d;
	}
	memcpy(v, s->v, s->n * sizeof(*v));
	qsort(v, s->n, sizeof(*v), cmp_i64);
	for (size_t i = 0; i < s->n; i++) {
		sum += v[i];
		d.negatives += v[i] < 0;
	}
	d.p50 = rank(v, s->n, 50);
	d.p90 = rank(v, s->n, 90);
	d.p99 = rank(v, s->n, 99);
	d.min = v[0];
	d.max = v[s->n - 1];
	d.mean = sum / (int64_t)s->n;
	free(v);
	return d;
}

static void json_dist(const char *key, const struct dist *d, const char *tail)
{
	fprintf(json, "\"%s\": {\"n\": %zu, \"p50_ns\": %" PRId64 ", \"p90_ns\": %" PRId64
		", \"p99_ns\": %" PRId64 ", \"min_ns\": %" PRId64 ", \"max_ns\": %" PRId64
		", \"mean_ns\": %" PRId64 ", \"negatives\": %zu}%s",
		key, d->n, d->p50, d->p90, d->p99, d->min, d->max, d->mean,
		d->negatives, tail);
}

static void json_num(const char *key, double v, const char *tail)
{
	if (isnan(v))
		fprintf(json, "\"%s\": null%s", key, tail);
	else
		fprintf(json, "\"%s\": %.4g%s", key, v, tail);
}

static void print_dist(const char *label, const struct dist *d, int64_t base)
{
	printf("  %-42s p50 %9.1f us  p90 %9.1f  p99 %9.1f  max %9.1f", label,
	       d->p50 / 1e3, d->p90 / 1e3, d->p99 / 1e3, d->max / 1e3);
	if (base > 0)
		printf("  x%.2f", (double)d->p50 / base);
	printf("\n");
}

/* A log2 histogram in microseconds. */
static void print_histogram(const char *name, const struct series *s)
{
	unsigned long buckets[24] = { 0 };
	unsigned int b, top = 0, lo = 23;

	if (!s->n)
		return;
	for (size_t i = 0; i < s->n; i++) {
		int64_t us = s->v[i] / 1000;

		for (b = 0; b < 23 && us >= 0 && (1ll << (b + 1)) <= us; b++)
			;
		buckets[b]++;
		top = b > top ? b : top;
		lo = b < lo ? b : lo;
	}
	printf("  histogram of %s (us):\n", name);
	for (b = lo; b <= top; b++)
		printf("    %6llu - %-6llu %6lu |%.*s\n", b ? 1ull << b : 0,
		       (1ull << (b + 1)) - 1, buckets[b],
		       (int)(buckets[b] * 50 / s->n),
		       "##################################################");
}

/* ---- memory ------------------------------------------------------------ */

/* A memfd of @npages pages, already in the page cache (0x5a bytes). */
static int populated_memfd(size_t npages)
{
	int fd = memfd_create("hmirror-bench", MFD_CLOEXEC);
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

static uint8_t *map_fd(int fd, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* @fd's first 2 MiB at a 2 MiB-aligned address, MADV_HUGEPAGE. */
static uint8_t *map_fd_2m(int fd)
{
	uint8_t *raw = mmap(NULL, 2 * HUGE_2M, PROT_NONE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint8_t *p;

	if (raw == MAP_FAILED)
		return NULL;
	p = (uint8_t *)(((uintptr_t)raw + HUGE_2M - 1) & ~(HUGE_2M - 1));
	if (mmap(p, HUGE_2M, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 fd, 0) == MAP_FAILED) {
		munmap(raw, 2 * HUGE_2M);
		return NULL;
	}
	if (p > raw)
		munmap(raw, p - raw);
	munmap(p + HUGE_2M, raw + 2 * HUGE_2M - (p + HUGE_2M));
	if (madvise(p, HUGE_2M, MADV_HUGEPAGE)) {
		munmap(p, HUGE_2M);
		return NULL;
	}
	return p;
}

/*
 * A field of /proc/self/smaps (in kB) for the mapping that starts at @addr,
 * or -1.  Header lines start with a lowercase hex address, fields with a
 * capital letter.
 */
static long smaps_kb(const void *addr, const char *field)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	size_t flen = strlen(field);
	char line[4096];
	bool ours = false;
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end;

		if (islower((unsigned char)line[0]) || isdigit((unsigned char)line[0])) {
			if (sscanf(line, "%lx-%lx ", &start, &end) == 2)
				ours = start == (uintptr_t)addr;
			continue;
		}
		if (ours && !strncmp(line, field, flen) && line[flen] == ':') {
			kb = strtol(line + flen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

static int set_backend(uint32_t backend)
{
	struct drm_hmirror_ctx_options o = {
		.flags = DRM_HMIRROR_CTX_SET, .backend = backend,
	};

	return hmirror_ctx_options(dev_fd, &o);
}

/* A CHECKSUM of @len bytes at @p; *ns: the ioctl on the guest's clock. */
static int timed_checksum(const void *p, uint64_t len,
			  struct drm_hmirror_exec *x, int64_t *ns)
{
	int64_t t0;
	int ret;

	*x = (struct drm_hmirror_exec){
		.op = DRM_HMIRROR_OP_CHECKSUM, .addr = (uintptr_t)p, .len = len,
	};
	t0 = now_ns();
	ret = hmirror_exec(dev_fd, x);
	*ns = now_ns() - t0;
	return ret;
}

static uint64_t retries(const struct drm_hmirror_ctx_stats *s)
{
	return s->retries_stale + s->retries_busy + s->retries_waited;
}

/* ---- latency: NOP, device fault per backend, CPU fault, interleaved ----- */

/*
 * The stages of one faulting command.  Each is a duration on one clock, or
 * a device duration less a guest duration covering part of it in real
 * time: no timestamp of one clock is ever compared with the other's.  They
 * sum to the end-to-end time exactly (the terms cancel).
 */
enum stage {
	ST_SUBMIT_COMPLETE,	/* guest ioctl - device (done - fetch) */
	ST_DETECT,		/* device: fetch -> fault record */
	ST_ROUND_TRIP,		/* device (fault -> answer) - guest service */
	ST_SERVICE,		/* guest: the driver's fault service */
	ST_RESUME,		/* device: answer -> completion */
	ST_COUNT
};

static const struct {
	const char *key, *label, *clock;
} stage_info[ST_COUNT] = {
	{ "submit_complete", "submission + completion", "guest - device" },
	{ "device_detect", "device: fetch -> fault", "device" },
	{ "fault_to_answer_less_service", "device->driver->device", "device - guest" },
	{ "driver_service", "driver service", "guest" },
	{ "device_resume", "device: answer -> done", "device" },
};

static void split_stages(int64_t total, const struct drm_hmirror_exec *x,
			 int64_t st[ST_COUNT])
{
	st[ST_SUBMIT_COMPLETE] = total - (int64_t)(x->t_done - x->t_submit);
	st[ST_DETECT] = (int64_t)(x->t_fault - x->t_submit);
	st[ST_ROUND_TRIP] = (int64_t)(x->t_answer - x->t_fault) -
			    (int64_t)x->service_ns;
	st[ST_SERVICE] = (int64_t)x->service_ns;
	st[ST_RESUME] = (int64_t)(x->t_done - x->t_answer);
}

struct backend_run {
	const char *name;
	uint32_t id;
	struct series fault, mirrored, cost, mirrored_sc, stage[ST_COUNT];
	struct series cpu_same_iter, warm_same_iter, nop_same_iter;	/* plot */
	size_t dropped;		/* pairs without exactly 1 then 0 faults */
	uint64_t faults, retries;
	int64_t last_fault, last_mirrored;	/* -1: none this iteration */
};

/*
 * A fresh mapping of @mfd's page: CHECKSUM (one fault), then the same
 * command on the mirrored page.  A pair that did not fault exactly once
 * and then not at all is counted as dropped, not sampled.
 */
static int fault_pair(struct backend_run *b, int mfd, bool keep)
{
	struct drm_hmirror_ctx_stats s0, s1;
	struct drm_hmirror_exec xf, xm;
	int64_t tf, tm, st[ST_COUNT];
	uint8_t *p;
	int ret;

	b->last_fault = b->last_mirrored = -1;
	ret = set_backend(b->id);
	if (!ret)
		ret = hmirror_get_ctx_stats(dev_fd, &s0);
	if (ret)
		return ret;
	p = map_fd(mfd, PAGE);
	if (!p)
		return -errno;
	ret = timed_checksum(p, 8, &xf, &tf);
	if (!ret)
		ret = timed_checksum(p, 8, &xm, &tm);
	munmap(p, PAGE);
	if (!ret)
		ret = hmirror_get_ctx_stats(dev_fd, &s1);
	if (ret)
		return ret;
	if (xf.result != xm.result) {
		fprintf(stderr, "hmirror-bench: checksum %#" PRIx64 " then %#" PRIx64
			" of the same page\n", (uint64_t)xf.result, (uint64_t)xm.result);
		return -EIO;
	}
	if (!keep)
		return 0;
	b->faults += s1.faults - s0.faults;
	b->retries += retries(&s1) - retries(&s0);
	if (xf.faults != 1 || xm.faults != 0) {
		b->dropped++;
		return 0;
	}
	split_stages(tf, &xf, st);
	for (int s = 0; s < ST_COUNT; s++)
		if (push(&b->stage[s], st[s]))
			return -ENOMEM;
	if (push(&b->fault, tf) || push(&b->mirrored, tm) ||
	    push(&b->cost, tf - tm) ||
	    push(&b->mirrored_sc, tm - (int64_t)(xm.t_done - xm.t_submit)))
		return -ENOMEM;
	b->last_fault = tf;
	b->last_mirrored = tm;
	return 0;
}

/* The CPU's minor fault: first touch of a fresh mapping of @mfd's page. */
static int cpu_fault(int mfd, int64_t *ns)
{
	uint8_t *p = map_fd(mfd, PAGE);
	volatile uint8_t sink;
	int64_t t0;

	if (!p)
		return -errno;
	t0 = now_ns();
	sink = p[0];
	*ns = now_ns() - t0;
	(void)sink;
	munmap(p, PAGE);
	return 0;
}

/*
 * Two CPU minor faults in a row: *first right after whatever ran before
 * (device work: the task slept, the host ran others, caches went cold),
 * *warm right after the first.  Under TCG on a loaded host they differ
 * several times over; both are reported (benchmarks.rst).
 */
static int cpu_faults(int mfd, int64_t *first, int64_t *warm)
{
	int ret = cpu_fault(mfd, first);

	return ret ? ret : cpu_fault(mfd, warm);
}

static int nop_round_trip(int64_t *ns)
{
	uint64_t fence;
	int64_t t0 = now_ns();
	int ret = hmirror_submit_nop(dev_fd, 0, 1, DRM_HMIRROR_NOP_WAIT, &fence);

	*ns = now_ns() - t0;
	return ret;
}

/*
 * The floor of every ioctl-submitted command: a system call that does no
 * work, and an ioctl through the same DRM dispatch as SUBMIT_NOP that does
 * no work either (GET_INFO copies a few fields out).
 */
static int syscall_floor(int64_t *sys_ns, int64_t *ioctl_ns)
{
	struct drm_hmirror_info info;
	int64_t t0 = now_ns();
	int ret;

	(void)getppid();
	*sys_ns = now_ns() - t0;
	t0 = now_ns();
	ret = hmirror_get_info(dev_fd, &info);
	*ioctl_ns = now_ns() - t0;
	return ret;
}

static void report_backend(struct backend_run *b, int64_t cpu_p50)
{
	struct dist fault = summarize(&b->fault), mir = summarize(&b->mirrored);
	struct dist cost = summarize(&b->cost), msc = summarize(&b->mirrored_sc);
	struct dist st[ST_COUNT];
	int64_t mean_sum = 0;

	printf("%s backend: %zu fault samples (%zu dropped), %" PRIu64 " faults serviced, %"
	       PRIu64 " retries (%.4f per fault)\n", b->name, fault.n, b->dropped,
	       b->faults, b->retries, div_or_nan(b->retries, b->faults));
	print_dist("device fault, end to end", &fault, cpu_p50);
	print_dist("same command, page already mirrored", &mir, cpu_p50);
	print_dist("fault cost (per sample: fault - mirrored)", &cost, cpu_p50);
	print_dist("  mirrored: submission + completion", &msc, 0);
	printf("  stages of each fault sample (they sum to its end to end):\n");
	printf("    %-28s %10s %10s %10s %9s  %s\n", "stage", "p50 us", "mean us",
	       "min us", "negative", "clock");
	for (int s = 0; s < ST_COUNT; s++) {
		st[s] = summarize(&b->stage[s]);
		mean_sum += st[s].mean;
		printf("    %-28s %10.1f %10.1f %10.1f %9zu  %s\n",
		       stage_info[s].label, st[s].p50 / 1e3, st[s].mean / 1e3,
		       st[s].min / 1e3, st[s].negatives, stage_info[s].clock);
	}
	printf("    sum of the stage means %.1f us, mean end to end %.1f us "
	       "(medians do not add up; means do, up to rounding)\n",
	       mean_sum / 1e3, fault.mean / 1e3);
	print_histogram("device fault, end to end", &b->fault);

	fprintf(json, "    \"%s\": {\"dropped\": %zu, \"faults\": %" PRIu64
		", \"retries\": %" PRIu64 ",\n      ", b->name, b->dropped,
		b->faults, b->retries);
	json_dist("end_to_end", &fault, ",\n      ");
	json_dist("mirrored", &mir, ",\n      ");
	json_dist("fault_cost", &cost, ",\n      ");
	json_dist("mirrored_submit_complete", &msc, ",\n      \"stages\": {\n        ");
	for (int s = 0; s < ST_COUNT; s++)
		json_dist(stage_info[s].key, &st[s],
			  s + 1 < ST_COUNT ? ",\n        " : "}}");
}

static int bench_latency(FILE *samples)
{
	struct backend_run be[2] = {
		{ .name = "gup", .id = DRM_HMIRROR_BACKEND_GUP },
		{ .name = "hmm", .id = DRM_HMIRROR_BACKEND_HMM },
	};
	struct series nop = { 0 }, cpu = { 0 }, warm = { 0 };
	struct series sys = { 0 }, nul = { 0 };
	struct dist dn, dc, dw, ds, di;
	int mfd = populated_memfd(1), ret = 0;

	if (mfd < 0)
		return -errno;
	for (unsigned int i = 0; i < iters + WARMUP && !ret; i++) {
		bool keep = i >= WARMUP;
		int64_t tn = 0, tc = 0, tw = 0, ts = 0, ti = 0;

		/* Rotate the order so no part always follows another. */
		for (unsigned int k = 0; k < 5 && !ret; k++) {
			unsigned int part = (i + k) % 5;

			switch (part) {
			case 0:
				ret = nop_round_trip(&tn);
				break;
			case 1:
			case 2:
				ret = fault_pair(&be[part - 1], mfd, keep);
				break;
			case 3:
				ret = cpu_faults(mfd, &tc, &tw);
				break;
			case 4:
				ret = syscall_floor(&ts, &ti);
				break;
			}
		}
		if (ret || !keep)
			continue;
		if (push(&nop, tn) || push(&cpu, tc) || push(&warm, tw) ||
		    push(&sys, ts) || push(&nul, ti))
			ret = -ENOMEM;
		for (int j = 0; j < 2; j++)
			if (be[j].last_fault >= 0 &&
			    (push(&be[j].cpu_same_iter, tc) || push(&be[j].warm_same_iter, tw) ||
			     push(&be[j].nop_same_iter, tn)))
				ret = -ENOMEM;
	}
	close(mfd);
	if (ret)
		return ret;
	/* One block per backend: gnuplot's smooth wants them contiguous. */
	for (int j = 0; j < 2 && samples; j++)
		for (size_t k = 0; k < be[j].fault.n; k++)
			fprintf(samples, "%s %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64
				" %" PRId64 "\n", be[j].name, be[j].fault.v[k],
				be[j].cpu_same_iter.v[k], be[j].mirrored.v[k],
				be[j].nop_same_iter.v[k], be[j].warm_same_iter.v[k]);

	dn = summarize(&nop);
	dc = summarize(&cpu);
	dw = summarize(&warm);
	ds = summarize(&sys);
	di = summarize(&nul);
	printf("4 KiB latency, %u iterations after %u warm-up ones, each: NOP, gup pair, hmm pair, "
	       "2 CPU faults, system call + null ioctl (order rotated)\n", iters, WARMUP);
	print_dist("baseline: CPU minor fault, after device work", &dc, 0);
	print_dist("  CPU minor fault, warm (right after that)", &dw, 0);
	print_dist("NOP round trip (SUBMIT_NOP, WAIT, 1 NOP)", &dn, dc.p50);
	print_dist("floor: system call (getppid)", &ds, dc.p50);
	print_dist("floor: null ioctl (GET_INFO, same DRM dispatch)", &di, dc.p50);
	print_histogram("CPU minor fault after device work", &cpu);
	print_histogram("CPU minor fault, warm", &warm);
	fprintf(json, "  \"latency\": {\n    ");
	json_dist("cpu_minor_fault", &dc, ",\n    ");
	json_dist("cpu_minor_fault_warm", &dw, ",\n    ");
	json_dist("nop_round_trip", &dn, ",\n    ");
	json_dist("syscall_getppid", &ds, ",\n    ");
	json_dist("null_ioctl_get_info", &di, ",\n");
	for (int j = 0; j < 2; j++) {
		report_backend(&be[j], dc.p50);
		fprintf(json, j ? "\n  },\n" : ",\n");
	}

	{
		struct dist g = summarize(&be[0].fault), h = summarize(&be[1].fault);
		struct dist gc = summarize(&be[0].cost), hc = summarize(&be[1].cost);

		ratio.nop_vs_cpu_fault = div_or_nan(dn.p50, dc.p50);
		ratio.null_ioctl_vs_cpu_fault = div_or_nan(di.p50, dc.p50);
		ratio.syscall_vs_cpu_fault = div_or_nan(ds.p50, dc.p50);
		ratio.fault_vs_cpu_fault = div_or_nan(g.p50, dc.p50);
		ratio.fault_hmm_vs_cpu_fault = div_or_nan(h.p50, dc.p50);
		ratio.fault_cost_vs_cpu_fault = div_or_nan(gc.p50, dc.p50);
		ratio.fault_cost_hmm_vs_cpu_fault = div_or_nan(hc.p50, dc.p50);
		ratio.nop_vs_cpu_fault_warm = div_or_nan(dn.p50, dw.p50);
		ratio.fault_vs_cpu_fault_warm = div_or_nan(g.p50, dw.p50);
		ratio.fault_cost_vs_cpu_fault_warm = div_or_nan(gc.p50, dw.p50);
		SUMMARY("CPU minor fault, 4 KiB page-cache page         %9.1f us  (warm: %.1f us; "
			"device x against warm: NOP %.1f, fault %.1f, fault cost %.1f)",
			dc.p50 / 1e3, dw.p50 / 1e3, ratio.nop_vs_cpu_fault_warm,
			ratio.fault_vs_cpu_fault_warm, ratio.fault_cost_vs_cpu_fault_warm);
		SUMMARY("NOP round trip                                 %9.1f us  x%.2f",
			dn.p50 / 1e3, ratio.nop_vs_cpu_fault);
		SUMMARY("  floor: null ioctl %.1f us x%.2f, system call %.1f us x%.2f",
			di.p50 / 1e3, ratio.null_ioctl_vs_cpu_fault, ds.p50 / 1e3,
			ratio.syscall_vs_cpu_fault);
		SUMMARY("device fault, gup: end to end                  %9.1f us  x%.2f",
			g.p50 / 1e3, ratio.fault_vs_cpu_fault);
		SUMMARY("                   fault cost (- mirrored)     %9.1f us  x%.2f",
			gc.p50 / 1e3, ratio.fault_cost_vs_cpu_fault);
		SUMMARY("device fault, hmm: end to end                  %9.1f us  x%.2f",
			h.p50 / 1e3, ratio.fault_hmm_vs_cpu_fault);
		SUMMARY("                   fault cost (- mirrored)     %9.1f us  x%.2f",
			hc.p50 / 1e3, ratio.fault_cost_hmm_vs_cpu_fault);
		SUMMARY("retries per fault, no other load: gup %.4f, hmm %.4f",
			div_or_nan(be[0].retries, be[0].faults),
			div_or_nan(be[1].retries, be[1].faults));
	}
	for (int j = 0; j < 2; j++) {
		series_free(&be[j].fault);
		series_free(&be[j].mirrored);
		series_free(&be[j].cost);
		series_free(&be[j].mirrored_sc);
		series_free(&be[j].cpu_same_iter);
		series_free(&be[j].warm_same_iter);
		series_free(&be[j].nop_same_iter);
		for (int s = 0; s < ST_COUNT; s++)
			series_free(&be[j].stage[s]);
	}
	series_free(&nop);
	series_free(&cpu);
	series_free(&warm);
	series_free(&sys);
	series_free(&nul);
	return 0;
}

/* ---- batches: the device and the CPU checksumming n pages -------------- */

struct batch_row {
	struct series dev, dev_mirrored, cpu, cpu_mapped;
	unsigned int reps, one_fault, max_faults, pmd_mapped;
};

/*
 * The device's side: CHECKSUM of @len bytes at @p (fresh mapping: faults),
 * then again (mirrored).  *sum: the result.
 */
static int device_batch(struct batch_row *r, const uint8_t *p, size_t len,
			uint64_t *sum)
{
	struct drm_hmirror_exec xf, xm;
	int64_t tf, tm;
	int ret;

	ret = timed_checksum(p, len, &xf, &tf);
	if (!ret)
		ret = timed_checksum(p, len, &xm, &tm);
	if (ret)
		return ret;
	if (xf.result != xm.result || xm.faults) {
		fprintf(stderr, "hmirror-bench: mirrored checksum differs or faulted\n");
		return -EIO;
	}
	r->one_fault += xf.faults == 1;
	r->max_faults = xf.faults > r->max_faults ? xf.faults : r->max_faults;
	*sum = xf.result;
	return push(&r->dev, tf) || push(&r->dev_mirrored, tm) ? -ENOMEM : 0;
}

/* The CPU's side: the same checksum on a fresh mapping, then again. */
static int cpu_batch(struct batch_row *r, const uint8_t *p, size_t len,
		     uint64_t *sum)
{
	int64_t t0, t1, t2;
	uint64_t again;

	t0 = now_ns();
	*sum = hmirror_checksum_cpu(p, len);
	t1 = now_ns();
	again = hmirror_checksum_cpu(p, len);
	t2 = now_ns();
	if (again != *sum)
		return -EIO;
	return push(&r->cpu, t1 - t0) || push(&r->cpu_mapped, t2 - t1) ? -ENOMEM : 0;
}

static void batch_free(struct batch_row *r)
{
	series_free(&r->dev);
	series_free(&r->dev_mirrored);
	series_free(&r->cpu);
	series_free(&r->cpu_mapped);
}

static void batch_print_header(void)
{
	printf("  %7s %6s %11s %11s %11s %11s %7s %7s\n", "pages", "1fault",
	       "dev fault", "dev mirror", "CPU fault", "CPU mapped", "ratio",
	       "cost r");
}

/* One row (per-page p50s, ns); returns device fault / CPU fault. */
static double batch_report(const char *label, unsigned int pages,
			   struct batch_row *r, bool last)
{
	double d = summarize(&r->dev).p50 / (double)pages;
	double dm = summarize(&r->dev_mirrored).p50 / (double)pages;
	double c = summarize(&r->cpu).p50 / (double)pages;
	double cm = summarize(&r->cpu_mapped).p50 / (double)pages;
	struct series dcost = { 0 }, ccost = { 0 };
	double dc, cc;

	/* Fault costs: per-sample differences, as for single pages. */
	for (size_t i = 0; i < r->dev.n; i++)
		if (push(&dcost, r->dev.v[i] - r->dev_mirrored.v[i]) ||
		    push(&ccost, r->cpu.v[i] - r->cpu_mapped.v[i]))
			break;
	dc = summarize(&dcost).p50 / (double)pages;
	cc = summarize(&ccost).p50 / (double)pages;
	series_free(&dcost);
	series_free(&ccost);
	printf("  %7s %3u/%-3u %11.0f %11.0f %11.0f %11.0f %7.2f %7.2f\n", label,
	       r->one_fault, r->reps, d, dm, c, cm, div_or_nan(d, c),
	       div_or_nan(dc, cc));
	fprintf(json, "    {\"row\": \"%s\", \"pages\": %u, \"reps\": %u, \"one_fault\": %u, "
		"\"max_faults\": %u, ", label, pages, r->reps, r->one_fault, r->max_faults);
	json_num("device_fault_ns_per_page", d, ", ");
	json_num("device_mirrored_ns_per_page", dm, ", ");
	json_num("cpu_fault_ns_per_page", c, ", ");
	json_num("cpu_mapped_ns_per_page", cm, ", ");
	json_num("device_fault_cost_ns_per_page", dc, ", ");
	json_num("cpu_fault_cost_ns_per_page", cc, "}");
	fprintf(json, last ? "\n" : ",\n");
	return div_or_nan(d, c);
}

static unsigned int batch_reps(void)
{
	return iters / 10 > 9 ? iters / 10 : 9;
}

/* @reps repetitions of @pages pages, device and CPU alternating. */
static int batch_row_run(int mfd, unsigned int pages, struct batch_row *r)
{
	size_t len = pages * PAGE;
	int ret = 0;

	for (unsigned int i = 0; i < r->reps && !ret; i++) {
		uint64_t dsum = 0, csum = 0;

		for (unsigned int k = 0; k < 2 && !ret; k++) {
			uint8_t *p = map_fd(mfd, len);

			if (!p)
				return -errno;
			if ((i + k) % 2)
				ret = cpu_batch(r, p, len, &csum);
			else
				ret = device_batch(r, p, len, &dsum);
			munmap(p, len);
		}
		if (!ret && dsum != csum) {
			fprintf(stderr, "hmirror-bench: device checksum %#" PRIx64
				", CPU %#" PRIx64 "\n", dsum, csum);
			ret = -EIO;
		}
	}
	return ret;
}

static void batch_summary(const char *backend, struct batch_row *r, double rr)
{
	SUMMARY("checksum of 512 pages, fresh mapping, %s: device %.0f ns/page, "
		"CPU %.0f ns/page  x%.2f (one fault in %u/%u)", backend,
		summarize(&r->dev).p50 / 512.0, summarize(&r->cpu).p50 / 512.0,
		rr, r->one_fault, r->reps);
}

/*
 * Every size with the gup backend, then 512 pages again with the hmm one
 * (its own CPU samples): the backends fault a run differently (GUP looks
 * up and references page by page, hmm_range_fault() walks the tables).
 */
static int bench_batch(void)
{
	static const unsigned int sizes[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512 };
	const unsigned int nsizes = sizeof(sizes) / sizeof(sizes[0]);
	unsigned int reps = batch_reps();
	int mfd = populated_memfd(512), ret = 0;

	if (mfd < 0)
		return -errno;
	printf("per page (ns, p50 of %u) against batch size, gup backend (and 512 pages with "
	       "the hmm backend): the device and the CPU checksum the same pages of a fresh "
	       "mapping (fault), then again (mirrored / mapped):\n", reps);
	batch_print_header();
	fprintf(json, "  \"batch\": [\n");
	for (unsigned int s = 0; s < nsizes && !ret; s++) {
		struct batch_row r = { .reps = reps };
		char label[16];
		double rr;

		ret = batch_row_run(mfd, sizes[s], &r);
		if (!ret) {
			snprintf(label, sizeof(label), "%u", sizes[s]);
			rr = batch_report(label, sizes[s], &r, false);
			if (sizes[s] == 512) {
				ratio.per_page_512_vs_cpu = rr;
				batch_summary("gup", &r, rr);
			}
		}
		batch_free(&r);
	}
	if (!ret)
		ret = set_backend(DRM_HMIRROR_BACKEND_HMM);
	if (!ret) {
		struct batch_row r = { .reps = reps };

		ret = batch_row_run(mfd, 512, &r);
		if (!ret) {
			ratio.per_page_512_hmm_vs_cpu =
				batch_report("512 hmm", 512, &r, true);
			batch_summary("hmm", &r, ratio.per_page_512_hmm_vs_cpu);
		}
		batch_free(&r);
	}
	/* The rows after this one (THP, invalidation...) use gup. */
	if (!ret)
		ret = set_backend(DRM_HMIRROR_BACKEND_GUP);
	fprintf(json, "  ],\n");
	close(mfd);
	return ret;
}

/* ---- a 2 MiB shmem THP, the same work on both sides --------------------- */

static const char shmem_thp_knob[] = "/sys/kernel/mm/transparent_hugepage/shmem_enabled";

/* The selected word of a "a [b] c" sysfs knob into @out; 0 or -errno. */
static int read_knob(const char *path, char *out, size_t len)
{
	char buf[128], *l, *r;
	FILE *f = fopen(path, "re");

	if (!f)
		return -errno;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	l = strchr(buf, '[');
	r = l ? strchr(l, ']') : NULL;
	if (!r || (size_t)(r - l) >= len)
		return -EINVAL;
	memcpy(out, l + 1, r - l - 1);
	out[r - l - 1] = 0;
	return 0;
}

static int write_knob(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static void thp_unavailable(const char *why)
{
	printf("2 MiB THP row: not available: %s\n", why);
	fprintf(json, "  \"thp\": {\"available\": false, \"reason\": \"%s\"},\n", why);
	SUMMARY("2 MiB THP: not available (%s)", why);
}

/* The row itself, with shmem's THP policy at "advise". */
static int thp_row(int mfd, unsigned int reps)
{
	struct batch_row r = { .reps = reps };
	unsigned int device_huge = 0;
	uint8_t *p = map_fd_2m(mfd);
	static uint8_t snap[512];
	int ret = 0;

	if (!p)
		return -errno;
	/* Populate through a MADV_HUGEPAGE mapping: shmem allocates a THP. */
	memset(p, 0x5a, HUGE_2M);
	if (smaps_kb(p, "ShmemPmdMapped") != 2048) {
		munmap(p, HUGE_2M);
		thp_unavailable("shmem did not allocate a huge page");
		return 0;
	}
	munmap(p, HUGE_2M);

	for (unsigned int i = 0; i < reps && !ret; i++) {
		uint64_t dsum = 0, csum = 0;

		for (unsigned int k = 0; k < 2 && !ret; k++) {
			bool cpu = (i + k) % 2;

			p = map_fd_2m(mfd);
			if (!p) {
				ret = -errno;
				break;
			}
			ret = cpu ? cpu_batch(&r, p, HUGE_2M, &csum) :
				    device_batch(&r, p, HUGE_2M, &dsum);
			/* Both sides' mappings must be PMD-mapped THPs. */
			if (!ret && smaps_kb(p, "ShmemPmdMapped") == 2048)
				r.pmd_mapped++;
			if (!ret && !cpu && !hmirror_snapshot(dev_fd, (uintptr_t)p, 512, snap)) {
				unsigned int h = 0;

				for (unsigned int j = 0; j < 512; j++)
					h += !!(snap[j] & DRM_HMIRROR_SNAP_HUGE);
				device_huge += h == 512;
			}
			munmap(p, HUGE_2M);
		}
		if (!ret && dsum != csum)
			ret = -EIO;
	}
	if (!ret && r.pmd_mapped != 2 * reps) {
		char why[96];

		snprintf(why, sizeof(why), "%u of %u mappings were not PMD-mapped",
			 2 * reps - r.pmd_mapped, 2 * reps);
		thp_unavailable(why);
	} else if (!ret) {
		printf("2 MiB shmem THP (every mapping checked ShmemPmdMapped 2048 kB; the device "
		       "mapped it with 2 MiB entries %u/%u times), per page:\n", device_huge, reps);
		batch_print_header();
		fprintf(json, "  \"thp\": {\"available\": true, \"device_huge_mappings\": %u, \"row\":\n",
			device_huge);
		ratio.thp_vs_cpu = batch_report("2M THP", 512, &r, true);
		fprintf(json, "  },\n");
		SUMMARY("checksum of a 2 MiB shmem THP, fresh mapping: device %.0f us, CPU %.0f us  "
			"x%.2f (one fault in %u/%u)", summarize(&r.dev).p50 / 1e3,
			summarize(&r.cpu).p50 / 1e3, ratio.thp_vs_cpu, r.one_fault, r.reps);
	}
	batch_free(&r);
	return ret;
}

static int bench_thp(void)
{
	char was[32];
	int mfd, ret;

	if (read_knob(shmem_thp_knob, was, sizeof(was))) {
		thp_unavailable("no shmem THP policy in sysfs");
		return 0;
	}
	if (write_knob(shmem_thp_knob, "advise")) {
		thp_unavailable("cannot set shmem_enabled to advise");
		return 0;
	}
	mfd = memfd_create("hmirror-bench-thp", MFD_CLOEXEC);
	if (mfd < 0 || ftruncate(mfd, HUGE_2M))
		ret = -errno;
	else
		ret = thp_row(mfd, batch_reps());
	if (mfd >= 0)
		close(mfd);
	if (write_knob(shmem_thp_knob, was))
		fprintf(stderr, "hmirror-bench: could not restore %s to %s\n",
			shmem_thp_knob, was);
	return ret;
}

/* ---- invalidation: munmap of a mirrored range vs an unmirrored one ------ */

static int timed_munmap(size_t len, bool mirror, int64_t *ns, uint64_t *flushes)
{
	struct drm_hmirror_ctx_stats s0, s1;
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	int64_t t0;
	int ret;

	if (p == MAP_FAILED)
		return -errno;
	ret = mirror ? hmirror_prefetch(dev_fd, (uintptr_t)p, len, 1) : 0;
	if (!ret)
		ret = hmirror_get_ctx_stats(dev_fd, &s0);
	if (ret) {
		munmap(p, len);
		return ret;
	}
	t0 = now_ns();
	munmap(p, len);
	*ns = now_ns() - t0;
	ret = hmirror_get_ctx_stats(dev_fd, &s1);
	*flushes += s1.device_flushes - s0.device_flushes;
	return ret;
}

/*
 * The driver's tlb_shootdown parameter ("Y"/"N"); *@was gets the old value.
 * -ENOENT on a module without it.
 */
static int shootdown_param(const char *set, char *was)
{
	const char *path = "/sys/module/hmirror/parameters/tlb_shootdown";
	FILE *f = fopen(path, "re");
	int c = f ? fgetc(f) : EOF;

	if (f)
		fclose(f);
	if (c == EOF)
		return -ENOENT;
	if (was)
		*was = (char)c;
	f = fopen(path, "we");
	if (!f)
		return -errno;
	fprintf(f, "%s\n", set);
	return fclose(f) ? -EIO : 0;
}

/*
 * munmap of a range never mirrored, mirrored (the device TLB flushed the
 * driver's default way: by shootdown through shared memory where the
 * device can) and mirrored with the flush forced to a TLB_INVAL command,
 * rotated.
 */
static int bench_inval(void)
{
	static const size_t sizes[] = { 1, 16, 256 };
	static const char *const way[3] = { "never mirrored", "mirrored",
					    "by TLB_INVAL" };
	unsigned int n = iters / 5 > 9 ? iters / 5 : 9;
	char was = 'Y';
	int ret = shootdown_param("Y", &was);
	bool command = !ret;	/* the parameter exists: three columns */

	ret = 0;
	printf("invalidation: munmap of a range never mirrored, mirrored, and mirrored with "
	       "the device TLB flushed by a TLB_INVAL command (tlb_shootdown=N), rotated "
	       "(%u each):\n", n);
	fprintf(json, "  \"invalidation\": [\n");
	for (unsigned int s = 0; s < 3 && !ret; s++) {
		struct series t[3] = { { 0 } };
		uint64_t fl[3] = { 0 };
		struct dist d[3];

		for (unsigned int i = 0; i < n && !ret; i++) {
			for (unsigned int k = 0; k < 3 && !ret; k++) {
				unsigned int w = (i + k) % 3;
				int64_t ns = 0;

				if (w == 2 && !command)
					continue;
				if (command)
					ret = shootdown_param(w == 2 ? "N" : "Y", NULL);
				if (!ret)
					ret = timed_munmap(sizes[s] * PAGE, w > 0, &ns, &fl[w]);
				if (!ret && push(&t[w], ns))
					ret = -ENOMEM;
			}
		}
		if (!ret) {
			for (int w = 0; w < 3; w++)
				d[w] = summarize(&t[w]);
			ratio.munmap_vs_not[s] = div_or_nan(d[1].p50, d[0].p50);
			ratio.munmap_command_vs_not[s] = div_or_nan(d[2].p50, d[0].p50);
			SUMMARY("munmap of %3zu page%s: mirrored %7.1f us, never mirrored %7.1f us  x%.2f"
				"  (by TLB_INVAL %.1f us x%.2f)",
				sizes[s], sizes[s] > 1 ? "s" : " ", d[1].p50 / 1e3, d[0].p50 / 1e3,
				ratio.munmap_vs_not[s], d[2].p50 / 1e3,
				ratio.munmap_command_vs_not[s]);
			printf("  %4zu pages:", sizes[s]);
			for (int w = 0; w < 3; w++)
				printf(" %s p50 %.1f us (%.2f device TLB flushes per munmap)%s", way[w],
				       d[w].p50 / 1e3, t[w].n ? (double)fl[w] / t[w].n : 0.0,
				       w < 2 ? "," : "\n");
			fprintf(json, "    {\"pages\": %zu, \"device_flushes_mirrored\": %" PRIu64
				", \"device_flushes_baseline\": %" PRIu64
				", \"device_flushes_tlb_inval\": %" PRIu64 ", ",
				sizes[s], fl[1], fl[0], fl[2]);
			json_dist("mirrored", &d[1], ", ");
			json_dist("mirrored_tlb_inval", &d[2], ", ");
			json_dist("baseline", &d[0], s == 2 ? "}\n" : "},\n");
		}
		for (int w = 0; w < 3; w++)
			series_free(&t[w]);
	}
	fprintf(json, "  ],\n");
	if (command) {
		char v[2] = { was, 0 };
		int r = shootdown_param(v, NULL);

		ret = ret ? ret : r;
	}
	return ret;
}

/* ---- retries under unrelated invalidations, both backends --------------- */

static atomic_bool churn_stop;
static atomic_ulong churned;

static void *churn(void *arg)
{
	(void)arg;
	while (!atomic_load(&churn_stop)) {
		void *p = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

		if (p != MAP_FAILED)
			munmap(p, 16 * PAGE);
		atomic_fetch_add(&churned, 1);
	}
	return NULL;
}

struct retry_count {
	uint64_t faults, stale, busy, waited, invalidations;
};

static int retry_fault(int mfd, uint32_t backend, struct retry_count *c)
{
	struct drm_hmirror_ctx_stats s0, s1;
	struct drm_hmirror_exec x;
	uint8_t *p;
	int64_t ns;
	int ret;

	ret = set_backend(backend);
	if (!ret)
		ret = hmirror_get_ctx_stats(dev_fd, &s0);
	if (ret)
		return ret;
	p = map_fd(mfd, PAGE);
	if (!p)
		return -errno;
	ret = timed_checksum(p, 8, &x, &ns);
	munmap(p, PAGE);
	if (!ret)
		ret = hmirror_get_ctx_stats(dev_fd, &s1);
	if (ret)
		return ret;
	c->faults += s1.faults - s0.faults;
	c->stale += s1.retries_stale - s0.retries_stale;
	c->busy += s1.retries_busy - s0.retries_busy;
	c->waited += s1.retries_waited - s0.retries_waited;
	c->invalidations += s1.invalidations - s0.invalidations;
	return 0;
}

static int bench_retry(void)
{
	static const char *const names[2] = { "gup", "hmm" };
	struct retry_count c[2] = { 0 };
	unsigned int n = iters / 2 ? iters / 2 : 1;
	int mfd = populated_memfd(1), ret = 0;
	double rate[2];
	pthread_t t;

	if (mfd < 0)
		return -errno;
	atomic_store(&churn_stop, false);
	atomic_store(&churned, 0);
	if (pthread_create(&t, NULL, churn, NULL)) {
		close(mfd);
		return -EAGAIN;
	}
	for (unsigned int i = 0; i < n && !ret; i++)
		for (unsigned int k = 0; k < 2 && !ret; k++)
			ret = retry_fault(mfd, (i + k) % 2 ? DRM_HMIRROR_BACKEND_HMM :
					  DRM_HMIRROR_BACKEND_GUP, &c[(i + k) % 2]);
	atomic_store(&churn_stop, true);
	pthread_join(t, NULL);
	close(mfd);
	if (ret)
		return ret;
	printf("retries while another thread mmaps/munmaps unrelated memory (%lu times), "
	       "backends alternating:\n", atomic_load(&churned));
	fprintf(json, "  \"retry_unrelated\": {\"unrelated_ops\": %lu", atomic_load(&churned));
	for (int b = 0; b < 2; b++) {
		rate[b] = div_or_nan(c[b].stale + c[b].busy + c[b].waited, c[b].faults);
		printf("  %s: %.4f per fault (%" PRIu64 " faults; stale %" PRIu64 ", busy %" PRIu64
		       ", waited %" PRIu64 "; %" PRIu64 " invalidations seen)\n", names[b],
		       rate[b], c[b].faults, c[b].stale, c[b].busy, c[b].waited,
		       c[b].invalidations);
		fprintf(json, ", \"%s\": {\"faults\": %" PRIu64 ", \"stale\": %" PRIu64
			", \"busy\": %" PRIu64 ", \"waited\": %" PRIu64
			", \"invalidations\": %" PRIu64 ", ", names[b], c[b].faults,
			c[b].stale, c[b].busy, c[b].waited, c[b].invalidations);
		json_num("retries_per_fault", rate[b], "}");
	}
	fprintf(json, "},\n");
	SUMMARY("retries per fault, unrelated invalidations: gup %.4f, hmm %.4f",
		rate[0], rate[1]);
	return 0;
}

/* ---- COPY of 64 MiB already mirrored vs memcpy ------------------------- */

static double gib_s(int64_t ns)
{
	return ns > 0 ? (double)COPY_LEN / ns * 1e9 / (1u << 30) : NAN;
}

/*
 * The source and destination: 2 MiB-aligned, populated, kept apart by an
 * inaccessible 2 MiB so they stay two mappings (smaps tells their THPs).
 */
static uint8_t *map_copy_buffers(uint8_t **src, uint8_t **dst)
{
	size_t span = 2 * COPY_LEN + 3 * HUGE_2M;
	uint8_t *raw = mmap(NULL, span, PROT_NONE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint8_t *base;

	if (raw == MAP_FAILED)
		return NULL;
	base = (uint8_t *)(((uintptr_t)raw + HUGE_2M - 1) & ~(HUGE_2M - 1));
	*src = base;
	*dst = base + COPY_LEN + HUGE_2M;
	if (mmap(*src, COPY_LEN, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_POPULATE, -1, 0) == MAP_FAILED ||
	    mmap(*dst, COPY_LEN, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_POPULATE, -1, 0) == MAP_FAILED) {
		munmap(raw, span);
		return NULL;
	}
	return raw;
}

static int bench_copy(void)
{
	unsigned int reps = iters / 60 > 5 ? iters / 60 : 5;
	struct series dev = { 0 }, busy = { 0 }, cpu = { 0 };
	uint8_t *raw, *src, *dst;
	unsigned int faulted = 0;
	long src_thp_kb, dst_thp_kb;
	int ret = 0;

	raw = map_copy_buffers(&src, &dst);
	if (!raw) {
		ret = -errno;
		goto out;
	}
	for (size_t i = 0; i < COPY_LEN; i += 8)
		memcpy(src + i, &(uint64_t){ i * 0x9e3779b97f4a7c15ull }, 8);
	ret = hmirror_prefetch(dev_fd, (uintptr_t)src, COPY_LEN, 0);
	if (!ret)
		ret = hmirror_prefetch(dev_fd, (uintptr_t)dst, COPY_LEN, 1);
	/* THPs let the device map 2 MiB at a time: say how much was. */
	src_thp_kb = smaps_kb(src, "AnonHugePages");
	dst_thp_kb = smaps_kb(dst, "AnonHugePages");
	for (unsigned int i = 0; i < reps && !ret; i++) {
		for (unsigned int k = 0; k < 2 && !ret; k++) {
			int64_t t0 = now_ns();

			if ((i + k) % 2) {
				memcpy(dst, src, COPY_LEN);
				ret = push(&cpu, now_ns() - t0);
				continue;
			}
			struct drm_hmirror_exec x = {
				.op = DRM_HMIRROR_OP_COPY, .addr = (uintptr_t)dst,
				.buf = (uintptr_t)src, .len = COPY_LEN,
			};

			/* The first device copy proves itself: dst is zero before. */
			ret = hmirror_exec(dev_fd, &x);
			if (!ret)
				ret = push(&dev, now_ns() - t0) ||
				      push(&busy, (int64_t)(x.t_done - x.t_submit)) ? -ENOMEM : 0;
			faulted += x.faults != 0;
			if (!ret && memcmp(dst, src, COPY_LEN))
				ret = -EIO;
		}
	}
	if (!ret) {
		struct dist dd = summarize(&dev), db = summarize(&busy), dc = summarize(&cpu);

		ratio.copy_64m_guest_memcpy_vs_device = div_or_nan(dc.p50, dd.p50);
		printf("COPY of 64 MiB already mirrored (p50 of %u; %u device copies faulted; "
		       "THP-backed: source %ld KiB, destination %ld KiB):\n", reps, faulted,
		       src_thp_kb, dst_thp_kb);
		printf("  device COPY, end to end   %8.2f GiB/s (%.1f ms)\n", gib_s(dd.p50),
		       dd.p50 / 1e6);
		printf("  device busy (fetch->done) %8.2f GiB/s (%.1f ms)\n", gib_s(db.p50),
		       db.p50 / 1e6);
		printf("  baseline: in-guest memcpy %8.2f GiB/s (%.1f ms)\n", gib_s(dc.p50),
		       dc.p50 / 1e6);
		fprintf(json, "  \"copy_64m\": {\"reps\": %u, \"device_copies_faulted\": %u, "
			"\"src_anon_huge_kb\": %ld, \"dst_anon_huge_kb\": %ld, ", reps, faulted,
			src_thp_kb, dst_thp_kb);
		json_num("device_gib_s", gib_s(dd.p50), ", ");
		json_num("device_busy_gib_s", gib_s(db.p50), ", ");
		json_num("guest_memcpy_gib_s", gib_s(dc.p50), ",\n    ");
		json_dist("device_end_to_end", &dd, ", ");
		json_dist("device_busy", &db, ", ");
		json_dist("guest_memcpy", &dc, "},\n");
		SUMMARY("COPY of 64 MiB already mirrored: device %.2f GiB/s, in-guest memcpy "
			"%.2f GiB/s", gib_s(dd.p50), gib_s(dc.p50));
	}
out:
	if (raw)
		munmap(raw, 2 * COPY_LEN + 3 * HUGE_2M);
	series_free(&dev);
	series_free(&busy);
	series_free(&cpu);
	return ret;
}

/* ---- the test_hmm ABI: hmirror's compat node or the kernel's test_hmm --- */

/* The two columns of the comparison, as the -L labels name them. */
static const char *const compat_cols[2] = { "hmirror", "test_hmm" };

/*
 * The single-page fault through the test_hmm ABI: READ of one page of a
 * fresh mapping of a page-cache page (one fault), READ again (mirrored),
 * and the CPU's minor faults (cpu_faults()), per iteration, order
 * alternating.  The bounce buffer stays mapped (and, on hmirror,
 * mirrored) throughout.  The samples are appended to @state as "label
 * fault mirrored cpu cpu_warm" lines, so
 * a column can be measured in several rounds (the caller alternates the
 * two) and compat_report() compares them.
 */
#define MIGRATE_PAGES	512	/* 2 MiB per migration round */

/*
 * Migration through the test_hmm ABI: 2 MiB of written anonymous memory to
 * the device (the node reads the device's copy back, both do) and back,
 * timed; one "migrate:LABEL" line per round in @out.  Nothing when the
 * node has no device memory (-EOPNOTSUPP).
 */
static int bench_compat_migrate(int fd, const char *label, FILE *out,
				unsigned int *rounds)
{
	size_t len = (size_t)MIGRATE_PAGES * PAGE;
	unsigned int n = iters / 10 > 10 ? iters / 10 : 10;
	uint8_t *buf, *mirror;
	int ret = 0;

	buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	mirror = mmap(NULL, len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	*rounds = 0;
	if (buf == MAP_FAILED || mirror == MAP_FAILED) {
		ret = -errno;
		goto out;
	}
	for (unsigned int i = 0; i < n + 1 && !ret; i++) {
		uint64_t to = 0, back = 0;
		int64_t t0, t1, t2;

		memset(buf, 0x40 + i, len);
		t0 = now_ns();
		ret = hmirror_dmirror_migrate(fd, (uintptr_t)buf, mirror,
					      MIGRATE_PAGES, 1, &to);
		t1 = now_ns();
		if (ret == -EOPNOTSUPP && !i) {
			ret = 0;
			break;
		}
		if (!ret)
			ret = hmirror_dmirror_migrate(fd, (uintptr_t)buf, mirror,
						      MIGRATE_PAGES, 0, &back);
		t2 = now_ns();
		if (ret)
			break;
		/* The device's copy is what the CPU wrote. */
		if (to != MIGRATE_PAGES || mirror[len - 1] != 0x40 + i ||
		    buf[len / 2] != 0x40 + i) {
			ret = -EIO;
			break;
		}
		/* The first round maps and allocates: not kept. */
		if (i)
			fprintf(out, "migrate:%s %" PRId64 " %" PRId64 " %" PRIu64 " %d\n",
				label, t1 - t0, t2 - t1, back, MIGRATE_PAGES);
		*rounds += !!i;
	}
out:
	if (buf != MAP_FAILED)
		munmap(buf, len);
	if (mirror != MAP_FAILED)
		munmap(mirror, len);
	return ret;
}

static int bench_compat(const char *node, const char *label, const char *state)
{
	struct series fault = { 0 }, mir = { 0 }, cost = { 0 }, cpu = { 0 }, warm = { 0 };
	size_t dropped = 0;
	uint8_t *bounce = MAP_FAILED;
	int fd, mfd = -1, ret = 0;
	FILE *out = NULL;

	fd = open(node, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		fprintf(stderr, "hmirror-bench: %s: %s\n", node, strerror(errno));
		return ret;
	}
	mfd = populated_memfd(1);
	bounce = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	out = fopen(state, "ae");
	if (mfd < 0 || bounce == MAP_FAILED || !out) {
		ret = -errno;
		goto out;
	}
	for (unsigned int i = 0; i < iters + WARMUP && !ret; i++) {
		int64_t tf = -1, tm = -1, tc = -1, tw = -1, t0, t1, t2;

		for (unsigned int k = 0; k < 2 && !ret; k++) {
			uint64_t f1 = 0, f2 = 0;
			uint8_t *p;

			if ((i + k) % 2) {
				ret = cpu_faults(mfd, &tc, &tw);
				continue;
			}
			p = map_fd(mfd, PAGE);
			if (!p) {
				ret = -errno;
				break;
			}
			memset(bounce, 0, PAGE);
			t0 = now_ns();
			ret = hmirror_dmirror_read(fd, (uintptr_t)p, bounce, 1, &f1);
			t1 = now_ns();
			if (!ret)
				ret = hmirror_dmirror_read(fd, (uintptr_t)p, bounce, 1, &f2);
			t2 = now_ns();
			munmap(p, PAGE);
			if (!ret && bounce[PAGE - 1] != 0x5a)
				ret = -EIO;
			if (!ret && f1 == 1 && f2 == 0) {
				tf = t1 - t0;
				tm = t2 - t1;
			}
		}
		if (ret || i < WARMUP)
			continue;
		if (push(&cpu, tc) || push(&warm, tw))
			ret = -ENOMEM;
		if (tf < 0) {
			dropped++;
			continue;
		}
		if (push(&fault, tf) || push(&mir, tm) || push(&cost, tf - tm))
			ret = -ENOMEM;
		fprintf(out, "%s %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 "\n", label,
			tf, tm, tc, tw);
	}
	if (ret)
		goto out;
	{
		struct dist df = summarize(&fault), dm = summarize(&mir);
		struct dist dc = summarize(&cost), du = summarize(&cpu);
		struct dist dw = summarize(&warm);

		printf("test_hmm ABI on %s (%s): READ of 1 page, %zu samples (%zu dropped: "
		       "not 1 then 0 faults)\n", node, label, df.n, dropped);
		print_dist("baseline: CPU minor fault, after device work", &du, 0);
		print_dist("  CPU minor fault, warm (right after that)", &dw, 0);
		print_dist("READ, fault, end to end", &df, du.p50);
		print_dist("READ, page already mirrored", &dm, du.p50);
		print_dist("fault cost (per sample: fault - mirrored)", &dc, du.p50);
	}
	{
		unsigned int rounds;

		ret = bench_compat_migrate(fd, label, out, &rounds);
		if (!ret)
			printf("test_hmm ABI on %s (%s): %u migration rounds of %d pages%s\n",
			       node, label, rounds, MIGRATE_PAGES,
			       rounds ? "" : " (no device memory: not measured)");
	}
out:
	if (out && fclose(out) && !ret)
		ret = -EIO;
	if (bounce != MAP_FAILED)
		munmap(bounce, PAGE);
	if (mfd >= 0)
		close(mfd);
	close(fd);
	series_free(&fault);
	series_free(&mir);
	series_free(&cost);
	series_free(&cpu);
	series_free(&warm);
	return ret;
}

/* The two columns from @state, their ratios on stdout and as JSON. */
static int compat_report(const char *state)
{
	/* fault, mirrored, cost, cpu, cpu warm */
	struct series col[2][5] = { 0 }, mig[2][2] = { 0 };
	struct dist dmig[2][2];
	double mig_ratio[2] = { NAN, NAN };
	struct dist d[2][5];
	char label[32];
	int64_t tf, tm, tc, tw;
	double e2e, fc, norm;
	FILE *f = fopen(state, "re");
	int ret = 0;

	if (!f) {
		fprintf(stderr, "hmirror-bench: %s: %s\n", state, strerror(errno));
		return -errno;
	}
	while (!ret && fscanf(f, "%31s %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64,
			      label, &tf, &tm, &tc, &tw) == 5) {
		/* migrate:LABEL to-device-ns to-system-ns pages-back pages */
		for (int c = 0; c < 2; c++)
			if (!strncmp(label, "migrate:", 8) &&
			    !strcmp(label + 8, compat_cols[c]) &&
			    (push(&mig[c][0], tf) || push(&mig[c][1], tm)))
				ret = -ENOMEM;
		for (int c = 0; c < 2; c++)
			if (!strcmp(label, compat_cols[c]) &&
			    (push(&col[c][0], tf) || push(&col[c][1], tm) ||
			     push(&col[c][2], tf - tm) || push(&col[c][3], tc) ||
			     push(&col[c][4], tw)))
				ret = -ENOMEM;
	}
	fclose(f);
	for (int c = 0; c < 2; c++)
		for (int k = 0; k < 5; k++)
			d[c][k] = summarize(&col[c][k]);
	if (!ret && (!d[0][0].n || !d[1][0].n)) {
		fprintf(stderr, "hmirror-bench: %s lacks the %s column\n", state,
			d[0][0].n ? compat_cols[1] : compat_cols[0]);
		ret = -ENODATA;
	}
	if (!ret) {
		static const char *const rows[5] = {
			"READ with a fault", "READ, page mirrored", "fault cost",
			"CPU fault after device work", "CPU fault, warm",
		};

		e2e = div_or_nan(d[0][0].p50, d[1][0].p50);
		fc = div_or_nan(d[0][2].p50, d[1][2].p50);
		norm = div_or_nan(div_or_nan(d[0][0].p50, d[0][3].p50),
				  div_or_nan(d[1][0].p50, d[1][3].p50));
		printf("single-page fault through the test_hmm ABI, p50 (us) of %zu vs %zu samples:\n",
		       d[0][0].n, d[1][0].n);
		printf("  %-30s %10s %10s %7s\n", "", "hmirror", "test_hmm", "ratio");
		for (int k = 0; k < 5; k++)
			printf("  %-30s %10.1f %10.1f %7.2f\n", rows[k], d[0][k].p50 / 1e3,
			       d[1][k].p50 / 1e3, div_or_nan(d[0][k].p50, d[1][k].p50));
		printf("  READ with a fault, each over its own rounds' CPU fault: x%.2f\n", norm);
		for (int c = 0; c < 2; c++)
			for (int k = 0; k < 2; k++)
				dmig[c][k] = summarize(&mig[c][k]);
		/* MiB/s of the p50 round: 2 MiB each way. */
		for (int k = 0; k < 2; k++) {
			double mib = MIGRATE_PAGES * (double)PAGE / (1 << 20);
			double h = div_or_nan(mib * 1e9, dmig[0][k].p50);
			double t = div_or_nan(mib * 1e9, dmig[1][k].p50);

			mig_ratio[k] = div_or_nan(h, t);
			printf("  migration %-20s %7.1f MiB/s %7.1f MiB/s %7.2f  (p50 of %zu vs %zu rounds of 2 MiB)\n",
			       k ? "to system memory" : "to device memory", h, t,
			       mig_ratio[k], dmig[0][k].n, dmig[1][k].n);
		}
		fprintf(json, "{\n  \"test_hmm_abi\": {\n");
		for (int c = 0; c < 2; c++) {
			fprintf(json, "    \"%s\": {", compat_cols[c]);
			json_dist("read_fault", &d[c][0], ", ");
			json_dist("read_mirrored", &d[c][1], ", ");
			json_dist("fault_cost", &d[c][2], ", ");
			json_dist("cpu_minor_fault", &d[c][3], ", ");
			json_dist("cpu_minor_fault_warm", &d[c][4], ", ");
			json_dist("migrate_to_device_2m", &dmig[c][0], ", ");
			json_dist("migrate_to_system_2m", &dmig[c][1],
				  c ? "}\n  },\n" : "},\n");
		}
		fprintf(json, "  \"ratios\": {");
		json_num("fault_vs_test_hmm", e2e, ", ");
		json_num("fault_cost_vs_test_hmm", fc, ", ");
		json_num("fault_vs_test_hmm_cpu_normalised", norm, ", ");
		json_num("migrate_to_device_throughput_vs_test_hmm", mig_ratio[0], ", ");
		json_num("migrate_to_system_throughput_vs_test_hmm", mig_ratio[1], "}\n}\n");
	}
	for (int c = 0; c < 2; c++) {
		for (int k = 0; k < 5; k++)
			series_free(&col[c][k]);
		series_free(&mig[c][0]);
		series_free(&mig[c][1]);
	}
	return ret;
}

/* ---- polling against interrupts ----------------------------------------- */

#define PARAM_DIR	"/sys/module/hmirror/parameters/"

static int module_param_rw(const char *name, unsigned int *v, bool set)
{
	char path[128];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), PARAM_DIR "%s", name);
	f = fopen(path, set ? "we" : "re");
	if (!f)
		return -errno;
	ok = set ? fprintf(f, "%u\n", *v) > 0 : fscanf(f, "%u", v) == 1;
	if (fclose(f) && set)
		ok = 0;
	return ok ? 0 : -EIO;
}

/* The waiter's spin (poll_max_us) and the device engines' (engine_poll_us). */
struct poll_mode {
	const char *name, *key;
	unsigned int waiter_us, engine_us;
};

static int poll_mode_set(const struct poll_mode *m)
{
	unsigned int w = m->waiter_us, e = m->engine_us;
	int ret = module_param_rw("poll_max_us", &w, true);

	return ret ? ret : module_param_rw("engine_poll_us", &e, true);
}

/*
 * The same work (a NOP round trip, a gup fault pair) with interrupts only,
 * with the waiter spinning, and with the device's engines spinning too,
 * rotated per iteration.  The module's parameters are restored after.
 */
static int bench_poll(void)
{
	enum { MODES = 3 };
	struct poll_mode mode[MODES] = {
		{ "interrupts only", "interrupts", 0, 0 },
		{ "waiter spins", "waiter_polls", 200, 0 },
		{ "waiter and engine spin", "both_poll", 200, 200 },
	};
	struct poll_mode loaded = { "loaded", "loaded", 0, 0 };
	struct backend_run be[MODES];
	struct series nop[MODES] = { 0 };
	unsigned int n = iters / 2 > 20 ? iters / 2 : 20;
	struct dist dn[MODES], df[MODES];
	int mfd = -1, ret, restore;

	memset(be, 0, sizeof(be));
	for (int m = 0; m < MODES; m++) {
		be[m].name = mode[m].key;
		be[m].id = DRM_HMIRROR_BACKEND_GUP;
	}
	ret = module_param_rw("poll_max_us", &loaded.waiter_us, false);
	if (!ret)
		ret = module_param_rw("engine_poll_us", &loaded.engine_us, false);
	if (!ret && loaded.waiter_us)
		mode[1].waiter_us = mode[2].waiter_us = mode[2].engine_us = loaded.waiter_us;
	if (!ret)
		ret = poll_mode_set(&loaded);	/* writable? */
	if (ret) {
		printf("polling vs interrupts: not measured (%s: %s)\n", PARAM_DIR,
		       strerror(-ret));
		return 0;
	}
	mfd = populated_memfd(1);
	if (mfd < 0)
		ret = -errno;
	for (unsigned int i = 0; i < n + WARMUP && !ret; i++) {
		for (unsigned int k = 0; k < MODES && !ret; k++) {
			unsigned int m = (i + k) % MODES;
			int64_t tn;

			ret = poll_mode_set(&mode[m]);
			if (!ret)
				ret = nop_round_trip(&tn);
			if (!ret)
				ret = fault_pair(&be[m], mfd, i >= WARMUP);
			if (!ret && i >= WARMUP && push(&nop[m], tn))
				ret = -ENOMEM;
		}
	}
	if (mfd >= 0)
		close(mfd);
	restore = poll_mode_set(&loaded);
	if (!ret)
		ret = restore;
	if (!ret) {
		for (int m = 0; m < MODES; m++) {
			dn[m] = summarize(&nop[m]);
			df[m] = summarize(&be[m].fault);
		}
		ratio.nop_waiter_polls_vs_interrupts = div_or_nan(dn[1].p50, dn[0].p50);
		ratio.fault_waiter_polls_vs_interrupts = div_or_nan(df[1].p50, df[0].p50);
		ratio.nop_both_poll_vs_interrupts = div_or_nan(dn[2].p50, dn[0].p50);
		ratio.fault_both_poll_vs_interrupts = div_or_nan(df[2].p50, df[0].p50);
		printf("polling vs interrupts, %u iterations of the three in rotation, gup backend "
		       "(poll_max_us / engine_poll_us):\n", n);
		fprintf(json, "  \"polling\": {");
		for (int m = 0; m < MODES; m++) {
			char label[96];

			snprintf(label, sizeof(label), "NOP round trip, %s (%u/%u)", mode[m].name,
				 mode[m].waiter_us, mode[m].engine_us);
			print_dist(label, &dn[m], m ? dn[0].p50 : 0);
			snprintf(label, sizeof(label), "device fault, %s", mode[m].name);
			print_dist(label, &df[m], m ? df[0].p50 : 0);
			fprintf(json, "\"%s\": {\"poll_max_us\": %u, \"engine_poll_us\": %u, ",
				mode[m].key, mode[m].waiter_us, mode[m].engine_us);
			json_dist("nop", &dn[m], ", ");
			json_dist("fault", &df[m], m + 1 < MODES ? "}, " : "}},\n");
		}
		SUMMARY("NOP round trip, interrupts only         %9.1f us  waiter spins x%.2f, "
			"engine too x%.2f", dn[0].p50 / 1e3, ratio.nop_waiter_polls_vs_interrupts,
			ratio.nop_both_poll_vs_interrupts);
		SUMMARY("device fault (gup), interrupts only     %9.1f us  waiter spins x%.2f, "
			"engine too x%.2f", df[0].p50 / 1e3, ratio.fault_waiter_polls_vs_interrupts,
			ratio.fault_both_poll_vs_interrupts);
	}
	for (int m = 0; m < MODES; m++) {
		series_free(&nop[m]);
		series_free(&be[m].fault);
		series_free(&be[m].mirrored);
		series_free(&be[m].cost);
		series_free(&be[m].mirrored_sc);
		for (int s = 0; s < ST_COUNT; s++)
			series_free(&be[m].stage[s]);
	}
	return ret;
}

/* ---- main --------------------------------------------------------------- */

static void write_ratios(void)
{
	fprintf(json, "  \"ratios\": {\n    ");
	json_num("nop_vs_cpu_fault", ratio.nop_vs_cpu_fault, ",\n    ");
	json_num("null_ioctl_vs_cpu_fault", ratio.null_ioctl_vs_cpu_fault, ",\n    ");
	json_num("syscall_vs_cpu_fault", ratio.syscall_vs_cpu_fault, ",\n    ");
	json_num("fault_vs_cpu_fault", ratio.fault_vs_cpu_fault, ",\n    ");
	json_num("fault_hmm_vs_cpu_fault", ratio.fault_hmm_vs_cpu_fault, ",\n    ");
	json_num("fault_cost_vs_cpu_fault", ratio.fault_cost_vs_cpu_fault, ",\n    ");
	json_num("fault_cost_hmm_vs_cpu_fault", ratio.fault_cost_hmm_vs_cpu_fault, ",\n    ");
	json_num("nop_vs_cpu_fault_warm", ratio.nop_vs_cpu_fault_warm, ",\n    ");
	json_num("fault_vs_cpu_fault_warm", ratio.fault_vs_cpu_fault_warm, ",\n    ");
	json_num("fault_cost_vs_cpu_fault_warm", ratio.fault_cost_vs_cpu_fault_warm, ",\n    ");
	json_num("munmap_1page_mirrored_vs_not", ratio.munmap_vs_not[0], ",\n    ");
	json_num("munmap_16pages_mirrored_vs_not", ratio.munmap_vs_not[1], ",\n    ");
	json_num("munmap_256pages_mirrored_vs_not", ratio.munmap_vs_not[2], ",\n    ");
	json_num("munmap_1page_tlb_inval_vs_not", ratio.munmap_command_vs_not[0], ",\n    ");
	json_num("munmap_16pages_tlb_inval_vs_not", ratio.munmap_command_vs_not[1], ",\n    ");
	json_num("munmap_256pages_tlb_inval_vs_not", ratio.munmap_command_vs_not[2],
		 ",\n    ");
	json_num("per_page_512_vs_cpu", ratio.per_page_512_vs_cpu, ",\n    ");
	json_num("per_page_512_hmm_vs_cpu", ratio.per_page_512_hmm_vs_cpu, ",\n    ");
	json_num("thp_vs_cpu", ratio.thp_vs_cpu, ",\n    ");
	json_num("copy_64m_guest_memcpy_time_vs_device", ratio.copy_64m_guest_memcpy_vs_device,
		 ",\n    ");
	json_num("nop_waiter_polls_vs_interrupts", ratio.nop_waiter_polls_vs_interrupts,
		 ",\n    ");
	json_num("fault_waiter_polls_vs_interrupts", ratio.fault_waiter_polls_vs_interrupts,
		 ",\n    ");
	json_num("nop_both_poll_vs_interrupts", ratio.nop_both_poll_vs_interrupts, ",\n    ");
	json_num("fault_both_poll_vs_interrupts", ratio.fault_both_poll_vs_interrupts,
		 "\n  }\n");
}

static void usage(void)
{
	fprintf(stderr,
		"usage: hmirror-bench [-n ITERATIONS] [-j JSON] [-H SAMPLES]\n"
		"       hmirror-bench -C NODE -L LABEL -c STATE [-n ITERATIONS]\n"
		"       hmirror-bench -c STATE [-j JSON]\n"
		"  -C: the single-page fault through the test_hmm ABI of NODE\n"
		"      (/dev/hmm_dmirror0), LABEL \"hmirror\" or \"test_hmm\" (which\n"
		"      serves it); the samples are appended to STATE.  -c alone:\n"
		"      compare the two columns STATE holds\n");
}

int main(int argc, char **argv)
{
	const char *json_path = NULL, *samples_path = NULL;
	const char *node = NULL, *label = NULL, *state = NULL;
	FILE *samples = NULL;
	int opt, ret;

	while ((opt = getopt(argc, argv, "n:j:H:C:L:c:h")) != -1) {
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
		case 'C':
			node = optarg;
			break;
		case 'L':
			label = optarg;
			break;
		case 'c':
			state = optarg;
			break;
		default:
			usage();
			return opt == 'h' ? 0 : 2;
		}
	}
	if (optind != argc || (node && (!label || !state)) || (!node && label) ||
	    (label && strcmp(label, compat_cols[0]) && strcmp(label, compat_cols[1]))) {
		usage();
		return 2;
	}
	if (iters < 20 || iters > 1000000) {
		fprintf(stderr, "hmirror-bench: -n is 20 .. 1000000\n");
		return 2;
	}
	json = fopen(json_path ? json_path : "/dev/null", "we");
	if (samples_path)
		samples = fopen(samples_path, "we");
	if (!json || (samples_path && !samples)) {
		fprintf(stderr, "hmirror-bench: cannot write output files\n");
		return 1;
	}
	if (state) {
		ret = node ? bench_compat(node, label, state) : compat_report(state);
		fclose(json);
		if (ret)
			fprintf(stderr, "hmirror-bench: failed: %s\n", strerror(-ret));
		return ret ? 1 : 0;
	}

	dev_fd = hmirror_open_nth(0);
	if (dev_fd < 0) {
		fprintf(stderr, "hmirror-bench: open: %s\n", strerror(-dev_fd));
		return 1;
	}
	{
		/* What the guest's durations are read from (benchmarks.rst). */
		char cs[64] = "unknown";
		FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource",
				"re");

		if (f && fgets(cs, sizeof(cs), f))
			cs[strcspn(cs, "\n")] = 0;
		if (f)
			fclose(f);
		printf("guest clock: CLOCK_MONOTONIC on clocksource %s; device clock: the host's "
		       "CLOCK_MONOTONIC\n", cs);
		fprintf(json, "{\n  \"iterations\": %u,\n  \"guest_clocksource\": \"%s\",\n",
			iters, cs);
	}
	ret = bench_latency(samples);
	if (!ret)
		ret = set_backend(DRM_HMIRROR_BACKEND_GUP);
	if (!ret)
		ret = bench_batch();
	if (!ret)
		ret = bench_thp();
	if (!ret)
		ret = bench_inval();
	if (!ret)
		ret = bench_retry();
	if (!ret)
		ret = set_backend(DRM_HMIRROR_BACKEND_GUP);
	if (!ret)
		ret = bench_copy();
	if (!ret)
		ret = bench_poll();
	write_ratios();
	fprintf(json, "}\n");
	fclose(json);
	if (samples)
		fclose(samples);
	hmirror_close(dev_fd);

	printf("hmirror-bench summary (p50s of this run; xN = the device's figure over its "
	       "baseline: the CPU minor fault on the 4 KiB lines, the figure beside it "
	       "elsewhere):\n");
	for (unsigned int i = 0; i < nsummary; i++)
		printf("  %s\n", summary[i]);
	printf("hmirror-bench end\n");
	if (ret) {
		fprintf(stderr, "hmirror-bench: failed: %s\n", strerror(-ret));
		return 1;
	}
	return 0;
}
