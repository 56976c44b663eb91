// SPDX-License-Identifier: MIT
/*
 * The model's log: rate limited, buffered, written by its own thread (see
 * log.h for the rules).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define PREFIX		"hmirror-dev: "
#define NS		1000000000ull
#define MAX_RATE	1000000u	/* keeps the bucket arithmetic in u64 */
#define MAX_ELAPSED	(1000 * NS)	/* a longer pause refills the bucket anyway */

FILE *hm_log_file;
int hm_log_verbose;

enum writer_state { WRITER_NONE, WRITER_RUNNING, WRITER_FAILED };

/* Everything below is under mu. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;	/* writer: work */
static pthread_cond_t idle = PTHREAD_COND_INITIALIZER;	/* flush: all written */
static char ring[HM_LOG_BUFFER];
static size_t ring_head, ring_len;
static bool writing;		/* the writer holds bytes taken out of ring */
static bool stopping;
static enum writer_state writer;
static pthread_t writer_thread;
static bool hooks_done;		/* atexit + atfork registered */

static unsigned rate = HM_LOG_RATE, burst = HM_LOG_BURST;
static uint64_t credit;		/* token bucket, in lines * NS */
static uint64_t last_ns;
static bool bucket_started;

static uint64_t suppressed_unreported, dropped_unreported;

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

/* One token per line; the bucket refills with time only. */
static bool admit(void)
{
	uint64_t now, cap;

	if (!rate)
		return true;
	now = monotonic_ns();
	cap = (uint64_t)burst * NS;
	if (!bucket_started) {
		bucket_started = true;
		credit = cap;
		last_ns = now;
	}
	if (now > last_ns) {
		uint64_t el = now - last_ns;

		if (el > MAX_ELAPSED)
			el = MAX_ELAPSED;
		credit += el * rate;
		if (credit > cap)
			credit = cap;
		last_ns = now;
	}
	if (credit < NS)
		return false;
	credit -= NS;
	return true;
}

static size_t ring_room(void)
{
	return sizeof(ring) - ring_len;
}

static void ring_put(const char *p, size_t n)
{
	size_t tail = (ring_head + ring_len) % sizeof(ring);
	size_t first = sizeof(ring) - tail;

	if (first > n)
		first = n;
	memcpy(ring + tail, p, first);
	memcpy(ring, p + first, n - first);
	ring_len += n;
}

static size_t ring_take(char *dst, size_t max)
{
	size_t n = ring_len < max ? ring_len : max;
	size_t first = sizeof(ring) - ring_head;

	if (first > n)
		first = n;
	memcpy(dst, ring + ring_head, first);
	memcpy(dst + first, ring, n - first);
	ring_head = (ring_head + n) % sizeof(ring);
	ring_len -= n;
	return n;
}

/* The "what you did not see" line, if there is anything to report. */
static size_t format_note(char *buf, size_t size)
{
	int n = 0;

	if (!suppressed_unreported && !dropped_unreported)
		return 0;
	n = snprintf(buf, size, PREFIX "log limit:");
	if (suppressed_unreported)
		n += snprintf(buf + n, size - (size_t)n,
			      " %llu lines suppressed (over %u lines/s, burst %u)",
			      (unsigned long long)suppressed_unreported, rate, burst);
	if (dropped_unreported)
		n += snprintf(buf + n, size - (size_t)n,
			      "%s %llu lines dropped (log output too slow)",
			      suppressed_unreported ? "," : "",
			      (unsigned long long)dropped_unreported);
	n += snprintf(buf + n, size - (size_t)n, "\n");
	return (size_t)n < size ? (size_t)n : size - 1;
}

static int log_fd(void)
{
	return fileno(hm_log_file ? hm_log_file : stderr);
}

/* Blocking write of everything; gives up on a target that fails. */
static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };

			poll(&pfd, 1, -1);
			continue;
		}
		return;
	}
}

/* mu held: write the buffer out ourselves (no writer thread). */
static void drain_inline(void)
{
	char chunk[4096];
	size_t n;

	while (ring_len) {
		n = ring_take(chunk, sizeof(chunk));
		write_all(log_fd(), chunk, n);
	}
}

static void *writer_main(void *arg)
{
	static char chunk[16384];
	size_t n;
	int fd;

	(void)arg;
	pthread_mutex_lock(&mu);
	for (;;) {
		while (!ring_len && !stopping)
			pthread_cond_wait(&wake, &mu);
		if (!ring_len)
			break;
		n = ring_take(chunk, sizeof(chunk));
		fd = log_fd();
		writing = true;
		pthread_mutex_unlock(&mu);
		write_all(fd, chunk, n);
		pthread_mutex_lock(&mu);
		writing = false;
		if (!ring_len)
			pthread_cond_broadcast(&idle);
	}
	pthread_cond_broadcast(&idle);
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void at_exit_flush(void)
{
	hm_log_flush(1000);
}

static void fork_prepare(void)
{
	pthread_mutex_lock(&mu);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&mu);
}

