/* SPDX-License-Identifier: MIT */
/*
 * The hostile guest and its driver, shared by the device model's fuzz
 * targets: fuzz_hmdev (the model inline, one thread) and fuzz_engines
 * (the engines in their own threads, hmdev_start()).  Both run the same
 * input language (fuzz_guest.c); the threaded target adds operations that
 * only mean something while engines run concurrently.
 *
 *  fuzz_ram.c     guest RAM laid out by the input (files, sizes, lowmem),
 *                 opened with guest_ram_open(); the device's view and the
 *                 guest CPU's view of the same memory
 *  fuzz_oracle.c  what the device may touch: an independent page-table
 *                 walker and the MIGRATE tables submitted give the guest
 *                 frames and device-memory pages it may read and write,
 *                 applied as page protections on the device's view of RAM
 *                 and on its device memory; BAR2 stores outside the
 *                 device-owned regions; load-triggered guest writes (a
 *                 context flipping between its two VALID reads, a page
 *                 appearing during a fault run)
 *  fuzz_driver.c  the driver's side of the rings, and the completion and
 *                 fault-record oracle
 *  fuzz_guest.c   the input language
 */
#ifndef FUZZ_GUEST_H
#define FUZZ_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest_ram.h"
#include "hmdev_internal.h"

#define FZ_PG		4096ull
#define FZ_HUGE		(2ull << 20)
#define FZ_G4		0x100000000ull
#define FZ_MAX_FILES	4
#define FZ_BAR_SIZE	(1u << 20)	/* every configuration fits */
#define FZ_MAX_CMDS	512		/* per queue between resets */
/* device memory: at most 4 MiB (c2), and the pages the input names */
#define FZ_VRAM_MAX_PAGES	1024u

/* ---- input ------------------------------------------------------------ */

/* The input, read as little-endian numbers; bytes run out as zeros. */
struct fz_in {
	const uint8_t *p;
	size_t n;
};

uint8_t fz_u8(struct fz_in *in);
uint16_t fz_u16(struct fz_in *in);
uint32_t fz_u32(struct fz_in *in);
uint64_t fz_u64(struct fz_in *in);

/* An oracle failed: print why and abort (libFuzzer saves the input). */
__attribute__((noreturn, format(printf, 1, 2)))
void fz_fatal(const char *fmt, ...);

/* ---- the device and the harness-wide state ---------------------------- */

struct fz {
	struct hmdev dev;
	uint8_t *bar;
	bool threaded;		/* fuzz_engines: hmdev_start() */
	bool verbose;		/* FUZZ_VERBOSE=1 */
	/* dev.dma_off acknowledged and not being turned on: RAM PROT_NONE */
	bool dma_locked;
	/* device memory (FEAT_VRAM): bytes, from the header's vram_pages */
	uint64_t vram_size;
	uint32_t vram_span;	/* pages the input names: some past the end */
	uint64_t vram_next;	/* allocator of device pages (wraps) */
};

extern struct fz fz;

/* A device-memory page offset for a mapping (wraps; 0 without any). */
uint64_t fz_vram_page(void);

/* ---- guest RAM (fuzz_ram.c) ------------------------------------------- */

struct fz_ram {
	struct guest_ram r;	/* the device's view, from guest_ram_open() */
	uint8_t *cpu;		/* the guest CPU's view of RAM offset 0 */
	size_t cpu_len;
	/* the q35 map, computed here from the spec, not by guest_ram.c */
	uint64_t total, lowmem, below, above;
	unsigned nfiles;
	uint64_t size[FZ_MAX_FILES];
	uint64_t nframes;
	/* frame allocators: data from the bottom up, tables from the top down */
	uint64_t next_data, next_table;
};

extern struct fz_ram fz_ram;

/* Choose a RAM layout from the input and open it; try bad ones first. */
void fz_ram_open(struct fz_in *in);
void fz_ram_close(void);
/* [gpa, gpa + len) lies wholly in one RAM window (inline: the walks). */
static inline bool fz_ram_has(uint64_t gpa, uint64_t len)
{
	const struct fz_ram *m = &fz_ram;

	if (!len)
		return false;
	if (gpa < m->below)
		return len <= m->below - gpa;
	if (gpa < FZ_G4 || gpa - FZ_G4 >= m->above)
		return false;
	return len <= m->above - (gpa - FZ_G4);
}

/* RAM offset of @gpa, which fz_ram_has(gpa, 1). */
static inline uint64_t fz_ram_off(uint64_t gpa)
{
	return gpa < fz_ram.below ? gpa : fz_ram.below + (gpa - FZ_G4);
}

/* Guest-physical address of RAM offset @off < total. */
static inline uint64_t fz_ram_gpa(uint64_t off)
{
	return off < fz_ram.below ? off : FZ_G4 + (off - fz_ram.below);
}
/* The guest CPU's view of the word at @gpa, NULL if not 8 bytes of RAM. */
uint64_t *fz_cpu_word(uint64_t gpa);
/* Frames for the guest's tables and data pages (they wrap). */
uint64_t fz_frame_table(void);
uint64_t fz_frame_data(void);
/* A 2 MiB aligned address at or near the end of a window (@sel). */
uint64_t fz_huge_gpa(uint8_t sel);
/* Check guest_ram_translate() and guest_ram_file_of() against the spec. */
void fz_ram_probe(struct fz_in *in);

