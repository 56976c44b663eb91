# Guest side of "make check": the kselftest binaries (but the dead-device
# one, which needs a scenario of its own), the device's features, a short
# stress, the kernel's hmm-tests.  Every suite prints a KTAP plan and runs
# whatever the device says: a suite that cannot do its job fails or skips
# with a reason, and the host fails any skip tests/guest/expect.<flavour>
# does not list.
. ./guest-lib.sh
. ./hmm-tests.sh
suites="hmirror_basic_test hmirror_mirror_test hmirror_coherence_test"
rc=0

# A new test binary must be added here, not silently left out.
for t in ./*_test; do
	n=${t#./}
	case " $suites hmirror_dead_test " in
	*" $n "*) ;;
	*) echo "not ok - guest: $n is not run by tests/vm/scripts/check.sh"; rc=1 ;;
	esac
done
for s in $suites; do
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
STRESS_TEST_NUM=2 run_stress "$secs" 7 -i 0 || rc=1

run_hmm_tests || rc=1
run_hmm_tests_reference || rc=1
exit $rc
