#!/usr/bin/env bash
# A node restarted the moment it was killed comes up, and a node that cannot
# listen exits with a clear error. After kill -9 the kernel tears the dead
# process's io_uring down in a worker, and until then its listening sockets
# still hold their ports (about 20 ms here, longer under load): a CI run
# restarted a node inside that window, its bind failed ("Address already in
# use") and the failure path then hit an assertion (the cnode destroyed with
# its start-up key count in flight). Now a bind retries EADDRINUSE for 5 s
# (logged once), and a failed start-up finishes the store's ops first.
. "$(dirname "$0")/cluster.bash"
cl_need_tools redis-py

cl_up 3
for n in 1 2 3; do cl_wait_peers $n; done
internode2=$((CL_BASE + 10000 + 1))

# hold PORT SECONDS: listen on 127.0.0.1:PORT for SECONDS (in the background);
# returns once the socket listens.
hold() {
	rm -f "$WORK/held"
	"$PY" - "$1" "$2" "$WORK/held" <<'PYEOF' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
for attempt in range(500):  # the killed node's listener may linger a moment
    try:
        s.bind(("127.0.0.1", int(sys.argv[1])))
        break
    except OSError:
        time.sleep(0.01)
s.listen(1)
open(sys.argv[3], "w").close()
time.sleep(float(sys.argv[2]))
PYEOF
	HOLD_PID=$!
	ALL_PIDS+=("$HOLD_PID")
	local end=$((SECONDS + 10))
	until [ -e "$WORK/held" ]; do
		[ $SECONDS -gt $end ] && die "could not hold port $1"
		sleep 0.02
	done
}

log "8 times: kill -9 node 2, restart it at once"
for i in $(seq 1 8); do
	ct 1 OK SET "r:$i" "v$i"
	cl_kill9 2
	cl_restart 2
done
for i in $(seq 1 8); do ct 2 "\"v$i\"" GET "r:$i"; done

log "node 2's internode port held for 1 s: its restart waits and comes up"
cl_kill9 2
before=$(wc -l <"$CL_DIR/node2/dynvme.log") # the restarts above may have waited too (a lingering socket)
hold "$internode2" 1
cl_restart 2
check "the wait is logged" 1 \
	"$(tail -n +$((before + 1)) "$CL_DIR/node2/dynvme.log" | grep -c 'address in use, retrying.*what=internode')"
wait "$HOLD_PID"
ct 2 '"v8"' GET r:8

log "node 2's internode port held for good: it exits with the error, no crash"
cl_kill9 2
hold "$internode2" 30
t0=$SECONDS
timeout $((30 * SLOW)) "$BIN" serve --config "$CL_DIR/node2/dynvme.conf" >"$WORK/held.log" 2>&1 </dev/null
rc=$?
check "exit status of a node that cannot listen" 1 "$rc"
[ $((SECONDS - t0)) -ge 4 ] || fail "node 2 gave up after $((SECONDS - t0)) s, before its 5 s of retries"
check_match "the error names the internode address" \
	"cannot listen for peers.*internode=127.0.0.1:$internode2.*Address already in use" "$(cat "$WORK/held.log")"
grep -q 'assertion failed' "$WORK/held.log" && fail "a failed start-up crashed: $(grep 'assertion' "$WORK/held.log")"
srv_check_log "$WORK/held.log"
kill "$HOLD_PID" 2>/dev/null
wait "$HOLD_PID" 2>/dev/null
cl_restart 2
ct 2 '"v8"' GET r:8
ct 3 OK SET r:after x
ct 2 '"x"' GET r:after

cl_down
check "cluster up exit status" 0 "$CL_UP_RC"
finish
