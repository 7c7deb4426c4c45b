#!/usr/bin/env bash
# bench/cluster.sh - a 3-node dynvme cluster (dynvme cluster up, N=3 R=2 W=2,
# every node on this machine) next to one dynvme node, the same
# redis-benchmark runs against each in one run. Never run by the tests.
#
#   bench/cluster.sh [quick|full]      (default: full)
#
# full:  redis-benchmark -t set / -t get -n 200000 -r 1000000 -d 100 -c 50 at
#        -P 1 and -P 16; then 1M keys of 100 B filled into each for RSS,
#        and GETs of N/10 of those keys (all present, each read about 10
#        times: "GET hit") at -P 1 and -P 16.
# quick: -n 50000; 200k keys for RSS, 5000 of them for the GET hits.
#
# Measured, per run:
# - throughput of SET and GET (-P 1, -P 16) through node 1 of the cluster
#   (it coordinates; the keys' replicas are all three nodes) and through the
#   single node, and their ratio (target >= 0.33: the cluster makes three
#   durable writes of every SET on the same disk and the same 2 CPUs);
# - p50 and p99 latency from redis-benchmark's CSV (target p99 <= 2 ms at -P 1);
# - internode bytes per request: frame bytes every node sent to its peers
#   during a run (DYN.STATUS members' bytes_out, summed), over the run's
#   requests;
# - CPU per request: the user + system time (/proc/PID/stat utime + stime)
#   the three cluster nodes used during a run, summed, over the run's
#   requests, and the single node's likewise: a figure that other jobs on
#   the machine skew far less than ops/s;
# - the same SET and GET runs "spread": three redis-benchmark processes at
#   once, one per cluster node (17 + 17 + 16 clients, N/3 requests each), as
#   clients of a Dynamo store spread over its coordinators; ops/s is all
#   their requests over the wall time from the first start to the last end,
#   p50 and p99 the worst of the three; compared with the single node's
#   run at the same total clients;
# - RSS of each cluster node and of the single node holding the same keys;
#   target: a cluster node within 1.25x of the single node;
# - version metadata bytes per key: (record bytes a cluster node wrote -
#   record bytes the single node wrote) / keys during the fill (INFO storage
#   user_bytes), which is the dvv meta plus the keyspace byte of the store key.
# The single node runs as `dynvme serve` with its defaults (value cache on,
# so its GETs of written keys come from RAM, and its RSS holds the cache,
# shown apart); cluster nodes run without the value cache (cluster mode
# turns it off) and with their read cache (rcache, default cache-bytes: the
# records of their own store in RAM, DYN.STATUS read_cache_bytes, shown
# apart likewise).
#
# Environment: DV_BENCH_DIR (default ./data), DYNVME (default build/dynvme),
# BENCH_LOGS (copy logs there), BENCH_N, BENCH_FILL_KEYS (small tries),
# BENCH_BASE (the base port, instead of one picked from 21000..21999; the
# cluster also takes BASE+1000.. and BASE+10000..: kept below the kernel's
# ephemeral range, 32768.., where redis-benchmark's own connections would
# now and then take an internode port before the cluster binds it).
set -uo pipefail

MODE=${1:-full}
case "$MODE" in
quick | full) ;;
-h | --help | help)
	sed -n '2,/^set -uo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
	exit 0
	;;
*)
	echo "usage: $0 [quick|full]" >&2
	exit 2
	;;
esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${DYNVME:-$ROOT/build/dynvme}
CLIENTS=50
if [ "$MODE" = quick ]; then N=50000 FILL=200000; else N=200000 FILL=1000000; fi
N=${BENCH_N:-$N} FILL=${BENCH_FILL_KEYS:-$FILL}
HIT_KEYS=$((N / 10 < FILL ? N / 10 : FILL)) # each read about 10 times

