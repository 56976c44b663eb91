/* SPDX-License-Identifier: MIT */
/* Helpers shared by the host tests: a device on a malloc'd BAR. */
#ifndef HMTEST_H
#define HMTEST_H

#include <stdlib.h>
#include <string.h>

#include "guest_ram.h"
#include "hmdev.h"
#include "log.h"

struct fakedev {
	struct hmdev dev;
	void *bar;
	size_t bar_size;
	struct guest_ram ram;		/* fake guest RAM (base NULL: none) */
	unsigned irqs[HMIRROR_NUM_VECTORS];	/* atomic: engine threads */
	unsigned irq_bad;		/* vectors out of range */
	uint32_t sq_tail[HMIRROR_MAX_QUEUES];	/* driver-side copies */
	uint32_t cq_head[HMIRROR_MAX_QUEUES];
	uint32_t reset_gen;
};

static inline void fake_irq(void *opaque, unsigned v)
{
	struct fakedev *f = opaque;

	if (v < HMIRROR_NUM_VECTORS)
		__atomic_fetch_add(&f->irqs[v], 1, __ATOMIC_SEQ_CST);
	else
		__atomic_fetch_add(&f->irq_bad, 1, __ATOMIC_SEQ_CST);
}

/*
 * 0 on success.  With @ram_bytes, a zeroed fake guest RAM of that size
 * (q35 map with @lowmem, 0 for the default) backs the device.
 */
static inline int fakedev_init_ram(struct fakedev *f, const struct hmdev_config *cfg,
				   uint64_t ram_bytes, uint64_t lowmem)
{
	uint64_t size = hmdev_bar_size(cfg);

	memset(f, 0, sizeof(*f));
	if (ram_bytes) {
		if (guest_ram_set_layout(&f->ram, ram_bytes, lowmem))
			return -1;
		f->ram.base = aligned_alloc(2 << 20, (ram_bytes + (2 << 20) - 1) &
					    ~(uint64_t)((2 << 20) - 1));
		if (!f->ram.base)
			return -1;
		memset(f->ram.base, 0, ram_bytes);
	}
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
	return hmdev_init(&f->dev, cfg, f->bar, f->bar_size,
			  ram_bytes ? &f->ram : NULL, fake_irq, f, NULL, 0);
}

static inline int fakedev_init(struct fakedev *f, const struct hmdev_config *cfg)
{
	return fakedev_init_ram(f, cfg, 0, 0);
}

static inline void fakedev_free(struct fakedev *f)
{
	hmdev_destroy(&f->dev);
	free(f->bar);
	f->bar = NULL;
	free(f->ram.base);
	f->ram.base = NULL;
}

static inline unsigned fk_irqs(struct fakedev *f, unsigned v)
{
	return __atomic_load_n(&f->irqs[v], __ATOMIC_SEQ_CST);
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
