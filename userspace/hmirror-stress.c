// SPDX-License-Identifier: MIT
/*
 * hmirror-stress: device commands racing every kind of address-space change,
 * with an integrity oracle that knows, page by page, what each command may
 * legitimately observe.
 *
 * Memory is a set of slots (anonymous, THP, shared memfd, KSM-able with a
 * CPU-only twin per page, and a partner slot P with slots at P + 2^b above
 * it).  Every 8-byte word holds a stamp of (page id, version, word index);
 * a zeroed page holds zeros.
 *
 * Every content change is an *actor* on the pages it touches (a device or
 * CPU write, MADV_DONTNEED, a hole punch, a new mapping, a KSM reset): it
 * takes a new version before it starts and reports when it ended.  Per page
 * the oracle keeps the window of what may be there: stamps of versions
 * [lo, hi], and zeros or not.  An observation (a device read or checksum,
 * the CPU's view after a device write) opens the window before it starts
 * and closes it after it ends; each word must be a stamp of a version
 * between the two, or zero if a zeroing happened meanwhile.  An actor that
 * ran alone and succeeded narrows the window to its own version, so the
 * next observation is exact; overlapping actors leave it wide until a quiet
 * moment shows what is there.  Racing is never excluded to keep the oracle
 * exact: what a racing command may see is recorded instead.
 *
 * Workers each own a device context (GUP and HMM backends, some with
 * fault-ahead) and never hold a lock over a device command.  Mutators take a
 * per-slot layout lock among themselves (remap, mremap, thp exclusively),
 * workers only around their CPU accesses, so every mutator races in-flight
 * device faults; half the time a mutator aims at a command in flight.  Each mutator counts its *effects*, measured: pages really
 * migrated (move_pages status), merged (equal frames in /proc/self/pagemap),
 * collapsed or split (AnonHugePages of the slot in /proc/self/smaps),
 * dropped, replaced, moved, swapped out; a run of -E seconds or more fails
 * when an enabled mutator had no effect, or a worker did fewer than -O
 * device commands.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libhmirror.h"

#define PAGE		4096ul
#define WORDS		(PAGE / 8)
#define HUGE_2M		(2ul << 20)
#define MAX_OP_PAGES	32
#define MAX_SLOTS	8
#define MAX_WORKERS	32
#define MAX_HIGH	2
#define PROBE_PAGES	64
#define STUCK_S		60
#define STAMP_KEY	0x6a09e667f3bcc908ull
#define VERSION_MASK	0xfffffffu	/* 28 bits between word index and id */
/* The device's virtual-address width (Documentation/device-spec.rst). */
#define DEVICE_VA_BITS	48
/* Exit status when a feature asked for explicitly is not available. */
#define EXIT_UNAVAILABLE 4

#define PM_PRESENT	(1ull << 63)
#define PM_SWAPPED	(1ull << 62)
#define PM_PFN		((1ull << 55) - 1)

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE	25
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT	21
#endif
#ifndef MPOL_MF_MOVE
#define MPOL_MF_MOVE	(1 << 1)
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* ---- configuration and counters ------------------------------------- */

enum mutator {
	MUT_MIGRATE, MUT_MPROTECT, MUT_FORK, MUT_KSM, MUT_THP, MUT_DONTNEED,
	MUT_REMAP, MUT_MREMAP, MUT_PAGEOUT, MUT_DEVMEM, MUT_COUNT
};
static const char *const mut_name[] = {
	"migrate", "mprotect", "fork", "ksm", "thp", "dontneed", "remap",
	"mremap", "pageout", "devmem",
};
static const char *const mut_effect_name[] = {
	"pages migrated", "pages write-protected", "pages checked by children",
	"pages merged", "THP mappings split and collapsed", "pages dropped",
	"pages replaced", "pages moved", "pages swapped out",
	"pages moved into or out of device memory",
};
/* Pause between runs (ms): slow mutators would otherwise starve workers. */
static const unsigned int mut_pause[MUT_COUNT] = {
	5, 5, 50, 0, 40, 10, 40, 30, 50, 10,
};

enum opkind {
	OP_WRITE, OP_READ, OP_CHECKSUM, OP_CPU_WRITE, OP_ATOMIC, OP_PREFETCH,
	OP_KINDS
};
static const char *const op_name[] = {
	"write", "read", "checksum", "cpu_write", "atomic", "prefetch",
};
static const char *const backend_name[] = { "gup", "hmm" };

static struct {
	unsigned int seconds, workers, slot_pages, progress, fault_ahead;
	unsigned int min_ops, effect_secs;
	uint64_t seed;
	bool mix[MUT_COUNT], mix_given;
	bool backend[2];
	unsigned int high_bits[MAX_HIGH], nhigh;
	bool high_given;
	int numa_nodes;
	bool have_swap;
	bool have_devmem;
	unsigned int slot_mask;		/* SLOT_* bits */
	const char *json;
} cfg = {
	.seconds = 60, .workers = 4, .slot_pages = 512, .progress = 10,
	.fault_ahead = 256, .min_ops = 100, .effect_secs = 30, .seed = 1,
	.backend = { true, true }, .high_bits = { 47 }, .nhigh = 1,
	.slot_mask = ~0u,
};

enum { SLOT_ANON = 1, SLOT_THP = 2, SLOT_SHARED = 4, SLOT_KSM = 8 };
static const char *const slot_kind_name[] = { "anon", "thp", "shared", "ksm" };

static atomic_bool stop;
static atomic_uint threads_running;
static atomic_ulong violations, efault_expected, refusals, unverified;
static atomic_ulong err_unexpected[4], atomic_adds, ro_refused, wrong_success;
static atomic_ulong mut_runs[MUT_COUNT], mut_effect[MUT_COUNT];
static atomic_ulong mut_raced[MUT_COUNT];	/* pages changed under a command */
static atomic_ulong thp_split, thp_collapse, fork_children, probes;
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static double t_start;
static _Atomic double first_violation_s;
static char high_note[MAX_HIGH][96];

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static unsigned int rnd(uint64_t *s, unsigned int n)
{
	return n ? (unsigned int)(rng_next(s) % n) : 0;
}

/* ---- stamps ----------------------------------------------------------- */

static uint64_t stamp(uint32_t id, uint32_t version, unsigned int word)
{
	return ((uint64_t)id << 40 | (uint64_t)version << 12 | word) ^ STAMP_KEY;
}

static void make_page(uint64_t *dst, uint32_t id, uint32_t version)
{
	for (unsigned int w = 0; w < WORDS; w++)
		dst[w] = stamp(id, version, w);
}

/* ---- slots and per-page oracle state ----------------------------------- */

/**
 * struct page_state - what the oracle knows about one page
 * @lo: oldest stamp version that may be present
 * @hi: newest stamp version that may be present (lo > hi: none)
 * @next: last version handed out to an actor
 * @last_zero: last version that zeroed the page
 * @zero_ok: the page, or words of it, may be zero
 * @active: actors changing the page now
 * @begins: actors begun since the start ("did anyone start since?")
 * @ro_maybe: odd from just before a read-only window's mprotect(PROT_READ)
 *	to just after its mprotect back: the page may be read-only
 * @ro_sure: odd from just after mprotect(PROT_READ) returned to just before
 *	the mprotect back: the page is certainly read-only
 * @busy: a worker owns the page (workers do not overlap each other)
 */
struct page_state {
	pthread_mutex_t lock;
	uint32_t lo, hi, next, last_zero;
	bool zero_ok;
	unsigned int active;
	uint32_t begins;
	atomic_uint ro_maybe, ro_sure;
	atomic_uint busy;
	uint32_t hist_v[4];	/* who made the last versions, for reports */
	uint16_t hist_who[4];
};

/* Makers of versions (struct page_state.hist_who). */
#define WHO_DEVICE(w)	(0x100 | (w))	/* device write by worker w */
#define WHO_CPU(w)	(0x200 | (w))	/* CPU store by worker w */
#define WHO_RESYNC	1
#define WHO_KSM		2
#define WHO_DONTNEED	3
#define WHO_REMAP	4

struct slot {
	char name[16];
	unsigned int index;
	size_t npages;
	_Atomic(uint8_t *) addr;
	atomic_uint addr_gen;		/* odd while mremap moves the slot */
	uint8_t *home[2];		/* mremap alternates; home[1] NULL: fixed */
	unsigned int cur;		/* which home holds the slot */
	int memfd;			/* shared slot, else -1 */
	bool huge, beyond;
	struct slot *alias;		/* high slot: its partner 2^b below */
	uint8_t *twin;			/* KSM: CPU-only pages to merge with */
	bool *merged;			/* KSM: merge seen since the last reset */
	/* wr: remap, mremap, thp; rd: other mutators, workers' CPU accesses */
	pthread_rwlock_t layout;
	/* wr: read-only windows; rd: CPU stores */
	pthread_rwlock_t cpu_write;
	struct page_state *pg;
	uint64_t *counters;		/* atomics target, a page of its own */
	atomic_ulong refused;		/* commands refused: beyond the device */
};

static struct slot slots[MAX_SLOTS];
static unsigned int nslots;
static struct slot *slot_anon, *slot_thp, *slot_shared, *slot_ksm;

struct worker {
	unsigned int index;
	int fd;
	uint32_t backend, ahead, ctx_id;
	uint64_t *buf;			/* device READ/WRITE buffer */
	uint64_t *copy;			/* CPU snapshot of a page */
	pthread_t thread;
	atomic_ulong dev_ops;		/* device commands that completed */
	atomic_ulong ops[OP_KINDS];
	atomic_ulong beats;		/* loop iterations, for the watchdog */
	/* The command in flight (slot index + 1, or 0), for mutators to aim at. */
	atomic_uint cur_slot, cur_p0, cur_n;
	struct drm_hmirror_ctx_stats st;
};

static struct worker workers[MAX_WORKERS];
static unsigned int num_engines = 1;
static int pagemap_fd = -1;
static bool pfn_visible;

static uint32_t page_id(const struct slot *s, size_t p)
{
	return (uint32_t)(s->index << 16 | p);
}

static uint8_t *slot_addr(struct slot *s)
{
	return atomic_load(&s->addr);
}

static uint64_t *slot_page(struct slot *s, size_t p)
{
	return (uint64_t *)(slot_addr(s) + p * PAGE);
}

/* ---- reporting -------------------------------------------------------- */

/* Who made version @v of page @p of @s, if still remembered. */
static void describe_maker(char *out, size_t len, struct slot *s, size_t p,
			   uint32_t v)
{
	struct page_state *ps = &s->pg[p];
	unsigned int who = 0;

	pthread_mutex_lock(&ps->lock);
	if (ps->hist_v[v & 3] == v)
		who = ps->hist_who[v & 3];
	pthread_mutex_unlock(&ps->lock);
	if (who & 0x300)
		snprintf(out, len, "%s by worker %u", who & 0x100 ? "device write" : "CPU store",
			 who & 0xff);
	else
		snprintf(out, len, "%s", who == WHO_RESYNC ? "resync" : who == WHO_KSM ? "KSM reset" :
			 who == WHO_DONTNEED ? "dontneed" : who == WHO_REMAP ? "remap" : "?");
}

static void describe(char *out, size_t len, uint64_t x)
{
	uint64_t y = x ^ STAMP_KEY;
	unsigned int si = (unsigned int)(y >> 56), pg = (y >> 40) & 0xffff;
	uint32_t v = (uint32_t)(y >> 12) & VERSION_MASK;
	char maker[64];

	if (!x) {
		snprintf(out, len, "zero");
	} else if (si < nslots && pg < slots[si].npages) {
		describe_maker(maker, sizeof(maker), &slots[si], pg, v);
		snprintf(out, len, "stamp of %s page %u version %u (%s) word %u",
			 slots[si].name, pg, v, maker, (unsigned int)(y & 0xfff));
	} else
		snprintf(out, len, "0x%016" PRIx64 " (no stamp)", x);
}

/* "N zero words, M other pages' stamps, K bad words" for a wrong page. */
static void page_summary(char *out, size_t len, uint32_t id, const uint64_t *p)
{
	unsigned int zero = 0, other = 0, junk = 0, vmin = ~0u, vmax = 0;

	for (unsigned int i = 0; i < WORDS; i++) {
		uint64_t y = p[i] ^ STAMP_KEY;
		uint32_t v = (y >> 12) & VERSION_MASK;

		if (!p[i]) {
			zero++;
		} else if ((y & 0xfff) != i) {
			junk++;
		} else if ((y >> 40) != id) {
			other++;
		} else {
			vmin = v < vmin ? v : vmin;
			vmax = v > vmax ? v : vmax;
		}
	}
	snprintf(out, len, "page: %u zero words, %u of another page, %u not stamps, own versions %u..%u",
		 zero, other, junk, vmin == ~0u ? 0 : vmin, vmax);
}

