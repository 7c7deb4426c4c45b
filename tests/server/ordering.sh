#!/usr/bin/env bash
# Order of one client's commands (issue 8 items 5 and 11): seeded random
# pipelines of GET/SET/DEL/MSET/MGET/EXISTS/GETDEL/DBSIZE and conditional
# SETs over eight keys on a fresh server, each sent in one write, every
# reply compared with a model of Redis's semantics
# (tests/server/ordering.py): no command sees a later command of its
# client, every command sees the earlier ones (read-your-writes, also when
# a GET is answered from its client's write in flight). Runs with the
# value cache, then without it (every GET then reads the store) and with 2
# network threads. DV_SERVER=redis checks the model against redis-server.
. "$(dirname "$0")/common.bash"
need_tools
ROUNDS=14
[ "$QUICK" = 1 ] && ROUNDS=6
SEED=${DV_SEED:-$((RANDOM % 1000))}
log "seed $SEED (replay: DV_SEED=$SEED bash $0)"
srv_start
timeout $((200 * SLOW)) "$PY" "$TESTS_DIR/ordering.py" "$SRV_PORT" "$ROUNDS" "$SEED" || fail "ordering.py, value cache on (see above)"
srv_stop
if is_dynvme; then
	rm -f "$SRV_DATA"
	srv_start --cache-bytes 0 --threads 2
	timeout $((200 * SLOW)) "$PY" "$TESTS_DIR/ordering.py" "$SRV_PORT" "$ROUNDS" "$((SEED + 1))" ||
		fail "ordering.py, value cache off, 2 threads (see above)"
	srv_stop
	check "exit code after SIGTERM" 0 "$SRV_RC"
fi
finish
