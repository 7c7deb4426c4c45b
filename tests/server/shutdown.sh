#!/usr/bin/env bash
# Graceful shutdown: SIGTERM (then SIGINT) during a write load of several
# connections (tests/server/durability.py write), with idle connections and
# a half-sent request open too: the server exits 0 within the grace time,
# logs msg="shutdown complete" (dynvme), and after a restart every write
# the clients saw acknowledged is there (each key in the state of its last
# acknowledged op, or of the one op after it that may have been in flight).
. "$(dirname "$0")/common.bash"
need_tools
SRV_REDIS_AOF=1
THREADS=4 KEYS=500
[ "$QUICK" = 1 ] && THREADS=3 KEYS=300

srv_start
c=0
for sig in TERM INT; do
	c=$((c + 1))
	acks=$WORK/acks.$c
	timeout $((90 * SLOW)) "$PY" "$TESTS_DIR/durability.py" write "$SRV_PORT" "s$c" "$acks" "$THREADS" "$KEYS" $((30 * SLOW)) \
		>"$WORK/writer.$c.out" 2>&1 &
	wpid=$!
	ALL_PIDS+=("$wpid")
	# idle connections and one half-sent request
	"$PY" - "$SRV_PORT" <<'EOF' &
import socket, sys, time
p = int(sys.argv[1])
s = [socket.create_connection(("127.0.0.1", p)) for _ in range(20)]
s[0].sendall(b"*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$100\r\nxx")
time.sleep(60)
EOF
	idle=$!
	ALL_PIDS+=("$idle")
	end=$((SECONDS + 30 * SLOW))
	while [ "$(cat "$acks".* 2>/dev/null | wc -l)" -lt 300 ] && [ $SECONDS -lt $end ] && kill -0 "$wpid" 2>/dev/null; do
		sleep 0.05
	done
	sleep "0.$((RANDOM % 9 + 1))"
	log "SIG$sig during the write load"
	log_before=$SRV_LOG
	srv_stop "$sig"
	check "exit code after SIG$sig" 0 "$SRV_RC"
	[ "$SRV_STOP_SECS" -le $((10 * SLOW)) ] || fail "SIG$sig: exit took ${SRV_STOP_SECS}s"
	dv_only && { grep -q 'msg="shutdown complete"' "$log_before" || fail "SIG$sig: no msg=\"shutdown complete\" in the log"; }
	wait "$wpid"
	wrc=$?
	[ $wrc -eq 0 ] || { fail "SIG$sig: writer exit $wrc"; cat "$WORK/writer.$c.out"; }
	log "$(head -n 1 "$WORK/writer.$c.out"); restart"
	kill "$idle" 2>/dev/null
	wait "$idle" 2>/dev/null
	srv_start
	for p in $(seq 1 $c); do
		out=$(timeout $((60 * SLOW)) "$PY" "$TESTS_DIR/durability.py" check "$SRV_PORT" "s$p" "$WORK/acks.$p" "$THREADS" "$KEYS" 2>&1) ||
			{ fail "after SIG$sig: keys of round $p not in their last acknowledged state"; printf '%s\n' "$out"; }
	done
	t '(integer) 0' EXISTS half
done
srv_stop
check "exit code after SIGTERM" 0 "$SRV_RC"
finish
