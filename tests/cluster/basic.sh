#!/usr/bin/env bash
# A 3-node cluster from `dynvme cluster up` on loopback (real processes):
# what it writes (configs, secret 0600), writes through one node read from
# the others, keyspaces (SELECT 1 is last-write-wins), the Redis Cluster
# commands answered as by a Redis without cluster support, DYN.* errors,
# admin status/ring, /status and /metrics cluster figures, Ctrl-C (SIGTERM)
# stopping every node, and a second `cluster up` on the same DIR reusing
# the ring and the data (a different --nodes refused).
. "$(dirname "$0")/cluster.bash"
cl_need_tools

log "cluster up --nodes 3"
cl_up 3
check_match "cluster up prints the nodes' ports" "node 1 +RESP 127.0.0.1:$(cl_port 1) +HTTP 127.0.0.1:$(cl_http 1) +internode 127.0.0.1:$((CL_BASE + 10000))" "$(cat "$WORK/up.out")"
check_match "cluster up prints how to connect" "redis-cli -p $(cl_port 1)" "$(cat "$WORK/up.out")"
check "secret file mode" "600" "$(stat -c %a "$CL_DIR/secret")"
check "secret: 64 hex digits" "64" "$(tr -d '\n' <"$CL_DIR/secret" | grep -Ec '^[0-9a-f]{64}$' | sed 's/1/64/')"
for n in 1 2 3; do
	conf=$CL_DIR/node$n/dynvme.conf
	check_match "node $n config: node-id" "^node-id $n\$" "$(cat "$conf")"
	check_match "node $n config: peers" "^peer $((n % 3 + 1)) 127.0.0.1:$((CL_BASE + 10000 + n % 3))" "$(cat "$conf")"
	check_match "node $n config: secret file" "^cluster-secret-file \"$CL_DIR/secret\"" "$(cat "$conf")"
done
cl_wait_peers 1

log "a write through node 1, read from nodes 2 and 3"
ct 1 OK SET greeting hello
ct 2 '"hello"' GET greeting
ct 3 '"hello"' GET greeting
ct 3 OK SET greeting "hello again"
ct 1 '"hello again"' GET greeting
ct 2 '(integer) 1' DEL greeting
ct 3 '(nil)' GET greeting
ct 1 '(integer) 0' EXISTS greeting
for i in $(seq 1 40); do echo "SET key:$i value-$i"; done | timeout 30 redis-cli -p "$(cl_port 1)" >/dev/null
miss=0
for n in 2 3; do
	got=$(for i in $(seq 1 40); do echo "GET key:$i"; done | timeout 30 redis-cli -p "$(cl_port "$n")")
	exp=$(for i in $(seq 1 40); do echo "value-$i"; done)
	[ "$got" = "$exp" ] || { miss=1; fail "node $n: 40 keys written through node 1 read back differently"; }
done

log "keyspaces: SELECT 1 is last-write-wins, SELECT 0 keeps siblings"
ct 1 OK SELECT 1
ct 1 "(error) ERR DB index is out of range" SELECT 2
ct 1 "(error) ERR DB index is out of range" SELECT 16
got=$(printf 'SELECT 1\nSET k lww-value\nGET k\n' | timeout 10 redis-cli -p "$(cl_port 1)")
check "SELECT 1; SET; GET" $'OK\nOK\nlww-value' "$got"
ct 2 '(nil)' GET k
check "node 3 in db 1 sees it" "lww-value" "$(timeout 10 redis-cli -p "$(cl_port 3)" -n 1 GET k)"
# The same blind write (empty context) through two nodes: LWW keeps one
# value, the siblings keyspace keeps both.
timeout 10 redis-cli -p "$(cl_port 1)" -n 1 DYN.PUT blind "" a >/dev/null
timeout 10 redis-cli -p "$(cl_port 2)" -n 1 DYN.PUT blind "" b >/dev/null
check "db 1 (lww): two blind puts leave one value" "1" \
	"$(timeout 10 redis-cli -p "$(cl_port 3)" -n 1 DYN.GET blind | tail -n +2 | wc -l)"
