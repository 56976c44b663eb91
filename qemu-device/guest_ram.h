/* SPDX-License-Identifier: MIT */
/*
 * Guest RAM as seen by the device model: the QEMU memory-backend-file files
 * (several files = NUMA nodes, concatenated in order into one "RAM offset"
 * space), mapped MAP_SHARED into one contiguous host range followed by a
 * PROT_NONE guard, and the q35 guest-physical -> RAM offset map:
 *
 *   below_4g = min(total, lowmem)
 *   GPA [0, below_4g)                       -> offset GPA
 *   GPA [4 GiB, 4 GiB + total - below_4g)   -> offset below_4g + GPA - 4 GiB
 *   anything else                           -> invalid
 *
 * Every DMA the device does must go through guest_ram_translate() or
 * guest_ram_ptr(): nothing else turns a guest-supplied number into a host
 * address.
 */
#ifndef HMDEV_GUEST_RAM_H
#define HMDEV_GUEST_RAM_H

#include <stddef.h>
#include <stdint.h>

#define GUEST_RAM_MAX_FILES	16
#define GUEST_RAM_4G		0x100000000ull

struct guest_ram_file {
	char *path;
	uint64_t size;
	uint64_t ram_off;	/* where the file starts in RAM offset space */
};

struct guest_ram {
	uint8_t *base;		/* host address of RAM offset 0, NULL if unmapped */
	void *reserve;		/* whole reservation (incl. alignment and guard) */
	size_t reserve_len;
	uint64_t total;		/* bytes of RAM, sum of the file sizes */
	uint64_t lowmem;	/* q35 lowmem limit in use */
	uint64_t below_4g;	/* RAM mapped at GPA 0 */
	uint64_t above_4g;	/* RAM mapped at GPA 4 GiB */
	unsigned nfiles;
	struct guest_ram_file files[GUEST_RAM_MAX_FILES];
};

/* QEMU q35's default lowmem for a machine of @total bytes. */
uint64_t guest_ram_default_lowmem(uint64_t total);

/*
 * Set up the address map only (no files): for unit tests and for
 * guest_ram_open().  @lowmem 0 picks the q35 default.  Returns 0, or -1
 * if lowmem is invalid (above 4 GiB or not 4 KiB aligned).
 */
int guest_ram_set_layout(struct guest_ram *r, uint64_t total, uint64_t lowmem);

/*
 * Open and map @list, a comma separated list of files.  On error returns -1
 * with a one-line reason in @err; @r is then left unmapped.
 */
int guest_ram_open(struct guest_ram *r, const char *list, uint64_t lowmem,
		   char *err, size_t errlen);
void guest_ram_close(struct guest_ram *r);

/*
 * Translate the guest-physical range [gpa, gpa + len) to a RAM offset.
 * The whole range must be RAM and contiguous in RAM offset space (it may span
 * files, never the hole below 4 GiB); len 0 is invalid.  Overflow safe.
 * Returns 0 and sets *ram_off, or -1.
 */
int guest_ram_translate(const struct guest_ram *r, uint64_t gpa, uint64_t len,
			uint64_t *ram_off);

/* Host pointer to [gpa, gpa + len), or NULL if invalid or not mapped. */
void *guest_ram_ptr(const struct guest_ram *r, uint64_t gpa, uint64_t len);

/* Index of the file (NUMA node) holding RAM offset @ram_off, or -1. */
int guest_ram_file_of(const struct guest_ram *r, uint64_t ram_off);

#endif
