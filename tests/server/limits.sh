#!/usr/bin/env bash
# Back-pressure: a client that pipelines 150 MGETs of 5000 keys (750,000 store
# operations, more than a client may have in flight) and does not read is
# paused, not buffered without bound: another client is still served, RSS
# stays bounded, and every reply arrives complete and in order once it reads.
. "$(dirname "$0")/common.bash"
need_tools
is_dynvme || skip "dynvme only (its own limits)"
srv_start
timeout $((120 * SLOW)) "$PY" "$TESTS_DIR/limits.py" "$SRV_PORT" "$SRV_PID" 2>&1
rc=$?
[ $rc -eq 0 ] || fail "limits.py exit $rc"
ping_ok "after the greedy client"
finish
