"""device_full.sh's load (review 1 S3): fill a small device with live
values until a SET is refused with -OOM (device full), then pipeline, in
one write, `SET k <new>` (refused: nothing written) and `GET k`: the GET
must answer the value k still holds, as Redis does when it refuses a write
(maxmemory), never the write's error. Also a GET that waits behind a
refused write of the same key with another write of another key between,
and DEL, MSET and SET ... GET refused the same way. Usage: device_full.py PORT"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dvresp  # noqa: E402
from dvresp import Err  # noqa: E402

port = int(sys.argv[1])
VAL = 4000
FILL_MAX = 40000  # writes before giving up: the device holds about 4,000 such values
fails = 0


def fail(msg):
    global fails
    fails += 1
    print("FAIL:", msg)


def val(i, gen=0):
    v = b"value:%d:%d:" % (i, gen)
    return v + b"x" * (VAL - len(v))


c = dvresp.Conn(port, timeout=60)
n = 0
first_err = None
while n < FILL_MAX:
    # 64 at a time, pipelined
    batch = range(n, n + 64)
    c.send(b"".join(dvresp.encode(["SET", "fill:%d" % i, val(i)]) for i in batch))
    replies = [c.read() for _ in batch]
    errs = [r for r in replies if isinstance(r, Err)]
    if errs:
        first_err = errs[0]
        break
    n += 64
print("device full after about %d values of %d bytes: %r" % (n, VAL, first_err))
if first_err is None or not first_err.msg.startswith("OOM"):
    fail("no -OOM after %d writes" % n)
    sys.exit(1)
k = "fill:0"
want = val(0)
if c.call("GET", k) != want:
    fail("fill:0 does not hold its value before the test")
if not isinstance(c.call("SET", k, val(0, 1)), Err):
    print("a SET still fits; the checks below may not test refused writes")

cases = [
    ("SET k new; GET k", [["SET", k, val(0, 2)], ["GET", k]]),
    ("SET k new; SET k new2; GET k", [["SET", k, val(0, 3)], ["SET", k, val(0, 4)], ["GET", k]]),
    ("SET k new; GET k; GET k", [["SET", k, val(0, 5)], ["GET", k], ["GET", k]]),
    ("DEL k; GET k", [["DEL", k], ["GET", k]]),
    ("MSET k new other new; GET k", [["MSET", k, val(0, 6), "fill:1", val(1, 6)], ["GET", k]]),
    ("SET k new GET; GET k", [["SET", k, val(0, 7), "GET"], ["GET", k]]),
    ("SET k new; SET other new; GET k", [["SET", k, val(0, 8)], ["SET", "fill:2", val(2, 8)], ["GET", k]]),
]
for name, cmds in cases:
    c.send(b"".join(dvresp.encode(x) for x in cmds))
    replies = [c.read() for _ in cmds]
    writes_ok = [r for x, r in zip(cmds, replies) if x[0] != "GET" and not isinstance(r, Err)]
    gets = [r for x, r in zip(cmds, replies) if x[0] == "GET"]
    if writes_ok:
        print("%s: a write was applied (%r); skipped" % (name, writes_ok[0]))
        want = c.call("GET", k)
        continue
    for g in gets:
        if g != want:
            fail("%s: GET answered %r, want the value k holds (%r...)" % (name, g if isinstance(g, Err) else
                                                                         g[:20] if g else g, want[:20]))
    print("%s: %s" % (name, ", ".join(repr(r.msg[:12]) if isinstance(r, Err) else repr(r[:14]) if r else "nil"
                                      for r in replies)))
sys.exit(1 if fails else 0)
