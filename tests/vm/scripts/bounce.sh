# Guest side of the bounce-buffer scenario: the kernel boots with
# swiotlb=force, so every DMA mapping of a user page needs CPU syncs and
# the driver refuses to mirror it (-EIO): a failed fault service must
# leave nothing parked in the device (a fence of the context completes),
# and nothing hangs or warns.
. ./guest-lib.sh
run_suite hmirror_basic_test -r dev.fence_completes_after_a_failed_fault_service
