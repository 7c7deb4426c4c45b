#!/usr/bin/env bash
# Several network threads (--threads 3): connections land on different
# threads (SO_REUSEPORT), every thread's eops go through worker 0's engine
# and come back to the right thread; a parallel load from many connections
# sees every value it wrote, read-your-writes holds on each connection, and
# SIGTERM stops every thread and exits 0.
. "$(dirname "$0")/common.bash"
need_tools
is_dynvme || skip "dynvme only (threads)"
CONNS=24 KEYS=400
[ "$QUICK" = 1 ] && CONNS=12 KEYS=150

srv_start --threads 3
log "$CONNS connections, $KEYS keys each, pipelined SET then GET"
out=$(timeout $((120 * SLOW)) "$PY" "$TESTS_DIR/threads.py" "$SRV_PORT" "$CONNS" "$KEYS" 2>&1)
echo "$out"
field() { sed -n "s/.*$1=\([0-9]*\).*/\1/p" <<<"$out" | head -1; }
check "no error on any connection" 0 "$(field errors)"
check "every value read back from another connection" 0 "$(field bad)"
check "DBSIZE" $((CONNS * KEYS)) "$(field dbsize)"
n=$(field threads)
[ "${n:-0}" -ge 2 ] || fail "connections landed on ${n:-no} thread(s), expected at least 2 of 3"
srv_stop
check "exit code after SIGTERM with 3 threads" 0 "$SRV_RC"
grep -q 'msg="shutdown complete"' "$SRV_LOG" || fail "no shutdown complete line"
finish
