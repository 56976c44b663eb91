// SPDX-License-Identifier: MIT
/*
 * Guest RAM for the fuzz targets, laid out by the input: one to four RAM
 * files (memfds, so their sizes can be anything a page multiple: off a
 * 2 MiB boundary, a few pages, several MiB) and a lowmem that cuts them
 * into the q35 windows anywhere (4 KiB aligned, odd, tiny, past the end).
 * They are opened by guest_ram_open() like hmirror-dev's --ram, which maps
 * them behind a guard of at least 2 MiB; the device gets that view.  The
 * guest CPU (the harness) writes through a second mapping of the same
 * files, so the device's view can carry the oracle's page protections
 * (fuzz_oracle.c) without getting in the guest's way.
 *
 * Before the real layout, the input may ask for a bad one (an empty name,
 * a missing file, /dev/null, an empty file, a size off the page size, 17
 * files, files too large, a bad lowmem): guest_ram_open() must refuse it
 * with a message and leave nothing mapped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_guest.h"

struct fz_ram fz_ram;

static int ram_fd[FZ_MAX_FILES];
static int empty_fd, odd_fd, big_fd[2];	/* for the bad layouts */
static uint64_t data_lo, data_hi, table_lo, table_hi;

static int new_memfd(const char *name, uint64_t size)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	if (fd < 0 || ftruncate(fd, (off_t)size))
		fz_fatal("memfd %s: %s", name, strerror(errno));
	return fd;
}

static void init_once(void)
{
	static bool done;
	unsigned i;

	if (done)
		return;
	done = true;
	for (i = 0; i < FZ_MAX_FILES; i++)
		ram_fd[i] = new_memfd("fuzz-ram", 0);
	empty_fd = new_memfd("fuzz-empty", 0);
	odd_fd = new_memfd("fuzz-odd", FZ_PG + 1);
	/* sparse: together more than the model's 2^46 limit */
	big_fd[0] = new_memfd("fuzz-big0", 1ull << 45);
	big_fd[1] = new_memfd("fuzz-big1", (1ull << 45) + FZ_PG);
}

static void fd_path(char *buf, size_t len, int fd)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

/* Pages of one RAM file, from two input bytes. */
static uint64_t file_pages(uint16_t sz)
{
	uint16_t v = sz & 0x3fff;
	uint64_t k = 1 + v % 3, d = 1 + (v >> 2) % 15;

	switch (sz >> 14) {
	case 0:
		return 16 + v % 1024;			/* 64 KiB .. 4 MiB */
	case 1:
		return 512 * k;				/* whole 2 MiB */
	case 2:
		return (v & 0x40) ? 512 * k - d : 512 * k + d;	/* just off */
	default:
		return 1 + v % 1536;			/* 4 KiB .. 6 MiB */
	}
}

static uint64_t choose_lowmem(unsigned sel, uint16_t lw, uint64_t total)
{
	uint64_t v;

	switch (sel) {
	case 0:
		return 0;				/* the q35 default */
	case 1:
		return total;
	case 2:
		v = FZ_PG * (1 + lw % 64);
		return v < total ? total - v : FZ_PG;	/* a small high window */
	case 3:
		return FZ_HUGE * (1 + lw % 4) + FZ_PG * (1 + (lw >> 2) % 511);
	case 4:
		return FZ_PG * (1 + lw % 64);		/* a tiny low window */
	case 5:
		return FZ_PG * (1 + lw);
	case 6:
		return FZ_HUGE * (1 + lw % 8);
	default:
		v = (total / 2) & ~(FZ_PG - 1);
		return v ? v : FZ_PG;
	}
}

/* guest_ram_open() must refuse @list, say why, and leave @r unmapped. */
static void expect_refused(const char *list, uint64_t lowmem, const char *why)
{
	struct guest_ram r;
	char err[512] = "";

	if (!guest_ram_open(&r, list, lowmem, err, sizeof(err)))
		fz_fatal("guest_ram_open accepted %s (%s)", why, list);
	if (!err[0])
		fz_fatal("guest_ram_open refused %s without a reason", why);
	if (r.base || r.reserve || r.nfiles || r.total)
		fz_fatal("guest_ram_open left state behind after refusing %s", why);
	if (fz.verbose)
		fprintf(stderr, "ram: refused %s: %s\n", why, err);
}

