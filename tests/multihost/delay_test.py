#!/usr/bin/env python3
"""delay_test.py - netsim's packet delay between hosts, measured: two hosts (network
namespaces, netsim.py), TCP round trips of one byte between them (the median of 200), without
delay and with 1 ms on every packet each host sends. The median must rise by about 2 ms (1 ms
each way); loopback inside a host stays undelayed; removing the delay brings the round trip
back; nothing is left behind (namespaces, delayer processes).

On a kernel without netem the delay is the NFQUEUE rule and nfq_delay (tests/multihost/
nfq_delay.c), which is what this test is mostly for; with netem it checks netem.

TAP on stdout. Args: BUILD_ROOT SOURCE_ROOT. SKIP without root, iproute2 or iptables, or when
nfq_delay was not built (libnetfilter-queue-dev missing).
"""

import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netsim  # noqa: E402
from workload import Tap, skip  # noqa: E402

ROUND_TRIPS = 200
PORT = 7399

# Echoes one byte per message, one connection at a time, on every address of its host.
SERVER = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(8)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        b = c.recv(1)
        if not b:
            break
        c.sendall(b)
    c.close()
"""

# N round trips of one byte after 20 for warm-up (ARP, slow start); prints them in ms (JSON).
CLIENT = r"""
import json, socket, sys, time
ip, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = socket.create_connection((ip, port), timeout=10)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
rtt = []
for i in range(n + 20):
    t = time.perf_counter()
    c.sendall(b"x")
    if c.recv(1) != b"x":
        sys.exit("short read")
    if i >= 20:
        rtt.append((time.perf_counter() - t) * 1000)
c.close()
print(json.dumps(rtt))
"""


def rtts(host, ip):
    """Round trips (ms) from `host` to the echo server at ip:PORT."""
    r = subprocess.run(["ip", "netns", "exec", host.ns, sys.executable, "-c", CLIENT, ip,
                        str(PORT), str(ROUND_TRIPS)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError("client in %s: %s" % (host.ns, r.stderr.strip()))
    return json.loads(r.stdout)


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def main():
    if len(sys.argv) != 3:
        print("usage: delay_test.py BUILD_ROOT SOURCE_ROOT", file=sys.stderr)
        return 2
    build = sys.argv[1]
    delayer = os.path.join(build, "tests", "multihost", "nfq_delay")
    if os.geteuid() != 0:
        skip("needs root (network namespaces)")
    for tool in ("ip", "tc", "iptables"):
        if shutil.which(tool) is None:
            skip("%s not found" % tool)
    if not os.access(delayer, os.X_OK):
        skip("nfq_delay not built (libnetfilter-queue-dev missing)")

    tap = Tap()
    net = netsim.Net("dd%d" % (os.getpid() % 100000), subnet="10.79", delayer=delayer)
    server = None
    delayer_pids = []
    try:
        a = net.add_host(["a.dvec.test"])
        b = net.add_host(["b.dvec.test"])
        server = subprocess.Popen(["ip", "netns", "exec", a.ns, sys.executable, "-c", SERVER,
                                   str(PORT)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        if server.stdout.readline().strip() != b"ready":
            raise RuntimeError("echo server did not start")
        server.stdout.close()

        mode = net._delay_mode()
        if not tap.ok(net.can_delay(), "a packet delay works here (%s)" % mode):
            return tap.finish()

        base = median(rtts(b, a.ip))
        for h in (a, b):
            net.netem(h, 1)
        delayer_pids = [p.pid for p in net.delayers.values()]
        delayed = median(rtts(b, a.ip))
        local = median(rtts(a, "127.0.0.1"))
        for h in (a, b):
            net.netem(h, None)
        after = median(rtts(b, a.ip))
        print("# TCP round trip b -> a, median of %d: %.3f ms without delay, %.3f ms with 1 ms "
              "on each host (%s), %.3f ms after; loopback in a with the delay on: %.3f ms" %
              (ROUND_TRIPS, base, delayed, mode, after, local))

        rise = delayed - base
        tap.ok(1.7 <= rise <= 3.0, "1 ms on each host adds about 2 ms to the round trip "
               "(+%.3f ms)" % rise)
        tap.ok(local < base + 0.5, "loopback inside a host is not delayed (%.3f ms)" % local)
        tap.ok(after < base + 0.5, "the delay removed, the round trip is back (%.3f ms)" % after)
        tap.ok(mode != "nfqueue" or (len(delayer_pids) == 2 and not net.delayers),
               "one delayer per host while delayed, none after")
    except Exception as e:  # noqa: BLE001 - a broken step is a failed test
        tap.ok(False, "the run stopped: %s: %s" % (type(e).__name__, e))
    finally:
        if server is not None:
            netsim.stop(server, timeout=10)
        net.close()
    left = [ns for ns in os.listdir("/run/netns") if ns.startswith(net.tag)] \
        if os.path.isdir("/run/netns") else []
    alive = [pid for pid in delayer_pids if os.path.exists("/proc/%d" % pid)]
    tap.ok(not left and not alive, "nothing left behind (namespaces %s, delayers %s)" %
           (left, alive))
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main())
