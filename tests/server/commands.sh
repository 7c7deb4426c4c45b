#!/usr/bin/env bash
# Every command of the node server through redis-cli, one connection per
# command, then the same command list again on a fresh server as one
# pipelined write (tests/server/dvresp.py), exact replies both times; then
# redis-cli --pipe loads, expiry over time, size limits, and the
# per-connection commands (CLIENT, HELLO, QUIT, COMMAND) in commands.py.
# DV_SERVER=redis runs it against redis-server 7 (dynvme-only checks skipped).
. "$(dirname "$0")/common.bash"
need_tools

# ---------------------------------------------------------------- case list
# tp EXPECTED ARGS...   exact reply, also replayed in the pipeline pass
# tpr REGEX ARGS...     reply matches the (anchored) ERE, also replayed
CASE_EXP=() CASE_RE=() CASE_CMD=()
tp() {
	local exp=$1
	shift
	CASE_EXP+=("$exp") CASE_RE+=(0) CASE_CMD+=("$(printf '%q ' "$@")")
	t "$exp" "$@"
}
tpr() {
	local re=$1
	shift
	CASE_EXP+=("$re") CASE_RE+=(1) CASE_CMD+=("$(printf '%q ' "$@")")
	check_match "$* -> /$re/" "$re" "$(cli "$@")"
}
E_ARGS() { echo "(error) ERR wrong number of arguments for '$1' command"; }
E_INT="(error) ERR value is not an integer or out of range"
E_SYNTAX="(error) ERR syntax error"
E_EXPIRE="(error) ERR invalid expire time in 'set' command"
TTL100='^\(integer\) (8[0-9]|9[0-9]|100)$'
# EXAT/PXAT deadlines are fixed when the list is made: the pipelined replay
# comes later
TTL100W='^\(integer\) ([1-9][0-9]|100)$'

