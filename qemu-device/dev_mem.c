// SPDX-License-Identifier: MIT
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "dev_mem.h"

/* Larger than any single access (a page): a stray one lands in a guard. */
#define DEV_MEM_GUARD	(64u << 10)

int dev_mem_init(struct dev_mem *m, uint64_t size)
{
	uint8_t *r;

	memset(m, 0, sizeof(*m));
	if (!size)
		return 0;
	if (size & 4095 || size > SIZE_MAX - 2 * DEV_MEM_GUARD) {
		errno = EINVAL;
		return -1;
	}
	/*
	 * Reserved, not committed: untouched pages cost nothing and read as
	 * zero, so a large device memory the driver never fills is free.
	 */
	m->reserve_len = (size_t)size + 2 * DEV_MEM_GUARD;
	r = mmap(NULL, m->reserve_len, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED) {
		m->reserve_len = 0;
		return -1;
	}
	if (mprotect(r + DEV_MEM_GUARD, (size_t)size, PROT_READ | PROT_WRITE)) {
		int e = errno;

		munmap(r, m->reserve_len);
		memset(m, 0, sizeof(*m));
		errno = e;
		return -1;
	}
	m->reserve = r;
	m->base = r + DEV_MEM_GUARD;
	m->size = size;
	return 0;
}

void dev_mem_fini(struct dev_mem *m)
{
	if (m->reserve)
		munmap(m->reserve, m->reserve_len);
	memset(m, 0, sizeof(*m));
}

void *dev_mem_ptr(const struct dev_mem *m, uint64_t off, uint64_t len)
{
	/* len <= size - off cannot overflow once off < size */
	if (!m->base || !len || off >= m->size || len > m->size - off)
		return NULL;
	return m->base + off;
}
