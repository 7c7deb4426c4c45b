"""dvresp.py - a small raw RESP2/RESP3 client for the server tests.

Used where redis-cli or redis-py hide what is on the wire: exact reply bytes,
pipelines written in one send, malformed frames, connections closed by the
server. Standard library only; run with /usr/bin/python3.

As a program:
  dvresp.py PORT pipe [--auth PW]   read commands (one per line, shell-like
                                    quoting) from stdin, send them all in one
                                    write, print every reply formatted like
                                    `redis-cli --no-raw` (one block per reply)
"""
import shlex
import socket
import sys
import time


class Closed(Exception):
    """The server closed the connection."""


class Err:
    """An error reply (-ERR ... or !bulk error)."""

    def __init__(self, msg):
        self.msg = msg

    def __eq__(self, other):
        return isinstance(other, Err) and other.msg == self.msg

    def __repr__(self):
        return "Err(%r)" % self.msg


class Status(str):
    """A simple string reply (+OK)."""


class Push(list):
    """A RESP3 push (>)."""


def encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Hang(Exception):
    """No bytes of a reply within the connection's timeout."""


class RawConn:
    """A connection whose replies are read as their exact bytes: only the
    framing is checked (lengths, the CRLF after a bulk, RESP2 and RESP3
    types, an attribute before its reply), not the meaning. At EOF or a
    reset it raises Closed; with no bytes within the timeout, Hang."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.timeout = timeout
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, data):
        try:
            self.s.sendall(data)
        except (ConnectionResetError, BrokenPipeError):
            raise Closed("connection closed (send)")

    def fill(self):
        try:
            d = self.s.recv(1 << 20)
        except socket.timeout:
            raise Hang("no reply within %gs" % self.timeout)
        except (ConnectionResetError, BrokenPipeError):
            d = b""
        if not d:
            raise Closed("connection closed")
        self.buf += d

    def line_end(self, pos):
        while True:
            i = self.buf.find(b"\r\n", pos)
            if i >= 0:
                return i
            self.fill()

    def need(self, n):
        while len(self.buf) < n:
            self.fill()

    def skip(self, pos):
        """The end of the reply starting at pos (read as far as needed)."""
        e = self.line_end(pos)
        t, rest = self.buf[pos:pos + 1], self.buf[pos + 1:e]
        pos = e + 2
        if t in b"+-:_#,(":
            return pos
        if t in b"$=!":
            n = int(rest)
            if n < 0:
                return pos
            self.need(pos + n + 2)
            if self.buf[pos + n:pos + n + 2] != b"\r\n":
                raise ValueError("bulk string not ended by CRLF")
            return pos + n + 2
        if t in b"*~>%|":
            n = int(rest)
            for _ in range(max(n, 0) * (2 if t in b"%|" else 1)):
                pos = self.skip(pos)
            if t == b"|":  # an attribute precedes the reply it describes
                pos = self.skip(pos)
            return pos
        raise ValueError("reply type %r" % t)

    def reply(self):
        """The next whole reply's bytes."""
        end = self.skip(0)
        r, self.buf = self.buf[:end], self.buf[end:]
        return r

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


