#!/usr/bin/env bash
# tests/zns/run.sh: the CI entry of tests/zns (`make zns`; tests/run.sh runs it
# with DV_BUILD). Boots the QEMU guest of tests/zns/guest.bash and checks, inside
# it, what runs there today:
#  A. the default geometry (16 zones of 64 MiB, capacity 62 MiB, 16 open and
#     active) as the guest kernel sees it (sysfs, blkzone report, the zone
#     state machine), the conventional namespace, `dynvme --help`; then a power
#     cut by system_reset while a command runs, and in the next boot the zone
#     write pointer and the conventional namespace's data as they were.
#  B. another geometry (8 zones of 32 MiB, capacity = size, 4 open, 6 active)
#     and a command that fails on purpose: guest.bash must exit 1 and report
#     that rc with the others' rc=0.
#  C. a command that outlives --timeout: guest.bash must kill QEMU and exit 3.
# B and C check the harness itself; DV_TEST_QUICK=1 (the sanitizer builds of
# `make check`) runs A only. Exit 77 (skipped) only where guest.bash says QEMU
# cannot run here at all.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${DV_BUILD:-build}
g=("$here/guest.bash" --dir "$build/zns" --dynvme "$build/dynvme" --file "$here/geometry:/bin/geometry")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
start=$(date +%s)

# RUN NAME WANT_RC ARGS...: guest.bash ARGS, its report in $tmp/NAME.
run() {
	local name=$1 want=$2 rc t0=$SECONDS
	shift 2
	"${g[@]}" "$@" >"$tmp/$name" 2>&1
	rc=$?
	if [ $rc -eq 77 ]; then
		tail -n 1 "$tmp/$name"
		exit 77
	fi
	if [ $rc -ne "$want" ]; then
		echo "FAIL $name: guest.bash exited $rc, want $want ($((SECONDS - t0)) s); its report:"
		sed 's/^/    /' "$tmp/$name"
		fails=$((fails + 1))
		return 1
	fi
	echo "ok   $name: guest.bash exited $rc ($((SECONDS - t0)) s)"
	grep '^zns: boot .* ready' "$tmp/$name"
}
# HAS NAME REGEX: a line of the report of NAME matches the extended REGEX.
has() {
	grep -qE -- "$2" "$tmp/$1" && return 0
	echo "FAIL $1: no line matching \"$2\" in its report:"
	sed 's/^/    /' "$tmp/$1"
	fails=$((fails + 1))
	return 1
}

ticks='i=0; while [ $i -lt 600 ]; do i=$((i + 1)); echo tick $i; sleep 0.1; done'
if run A 0 --timeout 300 \
	-c 'geometry 16 131072 126976 16 16 1073741824' \
	-c 'dynvme --help >/tmp/help; rc=$?; cat /tmp/help; [ $rc -eq 0 ] && grep -q "check PATH" /tmp/help' \
	-c 'dd if=/dev/zero of=/dev/nvme0n1 bs=4096 count=3 oflag=direct &&
	    printf dvzns-cut | dd of=/dev/nvme0n2 bs=4096 conv=sync oflag=direct' \
	-c "$ticks" --cut 'match:^tick 5$' \
	-c 'blkzone report -c 2 /dev/nvme0n1 | tee /tmp/r
	    grep -q "^  start: 0x000000000, len 0x020000, cap 0x01f000, wptr 0x000018 .*zcond: 2(oi)" /tmp/r &&
	    grep -q "^  start: 0x000020000, len 0x020000, cap 0x01f000, wptr 0x000000 .*zcond: 1(em)" /tmp/r' \
	-c 'head -c 9 /dev/nvme0n2; echo; [ "$(head -c 9 /dev/nvme0n2)" = dvzns-cut ]'; then
	has A '^=== boot 1 #4: power cut [0-9.]+ s into boot 1 #4 \(reset\)$'
	has A '^ok   zones empty, sequential, len and cap as given = 16$'
	has A '^ok   a write away from the write pointer = fails$'
	has A '^zns: 6 commands in 2 boots, 0 failed; total [0-9.]+ s$'
	grep -v "^zns: qemu:" "$tmp/A" | sed "s/^/    /"
fi

if [ "${DV_TEST_QUICK:-0}" != 1 ]; then
	if run B 1 --timeout 200 --zone-size 32M --zone-cap 32M --max-open 4 --max-active 6 \
		--zns-size 256M --conv-size 64M \
		-c 'geometry 8 65536 65536 4 6 67108864' -c 'echo deliberate failure; exit 3'; then
		has B '^=== boot 1 #1: rc=0 '
		has B '^deliberate failure$'
		has B '^=== boot 1 #2: rc=3 '
		has B '^zns: 2 commands in 1 boots, 1 failed: boot 1 #2 rc=3; total [0-9.]+ s$'
	fi
	if run C 3 --timeout 20 -c 'echo waiting; sleep 600'; then
		has C '^zns: FAILED: time bound: the guest did not finish within 20 s; QEMU killed$'
		# Not "waiting": on a loaded machine the boot alone can outlast 20 s.
		has C '^=== boot 1 #1: did not finish$'
		pid=$(cat "$build/zns/qemu.pid")
		if kill -0 "$pid" 2>/dev/null; then
			echo "FAIL C: QEMU (pid $pid) still running after the time bound"
			fails=$((fails + 1))
		fi
	fi
fi
echo "tests/zns: $fails failed, $(($(date +%s) - start)) s"
[ $fails -eq 0 ]
