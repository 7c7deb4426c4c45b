# tests/server/common.bash - sourced by the tests/server/*.sh scripts (not a
# test itself: tests/run.sh runs *.sh only).
#
# Environment:
#   DV_BUILD       build directory holding dynvme (default build)
#   DV_TEST_TMP    scratch directory (default /tmp)
#   DV_TEST_QUICK  1 under sanitizer builds: smaller counts, longer waits
#   DV_SERVER      dynvme (default) or redis: run the same script against
#                  redis-server 7 to check the script itself; assertions on
#                  dynvme-only behaviour are skipped then (see dv_only).
#
# Each script: srv_start [dynvme serve flags...] starts one server on free
# loopback ports (SRV_PORT, SRV_HTTP) with data file SRV_DATA, srv_stop /
# srv_kill9 stop it; every server is killed at exit. check/fail count soft
# failures, finish exits 1 when there were any.
set -u

SRV_MODE=${DV_SERVER:-dynvme}
QUICK=${DV_TEST_QUICK:-0}
PY=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the source tree
TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$TESTS_DIR/../.." && pwd)
BUILD_DIR=${DV_BUILD:-build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
BIN=$BUILD_DIR/dynvme
TEST_NAME=$(basename "$0" .sh)
T0=$SECONDS

# Slower servers under sanitizers: scale waits.
SLOW=1
[ "$QUICK" = 1 ] && SLOW=4
case $BUILD_DIR in *asan* | *tsan*) SLOW=4 ;; esac

FAILS=0
ALL_PIDS=()
WORK=""
CLEANUP_HOOKS=()

log() { printf '[%3ds] %s\n' $((SECONDS - T0)) "$*"; }
fail() {
	FAILS=$((FAILS + 1))
	printf 'FAIL: %s\n' "$*"
}
die() {
	printf 'FAIL: %s\n' "$*"
	[ -n "${SRV_LOG:-}" ] && [ -f "$SRV_LOG" ] && { echo "--- server log (last 20 lines):"; tail -n 20 "$SRV_LOG"; }
	exit 1
}
skip() {
	echo "$*"
	exit 77
}
is_dynvme() { [ "$SRV_MODE" = dynvme ]; }
# dv_only: true when dynvme-only assertions apply.
dv_only() { is_dynvme; }

# check DESC EXPECTED ACTUAL
# (descriptions are cut at 300 characters: some hold a 1 KiB key)
short() { local s=$1; [ ${#s} -gt 300 ] && s="${s:0:150}...(${#s} chars)...${s: -60}"; printf '%s' "$s"; }
check() {
	if [ "$2" == "$3" ]; then
		return 0
	fi
	fail "$(short "$1")"
	printf '  expected: %s\n  got:      %s\n' "$(printf '%s' "$2" | head -c 600)" "$(printf '%s' "$3" | head -c 600)"
	return 1
}
# check_match DESC ERE ACTUAL
check_match() {
	if printf '%s' "$3" | grep -Eq -- "$2"; then
		return 0
	fi
	fail "$(short "$1")"
	printf '  expected to match: %s\n  got: %s\n' "$2" "$(printf '%s' "$3" | head -c 600)"
	return 1
}

finish() {
	if [ "$FAILS" -gt 0 ]; then
		echo "$TEST_NAME: $FAILS check(s) failed (server: $SRV_MODE)"
		exit 1
	fi
	echo "$TEST_NAME: all checks passed (server: $SRV_MODE, $((SECONDS - T0))s)"
	exit 0
}

# ---------------------------------------------------------------- requirements
need_tools() {
	command -v redis-cli >/dev/null 2>&1 || skip "redis-cli not installed (scripts/deps.sh test installs redis-tools)"
	[ -x "$PY" ] || skip "$PY not found"
	case " $* " in *" redis-py "*)
		"$PY" -c 'import redis' 2>/dev/null || skip "python3-redis not installed for $PY (scripts/deps.sh test)" ;;
	esac
	case " $* " in *" py-cryptography "*)
		"$PY" -c 'import cryptography.hazmat.primitives.ciphers.aead' 2>/dev/null ||
			skip "python3-cryptography not installed for $PY (scripts/deps.sh test)" ;;
	esac
	case $SRV_MODE in
	dynvme)
		[ -x "$BIN" ] || die "$BIN not found (build it first)"
		"$BIN" serve --help >/dev/null 2>&1 || skip "dynvme serve is not available in $BIN (serve --help fails)"
		;;
	redis)
		command -v redis-server >/dev/null 2>&1 || skip "redis-server not installed"
		;;
	*) die "DV_SERVER must be dynvme or redis, not $SRV_MODE" ;;
	esac
}

