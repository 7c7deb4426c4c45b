#!/usr/bin/env bash
# What a client that has not authenticated may cost (issue 8 item 8), with
# a password set (tests/server/preauth.py): clients that pipeline NOAUTH
# replies and never read hold little output and input each; an idle
# unauthenticated connection (and a flooding one the server stopped
# reading) is closed after auth-timeout (default 10 s); an idle
# authenticated one is kept (timeout 0).
. "$(dirname "$0")/common.bash"
need_tools
is_dynvme || skip "dynvme only (its limits before AUTH)"
srv_start --requirepass pw8
timeout $((120 * SLOW)) "$PY" "$TESTS_DIR/preauth.py" "$SRV_PORT" "$SRV_PID" pw8 || fail "preauth.py (see above)"
srv_alive || die "server died"
CLI_AUTH=(-a pw8 --no-auth-warning)
ping_ok "after the unauthenticated clients"
srv_stop
check "exit code after SIGTERM" 0 "$SRV_RC"
finish
