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
