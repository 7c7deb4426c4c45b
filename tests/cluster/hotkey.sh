#!/usr/bin/env bash
# Many clients writing one key at once through all three nodes (plain SET
# and DYN.PUT with the empty context, 24 threads x 40 writes, bounded):
# every write is answered +OK (no "too many concurrent updates of this
# key"): a node runs the merge loops of one key one after another
# (replica.c, cas_start), where two loops racing on one key used to refuse
# each other's PUTs until both gave up. Then every node answers the same.
# In its second pass (cluster-checked-sets yes; off by default) a plain
# SET through a replica is a checked write (coord.c) and the first one at
# each node to lose a race on the key may answer "-TIMEOUT ... may or may
# not have been applied: it raced writes of the key through other nodes";
# the node then reads first for that key, so at most one such answer per
# node.
. "$(dirname "$0")/cluster.bash"
cl_need_tools redis-py

# Pass 1: the default (every plain SET reads first: no SET may fail).
# Pass 2: cluster-checked-sets yes, in a fresh cluster.
for pass in 1 2; do
if [ $pass = 2 ]; then
	cl_down
	CL_DIR=$WORK/c2
	cl_up 3 --checked-sets yes
	log "pass 2: cluster-checked-sets yes"
else
	cl_up 3
fi
cl_wait_peers 1
cl_wait_peers 2
cl_wait_peers 3

"$PY" - "$(cl_port 1)" "$(cl_port 2)" "$(cl_port 3)" "$pass" <<'PYEOF' || fail "hot key checks (pass $pass, see above)"
import sys, threading, time
import redis

ports = [int(p) for p in sys.argv[1:4]]
checked = sys.argv[4] == "2"
THREADS, WRITES = 24, 40
errors, done, raced = [], [0], [0, 0, 0]
lock = threading.Lock()

def writer(t):
    r = redis.Redis(port=ports[t % 3], socket_timeout=30)
    for i in range(WRITES):
        try:
            if t % 2:
                ok = r.set("hot", "t%d-%d" % (t, i))
            else:
                ok = r.execute_command("DYN.PUT", "hot", "", "t%d-%d" % (t, i)) == b"OK"
            with lock:
                done[0] += 1
                if not ok:
                    errors.append("t%d write %d: %r" % (t, i, ok))
        except redis.ResponseError as e:
            with lock:
                if checked and t % 2 and "it raced writes of the key" in str(e):
                    raced[t % 3] += 1
                else:
                    errors.append("t%d write %d: %s" % (t, i, e))

start = time.time()
ths = [threading.Thread(target=writer, args=(t,)) for t in range(THREADS)]
for th in ths: th.start()
for th in ths: th.join(120)
print("%d writes in %.1f s, %d errors, raced per node %r" % (done[0], time.time() - start, len(errors), raced))
if max(raced) > 1:
    errors.append("more than one raced SET at a node: %r" % (raced,))
for e in errors[:10]:
    print("FAIL:", e)
picks = set()
for p in ports:
    r = redis.Redis(port=p, socket_timeout=30)
    picks.add(r.get("hot"))
    ctx, vals = r.execute_command("DYN.GET", "hot")
    r.execute_command("DYN.PUT", "hot", ctx, "resolved")
final = [redis.Redis(port=p, socket_timeout=30).execute_command("DYN.GET", "hot")[1] for p in ports]
ok = not errors and done[0] + sum(raced) == THREADS * WRITES and all(f == [b"resolved"] for f in final)
if not ok:
    print("FAIL: final versions per node %r" % (final,))
sys.exit(0 if ok else 1)
PYEOF
done
cl_down
finish
