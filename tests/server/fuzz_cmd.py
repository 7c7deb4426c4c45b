#!/usr/bin/python3
"""fuzz_cmd.py - a seeded, replayable differential fuzzer of the command layer.

Each seed is a sequence of random commands over the commands dynvme serves
(strings, keyspace, server and connection: the ones compat.py covers), with
arguments near the edges: wrong arity, negative, huge and overflowing
integers, floats (inf, nan, 1e308, "1e"), empty strings, binary bytes,
options in odd orders and repeated, offsets at the limits, SCAN cursors,
COUNTs and glob patterns with brackets and escapes. Keys come from a small
set (binary and empty ones included) so that commands act on each other's
keys. The sequence goes, one command at a time on one connection each, to a
fresh `dynvme serve` and a fresh redis-server 7 (both started here on
loopback ports, in a temporary directory), and every reply pair is compared
after the normalization below; any other difference, a crash, a closed
connection or a reply that does not come within 10 s is a failure, printed
with the seed, the command and the command line that replays it alone:

    tests/server/fuzz_cmd.py --seed S            (add --build DIR, -v)

Every seed starts from FLUSHALL on new connections, so a seed replays alone
what it did inside a range of seeds. Every third seed (S % 3 == 0) sends its
commands in pipelined batches of 1 to 8 (one write each, then the replies),
LCS, SCAN, SELECT, CLIENT and QUIT alone; every fifth (S % 5 == 1) starts
with HELLO 3 (RESP3 replies: nulls, maps) on both servers. --crash runs dynvme alone (no
redis-server): every reply must parse and the server must stay up; meant
for the sanitizer builds (tests/server/fuzz_cmd.sh runs both ways).

Normalization (what is not compared byte for byte, and why):
  TTL, PTTL, EXPIRETIME,  the two servers are asked at different instants:
  PEXPIRETIME             integers within 2 (s) / 2000 (ms); -1 and -2
                          exactly. Relative expiries are >= 1000 s (or
                          <= 0: immediate), so no key expires mid-run.
  EXPIRE/PEXPIRE ... GT   a relative time as long as the key's TTL is newer
  or LT                   or not by the milliseconds between the commands:
                          0 against 1 passes when both keys' PTTLs agree
                          within 2000 ms after it.
  OBJECT IDLETIME         any integer >= 0: dynvme keeps no access times
                          (0), Redis's shared integers are as idle as the
                          server is old.
  SCAN                    from cursor 0: both iterations run to cursor 0,
                          the key sets compared; from another cursor (its
                          meaning is the server's: a position in key-hash
                          order in dynvme) the reply's shape only, and
                          every key returned must exist. Errors exactly.
  KEYS                    as a set (the order is the server's).
  RANDOMKEY               both nil, or both a key (which one is random).
  INFO, CLIENT LIST/INFO, the server's own numbers and names: the reply's
  CLIENT ID, TIME,        shape (bulk string, integer, array of 2); HELLO:
  HELLO, COMMAND [COUNT]  the same field names. Errors exactly. COMMAND
  COMMAND INFO (no name)  lists Redis's 240 commands, dynvme's own.
  COMMAND INFO            per command its name, arity and key positions:
                          dynvme has no key specs or subcommands (empty);
                          its flags, ACL categories and tips are Redis's
                          (compat.py's "ci" cases compare them exactly).
  value size              dynvme keeps values of up to 1 MiB (Redis: 512
                          MiB): a SETRANGE/APPEND/SETBIT making a longer
                          one gets Redis's own "string exceeds maximum
                          allowed size" error from dynvme where Redis
                          succeeds; then the key is deleted on redis-server
                          to stay in step.
  LCS too large           the error's first words ("ERR Insufficient
                          memory"): the bound named differs (Redis's
                          proto-max-bulk-len, dynvme's max-reply-bytes).
  SELECT n (n != 0),      a single node has database 0 only (README); a
  COPY ... DB n           SELECT Redis accepts is undone there; a COPY to
                          another database gets "ERR DB index is out of
                          range" from dynvme as soon as DB n is read.
  SET ... EXAT|PXAT past  not sent: Redis 7.0 keeps such a key until it is
                          touched or its active expiry finds it, dynvme
                          until its expiry pass does (docs/ARCHITECTURE.md,
                          "Expiry"): DBSIZE counts it meanwhile, on both a
                          matter of timing. (GETEX and the EXPIRE family
                          delete the key at once on both: sent.)
  HELLO ... SETNAME n     refused for a later option: Redis 7.0 has set the
  <bad option>            name already, dynvme changes nothing on a HELLO it
                          refuses; the name is set back on redis-server.
Commands the fuzzer never sends: CLIENT REPLY OFF|SKIP (a reply that never
comes; compat.py's raw cases check them), CLIENT PAUSE, SHUTDOWN, DEBUG,
CONFIG SET of values other than each parameter's default, relative expiries
of less than 1000 s, and any other timing-dependent input.

Usage: fuzz_cmd.py [--build DIR] [--seed N | --seeds A..B] [--ops N]
                   [--time-limit SECS] [--crash] [--regress] [-v]
"""
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from dvresp import Closed, Hang, RawConn  # noqa: E402
ROOT = os.path.dirname(os.path.dirname(HERE))
REPLY_TIMEOUT = 10.0
VALUE_MAX = 1 << 20  # dynvme's largest value (DV_VALUE_BYTES_MAX)
FAR = 4000000000

# ---------------------------------------------------------------- wire


