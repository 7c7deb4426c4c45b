#!/usr/bin/env bash
# A client pipelining 100,000 x (SET key:i v; GET key:i) before reading
# anything (issue 8 items 10 and 11): about 5 MB of input, more than the
# server buffers for a client, where every GET reads its client's write in
# flight. The server stops reading the client (back-pressure) and goes on:
# every reply arrives, in order, correct (tests/server/pipeline_pairs.py);
# the pairs' rate is printed (bench/server.sh measures it). Also with
# --threads 2 and the value cache off, and against redis-server
# (DV_SERVER=redis).
. "$(dirname "$0")/common.bash"
need_tools
N=100000
srv_start
timeout $((300 * SLOW)) "$PY" "$TESTS_DIR/pipeline_pairs.py" "$SRV_PORT" "$N" key || fail "pipeline_pairs.py (see above)"
t '"v:99999"' GET key:99999
dv_only && t "(integer) $N" DBSIZE
grep -q 'out of memory for input' "$SRV_LOG" && fail "the server dropped a client: out of memory for input"
srv_stop
if is_dynvme; then
	check "exit code after SIGTERM" 0 "$SRV_RC"
	srv_start --cache-bytes 0 --threads 2
	timeout $((300 * SLOW)) "$PY" "$TESTS_DIR/pipeline_pairs.py" "$SRV_PORT" "$((N / 2))" other ||
		fail "pipeline_pairs.py, value cache off, 2 threads (see above)"
	t "(integer) $((N + N / 2))" DBSIZE
	srv_stop
fi
finish
