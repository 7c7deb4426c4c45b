"""pipelines.sh's checks of one client's pipelines (issue 8, review 1 S1,
S2, S6, S7 and the --threads 2 read after another client's write). Every
expected reply is Redis's (DV_SERVER=redis runs the same against
redis-server). Usage: pipelines.py PORT MODE [ARGS]

  inline             quoted inline commands that must wait for an earlier
                     command of their client run as sent (S1)
  halfclose N        N x (SET; GET) pipelined then shutdown(SHUT_WR), as
                     `cat cmds | nc` does: every command runs and is
                     answered, then the server closes (S2)
  rmwrace C M P      C clients race `SET k <unique> GET` on one key, P
                     pipelined at a time, M each: no error, every value
                     written is seen as the old value exactly once (S6)
  rates N HTTP       pipelines of N distinct keys: pure SET, SET k_i +
                     GET other_i, SET k_i v GET, SET k_i + GET k_i; every
                     reply checked; prints cmds/s; with HTTP (a dynvme
                     server's HTTP port, 0 for none) no request waited for
                     an earlier command of another key (S7)
  xthread ITER       --threads 2: A (one network thread) sends SET k a_i,
                     B (the other) SET k b_i and waits for OK, then A sends
                     GET k: when b_i is what k holds after both, A's GET
                     must answer b_i (it was sent after B's OK)
"""
import os
import socket
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dvresp  # noqa: E402
from dvresp import Status  # noqa: E402

port, mode = int(sys.argv[1]), sys.argv[2]
args = [int(a) for a in sys.argv[3:]]
tag = "%d" % time.time_ns()
fails = 0


def fail(msg):
    global fails
    fails += 1
    print("FAIL:", msg)


