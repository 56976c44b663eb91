/* SPDX-License-Identifier: MIT */
/* Helpers shared by the host tests: a device on a malloc'd BAR. */
#ifndef HMTEST_H
#define HMTEST_H

#include <stdlib.h>
#include <string.h>

#include "hmdev.h"
#include "log.h"

struct fakedev {
	struct hmdev dev;
	void *bar;
	size_t bar_size;
	unsigned irqs[HMIRROR_NUM_VECTORS];
	unsigned irq_bad;		/* vectors out of range */
	uint32_t sq_tail[HMIRROR_MAX_QUEUES];	/* driver-side copies */
	uint32_t cq_head[HMIRROR_MAX_QUEUES];
	uint32_t reset_gen;
};

static inline void fake_irq(void *opaque, unsigned v)
{
	struct fakedev *f = opaque;

	if (v < HMIRROR_NUM_VECTORS)
		f->irqs[v]++;
	else
		f->irq_bad++;
}

/* 0 on success */
static inline int fakedev_init(struct fakedev *f, const struct hmdev_config *cfg)
{
	uint64_t size = hmdev_bar_size(cfg);

	memset(f, 0, sizeof(*f));
	/* keep the KTAP output clean; HMTEST_LOG=1 shows the model's log */
	if (!hm_log_file && !getenv("HMTEST_LOG"))
		hm_log_file = fopen("/dev/null", "we");
	if (!size)
		return -1;
	f->bar_size = (size_t)size;
	f->bar = aligned_alloc(4096, f->bar_size);
	if (!f->bar)
		return -1;
	memset(f->bar, 0xa5, f->bar_size);	/* init must clear it */
	return hmdev_init(&f->dev, cfg, f->bar, f->bar_size, NULL, fake_irq, f,
			  NULL, 0);
}

static inline void fakedev_free(struct fakedev *f)
{
	free(f->bar);
	f->bar = NULL;
}

static inline struct hmirror_header *fk_hdr(struct fakedev *f)
{
	return f->bar;
}

static inline struct hmirror_regs *fk_regs(struct fakedev *f)
{
	return (void *)((char *)f->bar + HMIRROR_REGS_OFF);
}

static inline struct hmirror_queue_regs *fk_qregs(struct fakedev *f, unsigned q)
{
	return (struct hmirror_queue_regs *)((char *)f->bar + HMIRROR_QUEUES_OFF) + q;
}

/* Uses the device's private header copy: tests may scribble on the BAR's. */
static inline struct hmirror_cmd *fk_sq(struct fakedev *f, unsigned q, uint32_t idx)
{
	struct hmirror_cmd *sq = (void *)((char *)f->bar + hmirror_sq_off(&f->dev.hdr, q));

	return &sq[idx & (f->dev.hdr.sq_entries - 1)];
}

static inline struct hmirror_cpl *fk_cq(struct fakedev *f, unsigned q, uint32_t idx)
{
	struct hmirror_cpl *cq = (void *)((char *)f->bar + hmirror_cq_off(&f->dev.hdr, q));

	return &cq[idx & (f->dev.hdr.cq_entries - 1)];
}

/* Driver side: write a command into the next slot (no doorbell). */
static inline void fk_put(struct fakedev *f, unsigned q, const struct hmirror_cmd *c)
{
	*fk_sq(f, q, f->sq_tail[q]) = *c;
	f->sq_tail[q]++;
	__atomic_store_n(&fk_qregs(f, q)->sq_tail, f->sq_tail[q], __ATOMIC_RELEASE);
}

static inline void fk_op(struct fakedev *f, unsigned q, uint8_t op, uint64_t seqno)
{
	struct hmirror_cmd c = { .opcode = op, .seqno = seqno };

	fk_put(f, q, &c);
}

/* Driver side of the reset handshake (zero driver indices, bump, ring). */
static inline void fk_reset(struct fakedev *f)
{
	unsigned q;

	for (q = 0; q < f->dev.num_queues; q++) {
		f->sq_tail[q] = f->cq_head[q] = 0;
		fk_qregs(f, q)->sq_tail = 0;
		fk_qregs(f, q)->cq_head = 0;
	}
	fk_regs(f)->drv_reset_gen = ++f->reset_gen;
	hmdev_doorbell(&f->dev, HMIRROR_VEC_CTRL);
}

static inline void fk_set_cq_head(struct fakedev *f, unsigned q, uint32_t v)
{
	f->cq_head[q] = v;
	__atomic_store_n(&fk_qregs(f, q)->cq_head, v, __ATOMIC_RELEASE);
}

#endif