/* What a violation is, for the per-kind counts of the summary. */
enum vkind {
	V_READ,		/* device read or checksum: data the page never held */
	V_LOST,		/* CPU view after a device write: lost or misplaced */
	V_RO_WRITE,	/* device wrote a page read-only for the whole command */
	V_RO_MAP,	/* device page table maps writable inside a read-only window */
	V_FORK,		/* a fork child's copy: wrong, or changed by the parent */
	V_MOVED,	/* a moved-away range still reachable by the device */
	V_FINAL,	/* final CPU view, atomics */
	V_KINDS
};
static const char *const vkind_name[] = {
	"read", "lost_write", "ro_write", "ro_mapped", "fork", "moved_away",
	"final",
};
static atomic_ulong vkind_count[V_KINDS];

static void violation(const struct slot *s, size_t page, enum vkind kind,
		      const char *fmt, ...)
{
	double zero = 0;
	unsigned long n = atomic_fetch_add(&violations, 1);
	va_list ap;

	atomic_fetch_add(&vkind_count[kind], 1);
	if (!n)
		atomic_compare_exchange_strong(&first_violation_s, &zero,
					       now_s() - t_start);
	if (n >= 50)
		return;
	pthread_mutex_lock(&report_lock);
	fprintf(stderr, "hmirror-stress: VIOLATION at %.2f s: ", now_s() - t_start);
	if (s)
		fprintf(stderr, "slot %s page %zu: ", s->name, page);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	pthread_mutex_unlock(&report_lock);
}

static void count_error(const struct worker *wk, const char *op, int ret)
{
	int k = ret == -EFAULT ? 0 : ret == -EINTR ? 1 : ret == -EIO ? 2 : 3;

	if (atomic_fetch_add(&err_unexpected[k], 1) >= 20)
		return;
	pthread_mutex_lock(&report_lock);
	fprintf(stderr, "hmirror-stress: unexpected error %d (%s) from %s",
		ret, strerror(-ret), op);
	if (wk)
		fprintf(stderr, " (worker %u, %s, fault-ahead %u)", wk->index,
			backend_name[wk->backend], wk->ahead);
	fputc('\n', stderr);
	pthread_mutex_unlock(&report_lock);
}

/* ---- windows and actors ----------------------------------------------- */

/**
 * struct window - what a page may hold over an observation
 * @lo, @next, @zero_ok, @begins, @quiet: at the start (window_open)
 * @hi, @last_zero: at the end (window_close)
 * @moved: the command raced a move of the slot (see op_moved)
 */
struct window {
	uint32_t lo, hi, next, last_zero, begins;
	bool zero_ok, quiet, moved;
};

static void window_open(struct page_state *ps, struct window *w)
{
	pthread_mutex_lock(&ps->lock);
	w->lo = ps->lo;
	w->next = ps->next;
	w->zero_ok = ps->zero_ok;
	w->begins = ps->begins;
	w->quiet = !ps->active;
	pthread_mutex_unlock(&ps->lock);
	w->moved = false;
}

static void window_close(struct page_state *ps, struct window *w)
{
	pthread_mutex_lock(&ps->lock);
	w->hi = ps->hi;
	w->last_zero = ps->last_zero;
	pthread_mutex_unlock(&ps->lock);
}

static bool window_zero(const struct window *w)
{
	return w->zero_ok || w->last_zero > w->next || w->moved;
}

static bool word_ok(const struct window *w, uint32_t id, unsigned int word,
		    uint64_t x)
{
	uint64_t y = x ^ STAMP_KEY;
	uint32_t v = (y >> 12) & VERSION_MASK;

	if (!x)
		return window_zero(w);
	/*
	 * A command that raced a move may have touched the moved-away range,
	 * where an older write of another command may linger: any version
	 * up to hi.
	 */
	return (y >> 40) == id && (y & 0xfff) == word && v <= w->hi &&
	       (w->moved || v >= w->lo);
}

/* First word of @p the window does not allow, or -1. */
static int page_bad_word(const struct window *w, uint32_t id, const uint64_t *p)
{
	for (unsigned int i = 0; i < WORDS; i++)
		if (!word_ok(w, id, i, p[i]))
			return (int)i;
	return -1;
}

/* 1: exactly the stamp of *@v; 0: exactly zeros; -1: not one content. */
static int window_exact(const struct window *w, uint32_t *v)
{
	bool zero = window_zero(w);

	if (w->moved)
		return -1;
	if (w->lo == w->hi && !zero) {
		*v = w->lo;
		return 1;
	}
	return w->lo > w->hi && zero ? 0 : -1;
}

struct actor {
	uint32_t v, begins;
	bool alone, zero;
};

static void actor_begin(struct page_state *ps, bool zero, struct actor *a,
			unsigned int who)
{
	pthread_mutex_lock(&ps->lock);
	ps->hist_v[(ps->next + 1) & 3] = ps->next + 1;
	ps->hist_who[(ps->next + 1) & 3] = (uint16_t)who;
	a->alone = !ps->active;
	a->zero = zero;
	a->v = ++ps->next;
	ps->hi = a->v;
	ps->active++;
	a->begins = ++ps->begins;
	if (zero) {
		ps->last_zero = a->v;
		ps->zero_ok = true;
	}
	pthread_mutex_unlock(&ps->lock);
}

/*
 * @done: the change certainly happened in full (a device write that
 * completed, a CPU store, a successful madvise); then, if nothing else
 * touched the page meanwhile, the page holds exactly this version.
 */
static void actor_end(struct page_state *ps, const struct actor *a, bool done)
{
	pthread_mutex_lock(&ps->lock);
	ps->active--;
	if (done && a->alone && ps->begins == a->begins) {
		ps->lo = a->zero ? a->v + 1 : a->v;
		ps->zero_ok = a->zero;
	}
	pthread_mutex_unlock(&ps->lock);
}

/*
 * Nothing changed the page since @w was opened (before @copy was taken):
 * narrow its window to what @copy shows, if that is one content.
 */
static void page_settle(struct page_state *ps, const struct window *w,
			uint32_t id, const uint64_t *copy)
{
	uint32_t u = (uint32_t)((copy[0] ^ STAMP_KEY) >> 12) & VERSION_MASK;
	bool zero = !copy[0];

	for (unsigned int i = 0; i < WORDS; i++)
		if (copy[i] != (zero ? 0 : stamp(id, u, i)))
			return;
	pthread_mutex_lock(&ps->lock);
	if (w->quiet && !ps->active && ps->begins == w->begins) {
		if (zero && ps->zero_ok) {
			ps->lo = ps->hi + 1;
		} else if (!zero && u >= ps->lo && u <= ps->hi) {
			ps->lo = ps->hi = u;
			ps->zero_ok = false;
		}
	}
	pthread_mutex_unlock(&ps->lock);
}

/*
 * After a violation in the CPU's view: write a fresh version so one bug is
 * reported once, not on every later command.  Layout lock held (read).
 */
static void page_resync(struct slot *s, size_t p)
{
	struct actor a;

	pthread_rwlock_rdlock(&s->cpu_write);
	actor_begin(&s->pg[p], false, &a, WHO_RESYNC);
	make_page(slot_page(s, p), page_id(s, p), a.v);
	actor_end(&s->pg[p], &a, true);
	pthread_rwlock_unlock(&s->cpu_write);
}

/* ---- /proc evidence ---------------------------------------------------- */

static int pagemap_read(const void *addr, size_t n, uint64_t *out)
{
	size_t len = n * sizeof(*out);

	if (pagemap_fd < 0)
		return -ENOENT;
	if (pread(pagemap_fd, out, len, (off_t)((uintptr_t)addr / PAGE * 8)) != (ssize_t)len)
		return -EIO;
	return 0;
}

/* Pages of [addr, +n pages) that hold memory (present or in swap). */
static size_t count_populated(const struct slot *s, const uint8_t *addr, size_t n)
{
	uint64_t pm[MAX_OP_PAGES];
	unsigned char vec[MAX_OP_PAGES];
	size_t total = 0;

	for (size_t i = 0; i < n; i += MAX_OP_PAGES) {
		size_t k = n - i < MAX_OP_PAGES ? n - i : MAX_OP_PAGES;

		if (s->memfd >= 0) {
			/* Shared memory: resident in the page cache. */
			if (mincore((void *)(addr + i * PAGE), k * PAGE, vec))
				continue;
			for (size_t j = 0; j < k; j++)
				total += vec[j] & 1;
		} else if (!pagemap_read(addr + i * PAGE, k, pm)) {
			for (size_t j = 0; j < k; j++)
				total += !!(pm[j] & (PM_PRESENT | PM_SWAPPED));
		}
	}
	return total;
}

/* AnonHugePages (KiB) of the VMAs inside [start, end). */
static long anon_huge_kb(uintptr_t start, uintptr_t end)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false;
	long sum = 0, kb;
	unsigned long a, b;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &a, &b) == 2)
			in = a >= start && b <= end;
		else if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			sum += kb;
	}
	fclose(f);
	return sum;
}

static long meminfo_kb(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	size_t klen = strlen(key);
	long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* ---- slot setup -------------------------------------------------------- */

enum slot_kind { SK_ANON, SK_THP, SK_SHARED, SK_KSM, SK_AT };

/* Map the slot at @at (MAP_FIXED) or anywhere (@at NULL, not for SK_AT). */
static int slot_map(struct slot *s, uint8_t *at, bool noreplace)
{
	size_t len = s->npages * PAGE;
	int fl = at ? (noreplace ? MAP_FIXED_NOREPLACE : MAP_FIXED) : 0;
	void *p;

	if (s->memfd >= 0)
		p = mmap(at, len, PROT_READ | PROT_WRITE, MAP_SHARED | fl,
			 s->memfd, 0);
	else
		p = mmap(at, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | fl, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	if (at && p != at) {
		munmap(p, len);
		return -EEXIST;
	}
	if (s->huge)
		madvise(p, len, MADV_HUGEPAGE);
	if (s->twin)
		madvise(p, len, MADV_MERGEABLE);
	atomic_store(&s->addr, (uint8_t *)p);
	return 0;
}

/*
 * Two homes, the second held PROT_NONE until mremap uses it, each behind a
 * PROT_NONE guard that stays.  Fault-ahead stops at the end of a VMA: the
 * guard keeps the live home's (or a neighbouring mapping's) fault-ahead out
 * of the moved-away range, which would otherwise merge with what precedes
 * it and be faulted in (fresh pages, rightly mirrored) before the probe.
 */
static int slot_reserve_homes(struct slot *s)
{
	size_t len = s->npages * PAGE, align = s->huge ? HUGE_2M : PAGE;
	size_t span = 2 * (align + len);
	uint8_t *raw = mmap(NULL, span + align, PROT_NONE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uintptr_t a;

	if (raw == MAP_FAILED)
		return -errno;
	a = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
	if (a > (uintptr_t)raw)
		munmap(raw, a - (uintptr_t)raw);
	if ((uintptr_t)raw + align > a)
		munmap((void *)(a + span), (uintptr_t)raw + align - a);
	s->home[0] = (uint8_t *)a + align;
	s->home[1] = s->home[0] + len + align;
	return 0;
}

static struct slot *slot_new(const char *name, enum slot_kind kind,
			     size_t npages, uint8_t *at)
{
	struct slot *s = &slots[nslots];
	pthread_rwlockattr_t ra;
	int ret;

	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->index = nslots;
	s->npages = npages;
	s->memfd = -1;
	s->huge = kind == SK_THP;
	if (kind == SK_SHARED) {
		s->memfd = memfd_create("hmirror-stress", MFD_CLOEXEC);
		if (s->memfd < 0 || ftruncate(s->memfd, npages * PAGE)) {
			fprintf(stderr, "hmirror-stress: memfd: %s\n", strerror(errno));
			return NULL;
		}
	}
	if (kind == SK_KSM) {
		s->twin = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		s->merged = calloc(npages, sizeof(*s->merged));
		if (s->twin == MAP_FAILED || !s->merged) {
			fprintf(stderr, "hmirror-stress: KSM twin: out of memory\n");
			return NULL;
		}
		madvise(s->twin, npages * PAGE, MADV_MERGEABLE);
	}
	if (kind != SK_AT) {
		ret = slot_reserve_homes(s);
		if (!ret)
			ret = slot_map(s, s->home[0], false);
	} else {
		ret = slot_map(s, at, true);
	}
	if (ret) {
		/* A fixed address is a feature test: the caller reports it. */
		if (kind != SK_AT)
			fprintf(stderr, "hmirror-stress: slot %s: %s\n", name,
				strerror(-ret));
		return NULL;
	}
	s->beyond = (uintptr_t)slot_addr(s) + npages * PAGE - 1 >= 1ull << DEVICE_VA_BITS;
	pthread_rwlockattr_init(&ra);
	/* Readers come and go all the time: remap and mremap must get in. */
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s->layout, &ra);
	pthread_rwlock_init(&s->cpu_write, &ra);
	pthread_rwlockattr_destroy(&ra);
	s->pg = calloc(npages, sizeof(*s->pg));
	s->counters = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!s->pg || s->counters == MAP_FAILED) {
		fprintf(stderr, "hmirror-stress: slot %s: out of memory\n", name);
		return NULL;
	}
	for (size_t p = 0; p < npages; p++) {
		struct page_state *ps = &s->pg[p];

		pthread_mutex_init(&ps->lock, NULL);
		ps->lo = ps->hi = ps->next = 1;
		make_page(slot_page(s, p), page_id(s, p), 1);
		if (s->twin)
			make_page((uint64_t *)(s->twin + p * PAGE), page_id(s, p), 1);
	}
	nslots++;
	return s;
}

/*
 * The high slots: a low "partner" slot P and, for each requested bit b, a
 * slot at P + 2^b.  A device that drops address bits above its width maps
 * the high slot's pages at P's addresses, which the oracle sees as P's
 * pages holding another page's stamps.
 */
static int high_slots_init(void)
{
	struct slot *partner, *high;

	if (!cfg.nhigh)
		return 0;
	partner = slot_new("partner", SK_AT, 64, NULL);
	if (!partner) {
		/* SK_AT with NULL: anywhere. */
		fprintf(stderr, "hmirror-stress: partner slot: %s\n", strerror(errno));
		return -1;
	}
	for (unsigned int i = 0; i < cfg.nhigh; i++) {
		unsigned int b = cfg.high_bits[i];
		uint8_t *want = slot_addr(partner) + (1ull << b);
		char name[16];

		snprintf(name, sizeof(name), "high%u", b);
		high = slot_new(name, SK_AT, 64, want);
		if (!high) {
			snprintf(high_note[i], sizeof(high_note[i]),
				 "high slot 2^%u: not available (no 5-level paging: mmap at %p refused)",
				 b, (void *)want);
			if (cfg.high_given) {
				printf("hmirror-stress: unavailable: %s\n", high_note[i]);
				return EXIT_UNAVAILABLE;
			}
			printf("# hmirror-stress: %s\n", high_note[i]);
			continue;
		}
		high->alias = partner;
		snprintf(high_note[i], sizeof(high_note[i]),
			 "high slot 2^%u at %p (%s the device's %u-bit range)", b,
			 (void *)want, slots[nslots - 1].beyond ? "beyond" : "inside",
			 DEVICE_VA_BITS);
	}
	return 0;
}

/* ---- worker side ------------------------------------------------------- */

static bool claim(struct slot *s, size_t p0, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned int zero = 0;

		if (!atomic_compare_exchange_strong(&s->pg[p0 + i].busy, &zero, 1)) {
			while (i--)
				atomic_store(&s->pg[p0 + i].busy, 0);
			return false;
		}
	}
	return true;
}

