#!/usr/bin/env bash
# Installs the Debian packages dynvme needs to build and test, only those
# missing. Usage: scripts/deps.sh [build|test|bench|zns]
set -euo pipefail
need=(make gcc clang libclang-rt-14-dev pkg-config liburing-dev libxxhash-dev libsodium-dev)
# tests/server/*.sh drive `dynvme serve` with redis-cli, python3-redis (under
# /usr/bin/python3), curl and ip netns; `make test` runs `deps.sh build`, so
# build installs them too. tests/server/redis_suite.sh runs Redis's own test
# suite (Tcl) when its source tree is there; tests/server/fuzz_cmd.sh compares
# dynvme's replies with a redis-server 7 it starts on loopback (redis-server).
# tests/cluster/wire_peer.py tags its frames with ChaCha20-Poly1305 from
# python3-cryptography.
test_need=(redis-tools redis-server python3-redis python3-cryptography curl iproute2 tcl8.6)
case "${1:-build}" in
build | test) need+=("${test_need[@]}") ;;
bench) need+=(fio rocksdb-tools python3 redis-server redis-tools) ;;
# tests/zns: a QEMU guest under TCG from the Debian kernel, an initramfs of
# busybox-static with the kernel's NVMe modules (kmod's modprobe resolves
# them), util-linux's blkzone, xz-utils and binutils to unpack the kernel,
# e2fsprogs for the guest's scratch file system.
zns) need+=(qemu-system-x86 linux-image-amd64 busybox-static kmod util-linux xz-utils binutils e2fsprogs) ;;
esac
missing=()
for p in "${need[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
	{ $sudo apt-get update >/dev/null && $sudo apt-get install -y --no-install-recommends "${missing[@]}"; }