def enc(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn(RawConn):
    """One connection; replies as their exact bytes."""

    def __init__(self, port):
        super().__init__(port, timeout=REPLY_TIMEOUT)

    def call(self, args):
        return self.call_many([args])[0]

    def call_many(self, batch):
        """The commands in one write, then their replies (self.got: those
        read so far, when one does not come)."""
        self.got = []
        self.send(b"".join(enc(a) for a in batch))
        for _ in batch:
            self.got.append(self.reply())
        return self.got


class Err(bytes):
    """An error reply's text."""


def parse(raw):
    def at(p):
        e = raw.index(b"\r\n", p)
        t, rest = raw[p:p + 1], raw[p + 1:e]
        p = e + 2
        if t == b"+":
            return rest.decode("latin-1"), p
        if t == b"-":
            return Err(rest), p
        if t in b":(":
            return int(rest), p
        if t == b",":
            return float(rest), p
        if t == b"#":
            return rest == b"t", p
        if t == b"_":
            return None, p
        if t in b"$=!":
            n = int(rest)
            if n < 0:
                return None, p
            v = raw[p:p + n]
            return (Err(v) if t == b"!" else v), p + n + 2
        if t in b"*~>%|":
            n = int(rest) * (2 if t in b"%|" else 1)
            if n < 0:
                return None, p
            out = []
            for _ in range(n):
                v, p = at(p)
                out.append(v)
            if t == b"|":
                return at(p)
            return out, p
        raise ValueError(t)
    return at(0)[0]


# ---------------------------------------------------------------- servers


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, kind, build, tmp):
        self.kind, self.build, self.tmp = kind, build, tmp
        self.proc = None
        self.n = 0

    def start(self):
        self.n += 1
        self.port = free_port()
        self.log = os.path.join(self.tmp, "%s.%d.log" % (self.kind, self.n))
        if self.kind == "dynvme":
            data = os.path.join(self.tmp, "dynvme.img")
            if os.path.exists(data):
                os.unlink(data)
            cmd = [os.path.join(self.build, "dynvme"), "serve", "--bind", "127.0.0.1", "--port", str(self.port),
                   "--http-port", "0", "--data", data, "--size", "64M", "--zone-bytes", "4M",
                   "--log-level", "warn"]
        else:
            d = os.path.join(self.tmp, "redis.%d" % self.n)
            os.makedirs(d, exist_ok=True)
            cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", d, "--daemonize", "no", "--logfile", ""]
        self.proc = subprocess.Popen(cmd, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        slow = 4 if os.environ.get("DV_TEST_QUICK") == "1" or "asan" in self.build or "tsan" in self.build else 1
        end = time.time() + 30 * slow
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited during start (rc=%s): see %s\n%s" % (
                    self.kind, self.proc.returncode, self.log, self.log_tail()))
            try:
                c = Conn(self.port)
                r = c.call([b"PING"])
                c.close()
                if r == b"+PONG\r\n":
                    return
            except (OSError, Closed, Hang):
                pass
            if time.time() > end:
                raise RuntimeError("%s not answering on port %d" % (self.kind, self.port))
            time.sleep(0.05)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=30):
        try:
            with open(self.log, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("latin-1")
        except OSError:
            return ""

    def sanitizer_report(self):
        try:
            with open(self.log, "rb") as f:
                t = f.read().decode("latin-1")
        except OSError:
            return None
        for m in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "WARNING: ThreadSanitizer", "runtime error:"):
            i = t.find(m)
            if i >= 0:
                return t[max(0, i - 200):i + 3000]
        return None

    def stop(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        return rc


# ---------------------------------------------------------------- generator

KEYS = [b"k", b"n", b"f", b"", b"b\x00\r\nk", b"\xff\xfe", b"k2"]
BIG_KEY = b"K" * 1023  # dynvme's longest key

INTS = [b"0", b"1", b"-1", b"2", b"3", b"7", b"10", b"100", b"-100", b"1000", b"65536", b"2147483647",
        b"2147483648", b"-2147483648", b"-2147483649", b"4294967295", b"4294967296", b"9223372036854775807",
        b"-9223372036854775808", b"9223372036854775808", b"-9223372036854775809", b"18446744073709551615",
        b"18446744073709551616", b"99999999999999999999", b"abc", b"", b" 1", b"1 ", b"+1", b"01", b"-0",
        b"1.0", b"1e3", b"0x10", b"1\x00", b"--1", b"-"]
FLOATS = [b"inf", b"-inf", b"+inf", b"INF", b"infinity", b"nan", b"-nan", b"NaN", b"1e308", b"-1e308",
          b"1.7976931348623157e308", b"1e309", b"1e", b"1e+", b"e1", b"1e-320", b"5e-324", b"0", b"-0",
          b"-0.0", b"0.0", b"1.5", b"-1.5", b"0.1", b"3.0", b"5.0e3", b".5", b"5.", b".", b"abc", b"",
          b" 1", b"1 ", b"0x10", b"0x1p3", b"1e400", b"-1e400", b"1.23456789012345678", b"10.5",
          b"9223372036854775807", b"1e17", b"123456789012345678901234567890", b"1_000", b"1,5"]
VALUES = [b"", b"v", b"0", b"1", b"-1", b"10", b"123", b" 1", b"1 ", b"+1", b"01", b"-0", b"1.5", b"3.0",
          b"1e308", b"-1e308", b"inf", b"nan", b"1e", b"9223372036854775807", b"9223372036854775806",
          b"-9223372036854775808", b"-9223372036854775807", b"9223372036854775808", b"12345678901234567890",
          b"10000", b"9999", b"ohmytext", b"mynewtext", b"foobar", b"hello world", b"\x00", b"\xff\x00\xff",
          b"a\r\nb", b"x" * 20, b"y" * 21, b"z" * 44, b"w" * 45, b"q" * 200, b"0.1", b"1e17", b"5e-324"]
TTLS_REL = [b"1000", b"100000", b"2147483647", b"2147483648", b"0", b"-1", b"-100", b"9223372036854775807",
            b"9223372036854775", b"9223372036854776", b"9223372036854775806", b"-9223372036854775808",
            b"9223372036854", b"abc", b"", b"1.5", b" 1000"]
TTLS_ABS_S = [b"1", b"1000", str(FAR).encode(), str(FAR + 7).encode(), b"0", b"-1", b"9223372036854775807",
              b"9223372036854775", b"92233720368547758", b"abc"]
TTLS_ABS_MS = [b"1", b"1000", str(FAR * 1000).encode(), str(FAR * 1000 + 5).encode(), b"0", b"-1",
               b"9223372036854775807", b"9223372036854775806", b"92233720368547758", b"abc"]
TTLS_REL_MS = [t + b"000" if t.isdigit() else t for t in TTLS_REL] + [b"9223372036854775807"]
TTLS_ABS_S_FUTURE = [t for t in TTLS_ABS_S if not t.isdigit() or int(t) > FAR - 1]
TTLS_ABS_MS_FUTURE = [t for t in TTLS_ABS_MS if not t.isdigit() or int(t) > FAR * 1000 - 1]
# SETRANGE/GETRANGE byte offsets and SETBIT/GETBIT bit offsets near both servers' limits.
# Redis allocates what it accepts (up to 512 MiB): offsets between dynvme's
# 1 MiB and Redis's 512 MiB are sent only where Redis refuses or only reads
# (SETRANGE at 536870911 with 2 bytes or more, GETBIT at 4294967295).
BYTE_OFFS = [b"0", b"1", b"2", b"5", b"10", b"100", b"-1", b"-100", b"1048575", b"1048574", b"1048576",
             b"536870911", b"536870912", b"4294967295", b"4294967296", b"9223372036854775807",
             b"-9223372036854775808", b"9223372036854775808", b"abc", b""]
BIT_OFFS = [b"0", b"1", b"7", b"8", b"63", b"100", b"1000", b"-1", b"8388607", b"8388608", b"8388600",
            b"4294967296", b"4294967297", b"9223372036854775807", b"-9223372036854775808",
            b"18446744073709551616", b"abc", b""]
RANGE_IDX = [b"0", b"1", b"-1", b"2", b"-2", b"5", b"-5", b"100", b"-100", b"1048575", b"1048576",
             b"9223372036854775807", b"-9223372036854775808", b"9223372036854775808", b"abc", b""]
PATTERN_PIECES = [b"*", b"?", b"k", b"n", b"f", b"2", b"[kn]", b"[^k]", b"[a-z]", b"[z-a]", b"[", b"]",
                  b"\\", b"\\*", b"\\?", b"\\[", b"[\\]]", b"[!k]", b"[*]", b"b\x00", b"\r\n", b"\xff",
                  b"[a-]", b"[-z]", b"[\\", b"[]", b"[^]", b"**", b"K", b"m:", b"m:1", b"[0-4]", b"m:*"]


def up(rng, w):
    """An option word, in a random case at times."""
    r = rng.random()
    if r < 0.7:
        return w.upper()
    if r < 0.85:
        return w.lower()
    return bytes(c ^ 32 if 97 <= (c | 32) <= 122 and rng.random() < 0.5 else c for c in w)


class Gen:
    def __init__(self, seed, small=False):
        """small: no offsets that make values of about 1 MiB (pipelined
        seeds: their size difference is undone between commands)."""
        self.rng = random.Random(seed)
        self.small = small

    def pick(self, xs):
        return self.rng.choice(xs)

    def key(self):
        r = self.rng.random()
        if r < 0.02:
            return BIG_KEY
        return self.pick(KEYS)

    def keys(self, lo=1, hi=4):
        return [self.key() for _ in range(self.rng.randint(lo, hi))]

    def value(self):
        r = self.rng.random()
        if r < 0.15:
            return bytes(self.rng.randrange(256) for _ in range(self.rng.randint(0, 12)))
        if r < 0.25:
            return str(self.rng.randint(-10 ** 6, 10 ** 6)).encode()
        if r < 0.3:
            return repr(self.rng.uniform(-1e6, 1e6)).encode()
        return self.pick(VALUES)

    def int_(self):
        r = self.rng.random()
        if r < 0.3:
            return str(self.rng.randint(-1000, 1000)).encode()
        return self.pick(INTS)

    def float_(self):
        r = self.rng.random()
        if r < 0.2:
            return repr(self.rng.uniform(-1e3, 1e3)).encode()
        if r < 0.3:
            return ("%.17g" % (self.rng.choice([1, -1]) * 10 ** self.rng.uniform(-30, 308))).encode()
        return self.pick(FLOATS)

    def pattern(self):
        if self.rng.random() < 0.1:
            return self.pick([b"*", b"", b"k*", b"\\", b"[", b"*[", b"k\\"])
        return b"".join(self.pick(PATTERN_PIECES) for _ in range(self.rng.randint(1, 4)))

    def expiry_opt(self, past=True):
        """A SET/GETEX expiry option with its value (or missing it); past:
        EXAT/PXAT times in the past too (not for SET: see the header)."""
        forms = [b"EX", b"PX", b"EXAT", b"PXAT"]
        w = self.pick(forms)
        v = self.expiry_time(forms.index(w), past)
        return [up(self.rng, w), v]

    def expiry_time(self, form, past=True):
        """A time for an expiry form: 0 seconds from now (EX, EXPIRE), 1 ms
        from now (PX, PEXPIRE), 2 Unix seconds (EXAT, EXPIREAT), 3 Unix ms
        (PXAT, PEXPIREAT); past: absolute times in the past too."""
        if form == 0:
            return self.pick(TTLS_REL)
        if form == 1:
            return self.pick(TTLS_REL_MS)
        if form == 2:
            return self.pick(TTLS_ABS_S if past else TTLS_ABS_S_FUTURE)
        return self.pick(TTLS_ABS_MS if past else TTLS_ABS_MS_FUTURE)

    def opts(self, words, n_hi=3, past=True):
        out = []
        for _ in range(self.rng.randint(0, n_hi)):
            w = self.pick(words)
            if w == "EXPIRY":
                out += self.expiry_opt(past)
            else:
                out.append(up(self.rng, w))
        return out

    # ---- commands
    def c_get(self):
        return [b"GET", self.key()]

    def c_set(self):
        a = [b"SET", self.key(), self.value()]
        a += self.opts([b"NX", b"XX", b"GET", b"KEEPTTL", "EXPIRY", "EXPIRY", b"BOGUS"], 4, past=False)
        if self.rng.random() < 0.05:
            a.append(self.pick([b"EX", b"PX", b"EXAT", b"PXAT"]))  # missing its value
        return a

    def c_setnx(self):
        return [b"SETNX", self.key(), self.value()]

    def c_setex(self):
        return [b"SETEX", self.key(), self.pick(TTLS_REL), self.value()]

    def c_psetex(self):
        return [b"PSETEX", self.key(), self.pick([b"1000000", b"0", b"-1", b"9223372036854775807", b"abc",
                                                  b"9223372036854775", b"100000000"]), self.value()]

    def c_mget(self):
        return [b"MGET"] + self.keys(1, 5)

    def c_mset(self):
        a = [self.pick([b"MSET", b"MSETNX"])]
        for k in self.keys(1, 4):
            a += [k, self.value()]
        if self.rng.random() < 0.1:
            a.pop()
        return a

    def c_getset(self):
        return [b"GETSET", self.key(), self.value()]

    def c_getdel(self):
        return [b"GETDEL", self.key()]

    def c_getex(self):
        return [b"GETEX", self.key()] + self.opts([b"PERSIST", "EXPIRY", "EXPIRY", b"KEEPTTL", b"NX"], 3)

    def c_append(self):
        return [b"APPEND", self.key(), self.value()]

    def c_strlen(self):
        return [b"STRLEN", self.key()]

    def c_getrange(self):
        return [self.pick([b"GETRANGE", b"SUBSTR"]), self.key(), self.pick(RANGE_IDX), self.pick(RANGE_IDX)]

    def c_setrange(self):
        off = self.pick(BYTE_OFFS)
        if off in (b"1048576", b"1048575", b"1048574") and (self.small or self.rng.random() < 0.7):
            off = b"%d" % self.rng.randint(0, 300)  # large values: seldom (1 MiB writes each)
        v = self.value()
        if off == b"536870911" and len(v) < 2:
            v += b"xx"  # one byte there makes Redis's largest string (512 MiB): past it, both refuse
        return [b"SETRANGE", self.key(), off, v]

    def c_incr(self):
        c = self.pick([b"INCR", b"DECR", b"INCRBY", b"DECRBY"])
        return [c, self.key()] + ([self.int_()] if c.endswith(b"BY") else [])

    def c_incrbyfloat(self):
        return [b"INCRBYFLOAT", self.key(), self.float_()]

    def c_setbit(self):
        off = self.pick(BIT_OFFS)
        if off in (b"8388607", b"8388608", b"8388600") and (self.small or self.rng.random() < 0.7):
            off = b"%d" % self.rng.randint(0, 2000)
        return [b"SETBIT", self.key(), off, self.pick([b"0", b"1", b"1", b"2", b"-1", b"x", b"", b"01", b" 1"])]

    def c_getbit(self):
        return [b"GETBIT", self.key(), self.pick(BIT_OFFS + [b"4294967295"])]

    def c_bitcount(self):
        a = [b"BITCOUNT", self.key()]
        n = self.rng.randint(0, 3)
        if n >= 1:
            a.append(self.pick(RANGE_IDX))
        if n >= 2:
            a.append(self.pick(RANGE_IDX))
        if n >= 3:
            a.append(up(self.rng, self.pick([b"BIT", b"BYTE", b"BOGUS", b"BIT"])))
        return a

    def c_lcs(self):
        return [b"LCS", self.key(), self.key()] + self.opts(
            [b"LEN", b"IDX", b"WITHMATCHLEN", b"MINMATCHLEN", b"BOGUS"] + [b"MINMATCHLEN"] * 2, 4
        ) if self.rng.random() < 0.5 else [b"LCS", self.key(), self.key()] + self._lcs_opts()

    def _lcs_opts(self):
        out = []
        for _ in range(self.rng.randint(0, 3)):
            w = self.pick([b"LEN", b"IDX", b"WITHMATCHLEN", b"MINMATCHLEN"])
            out.append(up(self.rng, w))
            if w == b"MINMATCHLEN" and self.rng.random() < 0.9:
                out.append(self.pick([b"0", b"1", b"2", b"4", b"-3", b"abc", b"9223372036854775807",
                                      b"9223372036854775808"]))
        return out

    def c_bulk(self):
        """A multi-key command over many keys of their own family (m:N):
        SCAN and KEYS then take several steps, and past 4096 keys (dynvme's
        NET_CMD_OPS_CHUNK) a command runs in chunks."""
        r = self.rng.random()
        n = self.pick([4100, 5000]) if r < 0.08 else self.pick([20, 50, 200, 300])
        lo = self.rng.randint(0, 40)
        keys = [b"m:%d" % (lo + j) for j in range(n)]
        c = self.pick([b"MSET", b"MSET", b"MSETNX", b"DEL", b"UNLINK", b"EXISTS", b"TOUCH", b"MGET"])
        if c in (b"MSET", b"MSETNX"):
            a = [c]
            for k in keys:
                a += [k, b"%d" % self.rng.randint(0, 99)]
            return a
        return [c] + keys

    def c_del(self):
        return [self.pick([b"DEL", b"UNLINK", b"EXISTS", b"TOUCH"])] + self.keys(1, 4)

    def c_probe(self):
        return [self.pick([b"TYPE", b"TTL", b"PTTL", b"EXPIRETIME", b"PEXPIRETIME"]), self.key()]

    def c_expire(self):
        forms = [b"EXPIRE", b"PEXPIRE", b"EXPIREAT", b"PEXPIREAT"]
        c = self.pick(forms)
        t = self.expiry_time(forms.index(c))
        return [c, self.key(), t] + self.opts([b"NX", b"XX", b"GT", b"LT", b"BOGUS"], 2)

    def c_persist(self):
        return [b"PERSIST", self.key()]

    def c_rename(self):
        return [self.pick([b"RENAME", b"RENAMENX"]), self.key(), self.key()]

    def c_copy(self):
        a = [b"COPY", self.key(), self.key()]
        for _ in range(self.rng.randint(0, 2)):
            w = self.pick([b"REPLACE", b"DB", b"BOGUS"])
            a.append(up(self.rng, w))
            if w == b"DB" and self.rng.random() < 0.9:
                a.append(self.pick([b"0", b"x", b"-1", b"99999999999"]))
        return a

    def c_object(self):
        sub = up(self.rng, self.pick([b"ENCODING", b"ENCODING", b"ENCODING", b"FREQ", b"IDLETIME",
                                      b"REFCOUNT", b"REFCOUNT", b"HELP", b"BOGUS"]))
        a = [b"OBJECT", sub]
        if sub.upper() != b"HELP" or self.rng.random() < 0.2:
            a.append(self.key())
        if self.rng.random() < 0.05:
            a.append(self.key())
        return a

    def c_scan(self):
        cur = self.pick([b"0", b"0", b"0", b"1", b"x", b"-1", b"18446744073709551615", b"18446744073709551616",
                         b" 0", b"", b"00", b"+0"])
        a = [b"SCAN", cur]
        for _ in range(self.rng.randint(0, 3)):
            w = self.pick([b"MATCH", b"COUNT", b"TYPE", b"BOGUS"])
            a.append(up(self.rng, w))
            if w == b"MATCH":
                a.append(self.pattern())
            elif w == b"COUNT":
                a.append(self.pick([b"1", b"2", b"10", b"1000", b"0", b"-1", b"abc", b"2147483648",
                                    b"9223372036854775807"]))
            elif w == b"TYPE":
                a.append(self.pick([b"string", b"STRING", b"list", b"hash", b"none", b"bogus"]))
        if self.rng.random() < 0.05:
            a.pop()
        return a

    def c_keys(self):
        return [b"KEYS", self.pattern()]

    def c_randomkey(self):
        return [b"RANDOMKEY"]

    def c_dbsize(self):
        return [b"DBSIZE"]

    def c_flush(self):
        a = [self.pick([b"FLUSHDB", b"FLUSHALL"])]
        if self.rng.random() < 0.5:
            a.append(up(self.rng, self.pick([b"ASYNC", b"SYNC", b"BOGUS"])))
        return a

    def c_info(self):
        return [b"INFO"] + [self.pick([b"server", b"keyspace", b"memory", b"all", b"everything", b"default",
                                       b"stats", b"nosuch", b"KEYSPACE", b"replication", b"commandstats"])
                            for _ in range(self.rng.randint(0, 2))]

    def c_command(self):
        r = self.rng.random()
        if r < 0.7:
            inner = self.command(depth=1)
            return [b"COMMAND", up(self.rng, b"GETKEYS")] + inner
        if r < 0.85:
            return [b"COMMAND", b"INFO"] + [self.pick([b"get", b"nosuch", b"SET", b"lcs", b"scan"])
                                             for _ in range(self.rng.randint(1, 3))]
        return [b"COMMAND", self.pick([b"COUNT", b"BOGUS", b"HELP"])]

    def c_config(self):
        r = self.rng.random()
        if r < 0.4:
            return [b"CONFIG", b"GET", self.pick([b"timeout", b"maxmemory", b"save", b"appendonly", b"nosuch",
                                                  b"maxmemory-policy"])]
        if r < 0.8:
            a = [b"CONFIG", b"SET"]
            for _ in range(self.rng.randint(0, 2)):
                p = self.pick([b"timeout", b"save", b"appendonly", b"nosuchparam", b"databases"])
                a.append(p)
                if self.rng.random() < 0.9:
                    a.append({b"timeout": b"0", b"save": b"", b"appendonly": b"no"}.get(p, b"1"))
            return a
        return [b"CONFIG", self.pick([b"RESETSTAT", b"BOGUS", b"HELP", b"GET"])]

    def c_conn(self):
        r = self.rng.random()
        if r < 0.2:
            return [b"PING"] + [self.value() for _ in range(self.rng.randint(0, 2))]
        if r < 0.35:
            return [b"ECHO"] + [self.value() for _ in range(self.rng.randint(0, 2))]
        if r < 0.45:
            return [b"SELECT", self.pick([b"0", b"0", b"1", b"15", b"16", b"-1", b"x", b"99999999999"])]
        if r < 0.55:
            return [b"TIME"] + ([b"x"] if self.rng.random() < 0.2 else [])
        if r < 0.65:
            return [b"HELLO"] + self.pick([[], [b"2"], [b"3"], [b"2"], [b"4"], [b"x"], [b"2", b"SETNAME", b"nm"],
                                           [b"3", b"AUTH", b"default", b"pw"], [b"2", b"BOGUS"]])
        if r < 0.7:
            return [b"AUTH"] + self.pick([[b"pw"], [b"default", b"x"], [b"nosuchuser", b"x"], [b"a", b"b", b"c"]])
        sub = self.pick([b"GETNAME", b"SETNAME", b"ID", b"INFO", b"LIST", b"NO-EVICT", b"KILL", b"BOGUS",
                         b"HELP", b"UNBLOCK", b"GETREDIR", b"REPLY"])
        a = [b"CLIENT", up(self.rng, sub)]
        if sub == b"SETNAME":
            a.append(self.pick([b"nm", b"", b"bad name", b"x\n"]))
        elif sub == b"NO-EVICT":
            a.append(self.pick([b"on", b"off", b"maybe"]))
        elif sub == b"KILL":
            a += self.pick([[b"ID", b"999999999"], [b"ID", b"x"], [b"ADDR", b"1.2.3.4:5"], [b"TYPE", b"bogus"],
                            [b"TYPE", b"pubsub"], [b"USER", b"nosuchuser"], [b"SKIPME", b"maybe"], []])
        elif sub == b"UNBLOCK":
            a += self.pick([[b"999999999"], [b"x"], [b"1", b"BOGUS"], [b"1", b"TIMEOUT"]])
        elif sub == b"REPLY":
            a.append(self.pick([b"ON", b"BOGUS"]))
        elif sub == b"LIST":
            a += self.pick([[], [b"TYPE", b"normal"], [b"TYPE", b"bogus"], [b"ID", b"x"], [b"ID", b"999999999"]])
        return a

    TABLE = [("c_get", 6), ("c_set", 10), ("c_setnx", 2), ("c_setex", 2), ("c_psetex", 1), ("c_mget", 3),
             ("c_mset", 3), ("c_getset", 2), ("c_getdel", 2), ("c_getex", 4), ("c_append", 4), ("c_strlen", 2),
             ("c_getrange", 4), ("c_setrange", 4), ("c_incr", 6), ("c_incrbyfloat", 5), ("c_setbit", 4),
             ("c_getbit", 2), ("c_bitcount", 3), ("c_lcs", 3), ("c_del", 4), ("c_probe", 5), ("c_expire", 5),
             ("c_persist", 2), ("c_rename", 3), ("c_copy", 3), ("c_object", 4), ("c_scan", 4), ("c_keys", 3),
             ("c_randomkey", 1), ("c_dbsize", 1), ("c_bulk", 0.6), ("c_flush", 0.3), ("c_info", 0.5), ("c_command", 2),
             ("c_config", 1), ("c_conn", 3)]

    def command(self, depth=0):
        names = [n for n, _ in self.TABLE if not (depth and n in ("c_command", "c_conn", "c_config", "c_info"))]
        weights = [w for n, w in self.TABLE if n in names]
        a = getattr(self, self.rng.choices(names, weights)[0])()
        r = self.rng.random()
        if r < 0.03:
            a = a[:self.rng.randint(1, max(1, len(a) - 1))]  # too few arguments
        elif r < 0.05:
            a = a + [self.value() for _ in range(self.rng.randint(1, 2))]  # too many
        elif r < 0.06 and depth == 0:
            a = [up(self.rng, a[0].lower())] + a[1:]
        return a


# ---------------------------------------------------------------- comparison

TTL_TOL = {b"TTL": 2, b"EXPIRETIME": 2, b"PTTL": 2000, b"PEXPIRETIME": 2000}


def is_err(raw):
    return raw[:1] in (b"-", b"!")


def name_of(args):
    return args[0].upper()


def shape(v):
    """A reply's shape: types, array lengths, not values."""
    if isinstance(v, list):
        return ["list", len(v)]
    return type(v).__name__


def close_ints(a, b, tol):
    return isinstance(a, int) and isinstance(b, int) and (a == b or (a >= 0 and b >= 0 and abs(a - b) <= tol))


class Differ:
    """Runs one seed against dynvme (and redis-server)."""

    def __init__(self, dv, rd, verbose):
        self.dv, self.rd, self.verbose = dv, rd, verbose
        self.cd = self.cr = None

    def connect(self):
        for c in (self.cd, self.cr):
            if c:
                c.close()
        self.cd = Conn(self.dv.port)
        self.cr = Conn(self.rd.port) if self.rd else None

    def close(self):
        for c in (self.cd, self.cr):
            if c:
                c.close()
        self.cd = self.cr = None

    def lcs_guard(self, args):
        """Redis builds LCS's table whatever its size below 512 MiB: a long
        key's LCS is left out (both servers' bounds are checked by compat.py)."""
        conn = self.cr or self.cd
        n = 1
        for k in args[1:3]:
            r = parse(conn.call([b"STRLEN", k]))
            n *= (r if isinstance(r, int) else 0) + 1
        return n <= 4 * 1000 * 1000

    def scan_all(self, conn, args, first):
        keys, r, steps = set(), parse(first), 0
        while True:
            if isinstance(r, Err):
                return r
            if not (isinstance(r, list) and len(r) == 2 and isinstance(r[1], list)):
                return ("bad SCAN reply", r)
            keys.update(r[1])
            if r[0] == b"0":
                return sorted(keys)
            steps += 1
            if steps > 10000:
                return ("SCAN did not end",)
            nxt = list(args)
            nxt[1] = r[0]
            r = parse(conn.call(nxt))

    def compare(self, args, d, r):
        """None when the replies agree after normalization, else why not."""
        name = name_of(args)
        sub = args[1].upper() if len(args) > 1 else b""
        if name == b"HELLO" and is_err(d) and is_err(r) and any(a.upper() == b"SETNAME" for a in args):
            # Redis 7.0 sets the name before it refuses a later option: undone there
            n = parse(self.cd.call([b"CLIENT", b"GETNAME"]))
            self.cr.call([b"CLIENT", b"SETNAME", n or b""])
        if d == r:
            return None
        pd, pr = parse(d), parse(r)
        if is_err(d) or is_err(r):
            ed, er = (x if isinstance(x, Err) else Err(b"") for x in (pd, pr))
            if name == b"LCS" and ed.startswith(b"ERR Insufficient memory") and \
                    er.startswith(b"ERR Insufficient memory"):
                return None
            if (name in (b"SETRANGE", b"APPEND", b"SETBIT") and
                    ed == b"ERR string exceeds maximum allowed size (proto-max-bulk-len)" and not is_err(r)):
                for c in (self.cd, self.cr):  # dynvme keeps values of 1 MiB at most
                    c.call([b"DEL", args[1]])
                return None
            if name == b"COPY" and ed == b"ERR DB index is out of range" and \
                    any(a.upper() == b"DB" for a in args[3:]):
                return None  # one database on a single node: COPY to another is refused
            if name == b"SELECT" and is_err(d) and not is_err(r) and args[1] != b"0" and \
                    ed.startswith(b"ERR DB index is out of range"):
                self.cr.call([b"SELECT", b"0"])  # one database on a single node
                return None
            return "replies differ"
        if name in (b"EXPIRE", b"PEXPIRE") and {pd, pr} == {0, 1} and \
                any(a.upper() in (b"GT", b"LT") for a in args[3:]):
            # a relative time as long as the key's: newer or not by the
            # milliseconds between the commands; the keys' TTLs must agree
            td, tr = (parse(c.call([b"PTTL", args[1]])) for c in (self.cd, self.cr))
            if close_ints(td, tr, 2000):
                return None
            return "replies differ (PTTL after it: dynvme %r, redis %r)" % (td, tr)
        if name in TTL_TOL and close_ints(pd, pr, TTL_TOL[name]):
            return None
        if name == b"OBJECT" and sub == b"IDLETIME" and isinstance(pd, int) and isinstance(pr, int) and \
                pd >= 0 and pr >= 0:
            return None
        if name == b"KEYS" and isinstance(pd, list) and isinstance(pr, list) and sorted(pd) == sorted(pr):
            return None
        if name == b"COMMAND" and (len(args) == 1 or (sub == b"INFO" and len(args) == 2)):  # all commands
            return None if isinstance(pd, list) and isinstance(pr, list) else "reply shapes differ"
        if name == b"RANDOMKEY" and (pd is None) == (pr is None) and shape(pd) == shape(pr):
            return None
        if name == b"SCAN":
            return self.compare_scan(args, d, r, pd, pr)
        if name in (b"INFO", b"TIME") or (name == b"CLIENT" and sub in (b"LIST", b"INFO", b"ID")) or \
                (name == b"COMMAND" and sub in (b"", b"COUNT", b"LIST", b"DOCS")):
            return None if shape(pd) == shape(pr) else "reply shapes differ"
        if name == b"HELLO" or (name == b"COMMAND" and sub == b"INFO"):
            return None if same_names(pd, pr) else "field names differ"
        return "replies differ"

    def compare_scan(self, args, d, r, pd, pr):
        if args[1] == b"0":
            sd, sr = self.scan_all(self.cd, args, d), self.scan_all(self.cr, args, r)
            return None if sd == sr else "SCAN iterations differ: dynvme %r, redis %r" % (sd, sr)
        if not (isinstance(pd, list) and len(pd) == 2 and isinstance(pd[0], bytes) and pd[0].isdigit()
                and isinstance(pd[1], list) and all(isinstance(x, bytes) for x in pd[1])):
            return "SCAN reply's shape"
        if shape(pr) != shape(pd):
            return "SCAN reply's shape"
        for k in pd[1]:
            if parse(self.cr.call([b"EXISTS", k])) != 1:
                return "SCAN returned %r, a key redis-server does not have" % k
        return None


def same_names(a, b):
    """HELLO: the same field names; COMMAND INFO: per name the same name,
    arity and key positions (or both nil)."""
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        if all(x is None or isinstance(x, list) for x in a + b):
            return all(x == y if x is None or y is None else
                       len(x) == len(y) == 10 and [x[i] for i in (0, 1, 3, 4, 5)] == [y[i] for i in (0, 1, 3, 4, 5)]
                       for x, y in zip(a, b))
        return a[::2] == b[::2]
    return a == b


# Commands after which the connection may be gone or changed for good: a
# new connection each (both servers), as the reply was compared.
RECONNECT = {b"QUIT", b"RESET"}


def check_reply(raw):
    """--crash: the reply must be a well-formed RESP value."""
    parse(raw)


def fmt(args, n=200):
    return " ".join(repr(a)[1:] if len(a) < n else repr(a[:n])[1:] + "...(%d bytes)" % len(a) for a in args)


# Sent alone, never inside a pipelined batch: LCS (its size guard reads the
# keys first), SCAN (its check reads the keys after it),
# SELECT (a normalized difference undone on redis-server),
# CLIENT, QUIT and RESET (they may close or change the connection).
SOLO = {b"LCS", b"SCAN", b"SELECT", b"CLIENT", b"QUIT", b"RESET"}


def piped_seed(seed):
    """Every third seed sends its commands in pipelined batches of 1 to 8."""
    return seed % 3 == 0


def resp3_seed(seed):
    """Every fifth seed (S % 5 == 1) speaks RESP3 from its start (HELLO 3)."""
    return seed % 5 == 1


def run_seed(seed, dfr, ops, verbose, replay_cmd):
    """0 when the seed passes, else 1 (after printing what failed)."""
    piped = piped_seed(seed)
    gen = Gen(seed, small=piped)
    dfr.connect()
    hist = []
    crash_mode = dfr.rd is None
    for c in ([dfr.cd] if crash_mode else [dfr.cd, dfr.cr]):
        if c.call([b"FLUSHALL"]) != b"+OK\r\n":
            print("FAIL: seed %d: FLUSHALL before the seed failed" % seed)
            return 1
    if resp3_seed(seed):
        for c in ([dfr.cd] if crash_mode else [dfr.cd, dfr.cr]):
            if not c.call([b"HELLO", b"3"]).startswith(b"%"):
                print("FAIL: seed %d: HELLO 3 before the seed failed" % seed)
                return 1
    pending = None
    i = 0
    while i < ops:
        # the next batch: one command, or (piped) up to 8 in one write
        want = gen.rng.randint(1, 8) if piped else 1
        batch = []
        while len(batch) < want and i + len(batch) < ops:
            args, pending = (pending, None) if pending else (gen.command(), None)
            if name_of(args) in SOLO and batch:
                pending = args
                break
            batch.append(args)
            if name_of(args) in SOLO:
                break
        if len(batch) == 1 and name_of(batch[0]) == b"LCS" and len(batch[0]) >= 3 and \
                not dfr.lcs_guard(batch[0]):
            batch = [[b"STRLEN", batch[0][1]]]
        hist += batch
        why, bad_at = None, 0
        ds, rs = [], []
        try:
            ds = dfr.cd.call_many(batch)
        except (Closed, Hang) as e:
            why, bad_at = "dynvme: %s%s" % (e, "" if dfr.dv.alive() else " (the server exited: rc %s)" %
                                            dfr.dv.proc.returncode), len(dfr.cd.got)
        except ValueError as e:
            why, bad_at = "dynvme: malformed reply (%s)" % e, len(dfr.cd.got)
        if why is None and not crash_mode:
            try:
                rs = dfr.cr.call_many(batch)
            except (Closed, Hang, ValueError) as e:
                print("FAIL: seed %d: redis-server on %s: %s (a fuzzer bug)" % (seed, fmt(batch[0]), e))
                return 1
            for j, (args, d, r) in enumerate(zip(batch, ds, rs)):
                try:
                    why = dfr.compare(args, d, r)
                except (Closed, Hang) as e:
                    why = "while comparing: %s" % e
                if why:
                    bad_at = j
                    break
        elif why is None:
            for j, d in enumerate(ds):
                try:
                    check_reply(d)
                except (ValueError, IndexError) as e:
                    why, bad_at = "dynvme: reply does not parse (%s)" % e, j
                    break
        if verbose:
            for j, args in enumerate(batch):
                print("%4d%s %s\n     dynvme %r\n     redis  %r" % (
                    i + j, "|" if len(batch) > 1 else " ", fmt(args, 60),
                    ds[j][:200] if j < len(ds) else None, rs[j][:200] if j < len(rs) else None))
        if why:
            n = i + bad_at
            args = batch[min(bad_at, len(batch) - 1)]
            d = ds[bad_at] if bad_at < len(ds) else b""
            r = rs[bad_at] if bad_at < len(rs) else b""
            print("FAIL: seed %d command %d%s: %s\n  command: %s\n  dynvme:  %r\n  redis:   %r" % (
                seed, n, " (in a pipelined batch of %d)" % len(batch) if len(batch) > 1 else "", why, fmt(args),
                d[:400], r[:400]))
            print("  the commands before it (of %d):" % n)
            for a in hist[max(0, n - 11):n]:
                print("    " + fmt(a, 60))
            if len(batch) > 1:
                print("  its batch (sent in one write), from command %d:" % i)
                for a in batch:
                    print("    " + fmt(a, 60))
            print("  replay: %s" % replay_cmd(seed))
            rep = dfr.dv.sanitizer_report()
            if rep:
                print("  sanitizer report in the dynvme log:\n" + rep)
            return 1
        i += len(batch)
        last = batch[-1]
        if name_of(last) in RECONNECT or (name_of(last) == b"CLIENT" and len(last) > 1 and
                                          last[1].upper() == b"KILL"):
            dfr.connect()
    if not dfr.dv.alive():
        print("FAIL: seed %d: dynvme exited\n  replay: %s" % (seed, replay_cmd(seed)))
        return 1
    return 0


# ---------------------------------------------------------------- regressions

# Each fix the fuzzer led to: the commands (on an empty store) whose replies
# must agree; --regress runs them first (tests/server/fuzz_cmd.sh does).
def _c(*a):
    return [x if isinstance(x, bytes) else x.encode("latin-1") for x in a]


REGRESS = [
    # GETBIT read past dynvme's 1 MiB values: 0 as Redis (was "bit offset is
    # not an integer or out of range" from 8388608 on); SETBIT there: the
    # string size error (a normalized difference), 2^32 refused by both
    ("GETBIT offsets up to Redis's 2^32", [
        _c("SET", "k", "a"), _c("GETBIT", "k", "8388608"), _c("GETBIT", "k", "4294967295"),
        _c("GETBIT", "nokey", "4294967295"), _c("GETBIT", "k", "4294967296"), _c("SETBIT", "k", "4294967296", "1"),
        _c("SETBIT", "k", "8388608", "1"), _c("SETBIT", "k", "8388608", "2"), _c("GET", "k")]),
    # OBJECT ENCODING/REFCOUNT: INCRBYFLOAT's result is never int-encoded
    # (dynvme said int for "16"); RENAME keeps a raw value raw, COPY too
    # (both said embstr); COPY of a shared integer is an object of its own
    # (REFCOUNT 1); SETBIT makes the value raw even when the bit is unchanged
    ("encodings", [
        _c("INCRBYFLOAT", "f", "16"), _c("OBJECT", "ENCODING", "f"), _c("OBJECT", "REFCOUNT", "f"),
        _c("SET", "f", "1.5"), _c("INCRBYFLOAT", "f", "0.5"), _c("OBJECT", "ENCODING", "f"),
        _c("INCRBYFLOAT", "g", "1e17"), _c("OBJECT", "ENCODING", "g"),
        _c("INCRBYFLOAT", "h", "1"), _c("INCR", "h"), _c("OBJECT", "ENCODING", "h"), _c("OBJECT", "REFCOUNT", "h"),
        _c("SET", "a", "x"), _c("APPEND", "a", "y"), _c("RENAME", "a", "b"), _c("OBJECT", "ENCODING", "b"),
        _c("COPY", "b", "c"), _c("OBJECT", "ENCODING", "c"), _c("RENAMENX", "c", "d"), _c("OBJECT", "ENCODING", "d"),
        _c("SET", "n", "5"), _c("COPY", "n", "m"), _c("OBJECT", "REFCOUNT", "m"), _c("OBJECT", "ENCODING", "m"),
        _c("OBJECT", "REFCOUNT", "n"), _c("RENAME", "n", "r"), _c("OBJECT", "REFCOUNT", "r"),
        _c("COPY", "m", "m2"), _c("OBJECT", "REFCOUNT", "m2"), _c("INCR", "m"), _c("OBJECT", "REFCOUNT", "m"),
        _c("SET", "big", "12345"), _c("COPY", "big", "big2"), _c("OBJECT", "REFCOUNT", "big2"),
        _c("SET", "s", "a"), _c("SETBIT", "s", "1", "1"), _c("OBJECT", "ENCODING", "s"), _c("GET", "s"),
        _c("SET", "s2", "a"), _c("SETBIT", "s2", "0", "0"), _c("OBJECT", "ENCODING", "s2"),
        _c("INCRBYFLOAT", "e", "3"), _c("EXPIRE", "e", "1000"), _c("OBJECT", "ENCODING", "e"),
        _c("GETEX", "e", "PERSIST"), _c("OBJECT", "ENCODING", "e"), _c("GETSET", "e", "7"),
        _c("OBJECT", "ENCODING", "e")]),
    # COMMAND GETKEYS of a container: its subcommand looked up first (dynvme
    # gave OBJECT BOGUS's key, and "Invalid arguments" for OBJECT HELP)
    ("COMMAND GETKEYS containers", [
        _c("COMMAND", "GETKEYS", "OBJECT", "HELP"), _c("COMMAND", "GETKEYS", "OBJECT", "BOGUS", "f"),
        _c("COMMAND", "GETKEYS", "OBJECT", "BOGUS"), _c("COMMAND", "GETKEYS", "OBJECT", "ENCODING", "k"),
        _c("COMMAND", "GETKEYS", "object", "encoding"), _c("COMMAND", "GETKEYS", "OBJECT", "ENCODING", "a", "b"),
        _c("COMMAND", "GETKEYS", "OBJECT", "HELP", "x"), _c("COMMAND", "GETKEYS", "CLIENT", "BOGUS"),
        _c("COMMAND", "GETKEYS", "CLIENT", "KILL", "ID", "1"), _c("COMMAND", "GETKEYS", "CONFIG", "GET", "x"),
        _c("COMMAND", "GETKEYS", "FUNCTION", "BOGUS"), _c("COMMAND", "GETKEYS", "COMMAND", "GETKEYS", "GET", "k"),
        _c("COMMAND", "GETKEYS", "GET", "k")]),
    # CLIENT UNBLOCK with too many arguments: Redis's subcommand syntax
    # error (dynvme: "syntax error")
    ("CLIENT UNBLOCK arity", [
        _c("CLIENT", "UNBLOCK", "1", "TIMEOUT", "x"), _c("CLIENT", "unblock", "1", "ERROR", "x", "y"),
        _c("CLIENT", "UNBLOCK", "1", "TIMEOUT"), _c("CLIENT", "UNBLOCK", "1", "BOGUS")]),
    # CONFIG SET timeout: Redis's int config wording (dynvme: its own)
    ("CONFIG SET timeout values", [
        _c("CONFIG", "SET", "timeout", "save"), _c("CONFIG", "SET", "timeout", "-1"),
        _c("CONFIG", "SET", "timeout", "1.5"), _c("CONFIG", "SET", "timeout", ""),
        _c("CONFIG", "SET", "timeout", "99999999999"), _c("CONFIG", "SET", "timeout", "0"),
        _c("CONFIG", "GET", "timeout")]),
    # EXPIRETIME of a PXAT near 2^63: the rounding's signed sum overflowed
    # (-9223372036854775; UBSan: signed integer overflow)
    ("EXPIRETIME near 2^63", [
        _c("SET", "k", "v", "PXAT", "9223372036854775806"), _c("EXPIRETIME", "k"), _c("PEXPIRETIME", "k"),
        _c("PEXPIREAT", "k", "9223372036854775807"), _c("EXPIRETIME", "k"), _c("TTL", "k"),
        _c("EXPIREAT", "k", "9223372036854775"), _c("EXPIRETIME", "k"), _c("EXPIREAT", "k", "9223372036854776")]),
    # CONFIG SET of a compat parameter with a value Redis cannot parse:
    # Redis's error (dynvme: "dynvme keeps save at ''")
    ("CONFIG SET value syntax", [
        _c("CONFIG", "SET", "save", "appendonly"), _c("CONFIG", "SET", "save", "3600"),
        _c("CONFIG", "SET", "save", "3600  1"), _c("CONFIG", "SET", "save", "0 1"), _c("CONFIG", "SET", "save", ""),
        _c("CONFIG", "SET", "appendonly", "maybe"), _c("CONFIG", "SET", "appendonly", "NO"),
        _c("CONFIG", "SET", "maxmemory", "abc"), _c("CONFIG", "SET", "maxmemory", "-1"),
        _c("CONFIG", "SET", "maxmemory", "10x"), _c("CONFIG", "SET", "maxmemory", "0"),
        _c("CONFIG", "SET", "maxmemory-policy", "bogus"), _c("CONFIG", "SET", "maxmemory-policy", "noeviction")]),
    # pipelines (one write): GETEX with a bad time behind another command
    # kept its error in the reply buffer run() answers in (assertion
    # rb->len == before, conn.c: the server aborted)
    ("pipelined GETEX with a bad time", [
        _c("SET", "k", "1"), (_c("INCRBYFLOAT", "k", "-1.5"), _c("GETEX", "k", "PX", "abc"), _c("GETEX", "n", "EX", "x"),
                              _c("GETEX", "k", "EXAT", "-1"), _c("GET", "k"))]),
    # a read-modify-write, then FLUSHDB: the RMW's write came after the
    # flush (the key survived it)
    ("pipelined RMW then FLUSHDB", [
        (_c("SET", "a", "1"), _c("INCR", "n"), _c("APPEND", "a", "x"), _c("FLUSHDB"), _c("EXISTS", "n", "a"),
         _c("DBSIZE")), (_c("SETBIT", "b", "1", "1"), _c("GETSET", "c", "v"), _c("FLUSHALL"), _c("KEYS", "*"))]),
    # RENAME/COPY (commands of steps), then a command on their keys: it ran
    # between their steps (APPEND src appended to the source RENAME was
    # about to delete; RENAME then kept it)
    ("pipelined RENAME/COPY then their keys", [
        _c("SET", "s", "v"), (_c("RENAME", "s", "d"), _c("APPEND", "s", "x"), _c("GET", "s"), _c("GET", "d")),
        (_c("RENAMENX", "d", "e"), _c("INCRBYFLOAT", "d", "1.5"), _c("GETSET", "e", "w"), _c("EXISTS", "d", "e")),
        (_c("COPY", "e", "f"), _c("DEL", "e", "f"), _c("EXISTS", "e", "f")),
        (_c("SET", "g", "1"), _c("RENAME", "g", "h"), _c("FLUSHDB"), _c("DBSIZE"))]),
    # HELLO 3 behind commands still in flight: their replies came in RESP3
    # (MGET's nil as _)
    ("pipelined HELLO", [
        _c("SET", "a", "1"), (_c("MGET", "a", "nokey"), _c("GET", "nokey"), _c("INCR", "a"), _c("HELLO", "3"),
                              _c("MGET", "a", "nokey"), _c("HELLO", "2"), _c("GET", "nokey"))]),
    # CONFIG SET checks every name (unknown, immutable, repeated) before any
    # value, as Redis (dynvme judged appendonly's value before the repeat)
    ("CONFIG SET names before values", [
        _c("CONFIG", "SET", "appendonly", "no", "appendonly", "123"), _c("CONFIG", "SET", "timeout", "x", "databases", "1"),
        _c("CONFIG", "SET", "save", "bad", "nosuch", "1"), _c("CONFIG", "SET", "databases", "1", "nosuch", "1"),
        _c("CONFIG", "SET", "timeout", "0", "timeout", "0")]),
    # error texts holding an argument: a CR or LF at its end is trimmed,
    # inside it becomes a space (dynvme made the end one a space too);
    # HELLO's bad option whole (dynvme cut it at 128 bytes)
    ("error texts with arguments", [
        _c("SET", "k", "v"), _c("EXPIRE", "k", "1000", "NX", "bad\n"), _c("EXPIRE", "k", "1000", "a\r\nb\r\n"),
        _c("EXPIRE", "k", "1000", "\n\nx"), _c("HELLO", "3", "AUTH", "default", "pw", "q" * 200),
        _c("HELLO", "2", "x" * 300 + "\n"), _c("NOSUCH\n", "a\n")]),
    # times in the past: GETEX and the EXPIRE family delete at once
    ("past expiry times", [
        _c("SET", "k", "v"), _c("GETEX", "k", "EXAT", "1000"), _c("DBSIZE"), _c("SET", "k", "v"),
        _c("GETEX", "k", "PXAT", "1"), _c("DBSIZE"), _c("SET", "k", "v"), _c("EXPIREAT", "k", "1"), _c("DBSIZE"),
        _c("SET", "k", "v"), _c("PEXPIREAT", "k", "1000", "GT"), _c("DBSIZE"), _c("SET", "k", "v"),
        _c("EXPIRE", "k", "0", "NX"), _c("DBSIZE"), _c("SET", "k", "v", "EX", "1000"), _c("PEXPIRE", "k", "-1", "LT"),
        _c("DBSIZE")]),
]


def run_regress(dfr):
    """Each case on new connections and an empty store; a tuple of commands
    is one pipelined batch (one write)."""
    fails = 0
    for what, cmds in REGRESS:
        dfr.connect()
        for c in (dfr.cd, dfr.cr):
            c.call([b"FLUSHALL"])
        for item in cmds:
            batch = list(item) if isinstance(item, tuple) else [item]
            try:
                ds, rs = dfr.cd.call_many(batch), dfr.cr.call_many(batch)
            except (Closed, Hang, ValueError) as e:
                fails += 1
                print("FAIL: regression %r: %s\n  batch: %s" % (what, e, " | ".join(fmt(a) for a in batch)))
                rep = dfr.dv.sanitizer_report()
                print("  " + (rep or dfr.dv.log_tail(5)))
                dfr.close()
                dfr.dv.stop()
                dfr.dv.start()  # a fresh server for the next case
                break
            why = None
            for args, d, r in zip(batch, ds, rs):
                why = dfr.compare(args, d, r)
                if why:
                    fails += 1
                    print("FAIL: regression %r: %s\n  command: %s%s\n  dynvme:  %r\n  redis:   %r" % (
                        what, why, fmt(args), " (in the batch %s)" % " | ".join(fmt(a) for a in batch)
                        if len(batch) > 1 else "", d[:300], r[:300]))
                    break
            if why:
                break
    print("regressions: %d cases, %d failed" % (len(REGRESS), fails))
    return fails


# ---------------------------------------------------------------- main


def main(argv):
    build = os.environ.get("DV_BUILD", "build")
    seeds, ops, verbose, crash, regress, limit = range(1, 21), 200, False, False, False, None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--build":
            build = argv[i + 1]
            i += 1
        elif a == "--seed":
            s = int(argv[i + 1])
            seeds = range(s, s + 1)
            i += 1
        elif a == "--seeds":
            lo, hi = argv[i + 1].split("..")
            seeds = range(int(lo), int(hi) + 1)
            i += 1
        elif a == "--ops":
            ops = int(argv[i + 1])
            i += 1
        elif a == "--time-limit":
            limit = float(argv[i + 1])
            i += 1
        elif a == "--crash":
            crash = True
        elif a == "--regress":
            regress = True
        elif a == "-v":
            verbose = True
        else:
            print(__doc__)
            return 2
        i += 1
    if not os.path.isabs(build):
        build = os.path.join(ROOT, build)
    extra = (" --build %s" % os.path.relpath(build, ROOT) if os.path.relpath(build, ROOT) != "build" else "")
    extra += " --ops %d" % ops if ops != 200 else ""
    extra += " --crash" if crash else ""

    def replay_cmd(seed):
        return "tests/server/fuzz_cmd.py --seed %d%s" % (seed, extra)

    if not crash and not shutil.which("redis-server"):
        print("fuzz_cmd: redis-server not found (scripts/deps.sh test installs it); --crash runs dynvme alone")
        return 2
    if not os.access(os.path.join(build, "dynvme"), os.X_OK):
        print("fuzz_cmd: %s not found (build it first)" % os.path.join(build, "dynvme"))
        return 2
    tmp = tempfile.mkdtemp(prefix="dv-fuzzcmd.", dir=os.environ.get("DV_TEST_TMP"))
    dv = Server("dynvme", build, tmp)
    rd = None if crash else Server("redis", build, tmp)
    fails = ran = 0
    t0 = time.time()
    try:
        dv.start()
        if rd:
            rd.start()
        dfr = Differ(dv, rd, verbose)
        if regress and rd:
            fails += run_regress(dfr)
        for seed in seeds:
            if limit is not None and time.time() - t0 > limit:
                break
            ran += 1
            try:
                bad = run_seed(seed, dfr, ops, verbose, replay_cmd)
            except (Closed, Hang) as e:
                print("FAIL: seed %d: %s\n  replay: %s" % (seed, e, replay_cmd(seed)))
                bad = 1
            if bad:
                fails += 1
                dfr.close()
                for s in ([dv, rd] if rd else [dv]):  # fresh servers for the next seed
                    s.stop()
                    s.start()
        dfr.close()
        rc = dv.stop()
        rep = dv.sanitizer_report()
        if rep:
            print("FAIL: sanitizer report in the dynvme log:\n" + rep)
            fails += 1
        elif rc != 0:
            print("FAIL: dynvme exited with rc %s on SIGTERM\n%s" % (rc, dv.log_tail()))
            fails += 1
    finally:
        for s in (dv, rd):
            if s:
                s.stop()
        subprocess.call(["rm", "-rf", tmp])
    first = seeds[0] if len(seeds) else 0
    print("fuzz_cmd: seeds %d..%d (%d run, %d ops each, %s), %d failed, %.0fs" % (
        first, first + ran - 1, ran, ops, "dynvme alone" if crash else "against redis-server", fails,
        time.time() - t0))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
