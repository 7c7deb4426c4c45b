#!/usr/bin/env bash
# Causal versions through real nodes: DYN.PUTs with the same context on two
# nodes give two siblings (seen from every node); a DYN.PUT with the
# context of the read that returned both resolves them; plain GET picks one
# sibling, the same on every node; a plain SET supersedes what it read;
# DYN.DEL with a context deletes; a put with a stale context of an older
# read adds a sibling instead of losing the newer value; writes racing on
# one key through two nodes (python3-redis threads) keep every acknowledged
# value either visible or superseded by a write whose read saw it.
. "$(dirname "$0")/cluster.bash"
cl_need_tools redis-py

cl_up 3
cl_wait_peers 1
cl_wait_peers 2
cl_wait_peers 3

"$PY" - "$(cl_port 1)" "$(cl_port 2)" "$(cl_port 3)" <<'EOF' || fail "siblings checks (see above)"
import sys, threading
import redis

ports = [int(p) for p in sys.argv[1:]]
nodes = [redis.Redis(port=p, socket_timeout=20) for p in ports]
fails = 0

def check(desc, exp, got):
    global fails
    if exp != got:
        fails += 1
        print("FAIL: %s\n  expected: %r\n  got:      %r" % (desc, exp, got))

def dget(n, key):
    ctx, vals = nodes[n].execute_command("DYN.GET", key)
    return ctx, sorted(vals)

# Two puts with the same context through nodes 2 and 3: two siblings.
check("first put", b"OK", nodes[0].execute_command("DYN.PUT", "s", "", "v0"))
ctx, vals = dget(1, "s")
check("read v0", [b"v0"], vals)
nodes[1].execute_command("DYN.PUT", "s", ctx, "from-2")
nodes[2].execute_command("DYN.PUT", "s", ctx, "from-3")
for n in range(3):
    c, v = dget(n, "s")
    check("node %d sees both siblings" % (n + 1), [b"from-2", b"from-3"], v)
picks = [nodes[n].get("s") for n in range(3)]
check("plain GET picks one of the siblings", True, picks[0] in (b"from-2", b"from-3"))
check("plain GET picks the same on every node", [picks[0]] * 3, picks)
# Resolve with the context of the read that returned both.
ctx2, v = dget(0, "s")
nodes[0].execute_command("DYN.PUT", "s", ctx2, "merged")
for n in range(3):
    check("node %d after the merge" % (n + 1), [b"merged"], dget(n, "s")[1])

# A stale context (from before the merge) makes a sibling, never a loss.
nodes[2].execute_command("DYN.PUT", "s", ctx, "stale-writer")
check("stale context: sibling kept", [b"merged", b"stale-writer"], dget(1, "s")[1])
# Plain SET supersedes every version it read.
check("plain SET", True, nodes[1].set("s", "plain"))
for n in range(3):
    check("node %d after plain SET" % (n + 1), [b"plain"], dget(n, "s")[1])
# DYN.DEL with the read's context: gone everywhere.
ctx3, _ = dget(2, "s")
nodes[2].execute_command("DYN.DEL", "s", ctx3)
for n in range(3):
    check("node %d after DYN.DEL" % (n + 1), [], dget(n, "s")[1])
    check("node %d GET after DYN.DEL" % (n + 1), None, nodes[n].get("s"))
# A DYN.DEL with an older context leaves the newer concurrent value.
nodes[0].execute_command("DYN.PUT", "d", "", "a")
cA, _ = dget(0, "d")
nodes[1].execute_command("DYN.PUT", "d", cA, "b")
nodes[2].execute_command("DYN.DEL", "d", cA)
check("DYN.DEL with an older context keeps the concurrent value", [b"b"], dget(0, "d")[1])

# Racing writers: each thread reads with DYN.GET and writes with that
# context through its own node. Every acknowledged value must end up either
# visible or superseded by a later acknowledged put whose read saw it.
rounds = 40
acked = {}      # value -> set of values its read returned
lock = threading.Lock()
def writer(n):
    r = redis.Redis(port=ports[n], socket_timeout=20)
    for i in range(rounds):
        ctx, vals = r.execute_command("DYN.GET", "race")
        val = "w%d-%d" % (n, i)
        try:
            r.execute_command("DYN.PUT", "race", ctx, val)
        except redis.ResponseError as e:
            if not str(e).startswith("TIMEOUT"):
                raise
            continue
        with lock:
            acked[val.encode()] = set(vals)
ts = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
[t.start() for t in ts]
[t.join() for t in ts]
final = set(dget(0, "race")[1])
for n in (1, 2):
    check("race: node %d sees the same values" % (n + 1), sorted(final), dget(n, "race")[1])
superseded = set()
for v, seen in acked.items():
    superseded |= seen
lost = [v for v in acked if v not in final and v not in superseded]
check("race: %d acknowledged puts, none lost" % len(acked), [], lost)
check("race: every put acknowledged", 3 * rounds, len(acked))
check("race: some siblings remain or were merged", True, len(final) >= 1)
print("race: %d puts, %d values left as siblings" % (len(acked), len(final)))
sys.exit(1 if fails else 0)
EOF
cl_down
finish
