"""Helpers for auth.sh (raw RESP; /usr/bin/python3).

  auth.py probe HOST PORT [PW]
      connect, (AUTH PW,) PING; prints one line: the raw first reply bytes
      (repr) then "closed" or "open" (whether the server closed the
      connection within 2 s after it)
  auth.py requirepass PORT PW dynvme|redis
      the password checks on loopback; one line per failure, exit 1 if any
"""
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dvresp import Closed, Conn, Err, encode  # noqa: E402

fails = 0
NOAUTH = "NOAUTH Authentication required."
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."


def check(desc, exp, got):
    global fails
    if exp != got:
        fails += 1
        print("FAIL: %s\n  expected: %r\n  got:      %r" % (desc, exp, got))


def ok(desc, cond, got=None):
    global fails
    if not cond:
        fails += 1
        print("FAIL: %s (got %r)" % (desc, got))


def probe(host, port, pw=None):
    try:
        c = Conn(port, host=host, timeout=5)
    except OSError as e:
        print("connect-failed %s" % e.__class__.__name__)
        return 0
    try:
        if pw is not None:
            c.send(encode(["AUTH", pw]))
            c.read()
        c.send(encode(["PING"]))
        c.sock.settimeout(5)
        first = c.buf
        c.buf = b""
        while b"\r\n" not in first:
            d = c.sock.recv(4096)
            if not d:
                break
            first += d
        line = first.split(b"\r\n")[0] + b"\r\n" if b"\r\n" in first else first
        closed = c.closed_within(2)
        print("%r %s" % (line, "closed" if closed else "open"))
    except (OSError, Closed) as e:
        print("error %r" % e)
    return 0


def closes_with_error(port, data, desc, prefix="-"):
    c = Conn(port, timeout=5)
    try:
        c.send(data)
        got = c.read_raw_until_closed(limit=4096, timeout=5)
        want = prefix if isinstance(prefix, bytes) else prefix.encode()
        ok("%s: an error reply" % desc, got.startswith(want), got[:120])
    except socket.timeout:
        ok("%s: connection closed" % desc, False, "still open after 5 s")
    except (BrokenPipeError, ConnectionResetError):
        pass  # closed before all was sent: fine
    c.close()