static void bad_layout(unsigned sel, uint16_t lw)
{
	char a[64], b[64], list[17 * 64];
	unsigned i;

	fd_path(a, sizeof(a), ram_fd[0]);
	switch (sel) {
	case 1:
		snprintf(list, sizeof(list), ",%s", a);
		expect_refused(list, 0, "an empty file name");
		break;
	case 2:
		expect_refused("/nonexistent/hmirror-fuzz-ram", 0, "a missing file");
		break;
	case 3:
		expect_refused("/dev/null", 0, "a character device");
		break;
	case 4:
		fd_path(b, sizeof(b), empty_fd);
		expect_refused(b, 0, "an empty file");
		break;
	case 5:
		fd_path(b, sizeof(b), odd_fd);
		expect_refused(b, 0, "a size off the page size");
		break;
	case 6:
		list[0] = '\0';
		for (i = 0; i < GUEST_RAM_MAX_FILES + 1; i++) {
			strcat(list, i ? "," : "");
			strcat(list, a);
		}
		expect_refused(list, 0, "too many files");
		break;
	default:
		if (lw & 1) {
			fd_path(a, sizeof(a), big_fd[0]);
			fd_path(b, sizeof(b), big_fd[1]);
			snprintf(list, sizeof(list), "%s,%s", a, b);
			expect_refused(list, 0, "files over 2^46 bytes");
		} else {
			expect_refused(a, lw & 2 ? FZ_G4 + FZ_PG : FZ_PG + 8,
				       "a bad lowmem");
		}
		break;
	}
}

void fz_ram_open(struct fz_in *in)
{
	uint8_t r0 = fz_u8(in);
	unsigned nfiles = 1 + (r0 & 3), lowsel = (r0 >> 2) & 7, bad = r0 >> 5;
	char list[FZ_MAX_FILES * 64] = "", p[64], err[512] = "";
	struct fz_ram *m = &fz_ram;
	uint64_t total = 0, lm, off, split;
	uint16_t lw;
	unsigned i;

	init_once();
	memset(m, 0, sizeof(*m));
	for (i = 0; i < nfiles; i++) {
		m->size[i] = file_pages(fz_u16(in)) * FZ_PG;
		/* emptied, then sized: a fresh zeroed file for every input */
		if (ftruncate(ram_fd[i], 0) ||
		    ftruncate(ram_fd[i], (off_t)m->size[i]))
			fz_fatal("ftruncate RAM file: %s", strerror(errno));
		fd_path(p, sizeof(p), ram_fd[i]);
		strcat(list, i ? "," : "");
		strcat(list, p);
		total += m->size[i];
	}
	lw = fz_u16(in);
	lm = choose_lowmem(lowsel, lw, total);
	if (bad)
		bad_layout(bad, lw);

	if (guest_ram_open(&m->r, list, lm, err, sizeof(err)))
		fz_fatal("guest_ram_open refused a good layout: %s", err);
	m->nfiles = nfiles;
	m->total = total;
	/* the q35 split, from the spec (not from guest_ram.c) */
	m->lowmem = lm ? lm : total >= 0xb0000000ull ? 0x80000000ull : 0xb0000000ull;
	m->below = total < m->lowmem ? total : m->lowmem;
	m->above = total - m->below;
	m->nframes = total / FZ_PG;
	if (m->r.total != total || m->r.below_4g != m->below ||
	    m->r.above_4g != m->above || m->r.nfiles != nfiles)
		fz_fatal("guest_ram_open: total/below/above/files 0x%llx/0x%llx/0x%llx/%u, want 0x%llx/0x%llx/0x%llx/%u",
			 (unsigned long long)m->r.total,
			 (unsigned long long)m->r.below_4g,
			 (unsigned long long)m->r.above_4g, m->r.nfiles,
			 (unsigned long long)total, (unsigned long long)m->below,
			 (unsigned long long)m->above, nfiles);

	/* the guest CPU's view: the same files, contiguous, elsewhere */
	m->cpu_len = total;
	m->cpu = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
		      MAP_NORESERVE, -1, 0);
	if (m->cpu == MAP_FAILED)
		fz_fatal("mmap CPU view: %s", strerror(errno));
	for (i = 0, off = 0; i < nfiles; off += m->size[i], i++)
		if (mmap(m->cpu + off, m->size[i], PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_FIXED, ram_fd[i], 0) != m->cpu + off)
			fz_fatal("mmap CPU view of file %u: %s", i, strerror(errno));

	/* data frames from the bottom, tables from the top of RAM */
	split = (total / 2) & ~(FZ_PG - 1);
	if (split < 4 * FZ_PG) {
		data_lo = table_lo = 0;
		data_hi = table_hi = total;
	} else {
		data_lo = split > (128u << 10) ? (64u << 10) : 0;
		data_hi = table_lo = split;
		table_hi = total;
	}
	m->next_data = data_lo;
	m->next_table = table_hi - FZ_PG;
}

