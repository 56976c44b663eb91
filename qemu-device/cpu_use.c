// SPDX-License-Identifier: MIT
/* The model's CPU time, idle ticks apart from busy ones (see cpu_use.h). */
#include "cpu_use.h"

#include <stdio.h>
#include <time.h>

static double clock_s(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts))
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void cpu_use_tick(struct cpu_use *u, uint64_t commands, uint64_t events)
{
	double cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	double wall = clock_s(CLOCK_MONOTONIC);

	if (u->started) {
		/* A reset zeroes the counters: count from zero again. */
		uint64_t done = commands >= u->last_commands ?
				commands - u->last_commands : commands;

		u->commands += done;
		if (events == u->last_events) {
			u->idle_cpu += cpu - u->last_cpu;
			u->idle_wall += wall - u->last_wall;
		} else {
			u->busy_cpu += cpu - u->last_cpu;
			u->busy_wall += wall - u->last_wall;
		}
	}
	u->started = true;
	u->last_commands = commands;
	u->last_events = events;
	u->last_cpu = cpu;
	u->last_wall = wall;
}

void cpu_use_format(const struct cpu_use *u, char *buf, size_t len)
{
	double idle_pct = u->idle_wall > 0 ? 100 * u->idle_cpu / u->idle_wall : 0;
	double per_k = u->commands ? 1e3 * u->busy_cpu / (double)u->commands : 0;

	snprintf(buf, len,
		 "cpu: idle %.3f s of CPU in %.1f s without device activity (%.3f%% of one CPU); "
		 "busy %.3f s of CPU in %.1f s, %llu commands (%.3f s per 1000 commands)",
		 u->idle_cpu, u->idle_wall, idle_pct, u->busy_cpu, u->busy_wall,
		 (unsigned long long)u->commands, per_k);
}
