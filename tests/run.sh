#!/usr/bin/env bash
# Runs every test program under BUILD/tests; exit code 77 means skipped.
# Ends with the closing line "N passed, N failed" (skips are listed before it).
set -u
build=${1:-build}
pass=0 fail=0 skip=0 failed=() began=$(date +%s)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for t in $(find "$build/tests" -type f -name 'test_*' -perm -u+x | sort); do
	name=${t#"$build/tests/"}
	start=$(date +%s)
	DV_TEST_TMP="$tmp" timeout 600 "$t" >"$tmp/out" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
	case $rc in
	0) pass=$((pass + 1)); echo "ok   $name (${secs}s)" ;;
	77) skip=$((skip + 1)); echo "skip $name: $(tail -n 1 "$tmp/out")" ;;
	*) fail=$((fail + 1)); failed+=("$name"); echo "FAIL $name (rc=$rc, ${secs}s)"; tail -n 30 "$tmp/out" | sed 's/^/     /' ;;
	esac
done
for s in $(find tests -name "*.sh" -not -path tests/run.sh | sort); do
	[ -e "$s" ] || continue
	case $s in tests/run.sh) continue ;; esac
	name=${s#tests/}
	start=$(date +%s)
	DV_BUILD="$build" DV_TEST_TMP="$tmp" timeout 900 bash "$s" >"$tmp/out" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
	case $rc in
	0) pass=$((pass + 1)); echo "ok   $name (${secs}s)" ;;
	77) skip=$((skip + 1)); echo "skip $name: $(tail -n 1 "$tmp/out")" ;;
	*) fail=$((fail + 1)); failed+=("$name"); echo "FAIL $name (rc=$rc, ${secs}s)"; tail -n 30 "$tmp/out" | sed 's/^/     /' ;;
	esac
done
[ ${#failed[@]} -eq 0 ] || echo "failed: ${failed[*]}"
[ "$skip" -eq 0 ] || echo "$skip skipped"
echo "$build: $(( $(date +%s) - began ))s"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