"$ROOT/scripts/deps.sh" bench || { echo "cluster.sh: scripts/deps.sh bench failed" >&2; exit 2; }
for t in redis-benchmark redis-cli python3 ss; do
	command -v "$t" >/dev/null 2>&1 || { echo "cluster.sh: $t not found (scripts/deps.sh bench)" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "cluster.sh: $BIN not found; build it with: make build/dynvme" >&2; exit 2; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
load=$(cut -d' ' -f1 /proc/loadavg)
awk -v l="$load" 'BEGIN { exit !(l > 1.5) }' && echo "cluster.sh: warning: load average $load; other jobs will skew the numbers" >&2

BENCH_DIR=${DV_BENCH_DIR:-./data}
mkdir -p "$BENCH_DIR" || exit 2
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
WORK=$(mktemp -d "$BENCH_DIR/cluster.XXXXXX") || exit 2
RESULTS=$WORK/results.txt
: >"$RESULTS"
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	if [ -n "${BENCH_LOGS:-}" ] && [ -d "$WORK" ]; then
		mkdir -p "$BENCH_LOGS" && cp "$WORK"/*.log "$WORK"/*.csv "$RESULTS" "$BENCH_LOGS"/ 2>/dev/null
		cp "$WORK"/c/node*/dynvme.log "$BENCH_LOGS"/ 2>/dev/null
	fi
	rm -rf "$WORK"
	return 0
}
trap cleanup EXIT
trap 'echo "cluster.sh: interrupted" >&2; exit 130' INT TERM
T0=$SECONDS
step() { printf '[%4ds] %s\n' $((SECONDS - T0)) "$*" >&2; }
put() { echo "$1=$2" >>"$RESULTS"; }
port_busy() { ss -Htan "( sport = :$1 )" 2>/dev/null | grep -q .; }
rss_mib() { awk '/^VmRSS:/ {printf "%d", $2 / 1024}' "/proc/$1/status" 2>/dev/null; }

# Ports: a base whose 3 RESP, 3 HTTP and 3 internode ports are free, and
# one more port for the single node.
BASE=${BENCH_BASE:-$((21000 + ($$ % 200) * 5))}
while port_busy $BASE || port_busy $((BASE + 1)) || port_busy $((BASE + 2)) || port_busy $((BASE + 3)) ||
	port_busy $((BASE + 1000)) || port_busy $((BASE + 10000)) || port_busy $((BASE + 10002)); do
	BASE=$((BASE + 5))
done
C1=$BASE SINGLE=$((BASE + 3))

step "cluster up --nodes 3 --base-port $BASE; one node on $SINGLE; data in $WORK"
"$BIN" cluster up --nodes 3 --base-port "$BASE" --data "$WORK/c" --size 4G >"$WORK/up.log" 2>&1 &
UP=$!
PIDS+=("$UP")
end=$((SECONDS + 120))
until grep -q "nodes ready" "$WORK/up.log"; do
	kill -0 "$UP" 2>/dev/null || { echo "cluster.sh: cluster up failed:" >&2; cat "$WORK/up.log" >&2; exit 1; }
	[ $SECONDS -gt $end ] && { echo "cluster.sh: cluster not ready" >&2; exit 1; }
	sleep 0.2
done
node_pid() { pgrep -f -- "serve --config $WORK/c/node$1/dynvme.conf\$" | head -n 1; }
"$BIN" serve --port "$SINGLE" --http-port 0 --data "$WORK/single.img" --size 4G --zone-bytes 16M --threads 1 \
	>"$WORK/single.log" 2>&1 &
SP=$!
PIDS+=("$SP")
until [ "$(timeout 2 redis-cli -p "$SINGLE" PING 2>/dev/null)" = PONG ]; do
	kill -0 "$SP" 2>/dev/null || { echo "cluster.sh: single node failed" >&2; tail -5 "$WORK/single.log" >&2; exit 1; }
	sleep 0.2
done

# Frame bytes sent to peers, summed over the three nodes.
internode_bytes() {
	local n total=0 b
	for n in 0 1 2; do
		b=$(timeout 10 redis-cli -p $((BASE + n)) DYN.STATUS | python3 -c '
import sys
lines = sys.stdin.read().split("\n")
print(sum(int(lines[i + 1]) for i, l in enumerate(lines[:-1]) if l == "bytes_out" and i < lines.index("keyspaces")))')
		total=$((total + b))
	done
	echo "$total"
}

# CPU ticks (utime + stime, every thread) of the given processes, summed.
cpu_ticks() {
	local p total=0 t
	for p in "$@"; do
		t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null)
		total=$((total + ${t:-0}))
	done
	echo "$total"
}
TICK_US=$((1000000 / $(getconf CLK_TCK)))
per_req_us() { awk -v t="$1" -v u="$TICK_US" -v n="$N" 'BEGIN { printf "%.1f", t * u / n }'; }

