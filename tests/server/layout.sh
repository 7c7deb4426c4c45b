#!/usr/bin/env bash
# The key layout of a data file (src/server/keymap.h). A new file keeps
# every key behind one layout byte, so the empty key is a key and keys are
# 0..1023 bytes; it survives restarts. A file of dynvme 0.3 (keys stored as
# they are, no flush point: written here by `dynvme bench engine`, which
# uses the store directly as 0.3's server did) is served as it is: its
# keys are found, 1024-byte keys are taken, the empty key and FLUSHALL are
# refused with a clear error, and it stays so after a restart.
. "$(dirname "$0")/common.bash"
need_tools
is_dynvme || skip "layout.sh: dynvme's data file layout (nothing to compare with redis-server)"

log "new data file"
srv_start
t OK SET "" empty
t '"empty"' GET ""
k1023=$(head -c 1023 /dev/zero | tr '\0' k)
t OK SET "$k1023" long
t "(error) ERR key too large (1024 bytes, max 1023)" SET "${k1023}k" v
t '(integer) 2' DBSIZE
srv_stop
srv_start
t '"empty"' GET ""
t '"long"' GET "$k1023"
t '(integer) 2' DBSIZE
grep -q "dynvme 0.3" "$SRV_LOG" && fail "a new data file was taken for a 0.3 one"
srv_stop

log "data file of dynvme 0.3"
SRV_DATA=$WORK/legacy.img
"$BIN" bench engine --data "$SRV_DATA" --size 64M --zone-bytes 1M --keys 50 --value-bytes 10 --reads 10 \
	--keep >"$WORK/bench.txt" 2>&1 || die "dynvme bench engine failed: $(tail -n 3 "$WORK/bench.txt")"
srv_start
grep -q "data file of dynvme 0.3" "$SRV_LOG" || fail "no log line for a 0.3 data file"
t '(integer) 50' DBSIZE
keys=$(cli KEYS '*')
check "KEYS * lists the 50 keys of the 0.3 file" 50 "$(printf '%s\n' "$keys" | grep -Ec '^ *[0-9]+\) "k[0-9a-f]{16}"$')"
first=$(printf '%s\n' "$keys" | head -n 1 | sed -E 's/^ *[0-9]+\) "(.*)"$/\1/')
check_match "GET of a 0.3 key" '^"' "$(cli GET "$first")"
t '(integer) 10' STRLEN "$first"
t "(error) ERR empty keys are not supported by this data file (dynvme 0.3 layout)" SET "" v
check_match "FLUSHALL on a 0.3 file" '^\(error\) ERR FLUSHALL is not supported on a data file of dynvme 0.3' "$(cli FLUSHALL)"
k1024=$(head -c 1024 /dev/zero | tr '\0' k)
t OK SET "$k1024" v
t OK SET newkey v
srv_stop
srv_start
t '(integer) 52' DBSIZE
t '"v"' GET newkey
t '"v"' GET "$k1024"
check_match "FLUSHDB on a 0.3 file, after a restart" '^\(error\) ERR FLUSHDB is not supported' "$(cli FLUSHDB)"
srv_stop
finish
