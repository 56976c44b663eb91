// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the hmirror device model inline (no engine threads),
 * driven by a hostile guest and checked by the oracles of fuzz_guest.h.
 * A run is deterministic: the doorbells and ticks run every queue to a
 * stop in this thread, and the load triggers fire at fixed points.
 */
#include "fuzz_guest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_run(data, size, false);
}
