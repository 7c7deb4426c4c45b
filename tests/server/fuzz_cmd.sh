#!/usr/bin/env bash
# The command layer under tests/server/fuzz_cmd.py, a short seeded run
# (`make fuzz` runs a long one): first dynvme alone (--crash: every reply to
# random commands with edge arguments must parse, the server must stay up
# and, in the sanitizer builds, report nothing), then the fixes' regression
# cases and random command sequences against redis-server 7 (a fresh one,
# started by fuzz_cmd.py on a loopback port), reply for reply after the
# normalization documented in fuzz_cmd.py. A failing seed prints the command
# that replays it. Bounded: FUZZ_CMD_SEEDS seeds each way (default 150, 40 in
# the sanitizer builds), each part cut at FUZZ_CMD_SECONDS (default 25).
# Without redis-server (scripts/deps.sh test installs it) the differential
# part is skipped with a message, after the crash part.
. "$(dirname "$0")/common.bash"
is_dynvme || skip "fuzz_cmd compares dynvme with redis-server: nothing to run with DV_SERVER=redis"
[ -x "$BIN" ] || die "$BIN not found (build it first)"
[ -x "$PY" ] || skip "$PY not found"
seeds=${FUZZ_CMD_SEEDS:-$([ "$SLOW" -gt 1 ] && echo 40 || echo 150)}
secs=${FUZZ_CMD_SECONDS:-25}
export DV_TEST_TMP=$WORK

log "dynvme alone (--crash), seeds 1..$seeds"
"$PY" "$TESTS_DIR/fuzz_cmd.py" --build "$BUILD_DIR" --crash --seeds "1..$seeds" --time-limit "$secs" ||
	fail "fuzz_cmd.py --crash (see above)"
if ! command -v redis-server >/dev/null 2>&1; then
	[ "$FAILS" -gt 0 ] && finish
	skip "differential part skipped: redis-server not installed (scripts/deps.sh test installs it); the crash part passed"
fi
log "against redis-server ($(redis-server --version | awk '{print $3}')), regressions and seeds 1..$seeds"
"$PY" "$TESTS_DIR/fuzz_cmd.py" --build "$BUILD_DIR" --regress --seeds "1..$seeds" --time-limit "$secs" ||
	fail "fuzz_cmd.py against redis-server (see above)"
finish
