#!/usr/bin/env bash
# Reads that gather huge replies keep memory bounded (issue 8 item 3):
# MGET of one 1 MiB value 3000 times answers the reply-size error without
# copying 3 GB first, EXISTS and TYPE copy no value, a client pipelining
# 40 MGETs of 20 MiB each without reading holds a bounded amount; RSS is
# sampled from /proc/PID/status (tests/server/reply_memory.py).
. "$(dirname "$0")/common.bash"
need_tools
is_dynvme || skip "dynvme only (redis-server builds the 3 GB reply)"
srv_start
timeout $((240 * SLOW)) "$PY" "$TESTS_DIR/reply_memory.py" "$SRV_PORT" "$SRV_PID" || fail "reply_memory.py (see above)"
srv_alive || die "server died"
ping_ok "after the large reads"
srv_stop
check "exit code after SIGTERM" 0 "$SRV_RC"
finish