# ---------------------------------------------------------------- scratch
WORK=$(mktemp -d "${DV_TEST_TMP:-/tmp}/dv-$TEST_NAME.XXXXXX") || exit 1
SRV_DATA=$WORK/data.img
SRV_LOG=""
SRV_HOST=127.0.0.1 # where clients connect (cli, readiness PING)
SRV_PID=""
SRV_PORT=""
SRV_HTTP=""
SRV_RC=""
SRV_N=0

cleanup() {
	local p h
	pkill -TERM -P "$WATCHDOG" 2>/dev/null # its sleep
	kill -TERM "$WATCHDOG" 2>/dev/null
	for h in "${CLEANUP_HOOKS[@]}"; do eval "$h" >/dev/null 2>&1; done
	for p in "${ALL_PIDS[@]}"; do
		kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
	done
	for p in "${ALL_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'if [ -e "$WORK/.timelimit" ]; then echo "FAIL: $TEST_NAME: time limit of ${TIME_LIMIT}s reached"; else echo "FAIL: interrupted"; fi; exit 1' INT TERM
# Watchdog: a server that stops answering makes every client call wait for
# its timeout; the whole script stays bounded (tests/run.sh allows 900 s).
TIME_LIMIT=${DV_TEST_TIME_LIMIT:-$((SLOW > 1 ? 840 : 420))}
(
	exec >/dev/null 2>&1
	sp=""
	trap '[ -n "$sp" ] && kill $sp; exit 0' TERM
	sleep "$TIME_LIMIT" &
	sp=$!
	wait $sp && touch "$WORK/.timelimit" && kill -TERM $$
) &
WATCHDOG=$!

# ---------------------------------------------------------------- ports
# Ports from 20000-29999 (below the ephemeral range), starting at an offset
# derived from $$ (or at DV_PORT_BASE), each checked to be unused by any socket. Under
# tests/run.sh with DV_TEST_JOBS > 1, job slot DV_TEST_SLOT of DV_TEST_SLOTS
# takes only its share of 24000-29999 (above the clusters' 21000-23999,
# tests/cluster/cluster.bash), so the tests running at once never pick the
# same port (the check and the bind are not atomic).
PORT_LO=20000 PORT_HI=29999
if [ -n "${DV_TEST_SLOT:-}" ] && [ "${DV_TEST_SLOTS:-1}" -gt 1 ]; then
	PORT_LO=$((24000 + DV_TEST_SLOT * (6000 / DV_TEST_SLOTS)))
	PORT_HI=$((PORT_LO + 6000 / DV_TEST_SLOTS - 1))
fi
PORT_NEXT=${DV_PORT_BASE:-$((PORT_LO + ($$ * 10) % (PORT_HI - PORT_LO + 1)))} # DV_PORT_BASE: where to start looking
port_busy() { ss -Htan "( sport = :$1 )" 2>/dev/null | grep -q .; }
# alloc_port VAR [COUNT]: the first of COUNT (default 1) consecutive free ports.
alloc_port() {
	local _ap=$PORT_NEXT _an=0 _n=${2:-1} _k
	while :; do
		[ $((_ap + _n - 1)) -gt $PORT_HI ] && _ap=$PORT_LO
		for ((_k = 0; _k < _n; _k++)); do port_busy $((_ap + _k)) && break; done
		[ "$_k" -eq "$_n" ] && break
		_ap=$((_ap + _k + 1))
		_an=$((_an + 1))
		[ $_an -gt 10000 ] && die "no free port"
	done
	PORT_NEXT=$((_ap + _n))
	[ $PORT_NEXT -gt $PORT_HI ] && PORT_NEXT=$PORT_LO
	printf -v "$1" '%s' "$_ap"
}

# ---------------------------------------------------------------- servers
# srv_start [dynvme serve flags...]: starts a server on SRV_DATA; the ports
# are new each time (SRV_PORT, SRV_HTTP); --bind defaults to 127.0.0.1.
# SRV_WAIT_PING=0 skips the readiness PING (e.g. protected mode tests do it
# themselves); SRV_REDIS_AOF=1 runs redis-server with appendfsync always so
# that its acknowledged writes survive kill -9 as dynvme's must.
srv_start() {
	alloc_port SRV_PORT
	alloc_port SRV_HTTP
	SRV_N=$((SRV_N + 1))
	SRV_LOG=$WORK/server.$SRV_N.log
	SRV_RC=""
	local cmd=()
	if is_dynvme; then
		cmd=("$BIN" serve --bind 127.0.0.1 --port "$SRV_PORT" --http-port "$SRV_HTTP"
			--data "$SRV_DATA" --size "${SRV_SIZE:-256M}" --zone-bytes "${SRV_ZONE:-4M}" "$@")
	else
		local conf="" args=() a
		while [ $# -gt 0 ]; do
			a=$1
			shift
			case $a in
			--config) conf=$1; shift ;;
			--bind | --requirepass | --protected-mode | --maxclients | --timeout | --port)
				args+=("$a" "$1"); shift ;;
			--http-port | --data | --size | --zone-bytes | --threads | --request-timeout | \
				--max-request-bytes | --max-reply-bytes | --log-level) shift ;;
			*) die "srv_start: unknown flag $a" ;;
			esac
		done
		mkdir -p "$SRV_DATA.redis"
		cmd=(redis-server)
		[ -n "$conf" ] && cmd+=("$conf")
		cmd+=(--port "$SRV_PORT" --bind 127.0.0.1 --save '' --dir "$SRV_DATA.redis" --daemonize no --logfile '')
		if [ "${SRV_REDIS_AOF:-0}" = 1 ]; then
			cmd+=(--appendonly yes --appendfsync always)
		else
			cmd+=(--appendonly no)
		fi
		cmd+=("${args[@]}")
	fi
	echo "+ ${cmd[*]}" >"$SRV_LOG"
	"${cmd[@]}" >>"$SRV_LOG" 2>&1 </dev/null &
	SRV_PID=$!
	ALL_PIDS+=("$SRV_PID")
	[ "${SRV_WAIT_PING:-1}" = 1 ] || return 0
	srv_wait_ready
}

