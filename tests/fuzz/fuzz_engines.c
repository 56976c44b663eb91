// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the hmirror device model with its engines in their
 * own threads (hmdev_start()), while the hostile guest of fuzz_guest.h
 * rewrites page tables and context entries under their walks, flips bus
 * mastering, resets the device under a running command, answers faults
 * and submits on several queues.  Built with ASan + UBSan (fuzz_engines)
 * and with TSan (fuzz_engines_tsan).  Not deterministic: a crash input
 * may need several runs to reproduce.
 */
#include "fuzz_guest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_run(data, size, true);
}
