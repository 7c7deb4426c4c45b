"""The node server through python3-redis (redis-py, Debian's package): plain
calls, a non-transactional pipeline of 1000 commands, MSET/MGET of 500 keys,
binary keys and values, a 1 MiB value, RESP3 when this redis-py has it,
HELLO, CLIENT SETNAME/GETNAME, concurrent clients of one pool, DBSIZE exact.

Usage (from client_lib.sh): /usr/bin/python3 client_lib.py PORT dynvme|redis
The server must be empty at start. Prints one line per failure, exits 1 if
any, 77 if redis-py cannot be imported."""
import inspect
import os
import random
import sys
import threading
import time

try:
    import redis
except ImportError:
    print("python3-redis is not installed for %s" % sys.executable)
    sys.exit(77)

PORT = int(sys.argv[1])
DYNVME = sys.argv[2] == "dynvme"
QUICK = os.environ.get("DV_TEST_QUICK") == "1"
fails = 0
expected_keys = set()  # keys that should exist at the end (DBSIZE check)


def check(desc, exp, got):
    global fails
    if exp != got:
        fails += 1
        g = repr(got)
        e = repr(exp)
        print("FAIL: %s\n  expected: %s\n  got:      %s" % (desc, e[:300], g[:300]))
        return False
    return True


def ok(desc, cond, got=None):
    global fails
    if not cond:
        fails += 1
        print("FAIL: %s (got %s)" % (desc, repr(got)[:300]))
    return cond


def raises(desc, prefix, fn, *a, **kw):
    try:
        r = fn(*a, **kw)
    except redis.ResponseError as e:
        return ok("%s: error starts with %r" % (desc, prefix), str(e).startswith(prefix), str(e))
    return ok("%s: expected an error %s..." % (desc, prefix), False, r)


def conn(**kw):
    return redis.Redis(host="127.0.0.1", port=PORT, socket_timeout=10, socket_connect_timeout=10, **kw)


print("redis-py", redis.__version__)
r = conn()
rnd = random.Random(7)


def section(fn):
    """Run one section; an exception (a timeout, a closed connection) is one
    failure and the next section starts afresh."""
    global fails
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        fails += 1
        print("FAIL: section %s raised %s: %s" % (fn.__name__, e.__class__.__name__, str(e)[:200]))
    return fn



# ---------------------------------------------------------------- plain calls
@section
def plain_calls():
    global r, rd, vals, rnd
    check("ping", True, r.ping())
    check("echo", b"hi there", r.echo("hi there"))
    check("set", True, r.set("s1", "v1"))
    check("get", b"v1", r.get("s1"))
    check("get missing", None, r.get("nope"))
    check("set nx on existing", None, r.set("s1", "x", nx=True))
    check("set xx on missing", None, r.set("s2", "x", xx=True))
    check("set nx on missing", True, r.set("s2", "x", nx=True))
    check("set get", b"x", r.set("s2", "y", get=True))
    check("get after set get", b"y", r.get("s2"))
    check("set ex", True, r.set("s3", "v", ex=100))
    ok("ttl after set ex", r.ttl("s3") in (99, 100), r.ttl("s3"))
    check("set px", True, r.set("s4", "v", px=50000))
    ok("pttl after set px", 45000 < r.pttl("s4") <= 50000, r.pttl("s4"))
    check("set keepttl", True, r.set("s4", "w", keepttl=True))
    ok("pttl kept", 45000 < r.pttl("s4") <= 50000, r.pttl("s4"))
    check("set exat", True, r.set("s5", "v", exat=int(time.time()) + 100))
    ok("ttl after exat", 98 <= r.ttl("s5") <= 100, r.ttl("s5"))
    check("set pxat", True, r.set("s6", "v", pxat=int(time.time() * 1000) + 100000))
    ok("ttl after pxat", 98 <= r.ttl("s6") <= 100, r.ttl("s6"))
    check("persist", True, r.persist("s6"))
    check("ttl after persist", -1, r.ttl("s6"))
    check("expire", True, r.expire("s6", 1000))
    ok("ttl after expire", 998 <= r.ttl("s6") <= 1000, r.ttl("s6"))
    check("pexpire", True, r.pexpire("s6", 100000))
    ok("pttl after pexpire", 95000 <= r.pttl("s6") <= 100000, r.pttl("s6"))
    check("expire missing", False, r.expire("nope", 10))
    check("ttl missing", -2, r.ttl("nope"))
    check("ttl no expiry", -1, r.ttl("s1"))
    check("exists", 2, r.exists("s1", "s2", "nope"))
    check("delete", 1, r.delete("s2", "nope"))
    check("exists after delete", 0, r.exists("s2"))
    expected_keys.update(["s1", "s3", "s4", "s5", "s6"])
    check("dbsize", 5, r.dbsize())
    info = r.info()
    ok("info has redis-like fields (parsed dict)", isinstance(info, dict) and len(info) > 0, info)
    ks = r.info("keyspace")
    ok("info keyspace db0 keys=5", isinstance(ks.get("db0"), dict) and ks["db0"].get("keys") == 5, ks)
    cfg = r.config_get("maxclients")
    ok("config get maxclients", cfg.get("maxclients") == "1000", cfg)
    raises("unknown command", "unknown command", r.execute_command, "NOSUCHCOMMAND", "x")
    raises("wrong arity", "wrong number of arguments", r.execute_command, "GET")
    check("select 0", True, r.execute_command("SELECT", 0))
    raises("select 99", "DB index is out of range", r.execute_command, "SELECT", 99)

    # decode_responses and UTF-8
    rd = conn(decode_responses=True)
    check("utf-8 value round trip", True, rd.set("utf8:ключ", "значение ☃ 😀"))
    check("utf-8 get", "значение ☃ 😀", rd.get("utf8:ключ"))
    expected_keys.add("utf8:ключ")



