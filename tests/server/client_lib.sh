#!/usr/bin/env bash
# The node server through a real client library: python3-redis (redis-py)
# under Debian's /usr/bin/python3 runs tests/server/client_lib.py against a
# fresh server; then the server is restarted on the same data file and the
# keys are counted again.
. "$(dirname "$0")/common.bash"
need_tools redis-py
SRV_REDIS_AOF=1
srv_start --maxclients 1000
log "client_lib.py"
timeout $((120 * SLOW)) "$PY" "$TESTS_DIR/client_lib.py" "$SRV_PORT" "$SRV_MODE"
rc=$?
case $rc in
0) ;;
77) skip "python3-redis cannot be imported by $PY" ;;
*) fail "client_lib.py exit $rc (failures above)" ;;
esac
n=$(cli DBSIZE)
ping_ok "after client_lib.py"
srv_stop
check "exit code after SIGTERM" 0 "$SRV_RC"
log "restart on the same data file"
srv_start --maxclients 1000
check "DBSIZE after restart equals DBSIZE before" "$n" "$(cli DBSIZE)"
got=$("$PY" -c "
import redis, sys
r = redis.Redis(port=$SRV_PORT, socket_timeout=10)
ok = r.get('bin:all') == bytes(range(256)) and r.get('bin:nul') == b'\0' and r.get('bin:crlf') == b'\r\n'
ok = ok and len(r.get('big:1m') or b'') == 1 << 20 and r.get('mk:499') == b'mv499-' * (1 + 499 % 13)
print('intact' if ok else 'damaged')
" 2>&1)
check "binary, 1 MiB and MSET values after restart" intact "$got"
srv_stop
finish