static void release(struct slot *s, size_t p0, size_t n)
{
	for (size_t i = 0; i < n; i++)
		atomic_store(&s->pg[p0 + i].busy, 0);
}

/**
 * struct op - one worker command on pages [p0, p0 + n) of a slot
 * @gen: the slot's address generation when the command's address was taken
 * @base: that address
 * @w: per page window, opened before the command
 * @maybe, @sure: per page read-only window counters before the command
 */
struct op {
	struct worker *wk;
	struct slot *s;
	size_t p0, n;
	unsigned int eng, gen;
	uint8_t *base;
	struct window w[MAX_OP_PAGES];
	unsigned int maybe[MAX_OP_PAGES], sure[MAX_OP_PAGES];
};

static void op_start(struct op *o)
{
	o->gen = atomic_load(&o->s->addr_gen);
	o->base = slot_addr(o->s) + o->p0 * PAGE;
	for (size_t i = 0; i < o->n; i++) {
		window_open(&o->s->pg[o->p0 + i], &o->w[i]);
		o->maybe[i] = atomic_load(&o->s->pg[o->p0 + i].ro_maybe);
		o->sure[i] = atomic_load(&o->s->pg[o->p0 + i].ro_sure);
	}
}

/* Page @i of the command may have been read-only at some time during it. */
static bool op_ro_touched(const struct op *o, size_t i)
{
	unsigned int m = atomic_load(&o->s->pg[o->p0 + i].ro_maybe);

	return (o->maybe[i] & 1) || m != o->maybe[i];
}

/* Page @i was read-only for the whole command. */
static bool op_ro_throughout(const struct op *o, size_t i)
{
	unsigned int m = atomic_load(&o->s->pg[o->p0 + i].ro_sure);

	return (o->sure[i] & 1) && m == o->sure[i];
}

/* The slot moved (mremap) while the command ran: it used the old range. */
static bool op_moved(const struct op *o)
{
	return (o->gen & 1) || atomic_load(&o->s->addr_gen) != o->gen;
}

static void op_close(struct op *o, bool moved)
{
	for (size_t i = 0; i < o->n; i++) {
		window_close(&o->s->pg[o->p0 + i], &o->w[i]);
		o->w[i].moved = moved;
	}
}

/*
 * A command on a slot beyond the device's address width must be refused
 * with a documented errno, not -EIO (a dead device) and not served at an
 * aliased address.  Returns true when @ret is such a refusal.
 */
static bool op_refused(struct op *o, int ret)
{
	if (!o->s->beyond || !ret)
		return false;
	if (ret == -EFAULT || ret == -EINVAL || ret == -ERANGE) {
		atomic_fetch_add(&o->s->refused, 1);
		atomic_fetch_add(&refusals, 1);
		return true;
	}
	return false;
}

/* Check device-read data @data of the command's pages against the windows. */
/*
 * After the device returned wrong data for page @p: is the CPU's view
 * right (a stale device translation) or wrong too (lost data)?  And what
 * does the worker's device page table hold there?  For the report only.
 */
static void explain_page(struct worker *wk, struct slot *s, size_t p)
{
	char sum[128] = "CPU view as the oracle says", maker[64];
	struct window w;
	uint8_t snap = 0xff;
	int bad, ret;

	pthread_rwlock_rdlock(&s->layout);
	window_open(&s->pg[p], &w);
	memcpy(wk->copy, slot_page(s, p), PAGE);
	window_close(&s->pg[p], &w);
	ret = hmirror_snapshot(wk->fd, (uintptr_t)slot_page(s, p), 1, &snap);
	bad = page_bad_word(&w, page_id(s, p), wk->copy);
	if (bad >= 0) {
		page_summary(sum, sizeof(sum), page_id(s, p), wk->copy);
		/* Lost data: report it once, not on every later read. */
		page_resync(s, p);
	}
	pthread_rwlock_unlock(&s->layout);
	if (atomic_load(&violations) > 50)
		return;		/* violation() stopped printing too */
	describe_maker(maker, sizeof(maker), s, p, w.hi);
	pthread_mutex_lock(&report_lock);
	fprintf(stderr, "hmirror-stress:   %s page %zu now: %s%s (versions %u..%u%s, version %u by %s); worker %u's device entry: %s\n",
		s->name, p, bad >= 0 ? "CPU view wrong too: " : "", sum,
		w.lo, w.hi, window_zero(&w) ? " or zero" : "", w.hi, maker,
		wk->index, ret ? "?" : snap == DRM_HMIRROR_SNAP_NONE ? "none" :
		snap & DRM_HMIRROR_SNAP_WRITE ? "writable" : "read-only");
	pthread_mutex_unlock(&report_lock);
}

static void op_check_data(struct op *o, const uint64_t *data, const char *what)
{
	char seen[192], sum[128];

	for (size_t i = 0; i < o->n; i++) {
		size_t p = o->p0 + i;
		int bad = page_bad_word(&o->w[i], page_id(o->s, p), data + i * WORDS);

		if (bad < 0)
			continue;
		describe(seen, sizeof(seen), data[i * WORDS + bad]);
		page_summary(sum, sizeof(sum), page_id(o->s, p), data + i * WORDS);
		violation(o->s, p, V_READ, "%s (worker %u, %s, fault-ahead %u): word %d is %s; allowed versions %u..%u%s%s; %s",
			  what, o->wk->index, backend_name[o->wk->backend],
			  o->wk->ahead, bad, seen, o->w[i].lo, o->w[i].hi,
			  window_zero(&o->w[i]) ? " or zero" : "",
			  o->w[i].moved ? " (raced a move)" : "", sum);
		explain_page(o->wk, o->s, p);
	}
}

/*
 * The CPU's view of the command's pages, after a device write that gave
 * @act versions.  @ro_all: pages read-only for the whole command, which
 * must not hold the write's version.
 */
static void op_check_cpu(struct op *o, const struct actor *act,
			 const bool *ro_all)
{
	struct slot *s = o->s;
	char seen[192], sum[128];

	pthread_rwlock_rdlock(&s->layout);
	for (size_t i = 0; i < o->n; i++) {
		size_t p = o->p0 + i;
		uint32_t id = page_id(s, p);
		struct window w;
		int bad;

		window_open(&s->pg[p], &w);
		memcpy(o->wk->copy, slot_page(s, p), PAGE);
		window_close(&s->pg[p], &w);
		if (ro_all && ro_all[i]) {
			for (unsigned int k = 0; k < WORDS; k++)
				if (o->wk->copy[k] == stamp(id, act[i].v, k)) {
					violation(s, p, V_RO_WRITE, "the device wrote a page that was read-only for its whole command (worker %u, %s, fault-ahead %u): word %u holds version %u",
						  o->wk->index, backend_name[o->wk->backend],
						  o->wk->ahead, k, act[i].v);
					break;
				}
		}
		bad = page_bad_word(&w, id, o->wk->copy);
		if (bad >= 0) {
			describe(seen, sizeof(seen), o->wk->copy[bad]);
			page_summary(sum, sizeof(sum), id, o->wk->copy);
			violation(s, p, V_LOST, "CPU view after a device write of version %u (worker %u, %s, fault-ahead %u): word %d is %s; allowed versions %u..%u%s; %s",
				  act[i].v, o->wk->index, backend_name[o->wk->backend],
				  o->wk->ahead, bad, seen, w.lo, w.hi,
				  window_zero(&w) ? " or zero" : "", sum);
			page_resync(s, p);
		} else {
			page_settle(&s->pg[p], &w, id, o->wk->copy);
		}
	}
	pthread_rwlock_unlock(&s->layout);
}

static void op_device_write(struct op *o)
{
	struct actor act[MAX_OP_PAGES];
	bool ro_all[MAX_OP_PAGES], touched = false, moved;
	int ret;

	for (size_t i = 0; i < o->n; i++) {
		actor_begin(&o->s->pg[o->p0 + i], false, &act[i],
			    WHO_DEVICE(o->wk->index));
		make_page(o->wk->buf + i * WORDS, page_id(o->s, o->p0 + i), act[i].v);
	}
	ret = hmirror_write(o->wk->fd, o->eng, (uintptr_t)o->base, o->wk->buf,
			    o->n * PAGE);
	moved = op_moved(o);
	for (size_t i = 0; i < o->n; i++) {
		ro_all[i] = !moved && op_ro_throughout(o, i);
		touched |= op_ro_touched(o, i);
		if (!ret && ro_all[i])
			violation(o->s, o->p0 + i, V_RO_WRITE, "device write succeeded although the page was read-only for the whole command (worker %u, %s, fault-ahead %u)",
				  o->wk->index, backend_name[o->wk->backend], o->wk->ahead);
	}
	if (!ret) {
		atomic_fetch_add(&o->wk->dev_ops, 1);
	} else if (op_refused(o, ret)) {
		/* counted */
	} else if ((ret == -EFAULT || ret == -EPERM) && (moved || touched)) {
		atomic_fetch_add(&efault_expected, 1);
		if (touched)
			atomic_fetch_add(&ro_refused, 1);
	} else {
		count_error(o->wk, "device write", ret);
	}
	for (size_t i = 0; i < o->n; i++)
		actor_end(&o->s->pg[o->p0 + i], &act[i], !ret && !moved);
	op_check_cpu(o, act, ro_all);
}

static void op_device_read(struct op *o, const char *what)
{
	int ret = hmirror_read(o->wk->fd, o->eng, (uintptr_t)o->base,
			       o->wk->buf, o->n * PAGE);
	bool moved = op_moved(o);

	op_close(o, moved && o->s->memfd < 0);
	if (!ret) {
		atomic_fetch_add(&o->wk->dev_ops, 1);
		op_check_data(o, o->wk->buf, what);
	} else if (op_refused(o, ret)) {
		/* counted */
	} else if (ret == -EFAULT && moved) {
		atomic_fetch_add(&efault_expected, 1);
	} else {
		count_error(o->wk, "device read", ret);
	}
}

static void op_checksum(struct op *o)
{
	uint64_t sum, want = 0xcbf29ce484222325ull, x;
	bool exact = true, moved;
	uint32_t v = 0;
	int ret;

	ret = hmirror_checksum(o->wk->fd, o->eng, (uintptr_t)o->base,
			       o->n * PAGE, &sum);
	moved = op_moved(o);
	op_close(o, moved && o->s->memfd < 0);
	if (ret) {
		if (op_refused(o, ret))
			return;
		if (ret == -EFAULT && moved)
			atomic_fetch_add(&efault_expected, 1);
		else
			count_error(o->wk, "device checksum", ret);
		return;
	}
	atomic_fetch_add(&o->wk->dev_ops, 1);
	for (size_t i = 0; i < o->n && exact; i++) {
		int e = window_exact(&o->w[i], &v);

		if (e < 0) {
			exact = false;
			break;
		}
		for (unsigned int k = 0; k < WORDS; k++) {
			x = e ? stamp(page_id(o->s, o->p0 + i), v, k) : 0;
			want = (want ^ x) * 0x100000001b3ull;
		}
	}
	if (!exact)
		atomic_fetch_add(&unverified, 1);
	else if (sum != want)
		violation(o->s, o->p0, V_READ, "device checksum of %zu pages differs from the oracle's (worker %u, %s, fault-ahead %u)",
			  o->n, o->wk->index, backend_name[o->wk->backend], o->wk->ahead);
}

