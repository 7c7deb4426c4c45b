#!/usr/bin/env bash
# dynvme check: exit 0 on a clean data file, 1 after a byte of a record or
# of a zone index is changed, 2 when the path cannot be checked.
set -u
bin=${DV_BUILD:-build}/dynvme
dir=$(mktemp -d "${DV_TEST_TMP:-/tmp}/dv-check.XXXXXX")
trap 'rm -rf "$dir"' EXIT
img=$dir/t.img
fail() { echo "FAIL: $*"; exit 1; }

"$bin" bench engine --data "$img" --size 64M --keys 20000 --reads 1000 --qd 16 --zone-bytes 1M --keep >"$dir/bench.out" 2>&1 ||
	fail "bench: $(tail -3 "$dir/bench.out")"
"$bin" check "$img" >"$dir/out" 2>&1
rc=$?
[ $rc -eq 0 ] || fail "clean file: exit $rc: $(cat "$dir/out")"
grep -q "clean" "$dir/out" || fail "clean file not reported clean"

# Flip one byte inside the first record of zone 0 (data starts at 1 MiB).
cp "$img" "$dir/rec.img"
printf '\xff' | dd of="$dir/rec.img" bs=1 seek=$((1048576 + 50)) conv=notrunc status=none
"$bin" check "$dir/rec.img" >"$dir/out" 2>&1
rc=$?
[ $rc -eq 1 ] || fail "damaged record: exit $rc: $(cat "$dir/out")"
grep -q "DAMAGED" "$dir/out" || fail "damaged record not reported"

# Zero the first superblock copy: a crash during a superblock write leaves
# one copy bad, so this is reported but is not damage while the other copy
# holds; the data must all still be there.
cp "$img" "$dir/sb.img"
dd if=/dev/zero of="$dir/sb.img" bs=4096 count=1 conv=notrunc status=none
"$bin" check "$dir/sb.img" >"$dir/out" 2>&1
rc=$?
[ $rc -eq 0 ] || fail "one bad superblock copy: exit $rc: $(cat "$dir/out")"
grep -q "copy 0: not" "$dir/out" || fail "bad superblock copy not reported: $(cat "$dir/out")"
grep -q "20000 keys" "$dir/out" || fail "keys lost with one superblock copy: $(cat "$dir/out")"

"$bin" check "$dir/missing.img" >"$dir/out" 2>&1
rc=$?
[ $rc -eq 2 ] || fail "missing file: exit $rc"
head -c 8M /dev/zero >"$dir/zero.img"
"$bin" check "$dir/zero.img" >"$dir/out" 2>&1
rc=$?
[ $rc -eq 2 ] || fail "not a dynvme file: exit $rc: $(cat "$dir/out")"
echo "check: exit codes 0 / 1 / 0 (copy reported) / 2 / 2 as expected"
