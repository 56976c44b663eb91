# Guest side of "make run": the device, a stress run, the benchmark.
# Files for the host travel in the test log between BEGIN-FILE/END-FILE
# markers, each line prefixed with "#| " so KTAP parsers skip them.
emit() { # name path
	echo "# BEGIN-FILE $1"
	sed 's/^/#| /' "$2"
	echo "# END-FILE $1"
}
secs=${HMIRROR_STRESS_SECONDS:-60}
seed=${HMIRROR_STRESS_SEED:-1}
iters=${HMIRROR_BENCH_ITERS:-300}
backend=${HMIRROR_BACKEND:-both}
rc=0
echo "TAP version 13"
echo "1..2"

echo "# run: device"
./hmirror-stat -n 200 || rc=1

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

echo "# run: counters"
./hmirror-stat || rc=1
cat /sys/kernel/debug/accel/*/hmirror_counters 2>/dev/null | sed 's/^/# /'
exit $rc
