#!/usr/bin/env bash
# tests/zns/guest.bash: runs commands inside a QEMU guest that has an emulated
# NVMe ZNS namespace and a conventional NVMe namespace, and reports each
# command's output and exit code.
#
# usage: tests/zns/guest.bash [options] [--] [CMD...]
#   -c, --cmd CMD        a command for the current boot (positional CMDs too);
#                        run by the guest's busybox sh, in /tmp, stdin /dev/null
#   --boot               later commands run in the next boot, after a clean
#                        reboot of the guest (same QEMU, zone state kept)
#   --cut WHEN           cut the power while the last command given so far runs,
#                        then boot again (later commands run in that boot).
#                        WHEN: SECONDS after the command starts (fractions
#                        allowed), or match:REGEX, when a line of its output
#                        matches the extended regex. A cut command that ends
#                        before its cut is a failure ("cut missed").
#   --cut-mode MODE      reset (default): the monitor's system_reset; the guest
#                          loses RAM and everything not yet submitted, the
#                          emulated device keeps what it was given and its zone
#                          state (write pointers, conditions).
#                        kill: SIGKILL QEMU and start a new one on the same
#                          files. quit: the monitor's quit, then the same.
#                          Both lose the emulated zone state: QEMU (7.2) keeps
#                          zone write pointers in RAM only, so after the restart
#                          every zone of nvme0n1 is empty again while its data
#                          stays in the file. Meaningful for nvme0n2 only.
#   --bin PATH           copy a program into the guest's /bin (with the shared
#                        libraries ldd finds); repeatable
#   --file SRC:DST       copy a file into the guest at DST; repeatable
#   --module NAME        load this kernel module too (with its dependencies)
#   --env NAME=VALUE     export in every command; repeatable
#   --dynvme PATH        the dynvme binary for /bin/dynvme
#                        (default $DV_BUILD/dynvme, else build/dynvme)
#   --zone-size SIZE     zone size of nvme0n1 (default 64M)
#   --zone-cap SIZE      zone capacity (default 62M; equal to --zone-size to
#                        have capacity = size)
#   --max-open N         max open zones (default 16; 0 = no limit)
#   --max-active N       max active zones (default 16; 0 = no limit)
#   --zns-size SIZE      size of nvme0n1, a multiple of the zone size (default 1G)
#   --conv-size SIZE     size of nvme0n2 (default 1G)
#   --scratch SIZE       an ext4 file system of SIZE (a virtio disk, /dev/vdb)
#                        mounted on /scratch, and DV_TEST_TMP=/scratch: for
#                        tests that need O_DIRECT on files (the guest's / and
#                        /tmp are RAM, where O_DIRECT fails). Default: none
#   --mem SIZE           guest RAM (default 1G)    --smp N  guest CPUs (default 2)
#   --timeout SECS       bound on the whole run, every boot (default 300): then
#                        QEMU is killed and the run fails
#   --dir DIR            build directory (default $DV_BUILD/zns, else build/zns)
#   --reuse-images       keep nvme0n1/nvme0n2 backing files from an earlier run
#                        (default: fresh, zeroed sparse files)
#   --kernel KVER        guest kernel (default: the newest /boot/vmlinuz-KVER
#                        whose /lib/modules/KVER exists)
#   -q, --quiet          print only the summary and failed commands' output
#
# Sizes take K, M, G suffixes (powers of 1024).
#
# The guest: the Debian kernel (linux-image-amd64) and an initramfs built here
# in DIR/initramfs on every run: busybox-static, the NVMe and virtio-blk modules
# (modprobe -S KVER --show-depends), blkzone from util-linux, /bin/dynvme, the
# --bin programs, their shared libraries, and tests/zns/guest-init as /init.
# Devices: /dev/nvme0n1 the zoned namespace (nsid 1), /dev/nvme0n2 the
# conventional one (nsid 2), both with 4 KiB logical and physical blocks on one
# controller; /dev/vda a 1 MiB control disk the init uses to count boots.
# QEMU runs with -accel tcg (a KVM guest hangs at boot on this machine).
#
# Output: the QEMU command line, each command's output between "=== boot B
# #N: CMD" and "=== boot B #N: rc=RC (SECS s)", boot times, total time. Logs stay
# in DIR: console.Q.log (kernel console, ttyS0), serial.Q.log (the commands'
# channel, ttyS1), monitor.Q.log, qemu.Q.log, per QEMU process Q.
#
# Exit: 0 every command exited 0 and the guest powered off after the last
# boot; 1 a command failed; 2 bad usage or a setup error; 3 the guest did not
# finish (time bound, crash, unexpected reboot, missed cut); 77 QEMU cannot run
# here (its packages cannot be installed), with the reason on the last line.
#
# Installs qemu-system-x86, linux-image-amd64, busybox-static, kmod (and the
# few tools it uses: util-linux, xz-utils, binutils, e2fsprogs) with apt-get
# when missing (scripts/deps.sh zns); downloads nothing else.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
M=@@DVZNS@@