/* The CPU stores new versions; the device must read them at once. */
static void op_cpu_write(struct op *o)
{
	struct slot *s = o->s;

	pthread_rwlock_rdlock(&s->layout);
	pthread_rwlock_rdlock(&s->cpu_write);
	for (size_t i = 0; i < o->n; i++) {
		size_t p = o->p0 + i;
		struct actor a;

		actor_begin(&s->pg[p], false, &a, WHO_CPU(o->wk->index));
		make_page(slot_page(s, p), page_id(s, p), a.v);
		actor_end(&s->pg[p], &a, true);
	}
	pthread_rwlock_unlock(&s->cpu_write);
	pthread_rwlock_unlock(&s->layout);
	op_start(o);
	op_device_read(o, "device missed a CPU store");
}

static int op_prefetch(struct op *o, bool write)
{
	bool moved, touched = false;
	int ret;

	ret = hmirror_prefetch(o->wk->fd, (uintptr_t)o->base, o->n * PAGE, write);
	moved = op_moved(o);
	for (size_t i = 0; i < o->n; i++) {
		touched |= op_ro_touched(o, i);
		/* Not an integrity violation (nothing was written): a lie. */
		if (!ret && write && !moved && op_ro_throughout(o, i) &&
		    atomic_fetch_add(&wrong_success, 1) < 20)
			fprintf(stderr, "hmirror-stress: writable prefetch of %s pages %zu..%zu returned 0 although page %zu was read-only throughout (worker %u, %s, fault-ahead %u)\n",
				o->s->name, o->p0, o->p0 + o->n - 1, o->p0 + i,
				o->wk->index, backend_name[o->wk->backend], o->wk->ahead);
	}
	if (!ret)
		atomic_fetch_add(&o->wk->dev_ops, 1);
	else if (op_refused(o, ret))
		return ret;
	else if ((ret == -EFAULT || ret == -EPERM) && (moved || (write && touched)))
		atomic_fetch_add(&efault_expected, 1);
	else
		count_error(o->wk, "prefetch", ret);
	return ret;
}

/*
 * After a prefetch of a high slot's pages succeeded, the partner's pages at
 * the same offsets (the same addresses without bit b) must still read as
 * the partner's own: a device that drops the high bit maps them there.
 */
static void op_alias_read(struct worker *wk, struct slot *partner, size_t p0,
			  size_t n, unsigned int eng)
{
	struct op a = { .wk = wk, .s = partner, .p0 = p0, .n = n, .eng = eng };

	if (!claim(partner, p0, n))
		return;
	op_start(&a);
	op_device_read(&a, "device read of the partner slot after a prefetch of its high slot");
	release(partner, p0, n);
}

static void op_atomic(struct worker *wk, struct slot *s, unsigned int eng,
		      uint64_t *rs)
{
	uint64_t old;
	int ret = hmirror_atomic_add(wk->fd, eng,
				     (uintptr_t)&s->counters[rnd(rs, 8)], 1, &old);

	if (ret) {
		count_error(wk, "device atomic", ret);
	} else {
		atomic_fetch_add(&atomic_adds, 1);
		atomic_fetch_add(&wk->dev_ops, 1);
	}
	/* The CPU adds to the same words concurrently. */
	atomic_fetch_add(&s->counters[rnd(rs, 8)], 1);
	atomic_fetch_add(&atomic_adds, 1);
}

static void worker_op(struct worker *wk, uint64_t *rs)
{
	struct op o = { .wk = wk };
	enum opkind kind = rnd(rs, OP_KINDS);

	o.s = &slots[rnd(rs, nslots)];
	o.eng = rnd(rs, num_engines);
	if (kind == OP_ATOMIC) {
		op_atomic(wk, o.s, o.eng, rs);
		atomic_fetch_add(&wk->ops[kind], 1);
		return;
	}
	o.n = 1 + rnd(rs, rnd(rs, 4) ? 4 : MAX_OP_PAGES);
	if (o.n > o.s->npages)
		o.n = o.s->npages;
	o.p0 = rnd(rs, o.s->npages - o.n + 1);
	if (!claim(o.s, o.p0, o.n))
		return;
	atomic_store(&wk->cur_p0, (unsigned int)o.p0);
	atomic_store(&wk->cur_n, (unsigned int)o.n);
	atomic_store(&wk->cur_slot, o.s->index + 1);
	if (kind != OP_CPU_WRITE)
		op_start(&o);
	switch (kind) {
	case OP_WRITE:
		op_device_write(&o);
		break;
	case OP_READ:
		op_device_read(&o, "device read returned data the page never held");
		break;
	case OP_CHECKSUM:
		op_checksum(&o);
		break;
	case OP_CPU_WRITE:
		op_cpu_write(&o);
		break;
	case OP_PREFETCH:
		if (!op_prefetch(&o, rnd(rs, 2)) && o.s->alias)
			op_alias_read(wk, o.s->alias, o.p0, o.n, o.eng);
		break;
	default:
		break;
	}
	atomic_store(&wk->cur_slot, 0);
	release(o.s, o.p0, o.n);
	atomic_fetch_add(&wk->ops[kind], 1);
}

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	uint64_t rs = cfg.seed * 0x9e3779b97f4a7c15ull + wk->index + 1;

	while (!atomic_load(&stop)) {
		worker_op(wk, &rs);
		atomic_fetch_add(&wk->beats, 1);
	}
	atomic_fetch_sub(&threads_running, 1);
	return NULL;
}

/* ---- mutators ----------------------------------------------------------- */

/*
 * Half the time, the slot of a command in flight: mutators aim at what the
 * device is faulting on now, so they race in-flight faults often.
 */
static struct slot *pick_slot(uint64_t *rs)
{
	unsigned int si = atomic_load(&workers[rnd(rs, cfg.workers)].cur_slot);

	if (si && rnd(rs, 2))
		return &slots[si - 1];
	return &slots[rnd(rs, nslots)];
}

/*
 * First page of @n for a mutation of @s: half the time inside a command in
 * flight on @s or its fault-ahead window, else anywhere.
 */
static size_t aim(struct slot *s, size_t n, uint64_t *rs)
{
	struct worker *wk = &workers[rnd(rs, cfg.workers)];
	size_t p = 0, last = s->npages - n;

	if (rnd(rs, 2) && atomic_load(&wk->cur_slot) == s->index + 1) {
		p = atomic_load(&wk->cur_p0) +
		    rnd(rs, atomic_load(&wk->cur_n) + wk->ahead);
		p = p >= n / 2 ? p - n / 2 : 0;
		return p > last ? last : p;
	}
	return rnd(rs, (unsigned int)last + 1);
}

/* Pages of [p0, p0 + n) a worker's command is using now. */
static size_t count_busy(struct slot *s, size_t p0, size_t n)
{
	size_t busy = 0;

	for (size_t i = 0; i < n; i++)
		busy += !!atomic_load(&s->pg[p0 + i].busy);
	return busy;
}

static void mut_migrate(uint64_t *rs)
{
	struct slot *s = pick_slot(rs);
	void *pages[16];
	int nodes[16], status[16], before[16];
	unsigned int n = 1 + rnd(rs, 16), i, moved = 0;

	pthread_rwlock_rdlock(&s->layout);
	for (i = 0; i < n; i++)
		pages[i] = slot_addr(s) + aim(s, 1, rs) * PAGE;
	/* Where each page is now (nodes NULL: query only)... */
	if (!syscall(__NR_move_pages, 0, n, pages, NULL, before, 0)) {
		for (i = 0; i < n; i++)
			nodes[i] = before[i] >= 0 ? (before[i] + 1) % cfg.numa_nodes : 0;
		/* ...and which pages the kernel really moved elsewhere. */
		if (syscall(__NR_move_pages, 0, n, pages, nodes, status, MPOL_MF_MOVE) >= 0)
			for (i = 0; i < n; i++)
				moved += before[i] >= 0 && status[i] == nodes[i] &&
					 before[i] != nodes[i];
	}
	pthread_rwlock_unlock(&s->layout);
	atomic_fetch_add(&mut_effect[MUT_MIGRATE], moved);
}

/*
 * Inside a read-only window (CPU stores held off, pages [p0, p0 + n) read
 * only): no context's device page table may map them writable.
 */
static void check_ro_snapshot(struct slot *s, size_t p0, size_t n)
{
	uint8_t snap[MAX_OP_PAGES];

	/* In pieces of the buffer: a window can cover a whole slot. */
	for (size_t at = 0; at < n; at += MAX_OP_PAGES) {
		size_t len = n - at < MAX_OP_PAGES ? n - at : MAX_OP_PAGES;

		for (unsigned int k = 0; k < cfg.workers; k++) {
			uintptr_t va = (uintptr_t)(slot_addr(s) + (p0 + at) * PAGE);
			int ret = hmirror_snapshot(workers[k].fd, va, len, snap);

			if (ret) {
				if (!s->beyond)
					count_error(&workers[k], "snapshot", ret);
				continue;
			}
			for (size_t i = 0; i < len; i++)
				if (snap[i] & DRM_HMIRROR_SNAP_WRITE)
					violation(s, p0 + at + i, V_RO_MAP, "the device page table of worker %u (%s) maps writable a page inside a read-only window",
						  k, backend_name[workers[k].backend]);
		}
	}
}

/* A read-only window over [p0, p0 + n); layout held, cpu_write held (wr). */
static bool ro_window(struct slot *s, size_t p0, size_t n, unsigned int ms)
{
	uint8_t *a = slot_addr(s) + p0 * PAGE;
	bool ok;

	/* Maybe read-only from here... */
	for (size_t i = 0; i < n; i++)
		atomic_fetch_add(&s->pg[p0 + i].ro_maybe, 1);
	ok = !mprotect(a, n * PAGE, PROT_READ);
	if (ok) {
		/* ...certainly from here... */
		for (size_t i = 0; i < n; i++)
			atomic_fetch_add(&s->pg[p0 + i].ro_sure, 1);
		check_ro_snapshot(s, p0, n);
		if (ms)
			sleep_ms(ms);
		/* ...to here... */
		for (size_t i = 0; i < n; i++)
			atomic_fetch_add(&s->pg[p0 + i].ro_sure, 1);
		if (mprotect(a, n * PAGE, PROT_READ | PROT_WRITE)) {
			fprintf(stderr, "hmirror-stress: mprotect back to read-write: %s\n",
				strerror(errno));
			atomic_store(&stop, true);
		}
	}
	/* ...and maybe to here. */
	for (size_t i = 0; i < n; i++)
		atomic_fetch_add(&s->pg[p0 + i].ro_maybe, 1);
	return ok;
}

static void mut_mprotect(uint64_t *rs)
{
	struct slot *s = pick_slot(rs);
	size_t n = 1 + rnd(rs, 16), p0;

	pthread_rwlock_rdlock(&s->layout);
	p0 = aim(s, n, rs);
	pthread_rwlock_wrlock(&s->cpu_write);
	if (ro_window(s, p0, n, 1 + rnd(rs, 5)))
		atomic_fetch_add(&mut_effect[MUT_MPROTECT], n);
	pthread_rwlock_unlock(&s->cpu_write);
	pthread_rwlock_unlock(&s->layout);
}

/* ---- fork --------------------------------------------------------------- */

struct fork_report {
	int32_t code;		/* 0 ok, 3 bad word, 5 changed later, 6 lost store */
	uint32_t page, word;
	uint64_t value;
	uint32_t pages;		/* pages checked */
	uint64_t pagemap;	/* the child's pagemap entry of @page, when bad */
};

static bool read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t r = read(fd, p, len);

		if (r <= 0)
			return false;
		p += r;
		len -= (size_t)r;
	}
	return true;
}

