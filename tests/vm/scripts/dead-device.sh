# Guest side of the dead-device scenario: the runner kills hmirror-dev when
# the test prints its marker.
. ./guest-lib.sh
run_suite hmirror_dead_test
