#!/usr/bin/env bash
# Hostile input (tests/server/bad_input.py): malformed frames, negative and
# huge lengths, garbage, split and unterminated frames, a client sending one
# byte per second (--request-timeout 3), oversized values and requests
# (--max-request-bytes 2M), a client that never reads its replies
# (--max-reply-bytes 16M), 2000 idle connections with bounded RSS. After
# every case a fresh client gets PONG and earlier keys are intact; finally a
# restart keeps them.
. "$(dirname "$0")/common.bash"
need_tools
CONNS=2000
# Room for the idle connections in the server and in the client.
ulimit -n 10000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
lim=$(ulimit -n)
[ "$lim" -lt $((CONNS + 200)) ] && CONNS=$((lim - 200))
log "open files limit $lim, $CONNS idle connections"
SRV_REDIS_AOF=1
srv_start --request-timeout 3 --max-request-bytes 2M --max-reply-bytes 16M --maxclients 5000
timeout $((300 * SLOW)) "$PY" "$TESTS_DIR/bad_input.py" "$SRV_PORT" "$SRV_PID" "$SRV_MODE" "$CONNS"
rc=$?
[ $rc -eq 0 ] || fail "bad_input.py exit $rc (failures above)"
srv_alive || die "server died"
srv_stop
check "exit code after SIGTERM" 0 "$SRV_RC"
srv_start --request-timeout 3 --max-request-bytes 2M
check "sentinel key after restart" "\"$(printf 'sentinel-49-%.0s' $(seq 50))\"" "$(cli GET bi:sentinel:49)"
check "1 MiB value after restart" "(integer) 1" "$(cli EXISTS bi:1m)"
srv_stop
finish
