/* SPDX-License-Identifier: MIT */
/*
 * Logging for hmirror-dev: one line per message, prefixed "hmirror-dev: ".
 *
 * The guest can make the model log (every reset, every bad command), so the
 * log is bounded and never slows the device down:
 *  - one global token bucket for the whole process (HM_LOG_BURST lines at
 *    once, then HM_LOG_RATE lines a second); nothing the guest does refills
 *    it.  Lines over the limit are counted, and the count is logged before
 *    the next line that gets through ("N lines suppressed").
 *  - hm_log() formats into a bounded in-memory buffer and returns; a writer
 *    thread (started by the first hm_log()) does the write(2)s.  A line that
 *    does not fit because the log target is slow is dropped and counted
 *    ("N lines dropped").  Engine threads call hm_log() while holding their
 *    queue's run lock: it takes one mutex around a memcpy, never I/O.
 * If the writer thread cannot be created, hm_log() writes itself.
 */
#ifndef HMDEV_LOG_H
#define HMDEV_LOG_H

#include <stdio.h>

extern FILE *hm_log_file;	/* NULL means stderr; set before logging */
extern int hm_log_verbose;	/* -v: debug messages */

#define HM_LOG_RATE	10	/* lines a second, sustained */
#define HM_LOG_BURST	100	/* lines at once */
#define HM_LOG_LINE_MAX	1024	/* longer messages are truncated */
#define HM_LOG_BUFFER	(64 * 1024)	/* bytes waiting for the writer */

void hm_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define hm_dbg(...) do { if (hm_log_verbose) hm_log(__VA_ARGS__); } while (0)

/*
 * For the few lines that come at most once per run (listening, shutting
 * down, a fatal error): not rate limited, so that a storm cannot hide them.
 * Never for anything a guest or a peer can make happen again.
 */
void hm_log_lifecycle(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The limit: @per_sec 0 means unlimited (the guest then controls the log). */
void hm_log_set_limit(unsigned per_sec, unsigned burst);

/*
 * Wait up to @timeout_ms for everything logged so far to be written,
 * including the suppressed/dropped counts.  0 if it was, -1 on timeout.
 * Also run at exit (1 s).
 */
int hm_log_flush(unsigned timeout_ms);

/* Flush (1 s), stop the writer thread, close hm_log_file if not stderr. */
void hm_log_close(void);

/* Format an error message into a caller's buffer (err may be NULL). */
void hm_seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