run_cases() {
	local now now_ms
	now=$(date +%s)
	now_ms=$(date +%s%3N)
	tp PONG PING
	tp '"hello world"' PING "hello world"
	tp "$(E_ARGS ping)" PING a b
	tp '"abc"' ECHO abc
	tp '""' ECHO ""
	tp "$(E_ARGS echo)" ECHO
	tp "$(E_ARGS echo)" ECHO a b
	# SET / GET
	tp OK SET k1 v1
	tp '"v1"' GET k1
	tp '(nil)' GET nokey
	tp OK SET k1 v2
	tp '"v2"' GET k1
	tp OK SET "key with spaces" "value with spaces"
	tp '"value with spaces"' GET "key with spaces"
	tp OK SET empty ""
	tp '""' GET empty
	tp "$(E_ARGS get)" GET
	tp "$(E_ARGS get)" GET a b
	tp "$(E_ARGS set)" SET k1
	tp "$E_SYNTAX" SET k1 v NX XX
	tp "$E_SYNTAX" SET k1 v EX 10 PX 100
	tp "$E_SYNTAX" SET k1 v EX 10 KEEPTTL
	tp "$E_SYNTAX" SET k1 v BOGUS
	tp "$E_SYNTAX" SET k1 v EX
	tp "$E_EXPIRE" SET k1 v EX 0
	tp "$E_EXPIRE" SET k1 v EX -5
	tp "$E_EXPIRE" SET k1 v PX 0
	tp "$E_INT" SET k1 v EX abc
	tp "$E_INT" SET k1 v PX 1.5
	tp '"v2"' GET k1
	# NX / XX / GET
	tp '(nil)' SET k1 other NX
	tp '"v2"' GET k1
	tp OK SET k2 a NX
	tp '(nil)' SET k3 a XX
	tp '(integer) 0' EXISTS k3
	tp OK SET k2 b XX
	tp '"b"' GET k2
	tp '"b"' SET k2 c GET
	tp '"c"' GET k2
	tp '(nil)' SET k4 d GET
	tp '"d"' GET k4
	tp '"d"' SET k4 e NX GET
	tp '"d"' GET k4
	tp '"d"' SET k4 f XX GET
	tp '"f"' GET k4
	tp '(nil)' SET k5 g XX GET
	tp '(integer) 0' EXISTS k5
	tp OK set lower case
	tp '"case"' get lower
	tp '"case"' GeT lower
	# MSET / MGET / DEL / EXISTS
	tp OK MSET a 1 b 2 c 3
	tp $'1) "1"\n2) "2"\n3) "3"\n4) (nil)' MGET a b c nokey
	tp $'1) (nil)' MGET nokey
	tp '(integer) 3' EXISTS a b c nokey
	tp '(integer) 2' EXISTS a a
	tp '(integer) 2' DEL a b nokey
	tp '(integer) 0' DEL a
	tp '(integer) 0' EXISTS a b
	tp '(integer) 1' EXISTS c
	tp "$(E_ARGS mset)" MSET a 1 b
	tp "$(E_ARGS mset)" MSET
	tp '(integer) 0' EXISTS a b
	tp OK MSET a 1 a 2
	tp '"2"' GET a
	tp "$(E_ARGS mget)" MGET
	tp "$(E_ARGS del)" DEL
	tp "$(E_ARGS exists)" EXISTS
	# TTL / PTTL / EXPIRE / PEXPIRE / PERSIST
	tp '(integer) -2' TTL nokey
	tp '(integer) -2' PTTL nokey
	tp '(integer) -1' TTL c
	tp '(integer) -1' PTTL c
	tp '(integer) 0' EXPIRE nokey 100
	tp '(integer) 0' PEXPIRE nokey 100
	tp '(integer) 1' EXPIRE c 100
	tpr "$TTL100" TTL c
	tpr '^\(integer\) ((8|9)[0-9]{4}|100000)$' PTTL c
	tp '(integer) 1' PERSIST c
	tp '(integer) 0' PERSIST c
	tp '(integer) -1' TTL c
	tp '(integer) 0' PERSIST nokey
	tp '(integer) 1' PEXPIRE c 5000
	tpr '^\(integer\) [2-5][0-9]{3}$' PTTL c
	tpr '^\(integer\) [2-5]$' TTL c
	tp OK SET c x KEEPTTL
	tpr '^\(integer\) [1-5][0-9]{3}$' PTTL c
	tp '"x"' GET c
	tp OK SET c y
	tp '(integer) -1' TTL c
	tp OK SET e1 v EX 100
	tpr "$TTL100" TTL e1
	tp OK SET e2 v PX 100000
	tpr "$TTL100" TTL e2
	tp OK SET e3 v EXAT $((now + 100))
	tpr "$TTL100W" TTL e3
	tp OK SET e4 v PXAT $((now_ms + 100000))
	tpr "$TTL100W" TTL e4
	tp OK SET e5 v EXAT 1000000000
	tp '(nil)' GET e5
	tp '(integer) 0' EXISTS e5
	tp '(integer) 1' EXPIRE e1 0
	tp '(integer) 0' EXISTS e1
	tp OK SET e6 v
	tp '(integer) 1' PEXPIRE e6 -1
	tp '(nil)' GET e6
	tp "$E_INT" EXPIRE c abc
	tp "$E_INT" PEXPIRE c 1.5
	tp "$(E_ARGS ttl)" TTL
	tp "$(E_ARGS pttl)" PTTL a b
	tp "$(E_ARGS persist)" PERSIST
	tp "$(E_ARGS expire)" EXPIRE c
	tp '(integer) -1' TTL c
	# live: k1 "key with spaces" empty k2 k4 lower c a e2 e3 e4
	tp '(integer) 11' DBSIZE
	tp "$(E_ARGS dbsize)" DBSIZE x
	# SELECT, unknown commands, AUTH without a password
	tp OK SELECT 0
	tp "(error) ERR DB index is out of range" SELECT 99
	tp "(error) ERR DB index is out of range" SELECT -1
	tp "$E_INT" SELECT abc
	tp "(error) ERR unknown command 'NOSUCHCMD', with args beginning with: 'a' 'b' " NOSUCHCMD a b
	tp "(error) ERR unknown command 'foo', with args beginning with: " foo
	tpr '^\(error\) ERR ' AUTH somepassword
	# CONFIG GET
	tp $'1) "maxclients"\n2) "1000"' CONFIG GET maxclients
	tp '(empty array)' CONFIG GET no-such-parameter-xyz
	tp '"v2"' GET k1
}

log "server start"
srv_start --maxclients 1000
log "commands, one connection each"
run_cases
is_dynvme && t "(error) ERR DB index is out of range" SELECT 1

# INFO
info=$(cli INFO)
for s in Server Clients Stats Keyspace; do
	check_match "INFO has section # $s" "^# $s" "$info"
done
check_match "INFO keyspace has db0:keys=11" '^db0:keys=11,' "$info"
dv_only && check_match "INFO has section # Storage (dynvme)" "^# Storage" "$info"
info=$(cli INFO keyspace)
check_match "INFO keyspace: db0:keys=11" '^db0:keys=11,' "$info"
check_match "INFO keyspace has no # Server section" '^# Keyspace' "$info"
printf '%s' "$info" | grep -q '^# Server' && fail "INFO keyspace also printed # Server"
info=$(cli INFO server)
check_match "INFO server has # Server" '^# Server' "$info"
printf '%s' "$info" | grep -q '^# Keyspace' && fail "INFO server also printed # Keyspace"

