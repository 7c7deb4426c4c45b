# fuzz.bash - sourced by the tests/**/fuzz_*.sh scripts.
#
# fuzz_run NAME CORPUS SECS builds the Makefile's build-fuzz/NAME (clang with
# its own sanitizers, whatever DV_BUILD is: plain, ASan or TSan suite) and
# runs it SECS seconds on a copy of the seed corpus directory CORPUS (relative
# to the repository). Returns 0 without a finding; 1 on a crash, a sanitizer
# report or a broken invariant (the input is printed and kept as
# build-fuzz/NAME-crash-*, replayed by `build-fuzz/NAME FILE`); 77 when clang
# cannot build libFuzzer targets here.
fuzz_run() {
	local name=$1 corpus=$2 secs=$3
	local root tmp rc f keep
	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	tmp=$(mktemp -d "${DV_TEST_TMP:-/tmp}/dv-$name.XXXXXX")
	if ! command -v clang >/dev/null 2>&1; then
		echo "clang not installed: no libFuzzer"
		rm -rf "$tmp"
		return 77
	fi
	echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' >"$tmp/probe.c"
	if ! clang -fsanitize=fuzzer,address,undefined "$tmp/probe.c" -o "$tmp/probe" >"$tmp/probe.log" 2>&1; then
		echo "clang cannot link libFuzzer (libclang-rt-dev missing?)"
		rm -rf "$tmp"
		return 77
	fi
	# The suite's make variables (CC, SAN, BUILD, jobserver) are not the fuzzer's.
	if ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$root" "build-fuzz/$name" >"$tmp/build.log" 2>&1; then
		echo "FAIL: building build-fuzz/$name"
		cat "$tmp/build.log"
		rm -rf "$tmp"
		return 1
	fi
	mkdir "$tmp/corpus" "$tmp/out"
	cp "$root/$corpus"/* "$tmp/corpus/"
	"$root/build-fuzz/$name" -max_total_time="$secs" -print_final_stats=1 -error_exitcode=1 \
		-artifact_prefix="$tmp/out/" "$tmp/corpus" >"$tmp/fuzz.log" 2>&1
	rc=$?
	grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "$tmp/fuzz.log"
	if [ $rc -eq 0 ] && [ -z "$(ls -A "$tmp/out")" ]; then
		echo "ok: ${secs}s without a finding"
		rm -rf "$tmp"
		return 0
	fi
	echo "FAIL: fuzzer exit $rc"
	tail -n 40 "$tmp/fuzz.log"
	for f in "$tmp"/out/*; do
		[ -e "$f" ] || continue
		keep="build-fuzz/$name-$(basename "$f")"
		cp "$f" "$root/$keep"
		echo "input $keep (replay: build-fuzz/$name $keep):"
		od -An -c "$f" | head -n 20
	done
	rm -rf "$tmp"
	return 1
}
