# tests/cluster/cluster.bash - sourced by tests/cluster/*.sh (not a test
# itself): tests/server/common.bash (scratch dir, watchdog, check/fail,
# redis-cli helpers) plus a local cluster run by `dynvme cluster up`.
#
# cl_up K [flags]   starts `dynvme cluster up --nodes K` on free loopback
#                   ports (CL_BASE) with data in $WORK/c, waits for its
#                   "nodes ready" line (data files of 128 MiB unless the
#                   flags give --size); CL_UP_PID is the cluster up process
# cl_port N         node N's RESP port; cl_http N its HTTP port
# ccli N ARGS...    one redis-cli call to node N (--no-raw)
# cl_pid N          pid of node N's dynvme serve (child or restarted)
# cl_kill9 N        kill -9 node N
# cl_restart N      dynvme serve --config DIR/nodeN/dynvme.conf, waits until it
#                   answers and every peer is connected
# cl_wait_peers N   until node N's DYN.STATUS shows every member up
# cl_wait_ups N U   until node N's DYN.STATUS shows U peers up
# cl_down           SIGTERM to cluster up, waits for "cluster stopped"
# cl_check_logs     sanitizer reports in any node's log are failures
. "$(dirname "${BASH_SOURCE[0]}")/../server/common.bash"
CL_DIR=$WORK/c
CL_UP_PID=""
CL_BASE=${DV_CL_BASE:-} # DV_CL_BASE: a fixed base port instead of a picked one
CL_NODES=0
CL_EXTRA_PIDS=()

# Base ports from 21000-22599 so that P+10000 (internode) stays below the
# ephemeral range; every port of the cluster checked free. Under tests/run.sh
# with DV_TEST_JOBS > 1, job slot DV_TEST_SLOT of DV_TEST_SLOTS takes only its
# share of 21000-21999 (so its HTTP ports, +1000, and internode ports, +10000,
# are its share of those ranges too), apart from the other slots' and from
# tests/server/common.bash's (24000-29999 then). DV_CL_BASE fixes the base
# instead (then not checked).
cl_pick_base() {
	local k=$1 b n ok tries=0 lo=21000 hi=22590 span=1500
	if [ -n "${DV_TEST_SLOT:-}" ] && [ "${DV_TEST_SLOTS:-1}" -gt 1 ]; then
		lo=$((21000 + DV_TEST_SLOT * (1000 / DV_TEST_SLOTS)))
		hi=$((lo + 1000 / DV_TEST_SLOTS - k))
		span=$((hi - lo + 1))
	fi
	b=$((lo + ($$ * 37 % span)))
	while :; do
		ok=1
		for n in $(seq 0 $((k - 1))); do
			for off in 0 1000 10000; do
				port_busy $((b + off + n)) && ok=0
			done
		done
		[ $ok = 1 ] && break
		b=$((b + k + 3))
		[ $b -gt $hi ] && b=$lo
		tries=$((tries + 1))
		[ $tries -gt 500 ] && die "no free base port"
	done
	CL_BASE=$b
}

cl_port() { echo $((CL_BASE + $1 - 1)); }
cl_http() { echo $((CL_BASE + 1000 + $1 - 1)); }
ccli() {
	local n=$1
	shift
	timeout 20 redis-cli --no-raw -h 127.0.0.1 -p "$(cl_port "$n")" "$@" 2>&1
}
# ct N EXPECTED ARGS...: exact reply of one command through node N.
ct() {
	local n=$1 exp=$2
	shift 2
	check "node $n: $* -> $exp" "$exp" "$(ccli "$n" "$@")"
}

cl_up() {
	local k=$1
	shift
	CL_NODES=$k
	[ -n "$CL_BASE" ] || cl_pick_base "$k"
	: >"$WORK/up.out"
	# 128 MiB data files unless the caller sizes them: a new file is written
	# with zeros once, and the default 512 MiB x K nodes is seconds of disk
	# writes per start that no test here needs.
	local size=(--size 128M)
	[[ " $* " == *" --size "* ]] && size=()
	"$BIN" cluster up --nodes "$k" --base-port "$CL_BASE" --data "$CL_DIR" "${size[@]}" "$@" >>"$WORK/up.out" 2>&1 </dev/null &
	CL_UP_PID=$!
	ALL_PIDS+=("$CL_UP_PID")
	local end=$((SECONDS + 60 * SLOW))
	until grep -q "nodes ready" "$WORK/up.out"; do
		kill -0 "$CL_UP_PID" 2>/dev/null || { cat "$WORK/up.out"; die "cluster up exited during start"; }
		[ $SECONDS -gt $end ] && { cat "$WORK/up.out"; die "cluster not ready after $((60 * SLOW))s"; }
		sleep 0.1
	done
	local n
	for n in $(seq 1 "$k"); do ALL_PIDS+=("$(cl_pid "$n")"); done
}

