"""netsim.py - hosts of their own on one machine: a network namespace per host, each with one
address on a bridge that lives in a namespace of its own (nothing is added to the machine's
own network), names in every host's hosts file (what DNS would answer), processes started in
a host with its own host name, mounts, user and read-only root, links cut and packet delays
(tc netem, or where the kernel has no netem, an NFQUEUE rule and the nfq_delay helper).

Every namespace, link and mount is made by this module and removed by Net.close(); processes
are stopped by PID. Needs root, iproute2 (ip, tc) and util-linux (unshare, setpriv); delays
without netem need iptables (its NFQUEUE target) and nfq_delay (tests/multihost/nfq_delay.c).
"""

import ctypes
import os
import shutil
import signal
import subprocess
import time

CLONE_NEWNET = 0x40000000
# Every packet a host sends on eth0 (loopback is not delayed) goes to its namespace's NFQUEUE 0;
# "--queue-bypass": it passes undelayed while no nfq_delay listens. iptables, not nft's own
# "queue" statement: a kernel without netem may lack CONFIG_NFT_QUEUE too (iptables' NFQUEUE
# target is xt_NFQUEUE, reached through nft_compat or the legacy tables).
NFQ_RULE = ["OUTPUT", "-o", "eth0", "-j", "NFQUEUE", "--queue-num", "0", "--queue-bypass"]


def sh(*argv, check=True):
    r = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(argv), r.returncode, r.stdout.strip()))
    return r


