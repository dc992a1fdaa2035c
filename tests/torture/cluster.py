"""cluster.py - the cluster a torture run attacks: coordinators and nodes, each on a host of
its own (a network namespace, tests/multihost/netsim.py), every node's data directory on a
small file system of its own (a tmpfs with a size: it can be filled), every process under
libfaketime (its clocks can jump) and every node with a slow-disk file (DVEC_IO_DELAY_FILE).

Everything the nemesis does to the cluster is a method here: kill -9 and restart, SIGSTOP
and SIGCONT, packet filters between hosts (partitions, one-way and random loss: iptables in
chains of its own, TT_IN and TT_OUT, in each host), delay (netsim.netem), filling and freeing
a node's disk, slowing its disk, jumping a process's clocks, and dvecctl. close() removes
every namespace, rule and mount it made and stops the processes it started, by PID.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.path.join(HERE, "..", "multihost"))
import netsim  # noqa: E402

DOMAIN = "dvec.test"
FAKETIME_LIBS = ("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
                 "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def faketime_lib():
    for p in FAKETIME_LIBS:
        if os.path.exists(p):
            return p
    return None


class Proc:
    """One dvec-coord or dvec-shard: its host, command line, log and state."""

    def __init__(self, name, kind, host, argv, log, env):
        self.name, self.kind, self.host, self.argv, self.log = name, kind, host, argv, log
        self.env = env
        self.proc = None
        self.paused = False
        self.clock_file = None
        self.clock_offset = 0
        self.disk = None       # node: its tmpfs mount point (= data dir)
        self.delay_file = None
        self.cwd = None

    @property
    def short(self):
        return self.name.split(".")[0]

    def running(self):
        return self.proc is not None and self.proc.poll() is None


class Cluster:
    def __init__(self, build, work, n_coord=3, n_node=4, disk_mb=256, log=print, clocks=True):
        build = os.path.abspath(build)
        self.build, self.work, self.log = build, work, log
        self.coord_exe = os.path.join(build, "coordinator", "dvec-coord")
        self.shard_exe = os.path.join(build, "shard", "dvec-shard")
        self.dvecctl_exe = os.path.join(build, "client", "dvecctl", "dvecctl")
        self.net = netsim.Net("dt%d" % (os.getpid() % 100000), subnet="10.79",
                              delayer=os.path.join(build, "tests", "multihost", "nfq_delay"))
        self.procs = {}
        self.mounts = []
        self.chains = set()
        self.delayed = set()
        self.faketime = faketime_lib() if clocks else None
        self.client = self.net.add_host(["client." + DOMAIN])
        netsim.enter_netns(self.client.ns)
        cnames = ["coord-%d.%s" % (i, DOMAIN) for i in range(1, n_coord + 1)]
        self.cnames = cnames
        group = ",".join("%d=%s:7310=tcp://%s:7300" % (i + 1, n, n) for i, n in enumerate(cnames))
        coords = ",".join("tcp://%s:7300" % n for n in cnames)
        for i, n in enumerate(cnames):
            h = self.net.add_host([n])
            d = os.path.join(work, "coord-%d" % (i + 1))
            os.makedirs(d)
            self._add(Proc(n, "coord", h, [
                self.coord_exe, "--id", str(i + 1), "--data_dir", d, "--group", group,
                "--listen", "tcp://0.0.0.0:7300", "--http", "http://0.0.0.0:7380",
                "--request_timeout", "3s"], os.path.join(work, "coord-%d.log" % (i + 1)), {}))
        self.nnames = []
        for i in range(1, n_node + 1):
            n = "node-%d.%s" % (i, DOMAIN)
            self.nnames.append(n)
            h = self.net.add_host([n])
            d = os.path.join(work, "node-%d" % i)
            os.makedirs(d)
            netsim.sh("mount", "-t", "tmpfs", "-o", "size=%dm,mode=0755" % disk_mb, "tmpfs", d)
            self.mounts.append(d)
            delay_file = os.path.join(work, "iodelay-node-%d" % i)
            open(delay_file, "w").close()
            p = self._add(Proc(n, "node", h, [
                self.shard_exe, "--node_id", "node-%d" % i, "--data_dir", d,
                "--listen", "tcp://0.0.0.0:7400", "--advertise", "tcp://%s:7400" % n,
                "--http", "http://0.0.0.0:7480", "--search_listen", "tcp://0.0.0.0:7401",
                "--coordinators", coords,
                "--report_interval", "250ms", "--checkpoint.interval", "20s"],
                os.path.join(work, "node-%d.log" % i), {"DVEC_IO_DELAY_FILE": delay_file}))
            p.disk, p.delay_file = d, delay_file
        for p in self.procs.values():
            self._chains(p.host)
            self.start(p)

    def _add(self, p):
        if self.faketime:
            p.clock_file = os.path.join(self.work, "clock-%s" % p.short)
            with open(p.clock_file, "w") as f:
                f.write("+0\n")
            # Both clocks move together: libfaketime 0.9.10 with FAKETIME_DONT_FAKE_MONOTONIC
            # makes clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) fail with EINVAL.
            p.env.update({"LD_PRELOAD": self.faketime, "FAKETIME_TIMESTAMP_FILE": p.clock_file,
                          "FAKETIME_CACHE_DURATION": "1"})
        # its working directory: where a core dump lands (kernel.core_pattern "core")
        p.cwd = os.path.join(self.work, "run-%s" % p.short)
        os.makedirs(p.cwd, exist_ok=True)
        self.procs[p.name] = p
        return p

    # ---- processes ----------------------------------------------------------------------

    def urls(self, http=False):
        ips = [self.procs[n].host.ip for n in self.cnames]
        return ["http://%s:7380" % ip if http else "tcp://%s:7300" % ip for ip in ips]

    def start(self, p):
        env = {"PATH": "/usr/bin:/bin"}
        # a sanitizer build's options reach the processes (a sanitizer runtime must come first
        # among the libraries: with libfaketime preloaded, run with --no-clock)
        env.update({k: v for k, v in os.environ.items()
                    if k.startswith(("ASAN_", "UBSAN_", "TSAN_", "LSAN_"))})
        env.update(p.env)
        p.proc = self.net.spawn(p.host, p.argv, env, p.short, log=p.log, cwd=p.cwd)
        p.paused = False

    def kill(self, p):
        if p.running():
            os.kill(p.proc.pid, signal.SIGKILL)
            p.proc.wait()
        p.paused = False

    def pause(self, p, on):
        if p.running():
            os.kill(p.proc.pid, signal.SIGSTOP if on else signal.SIGCONT)
            p.paused = on

    def restart_dead(self):
        """Starts every process that is not running (killed, or exited by itself: reported)."""
        exited = []
        for p in self.procs.values():
            if p.paused:
                self.pause(p, False)
            if not p.running():
                if p.proc is not None and p.proc.returncode not in (-signal.SIGKILL,):
                    exited.append((p.short, p.proc.returncode))
                self.start(p)
        return exited

    # ---- network ------------------------------------------------------------------------

    def ipt(self, host, *args, check=True):
        return netsim.sh("ip", "netns", "exec", host.ns, "iptables", "-w", *args, check=check)

    def _chains(self, host):
        for chain, hook in (("TT_IN", "INPUT"), ("TT_OUT", "OUTPUT")):
            self.ipt(host, "-N", chain)
            self.ipt(host, "-I", hook, "-j", chain)
        self.chains.add(host.ns)

    def block(self, a, b, prob=None):
        """Drops what host a sends to host b (a probability: random loss)."""
        stat = ["-m", "statistic", "--mode", "random", "--probability", "%.3f" % prob] \
            if prob is not None else []
        self.ipt(a, "-A", "TT_OUT", "-d", b.ip, *stat, "-j", "DROP")

    def partition(self, groups):
        """Hosts in different groups of `groups` (lists of Procs) cannot talk, both ways."""
        for g in groups:
            for h in groups:
                if h is g:
                    continue
                for a in g:
                    for b in h:
                        self.block(a.host, b.host)

    def loss(self, p, prob):
        """p's host loses `prob` of the packets it sends and receives on its link."""
        s = "%.3f" % prob
        self.ipt(p.host, "-A", "TT_OUT", "-o", "eth0", "-m", "statistic", "--mode", "random",
                 "--probability", s, "-j", "DROP")
        self.ipt(p.host, "-A", "TT_IN", "-i", "eth0", "-m", "statistic", "--mode", "random",
                 "--probability", s, "-j", "DROP")

    def delay(self, p, ms):
        self.net.netem(p.host, ms)
        if ms:
            self.delayed.add(p.name)
        else:
            self.delayed.discard(p.name)

    def heal_net(self):
        for p in self.procs.values():
            self.ipt(p.host, "-F", "TT_IN", check=False)
            self.ipt(p.host, "-F", "TT_OUT", check=False)
        for n in list(self.delayed):
            self.delay(self.procs[n], None)

    # ---- disks and clocks ---------------------------------------------------------------

    def fill_disk(self, p):
        """Fills p's tmpfs with a file until the file system refuses more (ENOSPC)."""
        path = os.path.join(p.disk, "torture-fill")
        chunk = b"\0" * (1 << 20)
        try:
            with open(path, "ab") as f:
                while True:
                    f.write(chunk)
                    f.flush()
        except OSError:
            pass
        # the last partial megabyte, in small pieces
        try:
            with open(path, "ab") as f:
                while True:
                    f.write(b"\0" * 4096)
                    f.flush()
        except OSError:
            pass

    def free_disk(self, p):
        try:
            os.unlink(os.path.join(p.disk, "torture-fill"))
        except FileNotFoundError:
            pass

    def slow_disk(self, p, write_ms, fsync_ms):
        tmp = p.delay_file + ".tmp"
        with open(tmp, "w") as f:
            if write_ms or fsync_ms:
                f.write("write_ms=%d fsync_ms=%d\n" % (write_ms, fsync_ms))
        os.replace(tmp, p.delay_file)

    def jump_clock(self, p, seconds):
        """Moves p's clocks forward by `seconds` (they stay there: a monotonic clock does not
        come back)."""
        if not p.clock_file:
            return False
        p.clock_offset += seconds
        tmp = p.clock_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%+d\n" % p.clock_offset)
        os.replace(tmp, p.clock_file)
        return True

    # ---- dvecctl ------------------------------------------------------------------------

    def dvecctl(self, *args, timeout_ms=5000, urls=None):
        r = subprocess.run([self.dvecctl_exe, "--coordinators", ",".join(urls or self.urls()),
                            "--timeout", str(timeout_ms)] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=timeout_ms / 1000 + 30)
        return r

    def status(self, urls=None):
        r = self.dvecctl("status", "--json", urls=urls)
        if r.returncode != 0:
            raise RuntimeError(r.stderr.strip())
        return json.loads(r.stdout)

    def leader(self):
        """The raft leader's Proc, or None."""
        try:
            lid = self.status()["coordinator"]["leader_id"]
        except (RuntimeError, ValueError, KeyError):
            return None
        return self.procs[self.cnames[lid - 1]] if lid else None

    # ---- the end ------------------------------------------------------------------------

    def close(self):
        for p in self.procs.values():
            if p.proc is not None:
                if p.paused:
                    self.pause(p, False)
                netsim.stop(p.proc, timeout=10)
        self.net.close()
        for d in self.mounts:
            netsim.sh("umount", d, check=False)

    def backtrace(self, p, out):
        """After p crashed: its core dump (if the kernel wrote one into p.cwd) moved to `out`
        and every thread's stack from gdb; the text ("" without a core or gdb)."""
        cores = sorted(f for f in os.listdir(p.cwd) if f == "core" or f.startswith("core."))
        if not cores:
            return ""
        stamp = time.strftime("%H%M%S")
        core = os.path.join(out, "core-%s-%s" % (p.short, stamp))
        shutil.move(os.path.join(p.cwd, cores[-1]), core)
        if shutil.which("gdb") is None:
            return "core: %s (no gdb for a backtrace)" % core
        r = subprocess.run(["gdb", "-batch", "-nx", "-ex", "thread apply all bt", p.argv[0], core],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=120)
        path = core + ".bt.txt"
        with open(path, "w") as f:
            f.write(r.stdout)
        return "core: %s; backtrace: %s" % (core, path)

    def tail_logs(self, n=8):
        out = []
        for p in self.procs.values():
            if os.path.exists(p.log):
                with open(p.log, errors="replace") as f:
                    out += ["%s: %s" % (p.short, ln) for ln in f.read().splitlines()[-n:]]
        return out

    def wait(self, fn, timeout, every=0.25):
        return netsim.wait_until(fn, timeout, every)


def have_tools():
    """What a torture run needs that may be missing: a list of reasons (empty: all there)."""
    why = []
    if os.geteuid() != 0:
        why.append("needs root (network namespaces, tmpfs mounts)")
    for t in ("ip", "iptables", "unshare", "mount"):
        if shutil.which(t) is None:
            why.append("%s not found" % t)
    return why


def sleep(s):
    time.sleep(s)
