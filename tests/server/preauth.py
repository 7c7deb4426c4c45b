"""preauth.sh's checks (issue 8 item 8): what a client that has not
authenticated may cost. With a password set:
  - 40 clients each pipeline 600,000 inline PINGs without AUTH and never
    read: the NOAUTH replies the server keeps for each stay small (CLIENT
    LIST omem, qbuf) and RSS grows little; an authenticated client is
    served meanwhile;
  - an unauthenticated connection that stays idle is closed after
    auth-timeout (default 10 s), and so are the non-reading ones; an idle
    authenticated connection is not.
Usage: preauth.py PORT PID PW"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dvresp  # noqa: E402

port, pid, pw = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
AUTH_TIMEOUT = 10
CLIENTS, PINGS = 40, 600000
fails = 0


def fail(msg):
    global fails
    fails += 1
    print("FAIL: " + msg)


def rss_mib():
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) >> 10
    return 0


def authed():
    c = dvresp.Conn(port, timeout=20)
    if c.call("AUTH", pw) != "OK":
        sys.exit("FAIL: AUTH")
    return c


admin = authed()
if admin.call("CONFIG", "GET", "auth-timeout") != [b"auth-timeout", b"%d" % AUTH_TIMEOUT]:
    fail("CONFIG GET auth-timeout: %r" % admin.call("CONFIG", "GET", "auth-timeout"))
idle_authed = authed()
idle_unauth = dvresp.Conn(port, timeout=20)
t_idle = time.time()
rss0 = rss_mib()
flood = []
req = b"PING\r\n" * PINGS
for i in range(CLIENTS):
    s = socket.create_connection(("127.0.0.1", port))
    s.setblocking(False)
    sent = 0
    end = time.time() + 5
    while sent < len(req) and time.time() < end:
        try:
            sent += s.send(req[sent:])
        except BlockingIOError:
            time.sleep(0.01)  # give the server a moment, then stop: it does not read us
            try:
                sent += s.send(req[sent:])
            except BlockingIOError:
                break
    flood.append((s, sent))
t_flood = time.time()
time.sleep(1)
ids = {}
for line in admin.call("CLIENT", "LIST").decode().splitlines():
    f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
    ids[f["addr"]] = f
worst_omem = worst_qbuf = 0
for s, sent in flood:
    a = "%s:%d" % s.getsockname()
    f = ids.get(a)
    if f is None:
        fail("flooding client %s not in CLIENT LIST (closed already?)" % a)
        continue
    worst_omem = max(worst_omem, int(f["omem"]))
    worst_qbuf = max(worst_qbuf, int(f["qbuf"]) + int(f["qbuf-free"]))
rss1 = rss_mib()
print("%d unauthenticated clients sent %d..%d bytes each without reading; largest omem %d, input buffer %d; "
      "RSS %d -> %d MiB" % (CLIENTS, min(x for _, x in flood), max(x for _, x in flood), worst_omem, worst_qbuf,
                            rss0, rss1))
if worst_omem > 64 * 1024:
    fail("an unauthenticated client holds %d bytes of unsent replies (at most 64 KiB allowed)" % worst_omem)
if worst_qbuf > 64 * 1024:
    fail("an unauthenticated client has a %d byte input buffer (at most 64 KiB allowed)" % worst_qbuf)
if rss1 - rss0 > 32:
    fail("RSS grew by %d MiB for %d unauthenticated clients" % (rss1 - rss0, CLIENTS))
if admin.call("PING") != "PONG":
    fail("an authenticated client is not served while others flood")

# The idle unauthenticated connection is closed within the timeout (the
# check runs once a second), the flooding ones too; the authenticated
# idle one is not.
left = AUTH_TIMEOUT + 3 - (time.time() - t_idle)
closed = idle_unauth.closed_within(max(left, 0.1))
waited = time.time() - t_idle
print("idle unauthenticated connection %s after %.1fs" % ("closed" if closed else "still open", waited))
if not closed:
    fail("an idle unauthenticated connection is still open after %.1fs (auth-timeout %d)" % (waited, AUTH_TIMEOUT))
elif waited < AUTH_TIMEOUT - 1:
    fail("the idle unauthenticated connection was closed after %.1fs, before auth-timeout %d" % (waited, AUTH_TIMEOUT))
# The flooding clients, from the server's side: each leaves CLIENT LIST
# within the timeout once it is idle (the server may take a few seconds
# to run all they sent; their unread replies would take long to drain).
flood_addrs = {"%s:%d" % s.getsockname() for s, _ in flood}
end = t_flood + 60
overdue = set()
while True:
    listed = {}
    for line in admin.call("CLIENT", "LIST").decode().splitlines():
        f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        listed[f["addr"]] = int(f["idle"])
    still = flood_addrs & set(listed)
    overdue |= {a for a in still if listed[a] > AUTH_TIMEOUT + 2}
    if not still or time.time() > end:
        break
    time.sleep(0.2)
if overdue or still:
    fail("%d of %d flooding unauthenticated clients stayed idle past the timeout, %d open after %.0fs"
         % (len(overdue), CLIENTS, len(still), time.time() - t_flood))
for s, _ in flood:
    s.close()
try:
    r = idle_authed.call("PING")
except (dvresp.Closed, OSError) as e:
    r = e
if r != "PONG":
    fail("the idle authenticated connection: %r (timeout 0 must keep it)" % (r,))
print("ok" if not fails else "%d failure(s)" % fails)
sys.exit(1 if fails else 0)
