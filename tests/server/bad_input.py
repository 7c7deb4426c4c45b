"""Malformed and hostile input for bad_input.sh. Usage:
  bad_input.py PORT PID dynvme|redis CONNS
The server runs with --request-timeout 3 --max-request-bytes 2M
--max-reply-bytes 16M. After every case a fresh client must get PONG and the
sentinel keys written at the start must be intact. Prints one line per
failure, exits 1 if any."""
import os
import random
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dvresp import Closed, Conn, Err, encode  # noqa: E402

PORT = int(sys.argv[1])
PID = int(sys.argv[2])
DYNVME = sys.argv[3] == "dynvme"
CONNS = int(sys.argv[4])
SLOW = 4 if os.environ.get("DV_TEST_QUICK") == "1" else 1
SAN = SLOW > 1
fails = 0
T0 = time.time()
MIB = 1 << 20


def log(msg):
    print("[%5.1fs] %s" % (time.time() - T0, msg), flush=True)


def fail(msg):
    global fails
    fails += 1
    print("FAIL: " + msg, flush=True)


def rss_kib():
    try:
        for line in open("/proc/%d/status" % PID):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def server_alive():
    try:
        os.kill(PID, 0)
        return True
    except OSError:
        return False


SENTINELS = {("bi:sentinel:%d" % i).encode(): (b"sentinel-%d-" % i) * (i + 1) for i in range(50)}


def after(case):
    """A fresh client gets PONG and the sentinels are intact."""
    if not server_alive():
        fail("%s: the server process is gone" % case)
        sys.exit(1)
    what = "connect"
    try:
        c = Conn(PORT, timeout=10 * SLOW)
        what = "PING"
        r = c.call("PING")
        if r != "PONG":
            fail("%s: fresh client PING answered %r" % (case, r))
        # one GET at a time (MGET and pipelines are commands.sh's business)
        for k, v in SENTINELS.items():
            what = "GET %s" % k.decode()
            got = c.call("GET", k)
            if got != v:
                fail("%s: sentinel %s changed: %r" % (case, k.decode(), str(got)[:100]))
                break
        c.close()
    except (OSError, Closed) as e:
        fail("%s: fresh client, %s failed: %r" % (case, what, e))


def error_and_close(case, data, prefix=b"-ERR Protocol error", need_close=True, close_data=True):
    """Send data on a new connection: the reply must start with prefix and
    the server must close the connection."""
    c = Conn(PORT, timeout=10 * SLOW)
    try:
        c.send(data)
        if close_data:
            pass
        try:
            got = c.read_raw_until_closed(limit=4096, timeout=5 * SLOW)
            closed = True
        except socket.timeout:
            got = c.buf
            closed = False
    except (BrokenPipeError, ConnectionResetError):
        got, closed = b"", True
    c.close()
    if not got.startswith(prefix):
        fail("%s: reply %r, expected one starting with %r" % (case, got[:120], prefix))
    if need_close and not closed:
        fail("%s: connection not closed after the error (within %ds)" % (case, 5 * SLOW))
    after(case)


def anything_then_alive(case, data):
    """Send data; whatever the reply, the server must stay up and serve."""
    c = Conn(PORT, timeout=5)
    try:
        c.send(data)
        c.sock.settimeout(1)
        try:
            c.sock.recv(65536)
        except (socket.timeout, OSError):
            pass
    except OSError:
        pass
    c.close()
    after(case)


# ---------------------------------------------------------------- setup
c0 = Conn(PORT)
for k, v in SENTINELS.items():
    if c0.call("SET", k, v) != "OK":
        fail("setup SET")
c0.close()
after("setup")

# ---------------------------------------------------------------- malformed frames
log("malformed frames")
rnd = random.Random(42)
error_and_close("'*abc' multibulk length", b"*abc\r\n")
error_and_close("'*1' then a non-bulk", b"*1\r\nfoo\r\n")
error_and_close("'*1 $-10' negative bulk length", b"*1\r\n$-10\r\n")
error_and_close("'*2 $abc' bulk length not a number", b"*2\r\n$abc\r\n")
error_and_close("'*99999999999' huge multibulk", b"*99999999999\r\n")
error_and_close("'$99999999999999999999' huge bulk (overflows 64 bits)", b"*1\r\n$99999999999999999999\r\n")
error_and_close("'*1 $-1' nil bulk in a request", b"*1\r\n$-1\r\n")
# A negative count is an empty request, for both (Redis ignores "*-10").
anything_then_alive("'*-5' negative multibulk length", b"*-5\r\n")
if DYNVME:
    error_and_close("bulk length over --max-request-bytes (header only)", b"*2\r\n$3\r\nGET\r\n$3000000\r\n")
    error_and_close("'*3000000' more args than --max-request-bytes could hold", b"*3000000\r\n")