/* ---- the oracle (fuzz_oracle.c) --------------------------------------- */

void fz_oracle_init_once(void);
/* A new device on new RAM: nothing protected yet, no trigger left. */
void fz_oracle_new_device(void);
/* A new device (or a reset): what it may touch starts from the tables now. */
void fz_oracle_epoch(void);
/*
 * The guest CPU stores @v at @gpa (RAM) or at *@bar_word (context table):
 * what the device may touch grows first, then the store is done.
 */
void fz_cpu_store(uint64_t gpa, uint64_t v);
void fz_ctx_store64(void *bar_word, uint64_t v);
void fz_ctx_store32(void *bar_word, uint32_t v);
/* Bring the device view's protections up to date (before a model call). */
void fz_oracle_sync(void);
/*
 * A MIGRATE with its table at guest-physical @src, @len entries, is about
 * to be written to a submission ring: from now until the reset after the
 * next one, the device may read the table and, entry by entry, the pages
 * it names (RAM or device memory) and write the pages they go to.
 */
void fz_oracle_migrate(uint64_t src, uint64_t len);
/*
 * The device may run something the oracle cannot know (a descriptor the
 * guest scribbled, a ring overrun): the RAM and device-memory rules are
 * off until the next reset.  Called before the store that does it.
 */
void fz_oracle_blind(void);
/* The harness zeroed the queue tails and asked for a reset. */
void fz_oracle_reset_requested(void);
/* BAR2 store checking: on once hmdev_init() is done. */
void fz_bar_watch(bool on);

/*
 * Load-triggered guest write: when the device loads the word at @watch
 * (device view; RAM or BAR2) for the @count-th time, the guest stores @v
 * at @dst first (8 or 4 bytes).  Two at a time; a third replaces the
 * older one.
 */
void fz_trigger_arm(const void *watch, unsigned count, void *dst,
		    unsigned size, uint64_t v);
void fz_trigger_disarm(void);
/* Device-view address of guest-physical @gpa (RAM), for fz_trigger_arm. */
const void *fz_dev_addr(uint64_t gpa);

struct fz_oracle_stats {
	uint64_t walks, off_calls, triggers_fired, migrate_tables;
};
extern struct fz_oracle_stats fz_ostats;

/* ---- the driver (fuzz_driver.c) --------------------------------------- */

struct fz_cmd {
	struct hmirror_cmd c;
	int expect;		/* static status, or -1: decided while running */
	bool done;
};

struct fz_drvq {
	uint32_t sq_tail, cq_head;
	uint32_t n;		/* commands submitted this epoch */
	struct fz_cmd cmd[FZ_MAX_CMDS];
};

struct fz_drv {
	struct fz_drvq q[HMIRROR_MAX_QUEUES];
	uint32_t fault_head;
	uint32_t reset_gen, ctrl_gen;
	uint32_t ctrl;		/* last drv_ctrl written with a new gen */
	uint32_t epoch;		/* resets so far: seqno = epoch << 32 | n */
	bool hostile;		/* the guest scribbled what we track: no checks */
	/* a reset is requested and not acted on yet: the rings are in limbo */
	bool reset_pending;
	/* an answer table holds an id no record we read had (sticky) */
	bool guessed;
	uint64_t last_fault_id;
	/* id of the last record read for each queue and tag */
	uint64_t fault_id[HMIRROR_MAX_QUEUES][8];
	uint64_t completions, faults;
};

extern struct fz_drv fz_drv;

/* Forget everything in flight: a reset is being requested (pending). */
void fz_drv_epoch(void);
/*
 * Put @c on queue @q's SQ with the next seqno; @force also when the ring
 * is full (the driver overruns it: hostile).  0, or -1 if not submitted.
 */
int fz_drv_submit(unsigned q, struct hmirror_cmd *c, bool force);
/* Consume and check the completions written so far. */
void fz_drv_reap(void);
/* Take and check the next fault record; 1 if there was one. */
int fz_drv_next_fault(struct hmirror_fault *f);
/* Answer table entry @tag of queue @q: the answer, then the id. */
void fz_drv_answer(unsigned q, uint32_t tag, uint64_t id, uint32_t answer);
/* CANCEL the last fault read of every command in flight (again). */
void fz_drv_cancel_all(void);
/* Commands submitted this epoch and not completed. */
unsigned fz_drv_outstanding(void);
/* Print the rings and the commands in flight (a failing drain). */
void fz_drv_dump(void);
/* Queue registers and parked counts are sane (not after scribbles). */
void fz_drv_check_queues(void);

/* ---- the input language (fuzz_guest.c) -------------------------------- */

int fz_run(const uint8_t *data, size_t size, bool threaded);

#endif