ct 1 OK DYN.PUT blind "" a
ct 2 OK DYN.PUT blind "" b
check "db 0 (siblings): two blind puts leave two values" $'a\nb' \
	"$(timeout 10 redis-cli -p "$(cl_port 3)" DYN.GET blind | tail -n +2 | sort)"

log "Redis Cluster commands answer as a Redis without cluster support"
# (redis-cli prints the replies of CLUSTER NODES and INFO raw)
for c in "CLUSTER SLOTS" "CLUSTER NODES" "CLUSTER INFO" "CLUSTER SHARDS" "READONLY" "READWRITE"; do
	check_match "$c" '^(\(error\) )?ERR This instance has cluster support disabled$' "$(ccli 1 $c)"
done
raw=$("$PY" - "$(cl_port 1)" <<EOF
import sys
sys.path.insert(0, "$TESTS_DIR")
import dvresp
c = dvresp.Conn(int(sys.argv[1]))
c.send(b"*2\r\n\$7\r\nCLUSTER\r\n\$5\r\nSLOTS\r\n")
print(repr(c.sock.recv(200)))
EOF
)
check "CLUSTER SLOTS: the bytes on the wire" "b'-ERR This instance has cluster support disabled\r\n'" "$raw"
check_match "INFO says standalone" '^redis_mode:standalone' "$(ccli 1 INFO server | tr -d '\r')"
check_match "CONFIG GET cluster-enabled" 'no' "$(ccli 1 CONFIG GET cluster-enabled)"

log "DYN.* arguments and contexts"
ct 1 "(error) ERR syntax error" DYN.GET k BOGUS 1
ct 1 "(error) ERR R must be 1..3 (the N of keyspace 0)" DYN.GET k R 4
ct 1 "(error) ERR W must be 1..3 (the N of keyspace 0)" DYN.PUT k "" v W 0
ct 1 "(error) ERR value is not an integer or out of range" DYN.PUT k "" v W x
ct 1 "(error) ERR invalid expire time in 'dyn.put' command" DYN.PUT k "" v EX 0
ct 1 "(error) ERR wrong number of arguments for 'dyn.put' command" DYN.PUT k ""
E_CTX="(error) ERR invalid context: not one DYN.GET returned for this key (garbage, truncated or altered); use \"\" for a key never read"
ct 1 "$E_CTX" DYN.PUT k garbage v
ct 1 OK DYN.PUT ctxkey "" v1
ctx=$(timeout 10 redis-cli -p "$(cl_port 2)" DYN.GET ctxkey | head -n 1)
check_match "DYN.GET context is base64url text" '^[A-Za-z0-9_-]{20,}$' "$ctx"
ct 1 "$E_CTX" DYN.PUT ctxkey "${ctx:0:${#ctx}-3}" v2
ct 1 "$E_CTX" DYN.PUT otherkey "$ctx" v2
ct 1 "$E_CTX" DYN.DEL ctxkey "x${ctx:1}"
long=$(head -c 800 /dev/zero | tr '\0' A)
ct 1 "(error) ERR invalid context: longer than any context (731 bytes)" DYN.PUT ctxkey "$long" v2
ct 3 OK DYN.PUT ctxkey "$ctx" v2
check "DYN.GET after a put with the read's context" "v2" "$(timeout 10 redis-cli -p "$(cl_port 1)" DYN.GET ctxkey | tail -n +2)"
ct 2 OK DYN.PUT ttlkey "" v PX 100000
check_match "DYN.PUT PX: TTL" '^\(integer\) (9[0-9]|100)$' "$(ccli 1 TTL ttlkey)"
ct 2 OK DYN.PUT ttlkey2 "" v EX 1
sleep 1.3
ct 1 '(nil)' GET ttlkey2
check_match "DYN.GET of a key never written: a context and no value" \
	$'^1\\) "[A-Za-z0-9_-]+"\n2\\) \\(empty array\\)$' "$(ccli 1 DYN.GET never-written)"
