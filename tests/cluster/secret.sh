#!/usr/bin/env bash
# The peer transport of real nodes: only holders of the cluster secret take
# part. A dynvme node with the wrong secret (a copy of node 1's config)
# is refused by both sides, logged with its address, and cannot read or
# write the cluster's data; a peer written from wire.h in Python
# (wire_peer.py) is refused for a wrong secret, another cluster id, an id
# that is not a member, an id that should be dialled instead, garbage, a
# frame with a bad tag, a replayed frame, frames out of order, a frame
# tagged with the other direction's key, an oversized frame, a good frame whose message
# records do not add up, and a silent connection (the handshake timeout);
# a malformed message in a good frame is dropped and counted; a dynvme
# node, and a wire_peer.py, whose partition table differs (its ring
# digest) is refused and logged the same way. The cluster keeps working throughout. A secret file readable by
# others, too short or missing stops a node at start.
. "$(dirname "$0")/cluster.bash"
cl_need_tools redis-py py-cryptography

cl_up 3
for n in 1 2 3; do cl_wait_peers $n; done
CID=$(grep -o 'cluster-id [0-9a-f]*' "$CL_DIR/node1/dynvme.conf" | cut -d' ' -f2)
INTER() { echo $((CL_BASE + 10000 + $1 - 1)); }
logs() { cat "$CL_DIR/node$1/dynvme.log"; }
# wait_log N ERE: until node N's log has a line matching ERE (10 s).
wait_log() {
	local end=$((SECONDS + 10 * SLOW))
	until grep -Eq -- "$2" "$CL_DIR/node$1/dynvme.log"; do
		[ $SECONDS -gt $end ] && { fail "node $1 log: no line matching /$2/"; return 1; }
		sleep 0.1
	done
}
# wait_more N COUNT ERE: until node N's log has more than COUNT lines matching ERE (10 s).
wait_more() {
	local end=$((SECONDS + 10 * SLOW))
	until [ "$(grep -Ec -- "$3" "$CL_DIR/node$1/dynvme.log")" -gt "$2" ]; do
		[ $SECONDS -gt $end ] && { fail "node $1 log: no new line matching /$3/"; return 1; }
		sleep 0.1
	done
}
RING=$(timeout 10 redis-cli -p "$(cl_port 3)" DYN.STATUS | grep -A1 '^ring_digest$' | tail -n 1)
check_match "DYN.STATUS names the ring digest" '^[0-9a-f]{16}$' "$RING"
for n in 1 2; do
	check "node $n has the same ring digest" "$RING" "$(timeout 10 redis-cli -p "$(cl_port $n)" DYN.STATUS | grep -A1 '^ring_digest$' | tail -n 1)"
done
peer() { WIRE_RING=$RING timeout 30 "$PY" "$(dirname "$0")/wire_peer.py" "$@" 2>&1; }

log "a dynvme node with the wrong secret (node 1's config on other ports)"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/wrong-secret"
chmod 600 "$WORK/wrong-secret"
alloc_port IMP_PORT
alloc_port IMP_HTTP
alloc_port IMP_INTER
sed -e "s|^port .*|port $IMP_PORT|" -e "s|^http-port .*|http-port $IMP_HTTP|" \
	-e "s|^internode-port .*|internode-port $IMP_INTER|" -e "s|^data .*|data \"$WORK/imp.img\"|" \
	-e "s|^cluster-secret-file .*|cluster-secret-file \"$WORK/wrong-secret\"|" \
	"$CL_DIR/node1/dynvme.conf" >"$WORK/imp.conf"
"$BIN" serve --config "$WORK/imp.conf" >"$WORK/imp.log" 2>&1 </dev/null &
IMP=$!
ALL_PIDS+=("$IMP")
for n in 2 3; do
	wait_log $n 'level=warn msg="peer handshake failed" peer=0 addr=127\.0\.0\.1:[0-9]+ role=accept reason="closed before authenticating'
done
end=$((SECONDS + 10))
until grep -q 'msg="peer refused" peer=2 .*reason="authentication failed: wrong cluster secret' "$WORK/imp.log" &&
	grep -q 'msg="peer refused" peer=3 .*reason="authentication failed: wrong cluster secret' "$WORK/imp.log"; do
	[ $SECONDS -gt $end ] && { fail "the impostor did not log its refusals"; tail -n 20 "$WORK/imp.log"; break; }
	sleep 0.1