# Not '*' first: an inline command named "$-10" (as in Redis): an
# unknown-command error, and the connection goes on.
anything_then_alive("'$-10' at top level", b"$-10\r\n")
junk = bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz*$:+-!@#%^&()[]{} ") for _ in range(2000))
error_and_close("'*' followed by 2000 random non-digits", b"*" + junk + b"\r\n", prefix=b"-ERR")
for i in range(5):
    junk = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 4000)))
    anything_then_alive("random garbage #%d (%d bytes)" % (i, len(junk)), junk)
anything_then_alive("NUL bytes", b"\x00" * 5000)
anything_then_alive("CRLF only", b"\r\n" * 1000)

# ---------------------------------------------------------------- split frames
log("frames split across writes")
c = Conn(PORT, timeout=10 * SLOW)
req = encode(["SET", "bi:split", "x" * 1000]) + encode(["GET", "bi:split"])
for i in range(0, len(req), 7):
    c.send(req[i:i + 7])
    if i % 140 == 0:
        time.sleep(0.01)
r1 = c.read()
r2 = c.read()
if r1 != "OK" or r2 != b"x" * 1000:
    fail("a request sent 7 bytes at a time: replies %r %r" % (r1, str(r2)[:50]))
c.send(b"*1\r\n$4\r\nPI")
time.sleep(0.5)
c.send(b"NG\r\n")
r = c.read()
if r != "PONG":
    fail("PING split in two writes 0.5 s apart: %r" % (r,))
c.close()
after("split frames")

# ---------------------------------------------------------------- unterminated frames
log("unterminated frames")
for data in (b"*2\r\n$3\r\nGET\r\n$3\r\nab", b"*3\r\n$3\r\nSET\r\n", b"*1", b"*1\r\n$4\r\nPIN",
             encode(["SET", "bi:unterm", "y" * 100000])[:50000]):
    c = Conn(PORT, timeout=5)
    c.send(data)
    # The half-sent request must not block others.
    t = time.time()
    after("unterminated frame %r..." % data[:20])
    if time.time() - t > 2 * SLOW:
        fail("unterminated frame %r: another client waited %.1fs" % (data[:20], time.time() - t))
    c.close()  # half a request, then the client goes away
    after("client closed mid-frame %r" % data[:20])
c = Conn(PORT, timeout=5)
if c.call("EXISTS", "bi:unterm") != 0:
    fail("a half-sent SET was stored")
c.close()
# reset in the middle of a 1 MiB value
c = Conn(PORT, timeout=5)
c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
c.send(encode(["SET", "bi:reset", "z" * MIB])[:600000])
c.sock.close()
after("connection reset in the middle of a 1 MiB SET")

# ---------------------------------------------------------------- slow client
log("slow client (one byte per second, --request-timeout 3)")
slow = Conn(PORT, timeout=10)
req = encode(["PING"])
t0 = time.time()
closed_at = None
worst = 0.0
other = Conn(PORT, timeout=10)
interval = 1.0 if DYNVME else 0.25
for i in range(len(req)):
    try:
        slow.send(req[i:i + 1])
    except OSError:
        closed_at = time.time() - t0
        break
    end = time.time() + interval
    while time.time() < end:
        t = time.time()
        if other.call("PING") != "PONG":
            fail("slow client: another client's PING failed")
        worst = max(worst, time.time() - t)
        time.sleep(0.05)
    if DYNVME and slow.closed_within(0.01):
        closed_at = time.time() - t0
        break
if worst > 0.5 * SLOW:
    fail("slow client: another client's PING took %.2fs" % worst)
if DYNVME:
    if closed_at is None:
        fail("slow client: not closed while its request stayed incomplete for %ds (--request-timeout 3)" % len(req))
    elif not (2.0 <= closed_at <= 3 + 2 * SLOW):
        fail("slow client: closed after %.1fs, expected about 3s (--request-timeout 3)" % closed_at)
    else:
        log("slow client closed after %.1fs" % closed_at)
