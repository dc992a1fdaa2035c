#!/usr/bin/env python3
"""checker.py - proves from a torture history (docs/reliability.md, "The history") that the
cluster kept its promises, or shows the operations that prove it did not.

The model: every key (point id) is a register whose state is absent or (v, u): v the value of
the upsert that wrote it (vector and payload "v" derive from it), u the value of the last
set_payload after that upsert (payload "u"), or None. Each key is written by one worker only,
one operation at a time, so the writes of a key are totally ordered by the worker; values
are unique per write. Walking a key's writes in that order gives P[m], the states the key may
be in after its m-th write: an acknowledged write moves every state, a write whose outcome is
unknown (a timeout, a 5xx, a broken connection) may or may not have happened, a write refused
with a 4xx did not happen. Then:

  - final state: read at the end with consistency "all" on a quiet, healed cluster, every key
    must be in P[last]: the last acknowledged value or a later (unknown) one; an acknowledged
    delete stays deleted; no value that was never written;
  - reads during the run (get, scroll, search hits, count): a strict read (consistency "all" or
    "majority") of a key over [t0, t1] must see a state of P[i..j] (i: writes completed
    before t0, j: writes begun before t1); a default read (one replica, which may lag) a
    state of P[0..j]: old perhaps, but never one that was not written or not yet begun, and
    not older than the writes acknowledged 5 s (the header's stale_bound_s) before it began;
  - counts: between the keys surely present and those possibly present over the read
    (a strict count costs a pass over every key: 500 of them at most, spread over the run);
  - the final vectors are the ones the values derive from; every replica of each partition
    is identical (the digests of `dvecctl collections verify`); recall@10 of searches against
    brute force over the final state is at least the floor the run asked for.

A write whose value is unknown may only take effect at its place in the worker's order: one
applied after a later acknowledged write of the same key is reported (it overwrote an
acknowledged value). Usage: checker.py HISTORY.jsonl [--json]. Exit 0: no violation.
"""

import bisect
import json
import sys

STRICT = ("all", "majority")


def state_of(rec):
    """A read's [v, u] or None as the checker's state: None or (v, u)."""
    if rec is None:
        return None
    return (rec[0], rec[1] if len(rec) > 1 else None)


def apply(op, s):
    if op["f"] == "upsert":
        return (op["v"], None)
    if op["f"] == "delete":
        return None
    if op["f"] == "set_payload":
        return (s[0], op["u"]) if s is not None else None
    raise ValueError("not a write: %s" % op["f"])


class Key:
    """One key's writes in order and the states possible after each."""

    def __init__(self):
        self.ops = []      # writes, in the owner's order
        self.t0 = []       # their invocation times
        self.t1 = []       # their completion times
        self.P = [frozenset([None])]
        self.first = {None: 0}   # state -> the first m with it in P[m]
        self.first_present = None  # the first m with a present state in P[m]

    def add(self, op):
        prev = self.P[-1]
        moved = frozenset(apply(op, s) for s in prev)
        if op["ok"] == "ok":
            nxt = moved
        elif op["ok"] == "fail":
            nxt = prev
        else:
            nxt = prev | moved
        self.ops.append(op)
        self.t0.append(op["t0"])
        self.t1.append(op["t1"])
        self.P.append(nxt)
        m = len(self.P) - 1
        for st in nxt:
            if st not in self.first:
                self.first[st] = m
                if st is not None and self.first_present is None:
                    self.first_present = m

    def window(self, t0, t1, strict):
        """The states a read over [t0, t1] may see (strict) or the states before t1."""
        j = bisect.bisect_left(self.t0, t1)         # writes begun before the read ended
        if not strict:
            return {st for st, m in self.first.items() if m <= j}
        i = min(bisect.bisect_left(self.t1, t0), j)  # writes completed before it began
        out = set()
        for m in range(i, j + 1):
            out |= self.P[m]
        return out

    def may_see(self, seen, t0, t1, strict):
        """Whether a read over [t0, t1] may see state `seen`."""
        if not strict:
            m = self.first.get(seen)
            return m is not None and m <= bisect.bisect_left(self.t0, t1)
        return seen in self.window(t0, t1, True)

    def ever(self):
        return set(self.first)


