/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hmirror: device page tables.  Radix tables in guest RAM (the device walks
 * them by DMA), four or five levels as the device's address width says,
 * one set per context.
 */
#ifndef HMIRROR_PT_H
#define HMIRROR_PT_H

#include <linux/atomic.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/types.h>

struct device;
struct page;

/* Pages one map batch (a fault's run plus its fault-ahead window) covers. */
#define HMIRROR_PT_MAX_BATCH	1024
/* Tables such a batch can need: 3 leaf tables, 2 per directory level. */
#define HMIRROR_PT_CACHE	12
/* Empty tables a context keeps for its next faults: what one fill takes. */
#define HMIRROR_PT_SPARE_MAX	HMIRROR_PT_CACHE

/**
 * struct hmirror_pt_table - one 4 KiB table the device reads
 * @entries: CPU view of the table (DMA-coherent memory)
 * @dma: device address of the table
 * @ptr: per entry, what it points at for the CPU: the child table of a
 *	directory entry, the mapped page of a leaf (4 KiB, or the first page
 *	of a 2 MiB leaf); the entry's HUGE bit tells the two apart at level 2
 * @used: non-zero entries
 * @free_link: on a zap's or the graveyard's list once unlinked; on the
 *	spare list while empty and unlinked
 */
struct hmirror_pt_table {
	u64 *entries;
	dma_addr_t dma;
	void **ptr;
	unsigned int used;
	struct list_head free_link;
};

/**
 * struct hmirror_pt - a context's device page table
 * @dev: device the tables and pages are DMA-mapped for
 * @lock: the page-table lock; see Documentation/driver.rst for its rules
 * @root: top-level table
 * @levels: 4 or 5 (the device's va_bits)
 * @va_end: first address the device cannot translate (2^va_bits)
 * @huge: the device takes 2 MiB leaves
 * @tables: tables allocated, root included
 * @mapped: 4 KiB pages mapped (a 2 MiB leaf counts 512)
 * @vram_pfn: pfn of the DEVICE_PRIVATE page for device memory offset 0
 * @vram_pages: pages of device memory (0: none)
 * @spare_lock: protects @spare, @nspare and @spare_max (innermost lock)
 * @spare: empty tables no device can reach, for the next fault's cache
 * @nspare: tables on @spare
 * @spare_max: at most this many kept; 0 once the table is torn down
 * @tables_allocated: tables ever allocated, root included
 */
struct hmirror_pt {
	struct device *dev;
	struct mutex lock;	/* the page-table lock */
	struct hmirror_pt_table *root;
	unsigned int levels;
	u64 va_end;
	bool huge;
	unsigned long tables;
	unsigned long mapped;
	unsigned long vram_pfn;
	unsigned long vram_pages;
	spinlock_t spare_lock;	/* protects the three below */
	struct list_head spare;
	unsigned int nspare;
	unsigned int spare_max;
	atomic64_t tables_allocated;
};

/* Tables allocated ahead, so nothing is allocated under the lock. */
struct hmirror_pt_cache {
	struct hmirror_pt_table *t[HMIRROR_PT_CACHE];
	unsigned int n;
};

/**
 * struct hmirror_pt_leaf - a cleared leaf, released after the TLB flush
 * @dma: its DMA mapping
 * @page: the page it mapped; the device table held a reference on it
 * @huge: a 2 MiB leaf (@page is the first of its 512 pages)
 * @vram: a page of device memory (no DMA mapping)
 */
struct hmirror_pt_leaf {
	dma_addr_t dma;
	struct page *page;
	bool huge;
	bool vram;
};

/**
 * struct hmirror_pt_zap - entries cleared but not yet released
 * @leaf: the cleared leaves
 * @n: entries used in @leaf
 * @max: capacity of @leaf
 * @tables: tables unlinked, freed after the device TLB is invalidated
 */
struct hmirror_pt_zap {
	struct hmirror_pt_leaf *leaf;
	unsigned int n;
	unsigned int max;
	struct list_head tables;
};

/**
 * struct hmirror_pt_graveyard - what a device that is not known to be
 * quiescent might still reach: kept (pages referenced, DMA mapped, tables
 * allocated) until the device proves it stopped, else forever
 * @lock: protects the lists and counters
 * @leaves: struct hmirror_pt_grave batches
 * @tables: unlinked tables
 * @pages: 4 KiB pages held in @leaves
 * @leaked: pages whose record could not be allocated: never released
 * @closed: the device proved it stopped: nothing is kept any more
 */
struct hmirror_pt_graveyard {
	spinlock_t lock;	/* see kernel-doc above */
	struct list_head leaves;
	struct list_head tables;
	unsigned long pages;
	unsigned long leaked;
	bool closed;
};

int hmirror_pt_init(struct hmirror_pt *pt, struct device *dev,
		    unsigned int va_bits, bool huge);
void hmirror_pt_fini(struct hmirror_pt *pt, struct hmirror_pt_graveyard *g);
void hmirror_pt_set_vram(struct hmirror_pt *pt, unsigned long first_pfn,
			 unsigned long npages);
dma_addr_t hmirror_pt_root_dma(struct hmirror_pt *pt);

int hmirror_pt_cache_fill(struct hmirror_pt *pt, struct hmirror_pt_cache *c,
			  u64 start, u64 end);
void hmirror_pt_cache_drain(struct hmirror_pt *pt, struct hmirror_pt_cache *c);

int hmirror_pt_map(struct hmirror_pt *pt, struct hmirror_pt_cache *c,
		   u64 va, struct page **pages, unsigned long n, bool write,
		   unsigned long *mapped);
int hmirror_pt_map_huge(struct hmirror_pt *pt, struct hmirror_pt_cache *c,
			u64 va, struct page *head, bool write);
u64 hmirror_pt_lookup(struct hmirror_pt *pt, u64 va);
bool hmirror_pt_range_empty(struct hmirror_pt *pt, u64 start, u64 end);

int hmirror_pt_zap_init(struct hmirror_pt_zap *z, unsigned int max);
void hmirror_pt_zap_destroy(struct hmirror_pt_zap *z);
u64 hmirror_pt_clear(struct hmirror_pt *pt, u64 start, u64 end,
		     struct hmirror_pt_zap *z);
void hmirror_pt_zap_release(struct hmirror_pt *pt, struct hmirror_pt_zap *z);
bool hmirror_pt_zap_bury(struct hmirror_pt_zap *z,
			 struct hmirror_pt_graveyard *g);

void hmirror_pt_graveyard_init(struct hmirror_pt_graveyard *g);
unsigned long hmirror_pt_graveyard_pages(struct hmirror_pt_graveyard *g);
void hmirror_pt_graveyard_close(struct hmirror_pt_graveyard *g,
				struct device *dev);

#endif /* HMIRROR_PT_H */
