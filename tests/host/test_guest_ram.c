// SPDX-License-Identifier: MIT
/* Guest RAM files and guest-physical address translation. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guest_ram.h"
#include "kselftest_harness.h"

#define G4	0x100000000ull
#define MiB	(1ull << 20)
#define GiB	(1ull << 30)

/* Reference translation in 128-bit arithmetic. */
static int ref_translate(const struct guest_ram *r, uint64_t gpa, uint64_t len,
			 uint64_t *off)
{
	unsigned __int128 end = (unsigned __int128)gpa + len;

	if (!len)
		return -1;
	if (end <= r->below_4g) {
		*off = gpa;
		return 0;
	}
	if (gpa >= G4 && end <= (unsigned __int128)G4 + r->above_4g) {
		*off = r->below_4g + (gpa - G4);
		return 0;
	}
	return -1;
}

#define XLATE_OK(r, gpa, len, want) do { \
	uint64_t __off = ~0ull; \
	EXPECT_EQ(0, guest_ram_translate((r), (gpa), (len), &__off)) \
		TH_LOG("gpa 0x%llx len 0x%llx", (unsigned long long)(gpa), \
		       (unsigned long long)(len)); \
	EXPECT_EQ((uint64_t)(want), __off); \
} while (0)

#define XLATE_BAD(r, gpa, len) do { \
	uint64_t __off = 12345; \
	EXPECT_EQ(-1, guest_ram_translate((r), (gpa), (len), &__off)) \
		TH_LOG("gpa 0x%llx len 0x%llx accepted", \
		       (unsigned long long)(gpa), (unsigned long long)(len)); \
	EXPECT_EQ(12345, __off); \
} while (0)

TEST(small_ram_all_below_4g)
{
	struct guest_ram r = { 0 };

	ASSERT_EQ(0, guest_ram_set_layout(&r, GiB, 0));
	EXPECT_EQ(0xb0000000ull, r.lowmem);
	EXPECT_EQ(GiB, r.below_4g);
	EXPECT_EQ(0, r.above_4g);
	XLATE_OK(&r, 0, 4096, 0);
	XLATE_OK(&r, GiB - 1, 1, GiB - 1);
	XLATE_OK(&r, 0, GiB, 0);
	XLATE_BAD(&r, GiB - 1, 2);
	XLATE_BAD(&r, GiB, 1);
	XLATE_BAD(&r, 0, GiB + 1);
	XLATE_BAD(&r, G4, 1);
	XLATE_BAD(&r, G4 - 1, 1);
}

TEST(large_ram_split_at_2g)
{
	struct guest_ram r = { 0 };

	ASSERT_EQ(0, guest_ram_set_layout(&r, 4 * GiB, 0));
	EXPECT_EQ(0x80000000ull, r.lowmem);
	EXPECT_EQ(2 * GiB, r.below_4g);
	EXPECT_EQ(2 * GiB, r.above_4g);
	XLATE_OK(&r, 2 * GiB - 4096, 4096, 2 * GiB - 4096);
	XLATE_BAD(&r, 2 * GiB - 4096, 4097);	/* into the hole */
	XLATE_BAD(&r, 2 * GiB, 1);		/* hole */
	XLATE_BAD(&r, 3 * GiB, 4096);		/* hole */
	XLATE_BAD(&r, G4 - 8, 16);		/* hole into high RAM */
	XLATE_OK(&r, G4, 4096, 2 * GiB);
	XLATE_OK(&r, G4 + 2 * GiB - 1, 1, 4 * GiB - 1);
	XLATE_OK(&r, G4, 2 * GiB, 2 * GiB);
	XLATE_BAD(&r, G4 + 2 * GiB - 1, 2);	/* past the end */
	XLATE_BAD(&r, G4 + 2 * GiB, 1);
	XLATE_BAD(&r, G4 - 1, 2 * GiB + 1);
}

