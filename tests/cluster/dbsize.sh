#!/usr/bin/env bash
# DBSIZE on a cluster (an estimate: the nodes' counts summed over N):
# - a node killed -9 while the keyspace holds 3000 keys, FLUSHALL through
#   the others, the node restarted: DBSIZE through it is 0 from its first
#   answer on (its start-up count used to keep what it had counted of the
#   flushed keys before it learned the flush: 16 for good);
# - right after one SET (or SETBIT) at W=2, DBSIZE through every node is 1
#   (the sum 2 over N=3 was truncated to 0);
# - INFO keyspace lists each keyspace that has keys as Redis lists its
#   databases, "dbN:keys=K,expires=0,avg_ttl=0" with K that keyspace's
#   DBSIZE, through every node and whatever keyspace the connection selected
#   (it listed none);
# - with nodes killed -9 (their sessions gone), DBSIZE and INFO keyspace
#   through the others answer at once, the live counts scaled, instead of
#   waiting for the cluster timeout (they waited 5 s, and a lone node's
#   empty keyspace got a timeout error).
. "$(dirname "$0")/cluster.bash"
cl_need_tools redis-py

# info_ks N [SELECT]: the db lines of INFO keyspace through node N.
info_ks() { ccli "$1" -n "${2:-0}" INFO keyspace | tr -d '\r' | grep '^db' | tr '\n' ' '; }

cl_up 3
for n in 1 2 3; do cl_wait_peers $n; done
for n in 1 2 3; do check "node $n: INFO keyspace of an empty cluster" "" "$(info_ks $n)"; done

log "3000 keys, node 2 killed -9, FLUSHALL through node 1"
"$PY" - "$(cl_port 1)" <<'EOF' || fail "writing the keys"
import sys
import redis
r = redis.Redis(port=int(sys.argv[1]), socket_timeout=30)
p = r.pipeline(transaction=False)
for i in range(3000):
    p.set("k%d" % i, "v")
assert all(p.execute())
EOF
cl_kill9 2
for n in 1 3; do cl_wait_ups $n 1; done # its session seen gone: a flush is done without it
ct 1 OK FLUSHALL
ct 1 "(integer) 0" DBSIZE

log "node 2 restarted: DBSIZE through it from its first answer"
"$BIN" serve --config "$CL_DIR/node2/dynvme.conf" >>"$CL_DIR/node2/dynvme.log" 2>&1 </dev/null &
P=$!
ALL_PIDS+=("$P")
CL_EXTRA_PIDS+=("$P")
"$PY" - "$(cl_port 2)" "$((20 * SLOW))" <<'EOF' || fail "DBSIZE through the restarted node"
import sys, time
import redis
r = redis.Redis(port=int(sys.argv[1]), socket_timeout=5)
end = time.time() + float(sys.argv[2])
answers, wrong = 0, []
while time.time() < end and answers < 2000:
    try:
        v = r.dbsize()
    except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
        time.sleep(0.01)  # not serving yet
        continue
    answers += 1
    if v != 0:
        wrong.append(v)
print("%d answers, %d not 0 %s" % (answers, len(wrong), wrong[:5]))
sys.exit(0 if answers == 2000 and not wrong else 1)
EOF
cl_wait_peers 2

log "one SET, one SETBIT: DBSIZE 1 then 2 through every node at once"
ct 1 OK SET one x
for n in 1 2 3; do ct $n "(integer) 1" DBSIZE; done
ct 2 "(integer) 0" SETBIT bits 7 1
for n in 1 2 3; do ct $n "(integer) 2" DBSIZE; done

log "INFO keyspace: each keyspace's DBSIZE, through every node"
for n in 1 2 3; do check "node $n: INFO keyspace, keyspace 0 only" "db0:keys=2,expires=0,avg_ttl=0 " "$(info_ks $n)"; done
ccli 3 -n 1 SET a 1 >/dev/null
ccli 3 -n 1 SET b 2 EX 1000 >/dev/null
ccli 3 -n 1 SET c 3 >/dev/null
ct 1 "(integer) 3" -n 1 DBSIZE
for n in 1 2 3; do
	for db in 0 1; do
		check "node $n: INFO keyspace (SELECT $db)" "db0:keys=2,expires=0,avg_ttl=0 db1:keys=3,expires=0,avg_ttl=0 " \
			"$(info_ks $n $db)"
	done
done
ct 2 OK FLUSHDB
for n in 1 2 3; do check "node $n: INFO keyspace after FLUSHDB of keyspace 0" "db1:keys=3,expires=0,avg_ttl=0 " "$(info_ks $n 1)"; done

log "node 3 killed -9: DBSIZE and INFO through the others answer at once (scaled), not at the 5 s timeout"
cl_kill9 3
for n in 1 2; do cl_wait_ups $n 1; done
for n in 1 2; do
	t0=$(date +%s%N)
	ct $n "(integer) 3" -n 1 DBSIZE
	check "node $n: INFO keyspace with node 3 down" "db1:keys=3,expires=0,avg_ttl=0 " "$(info_ks $n 1)"
	ms=$((($(date +%s%N) - t0) / 1000000))
	[ $ms -lt 2500 ] || fail "node $n: DBSIZE and INFO with node 3 down took $ms ms (waited for the timeout)"
done
log "node 2 killed -9 as well: node 1 alone answers its own counts, 0 too"
cl_kill9 2
cl_wait_ups 1 0
t0=$(date +%s%N)
ct 1 "(integer) 3" -n 1 DBSIZE
ct 1 "(integer) 0" DBSIZE
ms=$((($(date +%s%N) - t0) / 1000000))
[ $ms -lt 2500 ] || fail "node 1 alone: DBSIZE took $ms ms (waited for the timeout)"
cl_down
finish
