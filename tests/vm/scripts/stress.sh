# Guest side (busybox sh) of the stress runs, sourced by the check and run
# scripts:
#
#   . ./stress.sh
#   run_stress SECONDS SEED [extra hmirror-stress options...]
#
# Runs ./hmirror-stress once with both fault backends, fault-ahead on every
# other context, and a slot above 2^47 when 5-level paging allows it (the
# program's defaults), plus the extra options; its output goes to the log
# as "# " lines and the last line is one KTAP result:
#
#   ok N stress: ...            the oracle saw nothing wrong and every
#                               enabled mutator had an effect (runs >= 30 s)
#   not ok N stress: ...        anything else
#   ok N stress: ... # SKIP why a feature the extra options asked for is not
#                               available here (exit status 4), nothing ran
#
# N is $STRESS_TEST_NUM (default 1); the caller counts the line in its
# plan.  The JSON summary is left in $STRESS_JSON (default
# /tmp/stress.json).  Swap for the pageout mutator: when no swap is active
# and the zram module is loaded (run-vm --module lz4_compress.ko.xz
# --module zram.ko.xz), a 64 MiB zram swap is set up first; without swap
# the program leaves pageout out and says so; the zram swap is taken down
# again afterwards (the runner unloads the module).  Returns 0 on ok (or
# SKIP), 1 otherwise.

stress_zram=

stress_swap_setup() {
	stress_zram=
	grep -q '^/' /proc/swaps 2>/dev/null && return 0
	[ -d /sys/block/zram0 ] || return 0
	if [ ! -b /dev/zram0 ]; then
		mknod /dev/zram0 b "$(cut -d: -f1 /sys/block/zram0/dev)" \
			"$(cut -d: -f2 /sys/block/zram0/dev)" || return 0
	fi
	echo 64M > /sys/block/zram0/disksize 2>/dev/null
	if mkswap /dev/zram0 >/dev/null 2>&1 && swapon /dev/zram0 2>/dev/null; then
		stress_zram=/dev/zram0
		echo "# stress: 64 MiB of zram swap for the pageout mutator"
	fi
	return 0
}

stress_swap_teardown() {
	[ -n "$stress_zram" ] || return 0
	swapoff "$stress_zram"
	echo 1 > /sys/block/zram0/reset 2>/dev/null
	stress_zram=
}

run_stress() {
	stress_secs=$1
	stress_seed=$2
	shift 2
	stress_n=${STRESS_TEST_NUM:-1}
	stress_json=${STRESS_JSON:-/tmp/stress.json}
	stress_log=/tmp/stress.$$.log
	stress_desc="stress: ${stress_secs} s, seed ${stress_seed}${*:+, options $*}"

	stress_swap_setup
	rm -f "$stress_json" "$stress_log.rc"
	echo "# stress: ./hmirror-stress -d $stress_secs -s $stress_seed -i 10 -j $stress_json $*"
	{
		./hmirror-stress -d "$stress_secs" -s "$stress_seed" -i 10 \
			-j "$stress_json" "$@" 2>&1
		echo $? > "$stress_log.rc"
	} | tee "$stress_log" | sed -e 's/^[^#]/# &/' -e 's/^$/#/'
	stress_rc=$(cat "$stress_log.rc" 2>/dev/null)
	stress_swap_teardown
	case $stress_rc in
	0)
		echo "ok $stress_n $stress_desc"
		;;
	4)
		stress_why=$(sed -n 's/^hmirror-stress: unavailable: //p' "$stress_log" | head -n 1)
		echo "ok $stress_n $stress_desc # SKIP ${stress_why:-feature not available}"
		stress_rc=0
		;;
	*)
		echo "not ok $stress_n $stress_desc (exit ${stress_rc:-unknown})"
		stress_rc=1
		;;
	esac
	rm -f "$stress_log" "$stress_log.rc"
	return $stress_rc
}
