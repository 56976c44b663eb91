// SPDX-License-Identifier: GPL-2.0
/*
 * Guest kselftest: the device model dies under a running workload.  The
 * runner kills hmirror-dev when it sees the marker line this test prints;
 * the driver must notice (heartbeat or GONE), fail every wait with -EIO,
 * and never hang or oops.  A killed model never confirms it stopped DMA,
 * so what it could still reach must be kept, not freed.  Data in its
 * memory is gone with it: a CPU touch of such a page gets SIGBUS, never
 * made-up data.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "libhmirror.h"
#include "guest_util.h"

#define KILL_MARKER	"# HMIRROR-KILL-DEVICE-MODEL"

FIXTURE(dead) {
	int unused;
};

FIXTURE_SETUP(dead)
{
	self->unused = 0;
}

FIXTURE_TEARDOWN(dead)
{
}

/*
 * A device that breaks the fault protocol (device 1 of this scenario, a
 * model started with --misbehave complete-faulted): a command parked on a
 * fault completes as soon as the driver has taken the record, before the
 * answer.  The driver must declare it dead, not return the lie as a
 * result (a waiter that returned with its fault unanswered left the
 * queue's held-fault count up for good: no stuck queue was ever noticed
 * again).  Runs first: device 0 is killed by the test after it.
 */
TEST_F(dead, lying_device_completes_a_faulted_command)
{
	struct drm_hmirror_stats st;
	uint64_t fence, sum = 0;
	/* 512 pages: a service of hundreds of microseconds, in which the
	 * model (spinning on the fault ring's head) completes the command */
	uint8_t *p = map_anon(512 * PAGE);
	int fd = hmirror_open_nth(1);

	ASSERT_NE(NULL, p);
	if (fd < 0)
		SKIP(return, "no device 1: the dead-device scenario starts a lying one");
	/* Untouched anonymous memory: the device faults on it. */
	ASSERT_EQ(-EIO, hmirror_checksum(fd, 0, (uintptr_t)p, 512 * PAGE, &sum))
		TH_LOG("the command completed without its fault's answer");
	ASSERT_EQ(0, hmirror_get_stats(fd, &st));
	ASSERT_TRUE(st.state & DRM_HMIRROR_STATE_DEAD);
	ASSERT_EQ(-EIO, hmirror_submit_nop(fd, 0, 1, DRM_HMIRROR_NOP_WAIT, &fence));
	hmirror_close(fd);
	munmap(p, 512 * PAGE);
}

/* Up to 60 s of load before giving up, so the default 30 s is too short. */
TEST_F_TIMEOUT(dead, device_model_killed, 120)
{
	struct drm_hmirror_info info;
	struct drm_hmirror_stats st;
	double start, dead_after;
	uint64_t fence, first;
	int fd, ret = 0;
	long ok = 0;

	uint8_t *mirrored = map_anon(256 * PAGE), *in_device = map_anon(16 * PAGE);
	uint64_t moved = 0;
	int status;
	pid_t pid;

	ASSERT_NE(NULL, mirrored);
	ASSERT_NE(NULL, in_device);
	fd = hmirror_open_nth(0);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, hmirror_get_info(fd, &info));
	ASSERT_EQ(0, hmirror_submit_nop(fd, 0, 1, DRM_HMIRROR_NOP_WAIT, &first));
	/* The device maps these when it dies. */
	fill_pattern(mirrored, 256 * PAGE, 1);
	ASSERT_EQ(0, hmirror_prefetch(fd, (uintptr_t)mirrored, 256 * PAGE, 1));
	/* And holds these in its own memory, where it has some. */
	fill_pattern(in_device, 16 * PAGE, 2);
	if (info.device_memory_pages) {
		ASSERT_EQ(0, hmirror_migrate(fd, (uintptr_t)in_device, 16 * PAGE,
					     0, &moved));
		ASSERT_EQ(16, moved);
	}

	printf(KILL_MARKER "\n");
	fflush(stdout);
	start = now_s();
	/* Keep the device busy until the driver gives up on it. */
	while (now_s() - start < 60) {
		ret = hmirror_submit_nop(fd, ok & 1, 16,
					 DRM_HMIRROR_NOP_WAIT, &fence);
		if (ret)
			break;
		ok++;
	}
	dead_after = now_s() - start;
	TH_LOG("driver reported %d (%s) after %.2f s, %ld batches done",
	       ret, strerror(-ret), dead_after, ok);
	ASSERT_EQ(-EIO, ret);
	/*
	 * Found by the heartbeat (3 s timeout, 0.5 s watchdog period, with
	 * TCG slack), not by the stuck-queue backstop 10 s on: a driver that
	 * kept waiting on a device it declared dead would answer only then.
	 */
	ASSERT_LT(dead_after, 8);

	/* Dead stays dead, and fails fast. */
	ASSERT_EQ(-EIO, hmirror_submit_nop(fd, 0, 1, DRM_HMIRROR_NOP_WAIT, &fence));
	if (info.device_memory_pages) {
		/* Nothing more goes into its memory... */
		ASSERT_EQ(-EIO, hmirror_migrate(fd, (uintptr_t)mirrored, PAGE, 0,
						NULL));
		/* ...and what was there cannot be read back: SIGBUS. */
		pid = fork();
		ASSERT_GE(pid, 0);
		if (!pid) {
			volatile uint8_t sink = in_device[5 * PAGE];

			(void)sink;
			_exit(0);
		}
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		ASSERT_TRUE(WIFSIGNALED(status));
		ASSERT_EQ(SIGBUS, WTERMSIG(status));
	}
	/* Work completed before the death stays completed. */
	ASSERT_EQ(0, hmirror_wait(fd, 0, first, 1000, NULL));
	/* Queries still answer. */
	ASSERT_EQ(0, hmirror_get_info(fd, &info));
	ASSERT_EQ(0, hmirror_get_stats(fd, &st));
	ASSERT_TRUE(st.state & DRM_HMIRROR_STATE_DEAD);
	/* A killed model cannot confirm it stopped: nothing is released ... */
	ASSERT_FALSE(st.state & DRM_HMIRROR_STATE_QUIESCED);
	/* ... so what the CPU unmaps now stays kept for the device. */
	ASSERT_EQ(0, munmap(mirrored, 256 * PAGE));
	ASSERT_EQ(0, hmirror_get_stats(fd, &st));
	TH_LOG("kept for the dead device: %llu pages",
	       (unsigned long long)st.kept_pages);
	ASSERT_GE(st.kept_pages, 256);
	hmirror_close(fd);

	/* New opens work and see the dead device too. */
	fd = hmirror_open_nth(0);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(-EIO, hmirror_submit_nop(fd, 0, 1, DRM_HMIRROR_NOP_WAIT, &fence));
	hmirror_close(fd);
}

TEST_HARNESS_MAIN
