/* SPDX-License-Identifier: MIT */
/* Logging for hmirror-dev: one line per message, prefixed "hmirror-dev: ". */
#ifndef HMDEV_LOG_H
#define HMDEV_LOG_H

#include <stdio.h>

extern FILE *hm_log_file;	/* NULL means stderr */
extern int hm_log_verbose;	/* -v: debug messages */

void hm_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define hm_dbg(...) do { if (hm_log_verbose) hm_log(__VA_ARGS__); } while (0)

/* Format an error message into a caller's buffer (err may be NULL). */
void hm_seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
