#!/usr/bin/env bash
# Runs every test program under BUILD/tests, then every tests/**/*.sh; exit
# code 77 means skipped. Each test's line ("ok   NAME (Ns)", "FAIL NAME ..."
# with the last 30 lines of its output, "skip NAME: why") is printed when it
# ends; the run ends with the closing line "N passed, N failed" (skips are
# listed before it).
# DV_TEST_JOBS: how many tests run at once (default 1; `make test` passes
# TEST_JOBS, one per core). With more than one, the longest tests (LONG_FIRST
# below) start first so that the short ones fill the other jobs around them,
# and lines come in the order the tests end. Each job has a slot number,
# exported as DV_TEST_SLOT (0..DV_TEST_JOBS-1) with DV_TEST_SLOTS: the
# scripts' port picking (tests/server/common.bash, tests/cluster/cluster.bash)
# keeps each slot to its own port range, so two tests at once never pick the
# same port.
# DV_TEST_EXCLUDE: names (as printed, e.g. "storage/test_zoned zns/run.sh")
# this build does not run, each reported as a skip with DV_TEST_EXCLUDE_WHY
# (the sanitizer builds of `make check` use it: see the Makefile).
set -u
excluded() { [[ " ${DV_TEST_EXCLUDE:-} " == *" $1 "* ]]; }
build=${1:-build}
jobs=${DV_TEST_JOBS:-1}
[[ $jobs =~ ^[1-9][0-9]*$ ]] || { echo "DV_TEST_JOBS: a count, not $jobs" >&2; exit 2; }
# The slots' port ranges (tests/server/common.bash) hold at most 6.
[ "$jobs" -le 6 ] || jobs=6
# The tests that take longest in CI (tens of seconds to minutes, plain or
# sanitizer build), longest first: started before the rest when jobs > 1.
LONG_FIRST="zns/run.sh storage/test_crash server/fuzz_cmd.sh index/test_index server/bad_input.sh
cluster/flush_scan.sh resp/fuzz_resp.sh cluster/fuzz_dvv.sh cluster/fuzz_msg.sh server/keyspace.sh
server/redis_suite.sh sim/test_sim server/pipelines.sh storage/test_model"
pass=0 fail=0 skip=0 failed=() began=$(date +%s)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The tests, each "NAME PATH": programs first, then scripts, each sorted.
tests=()
for t in $(find "$build/tests" -type f -name 'test_*' -perm -u+x | sort); do
	tests+=("${t#"$build/tests/"} $t")
done
for s in $(find tests -name "*.sh" -not -path tests/run.sh | sort); do
	tests+=("${s#tests/} $s")
done
if [ "$jobs" -gt 1 ]; then
	first=() rest=()
	for l in $LONG_FIRST; do
		for e in "${tests[@]}"; do [ "${e%% *}" = "$l" ] && first+=("$e"); done
	done
	for e in "${tests[@]}"; do [[ " $(echo $LONG_FIRST) " == *" ${e%% *} "* ]] || rest+=("$e"); done
	tests=("${first[@]}" "${rest[@]}")
fi

# run_one I NAME PATH SLOT: the test, its output in $tmp/out.I, then
# "RC SECS" in $tmp/rc.I (written last: its presence means the test ended).
run_one() {
	local i=$1 name=$2 path=$3 slot=$4 start rc
	local env=(DV_TEST_TMP="$tmp")
	[ "$jobs" -gt 1 ] && env+=(DV_TEST_SLOT="$slot" DV_TEST_SLOTS="$jobs")
	start=$(date +%s)
	case $path in
	*.sh) env DV_BUILD="$build" "${env[@]}" timeout 900 bash "$path" >"$tmp/out.$i" 2>&1 ;;
	*) env "${env[@]}" timeout 600 "$path" >"$tmp/out.$i" 2>&1 ;;
	esac
	rc=$?
	echo "$rc $(($(date +%s) - start))" >"$tmp/rc.$i.part" && mv "$tmp/rc.$i.part" "$tmp/rc.$i"
}

# report I NAME: the line of an ended test.
report() {
	local i=$1 name=$2 rc secs
	read -r rc secs <"$tmp/rc.$i"
	case $rc in
	0) pass=$((pass + 1)); echo "ok   $name (${secs}s)" ;;
	77) skip=$((skip + 1)); echo "skip $name: $(tail -n 1 "$tmp/out.$i")" ;;
	*) fail=$((fail + 1)); failed+=("$name"); echo "FAIL $name (rc=$rc, ${secs}s)"; tail -n 30 "$tmp/out.$i" | sed 's/^/     /' ;;
	esac
	rm -f "$tmp/out.$i" "$tmp/rc.$i"
}

declare -A running=() # I -> "SLOT NAME" of each test under way
free_slots=()
for ((s = 0; s < jobs; s++)); do free_slots+=("$s"); done
# reap: reports every test that has ended, freeing its slot.
reap() {
	local i slot name
	for i in "${!running[@]}"; do
		if [ ! -e "$tmp/rc.$i" ]; then
			# Gone without a result (its subshell killed): a failure, not a hang.
			kill -0 "${pids[$i]}" 2>/dev/null && continue
			[ -e "$tmp/rc.$i" ] || echo "1 0" >"$tmp/rc.$i"
		fi
		read -r slot name <<<"${running[$i]}"
		unset "running[$i]"
		wait "${pids[$i]}" 2>/dev/null
		report "$i" "$name"
		free_slots+=("$slot")
	done
}
declare -A pids=()
i=0
for e in "${tests[@]}"; do
	i=$((i + 1))
	name=${e%% *} path=${e#* }
	if excluded "$name"; then skip=$((skip + 1)); echo "skip $name: ${DV_TEST_EXCLUDE_WHY:-excluded}"; continue; fi
	while [ ${#free_slots[@]} -eq 0 ]; do
		wait -n 2>/dev/null
		reap
	done
	slot=${free_slots[0]}
	free_slots=("${free_slots[@]:1}")
	running[$i]="$slot $name"
	run_one "$i" "$name" "$path" "$slot" &
	pids[$i]=$!
done
while [ ${#running[@]} -gt 0 ]; do
	wait -n 2>/dev/null
	reap
done
[ ${#failed[@]} -eq 0 ] || echo "failed: ${failed[*]}"
[ "$skip" -eq 0 ] || echo "$skip skipped"
echo "$build: $(( $(date +%s) - began ))s"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