# COMMAND COUNT: every command listed above at least
n=$(cli COMMAND COUNT)
check_match "COMMAND COUNT is an integer >= 20" '^\(integer\) ([2-9][0-9]|[1-9][0-9]{2,})$' "$n"

# Per-connection commands and structures (CLIENT, HELLO, QUIT, COMMAND
# INFO/DOCS, raw pipelines of replies).
log "commands.py"
"$PY" "$TESTS_DIR/commands.py" "$SRV_PORT" "$SRV_MODE" || fail "commands.py (see above)"

# Expiry over time.
log "expiry"
base=$(cli DBSIZE | sed 's/^(integer) //')
t OK SET exp1 v EX 2
t OK SET exp2 v PX 1500
t OK SET exp3 v EX 100
t '(integer) 1' PEXPIRE exp3 1500
t OK SET exp4 v EX 2
t '(integer) 1' PERSIST exp4
t "(integer) $((base + 4))" DBSIZE
t OK SET exp0 v EX 1
sleep 1.2
t '(nil)' GET exp0
sleep 1.4
t '(nil)' GET exp1
t '(nil)' GET exp2
t '(nil)' GET exp3
t '"v"' GET exp4
t '(integer) 0' EXISTS exp1 exp2 exp3
t '(integer) -2' TTL exp1
t '(integer) -2' PTTL exp2
t '(integer) -1' TTL exp4
t '(integer) 0' PERSIST exp1
# DBSIZE is the number of live keys (dynvme; redis-server may still count
# expired keys it has not evicted yet).
dv_only && t "(integer) $((base + 1))" DBSIZE
dv_only && check_match "INFO keyspace after expiry: db0:keys=$((base + 1))" "^db0:keys=$((base + 1))," "$(cli INFO keyspace)"

# EXPIRE NX/XX/GT/LT: either Redis 7 behaviour or an error for the options.
got=$(cli EXPIRE exp4 100 NX)
case $got in
"(error) ERR"*) log "EXPIRE options unsupported ($got)" ;;
*)
	check "EXPIRE k 100 NX (no ttl)" "(integer) 1" "$got"
	t '(integer) 0' EXPIRE exp4 200 NX
	t '(integer) 1' EXPIRE exp4 200 XX
	t '(integer) 0' EXPIRE exp4 50 GT
	t '(integer) 1' EXPIRE exp4 300 GT
	t '(integer) 0' EXPIRE exp4 400 LT
	t '(integer) 1' EXPIRE exp4 30 LT
	check_match "TTL after EXPIRE LT 30" '^\(integer\) (29|30)$' "$(cli TTL exp4)"
	t '(integer) 0' EXPIRE k1 30 XX
	t '(integer) 0' EXPIRE k1 30 GT
	t '(integer) -1' TTL k1
	check_match "EXPIRE k 30 NX XX is an error" '^\(error\) ERR' "$(cli EXPIRE exp4 30 NX XX)"
	;;
esac
t '(integer) 1' PERSIST exp4

# Size limits: keys up to 1 KiB, values up to 1 MiB (dynvme); over them an
# error starting with ERR and nothing stored.
log "size limits"
key1k=$(head -c 1023 /dev/zero | tr '\0' k) # the store takes 1024 bytes, one is the layout byte
t OK SET "$key1k" v
t '"v"' GET "$key1k"
head -c 1048576 /dev/zero | tr '\0' m >"$WORK/v1m"
got=$(timeout 20 redis-cli -h 127.0.0.1 -p "$SRV_PORT" -x SET big1m <"$WORK/v1m" 2>&1)
check "SET of a 1 MiB value" "OK" "$got"
got=$(timeout 20 redis-cli -h 127.0.0.1 -p "$SRV_PORT" --raw GET big1m 2>&1 | head -c 2000000 | tr -d '\n' | wc -c)
check "GET of the 1 MiB value: length" 1048576 "$got"
if dv_only; then
	got=$(cli SET "${key1k}x" v)
	check "SET with a 1024-byte key" "(error) ERR key too large (1024 bytes, max 1023)" "$got"
	check_match "SET with a 1025-byte key" '^\(error\) ERR' "$got"
	check_match "EXISTS of the 1025-byte key: 0 or an error" '^(\(integer\) 0|\(error\) ERR.*)$' "$(cli EXISTS "${key1k}x")"
	printf 'x' >>"$WORK/v1m"
	got=$(timeout 20 redis-cli --no-raw -h 127.0.0.1 -p "$SRV_PORT" -x SET big1mx <"$WORK/v1m" 2>&1)
	check_match "SET of a 1 MiB + 1 value" '^\(error\) ERR' "$got"
	t '(integer) 0' EXISTS big1mx
	got=$(timeout 20 redis-cli --no-raw -h 127.0.0.1 -p "$SRV_PORT" -x MSET small1 s big1mx <"$WORK/v1m" 2>&1)
	check_match "MSET with a 1 MiB + 1 value" '^\(error\) ERR' "$got"
	t '(integer) 0' EXISTS small1 big1mx
	ping_ok "after oversized values"