def raw_exchange(payload, want_len, timeout=10.0):
    """Send payload on a fresh connection, read until want_len bytes came
    (or the server closes, or timeout)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(payload)
    got = b""
    end = time.time() + timeout
    while len(got) < want_len and time.time() < end:
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        if not d:
            break
        got += d
    s.close()
    return got


def mode_inline():
    # Each case: inline commands sent in one write; the later ones wait for
    # an earlier read-modify-write (SET ... GET) of the same key, so they
    # are parsed again once it is back; quoted args must stay as sent.
    k = "il%s" % tag
    cases = [
        ('DEL "%s"\r\nSET %s x\r\nSET "%s" "v" GET\r\nGET %s\r\nGET "kk vv"\r\n' % (k, k, k, k),
         b":0\r\n+OK\r\n$1\r\nx\r\n$1\r\nv\r\n$-1\r\n"),
        ('SET "%s a b" 1 GET\r\nGET "%s a b"\r\nEXISTS "%s a b" "%s a"\r\n' % (k, k, k, k),
         b"$-1\r\n$1\r\n1\r\n:1\r\n"),
        ('SET "%s\\x41\\n" v GET\r\nGET "%s\\x41\\n"\r\nGET %sA\r\n' % (k, k, k),
         b"$-1\r\n$1\r\nv\r\n$-1\r\n"),
        ("SET '%s s q' w GET\r\nMGET '%s s q' \"%s s q\" '%s'\r\n" % (k, k, k, k),
         b"$-1\r\n*3\r\n$1\r\nw\r\n$1\r\nw\r\n$1\r\nv\r\n"),
        ('SET "%s e" "a\\"b c" GET\r\nSET "%s e" "d\\\\e" GET\r\nGET "%s e"\r\n' % (k, k, k),
         b'$-1\r\n$5\r\na"b c\r\n$3\r\nd\\e\r\n'),
    ]
    for payload, want in cases:
        got = raw_exchange(payload.encode(), len(want))
        if got != want:
            fail("inline %r:\n  want %r\n  got  %r" % (payload, want, got))


def read_all(s, timeout):
    s.settimeout(timeout)
    got = b""
    while True:
        try:
            d = s.recv(1 << 20)
        except socket.timeout:
            return got, "timeout"
        except ConnectionResetError:
            return got, "reset"
        if not d:
            return got, "eof"
        got += d


def mode_halfclose(n):
    for style in ("multibulk", "inline"):
        p = "hc%s%s" % (style[0], tag)
        if style == "multibulk":
            payload = b"".join(dvresp.encode(["SET", "%s:%d" % (p, i), "v%d" % i]) +
                               dvresp.encode(["GET", "%s:o%d" % (p, i)]) for i in range(n))
        else:
            payload = "".join("SET %s:%d v%d\r\nGET %s:o%d\r\n" % (p, i, i, p, i) for i in range(n)).encode()
        payload += dvresp.encode(["SET", "%s:last" % p, "x", "GET"])  # waits for nothing, the last one
        payload += b"*2\r\n$3\r\nGET\r\n$4\r\nab"  # a partial request: never answered
        want = b"+OK\r\n$-1\r\n" * n + b"$-1\r\n"
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        got, how = read_all(s, 30)
        s.close()
        if got != want or how != "eof":
            i = next((j for j in range(min(len(got), len(want))) if got[j] != want[j]), min(len(got), len(want)))
            fail("half-close %s: %d commands sent, %d of %d reply bytes, then %s; first difference at byte %d: %r"
                 % (style, 2 * n + 1, len(got), len(want), how, i, got[max(0, i - 20):i + 20]))
        else:
            print("half-close %s: %d commands, every reply, then EOF" % (style, 2 * n + 1))
        c = dvresp.Conn(port)
        exists = c.call("EXISTS", *["%s:%d" % (p, i) for i in range(n)] + ["%s:last" % p])
        if exists != n + 1:
            fail("half-close %s: %s of %d keys written" % (style, exists, n + 1))
        c.close()


def mode_rmwrace(nclients, m, p):
    key = "race:%s" % tag
    pids, files = [], []
    for cid in range(nclients):
        f = "/tmp/dv-rmwrace.%d.%d" % (os.getpid(), cid)
        files.append(f)
        pid = os.fork()
        if pid == 0:
            c = dvresp.Conn(port, timeout=120)
            out = []
            for i in range(0, m, p):
                vals = [b"%d:%d" % (cid, i + j) for j in range(p)]
                c.send(b"".join(dvresp.encode(["SET", key, v, "GET"]) for v in vals))
                for v in vals:
                    r = c.read()
                    out.append(b"%s %s" % (v, b"-" + r.msg.encode() if isinstance(r, dvresp.Err)
                                           else b"nil" if r is None else b"=" + r))
            with open(f, "wb") as fh:
                fh.write(b"\n".join(out))
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    written, olds, errors = set(), [], []
    for f in files:
        for line in open(f, "rb").read().split(b"\n"):
            v, r = line.split(b" ", 1)
            if r.startswith(b"-"):
                errors.append(r.decode())
                continue
            written.add(v)
            if r != b"nil":
                olds.append(r[1:])
        os.unlink(f)
    final = dvresp.Conn(port).call("GET", key)
    nil = nclients * m - len(errors) - len(olds)
    seen = set(olds)
    dup = len(olds) - len(seen)
    lost = [v for v in written if v not in seen and v != final]
    print("rmwrace: %d ops, %d errors %s, %d nil olds (want 1), %d seen twice, %d lost"
          % (nclients * m, len(errors), sorted(set(errors))[:2], nil, dup, len(lost)))
    if errors or nil != 1 or dup or lost or not seen <= written:
        fail("read-modify-writes of one key under contention: errors or lost updates (see above)")


def metric(http, name):
    if not http:
        return 0
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % http, timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    fail("metric %s missing from /metrics" % name)
    return 0


def mode_rates(n, http):
    rate = {}
    for kind in ("sets", "mixed", "setget", "pairs"):
        p = "rt%s%s" % (kind, tag)
        buf, want = [], []
        for i in range(n):
            k = "%s:%d" % (p, i)
            if kind == "sets":
                buf.append(dvresp.encode(["SET", k, "v%d" % i]))
                want.append(b"+OK\r\n")
            elif kind == "mixed":  # SET one key, GET another that was never written
                buf.append(dvresp.encode(["SET", k, "v%d" % i]) + dvresp.encode(["GET", k + ":o"]))
                want.append(b"+OK\r\n$-1\r\n")
            elif kind == "setget":  # a read-modify-write of a new key each
                buf.append(dvresp.encode(["SET", k, "v%d" % i, "GET"]))
                want.append(b"$-1\r\n")
            else:  # SET then GET of the same key: answered from the write
                v = b"v%d" % i
                buf.append(dvresp.encode(["SET", k, v]) + dvresp.encode(["GET", k]))
                want.append(b"+OK\r\n$%d\r\n%s\r\n" % (len(v), v))
        payload, want = b"".join(buf), b"".join(want)
        waits0 = metric(http, "dynvme_pipeline_waits_total")
        s = socket.create_connection(("127.0.0.1", port))
        t0 = time.time()
        s.sendall(payload)  # the server reads as fast as it answers: the kernel's buffers hold the rest
        s.settimeout(120)
        got = b""
        while len(got) < len(want):
            try:
                d = s.recv(1 << 20)
            except socket.timeout:
                break
            if not d:
                break
            got += d
        dt = time.time() - t0
        s.close()
        cmds = n * (2 if kind in ("mixed", "pairs") else 1)
        rate[kind] = cmds / dt
        waits = metric(http, "dynvme_pipeline_waits_total") - waits0
        print("rates %-6s: %d commands in %.2fs, %.0f cmds/s, %d waited" % (kind, cmds, dt, rate[kind], waits))
        if got != want:
            fail("rates %s: %d of %d reply bytes, or wrong replies" % (kind, len(got), len(want)))
        if http and waits:
            fail("rates %s: %d requests waited for an earlier command of another key" % (kind, waits))
    print("rates: mixed/sets %.2f, setget/sets %.2f, pairs/sets %.2f" %
          (rate["mixed"] / rate["sets"], rate["setget"] / rate["sets"], rate["pairs"] / rate["sets"]))


def thread_of(c):
    info = c.call("CLIENT", "INFO")
    return ([f for f in info.decode().split() if f.startswith("thread=")] + ["thread=?"])[0]


def mode_xthread(iters):
    conns = [dvresp.Conn(port) for _ in range(12)]
    by = {}
    for c in conns:
        by.setdefault(thread_of(c), []).append(c)
    if len(by) < 2:
        print("xthread: every connection on one network thread; skipped")
        return
    (ta, la), (tb, lb) = list(by.items())[:2]
    a, b, c = la[0], lb[0], la[1] if len(la) > 1 else lb[1]
    stale = b_last = 0
    for i in range(iters):
        k = "xt%s:%d" % (tag, i % 50)
        a.send(dvresp.encode(["SET", k, "a%d" % i]))  # not waited for
        if b.call("SET", k, "b%d" % i) != Status("OK"):
            fail("xthread: B's SET failed")
        a.send(dvresp.encode(["GET", k]))  # sent after B's OK
        if a.read() != Status("OK"):
            fail("xthread: A's SET failed")
        got = a.read()
        final = c.call("GET", k)
        if final == b"b%d" % i:
            b_last += 1
            if got != final:
                stale += 1
                if stale <= 3:
                    print("xthread %d: B's SET acknowledged, then A's GET answered %r; the key holds %r"
                          % (i, got, final))
    print("xthread: %d iterations, B's write last in %d, stale reads %d" % (iters, b_last, stale))
    if stale:
        fail("xthread: a GET sent after another client's write was acknowledged answered an older value")


{"inline": mode_inline, "halfclose": mode_halfclose, "rmwrace": mode_rmwrace, "rates": mode_rates,
 "xthread": mode_xthread}[mode](*args)
sys.exit(1 if fails else 0)
