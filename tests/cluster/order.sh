#!/usr/bin/env bash
# Writes of one key through one node apply one at a time in arrival order
# (chost.c's per-key slots): 300 SETs of one key pipelined on one connection
# end with the last value and leave no sibling; 8 connections pipelining
# SETs over 10 keys through one node all complete and leave one value per
# key; redis-benchmark hammering 20 keys with 20 clients at -P 8 completes
# without errors (the slots' wait lists never lose a request).
. "$(dirname "$0")/cluster.bash"
cl_need_tools redis-py

cl_up 3
for n in 1 2 3; do cl_wait_peers $n; done

timeout 120 "$PY" - "$(cl_port 1)" <<'EOF' || fail "ordered writes (see above)"
import sys, threading
import redis
port = int(sys.argv[1])
fails = 0
def check(desc, exp, got):
    global fails
    if exp != got:
        fails += 1
        print("FAIL: %s\n  expected: %r\n  got:      %r" % (desc, exp, got))

r = redis.Redis(port=port, socket_timeout=60)
p = r.pipeline(transaction=False)
for i in range(300):
    p.set("one", "v%03d" % i)
p.get("one")
out = p.execute()
check("300 pipelined SETs: all OK", [True] * 300, out[:300])
check("300 pipelined SETs: the last one wins", b"v299", out[300])
check("300 pipelined SETs through one node: no sibling", [b"v299"], r.execute_command("DYN.GET", "one")[1])

def writer(t, res):
    c = redis.Redis(port=port, socket_timeout=60)
    p = c.pipeline(transaction=False)
    for i in range(200):
        p.set("k%d" % (i % 10), "t%d-%d" % (t, i))
    res[t] = p.execute()
res = {}
ts = [threading.Thread(target=writer, args=(t, res)) for t in range(8)]
[t.start() for t in ts]
[t.join() for t in ts]
check("8 pipelining connections: every SET answered OK", [[True] * 200] * 8, [res.get(t) for t in range(8)])
for k in range(10):
    vals = r.execute_command("DYN.GET", "k%d" % k)[1]
    check("key k%d: one value after writes through one node" % k, 1, len(vals))
sys.exit(1 if fails else 0)
EOF

log "redis-benchmark on 20 keys, 20 clients, -P 8, through node 2"
out=$(timeout 120 redis-benchmark -p "$(cl_port 2)" -t set -n 4000 -r 20 -c 20 -P 8 --csv 2>&1)
check "redis-benchmark finished" 0 "$?"
check_match "redis-benchmark SET row" '^"SET","[0-9.]+"' "$out"
check "no request left open" 0 "$(timeout 10 redis-cli -p "$(cl_port 2)" DYN.STATUS | grep -A1 '^client_requests_open$' | tail -n 1)"
cl_down
finish
