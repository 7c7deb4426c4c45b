# tests/cluster/flush_race.bash - sourced by flush_race.sh and flush_kill.sh
# (not a test itself), after cluster.bash and cl_up 3: requests that overlap
# a cluster FLUSHALL (N=3 R=2 W=2).
#
# flush_race_run SECS A B  FLUSHALL every 50 ms through node 1 for SECS while
#                          two clients SET, GET, INCR and APPEND (a read-
#                          modify-write of the host's) through nodes A and
#                          B; fails the test unless no reply is a TIMEOUT, no
#                          error but the rare "the keyspace was flushed while
#                          the request ran" (a write stored in the old epoch,
#                          short of W, when the flush reached it: not redone,
#                          gone with the flush), every FLUSHALL is +OK, and
#                          each client's counter read after the last flush
#                          lies between the INCRs sent after that flush's +OK
#                          and those answered after it was sent (an INCR
#                          counted twice, or one of before the flush back, is
#                          caught), and each client's APPEND key likewise
#                          (its length; an APPEND answered "flushed" counts
#                          as maybe applied); writes the SETs acknowledged after the
#                          last FLUSHALL's +OK to $WORK/race.txt
# flush_race_check         every one of those SETs readable through every node

flush_race_run() {
	local secs=$1 a=$2 b=$3
	"$PY" - "$(cl_port 1)" "$secs" "$WORK/race.txt" "$a" "$(cl_port "$a")" "$b" "$(cl_port "$b")" <<'EOF' || fail "the race"
import random, sys, threading, time
import redis
p1, secs, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
clients = [(int(sys.argv[i]), int(sys.argv[i + 1])) for i in (4, 6)]  # (node, RESP port)
stop = threading.Event()
T0 = time.monotonic()
flushes = []  # (sent, answered, reply)
def flusher():
    r = redis.Redis(port=p1, socket_timeout=30)
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
def worker(t, port):
    r = redis.Redis(port=port, socket_timeout=30)
    rng = random.Random(t)
    sets, incrs, apps, replies = [], [], [], {"ok": 0, "timeout": 0, "flushed": 0, "error": 0}
    errors = []
    i, tail = 0, 0
    while tail < 100:  # and 100 rounds after the flushes stopped
        if stop.is_set():
            tail += 1
        key, val = "k:%d:%d" % (t, i), "v%d" % i
        for op in ("set", "get", "incr", "append"):
            t0 = time.monotonic()
            try:
                if op == "set":
                    v = r.set(key, val)
                    sets.append((key, val, t0, time.monotonic()))
                elif op == "get":
                    v = r.get("k:%d:%d" % (t, rng.randrange(i + 1)))
                elif op == "incr":
                    v = r.incr("cnt:%d" % t)
                    incrs.append((t0, time.monotonic(), v))
                else:
                    v = r.append("ap:%d" % t, "x")
                    apps.append((t0, time.monotonic(), True))
                replies["ok"] += 1
            except redis.RedisError as e:
                s = str(e)
                kind = "timeout" if s.startswith("TIMEOUT") else "flushed" if "keyspace was flushed" in s else "error"
                replies[kind] += 1
                if op == "append" and kind == "flushed":
                    apps.append((t0, time.monotonic(), False))
                if len(errors) < 5:
                    errors.append("%s %s at %.2f for %.2f: %s" % (op, key, t0-T0, time.monotonic()-t0, s[:60]))
        i += 1
    res[t] = (sets, incrs, apps, replies, errors)
threads = [threading.Thread(target=flusher)] + [threading.Thread(target=worker, args=(t, p)) for t, p in clients]
[x.start() for x in threads]
[x.join() for x in threads]
ok_flushes = [f for f in flushes if f[2] == "+OK"]
bad_flushes = [f for f in flushes if f[2] != "+OK"]
last = ok_flushes[-1] if ok_flushes else (0, 0, "")
lines, failed = [], False
print("%d FLUSHALL (%d not +OK%s)" % (len(flushes), len(bad_flushes), ": " + bad_flushes[0][2] if bad_flushes else ""))
if bad_flushes:
    failed = True
for t in sorted(res):
    sets, incrs, apps, replies, errors = res[t]
    print("client through node %d: %d ok, %d TIMEOUT, %d flushed, %d other errors %s" % (t, replies["ok"], replies["timeout"], replies["flushed"], replies["error"], errors))
    if replies["timeout"] or replies["error"] or replies["flushed"] * 100 > replies["ok"]:
        failed = True
    after = [(k, v) for k, v, s, a in sets if s > last[1]]
    lines += ["%s %s" % kv for kv in after]
    sure = sum(1 for s, a, v in incrs if s > last[1])
    maybe = sum(1 for s, a, v in incrs if a > last[0])
    val = int(redis.Redis(port=p1, socket_timeout=30).get("cnt:%d" % t) or 0)
    print("  %d SETs sent after the last FLUSHALL's +OK; cnt:%d = %d (%d INCRs after it, %d answered after it was sent)" % (len(after), t, val, sure, maybe))
    if not (sure <= val <= maybe):
        print("  cnt:%d out of bounds" % t)
        failed = True
    sure = sum(1 for s, a, ok in apps if ok and s > last[1])
    maybe = sum(1 for s, a, ok in apps if a > last[0])
    alen = int(redis.Redis(port=p1, socket_timeout=30).strlen("ap:%d" % t))
    print("  ap:%d is %d long (%d APPENDs after the last FLUSHALL's +OK, %d answered after it was sent)" % (t, alen, sure, maybe))
    if not (sure <= alen <= maybe):
        print("  ap:%d out of bounds" % t)
        failed = True
    if len(after) < 50:
        print("  too few SETs after the last flush")
        failed = True
open(out, "w").write("".join(l + "\n" for l in lines))
sys.exit(1 if failed else 0)
EOF
}

flush_race_check() {
	log "every SET acknowledged after the last FLUSHALL's +OK, through every node"
	for n in 1 2 3; do
		"$PY" - "$(cl_port $n)" "$WORK/race.txt" <<'EOF' || fail "node $n: SETs after the last flush"
import sys
import redis
r = redis.Redis(port=int(sys.argv[1]), socket_timeout=30)
want = [l.split() for l in open(sys.argv[2])]
p = r.pipeline(transaction=False)
for k, v in want:
    p.get(k)
got = p.execute()
bad = [(k, v, g) for (k, v), g in zip(want, got) if g is None or g.decode() != v]
print("%d keys, %d wrong %s" % (len(want), len(bad), bad[:3]))
sys.exit(1 if bad else 0)
EOF
	done
}
