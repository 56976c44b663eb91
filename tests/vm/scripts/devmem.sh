# Guest side of run-mutants' device-memory scenario (debug kernel, a
# device with device memory): the device-memory suite, then a short stress
# whose only mutator moves pages into device memory and back while the
# workers' commands and the oracle go on.
. ./guest-lib.sh
. ./stress.sh
rc=0
run_suite hmirror_devmem_test || rc=1
echo "TAP version 13"
echo "1..1"
secs=${HMIRROR_CHECK_STRESS_SECONDS:-10}
run_stress "$secs" 7 -i 0 -O $((secs * 10 / 3)) -m devmem || rc=1
exit $rc
