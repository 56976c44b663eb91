// SPDX-License-Identifier: MIT
/* BAR2 layout, header contents and configuration checks. */
#include <stddef.h>

#include "hmtest.h"
#include "kselftest_harness.h"

static uint32_t fk_hdr_vram_pages(const struct hmdev_config *cfg)
{
	struct hmirror_header h;

	return hmdev_layout(cfg, &h) ? h.vram_pages : 0;
}

static uint64_t ring_bytes(unsigned entries)
{
	return ((uint64_t)entries * 64 + 4095) & ~4095ull;
}

static void check_layout(struct __test_metadata *_metadata,
			 const struct hmdev_config *cfg)
{
	struct fakedev f;
	struct hmirror_header *h;
	struct hmirror_regs *r;
	uint64_t end, prev_end;
	unsigned q, i;

	ASSERT_EQ(0, fakedev_init(&f, cfg));
	h = fk_hdr(&f);
	r = fk_regs(&f);

	EXPECT_EQ(HMIRROR_MAGIC, h->magic);
	EXPECT_EQ(HMIRROR_VERSION, h->version);
	EXPECT_EQ((2u << 16) | 2, h->version);
	/*
	 * 0x3f, FEAT_VRAM (0x40) exactly when there is device memory,
	 * FEAT_SHOOTDOWN (0x80) exactly when asked for
	 */
	EXPECT_EQ(HMIRROR_FEAT_NOP | HMIRROR_FEAT_TRANSLATE | HMIRROR_FEAT_HUGE_2M |
		  HMIRROR_FEAT_ATOMIC | HMIRROR_FEAT_TIMESTAMPS | HMIRROR_FEAT_POLL |
		  (cfg->vram_mb ? HMIRROR_FEAT_VRAM : 0) |
		  (cfg->shootdown ? HMIRROR_FEAT_SHOOTDOWN : 0), h->features);
	EXPECT_EQ((cfg->vram_mb ? 0x7full : 0x3full) | (cfg->shootdown ? 0x80 : 0),
		  h->features);
	EXPECT_EQ(cfg->shootdown ? HMIRROR_SHOOTDOWN_OFF : 0, h->shootdown_off);
	EXPECT_EQ(cfg->shootdown, f.dev.sd != NULL);
	EXPECT_EQ(cfg->vram_mb * 256ull, h->vram_pages);
	EXPECT_EQ((uint64_t)h->vram_pages * 4096, f.dev.vram.size);
	EXPECT_EQ(!cfg->vram_mb, f.dev.vram.base == NULL);
	EXPECT_EQ(f.bar_size, h->bar_size);
	EXPECT_EQ(1 + cfg->engines, h->num_queues);
	EXPECT_EQ(cfg->sq_entries, h->sq_entries);
	EXPECT_EQ(cfg->cq_entries, h->cq_entries);
	EXPECT_EQ(cfg->fault_entries, h->fault_entries);
	EXPECT_EQ(cfg->max_contexts, h->max_contexts);
	EXPECT_EQ(cfg->tlb_entries, h->tlb_entries);
	EXPECT_EQ(HMIRROR_NUM_VECTORS, h->num_vectors);
	EXPECT_EQ(HMIRROR_REGS_OFF, h->regs_off);
	EXPECT_EQ(HMIRROR_QUEUES_OFF, h->queues_off);
	EXPECT_EQ(HMIRROR_FAULT_REGS_OFF, h->fault_regs_off);
	EXPECT_EQ(HMIRROR_CTX_OFF, h->ctx_off);
	EXPECT_EQ(HMIRROR_RINGS_OFF, h->rings_off);
	EXPECT_EQ(cfg->va_bits, h->va_bits);
	for (i = 0; i < sizeof(h->reserved) / sizeof(h->reserved[0]); i++)
		EXPECT_EQ(0, h->reserved[i]);

	/* BAR: power of two, >= 1 MiB, holds the layout */
	EXPECT_EQ(0, f.bar_size & (f.bar_size - 1));
	EXPECT_LE(1u << 20, f.bar_size);
	end = hmirror_layout_end(h);
	EXPECT_LE(end, f.bar_size);
	EXPECT_GT(end * 2, f.bar_size > (1u << 20) ? f.bar_size : 0);

	/* regions in order, not overlapping, rings 4 KiB aligned */
	EXPECT_LE(sizeof(*h), h->regs_off);
	EXPECT_LE(h->regs_off + sizeof(struct hmirror_regs), h->queues_off);
	EXPECT_LE(h->queues_off + h->num_queues * sizeof(struct hmirror_queue_regs),
		  h->fault_regs_off);
	EXPECT_LE(h->fault_regs_off + sizeof(struct hmirror_fault_regs), h->ctx_off);
	EXPECT_LE(h->ctx_off + h->max_contexts * sizeof(struct hmirror_ctx_entry),
		  h->rings_off);
	prev_end = h->rings_off;
	for (q = 0; q < h->num_queues; q++) {
		uint32_t sq = hmirror_sq_off(h, q), cq = hmirror_cq_off(h, q);

		EXPECT_EQ(0, sq & 4095);
		EXPECT_EQ(0, cq & 4095);
		EXPECT_EQ(prev_end, sq);
		EXPECT_EQ(sq + ring_bytes(h->sq_entries), cq);
		prev_end = cq + ring_bytes(h->cq_entries);
		/* the device uses the same addresses */
		EXPECT_EQ((char *)f.bar + sq, (char *)f.dev.sq[q]);
		EXPECT_EQ((char *)f.bar + cq, (char *)f.dev.cq[q]);
	}
	EXPECT_EQ(prev_end, hmirror_fault_ring_off(h));
	EXPECT_EQ((char *)f.bar + hmirror_fault_ring_off(h), (char *)f.dev.fault_ring);
	/* then one answer table per queue: sq_entries x 16 bytes, 4 KiB aligned */
	prev_end = hmirror_fault_ring_off(h) + ring_bytes(h->fault_entries);
	for (q = 0; q < h->num_queues; q++) {
		uint32_t a = hmirror_answers_off(h, q);

		EXPECT_EQ(0, a & 4095);
		EXPECT_EQ(prev_end, a);
		EXPECT_EQ((char *)f.bar + a, (char *)f.dev.answers[q]);
		prev_end = a + (((uint64_t)h->sq_entries * 16 + 4095) & ~4095ull);
	}
	EXPECT_EQ(prev_end, end);
	EXPECT_EQ(end, hmdev_layout(cfg, &(struct hmirror_header){ 0 }));

	/* initial registers: ALIVE and DMA_OFF only, everything else zero */
	EXPECT_EQ(HMIRROR_DEV_ALIVE | HMIRROR_DEV_DMA_OFF, r->dev_status);
	EXPECT_EQ(0, r->dev_ctrl_ack);
	EXPECT_EQ(0, r->dev_reset_ack);
	EXPECT_EQ(0, r->heartbeat);
	EXPECT_EQ(0, r->err_count);
	EXPECT_EQ(0, r->drv_reset_gen);
	for (q = 0; q < h->num_queues; q++) {
		EXPECT_EQ(0, fk_qregs(&f, q)->sq_head);
		EXPECT_EQ(0, fk_qregs(&f, q)->cq_tail);
		EXPECT_EQ(HMIRROR_Q_IDLE, fk_qregs(&f, q)->q_status);
		EXPECT_EQ(0, fk_qregs(&f, q)->parked);
		EXPECT_EQ(0, fk_qregs(&f, q)->progress);
	}
	/* the whole BAR was cleared (it was filled with 0xa5) */
	for (i = sizeof(*h); i < f.bar_size; i++)
		if (((unsigned char *)f.bar)[i] && i != h->regs_off)
			break;
	EXPECT_EQ(f.bar_size, i);
	fakedev_free(&f);
}

