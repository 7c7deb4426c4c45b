#!/usr/bin/env bash
# A read never sees a write its own connection sent after it, even when
# the read has to ask another replica late. With one peer SIGSTOPped a read
# that asked it asks the third node after its speculative timer (or the
# timeout); a pipelined SET of the same key sent right after the read must
# not be what that late ask finds (in Redis a pipeline runs in order: GET k
# then SET k v2 answers the old value). Each of the two peers is stopped in
# turn (which one a read asks first depends on their round trips), and
# GET, EXISTS, MGET, STRLEN and GETRANGE each read before a write of their
# key on one connection through node 1.
. "$(dirname "$0")/cluster.bash"
cl_need_tools redis-py

cl_up 3
for n in 1 2 3; do cl_wait_peers $n; done

for stopped in 2 3; do
	log "node $stopped stopped: pipelined read then write of each key through node 1"
	"$PY" - "$(cl_port 1)" "$stopped" <<'PYEOF' || fail "reads before writes, node $stopped stopped (see above)"
import sys
import redis
port, stopped = int(sys.argv[1]), sys.argv[2]
r = redis.Redis(port=port, socket_timeout=30)
n = 400
keys = ["ro:%s:%d" % (stopped, i) for i in range(n)]
p = r.pipeline(transaction=False)
for k in keys:
    p.set(k, "old")
assert all(p.execute()), "preload"
# a read of each at R=3 (all three answer; read repair fills a missing copy)
for k in keys:
    got = r.execute_command("DYN.GET", k, "R", "3")[1]
    assert got == [b"old"], (k, got)
PYEOF
	P=$(cl_pid "$stopped")
	kill -STOP "$P"
	"$PY" - "$(cl_port 1)" "$stopped" >"$WORK/order.$stopped" 2>&1 <<'PYEOF'
import sys
import redis
port, stopped = int(sys.argv[1]), sys.argv[2]
r = redis.Redis(port=port, socket_timeout=30)
n = 400
keys = ["ro:%s:%d" % (stopped, i) for i in range(n)]
reads = [("GET",), ("EXISTS",), ("STRLEN",), ("GETRANGE", 0, -1), ("MGET",)]
p = r.pipeline(transaction=False)
for i, k in enumerate(keys):
    cmd = reads[i % len(reads)]
    p.execute_command(cmd[0], k, *cmd[1:])
    p.set(k, "newer-value")
out = p.execute(raise_on_error=False)
want = {"GET": b"old", "EXISTS": 1, "STRLEN": 3, "GETRANGE": b"old", "MGET": [b"old"]}
bad = 0
for i, k in enumerate(keys):
    cmd = reads[i % len(reads)][0]
    got, wrote = out[2 * i], out[2 * i + 1]
    if got != want[cmd] or wrote is not True:
        bad += 1
        print("FAIL: %s %s before SET %s newer-value: got %r (SET: %r), expected %r" % (cmd, k, k, got, wrote, want[cmd]))
print("%d of %d reads saw a later write" % (bad, n))
sys.exit(1 if bad else 0)
PYEOF
	rc=$?
	kill -CONT "$P"
	cat "$WORK/order.$stopped"
	check "node $stopped stopped: no read saw the write after it" 0 "$rc"
	cl_wait_peers 1
done
cl_down
finish
