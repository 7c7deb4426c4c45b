"""config_get.sh's checks: CONFIG GET with patterns matching many parameters
answers name/value pairs like redis-server (RESP2: a flat array of pairs;
RESP3: a map), every name once, every name matching one of the patterns,
and the server keeps serving. Usage: config_get.py PORT dynvme|redis PW"""
import fnmatch
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dvresp import Closed, Conn, Err  # noqa: E402

port, mode, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]


def connect(proto):
    c = Conn(port)
    r = c.call("HELLO", "3", "AUTH", "default", pw) if proto == 3 else c.call("AUTH", pw)
    if isinstance(r, Err):
        sys.exit("FAIL: cannot authenticate: %r" % r)
    return c

fails = 0


def fail(msg):
    global fails
    fails += 1
    print("FAIL: " + msg)


# dynvme's parameters (config.c) and the Redis ones it answers for clients.
DV_NAMES = {"bind", "port", "http-port", "data", "size", "zone-bytes", "threads", "requirepass",
            "protected-mode", "maxclients", "timeout", "auth-timeout", "request-timeout",
            "max-request-bytes", "max-reply-bytes", "max-pipeline", "cache-bytes", "write-batches",
            "log-level", "save", "appendonly", "databases", "maxmemory", "maxmemory-policy",
            "cluster-enabled"}
# Names redis-server 7 must answer too (the script checks itself against it).
COMMON = {"bind", "port", "requirepass", "protected-mode", "maxclients", "timeout", "save", "appendonly",
          "databases", "maxmemory", "maxmemory-policy", "cluster-enabled"}


def pairs(reply, proto, desc):
    """The (name, value) list of a CONFIG GET reply, or None (failed)."""
    if proto == 3:
        if not isinstance(reply, dict):
            fail("%s: RESP3 reply is not a map: %r" % (desc, reply))
            return None
        return [(k, v) for k, v in reply.items()]
    if not isinstance(reply, list) or len(reply) % 2:
        fail("%s: RESP2 reply is not a flat array of pairs: %r" % (desc, reply if not isinstance(reply, list) else len(reply)))
        return None
    return [(reply[i], reply[i + 1]) for i in range(0, len(reply), 2)]


def check(c, proto, pats, must):
    desc = "CONFIG GET %s (RESP%d)" % (" ".join(pats), proto)
    try:
        reply = c.call("CONFIG", "GET", *pats)
    except Closed:
        fail("%s: the server closed the connection" % desc)
        return None
    ps = pairs(reply, proto, desc)
    if ps is None:
        return None
    names = []
    for k, v in ps:
        if not isinstance(k, bytes) or not isinstance(v, bytes):
            fail("%s: pair %r %r is not two bulk strings" % (desc, k, v))
            return None
        names.append(k.decode())
    if len(set(names)) != len(names):
        fail("%s: duplicate names %s" % (desc, sorted(n for n in set(names) if names.count(n) > 1)))
    for n in names:
        if not any(fnmatch.fnmatchcase(n.lower(), p.lower()) for p in pats):
            fail("%s: %r matches none of the patterns" % (desc, n))
    want = {n for n in must if any(fnmatch.fnmatchcase(n, p.lower()) for p in pats)}
    missing = want - set(names)
    if missing:
        fail("%s: missing %s" % (desc, sorted(missing)))
    return dict((k.decode(), v.decode()) for k, v in ps)


must = DV_NAMES if mode == "dynvme" else COMMON
for proto in (2, 3):
    c = connect(proto)
    for pats in (["*"], ["max*"], ["*port"], ["*bytes"], ["port"], ["*", "*"],
                 ["port", "port", "*port"], ["max*", "*max*", "maxclients"], ["no-such-*"], ["*-*", "m*", "*s"]):
        got = check(c, proto, pats, must)
        if got is None:
            c = connect(proto)
            continue
        if mode == "dynvme" and pats == ["*"]:
            extra = set(got) - DV_NAMES
            if extra:
                fail("CONFIG GET *: unexpected names %s" % sorted(extra))
            if got.get("requirepass") != "":
                fail("CONFIG GET *: requirepass is not hidden: %r" % got.get("requirepass"))
        if pats == ["no-such-*"] and got:
            fail("CONFIG GET no-such-*: %r" % got)
        if pats == ["port"] and got.get("port") != str(port):
            fail("CONFIG GET port: %r" % got)
    pong = c.call("PING")
    if pong != "PONG":
        fail("PING after CONFIG GET: %r" % (pong,))
    c.close()
print("ok" if not fails else "%d failure(s)" % fails)
sys.exit(1 if fails else 0)