TEST(default_layout)
{
	struct hmdev_config cfg;

	hmdev_config_default(&cfg);
	EXPECT_EQ(2, cfg.engines);
	EXPECT_EQ(48, cfg.va_bits);
	EXPECT_EQ(64, cfg.vram_mb);
	EXPECT_TRUE(cfg.shootdown);
	check_layout(_metadata, &cfg);
	EXPECT_EQ(1u << 20, hmdev_bar_size(&cfg));
}

TEST(small_layout)
{
	struct hmdev_config cfg = {
		.engines = 1, .sq_entries = 2, .cq_entries = 2, .fault_entries = 2,
		.max_contexts = 1, .tlb_entries = 1, .va_bits = 57,
	};

	check_layout(_metadata, &cfg);		/* no device memory */
	cfg.vram_mb = 1;
	check_layout(_metadata, &cfg);
}

TEST(large_layout)
{
	struct hmdev_config cfg = {
		.engines = HMIRROR_MAX_QUEUES - 1, .sq_entries = 1024,
		.cq_entries = 4096, .fault_entries = 512,
		.max_contexts = HMDEV_MAX_CONTEXTS, .tlb_entries = 1 << 20,
		.va_bits = 48, .vram_mb = HMDEV_MAX_VRAM_MB, .shootdown = true,
	};

	check_layout(_metadata, &cfg);
	EXPECT_EQ(1u << 20, fk_hdr_vram_pages(&cfg));
	/* 0x10000 + 8 * (64 KiB + 256 KiB + 16 KiB) + 32 KiB -> 4 MiB */
	EXPECT_EQ(4u << 20, hmdev_bar_size(&cfg));
}

