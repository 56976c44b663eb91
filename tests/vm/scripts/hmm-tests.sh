# The kernel's unmodified hmm-tests (tools/testing/selftests/mm/hmm-tests.c
# of linux-source-6.12).  Sourced by check.sh, after guest-lib.sh.

# Against hmirror's test_hmm compatible devices /dev/hmm_dmirror0-1.  Its
# KTAP goes out as it is, plan included, except that a failure ./expect
# lists as "xfail NAME | PIN | why", and whose diagnostics hold PIN (the
# assertion that fails: "hmm-tests.c:LINE:test:Expected ..."), becomes
# "ok N NAME # XFAIL why [PIN]" (tests/ktap-tally.awk, rewrite mode).  A
# listed test that fails elsewhere stays "not ok"; one that passes becomes
# "not ok" (update the file).  Skips stay skips: the host judges them.
run_hmm_tests() {
	echo "# guest: running hmm-tests"
	if [ ! -x ./hmm-tests ]; then
		echo "not ok - guest: hmm-tests is missing from the guest"
		return 1
	fi
	# Streamed, so that a test that hangs shows where.
	rm -f /tmp/hmm-tests.status
	{ ./hmm-tests 2>&1; echo $? > /tmp/hmm-tests.status; } |
		awk -f ./ktap-tally.awk -v expect=./expect -v mode=rewrite |
		tee /tmp/hmm-tests.ktap
	st=$(cat /tmp/hmm-tests.status 2>/dev/null || echo none)
	# Its exit status is 1 when a test failed, expected failures included:
	# the rewritten log, judged, says whether any other failed.
	set -- $(awk -f ./ktap-tally.awk -v expect=./expect /tmp/hmm-tests.ktap |
		tail -n 1)
	if [ "$st" != 0 ] && [ "$st" != 1 ]; then
		echo "not ok - guest: hmm-tests exited with status $st ($(exit_meaning "$st"))"
		return 1
	fi
	[ "${2:-1}" = 0 ]
}

# The same hmm-tests against the kernel's own test_hmm (debug kernels ship
# it): the hmirror devices are unbound meanwhile, since both would serve
# /dev/hmm_dmirror0-1.  Every test that passed on hmirror must pass on the
# reference too: the two implement the same ABI.  One known exception:
# the exclusive-access tests, which test_hmm fails on this kernel with
# -EBUSY because make_device_exclusive_range() refuses large folios and
# test_hmm does not split the THPs first (hmirror does).  They count only
# when test_hmm fails them at exactly that assertion.
ref_better="hmm.hmm_device_private.exclusive hmm.hmm_device_private.exclusive_mprotect hmm.hmm_device_private.exclusive_cow"
run_hmm_tests_reference() {
	echo "TAP version 13"
	echo "# hmm-tests against the kernel's test_hmm, the reference"
	if [ ! -f ./test_hmm.ko ]; then
		echo "1..1"
		echo "ok 1 hmm-tests.reference # SKIP no test_hmm.ko: this kernel has no CONFIG_TEST_HMM"
		return 0
	fi
	bdfs=$(ls /sys/bus/pci/drivers/hmirror | grep '^0000:')
	for b in $bdfs; do echo "$b" > /sys/bus/pci/drivers/hmirror/unbind; done
	if ! insmod ./test_hmm.ko; then
		echo "1..1"
		echo "not ok 1 hmm-tests.reference insmod test_hmm"
		for b in $bdfs; do echo "$b" > /sys/bus/pci/drivers/hmirror/bind; done
		return 1
	fi
	./hmm-tests > /tmp/hmm-tests-ref.out 2>&1
	sed 's/^/# test_hmm reference: /' /tmp/hmm-tests-ref.out
	# Tests hmirror passed that test_hmm failed.  test_hmm's own fault
	# count is racy (an invalidation during its fault makes it count two),
	# so such a test gets two more tries on the reference.
	missing=$(awk '
		FNR == NR { if ($0 ~ /^ok [0-9]+ [^ ]+$/) want[$3] = 1; next }
		/^ok [0-9]+ [^ ]+$/ { pass[$3] = 1 }
		END { for (t in want) if (!(t in pass)) print t }
	' /tmp/hmm-tests.ktap /tmp/hmm-tests-ref.out)
	npass=$(awk '/^ok [0-9]+ [^ ]+$/ { n++ } END { print n + 0 }' \
		/tmp/hmm-tests-ref.out)
	bad=0
	k=0
	: > /tmp/hmm-tests-ref.results
	for t in $missing; do
		k=$((k + 1))
		if case " $ref_better " in *" $t "*) true ;; *) false ;; esac &&
		   grep -q ":${t##*.}:Expected ret (-16) == 0 (0)" /tmp/hmm-tests-ref.out; then
			echo "ok $k hmm-tests.reference:$t passes on hmirror; test_hmm fails it with -EBUSY (THPs it does not split)"
		elif ./hmm-tests -r "$t" 2>&1 | grep -q "^ok 1 $t\$" ||
		   ./hmm-tests -r "$t" 2>&1 | grep -q "^ok 1 $t\$"; then
			echo "ok $k hmm-tests.reference:$t passes on test_hmm on a retry"
		else
			echo "not ok $k hmm-tests.reference:$t passes on hmirror but not on test_hmm"
			bad=1
		fi >> /tmp/hmm-tests-ref.results
	done
	rmmod test_hmm
	for b in $bdfs; do echo "$b" > /sys/bus/pci/drivers/hmirror/bind; done
	k=$((k + 1))
	if [ "$bad" = 0 ] && [ "$npass" -gt 0 ]; then
		echo "ok $k hmm-tests.reference test_hmm passes $npass; every test hmirror passes also passes there"
	else
		echo "not ok $k hmm-tests.reference test_hmm passes $npass; see above"
		bad=1
	fi >> /tmp/hmm-tests-ref.results
	echo "1..$k"
	cat /tmp/hmm-tests-ref.results
	return $bad
}