void fz_ram_close(void)
{
	if (fz_ram.cpu)
		munmap(fz_ram.cpu, fz_ram.cpu_len);
	guest_ram_close(&fz_ram.r);
	if (fz_ram.r.base)
		fz_fatal("guest_ram_close left RAM mapped");
	memset(&fz_ram, 0, sizeof(fz_ram));
}

uint64_t *fz_cpu_word(uint64_t gpa)
{
	if ((gpa & 7) || !fz_ram_has(gpa, 8))
		return NULL;
	return (uint64_t *)(void *)(fz_ram.cpu + fz_ram_off(gpa));
}

uint64_t fz_frame_data(void)
{
	uint64_t off = fz_ram.next_data;

	fz_ram.next_data += FZ_PG;
	if (fz_ram.next_data >= data_hi)
		fz_ram.next_data = data_lo;
	return fz_ram_gpa(off);
}

uint64_t fz_frame_table(void)
{
	uint64_t off = fz_ram.next_table;

	if (fz_ram.next_table <= table_lo)
		fz_ram.next_table = table_hi - FZ_PG;
	else
		fz_ram.next_table -= FZ_PG;
	return fz_ram_gpa(off);
}

/*
 * A 2 MiB aligned guest-physical address in window @sel & 1 (0 low, 1
 * high; an empty window means the other): the one holding the window's
 * end (it straddles it unless the window is a 2 MiB multiple), the last
 * whole one, the first, or any.
 */
uint64_t fz_huge_gpa(uint8_t sel)
{
	bool high = (sel & 1) ? fz_ram.above != 0 : fz_ram.below == 0;
	uint64_t size = high ? fz_ram.above : fz_ram.below;
	uint64_t base = high ? FZ_G4 : 0, nk = size / FZ_HUGE, k;

	switch ((sel >> 1) & 3) {
	case 0:
		k = nk;
		break;
	case 1:
		k = nk ? nk - 1 : 0;
		break;
	case 2:
		k = 0;
		break;
	default:
		k = (sel >> 3) % (nk + 1);
		break;
	}
	return base + k * FZ_HUGE;
}

/* File holding RAM offset @off, by the sizes we gave (-1 past the end). */
static int file_of(uint64_t off)
{
	uint64_t start = 0;
	unsigned i;

	for (i = 0; i < fz_ram.nfiles; start += fz_ram.size[i], i++)
		if (off - start < fz_ram.size[i])
			return (int)i;
	return -1;
}

void fz_ram_probe(struct fz_in *in)
{
	static const uint64_t lens[8] = {
		1, 8, FZ_PG, FZ_HUGE, FZ_PG + 1, 0, ~0ull, 1ull << 32,
	};
	uint8_t s = fz_u8(in);
	uint64_t d = fz_u16(in), bases[8] = {
		0, fz_ram.below, FZ_G4, FZ_G4 + fz_ram.above, fz_ram.total,
		fz_ram.lowmem, FZ_G4 - FZ_HUGE, fz_u64(in),
	};
	uint64_t gpa = (s & 0x40) ? bases[s & 7] - d : bases[s & 7] + d;
	uint64_t len = (s & 0x80) ? d + 1 : lens[(s >> 3) & 7], off = ~0ull;
	bool ok = !guest_ram_translate(&fz_ram.r, gpa, len, &off);
	void *p = guest_ram_ptr(&fz_ram.r, gpa, len);

	if (ok != fz_ram_has(gpa, len))
		fz_fatal("guest_ram_translate(0x%llx, 0x%llx) %s, the q35 map says %s",
			 (unsigned long long)gpa, (unsigned long long)len,
			 ok ? "accepted" : "refused",
			 ok ? "outside RAM" : "inside one window");
	if (ok && off != fz_ram_off(gpa))
		fz_fatal("guest_ram_translate(0x%llx): offset 0x%llx, want 0x%llx",
			 (unsigned long long)gpa, (unsigned long long)off,
			 (unsigned long long)fz_ram_off(gpa));
	if (p != (ok ? fz_ram.r.base + off : NULL))
		fz_fatal("guest_ram_ptr disagrees with guest_ram_translate");
	off = ok ? off : d * FZ_PG;
	if (guest_ram_file_of(&fz_ram.r, off) != file_of(off))
		fz_fatal("guest_ram_file_of(0x%llx) = %d, want %d",
			 (unsigned long long)off, guest_ram_file_of(&fz_ram.r, off),
			 file_of(off));
}
