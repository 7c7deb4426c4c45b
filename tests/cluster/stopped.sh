#!/usr/bin/env bash
# A replica that is up but silent: node 2 SIGSTOPped for 9 s (past the 5 s
# request timeout: frames towards it pile up on the others' sessions, which
# stay up) under a bounded write load through node 1, then SIGCONT while
# the load goes on. Every node stays alive and serves, every acknowledged
# write reads back through each node. While node 2 is stopped, a full SCAN
# walk through node 1 (COUNT 50) of keyspace 1 returns every key written
# there before it,
# within a few seconds: a replica that left a page unanswered is asked last
# for a while, not once per call (docs/ARCHITECTURE.md, "SCAN").
. "$(dirname "$0")/cluster.bash"
cl_need_tools redis-py

cl_up 3
for n in 1 2 3; do cl_wait_peers $n; done
P2=$(cl_pid 2)
PRE=2000
SCAN_MAX=$((8 * SLOW)) # seconds for the walk (before the fix: 55 s, a page deadline in most calls)

log "$PRE keys through node 1 before the scan (keyspace 1; the load writes keyspace 0)"
"$PY" - "$(cl_port 1)" "$PRE" <<'PYEOF' || fail "preload"
import sys
import redis
r = redis.Redis(port=int(sys.argv[1]), db=1, socket_timeout=20)
p = r.pipeline(transaction=False)
for i in range(int(sys.argv[2])):
    p.set("pre:%d" % i, "p%d" % i)
assert all(p.execute())
PYEOF

log "write load through node 1 for 18 s; node 2 stopped from 2 s for about 10 s"
"$PY" - "$(cl_port 1)" 18 "$WORK/acked.txt" >"$WORK/load.out" 2>&1 <<'PYEOF' &
import sys, threading, time
import redis
port, secs, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
lines, lock = [], threading.Lock()
def worker(t):
    r = redis.Redis(port=port, socket_timeout=20)
    end = time.time() + secs
    for i in range(100000):
        if time.time() > end:
            break
        batch = [("k:%d:%d" % (t, i * 16 + j), "v:%d:%d:%s" % (t, i, "x" * (j * 13))) for j in range(16)]
        p = r.pipeline(transaction=False)
        for k, v in batch:
            p.set(k, v)
        try:
            res = p.execute(raise_on_error=False)
        except (redis.ConnectionError, redis.TimeoutError) as e:
            res = [e] * len(batch)
        with lock:
            for (k, v), x in zip(batch, res):
                lines.append("%s %s %s" % ("ack" if x is True else "maybe", k, v))
        time.sleep(0.05)
threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
[t.start() for t in threads]
[t.join() for t in threads]
open(out, "w").write("\n".join(lines) + "\n")
print("writes: %d" % len(lines))
PYEOF
LOAD=$!
sleep 2
kill -STOP "$P2"
log "node 2 stopped"
sleep 1
"$PY" - "$(cl_port 1)" "$PRE" "$SCAN_MAX" <<'PYEOF' || fail "SCAN through node 1 with node 2 stopped"
import sys, time
import redis
r = redis.Redis(port=int(sys.argv[1]), db=1, socket_timeout=30)
pre, limit = int(sys.argv[2]), float(sys.argv[3])
t0, cursor, calls, seen = time.time(), 0, 0, set()
while True:
    cursor, keys = r.scan(cursor=cursor, count=50)
    calls += 1
    seen.update(k.decode() for k in keys)
    if cursor == 0 or time.time() - t0 > 2 * limit:
        break
took = time.time() - t0
missing = [i for i in range(pre) if "pre:%d" % i not in seen]
print("scan: %d calls, %.1f s, %d keys seen, %d of the %d written before missing" % (calls, took, len(seen),
                                                                                   len(missing), pre))
sys.exit(1 if missing or cursor != 0 or took > limit else 0)
PYEOF
sleep 7
kill -CONT "$P2"
log "node 2 resumed"
wait $LOAD || fail "load generator failed: $(tail -n 5 "$WORK/load.out")"
log "$(tail -n 1 "$WORK/load.out"); $(grep -c '^ack' "$WORK/acked.txt") acknowledged"
check_match "load: writes were made" '^writes: [0-9]{3,}' "$(tail -n 1 "$WORK/load.out")"
for n in 1 2 3; do
	kill -0 "$(cl_pid $n)" 2>/dev/null || fail "node $n died: $(grep -h -m3 -i 'assert\|abort' "$CL_DIR/node$n/dynvme.log" "$WORK/up.out")"
	check "node $n serves" OK "$(ccli $n SET "after:$n" x)"
done

verify() {
	"$PY" - "$1" "$WORK/acked.txt" <<'PYEOF'
import sys
import redis
r = redis.Redis(port=int(sys.argv[1]), socket_timeout=20)
want = {}
for line in open(sys.argv[2]):
    state, k, v = line.split()
    if state == "ack":
        want[k] = v
bad = 0
keys = sorted(want)
for i in range(0, len(keys), 500):
    chunk = keys[i:i + 500]
    for k, got in zip(chunk, r.mget(chunk)):
        if got is None or got.decode() != want[k]:
            bad += 1
            if bad <= 10:
                print("FAIL: %s: got %r, expected %r" % (k, got, want[k]))
print("%d acknowledged keys checked, %d wrong" % (len(keys), bad))
sys.exit(1 if bad else 0)
PYEOF
}
for n in 1 2 3; do
	log "acknowledged writes through node $n"
	verify "$(cl_port $n)" || fail "reads through node $n"
done
cl_down
check "cluster up exit status" 0 "$CL_UP_RC"
finish
