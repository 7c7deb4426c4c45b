#!/usr/bin/env bash
# A cluster flush frees its space (docs/ARCHITECTURE.md, "Cluster: FLUSH"):
# three real nodes (N=3 R=2 W=2: every node holds every key) on 32 MiB data
# files of 1 MiB zones.
# - ROUNDS rounds of "fill each node's device to ~60%, FLUSHALL": every
#   write of every round answers OK (without reclaim the flushed records
#   stay indexed, GC moves them as live and round 2 or 3 runs out of
#   space), and after each flush no key of the round reads back;
# - a node killed -9 right after a FLUSHALL +OK and restarted: the fill
#   after it still fits (its store sweeps the flushed records again after
#   recovery), and no flushed key comes back through it;
# - FLUSHDB of keyspace 1 in rounds, keyspace 0's keys (written once,
#   before) stay readable all along, and the keyspace 1 fills still fit.
# Bounded: each fill is a few thousand pipelined SETs; the whole test takes
# well under 90 s.
. "$(dirname "$0")/cluster.bash"
cl_need_tools redis-py

ROUNDS=${FLUSH_SPACE_ROUNDS:-5}
VAL_BYTES=3000
FILL_KEYS=6000 # ~19 MB of records on each node: ~60% of 31 zones of 1 MiB

# Small zones: the first start writes the configs (16 MiB zones, which a
# 32 MiB file cannot hold); they are rewritten with 32 MiB files of 1 MiB
# zones and the data files formatted again.
cl_up 3 --size 128M
cl_down
for n in 1 2 3; do
	sed -i -e 's/^zone-bytes .*/zone-bytes 1M/' -e 's/^size .*/size 32M/' "$CL_DIR/node$n/dynvme.conf"
	rm -f "$CL_DIR/node$n/data.img"
done
cl_up 3 --size 32M
for n in 1 2 3; do cl_wait_peers $n; done

# fill PORT DB PREFIX COUNT: COUNT pipelined SETs of VAL_BYTES-byte values in
# keyspace DB; every reply must be OK.
fill() {
	"$PY" - "$1" "$2" "$3" "$4" "$VAL_BYTES" <<'EOF'
import sys
import redis
port, db, prefix, count, size = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
r = redis.Redis(port=port, db=db, socket_timeout=60)
bad = 0
for start in range(0, count, 200):
    p = r.pipeline(transaction=False)
    for i in range(start, min(count, start + 200)):
        p.set("%s:%d" % (prefix, i), (b"%d:" % i) + b"x" * size)
    for res in p.execute(raise_on_error=False):
        if res is not True:
            bad += 1
            if bad <= 3:
                print("write failed: %r" % (res,))
if bad:
    sys.exit("%d of %d writes failed" % (bad, count))
EOF
}

# present PORT DB PREFIX COUNT: how many of the keys read back.
present() {
	"$PY" - "$1" "$2" "$3" "$4" <<'EOF'
import sys
import redis
port, db, prefix, count = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
r = redis.Redis(port=port, db=db, socket_timeout=60)
p = r.pipeline(transaction=False)
for i in range(count):
    p.exists("%s:%d" % (prefix, i))
print(sum(1 for x in p.execute(raise_on_error=False) if x == 1))
EOF
}

# stat N NAME: a store figure of node N (INFO).
stat() { ccli "$1" INFO | tr -d '\r' | sed -n "s/^$2://p" | head -n 1; }

for round in $(seq 1 "$ROUNDS"); do
	node=$(((round - 1) % 3 + 1))
	fill "$(cl_port "$node")" 0 "r$round" $FILL_KEYS || { fail "round $round: the fill through node $node did not fit"; break; }
	ct "$node" OK FLUSHALL
	check "round $round: no key of the round reads back" 0 "$(present "$(cl_port 2)" 0 "r$round" 200)"
	log "round $round: node 1: $(stat 1 reclaim_dropped) flushed records dropped, $(stat 1 reclaim_zones_freed) zones freed by the sweep, $(stat 1 gc_bytes_relocated) bytes relocated, $(stat 1 zones_empty) zones empty"
	if [ "$round" = 2 ]; then
		log "round $round: node 3 killed -9 after the FLUSHALL +OK, restarted"
		cl_kill9 3
		cl_restart 3
		check "round $round: no flushed key through the restarted node 3" 0 "$(present "$(cl_port 3)" 0 "r$round" 200)"
	fi
	if [ "$round" = 3 ]; then
		log "round $round: the restarted node 3: $(stat 3 recovered_records) records recovered, $(stat 3 reclaim_dropped) dropped since, $(stat 3 zones_empty) zones empty"
	fi
done

log "FLUSHDB 1 in rounds: keyspace 0's keys stay"
KEEP=500
fill "$(cl_port 1)" 0 keep $KEEP || fail "writing keyspace 0's keys"
for round in $(seq 1 "$ROUNDS"); do
	fill "$(cl_port 2)" 1 "d$round" $((FILL_KEYS - KEEP)) || { fail "FLUSHDB round $round: the fill did not fit"; break; }
	check "FLUSHDB round $round: FLUSHDB" OK "$(printf 'SELECT 1\nFLUSHDB\n' | timeout 20 redis-cli -p "$(cl_port 3)" | tail -n 1)"
	check "FLUSHDB round $round: keyspace 1 is empty" 0 "$(present "$(cl_port 1)" 1 "d$round" 200)"
	check "FLUSHDB round $round: keyspace 0's keys all read" $KEEP "$(present "$(cl_port 3)" 0 keep $KEEP)"
done
cl_down
finish