TEST(q35_lowmem_threshold)
{
	struct guest_ram r = { 0 };

	ASSERT_EQ(0, guest_ram_set_layout(&r, 0xb0000000ull, 0));
	EXPECT_EQ(0x80000000ull, r.below_4g);
	EXPECT_EQ(0x30000000ull, r.above_4g);
	ASSERT_EQ(0, guest_ram_set_layout(&r, 0xb0000000ull - 4096, 0));
	EXPECT_EQ(0xb0000000ull - 4096, r.below_4g);
	EXPECT_EQ(0, r.above_4g);
	/* explicit lowmem, larger than RAM */
	ASSERT_EQ(0, guest_ram_set_layout(&r, 16 * MiB, 0xc0000000ull));
	EXPECT_EQ(16 * MiB, r.below_4g);
	EXPECT_EQ(0, r.above_4g);
	/* explicit lowmem, smaller */
	ASSERT_EQ(0, guest_ram_set_layout(&r, 16 * MiB, MiB));
	EXPECT_EQ(MiB, r.below_4g);
	EXPECT_EQ(15 * MiB, r.above_4g);
	XLATE_OK(&r, G4 + 4096, 8, MiB + 4096);
	/* invalid lowmem */
	EXPECT_EQ(-1, guest_ram_set_layout(&r, 16 * MiB, G4 + 4096));
	EXPECT_EQ(-1, guest_ram_set_layout(&r, 16 * MiB, MiB + 1));
	EXPECT_EQ(0, guest_ram_set_layout(&r, 16 * MiB, G4));
}

TEST(overflow_and_empty_ranges)
{
	struct guest_ram r = { 0 };

	ASSERT_EQ(0, guest_ram_set_layout(&r, 4 * GiB, 0));
	XLATE_BAD(&r, 0, 0);			/* len 0 is invalid */
	XLATE_BAD(&r, G4, 0);
	XLATE_BAD(&r, ~0ull, 2);
	XLATE_BAD(&r, ~0ull, 1);
	XLATE_BAD(&r, ~0ull - 4095, 4096);
	XLATE_BAD(&r, 0, ~0ull);
	XLATE_BAD(&r, 4096, ~0ull);
	XLATE_BAD(&r, G4, ~0ull);
	XLATE_BAD(&r, G4 + 4096, ~0ull - 4095);	/* wraps to a small end */
	XLATE_BAD(&r, 1ull << 63, 1ull << 63);
	XLATE_BAD(&r, 2 * GiB - 1, ~0ull);
}

TEST(random_ranges_match_reference)
{
	static const uint64_t totals[] = {
		4096, 16 * MiB, 0xb0000000ull - 4096, 0xb0000000ull, 6 * GiB, 1ull << 45,
	};
	static const uint64_t lowmems[] = { 0, MiB, 0x80000000ull, G4 };
	unsigned t, l, i, mismatches = 0;
	uint64_t seed = 0x9e3779b97f4a7c15ull;

	for (t = 0; t < sizeof(totals) / sizeof(totals[0]); t++)
	for (l = 0; l < sizeof(lowmems) / sizeof(lowmems[0]); l++) {
		struct guest_ram r = { 0 };
		uint64_t pts[8];

		ASSERT_EQ(0, guest_ram_set_layout(&r, totals[t], lowmems[l]));
		EXPECT_EQ(totals[t], r.below_4g + r.above_4g);
		/* interesting points: edges of both windows */
		pts[0] = 0; pts[1] = r.below_4g; pts[2] = G4;
		pts[3] = G4 + r.above_4g; pts[4] = ~0ull; pts[5] = r.lowmem;
		pts[6] = 1ull << 63; pts[7] = G4 - 1;
		for (i = 0; i < 20000; i++) {
			uint64_t gpa, len, a = ~0ull, b = ~0ull;
			int ra, rb;

			seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
			gpa = pts[seed % 8] + (int64_t)((seed >> 8) % 9) - 4;
			if (seed & (1ull << 40))
				gpa = seed >> 20;
			seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
			switch (seed % 4) {
			case 0: len = seed >> 52; break;
			case 1: len = pts[(seed >> 3) % 8] - gpa + ((seed >> 8) % 5) - 2; break;
			case 2: len = ~0ull - (seed >> 60); break;
			default: len = seed >> 30; break;
			}
			ra = guest_ram_translate(&r, gpa, len, &a);
			rb = ref_translate(&r, gpa, len, &b);
			if (ra != rb || (ra == 0 && a != b)) {
				if (mismatches++ < 5)
					TH_LOG("total 0x%llx lowmem 0x%llx gpa 0x%llx len 0x%llx: %d/%llx vs %d/%llx",
					       (unsigned long long)totals[t],
					       (unsigned long long)lowmems[l],
					       (unsigned long long)gpa, (unsigned long long)len,
					       ra, (unsigned long long)a, rb,
					       (unsigned long long)b);
			}
		}
	}
	EXPECT_EQ(0, mismatches);
}