# bench NAME PORT TEST P: one redis-benchmark run; rps, p50, p99 into RESULTS.
# TEST "hit": GETs of the first HIT_KEYS of the fill's keys (every one
# present, each read about N / HIT_KEYS times) instead of -t. A key's first
# read after its write goes to the medium on a cluster node (rcache.h:
# verified); the repeats are what a cache is for.
bench() {
	local name=$1 port=$2 test=$3 p=$4 what=(-t "$3" -r 1000000 -d 100)
	[ "$test" = hit ] && what=(-r "$HIT_KEYS" GET "fill:__rand_int__")
	step "$name: redis-benchmark -n $N -c $CLIENTS -P $p ${what[*]}"
	timeout 1800 redis-benchmark -p "$port" -n "$N" -c "$CLIENTS" -P "$p" --csv "${what[@]}" \
		>"$WORK/$name.csv" 2>"$WORK/$name.err" || echo "cluster.sh: redis-benchmark failed: $(tail -2 "$WORK/$name.err")" >&2
	grep -v '^"test"' "$WORK/$name.csv" | tr -d '"' | while IFS=, read -r t rps avg min p50 p95 p99 max; do
		[ -n "$rps" ] || continue
		put "$name.rps" "$rps"
		put "$name.p50" "$p50"
		put "$name.p99" "$p99"
	done
}

NODE_PIDS=("$(node_pid 1)" "$(node_pid 2)" "$(node_pid 3)")
# run_pair T P: the single node's run, then the cluster's, with their CPU.
run_pair() {
	local T=$1 P=$2 t0 t1 b0 b1
	t0=$(cpu_ticks "$SP")
	bench "single.$T.P$P" "$SINGLE" "$T" "$P"
	t1=$(cpu_ticks "$SP")
	put "single.$T.P$P.cpu_us_per_req" "$(per_req_us $((t1 - t0)))"
	b0=$(internode_bytes)
	t0=$(cpu_ticks "${NODE_PIDS[@]}")
	bench "cluster.$T.P$P" "$C1" "$T" "$P"
	t1=$(cpu_ticks "${NODE_PIDS[@]}")
	b1=$(internode_bytes)
	put "cluster.$T.P$P.internode_bytes_per_req" "$(((b1 - b0) / N))"
	put "cluster.$T.P$P.cpu_us_per_req" "$(per_req_us $((t1 - t0)))"
}
for P in 1 16; do
	for T in set get; do
		run_pair "$T" "$P"
	done
done


step "fill $FILL keys x 100 B into each (redis-cli --pipe), for RSS and metadata bytes"
python3 - "$FILL" >"$WORK/fill.bin" <<'EOF'
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
val = b"v" * 100
chunk = []
for i in range(n):
    chunk.append(b"*3\r\n$3\r\nSET\r\n$17\r\nfill:%012d\r\n$100\r\n%s\r\n" % (i, val))  # redis-benchmark's __rand_int__
    if len(chunk) == 4096:
        out.write(b"".join(chunk))
        chunk = []
