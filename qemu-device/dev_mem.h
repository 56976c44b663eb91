/* SPDX-License-Identifier: MIT */
/*
 * Device memory ("VRAM", device ABI 2.1, HMIRROR_FEAT_VRAM): the device's
 * own pages.  They live in the model's private anonymous memory, neither in
 * BAR2 nor in guest RAM, so the guest CPU cannot reach them; the device
 * reaches them through VRAM leaf entries of its page tables and through
 * MIGRATE.  Zero at start (pages are allocated on first write) and kept
 * across device resets: memory, not state.  The mapping sits between
 * PROT_NONE guards, so an access computed past either end crashes instead
 * of touching the model's other memory.
 *
 * Every access goes through dev_mem_ptr(): nothing else turns a
 * device-memory offset into a host address.
 */
#ifndef HMDEV_DEV_MEM_H
#define HMDEV_DEV_MEM_H

#include <stddef.h>
#include <stdint.h>

struct dev_mem {
	uint8_t *base;		/* host address of offset 0, NULL: none */
	uint64_t size;		/* bytes */
	void *reserve;		/* whole mapping, guards included */
	size_t reserve_len;
};

/*
 * @size bytes (a multiple of 4 KiB; 0: no device memory), zeroed.  0, or
 * -1 with errno set (@m is then empty).
 */
int dev_mem_init(struct dev_mem *m, uint64_t size);
void dev_mem_fini(struct dev_mem *m);

/* Host pointer to [off, off + len), or NULL if not all device memory. */
void *dev_mem_ptr(const struct dev_mem *m, uint64_t off, uint64_t len);

#endif
