#!/usr/bin/env bash
# Which data files dynvme serve formats (review 1 S9): only a new file, an
# empty (0-byte) file, or one whose superblock area is all zeroes; a file
# holding anything else is refused with an error naming the path, and is
# left unchanged, byte for byte. A dynvme file is opened as it is, but not
# while another dynvme serves it.
. "$(dirname "$0")/common.bash"
is_dynvme || skip "dynvme only (what dynvme formats)"
need_tools

# serve_once FILE: start on FILE, wait until ready or exited; prints nothing,
# sets SRV_OUT (the log) and leaves the server running when it started.
serve_once() {
	SRV_DATA=$1
	SRV_WAIT_PING=0 srv_start --size 32M --zone-bytes 1M
	local end=$((SECONDS + 20 * SLOW))
	while srv_alive && ! grep -q 'msg="ready"' "$SRV_LOG"; do
		[ $SECONDS -gt $end ] && break
		sleep 0.1
	done
	SRV_OUT=$(cat "$SRV_LOG")
}

# expect_refused FILE WHAT: dynvme serve exits 1 on FILE with an error
# naming it, and FILE is unchanged.
expect_refused() {
	local before rc
	before=$(sha256sum "$1" | cut -d' ' -f1)
	serve_once "$1"
	if srv_alive; then
		fail "$2 was opened (formatted?)"
		srv_stop
	else
		wait "$SRV_PID" 2>/dev/null
		rc=$?
		SRV_PID=""
		check "exit code on $2" 1 "$rc"
		check_match "the error names the path and says why ($2)" "refusing to format.*path=$1" "$SRV_OUT"
	fi
	check "$2 is unchanged" "$before" "$(sha256sum "$1" | cut -d' ' -f1)"
}

# A file with other data at its start.
other=$WORK/other.img
truncate -s 20M "$other"
printf 'not dynvme data\n' | dd of="$other" conv=notrunc status=none
expect_refused "$other" "a file holding other data"

# Other data only further into the superblock area (the first MiB, both
# copies and the gap after them).
other2=$WORK/other2.img
truncate -s 20M "$other2"
printf 'xx' | dd of="$other2" bs=1 seek=$((1024 * 1024 - 100)) conv=notrunc status=none
expect_refused "$other2" "a file with data at 1 MiB - 100"

# A 0-byte file: taken as a new one (sized, formatted), with a message.
empty=$WORK/empty.img
: >"$empty"
serve_once "$empty"
if srv_alive; then
	check_match "a 0-byte file is sized and formatted, and says so" 'empty.*path=' "$SRV_OUT"
	t OK SET k v
	srv_stop
	check "exit code after SIGTERM" 0 "$SRV_RC"
	check "the 0-byte file now has --size" 33554432 "$(stat -c %s "$empty")"
else
	fail "a 0-byte file was refused: $(tail -n 3 "$SRV_LOG")"
fi

# An all-zero file (e.g. truncate -s): formatted.
zero=$WORK/zero.img
truncate -s 32M "$zero"
serve_once "$zero"
if srv_alive; then
	t OK SET k v
	srv_stop
else
	fail "an all-zero file was refused: $(tail -n 3 "$SRV_LOG")"
fi

# The dynvme file made above: opened as it is (the key is there).
serve_once "$zero"
if srv_alive; then
	t '"v"' GET k
	srv_stop
else
	fail "a dynvme file was refused: $(tail -n 3 "$SRV_LOG")"
fi

# A data file another dynvme is serving: refused (exit 1, a message saying
# so), before anything is written (each open writes its superblock: review
# of the open stamp); the first one keeps serving, its file unchanged.
serve_once "$zero"
if srv_alive; then
	t OK SET k2 v2
	alloc_port P2
	alloc_port H2
	before=$(head -c 1048576 "$zero" | sha256sum | cut -d' ' -f1)
	out2=$(timeout $((20 * SLOW)) "$BIN" serve --bind 127.0.0.1 --port "$P2" --http-port "$H2" --data "$zero" \
		--size 32M --zone-bytes 1M 2>&1)
	rc2=$?
	check "exit code of a second dynvme on a file in use" 1 "$rc2"
	check_match "it says the file is in use" "another process has it open for writing.*path=$zero" "$out2"
	check "the superblock area is unchanged by it" "$before" "$(head -c 1048576 "$zero" | sha256sum | cut -d' ' -f1)"
	t '"v2"' GET k2
	srv_stop
	check "exit code of the first after SIGTERM" 0 "$SRV_RC"
else
	fail "a dynvme file was refused: $(tail -n 3 "$SRV_LOG")"
fi

# A missing file: created (--size) and formatted.
serve_once "$WORK/new.img"
if srv_alive; then
	t OK SET k v
	srv_stop
else
	fail "a missing file was not created: $(tail -n 3 "$SRV_LOG")"
fi
finish
