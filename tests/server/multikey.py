"""multikey.sh's checks: commands with many keys, repeated keys, and
pipelines around them (issue 8 items 3 and 12). Exact replies, as
redis-server gives them (DV_SERVER=redis runs the same checks there).
Prints how long an MSET repeating one key 10,000 times takes (item 12:
it was quadratic); the test asserts its replies, not its time.
Usage: multikey.py PORT dynvme|redis"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dvresp  # noqa: E402
from dvresp import Status  # noqa: E402

port, mode = int(sys.argv[1]), sys.argv[2]
fails = 0


def check(desc, want, got):
    global fails
    if want != got:
        fails += 1
        short = lambda v: repr(v) if len(repr(v)) < 300 else repr(v)[:200] + "...(%d chars)" % len(repr(v))
        print("FAIL: %s\n  expected %s\n  got      %s" % (desc, short(want), short(got)))


c = dvresp.Conn(port, timeout=120)
dbsize0 = c.call("DBSIZE")

# One key repeated 10,000 times in one MSET: the last value wins.
args = ["MSET"]
for i in range(10000):
    args += ["rep", "r%d" % i]
t0 = time.time()
check("MSET rep x 10000", "OK", c.call(*args))
secs = time.time() - t0
print("MSET of one key repeated 10,000 times: %.3fs" % secs)
check("GET rep", b"r9999", c.call("GET", "rep"))
check("DBSIZE after MSET rep x 10000", dbsize0 + 1, c.call("DBSIZE"))
t0 = time.time()
check("DEL rep x 10000", 1, c.call("DEL", *["rep"] * 10000))
print("DEL of one key repeated 10,000 times: %.3fs" % (time.time() - t0))
check("GET rep after DEL", None, c.call("GET", "rep"))
t0 = time.time()
check("MSET rep x 20000, pipelined 5 times", ["OK"] * 5,
      [c.read() for _ in range(5) if c.send(dvresp.encode(args + args[1:])) or True])
print("5 x MSET of one key repeated 20,000 times, pipelined: %.3fs" % (time.time() - t0))
check("GET rep (pipelined MSETs)", b"r9999", c.call("GET", "rep"))

# Repeats mixed with other keys.
check("MSET a b a c b", "OK", c.call("MSET", "mk:a", "1", "mk:b", "2", "mk:a", "3", "mk:c", "4", "mk:b", "5"))
check("MGET a b c a", [b"3", b"5", b"4", b"3"], c.call("MGET", "mk:a", "mk:b", "mk:c", "mk:a"))
check("EXISTS a a b d", 3, c.call("EXISTS", "mk:a", "mk:a", "mk:b", "mk:d"))
check("DEL a a d", 1, c.call("DEL", "mk:a", "mk:a", "mk:d"))
check("UNLINK b c b c", 2, c.call("UNLINK", "mk:b", "mk:c", "mk:b", "mk:c"))
check("MGET of 10,000 x one key", [b"r9999"] * 10000, c.call("MGET", *["rep"] * 10000))

# More keys than the server runs at once in one command.
N = 20000
keys = ["mk:%d" % i for i in range(N)]
args = ["MSET"]
for i, k in enumerate(keys):
    args += [k, "val:%d" % i]
check("MSET of %d keys" % N, "OK", c.call(*args))
want = [b"val:%d" % i for i in range(N)]
check("MGET of %d keys" % N, want, c.call("MGET", *keys))
check("MGET of %d keys and missing ones" % N, [None] + want + [None],
      c.call("MGET", "mk:none1", *keys, "mk:none2"))
check("EXISTS of %d keys twice" % N, 2 * N, c.call("EXISTS", *(keys + keys)))
# A pipeline around a large MSET and DEL: each command sees exactly the
# ones before it.
last = keys[-1]
pipe = [(["MSET"] + sum(([k, "w:%d" % i] for i, k in enumerate(keys)), []), Status("OK")),
        (["GET", last], b"w:%d" % (N - 1)),
        (["SET", last, "after"], Status("OK")),
        (["GET", last], b"after"),
        (["MGET", keys[0], last], [b"w:0", b"after"]),
        (["DEL"] + keys, N),
        (["GET", last], None),
        (["SET", keys[0], "again"], Status("OK")),
        (["EXISTS"] + keys, 1),
        (["MGET", keys[0], keys[1]], [b"again", None])]
c.send(b"".join(dvresp.encode(a) for a, _ in pipe))
for a, w in pipe:
    check("pipelined %s %s ... (%d args)" % (a[0], a[1], len(a)), w, c.read())
check("DEL of %d keys, all gone" % N, 1, c.call("DEL", *keys))
check("DBSIZE at the end", dbsize0 + 1, c.call("DBSIZE"))
print("ok" if not fails else "%d failure(s)" % fails)
sys.exit(1 if fails else 0)