fi

# redis-cli --pipe: 20000 raw-protocol commands (10000 SET, 10000 GET, a few
# errors), reply and error counts, then spot checks.
log "redis-cli --pipe"
N=10000
[ "$QUICK" = 1 ] && N=2000
"$PY" - "$N" >"$WORK/pipe.bin" <<'EOF'
import sys
sys.path.insert(0, ".")
n = int(sys.argv[1])
out = sys.stdout.buffer
def enc(*a):
    b = b"*%d\r\n" % len(a)
    for x in a:
        x = x.encode() if isinstance(x, str) else x
        b += b"$%d\r\n%s\r\n" % (len(x), x)
    return b
for i in range(n):
    out.write(enc("SET", "pk:%d" % i, "val-%d-%s" % (i, "x" * (i % 100))))
for i in range(n):
    out.write(enc("GET", "pk:%d" % i))
for i in range(3):
    out.write(enc("NOSUCH", str(i)))
EOF
got=$(timeout 60 redis-cli -h 127.0.0.1 -p "$SRV_PORT" --pipe <"$WORK/pipe.bin" 2>&1 | tail -n 1)
check "redis-cli --pipe counts" "errors: 3, replies: $((2 * N + 3))" "$got"
t "\"val-7-$(printf 'x%.0s' $(seq 7))\"" GET pk:7
t "\"val-$((N - 1))-$(printf 'x%.0s' $(seq $(((N - 1) % 100))))\"" GET "pk:$((N - 1))"
t "(integer) $N" EXISTS $(seq -f 'pk:%g' 0 $((N - 1)) | head -n $N | tr '\n' ' ')

# Commands on stdin of one redis-cli (one connection, each reply awaited).
got=$(cli_stdin <<'EOF'
SET here "doc value"
GET here
APPEND_NOT_A_COMMAND x
DEL here
GET here
EOF
)
check "redis-cli here-doc of commands" $'OK\n"doc value"\n(error) ERR unknown command \'APPEND_NOT_A_COMMAND\', with args beginning with: \'x\' \n(integer) 1\n(nil)' "$got"

# ---------------------------------------------------------------- pipeline pass
# The same case list on a fresh server (new data file), all commands in one
# write on one connection.
log "pipelined replay of ${#CASE_CMD[@]} commands on a fresh server"
srv_stop
check "exit code after SIGTERM" 0 "$SRV_RC"
SRV_DATA=$WORK/data2.img
srv_start --maxclients 1000
printf '%s\n' "${CASE_CMD[@]}" >"$WORK/cases.txt"
mkdir -p "$WORK/replies"
"$PY" - "$SRV_PORT" "$WORK/cases.txt" "$WORK/replies" <<EOF
import shlex, sys
sys.path.insert(0, "$TESTS_DIR")
import dvresp
port, cases, outdir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
cmds = [shlex.split(l) for l in open(cases).read().splitlines()]
c = dvresp.Conn(port, timeout=10)
c.send(b"".join(dvresp.encode(a) for a in cmds))
for i in range(len(cmds)):
    try:
        r = dvresp.fmt(c.read())
    except dvresp.Closed:
        open("%s/missing" % outdir, "w").write("%d connection closed" % i)
        break
    except OSError as e:
        open("%s/missing" % outdir, "w").write("%d %s" % (i, e.__class__.__name__))
        break
    open("%s/%d" % (outdir, i), "w").write(r)
EOF
for i in "${!CASE_CMD[@]}"; do
	if [ ! -e "$WORK/replies/$i" ]; then
		why=$(cut -d' ' -f2- "$WORK/replies/missing" 2>/dev/null)
		fail "pipelined: no reply to command $((i + 1)) of ${#CASE_CMD[@]} (${CASE_CMD[$i]}) and after it: ${why:-replay failed}"
		break
	fi
	got=$(cat "$WORK/replies/$i")
	if [ "${CASE_RE[$i]}" = 1 ]; then
		check_match "pipelined: ${CASE_CMD[$i]}-> /${CASE_EXP[$i]}/" "${CASE_EXP[$i]}" "$got"
	else
		check "pipelined: ${CASE_CMD[$i]}-> ${CASE_EXP[$i]}" "${CASE_EXP[$i]}" "$got"
	fi
done
ping_ok "after the pipeline"
srv_stop
check "exit code after SIGTERM" 0 "$SRV_RC"
finish
