#!/usr/bin/env bash
# CONFIG GET with patterns that match many parameters ('*', 'max*',
# '*port', several patterns at once; issue 8 item 9: these crashed the
# server): name/value pairs as redis-server answers them, no duplicates,
# RESP2 and RESP3 (tests/server/config_get.py); the server keeps serving.
. "$(dirname "$0")/common.bash"
need_tools
srv_start --requirepass s3cret
CLI_AUTH=(-a s3cret --no-auth-warning)
timeout $((60 * SLOW)) "$PY" "$TESTS_DIR/config_get.py" "$SRV_PORT" "$SRV_MODE" s3cret || fail "config_get.py (see above)"
srv_alive || die "server died"
t PONG PING
t $'1) "maxclients"\n2) "10000"' CONFIG GET maxclients
srv_stop
dv_only && check "exit code after SIGTERM" 0 "$SRV_RC"
finish