static uint64_t page_hash(const volatile uint64_t *p)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (unsigned int i = 0; i < WORDS; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/*
 * The child: its copy must hold, page by page, what the parent's page held
 * at the fork (any version the window allowed between just before and just
 * after), and keep holding it while the parent's device goes on writing;
 * its own stores must stay.  No locks, no stdio: async-signal-safe only.
 */
static void __attribute__((noreturn))
fork_child(struct slot *s, struct window *w, uint64_t *hash, int in, int out)
{
	const struct timespec wait = { 0, 50 * 1000000L };
	volatile uint64_t *base = (volatile uint64_t *)slot_addr(s);
	struct fork_report r = { 0 };
	uint32_t *tail = (uint32_t *)hash;	/* hi, last_zero per page */
	size_t p;

	if (!read_full(in, tail, s->npages * 2 * sizeof(uint32_t)))
		_exit(7);
	for (p = 0; p < s->npages; p++) {
		w[p].hi = tail[2 * p];
		w[p].last_zero = tail[2 * p + 1];
	}
	for (p = 0; p < s->npages; p++) {
		const volatile uint64_t *pg = base + p * WORDS;

		for (unsigned int k = 0; k < WORDS; k++)
			if (!word_ok(&w[p], page_id(s, p), k, pg[k])) {
				r = (struct fork_report){ .code = 3, .page = (uint32_t)p, .word = k, .value = pg[k] };
				goto report;
			}
		hash[p] = page_hash(pg);
	}
	/* The parent's device keeps writing: none of it may reach us. */
	nanosleep(&wait, NULL);
	for (p = 0; p < s->npages; p++)
		if (page_hash(base + p * WORDS) != hash[p]) {
			r = (struct fork_report){ .code = 5, .page = (uint32_t)p, .value = base[p * WORDS] };
			goto report;
		}
	/* Break COW on every 7th page; an inherited window may be read-only. */
	if (mprotect((void *)base, s->npages * PAGE, PROT_READ | PROT_WRITE))
		_exit(4);
	for (p = 0; p < s->npages; p += 7)
		base[p * WORDS + 1] = 0xc0fe000000000000ull | p;
	nanosleep(&wait, NULL);
	for (p = 0; p < s->npages; p++) {
		const volatile uint64_t *pg = base + p * WORDS;

		if (p % 7 == 0 ? pg[1] != (0xc0fe000000000000ull | p) :
				 page_hash(pg) != hash[p]) {
			r = (struct fork_report){ .code = p % 7 ? 5 : 6, .page = (uint32_t)p, .word = 1, .value = pg[1] };
			goto report;
		}
	}
	r.pages = (uint32_t)s->npages;
report:
	/* Evidence: which frame the child's copy is (pread is signal-safe). */
	if (r.code && pagemap_read(slot_addr(s) + (size_t)r.page * PAGE, 1,
				   &r.pagemap))
		r.pagemap = 0;
	if (write(out, &r, sizeof(r)) != sizeof(r))
		_exit(8);
	_exit(r.code);
}

/* kpageflags bits worth naming in a report */
#define KPF_ANON	12
#define KPF_KSM		21
#define KPF_THP		22

static uint64_t kpageflags(uint64_t pfn)
{
	uint64_t v = 0;
	int fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (pread(fd, &v, sizeof(v), (off_t)(pfn * 8)) != sizeof(v))
			v = 0;
		close(fd);
	}
	return v;
}

static void frame_desc(char *out, size_t len, uint64_t pm)
{
	uint64_t pfn = pm & PM_PFN, f;

	if (!(pm & PM_PRESENT) || !pfn) {
		snprintf(out, len, "%s", pm & PM_SWAPPED ? "swapped" :
			 pm & PM_PRESENT ? "present, frame hidden" : "not present");
		return;
	}
	f = kpageflags(pfn);
	snprintf(out, len, "frame 0x%" PRIx64 "%s%s%s", pfn,
		 f >> KPF_ANON & 1 ? " anon" : "", f >> KPF_KSM & 1 ? " ksm" : "",
		 f >> KPF_THP & 1 ? " thp" : "");
}

/*
 * After a fork violation: the child's frame for the page, and the parent's
 * now.  The same frame means a store of the parent reached the child.
 */
static void fork_frames(char *out, size_t len, struct slot *s, size_t page,
			uint64_t child_pm)
{
	char c[64], p[64];
	uint64_t pm = 0;

	frame_desc(c, sizeof(c), child_pm);
	if (pagemap_read(slot_page(s, page), 1, &pm))
		pm = 0;
	frame_desc(p, sizeof(p), pm);
	snprintf(out, len, "child's %s, parent's now %s", c, p);
}

static void mut_fork(uint64_t *rs)
{
	struct slot *s = pick_slot(rs);
	struct window *w;
	uint64_t *hash;
	int to_child[2], from_child[2], status;
	struct fork_report r;
	pid_t pid;

	if (s->memfd >= 0)
		return;		/* shared memory is meant to be seen by both */
	w = calloc(s->npages, sizeof(*w));
	hash = calloc(s->npages, sizeof(*hash));
	if (!w || !hash || pipe(to_child)) {
		free(w);
		free(hash);
		return;
	}
	if (pipe(from_child)) {
		close(to_child[0]);
		close(to_child[1]);
		free(w);
		free(hash);
		return;
	}
	pthread_rwlock_rdlock(&s->layout);
	for (size_t p = 0; p < s->npages; p++)
		window_open(&s->pg[p], &w[p]);
	pid = fork();
	if (pid == 0) {
		close(to_child[1]);
		close(from_child[0]);
		fork_child(s, w, hash, to_child[0], from_child[1]);
	}
	if (pid > 0) {
		uint32_t *tail = malloc(s->npages * 2 * sizeof(uint32_t));

		for (size_t p = 0; tail && p < s->npages; p++) {
			window_close(&s->pg[p], &w[p]);
			tail[2 * p] = w[p].hi;
			tail[2 * p + 1] = w[p].last_zero;
		}
		if (!tail || write(to_child[1], tail, s->npages * 2 * sizeof(uint32_t)) < 0)
			kill(pid, SIGKILL);
		free(tail);
	}
	pthread_rwlock_unlock(&s->layout);
	close(to_child[0]);
	close(to_child[1]);
	close(from_child[1]);
	if (pid > 0 && waitpid(pid, &status, 0) == pid) {
		bool got = read_full(from_child[0], &r, sizeof(r));
		char seen[192];

		if (got && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			atomic_fetch_add(&fork_children, 1);
			atomic_fetch_add(&mut_effect[MUT_FORK], r.pages);
		} else if (got && (r.code == 3 || r.code == 5 || r.code == 6)) {
			char frames[160];

			describe(seen, sizeof(seen), r.value);
			fork_frames(frames, sizeof(frames), s, r.page, r.pagemap);
			violation(s, r.page, V_FORK, "%s (word %u is %s; allowed versions %u..%u%s; %s)",
				  r.code == 3 ? "fork child's copy holds data the parent's page never held at the fork" :
				  r.code == 5 ? "fork child's copy changed after the fork (a parent's write leaked into it)" :
				  "fork child's own store vanished",
				  r.word, seen, w[r.page].lo, w[r.page].hi,
				  window_zero(&w[r.page]) ? " or zero" : "", frames);
		} else {
			count_error(NULL, "fork child", WIFEXITED(status) ?
				    -WEXITSTATUS(status) : -EINTR);
		}
	}
	close(from_child[0]);
	free(w);
	free(hash);
}

/* ---- KSM ------------------------------------------------------------------ */

/*
 * Every page of the KSM slot has its own stamps; a CPU-only twin holds the
 * same, so ksmd merges each page with its twin and a translation to another
 * page of the slot still shows.  A merge is seen per page: the slot page
 * and its twin map the same frame.
 */
static void ksm_reset(struct slot *s)
{
	pthread_rwlock_rdlock(&s->layout);
	pthread_rwlock_rdlock(&s->cpu_write);
	atomic_fetch_add(&mut_raced[MUT_KSM], count_busy(s, 0, s->npages));
	for (size_t p = 0; p < s->npages; p++) {
		struct actor a;

		actor_begin(&s->pg[p], false, &a, WHO_KSM);
		make_page(slot_page(s, p), page_id(s, p), a.v);
		make_page((uint64_t *)(s->twin + p * PAGE), page_id(s, p), a.v);
		actor_end(&s->pg[p], &a, true);
		s->merged[p] = false;
	}
	pthread_rwlock_unlock(&s->cpu_write);
	pthread_rwlock_unlock(&s->layout);
}

static long ksm_merging_pages(void)
{
	FILE *f = fopen("/proc/self/ksm_merging_pages", "r");
	long v = 0;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

static unsigned int ksm_count_merges(struct slot *s)
{
	uint64_t a[MAX_OP_PAGES], b[MAX_OP_PAGES];
	unsigned int merged = 0;

	pthread_rwlock_rdlock(&s->layout);
	for (size_t p = 0; p < s->npages; p += MAX_OP_PAGES) {
		size_t k = s->npages - p < MAX_OP_PAGES ? s->npages - p : MAX_OP_PAGES;

		if (pagemap_read(slot_addr(s) + p * PAGE, k, a) ||
		    pagemap_read(s->twin + p * PAGE, k, b))
			break;
		for (size_t i = 0; i < k; i++) {
			bool same = (a[i] & PM_PRESENT) && (b[i] & PM_PRESENT) &&
				    (a[i] & PM_PFN) && (a[i] & PM_PFN) == (b[i] & PM_PFN);

			if (same && !s->merged[p + i]) {
				s->merged[p + i] = true;
				merged++;
			}
		}
	}
	pthread_rwlock_unlock(&s->layout);
	return merged;
}

static void mut_ksm(uint64_t *rs)
{
	struct slot *s = slot_ksm;
	long before = ksm_merging_pages();

	ksm_reset(s);
	for (unsigned int t = 0; t < 10 + rnd(rs, 10) && !atomic_load(&stop); t++) {
		sleep_ms(100);
		if (pfn_visible)
			atomic_fetch_add(&mut_effect[MUT_KSM], ksm_count_merges(s));
	}
	/* Without frame numbers (not root): the process's merged pages. */
	if (!pfn_visible && ksm_merging_pages() > before)
		atomic_fetch_add(&mut_effect[MUT_KSM], ksm_merging_pages() - before);
}

/* ---- THP, dontneed, remap, mremap, pageout --------------------------------- */

static void mut_thp(uint64_t *rs)
{
	struct slot *s = slot_thp;
	uintptr_t a;
	long before, after;

	/* Exclusive among mutators, so the AnonHugePages change is ours. */
	pthread_rwlock_wrlock(&s->layout);
	a = (uintptr_t)slot_addr(s);
	before = anon_huge_kb(a, a + s->npages * PAGE);
	if (rnd(rs, 2)) {
		/* Split: a read-only page inside a huge page breaks the PMD. */
		size_t p = aim(s, 1, rs);

		pthread_rwlock_wrlock(&s->cpu_write);
		ro_window(s, p, 1, 0);
		pthread_rwlock_unlock(&s->cpu_write);
		after = anon_huge_kb(a, a + s->npages * PAGE);
		if (before > after)
			atomic_fetch_add(&thp_split, (unsigned long)(before - after) / 2048);
	} else {
		/*
		 * The device's references on the pages it maps make a collapse
		 * fail, and workers fault them back at any time: drop them
		 * (a read-only window over the slot invalidates the device)
		 * right before each of a few tries.
		 */
		for (int tries = 0; tries < 4; tries++) {
			pthread_rwlock_wrlock(&s->cpu_write);
			ro_window(s, 0, s->npages, 0);
			pthread_rwlock_unlock(&s->cpu_write);
			madvise((void *)a, s->npages * PAGE, MADV_COLLAPSE);
			after = anon_huge_kb(a, a + s->npages * PAGE);
			if (after > before)
				break;
		}
		if (after > before)
			atomic_fetch_add(&thp_collapse, (unsigned long)(after - before) / 2048);
	}
	pthread_rwlock_unlock(&s->layout);
	atomic_store(&mut_effect[MUT_THP],
		     atomic_load(&thp_split) + atomic_load(&thp_collapse));
}

/* Zero pages under running device commands: DONTNEED, or a hole punch. */
static void mut_dontneed(uint64_t *rs)
{
	struct slot *s = pick_slot(rs);
	struct actor act[MAX_OP_PAGES];
	size_t n = 1 + rnd(rs, MAX_OP_PAGES), p0, had;
	uint8_t *a;
	int ret;

	if (n > s->npages)
		n = s->npages;
	pthread_rwlock_rdlock(&s->layout);
	p0 = aim(s, n, rs);
	a = slot_addr(s) + p0 * PAGE;
	had = count_populated(s, a, n);
	for (size_t i = 0; i < n; i++)
		actor_begin(&s->pg[p0 + i], true, &act[i], WHO_DONTNEED);
	atomic_fetch_add(&mut_raced[MUT_DONTNEED], count_busy(s, p0, n));
	if (s->memfd >= 0)
		ret = fallocate(s->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				(off_t)(p0 * PAGE), (off_t)(n * PAGE));
	else
		ret = madvise(a, n * PAGE, MADV_DONTNEED);
	for (size_t i = 0; i < n; i++)
		actor_end(&s->pg[p0 + i], &act[i], !ret);
	pthread_rwlock_unlock(&s->layout);
	if (!ret)
		atomic_fetch_add(&mut_effect[MUT_DONTNEED], had);
}

/*
 * A new mapping over the slot at the same address (one step: MAP_FIXED):
 * zeros for private slots, the same file pages for the shared one.
 */
static void mut_remap(uint64_t *rs)
{
	struct slot *s = pick_slot(rs);
	struct actor *act = calloc(s->npages, sizeof(*act));
	bool zero = s->memfd < 0;
	size_t had;
	int ret;

	if (!act)
		return;
	pthread_rwlock_wrlock(&s->layout);
	had = count_populated(s, slot_addr(s), s->npages);
	for (size_t p = 0; zero && p < s->npages; p++)
		actor_begin(&s->pg[p], true, &act[p], WHO_REMAP);
	atomic_fetch_add(&mut_raced[MUT_REMAP], count_busy(s, 0, s->npages));
	ret = slot_map(s, slot_addr(s), false);
	for (size_t p = 0; zero && p < s->npages; p++)
		actor_end(&s->pg[p], &act[p], !ret);
	pthread_rwlock_unlock(&s->layout);
	free(act);
	if (ret) {
		fprintf(stderr, "hmirror-stress: remap of %s failed: %s\n", s->name,
			strerror(-ret));
		atomic_store(&stop, true);
		return;
	}
	atomic_fetch_add(&mut_effect[MUT_REMAP], had);
}

/* The lines of /proc/self/maps that overlap [start, end), for a report. */
static void dump_maps(uintptr_t start, uintptr_t end)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	unsigned long a, b;

	if (!f)
		return;
	pthread_mutex_lock(&report_lock);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", &a, &b) == 2 && a < end && b > start)
			fprintf(stderr, "hmirror-stress:   maps: %s", line);
	pthread_mutex_unlock(&report_lock);
	fclose(f);
}

