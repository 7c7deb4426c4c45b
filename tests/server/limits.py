"""limits.sh's load: one client pipelines many large MGETs (far more store
operations than a client may have in flight) and never reads; another
client must still be served, the server's RSS stays bounded, and once the
greedy client reads, every reply arrives complete and in order."""
import socket
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import dvresp  # noqa: E402

port, pid = int(sys.argv[1]), int(sys.argv[2])
import os  # noqa: E402

# Past the kernel's socket buffers (about 5 MiB here), so the server's own
# back-pressure is what stops the client.
KEYS, CMDS = 5000, 110 if os.environ.get("DV_TEST_QUICK") == "1" else 150


def rss_kib():
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


c = dvresp.Conn(port, timeout=30)
for k in range(0, KEYS, 500):
    c.call("MSET", *sum((["lim:%d" % i, "v%d" % i] for i in range(k, k + 500)), []))
rss0 = rss_kib()
greedy = dvresp.Conn(port, timeout=60)
req = dvresp.encode(["MGET"] + ["lim:%d" % i for i in range(KEYS)])
greedy.sock.setblocking(False)
sent, data = 0, req * CMDS
deadline = time.time() + 20
while sent < len(data) and time.time() < deadline:
    try:
        sent += greedy.sock.send(data[sent:])
    except BlockingIOError:
        break  # the server stopped reading us: back-pressure
time.sleep(1)
fails = 0
pong = c.call("PING")
if pong != "PONG":
    print("FAIL: another client got %r instead of PONG" % (pong,))
    fails += 1
rss1 = rss_kib()
print("sent %d of %d bytes before back-pressure; RSS %d -> %d MiB" % (sent, len(data), rss0 >> 10, rss1 >> 10))
if rss1 - rss0 > 512 * 1024:
    print("FAIL: RSS grew by %d MiB" % ((rss1 - rss0) >> 10))
    fails += 1
greedy.sock.setblocking(True)
greedy.sock.settimeout(60)
# Now read every reply (a thread) while the rest of the requests go out.
import threading  # noqa: E402

got = []


def reader():
    for _ in range(CMDS):
        got.append(greedy.read())


t = threading.Thread(target=reader)
t.start()
greedy.sock.sendall(data[sent:])
t.join(120)
for n, r in enumerate(got):
    if not isinstance(r, list) or len(r) != KEYS or r[0] != b"v0" or r[-1] != b"v%d" % (KEYS - 1):
        print("FAIL: reply %d: %r" % (n, r if not isinstance(r, list) else (len(r), r[:2])))
        fails += 1
        break
if len(got) != CMDS:
    print("FAIL: %d of %d replies" % (len(got), CMDS))
    fails += 1
print("ok" if not fails else "%d failure(s)" % fails)
sys.exit(1 if fails else 0)
