"""pipeline_pairs.sh's load (issue 8 items 10 and 11): N x (SET key:i v:i;
GET key:i) written on one connection before any reply is read (more input
than the server buffers for a client: it must stop reading and go on, not
drop the client), then every reply read: 2N replies, in order, each GET
answering the value its SET wrote just before. Prints the time taken.
With a value size, the pairs are (SET key:i <that many bytes>; EXISTS
key:i): EXISTS is not answered from the write, it waits for it, and the
requests behind it wait in the server's input buffer (item 10's case).
Usage: pipeline_pairs.py PORT N PREFIX [VALUE_BYTES]"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dvresp  # noqa: E402
from dvresp import Closed  # noqa: E402

port, n, prefix = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
vbytes = int(sys.argv[4]) if len(sys.argv) > 4 else 0


def value(i):
    v = b"v:%d" % i
    return v + b"." * (vbytes - len(v)) if vbytes else v


c = dvresp.Conn(port, timeout=120)
data = b"".join(dvresp.encode(["SET", "%s:%d" % (prefix, i), value(i)]) +
                dvresp.encode(["EXISTS" if vbytes else "GET", "%s:%d" % (prefix, i)]) for i in range(n))
sent = []


def sender():
    c.sock.sendall(data)
    sent.append(time.time())


t0 = time.time()
t = threading.Thread(target=sender, daemon=True)
t.start()
# Read nothing until everything is sent (the kernel's buffers and the
# server's input hold it when the server stops reading); after 30 s read
# anyway, so that a server that stops reading for good is reported as
# missing replies, not as a hung test.
t.join(30)
print("%d bytes %s before reading (%.2fs)" % (len(data), "sent" if sent else "NOT all sent", time.time() - t0))
bad = 0
got = 0
try:
    for i in range(n):
        r1 = c.read()
        r2 = c.read()
        got += 2
        if r1 != "OK" or r2 != (1 if vbytes else value(i)):
            bad += 1
            if bad <= 5:
                print("FAIL: pair %d: SET -> %r, GET -> %r" % (i, r1, r2))
except Closed:
    print("FAIL: the server closed the connection after %d of %d replies" % (got, 2 * n))
    bad += 1
except OSError as e:
    print("FAIL: %r after %d of %d replies" % (e, got, 2 * n))
    bad += 1
t.join(5)
secs = time.time() - t0
print("%d of %d replies, %d wrong, %.2fs (%.0f pairs/s)" % (got, 2 * n, bad, secs, n / secs))
sys.exit(1 if bad or got != 2 * n else 0)