ctx0=$(timeout 10 redis-cli -p "$(cl_port 1)" DYN.GET never-written | head -n 1)
ct 2 OK DYN.PUT never-written "$ctx0" first
ct 3 '"first"' GET never-written
check_match "key of 1024 bytes refused in cluster mode" '^\(error\) ERR key too large for cluster mode' \
	"$(ccli 1 SET "$(head -c 1024 /dev/zero | tr '\0' k)" v)"
ct 1 OK SET "$(head -c 1023 /dev/zero | tr '\0' k)" v

log "admin status and ring"
st=$("$BIN" admin --node "127.0.0.1:$(cl_port 2)" status)
check_match "admin status: node line" "^node 2 of cluster [0-9a-f]{16}: incarnation [0-9a-f]{12}" "$st"
check_match "admin status: ring line" "^ring version 1 \(digest [0-9a-f]{16}\): 1024 partitions over 3 nodes, preference lists of 3" "$st"
for n in 1 2 3; do
	state=up
	[ $n = 2 ] && state=self
	check_match "admin status: member $n" "^ +$n +127.0.0.1:$((CL_BASE + 10000 + n - 1)) +127.0.0.1:$(cl_port $n) +$state +34[12] +1024 " "$st"
done
check_match "admin status: keyspace 0" '^ +0 +default +3 +2 +2 +siblings +16$' "$st"
check_match "admin status: keyspace 1" '^ +1 +lww +3 +2 +2 +lww +16$' "$st"
check_match "admin status: coordinated writes counted" '^ +coord_writes +[1-9]' "$st"
ring=$("$BIN" admin --node "127.0.0.1:$(cl_port 3)" ring)
check_match "admin ring: header" '^ring version 1: 1024 partitions, nodes 1 2 3, preference lists of 3' "$ring"
check_match "admin ring: partition 0" '^ +0 +0x0000000000000000 +0x003fffffffffffff +1 +1 2 3$' "$ring"
check_match "admin ring: partition 1023" '^ +1023 +0xffc0000000000000 +0xffffffffffffffff +1 +1 2 3$' "$ring"
check "admin ring: 1024 partitions listed" 1024 "$(printf '%s\n' "$ring" | grep -cE '^ +[0-9]+ +0x')"
check "admin ring: the same table from every node" "$ring" "$("$BIN" admin --node "127.0.0.1:$(cl_port 1)" ring)"
out=$("$BIN" admin --node 127.0.0.1:1 status 2>&1)
check "admin: unreachable node exit code" 1 "$?"
check_match "admin: unreachable node message" "cannot connect to 127.0.0.1:1" "$out"

log "/status and /metrics"
js=$(curl -s "http://127.0.0.1:$(cl_http 1)/status")
check_match "/status has the cluster" '"cluster":\{"node_id":1,"cluster_id":"[0-9a-f]{16}"' "$js"
check_match "/status members" '"members":\[\{"id":1,.*"state":"self".*\{"id":3,.*"state":"up"' "$js"
"$PY" -c 'import json,sys; json.loads(sys.stdin.read())' <<<"$js" || fail "/status is not valid JSON: $js"
mt=$(curl -s "http://127.0.0.1:$(cl_http 1)/metrics")
for m in 'dynvme_cluster_requests_coordinated_total\{kind="write"\} [1-9]' \
	'dynvme_cluster_replica_requests_total\{kind="put"\} [1-9]' 'dynvme_cluster_quorum_timeouts_total 0' \
	'dynvme_cluster_read_repairs_total [0-9]' 'dynvme_cluster_full_reads_total [0-9]' 'dynvme_cluster_spec_timer_fires_total [0-9]' 'dynvme_cluster_internode_bytes_total\{dir="out"\} [1-9]' \
	'dynvme_cluster_peers\{state="up"\} 2' 'dynvme_cluster_peer_up\{peer="2"\} 1'; do
	check_match "/metrics: $m" "^$m" "$mt"
done

log "DBSIZE counts this node's keys of every keyspace"
check_match "DBSIZE" '^\(integer\) [0-9]+$' "$(ccli 1 DBSIZE)"

