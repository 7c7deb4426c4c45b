#!/usr/bin/env bash
# One client's pipelines against Redis's replies (review 1, issue 8):
# quoted inline commands that wait for an earlier command of their client
# run as sent (S1); a client that pipelines then half-closes
# (shutdown SHUT_WR, as `cat cmds | nc` does) gets every reply (S2);
# sixteen clients racing SET k v GET on one key never get an error and lose
# no update (S6); pipelines of distinct keys never wait for each other
# (S7: dynvme_pipeline_waits_total stays 0, the rates are printed); with
# --threads 2 a GET sent after another client's write was acknowledged
# never answers an older value. tests/server/pipelines.py does the work;
# DV_SERVER=redis runs it against redis-server.
. "$(dirname "$0")/common.bash"
need_tools
P() { timeout $((300 * SLOW)) "$PY" "$TESTS_DIR/pipelines.py" "$SRV_PORT" "$@"; }
N=20000
[ "$QUICK" = 1 ] && N=5000
srv_start
P inline || fail "inline commands that wait (see above)"
P halfclose 5000 || fail "half-close (see above)"
P rmwrace 16 500 100 || fail "read-modify-write race (see above)"
HTTP=0
is_dynvme && HTTP=$SRV_HTTP
P rates "$N" "$HTTP" || fail "pipelines of distinct keys (see above)"
srv_stop
if is_dynvme; then
	check "exit code after SIGTERM" 0 "$SRV_RC"
	srv_start --threads 2
	P xthread 2000 || fail "--threads 2: a read after another client's write (see above)"
	P halfclose 2000 || fail "half-close, --threads 2 (see above)"
	srv_stop
fi
finish
