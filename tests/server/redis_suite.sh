#!/usr/bin/env bash
# Redis's own test suite (7.0) against dynvme: the units of the commands
# dynvme serves (strings, INCR, bit commands, keyspace, expiry, SCAN,
# protocol, INFO, QUIT) run by Redis's runtest against a dynvme server as an
# external host (--singledb: one database; tests tagged needs:repl or
# needs:debug are left out, dynvme has no replication and no DEBUG). The
# tests that use what dynvme does not serve (other data types, MULTI,
# BITOP/BITPOS/BITFIELD, values over 1 MiB) are skipped by name, each with
# its reason, from redis_suite.skip; every test in redis_suite.expected must
# pass, and none may fail. A test that passes and is not listed is reported
# (add it). unit/auth is not run: all its tests are tagged external:skip
# (the harness starts its own servers); tests/server/auth.py covers them.
#
# The Redis source tree is not part of this repository:
#   REDIS_SRC   the redis-7.0.x directory holding runtest and tests/
#               (default /work/redis-src/redis-7.0.15); absent: skipped.
# DV_SERVER=redis runs the same against redis-server (a check of the lists).
. "$(dirname "$0")/common.bash"
need_tools
REDIS_SRC=${REDIS_SRC:-/work/redis-src/redis-7.0.15}
[ -x "$REDIS_SRC/runtest" ] && [ -f "$REDIS_SRC/tests/test_helper.tcl" ] ||
	skip "redis_suite.sh: Redis's test suite not found (REDIS_SRC=$REDIS_SRC: the redis-7.0.x source tree)"
command -v tclsh8.6 >/dev/null 2>&1 || command -v tclsh8.7 >/dev/null 2>&1 || command -v tclsh8.5 >/dev/null 2>&1 ||
	skip "redis_suite.sh: tclsh 8.5+ not installed (apt-get install tcl)"

UNITS="unit/type/string unit/type/incr unit/bitops unit/keyspace unit/expire unit/scan unit/protocol unit/info-command
unit/quit"
SKIP_LIST=$TESTS_DIR/redis_suite.skip
EXPECTED=$TESTS_DIR/redis_suite.expected

srv_start
skipfile=$WORK/skip.txt
grep -v '^#' "$SKIP_LIST" | cut -f2 >"$skipfile"
args=()
for u in $UNITS; do args+=(--single "$u"); done
log "runtest: $(echo $UNITS | wc -w) units, $(wc -l <"$skipfile") tests skipped by name"
# One test client (external mode); 120 s a test at most, the whole run
# bounded by the script's time limit. runtest's own port (for its test
# client) is the first free one of the 32 below --baseport: ours, so that
# two runs at once (other checkouts) do not meet on its default, 21079; all
# 33 free and in this job slot's range (tests/run.sh DV_TEST_JOBS).
alloc_port SUITE_PORT 33
(cd "$REDIS_SRC" && timeout $((TIME_LIMIT - 60)) ./runtest --host 127.0.0.1 --port "$SRV_PORT" --singledb \
	--baseport $((SUITE_PORT + 32)) --tags "-needs:repl -needs:debug" --skipfile "$skipfile" --timeout 120 \
	"${args[@]}") >"$WORK/runtest.out" 2>&1
rc=$?
sed 's/\x1b\[[0-9;]*m//g' "$WORK/runtest.out" >"$WORK/runtest.txt"

# Per unit: which tests passed ([ok]), failed ([err]), were skipped or
# ignored (tags); an exception stops its unit.
"$PY" - "$WORK/runtest.txt" "$EXPECTED" "$SKIP_LIST" <<'PYEOF' || fail "Redis's tests: see above"
import re, sys
out, expected_path, skip_path = sys.argv[1:4]
unit = None
res = {}  # unit -> {"ok": [...], "err": [...], "skip": [...], "ignore": [...], "exception": [...]}
for line in open(out, errors="replace"):
    m = re.match(r"Testing (unit/\S+)", line)
    if m:
        unit = m.group(1)
        res.setdefault(unit, {k: [] for k in ("ok", "err", "skip", "ignore", "exception")})
        continue
    m = re.match(r"\[(ok|err|skip|ignore|exception)\]: (.*)", line)
    if m and unit:
        name = re.sub(r" \(\d+ ms\)$", "", m.group(2).rstrip())
        name = re.sub(r" in tests/\S+\.tcl$", "", name)
        res[unit][m.group(1)].append(name)
expected = {}
for line in open(expected_path):
    if line.startswith("#") or not line.strip():
        continue
    u, name = line.rstrip("\n").split("\t", 1)
    expected.setdefault(u, []).append(name)
bad = 0
for u in sorted(set(expected) | set(res)):
    r = res.get(u)
    if r is None:
        print("FAIL: %s did not run" % u)
        bad += 1
        continue
    print("%-18s %3d passed, %d failed, %2d skipped (not served), %2d not run (tags: needs:repl/debug, external, singledb)"
          % (u, len(r["ok"]), len(r["err"]) + len(r["exception"]), len(r["skip"]), len(r["ignore"])))
    for k in ("err", "exception"):
        for n in r[k]:
            print("FAIL: %s: [%s] %s" % (u, k, n))
            bad += 1
    ok = set(r["ok"])
    for n in expected.get(u, []):
        if n not in ok:
            print("FAIL: %s: %r is in redis_suite.expected and did not pass" % (u, n))
            bad += 1
    for n in sorted(ok - set(expected.get(u, []))):
        print("note: %s: %r passed and is not in redis_suite.expected (add it)" % (u, n))
sys.exit(1 if bad else 0)
PYEOF
[ $rc -eq 0 ] || { fail "runtest exited $rc; its output:"; grep -E '^\[(err|exception)\]' -A8 "$WORK/runtest.txt" | head -40
	grep -q '^\[' "$WORK/runtest.txt" || head -20 "$WORK/runtest.txt"; }
ping_ok "after Redis's tests"
srv_stop
finish
