# Run the kernel's unmodified hmm-tests against hmirror's test_hmm
# compatible devices and compare every test's result with
# hmm-tests.expect (name, pass|fail|skip, why).  Each test becomes one KTAP
# line: ok when the result is the expected one.  Sourced by check.sh.
run_hmm_tests() {
	[ -x ./hmm-tests ] && [ -f ./hmm-tests.expect ] || {
		echo "not ok 1 hmm-tests: binary or hmm-tests.expect missing"
		return 1
	}
	./hmm-tests > /tmp/hmm-tests.out 2>&1
	sed 's/^/# hmm-tests: /' /tmp/hmm-tests.out
	awk '
		FNR == NR {
			if ($0 ~ /^#/ || NF < 2) next
			want[$1] = $2
			next
		}
		/^ok [0-9]+ / {
			got[$3] = ($0 ~ /# SKIP/) ? "skip" : "pass"
		}
		/^not ok [0-9]+ / { got[$4] = "fail" }
		END {
			k = 0; bad = 0
			for (t in got) {
				k++
				if (!(t in want)) {
					printf "not ok %d hmm-tests: %s: %s, not in hmm-tests.expect\n", k, t, got[t]
					bad++
				} else if (want[t] != got[t]) {
					printf "not ok %d hmm-tests: %s: %s, expected %s\n", k, t, got[t], want[t]
					bad++
				} else {
					printf "ok %d hmm-tests: %s: %s as expected\n", k, t, got[t]
				}
			}
			for (t in want)
				if (!(t in got)) {
					printf "not ok %d hmm-tests: %s: did not run\n", ++k, t
					bad++
				}
			exit bad ? 1 : 0
		}' ./hmm-tests.expect /tmp/hmm-tests.out
}

# The same unmodified hmm-tests against the kernel's own test_hmm (debug
# kernels ship it): the hmirror devices are unbound meanwhile, since both
# would serve /dev/hmm_dmirror0-1.  Every test that passes on hmirror must
# pass on the reference too: the two implement the same ABI.
run_hmm_tests_reference() {
	[ -f ./test_hmm.ko ] || return 0
	bdfs=$(ls /sys/bus/pci/drivers/hmirror | grep '^0000:')
	for b in $bdfs; do echo "$b" > /sys/bus/pci/drivers/hmirror/unbind; done
	if ! insmod ./test_hmm.ko; then
		echo "not ok 1 hmm-tests reference: insmod test_hmm"
		for b in $bdfs; do echo "$b" > /sys/bus/pci/drivers/hmirror/bind; done
		return 1
	fi
	./hmm-tests > /tmp/hmm-tests-ref.out 2>&1
	sed 's/^/# test_hmm reference: /' /tmp/hmm-tests-ref.out
	# Tests hmirror passes that test_hmm failed.  test_hmm's own fault
	# count is racy (an invalidation during its fault makes it count two),
	# so such a test gets two more tries on the reference.
	missing=$(awk '
		FNR == NR { if ($0 !~ /^#/ && $2 == "pass") want[$1] = 1; next }
		/^ok [0-9]+ / && $0 !~ /# SKIP/ { pass[$3] = 1 }
		END { for (t in want) if (!(t in pass)) print t }
	' ./hmm-tests.expect /tmp/hmm-tests-ref.out)
	npass=$(awk '/^ok [0-9]+ / && !/# SKIP/ { n++ } END { print n + 0 }' \
		/tmp/hmm-tests-ref.out)
	bad=0
	k=0
	for t in $missing; do
		k=$((k + 1))
		if ./hmm-tests -r "$t" 2>&1 | grep -q "^ok 1 $t\$" ||
		   ./hmm-tests -r "$t" 2>&1 | grep -q "^ok 1 $t\$"; then
			echo "ok $k hmm-tests reference: $t passes on test_hmm on a retry"
		else
			echo "not ok $k hmm-tests reference: $t passes on hmirror but not on test_hmm"
			bad=1
		fi
	done
	rmmod test_hmm
	for b in $bdfs; do echo "$b" > /sys/bus/pci/drivers/hmirror/bind; done
	k=$((k + 1))
	if [ "$bad" = 0 ]; then
		echo "ok $k hmm-tests reference: test_hmm passes $npass; every test hmirror passes also passes there"
	else
		echo "not ok $k hmm-tests reference: see above"
	fi
	return $bad
}