else:
    r = slow.read()
    if r != "PONG":
        fail("slow client: PING sent a byte at a time answered %r" % (r,))
slow.close()
other.close()
after("slow client")

# An idle connection with no partial request is not timed out (timeout 0).
idle = Conn(PORT, timeout=10)
idle.call("PING")
time.sleep(4.5)
try:
    r = idle.call("PING")
    if r != "PONG":
        fail("idle connection after 4.5s: PING answered %r" % (r,))
except (OSError, Closed) as e:
    fail("idle connection (no partial request) closed after 4.5s with --timeout 0: %r" % e)
idle.close()

# ---------------------------------------------------------------- size limits
log("oversized values and requests")
c = Conn(PORT, timeout=20 * SLOW)
r = c.call("SET", "bi:1m", b"v" * MIB)
if r != "OK":
    fail("SET of exactly 1 MiB answered %r" % (r,))
if DYNVME:
    r = c.call("SET", "bi:over", b"v" * (MIB + 1))
    if not (isinstance(r, Err) and r.msg.startswith("ERR")):
        fail("SET of 1 MiB + 1 byte answered %r, expected an error starting with ERR" % (r,))
    c.close()
    c = Conn(PORT, timeout=10)
    if c.call("EXISTS", "bi:over") != 0:
        fail("the 1 MiB + 1 value was stored")
    c.close()
    after("1 MiB + 1 value")
    # Three legal 1 MiB values in one MSET: 3 MiB, over --max-request-bytes 2M.
    error_and_close("MSET of 3 x 1 MiB (over --max-request-bytes 2M)",
                    encode(["MSET", "bi:m1", b"a" * MIB, "bi:m2", b"b" * MIB, "bi:m3", b"c" * MIB]), prefix=b"-ERR")
    c = Conn(PORT, timeout=10)
    if c.call("EXISTS", "bi:m1", "bi:m2", "bi:m3") != 0:
        fail("parts of the over-limit MSET were stored")
    c.close()
else:
    c.close()

# ---------------------------------------------------------------- reader that never reads
log("client that sends 100 GETs of a 1 MiB value and never reads")
rss0 = rss_kib()
c = Conn(PORT, timeout=5)
c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
try:
    c.sock.settimeout(10 * SLOW)
    c.send(encode(["GET", "bi:1m"]) * 100)
except OSError:
    pass
time.sleep(2)
rss1 = rss_kib()
after("client not reading 100 MiB of replies")
if DYNVME and rss1 - rss0 > (16 + 64) * 1024 * (4 if SAN else 1):
    fail("RSS grew by %d MiB with 100 MiB of unread replies (--max-reply-bytes 16M)" % ((rss1 - rss0) // 1024))
log("RSS %d -> %d MiB" % (rss0 // 1024, rss1 // 1024))
c.close()
time.sleep(0.5)
after("non-reading client gone")

# ---------------------------------------------------------------- many idle connections
log("%d idle connections" % CONNS)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft < CONNS + 100:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, CONNS + 1000), hard))
rss0 = rss_kib()
socks = []
try:
    for i in range(CONNS):
        s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
        socks.append(s)
except OSError as e:
    fail("opening idle connection %d: %r" % (len(socks), e))
time.sleep(1)
rss1 = rss_kib()
after("%d idle connections open" % len(socks))
# a few of them still work
for s in socks[:: max(1, len(socks) // 10)]:
    try:
        s.sendall(encode(["PING"]))
        d = s.recv(100)
        if d != b"+PONG\r\n":
            fail("idle connection PING answered %r" % d)
            break
    except OSError as e:
        fail("idle connection PING: %r" % e)
        break
limit = 64 * 1024 * (4 if SAN else 1)
if rss1 - rss0 > limit:
    fail("RSS grew by %d MiB with %d idle connections (limit %d MiB)" % ((rss1 - rss0) // 1024, len(socks),
                                                                          limit // 1024))
log("RSS %d -> %d MiB with %d idle connections" % (rss0 // 1024, rss1 // 1024, len(socks)))
for s in socks:
    s.close()
time.sleep(1)
after("idle connections closed")
sys.exit(1 if fails else 0)
