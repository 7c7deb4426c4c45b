#!/usr/bin/env bash
# Unauthenticated connections cannot lock members out: a flooder keeps
# node 3's internode port full of silent connections (refilled as soon as
# the node closes them) while node 1 is killed and restarted; node 1 must
# still get its session with node 3 (a write through it at W=3 succeeds),
# and node 3 keeps serving. Before the fix a node refused every new
# connection once PEER_INBOUND_MAX (64) were in handshake, so a flooder
# holding 64 kept every restarted member from reconnecting, indefinitely;
# now the oldest unauthenticated connection is dropped for the new one (the
# flooder opens 2000 connections a second beyond those the node timed out:
# 64 take 32 ms, far more than a handshake on loopback). The node logs the
# drops once a second.
. "$(dirname "$0")/cluster.bash"
cl_need_tools redis-py

cl_up 3
for n in 1 2 3; do cl_wait_peers $n; done
INTER3=$((CL_BASE + 10000 + 2))
SECS=8

log "flood node 3's internode port with silent connections for ${SECS}s"
"$PY" - "$INTER3" "$SECS" >"$WORK/flood.out" 2>&1 <<'PYEOF' &
import select, socket, sys, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
# Connections the node held for 2.5 s or more (its handshake timeout) are opened
# again at once; those it closed quickly (over its limit) at most 20 every
# 10 ms (2000 a second).
socks, opened, end = {}, 0, time.time() + secs
def open_one():
    global opened
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    except OSError:
        s.close()
        return
    socks[s] = time.time()
    opened += 1
burst = 0
while time.time() < end and opened < 300000:
    for _ in range(min(burst, 1000)):
        open_one()
    burst = 0
    for _ in range(20):
        if len(socks) < 96:
            open_one()
    r, _, _ = select.select(list(socks), [], [], 0.01)
    for s in r:
        try:
            d = s.recv(4096)
        except OSError:
            d = b""
        if not d:
            if time.time() - socks.pop(s) > 2.5:
                burst += 1
            s.close()
print("opened %d connections" % opened)
PYEOF
FLOOD=$!
sleep 2
log "kill -9 node 1 and restart it during the flood"
cl_kill9 1
"$BIN" serve --config "$CL_DIR/node1/dynvme.conf" >>"$CL_DIR/node1/dynvme.log" 2>&1 </dev/null &
p=$!
ALL_PIDS+=("$p")
CL_EXTRA_PIDS+=("$p")
end=$((SECONDS + 6 * SLOW))
st=""
while [ $SECONDS -le $end ]; do
	st=$(timeout 5 redis-cli -p "$(cl_port 1)" DYN.STATUS 2>/dev/null | tr '\n' ' ')
	[ "$(printf '%s' "$st" | grep -o 'state up' | wc -l)" = 2 ] && break
	sleep 0.2
done
check "node 1 has its sessions with nodes 2 and 3 during the flood" 2 "$(printf '%s' "$st" | grep -o 'state up' | wc -l)"
kill -0 $FLOOD 2>/dev/null || fail "the flooder ended early: $(cat "$WORK/flood.out")"
ct 1 OK DYN.PUT during-flood "" v W 3
ct 3 '"v"' GET during-flood
wait $FLOOD
log "$(cat "$WORK/flood.out")"
check_match "node 3 counted connections over the limit" '^ +inbound_over_limit +[0-9]+' "$("$BIN" admin --node 127.0.0.1:"$(cl_port 3)" status)"
n=$(grep -c 'too many connections in handshake' "$CL_DIR/node3/dynvme.log")
[ "$n" -le $((SECS + 5)) ] || fail "node 3 logged $n over-limit lines in ${SECS}s (once a second at most)"
cl_wait_peers 3
ct 2 OK SET after-flood fine
ct 3 '"fine"' GET after-flood
cl_down
finish
