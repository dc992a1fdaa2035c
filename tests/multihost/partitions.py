#!/usr/bin/env python3
"""partitions.py - dvec on several hosts: 3 coordinators and 4 nodes, each on a host of its own
(a network namespace with its own address, netsim.py), talking by names only
(coord-N.dvec.test, node-N.dvec.test in every hosts file). Links are cut instead of processes
killed, under a writer that never stops:

  - a node that holds primaries is isolated: its partitions fail over, writes go on; healed,
    it catches up and every replica is identical again;
  - the raft leader is isolated: the majority elects another, the old one refuses map
    changes; healed, every coordinator has the same map;
  - a packet delay (1 ms each way on every host): search and upsert latency and rate through
    the cluster, with and without it (--bench prints the table; the short form only checks
    that the delayed cluster serves).

At the end every acknowledged write is checked and every replica compared.

TAP on stdout. Args: BUILD_ROOT SOURCE_ROOT [--long] [--bench]. --long repeats the cuts
(docs/benchmarks.md, docs/operations.md); DVEC_MH_NODE_ARGS adds flags to every dvec-shard
("--workers 8"). Needs root, iproute2 and util-linux (SKIP without).
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netsim  # noqa: E402
from workload import Tap, Writer, load, lost_writes, skip, vec  # noqa: E402

N_COORD, N_NODE = 3, 4
N_POINTS = 4000
DIM = 16
COLL = "mh"
DOMAIN = "dvec.test"


class Proc:
    def __init__(self, name, host, argv, log):
        self.name, self.host, self.argv, self.log = name, host, argv, log
        self.proc = None


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    long_form, bench = "--long" in sys.argv, "--bench" in sys.argv
    if len(args) != 2:
        print("usage: partitions.py BUILD_ROOT SOURCE_ROOT [--long] [--bench]", file=sys.stderr)
        return 2
    build, src = args
    if os.geteuid() != 0:
        skip("needs root (network namespaces)")
    for tool in ("ip", "tc", "unshare"):
        if shutil.which(tool) is None:
            skip("%s not found" % tool)
    sys.path.insert(0, os.path.join(src, "client", "python"))
    from dvec import Client  # noqa: E402

    coord_exe = os.path.join(build, "coordinator", "dvec-coord")
    shard_exe = os.path.join(build, "shard", "dvec-shard")
    dvecctl = os.path.join(build, "client", "dvecctl", "dvecctl")
    tap = Tap()
    work = tempfile.mkdtemp(prefix="dvec-mh-")
    net = netsim.Net("dm%d" % (os.getpid() % 100000), subnet="10.78",
                     delayer=os.path.join(build, "tests", "multihost", "nfq_delay"))
    procs = {}
    writer = None
    try:
        client = net.add_host(["client." + DOMAIN])
        netsim.enter_netns(client.ns)
        cnames = ["coord-%d.%s" % (i, DOMAIN) for i in range(1, N_COORD + 1)]
        group = ",".join("%d=%s:7310=tcp://%s:7300" % (i + 1, n, n) for i, n in enumerate(cnames))
        for i, n in enumerate(cnames):
            h = net.add_host([n])
            d = os.path.join(work, "coord-%d" % (i + 1))
            os.makedirs(d)
            procs[n] = Proc(n, h, [coord_exe, "--id", str(i + 1), "--data_dir", d,
                                   "--group", group, "--listen", "tcp://0.0.0.0:7300",
                                   "--http", "http://0.0.0.0:7380",
                                   "--request_timeout", "3s"],
                            os.path.join(work, "coord-%d.log" % (i + 1)))
        coords = ",".join("tcp://%s:7300" % n for n in cnames)
        for i in range(1, N_NODE + 1):
            n = "node-%d.%s" % (i, DOMAIN)
            h = net.add_host([n])
            d = os.path.join(work, "node-%d" % i)
            os.makedirs(d)
            procs[n] = Proc(n, h, [shard_exe, "--node_id", "node-%d" % i, "--data_dir", d,
                                   "--listen", "tcp://0.0.0.0:7400",
                                   "--advertise", "tcp://%s:7400" % n,
                                   "--http", "http://0.0.0.0:7480",
                                   "--search_listen", "tcp://0.0.0.0:7401",
                                   "--coordinators", coords, "--report_interval", "250ms"]
                            + os.environ.get("DVEC_MH_NODE_ARGS", "").split(),
                            os.path.join(work, "node-%d.log" % i))
        for p in procs.values():
            p.proc = net.spawn(p.host, p.argv, {"PATH": "/usr/bin:/bin"}, p.name.split(".")[0],
                               log=p.log)

        cips = [procs[n].host.ip for n in cnames]
        urls = ",".join("tcp://%s:7300" % ip for ip in cips)

        def status(via=None):
            r = subprocess.run([dvecctl, "--coordinators", via or urls, "--timeout", "5000",
                                "status", "--json"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=30)
            if r.returncode != 0:
                raise RuntimeError(r.stderr)
            import json
            return json.loads(r.stdout)

        def alive(ids):
            s = status()
            return set(ids) <= {n["id"] for n in s["nodes"] if n["state"] == "alive"} and s
        node_ids = ["node-%d" % i for i in range(1, N_NODE + 1)]
        st = netsim.wait_until(lambda: alive(node_ids), 60, 0.5)
        if not tap.ok(st, "3 coordinators and 4 nodes on hosts of their own, by name: the "
                      "nodes registered and are alive"):
            return tap.finish()
        tap.ok(all(c["raft_addr"].startswith("coord-") for c in st["coordinators"]) and
               all(n["url"].startswith("tcp://node-") for n in st["nodes"]),
               "the map names coordinators and nodes by DNS name, never by IP",
               [st["coordinators"], st["nodes"]])

        rest = Client(["http://%s:7380" % ip for ip in cips], timeout=10)
        rest.create_collection(COLL, DIM, partitions=8, replication=2)
        load(rest, COLL, N_POINTS, DIM)
        tap.ok(rest.count(COLL) == N_POINTS, "%d points loaded (8 partitions, rf 2)" % N_POINTS)
        writer = Writer(Client(["http://%s:7380" % ip for ip in cips], timeout=10), COLL,
                        N_POINTS, DIM)
        writer.start()
        time.sleep(1)

        rounds = 3 if long_form else 1
        for rnd in range(rounds):
            # ---- a node holding primaries, isolated ----------------------------------------
            def primaries():
                r = subprocess.run([dvecctl, "--coordinators", urls, "collections", "info",
                                    COLL, "--json"], stdout=subprocess.PIPE, text=True,
                                   timeout=30)
                import json
                return {p["id"]: p["nodes"][0] for p in json.loads(r.stdout)["partitions"]}
            prim = primaries()
            counts = {}
            for node in prim.values():
                counts[node] = counts.get(node, 0) + 1
            # the node that is primary of the most partitions (rounds take the others in turn)
            victim = sorted(counts, key=lambda n: (-counts[n], n))[rnd % len(counts)]
            led = sorted(p for p, n in prim.items() if n == victim)
            host = procs["%s.%s" % (victim, DOMAIN)].host
            net.link(host, False)
            t0 = time.monotonic()
            t_cut = t0
            dead = netsim.wait_until(lambda: any(
                n["id"] == victim and n["state"] in ("suspect", "dead")
                for n in status()["nodes"]), 20, 0.25)
            t_dead = time.monotonic() - t0
            # Writes touching its partitions wait out request_timeout, then fail over: they go
            # on while it is still cut off (the first acknowledgement after the cut; 30 s at
            # most, a loaded machine is slow).
            resumed = netsim.wait_until(lambda: writer.first_ok_after(t_cut + 0.5), 30, 0.1)
            tap.ok(dead and resumed,
                   "round %d: %s isolated (link down): marked down after %.1f s; writes went on "
                   "while it was cut off, the first acknowledged %s s after the cut" %
                   (rnd + 1, victim, t_dead, "%.1f" % (resumed + 0.5) if resumed else "-"))
            # and every partition it led has another primary while it is still cut off (the
            # leader fails them over one by one once it is suspect)
            after = netsim.wait_until(
                lambda: (lambda a: all(a[p] != victim for p in led) and a)(primaries()), 20, 0.25)
            after = after or primaries()
            tap.ok(led and all(after[p] != victim for p in led),
                   "round %d: %s was primary of partitions %s; they failed over to %s" %
                   (rnd + 1, victim, led, [after[p] for p in led]))
            net.link(host, True)
            back = netsim.wait_until(lambda: alive([victim]), 30, 0.25)

            def in_sync():
                s = status()
                for c in s.get("collections", []):
                    if c["name"] == COLL:
                        rs = c.get("replica_states", {})
                        return rs.get("active", 0) == 8 * 2 and s
                return None
            synced = netsim.wait_until(in_sync, 60, 0.5)
            tap.ok(back and synced, "round %d: healed: %s alive again and every replica in "
                   "sync" % (rnd + 1, victim))

            # ---- the raft leader, isolated --------------------------------------------------
            st = status()
            lid = st["coordinator"]["leader_id"]
            lname = cnames[lid - 1]
            lhost = procs[lname].host
            others = ",".join("tcp://%s:7300" % procs[n].host.ip for n in cnames if n != lname)
            net.link(lhost, False)
            t0 = time.monotonic()

            def new_leader():
                s = status(others)
                nl = s["coordinator"]["leader_id"]
                return nl and nl != lid and nl
            nl = netsim.wait_until(new_leader, 20, 0.2)
            took = time.monotonic() - t0
            # the old leader, cut off, must not accept a map change
            r = subprocess.run(["ip", "netns", "exec", lhost.ns, dvecctl, "--coordinators",
                                "tcp://127.0.0.1:7300", "--timeout", "4000", "collections",
                                "create", "split%d" % rnd, "--dim", "4"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            tap.ok(nl and r.returncode != 0,
                   "round %d: leader (coordinator %d) isolated: coordinator %s elected on the "
                   "majority side in %.1f s; the old one refuses a map change" %
                   (rnd + 1, lid, nl, took), r.stdout)
            # the majority keeps changing the map (the new leader learns which nodes are
            # alive from their next reports: a create may be refused for a moment)
            def create_major():
                r = subprocess.run([dvecctl, "--coordinators", others, "collections", "create",
                                    "major%d" % rnd, "--dim", "4"], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
                return r if r.returncode == 0 else None
            mk = netsim.wait_until(create_major, 15, 0.5)
            mk = mk or subprocess.CompletedProcess([], 1, "create kept failing")
            net.link(lhost, True)

            def converged():
                epochs = set()
                for n in cnames:
                    s = status("tcp://%s:7300" % procs[n].host.ip)
                    names = sorted(c["name"] for c in s.get("collections", []))
                    epochs.add((s["map_epoch"], tuple(names), s["coordinator"]["leader_id"]))
                return len(epochs) == 1 and epochs
            conv = netsim.wait_until(converged, 30, 0.5)
            if not conv:
                for n in cnames:
                    try:
                        s = status("tcp://%s:7300" % procs[n].host.ip)
                        print("# %s: epoch %s leader %s collections %s" % (
                            n, s["map_epoch"], s["coordinator"]["leader_id"],
                            sorted(c["name"] for c in s.get("collections", []))))
                    except Exception as e:  # noqa: BLE001
                        print("# %s: %s" % (n, e))
            tap.ok(mk.returncode == 0 and conv,
                   "round %d: the majority changed the map meanwhile; healed, all three "
                   "coordinators have the same map and leader %s" % (rnd + 1, conv), mk.stdout)

        # ---- nothing acknowledged was lost ---------------------------------------------------
        writer.finish()
        print("# writer: %d batches acknowledged, %d failed, longest gap %.2f s, longest call "
              "%.2f s" % (writer.n_ok, writer.n_fail, writer.longest_gap, writer.longest_call))
        n_read, bad = lost_writes(rest, writer)
        tap.ok(not bad and n_read == N_POINTS, "every acknowledged write is there (%d ids, %d "
               "batches acknowledged)" % (n_read, writer.n_ok), bad[:20])
        ok = netsim.wait_until(lambda: subprocess.run(
            [dvecctl, "--coordinators", urls, "--timeout", "30000", "collections", "verify",
             COLL], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0, 60, 1)
        tap.ok(ok, "collections verify: every replica identical")
        # ---- delay between hosts (the writer stopped: it would only add noise) -------------
        rest.create_collection("mhbench", DIM, partitions=8, replication=2)

        def measure(seconds, threads=4):
            """Searches of COLL by `threads` clients, then upserts of 10 fresh points into
            mhbench by as many: (search QPS, p50 ms, p99 ms, upserts/s, p50 ms, p99 ms)."""
            c = Client(["http://%s:7380" % ip for ip in cips], timeout=10)
            out = []
            for kind in ("search", "upsert"):
                lat, done, lock = [], threading.Event(), threading.Lock()

                def run(k, kind=kind, lat=lat, done=done, lock=lock):
                    i = 0
                    while not done.is_set():
                        t = time.monotonic()
                        if kind == "search":
                            c.search(COLL, vec(k * 1000 + i, 5, DIM), k=10)
                        else:
                            ids = [k * 10_000_000 + i * 10 + j for j in range(10)]
                            c.upsert("mhbench", ids, [vec(x, 9, DIM) for x in ids])
                        d = time.monotonic() - t
                        with lock:
                            lat.append(d)
                        i += 1
                ts = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
                for t in ts:
                    t.start()
                time.sleep(seconds)
                done.set()
                for t in ts:
                    t.join()
                lat.sort()
                out += [len(lat) / seconds, lat[len(lat) // 2] * 1000,
                        lat[min(len(lat) - 1, len(lat) * 99 // 100)] * 1000]
            return out

        secs = 10 if bench else 3
        base = measure(secs)
        delayed = None
        if net.can_delay():
            for h in net.hosts:
                net.netem(h, 1)
            time.sleep(0.5)
            delayed = measure(secs)
            for h in net.hosts:
                net.netem(h, None)
        print("# through the cluster, 4 REST clients, %d s each (search k=10 of %d x %d; upsert "
              "10 points, rf 2):" % (secs, N_POINTS, DIM))
        print("#   %-22s %10s %9s %9s %10s %9s %9s" % ("", "search/s", "p50 ms", "p99 ms",
                                                       "upsert/s", "p50 ms", "p99 ms"))
        print("#   %-22s %10.0f %9.2f %9.2f %10.0f %9.2f %9.2f" % tuple(["no delay"] + base))
        if delayed:
            print("#   %-22s %10.0f %9.2f %9.2f %10.0f %9.2f %9.2f" %
                  tuple(["1 ms each way"] + delayed))
            tap.ok(delayed[0] > 0 and delayed[3] > 0 and delayed[1] > base[1],
                   "with 1 ms of delay on every packet between hosts the cluster serves, slower: "
                   "search p50 %.2f ms (%.2f without), upsert p50 %.2f ms (%.2f)" %
                   (delayed[1], base[1], delayed[4], base[4]))
        else:
            tap.ok(True, "# SKIP no packet delay here (no netem in the kernel, no nfq_delay)")
        return tap.finish()
    except Exception as e:  # noqa: BLE001 - a broken step is a failed test, with the logs
        tap.ok(False, "the run stopped: %s: %s" % (type(e).__name__, e))
        return tap.finish()
    finally:
        if writer:
            writer.stop.set()
        for p in procs.values():
            if p.proc is not None:
                netsim.stop(p.proc)
        net.close()
        if tap.failed == 0 and os.environ.get("DVEC_MH_KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)
        else:
            for p in procs.values():
                if os.path.exists(p.log):
                    with open(p.log, errors="replace") as f:
                        for ln in f.read().splitlines()[-8:]:
                            print("# %s: %s" % (p.name, ln))
            print("# work directory kept: %s" % work)


if __name__ == "__main__":
    sys.exit(main())
