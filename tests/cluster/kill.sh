#!/usr/bin/env bash
# kill -9 one node of three under a bounded write load through the other
# two (N=3 R=2 W=2 still holds): every acknowledged write is readable from
# the survivors; the killed node restarted from its config file answers
# every key correctly (its missing copies come from the others: read
# repair), and once read, its own copies are repaired: with the two others
# stopped, DYN.GET R 1 through it returns every acknowledged value.
. "$(dirname "$0")/cluster.bash"
cl_need_tools redis-py

cl_up 3
for n in 1 2 3; do cl_wait_peers $n; done
SECS=6
[ "$QUICK" = 1 ] && SECS=8

log "write load through nodes 1 and 2 for ${SECS}s; kill -9 node 3 after 2s"
"$PY" - "$(cl_port 1)" "$(cl_port 2)" "$SECS" "$WORK/acked.txt" >"$WORK/load.out" 2>&1 <<'EOF' &
import sys, threading, time
import redis
p1, p2, secs, out = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
lines, lock = [], threading.Lock()
def worker(t):
    r = redis.Redis(port=(p1, p2)[t % 2], socket_timeout=15)
    end = time.time() + secs
    for i in range(4000):
        if time.time() > end:
            break
        key, val = "k:%d:%d" % (t, i), "v:%d:%d" % (t, i) + "x" * (i % 50)
        for k, v in ((key, val), ("hot:%d" % t, val)):
            try:
                r.set(k, v)
                state = "ack"
            except (redis.ResponseError, redis.ConnectionError, redis.TimeoutError) as e:
                state = "maybe"
                print("write %s: %s" % (k, e))
            with lock:
                lines.append("%s %s %s" % (state, k, v))
threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
open(out, "w").write("\n".join(lines) + "\n")
print("writes: %d" % len(lines))
EOF
LOAD=$!
sleep 2
cl_kill9 3
log "node 3 killed"
wait $LOAD || fail "load generator failed: $(tail -n 5 "$WORK/load.out")"
log "$(tail -n 1 "$WORK/load.out"); $(grep -c '^ack' "$WORK/acked.txt") acknowledged, $(grep -c '^maybe' "$WORK/acked.txt") indeterminate"
check_match "load: writes were made" '^writes: [0-9]{3,}' "$(tail -n 1 "$WORK/load.out")"

# verify PORT [R1]: every acknowledged write reads back through PORT (plain
# GET, or DYN.GET R 1 with R1); a key whose last write was indeterminate
# may hold that value instead.
verify() {
	"$PY" - "$1" "$WORK/acked.txt" "${2:-}" <<'EOF'
import sys
import redis
port, path, r1 = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "r1"
r = redis.Redis(port=port, socket_timeout=20)
want = {}  # key -> (acknowledged value, values of later indeterminate writes)
for line in open(path):
    state, k, v = line.split()
    if state == "ack":
        want[k] = (v, set())
    elif k in want:
        want[k][1].add(v)
    else:
        want[k] = (None, {v})
bad = 0
keys = sorted(want)
for i in range(0, len(keys), 200):
    chunk = keys[i:i + 200]
    p = r.pipeline(transaction=False)
    for k in chunk:
        if r1:
            p.execute_command("DYN.GET", k, "R", 1)
        else:
            p.get(k)
    for k, got in zip(chunk, p.execute()):
        if r1:
            vals = got[1]
            got = vals[0] if len(vals) == 1 else (None if not vals else b"siblings:" + b",".join(vals))
        acked, maybe = want[k]
        ok = {acked} | maybe if acked else maybe | {None}
        g = got.decode() if got is not None else None
        if g not in ok:
            bad += 1
            if bad <= 10:
                print("FAIL: %s: got %r, expected %r (or one of %r)" % (k, g, acked, sorted(maybe)))
print("%d keys checked, %d wrong" % (len(keys), bad))
sys.exit(1 if bad else 0)
EOF
}

log "every acknowledged write through node 1 and node 2"
verify "$(cl_port 1)" || fail "reads through node 1"
verify "$(cl_port 2)" || fail "reads through node 2"

log "restart node 3 from its config file"
cl_restart 3
check_match "node 3 restarted on its data (same incarnation)" 'created=no' "$(grep 'cluster identity' "$CL_DIR/node3/dynvme.log" | tail -n 1)"
verify "$(cl_port 3)" || fail "reads through the restarted node 3"
rr=$(timeout 10 redis-cli -p "$(cl_port 3)" DYN.STATUS | grep -A1 '^read_repairs$' | tail -n 1)
log "node 3 sent $rr read repairs"
check_match "node 3 repaired stale copies" '^[1-9][0-9]*$' "$rr"

log "node 3's own copies after read repair: nodes 1 and 2 stopped, DYN.GET R 1 through node 3"
sleep 1 # read repair is sent after the answer: let it land
for n in 1 2; do
	p=$(cl_pid $n)
	kill -TERM "$p"
	while kill -0 "$p" 2>/dev/null; do sleep 0.05; done
done
verify "$(cl_port 3)" r1 || fail "node 3's own copies after read repair"
cl_down
finish