class Conn:
    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._data, self._pos = b"", 0
        self.timeout = timeout

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    # Unread input is _data[_pos:] (an offset, not a slice per reply: a
    # large pipelined answer parses in linear time); buf is that view.
    @property
    def buf(self):
        return self._data[self._pos:]

    @buf.setter
    def buf(self, v):
        self._data, self._pos = v, 0

    def _fill(self):
        try:
            d = self.sock.recv(1 << 20)
        except ConnectionResetError:
            d = b""
        if not d:
            raise Closed()
        self._data = self._data[self._pos:] + d
        self._pos = 0

    def _line(self):
        while True:
            i = self._data.find(b"\r\n", self._pos)
            if i >= 0:
                line = self._data[self._pos:i]
                self._pos = i + 2
                return line
            self._fill()

    def _exact(self, n):
        while len(self._data) - self._pos < n + 2:
            self._fill()
        d = self._data[self._pos:self._pos + n]
        self._pos += n + 2
        return d

    def read(self):
        """One reply: bytes (bulk), Status, Err, int, None, list, dict, set,
        float, bool, Push."""
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return Status(rest.decode("latin-1"))
        if t == b"-":
            return Err(rest.decode("latin-1"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        if t == b"_":
            return None
        if t == b"#":
            return rest == b"t"
        if t == b",":
            return float(rest)
        if t == b"(":
            return int(rest)
        if t == b"!":
            return Err(self._exact(int(rest)).decode("latin-1"))
        if t == b"=":
            return self._exact(int(rest))[4:]
        if t == b"%":
            n = int(rest)
            d = {}
            for _ in range(n):
                k = self.read()
                d[k] = self.read()
            return d
        if t == b"~":
            return [self.read() for _ in range(int(rest))]
        if t == b">":
            return Push(self.read() for _ in range(int(rest)))
        raise ValueError("bad reply type byte %r in %r" % (t, line[:80]))

    def call(self, *args):
        self.send(encode(args))
        return self.read()

    def read_raw_until_closed(self, limit=1 << 16, timeout=None):
        """Everything the server sends until it closes. Returns the bytes;
        on a timeout raises socket.timeout with what came so far in .buf."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        data = self.buf
        self.buf = b""
        while len(data) < limit:
            try:
                d = self.sock.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                self.buf = data  # what came before the timeout stays readable
                raise
            if not d:
                break
            data += d
        return data

    def closed_within(self, secs):
        """True when the server closes the connection within secs (data
        received before the close is discarded)."""
        end = time.time() + secs
        while time.time() < end:
            self.sock.settimeout(max(0.05, end - time.time()))
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not d:
                return True
        return False


def _q(b):
    """Quote a bulk string as redis-cli --no-raw does."""
    out = ['"']
    for c in b:
        ch = chr(c)
        if ch == "\\" or ch == '"':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\a":
            out.append("\\a")
        elif ch == "\b":
            out.append("\\b")
        elif 32 <= c < 127:
            out.append(ch)
        else:
            out.append("\\x%02x" % c)
    out.append('"')
    return "".join(out)


def fmt(v, indent=0):
    """Format one reply like redis-cli --no-raw (flat and nested arrays)."""
    if v is None:
        return "(nil)"
    if isinstance(v, Err):
        return "(error) " + v.msg
    if isinstance(v, Status):
        return str(v)
    if isinstance(v, bool):
        return "(true)" if v else "(false)"
    if isinstance(v, int):
        return "(integer) %d" % v
    if isinstance(v, float):
        return "(double) %s" % v
    if isinstance(v, bytes):
        return _q(v)
    if isinstance(v, dict):
        v = [x for kv in v.items() for x in kv]
    if isinstance(v, list):
        if not v:
            return "(empty array)"
        w = len(str(len(v)))
        lines = []
        for i, e in enumerate(v):
            head = "%*d) " % (w, i + 1)
            sub = fmt(e, indent + len(head))
            pad = " " * indent if i else ""
            lines.append(pad + head + sub)
        return "\n".join(lines)
    return repr(v)


def main():
    port = int(sys.argv[1])
    mode = sys.argv[2]
    auth = None
    if "--auth" in sys.argv:
        auth = sys.argv[sys.argv.index("--auth") + 1]
    if mode != "pipe":
        sys.exit("usage: dvresp.py PORT pipe [--auth PW]")
    cmds = [shlex.split(l) for l in sys.stdin.read().splitlines() if l.strip()]
    c = Conn(port, timeout=20)
    if auth is not None:
        r = c.call("AUTH", auth)
        if r != "OK":
            sys.exit("AUTH failed: %r" % (r,))
    c.send(b"".join(encode(a) for a in cmds))
    for _ in cmds:
        try:
            r = c.read()
        except Closed:
            print("(connection closed)")
            break
        print(fmt(r))
    c.close()


if __name__ == "__main__":
    main()
