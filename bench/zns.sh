#!/usr/bin/env bash
# bench/zns.sh - write amplification and zone resets per GB written by the
# engine on an emulated NVMe ZNS namespace, next to the same workload on a
# regular file with the same zones. Not for speed (the guest runs under TCG):
# it shows whether the zoned path (superblock log, zone capacity below its
# size, open/active limits, zone finish) does work the file does not.
#
#   bench/zns.sh            (about 5 minutes here: the file's ext4 is slow under TCG)
#
# Both runs in one QEMU guest (tests/zns/guest.bash): `dynvme bench engine
# --wa` fills KEYS keys of VALUE-byte values, then overwrites random keys for
# WA bytes of values (GC runs), on
#   zns   /dev/nvme0n1: ZONES zones of ZONE_SIZE holding ZONE_CAP, open and
#         active limits LIMIT; two of the zones hold the superblock log, so
#         ZONES - 2 data zones;
#   file  a file on an ext4 scratch disk, ZONES - 2 zones of ZONE_CAP (the
#         same data space, zone by zone), superblock copies in its first MiB.
# Environment (defaults): ZONE_SIZE (4M), ZONE_CAP (3M), ZONES (64), LIMIT
# (8), KEYS (40000), VALUE (1000), WA (200M), DV_BUILD (build).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
build=${DV_BUILD:-$repo/build}
zone_size=${ZONE_SIZE:-4M} zone_cap=${ZONE_CAP:-3M} zones=${ZONES:-64} limit=${LIMIT:-8}
keys=${KEYS:-40000} value=${VALUE:-1000} wa=${WA:-200M}

mib() { # SIZE with an M suffix -> MiB
	case $1 in *M) echo "${1%M}" ;; *) echo "bench/zns.sh: sizes in M (got $1)" >&2; exit 2 ;; esac
}
zs=$(mib "$zone_size") zc=$(mib "$zone_cap")
file_mib=$((1 + (zones - 2) * zc))
[ -x "$build/dynvme" ] || { echo "bench/zns.sh: no $build/dynvme (make)" >&2; exit 2; }

common="--keys $keys --value-bytes $value --reads 1000 --qd 32 --wa $wa"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$repo/tests/zns/guest.bash" --dir "$build/zns-bench" --dynvme "$build/dynvme" --timeout 900 \
	--zone-size "$zone_size" --zone-cap "$zone_cap" --zns-size "$((zones * zs))M" \
	--max-open "$limit" --max-active "$limit" --conv-size 16M --scratch "$((file_mib + 64))M" \
	-c "dynvme bench engine --data /dev/nvme0n1 $common" \
	-c "dynvme bench engine --data /scratch/bench.img --size ${file_mib}M --zone-bytes $zone_cap $common" \
	>"$out" 2>&1 || { cat "$out"; echo "bench/zns.sh: the guest run failed" >&2; exit 1; }

# The RESULT line of run N (1: zns, 2: file) with key K.
result() {
	awk -v n="=== boot 1 #$1: " -v k="$2" '
		index($0, n) == 1 { on = !on }
		on && /^RESULT / { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) v = kv[2] } }
		END { print v }' "$out"
}
grep -E '^(=== boot|engine bench|overwrite|gc  |zones  )' "$out"
echo
printf '%-6s %-44s %8s %8s %8s %10s %10s\n' run device "WA" "GC WA" resets "device GB" "resets/GB"
for n in 1 2; do
	name=$([ $n -eq 1 ] && echo zns || echo file)
	dev=$([ $n -eq 1 ] && echo "/dev/nvme0n1 ${zone_size}B zones holding ${zone_cap}B" ||
		echo "file, $((zones - 2)) zones of ${zone_cap}B")
	r=$(result $n zone_resets) gb=$(result $n device_gb)
	[ -n "$r" ] && [ -n "$gb" ] || { echo "bench/zns.sh: no RESULT from run $n" >&2; cat "$out"; exit 1; }
	printf '%-6s %-44s %8s %8s %8s %10s %10.1f\n' "$name" "$dev" "$(result $n write_amplification)" \
		"$(result $n gc_write_amplification)" "$r" "$gb" "$(awk -v r="$r" -v g="$gb" 'BEGIN { print (g > 0 ? r / g : 0) }')"
done
