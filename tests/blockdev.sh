#!/usr/bin/env bash
# The engine on a real block device: a loop device over a file (O_DIRECT,
# BLKGETSIZE64, BLKSSZGET, zone reset by BLKDISCARD). Needs root and
# losetup; skipped (77) otherwise.
set -u
bin=${DV_BUILD:-build}/dynvme
[ "$(id -u)" -eq 0 ] && command -v losetup >/dev/null || { echo "needs root and losetup"; exit 77; }
dir=$(mktemp -d "${DV_TEST_TMP:-/tmp}/dv-blk.XXXXXX")
loop=""
cleanup() { [ -n "$loop" ] && losetup -d "$loop"; rm -rf "$dir"; }
trap cleanup EXIT
truncate -s 96M "$dir/backing"
loop=$(losetup --find --show --direct-io=on "$dir/backing" 2>/dev/null) || { echo "no loop device available"; exit 77; }
# GC has to run (discarding zones): overwrite several times the device.
"$bin" bench engine --data "$loop" --keys 30000 --reads 5000 --qd 32 --zone-bytes 1M --value-bytes 900 \
	--wa 200M --keep >"$dir/out" 2>&1 || { echo "FAIL: bench on $loop"; tail -5 "$dir/out"; exit 1; }
grep -E "^(fill|read|restart|overwrite|gc) " "$dir/out"
zones=$(sed -n 's/.*RESULT .*gc_zones=\([0-9]*\).*/\1/p' "$dir/out")
[ "${zones:-0}" -gt 0 ] || { echo "FAIL: no zone was collected"; exit 1; }
grep -q "errors 0 mismatches 0" "$dir/out" || { echo "FAIL: errors"; exit 1; }
"$bin" check "$loop" >"$dir/check" 2>&1 || { echo "FAIL: check"; cat "$dir/check"; exit 1; }
tail -1 "$dir/check"
