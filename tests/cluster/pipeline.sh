#!/usr/bin/env bash
# Pipeline order on a cluster, as on one node (docs/ARCHITECTURE.md, "Cluster:
# server driver"): in one connection's pipeline a FLUSHALL/FLUSHDB is
# overtaken by nothing and overtakes nothing (what was written before it is
# gone, what is written after it stays), and RENAME/COPY/RENAMENX (a read,
# then a write, then a delete) are ordered against the commands after them.
# Each round is one write of raw RESP over one socket, every reply checked,
# while another connection writes other keys through another node (load
# that keeps the cnode's queues busy). Both keyspaces (SELECT 0 siblings,
# SELECT 1 last-write-wins).
. "$(dirname "$0")/cluster.bash"
cl_need_tools redis-py

cl_up 3
for n in 1 2 3; do cl_wait_peers $n; done
ROUNDS=60
[ "$QUICK" = 1 ] && ROUNDS=20

log "$ROUNDS pipelined rounds through node 1 per keyspace, load through node 2"
"$PY" - "$(cl_port 1)" "$(cl_port 2)" "$ROUNDS" "$TESTS_DIR" <<'PYEOF'
import sys, threading, time
sys.path.insert(0, sys.argv[4])
import redis
from dvresp import Conn, encode, Err

p1, p2, rounds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
stop = threading.Event()

def load():
    r = redis.Redis(port=p2, socket_timeout=20)
    for i in range(200000):
        if stop.is_set():
            return
        p = r.pipeline(transaction=False)
        for j in range(32):
            p.set("load:%d" % ((i * 32 + j) % 5000), "x" * (j * 7))
        try:
            p.execute()
        except redis.RedisError:
            pass

t = threading.Thread(target=load)
t.start()
bad = 0

def run(c, cmds, what):
    """cmds: (args, expected) pairs sent in one write; every reply checked."""
    global bad
    c.send(b"".join(encode(a) for a, _ in cmds))
    for a, want in cmds:
        got = c.read()
        if isinstance(want, type) and isinstance(got, want):
            continue
        if got != want:
            bad += 1
            if bad <= 20:
                print("FAIL: %s: %s -> %r, expected %r" % (what, " ".join(map(str, a)), got, want))

OK = "OK"
try:
    for db in (0, 1):
        c = Conn(p1, timeout=30)
        assert c.call("SELECT", db) == "OK"
        flush = "FLUSHALL" if db == 0 else "FLUSHDB"
        for i in range(rounds):
            x, y, prev = "x:%d" % i, "y:%d" % i, "y:%d" % (i - 1)
            w = "db %d round %d" % (db, i)
            cmds = []
            if i > 0:
                cmds.append((["GET", prev], b"v" + prev.encode()))  # written after the last flush
            cmds += [(["SET", x, "before"], OK), (["INCR", "n:%d" % i], 1), (["APPEND", x, "+"], 7),
                     ([flush], OK),
                     (["GET", x], None), (["GET", "n:%d" % i], None), (["EXISTS", prev], 0),
                     (["SET", y, "v" + y], OK), (["GET", y], b"v" + y.encode())]
            # read, write, delete: ordered against what follows
            a, b, cc, d = "a:%d" % i, "b:%d" % i, "c:%d" % i, "d:%d" % i
            cmds += [(["SET", a, "1"], OK), (["RENAME", a, b], OK), (["GET", a], None), (["GET", b], b"1"),
                     (["APPEND", b, "2"], 2), (["COPY", b, cc], 1), (["GET", cc], b"12"),
                     (["RENAMENX", cc, d], 1), (["GET", cc], None), (["GET", d], b"12"),
                     (["SET", a, "3"], OK), (["RENAME", a, d], OK), (["GET", d], b"3"), (["EXISTS", a], 0),
                     (["RENAMENX", b, d], 0), (["GET", b], b"12"),
                     (["COPY", b, d, "REPLACE"], 1), (["DEL", b], 1), (["GET", d], b"12"), (["GET", b], None)]
            run(c, cmds, w)
        c.close()
finally:
    stop.set()
    t.join()
print("%d wrong replies" % bad)
sys.exit(1 if bad else 0)
PYEOF
[ $? = 0 ] || fail "pipelined rounds"
for n in 1 2 3; do check "node $n alive" PONG "$(ccli $n PING)"; done
cl_down
finish
