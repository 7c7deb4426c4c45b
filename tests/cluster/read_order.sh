#!/usr/bin/env bash
# A read never sees a write its own connection sent after it, even when it
# asks a replica late. Node 1 coordinates GET k then SET k new, pipelined,
# with one peer SIGSTOPped: when the GET asked the stopped peer first, its
# speculative timer asks the other one a few ms later, after the SET's
# REPL_PUT made that copy "new"; without the connection's rule (conn.c: in
# cluster mode a write of a key waits for this connection's reads of it)
# the GET answered "new" (6 of these 24 trials before the fix; in Redis a
# pipeline runs in order: the GET answers "old"). Each peer is stopped in
# turn, with GET, EXISTS, STRLEN, GETRANGE and MGET as the read.
. "$(dirname "$0")/cluster.bash"
cl_need_tools redis-py

cl_up 3
for n in 1 2 3; do cl_wait_peers $n; done

timeout $((120 * SLOW)) "$PY" - "$(cl_port 1)" "$(cl_pid 2)" "$(cl_pid 3)" <<'PYEOF' || fail "reads before writes (see above)"
import os, signal, sys, threading, time
import redis
port, pids = int(sys.argv[1]), [int(sys.argv[2]), int(sys.argv[3])]
r = redis.Redis(port=port, socket_timeout=60)
reads = [("GET",), ("EXISTS",), ("STRLEN",), ("GETRANGE", 0, -1), ("MGET",)]
want = {"GET": b"old", "EXISTS": 1, "STRLEN": 3, "GETRANGE": b"old", "MGET": [b"old"]}
bad = trials = 0
for trial in range(24):
    stopped = pids[trial % 2]
    key = "ro:%d" % trial
    cmd = reads[trial % len(reads)]
    trials += 1
    assert r.set(key, "old")
    for i in range(20):  # every copy (read repair); the peers' round trips even again
        assert r.execute_command("DYN.GET", key, "R", "3")[1] == [b"old"]
    os.kill(stopped, signal.SIGSTOP)
    try:
        p = r.pipeline(transaction=False)
        p.execute_command(cmd[0], key, *cmd[1:])
        p.set(key, "new")
        got = p.execute(raise_on_error=False)
    finally:
        os.kill(stopped, signal.SIGCONT)
    if got[0] != want[cmd[0]] or got[1] is not True:
        bad += 1
        print("FAIL: %s %s then SET %s new, pipelined: %r (want %r, True)" % (cmd[0], key, key, got, want[cmd[0]]))
    time.sleep(0.05)
print("%d of %d pipelined reads saw the write after them" % (bad, trials))
sys.exit(1 if bad else 0)
PYEOF
cl_down
finish
