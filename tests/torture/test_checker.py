#!/usr/bin/env python3
"""test_checker.py - the history checker on made-up histories: it accepts what the cluster
may do (unknown writes applied or not, stale default reads) and reports each kind of broken
promise (a lost acknowledged write, a value never written, a deleted point back, a stale
strict read, a count out of range, replicas that differ, low recall). TAP on stdout."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checker  # noqa: E402

N = 0
FAILED = 0


def ok(cond, desc, detail=""):
    global N, FAILED
    N += 1
    print("%s %d - %s" % ("ok" if cond else "not ok", N, desc))
    if not cond:
        FAILED += 1
        print("# " + str(detail)[:2000])


def W(f, ids, t0, t1, ok="ok", **kw):
    d = {"f": f, "ids": ids, "t0": t0, "t1": t1, "ok": ok, "p": 0}
    d.update(kw)
    return d


def R(f, t0, t1, res, rc=None, **kw):
    d = {"f": f, "t0": t0, "t1": t1, "ok": "ok", "p": 1, "rc": rc, "res": res}
    if f == "get":
        d["ids"] = [int(k) for k in res]
    d.update(kw)
    return d


def final(state, t=100, count=None, verify=True, recall=1.0):
    present = sum(1 for s in state.values() if s is not None)
    return {"f": "final", "t0": t, "state": {str(k): v for k, v in state.items()},
            "count": present if count is None else count, "scroll_ids": present,
            "verify": {"identical": verify}, "recall": recall, "bad_vectors": []}


def run(ops):
    c = checker.Checker()
    c.header = {"recall_floor": 0.9}
    import json
    c.load([json.dumps(o) for o in ops])
    c.header = c.header or {"recall_floor": 0.9}
    return c.run()


def kinds(v):
    return sorted(x["kind"] for x in v)


base = [W("upsert", [1, 2], 0, 1, v=10)]

v = run(base + [W("upsert", [1], 2, 3, v=11), W("set_payload", [1], 4, 5, u=12),
                final({1: [11, 12], 2: [10, None]})])
ok(v == [], "a history that kept every promise passes", v)

v = run(base + [W("upsert", [1], 2, 3, v=11), final({1: [10, None], 2: [10, None]})])
ok(kinds(v) == ["final"] and "lost" in v[0]["what"],
   "an acknowledged write replaced by an older value is reported as lost", v)

v = run(base + [W("upsert", [1], 2, 3, v=11, ok="unknown"), final({1: [11, None], 2: [10, None]})])
ok(v == [], "a write with an unknown outcome may have happened", v)
v = run(base + [W("upsert", [1], 2, 3, v=11, ok="unknown"), final({1: [10, None], 2: [10, None]})])
ok(v == [], "... or not", v)

v = run(base + [W("upsert", [1], 2, 3, v=11, ok="fail"), final({1: [11, None], 2: [10, None]})])
ok(kinds(v) == ["final"], "a refused write (4xx) that shows up anyway is reported", v)

v = run(base + [W("upsert", [1], 2, 3, v=11, ok="unknown"), W("upsert", [1], 4, 5, v=12),
                final({1: [11, None], 2: [10, None]})])
ok(kinds(v) == ["final"],
   "an unknown write applied after a later acknowledged one (it overwrote it) is reported", v)

v = run(base + [final({1: [99, None], 2: [10, None]})])
ok(kinds(v) == ["final"] and "never written" in v[0]["what"], "a value never written is "
   "reported", v)

v = run(base + [W("delete", [1], 2, 3), final({1: [10, None], 2: [10, None]})])
ok(kinds(v) == ["final"], "a point whose delete was acknowledged, back at the end, is reported", v)

v = run(base + [W("upsert", [1], 2, 3, v=11),
                R("get", 4, 5, {"1": [10, None]}, rc="all"),
                final({1: [11, None], 2: [10, None]})])
ok(kinds(v) == ["get"], "a strict read (consistency all) older than an acknowledged write is "
   "reported", v)

v = run(base + [W("upsert", [1], 2, 3, v=11),
                R("get", 4, 5, {"1": [10, None]}),
                final({1: [11, None], 2: [10, None]})])
ok(v == [], "a default read (one replica) may be a moment stale", v)

v = run(base + [W("upsert", [1], 2, 3, v=11),
                R("get", 20, 21, {"1": [10, None]}),
                final({1: [11, None], 2: [10, None]})])
ok(kinds(v) == ["stale"], "... not more than the staleness bound (5 s)", v)

v = run(base + [W("upsert", [1], 6, 7, v=11),
                R("get", 4, 5, {"1": [11, None]}),
                final({1: [11, None], 2: [10, None]})])
ok(kinds(v) == ["get"], "a read that sees a write begun after it ended is reported", v)

v = run(base + [W("upsert", [1], 2, 6, v=11),
                R("get", 3, 4, {"1": [11, None]}, rc="all"),
                R("get", 3, 4, {"1": [10, None]}, rc="all"),
                final({1: [11, None], 2: [10, None]})])
ok(v == [], "a strict read concurrent with a write may see either state", v)

v = run(base + [R("search", 2, 3, [[2, 10, None], [7, 5, None]]),
                final({1: [10, None], 2: [10, None]})])
ok(kinds(v) == ["search"], "a search hit of a key never written is reported", v)

v = run(base + [R("count", 2, 3, 3, rc="all"), R("count", 2, 3, 1, rc="all"),
                R("count", 2, 3, 2, rc="all"), final({1: [10, None], 2: [10, None]})])
ok(kinds(v) == ["count", "count"], "strict counts outside the keys surely/possibly present "
   "are reported", v)

v = run(base + [R("scroll", 2, 3, [[2, 10, None]], rc="all", limit=10, next=None,
                  **{"from": 0}),
                R("scroll", 2, 3, [[2, 10, None]], rc="all", limit=10, next=3, **{"from": 0}),
                final({1: [10, None], 2: [10, None]})])
ok(kinds(v) == ["scroll"], "a strict scroll page that leaves out a present key is reported", v)

v = run(base + [final({1: [10, None], 2: [10, None]}, verify=False, recall=0.5)])
ok(kinds(v) == ["recall", "replicas"], "replicas that differ and low recall are reported", v)

v = run(base + [{"f": "crash", "proc": "node-1", "exit": -11, "log": []},
                final({1: [10, None], 2: [10, None]})])
ok(kinds(v) == ["crash"], "a process that crashed is reported", v)

v = run(base)
ok(kinds(v) == ["final"], "a history without its final read is reported", v)

# the nemesis' schedule: the same seed gives the same faults; --short covers every kind
import nemesis  # noqa: E402

nodes, coords = ["node-%d" % i for i in range(1, 5)], ["coord-%d" % i for i in range(1, 4)]
a = nemesis.make_schedule(17, nemesis.KINDS, 40, (2, 8), (1, 3), 0.3, nodes, coords, True)
b = nemesis.make_schedule(17, nemesis.KINDS, 40, (2, 8), (1, 3), 0.3, nodes, coords, True)
c = nemesis.make_schedule(18, nemesis.KINDS, 40, (2, 8), (1, 3), 0.3, nodes, coords, True)
ok(a == b and a != c, "a schedule is a function of its seed (replay gives the same faults)")
ok({s["kind"] for s in a[:len(nemesis.KINDS)]} == set(nemesis.KINDS),
   "every fault kind comes once before any repeats (every_kind_once)")
ok(all(x["at"] < y["at"] for x, y in zip(a, a[1:])) and
   any(y["at"] < x["at"] + x["hold"] for x, y in zip(a, a[1:])),
   "steps start in order; with combined > 0 some start while the previous one holds")

print("1..%d" % N)
sys.exit(1 if FAILED else 0)