def fmt_state(s):
    return "absent" if s is None else ("v=%s u=%s" % s if s[1] is not None else "v=%s" % s[0])


class Checker:
    def __init__(self):
        self.keys = {}
        self.reads = []
        self.header = None
        self.final = None
        self.nemesis = []
        self.crashes = []
        self.violations = []
        self.stale_s = 5.0  # how far a default read may lag (the history's header may say)
        self.strict_counts = []
        self.max_strict_counts = 500
        self.present_since = None
        self.stats = {"ops": 0, "by_kind": {}, "acked_writes": 0, "acked_key_writes": 0,
                      "unknown_writes": 0, "failed_writes": 0, "reads_checked": 0,
                      "keys_checked": 0, "faults": 0}

    def key(self, k):
        kk = self.keys.get(k)
        if kk is None:
            kk = self.keys[k] = Key()
        return kk

    def load(self, lines):
        writes = []
        for n, ln in enumerate(lines, 1):
            ln = ln.strip()
            if not ln:
                continue
            try:
                op = json.loads(ln)
            except ValueError as e:
                raise ValueError("history line %d is not JSON: %s" % (n, e)) from None
            f = op.get("f")
            if f == "start":
                self.header = op
                self.stale_s = float(op.get("stale_bound_s", self.stale_s))
            elif f == "final":
                self.final = op
            elif f == "crash":
                self.crashes.append(op)
            elif f == "nemesis":
                self.nemesis.append(op)
                if op.get("phase") == "start":
                    self.stats["faults"] += 1
            elif f in ("upsert", "delete", "set_payload"):
                writes.append(op)
            else:
                self.reads.append(op)
            if f not in ("start", "final", "nemesis", "crash"):
                self.stats["ops"] += 1
                bk = self.stats["by_kind"].setdefault(f, {"ok": 0, "fail": 0, "unknown": 0})
                bk[op["ok"]] = bk.get(op["ok"], 0) + 1
        # A key's writes are sequential (one owner, the loader before it): by invocation time.
        writes.sort(key=lambda o: (o["t0"], o.get("i", 0)))
        for op in writes:
            if op["ok"] == "ok":
                self.stats["acked_writes"] += 1
                self.stats["acked_key_writes"] += len(op["ids"])
            elif op["ok"] == "fail":
                self.stats["failed_writes"] += 1
            else:
                self.stats["unknown_writes"] += 1
            for k in op["ids"]:
                kk = self.key(k)
                if kk.ops and kk.ops[-1]["t1"] > op["t0"] and kk.ops[-1].get("p") == op.get("p"):
                    self.violate("history", k, None, "two writes of one key overlap in time "
                                 "(the harness broke its own rule)", [kk.ops[-1], op])
                kk.add(op)

    def violate(self, kind, key, op, what, ops=()):
        self.violations.append({"kind": kind, "key": key, "what": what,
                                "op": op, "ops": list(ops)})

    def history_of(self, k, t=None, n=6):
        """The last n writes of key k begun before t (all when t is None)."""
        kk = self.keys.get(k)
        if kk is None:
            return []
        j = len(kk.ops) if t is None else bisect.bisect_left(kk.t0, t)
        return kk.ops[max(0, j - n):j]

    def check_state(self, kind, k, seen, op, strict):
        kk = self.keys.get(k)
        if kk is None:
            if seen is not None:
                self.violate(kind, k, op, "key %s was never written but reads %s" %
                             (k, fmt_state(seen)))
            return
        if kk.may_see(seen, op["t0"], op["t1"], strict):
            if strict or kk.may_see(seen, op["t0"] - self.stale_s, op["t1"], True):
                return
            # a default read may lag a moment (a router with a map a beat behind), not more
            self.violate("stale", k, op, "%s: key %s reads %s, older than a write acknowledged "
                         "more than %g s before the read began; possible then: %s" % (
                             kind, k, fmt_state(seen), self.stale_s, ", ".join(sorted(
                                 fmt_state(s) for s in kk.window(op["t0"] - self.stale_s,
                                                                 op["t1"], True)))),
                         self.history_of(k, op["t1"]))
            return
        allowed = kk.window(op["t0"], op["t1"], strict)
        if seen is not None and seen not in kk.ever():
            what = "%s: %s was never written to key %s" % (kind, fmt_state(seen), k)
        elif strict:
            what = ("%s (consistency %s): key %s reads %s; possible then: %s" %
                    (kind, op.get("rc"), k, fmt_state(seen),
                     ", ".join(sorted(fmt_state(s) for s in allowed))))
        else:
            what = ("%s: key %s reads %s, a state of a write not begun before the read "
                    "ended" % (kind, k, fmt_state(seen)))
        self.violate(kind, k, op, what, self.history_of(k, op["t1"]))

    def check_reads(self):
        for op in self.reads:
            if op["ok"] != "ok":
                continue
            f = op["f"]
            strict = op.get("rc") in STRICT
            res = op.get("res")
            self.stats["reads_checked"] += 1
            if f == "get":
                for k in op["ids"]:
                    self.check_state("get", k, state_of(res.get(str(k))), op, strict)
            elif f == "scroll":
                prev = None
                for rec in res:
                    k = rec[0]
                    if prev is not None and k <= prev:
                        self.violate("scroll", k, op, "scroll returned ids out of order or "
                                     "twice (%s after %s)" % (k, prev))
                    prev = k
                    self.check_state("scroll", k, state_of(rec[1:]), op, strict)
                # the last page (no next offset) covers every id from `from` on; a page with a
                # next offset may be short (it ends before the first cursor a replica names)
                lo = op.get("from")
                if lo is not None and "next" in op and op["next"] is None:
                    self.check_scroll_gap(op, {r[0] for r in res}, lo, None, strict)
            elif f == "search":
                for hit in res:
                    self.check_state("search", hit[0], state_of(hit[1:3]), op, strict)
            elif f == "count":
                if not strict:
                    self.check_count_default(op)
                else:
                    self.strict_counts.append(op)
        # Strict counts cost a pass over every key each: at most max_strict_counts of them,
        # spread evenly over the run, are checked.
        sc = self.strict_counts
        step = max(1, -(-len(sc) // self.max_strict_counts))
        for op in sc[::step]:
            self.check_count(op, True)
        self.stats["strict_counts_checked"] = len(sc[::step])

    def check_scroll_gap(self, op, got, lo, hi, strict):
        """A strict scroll page shorter than its limit covers every id from `lo` on: a key
        surely present all along that it left out was lost."""
        if not strict:
            return
        for k, kk in self.keys.items():
            if k < lo or (hi is not None and k > hi) or k in got:
                continue
            allowed = kk.window(op["t0"], op["t1"], True)
            if None not in allowed:
                self.violate("scroll", k, op, "strict scroll from %s left out key %s, present "
                             "all along (%s)" % (lo, k, ", ".join(
                                 sorted(fmt_state(s) for s in allowed))),
                             self.history_of(k, op["t1"]))

    def check_count_default(self, op):
        """A default count is at most the keys possibly present when it ended (a replica may
        lag, so no lower bound)."""
        if self.present_since is None:
            ts = []
            for kk in self.keys.values():
                if kk.first_present is not None:
                    # the write that first made it present began at t0[first_present - 1]
                    ts.append(kk.t0[kk.first_present - 1])
            self.present_since = sorted(ts)
        maybe = bisect.bisect_left(self.present_since, op["t1"])
        if op["res"] > maybe:
            self.violate("count", None, op, "count (consistency default) %d above the %d keys "
                         "possibly present then" % (op["res"], maybe))

    def check_count(self, op, strict):
        sure = maybe = 0
        t0, t1 = op["t0"], op["t1"]
        for kk in self.keys.values():
            if not strict:
                fp = kk.first_present
                if fp is not None and fp <= bisect.bisect_left(kk.t0, t1):
                    maybe += 1
                continue
            allowed = kk.window(t0, t1, True)
            if None not in allowed:
                sure += 1
            if allowed != {None}:
                maybe += 1
        n = op["res"]
        lo = sure if strict else 0
        if not (lo <= n <= maybe):
            self.violate("count", None, op, "count (consistency %s) %d outside [%d, %d]: the "
                         "keys surely and possibly present then" % (op.get("rc"), n, lo, maybe))

    def check_final(self):
        fin = self.final
        if fin is None:
            self.violate("final", None, None, "the history has no final read (the run did not "
                         "finish)")
            return
        states = fin.get("state", {})
        t = fin["t0"]
        for k, kk in self.keys.items():
            seen = state_of(states.get(str(k)))
            self.stats["keys_checked"] += 1
            allowed = kk.P[-1]
            if seen in allowed:
                continue
            last_ok = [o for o in kk.ops if o["ok"] == "ok"]
            lo = last_ok[-1] if last_ok else None
            if seen is not None and seen not in kk.ever():
                what = "final: key %s holds %s, never written" % (k, fmt_state(seen))
            else:
                what = ("final: key %s holds %s, not its last acknowledged write (%s %s) nor a "
                        "later one: an acknowledged write was lost; possible: %s" %
                        (k, fmt_state(seen), lo["f"] if lo else "-",
                         (lo.get("v", lo.get("u", "")) if lo else ""),
                         ", ".join(sorted(fmt_state(s) for s in allowed))))
            self.violate("final", k, None, what, self.history_of(k, t))
        for k in states:
            if int(k) not in self.keys and states[k] is not None:
                self.violate("final", int(k), None, "final: key %s exists but was never "
                             "written" % k)
        for k in fin.get("bad_vectors", []):
            self.violate("vector", k, None, "final: key %s: its vector is not the one its "
                         "value %s derives from" % (k, fmt_state(state_of(states.get(str(k))))))
        present = sum(1 for s in states.values() if s is not None)
        if fin.get("count") is not None and fin["count"] != present:
            self.violate("final", None, None, "final count %d != %d points read" %
                         (fin["count"], present))
        if fin.get("scroll_ids") is not None and fin["scroll_ids"] != present:
            self.violate("final", None, None, "final scroll saw %d points, %d read by id" %
                         (fin["scroll_ids"], present))
        v = fin.get("verify")
        if v is None or not v.get("identical"):
            self.violate("replicas", None, None, "replicas differ at the end: %s" %
                         json.dumps(v)[:2000])
        floor = (self.header or {}).get("recall_floor", 0.0)
        rec = fin.get("recall")
        if rec is None or rec < floor:
            self.violate("recall", None, None, "recall@10 against brute force %s < floor %s" %
                         (rec, floor))

    def run(self):
        for op in self.crashes:
            self.violate("crash", None, None, "%s exited by itself (status %s): %s" % (
                op["proc"], op["exit"], " | ".join(op.get("log", [])[-5:])))
        self.check_reads()
        self.check_final()
        return self.violations


def check_file(path):
    c = Checker()
    with open(path) as f:
        c.load(f)
    c.run()
    return c


def report(c, out=sys.stdout, limit=20):
    s = c.stats
    fin = c.final or {}
    print("history: %d operations (%s), %d faults" % (
        s["ops"], ", ".join("%s %d/%d/%d" % (k, v["ok"], v["fail"], v["unknown"])
                            for k, v in sorted(s["by_kind"].items())), s["faults"]), file=out)
    print("checked: %d acknowledged writes (%d key writes), %d unknown, %d refused; %d reads "
          "(%d strict counts); %d keys at the end; recall@10 %s; replicas identical: %s" % (
              s["acked_writes"], s["acked_key_writes"], s["unknown_writes"],
              s["failed_writes"], s["reads_checked"], s.get("strict_counts_checked", 0),
              s["keys_checked"], fin.get("recall"),
              (fin.get("verify") or {}).get("identical")), file=out)
    print("violations: %d" % len(c.violations), file=out)
    for v in c.violations[:limit]:
        print("  [%s] %s" % (v["kind"], v["what"]), file=out)
        if v["op"]:
            print("    read: %s" % json.dumps(v["op"])[:600], file=out)
        for o in v["ops"]:
            print("    write: %s" % json.dumps(o)[:300], file=out)


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print("usage: checker.py HISTORY.jsonl [--json]", file=sys.stderr)
        return 2
    c = check_file(argv[1])
    if "--json" in argv:
        json.dump({"stats": c.stats, "violations": c.violations}, sys.stdout)
        print()
    else:
        report(c)
    return 1 if c.violations else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
