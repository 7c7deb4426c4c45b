#!/usr/bin/env bash
# The plain commands of the node server through a 3-node cluster: the case
# list of tests/server/commands.sh (run_cases, taken from that file so the
# two never drift apart), each command through node 1 and, for reads, again
# through nodes 2 and 3; commands.py (CLIENT, HELLO, QUIT, COMMAND, exact
# reply bytes, a large raw pipeline) against node 2; the case list again as
# one pipelined write on a fresh cluster; redis-cli --pipe; expiry over
# time. Cluster-mode differences, by design (docs/ARCHITECTURE.md, "Cluster:
# server driver"): DBSIZE counts the causal tombstones of deleted keys, so
# its exact count is not compared; SELECT 1 is a keyspace (tested in
# basic.sh); keys are at most 1023 bytes.
. "$(dirname "$0")/cluster.bash"
cl_need_tools

CASE_EXP=() CASE_RE=() CASE_CMD=()
NODE=1
is_read() { case $1 in GET | get | GeT | MGET | EXISTS | TTL | PTTL | TYPE) return 0 ;; esac; return 1; }
# Commands whose cluster answer differs by design are skipped or given the
# cluster's answer.
tp() {
	local exp=$1
	shift
	[ "$*" = DBSIZE ] && return 0
	[ "$*" = "CONFIG GET maxclients" ] && exp=$'1) "maxclients"\n2) "10000"'
	CASE_EXP+=("$exp") CASE_RE+=(0) CASE_CMD+=("$(printf '%q ' "$@")")
	ct "$NODE" "$exp" "$@"
	if is_read "$1"; then
		ct 2 "$exp" "$@"
		ct 3 "$exp" "$@"
	fi
}
tpr() {
	local re=$1
	shift
	CASE_EXP+=("$re") CASE_RE+=(1) CASE_CMD+=("$(printf '%q ' "$@")")
	check_match "node $NODE: $* -> /$re/" "$re" "$(ccli "$NODE" "$@")"
	is_read "$1" && check_match "node 2: $* -> /$re/" "$re" "$(ccli 2 "$@")"
	return 0
}
E_ARGS() { echo "(error) ERR wrong number of arguments for '$1' command"; }
E_INT="(error) ERR value is not an integer or out of range"
E_SYNTAX="(error) ERR syntax error"
E_EXPIRE="(error) ERR invalid expire time in 'set' command"
TTL100='^\(integer\) (8[0-9]|9[0-9]|100)$'
TTL100W='^\(integer\) ([1-9][0-9]|100)$'
cases=$(sed -n '/^run_cases() {$/,/^}$/p' "$ROOT/tests/server/commands.sh")
[ -n "$cases" ] || die "run_cases not found in tests/server/commands.sh"
eval "$cases"

log "cluster up --nodes 3"
cl_up 3
for n in 1 2 3; do cl_wait_peers $n; done
log "the commands.sh case list through node 1 (reads also through nodes 2 and 3)"
run_cases
log "${#CASE_CMD[@]} cases"

log "commands.py against node 2"
"$PY" "$ROOT/tests/server/commands.py" "$(cl_port 2)" dynvme || fail "commands.py (see above)"

log "expiry over time"
ct 1 OK SET exp1 v EX 2
ct 2 OK SET exp2 v PX 1500
ct 3 '(integer) 1' PERSIST exp1
ct 1 OK SET exp0 v EX 1
sleep 2.2
ct 2 '(nil)' GET exp0
ct 3 '(nil)' GET exp2
ct 1 '"v"' GET exp1
ct 2 '(integer) -2' TTL exp2
ct 3 '(integer) -1' TTL exp1

log "redis-cli --pipe through node 3"
N=2000
[ "$QUICK" = 1 ] && N=500
"$PY" - "$N" >"$WORK/pipe.bin" <<'EOF'
import sys
n = int(sys.argv[1])
def enc(*a):
    b = b"*%d\r\n" % len(a)
    for x in a:
        x = x.encode()
        b += b"$%d\r\n%s\r\n" % (len(x), x)
    return b
out = sys.stdout.buffer
for i in range(n):
    out.write(enc("SET", "pk:%d" % i, "val-%d" % i))
for i in range(n):
    out.write(enc("GET", "pk:%d" % i))
EOF
got=$(timeout 120 redis-cli -h 127.0.0.1 -p "$(cl_port 3)" --pipe <"$WORK/pipe.bin" 2>&1 | tail -n 1)
check "redis-cli --pipe counts" "errors: 0, replies: $((2 * N))" "$got"
ct 1 "\"val-$((N - 1))\"" GET "pk:$((N - 1))"
ct 2 "(integer) 3" EXISTS pk:0 pk:1 "pk:$((N - 1))"

log "pipelined replay of ${#CASE_CMD[@]} commands on a fresh cluster, one write to node 2"
cl_down
rm -rf "$CL_DIR"
: >"$WORK/up.out"
cl_up 3
for n in 1 2 3; do cl_wait_peers $n; done
printf '%s\n' "${CASE_CMD[@]}" >"$WORK/cases.txt"
mkdir -p "$WORK/replies"
"$PY" - "$(cl_port 2)" "$WORK/cases.txt" "$WORK/replies" <<EOF
import shlex, sys
sys.path.insert(0, "$TESTS_DIR")
import dvresp
port, cases, outdir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
cmds = [shlex.split(l) for l in open(cases).read().splitlines()]
c = dvresp.Conn(port, timeout=30)
c.send(b"".join(dvresp.encode(a) for a in cmds))
for i in range(len(cmds)):
    try:
        r = dvresp.fmt(c.read())
    except (dvresp.Closed, OSError) as e:
        open("%s/missing" % outdir, "w").write("%d %s" % (i, e.__class__.__name__))
        break
    open("%s/%d" % (outdir, i), "w").write(r)
EOF
for i in "${!CASE_CMD[@]}"; do
	if [ ! -e "$WORK/replies/$i" ]; then
		fail "pipelined: no reply to command $((i + 1)) (${CASE_CMD[$i]}): $(cat "$WORK/replies/missing" 2>/dev/null)"
		break
	fi
	got=$(cat "$WORK/replies/$i")
	if [ "${CASE_RE[$i]}" = 1 ]; then
		check_match "pipelined: ${CASE_CMD[$i]}-> /${CASE_EXP[$i]}/" "${CASE_EXP[$i]}" "$got"
	else
		check "pipelined: ${CASE_CMD[$i]}-> ${CASE_EXP[$i]}" "${CASE_EXP[$i]}" "$got"
	fi
done
cl_down
finish