def requirepass(port, pw, dynvme):
    c = Conn(port)
    for args in (["PING"], ["GET", "a"], ["SET", "a", "b"], ["DBSIZE"], ["CLIENT", "ID"], ["SELECT", "0"],
                 ["INFO"], ["COMMAND", "COUNT"]):
        r = c.call(*args)
        check("%s before AUTH" % " ".join(args), Err(NOAUTH), r)
    r = c.call("NOSUCHCMD")
    ok("unknown command before AUTH: NOAUTH or unknown command error",
       r == Err(NOAUTH) or (isinstance(r, Err) and r.msg.startswith("ERR unknown command")), r)
    r = c.call("HELLO", "3")
    # Redis 7.0's exact words (networking.c helloCommand): "HELLO AUTH", not "HELLO <proto> AUTH"
    check("HELLO 3 without AUTH before authentication is Redis's NOAUTH error",
          Err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH "
              "<user> <pass> option can be used to authenticate the client and select the RESP protocol "
              "version at the same time"), r)
    check("AUTH wrong", Err(WRONGPASS), c.call("AUTH", "wrong"))
    check("AUTH default wrong", Err(WRONGPASS), c.call("AUTH", "default", "wrong"))
    check("AUTH otheruser right-password", Err(WRONGPASS), c.call("AUTH", "otheruser", pw))
    r = c.call("HELLO", "3", "AUTH", "default", "wrong")
    ok("HELLO 3 AUTH default wrong is WRONGPASS", isinstance(r, Err) and r.msg.startswith("WRONGPASS"), r)
    check("still NOAUTH after failed AUTHs", Err(NOAUTH), c.call("PING"))
    check("AUTH right", "OK", c.call("AUTH", pw))
    check("PING after AUTH", "PONG", c.call("PING"))
    check("SET after AUTH", "OK", c.call("SET", "authkey", "authval"))
    check("GET after AUTH", b"authval", c.call("GET", "authkey"))
    check("AUTH default right", "OK", c.call("AUTH", "default", pw))
    r = c.call("AUTH", "wrong-again")
    check("AUTH wrong after success", Err(WRONGPASS), r)
    check("a failed AUTH after a good one leaves the connection authenticated", "PONG", c.call("PING"))
    big = b"v" * 100000
    check("large SET after AUTH", "OK", c.call("SET", "authbig", big))
    check("large GET after AUTH", big, c.call("GET", "authbig"))
    c.close()

    # HELLO 3 AUTH default pw: authenticates and switches to RESP3.
    c = Conn(port)
    r = c.call("HELLO", "3", "AUTH", "default", pw)
    ok("HELLO 3 AUTH default pw answers with a map", isinstance(r, dict), r)
    if isinstance(r, dict):
        check("HELLO 3 AUTH proto", 3, r.get(b"proto"))
    c.send(encode(["GET", "nosuchkey"]))
    c.sock.settimeout(5)
    got = c.sock.recv(100)
    check("RESP3 null after HELLO 3 AUTH", b"_\r\n", got)
    check("GET after HELLO 3 AUTH", b"authval", c.call("GET", "authkey"))
    c.close()
    c = Conn(port)
    r = c.call("HELLO", "2", "AUTH", "default", pw, "SETNAME", "authed")
    ok("HELLO 2 AUTH default pw SETNAME answers with an array", isinstance(r, list), r)
    check("CLIENT GETNAME after HELLO AUTH SETNAME", b"authed", c.call("CLIENT", "GETNAME"))
    c.close()

    # QUIT before authentication.
    c = Conn(port)
    c.send(encode(["QUIT"]))
    try:
        check("QUIT before AUTH", b"+OK\r\n", c.read_raw_until_closed(timeout=5))
    except socket.timeout:
        ok("QUIT before AUTH closes the connection", False)
    c.close()

    # Before authentication, Redis's bounds: 10 args, 16 KiB a bulk string,
    # with its wording; a request within them is answered (NOAUTH).
    closes_with_error(port, encode(["AUTH"] + ["x"] * 40), "a 41-arg multibulk before AUTH",
                      b"-ERR Protocol error: unauthenticated multibulk length\r\n")
    closes_with_error(port, encode(["AUTH", "p" * 20000]), "a 20000-byte AUTH argument before AUTH",
                      b"-ERR Protocol error: unauthenticated bulk length\r\n")
    closes_with_error(port, b"*2\r\n$3\r\nSET\r\n$50000000\r\n", "a 50 MB bulk header before AUTH",
                      b"-ERR Protocol error: unauthenticated bulk length\r\n")
    c = Conn(port)
    check("a 10-arg SET with a 16 KiB value before AUTH", Err("NOAUTH Authentication required."),
          c.call("SET", "k", "v" * 16384, "EX", "10", "NX", "GET", "GET", "GET", "GET"))
    check("... and the connection stays", Err("NOAUTH Authentication required."), c.call("PING"))
    c.close()
    # ... but a small failed AUTH keeps the connection
    c = Conn(port)
    check("small wrong AUTH", Err(WRONGPASS), c.call("AUTH", "short-wrong"))
    check("the connection stays usable after a small wrong AUTH", "OK", c.call("AUTH", pw))
    check("nothing was stored before AUTH", 0, c.call("EXISTS", "a", "k"))
    c.close()
    return 1 if fails else 0


def main():
    a = sys.argv
    if a[1] == "probe":
        return probe(a[2], int(a[3]), a[4] if len(a) > 4 else None)
    if a[1] == "requirepass":
        return requirepass(int(a[2]), a[3], a[4] == "dynvme")
    return 2


if __name__ == "__main__":
    sys.exit(main())
