/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hmirror: device page tables.  Four-level radix tables in guest RAM (the
 * device walks them by DMA), one set per context.
 */
#ifndef HMIRROR_PT_H
#define HMIRROR_PT_H

#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/types.h>

struct device;
struct page;

#define HMIRROR_PT_ENTRIES	512
#define HMIRROR_PT_SHIFT(level)	(12 + 9 * ((level) - 1))
/* Tables a map of up to HMIRROR_PT_MAX_BATCH pages may need. */
#define HMIRROR_PT_MAX_BATCH	1024
#define HMIRROR_PT_CACHE	8
#define HMIRROR_HUGE_SIZE	(2ul << 20)
/* Tag on a zap entry: it was a 2 MiB leaf (addresses are page aligned). */
#define HMIRROR_ZAP_HUGE	1

/**
 * struct hmirror_pt_table - one 4 KiB table the device reads
 * @entries: CPU view of the table page
 * @dma: device address of the table page
 * @child: next-level tables (levels 2-4), indexed like @entries
 * @used: non-zero entries
 * @free_link: on a zap's free list once unlinked
 */
struct hmirror_pt_table {
	u64 *entries;
	dma_addr_t dma;
	struct hmirror_pt_table **child;
	unsigned int used;
	struct list_head free_link;
};

/**
 * struct hmirror_pt - a context's device page table
 * @dev: device the tables and pages are DMA-mapped for
 * @lock: the page-table lock; see Documentation/driver.rst for its rules
 * @root: level-4 table
 * @tables: tables allocated, root included
 * @mapped: valid 4 KiB leaf entries
 */
struct hmirror_pt {
	struct device *dev;
	struct mutex lock;	/* the page-table lock */
	struct hmirror_pt_table *root;
	unsigned long tables;
	unsigned long mapped;
};

/* Tables allocated ahead, so nothing is allocated under the lock. */
struct hmirror_pt_cache {
	struct hmirror_pt_table *t[HMIRROR_PT_CACHE];
	unsigned int n;
};

/**
 * struct hmirror_pt_zap - entries cleared but not yet released
 * @dma: device addresses of the pages whose entries were cleared, tagged
 *	with HMIRROR_ZAP_HUGE for 2 MiB leaves
 * @n: entries used in @dma
 * @max: capacity of @dma
 * @tables: tables unlinked, freed after the device TLB is invalidated
 */
struct hmirror_pt_zap {
	dma_addr_t *dma;
	unsigned int n;
	unsigned int max;
	struct list_head tables;
};

int hmirror_pt_init(struct hmirror_pt *pt, struct device *dev);
void hmirror_pt_fini(struct hmirror_pt *pt);
dma_addr_t hmirror_pt_root_dma(struct hmirror_pt *pt);

int hmirror_pt_cache_fill(struct hmirror_pt_cache *c, u64 start, u64 end);
void hmirror_pt_cache_drain(struct hmirror_pt_cache *c);

int hmirror_pt_map(struct hmirror_pt *pt, struct hmirror_pt_cache *c,
		   u64 va, struct page *page, bool write);
int hmirror_pt_map_huge(struct hmirror_pt *pt, struct hmirror_pt_cache *c,
			u64 va, struct page *head, bool write);
u64 hmirror_pt_lookup(struct hmirror_pt *pt, u64 va);
bool hmirror_pt_range_empty(struct hmirror_pt *pt, u64 start, u64 end);

int hmirror_pt_zap_init(struct hmirror_pt_zap *z, unsigned int max);
void hmirror_pt_zap_destroy(struct hmirror_pt_zap *z);
u64 hmirror_pt_clear(struct hmirror_pt *pt, u64 start, u64 end,
		     struct hmirror_pt_zap *z);
void hmirror_pt_zap_release(struct hmirror_pt *pt, struct hmirror_pt_zap *z);

#endif /* HMIRROR_PT_H */
