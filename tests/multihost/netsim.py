"""netsim.py - hosts of their own on one machine: a network namespace per host, each with one
address on a bridge that lives in a namespace of its own (nothing is added to the machine's
own network), names in every host's hosts file (what DNS would answer), processes started in
a host with its own host name, mounts, user and read-only root, links cut and netem delays.

Every namespace, link and mount is made by this module and removed by Net.close(); processes
are stopped by PID. Needs root, iproute2 (ip, tc) and util-linux (unshare, setpriv).
"""

import ctypes
import os
import signal
import subprocess
import time

CLONE_NEWNET = 0x40000000


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
    """A bridge in namespace <tag>sw and hosts <tag>h<N> on 10.<b>.0.0/16 (b from the tag)."""

    def __init__(self, tag, subnet="10.77"):
        self.tag, self.subnet = tag, subnet
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
        """Deletes the namespace (its link goes with it) and its names."""
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
        """Adds a delay to every packet host sends (both ways when set on every host); None
        removes it."""
        sh("tc", "-n", host.ns, "qdisc", "del", "dev", "eth0", "root", check=False)
        if delay_ms:
            sh("tc", "-n", host.ns, "qdisc", "add", "dev", "eth0", "root", "netem", "delay",
               "%gms" % delay_ms)

    def can_delay(self):
        """Whether this kernel has netem (a VM's kernel may be built without it)."""
        if not hasattr(self, "_netem"):
            h = self.hosts[0]
            r = sh("tc", "-n", h.ns, "qdisc", "add", "dev", "lo", "root", "netem", "delay",
                   "1ms", check=False)
            self._netem = r.returncode == 0
            sh("tc", "-n", h.ns, "qdisc", "del", "dev", "lo", "root", check=False)
        return self._netem

    def mountpoint(self, path):
        """Makes sure `path` exists to be bound over inside a host (removed at close if made
        here and left empty)."""
        if not os.path.isdir(path):
            os.makedirs(path)
            self.made_dirs.append(path)

    def spawn(self, host, argv, env, hostname, mounts=(), uid=None, ro_root=False, log=None):
        """Starts argv in host's namespace with its own UTS and mount namespaces: host name
        `hostname`, each (src, dst) of mounts bound, the root read-only if asked, as `uid`,
        with exactly `env`. The exec chain keeps one PID: the returned Popen's pid is the
        program's."""
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
                                    stderr=subprocess.STDOUT)
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
