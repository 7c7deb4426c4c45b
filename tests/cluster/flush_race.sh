#!/usr/bin/env bash
# Requests that overlap a cluster FLUSHALL (three real nodes, N=3 R=2 W=2):
# FLUSHALL every 50 ms through node 1 while two clients SET, GET and INCR
# through nodes 2 and 3. A request concurrent with a flush is ordered before
# or after it (the coordinator redoes it in the flush's epoch, coord.c), so:
# - no reply is a TIMEOUT, and no error but the rare "the keyspace was
#   flushed while the request ran" (a write already stored in the old
#   epoch, short of W, when the flush reached it: not redone, its value may
#   have been read there; gone with the flush);
# - every SET acknowledged that was sent after the last FLUSHALL's +OK is
#   readable through every node;
# - each client's counter, read after the last flush, lies between the
#   INCRs sent after that flush's +OK and those answered after it was sent
#   (an INCR counted twice, or one of before the flush back, is caught).
. "$(dirname "$0")/cluster.bash"
. "$(dirname "$0")/flush_race.bash"
cl_need_tools redis-py

cl_up 3
for n in 1 2 3; do cl_wait_peers $n; done
SECS=6
[ "$QUICK" = 1 ] && SECS=4

log "FLUSHALL every 50 ms through node 1 for ${SECS}s; SET/GET/INCR through nodes 2 and 3"
flush_race_run "$SECS" 2 3
flush_race_check
cl_down
cl_check_logs
finish
