/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hmirror: the device's own memory as DEVICE_PRIVATE pages, and migration
 * of process pages into it and back (hmirror_devmem.c).
 */
#ifndef HMIRROR_DEVMEM_H
#define HMIRROR_DEVMEM_H

#include <linux/types.h>

struct hmirror_device;
struct mm_struct;
struct page;

/**
 * struct hmirror_devmem_stats - device memory counters
 * @pages: pages of device memory the driver manages
 * @used: pages holding process data now
 * @to_device: pages migrated into device memory
 * @to_system: pages migrated back (CPU touch, request, eviction)
 * @evicted: of those, pages pushed out to make room
 * @lost: pages whose data could not be copied back (the device was dead):
 *	the process got zeroed pages
 */
struct hmirror_devmem_stats {
	u64 pages;
	u64 used;
	u64 to_device;
	u64 to_system;
	u64 evicted;
	u64 lost;
};

#if IS_ENABLED(CONFIG_DEVICE_PRIVATE)
int hmirror_devmem_init(struct hmirror_device *hdev);
void hmirror_devmem_close(struct hmirror_device *hdev);
void hmirror_devmem_fini(struct hmirror_device *hdev);
bool hmirror_devmem_span(struct hmirror_device *hdev, unsigned long *first_pfn,
			 unsigned long *npages);
void hmirror_devmem_touch(struct hmirror_device *hdev, struct page *page);
int hmirror_devmem_to_device(struct hmirror_device *hdev, struct mm_struct *mm,
			     u64 start, u64 end, unsigned long *migrated);
int hmirror_devmem_to_system(struct hmirror_device *hdev, struct mm_struct *mm,
			     u64 start, u64 end, unsigned long *migrated);
int hmirror_devmem_evict_all(struct hmirror_device *hdev);
void hmirror_devmem_stats(struct hmirror_device *hdev,
			  struct hmirror_devmem_stats *st);
#else
static inline int hmirror_devmem_init(struct hmirror_device *hdev)
{
	return 0;
}

static inline void hmirror_devmem_close(struct hmirror_device *hdev) { }
static inline void hmirror_devmem_fini(struct hmirror_device *hdev) { }

static inline bool hmirror_devmem_span(struct hmirror_device *hdev,
				       unsigned long *first_pfn,
				       unsigned long *npages)
{
	return false;
}

static inline void hmirror_devmem_touch(struct hmirror_device *hdev,
					struct page *page) { }

static inline int hmirror_devmem_to_device(struct hmirror_device *hdev,
					   struct mm_struct *mm, u64 start,
					   u64 end, unsigned long *migrated)
{
	return -EOPNOTSUPP;
}

static inline int hmirror_devmem_to_system(struct hmirror_device *hdev,
					   struct mm_struct *mm, u64 start,
					   u64 end, unsigned long *migrated)
{
	return -EOPNOTSUPP;
}

static inline int hmirror_devmem_evict_all(struct hmirror_device *hdev)
{
	return -EOPNOTSUPP;
}

static inline void hmirror_devmem_stats(struct hmirror_device *hdev,
					struct hmirror_devmem_stats *st)
{
	*st = (struct hmirror_devmem_stats){ };
}
#endif

#endif /* HMIRROR_DEVMEM_H */