def enter_netns(name):
    """Moves the calling thread (call it before starting threads: they inherit it) into
    network namespace `name`."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    fd = os.open("/run/netns/" + name, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + name)
    finally:
        os.close(fd)


class Host:
    """One network namespace with one address (eth0) on the bridge."""

    def __init__(self, net, ns, ip, port):
        self.net, self.ns, self.ip, self.port = net, ns, ip, port
        self.names = []


class Net:
    """A bridge in namespace <tag>sw and hosts <tag>h<N> on 10.<b>.0.0/16 (b from the tag).
    `delayer`: the nfq_delay program, used by netem() when the kernel has no netem."""

    def __init__(self, tag, subnet="10.77", delayer=None):
        self.tag, self.subnet, self.delayer = tag, subnet, delayer
        self.delayers = {}  # host ns -> the nfq_delay process delaying its packets
        self.sw = tag + "sw"
        self.hosts = []
        self.records = {}  # DNS name -> ip
        self.next_ip = 10
        self.next_if = 0
        self.made_dirs = []
        sh("ip", "netns", "add", self.sw)
        sh("ip", "-n", self.sw, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.sw, "link", "set", "br0", "up")

    def _ip(self):
        n = self.next_ip
        self.next_ip += 1
        return "%s.%d.%d" % (self.subnet, n // 250, n % 250 + 2)

    def add_host(self, names=(), ip=None):
        """A new namespace with a fresh address (or `ip`), known by `names`."""
        idx = self.next_if
        self.next_if += 1
        ns = "%sh%d" % (self.tag, idx)
        port = "v%d" % idx
        ip = ip or self._ip()
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", port,
           "netns", self.sw)
        sh("ip", "-n", self.sw, "link", "set", port, "master", "br0", "up")
        sh("ip", "-n", ns, "addr", "add", ip + "/16", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        os.makedirs("/etc/netns/" + ns, exist_ok=True)
        h = Host(self, ns, ip, port)
        self.hosts.append(h)
        for n in names:
            self.name(h, n)
        self.write_hosts()
        return h

    def name(self, host, name):
        """Publishes `name` for host's address (as a DNS record would)."""
        host.names.append(name)
        self.records[name] = host.ip

    def remove_host(self, host):
        """Deletes the namespace (its link and rules go with it), its names and its delayer."""
        self._stop_delayer(host)
        for n in host.names:
            if self.records.get(n) == host.ip:
                del self.records[n]
        sh("ip", "netns", "del", host.ns, check=False)
        sh("rm", "-rf", "/etc/netns/" + host.ns, check=False)
        self.hosts.remove(host)
        self.write_hosts()

    def write_hosts(self):
        """Every host's hosts file, rewritten in place (same inode: processes that bound it at
        start see the change, as they would see a DNS update)."""
        text = "127.0.0.1 localhost\n" + "".join(
            "%s %s\n" % (ip, n) for n, ip in sorted(self.records.items()))
        for h in self.hosts:
            with open("/etc/netns/%s/hosts" % h.ns, "w") as f:
                f.write(text)

    def link(self, host, up):
        """Cuts (or heals) host's only link: its side of the bridge goes down."""
        sh("ip", "-n", self.sw, "link", "set", host.port, "up" if up else "down")

    def netem(self, host, delay_ms=None):
        """Adds a delay to every packet host sends on eth0 (both ways when set on every host);
        None removes it. tc netem, or without it (can_delay() says which works) an NFQUEUE rule
        and an nfq_delay process in host's namespace."""
        if self._delay_mode() == "nfqueue":
            self._stop_delayer(host)
            if delay_ms:
                self._start_delayer(host, delay_ms)
            return
        sh("tc", "-n", host.ns, "qdisc", "del", "dev", "eth0", "root", check=False)
        if delay_ms:
            sh("tc", "-n", host.ns, "qdisc", "add", "dev", "eth0", "root", "netem", "delay",
               "%gms" % delay_ms)

    def can_delay(self):
        """Whether netem() works: the kernel has netem (a VM's kernel may be built without it),
        or the NFQUEUE delayer was given (Net(delayer=...)) and iptables' NFQUEUE rule works."""
        return self._delay_mode() is not None

    def _delay_mode(self):
        """Which delay works here: "netem", "nfqueue" or None; probed once, in the first host."""
        if not hasattr(self, "_mode"):
            h = self.hosts[0]
            r = sh("tc", "-n", h.ns, "qdisc", "add", "dev", "lo", "root", "netem", "delay",
                   "1ms", check=False)
            sh("tc", "-n", h.ns, "qdisc", "del", "dev", "lo", "root", check=False)
            self._mode = "netem" if r.returncode == 0 else None
            if (self._mode is None and self.delayer and os.access(self.delayer, os.X_OK)
                    and shutil.which("iptables")):
                r = sh("ip", "netns", "exec", h.ns, "iptables", "-A", *NFQ_RULE, check=False)
                if r.returncode == 0:
                    sh("ip", "netns", "exec", h.ns, "iptables", "-D", *NFQ_RULE)
                    self._mode = "nfqueue"
        return self._mode

    def _start_delayer(self, host, delay_ms):
        """nfq_delay bound to host's queue 0 (waits for its line saying so), then the rule."""
        p = subprocess.Popen(["ip", "netns", "exec", host.ns, self.delayer, "--queue", "0",
                              "--delay-ms", "%g" % delay_ms], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE)
        line = p.stdout.readline()
        p.stdout.close()
        if not line:
            stop(p, timeout=5)
            raise RuntimeError("nfq_delay in %s did not start (exit %s)" % (host.ns, p.returncode))
        self.delayers[host.ns] = p
        try:
            sh("ip", "netns", "exec", host.ns, "iptables", "-A", *NFQ_RULE)
        except RuntimeError:
            self._stop_delayer(host)
            raise

    def _stop_delayer(self, host):
        """Removes host's rule, then stops its nfq_delay (which lets every held packet go)."""
        p = self.delayers.pop(host.ns, None)
        if p is None:
            return
        sh("ip", "netns", "exec", host.ns, "iptables", "-D", *NFQ_RULE, check=False)
        stop(p, timeout=10)

    def mountpoint(self, path):
        """Makes sure `path` exists to be bound over inside a host (removed at close if made
        here and left empty)."""
        if not os.path.isdir(path):
            os.makedirs(path)
            self.made_dirs.append(path)

    def spawn(self, host, argv, env, hostname, mounts=(), uid=None, ro_root=False, log=None,
              cwd=None):
        """Starts argv in host's namespace with its own UTS and mount namespaces: host name
        `hostname`, each (src, dst) of mounts bound, the root read-only if asked, as `uid`,
        with exactly `env`, in directory `cwd` (None: this process's). The exec chain keeps one
        PID: the returned Popen's pid is the program's."""
        script = ('h=$1; shift; hostname "$h"; '
                  'while [ "$1" != "--" ]; do mount --bind "$1" "$2" || exit 126; shift 2; done; '
                  'shift; ro=$1; shift; '
                  '[ "$ro" = 1 ] && { mount -o remount,bind,ro / || exit 126; }; '
                  'exec "$@"')
        args = ["ip", "netns", "exec", host.ns, "unshare", "--mount", "--uts", "sh", "-c", script,
                "sh", hostname]
        for src, dst in mounts:
            args += [src, dst]
        args += ["--", "1" if ro_root else "0"]
        if uid is not None:
            args += ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"]
        args += ["env", "-i"] + ["%s=%s" % kv for kv in sorted(env.items())] + list(argv)
        out = open(log, "ab") if log else subprocess.DEVNULL
        try:
            return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, cwd=cwd)
        finally:
            if log:
                out.close()

    def close(self):
        for h in list(self.hosts):
            self.remove_host(h)
        sh("ip", "netns", "del", self.sw, check=False)
        for d in reversed(self.made_dirs):
            try:
                os.rmdir(d)
            except OSError:
                pass


def stop(proc, sig=signal.SIGTERM, timeout=30.0):
    """Signals proc (by its PID) and waits; SIGKILL after timeout. Returns its exit status."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        return proc.wait()


def wait_until(fn, timeout, every=0.1):
    """Calls fn until it returns a true value (returned) or timeout seconds pass (None)."""
    end = time.monotonic() + timeout
    while True:
        try:
            v = fn()
            if v:
                return v
        except Exception:  # noqa: BLE001 - a probe that fails is a probe that is not ready
            pass
        if time.monotonic() >= end:
            return None
        time.sleep(every)
