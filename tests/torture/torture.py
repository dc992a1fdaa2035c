#!/usr/bin/env python3
"""torture.py - throws faults at a running dvec cluster while clients record every operation,
then proves from the history that nothing acknowledged was lost (docs/reliability.md).

  torture.py BUILD_ROOT SOURCE_ROOT [--seed N] [--faults N] [--kinds a,b,...] [--combined P]
             [--hold A-B] [--gap A-B] [--keys K] [--workers W] [--replay SCHEDULE.json]
             [--out DIR] [--recall-floor F] [--think-ms MS] [--no-clock] [--short]

The cluster: 3 coordinators and 4 nodes, each on a host of its own (network namespaces), one
collection of 6 partitions with 3 replicas. The schedule comes from the seed (printed) or from
--replay (the schedule.json of an earlier run: the same faults at the same times against the
same targets; the workers' operations come from the seed in it). --short: the suite's form,
every fault kind once. --no-clock: no libfaketime (no clock jumps; for sanitizer builds, whose
runtime must be the first library). Output: TAP on stdout; in --out (default a temporary directory, kept
when something fails): history.jsonl, schedule.json, report.txt and the processes' logs.
Needs root, iproute2, iptables and util-linux (SKIP without); libfaketime for clock jumps.
"""

import json
import os
import random
import resource
import shutil
import signal
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import checker  # noqa: E402
import cluster as cl  # noqa: E402
import nemesis as nm  # noqa: E402
from workload import COLL, History, Worker, vec  # noqa: E402

PARTITIONS, REPLICAS = 6, 3


class Tap:
    def __init__(self):
        self.n = self.failed = 0

    def ok(self, cond, desc, detail=()):
        self.n += 1
        print("%s %d - %s" % ("ok" if cond else "not ok", self.n, desc), flush=True)
        if not cond:
            self.failed += 1
            for ln in (detail if isinstance(detail, (list, tuple)) else
                       str(detail).splitlines())[:60]:
                print("# " + str(ln))
        return bool(cond)

    def note(self, s):
        for ln in str(s).splitlines():
            print("# " + ln, flush=True)


def parse(argv):
    o = {"seed": None, "faults": 30, "kinds": nm.KINDS, "combined": 0.3, "hold": (2.0, 8.0),
         "gap": (1.0, 3.0), "keys": 2000, "workers": 6, "replay": None, "out": None,
         "recall_floor": 0.9, "short": False, "clocks": True, "think_ms": 0, "pos": []}
    i = 1
    while i < len(argv):
        a = argv[i]
        val = argv[i + 1] if i + 1 < len(argv) else None
        if a in ("--short", "--no-clock"):
            o["short" if a == "--short" else "clocks"] = a == "--short"
            i += 1
            continue
        if not a.startswith("--"):
            o["pos"].append(a)
            i += 1
            continue
        if val is None:
            raise SystemExit("%s needs a value" % a)
        key = a[2:].replace("-", "_")
        if key in ("seed", "faults", "keys", "workers", "think_ms"):
            o[key] = int(val)
        elif key in ("combined", "recall_floor"):
            o[key] = float(val)
        elif key in ("hold", "gap"):
            lo, _, hi = val.partition("-")
            o[key] = (float(lo), float(hi or lo))
        elif key == "kinds":
            o[key] = [k for k in val.split(",") if k]
            bad = [k for k in o[key] if k not in nm.KINDS]
            if bad:
                raise SystemExit("unknown fault kind %s (known: %s)" % (bad, ", ".join(nm.KINDS)))
        elif key in ("replay", "out"):
            o[key] = val
        else:
            raise SystemExit("unknown option %s" % a)
        i += 2
    if o["short"]:
        o.update({"faults": len(o["kinds"]), "combined": 0.0, "hold": (2.0, 4.0),
                  "gap": (1.0, 2.0), "keys": 1000, "workers": 4})
        if o["seed"] is None:
            o["seed"] = 17
    if o["seed"] is None:
        o["seed"] = random.SystemRandom().randrange(1, 1 << 31)
    return o


def on_term(signum, frame):
    # once: a second SIGTERM (timeout(1) passing on the one it got) must not cut the cleanup
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise SystemExit(128 + signum)  # runs the cleanup in main's finally


