#!/usr/bin/env python3
"""k8s_pods.py - proves deploy/k8s's prod overlay, not just renders it.

Renders the overlay with kubectl kustomize and starts every pod it describes as a process on
a host of its own (k8s.py, netsim.py: a network namespace with its own address, the pods' DNS
names in every hosts file, the command, args, env and ConfigMap files exactly as rendered,
dvec-entrypoint included). Then, under a writer that never stops: kill -9 of a node pod that
comes back with a new IP under the same name, the same for the raft leader's pod, the node
StatefulSet scaled 3 -> 4 (the new node takes partitions) and back to 3 with the documented
drain (the preStop hook removes the drained node), then 4 and 3 again (the removed id comes
back by itself), and at the end every acknowledged write checked and every replica compared.

TAP on stdout. Args: BUILD_ROOT SOURCE_ROOT. Needs root, iproute2, util-linux and kubectl
(SKIP without them). DVEC_K8S_KEEP=1 keeps the work directory (logs of every pod).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import k8s  # noqa: E402
import netsim  # noqa: E402
from workload import Tap, Writer, load, lost_writes, skip  # noqa: E402

N_POINTS = 3000
DIM = 8
COLL = "k8s"


def main():
    if len(sys.argv) != 3:
        print("usage: k8s_pods.py BUILD_ROOT SOURCE_ROOT", file=sys.stderr)
        return 2
    build, src = sys.argv[1], sys.argv[2]
    if os.geteuid() != 0:
        skip("needs root (network namespaces)")
    for tool in ("ip", "tc", "unshare", "setpriv", "kubectl"):
        if shutil.which(tool) is None:
            skip("%s not found" % tool)
    sys.path.insert(0, os.path.join(src, "client", "python"))
    from dvec import Client  # noqa: E402

    tap = Tap()
    work = tempfile.mkdtemp(prefix="dvec-k8s-")
    os.chmod(work, 0o755)
    bindir = os.path.join(work, "bin")
    os.makedirs(bindir)
    for srcf, name in ((os.path.join(build, "coordinator", "dvec-coord"), "dvec-coord"),
                       (os.path.join(build, "shard", "dvec-shard"), "dvec-shard"),
                       (os.path.join(build, "client", "dvecctl", "dvecctl"), "dvecctl"),
                       (os.path.join(src, "deploy", "docker", "entrypoint.sh"),
                        "dvec-entrypoint")):
        shutil.copy(srcf, os.path.join(bindir, name))
        os.chmod(os.path.join(bindir, name), 0o755)
    dvecctl = os.path.join(bindir, "dvecctl")

    objs = k8s.render(os.path.join(src, "deploy", "k8s", "overlays", "prod"))
    tag = "dk%d" % (os.getpid() % 100000)
    net = netsim.Net(tag)
    cl = None
    writer = None
    try:
        client_host = net.add_host(["client"])
        netsim.enter_netns(client_host.ns)  # this process is a client on the pods' network
        cl = k8s.Cluster(net, objs, work, bindir)
        n_coord, n_node = cl.replicas("dvec-coord"), cl.replicas("dvec-node")
        print("# rendered prod: %d coordinators, %d nodes, namespace %s; work %s"
              % (n_coord, n_node, cl.namespace, work))

        # ---- every pod, in parallel (podManagementPolicy: Parallel) ----------------------
        t0 = time.monotonic()
        for i in range(n_coord):
            cl.start("dvec-coord", i)
        for i in range(n_node):
            cl.start("dvec-node", i)
        pods = list(cl.pods.values())
        ready = cl.wait_ready(pods, 90)
        if not tap.ok(ready, "prod overlay: %d coordinators and %d nodes ready (readinessProbe) "
                      "in %.1f s, each on its own address" % (n_coord, n_node,
                                                              time.monotonic() - t0)):
            cl.dump_logs(sys.stdout)
            return tap.finish()

        def coord_urls(scheme="tcp", port=7300):
            return ",".join("%s://%s:%d" % (scheme, p.host.ip, port) for p in cl.pods.values()
                            if p.sts == "dvec-coord" and p.host)

        def status():
            return k8s.json_of([dvecctl, "--coordinators", coord_urls(), "--timeout", "5000",
                                "status", "--json"])

        def nodes_alive(names):
            st = status()
            alive = {n["id"] for n in st["nodes"] if n["state"] == "alive"}
            return set(names) <= alive

        names = ["dvec-node-%d" % i for i in range(n_node)]
        ok = netsim.wait_until(lambda: nodes_alive(names), 30, 0.5)
        st = status()
        tap.ok(ok and all(n["url"].startswith("tcp://dvec-node-") for n in st["nodes"]),
               "the nodes registered under their pod names with their DNS names as URLs",
               st["nodes"])
        tap.ok(all(not c["raft_addr"][0].isdigit() for c in st["coordinators"]) and
               len(st["coordinators"]) == n_coord,
               "the raft group: %d coordinators, addressed by name" % n_coord, st["coordinators"])

        rest = Client(["http://%s:7380" % p.host.ip for p in cl.pods.values()
                       if p.sts == "dvec-coord"], timeout=10)
        rest.create_collection(COLL, DIM, partitions=6, replication=2)
        load(rest, COLL, N_POINTS, DIM)
        tap.ok(rest.count(COLL) == N_POINTS, "%d points loaded through the REST API (rf 2)"
               % N_POINTS)
        writer = Writer(Client(["http://%s:7380" % p.host.ip for p in cl.pods.values()
                                if p.sts == "dvec-coord"], timeout=10), COLL, N_POINTS, DIM)
        writer.start()
        time.sleep(2)

        # ---- a node pod killed, back with a new IP under the same name -----------------
        pod = cl.pods["dvec-node-1"]
        old_ip = pod.host.ip
        cl.kill(pod)
        time.sleep(3)
        cl.start("dvec-node", 1, new_host=True)
        ok = cl.wait_ready([pod], 60) and netsim.wait_until(
            lambda: nodes_alive(["dvec-node-1"]), 30, 0.5)
        tap.ok(ok, "dvec-node-1 killed (-9) and back on %s (was %s): alive again under its "
               "name" % (pod.host.ip, old_ip))

        # ---- the raft leader's pod, the same ---------------------------------------------
        st = status()
        lid = st["coordinator"]["leader_id"]
        lpod = cl.pods["dvec-coord-%d" % (lid - 1)]
        old_ip = lpod.host.ip
        cl.kill(lpod)
        time.sleep(1)
        cl.start("dvec-coord", lid - 1, new_host=True)
        # the client Service's endpoints follow the pod to its new address
        urls = ["http://%s:7380" % p.host.ip for p in cl.pods.values() if p.sts == "dvec-coord"]
        rest = Client(urls, timeout=10)
        writer.client = Client(urls, timeout=10)

        def leader_and_group():
            s = status()
            return s["coordinator"]["leader_id"] and len(
                [c for c in s["coordinators"]]) == n_coord and s
        ok = cl.wait_ready([lpod], 60) and netsim.wait_until(leader_and_group, 30, 0.5)
        st = status() if ok else {}
        tap.ok(ok, "the leader's pod (coordinator %d) killed and back on %s (was %s); "
               "leader now coordinator %s" % (lid, lpod.host.ip, old_ip,
                                              st.get("coordinator", {}).get("leader_id")))
        # the restarted coordinator answers with the map (it rejoined the raft group by name)
        one = Client("http://%s:7380" % lpod.host.ip, timeout=10)
        tap.ok(netsim.wait_until(lambda: one.count(COLL) == N_POINTS, 30, 0.5),
               "the restarted coordinator serves the collection")

        # ---- scale the node StatefulSet 3 -> 4 ------------------------------------------
        cl.start("dvec-node", n_node)
        new = "dvec-node-%d" % n_node

        def holds(node):
            s = status()
            for n in s["nodes"]:
                if n["id"] == node and n["state"] == "alive" and n["replicas"] > 0:
                    return n["replicas"]
            return 0
        got = netsim.wait_until(lambda: holds(new), 90, 0.5)
        tap.ok(got, "scaled to %d nodes: %s registered and rebalancing moved %s replicas to it"
               % (n_node + 1, new, got))

        # ---- and back to 3, with the drain ----------------------------------------------
        r = subprocess.run([dvecctl, "--coordinators", coord_urls(), "node", "drain", new],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        tap.ok(r.returncode == 0, "dvecctl node drain %s" % new, r.stdout)
        rc, hook = cl.delete(cl.pods[new])
        st = status()
        gone = [n for n in st["nodes"] if n["id"] == new]
        tap.ok(hook is not None and hook[0] == 0 and "removed" in hook[1] and gone and
               gone[0]["state"] == "removed",
               "scaled back to %d: the preStop hook waited for the drain and removed %s "
               "(pod exit %s)" % (n_node, new, rc), hook)

        # ---- and up again: the drained pod's id comes back (its PVC kept) ---------------
        cl.start("dvec-node", n_node)
        got = netsim.wait_until(lambda: holds(new), 90, 0.5)
        tap.ok(got, "scaled to %d again: %s (removed by its preStop) registered again and took "
               "%s replicas" % (n_node + 1, new, got))
        r = subprocess.run([dvecctl, "--coordinators", coord_urls(), "node", "drain", new],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        rc, hook = cl.delete(cl.pods[new])
        tap.ok(r.returncode == 0 and hook is not None and hook[0] == 0 and "removed" in hook[1],
               "and down to %d again with the drain" % n_node, [r.stdout, hook])

        # ---- nothing acknowledged was lost ----------------------------------------------
        time.sleep(2)
        writer.finish()
        print("# writer: %d batches acknowledged, %d failed, longest gap between "
              "acknowledgements %.2f s" % (writer.n_ok, writer.n_fail, writer.longest_gap))
        n_read, bad = lost_writes(rest, writer)
        tap.ok(not bad and n_read == N_POINTS,
               "every acknowledged write is there: %d ids, %d batches acknowledged"
               % (n_read, writer.n_ok), bad[:20])
        v = subprocess.run([dvecctl, "--coordinators", coord_urls(), "--timeout", "30000",
                            "collections", "verify", COLL], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        ok = netsim.wait_until(lambda: subprocess.run(
            [dvecctl, "--coordinators", coord_urls(), "--timeout", "30000", "collections",
             "verify", COLL], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        ).returncode == 0, 60, 1)
        tap.ok(ok, "collections verify: every replica identical", v.stdout)
        return tap.finish()
    except Exception as e:  # noqa: BLE001 - a broken step is a failed test, with the logs
        tap.ok(False, "the run stopped: %s: %s" % (type(e).__name__, e))
        if cl:
            cl.dump_logs(sys.stdout)
        return tap.finish()
    finally:
        if writer:
            writer.stop.set()
        if cl:
            cl.stop_all()
        net.close()
        if os.environ.get("DVEC_K8S_KEEP") != "1" and tap.failed == 0:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("# work directory kept: %s" % work)


if __name__ == "__main__":
    sys.exit(main())
