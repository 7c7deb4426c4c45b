#!/usr/bin/env bash
# bench/server.sh - dynvme serve next to redis-server, the same redis-benchmark
# runs against each, plus GETs over a data set the page cache does not hold
# next to fio's 4 KiB random read ceiling. Never run by the tests.
#
#   bench/server.sh [quick|full|pairs]   (default: full)
#
# full:  redis-benchmark -t set,get -n 1000000 -r 1000000 -d 100 -c 50, at -P 1
#        and -P 16; cold set 4M keys x 1 KiB (~4.5 GB), 1M random GETs;
#        fio 30 s.                                           (~10-20 minutes)
# quick: -n 200000; cold set 1M keys x 1 KiB, 200k GETs; fio 10 s. (~3 min)
# pairs: only the pipeline case below (BENCH_PAIRS, default 100000). (~10 s)
#
# Pipelines on one connection (every mode): redis-cli --pipe sends 2 x
# PAIRS commands and reads their replies, first 2 x PAIRS SETs of distinct
# keys (pset:i), then PAIRS x (SET pair:i v; GET pair:i), each GET reading
# the write just before it: the ops/s of each, side by side on one server,
# and their ratio (read-your-writes must not serialise the pipeline: the
# target is >= 0.5). PAIRS: 500000 full, 200000 quick.
#
# Environment:
#   DV_BENCH_DIR  directory of the data files (default ./data); a private
#                 subdirectory is made there and removed at exit
#   DYNVME        the binary (default build/dynvme next to this script)
#   BENCH_LOGS    if set, server logs, redis-benchmark and fio output are
#                 copied there before cleanup
#   THREADS       dynvme serve --threads (default: the server's default)
#   BENCH_N, BENCH_COLD_KEYS, BENCH_COLD_GETS, BENCH_FIO_SECS, BENCH_PAIRS
#                 override the mode's counts (to try the script on small runs)
#
# What is compared:
#   dynvme   acknowledges a write once it is durable on the data file (group
#            commit, RWF_DSYNC); a GET that misses the value cache is an
#            O_DIRECT read of the device.
#   redis    redis-server 7, appendonly yes, appendfsync everysec (writes
#            durable within about a second, not at acknowledgement), data in
#            RAM; its dir is a private temp dir next to dynvme's data file.
#            dynvme runs with its default value cache (--cache-bytes).
#   cold GET dynvme only, value cache off (--cache-bytes 0): SETs of COLD_KEYS keys of 1 KiB (key:%012d, the
#            keys redis-benchmark -r draws) through redis-cli --pipe, then
#            redis-benchmark -t get -r COLD_KEYS -d 1024 -c 10 -P 5 (50 GETs in
#            flight: redis-benchmark is one thread, and at -c 50 -P 1 it tops
#            out near 50k requests/s on this machine, below the device; 10
#            connections of 5 pipelined GETs keep the same 50 reads in flight
#            for less client CPU), next to fio randread bs=4k direct=1 ioengine=io_uring
#            iodepth=50 on a file of the same size in the same directory:
#            the device's random read ceiling at the same queue depth.
set -uo pipefail

MODE=${1:-full}
case "$MODE" in
quick | full | pairs) ;;
-h | --help | help)
	sed -n '2,/^set -uo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
	exit 0
	;;
*)
	echo "usage: $0 [quick|full|pairs]" >&2
	exit 2
	;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${DYNVME:-$ROOT/build/dynvme}
CLIENTS=50
if [ "$MODE" = quick ]; then
	N=200000 COLD_KEYS=1000000 COLD_GETS=200000 FIO_SECS=10 PAIRS=200000
else
	N=1000000 COLD_KEYS=4000000 COLD_GETS=1000000 FIO_SECS=30 PAIRS=500000
fi
[ "$MODE" = pairs ] && PAIRS=100000
KEYSPACE=1000000
# Smaller runs to try the script itself (not documented figures):
N=${BENCH_N:-$N} COLD_KEYS=${BENCH_COLD_KEYS:-$COLD_KEYS} COLD_GETS=${BENCH_COLD_GETS:-$COLD_GETS}
FIO_SECS=${BENCH_FIO_SECS:-$FIO_SECS} PAIRS=${BENCH_PAIRS:-$PAIRS}

