"""Writer and checker for durability.sh and shutdown.sh (raw RESP, standard
library only; run with /usr/bin/python3).

  fill PORT PREFIX N            SET N keys in pipelines of 100; exit 0 when
                                every reply was +OK
  checkfill PORT PREFIX N       every key PREFIX:i holds its value
  write PORT PREFIX ACKS THREADS KEYS SECS
                                THREADS connections, each owning KEYS keys
                                PREFIX:t:i; one command in flight per
                                connection; each op is version v of a random
                                key: SET of value(key, v) or (one op in 8) DEL.
                                Every acknowledged op is appended to
                                ACKS.t as "key version" right after its reply.
                                Stops after SECS or when the server goes away
                                (both exit 0); exit 1 on a wrong reply.
  check PORT PREFIX ACKS THREADS KEYS
                                after a crash: every key is in the state of
                                its last acknowledged op, or of the one op
                                after it that may have been in flight.
"""
import os
import random
import sys
import threading
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dvresp import Closed, Conn, Err, encode  # noqa: E402


def fill_value(prefix, i):
    return b"%s:%d:" % (prefix.encode(), i) + b"f" * (i % 300)


def is_del(key, v):
    return zlib.crc32(b"%s/%d" % (key, v)) % 8 == 0


def value(key, v):
    h = zlib.crc32(b"%s#%d" % (key, v))
    n = h % 1500 if h % 50 else 20000 + h % 40000  # 2% of values are 20-60 KB
    return b"%s|%d|" % (key, v) + bytes([97 + h % 26]) * n


def fill(port, prefix, n):
    c = Conn(port, timeout=30)
    for s in range(0, n, 100):
        e = min(n, s + 100)
        c.send(b"".join(encode(["SET", "%s:%d" % (prefix, i), fill_value(prefix, i)]) for i in range(s, e)))
        for i in range(s, e):
            r = c.read()
            if r != "OK":
                print("fill: SET %s:%d answered %r" % (prefix, i, r))
                return 1
    return 0


def checkfill(port, prefix, n):
    c = Conn(port, timeout=30)
    bad = 0
    for s in range(0, n, 200):
        e = min(n, s + 200)
        got = c.call("MGET", *["%s:%d" % (prefix, i) for i in range(s, e)])
        if not isinstance(got, list):
            print("checkfill: MGET answered %r" % (got,))
            return 1
        for i, v in zip(range(s, e), got):
            if v != fill_value(prefix, i):
                bad += 1
                if bad <= 5:
                    print("checkfill: %s:%d is %r, acknowledged %r" % (prefix, i, (v or b"")[:60],
                                                                        fill_value(prefix, i)[:60]))
    if bad:
        print("checkfill: %d of %d acknowledged keys lost or wrong" % (bad, n))
    return 1 if bad else 0


def write(port, prefix, acks, threads, keys, secs):
    end = time.time() + secs
    errors = []
    counts = [0] * threads

    def run(t):
        rnd = random.Random(t * 7919 + int(time.time()))
        ver = {}
        f = open("%s.%d" % (acks, t), "ab", buffering=0)
        try:
            c = Conn(port, timeout=30)
        except OSError:
            return
        try:
            while time.time() < end:
                key = b"%s:%d:%d" % (prefix.encode(), t, rnd.randrange(keys))
                v = ver.get(key, 0) + 1
                ver[key] = v
                if is_del(key, v):
                    c.send(encode([b"DEL", key]))
                    r = c.read()
                    if r not in (0, 1):
                        errors.append("DEL %r answered %r" % (key, r))
                        return
                else:
                    c.send(encode([b"SET", key, value(key, v)]))
                    r = c.read()
                    if r != "OK":
                        errors.append("SET %r answered %r" % (key, r))
                        return
                f.write(b"%s %d\n" % (key, v))
                counts[t] += 1
        except (Closed, OSError):
            pass  # the server was killed
        finally:
            f.close()

    ths = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    print("write: %d acknowledged ops" % sum(counts))
    for e in errors[:5]:
        print("write: " + e)
    return 1 if errors else 0


def check(port, prefix, acks, threads, keys):
    last = {}
    for t in range(threads):
        try:
            for line in open("%s.%d" % (acks, t), "rb"):
                parts = line.split()
                if len(parts) == 2:
                    last[parts[0]] = int(parts[1])
        except FileNotFoundError:
            pass
    c = Conn(port, timeout=30)
    allkeys = [b"%s:%d:%d" % (prefix.encode(), t, i) for t in range(threads) for i in range(keys)]
    bad = 0
    checked = 0
    for s in range(0, len(allkeys), 200):
        chunk = allkeys[s:s + 200]
        got = c.call("MGET", *chunk)
        if not isinstance(got, list):
            print("check: MGET answered %r" % (got,))
            return 1
        for key, v in zip(chunk, got):
            a = last.get(key, 0)
            ok_states = []
            for ver in (a, a + 1):  # last acknowledged, or the op in flight after it
                if ver == 0 or is_del(key, ver):
                    ok_states.append(None)
                else:
                    ok_states.append(value(key, ver))
            if a:
                checked += 1
            if v not in ok_states:
                bad += 1
                if bad <= 5:
                    desc = (v or b"(nil)")[:40]
                    print("check: %r is %r; last acknowledged op: version %d (%s)" %
                          (key, desc, a, "DEL" if a and is_del(key, a) else "SET"))
    print("check: %d acknowledged keys, %d wrong" % (checked, bad))
    return 1 if bad else 0


def main():
    a = sys.argv
    mode, port = a[1], int(a[2])
    if mode == "fill":
        return fill(port, a[3], int(a[4]))
    if mode == "checkfill":
        return checkfill(port, a[3], int(a[4]))
    if mode == "write":
        return write(port, a[3], a[4], int(a[5]), int(a[6]), float(a[7]))
    if mode == "check":
        return check(port, a[3], a[4], int(a[5]), int(a[6]))
    print("unknown mode " + mode)
    return 2


if __name__ == "__main__":
    sys.exit(main())
