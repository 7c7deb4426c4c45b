#!/usr/bin/env bash
# Commands with many keys and repeated keys (tests/server/multikey.py):
# MSET repeating one key 10,000 times (issue 8 item 12; its time is
# printed, not asserted), DEL/UNLINK/EXISTS/MGET with repeats, MSET/MGET/
# EXISTS/DEL of 20,000 keys, and a pipeline of reads and writes around
# them. DV_SERVER=redis runs the same checks against redis-server.
. "$(dirname "$0")/common.bash"
need_tools
srv_start
timeout $((300 * SLOW)) "$PY" "$TESTS_DIR/multikey.py" "$SRV_PORT" "$SRV_MODE" || fail "multikey.py (see above)"
srv_alive || die "server died"
srv_stop
dv_only && check "exit code after SIGTERM" 0 "$SRV_RC"
finish