TEST(largest_config_fits_u32)
{
	struct hmdev_config cfg = {
		.engines = HMIRROR_MAX_QUEUES - 1, .sq_entries = HMDEV_MAX_ENTRIES,
		.cq_entries = HMDEV_MAX_ENTRIES, .fault_entries = HMDEV_MAX_ENTRIES,
		.max_contexts = HMDEV_MAX_CONTEXTS, .tlb_entries = HMDEV_MAX_TLB,
		.va_bits = 57,
	};
	struct hmirror_header h;

	/* 0x10000 + 8 * (8 MiB + 1 MiB of answers) + 4 MiB */
	EXPECT_EQ(0x10000ull + (76ull << 20), hmdev_layout(&cfg, &h));
	EXPECT_EQ(hmirror_layout_end(&h), hmdev_layout(&cfg, &h));
	EXPECT_EQ(128ull << 20, hmdev_bar_size(&cfg));
}

TEST(max_contexts_end_at_rings)
{
	EXPECT_EQ(HMIRROR_RINGS_OFF,
		  HMIRROR_CTX_OFF + HMDEV_MAX_CONTEXTS * sizeof(struct hmirror_ctx_entry));
}

TEST(bad_configs_rejected)
{
	static const struct { const char *what; struct hmdev_config c; } bad[] = {
		{ "engines 0", { 0, 256, 256, 256, 64, 1024, 48, 0, true, true, 0, 0 } },
		{ "engines 8", { 8, 256, 256, 256, 64, 1024, 48, 0, true, true, 0, 0 } },
		{ "sq 0", { 2, 0, 256, 256, 64, 1024, 48, 0, true, true, 0, 0 } },
		{ "sq 1", { 2, 1, 256, 256, 64, 1024, 48, 0, true, true, 0, 0 } },
		{ "sq 3", { 2, 3, 256, 256, 64, 1024, 48, 0, true, true, 0, 0 } },
		{ "sq 2^17", { 2, 1u << 17, 256, 256, 64, 1024, 48, 0, true, true, 0, 0 } },
		{ "sq 2^31", { 2, 1u << 31, 256, 256, 64, 1024, 48, 0, true, true, 0, 0 } },
		{ "cq 100", { 2, 256, 100, 256, 64, 1024, 48, 0, true, true, 0, 0 } },
		{ "cq 0", { 2, 256, 0, 256, 64, 1024, 48, 0, true, true, 0, 0 } },
		{ "fault 0", { 2, 256, 256, 0, 64, 1024, 48, 0, true, true, 0, 0 } },
		{ "fault 384", { 2, 256, 256, 384, 64, 1024, 48, 0, true, true, 0, 0 } },
		{ "contexts 0", { 2, 256, 256, 256, 0, 1024, 48, 0, true, true, 0, 0 } },
		{ "contexts past rings", { 2, 256, 256, 256, HMDEV_MAX_CONTEXTS + 1, 1024, 48, 0, true, true, 0, 0 } },
		{ "tlb 0", { 2, 256, 256, 256, 64, 0, 48, 0, true, true, 0, 0 } },
		{ "tlb huge", { 2, 256, 256, 256, 64, HMDEV_MAX_TLB + 1, 48, 0, true, true, 0, 0 } },
		{ "va_bits 0", { 2, 256, 256, 256, 64, 1024, 0, 0, true, true, 0, 0 } },
		{ "va_bits 47", { 2, 256, 256, 256, 64, 1024, 47, 0, true, true, 0, 0 } },
		{ "va_bits 56", { 2, 256, 256, 256, 64, 1024, 56, 0, true, true, 0, 0 } },
		{ "va_bits 64", { 2, 256, 256, 256, 64, 1024, 64, 0, true, true, 0, 0 } },
		{ "vram 4097 MiB", { 2, 256, 256, 256, 64, 1024, 48, 4097, true, true, 0, 0 } },
		{ "vram 2^32-1 MiB", { 2, 256, 256, 256, 64, 1024, 48, ~0u, true, true, 0, 0 } },
		{ "poll max 1 s + 1 us", { 2, 256, 256, 256, 64, 1024, 48, 0, true, true, HMDEV_MAX_POLL_US + 1, 0 } },
	};
	unsigned i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct hmirror_header h;
		struct hmdev dev;
		char err[128] = "";
		static char bar[1 << 20] __attribute__((aligned(4096)));

		EXPECT_EQ(-1, hmdev_config_check(&bad[i].c, err, sizeof(err)))
			TH_LOG("%s accepted", bad[i].what);
		EXPECT_NE(0, err[0]) TH_LOG("%s: no message", bad[i].what);
		EXPECT_EQ(0, hmdev_layout(&bad[i].c, &h)) TH_LOG("%s", bad[i].what);
		EXPECT_EQ(0, hmdev_bar_size(&bad[i].c)) TH_LOG("%s", bad[i].what);
		EXPECT_EQ(-1, hmdev_init(&dev, &bad[i].c, bar, sizeof(bar), NULL,
					 NULL, NULL, NULL, 0)) TH_LOG("%s", bad[i].what);
	}
}

