/* SPDX-License-Identifier: MIT */
/*
 * The model's own CPU time (all its threads), split by heartbeat tick into
 * ticks where the device did something (a command, a fault, a doorbell...)
 * and ticks where it did nothing, so that "what does the device cost when
 * idle" and "per 1,000 commands" are measured, not guessed.  Called from
 * the event loop's thread only.
 */
#ifndef HMDEV_CPU_USE_H
#define HMDEV_CPU_USE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cpu_use {
	bool started;
	uint64_t last_events, last_commands;
	double last_cpu, last_wall;	/* seconds */
	double idle_cpu, idle_wall, busy_cpu, busy_wall;
	uint64_t commands;		/* summed over device resets */
};

/*
 * One tick: @commands and @events are the device's counters now (they
 * restart at a device reset).  The time since the last tick is idle when
 * @events did not move.
 */
void cpu_use_tick(struct cpu_use *u, uint64_t commands, uint64_t events);

/* One line for the log: idle and busy CPU, per 1,000 commands. */
void cpu_use_format(const struct cpu_use *u, char *buf, size_t len);

#endif
