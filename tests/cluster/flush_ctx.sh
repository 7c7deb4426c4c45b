#!/usr/bin/env bash
# Causal contexts carried from node to node across cluster FLUSHALLs (three
# real nodes, N=3 R=2 W=2; docs/ARCHITECTURE.md, "Contexts across a flush"):
# FLUSHALL every 50 ms through node 1 while three clients each, per key,
# DYN.PUT a first value with the empty context through one node, DYN.GET
# the key through another, DYN.PUT a second value with that context
# through the third and DYN.GET it back through the first (the nodes
# rotate per key and client). A context can so
# name a flush that the node it is put through has not applied yet: that
# put waits until the node learns the flush (ctx_flush_holds counts it) or
# answers TRYAGAIN with nothing written; node 3 is paused for 30 ms in every
# 100 during the race, so that it lags behind its peers' flushes. On
# loopback the flush's own messages reach a node before such a context
# almost always, so the hold is rare here (the count is printed, not
# required): test_node test_flush_ctx_ahead and the simulator's partitions
# force it. Checks:
# - no reply is a TIMEOUT or an error other than the rare "the keyspace was
#   flushed while the request ran" and TRYAGAIN, every FLUSHALL is +OK;
# - a key whose two puts were acknowledged reads back through its first
#   node as exactly the second value when no FLUSHALL was under way from
#   its first put to that read (at least 100 such keys per client);
# - a key whose two puts were acknowledged and whose second was sent after
#   the last FLUSHALL's +OK reads, through every node, as exactly the
#   second value: the first was superseded by a context that covered it (or
#   flushed), and nothing of before a flush comes back.
. "$(dirname "$0")/cluster.bash"
cl_need_tools redis-py

cl_up 3
for n in 1 2 3; do cl_wait_peers $n; done
SECS=6
[ "$QUICK" = 1 ] && SECS=4

P3=$(cl_pid 3)
# Node 3 paused 30 ms in every 100 for the race: it then lags behind the
# flushes its peers have applied, so that a context read through them names
# a flush it has not (the frames of both wait in its sockets together).
jitter() {
	local end=$((SECONDS + SECS))
	while [ $SECONDS -lt $end ]; do
		kill -STOP "$P3" 2>/dev/null
		sleep 0.03
		kill -CONT "$P3" 2>/dev/null # always: the loop ends with node 3 running
		sleep 0.07
	done
}
jitter &
JIT=$!
log "FLUSHALL every 50 ms through node 1 for ${SECS}s (node 3 paused 30 ms in every 100); 3 clients DYN.PUT, DYN.GET, DYN.PUT through rotating nodes"
"$PY" - "$SECS" "$WORK/pairs.txt" "$(cl_port 1)" "$(cl_port 2)" "$(cl_port 3)" <<'EOF' || fail "the race"
import sys, threading, time
import redis
secs, out = float(sys.argv[1]), sys.argv[2]
ports = [int(p) for p in sys.argv[3:6]]
stop = threading.Event()
flushes = []  # (sent, answered, reply)
def flusher():
    r = redis.Redis(port=ports[0], socket_timeout=30)
    end = time.monotonic() + secs
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            rep = "+OK" if r.flushall() else "?"
        except redis.RedisError as e:
            rep = "-" + str(e)
        flushes.append((t0, time.monotonic(), rep))
        time.sleep(0.05)
    stop.set()
res = {}
def classify(e):
    s = str(e)
    if s.startswith("TIMEOUT"):
        return "timeout"
    if "keyspace was flushed" in s:
        return "flushed"
    if s.startswith("TRYAGAIN"):
        return "tryagain"
    return "error"