TEST(bar_too_small_rejected)
{
	struct hmdev_config cfg;
	struct hmirror_header h;
	struct hmdev dev;
	char err[128] = "";
	uint64_t end;
	void *bar;

	hmdev_config_default(&cfg);
	end = hmdev_layout(&cfg, &h);
	ASSERT_NE(0, end);
	bar = aligned_alloc(4096, end);
	ASSERT_NE(NULL, bar);
	EXPECT_EQ(-1, hmdev_init(&dev, &cfg, bar, end - 1, NULL, NULL, NULL,
				 err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "BAR"));
	EXPECT_EQ(-1, hmdev_init(&dev, &cfg, NULL, end, NULL, NULL, NULL, NULL, 0));
	/* exactly the layout is enough; bar_size says what was given */
	EXPECT_EQ(0, hmdev_init(&dev, &cfg, bar, end, NULL, NULL, NULL, NULL, 0));
	EXPECT_EQ(end, ((struct hmirror_header *)bar)->bar_size);
	hmdev_fini(&dev);
	free(bar);
}

TEST(abi_offsets)
{
	/* fields the driver and the device both hard-code */
	EXPECT_EQ(64, offsetof(struct hmirror_header, fault_regs_off));
	EXPECT_EQ(68, offsetof(struct hmirror_header, va_bits));
	EXPECT_EQ(72, offsetof(struct hmirror_header, vram_pages));
	EXPECT_EQ(76, offsetof(struct hmirror_header, shootdown_off));
	EXPECT_EQ(80, offsetof(struct hmirror_header, reserved));
	EXPECT_EQ(0x800, HMIRROR_SHOOTDOWN_OFF);
	EXPECT_EQ(1ull << 7, HMIRROR_FEAT_SHOOTDOWN);
	EXPECT_EQ(16, HMIRROR_SD_SLOTS);
	EXPECT_EQ(64, offsetof(struct hmirror_shootdown, req));
	EXPECT_EQ(576, offsetof(struct hmirror_shootdown, dev_seen));
	EXPECT_EQ(24, offsetof(struct hmirror_sd_req, ctx));
	EXPECT_EQ(136, offsetof(struct hmirror_regs, cnt_shootdowns));
	EXPECT_EQ(128, sizeof(struct hmirror_header));
	EXPECT_EQ(16, sizeof(struct hmirror_migrate_entry));
	EXPECT_EQ(8, offsetof(struct hmirror_migrate_entry, to));
	EXPECT_EQ(7, HMIRROR_OP_MIGRATE);
	EXPECT_EQ(1ull << 6, HMIRROR_FEAT_VRAM);
	EXPECT_EQ(1ull << 8, HMIRROR_PTE_VRAM);
	EXPECT_EQ(0, HMIRROR_PTE_RSVD_MASK & HMIRROR_PTE_VRAM);
	EXPECT_EQ(1, HMIRROR_MIGRATE_VRAM);
	EXPECT_EQ(512, HMIRROR_MIGRATE_LEN_MAX);
	EXPECT_EQ(128, offsetof(struct hmirror_regs, dev_ctrl_ack));
	EXPECT_EQ(192, offsetof(struct hmirror_regs, drv_ctrl));
	EXPECT_EQ(196, offsetof(struct hmirror_regs, drv_reset_gen));
	EXPECT_EQ(200, offsetof(struct hmirror_regs, drv_ctrl_gen));
	EXPECT_EQ(64, offsetof(struct hmirror_queue_regs, sq_head));
	EXPECT_EQ(72, offsetof(struct hmirror_queue_regs, parked));
	EXPECT_EQ(76, offsetof(struct hmirror_queue_regs, q_status));
	EXPECT_EQ(80, offsetof(struct hmirror_queue_regs, completed_seqno));
	EXPECT_EQ(88, offsetof(struct hmirror_queue_regs, progress));
	EXPECT_EQ(64, offsetof(struct hmirror_fault_regs, tail));
	EXPECT_EQ(4, offsetof(struct hmirror_cmd, tag));
	EXPECT_EQ(6, offsetof(struct hmirror_cmd, reserved0));
	EXPECT_EQ(8, offsetof(struct hmirror_cmd, seqno));
	EXPECT_EQ(56, offsetof(struct hmirror_cmd, reserved1));
	EXPECT_EQ(48, offsetof(struct hmirror_cpl, t_done));
	EXPECT_EQ(56, offsetof(struct hmirror_cpl, tag));
	EXPECT_EQ(0, offsetof(struct hmirror_fault, fault_id));
	EXPECT_EQ(12, offsetof(struct hmirror_fault, tag));
	EXPECT_EQ(16, offsetof(struct hmirror_fault, addr));
	EXPECT_EQ(0, offsetof(struct hmirror_fault_answer, fault_id));
	EXPECT_EQ(8, offsetof(struct hmirror_fault_answer, answer));
	EXPECT_EQ(5, hmirror_pt_levels(57));
	EXPECT_EQ(4, hmirror_pt_levels(48));
}

TEST_HARNESS_MAIN