# srv_wait_ready: until the server answers on SRV_PORT (any reply, even
# NOAUTH) and, for dynvme, logged msg="ready".
srv_wait_ready() {
	local end=$((SECONDS + 30 * SLOW)) out
	while :; do
		kill -0 "$SRV_PID" 2>/dev/null || {
			wait "$SRV_PID" 2>/dev/null
			die "server exited during start (rc=$?)"
		}
		out=$(timeout 2 redis-cli -h "$SRV_HOST" -p "$SRV_PORT" PING 2>/dev/null)
		case $out in "" | LOADING*) ;; *) break ;; esac
		[ $SECONDS -gt $end ] && die "server not answering PING on port $SRV_PORT after $((30 * SLOW))s"
		sleep 0.1
	done
	if is_dynvme; then
		local n=0
		until grep -q 'msg="ready"' "$SRV_LOG"; do
			n=$((n + 1))
			[ $n -gt 20 ] && { fail "no msg=\"ready\" line in the server log"; break; }
			sleep 0.1
		done
	fi
	return 0
}

# Sanitizer reports in the server log are failures.
srv_check_log() {
	local f=${1:-$SRV_LOG}
	if grep -Eq 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|WARNING: ThreadSanitizer|runtime error:' "$f" 2>/dev/null; then
		fail "sanitizer report in server log $(basename "$f")"
		grep -E -A12 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|WARNING: ThreadSanitizer|runtime error:' "$f" | head -40
	fi
}

# srv_stop [SIG]: SIGTERM (or SIG), wait for exit (SRV_RC = exit code,
# SRV_STOP_SECS = how long it took); SIGKILL after the grace time (a failure).
srv_stop() {
	[ -n "$SRV_PID" ] || return 0
	local sig=${1:-TERM} t0=$SECONDS
	kill -"$sig" "$SRV_PID" 2>/dev/null
	local end=$((SECONDS + 20 * SLOW))
	while kill -0 "$SRV_PID" 2>/dev/null; do
		if [ $SECONDS -gt $end ]; then
			fail "server did not exit within $((20 * SLOW))s of SIG$sig"
			kill -KILL "$SRV_PID" 2>/dev/null
			break
		fi
		sleep 0.1
	done
	wait "$SRV_PID" 2>/dev/null
	SRV_RC=$?
	SRV_STOP_SECS=$((SECONDS - t0))
	SRV_PID=""
	srv_check_log
}

srv_kill9() {
	[ -n "$SRV_PID" ] || return 0
	kill -KILL "$SRV_PID" 2>/dev/null
	wait "$SRV_PID" 2>/dev/null
	SRV_PID=""
	srv_check_log
}

srv_alive() { [ -n "$SRV_PID" ] && kill -0 "$SRV_PID" 2>/dev/null; }

# ---------------------------------------------------------------- clients
CLI_AUTH=()
# cli ARGS...: one redis-cli call (one connection), --no-raw formatting.
cli() {
	timeout 10 redis-cli --no-raw -h "$SRV_HOST" -p "$SRV_PORT" "${CLI_AUTH[@]}" "$@" 2>&1
}
# cli_stdin: commands on stdin, one connection, one reply block each.
cli_stdin() {
	timeout 20 redis-cli --no-raw -h "$SRV_HOST" -p "$SRV_PORT" "${CLI_AUTH[@]}" 2>&1
}
# t EXPECTED ARGS...: one command through redis-cli, exact reply.
t() {
	local exp=$1
	shift
	local got
	got=$(cli "$@")
	check "$* -> $exp" "$exp" "$got"
}
# ping_ok: a fresh client gets PONG.
ping_ok() {
	local got
	got=$(cli PING)
	check "${1:-fresh client} PING" "PONG" "$got"
}
# RSS of a pid in KiB.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