# ---------------------------------------------------------------- tools
"$ROOT/scripts/deps.sh" bench || { echo "server.sh: scripts/deps.sh bench failed" >&2; exit 2; }
for t in redis-server redis-benchmark redis-cli fio python3 ss; do
	command -v "$t" >/dev/null 2>&1 || { echo "server.sh: $t not found (scripts/deps.sh bench)" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "server.sh: $BIN not found; build it with: make build/dynvme" >&2; exit 2; }
"$BIN" serve --help >/dev/null 2>&1 || { echo "server.sh: $BIN has no working 'serve'" >&2; exit 2; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
load=$(cut -d' ' -f1 /proc/loadavg)
awk -v l="$load" 'BEGIN { exit !(l > 1.5) }' && echo "server.sh: warning: load average $load; other jobs will skew the numbers" >&2

# ---------------------------------------------------------------- scratch
BENCH_DIR=${DV_BENCH_DIR:-./data}
made_bench_dir=0
if [ ! -d "$BENCH_DIR" ]; then
	mkdir -p "$BENCH_DIR" || exit 2
	made_bench_dir=1
fi
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
WORK=$(mktemp -d "$BENCH_DIR/server.XXXXXX") || exit 2
RESULTS=$WORK/results.txt
: >"$RESULTS"
PIDS=()

cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	if [ -n "${BENCH_LOGS:-}" ] && [ -d "$WORK" ]; then
		mkdir -p "$BENCH_LOGS" && cp "$WORK"/*.log "$WORK"/*.csv "$WORK"/*.json "$RESULTS" "$BENCH_LOGS"/ 2>/dev/null
	fi
	rm -rf "$WORK"
	[ "$made_bench_dir" = 1 ] && rmdir "$BENCH_DIR" 2>/dev/null
	return 0
}
trap cleanup EXIT
trap 'echo "server.sh: interrupted" >&2; exit 130' INT TERM

T0=$SECONDS
step() { printf '[%4ds] %s\n' $((SECONDS - T0)) "$*" >&2; }
put() { echo "$1=$2" >>"$RESULTS"; }

PORT_NEXT=$((21000 + ($$ % 500) * 10))
port_busy() { ss -Htan "( sport = :$1 )" 2>/dev/null | grep -q .; }
alloc_port() {
	local p=$PORT_NEXT
	while port_busy "$p"; do p=$((p + 1)); done
	PORT_NEXT=$((p + 1))
	printf -v "$1" '%s' "$p"
}

# wait_ping PORT PID NAME
wait_ping() {
	local end=$((SECONDS + 120))
	until [ "$(timeout 2 redis-cli -p "$1" PING 2>/dev/null)" = PONG ]; do
		kill -0 "$2" 2>/dev/null || { echo "server.sh: $3 exited at start:" >&2; tail -5 "$WORK/$3.log" >&2; exit 1; }
		[ $SECONDS -gt $end ] && { echo "server.sh: $3 not answering after 120 s" >&2; exit 1; }
		sleep 0.2
	done
}

# start_dynvme NAME DATAFILE SIZE [FLAGS...]: sets DV_PORT, DV_PID
start_dynvme() {
	local name=$1 data=$2 size=$3
	shift 3
	alloc_port DV_PORT
	local thr=()
	[ -n "${THREADS:-}" ] && thr=(--threads "$THREADS")
	"$BIN" serve --port "$DV_PORT" --http-port 0 --data "$data" --size "$size" "${thr[@]}" "$@" >"$WORK/$name.log" 2>&1 &
	DV_PID=$!
	PIDS+=("$DV_PID")
	wait_ping "$DV_PORT" "$DV_PID" "$name"
}
# stop PID NAME
stop() {
	kill -TERM "$1" 2>/dev/null
	local end=$((SECONDS + 60))
	while kill -0 "$1" 2>/dev/null; do
		if [ $SECONDS -gt $end ]; then
			echo "server.sh: $2 did not exit 60 s after SIGTERM; killed" >&2
			kill -KILL "$1" 2>/dev/null
			break
		fi
		sleep 0.2
	done
	wait "$1" 2>/dev/null
}
rss_mib() { awk '/^VmRSS:/ {printf "%d", $2 / 1024}' "/proc/$1/status" 2>/dev/null; }

# bench NAME PORT ARGS...: one redis-benchmark run, its CSV rows into
# RESULTS as NAME.TEST.rps / .p50 / .p99 (TEST = SET or GET).
bench() {
	local name=$1 port=$2
	shift 2
	step "$name: redis-benchmark $*"
	if ! timeout 1800 redis-benchmark -p "$port" "$@" --csv >"$WORK/$name.csv" 2>"$WORK/$name.err"; then
		echo "server.sh: redis-benchmark failed for $name: $(tail -3 "$WORK/$name.err")" >&2
	fi
	grep -v '^"test"' "$WORK/$name.csv" | tr -d '"' | while IFS=, read -r test rps avg min p50 p95 p99 max; do
		[ -n "$rps" ] || continue
		put "$name.$test.rps" "$rps"
		put "$name.$test.p50" "$p50"
		put "$name.$test.p99" "$p99"
	done
	[ -s "$WORK/$name.err" ] && grep -v -i 'warning' "$WORK/$name.err" | head -3 >&2
	return 0
}

# ---------------------------------------------------------------- pipelines: SET vs SET+GET pairs
# pipe_run NAME PORT FILE COMMANDS: redis-cli --pipe of FILE, ops/s into
# RESULTS as NAME.rps (a run with errors or missing replies counts none).
pipe_run() {
	local name=$1 port=$2 file=$3 n=$4 t0 t1
	step "$name: redis-cli --pipe, $n commands on one connection"
	t0=$(date +%s%N)
	timeout 600 redis-cli -p "$port" --pipe <"$file" >"$WORK/$name.log" 2>&1
	t1=$(date +%s%N)
	if grep -q "errors: 0, replies: $n\$" "$WORK/$name.log"; then
		put "$name.rps" "$(awk -v n="$n" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }')"
	else
		echo "server.sh: $name: $(tail -1 "$WORK/$name.log")" >&2
	fi
}
pipelines() {
	python3 - "$PAIRS" "$WORK/sets.resp" "$WORK/pairs.resp" <<'EOF'
import sys
n = int(sys.argv[1])
def cmd(*a):
    return b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in a)
with open(sys.argv[2], "wb") as f:
    for i in range(2 * n):
        f.write(cmd(b"SET", b"pset:%d" % i, b"v%d" % i))
with open(sys.argv[3], "wb") as f:
    for i in range(n):
        f.write(cmd(b"SET", b"pair:%d" % i, b"v%d" % i) + cmd(b"GET", b"pair:%d" % i))
EOF
	start_dynvme dynvme-pipe "$WORK/pipe.img" 1G
	pipe_run pipe.set "$DV_PORT" "$WORK/sets.resp" $((2 * PAIRS))
	pipe_run pipe.pairs "$DV_PORT" "$WORK/pairs.resp" $((2 * PAIRS))
	stop "$DV_PID" dynvme-pipe
	rm -f "$WORK/pipe.img" "$WORK/sets.resp" "$WORK/pairs.resp"
}
pipelines_table() {
	python3 - "$RESULTS" "$PAIRS" <<'EOF'
import sys
res = dict(l.strip().partition("=")[::2] for l in open(sys.argv[1]) if "=" in l)
s, p = float(res.get("pipe.set.rps", 0)), float(res.get("pipe.pairs.rps", 0))
print()
print("one connection, redis-cli --pipe, %d commands each:" % (2 * int(sys.argv[2])))
print("%-40s %12s" % ("", "ops/s"))
print("%-40s %12.0f" % ("SET of distinct keys", s))
print("%-40s %12.0f" % ("SET k; GET k pairs of distinct keys", p))
print("pairs / SET: %s (target >= 0.5)" % ("%.2f" % (p / s) if s and p else "-"))
EOF
}
if [ "$MODE" = pairs ]; then
	pipelines
	pipelines_table
	step "done"
	exit 0
fi

# ---------------------------------------------------------------- hot: dynvme vs redis
step "mode $MODE: -n $N -r $KEYSPACE -d 100 -c $CLIENTS; data in $WORK"
start_dynvme dynvme "$WORK/dynvme.img" 4G
mkdir -p "$WORK/redis"
alloc_port RD_PORT
redis-server --port "$RD_PORT" --bind 127.0.0.1 --dir "$WORK/redis" --appendonly yes --appendfsync everysec \
	--save '' --daemonize no --logfile '' >"$WORK/redis.log" 2>&1 &
RD_PID=$!
PIDS+=("$RD_PID")
wait_ping "$RD_PORT" "$RD_PID" redis

for P in 1 16; do
	bench "dynvme.P$P" "$DV_PORT" -t set,get -n "$N" -r "$KEYSPACE" -d 100 -c "$CLIENTS" -P "$P"
	bench "redis.P$P" "$RD_PORT" -t set,get -n "$N" -r "$KEYSPACE" -d 100 -c "$CLIENTS" -P "$P"
done
put dynvme.rss_mib "$(rss_mib "$DV_PID")"
put redis.rss_mib "$(rss_mib "$RD_PID")"
put dynvme.keys "$(timeout 10 redis-cli -p "$DV_PORT" DBSIZE)"
put redis.keys "$(timeout 10 redis-cli -p "$RD_PORT" DBSIZE)"
stop "$RD_PID" redis
stop "$DV_PID" dynvme
rm -rf "$WORK/redis" "$WORK/dynvme.img"

# ---------------------------------------------------------------- cold: GET over a large data set
COLD_BYTES=$((COLD_KEYS * 1024))
step "cold: fill $COLD_KEYS keys x 1 KiB through redis-cli --pipe"
# The value cache (serve --cache-bytes) is turned off here: this run measures
# GETs that read the device.
COLD_FLAGS=()
"$BIN" serve --help 2>&1 | grep -q -- --cache-bytes && COLD_FLAGS=(--cache-bytes 0)
start_dynvme dynvme-cold "$WORK/cold.img" $((COLD_BYTES * 2 + 1024 * 1024 * 1024)) "${COLD_FLAGS[@]}"
t=$SECONDS
python3 - "$COLD_KEYS" <<'EOF' | timeout 3600 redis-cli -p "$DV_PORT" --pipe >"$WORK/fill.log" 2>&1
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
val = b"v" * 1024
head = b"*3\r\n$3\r\nSET\r\n$16\r\n"
tail = b"\r\n$1024\r\n" + val + b"\r\n"
chunk = []
for i in range(n):
    chunk.append(head + b"key:%012d" % i + tail)
    if len(chunk) == 1024:
        out.write(b"".join(chunk))
        chunk = []
out.write(b"".join(chunk))
EOF
fill_secs=$((SECONDS - t))
tail -n 1 "$WORK/fill.log" >&2
put cold.fill_secs "$fill_secs"
put cold.keys "$(timeout 10 redis-cli -p "$DV_PORT" DBSIZE)"
timeout 10 redis-cli -p "$DV_PORT" INFO storage >"$WORK/storage-before.log" 2>&1
bench "dynvme.cold" "$DV_PORT" -t get -n "$COLD_GETS" -r "$COLD_KEYS" -d 1024 -c $((CLIENTS / 5)) -P 5
timeout 10 redis-cli -p "$DV_PORT" INFO storage >"$WORK/storage-after.log" 2>&1
put cold.rss_mib "$(rss_mib "$DV_PID")"
stop "$DV_PID" dynvme-cold
rm -f "$WORK/cold.img"

step "fio: 4 KiB randread, io_uring, O_DIRECT, iodepth $CLIENTS, $FIO_SECS s on a $((COLD_BYTES >> 20)) MiB file"
fio --name=lay --filename="$WORK/fio.dat" --size="$COLD_BYTES" --rw=write --bs=1M --direct=1 --ioengine=io_uring \
	--iodepth=4 --output-format=json >"$WORK/fio-lay.json" 2>"$WORK/fio-lay.log" ||
	echo "server.sh: fio layout failed: $(tail -2 "$WORK/fio-lay.log")" >&2
fio --name=randread --filename="$WORK/fio.dat" --size="$COLD_BYTES" --rw=randread --bs=4k --direct=1 \
	--ioengine=io_uring --iodepth="$CLIENTS" --time_based --runtime="$FIO_SECS" --norandommap --randrepeat=0 \
	--output-format=json >"$WORK/fio-randread.json" 2>"$WORK/fio-randread.log" ||
	echo "server.sh: fio randread failed: $(tail -2 "$WORK/fio-randread.log")" >&2
python3 - "$WORK/fio-randread.json" >>"$RESULTS" <<'EOF'
import json, sys
try:
    r = json.load(open(sys.argv[1]))["jobs"][0]["read"]
except Exception:
    sys.exit(0)
print("fio.iops=%.0f" % r["iops"])
p = r.get("clat_ns", {}).get("percentile", {})
for k, n in (("50.000000", "p50"), ("99.000000", "p99")):
    if k in p:
        print("fio.%s=%.3f" % (n, p[k] / 1e6))
EOF
rm -f "$WORK/fio.dat"

pipelines

# ---------------------------------------------------------------- table
python3 - "$RESULTS" "$MODE" "$N" "$COLD_KEYS" "$COLD_GETS" "$CLIENTS" <<'EOF'
import sys
res = {}
for line in open(sys.argv[1]):
    k, _, v = line.strip().partition("=")
    res[k] = v
mode, n, cold_keys, cold_gets, clients = sys.argv[2:7]

def f(k):
    try:
        return float(res[k])
    except (KeyError, ValueError):
        return None

def lat(prefix):
    a, b = f(prefix + ".p50"), f(prefix + ".p99")
    return "%.3f/%.3f" % (a, b) if a is not None and b is not None else "-"

def ops(v):
    return "%.0f" % v if v is not None else "-"

print()
print("dynvme serve vs redis-server 7 (appendonly yes, appendfsync everysec), mode %s:" % mode)
print("redis-benchmark -n %s -r 1000000 -d 100 -c %s; latencies p50/p99 in ms" % (n, clients))
print("%-16s %12s %12s %7s %16s %16s" % ("test", "dynvme ops/s", "redis ops/s", "ratio", "dynvme p50/p99", "redis p50/p99"))
for P in ("1", "16"):
    for t in ("SET", "GET"):
        d, r = f("dynvme.P%s.%s.rps" % (P, t)), f("redis.P%s.%s.rps" % (P, t))
        ratio = "%.2f" % (d / r) if d and r else "-"
        print("%-16s %12s %12s %7s %16s %16s" % ("%s -P %s" % (t, P), ops(d), ops(r), ratio,
                                                 lat("dynvme.P%s.%s" % (P, t)), lat("redis.P%s.%s" % (P, t))))
print("RSS after these runs: dynvme %s MiB, redis %s MiB; keys: dynvme %s, redis %s" % (
    res.get("dynvme.rss_mib", "-"), res.get("redis.rss_mib", "-"), res.get("dynvme.keys", "-"), res.get("redis.keys", "-")))
print()
print("GET over %s keys x 1 KiB (filled in %s s; value cache off: every GET an O_DIRECT read), %s GETs, %s in flight:" % (
    res.get("cold.keys", cold_keys), res.get("cold.fill_secs", "-"), cold_gets, clients))
d, fi = f("dynvme.cold.GET.rps"), f("fio.iops")
print("%-34s %12s %16s" % ("", "ops/s", "p50/p99 ms"))
print("%-34s %12s %16s" % ("dynvme GET -c %d -P 5" % (int(clients) // 5), ops(d), lat("dynvme.cold.GET")))
print("%-34s %12s %16s" % ("fio 4k randread io_uring qd %s" % clients, ops(fi), lat("fio")))
print("dynvme cold GET / fio randread: %s" % ("%.2f" % (d / fi) if d and fi else "-"))
EOF
pipelines_table
step "done"
