// SPDX-License-Identifier: MIT
/*
 * hmirror-stat: show every hmirror device, its counters, and (with -n N)
 * the round-trip time of N single NOPs through ring, doorbell, device model
 * and interrupt.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libhmirror.h"

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int nop_round_trips(int fd, unsigned int n)
{
	double *lat = calloc(n, sizeof(*lat));
	uint64_t fence;
	unsigned int i;

	if (!lat)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		double t0 = now_us();
		int ret = hmirror_submit_nop(fd, 0, 1, DRM_HMIRROR_NOP_WAIT, &fence);

		if (ret) {
			fprintf(stderr, "hmirror-stat: NOP: %s\n", strerror(-ret));
			free(lat);
			return ret;
		}
		lat[i] = now_us() - t0;
	}
	qsort(lat, n, sizeof(*lat), cmp_double);
	printf("  nop round trip: n=%u p50=%.1f us p99=%.1f us max=%.1f us\n",
	       n, lat[n / 2], lat[(n * 99) / 100], lat[n - 1]);
	free(lat);
	return 0;
}

static int show(unsigned int index, unsigned int nops)
{
	struct drm_hmirror_info info;
	struct drm_hmirror_stats st;
	int fd, ret;

	fd = hmirror_open(index);
	if (fd < 0)
		return fd;
	ret = hmirror_get_info(fd, &info);
	if (!ret && nops)
		ret = nop_round_trips(fd, nops);
	if (!ret)
		ret = hmirror_get_stats(fd, &st);
	hmirror_close(fd);
	if (ret)
		return ret;

	printf("accel%u: hmirror %u.%u, %u engine(s), features 0x%llx, BAR2 %u KiB\n",
	       index, info.version >> 16, info.version & 0xffff, info.num_engines,
	       (unsigned long long)info.features, info.bar_size / 1024);
	printf("  rings: sq %u, cq %u, fault %u entries; contexts %u; tlb %u\n",
	       info.sq_entries, info.cq_entries, info.fault_entries,
	       info.max_contexts, info.tlb_entries);
	printf("  commands: submitted %llu, completed %llu, device executed %llu, device errors %llu\n",
	       (unsigned long long)st.cmds_submitted,
	       (unsigned long long)st.cmds_completed,
	       (unsigned long long)st.dev_commands,
	       (unsigned long long)st.dev_errors);
	printf("  interrupts handled/sent: cq %llu/%llu fault %llu/%llu ctrl %llu/%llu; doorbells %llu (%llu skipped)\n",
	       (unsigned long long)st.irqs[0], (unsigned long long)st.dev_irqs_sent[0],
	       (unsigned long long)st.irqs[1], (unsigned long long)st.dev_irqs_sent[1],
	       (unsigned long long)st.irqs[2], (unsigned long long)st.dev_irqs_sent[2],
	       (unsigned long long)st.doorbells,
	       (unsigned long long)st.doorbells_skipped);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned int nops = 0, i, found = 0;
	int opt, ret;

	while ((opt = getopt(argc, argv, "n:h")) != -1) {
		switch (opt) {
		case 'n':
			nops = strtoul(optarg, NULL, 0);
			break;
		default:
			fprintf(stderr, "usage: hmirror-stat [-n NOPS]\n");
			return opt == 'h' ? 0 : 2;
		}
	}
	for (i = 0; i < 64; i++) {
		ret = show(i, nops);
		if (ret == -ENOENT)
			break;
		if (ret == -ENODEV)
			continue;
		if (ret) {
			fprintf(stderr, "hmirror-stat: accel%u: %s\n", i, strerror(-ret));
			return 1;
		}
		found++;
	}
	if (!found) {
		fprintf(stderr, "hmirror-stat: no hmirror device\n");
		return 1;
	}
	return 0;
}