/* The child has no writer thread; what is queued is the parent's to write. */
static void fork_child(void)
{
	writer = WRITER_NONE;
	writing = false;
	stopping = false;
	ring_head = ring_len = 0;
	pthread_mutex_unlock(&mu);
}

/* mu held. */
static void start_writer(void)
{
	sigset_t all, old;

	if (writer != WRITER_NONE)
		return;
	if (!hooks_done) {
		hooks_done = true;
		atexit(at_exit_flush);
		pthread_atfork(fork_prepare, fork_parent, fork_child);
	}
	/* Signals belong to the model's event loop (signalfd), not to us. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	stopping = false;
	writer = pthread_create(&writer_thread, NULL, writer_main, NULL) ?
		 WRITER_FAILED : WRITER_RUNNING;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* mu held: queue the unreported counts, if they fit. */
static void put_note(void)
{
	char note[256];
	size_t n = format_note(note, sizeof(note));

	if (n && n <= ring_room()) {
		ring_put(note, n);
		suppressed_unreported = dropped_unreported = 0;
	}
}

/* mu held: the writer (or we) must write what is queued. */
static void kick_writer(void)
{
	if (writer == WRITER_RUNNING)
		pthread_cond_signal(&wake);
	else
		drain_inline();
}

static void vlog(bool limited, const char *fmt, va_list ap)
{
	char line[sizeof(PREFIX) + HM_LOG_LINE_MAX + 1], note[256];
	size_t n, nn;

	/* Format outside the lock: the critical section is a memcpy. */
	memcpy(line, PREFIX, sizeof(PREFIX) - 1);
	vsnprintf(line + sizeof(PREFIX) - 1, HM_LOG_LINE_MAX, fmt, ap);
	n = strlen(line);
	while (n > sizeof(PREFIX) - 1 && line[n - 1] == '\n')
		n--;
	line[n++] = '\n';

	pthread_mutex_lock(&mu);
	start_writer();
	if (limited && !admit()) {
		suppressed_unreported++;
		pthread_mutex_unlock(&mu);
		return;
	}
	nn = format_note(note, sizeof(note));
	if (nn + n <= ring_room()) {
		ring_put(note, nn);
		suppressed_unreported = dropped_unreported = 0;
		ring_put(line, n);
	} else {
		dropped_unreported++;
	}
	kick_writer();
	pthread_mutex_unlock(&mu);
}

void hm_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(true, fmt, ap);
	va_end(ap);
}

void hm_log_lifecycle(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(false, fmt, ap);
	va_end(ap);
}

int hm_log_flush(unsigned timeout_ms)
{
	struct timespec dl;
	int ret = 0;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&mu);
	put_note();
	if (!ring_len && !writing) {
		pthread_mutex_unlock(&mu);
		return 0;
	}
	kick_writer();
	while (ring_len || writing) {
		if (pthread_cond_clockwait(&idle, &mu, CLOCK_MONOTONIC, &dl) ==
		    ETIMEDOUT) {
			ret = ring_len || writing ? -1 : 0;
			break;
		}
	}
	pthread_mutex_unlock(&mu);
	return ret;
}

void hm_log_close(void)
{
	bool running;

	/* A writer stuck in write(2) is left behind (with its file): exit ends it. */
	if (hm_log_flush(1000))
		return;
	pthread_mutex_lock(&mu);
	if (writing) {
		pthread_mutex_unlock(&mu);
		return;
	}
	running = writer == WRITER_RUNNING;
	stopping = true;
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&mu);
	if (running)
		pthread_join(writer_thread, NULL);
	pthread_mutex_lock(&mu);
	writer = WRITER_NONE;
	stopping = false;
	if (hm_log_file && hm_log_file != stderr)
		fclose(hm_log_file);
	hm_log_file = NULL;
	pthread_mutex_unlock(&mu);
}

void hm_log_set_limit(unsigned per_sec, unsigned new_burst)
{
	pthread_mutex_lock(&mu);
	rate = per_sec > MAX_RATE ? MAX_RATE : per_sec;
	burst = new_burst > MAX_RATE ? MAX_RATE : new_burst ? new_burst : 1;
	bucket_started = false;
	pthread_mutex_unlock(&mu);
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