done
got=$(timeout 20 redis-cli -p "$IMP_PORT" SET stolen yes 2>&1)
check_match "a write through the impostor times out (indeterminate, never applied anywhere)" '^TIMEOUT the write may or may not have been applied' "$got"
ct 2 '(nil)' GET stolen
ct 3 '(nil)' GET stolen
check_match "the impostor's view: node 2 not up" '^ +2 +127[^ ]+ +127[^ ]+ +(down|connecting|handshake) ' "$("$BIN" admin --node 127.0.0.1:$IMP_PORT status)"
st=$("$BIN" admin --node "127.0.0.1:$(cl_port 2)" status)
check_match "node 2 still has the real node 1, one session" '^ +1 +127\.0\.0\.1:[0-9]+ +127\.0\.0\.1:[0-9]+ +up +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +1 ' "$st"
check_match "node 2 counted failed handshakes" '^ +handshakes_refused +[1-9]' "$st"
kill -TERM "$IMP"
wait "$IMP"
check "impostor exits cleanly" 0 "$?"

log "a dynvme node with another partition table (node 1's config, 512 partitions)"
sed -e "s|^partitions .*|partitions 512|" -e "s|^data .*|data \"$WORK/ring.img\"|" "$WORK/imp.conf" |
	sed -e "s|^cluster-secret-file .*|cluster-secret-file \"$CL_DIR/secret\"|" >"$WORK/ring.conf"
grep -q '^partitions 512$' "$WORK/ring.conf" || fail "the ring test's config has no partitions line"
"$BIN" serve --config "$WORK/ring.conf" >"$WORK/ring.log" 2>&1 </dev/null &
RNODE=$!
ALL_PIDS+=("$RNODE")
for n in 2 3; do
	wait_log $n 'msg="peer refused" peer=0 addr=127\.0\.0\.1:[0-9]+ role=accept reason="another partition table \(partitions or members differ\)"'
done
end=$((SECONDS + 10))
# It dials (the lower id): its peers close before answering its HELLO, as
# for another cluster-id; they log why.
until grep -q 'msg="peer disconnected" peer=2 .*reason="closed by the peer"' "$WORK/ring.log" &&
	grep -q 'msg="peer disconnected" peer=3 .*reason="closed by the peer"' "$WORK/ring.log"; do
	[ $SECONDS -gt $end ] && { fail "the node with another ring did not log its closed handshakes"; tail -n 20 "$WORK/ring.log"; break; }
	sleep 0.1
done
check_match "the other ring's view: node 2 not up" '^ +2 +127[^ ]+ +127[^ ]+ +(down|connecting|handshake) ' "$("$BIN" admin --node 127.0.0.1:$IMP_PORT status)"
st=$("$BIN" admin --node "127.0.0.1:$(cl_port 2)" status)
check_match "node 2 still has the real node 1, one session" '^ +1 +127\.0\.0\.1:[0-9]+ +127\.0\.0\.1:[0-9]+ +up +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +1 ' "$st"
kill -TERM "$RNODE"
wait "$RNODE"
check "the node with another ring exits cleanly" 0 "$?"

