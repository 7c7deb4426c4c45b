#!/usr/bin/env bash
# flush_race.sh with a replica killed -9 during the race (three real nodes,
# N=3 R=2 W=2): FLUSHALL every 50 ms through node 1 while SET/GET/INCR run
# through nodes 1 and 2; node 3 is killed -9 at 2 s, restarted, killed again
# and restarted. A write round that wrote in the old epoch and waited for
# the dead replica's answer was answered TIMEOUT at its deadline (5 s);
# now it decides when the replica's session ends (coord_peer_down). Same
# checks as flush_race.sh: no TIMEOUT, no error but the rare flushed one,
# every SET acknowledged after the last FLUSHALL's +OK readable through
# every node, each counter within its bounds.
. "$(dirname "$0")/cluster.bash"
. "$(dirname "$0")/flush_race.bash"
cl_need_tools redis-py

cl_up 3
for n in 1 2 3; do cl_wait_peers $n; done
SECS=8
[ "$QUICK" = 1 ] && SECS=4

( sleep 2; log kill1; cl_kill9 3; sleep 2; "$BIN" serve --config "$CL_DIR/node3/dynvme.conf" >>"$CL_DIR/node3/dynvme.log" 2>&1 </dev/null & echo $! > $WORK/p3; log start1; sleep 1.5; log kill2; cl_kill9 3; sleep 0.5; "$BIN" serve --config "$CL_DIR/node3/dynvme.conf" >>"$CL_DIR/node3/dynvme.log" 2>&1 </dev/null & echo $! >> $WORK/p3; log start2 ) &
KP=$!
log "FLUSHALL every 50 ms through node 1 for ${SECS}s; SET/GET/INCR through nodes 1 and 2, node 3 killed -9 and restarted twice"
flush_race_run "$SECS" 1 2
wait $KP
for p in $(cat $WORK/p3); do CL_EXTRA_PIDS+=($p); ALL_PIDS+=($p); done
cl_wait_peers 3
flush_race_check
cl_down
cl_check_logs
finish
