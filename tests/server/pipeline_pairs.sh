#!/usr/bin/env bash
# A client pipelining 100,000 x (SET key:i v; GET key:i) before reading
# anything (issue 8 items 10 and 11): about 5 MB of input, more than the
# server buffers for a client, where every GET reads its client's write in
# flight. The server stops reading the client (back-pressure) and goes on:
# every reply arrives, in order, correct (tests/server/pipeline_pairs.py);
# the pairs' rate is printed (bench/server.sh measures it). Also with
# --threads 2 and the value cache off; and 10,000 x (SET key:i <500 B>;
# EXISTS key:i), where each EXISTS waits for its SET to be durable and the
# requests behind it fill the server's input buffer. DV_SERVER=redis runs
# the same against redis-server.
. "$(dirname "$0")/common.bash"
need_tools
N=100000
srv_start
timeout $((300 * SLOW)) "$PY" "$TESTS_DIR/pipeline_pairs.py" "$SRV_PORT" "$N" key || fail "pipeline_pairs.py (see above)"
t '"v:99999"' GET key:99999
timeout $((300 * SLOW)) "$PY" "$TESTS_DIR/pipeline_pairs.py" "$SRV_PORT" 10000 big 500 ||
	fail "pipeline_pairs.py, SET then EXISTS (see above)"
dv_only && t "(integer) $((N + 10000))" DBSIZE
grep -q 'out of memory for input' "$SRV_LOG" && fail "the server dropped a client: out of memory for input"
srv_stop
if is_dynvme; then
	check "exit code after SIGTERM" 0 "$SRV_RC"
	srv_start --cache-bytes 0 --threads 2
	timeout $((300 * SLOW)) "$PY" "$TESTS_DIR/pipeline_pairs.py" "$SRV_PORT" "$((N / 2))" other ||
		fail "pipeline_pairs.py, value cache off, 2 threads (see above)"
	t "(integer) $((N + 10000 + N / 2))" DBSIZE
	srv_stop
fi
finish