out.write(b"".join(chunk))
EOF
user_bytes() { timeout 10 redis-cli -p "$1" INFO storage | tr -d '\r' | awk -F: '/^user_bytes:/ {print $2}'; }
s0=$(user_bytes "$SINGLE")
c0=$(user_bytes "$C1")
t=$SECONDS
timeout 3600 redis-cli -p "$SINGLE" --pipe <"$WORK/fill.bin" >"$WORK/fill-single.log" 2>&1
put single.fill_secs $((SECONDS - t))
t=$SECONDS
timeout 3600 redis-cli -p "$C1" --pipe <"$WORK/fill.bin" >"$WORK/fill-cluster.log" 2>&1
put cluster.fill_secs $((SECONDS - t))
tail -n 1 "$WORK/fill-single.log" "$WORK/fill-cluster.log" >&2
s1=$(user_bytes "$SINGLE")
c1=$(user_bytes "$C1")
put single.record_bytes_per_key "$(((s1 - s0) / FILL))"
put cluster.record_bytes_per_key "$(((c1 - c0) / FILL))"
put meta_bytes_per_key "$(((c1 - c0 - (s1 - s0)) / FILL))"
sleep 2 # read repairs and replica writes of the fill's tail
put single.rss_mib "$(rss_mib "$SP")"
put single.cache_mib "$(timeout 10 redis-cli -p "$SINGLE" INFO storage | tr -d '\r' | awk -F: '/^cache_bytes:/ {printf "%d", $2 / 1048576}')"
for n in 1 2 3; do
	put "cluster.node$n.rss_mib" "$(rss_mib "$(node_pid $n)")"
	put "cluster.node$n.cache_mib" "$(timeout 10 redis-cli -p $((BASE + n - 1)) DYN.STATUS |
		awk 'prev == "read_cache_bytes" {printf "%d", $1 / 1048576} {prev = $1}')"
done
put single.keys "$(timeout 10 redis-cli -p "$SINGLE" DBSIZE)"
put cluster.node1.keys "$(timeout 10 redis-cli -p "$C1" DBSIZE)"

# GETs of keys every node holds: the single node's value cache against the
# cluster nodes' read caches (the -t get runs above mostly miss: -r 1000000).
for P in 1 16; do
	run_pair hit "$P"
done

# spread T P: the cluster's run of T at -P P through all three nodes at once.
# Last: its SETs write keys the single node never gets, which the RSS
# figures above would count.
spread() {
	local T=$1 P=$2 name="spread.$1.P$2" n t0 t1 b0 b1 w0 w1 pids=() c
	step "$name: 3 x redis-benchmark -n $((N / 3)) -P $P -t $T, one per node"
	b0=$(internode_bytes)
	t0=$(cpu_ticks "${NODE_PIDS[@]}")
	w0=$(date +%s%N)
	for n in 0 1 2; do
		c=$((n < 2 ? 17 : 16))
		timeout 1800 redis-benchmark -p $((BASE + n)) -n $((N / 3)) -c $c -P "$P" --csv -t "$T" -r 1000000 -d 100 \
			>"$WORK/$name.$n.csv" 2>"$WORK/$name.$n.err" &
		pids+=($!)
	done
	for n in 0 1 2; do
		wait "${pids[$n]}" || echo "cluster.sh: redis-benchmark failed: $(tail -2 "$WORK/$name.$n.err")" >&2
	done
	w1=$(date +%s%N)
	t1=$(cpu_ticks "${NODE_PIDS[@]}")
	b1=$(internode_bytes)
	put "$name.rps" "$(awk -v n=$((N / 3 * 3)) -v ns=$((w1 - w0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }')"
	cat "$WORK/$name".[012].csv | grep -v '^"test"' | tr -d '"' | awk -F, -v name="$name" '
		$2 != "" { if ($5 > p50) p50 = $5; if ($7 > p99) p99 = $7; k++ }
		END { if (k == 3) printf "%s.p50=%s\n%s.p99=%s\n", name, p50, name, p99 }' >>"$RESULTS"
	put "$name.internode_bytes_per_req" "$(((b1 - b0) / (N / 3 * 3)))"
	put "$name.cpu_us_per_req" "$(per_req_us $((t1 - t0)))"
}
for P in 1 16; do
	for T in set get; do
		spread "$T" "$P"
	done
done
errs=$(grep -il 'error\|timeout' "$WORK"/cluster.*.err "$WORK"/spread.*.err 2>/dev/null | wc -l)
put cluster.benchmark_error_files "$errs"
kill -TERM "$UP" "$SP"
wait "$UP" "$SP" 2>/dev/null

python3 - "$RESULTS" "$MODE" "$N" "$FILL" "$CLIENTS" <<'EOF'
import sys
res = {}
for line in open(sys.argv[1]):
    k, _, v = line.strip().partition("=")
    res[k] = v
mode, n, fill, clients = sys.argv[2:6]
def f(k):
    try:
        return float(res[k])
    except (KeyError, ValueError):
        return None
def lat(p):
    a, b = f(p + ".p50"), f(p + ".p99")
    return "%.3f/%.3f" % (a, b) if a is not None and b is not None else "-"
