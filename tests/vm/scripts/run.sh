# Guest side of "make run": show the device, exercise it, show the counters.
rc=0
echo "# run: device, 1000 NOP round trips"
./hmirror-stat -n 1000 || rc=1
echo "# run: guest test suite"
for t in ./*_test; do
	case $t in ./hmirror_dead_test) continue ;; esac
	"$t" || rc=1
done
echo "# run: counters after the run"
./hmirror-stat || rc=1
exit $rc
