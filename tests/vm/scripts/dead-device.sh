# Guest side of the dead-device scenario: the runner kills hmirror-dev when
# the test prints its marker, and starts device 1 as a model that lies
# (--misbehave complete-faulted).
. ./guest-lib.sh
run_suite hmirror_dead_test
