"""nemesis.py - the faults of a torture run: what each kind does and how it is healed, and the
schedule (made from a seed, or read back from a run's schedule file to replay it).

A schedule is a list of steps {"at": seconds from the start of the faults, "kind", "hold":
seconds before it is healed, "arg": the choices made for it (targets by name, sizes)}.
Choices that depend on the cluster at run time (who leads, who is primary) are named by
role ("leader") and resolved when the step runs; the history records what they resolved to.
Steps may overlap (combined faults) when the schedule says so.
"""

import random

# kind -> whether it may overlap another fault in a combined schedule
KINDS = [
    "kill_node", "kill_coord", "kill_leader", "pause_node", "pause_leader",
    "partition_majority", "partition_bridge", "isolate_node", "oneway_loss", "packet_loss",
    "latency", "disk_full", "slow_disk", "clock_jump", "move", "drain",
]


def make_schedule(seed, kinds, n_faults, hold=(2.0, 8.0), gap=(1.0, 3.0), combined=0.0,
                  nodes=(), coords=(), every_kind_once=False):
    """n_faults steps drawn with `seed`: kinds at random (each of `kinds` once first, in a
    random order, when every_kind_once), holds and gaps from the ranges; with probability
    `combined` a step starts while the previous one still holds."""
    rnd = random.Random(seed)
    order = []
    if every_kind_once:
        order = list(kinds)
        rnd.shuffle(order)
    while len(order) < n_faults:
        order.append(rnd.choice(kinds))
    steps, t = [], 0.0
    prev_end = 0.0
    for kind in order:
        h = round(rnd.uniform(*hold), 2)
        if steps and rnd.random() < combined:
            at = round(max(steps[-1]["at"] + 0.5, prev_end - h / 2), 2)  # overlaps the last
        else:
            at = round(max(t, prev_end) + rnd.uniform(*gap), 2)
        steps.append({"at": at, "kind": kind, "hold": h, "arg": choose(rnd, kind, nodes,
                                                                       coords)})
        prev_end = max(prev_end, at + h)
        t = at
    return steps


def choose(rnd, kind, nodes, coords):
    nodes, coords = list(nodes), list(coords)
    everyone = coords + nodes
    if kind in ("kill_node", "pause_node", "isolate_node", "disk_full", "drain"):
        return {"target": rnd.choice(nodes)}
    if kind == "kill_coord":
        return {"target": rnd.choice(coords)}
    if kind in ("kill_leader", "pause_leader"):
        return {"target": "leader"}
    if kind == "partition_majority":
        hosts = everyone[:]
        rnd.shuffle(hosts)
        k = len(hosts) // 2
        return {"groups": [sorted(hosts[:k]), sorted(hosts[k:])]}
    if kind == "partition_bridge":
        hosts = everyone[:]
        rnd.shuffle(hosts)
        bridge = hosts.pop()
        k = len(hosts) // 2
        return {"bridge": bridge, "groups": [sorted(hosts[:k]), sorted(hosts[k:])]}
    if kind == "oneway_loss":
        a, b = rnd.sample(everyone, 2)
        return {"from": a, "to": b, "prob": rnd.choice([1.0, 0.5])}
    if kind == "packet_loss":
        return {"targets": sorted(rnd.sample(everyone, rnd.randint(1, 3))),
                "prob": rnd.choice([0.05, 0.1, 0.3])}
    if kind == "latency":
        return {"targets": sorted(rnd.sample(everyone, rnd.randint(1, len(everyone)))),
                "ms": rnd.choice([5, 20, 50])}
    if kind == "slow_disk":
        return {"target": rnd.choice(nodes), "write_ms": rnd.choice([0, 2, 10]),
                "fsync_ms": rnd.choice([20, 100, 300])}
    if kind == "clock_jump":
        return {"target": rnd.choice(everyone), "seconds": rnd.choice([30, 120, 600])}
    if kind == "move":
        return {"target": rnd.choice(nodes), "weight": rnd.choice([2, 3])}
    raise ValueError("unknown fault kind %s" % kind)


