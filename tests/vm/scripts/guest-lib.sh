# Sourced by the guest scripts.  run_suite runs one kselftest binary: its
# own KTAP plan lets the host see tests it lost; an exit status that says
# it failed, never started or died is reported here as a failure too
# (0 is the only clean status).
run_suite() { # binary [args...]
	name=$1
	shift
	echo "# guest: running $name"
	if [ ! -x "./$name" ]; then
		echo "not ok - guest: $name is missing from the guest"
		return 1
	fi
	"./$name" "$@"
	st=$?
	[ "$st" = 0 ] && return 0
	echo "not ok - guest: $name exited with status $st ($(exit_meaning "$st"))"
	return 1
}

exit_meaning() { # status
	case $1 in
	1) echo "a test failed" ;;
	4) echo "every test skipped" ;;
	126|127) echo "did not start" ;;
	''|*[!0-9]*) echo "no status recorded" ;;
	*) if [ "$1" -gt 128 ]; then echo "killed by signal $(($1 - 128))"; else echo "unexpected status"; fi ;;
	esac
}

# The device features the host's include/hmirror_dev.h defines must all
# be advertised, by every device: a model that lost one fails here rather
# than turning suites into skips.
check_features() { # KTAP test number
	want=${HMIRROR_DEVICE_FEATURES:-unset}
	./hmirror-stat > /tmp/hmirror-stat.out 2>&1
	st=$?
	sed 's/^/# /' /tmp/hmirror-stat.out
	got=$(sed -n 's/^accel[0-9]*: hmirror .*, features \(0x[0-9a-f]*\),.*/\1/p' \
		/tmp/hmirror-stat.out)
	ndev=0
	bad=0
	for f in $got; do
		ndev=$((ndev + 1))
		[ "$f" = "$want" ] || bad=1
	done
	if [ "$st" = 0 ] && [ "$bad" = 0 ] && [ "$ndev" = "${HMIRROR_NUM_DEVICES:-0}" ]; then
		echo "ok $1 check.device_features all $ndev device(s) advertise $want"
		return 0
	fi
	echo "not ok $1 check.device_features want $want on ${HMIRROR_NUM_DEVICES:-?} device(s), got '$(echo $got)' (hmirror-stat status $st)"
	return 1
}