die() {
	echo "guest.bash: $*" >&2
	exit 2
}

# --- options ---------------------------------------------------------------
build=${DV_BUILD:-build}
dir=""
dynvme=""
zone_size=64M zone_cap=62M max_open=16 max_active=16 zns_size=1G conv_size=1G
mem=1G smp=2 timeout_s=300 reuse=0 kver="" quiet=0 cut_mode=reset scratch=0
bins=() files=() modules=() envs=()
nboots=1
declare -A cmd_count=()     # boot -> number of commands
declare -a cmd_boot=() cmd_text=()
declare -A cut_when=()      # "boot" -> WHEN (the cut is during the last command of that boot)

add_cmd() {
	local b=$nboots
	cmd_count[$b]=$((${cmd_count[$b]:-0} + 1))
	cmd_boot+=("$b")
	cmd_text+=("$1")
}

need_arg() { [ $# -ge 2 ] || die "$1 needs an argument"; }

while [ $# -gt 0 ]; do
	case $1 in
	-c | --cmd) need_arg "$@"; add_cmd "$2"; shift 2 ;;
	--boot)
		[ "${cmd_count[$nboots]:-0}" -gt 0 ] || die "--boot after a boot without commands"
		nboots=$((nboots + 1)); shift ;;
	--cut)
		need_arg "$@"
		[ "${cmd_count[$nboots]:-0}" -gt 0 ] || die "--cut needs a command before it in its boot"
		case $2 in
		match:?*) ;;
		*) [[ $2 =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--cut $2: SECONDS or match:REGEX" ;;
		esac
		cut_when[$nboots]=$2
		nboots=$((nboots + 1)); shift 2 ;;
	--cut-mode)
		need_arg "$@"
		case $2 in reset | kill | quit) cut_mode=$2 ;; *) die "--cut-mode: reset, kill or quit" ;; esac
		shift 2 ;;
	--bin) need_arg "$@"; bins+=("$2"); shift 2 ;;
	--file) need_arg "$@"; [[ $2 == *:/* ]] || die "--file SRC:/DST"; files+=("$2"); shift 2 ;;
	--module) need_arg "$@"; modules+=("$2"); shift 2 ;;
	--env) need_arg "$@"; [[ $2 =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "--env NAME=VALUE"; envs+=("$2"); shift 2 ;;
	--dynvme) need_arg "$@"; dynvme=$2; shift 2 ;;
	--zone-size) need_arg "$@"; zone_size=$2; shift 2 ;;
	--zone-cap) need_arg "$@"; zone_cap=$2; shift 2 ;;
	--max-open) need_arg "$@"; max_open=$2; shift 2 ;;
	--max-active) need_arg "$@"; max_active=$2; shift 2 ;;
	--zns-size) need_arg "$@"; zns_size=$2; shift 2 ;;
	--conv-size) need_arg "$@"; conv_size=$2; shift 2 ;;
	--scratch) need_arg "$@"; scratch=$2; shift 2 ;;
	--mem) need_arg "$@"; mem=$2; shift 2 ;;
	--smp) need_arg "$@"; smp=$2; shift 2 ;;
	--timeout) need_arg "$@"; timeout_s=$2; shift 2 ;;
	--dir) need_arg "$@"; dir=$2; shift 2 ;;
	--reuse-images) reuse=1; shift ;;
	--kernel) need_arg "$@"; kver=$2; shift 2 ;;
	-q | --quiet) quiet=1; shift ;;
	-h | --help) sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	--) shift; for c in "$@"; do add_cmd "$c"; done; break ;;
	-*) die "unknown option $1 (--help)" ;;
	*) add_cmd "$1"; shift ;;
	esac
done
# A trailing --boot or --cut leaves an empty last boot: a cut with nothing
# after it still reboots, into a boot that only reports READY and DONE.
[ ${#cmd_text[@]} -gt 0 ] || die "no commands (--help)"
[ -n "$dir" ] || dir=$build/zns
[ -n "$dynvme" ] || dynvme=$build/dynvme
[[ $timeout_s =~ ^[0-9]+$ ]] && [ "$timeout_s" -gt 0 ] || die "--timeout: whole seconds"
[[ $smp =~ ^[1-9][0-9]*$ ]] || die "--smp: a count"
[[ $max_open =~ ^[0-9]+$ ]] || die "--max-open: a count"
[[ $max_active =~ ^[0-9]+$ ]] || die "--max-active: a count"

bytes() { # SIZE -> bytes on stdout, or fail
	local n=${1%[KkMmGg]} u=${1##*[0-9]}
	[[ $n =~ ^[0-9]+$ ]] || return 1
	case $u in
	"") echo "$n" ;; K | k) echo $((n << 10)) ;; M | m) echo $((n << 20)) ;; G | g) echo $((n << 30)) ;;
	*) return 1 ;;
	esac
}
zsz=$(bytes "$zone_size") || die "--zone-size $zone_size: not a size"
zcap=$(bytes "$zone_cap") || die "--zone-cap $zone_cap: not a size"
nsz=$(bytes "$zns_size") || die "--zns-size $zns_size: not a size"
csz=$(bytes "$conv_size") || die "--conv-size $conv_size: not a size"
bytes "$mem" >/dev/null || die "--mem $mem: not a size"
ssz=$(bytes "$scratch") || die "--scratch $scratch: not a size"
[ "$ssz" -eq 0 ] || [ "$ssz" -ge $((16 << 20)) ] || die "--scratch: at least 16M"
lbs=4096
[ $((zsz % lbs)) -eq 0 ] && [ "$zsz" -gt 0 ] || die "--zone-size: a multiple of $lbs"
[ $((zcap % lbs)) -eq 0 ] && [ "$zcap" -gt 0 ] && [ "$zcap" -le "$zsz" ] ||
	die "--zone-cap: a multiple of $lbs, at most the zone size"
[ $((nsz % zsz)) -eq 0 ] && [ "$nsz" -ge "$zsz" ] || die "--zns-size: a multiple of the zone size"
[ $((csz % lbs)) -eq 0 ] && [ "$csz" -gt 0 ] || die "--conv-size: a multiple of $lbs"
[ "$max_open" -eq 0 ] || [ "$max_active" -eq 0 ] || [ "$max_open" -le "$max_active" ] ||
	die "--max-open must not exceed --max-active"
for b in "${!cut_when[@]}"; do
	[ "$b" -lt "$nboots" ] || die "internal: cut in the last boot"
done

# --- host packages -----------------------------------------------------------
[ -x "$repo/scripts/deps.sh" ] || die "no $repo/scripts/deps.sh"
if ! "$repo/scripts/deps.sh" zns >&2; then
	echo "skip: cannot install qemu-system-x86, linux-image-amd64, busybox-static, kmod with apt-get"
	exit 77
fi
qemu=$(command -v qemu-system-x86_64) || { echo "skip: no qemu-system-x86_64 after installing qemu-system-x86"; exit 77; }
"$qemu" --version >/dev/null 2>&1 || { echo "skip: qemu-system-x86_64 does not run here"; exit 77; }
[ -x /bin/busybox ] || die "no /bin/busybox (busybox-static)"
[ -x "$dynvme" ] || die "no dynvme binary at $dynvme (make, or --dynvme PATH)"
if [ -z "$kver" ]; then
	for k in $(ls /boot/vmlinuz-* 2>/dev/null | sed 's|^/boot/vmlinuz-||' | sort -V); do
		[ -d "/lib/modules/$k" ] && kver=$k
	done
	[ -n "$kver" ] || die "no /boot/vmlinuz-KVER with /lib/modules/KVER (linux-image-amd64)"
fi
kernel=/boot/vmlinuz-$kver
[ -r "$kernel" ] && [ -d "/lib/modules/$kver" ] || die "kernel $kver: no $kernel or /lib/modules/$kver"

mkdir -p "$dir" || die "cannot create $dir"
dir=$(cd "$dir" && pwd)
exec 9>"$dir/lock"
flock -n 9 || die "$dir is in use by another guest.bash run (lock $dir/lock)"

# The kernel QEMU boots: the bzImage decompresses itself under TCG, which costs
# about 7 s of every boot with Debian's xz kernel, so boot the uncompressed
# vmlinux ELF through its PVH entry instead (QEMU loads it directly), made once
# per kernel version from the bzImage's xz payload. Falls back to the bzImage
# when that cannot be done (another compression, no PVH entry note).
vmlinux=$dir/vmlinux-$kver
if [ ! -s "$vmlinux" ] || [ "$kernel" -nt "$vmlinux" ]; then
	off=$(grep -aobm1 $'\xfd7zXZ\x00' "$kernel" | head -n 1 | cut -d: -f1)
	if [ -n "$off" ] && command -v xz >/dev/null; then
		tail -c +$((off + 1)) "$kernel" | xz -dcq >"$vmlinux.tmp" 2>/dev/null
		# XEN_ELFNOTE_PHYS32_ENTRY (18): the PVH entry point QEMU needs.
		if [ "$(head -c 4 "$vmlinux.tmp" | od -An -c | tr -d ' ')" = 177ELF ] &&
			readelf -n "$vmlinux.tmp" 2>/dev/null | grep -q 'Xen.*0x00000012'; then
			mv "$vmlinux.tmp" "$vmlinux"
		fi
	fi
	rm -f "$vmlinux.tmp"
fi
[ -s "$vmlinux" ] && kernel=$vmlinux

# --- initramfs -----------------------------------------------------------------
root=$dir/initramfs
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,etc/dvzns,lib/modules/dvzns} || die "cannot create $root"

# Copies ELF program $1 to $root$2 and every shared library ldd names to the
# same path in the guest.
copy_prog() {
	local src=$1 dst=$2 line lib
	[ -f "$src" ] && [ -x "$src" ] || die "$src: not an executable file"
	mkdir -p "$(dirname "$root$dst")" && cp -L "$src" "$root$dst" || die "cannot copy $src"
	local out
	out=$(ldd "$src" 2>&1) || return 0 # a static program: nothing more
	while read -r line; do
		case $line in
		*"not found"*) die "$src: shared library missing: $line" ;;
		*"=> /"*) lib=${line#*=> }; lib=${lib%% (*} ;;
		/*) lib=${line%% (*} ;;
		*) continue ;;
		esac
		[ -e "$root$lib" ] && continue
		mkdir -p "$(dirname "$root$lib")" && cp -L "$lib" "$root$lib" || die "cannot copy $lib for $src"
	done <<<"$out"
}

cp /bin/busybox "$root/bin/busybox" || die "cannot copy busybox"
copy_prog "$dynvme" /bin/dynvme
blkzone=$(PATH=$PATH:/usr/sbin:/sbin command -v blkzone || true)
[ -n "$blkzone" ] && copy_prog "$blkzone" /sbin/blkzone
for b in "${bins[@]}"; do copy_prog "$b" "/bin/$(basename "$b")"; done
for f in "${files[@]}"; do
	src=${f%%:/*} dst=/${f#*:/}
	mkdir -p "$(dirname "$root$dst")" && cp -L "$src" "$root$dst" || die "--file $f: cannot copy"
done
cp "$here/guest-init" "$root/init" && chmod 755 "$root/init" || die "cannot copy guest-init"

# Modules in dependency order, each once, decompressed (busybox insmod reads .ko).
n=0
declare -A seen_mod=()
[ "$ssz" -eq 0 ] || modules+=(ext4)
for want in nvme virtio_blk virtio_pci "${modules[@]}"; do
	deps=$(modprobe -S "$kver" --show-depends "$want" 2>&1) || die "module $want: $deps"
	while read -r kw path _; do
		[ "$kw" = insmod ] || continue # "builtin X" needs nothing
		[ -z "${seen_mod[$path]:-}" ] || continue
		seen_mod[$path]=1
		n=$((n + 1))
		base=$(basename "$path")
		out=$root/lib/modules/dvzns/$(printf %03d $n)-${base%%.ko*}.ko
		case $path in
		*.ko.xz) xz -dc "$path" >"$out" ;;
		*.ko.zst) zstd -qdc "$path" >"$out" ;;
		*.ko.gz) gzip -dc "$path" >"$out" ;;
		*) cp "$path" "$out" ;;
		esac || die "cannot unpack $path"
	done <<<"$deps"
done

if [ "$ssz" -eq 0 ]; then
	echo "nvme0n1 nvme0n2 vda" >"$root/etc/dvzns/devices"
else
	echo "nvme0n1 nvme0n2 vda vdb" >"$root/etc/dvzns/devices"
	: >"$root/etc/dvzns/scratch"
fi
if [ ${#envs[@]} -gt 0 ]; then
	mkdir -p "$root/etc/dvzns/env"
	for e in "${envs[@]}"; do printf '%s' "${e#*=}" >"$root/etc/dvzns/env/${e%%=*}"; done
fi
declare -A nth=()
for i in "${!cmd_text[@]}"; do
	b=${cmd_boot[$i]}
	nth[$b]=$((${nth[$b]:-0} + 1))
	mkdir -p "$root/etc/dvzns/boot$b"
	printf '%s\n' "${cmd_text[$i]}" >"$root/etc/dvzns/boot$b/$(printf %03d "${nth[$b]}").sh"
	if [ -n "${cut_when[$b]:-}" ] && [ "${nth[$b]}" -eq "${cmd_count[$b]}" ]; then
		: >"$root/etc/dvzns/boot$b/$(printf %03d "${nth[$b]}").cut"
	fi
done
for ((b = 1; b <= nboots; b++)); do mkdir -p "$root/etc/dvzns/boot$b"; done
# Uncompressed: the guest unpacks it under TCG, where gunzip costs seconds.
(cd "$root" && find . | LC_ALL=C sort | /bin/busybox cpio -o -H newc 2>/dev/null) >"$dir/initramfs.cpio" ||
	die "cannot pack the initramfs"

# --- backing files ---------------------------------------------------------------
fresh() { # PATH BYTES
	if [ "$reuse" -eq 1 ] && [ -f "$1" ] && [ "$(stat -c %s "$1")" -eq "$2" ]; then return 0; fi
	rm -f "$1" && truncate -s "$2" "$1" || die "cannot create $1"
}
fresh "$dir/zns.img" "$nsz"
fresh "$dir/conv.img" "$csz"
rm -f "$dir/ctl.img" && truncate -s 1M "$dir/ctl.img" || die "cannot create $dir/ctl.img"
rm -f "$dir/scratch.img"
if [ "$ssz" -gt 0 ]; then
	truncate -s "$ssz" "$dir/scratch.img" &&
		PATH=$PATH:/usr/sbin:/sbin mkfs.ext4 -q -F -L dvzns-scratch "$dir/scratch.img" ||
		die "cannot make the scratch file system $dir/scratch.img"
fi
rm -f "$dir"/{console,serial,monitor,qemu}.*.log

zopts="zoned=true,zoned.zone_size=$zsz,zoned.zone_capacity=$zcap"
zopts+=",zoned.max_open=$max_open,zoned.max_active=$max_active"
blk="logical_block_size=$lbs,physical_block_size=$lbs"
qargs=(
	-accel tcg -cpu max -smp "$smp" -m "$mem"
	-nodefaults -no-user-config -nographic
	-kernel "$kernel" -initrd "$dir/initramfs.cpio"
	-append "console=ttyS0,115200 quiet panic=-1 mitigations=off"
	-drive "file=$dir/zns.img,if=none,id=zns0,format=raw"
	-drive "file=$dir/conv.img,if=none,id=conv0,format=raw"
	-drive "file=$dir/ctl.img,if=virtio,format=raw"
	-device nvme,serial=dvzns1,id=nvme0
	-device "nvme-ns,drive=zns0,bus=nvme0,nsid=1,$blk,$zopts"
	-device "nvme-ns,drive=conv0,bus=nvme0,nsid=2,$blk"
)
[ "$ssz" -eq 0 ] || qargs+=(-drive "file=$dir/scratch.img,if=virtio,format=raw")
# The command line as a shell would take it, for the report and by hand.
words() {
	local w out=""
	for w in "$@"; do
		if [[ $w =~ ^[][A-Za-z0-9_./=,:+@%-]+$ ]]; then out+="$w "; else out+="'${w//\'/\'\\\'\'}' "; fi
	done
	echo "${out% }"
}
serial_args() { # sargs: the ports of QEMU process $1
	sargs=(-serial "file:$dir/console.$1.log" -serial "file:$dir/serial.$1.log" -monitor "pipe:$dir/mon")
}
serial_args 1
words "$qemu" "${qargs[@]}" "${sargs[@]}" >"$dir/qemu.cmdline"

# --- running -------------------------------------------------------------------------
now_ms() { local t=${EPOCHREALTIME/./}; now=$((t / 1000)); }
secs() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); } # ms -> "S.mmm"

qn=0 qpid="" catpid=""
launch() {
	qn=$((qn + 1))
	rm -f "$dir/mon.in" "$dir/mon.out"
	mkfifo "$dir/mon.in" "$dir/mon.out" || die "cannot create the monitor fifos"
	serial_args $qn
	"$qemu" "${qargs[@]}" "${sargs[@]}" >"$dir/qemu.$qn.log" 2>&1 </dev/null &
	qpid=$!
	echo "$qpid" >"$dir/qemu.pid"
	cat "$dir/mon.out" >"$dir/monitor.$qn.log" 2>/dev/null &
	catpid=$!
	now_ms
}
stop_qemu() {
	[ -n "$qpid" ] || return 0
	kill -9 "$qpid" 2>/dev/null
	wait "$qpid" 2>/dev/null
	qpid=""
	[ -z "$catpid" ] || { kill "$catpid" 2>/dev/null; wait "$catpid" 2>/dev/null; catpid=""; }
}
monitor() { # send one monitor command; the pipe is open as long as QEMU runs
	timeout 5 bash -c 'printf "%s\n" "$1" >"$2"' _ "$1" "$dir/mon.in"
}
trap 'stop_qemu' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The commands' channel, every QEMU process's in order. With "live" (QEMU
# running) a last line still being written is left out: a marker or a cut's
# REGEX is only ever matched against whole lines. The size is taken first so
# that the check and the read see the same bytes.
serial() {
	local i f size
	for ((i = 1; i <= qn; i++)); do
		f=$dir/serial.$i.log
		[ -s "$f" ] || continue
		size=$(stat -c %s "$f")
		if [ "${1:-}" = live ] && [ "$i" -eq "$qn" ] &&
			[ "$(tail -c +"$size" "$f" | head -c 1 | od -An -tx1 | tr -d ' ')" != 0a ]; then
			head -c "$size" "$f" | head -n -1
		else
			head -c "$size" "$f"
		fi
	done | tr -d '\r'
}
markers() { serial "${1:-}" | grep -a "^$M " | sed "s/^$M //"; }
# The output of command N of boot B (the lines after its BEGIN marker).
output_of() { # B N [live]
	serial "${3:-}" | awk -v b="$M BEGIN $1 $2" -v m="$M" '$0 == b { on = 1; next } on && index($0, m) == 1 { on = 0 } on'
}

declare -A ready_ms=() ready_up=() cut_done=() boot_start=()
fail_reason=""
now_ms
t_start=$now
deadline=$((now + timeout_s * 1000))
[ $quiet -eq 1 ] || { echo "zns: qemu: $(cat "$dir/qemu.cmdline")"; echo "zns: kernel $kver, guest dir $dir"; }
launch
boot_start[1]=$now
cut_begin="" # ms when the pending cut's command was first seen running
while :; do
	sleep 0.2
	now_ms
	mk=$(markers live)
	while read -r kind b rest; do
		case $kind in
		READY)
			if [ -z "${ready_ms[$b]:-}" ]; then
				ready_ms[$b]=$((now - ${boot_start[$b]:-$now}))
				ready_up[$b]=${rest%% *}
			fi ;;
		DONE) [ -n "${boot_start[$((b + 1))]:-}" ] || boot_start[$((b + 1))]=$now ;;
		UNEXPECTED-REBOOT) fail_reason="the guest rebooted during boot $b without being asked (see console.$qn.log)" ;;
		NO-SUCH-BOOT | MISSING-DEVICE | CONTROL-DISK-WRITE-FAILED | NO-TMP | SCRATCH-MOUNT-FAILED) fail_reason="guest init: $kind $b $rest" ;;
		CUT-MISSED) fail_reason="cut missed: boot $b #$((10#$rest)) ended before its cut (--cut ${cut_when[$b]})" ;;
		esac
	done <<<"$mk"
	[ -z "$fail_reason" ] || break
	# The cut pending, if any: the first boot with a cut not yet done.
	cb=""
	for ((b = 1; b < nboots; b++)); do
		if [ -n "${cut_when[$b]:-}" ] && [ -z "${cut_done[$b]:-}" ]; then cb=$b; break; fi
	done
	if [ -n "$cb" ]; then
		cn=$(printf %03d "${cmd_count[$cb]}")
		if grep -qx "BEGIN $cb $cn" <<<"$mk"; then
			[ -n "$cut_begin" ] || cut_begin=$now
			go=0
			case ${cut_when[$cb]} in
			match:*)
				# Not grep -q: it would leave at the first match while the output
				# is still being read, and pipefail would take the SIGPIPE for a miss.
				output_of "$cb" "$cn" live | grep -E -- "${cut_when[$cb]#match:}" >/dev/null && go=1 ;;
			*)
				w=${cut_when[$cb]}
				whole=${w%%.*} frac=000
				[[ $w == *.* ]] && frac=$(printf '%-3.3s' "${w#*.}" | tr ' ' 0)
				[ $((now - cut_begin)) -ge $((10#$whole * 1000 + 10#$frac)) ] && go=1 ;;
			esac
			if [ $go -eq 1 ]; then
				cut_done[$cb]="$(secs $((now - cut_begin))) s into boot $cb #$((10#$cn)) ($cut_mode)"
				boot_start[$((cb + 1))]=$now
				cut_begin=""
				case $cut_mode in
				reset) monitor system_reset || { fail_reason="monitor system_reset failed"; break; } ;;
				kill) stop_qemu; launch ;;
				quit)
					monitor quit
					for ((i = 0; i < 50; i++)); do kill -0 "$qpid" 2>/dev/null || break; sleep 0.2; done
					stop_qemu # reaps it, or kills it if quit took more than 10 s
					launch ;;
				esac
				continue
			fi
		fi
	fi
	if ! kill -0 "$qpid" 2>/dev/null; then
		wait "$qpid" 2>/dev/null
		qrc=$?
		qpid=""
		stop_qemu
		grep -qx "DONE $nboots" <<<"$mk" || fail_reason="QEMU exited (rc=$qrc) before the guest finished boot $nboots (see $dir/qemu.$qn.log, console.$qn.log)"
		break
	fi
	if [ "$now" -ge "$deadline" ]; then
		fail_reason="time bound: the guest did not finish within $timeout_s s; QEMU killed"
		break
	fi
done
stop_qemu
now_ms
t_total=$((now - t_start))

# --- report --------------------------------------------------------------------------
# Walks the serial channel: each command's output, rc and time; a command that
# has a BEGIN and no END was cut (or was running when the run stopped).
declare -A rc_of=() secs_of=()
while read -r kind b n rc s; do
	[ "$kind" = END ] && rc_of[$b.$n]=$rc secs_of[$b.$n]=$s
done <<<"$(markers)"
failed=0 nfailed=0 failures=()
declare -A nth=()
for i in "${!cmd_text[@]}"; do
	b=${cmd_boot[$i]}
	nth[$b]=$((${nth[$b]:-0} + 1))
	n=$(printf %03d "${nth[$b]}")
	rc=${rc_of[$b.$n]:-}
	label="boot $b #${nth[$b]}"
	is_cut=0
	[ -n "${cut_done[$b]:-}" ] && [ "${nth[$b]}" -eq "${cmd_count[$b]}" ] && is_cut=1
	if [ -n "$rc" ] && [ "$rc" = 0 ]; then status="rc=0 (${secs_of[$b.$n]} s)"
	elif [ -n "$rc" ]; then status="rc=$rc (${secs_of[$b.$n]} s)"; nfailed=$((nfailed + 1)); failures+=("$label rc=$rc")
	elif [ $is_cut -eq 1 ]; then status="power cut ${cut_done[$b]}"
	else status="did not finish"; nfailed=$((nfailed + 1)); failures+=("$label did not finish")
	fi
	show=1
	[ $quiet -eq 1 ] && [[ $status == "rc=0 "* || $status == "power cut"* ]] && show=0
	if [ $show -eq 1 ]; then
		echo "=== $label: ${cmd_text[$i]}"
		output_of "$b" "$n"
		echo "=== $label: $status"
	fi
done
for ((b = 1; b <= nboots; b++)); do
	if [ -n "${ready_ms[$b]:-}" ]; then
		echo "zns: boot $b ready $(secs "${ready_ms[$b]}") s after its start (guest uptime ${ready_up[$b]} s)"
	else
		echo "zns: boot $b never became ready"
	fi
done
[ $nfailed -eq 0 ] || failed=1
if [ ${#cut_done[@]} -gt 0 ] && [ "$cut_mode" != reset ]; then
	echo "zns: note: --cut-mode $cut_mode restarted QEMU, which keeps no zone state: every zone of nvme0n1 came back empty"
fi
if [ -n "$fail_reason" ]; then
	echo "zns: --- last lines of the kernel console (console.$qn.log):"
	# awk ends the last line, which the console may have left open; the sed drops
	# the firmware's terminal escapes.
	tail -n 20 "$dir/console.$qn.log" 2>/dev/null | tr -d '\r' |
		sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1bc//g' | awk '{ print "zns:   " $0 }'
	echo "zns: FAILED: $fail_reason"
fi
echo "zns: ${#cmd_text[@]} commands in $nboots boots, $nfailed failed${failures:+: ${failures[*]}}; total $(secs $t_total) s"
[ -z "$fail_reason" ] || exit 3
[ $failed -eq 0 ] || exit 1
exit 0
