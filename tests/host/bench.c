// SPDX-License-Identifier: MIT
/*
 * The device model's own cost, on a fake guest RAM (no QEMU, no guest):
 *  - hmdev_translate() on a TLB miss (page walk + TLB insert) and on a hit;
 *  - whole COPY and READ commands per 4 KiB page, TLB cold (flushed by
 *    TLB_INVAL before each run) and warm, beside the CPU doing the same
 *    work in the same run (memcpy, the FNV-1a loop) as the baseline.
 * Built without sanitizers, -O2, inline mode.  Prints one line per figure:
 * the median of several runs.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest_ram.h"
#include "hmdev.h"
#include "hmdev_internal.h"
#include "log.h"

#define PAGES		8192u			/* 32 MiB per buffer */
#define PG		4096ull
#define RAM		(80ull << 20)
#define SRC_VA		0x10000000ull
#define DST_VA		0x20000000ull
#define RUNS		9

static struct guest_ram ram;
static struct hmdev dev;
static uint8_t *bar;
static uint64_t next_frame = 1ull << 20, root;
static uint32_t sq_tail[HMIRROR_MAX_QUEUES];
static uint64_t seq[HMIRROR_MAX_QUEUES];

static uint64_t frame(void)
{
	uint64_t g = next_frame;

	next_frame += PG;
	if (next_frame > RAM) {
		fprintf(stderr, "bench: out of frames\n");
		exit(1);
	}
	memset(ram.base + g, 0, PG);
	return g;
}

static void map(uint64_t va, uint64_t gpa)
{
	uint64_t table = root, *e;
	int l;

	for (l = 4; l > 1; l--) {
		e = (uint64_t *)(ram.base + table) + ((va >> (12 + 9 * (l - 1))) & 511);
		if (!(*e & HMIRROR_PTE_VALID))
			*e = frame() | HMIRROR_PTE_VALID | HMIRROR_PTE_WRITE;
		table = *e & HMIRROR_PTE_ADDR_MASK;
	}
	e = (uint64_t *)(ram.base + table) + ((va >> 12) & 511);
	*e = gpa | HMIRROR_PTE_VALID | HMIRROR_PTE_WRITE;
}

static void submit(unsigned q, struct hmirror_cmd c)
{
	c.seqno = ++seq[q];
	dev.sq[q][sq_tail[q] & dev.sq_mask] = c;
	sq_tail[q]++;
	__atomic_store_n(&dev.qregs[q].sq_tail, sq_tail[q], __ATOMIC_RELEASE);
	hmdev_doorbell(&dev, HMIRROR_VEC_CQ);
	/* consume: the CQ never fills */
	__atomic_store_n(&dev.qregs[q].cq_head, dev.qregs[q].cq_tail,
			 __ATOMIC_RELEASE);
	if (dev.qregs[q].cq_tail != sq_tail[q] ||
	    dev.cq[q][(sq_tail[q] - 1) & dev.cq_mask].status) {
		fprintf(stderr, "bench: command %u on queue %u did not complete\n",
			c.opcode, q);
		exit(1);
	}
}

static void flush_tlb(void)
{
	submit(0, (struct hmirror_cmd){ .opcode = HMIRROR_OP_TLB_INVAL,
		   .ctx = 1, .len = ~0ull });
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_d);
	return v[n / 2];
}

static volatile uint64_t sink;

/* Median ns/page of submitting @c on queue @q, the TLB flushed first if @cold. */
static double time_cmd(unsigned q, struct hmirror_cmd c, bool cold)
{
	double v[RUNS];
	uint64_t t0;
	unsigned r;

	for (r = 0; r < RUNS; r++) {
		if (cold)
			flush_tlb();
		t0 = hmdev_now_ns();
		submit(q, c);
		v[r] = (double)(hmdev_now_ns() - t0) / PAGES;
	}
	return median(v, RUNS);
}

/* Median ns/page of translating the source pages (cold: TLB flushed), <0 on error. */
static double time_translate(bool cold)
{
	struct hmdev_access a;
	struct hmdev_xlate x;
	uint64_t t0, info;
	double v[RUNS];
	unsigned r, i;

	for (r = 0; r < RUNS; r++) {
		if (cold)
			flush_tlb();
		hmdev_access_begin(&dev, 1, &a);
		t0 = hmdev_now_ns();
		for (i = 0; i < PAGES; i++)
			if (hmdev_translate(&dev, &a, 1, SRC_VA + i * PG,
					    HMIRROR_ACCESS_READ, &x, &info)) {
				hmdev_access_end(&dev, &a);
				return -1;
			}
		v[r] = (double)(hmdev_now_ns() - t0) / PAGES;
		hmdev_access_end(&dev, &a);
	}
	return median(v, RUNS);
}

