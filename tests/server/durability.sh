#!/usr/bin/env bash
# Acknowledged writes survive kill -9: SET N keys, kill -9 the server,
# restart it on the same data file, every key holds its value; then cycles
# of kill -9 during a write load (tests/server/durability.py write: several
# connections, SETs and DELs, each acknowledged op recorded right after its
# reply), after each restart every key is in the state of its last
# acknowledged op (or of the one op that may have been in flight after it),
# for this cycle and all earlier ones.
. "$(dirname "$0")/common.bash"
need_tools
SRV_REDIS_AOF=1 # redis-server: appendfsync always, so kill -9 loses no acknowledged write

N=20000 CYCLES=4 THREADS=4 KEYS=500
[ "$QUICK" = 1 ] && N=5000 CYCLES=2 THREADS=3 KEYS=300

log "fill $N keys"
srv_start
timeout $((60 * SLOW)) "$PY" "$TESTS_DIR/durability.py" fill "$SRV_PORT" fill "$N" || fail "fill of $N keys"
srv_kill9
log "kill -9, restart"
srv_start
timeout $((60 * SLOW)) "$PY" "$TESTS_DIR/durability.py" checkfill "$SRV_PORT" fill "$N" ||
	fail "acknowledged keys lost after kill -9 (fill)"
check "DBSIZE after restart" "(integer) $N" "$(cli DBSIZE)"

for c in $(seq 1 "$CYCLES"); do
	acks=$WORK/acks.$c
	timeout $((90 * SLOW)) "$PY" "$TESTS_DIR/durability.py" write "$SRV_PORT" "c$c" "$acks" "$THREADS" "$KEYS" $((30 * SLOW)) \
		>"$WORK/writer.$c.out" 2>&1 &
	wpid=$!
	ALL_PIDS+=("$wpid")
	# Let it get going: at least 300 acknowledged ops, then a random delay.
	end=$((SECONDS + 30 * SLOW))
	while [ "$(cat "$acks".* 2>/dev/null | wc -l)" -lt 300 ] && [ $SECONDS -lt $end ] && kill -0 "$wpid" 2>/dev/null; do
		sleep 0.05
	done
	sleep "0.$((RANDOM % 9 + 1))"
	n=$(cat "$acks".* 2>/dev/null | wc -l)
	srv_kill9
	wait "$wpid"
	wrc=$?
	[ $wrc -eq 0 ] || { fail "cycle $c: writer exit $wrc"; cat "$WORK/writer.$c.out"; }
	log "cycle $c: kill -9 after >= $n acknowledged ops ($(head -n 1 "$WORK/writer.$c.out")); restart"
	[ "$n" -ge 300 ] || fail "cycle $c: only $n ops acknowledged before the kill"
	srv_start
	for p in $(seq 1 "$c"); do
		out=$(timeout $((60 * SLOW)) "$PY" "$TESTS_DIR/durability.py" check "$SRV_PORT" "c$p" "$WORK/acks.$p" "$THREADS" "$KEYS" 2>&1) ||
			{ fail "cycle $c: keys of cycle $p not in their last acknowledged state"; printf '%s\n' "$out"; }
	done
	timeout $((60 * SLOW)) "$PY" "$TESTS_DIR/durability.py" checkfill "$SRV_PORT" fill "$N" >/dev/null ||
		fail "cycle $c: fill keys damaged"
	ping_ok "cycle $c"
done

# A clean shutdown and restart keeps everything too.
srv_stop
check "exit code after SIGTERM" 0 "$SRV_RC"
srv_start
for p in $(seq 1 "$CYCLES"); do
	out=$(timeout $((60 * SLOW)) "$PY" "$TESTS_DIR/durability.py" check "$SRV_PORT" "c$p" "$WORK/acks.$p" "$THREADS" "$KEYS" 2>&1) ||
		{ fail "after clean restart: keys of cycle $p"; printf '%s\n' "$out"; }
done
timeout $((60 * SLOW)) "$PY" "$TESTS_DIR/durability.py" checkfill "$SRV_PORT" fill "$N" ||
	fail "after clean restart: fill keys"
srv_stop
finish