log "SIGTERM to cluster up stops every node"
pids=$(for n in 1 2 3; do cl_pid $n; done)
cl_down
check "cluster up exit code" 0 "$CL_UP_RC"
check_match "cluster up says stopped" "cluster stopped" "$(cat "$WORK/up.out")"
for p in $pids; do kill -0 "$p" 2>/dev/null && fail "node pid $p still running"; done
for n in 1 2 3; do
	check_match "node $n: clean shutdown" 'msg="shutdown complete"' "$(cat "$CL_DIR/node$n/dynvme.log")"
done

log "a second cluster up on the same DIR: same ring, same data"
out=$("$BIN" cluster up --nodes 4 --data "$CL_DIR" 2>&1)
check "cluster up --nodes 4 on a 3-node DIR: exit code" 1 "$?"
check_match "cluster up --nodes 4 on a 3-node DIR: message" "holds a 3-node cluster, not 4" "$out"
id1=$(grep -o 'cluster-id [0-9a-f]*' "$CL_DIR/node1/dynvme.conf")
cl_up 3
check_match "second start reuses the DIR" "reusing the 3-node cluster in $CL_DIR" "$(cat "$WORK/up.out")"
check "cluster id kept" "$id1" "$(grep -o 'cluster-id [0-9a-f]*' "$CL_DIR/node1/dynvme.conf")"
cl_wait_peers 2
ct 2 '"value-7"' GET key:7
ct 3 '"value-40"' GET key:40
ct 1 '"v2"' GET ctxkey
check "ring unchanged" "$ring" "$("$BIN" admin --node "127.0.0.1:$(cl_port 3)" ring)"
cl_down
check "second cluster up exit code" 0 "$CL_UP_RC"

log "Ctrl-C: SIGINT to cluster up's whole process group stops every node, reported as stopped, not as exits"
setsid "$BIN" cluster up --nodes 3 --base-port "$CL_BASE" --data "$CL_DIR" >"$WORK/up2.out" 2>&1 </dev/null &
spid=$!
ALL_PIDS+=("$spid")
end=$((SECONDS + 60 * SLOW))
until grep -q "nodes ready" "$WORK/up2.out" || [ $SECONDS -gt $end ] || ! kill -0 "$spid" 2>/dev/null; do sleep 0.1; done
check_match "started in a group of its own" "nodes ready" "$(cat "$WORK/up2.out")"
kill -INT -- "-$spid"
wait "$spid"
check "exit code after a group SIGINT" 0 "$?"
check_match "cluster up says stopped" "stopping 3 node\(s\)" "$(cat "$WORK/up2.out")"
check "no node reported as exited on its own" 0 "$(grep -c 'exited with status\|killed by signal' "$WORK/up2.out")"
for n in 1 2 3; do
	check "node $n: a clean shutdown each start" "$(grep -c 'msg="ready"' "$CL_DIR/node$n/dynvme.log")" \
		"$(grep -c 'msg="shutdown complete"' "$CL_DIR/node$n/dynvme.log")"
	# Stopped by cluster up (SIGTERM), not by the group's SIGINT itself.
	check "node $n: stopped by cluster up" "signal=15" \
		"$(grep 'msg="shutdown requested"' "$CL_DIR/node$n/dynvme.log" | tail -n 1 | grep -o 'signal=[0-9]*')"
done

log "single-node mode: DYN.* refused, SELECT 0 only"
srv_start
t "(error) ERR cluster mode is not enabled: DYN.* commands need a node started with node-id (dynvme cluster up, or see dynvme serve --help)" DYN.GET k
t "(error) ERR DB index is out of range" SELECT 1
t "(error) ERR This instance has cluster support disabled" CLUSTER SLOTS
out=$("$BIN" admin --node "127.0.0.1:$SRV_PORT" status 2>&1)
check "admin on a single node: exit code" 1 "$?"
check_match "admin on a single node: message" "cluster mode is not enabled" "$out"
srv_stop
finish
