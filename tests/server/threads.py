"""threads.sh's load: CONNS connections, each pipelines SET then GET of its
own KEYS keys (read-your-writes on one connection), then one connection
reads every value back. Prints one summary line for the shell script."""
import sys
import threading

import redis

port, conns, keys = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
errors, threads_seen = [], set()


def worker(n):
    try:
        r = redis.Redis(port=port, socket_timeout=60)
        threads_seen.add(r.client_info().get("thread"))
        p = r.pipeline(transaction=False)
        for k in range(keys):
            p.set("t:%d:%d" % (n, k), "v%d.%d" % (n, k))
            p.get("t:%d:%d" % (n, k))
        res = p.execute()
        for k in range(keys):
            if res[2 * k] is not True or res[2 * k + 1] != b"v%d.%d" % (n, k):
                errors.append("conn %d key %d: %r %r" % (n, k, res[2 * k], res[2 * k + 1]))
                break
    except Exception as e:  # noqa: BLE001
        errors.append("conn %d: %r" % (n, e))


ts = [threading.Thread(target=worker, args=(i,)) for i in range(conns)]
for t in ts:
    t.start()
for t in ts:
    t.join()
r = redis.Redis(port=port, socket_timeout=30)
vals = r.mget(["t:%d:%d" % (n, k) for n in range(conns) for k in range(keys)])
want = [b"v%d.%d" % (n, k) for n in range(conns) for k in range(keys)]
bad = sum(1 for a, b in zip(vals, want) if a != b)
print("errors=%d threads=%d bad=%d dbsize=%d" % (len(errors), len(threads_seen), bad, r.dbsize()))
for e in errors[:5]:
    print(e)
