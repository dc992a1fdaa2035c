"""workload.py - the clients of a torture run and the history they write.

Keys 0..keys-1; key k belongs to worker k % workers, which alone writes it, one operation at
a time (so a key's writes are ordered); every write carries a value never used before. A
worker draws its next operation with its own seeded random: upserts, deletes and payload
updates of its own keys, gets and scrolls of any keys, searches and counts, each read with
a consistency drawn from default (one replica), "majority" and "all". Every operation is
recorded when it completes, as one JSON line (docs/reliability.md, "The history").
"""

import json
import random
import threading
import time

from checker import Key

READ_LEVELS = (None, None, "majority", "all")
COLL = "torture"


def vec(k, v, dim):
    r = random.Random(k * 1_000_003 + v)
    return [round(r.uniform(-1, 1), 4) for _ in range(dim)]


class History:
    """The history file: one JSON object per line, appended under a lock, times in seconds
    from the run's start (monotonic)."""

    def __init__(self, path):
        self.f = open(path, "w")
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        self.n = 0

    def now(self):
        return round(time.monotonic() - self.t0, 4)

    def write(self, rec):
        with self.lock:
            rec.setdefault("t", self.now())
            rec["i"] = self.n
            self.n += 1
            self.f.write(json.dumps(rec, separators=(",", ":")) + "\n")

    def flush(self):
        with self.lock:
            self.f.flush()

    def close(self):
        with self.lock:
            self.f.close()


def outcome(exc):
    """ok / fail (refused with a 4xx: nothing happened) / unknown (anything else)."""
    if exc is None:
        return "ok"
    status = getattr(exc, "status", 0)
    if 400 <= status < 500 and status not in (408, 429):
        return "fail"
    return "unknown"


def state_of_record(r):
    p = r.payload or {}
    return [p.get("v"), p.get("u")] if p else [None, None]


class Worker(threading.Thread):
    WEIGHTS = [("upsert", 30), ("delete", 6), ("set_payload", 12), ("get", 20),
               ("search", 14), ("scroll", 10), ("count", 4)]

    def __init__(self, wid, n_workers, keys, dim, clients, hist, seed, stop, think=0.0):
        super().__init__(daemon=True, name="worker-%d" % wid)
        self.wid, self.keys, self.dim = wid, keys, dim
        self.clients = clients  # consistency level -> Client
        self.hist, self.stop, self.think = hist, stop, think
        self.rnd = random.Random(seed * 1000 + wid)
        self.own = list(range(wid, keys, n_workers))
        self.known = {k: Key() for k in self.own}  # what this worker knows of its keys
        self.seq = 0
        self.ops = [k for k, w in self.WEIGHTS for _ in range(w)]
        self.errors = {}

    def value(self):
        self.seq += 1
        return (self.wid + 1) * 100_000_000 + self.seq

    def run(self):
        while not self.stop.is_set():
            f = self.rnd.choice(self.ops)
            if self.think:
                time.sleep(self.think)
            try:
                getattr(self, "op_" + f)()
            except Exception as e:  # noqa: BLE001 - the harness itself must not die
                self.errors[repr(e)[:120]] = self.errors.get(repr(e)[:120], 0) + 1
                time.sleep(0.05)

    def call(self, rec, fn):
        rec["p"] = self.wid
        rec["t0"] = self.hist.now()
        exc = None
        res = None
        try:
            res = fn()
        except Exception as e:  # noqa: BLE001 - recorded as the outcome
            exc = e
        rec["t1"] = self.hist.now()
        rec["ok"] = outcome(exc)
        if exc is not None:
            rec["err"] = str(exc)[:300]
        return rec, res

    def write_done(self, rec):
        for k in rec["ids"]:
            self.known[k].add(rec)
        self.hist.write(rec)
        if rec["ok"] != "ok":
            time.sleep(0.02)

    # ---- writes (own keys) --------------------------------------------------------------

    def op_upsert(self):
        ids = sorted(self.rnd.sample(self.own, self.rnd.randint(1, 8)))
        v = self.value()
        c = self.clients[None]
        rec, _ = self.call({"f": "upsert", "ids": ids, "v": v},
                           lambda: c.upsert(COLL, ids, [vec(k, v, self.dim) for k in ids],
                                            [{"v": v} for _ in ids]))
        self.write_done(rec)

    def op_delete(self):
        ids = sorted(self.rnd.sample(self.own, self.rnd.randint(1, 3)))
        c = self.clients[None]
        rec, _ = self.call({"f": "delete", "ids": ids}, lambda: c.delete(COLL, ids))
        self.write_done(rec)

    def op_set_payload(self):
        # only keys surely present: a payload update of a missing point is refused
        sure = [k for k in self.own if None not in self.known[k].P[-1]]
        if not sure:
            return self.op_upsert()
        ids = sorted(self.rnd.sample(sure, min(len(sure), self.rnd.randint(1, 4))))
        u = self.value()
        c = self.clients[None]
        rec, _ = self.call({"f": "set_payload", "ids": ids, "u": u},
                           lambda: c.set_payload(COLL, {"u": u}, ids))
        self.write_done(rec)

    # ---- reads (any keys) ---------------------------------------------------------------

    def level(self):
        return self.rnd.choice(READ_LEVELS)

    def op_get(self):
        ids = sorted(self.rnd.sample(range(self.keys), self.rnd.randint(1, 10)))
        rc = self.level()
        c = self.clients[rc]
        rec, res = self.call({"f": "get", "ids": ids, "rc": rc},
                             lambda: c.get(COLL, ids, with_payload=True))
        if res is not None:
            got = {r.id: state_of_record(r) for r in res}
            rec["res"] = {str(k): got.get(k) for k in ids}
        self.hist.write(rec)

    def op_search(self):
        rc = self.level()
        c = self.clients[rc]
        q = [self.rnd.uniform(-1, 1) for _ in range(self.dim)]
        rec, res = self.call({"f": "search", "rc": rc},
                             lambda: c.search(COLL, q, k=10, with_payload=True))
        if res is not None:
            rec["res"] = [[h.id] + state_of_record(h) for h in res]
        self.hist.write(rec)

    def op_scroll(self):
        rc = self.level()
        c = self.clients[rc]
        lo = self.rnd.randrange(self.keys)
        limit = self.rnd.choice([10, 50])
        rec, res = self.call({"f": "scroll", "rc": rc, "from": lo, "limit": limit},
                             lambda: c.scroll(COLL, limit, lo, with_payload=True))
        if res is not None:
            pts, _next = res
            rec["res"] = [[r.id] + state_of_record(r) for r in pts]
            rec["next"] = _next
        self.hist.write(rec)

    def op_count(self):
        rc = self.level()
        c = self.clients[rc]
        rec, res = self.call({"f": "count", "rc": rc}, lambda: c.count(COLL))
        if res is not None:
            rec["res"] = res
        self.hist.write(rec)
