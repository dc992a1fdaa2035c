"""workload.py - what the multi-host tests share: TAP output, a writer that never stops and
remembers what was acknowledged, and the check that nothing acknowledged was lost."""

import random
import sys
import threading
import time


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, desc, detail=""):
        self.n += 1
        print("%s %d - %s" % ("ok" if cond else "not ok", self.n, desc), flush=True)
        if not cond:
            self.failed += 1
            for ln in str(detail).splitlines()[:40]:
                print("# " + ln)
        return bool(cond)

    def first_ok_after(self, t):
        """Seconds from t to the first acknowledgement after it (None: none yet)."""
        with self.lock:
            later = [x for x in self.ok_times if x > t]
        return later[0] - t if later else None

    def finish(self):
        print("1..%d" % self.n, flush=True)
        return 1 if self.failed else 0


def skip(why):
    print("1..0 # SKIP " + why)
    sys.exit(0)


def vec(i, v, dim):
    r = random.Random(i * 7919 + v)
    return [r.uniform(-1, 1) for _ in range(dim)]


class Writer(threading.Thread):
    """Upserts batches of `batch` random ids of 0..n-1 with a new value each, until stopped;
    remembers per id the last acknowledged value and the values of writes that failed after
    it (those may or may not have been applied). Swap .client to follow new endpoints."""

    def __init__(self, client, coll, n, dim, batch=20, seed=7):
        super().__init__(daemon=True)
        self.client, self.coll, self.n, self.dim, self.batch = client, coll, n, dim, batch
        self.stop = threading.Event()
        self.acked = {i: 0 for i in range(n)}  # loaded with value 0 before the writer starts
        self.maybe = {}
        self.n_ok = self.n_fail = 0
        self.seq = 1_000_000 + seed * 10_000_000
        self.rnd = random.Random(seed)
        self.lock = threading.Lock()
        self.last_ok = time.monotonic()
        self.longest_gap = 0.0
        self.ok_times = []  # when each batch was acknowledged (monotonic)
        self.longest_call = 0.0  # the slowest upsert call, answered or failed

    def run(self):
        while not self.stop.is_set():
            ids = self.rnd.sample(range(self.n), self.batch)
            self.seq += 1
            v = self.seq
            t_call = time.monotonic()
            try:
                self.client.upsert(self.coll, ids, [vec(i, v, self.dim) for i in ids],
                                   [{"v": v} for _ in ids])
                now = time.monotonic()
                with self.lock:
                    self.longest_call = max(self.longest_call, now - t_call)
                    for i in ids:
                        self.acked[i] = v
                        self.maybe.pop(i, None)
                    self.n_ok += 1
                    self.longest_gap = max(self.longest_gap, now - self.last_ok)
                    self.last_ok = now
                    self.ok_times.append(now)
            except Exception:  # noqa: BLE001 - a failed write is recorded, not fatal
                with self.lock:
                    self.longest_call = max(self.longest_call, time.monotonic() - t_call)
                    for i in ids:
                        self.maybe.setdefault(i, set()).add(v)
                    self.n_fail += 1
                time.sleep(0.05)

    def first_ok_after(self, t):
        """Seconds from t to the first acknowledgement after it (None: none yet)."""
        with self.lock:
            later = [x for x in self.ok_times if x > t]
        return later[0] - t if later else None

    def finish(self):
        self.stop.set()
        self.join(60)


def load(client, coll, n, dim):
    for s in range(0, n, 500):
        ids = list(range(s, min(n, s + 500)))
        client.upsert(coll, ids, [vec(i, 0, dim) for i in ids], [{"v": 0} for _ in ids])


def lost_writes(client, writer):
    """(ids read, [(id, acknowledged value, value read)] for every id whose value is neither
    its last acknowledged one nor one written without an answer after it)."""
    got = {}
    ids = list(range(writer.n))
    for s in range(0, writer.n, 500):
        for rec in client.get(writer.coll, ids[s:s + 500], with_payload=True):
            got[rec.id] = (rec.payload or {}).get("v")
    bad = []
    for i in ids:
        want, v = writer.acked.get(i), got.get(i)
        if v != want and v not in writer.maybe.get(i, ()):
            bad.append((i, want, v))
    return len(got), bad
