// SPDX-License-Identifier: MIT
/*
 * A plain driver for fuzz_engines under ThreadSanitizer (fuzz_engines_tsan).
 *
 * libFuzzer cannot be used here with clang-14: its inline 8-bit coverage
 * counters are bumped by every thread that runs instrumented code (the
 * engines, the model's log writer, which outlives an input) and cleared by
 * libFuzzer's main thread between inputs, and TSan reports that race
 * before anything of ours.  So this build has no coverage counters (the
 * model's sources keep trace-loads/trace-stores for the oracle, over a
 * no-op trace-pc-guard), and this driver feeds fz_run() itself: every
 * file given (or in a directory given) once, then random mutations of
 * them (bit flips, byte sets, inserts, erases, splices) until
 * -max_total_time.  The corpus it starts from is the one fuzz_engines
 * grows with coverage feedback.
 *
 * Each input is written to <artifact_prefix>tsan-input before it runs: a
 * TSan report (halt_on_error=1), an oracle's abort or a -timeout leaves the
 * input that did it there.  Options: -max_total_time=S -runs=N -seed=N
 * -timeout=S -max_len=N -artifact_prefix=P; other -x=y options (libFuzzer's)
 * are ignored.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuzz_guest.h"

/* The no-op base coverage the model's trace-loads/trace-stores need. */
void __sanitizer_cov_trace_pc_guard_init(uint32_t *start, uint32_t *stop);
void __sanitizer_cov_trace_pc_guard(uint32_t *guard);
void __sanitizer_cov_trace_pc_guard_init(uint32_t *start, uint32_t *stop)
{
	(void)start; (void)stop;
}
void __sanitizer_cov_trace_pc_guard(uint32_t *guard)
{
	(void)guard;
}

struct unit {
	uint8_t *p;
	size_t n;
};

static struct unit *units;
static size_t nunits, cap;
static size_t max_len = 4096;
static uint64_t rng;
static char input_path[4096];

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void add_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p;
	long n;

	if (!f)
		return;
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		fclose(f);
		return;
	}
	if ((size_t)n > max_len)
		n = (long)max_len;
	p = malloc((size_t)n + 1);
	if (!p || fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		fclose(f);
		return;
	}
	fclose(f);
	if (nunits == cap) {
		cap = cap ? 2 * cap : 256;
		units = realloc(units, cap * sizeof(*units));
		if (!units)
			abort();
	}
	units[nunits++] = (struct unit){ p, (size_t)n };
}

static void add_path(const char *path)
{
	struct stat st;
	struct dirent *d;
	char sub[4096];
	DIR *dir;

	if (stat(path, &st))
		return;
	if (!S_ISDIR(st.st_mode)) {
		add_file(path);
		return;
	}
	dir = opendir(path);
	if (!dir)
		return;
	while ((d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, d->d_name);
		if (!stat(sub, &st) && S_ISREG(st.st_mode))
			add_file(sub);
	}
	closedir(dir);
}

static void run(const uint8_t *p, size_t n, unsigned timeout)
{
	int fd = open(input_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd >= 0) {
		if (write(fd, p, n) != (ssize_t)n)
			perror(input_path);
		close(fd);
	}
	alarm(timeout);		/* SIGALRM kills us: the input stays */
	fz_run(p, n, true);
	alarm(0);
}