def worker(t):
    conns = [redis.Redis(port=p, socket_timeout=30) for p in ports]
    pairs, reads, counts, errors = [], [], {"ok": 0, "timeout": 0, "flushed": 0, "tryagain": 0, "error": 0}, []
    i, tail = 0, 0
    while tail < 60:  # and 60 keys after the flushes stopped
        if stop.is_set():
            tail += 1
        key = "c:%d:%d" % (t, i)
        a, b, c = [(t + i + j) % 3 for j in range(3)]  # first put, read, second put
        ok1 = ok2 = False
        sent2 = None
        try:
            t0 = time.monotonic()
            ok1 = conns[a].execute_command("DYN.PUT", key, "", "one:%d" % i) in (b"OK", True)
            counts["ok"] += 1
            ctx, vals = conns[b].execute_command("DYN.GET", key)
            counts["ok"] += 1
            sent2 = time.monotonic()
            ok2 = conns[c].execute_command("DYN.PUT", key, ctx, "two:%d" % i) in (b"OK", True)
            counts["ok"] += 1
            if ok1 and ok2:
                _, vals = conns[a].execute_command("DYN.GET", key)
                counts["ok"] += 1
                reads.append((key, "two:%d" % i, t0, time.monotonic(), [x.decode() for x in vals]))
        except redis.RedisError as e:
            kind = classify(e)
            counts[kind] += 1
            if kind in ("timeout", "error") and len(errors) < 5:
                errors.append("%s via %d/%d/%d: %s" % (key, a + 1, b + 1, c + 1, str(e)[:80]))
        if ok1 and ok2:
            pairs.append((key, "two:%d" % i, sent2))
        i += 1
    res[t] = (pairs, reads, counts, errors)
threads = [threading.Thread(target=flusher)] + [threading.Thread(target=worker, args=(t,)) for t in range(3)]
[x.start() for x in threads]
[x.join() for x in threads]
ok_flushes = [f for f in flushes if f[2] == "+OK"]
bad = [f for f in flushes if f[2] != "+OK"]
last = ok_flushes[-1] if ok_flushes else (0, 0, "")
failed = bool(bad)
print("%d FLUSHALL (%d not +OK%s)" % (len(flushes), len(bad), ": " + bad[0][2] if bad else ""))
lines = []
def between_flushes(t0, t1):
    return not any(s <= t1 and a >= t0 for s, a, _ in flushes)
for t in sorted(res):
    pairs, reads, counts, errors = res[t]
    quiet = [r for r in reads if between_flushes(r[2], r[3])]
    wrong = [r for r in quiet if r[4] != [r[1]]]
    print("client %d: %d keys read back through their first node with no FLUSHALL from the first put to that read, "
          "%d not exactly the second value %s" % (t, len(quiet), len(wrong), [(r[0], r[4]) for r in wrong[:3]]))
    if wrong or len(quiet) < 100:
        failed = True
    after = [(k, v) for k, v, s in pairs if s > last[1]]
    print("client %d: %s %s; %d keys with both puts acknowledged, %d of them put after the last FLUSHALL's +OK" %
          (t, counts, errors, len(pairs), len(after)))
    others = counts["flushed"] + counts["tryagain"]
    if counts["timeout"] or counts["error"] or others * 50 > counts["ok"]:
        failed = True
    if len(after) < 30:
        print("  too few keys after the last flush")
        failed = True
    lines += ["%s %s" % kv for kv in after]
open(out, "w").write("".join(l + "\n" for l in lines))
sys.exit(1 if failed else 0)
EOF
wait $JIT
kill -CONT "$P3"

log "every key put after the last FLUSHALL's +OK holds exactly its second value, through every node"
for n in 1 2 3; do
	"$PY" - "$(cl_port $n)" "$WORK/pairs.txt" <<'EOF' || fail "node $n: the keys put after the last flush"
import sys
import redis
r = redis.Redis(port=int(sys.argv[1]), socket_timeout=30)
want = [l.split() for l in open(sys.argv[2])]
p = r.pipeline(transaction=False)
for k, v in want:
    p.execute_command("DYN.GET", k)
got = p.execute()
bad = [(k, v, g[1]) for (k, v), g in zip(want, got) if [x.decode() for x in g[1]] != [v]]
print("%d keys, %d not exactly their second value %s" % (len(want), len(bad), bad[:3]))
sys.exit(1 if bad else 0)
EOF
done

holds=0
for n in 1 2 3; do
	h=$(ccli $n DYN.STATUS | awk '{v = $NF; gsub(/"/, "", v)} prev == "ctx_flush_holds" {print v} {prev = v}')
	holds=$((holds + ${h:-0}))
done
log "puts held for a flush their context named (ctx_flush_holds, the three nodes): $holds"
cl_down
cl_check_logs
finish