# ---------------------------------------------------------------- pipeline of 1000
@section
def pipeline_of_1000():
    global r, rd, vals, rnd
    p = r.pipeline(transaction=False)
    for i in range(250):
        p.set("pl:%d" % i, "val%d" % i)
        p.get("pl:%d" % i)
        p.exists("pl:%d" % i, "pl:nope")
        p.ttl("pl:%d" % i)
    res = p.execute(raise_on_error=False)
    check("pipeline of 1000 commands: reply count", 1000, len(res))
    exp = []
    for i in range(250):
        exp += [True, b"val%d" % i, 1, -1]
    check("pipeline of 1000 commands: replies", exp, res)
    expected_keys.update("pl:%d" % i for i in range(250))
    # errors inside a pipeline stay in place
    p = r.pipeline(transaction=False)
    p.set("pe:1", "a")
    p.execute_command("NOSUCHCOMMAND")
    p.get("pe:1")
    res = p.execute(raise_on_error=False)
    ok("pipeline with an error in the middle", len(res) == 3 and res[0] is True and
       isinstance(res[1], redis.ResponseError) and res[2] == b"a", res)
    expected_keys.add("pe:1")



# ---------------------------------------------------------------- MSET / MGET 500
@section
def mset_mget_500():
    global r, rd, vals, rnd
    kv = {"mk:%d" % i: ("mv%d-" % i) * (1 + i % 13) for i in range(500)}
    check("mset 500", True, r.mset(kv))
    got = r.mget(list(kv.keys()) + ["mk:nope"])
    check("mget 500 + 1 missing", [v.encode() for v in kv.values()] + [None], got)
    expected_keys.update(kv)



# ---------------------------------------------------------------- binary
@section
def binary():
    global r, rd, vals, rnd
    allbytes = bytes(range(256))
    check("set value of all 256 byte values", True, r.set("bin:all", allbytes))
    check("get value of all 256 byte values", allbytes, r.get("bin:all"))
    for name, v in [("nul", b"\x00"), ("nuls", b"\x00" * 1000), ("crlf", b"\r\n"), ("crlfs", b"a\r\nb\r\n\r\n$5\r\n*1\r\n"),
                    ("empty", b""), ("high", bytes(range(128, 256)) * 10)]:
        check("binary value %s set" % name, True, r.set(b"bin:" + name.encode(), v))
        check("binary value %s get" % name, v, r.get(b"bin:" + name.encode()))
        expected_keys.add("bin:" + name)
    bkey = b"\x00\r\n\xff key " + allbytes
    check("binary key set", True, r.set(bkey, b"binkey-value"))
    check("binary key get", b"binkey-value", r.get(bkey))
    check("binary key exists", 1, r.exists(bkey))
    check("binary key mget", [b"binkey-value", None], r.mget([bkey, bkey[:-1]]))
    expected_keys.update(["bin:all", bkey])
    vals = {b"rb:%d" % i: bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 3000))) for i in range(100)}
    r.mset(vals)
    check("100 random binary values", list(vals.values()), r.mget(list(vals)))
    expected_keys.update(vals)



