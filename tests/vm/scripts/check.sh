# Guest side of "make check": the kselftest binaries (but the dead-device
# one, which needs a scenario of its own), the device's features, a short
# stress, the kernel's hmm-tests.  Every suite prints a KTAP plan and runs
# whatever the device says: a suite that cannot do its job fails or skips
# with a reason, and the host fails any skip tests/guest/expect.<flavour>
# does not list.
. ./guest-lib.sh
. ./hmm-tests.sh
suites="hmirror_basic_test hmirror_mirror_test hmirror_coherence_test hmirror_devmem_test"
rc=0

# A new test binary must be added here, not silently left out.
for t in ./*_test; do
	n=${t#./}
	case " $suites hmirror_dead_test " in
	*" $n "*) ;;
	*) echo "not ok - guest: $n is not run by tests/vm/scripts/check.sh"; rc=1 ;;
	esac
done
# The device's engines spin after their work (FEAT_POLL, engine_poll_us,
# default 100 us), so most submissions and fault answers ring no doorbell
# and those that come after a longer gap do.  The coherence suite, the
# suites after it and the stress run with a shorter window (50 us), so
# that engines go to sleep and wake more often: the hand-over between the
# two paths (dev_polling cleared, then one more look) races every kind of
# invalidation.  (tests/check and run-mutants start device 0, the one
# these use, without adaptive polling, --poll-adapt=off: its engines do not
# stretch the window while commands keep coming.)
engine_poll=/sys/module/hmirror/parameters/engine_poll_us
engine_poll_default=$(cat $engine_poll)
for s in $suites; do
	case $s in
	hmirror_coherence_test) echo 50 > $engine_poll ;;
	esac
	run_suite "$s" || rc=1
done

echo "TAP version 13"
echo "1..2"
check_features 1 || rc=1
# A short stress run (both backends, fault-ahead, a slot above 2^47 where
# the guest allows it): the oracle must see no violation, and in 30 s
# every mutator it runs must have had an effect.
. ./stress.sh
secs=${HMIRROR_CHECK_STRESS_SECONDS:-30}
# A worker must complete 10 device commands per 3 s (100 in 30 s): a
# starved one fails, a short run on a loaded host does not.
min_ops=$((secs * 10 / 3))
STRESS_TEST_NUM=2 run_stress "$secs" 7 -i 0 -O "$min_ops" || rc=1
echo "$engine_poll_default" > $engine_poll

run_hmm_tests || rc=1
run_hmm_tests_reference || rc=1
exit $rc
