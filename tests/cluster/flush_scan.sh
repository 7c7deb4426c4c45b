#!/usr/bin/env bash
# The cluster meanings of FLUSHALL, SCAN, DBSIZE and INCR on three real
# nodes (N=3 R=2 W=2):
# - DBSIZE is exact at rest (every node holds every key: the sum of the
#   nodes' counts over N), before and after deletes;
# - a node killed with -9, FLUSHALL through the others answers +OK: the
#   keys are gone through them; the killed node restarted from its config
#   file learns the flush before it serves: no flushed key comes back
#   through it, not even from its own copy (DYN.GET R 1 with the others
#   stopped); a node killed -9 right after +OK keeps the flush;
# - a SCAN walking the keyspace through node 1 while node 2 is killed in the
#   middle returns every key (a page that cannot reach enough replicas is
#   retried from the same cursor);
# - INCR and INCRBY through the three nodes at once: every acknowledged
#   increment is counted, the three nodes read the same value.
. "$(dirname "$0")/cluster.bash"
cl_need_tools redis-py

cl_up 3
for n in 1 2 3; do cl_wait_peers $n; done
KEYS=300
[ "$QUICK" = 1 ] && KEYS=120

# scan_all PORT OUT: the keys of a whole SCAN through PORT into OUT, one a
# line; with KILL=N, node N is killed after the third page. Errors retry the
# cursor (bounded).
scan_all() {
	"$PY" - "$1" "$2" "${KILL:-0}" "$(cl_pid "${KILL:-1}")" <<'EOF'
import os, signal, sys, time
import redis
port, out, kill, pid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4] or 0)
r = redis.Redis(port=port, socket_timeout=30)
cursor, pages, errors, keys = 0, 0, 0, set()
while True:
    try:
        cursor, batch = r.scan(cursor=cursor, count=20)
    except redis.RedisError as e:
        errors += 1
        if errors > 50:
            sys.exit("too many scan errors: %s" % e)
        time.sleep(0.2)
        continue
    keys.update(k.decode() for k in batch)
    pages += 1
    if kill and pages == 3:
        os.kill(pid, signal.SIGKILL)
        print("killed node %d after page 3" % kill)
    if cursor == 0:
        break
open(out, "w").write("".join(k + "\n" for k in sorted(keys)))
print("%d pages, %d errors retried, %d keys" % (pages, errors, len(keys)))
EOF
}

log "$KEYS keys through node 1; DBSIZE through every node"
"$PY" - "$(cl_port 1)" "$KEYS" <<'EOF' || fail "writing the keys"
import sys
import redis
r = redis.Redis(port=int(sys.argv[1]), socket_timeout=20)
p = r.pipeline(transaction=False)
for i in range(int(sys.argv[2])):
    p.set("k:%d" % i, "v%d" % i)
p.execute()
EOF
sleep 1 # the third replica's copies land after W=2 answered
for n in 1 2 3; do ct $n "(integer) $KEYS" DBSIZE; done
log "delete 50; DBSIZE again"
for i in $(seq 0 49); do echo "DEL k:$i"; done | timeout 20 redis-cli -p "$(cl_port 2)" >/dev/null
sleep 1
for n in 1 2 3; do ct $n "(integer) $((KEYS - 50))" DBSIZE; done
check "keyspace 1 is empty" 0 "$(printf 'SELECT 1\nDBSIZE\n' | timeout 10 redis-cli -p "$(cl_port 1)" | tail -n 1)"

log "SCAN through node 1, node 2 killed -9 after its third page"
KILL=2 scan_all "$(cl_port 1)" "$WORK/scan.txt" || fail "scan with a node killed"
for i in $(seq 50 $((KEYS - 1))); do echo "k:$i"; done | sort >"$WORK/want.txt"
check "SCAN returned every key while node 2 died" "" "$(comm -3 "$WORK/want.txt" "$WORK/scan.txt" | head -n 5)"
cl_restart 2
KILL=0 scan_all "$(cl_port 2)" "$WORK/scan2.txt" >/dev/null || fail "scan through node 2"
check "SCAN through the restarted node 2" "" "$(comm -3 "$WORK/want.txt" "$WORK/scan2.txt" | head -n 5)"
check "KEYS through node 3" $((KEYS - 50)) "$(timeout 20 redis-cli -p "$(cl_port 3)" KEYS 'k:*' | wc -l)"

