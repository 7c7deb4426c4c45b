#!/usr/bin/env bash
# libFuzzer on the internode codec and session (src/cluster/fuzz_msg.c) for
# 15 seconds (FUZZ_SECONDS to change) on a copy of tests/cluster/corpus_msg.
# Fails if the seed corpus is stale (the handshake seeds depend on the
# target's fixed key and nonces: regenerate with
# FUZZ_MSG_WRITE_SEEDS=tests/cluster/corpus_msg build-fuzz/fuzz_msg), or if
# the fuzzer finds a crash, a sanitizer report or a broken invariant; the
# input is printed and kept in build-fuzz/. The binary comes from make's
# build-fuzz/fuzz_msg rule with clang whatever DV_BUILD is: it carries its
# own sanitizers. Exit 77 without libFuzzer.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
secs=${FUZZ_SECONDS:-15}
tmp=$(mktemp -d "${DV_TEST_TMP:-/tmp}/dv-fuzz-msg.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if ! command -v clang >/dev/null 2>&1; then
	echo "clang not installed: no libFuzzer"
	exit 77
fi
cat >"$tmp/probe.c" <<'C'
int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);
int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }
C
if ! clang -fsanitize=fuzzer,address,undefined "$tmp/probe.c" -o "$tmp/probe" >"$tmp/probe.log" 2>&1; then
	echo "clang cannot link libFuzzer (libclang-rt-dev missing?)"
	exit 77
fi

# The suite's make variables (CC, SAN, BUILD, jobserver) are not the fuzzer's.
if ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$root" build-fuzz/fuzz_msg >"$tmp/build.log" 2>&1; then
	echo "FAIL: building build-fuzz/fuzz_msg"
	cat "$tmp/build.log"
	exit 1
fi
mkdir "$tmp/seeds" "$tmp/corpus" "$tmp/out"
if ! FUZZ_MSG_WRITE_SEEDS="$tmp/seeds" "$root/build-fuzz/fuzz_msg" >"$tmp/seeds.log" 2>&1; then
	echo "FAIL: writing the seeds"
	cat "$tmp/seeds.log"
	exit 1
fi
if ! diff -r "$tmp/seeds" "$root/tests/cluster/corpus_msg" >"$tmp/diff.log"; then
	echo "FAIL: tests/cluster/corpus_msg differs from the seeds the target writes:"
	cat "$tmp/diff.log"
	exit 1
fi
cp "$root"/tests/cluster/corpus_msg/* "$tmp/corpus/"
"$root/build-fuzz/fuzz_msg" -max_total_time="$secs" -print_final_stats=1 -error_exitcode=1 \
	-artifact_prefix="$tmp/out/" "$tmp/corpus" >"$tmp/fuzz.log" 2>&1
rc=$?
grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "$tmp/fuzz.log"
if [ $rc -ne 0 ] || [ -n "$(ls -A "$tmp/out")" ]; then
	echo "FAIL: fuzzer exit $rc"
	tail -n 40 "$tmp/fuzz.log"
	for f in "$tmp"/out/*; do
		[ -e "$f" ] || continue
		cp "$f" "$root/build-fuzz/"
		echo "input build-fuzz/$(basename "$f"):"
		od -An -tx1 "$f" | head -n 20
	done
	exit 1
fi
echo "ok: ${secs}s without a finding"
