// SPDX-License-Identifier: MIT
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

FILE *hm_log_file;
int hm_log_verbose;

void hm_log(const char *fmt, ...)
{
	FILE *f = hm_log_file ? hm_log_file : stderr;
	char buf[1024];
	va_list ap;
	size_t n;

	/* Format into one buffer so a line is written with one call. */
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	fprintf(f, "hmirror-dev: %s\n", buf);
	fflush(f);
}

void hm_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