print()
print("3-node cluster (N=3 R=2 W=2, through node 1) vs one node, mode %s:" % mode)
print("redis-benchmark -n %s -r 1000000 -d 100 -c %s; latencies p50/p99 in ms" % (n, clients))
print("%-12s %13s %13s %7s %16s %16s %14s %16s" % ("test", "cluster ops/s", "single ops/s", "ratio", "cluster p50/p99",
                                                  "single p50/p99", "internode B/req", "CPU us/req c/s"))
for P, t in (("1", "set"), ("1", "get"), ("16", "set"), ("16", "get"), ("1", "hit"), ("16", "hit")):
    c, s = f("cluster.%s.P%s.rps" % (t, P)), f("single.%s.P%s.rps" % (t, P))
    print("%-12s %13s %13s %7s %16s %16s %14s %16s" % (
        "%s -P %s" % ("GET hit" if t == "hit" else t.upper(), P), "%.0f" % c if c else "-", "%.0f" % s if s else "-",
        "%.2f" % (c / s) if c and s else "-", lat("cluster.%s.P%s" % (t, P)), lat("single.%s.P%s" % (t, P)),
        res.get("cluster.%s.P%s.internode_bytes_per_req" % (t, P), "-"),
        "%s/%s" % (res.get("cluster.%s.P%s.cpu_us_per_req" % (t, P), "-"),
                   res.get("single.%s.P%s.cpu_us_per_req" % (t, P), "-"))))
print()
print("spread: three redis-benchmark at once, one per cluster node (17 + 17 + 16 clients), against the single node's run")
for P, t in (("1", "set"), ("1", "get"), ("16", "set"), ("16", "get")):
    c, s = f("spread.%s.P%s.rps" % (t, P)), f("single.%s.P%s.rps" % (t, P))
    print("%-12s %13s %13s %7s %16s %16s %14s %16s" % (
        "%s -P %s" % (t.upper(), P), "%.0f" % c if c else "-", "%.0f" % s if s else "-",
        "%.2f" % (c / s) if c and s else "-", lat("spread.%s.P%s" % (t, P)), lat("single.%s.P%s" % (t, P)),
        res.get("spread.%s.P%s.internode_bytes_per_req" % (t, P), "-"),
        "%s/%s" % (res.get("spread.%s.P%s.cpu_us_per_req" % (t, P), "-"),
                   res.get("single.%s.P%s.cpu_us_per_req" % (t, P), "-"))))
print()
print("%s keys x 100 B: fill %s s (cluster) / %s s (single); DBSIZE cluster node 1 %s, single %s" % (
    fill, res.get("cluster.fill_secs", "-"), res.get("single.fill_secs", "-"), res.get("cluster.node1.keys", "-"),
    res.get("single.keys", "-")))
rs, rc = f("single.rss_mib"), f("single.cache_mib")
rn = rs - rc if rs is not None and rc is not None else None
print("RSS single node: %s MiB, of which its value cache %s MiB" % (
    res.get("single.rss_mib", "-"), res.get("single.cache_mib", "-")))
for i in (1, 2, 3):
    r, c = f("cluster.node%d.rss_mib" % i), f("cluster.node%d.cache_mib" % i)
    print("RSS cluster node %d: %s MiB, of which its read cache %s MiB: %s x the single node's RSS; "
          "less the caches %s x" % (
        i, res.get("cluster.node%d.rss_mib" % i, "-"), res.get("cluster.node%d.cache_mib" % i, "-"),
        "%.2f" % (r / rs) if r and rs else "-", "%.2f" % ((r - c) / rn) if r and c is not None and rn else "-"))
if res.get("cluster.benchmark_error_files", "0") != "0":
    print("WARNING: %s cluster redis-benchmark runs reported errors or timeouts (BENCH_LOGS keeps them)" %
          res["cluster.benchmark_error_files"])
print("record bytes per key: cluster node %s, single %s; version metadata (dvv meta + keyspace byte) %s B per key" % (
    res.get("cluster.record_bytes_per_key", "-"), res.get("single.record_bytes_per_key", "-"),
    res.get("meta_bytes_per_key", "-")))
EOF
step "done"