/*
 * After a move the old range is an empty mapping of ours (DONTUNMAP), first
 * read-write, then PROT_NONE.  @late marks pages that commands racing the
 * move (and their fault-ahead windows) may have touched there.  Every other
 * page must be unknown to every context's device page table, read as zeros
 * on private slots (a fresh page, not the moved data), and fail with -EFAULT
 * once the range is PROT_NONE.  Reads cost a device fault each: PROBE_PAGES
 * per move, moving on through the slot and rotating over the contexts.
 */
static void probe_moved_away(struct slot *s, uint8_t *old, const bool *late,
			     unsigned int round)
{
	size_t n = s->npages < PROBE_PAGES ? s->npages : PROBE_PAGES;
	uint8_t *snap = malloc(s->npages);
	uint64_t x;

	for (unsigned int k = 0; snap && k < cfg.workers; k++) {
		int ret = hmirror_snapshot(workers[k].fd, (uintptr_t)old, s->npages, snap);

		if (ret) {
			count_error(&workers[k], "snapshot of a moved-away range", ret);
			continue;
		}
		for (size_t p = 0; p < s->npages; p++)
			if (!late[p] && snap[p] != DRM_HMIRROR_SNAP_NONE) {
				violation(s, p, V_MOVED, "worker %u's device page table still maps the page's moved-away address (snapshot 0x%x)",
					  k, snap[p]);
				dump_maps((uintptr_t)old - s->npages * PAGE,
					  (uintptr_t)old + 2 * s->npages * PAGE);
				break;
			}
	}
	free(snap);
	for (size_t k = 0; s->memfd < 0 && k < n / 2 && !atomic_load(&stop); k++) {
		size_t p = (round * n + 2 * k) % s->npages;
		struct worker *wk = &workers[(p + round) % cfg.workers];
		int ret;

		if (late[p])
			continue;
		x = 0;
		ret = hmirror_read(wk->fd, 0, (uintptr_t)(old + p * PAGE), &x, 8);
		if (ret)
			count_error(wk, "probe of an emptied range", ret);
		else if (x)
			violation(s, p, V_MOVED, "a device read of the page's emptied old address returned the moved data (worker %u, %s)",
				  wk->index, backend_name[wk->backend]);
	}
	if (mprotect(old, s->npages * PAGE, PROT_NONE)) {
		fprintf(stderr, "hmirror-stress: mprotect of the old range: %s\n",
			strerror(errno));
		atomic_store(&stop, true);
		return;
	}
	for (size_t k = 0; k < n / 2 && !atomic_load(&stop); k++) {
		size_t p = (round * n + 2 * k + 1) % s->npages;
		struct worker *wk = &workers[(p + round) % cfg.workers];
		int ret = hmirror_read(wk->fd, 0, (uintptr_t)(old + p * PAGE), &x, 8);

		if (!ret)
			violation(s, p, V_MOVED, "a device read of the page's moved-away, PROT_NONE address succeeded (worker %u, %s)",
				  wk->index, backend_name[wk->backend]);
		else if (ret != -EFAULT)
			count_error(wk, "probe of a moved-away range", ret);
	}
	atomic_fetch_add(&probes, n);
}

/*
 * mremap() moves one VMA at a time, and the kernel does not promise that
 * the pieces an mprotect() split off merge again (nor that the slot is not
 * merged with a neighbouring mapping): move the slot's parts of its VMAs
 * one by one, each to the same offset.  Returns @to, or MAP_FAILED (errno).
 */
static void *move_pieces(uint8_t *from, uint8_t *to, size_t len)
{
	uintptr_t at = (uintptr_t)from, end = at + len, a, b, piece[256][2];
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned int n = 0;
	char line[512];

	if (!f)
		return MAP_FAILED;
	/* Sorted by address: the pieces must tile [from, from + len). */
	while (at < end && n < 256 && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx", &a, &b) != 2 || b <= at || a >= end)
			continue;
		if (a > at)
			break;
		/* A VMA may reach beyond the slot (merged with a neighbour). */
		piece[n][0] = at;
		piece[n++][1] = at = b < end ? b : end;
	}
	fclose(f);
	if (at < end) {
		errno = EFAULT;
		return MAP_FAILED;
	}
	for (unsigned int i = 0; i < n; i++)
		if (mremap((void *)piece[i][0], piece[i][1] - piece[i][0],
			   piece[i][1] - piece[i][0],
			   MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP,
			   to + (piece[i][0] - (uintptr_t)from)) == MAP_FAILED)
			return MAP_FAILED;
	return to;
}

/*
 * Move the slot between its two homes.  MREMAP_DONTUNMAP keeps the old
 * range a (now empty) mapping of ours, which is then made PROT_NONE: no
 * other mapping can land there, so the probe always runs.
 */
static void mut_mremap(uint64_t *rs)
{
	struct slot *s = pick_slot(rs);
	size_t len = s->npages * PAGE, had, reach = 0;
	uint8_t *from, *to;
	bool *late;
	void *r;
	static unsigned int round;

	if (!s->home[1])
		return;
	late = calloc(s->npages, sizeof(*late));
	if (!late)
		return;
	pthread_rwlock_wrlock(&s->layout);
	from = s->home[s->cur];
	to = s->home[!s->cur];
	had = count_populated(s, from, s->npages);
	/*
	 * Commands from now on take the new address (nothing there yet: they
	 * fail, excused by the move); those that took the old one own their
	 * pages now.  They and their fault-ahead may reach the old range.
	 */
	atomic_fetch_add(&s->addr_gen, 1);
	atomic_store(&s->addr, to);
	for (size_t p = 0; p < s->npages; p++) {
		reach = atomic_load(&s->pg[p].busy) ? cfg.fault_ahead + 1 : reach;
		if (reach) {
			late[p] = true;
			reach--;
		}
	}
	atomic_fetch_add(&mut_raced[MUT_MREMAP], count_busy(s, 0, s->npages));
	r = move_pieces(from, to, len);
	if (r == to) {
		s->cur = !s->cur;
		/* Restore what the new VMA may not have inherited. */
		if (s->huge)
			madvise(to, len, MADV_HUGEPAGE);
	}
	atomic_fetch_add(&s->addr_gen, 1);
	pthread_rwlock_unlock(&s->layout);
	if (r != to) {
		int err = errno;

		fprintf(stderr, "hmirror-stress: mremap of %s from %p failed: %s\n",
			s->name, (void *)from, strerror(err));
		dump_maps((uintptr_t)from, (uintptr_t)from + len);
		count_error(NULL, "mremap", -err);
		/* The slot may be half moved: the oracle cannot go on. */
		atomic_store(&stop, true);
		free(late);
		return;
	}
	atomic_fetch_add(&mut_effect[MUT_MREMAP], had);
	/* Only this thread uses the old range (the next move goes back to it). */
	probe_moved_away(s, from, late, round++);
	free(late);
}

static void mut_pageout(uint64_t *rs)
{
	struct slot *s = pick_slot(rs);
	size_t n = 1 + rnd(rs, MAX_OP_PAGES), p0, out = 0, before;
	uint64_t pm[MAX_OP_PAGES];
	uint8_t *a;

	if (n > s->npages)
		n = s->npages;
	pthread_rwlock_rdlock(&s->layout);
	p0 = aim(s, n, rs);
	a = slot_addr(s) + p0 * PAGE;
	before = count_populated(s, a, n);
	if (!madvise(a, n * PAGE, MADV_PAGEOUT)) {
		if (s->memfd >= 0) {
			/* Shared memory: pages that left the page cache. */
			size_t after = count_populated(s, a, n);

			out = before > after ? before - after : 0;
		} else if (!pagemap_read(a, n, pm)) {
			for (size_t i = 0; i < n; i++)
				out += !!(pm[i] & PM_SWAPPED);
		}
	}
	pthread_rwlock_unlock(&s->layout);
	atomic_fetch_add(&mut_effect[MUT_PAGEOUT], out);
}

/*
 * Move a run of pages into the device's memory (two times in three) or
 * back (MIGRATE).  Their data must not change: the workers' commands and
 * CPU accesses on them go on, and the oracle checks them as always.
 */
static void mut_devmem(uint64_t *rs)
{
	struct slot *s = pick_slot(rs);
	unsigned int n = 1 + rnd(rs, 64);

	/* Device pages cannot be collapsed: the THP slot is thp's. */
	if (s == slot_thp)
		return;
	uint32_t flags = rnd(rs, 3) ? 0 : DRM_HMIRROR_MIGRATE_TO_SYSTEM;
	uint64_t moved = 0;
	size_t p0;

	pthread_rwlock_rdlock(&s->layout);
	if (n > s->npages)
		n = s->npages;
	p0 = aim(s, n, rs);
	hmirror_migrate(workers[rnd(rs, cfg.workers)].fd,
			(uintptr_t)slot_addr(s) + p0 * PAGE, (uint64_t)n * PAGE,
			flags, &moved);
	pthread_rwlock_unlock(&s->layout);
	atomic_fetch_add(&mut_effect[MUT_DEVMEM], moved);
}

static void (*const mut_fn[MUT_COUNT])(uint64_t *) = {
	mut_migrate, mut_mprotect, mut_fork, mut_ksm, mut_thp, mut_dontneed,
	mut_remap, mut_mremap, mut_pageout, mut_devmem,
};

static void *mutator_main(void *arg)
{
	enum mutator m = (enum mutator)(uintptr_t)arg;
	uint64_t rs = cfg.seed * 0xbf58476d1ce4e5b9ull + m + 101;

	while (!atomic_load(&stop)) {
		mut_fn[m](&rs);
		atomic_fetch_add(&mut_runs[m], 1);
		sleep_ms(mut_pause[m]);
	}
	atomic_fetch_sub(&threads_running, 1);
	return NULL;
}

/* ---- setup, report -------------------------------------------------------- */

/*
 * A worker or mutator that makes no progress for STUCK_S is stuck in the
 * kernel (a fault that never ends): report which and fail now, rather than
 * hang until an outer timeout without saying anything.
 */
static void watchdog(unsigned int nworkers)
{
	static unsigned long last[MAX_WORKERS + MUT_COUNT];
	static double since[MAX_WORKERS + MUT_COUNT];
	double t = now_s();

	for (unsigned int i = 0; i < nworkers + MUT_COUNT; i++) {
		bool is_worker = i < nworkers;
		unsigned long b = is_worker ? atomic_load(&workers[i].beats) :
				  atomic_load(&mut_runs[i - nworkers]);

		if (!is_worker && !cfg.mix[i - nworkers])
			continue;
		if (b != last[i] || !since[i]) {
			last[i] = b;
			since[i] = t;
			continue;
		}
		if (t - since[i] < STUCK_S)
			continue;
		if (is_worker)
			printf("hmirror-stress: STUCK: worker %u (%s, fault-ahead %u) made no progress for %d s\n",
			       i, backend_name[workers[i].backend], workers[i].ahead, STUCK_S);
		else
			printf("hmirror-stress: STUCK: mutator %s made no progress for %d s\n",
			       mut_name[i - nworkers], STUCK_S);
		fflush(stdout);
		_exit(1);
	}
}

static int count_numa_nodes(void)
{
	char buf[64];
	int n = 1, a, b;
	FILE *f = fopen("/sys/devices/system/node/online", "r");

	if (f && fgets(buf, sizeof(buf), f)) {
		if (sscanf(buf, "%d-%d", &a, &b) == 2)
			n = b - a + 1;
	}
	if (f)
		fclose(f);
	return n;
}

static unsigned long kernel_taint(void)
{
	unsigned long t = 0;
	FILE *f = fopen("/proc/sys/kernel/tainted", "r");

	if (f) {
		if (fscanf(f, "%lu", &t) != 1)
			t = 0;
		fclose(f);
	}
	return t;
}

static void write_file(const char *path, const char *val)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fputs(val, f);
		fclose(f);
	}
}

static unsigned long backend_ops(unsigned int b)
{
	unsigned long t = 0;

	for (unsigned int i = 0; i < cfg.workers; i++)
		if (workers[i].backend == b)
			t += atomic_load(&workers[i].dev_ops);
	return t;
}

