"""Per-connection commands for commands.sh: CLIENT, HELLO (RESP2 and RESP3
replies on the wire), QUIT, COMMAND/COMMAND INFO/DOCS, exact reply bytes and
a large raw pipeline. Usage: commands.py PORT dynvme|redis. Prints one line
per failure, exits 1 if any."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dvresp import Closed, Conn, Err, encode  # noqa: E402

PORT = int(sys.argv[1])
MODE = sys.argv[2]
fails = 0


def check(desc, exp, got):
    global fails
    if exp != got:
        fails += 1
        print("FAIL: %s\n  expected: %r\n  got:      %r" % (desc, exp, got))
        return False
    return True


def ok(desc, cond, got=None):
    global fails
    if not cond:
        fails += 1
        print("FAIL: %s (got %r)" % (desc, got))
    return cond


def raw(c, data, n_expected, what):
    """Send data, read back exactly n_expected bytes (or until timeout)."""
    c.send(data)
    out = c.buf
    c.buf = b""
    c.sock.settimeout(10)
    try:
        while len(out) < n_expected:
            d = c.sock.recv(65536)
            if not d:
                break
            out += d
    except OSError:
        pass
    return out


def rawcheck(c, args, exp, what=None):
    got = raw(c, encode(args), len(exp), what)
    check("raw reply to %s" % (what or " ".join(map(str, args))), exp, got)


# ---------------------------------------------------------------- exact bytes
c = Conn(PORT)
rawcheck(c, ["SET", "rk1", "v1"], b"+OK\r\n")
rawcheck(c, ["GET", "rk1"], b"$2\r\nv1\r\n")
rawcheck(c, ["GET", "rk-missing"], b"$-1\r\n")
rawcheck(c, ["MGET", "rk1", "rk-missing"], b"*2\r\n$2\r\nv1\r\n$-1\r\n")
rawcheck(c, ["EXISTS", "rk1"], b":1\r\n")
rawcheck(c, ["PING"], b"+PONG\r\n")
rawcheck(c, ["PING", "x y"], b"$3\r\nx y\r\n")
rawcheck(c, ["NOSUCH", "a"], b"-ERR unknown command 'NOSUCH', with args beginning with: 'a' \r\n")
rawcheck(c, ["GET"], b"-ERR wrong number of arguments for 'get' command\r\n")
rawcheck(c, ["DEL", "rk1"], b":1\r\n")
rawcheck(c, ["TTL", "rk1"], b":-2\r\n")

# ---------------------------------------------------------------- CLIENT
c2 = Conn(PORT)
check("CLIENT GETNAME without a name", None, c2.call("CLIENT", "GETNAME"))
check("CLIENT SETNAME myconn", "OK", c2.call("CLIENT", "SETNAME", "myconn"))
check("CLIENT GETNAME", b"myconn", c2.call("CLIENT", "GETNAME"))
r = c2.call("CLIENT", "SETNAME", "bad name")
ok("CLIENT SETNAME with a space is an error", isinstance(r, Err) and r.msg.startswith("ERR"), r)
check("CLIENT GETNAME after the refused SETNAME", b"myconn", c2.call("CLIENT", "GETNAME"))
id2 = c2.call("CLIENT", "ID")
ok("CLIENT ID is a positive integer", isinstance(id2, int) and id2 > 0, id2)
c3 = Conn(PORT)
id3 = c3.call("CLIENT", "ID")
ok("CLIENT ID of a later connection is larger", isinstance(id3, int) and isinstance(id2, int) and id3 > id2,
   (id2, id3))
info = c2.call("CLIENT", "INFO")
ok("CLIENT INFO is a bulk string with id= and name=", isinstance(info, bytes) and
   (b"id=%d " % id2) in info and b" name=myconn " in info, info)
check("CLIENT SETNAME '' clears the name", "OK", c2.call("CLIENT", "SETNAME", ""))
check("CLIENT GETNAME after clearing", None, c2.call("CLIENT", "GETNAME"))
r = c2.call("CLIENT", "NOSUCHSUB")
ok("CLIENT NOSUCHSUB is an error", isinstance(r, Err) and r.msg.startswith("ERR"), r)
c3.close()

# ---------------------------------------------------------------- HELLO
r = c2.call("HELLO")
ok("HELLO (RESP2) is a flat array of pairs", isinstance(r, list) and len(r) % 2 == 0, r)
if isinstance(r, list):
    d = dict(zip(r[::2], r[1::2]))
    for k in (b"server", b"version", b"proto", b"id", b"mode", b"role", b"modules"):
        ok("HELLO reply has %s" % k.decode(), k in d, r)
    check("HELLO proto", 2, d.get(b"proto"))
    check("HELLO id is the CLIENT ID", id2, d.get(b"id"))
r = c2.call("HELLO", "3")
ok("HELLO 3 answers with a RESP3 map", isinstance(r, dict), r)
if isinstance(r, dict):
    check("HELLO 3 proto", 3, r.get(b"proto"))
    check("HELLO 3 id", id2, r.get(b"id"))
rawcheck(c2, ["GET", "rk-missing"], b"_\r\n", "GET missing key in RESP3")
rawcheck(c2, ["SET", "rk2", "x"], b"+OK\r\n", "SET in RESP3")
rawcheck(c2, ["MGET", "rk2", "rk-missing"], b"*2\r\n$1\r\nx\r\n_\r\n", "MGET in RESP3")
rawcheck(c2, ["EXISTS", "rk2"], b":1\r\n", "EXISTS in RESP3")
rawcheck(c2, ["NOSUCH"], b"-ERR unknown command 'NOSUCH', with args beginning with: \r\n", "error in RESP3")
r = c2.call("HELLO", "4")
ok("HELLO 4 is a NOPROTO error", isinstance(r, Err) and r.msg.startswith("NOPROTO"), r)
r = c2.call("HELLO", "abc")
ok("HELLO abc is an error", isinstance(r, Err), r)
r = c2.call("HELLO", "2", "SETNAME", "hname")
ok("HELLO 2 SETNAME answers with an array", isinstance(r, list), r)
rawcheck(c2, ["GET", "rk-missing"], b"$-1\r\n", "GET missing key back in RESP2")
check("CLIENT GETNAME after HELLO SETNAME", b"hname", c2.call("CLIENT", "GETNAME"))
rawcheck(c2, ["DEL", "rk2"], b":1\r\n")
c2.close()

# ---------------------------------------------------------------- QUIT
c4 = Conn(PORT)
c4.send(encode(["QUIT"]) + encode(["PING"]))
try:
    data = c4.read_raw_until_closed(timeout=10)
    check("QUIT then PING in one write: +OK and the connection closed", b"+OK\r\n", data)
except OSError as e:
    ok("QUIT closes the connection", False, repr(e))
c4.close()

# ---------------------------------------------------------------- COMMAND
names = ["ping", "echo", "get", "set", "del", "exists", "mget", "mset", "expire", "pexpire", "ttl", "pttl",
         "persist", "dbsize", "info", "auth", "hello", "select", "quit", "client", "command", "config"]
allc = c.call("COMMAND")
ok("COMMAND is an array", isinstance(allc, list) and len(allc) > 0, type(allc))
if isinstance(allc, list):
    have = {e[0].lower() for e in allc if isinstance(e, list) and e and isinstance(e[0], bytes)}
    for n in names:
        ok("COMMAND lists %s" % n, n.encode() in have, sorted(have)[:40])
    check("COMMAND COUNT == len(COMMAND)", len(allc), c.call("COMMAND", "COUNT"))
r = c.call("COMMAND", "INFO", "get", "set", "mget", "mset", "del", "nosuchcmd")
ok("COMMAND INFO of 6 names answers 6 entries", isinstance(r, list) and len(r) == 6, r)
if isinstance(r, list) and len(r) == 6:
    for e, (nm, arity, first, last, step) in zip(r, [("get", 2, 1, 1, 1), ("set", -3, 1, 1, 1),
                                                      ("mget", -2, 1, -1, 1), ("mset", -3, 1, -1, 2),
                                                      ("del", -2, 1, -1, 1)]):
        if ok("COMMAND INFO %s is an entry" % nm, isinstance(e, list) and len(e) >= 6, e):
            check("COMMAND INFO %s name/arity/first/last/step" % nm, [nm.encode(), arity, first, last, step],
                  [e[0], e[1], e[3], e[4], e[5]])
            ok("COMMAND INFO %s flags is an array" % nm, isinstance(e[2], list), e[2])
    check("COMMAND INFO nosuchcmd is nil", None, r[5])
r = c.call("COMMAND", "DOCS", "get")
if isinstance(r, list):
    r = dict(zip(r[::2], r[1::2]))
ok("COMMAND DOCS get is a map with get", isinstance(r, dict) and b"get" in r, r)

# ---------------------------------------------------------------- big raw pipeline
N = 1000 if os.environ.get("DV_TEST_QUICK") != "1" else 300
req = []
exp = []
for i in range(N):
    v = ("pv%d" % i).encode() * (i % 7 + 1)
    req.append(encode(["SET", "pipe:%d" % i, v]))
    exp.append(b"+OK\r\n")
    req.append(encode(["GET", "pipe:%d" % i]))
    exp.append(b"$%d\r\n%s\r\n" % (len(v), v))
    req.append(encode(["PING"]))
    exp.append(b"+PONG\r\n")
exp = b"".join(exp)
got = raw(c, b"".join(req), len(exp), "pipeline")
check("%d SET/GET/PING in one write: exact reply bytes (first difference at %d)" %
      (3 * N, next((i for i in range(min(len(exp), len(got))) if exp[i] != got[i]), min(len(exp), len(got)))),
      True, exp == got)
c.close()

# Consecutive small pipelines on one connection, each read before the next:
# SET k, GET k, PING in one write, 20 times.
c5 = Conn(PORT)
for i in range(20):
    v = b"round-%d" % i
    exp = b"+OK\r\n$%d\r\n%s\r\n+PONG\r\n" % (len(v), v)
    got = raw(c5, encode(["SET", "rounds", v]) + encode(["GET", "rounds"]) + encode(["PING"]), len(exp), "round")
    if not check("pipeline %d of 20 on one connection: SET rounds %s, GET rounds, PING" % (i + 1, v.decode()), exp, got):
        break
c5.close()
c = Conn(PORT)
check("DEL rounds", 1, c.call("DEL", "rounds"))
dels = c.call("DEL", *["pipe:%d" % i for i in range(N)])
check("DEL of the pipeline keys (new connection)", N, dels)
c.close()
sys.exit(1 if fails else 0)