log "wire_peer.py against node 3"
out=$(peer "$(INTER 3)" "$WORK/wrong-secret" "$CID" 1 3 hello)
check_match "wrong secret: the node's proof does not verify" '^proof_s wrong$' "$out"
check_match "wrong secret: closed" '^closed' "$out"
wait_log 3 'msg="peer refused" peer=0 addr=127\.0\.0\.1:[0-9]+ role=accept reason="authentication failed: wrong cluster secret'
out=$(peer "$(INTER 3)" "$CL_DIR/secret" 0123456789abcdef 1 3 hello)
check_match "another cluster id: closed before HELLO_S" '^closed before HELLO_S$' "$out"
wait_log 3 'reason="another cluster \(cluster-id differs\)"'
out=$(WIRE_RING=0123456789abcdef timeout 30 "$PY" "$(dirname "$0")/wire_peer.py" "$(INTER 3)" "$CL_DIR/secret" "$CID" 1 3 hello 2>&1)
check_match "another ring digest: closed before HELLO_S" '^closed before HELLO_S$' "$out"
wait_log 3 'msg="peer refused" peer=0 addr=127\.0\.0\.1:[0-9]+ role=accept reason="another partition table \(partitions or members differ\)"'
out=$(peer "$(INTER 3)" "$CL_DIR/secret" "$CID" 9 3 hello)
check_match "not a member: the node proved the secret" '^proof_s ok$' "$out"
check_match "not a member: closed" '^closed$' "$out"
wait_log 3 'reason="node id 9 is not a member of this cluster'
out=$(peer "$(INTER 2)" "$CL_DIR/secret" "$CID" 3 2 hello)
check_match "wrong direction: closed" '^closed$' "$out"
wait_log 2 'msg="peer refused" peer=3 .*reason="node 3 dialled us, but the lower id \(2\) dials"'
out=$(peer "$(INTER 3)" "$CL_DIR/secret" "$CID" 1 3 garbage)
check_match "garbage: closed" '^closed after' "$out"
wait_log 3 'reason="not a dynvme internode peer'
out=$(peer "$(INTER 3)" "$CL_DIR/secret" "$CID" 1 3 badtag)
check_match "bad tag: closed" '^closed after' "$out"
wait_log 3 'reason="a frame failed its tag'
TAGFAIL='msg="peer refused" peer=1 addr=127\.0\.0\.1:[0-9]+ role=accept reason="a frame failed its tag'
n0=$(grep -Ec -- "$TAGFAIL" "$CL_DIR/node3/dynvme.log")
bad0=$(timeout 10 redis-cli -p "$(cl_port 3)" DYN.STATUS | grep -A1 '^bad_msgs$' | tail -n 1)
out=$(peer "$(INTER 3)" "$CL_DIR/secret" "$CID" 1 3 replay)
check_match "a good frame, then the same frame replayed: closed" '^closed after' "$out"
wait_more 3 "$n0" "$TAGFAIL"
bad1=$(timeout 10 redis-cli -p "$(cl_port 3)" DYN.STATUS | grep -A1 '^bad_msgs$' | tail -n 1)
check "the first copy was delivered, the replay not (one bad message counted)" "$((bad0 + 1))" "$bad1"
n0=$(grep -Ec -- "$TAGFAIL" "$CL_DIR/node3/dynvme.log")
out=$(peer "$(INTER 3)" "$CL_DIR/secret" "$CID" 1 3 reorder)
check_match "frames 1 then 0 (reordered): closed" '^closed after' "$out"
wait_more 3 "$n0" "$TAGFAIL"
n0=$(grep -Ec -- "$TAGFAIL" "$CL_DIR/node3/dynvme.log")
out=$(peer "$(INTER 3)" "$CL_DIR/secret" "$CID" 1 3 otherdir)
check_match "a frame tagged with the other direction's key: closed" '^closed after' "$out"
wait_more 3 "$n0" "$TAGFAIL"
bad2=$(timeout 10 redis-cli -p "$(cl_port 3)" DYN.STATUS | grep -A1 '^bad_msgs$' | tail -n 1)
check "refused frames delivered nothing" "$bad1" "$bad2"
out=$(peer "$(INTER 3)" "$CL_DIR/secret" "$CID" 1 3 oversize)
check_match "oversized frame: closed" '^closed after' "$out"
wait_log 3 'reason="a frame larger than the protocol allows"'
bad0=$(timeout 10 redis-cli -p "$(cl_port 3)" DYN.STATUS | grep -A1 '^bad_msgs$' | tail -n 1)
peer "$(INTER 3)" "$CL_DIR/secret" "$CID" 1 3 badmsg >/dev/null
bad1=$(timeout 10 redis-cli -p "$(cl_port 3)" DYN.STATUS | grep -A1 '^bad_msgs$' | tail -n 1)
check "a malformed message in a good frame is counted" "$((bad0 + 1))" "$bad1"
out=$(peer "$(INTER 3)" "$CL_DIR/secret" "$CID" 1 3 badbatch)
check_match "a good frame whose records do not add up: closed" '^closed after' "$out"
wait_log 3 'reason="a frame whose message records do not fill it exactly"'
out=$(peer "$(INTER 3)" "$CL_DIR/secret" "$CID" 1 3 silent)
check_match "silent connection: closed by the handshake timeout" '^closed after [3-5]\.[0-9] s$' "$out"
wait_log 3 'msg="peer handshake timed out"'

log "the cluster still works"
cl_wait_peers 3
ct 1 OK SET after-attacks fine
ct 3 '"fine"' GET after-attacks
ct 2 '"fine"' GET after-attacks
cl_down

log "secret files refused at start"
conf=$CL_DIR/node1/dynvme.conf
try_start() { # try_start SECRET_PATH: exit code and log of a node started on it
	sed -e "s|^cluster-secret-file .*|cluster-secret-file \"$1\"|" "$conf" >"$WORK/s.conf"
	timeout 20 "$BIN" serve --config "$WORK/s.conf" >"$WORK/s.log" 2>&1 </dev/null
	echo "rc=$?"
	cat "$WORK/s.log"
}
cp "$CL_DIR/secret" "$WORK/open-secret"
chmod 644 "$WORK/open-secret"
out=$(try_start "$WORK/open-secret")
check_match "mode 0644: refused" '^rc=1' "$out"
check_match "mode 0644: said why" 'cluster-secret-file is accessible by group or others: chmod 600 it.*mode=0644' "$out"
printf 'short-secret\n' >"$WORK/short-secret"
chmod 600 "$WORK/short-secret"
out=$(try_start "$WORK/short-secret")
check_match "short secret: refused" '^rc=1' "$out"
check_match "short secret: said why" 'cluster-secret-file holds fewer than 16 bytes' "$out"
out=$(try_start "$WORK/no-such-secret")
check_match "missing secret: refused" '^rc=1' "$out"
check_match "missing secret: said why" 'cannot open cluster-secret-file' "$out"
out=$(timeout 20 "$BIN" serve --node-id 1 --data "$WORK/x.img" 2>&1)
check_match "node-id without the rest: a clear error" 'cluster-id is required' "$out"
finish