/* The run's verdict, beyond violations and errors. */
struct verdict {
	bool effects_required;
	unsigned int idle_mutators, slow_workers, idle_ahead;
	char why[512];
};

static void add_why(struct verdict *v, const char *fmt, ...)
{
	size_t len = strlen(v->why);
	va_list ap;

	if (len + 2 >= sizeof(v->why))
		return;
	if (len)
		strcat(v->why, "; ");
	len = strlen(v->why);
	va_start(ap, fmt);
	vsnprintf(v->why + len, sizeof(v->why) - len, fmt, ap);
	va_end(ap);
}

static void judge(struct verdict *v, double secs)
{
	memset(v, 0, sizeof(*v));
	v->effects_required = secs >= cfg.effect_secs;
	for (unsigned int i = 0; i < cfg.workers; i++) {
		const struct worker *wk = &workers[i];

		if (atomic_load(&wk->dev_ops) < cfg.min_ops) {
			v->slow_workers++;
			add_why(v, "worker %u (%s) did %lu device commands, fewer than %u",
				i, backend_name[wk->backend], atomic_load(&wk->dev_ops),
				cfg.min_ops);
		}
		if (v->effects_required && wk->ahead && !wk->st.ahead_pages) {
			v->idle_ahead++;
			add_why(v, "worker %u: fault-ahead %u mapped no page ahead",
				i, wk->ahead);
		}
	}
	if (!v->effects_required)
		return;
	for (int m = 0; m < MUT_COUNT; m++) {
		bool idle = !atomic_load(&mut_effect[m]);

		if (m == MUT_THP)
			idle = !atomic_load(&thp_split) || !atomic_load(&thp_collapse);
		if (cfg.mix[m] && idle) {
			v->idle_mutators++;
			add_why(v, "mutator %s had no effect", mut_name[m]);
		}
	}
}

static void report_text(FILE *out, double secs, const struct verdict *v,
			unsigned long taint_new)
{
	unsigned long errs = 0;

	for (int i = 0; i < 4; i++)
		errs += atomic_load(&err_unexpected[i]);
	fprintf(out, "hmirror-stress: %.0f s, seed %" PRIu64 ", %u workers, %d NUMA node(s), swap %s\n",
		secs, cfg.seed, cfg.workers, cfg.numa_nodes, cfg.have_swap ? "yes" : "no");
	for (unsigned int i = 0; i < cfg.workers; i++) {
		const struct worker *wk = &workers[i];

		fprintf(out, "  worker %u: ctx %u %s fault-ahead %u: %lu device commands (",
			i, wk->ctx_id, backend_name[wk->backend], wk->ahead,
			atomic_load(&wk->dev_ops));
		for (int k = 0; k < OP_KINDS; k++)
			fprintf(out, "%s%s %lu", k ? ", " : "", op_name[k],
				atomic_load(&wk->ops[k]));
		fprintf(out, "); faults %llu, pages %llu, ahead %llu, retries stale %llu busy %llu waited %llu\n",
			(unsigned long long)wk->st.faults,
			(unsigned long long)wk->st.pages_faulted,
			(unsigned long long)wk->st.ahead_pages,
			(unsigned long long)wk->st.retries_stale,
			(unsigned long long)wk->st.retries_busy,
			(unsigned long long)wk->st.retries_waited);
	}
	fprintf(out, "  backends: gup %lu, hmm %lu device commands\n",
		backend_ops(0), backend_ops(1));
	for (unsigned int i = 0; i < nslots; i++)
		if (slots[i].beyond)
			fprintf(out, "  slot %s: %lu commands refused\n", slots[i].name,
				atomic_load(&slots[i].refused));
	for (unsigned int i = 0; i < cfg.nhigh; i++)
		fprintf(out, "  %s\n", high_note[i]);
	fprintf(out, "  mutator effects%s:\n", v->effects_required ? "" :
		" (not required: run shorter than -E)");
	for (int m = 0; m < MUT_COUNT; m++) {
		if (!cfg.mix[m]) {
			if (m == MUT_PAGEOUT && !cfg.have_swap)
				fprintf(out, "    %-9s not run: no swap (MADV_PAGEOUT would do nothing)\n",
					mut_name[m]);
			if (m == MUT_DEVMEM && !cfg.have_devmem)
				fprintf(out, "    %-9s not run: no device memory (device without it, or kernel without DEVICE_PRIVATE)\n",
					mut_name[m]);
			continue;
		}
		fprintf(out, "    %-9s %lu %s in %lu runs", mut_name[m],
			atomic_load(&mut_effect[m]), mut_effect_name[m],
			atomic_load(&mut_runs[m]));
		if (m == MUT_THP)
			fprintf(out, " (split %lu, collapsed %lu)",
				atomic_load(&thp_split), atomic_load(&thp_collapse));
		if (m == MUT_FORK)
			fprintf(out, " (%lu children)", atomic_load(&fork_children));
		if (m == MUT_MREMAP)
			fprintf(out, " (%lu moved-away pages probed)", atomic_load(&probes));
		if (m == MUT_MPROTECT)
			fprintf(out, " (%lu device writes refused in a window)",
				atomic_load(&ro_refused));
		if (atomic_load(&mut_raced[m]))
			fprintf(out, " (%lu pages changed under a command in flight)",
				atomic_load(&mut_raced[m]));
		fputc('\n', out);
	}
	fprintf(out, "  checksums not verifiable (racing changes): %lu\n",
		atomic_load(&unverified));
	fprintf(out, "  errors: expected %lu, refusals beyond the device %lu; unexpected -EFAULT %lu, -EINTR %lu, -EIO %lu, other %lu\n",
		atomic_load(&efault_expected), atomic_load(&refusals),
		atomic_load(&err_unexpected[0]), atomic_load(&err_unexpected[1]),
		atomic_load(&err_unexpected[2]), atomic_load(&err_unexpected[3]));
	fprintf(out, "  commands that succeeded but should have failed: %lu\n",
		atomic_load(&wrong_success));
	fprintf(out, "  kernel taint change: 0x%lx\n", taint_new);
	if (v->why[0])
		fprintf(out, "  FAILED: %s\n", v->why);
	fprintf(out, "  integrity violations: %lu", atomic_load(&violations));
	if (atomic_load(&violations)) {
		fprintf(out, " (first after %.1f s;", atomic_load(&first_violation_s));
		for (int k = 0; k < V_KINDS; k++)
			if (atomic_load(&vkind_count[k]))
				fprintf(out, " %s %lu", vkind_name[k],
					atomic_load(&vkind_count[k]));
		fputc(')', out);
	}
	fprintf(out, ", unexpected errors: %lu\n", errs);
}

static void report_json(FILE *out, double secs, const struct verdict *v,
			unsigned long taint_new)
{
	unsigned long errs = 0;

	for (int i = 0; i < 4; i++)
		errs += atomic_load(&err_unexpected[i]);
	fprintf(out, "{\"seconds\": %.1f, \"seed\": %" PRIu64 ", \"workers\": %u, \"swap\": %s,\n",
		secs, cfg.seed, cfg.workers, cfg.have_swap ? "true" : "false");
	fprintf(out, " \"backends\": {\"gup\": %lu, \"hmm\": %lu},\n",
		backend_ops(0), backend_ops(1));
	fprintf(out, " \"contexts\": [");
	for (unsigned int i = 0; i < cfg.workers; i++) {
		const struct worker *wk = &workers[i];

		fprintf(out, "%s\n  {\"worker\": %u, \"backend\": \"%s\", \"fault_ahead\": %u, \"device_ops\": %lu, \"ops\": {",
			i ? "," : "", i, backend_name[wk->backend], wk->ahead,
			atomic_load(&wk->dev_ops));
		for (int k = 0; k < OP_KINDS; k++)
			fprintf(out, "%s\"%s\": %lu", k ? ", " : "", op_name[k],
				atomic_load(&wk->ops[k]));
		fprintf(out, "}, \"faults\": %llu, \"pages_faulted\": %llu, \"ahead_pages\": %llu, \"retries_stale\": %llu, \"retries_busy\": %llu, \"retries_waited\": %llu, \"lock_drops\": %llu, \"invalidations\": %llu, \"device_flushes\": %llu}",
			(unsigned long long)wk->st.faults,
			(unsigned long long)wk->st.pages_faulted,
			(unsigned long long)wk->st.ahead_pages,
			(unsigned long long)wk->st.retries_stale,
			(unsigned long long)wk->st.retries_busy,
			(unsigned long long)wk->st.retries_waited,
			(unsigned long long)wk->st.lock_drops,
			(unsigned long long)wk->st.invalidations,
			(unsigned long long)wk->st.device_flushes);
	}
	fprintf(out, "],\n \"mutators\": {");
	for (int m = 0, first = 1; m < MUT_COUNT; m++) {
		if (!cfg.mix[m])
			continue;
		fprintf(out, "%s\n  \"%s\": {\"runs\": %lu, \"effects\": %lu",
			first ? "" : ",", mut_name[m], atomic_load(&mut_runs[m]),
			atomic_load(&mut_effect[m]));
		if (m == MUT_THP)
			fprintf(out, ", \"split\": %lu, \"collapsed\": %lu",
				atomic_load(&thp_split), atomic_load(&thp_collapse));
		if (m == MUT_MREMAP)
			fprintf(out, ", \"probed\": %lu", atomic_load(&probes));
		if (m == MUT_FORK)
			fprintf(out, ", \"children\": %lu", atomic_load(&fork_children));
		if (m == MUT_DONTNEED || m == MUT_REMAP || m == MUT_MREMAP || m == MUT_KSM)
			fprintf(out, ", \"raced_pages\": %lu", atomic_load(&mut_raced[m]));
		fputc('}', out);
		first = 0;
	}
	fprintf(out, "},\n \"high_slots\": [");
	for (unsigned int i = 0; i < cfg.nhigh; i++)
		fprintf(out, "%s\"%s\"", i ? ", " : "", high_note[i]);
	fprintf(out, "],\n \"refusals\": %lu, \"efault_expected\": %lu, \"checksums_unverified\": %lu,\n",
		atomic_load(&refusals), atomic_load(&efault_expected),
		atomic_load(&unverified));
	fprintf(out, " \"violations_by_kind\": {");
	for (int k = 0; k < V_KINDS; k++)
		fprintf(out, "%s\"%s\": %lu", k ? ", " : "", vkind_name[k],
			atomic_load(&vkind_count[k]));
	fprintf(out, "},\n \"wrong_success\": %lu,", atomic_load(&wrong_success));
	fprintf(out, " \"errors_unexpected\": %lu, \"violations\": %lu, \"first_violation_s\": %.1f, \"taint_new\": %lu,\n",
		errs, atomic_load(&violations), atomic_load(&first_violation_s),
		taint_new);
	fprintf(out, " \"idle_mutators\": %u, \"slow_workers\": %u, \"idle_fault_ahead\": %u, \"effects_required\": %s}\n",
		v->idle_mutators, v->slow_workers, v->idle_ahead,
		v->effects_required ? "true" : "false");
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hmirror-stress [-d SECONDS] [-s SEED] [-t WORKERS] [-p SLOT_PAGES]\n"
		"         [-m MIX] [-b gup|hmm|both] [-A PAGES] [-H BITS|none] [-S SLOTS]\n"
		"         [-O MIN_OPS] [-E SECONDS] [-i PROGRESS_S] [-j JSON_FILE]\n"
		"  -m  comma list of");
	for (int i = 0; i < MUT_COUNT; i++)
		fprintf(f, " %s", mut_name[i]);
	fprintf(f, ", or none\n"
		"      (default: all; pageout only when swap is configured, devmem only\n"
		"      with device memory and DEVICE_PRIVATE)\n"
		"  -b  backends of the workers' contexts, alternating (default both)\n"
		"  -A  fault-ahead pages of every other context per backend (default 256, 0: none)\n"
		"  -H  comma list of bits b: a slot at partner + 2^b (47, 48; default 47\n"
		"      when 5-level paging allows it; given explicitly, its absence exits 4)\n"
		"  -S  comma list of anon, thp, shared, ksm: the slots (default all)\n"
		"  -O  fail when a worker completes fewer device commands (default 100)\n"
		"  -E  runs this long or longer fail when an enabled mutator had no\n"
		"      effect or a fault-ahead context mapped nothing ahead (default 30)\n"
		"exit: 0 pass, 1 fail, 2 usage, %d a feature asked for is not available\n",
		EXIT_UNAVAILABLE);
}

static int parse_mix(const char *s)
{
	char *copy = strdup(s), *tok, *save;

	memset(cfg.mix, 0, sizeof(cfg.mix));
	cfg.mix_given = true;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int i;

		if (!strcmp(tok, "none"))
			continue;
		for (i = 0; i < MUT_COUNT; i++)
			if (!strcmp(tok, mut_name[i]))
				break;
		if (i == MUT_COUNT) {
			fprintf(stderr, "hmirror-stress: unknown mutator '%s'\n", tok);
			free(copy);
			return -1;
		}
		cfg.mix[i] = true;
	}
	free(copy);
	return 0;
}

