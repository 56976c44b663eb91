// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guest_ram.h"
#include "log.h"

#define RAM_ALIGN	(2ull << 20)	/* align the mapping for THP */


uint64_t guest_ram_default_lowmem(uint64_t total)
{
	/* hw/i386/pc_q35.c (QEMU 7.2) */
	return total >= 0xb0000000ull ? 0x80000000ull : 0xb0000000ull;
}

int guest_ram_set_layout(struct guest_ram *r, uint64_t total, uint64_t lowmem)
{
	if (!lowmem)
		lowmem = guest_ram_default_lowmem(total);
	if (lowmem > GUEST_RAM_4G || (lowmem & 4095))
		return -1;
	r->total = total;
	r->lowmem = lowmem;
	r->below_4g = total < lowmem ? total : lowmem;
	r->above_4g = total - r->below_4g;
	return 0;
}

int guest_ram_translate(const struct guest_ram *r, uint64_t gpa, uint64_t len,
			uint64_t *ram_off)
{
	uint64_t hi;

	if (len == 0)
		return -1;
	if (gpa < r->below_4g) {
		/* len <= below_4g - gpa cannot overflow */
		if (len > r->below_4g - gpa)
			return -1;
		*ram_off = gpa;
		return 0;
	}
	if (gpa < GUEST_RAM_4G)
		return -1;
	hi = gpa - GUEST_RAM_4G;
	if (hi >= r->above_4g || len > r->above_4g - hi)
		return -1;
	*ram_off = r->below_4g + hi;
	return 0;
}

void *guest_ram_ptr(const struct guest_ram *r, uint64_t gpa, uint64_t len)
{
	uint64_t off;

	if (!r || !r->base || guest_ram_translate(r, gpa, len, &off))
		return NULL;
	return r->base + off;
}

int guest_ram_file_of(const struct guest_ram *r, uint64_t ram_off)
{
	unsigned i;

	for (i = 0; i < r->nfiles; i++)
		if (ram_off >= r->files[i].ram_off &&
		    ram_off - r->files[i].ram_off < r->files[i].size)
			return (int)i;
	return -1;
}

void guest_ram_close(struct guest_ram *r)
{
	unsigned i;

	if (r->reserve)
		munmap(r->reserve, r->reserve_len);
	for (i = 0; i < r->nfiles; i++)
		free(r->files[i].path);
	memset(r, 0, sizeof(*r));
}

static int open_one(struct guest_ram *r, const char *path, int *fdp,
		    char *err, size_t errlen)
{
	long page = sysconf(_SC_PAGESIZE);
	struct guest_ram_file *f;
	struct stat st;
	int fd;

	if (r->nfiles >= GUEST_RAM_MAX_FILES) {
		hm_seterr(err, errlen, "too many RAM files (max %d)",
		       GUEST_RAM_MAX_FILES);
		return -1;
	}
	if (!*path) {
		hm_seterr(err, errlen, "empty RAM file name in --ram");
		return -1;
	}
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		hm_seterr(err, errlen, "cannot open RAM file %s: %s", path,
		       strerror(errno));
		return -1;
	}
	if (fstat(fd, &st)) {
		hm_seterr(err, errlen, "cannot stat RAM file %s: %s", path,
		       strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		hm_seterr(err, errlen, "RAM file %s is not a regular file", path);
		goto fail;
	}
	if (st.st_size == 0) {
		hm_seterr(err, errlen, "RAM file %s is empty", path);
		goto fail;
	}
	if (st.st_size % page) {
		hm_seterr(err, errlen,
		       "RAM file %s: size %lld is not a multiple of the page size",
		       path, (long long)st.st_size);
		goto fail;
	}
	if ((uint64_t)st.st_size > (1ull << 46) - r->total) {
		hm_seterr(err, errlen, "RAM files too large");
		goto fail;
	}
	f = &r->files[r->nfiles];
	f->path = strdup(path);
	if (!f->path) {
		hm_seterr(err, errlen, "out of memory");
		goto fail;
	}
	f->size = (uint64_t)st.st_size;
	f->ram_off = r->total;
	r->total += f->size;
	r->nfiles++;
	*fdp = fd;
	return 0;
fail:
	close(fd);
	return -1;
}

int guest_ram_open(struct guest_ram *r, const char *list, uint64_t lowmem,
		   char *err, size_t errlen)
{
	int fds[GUEST_RAM_MAX_FILES];
	char *copy, *p, *next;
	unsigned i;
	uintptr_t a;
	int ret = -1;

	memset(r, 0, sizeof(*r));
	copy = strdup(list ? list : "");
	if (!copy) {
		hm_seterr(err, errlen, "out of memory");
		return -1;
	}
	for (p = copy; p; p = next) {
		next = strchr(p, ',');
		if (next)
			*next++ = '\0';
		if (open_one(r, p, &fds[r->nfiles], err, errlen))
			goto out;
	}
	if (guest_ram_set_layout(r, r->total, lowmem)) {
		hm_seterr(err, errlen,
		       "invalid lowmem 0x%llx (must be 4 KiB aligned, <= 4 GiB)",
		       (unsigned long long)lowmem);
		goto out;
	}

	/* One reservation: alignment slack + RAM + at least 2 MiB guard. */
	r->reserve_len = r->total + 2 * RAM_ALIGN;
	r->reserve = mmap(NULL, r->reserve_len, PROT_NONE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r->reserve == MAP_FAILED) {
		r->reserve = NULL;
		hm_seterr(err, errlen, "cannot reserve %llu bytes for RAM: %s",
		       (unsigned long long)r->total, strerror(errno));
		goto out;
	}
	a = ((uintptr_t)r->reserve + RAM_ALIGN - 1) & ~(uintptr_t)(RAM_ALIGN - 1);
	r->base = (uint8_t *)a;
	for (i = 0; i < r->nfiles; i++) {
		void *want = r->base + r->files[i].ram_off;
		void *m = mmap(want, r->files[i].size, PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_FIXED, fds[i], 0);

		if (m != want) {
			hm_seterr(err, errlen, "cannot map RAM file %s: %s",
			       r->files[i].path, strerror(errno));
			goto out;
		}
	}
	ret = 0;
out:
	for (i = 0; i < r->nfiles; i++)
		close(fds[i]);
	free(copy);
	if (ret)
		guest_ram_close(r);
	return ret;
}
