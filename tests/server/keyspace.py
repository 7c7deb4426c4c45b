"""keyspace.py - the keyspace under concurrent clients, for keyspace.sh.

  keyspace.py PORT MODE scan      SCAN (and KEYS) while other clients write
                                  and delete: every key present for the whole
                                  iteration is returned at least once
  keyspace.py PORT MODE incr      INCR/INCRBY/DECRBY/APPEND from several
                                  connections at once: no update lost
  keyspace.py PORT MODE flushpipe FLUSHALL between pipelined writes and reads
                                  of one connection: each sees the one before

Standard library only (dvresp.py); bounded in count and time. Prints one
line per failure, exits 1 if any.
"""
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dvresp import Conn, Err, encode  # noqa: E402

PORT = int(sys.argv[1])
MODE = sys.argv[2]
WHAT = sys.argv[3]
QUICK = os.environ.get("DV_TEST_QUICK") == "1"
# A reply may take this long (sanitizer builds are several times slower:
# KEYS reads every record of the keyspace while two writers run).
TIMEOUT = 150 if QUICK else 30
fails = 0


def check(desc, exp, got):
    global fails
    if exp != got:
        fails += 1
        print("FAIL: %s\n  expected: %r\n  got:      %r" % (desc, exp, got))
        return False
    return True


def pipeline(c, cmds):
    c.send(b"".join(encode(a) for a in cmds))
    return [c.read() for _ in cmds]


def info_field(c, section, name):
    text = c.call("INFO", section)
    for line in text.decode().splitlines():
        if line.startswith(name + ":"):
            return int(line.split(":", 1)[1])
    return None


# ---------------------------------------------------------------- scan
def scan_all(c, count, match=None):
    keys, cursor, calls = set(), b"0", 0
    while True:
        args = ["SCAN", cursor, "COUNT", count] + (["MATCH", match] if match else [])
        r = c.call(*args)
        if isinstance(r, Err):
            raise RuntimeError("SCAN: %s" % r.msg)
        cursor, batch = r
        keys.update(batch)
        calls += 1
        if cursor == b"0" or calls > 2000000:
            return keys, calls


def writer(stop, stable, seed, counts):
    rnd = random.Random(seed)
    c = Conn(PORT, timeout=TIMEOUT)
    big = b"x" * 2000
    n = 0
    while not stop.is_set() and n < 100000:
        time.sleep(0.003)  # about 15k writes a second from each: GC runs, the scan goes on
        cmds = []
        for _ in range(50):
            r = rnd.random()
            if r < 0.3:  # overwrite a key that stays present: it must still be found
                k = "stable:%d" % rnd.randrange(stable)
                cmds.append(["SET", k, b"v%d" % n + big[:rnd.randrange(1, 2000)]])
            elif r < 0.6:
                cmds.append(["SET", "churn:%d" % rnd.randrange(5000), big])
            elif r < 0.9:
                cmds.append(["DEL", "churn:%d" % rnd.randrange(5000)])
            else:
                cmds.append(["SET", "new:%d:%d" % (seed, n), "n"])
            n += 1
        for rep in pipeline(c, cmds):
            if isinstance(rep, Err):
                counts["errors"] += 1
    counts["writes"] += n
    c.close()


def scan_test():
    stable = 1000 if QUICK else 3000
    c = Conn(PORT, timeout=TIMEOUT)
    check("FLUSHALL", "OK", c.call("FLUSHALL"))
    for i in range(0, stable, 500):
        check("MSET stable keys", "OK", c.call("MSET", *[x for j in range(i, min(stable, i + 500))
                                                       for x in ("stable:%d" % j, "s")]))
    want = {b"stable:%d" % i for i in range(stable)}
    gc0 = info_field(c, "storage", "gc_zones_reset") if MODE == "dynvme" else 0
    stop = threading.Event()
    counts = {"writes": 0, "errors": 0}
    ws = [threading.Thread(target=writer, args=(stop, stable, s, counts)) for s in range(2)]
    for w in ws:
        w.start()
    time.sleep(0.5)  # the writers under way before the iterations start
    t0 = time.time()
    try:
        got, calls = scan_all(c, 10)
        got_match, calls_m = scan_all(c, 50, "stable:*")
        keys = set(c.call("KEYS", "stable:*"))
    finally:
        stop.set()
        for w in ws:
            w.join()
    missing = sorted(want - got)
    check("SCAN COUNT 10 under writes (%d calls): every key present throughout returned (missing %d, e.g. %r)"
          % (calls, len(missing), missing[:3]), 0, len(missing))
    missing = sorted(want - got_match)
    check("SCAN MATCH stable:* under writes (%d calls): every stable key returned (missing %d)"
          % (calls_m, len(missing)), 0, len(missing))
    check("SCAN MATCH stable:* returns only matching keys", [], sorted(k for k in got_match if not k.startswith(b"stable:")))
    check("KEYS stable:* under writes: every stable key, once", (len(want), want), (len(keys), set(keys)))
    check("writes answered without errors", 0, counts["errors"])
    if MODE == "dynvme":
        gc1 = info_field(c, "storage", "gc_zones_reset")
        if gc1 == gc0:
            print("FAIL: GC collected no zone during the iterations (%d writes in %.1fs): the test did not test GC"
                  % (counts["writes"], time.time() - t0))
            global fails
            fails += 1
        else:
            print("scan: %d zones collected by GC, %d writes during the iterations" % (gc1 - gc0, counts["writes"]))
    # RANDOMKEY: a key that exists, and every key can come out.
    check("FLUSHALL", "OK", c.call("FLUSHALL"))
    check("RANDOMKEY of an empty database", None, c.call("RANDOMKEY"))
    check("MSET 3 keys", "OK", c.call("MSET", "r1", "a", "r2", "b", "r3", "c"))
    seen = set(c.call("RANDOMKEY") for _ in range(300))
    check("RANDOMKEY: every one of 3 keys in 300 calls, nothing else", {b"r1", b"r2", b"r3"}, seen)
    c.close()


