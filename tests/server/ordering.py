"""ordering.sh's load (issue 8 items 5 and 11): seeded random pipelines of
GET, SET (plain, NX, XX, GET, EX), SETNX, DEL, MSET, MGET, EXISTS, GETDEL,
DBSIZE over a few keys (on a server that holds no other key), each pipeline sent in one write on one connection, every
reply compared with a model of Redis's semantics (commands of a
connection run one after another, in order). A command must never see
the effect of a command the same client sent after it, and must see
every earlier one. DV_SERVER=redis checks the model against
redis-server. Usage: ordering.py PORT ROUNDS SEED"""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dvresp  # noqa: E402
from dvresp import Err, Status  # noqa: E402

port, rounds, seed = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
KEYS = ["o:%d" % i for i in range(5)] + ["o:{same}:%d" % i for i in range(3)]
PIPE = 1500


def step(rng, model, n):
    """One random command and the reply the model expects."""
    k = rng.choice(KEYS)
    v = b"v%d" % n
    r = rng.random()
    if r < 0.30:
        return ["GET", k], model.get(k)
    if r < 0.50:
        model[k] = v
        return ["SET", k, v], Status("OK")
    if r < 0.56:
        old = model.get(k)
        if old is None:
            model[k] = v
        return ["SET", k, v, "NX"], Status("OK") if old is None else None
    if r < 0.61:
        old = model.get(k)
        if old is not None:
            model[k] = v
        return ["SET", k, v, "XX"], Status("OK") if old is not None else None
    if r < 0.65:
        old = model.get(k)
        model[k] = v
        return ["SET", k, v, "GET"], old
    if r < 0.68:
        old = model.get(k)
        if old is None:
            model[k] = v
        return ["SETNX", k, v], 1 if old is None else 0
    if r < 0.70:
        model[k] = v
        return ["SET", k, v, "EX", "100"], Status("OK")
    if r < 0.80:
        ks = [k] + rng.sample(KEYS, rng.randint(0, 2))
        n_del = 0
        for x in ks:
            if x in model:
                del model[x]
                n_del += 1
        return ["DEL"] + ks, n_del
    if r < 0.86:
        ks = [k] + [rng.choice(KEYS) for _ in range(rng.randint(0, 3))]
        args = ["MSET"]
        for i, x in enumerate(ks):
            val = v + b".%d" % i
            model[x] = val
            args += [x, val]
        return args, Status("OK")
    if r < 0.92:
        ks = [k] + [rng.choice(KEYS) for _ in range(rng.randint(0, 3))]
        return ["MGET"] + ks, [model.get(x) for x in ks]
    if r < 0.955:
        ks = [k] + [rng.choice(KEYS) for _ in range(rng.randint(0, 3))]
        return ["EXISTS"] + ks, sum(1 for x in ks if x in model)
    if r < 0.965:  # a fresh server: the script's keys are all there are
        return ["DBSIZE"], len(model)
    old = model.pop(k, None)
    return ["GETDEL", k], old


def main():
    c = dvresp.Conn(port, timeout=60)
    c.call("DEL", *KEYS)
    model, bad, total = {}, 0, 0
    for rnd in range(rounds):
        rng = random.Random(seed * 1000 + rnd)
        cmds = [step(rng, model, rnd * PIPE + i) for i in range(PIPE)]
        c.send(b"".join(dvresp.encode(a) for a, _ in cmds))
        for i, (args, want) in enumerate(cmds):
            got = c.read()
            total += 1
            if got != want:
                bad += 1
                if bad <= 5:
                    ctx = [" ".join(x if isinstance(x, str) else x.decode() for x in a)
                           for a, _ in cmds[max(0, i - 4):i + 1]]
                    print("FAIL: seed %d round %d command %d: %s\n  expected %r\n  got      %r\n  last commands: %s"
                          % (seed, rnd, i, " ".join(x if isinstance(x, str) else x.decode() for x in args),
                             want, got, " | ".join(ctx)))
                if isinstance(got, Err):
                    continue
    # The store agrees with the model at the end.
    final = c.call("MGET", *KEYS)
    if final != [model.get(x) for x in KEYS]:
        bad += 1
        print("FAIL: final values %r, model %r" % (final, [model.get(x) for x in KEYS]))
    print("%d commands in %d pipelines of %d, %d wrong" % (total, rounds, PIPE, bad))
    sys.exit(1 if bad else 0)


main()
