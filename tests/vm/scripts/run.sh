# Guest side of "make run": the device, a stress run, the benchmark, and on
# a kernel that ships test_hmm.ko (KERNEL=debug) the test_hmm reference.
# Files for the host travel in the test log between BEGIN-FILE/END-FILE
# markers, each line prefixed with "#| " so KTAP parsers skip them.
emit() { # name path
	echo "# BEGIN-FILE $1"
	sed 's/^/#| /' "$2"
	echo "# END-FILE $1"
}

# /dev/hmm_dmirror0 served by $1: hmirror (bound), or the kernel's test_hmm
# (inserted, hmirror unbound meanwhile as in hmm-tests.sh: both would
# serve that name).  Uses $bdfs.
serve_dmirror() { # hmirror|test_hmm
	if [ "$1" = test_hmm ]; then
		[ -d /sys/module/test_hmm ] && return 0
		for b in $bdfs; do
			echo "$b" > /sys/bus/pci/drivers/hmirror/unbind || return 1
		done
		insmod ./test_hmm.ko
		return
	fi
	if [ -d /sys/module/test_hmm ]; then
		rmmod test_hmm || return 1
	fi
	for b in $bdfs; do
		[ -e "/sys/bus/pci/drivers/hmirror/$b" ] ||
			echo "$b" > /sys/bus/pci/drivers/hmirror/bind || return 1
	done
}

# The single-page fault through the test_hmm ABI, hmirror's compat node
# against the kernel's test_hmm, in rounds of half the iterations ordered
# hmirror, test_hmm, test_hmm, hmirror: a drift of the machine's speed
# over the rounds weighs on both columns alike.  hmirror is bound after.
test_hmm_reference() { # iterations
	rm -f /tmp/compat.txt /tmp/compat.json
	bdfs=
	for d in /sys/bus/pci/drivers/hmirror/0000:*; do
		[ -e "$d" ] && bdfs="$bdfs ${d##*/}"
	done
	half=$((($1 + 1) / 2))
	[ "$half" -ge 20 ] || half=20
	ok=1
	for col in hmirror test_hmm test_hmm hmirror; do
		if ! serve_dmirror "$col"; then
			echo "# run: cannot serve /dev/hmm_dmirror0 by $col"
			ok=0
			break
		fi
		./hmirror-bench -C /dev/hmm_dmirror0 -L "$col" -n "$half" \
			-c /tmp/compat.txt || { ok=0; break; }
	done
	serve_dmirror hmirror || ok=0
	[ "$ok" = 1 ] && ./hmirror-bench -c /tmp/compat.txt -j /tmp/compat.json
}

secs=${HMIRROR_STRESS_SECONDS:-60}
seed=${HMIRROR_STRESS_SEED:-1}
iters=${HMIRROR_BENCH_ITERS:-300}
backend=${HMIRROR_BACKEND:-both}
flavour=${HMIRROR_KERNEL_FLAVOUR:-stock}
rc=0
ntests=2
[ -f ./test_hmm.ko ] && ntests=3
echo "TAP version 13"
echo "1..$ntests"

echo "# run: device"
./hmirror-stat -n 200 || rc=1

# Idle: what the guest spends while hmirror is loaded and its node open
# but nothing is submitted (the model measures its own side: "cpu:" in
# its log).  /proc/stat's first line: user nice system idle iowait irq
# softirq steal, in ticks.
idle_s=${HMIRROR_IDLE_SECONDS:-10}
cpu_ticks() { read -r _ u n s i w q sq st _ < /proc/stat; echo "$((u + n + s + q + sq + st)) $((i + w))"; }
exec 3< /dev/accel/accel0
set -- $(cpu_ticks)
sleep "$idle_s"
set -- "$@" $(cpu_ticks)
exec 3<&-
busy=$(($3 - $1)) all=$(($3 - $1 + $4 - $2))
echo "# run: idle guest: $((busy * 1000 / (all ? all : 1) / 10)).$((busy * 1000 / (all ? all : 1) % 10))% of its CPU time busy over ${idle_s} s (hmirror loaded, accel node open, nothing submitted)"

echo "# run: stress, ${secs} s, seed ${seed}, backend ${backend}"
. ./stress.sh
STRESS_TEST_NUM=1 STRESS_JSON=/tmp/stress.json \
	run_stress "$secs" "$seed" -b "$backend" -i 10 || rc=1
[ -f /tmp/stress.json ] && emit stress.json /tmp/stress.json

echo "# run: benchmark, ${iters} iterations"
if ./hmirror-bench -n "$iters" -j /tmp/bench.json -H /tmp/fault-samples.txt; then
	echo "ok 2 run.benchmark"
else
	echo "not ok 2 run.benchmark"
	rc=1
fi
[ -f /tmp/bench.json ] && emit bench.json /tmp/bench.json
[ -f /tmp/fault-samples.txt ] && emit fault-samples.txt /tmp/fault-samples.txt

if [ "$ntests" = 3 ]; then
	echo "# run: test_hmm reference, ${iters} iterations per column"
	if test_hmm_reference "$iters"; then
		echo "ok 3 run.test_hmm_reference"
	else
		echo "not ok 3 run.test_hmm_reference"
		rc=1
	fi
	[ -f /tmp/compat.json ] && emit compat.json /tmp/compat.json
else
	echo "# run: test_hmm reference column: not available on the $flavour kernel (no test_hmm.ko; make run KERNEL=debug has it)"
fi

echo "# run: counters"
./hmirror-stat || rc=1
cat /sys/kernel/debug/accel/*/hmirror_counters 2>/dev/null | sed 's/^/# /'
exit $rc
