# Guest side of "make check": every kselftest binary except the ones that
# need a scenario of their own (the dead-device test kills the model).
rc=0
for t in ./*_test; do
	case $t in ./hmirror_dead_test) continue ;; esac
	echo "# guest: running $t"
	"$t" || rc=1
done
# A short stress run: the oracle must see no violation.
if ./hmirror-stat 2>/dev/null | grep -q 'features 0x1f'; then
	echo "# guest: hmirror-stress, ${HMIRROR_CHECK_STRESS_SECONDS:-20} s"
	if ./hmirror-stress -d "${HMIRROR_CHECK_STRESS_SECONDS:-20}" -s 7 -i 0; then
		echo "ok 1 guest: short stress, 0 integrity violations"
	else
		echo "not ok 1 guest: short stress"
		rc=1
	fi
fi

# The kernel's hmm-tests against the compat devices, once the device
# translates (before that every one of them would fail for that reason).
if [ -f ./hmm-tests.sh ] && ./hmirror-stat 2>/dev/null | grep -q 'features 0x1f'; then
	. ./hmm-tests.sh
	run_hmm_tests || rc=1
	run_hmm_tests_reference || rc=1
fi
exit $rc