# ---------------------------------------------------------------- 1 MiB
@section
def one_mib():
    global r, rd, vals, rnd
    big = bytes(rnd.getrandbits(8) for _ in range(1 << 20))
    check("1 MiB value set", True, r.set("big:1m", big))
    got = r.get("big:1m")
    check("1 MiB value round trip", True, got == big)
    expected_keys.add("big:1m")
    if DYNVME:
        # (redis-py drops the "ERR " of an error reply from the message)
        raises("1 MiB + 1 value", "", r.set, "big:over", big + b"x")
        check("1 MiB + 1 value not stored", 0, r.exists("big:over"))
        raises("1025-byte key", "", r.set, "k" * 1025, "v")
        try:
            check("1025-byte key not stored (EXISTS: 0 or an error)", 0, r.exists("k" * 1025))
        except redis.ResponseError:
            pass
    check("1023-byte key", True, r.set("k" * 1023, "v"))
    expected_keys.add("k" * 1023)
    check("ping after big values", True, r.ping())



# ---------------------------------------------------------------- HELLO / CLIENT
@section
def hello_client():
    global r, rd, vals, rnd
    sc = conn(single_connection_client=True)
    h = sc.execute_command("HELLO")
    if isinstance(h, list):
        h = dict(zip(h[::2], h[1::2]))
    ok("HELLO has proto 2", isinstance(h, dict) and (h.get(b"proto") == 2 or h.get("proto") == 2), h)
    check("client_getname unset", None, sc.client_getname())
    check("client_setname", True, sc.client_setname("libconn"))
    ok("client_getname", sc.client_getname() in ("libconn", b"libconn"), sc.client_getname())
    cid = sc.client_id()
    ok("client_id is an int", isinstance(cid, int) and cid > 0, cid)
    ci = sc.client_info()
    ok("client_info parsed with id and name", isinstance(ci, dict) and str(ci.get("id")) == str(cid) and
       ci.get("name") == "libconn", ci)
    named = conn(client_name="fromctor", single_connection_client=True)
    ok("client_name= in the constructor", named.client_getname() in ("fromctor", b"fromctor"), named.client_getname())
    named.close()
    sc.close()



# ---------------------------------------------------------------- RESP3
@section
def resp3():
    global r, rd, vals, rnd
    if "protocol" in inspect.signature(redis.Redis.__init__).parameters:
        r3 = conn(protocol=3)
        check("RESP3 set", True, r3.set("r3:k", "v"))
        check("RESP3 get", b"v", r3.get("r3:k"))
        check("RESP3 get missing", None, r3.get("r3:nope"))
        check("RESP3 mget", [b"v", None], r3.mget(["r3:k", "r3:nope"]))
        check("RESP3 ttl", -1, r3.ttl("r3:k"))
        expected_keys.add("r3:k")
        r3.close()
    else:
        print("note: redis-py %s has no protocol=3 (RESP3 via redis-py skipped; commands.py checks RESP3 on the wire)"
              % redis.__version__)



# ---------------------------------------------------------------- concurrent clients
@section
def concurrent_clients():
    global r, rd, vals, rnd
    pool = redis.ConnectionPool(host="127.0.0.1", port=PORT, socket_timeout=20, max_connections=16)
    errs = []
    PER = 300 if QUICK else 1000


    def worker(t):
        c = redis.Redis(connection_pool=pool)
        try:
            for i in range(PER):
                k = "th:%d:%d" % (t, i)
                c.set(k, "%d-%d" % (t, i))
                if c.get(k) != ("%d-%d" % (t, i)).encode():
                    errs.append("bad value for %s" % k)
                    return
        except Exception as e:  # noqa: BLE001
            errs.append(repr(e))


    ths = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(120)
    check("8 threads on one pool: no errors", [], errs[:3])
    for t in range(8):
        expected_keys.update("th:%d:%d" % (t, i) for i in range(PER))



# ---------------------------------------------------------------- many keys, DBSIZE
@section
def many_keys_dbsize():
    global r, rd, vals, rnd
    M = 5000 if QUICK else 20000
    p = r.pipeline(transaction=False)
    for i in range(M):
        p.set("many:%d" % i, i)
        if len(p) >= 1000:
            p.execute()
    p.execute()
    expected_keys.update("many:%d" % i for i in range(M))
    check("DBSIZE after %d keys in all" % len(expected_keys), len(expected_keys), r.dbsize())
    ks = r.info("keyspace")
    check("INFO keyspace keys", len(expected_keys), ks.get("db0", {}).get("keys"))
    check("delete 1000", 1000, r.delete(*["many:%d" % i for i in range(1000)]))
    check("DBSIZE after deleting 1000", len(expected_keys) - 1000, r.dbsize())
    check("last many key", str(M - 1).encode(), r.get("many:%d" % (M - 1)))
    check("ping at the end", True, r.ping())



sys.exit(1 if fails else 0)
