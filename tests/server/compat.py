"""compat.py - the string, keyspace, server and connection commands against
Redis 7's own replies, byte for byte.

The replies of redis-server 7.0 to every case below are kept in
compat.golden (recorded with --record against a real redis-server); a run
sends the same cases to the server under test, one connection, in order,
and compares each reply with the golden one by the case's rule:

  =   the exact bytes
  s   an array compared as a set (key order is the server's)
  t   an integer within 2 of the golden one (a TTL counting down)
  c   SCAN's reply: a cursor and an array: the keys (as a set) once the
      iteration is run to its end (the case is the first call; the others
      follow it until cursor 0)
  e   an error with the golden's first word (the rest names the server)
  k   an array of pairs (HELLO): the same names (the values name the server)
  i   INFO: the fields clients read (INFO_FIELDS) are in the same section
      of both replies, named as Redis names them (values differ)
  ci  COMMAND INFO: each entry's name, arity, flags, key positions, ACL
      categories and tips byte for byte (RESP3: sets); its key specs and
      subcommands are not compared (dynvme gives none)
  l   COMMAND LIST: the names as a set, restricted to the commands both
      servers list (the golden's to those the plain COMMAND LIST case got,
      the reply's to the golden's), and the reply's others only DV_ONLY
  u   a command of another Redis data type or feature: dynvme answers
      Redis's unknown-command error (not sent to redis-server, where it
      exists and would change the connection)

Usage: compat.py PORT dynvme|redis [--record FILE] [--golden FILE]
Prints one line per difference, exits 1 if any.
"""
import ast
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dvresp import RawConn  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def enc(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode("latin-1")
        elif isinstance(a, int):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Raw(RawConn):
    """A connection whose replies are read as their exact bytes."""

    def call(self, args):
        self.send(enc(args))
        return self.reply()


def parse(raw):
    """A raw reply as Python values (bulk: bytes, error: ('ERR', text))."""
    def at(p):
        e = raw.index(b"\r\n", p)
        t, rest = raw[p:p + 1], raw[p + 1:e]
        p = e + 2
        if t == b"+":
            return rest, p
        if t == b"-":
            return ("ERR", rest), p
        if t == b":":
            return int(rest), p
        if t == b"$":
            n = int(rest)
            return (None, p) if n < 0 else (raw[p:p + n], p + n + 2)
        if t == b"_":
            return None, p
        if t in b"*%":  # a RESP3 map: its keys and values in turn
            n = int(rest) * (2 if t == b"%" else 1)
            out = []
            for _ in range(max(n, 0)):
                v, p = at(p)
                out.append(v)
            return out, p
        raise ValueError(t)
    return at(0)[0]


FAR = 4000000000  # a time far in the future: EXPIRETIME answers it as given


def cases():
    """(rule, args) in order; every group starts from an empty store."""
    c = []

    def add(rule, *args):
        c.append((rule, list(args)))

    def flush():
        add("=", "FLUSHALL")

    flush()
    # ---- strings: SET options, repeated options, errors
    add("=", "SET", "k", "v")
    add("=", "SET", "k", "v", "EX", "10", "EX", "20")
    add("t", "TTL", "k")
    add("=", "SET", "k", "v", "PX", "100000", "PX", "50000")
    add("=", "SET", "k", "v", "NX", "NX")
    add("=", "SET", "k", "v2", "XX", "XX")
    add("=", "SET", "k", "v3", "GET", "GET")
    add("=", "SET", "k", "v", "EX", "10", "PX", "100")
    add("=", "SET", "k", "v", "EX", "10", "KEEPTTL")
    add("=", "SET", "k", "v", "KEEPTTL", "EX", "10")
    add("=", "SET", "k", "v", "NX", "XX")
    add("=", "SET", "k", "v", "EX")
    add("=", "SET", "k", "v", "EX", "abc", "BOGUS")
    add("=", "SET", "k", "v", "EX", "abc")
    add("=", "SET", "k", "v", "EX", "0")
    add("=", "SET", "k", "v", "PX", "-1")
    add("=", "SET", "k", "v", "EXAT", "0")
    add("=", "SET", "k", "v", "EX", "9223372036854775807")
    add("=", "SET", "k", "v", "PXAT", str(FAR * 1000))
    add("=", "PEXPIRETIME", "k")
    add("=", "EXPIRETIME", "k")
    add("=", "SET", "k", "v", "EXAT", str(FAR), "KEEPTTL")
    add("=", "SET", "k", "new", "KEEPTTL")
    add("=", "EXPIRETIME", "k")
    add("=", "SET", "k", "x", "NX", "GET")
    add("=", "SET", "nk", "x", "XX", "GET")
    add("=", "SET", "nk", "x", "NX", "GET")
    add("=", "SET", "k", "v")
    add("=", "SET", "k")
    add("=", "SETNX", "k", "a")
    add("=", "SETNX", "k2", "a")
    add("=", "SETEX", "k3", "0", "v")
    add("=", "SETEX", "k3", "-10", "v")
    add("=", "SETEX", "k3", "abc", "v")
    add("=", "SETEX", "k3", "100", "v")
    add("t", "TTL", "k3")
    add("=", "PSETEX", "k4", "0", "v")
    add("=", "PSETEX", "k4", "100000", "v")
    add("t", "TTL", "k4")
    add("=", "GETSET", "k", "gs")
    add("=", "GETSET", "nokey", "gs")
    add("=", "GET", "nokey")
    add("=", "SET", "t1", "x", "EX", "100")
    add("=", "GETSET", "t1", "y")
    add("=", "TTL", "t1")
    add("=", "GETDEL", "t1")
    add("=", "GETDEL", "t1")
    add("=", "EXISTS", "t1")
    # empty keys and values
    add("=", "SET", "", "empty-key")
    add("=", "GET", "")
    add("=", "SET", "ev", "")
    add("=", "GET", "ev")
    add("=", "STRLEN", "ev")
    add("=", "APPEND", "", "+more")
    add("=", "GET", "")
    add("=", "EXISTS", "", "ev", "nokey")
    add("=", "DEL", "")
    add("=", "GET", "")
    # MSET, MGET, MSETNX
    add("=", "MSET", "a", "1", "b", "2", "a", "3")
    add("=", "MGET", "a", "b", "nokey", "a")
    add("=", "MSET", "a")
    add("=", "MSETNX", "a", "1", "z", "2")
    add("=", "EXISTS", "z")
    add("=", "MSETNX", "x1", "1", "x2", "2", "x1", "3")
    add("=", "MGET", "x1", "x2")
    add("=", "MSETNX", "x3")
    add("=", "MSETNX", "x3", "1", "x4")
    # INCR family
    flush()
    add("=", "INCR", "n")
    add("=", "INCRBY", "n", "10")
    add("=", "DECR", "n")
    add("=", "DECRBY", "n", "5")
    add("=", "INCRBY", "n", "-100")
    add("=", "GET", "n")
    add("=", "INCRBY", "n", "abc")
    add("=", "INCRBY", "n", "1.5")
    add("=", "INCRBY", "n", "9223372036854775808")
    add("=", "SET", "n", "9223372036854775806")
    add("=", "INCR", "n")
    add("=", "INCR", "n")
    add("=", "SET", "n", "-9223372036854775807")
    add("=", "DECR", "n")
    add("=", "DECR", "n")
    add("=", "DECRBY", "n", "-9223372036854775808")
    add("=", "SET", "n", "1")
    add("=", "INCRBY", "n", "9223372036854775807")
    add("=", "SET", "s", "abc")
    add("=", "INCR", "s")
    add("=", "SET", "s", " 1")
    add("=", "INCR", "s")
    add("=", "SET", "s", "1 ")
    add("=", "INCR", "s")
    add("=", "SET", "s", "+1")
    add("=", "INCR", "s")
    add("=", "SET", "s", "01")
    add("=", "INCR", "s")
    add("=", "SET", "s", "")
    add("=", "INCR", "s")
    add("=", "SET", "s", "-0")
    add("=", "INCR", "s")
    add("=", "SET", "s", "12345678901234567890")
    add("=", "INCR", "s")
    add("=", "SET", "e", "5", "EX", "100")
    add("=", "INCR", "e")
    add("t", "TTL", "e")
    add("=", "INCRBYFLOAT", "f", "10.5")
    add("=", "INCRBYFLOAT", "f", "0.1")
    add("=", "INCRBYFLOAT", "f", "-5")
    add("=", "INCRBYFLOAT", "f", "5.0e3")
    add("=", "INCRBYFLOAT", "f", "abc")
    add("=", "INCRBYFLOAT", "f", "")
    add("=", "INCRBYFLOAT", "f", " 1")
    add("=", "INCRBYFLOAT", "f", "1e400")
    add("=", "INCRBYFLOAT", "f", "nan")
    add("=", "INCRBYFLOAT", "f", "inf")
    add("=", "SET", "f", "1e308")
    add("=", "INCRBYFLOAT", "f", "1e308")
    add("=", "SET", "f", "3")
    add("=", "INCRBYFLOAT", "f", "-3")
    add("=", "GET", "f")
    add("=", "SET", "f", "1.1")
    add("=", "INCRBYFLOAT", "f", "2.2")
    add("=", "INCRBYFLOAT", "nf", "-0.0")
    add("=", "SET", "f", "x")
    add("=", "INCRBYFLOAT", "f", "1")
    add("=", "INCRBYFLOAT", "g", "1.23456789012345678")
    add("=", "INCRBYFLOAT", "h", "0.00000000000000001")
    add("=", "INCR", "i", "x")
    # APPEND, STRLEN, GETRANGE, SUBSTR, SETRANGE
    flush()
    add("=", "APPEND", "ap", "hello")
    add("=", "APPEND", "ap", " world")
    add("=", "GET", "ap")
    add("=", "STRLEN", "ap")
    add("=", "STRLEN", "nokey")
    add("=", "SET", "ttl", "x", "EX", "100")
    add("=", "APPEND", "ttl", "y")
    add("t", "TTL", "ttl")
    add("=", "GETRANGE", "ap", "0", "4")
    add("=", "GETRANGE", "ap", "-5", "-1")
    add("=", "GETRANGE", "ap", "6", "100")
    add("=", "GETRANGE", "ap", "-1", "-5")
    add("=", "GETRANGE", "ap", "5", "2")
    add("=", "GETRANGE", "ap", "-100", "2")
    add("=", "GETRANGE", "ap", "0", "-100")
    add("=", "GETRANGE", "ap", "0", "-1")
    add("=", "GETRANGE", "ap", "0", "9223372036854775807")
    add("=", "GETRANGE", "ap", "-9223372036854775808", "9223372036854775807")
    add("=", "GETRANGE", "nokey", "0", "-1")
    add("=", "GETRANGE", "ap", "a", "1")
    add("=", "GETRANGE", "ap", "1", "b")
    add("=", "SUBSTR", "ap", "1", "3")
    add("=", "SETRANGE", "sr", "5", "abc")
    add("=", "GET", "sr")
    add("=", "SETRANGE", "sr", "0", "XY")
    add("=", "GET", "sr")
    add("=", "SETRANGE", "sr", "0", "")
    add("=", "SETRANGE", "nokey2", "10", "")
    add("=", "EXISTS", "nokey2")
    add("=", "SETRANGE", "sr", "-1", "x")
    add("=", "SETRANGE", "sr", "x", "x")
    add("=", "SETRANGE", "sr", "4294967295", "x")
    add("=", "SETRANGE", "sr", "1", "QQQQQQQQQQ")
    add("=", "GET", "sr")
    add("=", "SET", "ttl2", "abc", "EX", "100")
    add("=", "SETRANGE", "ttl2", "1", "z")
    add("t", "TTL", "ttl2")
    # SETBIT, GETBIT, BITCOUNT
    flush()
    add("=", "SETBIT", "bits", "7", "1")
    add("=", "GET", "bits")
    add("=", "SETBIT", "bits", "7", "1")
    add("=", "SETBIT", "bits", "7", "0")
    add("=", "SETBIT", "bits", "100", "1")
    add("=", "GET", "bits")
    add("=", "GETBIT", "bits", "100")
    add("=", "GETBIT", "bits", "99")
    add("=", "GETBIT", "bits", "100000")
    add("=", "GETBIT", "nokey", "0")
    add("=", "SETBIT", "bits", "-1", "1")
    add("=", "SETBIT", "bits", "x", "1")
    add("=", "SETBIT", "bits", "1", "2")
    add("=", "SETBIT", "bits", "1", "-1")
    add("=", "SETBIT", "bits", "1", "x")
    add("=", "SETBIT", "bits", "4294967296", "1")
    add("=", "GETBIT", "bits", "-1")
    add("=", "GETBIT", "bits", "4294967296")
    add("=", "SET", "bc", "foobar")
    add("=", "BITCOUNT", "bc")
    add("=", "BITCOUNT", "bc", "0", "0")
    add("=", "BITCOUNT", "bc", "1", "1")
    add("=", "BITCOUNT", "bc", "1", "-2")
    add("=", "BITCOUNT", "bc", "-2", "-1")
    add("=", "BITCOUNT", "bc", "-1", "-2")
    add("=", "BITCOUNT", "bc", "0", "100")
    add("=", "BITCOUNT", "bc", "5", "30", "BIT")
    add("=", "BITCOUNT", "bc", "0", "0", "BYTE")
    add("=", "BITCOUNT", "bc", "-10", "-1", "BIT")
    add("=", "BITCOUNT", "bc", "0", "0", "BOGUS")
    add("=", "BITCOUNT", "bc", "0")
    add("=", "BITCOUNT", "bc", "a", "b")
    add("=", "BITCOUNT", "nokey")
    add("=", "BITCOUNT", "nokey", "0")
    add("=", "BITCOUNT", "nokey", "a", "b")
    # LCS
    flush()
    add("=", "MSET", "la", "ohmytext", "lb", "mynewtext", "lc", "rockandroll", "le", "")
    add("=", "LCS", "la", "lb")
    add("=", "LCS", "la", "lb", "LEN")
    add("=", "LCS", "la", "lb", "IDX")
    add("=", "LCS", "la", "lb", "idx", "withmatchlen")
    add("=", "LCS", "la", "lb", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN")
    add("=", "LCS", "la", "lb", "IDX", "MINMATCHLEN", "-3")
    add("=", "LCS", "lb", "la", "IDX", "WITHMATCHLEN")
    add("=", "LCS", "la", "la")
    add("=", "LCS", "la", "lc", "IDX")
    add("=", "LCS", "la", "nokey")
    add("=", "LCS", "nokey", "nokey2", "IDX")
    add("=", "LCS", "la", "le", "LEN")
    add("=", "LCS", "la", "lb", "LEN", "IDX")
    add("=", "LCS", "la", "lb", "MINMATCHLEN")
    add("=", "LCS", "la", "lb", "MINMATCHLEN", "x")
    add("=", "LCS", "la", "lb", "BOGUS")
    add("=", "LCS", "la")
    add("=", "COMMAND", "GETKEYS", "LCS", "la", "lb", "IDX")
    # 20000 x 20000 bytes: a table over both servers' bound (Redis's
    # proto-max-bulk-len, dynvme's max-reply-bytes), refused before it is made
    add("=", "SETRANGE", "lx", "19999", "a")
    add("=", "SETRANGE", "ly", "19999", "b")
    add("e", "LCS", "lx", "ly", "LEN")
    add("k", "HELLO", "3")  # RESP3: IDX's reply is a map
    add("=", "LCS", "la", "lb", "IDX", "WITHMATCHLEN")
    add("=", "LCS", "la", "nokey", "IDX")
    add("k", "HELLO", "2")
    add("=", "SET", "ttl3", "abc", "EX", "100")
    add("=", "SETBIT", "ttl3", "0", "1")
    add("t", "TTL", "ttl3")
    # GETEX
    flush()
    add("=", "SET", "gx", "v")
    add("=", "GETEX", "gx")
    add("=", "TTL", "gx")
    add("=", "GETEX", "gx", "EX", "100")
    add("t", "TTL", "gx")
    add("=", "GETEX", "gx", "PX", "200000")
    add("t", "TTL", "gx")
    add("=", "GETEX", "gx", "EXAT", str(FAR))
    add("=", "EXPIRETIME", "gx")
    add("=", "GETEX", "gx", "PXAT", str(FAR * 1000 + 5))
    add("=", "PEXPIRETIME", "gx")
    add("=", "GETEX", "gx", "PERSIST")
    add("=", "TTL", "gx")
    add("=", "GETEX", "gx", "PERSIST")
    add("=", "GETEX", "gx", "EX", "0")
    add("=", "GETEX", "gx", "EX", "-1")
    add("=", "GETEX", "gx", "EX", "abc")
    add("=", "GETEX", "gx", "EX")
    add("=", "GETEX", "gx", "EX", "10", "PX", "100")
    add("=", "GETEX", "gx", "EX", "10", "EX", "20")
    add("=", "GETEX", "gx", "PERSIST", "EX", "10")
    add("=", "GETEX", "gx", "KEEPTTL")
    add("=", "GETEX", "gx", "NX")
    add("=", "GETEX", "nokey", "EX", "abc")
    add("=", "GETEX", "nokey", "EX", "-1")
    add("=", "GETEX", "nokey", "PERSIST")
    add("=", "GETEX", "gx", "EXAT", "1000")
    add("=", "EXISTS", "gx")
    # keyspace: DEL, UNLINK, EXISTS, TOUCH, TYPE, TTL family
    flush()
    add("=", "MSET", "k1", "a", "k2", "b", "k3", "c")
    add("=", "DEL", "k1", "k1", "nokey")
    add("=", "UNLINK", "k2", "nokey")
    add("=", "EXISTS", "k1", "k2", "k3", "k3")
    add("=", "TOUCH", "k1", "k3", "k3", "nokey")
    add("=", "TYPE", "k3")
    add("=", "TYPE", "nokey")
    add("=", "TTL", "k3")
    add("=", "PTTL", "k3")
    add("=", "TTL", "nokey")
    add("=", "PTTL", "nokey")
    add("=", "EXPIRETIME", "k3")
    add("=", "PEXPIRETIME", "k3")
    add("=", "EXPIRETIME", "nokey")
    add("=", "PEXPIRETIME", "nokey")
    add("=", "EXPIREAT", "k3", str(FAR))
    add("=", "EXPIRETIME", "k3")
    add("=", "PEXPIRETIME", "k3")
    add("=", "PEXPIREAT", "k3", str(FAR * 1000 + 123))
    add("=", "PEXPIRETIME", "k3")
    add("=", "EXPIRETIME", "k3")
    add("=", "EXPIRE", "k3", "100", "NX")
    add("=", "EXPIRE", "k3", "100", "XX")
    add("t", "TTL", "k3")
    add("=", "EXPIRE", "k3", "50", "GT")
    add("=", "EXPIRE", "k3", "200", "GT")
    add("=", "EXPIRE", "k3", "300", "LT")
    add("=", "EXPIRE", "k3", "30", "LT")
    add("t", "TTL", "k3")
    add("=", "EXPIRE", "k3", "30", "NX", "XX")
    add("=", "EXPIRE", "k3", "30", "GT", "LT")
    add("=", "EXPIRE", "k3", "30", "BOGUS")
    add("=", "EXPIRE", "k3", "abc", "BOGUS")
    add("=", "EXPIRE", "k3", "abc")
    add("=", "EXPIRE", "k3", "9223372036854775807")
    add("=", "PEXPIRE", "k3", "9223372036854775807")
    add("=", "EXPIRE", "nokey", "10")
    add("=", "PERSIST", "k3")
    add("=", "PERSIST", "k3")
    add("=", "TTL", "k3")
    add("=", "EXPIRE", "k3", "-1")
    add("=", "EXISTS", "k3")
    # RENAME, RENAMENX, COPY
    flush()
    add("=", "SET", "src", "v1", "EX", "100")
    add("=", "RENAME", "src", "dst")
    add("=", "GET", "dst")
    add("=", "EXISTS", "src")
    add("t", "TTL", "dst")
    add("=", "RENAME", "src", "dst")
    add("=", "RENAME", "dst", "dst")
    add("=", "RENAME", "nokey", "nokey")
    add("=", "RENAMENX", "dst", "dst")
    add("=", "SET", "other", "o")
    add("=", "RENAMENX", "dst", "other")
    add("=", "GET", "dst")
    add("=", "RENAMENX", "dst", "fresh")
    add("=", "GET", "fresh")
    add("=", "EXISTS", "dst")
    add("=", "RENAME", "fresh", "other")
    add("=", "GET", "other")
    add("t", "TTL", "other")
    add("=", "RENAMENX", "nokey", "x")
    add("=", "COPY", "other", "cp")
    add("=", "GET", "cp")
    add("t", "TTL", "cp")
    add("=", "COPY", "other", "cp")
    add("=", "SET", "other", "o2")
    add("=", "COPY", "other", "cp", "REPLACE")
    add("=", "GET", "cp")
    add("=", "TTL", "cp")
    add("=", "COPY", "other", "other")
    add("=", "COPY", "nokey", "cp2")
    add("=", "COPY", "other", "cp3", "DB", "0")
    add("=", "COPY", "other", "cp3", "DB", "x")
    add("=", "COPY", "other", "cp3", "BOGUS")
    add("=", "COPY", "other", "cp3", "DB")
    # OBJECT
    add("=", "SET", "oi", "12345")
    add("=", "SET", "oe", "short string")
    add("=", "SET", "or", "x" * 45)
    add("=", "SET", "os", "42")
    add("=", "OBJECT", "ENCODING", "oi")
    add("=", "OBJECT", "ENCODING", "oe")
    add("=", "OBJECT", "ENCODING", "or")
    add("=", "OBJECT", "ENCODING", "nokey")
    add("=", "OBJECT", "REFCOUNT", "oi")
    add("=", "OBJECT", "REFCOUNT", "os")
    add("=", "OBJECT", "REFCOUNT", "oe")
    add("=", "OBJECT", "FREQ", "oe")
    add("=", "OBJECT", "FREQ", "nokey")
    add("=", "OBJECT", "IDLETIME", "nokey")
    add("=", "OBJECT", "BOGUS", "oe")
    add("=", "OBJECT", "ENCODING")
    add("=", "OBJECT", "ENCODING", "a", "b")
    add("=", "OBJECT", "HELP")
    add("=", "OBJECT")
    # SCAN, KEYS, RANDOMKEY, DBSIZE
    flush()
    add("=", "RANDOMKEY")
    add("=", "KEYS", "*")
    add("=", "DBSIZE")
    add("=", "SCAN", "0")
    add("=", "MSET", "user:1", "a", "user:2", "b", "user:10", "c", "item:1", "d", "u[x]", "e", "u*y", "f",
        "hello", "g", "hallo", "h", "hxllo", "i", "hllo", "j", "heeeello", "k", "", "l")
    add("=", "DBSIZE")
    add("s", "KEYS", "*")
    add("s", "KEYS", "user:*")
    add("s", "KEYS", "user:?")
    add("s", "KEYS", "h?llo")
    add("s", "KEYS", "h*llo")
    add("s", "KEYS", "h[ae]llo")
    add("s", "KEYS", "h[^e]llo")
    add("s", "KEYS", "h[a-b]llo")
    add("s", "KEYS", "h[b-a]llo")
    add("s", "KEYS", "u\\[x\\]")
    add("s", "KEYS", "u\\*y")
    add("s", "KEYS", "u[*]y")
    add("s", "KEYS", "*[")
    add("s", "KEYS", "user:[")
    add("s", "KEYS", "nomatch*")
    add("s", "KEYS", "")
    add("=", "KEYS")
    add("c", "SCAN", "0")
    add("c", "SCAN", "0", "MATCH", "user:*")
    add("c", "SCAN", "0", "MATCH", "*", "COUNT", "2")
    add("c", "SCAN", "0", "COUNT", "1000", "TYPE", "string")
    add("c", "SCAN", "0", "TYPE", "list")
    add("c", "SCAN", "0", "TYPE", "nosuchtype")
    add("=", "SCAN", "0", "COUNT", "0")
    add("=", "SCAN", "0", "COUNT", "-1")
    add("=", "SCAN", "0", "COUNT", "x")
    add("=", "SCAN", "0", "MATCH")
    add("=", "SCAN", "0", "BOGUS", "x")
    add("=", "SCAN", "x")
    add("=", "SCAN", "-x")
    add("=", "SCAN", " 0")
    add("=", "SCAN", "18446744073709551616")
    add("=", "SCAN")
    add("=", "EXISTS", "")
    add("=", "RANDOMKEY", "x")
    add("=", "FLUSHALL", "ASYNC")
    add("=", "DBSIZE")
    add("=", "RANDOMKEY")
    add("=", "SET", "one", "1")
    add("=", "RANDOMKEY")
    add("=", "FLUSHDB", "SYNC")
    add("=", "FLUSHDB", "BOGUS")
    add("=", "FLUSHALL", "ASYNC", "SYNC")
    add("=", "FLUSHDB")
    add("=", "GET", "one")
    # connection and server commands
    add("=", "PING")
    add("=", "PING", "x")
    add("=", "PING", "x", "y")
    add("=", "ECHO", "e")
    add("=", "SELECT", "0")
    add("=", "SELECT", "x")
    add("=", "SELECT", "99999999999")
    add("=", "AUTH", "pw")
    add("=", "AUTH", "default", "anything")
    add("=", "AUTH", "nosuchuser", "x")
    add("=", "AUTH", "a", "b", "c")
    add("k", "HELLO", "2", "AUTH", "default", "anything")
    add("=", "HELLO", "2", "AUTH", "nosuchuser", "x")
    add("=", "HELLO", "4")
    add("=", "HELLO", "x")
    add("=", "HELLO", "2", "BOGUS")
    add("=", "HELLO", "2", "SETNAME", "bad name")
    add("=", "CLIENT")
    add("=", "CLIENT", "BOGUS")
    add("=", "CLIENT", "bogus", "x")
    add("=", "CLIENT", "SETNAME")
    add("=", "CLIENT", "SETNAME", "a", "b")
    add("=", "CLIENT", "GETNAME", "x")
    add("=", "CLIENT", "SETNAME", "bad name")
    add("=", "CLIENT", "SETNAME", "cname")
    add("=", "CLIENT", "GETNAME")
    add("=", "CLIENT", "KILL", "1.2.3.4:5")
    add("=", "CLIENT", "KILL", "ID", "999999999")
    add("=", "CLIENT", "KILL", "ID", "0")
    add("=", "CLIENT", "KILL", "ID", "x")
    add("=", "CLIENT", "KILL", "ADDR", "1.2.3.4:5")
    add("=", "CLIENT", "KILL", "USER", "nosuchuser")
    add("=", "CLIENT", "KILL", "USER", "default", "SKIPME", "yes", "ADDR", "1.2.3.4:5")
    add("=", "CLIENT", "KILL", "TYPE", "bogus")
    add("=", "CLIENT", "KILL", "SKIPME", "maybe")
    add("=", "CLIENT", "KILL", "BOGUS", "x")
    add("=", "CLIENT", "KILL", "ID")
    add("=", "CLIENT", "KILL")
    add("=", "CLIENT", "REPLY", "BOGUS")
    add("=", "CLIENT", "REPLY", "ON")
    add("=", "CLIENT", "NO-EVICT", "on")
    add("=", "CLIENT", "NO-EVICT", "maybe")
    add("=", "CLIENT", "HELP")
    add("=", "CLIENT", "LIST", "TYPE", "bogus")
    add("=", "CLIENT", "LIST", "TYPE", "pubsub")
    add("=", "CLIENT", "LIST", "ID", "x")
    add("=", "CLIENT", "LIST", "ID", "999999999")
    add("=", "CLIENT", "LIST", "BOGUS")
    add("=", "CLIENT", "GETREDIR")
    add("=", "CLIENT", "UNBLOCK", "999999999")
    add("=", "CLIENT", "UNBLOCK", "x")
    add("=", "CLIENT", "UNBLOCK", "1", "BOGUS")
    add("=", "CLIENT", "UNPAUSE")
    add("=", "CONFIG")
    add("=", "CONFIG", "BOGUS")
    add("=", "CONFIG", "GET")
    add("=", "CONFIG", "SET", "x")
    add("=", "CONFIG", "SET", "nosuchparam", "1")
    add("=", "CONFIG", "SET", "timeout", "0", "timeout")
    add("=", "CONFIG", "SET", "databases", "16")
    add("=", "CONFIG", "SET", "timeout", "0", "timeout", "0")
    add("=", "CONFIG", "SET", "timeout", "0")
    add("=", "CONFIG", "GET", "timeout")
    # an exact name is answered as it was asked, the first spelling of a repeated one
    add("=", "CONFIG", "GET", "TIMEOUT")
    add("=", "CONFIG", "GET", "TimeOut", "timeout")
    add("=", "CONFIG", "GET", "MAXMEMORY-policy")
    add("=", "CONFIG", "GET", "timeou?")
    add("=", "CONFIG", "SET", "save", "")
    add("=", "CONFIG", "SET", "appendonly", "no")
    add("=", "CONFIG", "HELP")
    add("=", "CONFIG", "RESETSTAT")
    add("=", "CONFIG", "GET", "maxmemory")
    # Redis's parameters that cannot change at run time: refused by name
    # (immutable, or protected: dir, dbfilename), before any value is read,
    # the name as spelled; unknown names before them keep their own error
    for p in ("daemonize", "databases", "unixsocket", "logfile", "pidfile", "supervised", "io-threads",
              "cluster-enabled", "appendfilename", "dir", "dbfilename", "tcp-backlog", "syslog-enabled",
              "replicaof", "enable-debug-command"):
        add("=", "CONFIG", "SET", p, "yes")
    add("=", "CONFIG", "SET", "DAEMONIZE", "no")
    add("=", "CONFIG", "SET", "Dir", "/tmp")
    add("=", "CONFIG", "SET", "timeout", "0", "daemonize", "no")
    add("=", "CONFIG", "SET", "daemonize", "no", "nosuchparam", "1")
    add("=", "CONFIG", "SET", "nosuchparam", "1", "daemonize", "no")
    add("=", "CONFIG", "SET", "appendonly", "maybe", "io-threads", "4")
    add("=", "CONFIG", "SET", "daemonize", "no", "daemonize", "no")
    add("=", "CONFIG", "SET", "daemonize")
    add("=", "COMMAND", "INFO", "nosuchcmd")
    # COMMAND INFO: name, arity, flags, keys, ACL categories and tips as
    # Redis's (sets in RESP3); key specs and subcommands are not compared
    info = ["COMMAND", "INFO", "get", "set", "incr", "keys", "ttl", "dbsize", "scan", "flushall", "del", "mget",
            "ping", "hello", "auth", "time", "getex", "bitcount", "copy", "lcs", "object", "client", "config"]
    add("ci", *info)
    add("k", "HELLO", "3")
    add("ci", *info)
    add("k", "HELLO", "2")
    # subcommands by their full name, any case; nil for a name Redis's
    # lookupCommandBySds does not find
    add("ci", "COMMAND", "INFO", "client|kill", "CLIENT|LIST", "object|encoding", "Object|Help", "config|set",
        "command|list", "function|flush", "client|id", "cluster|info", "cluster|setslot", "get|x", "client|kill|x", "client|nosuch", "client|", "|kill")
    # COMMAND LIST [FILTERBY MODULE|ACLCAT|PATTERN]: the names as a set, of
    # the commands both servers have (rule l); the filter's argument rules
    add("l", "COMMAND", "LIST")
    for cat in ("keyspace", "read", "write", "string", "bitmap", "fast", "slow", "admin", "dangerous",
                "connection", "scripting", "KeySpace", "list", "@read", "nosuchcategory", ""):
        add("l", "COMMAND", "LIST", "FILTERBY", "ACLCAT", cat)
    for pat in ("*", "get*", "*|*", "CLIENT|*", "object|*", "cluster*", "*slot*", "[a-c]*", "?et", "*ex*", "h[^e]llo", "\\*", ""):
        add("l", "COMMAND", "LIST", "FILTERBY", "PATTERN", pat)
    add("=", "COMMAND", "LIST", "FILTERBY", "MODULE", "nosuchmodule")
    add("=", "COMMAND", "LIST", "filterby", "module", "")
    add("=", "COMMAND", "LIST", "FILTERBY")
    add("=", "COMMAND", "LIST", "FILTERBY", "MODULE")
    add("=", "COMMAND", "LIST", "FILTERBY", "BOGUS", "x")
    add("=", "COMMAND", "LIST", "FILTERBY", "PATTERN", "x", "y")
    add("=", "COMMAND", "LIST", "x", "FILTERBY", "PATTERN", "x")
    add("=", "COMMAND", "LIST", "FILTERBY", "PATTERN", "a", "FILTERBY", "PATTERN", "b")
    add("=", "COMMAND", "LIST", "BOGUS")
    # INFO: Redis's field names in Redis's sections
    add("i", "INFO")
    add("i", "INFO", "everything")
    add("i", "INFO", "memory", "replication")
    add("i", "INFO", "SERVER")
    add("i", "INFO", "nosuchsection")
    add("=", "FLUSHALL")
    add("=", "SET", "ik", "1", "EX", "100")
    add("=", "INFO", "keyspace")
    add("=", "COMMAND", "GETKEYS", "GET", "k")
    add("=", "COMMAND", "GETKEYS", "SET", "k", "v", "EX", "10")
    add("=", "COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2")
    add("=", "COMMAND", "GETKEYS", "MGET", "a", "b", "c")
    add("=", "COMMAND", "GETKEYS", "DEL", "a", "b")
    add("=", "COMMAND", "GETKEYS", "RENAME", "a", "b")
    add("=", "COMMAND", "GETKEYS", "COPY", "a", "b", "REPLACE")
    add("=", "COMMAND", "GETKEYS", "EXPIRE", "a", "10")
    add("=", "COMMAND", "GETKEYS", "GET")
    add("=", "COMMAND", "GETKEYS", "PING")
    add("=", "COMMAND", "GETKEYS", "NOSUCHCMD", "a")
    add("=", "COMMAND", "GETKEYS")
    add("=", "COMMAND", "BOGUS")
    add("=", "COMMAND", "COUNT", "x")
    add("=", "FUNCTION", "FLUSH")
    add("=", "FUNCTION", "LIST")
    # FUNCTION's argument checks, and the answers for no library
    add("=", "FUNCTION", "FLUSH", "sync")
    add("=", "FUNCTION", "FLUSH", "x")
    add("=", "FUNCTION", "FLUSH", "ASYNC", "x")
    add("=", "FUNCTION", "LIST", "WITHCODE")
    add("=", "FUNCTION", "LIST", "withcode", "LIBRARYNAME", "lib*")
    add("=", "FUNCTION", "LIST", "WITHCODE", "WITHCODE")
    add("=", "FUNCTION", "LIST", "LIBRARYNAME")
    add("=", "FUNCTION", "LIST", "LIBRARYNAME", "a", "LIBRARYNAME", "b")
    add("=", "FUNCTION", "LIST", "bogus")
    add("=", "FUNCTION", "DELETE", "nosuchlib")
    add("=", "FUNCTION", "DELETE")
    add("=", "FUNCTION", "KILL")
    add("=", "FUNCTION", "KILL", "x")
    # CLIENT PAUSE: Redis's checks before dynvme's refusal; CLIENT TRACKING:
    # its options parsed as Redis parses them, OFF is +OK
    add("=", "CLIENT", "PAUSE", "abc")
    add("=", "CLIENT", "PAUSE", "-1")
    add("=", "CLIENT", "PAUSE", "1.5")
    add("=", "CLIENT", "PAUSE", "10", "bogus")
    add("=", "CLIENT", "PAUSE", "abc", "bogus")
    add("=", "CLIENT", "PAUSE", "10", "WRITE", "x")
    add("=", "CLIENT", "TRACKING", "off")
    add("=", "CLIENT", "TRACKING", "OFF", "BCAST", "PREFIX", "a", "OPTIN", "OPTOUT", "NOLOOP")
    add("=", "CLIENT", "TRACKING", "OFF", "bogus")
    add("=", "CLIENT", "TRACKING", "OFF", "PREFIX")
    add("=", "CLIENT", "TRACKING", "OFF", "REDIRECT")
    add("=", "CLIENT", "TRACKING", "OFF", "REDIRECT", "abc")
    add("=", "CLIENT", "TRACKING", "OFF", "REDIRECT", "999999")
    add("=", "CLIENT", "TRACKING", "maybe")
    add("=", "CLIENT", "TRACKING", "maybe", "BCAST")
    add("=", "CLIENT", "TRACKING", "ON", "bogus")
    # CLUSTER without cluster support: unknown subcommands and wrong arities
    # get their own errors, every known form "cluster support disabled"
    add("=", "CLUSTER", "INFO")
    add("=", "CLUSTER", "HELP")
    add("=", "CLUSTER", "KEYSLOT", "k")
    add("=", "CLUSTER", "info", "x")
    add("=", "CLUSTER", "KEYSLOT")
    add("=", "CLUSTER", "ADDSLOTS")
    add("=", "CLUSTER", "SETSLOT", "1", "NODE", "x")
    add("=", "CLUSTER", "BOGUS")
    add("=", "CLUSTER", "")
    add("=", "CLUSTER")
    add("=", "READONLY")
    add("=", "READONLY", "x")
    add("=", "DBSIZE", "x")
    add("=", "TIME", "x")
    # unknown commands and arity
    add("=", "NOSUCHCMD")
    add("=", "NOSUCHCMD", "a", "b")
    add("=", "nosuchcmd", "x" * 200)
    add("=", "NOSUCHCMD", "a" * 60, "b" * 60, "c" * 60)
    add("u", "LPUSH", "l", "a")
    add("u", "HSET", "h", "f", "v")
    add("u", "SADD", "s", "m")
    add("u", "MULTI")
    add("u", "SUBSCRIBE", "ch")
    add("=", "GET")
    add("=", "GET", "a", "b")
    add("=", "INCR")
    add("=", "GETRANGE", "a", "1")
    add("=", "SETBIT", "a", "1")
    add("=", "RENAME", "a")
    add("=", "SCAN", "0", "COUNT")
    return c


# Raw protocol cases: (bytes sent, then whether the server closes). The
# reply bytes (until close, or what came within a short time) must match.
def raw_cases():
    return [
        (b"*-10\r\n*1\r\n$4\r\nPING\r\n", False),
        (b"\r\n*1\r\n$4\r\nPING\r\n", False),
        (b"*0\r\n*1\r\n$4\r\nPING\r\n", False),
        (b"*3000000000\r\n", True),
        (b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n", True),
        (b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n", True),
        (b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n", True),
        (b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n", True),
        (b"*1\r\nfoo\r\n", True),
        (b"set \"\"\"test-key\"\"\" test-value\r\nping\r\n", True),
        (b"PING\r\n", False),
        (b"ECHO \"a b\" \r\n", False),
        # CLIENT REPLY: OFF and SKIP are silent, as is what they silence
        (b"CLIENT REPLY OFF\r\nPING\r\nNOSUCH\r\nCLIENT REPLY ON\r\nPING\r\n", False),
        (b"CLIENT REPLY SKIP\r\nECHO one\r\nECHO two\r\n", False),
        (b"CLIENT REPLY SKIP\r\nCLIENT REPLY SKIP\r\nECHO one\r\nECHO two\r\n", False),
    ]


def run_raw(port, data, closes):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(data)
    # Replies end with a quiet period (0.3 s; 1 s in the sanitizer builds),
    # which starts only once the first bytes came: a loaded machine may take
    # seconds to send the first of them.
    slow = os.environ.get("DV_TEST_QUICK") == "1"
    quiet = 1.0 if slow else 0.3
    s.settimeout(5 if closes else (10 if slow else 3))
    out = b""
    end = time.time() + (5 if closes else 15)
    while time.time() < end:
        try:
            d = s.recv(65536)
        except socket.timeout:
            if not closes:
                break  # the quiet period after the reply (or no reply within the first-byte wait)
            continue
        except ConnectionResetError:
            break
        if not d:
            break
        out += d
        if not closes:
            s.settimeout(quiet)
    s.close()
    return out


def scan_all(conn, args, first):
    """Run a SCAN from its first reply to cursor 0: the keys as a set."""
    keys = set()
    r = parse(first)
    if isinstance(r, tuple):
        return r
    for _ in range(100000):
        keys.update(r[1])
        if r[0] == b"0":
            return ("SCAN", sorted(keys))
        nxt = list(args)
        nxt[1] = r[0]
        r = parse(conn.call(nxt))
    return ("SCAN", "did not end")


def unknown_error(args):
    """commandCheckExistence's error for an unknown command."""
    a = ""
    for x in args[1:]:
        if len(a) >= 128:
            break
        a += "'%s' " % x[:128 - len(a)]
    return ("-ERR unknown command '%s', with args beginning with: %s\r\n" % (args[0][:128], a)).encode("latin-1")


# INFO fields Redis clients and tools read, by the section Redis gives them.
INFO_FIELDS = {
    "server": ["redis_version", "redis_mode", "os", "arch_bits", "multiplexing_api", "process_id", "run_id",
               "tcp_port", "uptime_in_seconds", "uptime_in_days", "io_threads_active", "executable"],
    "clients": ["connected_clients", "maxclients", "blocked_clients"],
    "memory": ["used_memory", "used_memory_rss", "maxmemory", "maxmemory_policy", "mem_allocator"],
    "persistence": ["loading", "aof_enabled", "rdb_changes_since_last_save"],
    "stats": ["total_connections_received", "total_commands_processed", "total_net_input_bytes",
              "total_net_output_bytes", "rejected_connections", "expired_keys", "evicted_keys", "keyspace_hits",
              "keyspace_misses", "total_error_replies"],
    "replication": ["role", "connected_slaves", "master_failover_state", "master_replid", "master_replid2",
                    "master_repl_offset", "second_repl_offset", "repl_backlog_active", "repl_backlog_size",
                    "repl_backlog_first_byte_offset", "repl_backlog_histlen"],
    "cpu": ["used_cpu_sys", "used_cpu_user"],
}


def info_sections(text):
    """{section name (lower case): {field: value}} of an INFO reply."""
    out, cur = {}, None
    for line in text.decode("latin-1").split("\r\n"):
        if line.startswith("# "):
            cur = out.setdefault(line[2:].strip().lower(), {})
        elif ":" in line and cur is not None:
            k, v = line.split(":", 1)
            cur[k] = v
    return out


def info_same_fields(golden, got):
    g, r = info_sections(golden), info_sections(got)
    if sorted(k for k in g if k in INFO_FIELDS) != sorted(k for k in r if k in INFO_FIELDS):
        return False  # the same Redis sections, for the same request
    return all(f in g[sec] and f in r[sec] for sec in g if sec in INFO_FIELDS for f in INFO_FIELDS[sec])


def skip_elem(raw, p):
    """The offset just past the RESP2/RESP3 element at p."""
    e = raw.index(b"\r\n", p)
    t, v = raw[p:p + 1], raw[p + 1:e]
    p = e + 2
    if t in b"$=!" and v != b"-1":
        return p + int(v) + 2
    if t in b"*~>" and v != b"-1":
        for _ in range(int(v)):
            p = skip_elem(raw, p)
    if t == b"%":
        for _ in range(2 * int(v)):
            p = skip_elem(raw, p)
    return p


def command_info_head(raw):
    """COMMAND INFO's reply as the exact bytes of each entry's first 8
    fields (name to tips), without its key specs and subcommands."""
    if not raw.startswith(b"*"):
        return raw
    e = raw.index(b"\r\n")
    p, out = e + 2, []
    for _ in range(int(raw[1:e])):
        if not raw.startswith(b"*10\r\n", p):
            q = skip_elem(raw, p)
            out.append(raw[p:q])
            p = q
            continue
        q = p + 5
        for _ in range(8):
            q = skip_elem(raw, q)
        out.append(raw[p:q])
        for _ in range(2):
            q = skip_elem(raw, q)
        p = q
    return out


# Commands dynvme has and Redis 7.0 has not (COMMAND LIST, rule l).
DV_ONLY = {b"dyn.get", b"dyn.put", b"dyn.del", b"dyn.status", b"dyn.ring", b"client|setinfo", b"client|no-touch"}


def list_same(golden, got, names_got, names_golden):
    """Rule l: an error byte for byte; else the same names of the commands
    both servers have, and no name the golden server lacks but DV_ONLY."""
    g, r = parse(golden), parse(got)
    if not isinstance(g, list) or not isinstance(r, list):
        return golden == got
    extra = set(r) - names_golden
    return not (extra - DV_ONLY) and sorted(set(g) & names_got) == sorted(set(r) - extra)


def judge(rule, golden, got, conn, args):
    if rule == "=":
        return golden == got
    if rule == "u":
        return got == unknown_error(args)
    if rule == "k":
        g, r = parse(golden), parse(got)
        return isinstance(r, list) and isinstance(g, list) and r[::2] == g[::2]
    if rule == "e":
        return got[:1] == b"-" and got.split()[0] == golden.split()[0]
    if rule == "ci":
        return command_info_head(golden) == command_info_head(got)
    g, r = parse(golden), parse(got)
    if rule == "i":
        return isinstance(g, bytes) and isinstance(r, bytes) and info_same_fields(g, r)
    if rule == "s":
        return isinstance(r, list) and isinstance(g, list) and sorted(r) == sorted(g)
    if rule == "t":
        return isinstance(r, int) and isinstance(g, int) and abs(r - g) <= 2
    return False


def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
    record = golden_path = None
    if "--record" in sys.argv:
        record = sys.argv[sys.argv.index("--record") + 1]
    if "--golden" in sys.argv:
        golden_path = sys.argv[sys.argv.index("--golden") + 1]
    golden_path = golden_path or os.path.join(HERE, "compat.golden")
    cs, rs = cases(), raw_cases()
    conn = Raw(port)
    got = []
    for rule, args in cs:
        if rule == "u" and (mode == "redis" or record):
            got.append(b"")
            continue
        r = conn.call(args)
        if rule == "c":  # compared as the whole iteration's keys
            r = repr(scan_all(conn, args, r)).encode()
        got.append(r)
    conn.close()
    raw_got = [run_raw(port, d, closes) for d, closes in rs]
    if record:
        with open(record, "w") as f:
            f.write("# compat.golden - redis-server %s replies to tests/server/compat.py's cases "
                    "(regenerate: compat.py PORT redis --record FILE)\n" % os.environ.get("REDIS_VERSION", "7.0"))
            for (rule, args), r in zip(cs, got):
                f.write("%r\t%r\t%r\n" % (rule, args, r))
            for (d, closes), r in zip(rs, raw_got):
                f.write("%r\t%r\t%r\n" % ("raw", d, r))
        print("recorded %d cases" % (len(cs) + len(rs)))
        return 0
    lines = [ln for ln in open(golden_path).read().splitlines() if ln and not ln.startswith("#")]
    if len(lines) != len(cs) + len(rs):
        print("FAIL: %s has %d cases, compat.py %d: record it again" % (golden_path, len(lines), len(cs) + len(rs)))
        return 1
    fails = 0
    goldens = [ast.literal_eval(ln.split("\t")[2]) for ln in lines[:len(cs)]]
    plain = [i for i, (rule, args) in enumerate(cs) if rule == "l" and args == ["COMMAND", "LIST"]][0]
    names_got, names_golden = set(parse(got[plain])), set(parse(goldens[plain]))
    for i, ((rule, args), r) in enumerate(zip(cs, got)):
        grule, gargs, g = (ast.literal_eval(x) for x in lines[i].split("\t"))
        if grule != rule or gargs != args:
            print("FAIL: case %d differs from the golden file's (%r %r): record it again" % (i, grule, gargs))
            return 1
        if rule == "u" and mode == "redis":
            continue  # not sent: redis-server has the command
        if rule == "l":
            ok = list_same(g, r, names_got, names_golden)
        else:
            ok = g == r if rule == "c" else judge(rule, g, r, None, args)
        if not ok:
            fails += 1
            print("FAIL: case %d [%s] %r\n  redis:  %r\n  got:    %r" % (i, rule, args[:8], g[:300], r[:300]))
    for j, ((d, closes), r) in enumerate(zip(rs, raw_got)):
        _, gd, g = (ast.literal_eval(x) for x in lines[len(cs) + j].split("\t"))
        if g != r:
            fails += 1
            print("FAIL: raw case %d %r\n  redis:  %r\n  got:    %r" % (j, d[:80], g[:300], r[:300]))
    print("compat: %d cases, %d differ (server: %s)" % (len(cs) + len(rs), fails, mode))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