def main(argv):
    signal.signal(signal.SIGTERM, on_term)
    # core dumps of the processes (they inherit the limit): a crash comes with a backtrace
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    o = parse(argv)
    if len(o["pos"]) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    build, src = o["pos"]
    why = cl.have_tools()
    if why:
        print("1..0 # SKIP " + "; ".join(why))
        return 0
    sys.path.insert(0, os.path.join(src, "client", "python"))
    from dvec import Client  # noqa: E402

    tap = Tap()
    out = o["out"] or tempfile.mkdtemp(prefix="dvec-torture-")
    os.makedirs(out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="dvec-torture-work-")
    if o["replay"]:
        with open(o["replay"]) as f:
            sched = json.load(f)
        o["seed"], steps = sched["seed"], sched["steps"]
        o["keys"], o["workers"] = sched.get("keys", o["keys"]), sched.get("workers", o["workers"])
    else:
        steps = None
    tap.note("seed %d; replay: %s %s %s --replay %s" % (
        o["seed"], sys.argv[0], build, src, os.path.join(out, "schedule.json")))
    hist = History(os.path.join(out, "history.jsonl"))
    c = None
    stop = threading.Event()
    workers = []
    crashes = []
    try:
        c = cl.Cluster(build, work, clocks=o["clocks"])
        nodes = [c.procs[n].short for n in c.nnames]
        coords = [c.procs[n].short for n in c.cnames]
        if steps is None:
            steps = nm.make_schedule(o["seed"], o["kinds"], o["faults"], o["hold"], o["gap"],
                                     o["combined"], nodes, coords, every_kind_once=True)
        with open(os.path.join(out, "schedule.json"), "w") as f:
            json.dump({"seed": o["seed"], "keys": o["keys"], "workers": o["workers"],
                       "steps": steps}, f, indent=1)
        hist.write({"f": "start", "seed": o["seed"], "keys": o["keys"], "workers": o["workers"],
                    "dim": 16, "partitions": PARTITIONS, "replicas": REPLICAS,
                    "recall_floor": o["recall_floor"], "steps": len(steps)})

        def alive():
            s = c.status()
            ids = {n["id"] for n in s["nodes"] if n["state"] == "alive"}
            return set(nodes) <= ids and s
        st = c.wait(alive, 90, 0.5)
        if not tap.ok(st, "%d coordinators and %d nodes, each on a host of its own, are up" %
                      (len(coords), len(nodes)), c.tail_logs()):
            return 1
        urls = c.urls(http=True)
        admin = Client(urls, timeout=30)
        admin.create_collection(COLL, 16, partitions=PARTITIONS, replication=REPLICAS)
        # the load: every key once, value 0, as writes of the history (process "load")
        dim, keys = 16, o["keys"]
        for s in range(0, keys, 250):
            ids = list(range(s, min(keys, s + 250)))
            rec = {"f": "upsert", "p": "load", "ids": ids, "v": 0, "t0": hist.now()}
            admin.upsert(COLL, ids, [vec(k, 0, dim) for k in ids], [{"v": 0} for _ in ids])
            rec.update({"t1": hist.now(), "ok": "ok"})
            hist.write(rec)
        tap.ok(admin.count(COLL) == keys, "collection of %d partitions x %d replicas, %d keys "
               "loaded" % (PARTITIONS, REPLICAS, keys))

        def clients():
            start = random.Random(o["seed"]).randrange(len(urls))
            rot = urls[start:] + urls[:start]
            return {rc: Client(rot, timeout=10, read_consistency=rc)
                    for rc in (None, "majority", "all")}
        for w in range(o["workers"]):
            wk = Worker(w, o["workers"], keys, dim, clients(), hist, o["seed"], stop,
                        o["think_ms"] / 1000.0)
            for k in wk.own:  # the load wrote every key once with value 0
                wk.known[k].add({"f": "upsert", "ids": [k], "v": 0, "ok": "ok", "t0": 0,
                                 "t1": 0})
            workers.append(wk)
        for wk in workers:
            wk.start()

        nem = nm.Nemesis(c, hist.write)
        known_dead = set()

        def watch():
            """Processes that exited without being killed: a crash, recorded and restarted."""
            for p in c.procs.values():
                if p.proc is not None and p.proc.poll() is not None and \
                        p.proc.returncode != -9 and p.name not in known_dead:
                    tail = []
                    with open(p.log, errors="replace") as f:
                        tail = f.read().splitlines()[-15:]
                    bt = c.backtrace(p, out)
                    crashes.append({"proc": p.short, "exit": p.proc.returncode, "log": tail,
                                    "core": bt})
                    hist.write({"f": "crash", "proc": p.short, "exit": p.proc.returncode,
                                "log": tail, "core": bt})
                    c.start(p)

        # ---- the faults ---------------------------------------------------------------------
        events = []
        for idx, s in enumerate(steps):
            events.append((s["at"], 1, idx, "inject"))
            events.append((s["at"] + s["hold"], 0, idx, "heal"))
        events.sort()
        t_start = time.monotonic()
        time.sleep(2)
        kinds_done = set()
        for at, _, idx, what in events:
            while time.monotonic() - t_start < at + 2:
                watch()
                hist.flush()
                time.sleep(0.1)
            if what == "inject":
                did = nem.inject(idx, steps[idx])
                if did is not None:
                    kinds_done.add(steps[idx]["kind"])
                    tap.note("%7.1f s  %-18s %s" % (hist.now(), steps[idx]["kind"],
                                                   json.dumps(did)[:150]))
            else:
                nem.heal(idx)
        tap.ok(True, "%d faults of %d kinds injected (%s)" % (
            len(steps), len(kinds_done), ", ".join(sorted(kinds_done))))
        skipped = sorted(set(s["kind"] for s in steps) - kinds_done)
        if o["short"]:
            tap.ok(not skipped, "every fault kind was injected at least once", skipped)

        # ---- heal, let the cluster recover under load, then quiesce -------------------------
        exited = nem.heal_all()
        def undrained(n):
            c.dvecctl("node", "undrain", n)  # refused for a node not draining: fine
            return c.dvecctl("node", "weight", n, "1").returncode == 0
        for n in nodes:
            c.wait(lambda n=n: undrained(n), 60, 1)
        time.sleep(5)
        watch()
        stop.set()
        for wk in workers:
            wk.join(60)
        errs = {}
        for wk in workers:
            for k, v in wk.errors.items():
                errs[k] = errs.get(k, 0) + v
        tap.ok(not errs, "the workers ran without an error of their own", errs)

        def converged():
            s = c.status()
            if any(n["state"] != "alive" for n in s["nodes"] if n["id"] in nodes):
                return None
            if s.get("moves"):
                return None
            for col in s.get("collections", []):
                if col["name"] == COLL:
                    rs = col.get("replica_states", {})
                    return rs.get("active", 0) == PARTITIONS * REPLICAS and s
            return None
        conv = c.wait(converged, 180, 1)
        st = None
        try:
            st = c.status()
        except RuntimeError as e:
            st = str(e)
        tap.ok(conv, "healed: every node alive, no move under way, all %d replicas active" %
               (PARTITIONS * REPLICAS), [json.dumps(st)[:3000]] + c.tail_logs())
        watch()
        tap.ok(not crashes and not exited, "no process exited by itself (a crash)",
               [json.dumps(x)[:2000] for x in crashes] + [str(exited)])

        # ---- the final state ----------------------------------------------------------------
        final = {"f": "final", "t0": hist.now()}
        strict = Client(urls, timeout=60, read_consistency="all")
        state, bad_vec = {}, []
        for s in range(0, keys, 200):
            ids = list(range(s, min(keys, s + 200)))
            got = {r.id: r for r in strict.get(COLL, ids, with_payload=True, with_vector=True)}
            for k in ids:
                r = got.get(k)
                if r is None:
                    state[str(k)] = None
                    continue
                p = r.payload or {}
                state[str(k)] = [p.get("v"), p.get("u")]
                want = vec(k, p.get("v"), dim) if isinstance(p.get("v"), int) else None
                if want is None or any(abs(a - b) > 1e-3 for a, b in zip(want, r.vector)):
                    bad_vec.append(k)
        final["state"] = state
        final["bad_vectors"] = bad_vec
        final["count"] = strict.count(COLL)
        final["scroll_ids"] = sum(1 for _ in strict.scroll_all(COLL, page=500,
                                                                 with_payload=False))
        r = c.dvecctl("collections", "verify", COLL, "--json", timeout_ms=60000)
        try:
            v = json.loads(r.stdout)
        except ValueError:
            v = {"error": (r.stdout + r.stderr)[:1000]}
        v["identical"] = r.returncode == 0
        final["verify"] = v
        # recall@10 against brute force over the final state
        present = {int(k): vec(int(k), s[0], dim) for k, s in state.items()
                   if s is not None and isinstance(s[0], int)}
        rnd = random.Random(o["seed"])
        hits = total = 0
        pk = list(present)
        for _ in range(50):
            q = [rnd.uniform(-1, 1) for _ in range(dim)]
            truth = sorted(pk, key=lambda k: sum((a - b) ** 2 for a, b in zip(q, present[k])))
            truth = set(truth[:10])
            got = strict.search(COLL, q, k=10, ef=128)
            hits += len(truth & {h.id for h in got})
            total += len(truth)
        final["recall"] = round(hits / total, 4) if total else None
        final["t1"] = hist.now()
        hist.write(final)
        hist.close()

        # ---- the checker --------------------------------------------------------------------
        ck = checker.check_file(os.path.join(out, "history.jsonl"))
        with open(os.path.join(out, "report.txt"), "w") as f:
            checker.report(ck, f, limit=200)
        with open(os.path.join(out, "report.txt")) as f:
            rep = f.read()
        tap.note(rep.split("\nviolations:")[0])
        tap.ok(not ck.violations, "the checker found no violation in the history (%d)" %
               len(ck.violations), rep.splitlines()[2:80])
        return 1 if tap.failed else 0
    except Exception as e:  # noqa: BLE001 - a broken step is a failed test, with the logs
        import traceback
        tap.ok(False, "the run stopped: %s: %s" % (type(e).__name__, e),
               traceback.format_exc().splitlines() + (c.tail_logs() if c else []))
        return 1
    finally:
        stop.set()
        try:
            hist.close()
        except Exception:  # noqa: BLE001
            pass
        if c is not None:
            for p in c.procs.values():
                if os.path.exists(p.log):
                    shutil.copy(p.log, out)
            c.close()
        shutil.rmtree(work, ignore_errors=True)
        print("1..%d" % tap.n, flush=True)
        keep = tap.failed or o["out"]
        if keep:
            print("# history, schedule, report and logs: %s" % out)
        else:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
