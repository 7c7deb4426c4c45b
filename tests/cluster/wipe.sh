#!/usr/bin/env bash
# A node restarted on a deleted data file (a new incarnation) serves writes
# it forwards as before: with 4 nodes and N=3, node 4 is outside the
# preference list of about a quarter of the keys, so its writes of them are
# FWD_PUTs to a replica, whose duplicate window per origin keeps the
# greatest request id seen. Request ids are boot << 44 | a counter, and a
# wiped node starts again at the boot of a first start (the store's open
# stamp of a new data file, as its first run had): before the fix its peers took its new
# ids as duplicates of the old run's (dropped: the client's write timed out)
# or as older than the window (refused: "too many concurrent writes").
# Then every acknowledged write is readable through every node, and a
# blind DYN.PUT through node 4 after the wipe is a sibling of the one it
# made before (a new incarnation: no dot reused, Riak's KV679).
. "$(dirname "$0")/cluster.bash"
cl_need_tools redis-py

cl_up 4
for n in 1 2 3 4; do cl_wait_peers $n; done

# writes PORT PREFIX COUNT: SET PREFIX:i through PORT; prints the errors.
writes() {
	timeout 120 "$PY" - "$1" "$2" "$3" <<'PYEOF'
import sys
import redis
port, prefix, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
r = redis.Redis(port=port, socket_timeout=30)
errs = 0
for i in range(count):
    try:
        r.set("%s:%d" % (prefix, i), "%s-v%d" % (prefix, i))
    except redis.RedisError as e:
        errs += 1
        if errs <= 5:
            print("SET %s:%d: %s" % (prefix, i, e))
print("errors %d" % errs)
PYEOF
}

boot_first=$(grep 'cluster identity' "$CL_DIR/node4/dynvme.log" | head -n 1 | grep -o 'boot=[0-9]* ')
[ -n "$boot_first" ] || die "node 4: no boot in its first start's log line"
log "300 SETs through node 4 (its first start: $boot_first), restart it twice, 300 more"
check "writes through node 4 (first run)" "errors 0" "$(writes "$(cl_port 4)" a 300 | tail -n 1)"
for i in 1 2; do
	cl_kill9 4
	cl_restart 4
done
check "writes through node 4 (third run)" "errors 0" "$(writes "$(cl_port 4)" b 300 | tail -n 1)"
ccli 4 DYN.PUT kv679 "" before >/dev/null
inc_old=$(grep 'cluster identity' "$CL_DIR/node4/dynvme.log" | tail -n 1 | grep -o 'incarnation=[0-9a-f]*')

log "kill -9 node 4, delete its data file, restart it (a new incarnation, its first start's boot again)"
cl_kill9 4
rm -f "$CL_DIR/node4/data.img"
cl_restart 4
ident=$(grep 'cluster identity' "$CL_DIR/node4/dynvme.log" | tail -n 1)
check_match "node 4 has a new identity" 'created=yes' "$ident"
check_match "node 4 starts at its first start's boot ($boot_first)" "$boot_first" "$ident"
[ "$(printf '%s' "$ident" | grep -o 'incarnation=[0-9a-f]*')" != "$inc_old" ] || fail "node 4 kept its incarnation"
out=$(writes "$(cl_port 4)" c 300)
check "writes through the wiped node 4: none refused or lost ($(printf '%s' "$out" | head -n 2 | tr '\n' ' '))" \
	"errors 0" "$(printf '%s' "$out" | tail -n 1)"

# Riak KV679: had node 4 reused its old dots, its blind write of kv679
# would carry the dot of "before" and one of the two would be dropped.
ct 4 OK DYN.PUT kv679 "" after
check "kv679: the pre-wipe value and the new one are siblings" "after
before" "$(ccli 1 --raw DYN.GET kv679 | tail -n 2 | sort)"

log "every write readable through every node"
for n in 1 2 3 4; do
	bad=$(timeout 120 "$PY" - "$(cl_port $n)" <<'PYEOF'
import sys
import redis
r = redis.Redis(port=int(sys.argv[1]), socket_timeout=30)
bad = 0
for prefix in "abc":
    p = r.pipeline(transaction=False)
    for i in range(300):
        p.get("%s:%d" % (prefix, i))
    for i, got in enumerate(p.execute()):
        if got != ("%s-v%d" % (prefix, i)).encode():
            bad += 1
            if bad <= 3:
                print("%s:%d -> %r" % (prefix, i, got))
print("wrong %d" % bad)
PYEOF
)
	check "node $n: every write reads back ($(printf '%s' "$bad" | head -n 3 | tr '\n' ' '))" "wrong 0" "$(printf '%s' "$bad" | tail -n 1)"
done
cl_down
finish