/* ---- real files ----------------------------------------------------- */

FIXTURE(files) {
	char dir[64];
	char a[96], b[96], c[200];
};

FIXTURE_SETUP(files)
{
	int fd;

	strcpy(self->dir, "/tmp/hmram.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->a, sizeof(self->a), "%s/node0", self->dir);
	snprintf(self->b, sizeof(self->b), "%s/node1", self->dir);
	snprintf(self->c, sizeof(self->c), "%s,%s", self->a, self->b);
	fd = open(self->a, O_RDWR | O_CREAT, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, MiB));
	ASSERT_EQ(8, pwrite(fd, "AAAAAAAA", 8, MiB - 8));
	close(fd);
	fd = open(self->b, O_RDWR | O_CREAT, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, 2 * MiB));
	ASSERT_EQ(8, pwrite(fd, "BBBBBBBB", 8, 0));
	close(fd);
}

FIXTURE_TEARDOWN(files)
{
	char p[128];

	unlink(self->a);
	unlink(self->b);
	snprintf(p, sizeof(p), "%s/empty", self->dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/odd", self->dir);
	unlink(p);
	rmdir(self->dir);
}

TEST_F(files, two_nodes_low)
{
	struct guest_ram r;
	char err[256] = "", buf[16];
	uint8_t *p;
	int fd;

	ASSERT_EQ(0, guest_ram_open(&r, self->c, 0, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_EQ(2u, r.nfiles);
	EXPECT_EQ(3 * MiB, r.total);
	EXPECT_EQ(3 * MiB, r.below_4g);
	EXPECT_EQ(0, r.files[0].ram_off);
	EXPECT_EQ(MiB, r.files[1].ram_off);
	EXPECT_EQ(0, guest_ram_file_of(&r, MiB - 1));
	EXPECT_EQ(1, guest_ram_file_of(&r, MiB));
	EXPECT_EQ(-1, guest_ram_file_of(&r, 3 * MiB));
	EXPECT_EQ(0, (uintptr_t)r.base & (2 * MiB - 1));

	/* a range spanning both files is one contiguous host range */
	p = guest_ram_ptr(&r, MiB - 8, 16);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(r.base + MiB - 8, p);
	EXPECT_EQ(0, memcmp(p, "AAAAAAAABBBBBBBB", 16));
	memcpy(p, "0123456789abcdef", 16);
	/* MAP_SHARED: the writes are in the files */
	fd = open(self->a, O_RDONLY);
	ASSERT_EQ(8, pread(fd, buf, 8, MiB - 8));
	close(fd);
	EXPECT_EQ(0, memcmp(buf, "01234567", 8));
	fd = open(self->b, O_RDONLY);
	ASSERT_EQ(8, pread(fd, buf, 8, 0));
	close(fd);
	EXPECT_EQ(0, memcmp(buf, "89abcdef", 8));

	EXPECT_NE(NULL, guest_ram_ptr(&r, 0, 3 * MiB));
	EXPECT_EQ(NULL, guest_ram_ptr(&r, 0, 3 * MiB + 1));
	EXPECT_EQ(NULL, guest_ram_ptr(&r, 3 * MiB, 1));
	EXPECT_EQ(NULL, guest_ram_ptr(&r, G4, 1));
	EXPECT_EQ(NULL, guest_ram_ptr(&r, 0, 0));
	EXPECT_EQ(NULL, guest_ram_ptr(&r, ~0ull, 2));
	guest_ram_close(&r);
	EXPECT_EQ(NULL, r.base);
	EXPECT_EQ(NULL, guest_ram_ptr(&r, 0, 1));
}

TEST_F(files, second_node_above_4g)
{
	struct guest_ram r;
	char err[256] = "";
	uint8_t *p;

	/* lowmem 1 MiB: node0 at GPA 0, node1 at GPA 4 GiB */
	ASSERT_EQ(0, guest_ram_open(&r, self->c, MiB, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_EQ(MiB, r.below_4g);
	EXPECT_EQ(2 * MiB, r.above_4g);
	p = guest_ram_ptr(&r, G4, 8);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(0, memcmp(p, "BBBBBBBB", 8));
	p = guest_ram_ptr(&r, MiB - 8, 8);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(0, memcmp(p, "AAAAAAAA", 8));
	EXPECT_EQ(NULL, guest_ram_ptr(&r, MiB - 8, 16));	/* into the hole */
	EXPECT_EQ(NULL, guest_ram_ptr(&r, MiB, 8));
	EXPECT_NE(NULL, guest_ram_ptr(&r, G4 + 2 * MiB - 8, 8));
	EXPECT_EQ(NULL, guest_ram_ptr(&r, G4 + 2 * MiB - 8, 9));
	guest_ram_close(&r);
}

static void expect_open_fails(struct __test_metadata *_metadata,
			      const char *list, uint64_t lowmem, const char *msg)
{
	struct guest_ram r;
	char err[256] = "";

	EXPECT_EQ(-1, guest_ram_open(&r, list, lowmem, err, sizeof(err)))
		TH_LOG("'%s' accepted", list);
	EXPECT_NE(NULL, strstr(err, msg)) TH_LOG("'%s': message '%s'", list, err);
	EXPECT_EQ(NULL, r.base);
	EXPECT_EQ(0, r.nfiles);
}

TEST_F(files, bad_files_rejected)
{
	char p[160], list[400];
	int fd;

	snprintf(p, sizeof(p), "%s/missing", self->dir);
	expect_open_fails(_metadata, p, 0, "No such file");
	snprintf(list, sizeof(list), "%s,%s", self->a, p);
	expect_open_fails(_metadata, list, 0, "missing");

	snprintf(p, sizeof(p), "%s/empty", self->dir);
	fd = open(p, O_RDWR | O_CREAT, 0600);
	ASSERT_LE(0, fd);
	close(fd);
	expect_open_fails(_metadata, p, 0, "is empty");

	snprintf(p, sizeof(p), "%s/odd", self->dir);
	fd = open(p, O_RDWR | O_CREAT, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, 5000));
	close(fd);
	expect_open_fails(_metadata, p, 0, "page size");

	expect_open_fails(_metadata, self->dir, 0, self->dir);	/* a directory */
	expect_open_fails(_metadata, "", 0, "empty RAM file name");
	snprintf(list, sizeof(list), "%s,,%s", self->a, self->b);
	expect_open_fails(_metadata, list, 0, "empty RAM file name");
	snprintf(list, sizeof(list), "%s,", self->a);
	expect_open_fails(_metadata, list, 0, "empty RAM file name");
	expect_open_fails(_metadata, self->a, MiB + 1, "lowmem");
	expect_open_fails(_metadata, self->a, G4 * 2, "lowmem");
}

TEST_F(files, too_many_files)
{
	char list[4096] = "";
	unsigned i;

	for (i = 0; i <= GUEST_RAM_MAX_FILES; i++) {
		strcat(list, i ? "," : "");
		strcat(list, self->a);
	}
	expect_open_fails(_metadata, list, 0, "too many");
}

TEST_HARNESS_MAIN