int main(void)
{
	struct hmdev_config cfg;
	uint64_t src_gpa, dst_gpa, t0, i;
	double v[RUNS], walk, hit, memcpy_pg, memcpy4k_pg, fnv_pg;
	unsigned r;
	uint8_t *src_host, *dst_host;

	hm_log_file = fopen("/dev/null", "we");
	guest_ram_set_layout(&ram, RAM, 0);
	ram.base = aligned_alloc(2 << 20, RAM);
	if (!ram.base)
		return 1;
	memset(ram.base, 0, RAM);
	hmdev_config_default(&cfg);
	cfg.tlb_entries = 2 * PAGES;
	bar = aligned_alloc(4096, hmdev_bar_size(&cfg));
	if (!bar || hmdev_init(&dev, &cfg, bar, hmdev_bar_size(&cfg), &ram,
			       NULL, NULL, NULL, 0))
		return 1;
	root = frame();
	dev.ctx[1].pt_root = root;
	dev.ctx[1].flags = HMIRROR_CTX_VALID;
	/* the driver's probe: bus mastering on, reset */
	dev.regs->drv_ctrl = HMIRROR_DRV_ENABLE | HMIRROR_DRV_BUS_MASTER;
	dev.regs->drv_ctrl_gen = 1;
	dev.regs->drv_reset_gen = 1;
	hmdev_doorbell(&dev, HMIRROR_VEC_CTRL);

	/* two buffers of contiguous frames, tables made first */
	for (i = 0; i < PAGES; i++) {
		map(SRC_VA + i * PG, 0);
		map(DST_VA + i * PG, 0);
	}
	src_gpa = next_frame;
	next_frame += PAGES * PG;
	dst_gpa = next_frame;
	next_frame += PAGES * PG;
	for (i = 0; i < PAGES; i++) {
		map(SRC_VA + i * PG, src_gpa + i * PG);
		map(DST_VA + i * PG, dst_gpa + i * PG);
	}
	src_host = ram.base + src_gpa;
	dst_host = ram.base + dst_gpa;
	for (i = 0; i < PAGES * PG; i++)
		src_host[i] = (uint8_t)(i * 7 + (i >> 12));

	printf("# hmirror-dev model cost (inline mode, -O2, no sanitizers), "
	       "median of %d runs over %u pages of 4 KiB\n", RUNS, PAGES);

	/* translation alone: misses (the TLB flushed before each pass), hits */
	walk = time_translate(true);
	if (walk < 0)
		return 1;
	printf("translate, TLB miss (4-level walk + insert)   %8.1f ns/page\n", walk);
	hit = time_translate(false);
	if (hit < 0)
		return 1;
	printf("translate, TLB hit                            %8.1f ns/page\n", hit);

	/* baselines: the CPU on the same bytes */
	for (r = 0; r < RUNS; r++) {
		t0 = hmdev_now_ns();
		memcpy(dst_host, src_host, PAGES * PG);
		v[r] = (double)(hmdev_now_ns() - t0) / PAGES;
	}
	memcpy_pg = median(v, RUNS);
	/* the same in 4 KiB pieces, as the model copies page by page */
	for (r = 0; r < RUNS; r++) {
		t0 = hmdev_now_ns();
		for (i = 0; i < PAGES; i++)
			memcpy(dst_host + i * PG, src_host + i * PG, PG);
		v[r] = (double)(hmdev_now_ns() - t0) / PAGES;
	}
	memcpy4k_pg = median(v, RUNS);
	for (r = 0; r < RUNS; r++) {
		uint64_t h = HMIRROR_FNV_BASIS, w;

		t0 = hmdev_now_ns();
		for (i = 0; i < PAGES * PG; i += 8) {
			memcpy(&w, src_host + i, 8);
			h = (h ^ w) * HMIRROR_FNV_PRIME;
		}
		sink = h;
		v[r] = (double)(hmdev_now_ns() - t0) / PAGES;
	}
	fnv_pg = median(v, RUNS);

	/* whole commands */
	{
		struct hmirror_cmd copy = { .opcode = HMIRROR_OP_COPY, .ctx = 1,
					    .src = SRC_VA, .dst = DST_VA,
					    .len = PAGES * PG };
		struct hmirror_cmd rd = { .opcode = HMIRROR_OP_READ, .ctx = 1,
					  .src = SRC_VA, .len = PAGES * PG };
		double cc, cw, rc, rw;

		cc = time_cmd(1, copy, true);
		cw = time_cmd(1, copy, false);
		if (memcmp(src_host, dst_host, PAGES * PG))
			return 1;
		rc = time_cmd(2, rd, true);
		rw = time_cmd(2, rd, false);
		if (dev.cq[2][(sq_tail[2] - 1) & dev.cq_mask].result != sink)
			return 1;
		printf("COPY, TLB cold                                %8.1f ns/page\n", cc);
		printf("COPY, TLB warm                                %8.1f ns/page\n", cw);
		printf("  baseline: one memcpy of the same bytes      %8.1f ns/page\n", memcpy_pg);
		printf("  baseline: memcpy page by page               %8.1f ns/page\n", memcpy4k_pg);
		printf("  model overhead over page-wise memcpy, cold / warm %.1f / %.1f ns/page\n",
		       cc - memcpy4k_pg, cw - memcpy4k_pg);
		printf("READ (FNV-1a), TLB cold                       %8.1f ns/page\n", rc);
		printf("READ (FNV-1a), TLB warm                       %8.1f ns/page\n", rw);
		printf("  baseline: the same FNV-1a loop on the CPU   %8.1f ns/page\n", fnv_pg);
		printf("  model overhead, cold / warm                 %.1f / %.1f ns/page\n",
		       rc - fnv_pg, rw - fnv_pg);
	}
	printf("# counters: %llu TLB hits, %llu misses, %llu pages walked\n",
	       (unsigned long long)dev.regs->cnt_tlb_hits,
	       (unsigned long long)dev.regs->cnt_tlb_misses,
	       (unsigned long long)dev.regs->cnt_pages_walked);
	hmdev_fini(&dev);
	free(bar);
	free(ram.base);
	return 0;
}
