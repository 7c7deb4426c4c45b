#!/usr/bin/env bash
# The keyspace under concurrent clients (tests/server/keyspace.py): SCAN
# and KEYS while two clients overwrite, delete and insert keys and (on a
# 16 MiB device) GC collects zones: every key present for the whole
# iteration is returned; INCR/INCRBY/DECRBY/APPEND from several connections
# at once lose no update; FLUSHALL between pipelined commands. Then
# FLUSHALL's durability: kill -9 right after its +OK, restart, nothing is
# back; GC reuses every zone, restart again, nothing is back (dynvme: the
# flush point and the offline check); keys written after it stay.
# DV_SERVER=redis runs it against redis-server 7 (appendfsync always).
. "$(dirname "$0")/common.bash"
need_tools
export SRV_REDIS_AOF=1 SRV_SIZE=16M SRV_ZONE=256K
srv_start
for what in scan incr flushpipe; do
	log "keyspace.py $what"
	"$PY" "$TESTS_DIR/keyspace.py" "$SRV_PORT" "$SRV_MODE" "$what" || fail "keyspace.py $what (see above)"
done

log "FLUSHALL durability"
t OK FLUSHALL
for i in $(seq 0 9); do
	args=()
	for j in $(seq 0 199); do args+=("old:$i:$j" "v$j"); done
	t OK MSET "${args[@]}"
done
t OK SET "" "the empty key"
t '(integer) 2001' DBSIZE
# kill -9 as soon as the +OK is read: it must already be durable
t OK FLUSHALL
srv_kill9
srv_start
t '(integer) 0' DBSIZE
t '(integer) 0' EXISTS old:0:0 old:9:199 ""
t '(empty array)' KEYS '*'
check "SCAN 0 after the FLUSHALL and kill -9" $'1) "0"\n2) (empty array)' "$(cli SCAN 0)"
t OK SET after:1 a
t OK SET "" again
srv_kill9
srv_start
t '(integer) 2' DBSIZE
t '"again"' GET ""
if dv_only; then
	# GC takes every zone that held the flushed keys; restart: still gone.
	"$PY" - "$SRV_PORT" <<'PYEOF'
import sys
sys.path.insert(0, "tests/server")
from dvresp import Conn, encode
c = Conn(int(sys.argv[1]), timeout=30)
v = b"g" * 3000
for r in range(40):
    c.send(b"".join(encode(["SET", "churn:%d" % ((r * 200 + i) % 300), v]) for i in range(200)))
    for _ in range(200):
        c.read()
PYEOF
	zones=$(cli INFO storage | tr -d '\r' | awk -F: '/^zones_total:/ {print $2}')
	reset=$(cli INFO storage | tr -d '\r' | awk -F: '/^gc_zones_reset:/ {print $2}')
	check_match "GC reset zones after the flush ($reset of $zones)" '^[1-9][0-9]*$' "$reset"
	t '(integer) 0' EXISTS old:0:0 old:5:100 old:9:199
	srv_kill9
	srv_start
	t '(integer) 0' EXISTS old:0:0 old:5:100 old:9:199
	t '"a"' GET after:1
	t '(integer) 302' DBSIZE
	srv_stop
	"$BIN" check "$SRV_DATA" >"$WORK/check.txt" 2>&1
	check "dynvme check after flush, GC and restarts" 0 "$?"
else
	srv_stop
fi
finish
