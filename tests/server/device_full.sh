#!/usr/bin/env bash
# A GET pipelined behind a write its server refused because the device is
# full (review 1 S3): it answers the value the key still holds, never the
# write's -OOM (tests/server/device_full.py). dynvme only: Redis refuses
# writes over maxmemory, which these scripts do not set.
. "$(dirname "$0")/common.bash"
is_dynvme || skip "dynvme only (a full device)"
need_tools
SRV_SIZE=16M SRV_ZONE=256K srv_start
timeout $((300 * SLOW)) "$PY" "$TESTS_DIR/device_full.py" "$SRV_PORT" || fail "device_full.py (see above)"
ping_ok "after the device filled up"
srv_stop
check "exit code after SIGTERM" 0 "$SRV_RC"
finish