static int parse_slots(const char *s)
{
	char *copy = strdup(s), *tok, *save;

	cfg.slot_mask = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		unsigned int i;

		for (i = 0; i < 4; i++)
			if (!strcmp(tok, slot_kind_name[i]))
				break;
		if (i == 4) {
			fprintf(stderr, "hmirror-stress: unknown slot '%s'\n", tok);
			free(copy);
			return -1;
		}
		cfg.slot_mask |= 1u << i;
	}
	free(copy);
	return 0;
}

static int parse_high(const char *s)
{
	char *copy = strdup(s), *tok, *save, *end;

	cfg.nhigh = 0;
	cfg.high_given = true;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		unsigned long b;

		if (!strcmp(tok, "none"))
			continue;
		b = strtoul(tok, &end, 0);
		if (*end || b < 47 || b > 55 || cfg.nhigh == MAX_HIGH) {
			fprintf(stderr, "hmirror-stress: -H takes up to %d bits in 47..55, or none\n",
				MAX_HIGH);
			free(copy);
			return -1;
		}
		cfg.high_bits[cfg.nhigh++] = (unsigned int)b;
	}
	free(copy);
	return 0;
}

static int open_workers(void)
{
	unsigned int nb = cfg.backend[0] + cfg.backend[1];

	for (unsigned int i = 0; i < cfg.workers; i++) {
		struct worker *wk = &workers[i];
		struct drm_hmirror_ctx_options o = { .flags = DRM_HMIRROR_CTX_SET };

		wk->index = i;
		wk->backend = nb == 2 ? i % 2 : cfg.backend[1];
		wk->ahead = (i / nb) % 2 ? cfg.fault_ahead : 0;
		wk->fd = hmirror_open_nth(0);
		if (wk->fd < 0) {
			fprintf(stderr, "hmirror-stress: open: %s\n", strerror(-wk->fd));
			return -1;
		}
		o.backend = wk->backend;
		o.fault_ahead = wk->ahead;
		if (hmirror_ctx_options(wk->fd, &o)) {
			fprintf(stderr, "hmirror-stress: context options: %s\n", strerror(errno));
			return -1;
		}
		wk->ctx_id = o.ctx_id;
		wk->buf = mmap(NULL, MAX_OP_PAGES * PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		wk->copy = malloc(PAGE);
		if (wk->buf == MAP_FAILED || !wk->copy) {
			fprintf(stderr, "hmirror-stress: worker buffer: out of memory\n");
			return -1;
		}
	}
	return 0;
}

/* Every page, once nothing runs: what the CPU holds is what the oracle allows. */
static void final_check(void)
{
	uint64_t sum = 0;

	for (unsigned int k = 0; k < nslots; k++) {
		struct slot *s = &slots[k];

		for (int w = 0; w < 8; w++)
			sum += atomic_load(&s->counters[w]);
		for (size_t p = 0; p < s->npages; p++) {
			struct window w;
			int bad;

			window_open(&s->pg[p], &w);
			window_close(&s->pg[p], &w);
			bad = page_bad_word(&w, page_id(s, p), slot_page(s, p));
			if (bad >= 0) {
				char seen[192], sum[128], maker[64];

				describe(seen, sizeof(seen), slot_page(s, p)[bad]);
				page_summary(sum, sizeof(sum), page_id(s, p), slot_page(s, p));
				describe_maker(maker, sizeof(maker), s, p, w.hi);
				violation(s, p, V_FINAL, "final check: word %d is %s; allowed versions %u..%u%s (version %u by %s); %s",
					  bad, seen, w.lo, w.hi, window_zero(&w) ? " or zero" : "",
					  w.hi, maker, sum);
			}
		}
	}
	/* Every atomic, from device or CPU, landed exactly once. */
	if (sum != atomic_load(&atomic_adds))
		violation(NULL, 0, V_FINAL, "atomics: %" PRIu64 " in memory, %lu done", sum,
			  atomic_load(&atomic_adds));
}

int main(int argc, char **argv)
{
	struct drm_hmirror_info info;
	pthread_t mut_threads[MUT_COUNT];
	bool mut_started[MUT_COUNT] = { false };
	unsigned int started = 0;
	unsigned long taint0, taint1, errs = 0;
	struct verdict v;
	double t0, last, secs;
	int opt, ret, fd;
	uint64_t probe_pm;

	for (int i = 0; i < MUT_COUNT; i++)
		cfg.mix[i] = true;
	while ((opt = getopt(argc, argv, "d:s:t:p:m:b:A:H:S:O:E:i:j:h")) != -1) {
		switch (opt) {
		case 'd': cfg.seconds = strtoul(optarg, NULL, 0); break;
		case 's': cfg.seed = strtoull(optarg, NULL, 0); break;
		case 't': cfg.workers = strtoul(optarg, NULL, 0); break;
		case 'p': cfg.slot_pages = strtoul(optarg, NULL, 0); break;
		case 'i': cfg.progress = strtoul(optarg, NULL, 0); break;
		case 'j': cfg.json = optarg; break;
		case 'A': cfg.fault_ahead = strtoul(optarg, NULL, 0); break;
		case 'O': cfg.min_ops = strtoul(optarg, NULL, 0); break;
		case 'E': cfg.effect_secs = strtoul(optarg, NULL, 0); break;
		case 'm':
			if (parse_mix(optarg))
				return 2;
			break;
		case 'H':
			if (parse_high(optarg))
				return 2;
			break;
		case 'S':
			if (parse_slots(optarg))
				return 2;
			break;
		case 'b':
			cfg.backend[0] = !strcmp(optarg, "gup") || !strcmp(optarg, "both");
			cfg.backend[1] = !strcmp(optarg, "hmm") || !strcmp(optarg, "both");
			if (!cfg.backend[0] && !cfg.backend[1]) {
				usage(stderr);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!cfg.seed)
		cfg.seed = 1;
	if (cfg.workers < 1 || cfg.workers > MAX_WORKERS || cfg.slot_pages < 64 ||
	    cfg.slot_pages > 65536 || cfg.fault_ahead > DRM_HMIRROR_FAULT_AHEAD_MAX) {
		fprintf(stderr, "hmirror-stress: 1..%d workers, 64..65536 slot pages, fault-ahead 0..%d\n",
			MAX_WORKERS, DRM_HMIRROR_FAULT_AHEAD_MAX);
		return 2;
	}
	cfg.slot_pages = (cfg.slot_pages + 511) & ~511u;	/* whole THPs */

	cfg.have_swap = meminfo_kb("SwapTotal") > 0;
	if (!cfg.have_swap) {
		if (cfg.mix_given && cfg.mix[MUT_PAGEOUT]) {
			printf("hmirror-stress: unavailable: pageout needs swap (none configured)\n");
			return EXIT_UNAVAILABLE;
		}
		cfg.mix[MUT_PAGEOUT] = false;
	}
	/* The KSM and THP mutators work on their own slots. */
	for (int m = MUT_KSM; m <= MUT_THP; m++) {
		unsigned int need = m == MUT_KSM ? SLOT_KSM : SLOT_THP;

		if (!cfg.mix[m] || (cfg.slot_mask & need))
			continue;
		if (cfg.mix_given) {
			printf("hmirror-stress: unavailable: %s needs the %s slot (-S)\n",
			       mut_name[m], slot_kind_name[m == MUT_KSM ? 3 : 1]);
			return 2;
		}
		cfg.mix[m] = false;
	}
	cfg.numa_nodes = count_numa_nodes();
	if (cfg.mix[MUT_MIGRATE] && cfg.numa_nodes < 2) {
		if (cfg.mix_given) {
			printf("hmirror-stress: unavailable: migrate needs 2 NUMA nodes\n");
			return EXIT_UNAVAILABLE;
		}
		printf("# hmirror-stress: migrate not run: one NUMA node\n");
		cfg.mix[MUT_MIGRATE] = false;
	}

	fd = hmirror_open_nth(0);
	if (fd < 0) {
		fprintf(stderr, "hmirror-stress: open: %s\n", strerror(-fd));
		return 1;
	}
	ret = hmirror_get_info(fd, &info);
	hmirror_close(fd);
	if (ret) {
		fprintf(stderr, "hmirror-stress: GET_INFO: %s\n", strerror(-ret));
		return 1;
	}
	num_engines = info.num_engines ? info.num_engines : 1;
	cfg.have_devmem = info.device_memory_pages > 0;
	if (!cfg.have_devmem && cfg.mix[MUT_DEVMEM]) {
		if (cfg.mix_given) {
			printf("hmirror-stress: unavailable: devmem needs device memory (none, or no DEVICE_PRIVATE)\n");
			return EXIT_UNAVAILABLE;
		}
		cfg.mix[MUT_DEVMEM] = false;
	}
	if (open_workers())
		return 1;

	pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	/* Frame numbers show only to CAP_SYS_ADMIN: probe a present page. */
	pfn_visible = !pagemap_read(workers[0].buf, 1, &probe_pm) &&
		      (probe_pm & PM_PFN);
	write_file("/sys/kernel/mm/ksm/run", "1");
	write_file("/sys/kernel/mm/ksm/sleep_millisecs", "20");
	write_file("/sys/kernel/mm/ksm/pages_to_scan", "500");

	if ((cfg.slot_mask & SLOT_ANON) &&
	    !(slot_anon = slot_new("anon", SK_ANON, cfg.slot_pages, NULL)))
		return 1;
	if ((cfg.slot_mask & SLOT_THP) &&
	    !(slot_thp = slot_new("thp", SK_THP, cfg.slot_pages < 1024 ? 1024 : cfg.slot_pages, NULL)))
		return 1;
	if ((cfg.slot_mask & SLOT_SHARED) &&
	    !(slot_shared = slot_new("shared", SK_SHARED, cfg.slot_pages, NULL)))
		return 1;
	if ((cfg.slot_mask & SLOT_KSM) && !(slot_ksm = slot_new("ksm", SK_KSM, 64, NULL)))
		return 1;
	ret = high_slots_init();
	if (ret)
		return ret > 0 ? ret : 1;
	if (!nslots) {
		fprintf(stderr, "hmirror-stress: no slot to work on\n");
		return 2;
	}

	taint0 = kernel_taint();
	t0 = last = t_start = now_s();
	for (unsigned int i = 0; i < cfg.workers; i++) {
		atomic_fetch_add(&threads_running, 1);
		ret = pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
		if (ret) {
			atomic_fetch_sub(&threads_running, 1);
			fprintf(stderr, "hmirror-stress: worker thread: %s\n", strerror(ret));
			atomic_store(&stop, true);
			break;
		}
		started++;
	}
	for (int m = 0; m < MUT_COUNT && !atomic_load(&stop); m++) {
		if (!cfg.mix[m])
			continue;
		atomic_fetch_add(&threads_running, 1);
		ret = pthread_create(&mut_threads[m], NULL, mutator_main,
				     (void *)(uintptr_t)m);
		if (ret) {
			atomic_fetch_sub(&threads_running, 1);
			fprintf(stderr, "hmirror-stress: mutator thread: %s\n", strerror(ret));
			atomic_store(&stop, true);
			break;
		}
		mut_started[m] = true;
	}
	while (now_s() - t0 < cfg.seconds && !atomic_load(&stop)) {
		sleep_ms(200);
		watchdog(started);
		if (cfg.progress && now_s() - last >= cfg.progress) {
			last = now_s();
			printf("# hmirror-stress: %.0f s: device commands gup %lu hmm %lu, violations %lu\n",
			       last - t0, backend_ops(0), backend_ops(1),
			       atomic_load(&violations));
			fflush(stdout);
		}
	}
	/* A thread that could not start fails the run, never just vanishes. */
	if (atomic_load(&stop) && now_s() - t0 < cfg.seconds) {
		fprintf(stderr, "hmirror-stress: stopped early\n");
		errs++;
	}
	atomic_store(&stop, true);
	while (atomic_load(&threads_running)) {
		sleep_ms(100);
		watchdog(started);
	}
	for (unsigned int i = 0; i < started; i++)
		pthread_join(workers[i].thread, NULL);
	for (int m = 0; m < MUT_COUNT; m++)
		if (mut_started[m])
			pthread_join(mut_threads[m], NULL);
	secs = now_s() - t0;

	final_check();
	for (unsigned int i = 0; i < cfg.workers; i++)
		hmirror_get_ctx_stats(workers[i].fd, &workers[i].st);
	taint1 = kernel_taint() & ~taint0;
	judge(&v, secs);
	report_text(stdout, secs, &v, taint1);
	if (cfg.json) {
		FILE *f = fopen(cfg.json, "w");

		if (f) {
			report_json(f, secs, &v, taint1);
			fclose(f);
		}
	}
	for (unsigned int i = 0; i < cfg.workers; i++)
		hmirror_close(workers[i].fd);
	for (int i = 0; i < 4; i++)
		errs += atomic_load(&err_unexpected[i]);
	errs += atomic_load(&wrong_success);
	/* Taint bit 9 (W): a kernel warning happened during the run. */
	if (atomic_load(&violations) || errs || (taint1 & (1ul << 9)) ||
	    v.idle_mutators || v.slow_workers || v.idle_ahead ||
	    started < cfg.workers)
		return 1;
	return 0;
}
