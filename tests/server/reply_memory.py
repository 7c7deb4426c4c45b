"""reply_memory.sh's load (issue 8 item 3): reads whose replies would be
huge must not copy what they read without bound. One 1 MiB value `big`:
  - MGET big x 3000 (a 27 KB request, a 3 GB reply): the reply-size error,
    RSS growth bounded while the server answers it, another client served;
  - EXISTS and TYPE of big x 3000: the answer, and no copy of the values;
  - one client pipelines 40 x MGET big x 20 (20 MiB each, under the limit)
    and does not read: RSS growth bounded; then it reads every reply, whole.
Usage: reply_memory.py PORT PID (RSS of PID from /proc/PID/status)."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dvresp  # noqa: E402
from dvresp import Err  # noqa: E402

port, pid = int(sys.argv[1]), int(sys.argv[2])
# Sanitizer builds keep freed memory in a quarantine (256 MiB): more slack.
SLACK_MIB = 640 if os.environ.get("DV_TEST_QUICK") == "1" else 256
BIG = 1 << 20
fails = 0


def fail(msg):
    global fails
    fails += 1
    print("FAIL: " + msg)


def rss_mib():
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) >> 10
    except OSError:
        pass
    return 0


class Peak:
    """Highest RSS seen while the with-block runs (sampled every 10 ms)."""

    def __enter__(self):
        self.peak, self.stop = rss_mib(), False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()
        return self

    def _run(self):
        while not self.stop:
            self.peak = max(self.peak, rss_mib())
            time.sleep(0.01)

    def __exit__(self, *a):
        self.stop = True
        self.t.join()
        self.peak = max(self.peak, rss_mib())


c = dvresp.Conn(port, timeout=120)
big = bytes((i * 7) % 251 for i in range(BIG))
if c.call("SET", "big", big) != "OK":
    sys.exit("FAIL: SET big")
c.call("SET", "small", "s")
rss0 = rss_mib()
print("RSS at start: %d MiB" % rss0)

# 1. MGET big x 3000: the reply-size error, RSS bounded, others served.
other = dvresp.Conn(port, timeout=30)
with Peak() as p:
    c.send(dvresp.encode(["MGET"] + ["big"] * 3000))
    time.sleep(0.05)
    pong = other.call("PING")
    r = c.read()
print("MGET big x 3000 -> %r; peak RSS %d MiB" % (r if isinstance(r, Err) else type(r).__name__, p.peak))
if not (isinstance(r, Err) and r.msg.startswith("ERR ") and "max-reply-bytes" in r.msg):
    fail("MGET big x 3000: expected an ERR ... max-reply-bytes error, got %r" % (r if isinstance(r, Err) else type(r)))
if pong != "PONG":
    fail("another client during the MGET: %r" % (pong,))
if p.peak - rss0 > SLACK_MIB:
    fail("MGET big x 3000: RSS grew by %d MiB (at most %d allowed)" % (p.peak - rss0, SLACK_MIB))

# 2. EXISTS and TYPE never copy the values they find.
for cmd, want in (("EXISTS", 3000), ("TYPE", "string")):
    args = [cmd] + (["big"] * 3000 if cmd == "EXISTS" else ["big"])
    with Peak() as p:
        r = c.call(*args)
    if r != want:
        fail("%s: %r" % (cmd, r))
print("EXISTS big x 3000, TYPE big: peak RSS %d MiB" % p.peak)
with Peak() as p:
    c.send(b"".join(dvresp.encode(["EXISTS"] + ["big"] * 3000) for _ in range(20)))
    rs = [c.read() for _ in range(20)]
if rs != [3000] * 20:
    fail("20 x EXISTS big x 3000: %r" % rs[:3])
if p.peak - rss0 > SLACK_MIB:
    fail("20 x EXISTS big x 3000: RSS grew by %d MiB" % (p.peak - rss0))
print("20 x EXISTS big x 3000: peak RSS %d MiB" % p.peak)
if c.call("MGET", "small", "nokey", "big", "small") != [b"s", None, big, b"s"]:
    fail("MGET small nokey big small")

# 3. A client pipelines 40 MGETs of 20 MiB each and does not read.
N, K = 40, 20
greedy = dvresp.Conn(port, timeout=120)
req = dvresp.encode(["MGET"] + ["big"] * K) * N
with Peak() as p:
    greedy.send(req)
    time.sleep(2)
    pong = other.call("PING")
    mid = rss_mib()
print("40 x MGET big x 20 unread: RSS %d MiB (peak %d)" % (mid, p.peak))
if pong != "PONG":
    fail("another client while one does not read: %r" % (pong,))
if p.peak - rss0 > SLACK_MIB:
    fail("40 x MGET big x 20 unread: RSS grew by %d MiB (at most %d allowed)" % (p.peak - rss0, SLACK_MIB))
with Peak() as p:
    for n in range(N):
        r = greedy.read()
        if not isinstance(r, list) or len(r) != K or any(v != big for v in r):
            fail("reply %d of 40: %r" % (n, r if not isinstance(r, list) else (len(r), [len(v or b"") for v in r[:3]])))
            break
if p.peak - rss0 > SLACK_MIB:
    fail("40 x MGET big x 20 while read: RSS grew by %d MiB" % (p.peak - rss0))
if c.call("PING") != "PONG":
    fail("PING at the end")
print("ok" if not fails else "%d failure(s)" % fails)
sys.exit(1 if fails else 0)
