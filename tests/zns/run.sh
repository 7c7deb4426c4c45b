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
#  D. the engine on the default geometry (64 MiB zones holding 62 MiB, 8 open
#     and 8 active): tests/io/test_zoned_dev on both namespaces (the zone
#     ioctls, capacity, limits), `dynvme bench engine` and `dynvme check` on
#     both, tests/storage/test_crash on the zoned one.
#  E. the engine under GC pressure with small zones (1 MiB holding 768 KiB,
#     4 open, 4 active): test_zoned_dev, test_zoned's GC load with restarts
#     on both namespaces, test_crash on the conventional one; then the power
#     cut: test_zoned's writer (GC under way) cut by system_reset, and in the
#     next boot every key it printed as acknowledged must be there, the zones'
#     write pointers must agree with what recovery decided, dynvme check clean.
# B and C check the harness itself; DV_TEST_QUICK=1 (the sanitizer builds of
# `make check`) runs A only; DV_ZNS_RUNS="D E" runs only those (by hand). Exit 77 (skipped) only where guest.bash says QEMU
# cannot run here at all.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${DV_BUILD:-build}
g=("$here/guest.bash" --dir "$build/zns" --dynvme "$build/dynvme" --file "$here/geometry:/bin/geometry")
tbin=("--bin" "$build/tests/io/test_zoned_dev" "--bin" "$build/tests/storage/test_zoned" "--bin"
	"$build/tests/storage/test_crash")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
start=$(date +%s)

runs=${DV_ZNS_RUNS:-A B C D E}
[ "${DV_TEST_QUICK:-0}" != 1 ] || runs=A

# RUN NAME WANT_RC ARGS...: guest.bash ARGS, its report in $tmp/NAME; false
# (and nothing run) when NAME is not in $runs.
run() {
	local name=$1 want=$2 rc t0=$SECONDS
	[[ " $runs " == *" $name "* ]] || return 1
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

# SUMMARY NAME: the lines of report NAME that say how its commands went.
summary() {
	grep -aE '^(=== boot [0-9]+ #[0-9]+: rc=|=== boot .*power cut|zns: [0-9]+ commands|host-managed zones:|'\
'conventional:|/dev/nvme|[0-9]+ cycles|write opening|RESULT (fill|overwrite|write_amp)|gc  |zone (model|limits)|'\
'superblock log zone|zones: |writer:|dump:|power cut:)' "$tmp/$1" | sed 's/^/    /'
}

# The power cut of run E: each key's last version acknowledged before the
# cut (boot 1) must be there after it (boot 2), or a newer one that was in
# flight; every key is read back (3000 of them; the writer writes 2944).
acks_kept() {
	awk '
	/^=== boot 1 / { b = 1 } /^=== boot 2 / { b = 2 }
	b == 1 && /^ack [0-9]+ [0-9]+$/ { v = $3 + 0; if (v > last[$2] + 0) last[$2] = v; acks++ }
	b == 2 && /^have [0-9]+ [0-9]+$/ { have[$2] = $3 + 0; haves++ }
	END {
		for (k in last) {
			keys++
			if (!(k in have) || have[k] < last[k]) {
				if (++lost <= 10) printf "FAIL key %s: acknowledged version %d before the cut, %s after it\n", k, last[k], (k in have) ? have[k] : "nothing"
			} else if (have[k] > last[k]) newer++
		}
		printf "power cut: %d acknowledgements of %d keys before it, %d keys read after it: %d lost, %d at a newer version (in flight)\n", acks, keys, haves, lost, newer
		exit (lost > 0 || haves != 3000 || keys < 1000)
	}' "$tmp/$1" >"$tmp/$1.acks"
	local rc=$?
	cat "$tmp/$1.acks" >>"$tmp/$1"
	[ $rc -eq 0 ] && return 0
	echo "FAIL $1: acknowledged writes lost in the power cut:"
	sed 's/^/    /' "$tmp/$1.acks"
	fails=$((fails + 1))
	return 1
}

n1=DV_TEST_DEVICE=/dev/nvme0n1 n2=DV_TEST_DEVICE=/dev/nvme0n2
if run D 0 --timeout 300 --max-open 8 --max-active 8 "${tbin[@]}" \
	-c "$n1 test_zoned_dev" -c "$n2 test_zoned_dev" \
	-c 'dynvme bench engine --data /dev/nvme0n1 --keys 10000 --reads 3000 --qd 32 --wa 10M' \
	-c 'dynvme check /dev/nvme0n1' \
	-c 'dynvme bench engine --data /dev/nvme0n2 --keys 10000 --reads 3000 --qd 32 --zone-bytes 4M --wa 10M' \
	-c 'dynvme check /dev/nvme0n2' \
	-c "$n1 DV_CRASH_CYCLES=5 test_crash"; then
	has D '^host-managed zones: 16 of 67108864 bytes holding 65011712, 0 conventional, limits 8 open 8 active$'
	has D '^zone model: host-managed; 14 data zones every 67108864 bytes, 65011712 written of each'
	has D '^zone limits: device 8 open, 8 active .* at most 7 data zones open'
	has D '^/dev/nvme0n1: clean$'
	has D '^/dev/nvme0n2: clean$'
	has D '^5 cycles'
	summary D
fi
if run E 0 --timeout 400 --zone-size 1M --zone-cap 768K --zns-size 48M --max-open 4 --max-active 4 \
	--conv-size 64M "${tbin[@]}" \
	-c "$n1 test_zoned_dev" \
	-c "$n1 DV_ZONED_OPS=40000 test_zoned" \
	-c "$n2 DV_TEST_ZONE_BYTES=1048576 DV_ZONED_OPS=40000 test_zoned" \
	-c "$n2 DV_CRASH_CYCLES=5 test_crash" \
	-c "$n1 DV_WRITER_PREFILL=70000 test_zoned write" --cut 'match:^writing 3000 acked' \
	-c "$n1 test_zoned dump" -c 'dynvme check /dev/nvme0n1'; then
	has E '^host-managed zones: 48 of 1048576 bytes holding 786432, 0 conventional, limits 4 open 4 active$'
	has E '^/dev/nvme0n1: 3 rounds of 40000 writes, [1-9][0-9]* zones reset by GC, [1-9][0-9]* superblock log switches, at most [1-3] data zones open \(limit 3\)'
	has E '^/dev/nvme0n2: 3 rounds of 40000 writes, [1-9][0-9]* zones reset by GC'
	has E '^=== boot 1 #5: power cut'
	has E '^writer: /dev/nvme0n1, prefilled 70000 writes, [1-9][0-9]* zones reset by GC'
	has E '^dump: 2944 of 3000 keys present; .* 0 write pointer mismatches; 0 zones disagree with the device$'
	has E '^dump: check clean$'
	has E '^/dev/nvme0n1: clean$'
	acks_kept E
	summary E
fi
echo "tests/zns: $fails failed, $(($(date +%s) - start)) s"
[ $fails -eq 0 ]
