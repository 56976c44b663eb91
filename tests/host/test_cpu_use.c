// SPDX-License-Identifier: MIT
/* The model's CPU accounting: idle ticks apart from busy ones. */
#include <string.h>
#include <time.h>

#include "cpu_use.h"
#include "kselftest_harness.h"

/* Burn @ms of this thread's CPU time (however loaded the host is). */
static void spin_ms(unsigned int ms)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
	do
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

TEST(idle_and_busy_ticks_are_apart)
{
	struct cpu_use u;
	char line[384];

	memset(&u, 0, sizeof(u));
	cpu_use_tick(&u, 0, 0);		/* the first tick only starts */
	EXPECT_EQ(0, u.idle_wall);
	spin_ms(30);
	cpu_use_tick(&u, 0, 0);		/* nothing happened: idle */
	EXPECT_GT(u.idle_cpu, 0.029);
	EXPECT_GT(u.idle_wall, 0.025);
	EXPECT_EQ(0, u.busy_wall);
	spin_ms(30);
	cpu_use_tick(&u, 10, 25);	/* 10 commands: busy */
	EXPECT_GT(u.busy_cpu, 0.029);
	EXPECT_EQ(10, u.commands);
	cpu_use_tick(&u, 3, 4);		/* a reset, then 3 commands */
	EXPECT_EQ(13, u.commands);
	cpu_use_format(&u, line, sizeof(line));
	EXPECT_NE(NULL, strstr(line, "13 commands"));
}

TEST_HARNESS_MAIN