cl_pid() { pgrep -f -- "serve --config $CL_DIR/node$1/dynvme.conf\$" | head -n 1; }

cl_kill9() {
	local p
	p=$(cl_pid "$1")
	[ -n "$p" ] || die "node $1 is not running"
	kill -KILL "$p"
	local n=0
	while kill -0 "$p" 2>/dev/null; do
		n=$((n + 1))
		[ $n -gt 100 ] && die "node $1 (pid $p) survives kill -9"
		sleep 0.05
	done
}

cl_wait_peers() {
	local n=$1 end=$((SECONDS + 30 * SLOW)) st
	while :; do
		st=$(timeout 5 redis-cli -p "$(cl_port "$n")" DYN.STATUS 2>/dev/null | tr '\n' ' ')
		# every member's state is up or self
		if [ -n "$st" ] && [ "$(printf '%s' "$st" | grep -o 'state [a-z]*' | grep -cv -e 'state up' -e 'state self')" = 0 ] &&
			[ "$(printf '%s' "$st" | grep -o 'state [a-z]*' | wc -l)" = "$CL_NODES" ]; then
			return 0
		fi
		[ $SECONDS -gt $end ] && die "node $n: peers not all up after $((30 * SLOW))s: $st"
		sleep 0.1
	done
}

# cl_wait_ups N UPS: until node N's DYN.STATUS shows UPS peers up (e.g. 1 of
# 2 once a killed node's session is seen gone: a flush is done without it).
cl_wait_ups() {
	local n=$1 ups=$2 end=$((SECONDS + 20 * SLOW))
	until [ "$(timeout 5 redis-cli -p "$(cl_port "$n")" DYN.STATUS | tr '\n' ' ' | grep -o 'state up' | wc -l)" = "$ups" ]; do
		[ $SECONDS -gt $end ] && die "node $n: not $ups peers up after $((20 * SLOW))s"
		sleep 0.1
	done
}

cl_restart() {
	local n=$1
	"$BIN" serve --config "$CL_DIR/node$n/dynvme.conf" >>"$CL_DIR/node$n/dynvme.log" 2>&1 </dev/null &
	local p=$!
	ALL_PIDS+=("$p")
	CL_EXTRA_PIDS+=("$p")
	local end=$((SECONDS + 30 * SLOW))
	until [ "$(timeout 2 redis-cli -p "$(cl_port "$n")" PING 2>/dev/null)" = PONG ]; do
		kill -0 "$p" 2>/dev/null || { tail -n 20 "$CL_DIR/node$n/dynvme.log"; die "node $n exited during restart"; }
		[ $SECONDS -gt $end ] && die "node $n not answering after restart"
		sleep 0.1
	done
	cl_wait_peers "$n"
}

cl_down() {
	[ -n "$CL_UP_PID" ] || return 0
	kill -TERM "$CL_UP_PID" 2>/dev/null
	local end=$((SECONDS + 40 * SLOW))
	while kill -0 "$CL_UP_PID" 2>/dev/null; do
		[ $SECONDS -gt $end ] && { fail "cluster up did not stop within $((40 * SLOW))s"; break; }
		sleep 0.1
	done
	wait "$CL_UP_PID" 2>/dev/null
	CL_UP_RC=$?
	CL_UP_PID=""
	local p
	for p in "${CL_EXTRA_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	CL_EXTRA_PIDS=()
	cl_check_logs
}

cl_check_logs() {
	local f
	for f in "$CL_DIR"/node*/dynvme.log; do
		[ -f "$f" ] && srv_check_log "$f"
	done
}

cl_need_tools() {
	need_tools "$@"
	"$BIN" cluster --help >/dev/null 2>&1 || skip "dynvme cluster is not available in $BIN"
}