# ---------------------------------------------------------------- incr
def incr_client(seed, rounds, out):
    rnd = random.Random(seed)
    c = Conn(PORT, timeout=TIMEOUT)
    sums = {}
    errors = 0
    for _ in range(rounds):
        cmds = []
        for _ in range(40):
            k = "ctr:%d" % rnd.randrange(4)
            r = rnd.random()
            if r < 0.5:
                cmds.append(["INCR", k])
                sums[k] = sums.get(k, 0) + 1
            elif r < 0.75:
                d = rnd.randrange(-50, 50)
                cmds.append(["INCRBY", k, d])
                sums[k] = sums.get(k, 0) + d
            elif r < 0.9:
                d = rnd.randrange(-50, 50)
                cmds.append(["DECRBY", k, d])
                sums[k] = sums.get(k, 0) - d
            else:
                cmds.append(["APPEND", "log", "x"])
                sums["log"] = sums.get("log", 0) + 1
        errors += sum(isinstance(r, Err) for r in pipeline(c, cmds))
    c.close()
    out.append((sums, errors))


def incr_test():
    c = Conn(PORT, timeout=TIMEOUT)
    check("FLUSHALL", "OK", c.call("FLUSHALL"))
    clients, rounds = (4, 25) if QUICK else (8, 60)
    out = []
    ts = [threading.Thread(target=incr_client, args=(s, rounds, out)) for s in range(clients)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    total = {}
    for sums, errors in out:
        check("INCR family answered without errors", 0, errors)
        for k, v in sums.items():
            total[k] = total.get(k, 0) + v
    for i in range(4):
        k = "ctr:%d" % i
        got = c.call("GET", k)
        check("%s after %d clients x %d pipelines of updates: every one counted" % (k, clients, rounds),
              total.get(k, 0), int(got) if got is not None else 0)
    check("APPEND from %d clients: every byte there" % clients, total.get("log", 0), c.call("STRLEN", "log"))
    print("incr: %d clients, %d updates in %.1fs" % (clients, clients * rounds * 40, time.time() - t0))
    c.close()


# ---------------------------------------------------------------- flushpipe
def flushpipe_test():
    c = Conn(PORT, timeout=TIMEOUT)
    got = pipeline(c, [["SET", "a", "1"], ["SET", "b", "2"], ["FLUSHALL"], ["GET", "a"], ["SET", "a", "3"],
                       ["GET", "a"], ["EXISTS", "b"], ["DBSIZE"], ["FLUSHDB"], ["GET", "a"], ["DBSIZE"],
                       ["SET", "c", "4"], ["KEYS", "*"], ["SCAN", "0"]])
    check("FLUSHALL between pipelined commands of one connection", ["OK", "OK", "OK", None, "OK", b"3", 0, 1, "OK",
                                                                    None, 0, "OK", [b"c"], [b"0", [b"c"]]], got)
    # Another client's writes and a FLUSHALL: after the FLUSHALL's reply,
    # a write acknowledged before it is gone, one sent after it stays.
    d = Conn(PORT, timeout=TIMEOUT)
    check("SET by another client", "OK", d.call("SET", "before", "x"))
    check("FLUSHALL", "OK", c.call("FLUSHALL"))
    check("the other client's key is gone", 0, d.call("EXISTS", "before"))
    check("SET after the FLUSHALL", "OK", d.call("SET", "after", "y"))
    check("... and it stays", b"y", c.call("GET", "after"))
    c.close()
    d.close()


{"scan": scan_test, "incr": incr_test, "flushpipe": flushpipe_test}[WHAT]()
sys.exit(1 if fails else 0)
