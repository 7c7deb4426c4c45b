#!/usr/bin/env bash
# Authentication and protected mode.
#  - bad flags / config directives: exit 2 naming them (dynvme)
#  - --requirepass over loopback (tests/server/auth.py requirepass): NOAUTH
#    before AUTH, WRONGPASS, OK, HELLO 3 AUTH, QUIT, tiny requests only
#    before AUTH; redis-cli -a and redis-py with a password
#  - a config file with requirepass, comments, and a port the flags override
#  - protected mode: a client in a network namespace of its own (veth pair
#    in a documentation network, 192.0.2.0/24 or another RFC 5737
#    one when the machine itself is in it) gets -DENIED and is disconnected when there
#    is no password; PONG with --protected-mode no; NOAUTH then PONG with a
#    password. Exit 77 (after the other parts) when no namespace can be made.
. "$(dirname "$0")/common.bash"
need_tools
NOAUTH="(error) NOAUTH Authentication required."
WRONGPASS="(error) WRONGPASS invalid username-password pair or user is disabled."

# ---------------------------------------------------------------- bad flags (dynvme)
if is_dynvme; then
	log "bad flags and directives"
	alloc_port p
	timeout 10 "$BIN" serve --no-such-flag 1 --port "$p" --http-port 0 --data "$WORK/bad.img" --size 64M \
		>"$WORK/bad.out" 2>&1
	rc=$?
	check "serve --no-such-flag: exit code" 2 "$rc"
	grep -q 'no-such-flag' "$WORK/bad.out" || fail "serve --no-such-flag: message does not name it: $(head -c 300 "$WORK/bad.out")"
	printf '# a comment\nport %s\nno-such-directive 1\n' "$p" >"$WORK/bad.conf"
	timeout 10 "$BIN" serve --config "$WORK/bad.conf" --http-port 0 --data "$WORK/bad.img" --size 64M >"$WORK/bad.out" 2>&1
	rc=$?
	check "serve with an unknown config directive: exit code" 2 "$rc"
	grep -q 'no-such-directive' "$WORK/bad.out" || fail "unknown directive: message does not name it: $(head -c 300 "$WORK/bad.out")"
	timeout 10 "$BIN" serve --config "$WORK/no-such-file.conf" --port "$p" --http-port 0 --data "$WORK/bad.img" \
		--size 64M >"$WORK/bad.out" 2>&1
	rc=$?
	[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "serve --config of a missing file: exit code $rc"
	timeout 10 "$BIN" serve --port notaport --http-port 0 --data "$WORK/bad.img" --size 64M >"$WORK/bad.out" 2>&1
	rc=$?
	check "serve --port notaport: exit code" 2 "$rc"
	timeout 10 "$BIN" serve --protected-mode maybe --port "$p" --http-port 0 --data "$WORK/bad.img" --size 64M \
		>"$WORK/bad.out" 2>&1
	rc=$?
	check "serve --protected-mode maybe: exit code" 2 "$rc"
fi

# ---------------------------------------------------------------- requirepass on loopback
log "requirepass"
srv_start --requirepass s3cret
t "$NOAUTH" PING
t "$NOAUTH" SET a b
CLI_AUTH=(-a s3cret --no-auth-warning)
t PONG PING
t '(integer) 0' EXISTS a
CLI_AUTH=(-a wrong --no-auth-warning)
check_match "redis-cli -a wrong" "WRONGPASS|NOAUTH" "$(cli PING)"
CLI_AUTH=()
timeout 60 "$PY" "$TESTS_DIR/auth.py" requirepass "$SRV_PORT" s3cret "$SRV_MODE" || fail "auth.py requirepass (see above)"
if "$PY" -c 'import redis' 2>/dev/null; then
	got=$(timeout 20 "$PY" -c "
import redis
r = redis.Redis(port=$SRV_PORT, password='s3cret', socket_timeout=10)
print(r.ping(), r.set('pyk', 'pyv'), r.get('pyk'))
try:
    redis.Redis(port=$SRV_PORT, password='bad', socket_timeout=10).ping()
    print('bad password accepted')
except redis.RedisError:
    print('bad password refused')
try:
    redis.Redis(port=$SRV_PORT, socket_timeout=10).ping()
    print('no password accepted')
except redis.RedisError:
    print('no password refused')
" 2>&1)
	check "redis-py with a password" $'True True b\'pyv\'\nbad password refused\nno password refused' "$got"
fi
srv_stop
check "exit code after SIGTERM" 0 "$SRV_RC"

# ---------------------------------------------------------------- config file
log "config file"
alloc_port fileport
cat >"$WORK/auth.conf" <<EOF
# dynvme test configuration
port $fileport

requirepass "s3cret2"
maxclients 100
EOF
srv_start --config "$WORK/auth.conf"
t "$NOAUTH" PING
CLI_AUTH=(-a s3cret2 --no-auth-warning)
t PONG PING
t $'1) "maxclients"\n2) "100"' CONFIG GET maxclients
CLI_AUTH=(-a s3cret --no-auth-warning)
check_match "the --requirepass of the previous run is not accepted" "WRONGPASS" "$(cli PING)"
CLI_AUTH=()
port_busy "$fileport" && fail "the server listens on the config file's port $fileport although --port $SRV_PORT overrides it"
srv_stop

# ---------------------------------------------------------------- protected mode
NS=dvt$$ HV=dvh$$ NV=dvn$$
netns_skip=""
if [ "$(id -u)" != 0 ]; then
	netns_skip="not root: cannot create a network namespace"
fi
# A documentation network (RFC 5737) not used on this machine (some VMs sit
# in 192.0.2.0/24 themselves).
NET=""
for n in 192.0.2 198.51.100 203.0.113; do
	if ! ip -4 addr show | grep -q "inet ${n//./\\.}\." && ! ip -4 route show | grep -q "^${n//./\\.}\."; then
		NET=$n
		break
	fi
done
if [ -n "$netns_skip" ]; then
	:
elif [ -z "$NET" ]; then
	netns_skip="192.0.2.0/24, 198.51.100.0/24 and 203.0.113.0/24 are all in use on this machine"
elif ! ip netns add "$NS" 2>"$WORK/netns.err"; then
	netns_skip="cannot create a network namespace: $(head -n 1 "$WORK/netns.err")"
else
	CLEANUP_HOOKS+=("ip link del $HV" "ip netns del $NS")
	if ! { ip link add "$HV" type veth peer name "$NV" &&
		ip link set "$NV" netns "$NS" &&
		ip addr add $NET.1/24 dev "$HV" && ip link set "$HV" up &&
		ip netns exec "$NS" ip addr add $NET.2/24 dev "$NV" &&
		ip netns exec "$NS" ip link set "$NV" up &&
		ip netns exec "$NS" ip link set lo up; } 2>"$WORK/netns.err"; then
		netns_skip="cannot set up a veth pair: $(head -n 1 "$WORK/netns.err")"
	fi
fi
probe() { ip netns exec "$NS" timeout 20 "$PY" "$TESTS_DIR/auth.py" probe "$NET.1" "$SRV_PORT" "$@" 2>&1; }
if [ -z "$netns_skip" ]; then
	log "protected mode (client in network namespace $NS)"
	SRV_HOST=$NET.1
	srv_start --bind "$NET.1"
	check_match "no password, protected mode: remote client gets -DENIED and is disconnected" \
		"^b[\"']-DENIED.* closed$" "$(probe)"
	srv_stop
	check "exit code after SIGTERM" 0 "$SRV_RC"
	srv_start --bind "$NET.1" --protected-mode no
	check "--protected-mode no: remote client gets PONG" "b'+PONG\\r\\n' open" "$(probe)"
	srv_stop
	srv_start --bind "$NET.1" --requirepass pw1
	check "password, protected mode: remote client gets NOAUTH" "b'-NOAUTH Authentication required.\\r\\n' open" "$(probe)"
	check "password, protected mode: remote client after AUTH gets PONG" "b'+PONG\\r\\n' open" "$(probe pw1)"
	srv_stop
	SRV_HOST=127.0.0.1
	srv_start
	check_match "server on 127.0.0.1: a remote client cannot connect" "^connect-failed" \
		"$(ip netns exec "$NS" timeout 20 "$PY" "$TESTS_DIR/auth.py" probe "$NET.1" "$SRV_PORT" 2>&1)"
	srv_stop
fi
[ "$FAILS" -gt 0 ] && finish
[ -n "$netns_skip" ] && skip "protected mode not tested: $netns_skip"
finish