log "node 3 killed -9; FLUSHALL through node 1 with it down"
cl_kill9 3
for n in 1 2; do cl_wait_ups $n 1; done # its session seen gone: a flush is done without it
ct 1 OK FLUSHALL
for n in 1 2; do
	ct $n "(integer) 0" DBSIZE
	ct $n "(nil)" GET k:60
	check "node $n: SCAN after FLUSHALL" 0 "$(timeout 20 redis-cli -p "$(cl_port $n)" KEYS '*' | grep -c .)"
done
ct 2 OK SET after:1 new
log "node 3 restarted: it learns the flush before it serves"
cl_restart 3
ct 3 "(nil)" GET k:60
ct 3 '"new"' GET after:1
check "node 3: no key but after:1" "after:1" "$(timeout 20 redis-cli -p "$(cl_port 3)" KEYS '*' | tr '\n' ' ' | sed 's/ $//')"
check "node 3's own copy of k:60 with the others stopped" "" "$(
	for n in 1 2; do kill -STOP "$(cl_pid $n)"; done
	timeout 10 redis-cli -p "$(cl_port 3)" DYN.GET k:60 R 1 TIMEOUT 2000 | tail -n +2 | tr -d '\n'
	for n in 1 2; do kill -CONT "$(cl_pid $n)"; done
)"

log "FLUSHDB of keyspace 0, then node 1 killed -9 and restarted: the flush is durable"
ct 1 OK SET again:1 x
ct 1 OK FLUSHDB
cl_kill9 1
cl_restart 1
ct 1 "(nil)" GET again:1
ct 2 "(nil)" GET after:1
ct 1 "(integer) 0" DBSIZE

log "INCR and INCRBY through the three nodes at once"
"$PY" - "$(cl_port 1)" "$(cl_port 2)" "$(cl_port 3)" "$WORK/incr.txt" <<'EOF' || fail "the increments"
import random, sys, threading
import redis
ports, out = [int(p) for p in sys.argv[1:4]], sys.argv[4]
lock, res = threading.Lock(), {"ack": 0, "maybe": 0, "by_ack": 0, "by_lo": 0, "by_hi": 0}
def worker(t):
    r, rnd = redis.Redis(port=ports[t], socket_timeout=30), random.Random(t)
    for i in range(200):
        d = rnd.randint(-5, 20)
        for key, delta in (("cnt", 1), ("cby", d)):
            try:
                (r.incr(key) if key == "cnt" else r.incrby(key, delta))
                ok = True
            except redis.RedisError as e:
                ok = False
                print("%s: %s" % (key, e))
            with lock:
                if key == "cnt":
                    res["ack" if ok else "maybe"] += 1
                elif ok:
                    res["by_ack"] += delta
                else:
                    res["by_lo"] += min(delta, 0)
                    res["by_hi"] += max(delta, 0)
threads = [threading.Thread(target=worker, args=(t,)) for t in range(3)]
[t.start() for t in threads]
[t.join() for t in threads]
open(out, "w").write("%(ack)d %(maybe)d %(by_ack)d %(by_lo)d %(by_hi)d\n" % res)
print("INCR: %(ack)d acknowledged, %(maybe)d indeterminate" % res)
EOF
read -r ack maybe by_ack by_lo by_hi <"$WORK/incr.txt"
sleep 1
for n in 1 2 3; do
	v=$(timeout 10 redis-cli -p "$(cl_port $n)" GET cnt)
	[ "$v" -ge "$ack" ] && [ "$v" -le $((ack + maybe)) ] || fail "node $n: cnt is $v, $ack acknowledged (+$maybe indeterminate)"
	v=$(timeout 10 redis-cli -p "$(cl_port $n)" GET cby)
	[ "$v" -ge $((by_ack + by_lo)) ] && [ "$v" -le $((by_ack + by_hi)) ] ||
		fail "node $n: cby is $v, acknowledged sum $by_ack (indeterminate $by_lo..+$by_hi)"
done
check "the three nodes agree on cnt" 1 "$(for n in 1 2 3; do timeout 10 redis-cli -p "$(cl_port $n)" GET cnt; done | sort -u | wc -l)"
check "cnt counts every acknowledged INCR (600 sent, $maybe indeterminate)" "$ack" "$(( maybe ? ack : $(timeout 10 redis-cli -p "$(cl_port 1)" GET cnt) ))"
ct 2 "(integer) 1" INCR fresh
ct 2 OK SET str abc
ct 3 "(error) ERR value is not an integer or out of range" INCR str
ct 1 OK SET big 9223372036854775807
ct 1 "(error) ERR increment or decrement would overflow" INCR big
cl_down
cl_check_logs
finish