class Nemesis:
    """Runs steps against a Cluster; each inject returns what was done (for the history) and
    leaves a heal function."""

    def __init__(self, cluster, record):
        self.c, self.record = cluster, record
        self.active = {}  # step index -> heal function

    def proc(self, short):
        for p in self.c.procs.values():
            if p.short == short:
                return p
        raise KeyError(short)

    def inject(self, idx, step):
        kind, arg = step["kind"], step["arg"]
        c = self.c
        did = dict(arg)
        heal = None
        if kind in ("kill_node", "kill_coord", "kill_leader"):
            p = c.leader() if arg["target"] == "leader" else self.proc(arg["target"])
            if p is None:
                return self.skip(idx, step, "no leader known")
            did["target"] = p.short
            c.kill(p)

            def heal(p=p):
                if not p.running():
                    c.start(p)
        elif kind in ("pause_node", "pause_leader"):
            p = c.leader() if arg["target"] == "leader" else self.proc(arg["target"])
            if p is None:
                return self.skip(idx, step, "no leader known")
            did["target"] = p.short
            c.pause(p, True)

            def heal(p=p):
                c.pause(p, False)
        elif kind in ("partition_majority", "partition_bridge"):
            groups = [[self.proc(s) for s in g] for g in arg["groups"]]
            c.partition(groups)  # the bridge host is in no group: it reaches both sides
            heal = c.heal_net
        elif kind == "isolate_node":
            p = self.proc(arg["target"])
            others = [q for q in c.procs.values() if q is not p]
            c.partition([[p], others])
            heal = c.heal_net
        elif kind == "oneway_loss":
            c.block(self.proc(arg["from"]).host, self.proc(arg["to"]).host,
                    None if arg["prob"] >= 1 else arg["prob"])
            heal = c.heal_net
        elif kind == "packet_loss":
            for s in arg["targets"]:
                c.loss(self.proc(s), arg["prob"])
            heal = c.heal_net
        elif kind == "latency":
            if not c.net.can_delay():
                return self.skip(idx, step, "no packet delay here (no netem, no nfq_delay)")
            for s in arg["targets"]:
                c.delay(self.proc(s), arg["ms"])

            def heal(targets=arg["targets"]):
                for s in targets:
                    c.delay(self.proc(s), None)
        elif kind == "disk_full":
            p = self.proc(arg["target"])
            c.fill_disk(p)

            def heal(p=p):
                c.free_disk(p)
        elif kind == "slow_disk":
            p = self.proc(arg["target"])
            c.slow_disk(p, arg["write_ms"], arg["fsync_ms"])

            def heal(p=p):
                c.slow_disk(p, 0, 0)
        elif kind == "clock_jump":
            p = self.proc(arg["target"])
            if not c.jump_clock(p, arg["seconds"]):
                return self.skip(idx, step, "libfaketime not installed")
            heal = None  # a clock does not come back
        elif kind == "move":
            r = c.dvecctl("node", "weight", arg["target"], str(arg["weight"]))
            did["answer"] = (r.stdout + r.stderr).strip()[:200]

            def heal(t=arg["target"]):
                c.dvecctl("node", "weight", t, "1")
        elif kind == "drain":
            r = c.dvecctl("node", "drain", arg["target"])
            did["answer"] = (r.stdout + r.stderr).strip()[:200]

            def heal(t=arg["target"]):
                c.dvecctl("node", "undrain", t)
        else:
            raise ValueError("unknown fault kind %s" % kind)
        self.record({"f": "nemesis", "phase": "start", "step": idx, "kind": kind, "did": did})
        if heal is not None:
            self.active[idx] = (kind, heal)
        return did

    def skip(self, idx, step, why):
        self.record({"f": "nemesis", "phase": "skip", "step": idx, "kind": step["kind"],
                     "why": why})
        return None

    def heal(self, idx):
        kind, fn = self.active.pop(idx, (None, None))
        if fn is None:
            return
        try:
            fn()
            self.record({"f": "nemesis", "phase": "stop", "step": idx, "kind": kind})
        except Exception as e:  # noqa: BLE001 - a heal that fails is retried by heal_all
            self.record({"f": "nemesis", "phase": "stop", "step": idx, "kind": kind,
                         "error": str(e)[:200]})
            self.active[idx] = (kind, fn)

    def heal_all(self):
        """Heals every fault still on, then makes sure: every process runs, no packet filter,
        no delay, no full disk, no slow disk, every node undrained at weight 1."""
        for idx in list(self.active):
            self.heal(idx)
        c = self.c
        c.heal_net()
        exited = c.restart_dead()
        for p in c.procs.values():
            if p.kind == "node":
                c.free_disk(p)
                c.slow_disk(p, 0, 0)
        return exited
