#!/usr/bin/env bash
# Redis 7's exact replies: tests/server/compat.py sends ~500 cases (the
# string, keyspace, server and connection commands, their errors and edge
# cases, repeated options, empty keys, protocol framing, CLIENT REPLY) and
# compares each reply with redis-server 7.0's (tests/server/compat.golden),
# byte for byte where Redis's is deterministic. DV_SERVER=redis runs it
# against redis-server (which must give the golden replies: a check of the
# golden file itself). To record the golden file again:
#   redis-server --port P &  tests/server/compat.py P redis --record tests/server/compat.golden
. "$(dirname "$0")/common.bash"
need_tools
srv_start
log "compat.py"
"$PY" "$TESTS_DIR/compat.py" "$SRV_PORT" "$SRV_MODE" || fail "compat.py (see above)"
ping_ok "after the cases"
srv_stop
finish