/* 1..4 random edits of a copy of a random unit (or of nothing). */
static size_t mutate(uint8_t *buf)
{
	const struct unit *u = nunits ? &units[rnd() % nunits] : NULL;
	size_t n = u ? u->n : 0, i, k, at, len;
	unsigned edits = 1 + rnd() % 4;

	if (n)
		memcpy(buf, u->p, n);
	while (edits--) {
		switch (rnd() % 6) {
		case 0:		/* flip a bit */
			if (n)
				buf[rnd() % n] ^= (uint8_t)(1u << (rnd() % 8));
			break;
		case 1:		/* set a byte */
			if (n)
				buf[rnd() % n] = (uint8_t)rnd();
			break;
		case 2:		/* insert random bytes */
			len = 1 + rnd() % 16;
			if (n + len > max_len)
				break;
			at = n ? rnd() % (n + 1) : 0;
			memmove(buf + at + len, buf + at, n - at);
			for (i = 0; i < len; i++)
				buf[at + i] = (uint8_t)rnd();
			n += len;
			break;
		case 3:		/* erase a range */
			if (n < 2)
				break;
			at = rnd() % n;
			len = 1 + rnd() % (n - at);
			memmove(buf + at, buf + at + len, n - at - len);
			n -= len;
			break;
		case 4:		/* splice in part of another unit */
			if (!nunits)
				break;
			u = &units[rnd() % nunits];
			if (!u->n)
				break;
			k = rnd() % u->n;
			len = 1 + rnd() % (u->n - k);
			at = n ? rnd() % (n + 1) : 0;
			if (at + len > max_len)
				len = max_len - at;
			memcpy(buf + at, u->p + k, len);
			if (at + len > n)
				n = at + len;
			break;
		default: {	/* repeat a range */
			uint8_t tmp[64];

			if (!n)
				break;
			at = rnd() % n;
			len = 1 + rnd() % (n - at);
			if (len > sizeof(tmp))
				len = sizeof(tmp);
			if (n + len > max_len)
				break;
			memcpy(tmp, buf + at, len);
			k = rnd() % (n + 1);
			memmove(buf + k + len, buf + k, n - k);
			memcpy(buf + k, tmp, len);
			n += len;
			break;
		}
		}
	}
	return n;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	unsigned long max_time = 0, runs = ~0ul, timeout = 60, seed = 0;
	const char *prefix = "./";
	uint8_t *buf;
	unsigned long execs = 0;
	double start, t;
	size_t i;
	int a;

	for (a = 1; a < argc; a++) {
		if (!strncmp(argv[a], "-max_total_time=", 16))
			max_time = strtoul(argv[a] + 16, NULL, 0);
		else if (!strncmp(argv[a], "-runs=", 6))
			runs = strtoul(argv[a] + 6, NULL, 0);
		else if (!strncmp(argv[a], "-seed=", 6))
			seed = strtoul(argv[a] + 6, NULL, 0);
		else if (!strncmp(argv[a], "-timeout=", 9))
			timeout = strtoul(argv[a] + 9, NULL, 0);
		else if (!strncmp(argv[a], "-max_len=", 9))
			max_len = strtoul(argv[a] + 9, NULL, 0);
		else if (!strncmp(argv[a], "-artifact_prefix=", 17))
			prefix = argv[a] + 17;
	}
	for (a = 1; a < argc; a++)
		if (argv[a][0] != '-')
			add_path(argv[a]);
	if (!max_len || max_len > (1u << 20))
		max_len = 4096;
	rng = seed ? seed : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	rng |= 1;
	snprintf(input_path, sizeof(input_path), "%stsan-input", prefix);
	buf = malloc(max_len);
	if (!buf)
		abort();
	printf("INFO: %zu inputs, seed %llu\n", nunits, (unsigned long long)rng);
	fflush(stdout);

	start = now();
	/* the corpus once, then mutations */
	for (i = 0; i < nunits && execs < runs; i++, execs++) {
		if (max_time && now() - start >= (double)max_time)
			break;
		run(units[i].p, units[i].n, (unsigned)timeout);
	}
	printf("#%lu\tINITED in %.0f s\n", execs, now() - start);
	fflush(stdout);
	while (execs < runs && max_time && (t = now() - start) < (double)max_time) {
		size_t n = mutate(buf);

		run(buf, n, (unsigned)timeout);
		if (++execs % 1024 == 0) {
			printf("#%lu\tpulse  exec/s: %.0f\n", execs, execs / (now() - start));
			fflush(stdout);
		}
	}
	t = now() - start;
	printf("#%lu\tDONE   exec/s: %.0f\n", execs, execs / (t > 0 ? t : 1));
	printf("stat::number_of_executed_units: %lu\n", execs);
	printf("stat::average_exec_per_sec:     %.0f\n", execs / (t > 0 ? t : 1));
	unlink(input_path);
	return 0;
}
