"""k8s.py - the pods a rendered Kubernetes manifest describes, run as processes on hosts of
their own (netsim.py): each StatefulSet pod gets a fresh namespace and address, its DNS names
(POD.SERVICE.NAMESPACE.svc.cluster.local and the shorter search forms) in every host's hosts
file, and runs its container's command, args and env exactly as rendered, with the
ConfigMap's files, its PVC and emptyDir volumes bound at their mountPaths, the image's
binaries bound at /usr/local/bin, the pod's user, and a read-only root when the manifest asks.
Only what dvec's manifests use is understood; anything else is an error, so a manifest that
grows a feature this does not run fails the test instead of being skipped.
"""

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request

import yaml

import netsim

IMAGE_BIN = "/usr/local/bin"


def render(kustomize_dir):
    """kubectl kustomize DIR, as a list of objects."""
    r = subprocess.run(["kubectl", "kustomize", kustomize_dir], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError("kubectl kustomize %s: %s" % (kustomize_dir, r.stderr.strip()))
    return [d for d in yaml.safe_load_all(r.stdout) if d]


class Pod:
    def __init__(self, name, sts, ordinal):
        self.name, self.sts, self.ordinal = name, sts, ordinal
        self.host = None
        self.proc = None
        self.log = None
        self.starts = 0


class Cluster:
    """The StatefulSets of a rendered manifest, pod by pod, on `net`."""

    def __init__(self, net, objects, work, bindir):
        self.net, self.work, self.bindir = net, work, bindir
        self.by_kind = {}
        for o in objects:
            self.by_kind.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
        self.sts = self.by_kind.get("StatefulSet", {})
        self.pods = {}
        self.namespace = "default"
        for o in objects:
            if o["metadata"].get("namespace"):
                self.namespace = o["metadata"]["namespace"]
        net.mountpoint("/etc/dvec")
        net.mountpoint("/var/lib/dvec")

    # ---- the manifest --------------------------------------------------------------------

    def replicas(self, sts):
        return int(self.sts[sts]["spec"].get("replicas", 1))

    def spec(self, sts):
        return self.sts[sts]["spec"]["template"]["spec"]

    def container(self, sts):
        cs = self.spec(sts)["containers"]
        if len(cs) != 1:
            raise RuntimeError("%s: %d containers; one expected" % (sts, len(cs)))
        return cs[0]

    def service(self, sts):
        return self.sts[sts]["spec"]["serviceName"]

    def fqdn(self, pod):
        return "%s.%s.%s.svc.cluster.local" % (pod.name, self.service(pod.sts), self.namespace)

    def port(self, sts, port):
        """A probe's port: a number or the name of a container port."""
        if isinstance(port, int):
            return port
        for p in self.container(sts).get("ports", []):
            if p.get("name") == port:
                return int(p["containerPort"])
        raise RuntimeError("%s: no container port named %s" % (sts, port))

    def probe_url(self, pod, kind="readinessProbe"):
        pr = self.container(pod.sts).get(kind)
        if pr is None or "httpGet" not in pr:
            raise RuntimeError("%s: no %s httpGet" % (pod.sts, kind))
        g = pr["httpGet"]
        return "http://%s:%d%s" % (pod.host.ip, self.port(pod.sts, g["port"]), g.get("path", "/"))

    def uid(self, sts):
        sc = dict(self.spec(sts).get("securityContext", {}))
        sc.update(self.container(sts).get("securityContext", {}))
        return sc.get("runAsUser"), sc.get("fsGroup", sc.get("runAsGroup")), bool(
            sc.get("readOnlyRootFilesystem"))

    def env(self, pod):
        """The container's env as rendered, with the downward API's fields."""
        out = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
        for e in self.container(pod.sts).get("env", []):
            if "value" in e:
                out[e["name"]] = str(e["value"])
                continue
            ref = e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
            vals = {"metadata.namespace": self.namespace, "metadata.name": pod.name,
                    "status.podIP": pod.host.ip, "spec.nodeName": pod.host.ns}
            if ref not in vals:
                raise RuntimeError("%s: env %s: unsupported %s" % (pod.sts, e["name"], e))
            out[e["name"]] = vals[ref]
        if self.container(pod.sts).get("envFrom"):
            raise RuntimeError("%s: envFrom is not supported here" % pod.sts)
        return out

    def mounts(self, pod, fresh):
        """(src, dst) bind mounts for the pod's volumes; ConfigMap files written out,
        emptyDirs made empty when `fresh` (a new pod), PVC dirs kept across restarts."""
        uid, gid, _ = self.uid(pod.sts)
        vols = {v["name"]: v for v in self.spec(pod.sts).get("volumes", [])}
        claims = {c["metadata"]["name"] for c in
                  self.sts[pod.sts]["spec"].get("volumeClaimTemplates", [])}
        out = [(self.bindir, IMAGE_BIN)]
        for m in self.container(pod.sts).get("volumeMounts", []):
            name, dst = m["name"], m["mountPath"]
            if m.get("subPath"):
                raise RuntimeError("%s: subPath is not supported here" % pod.sts)
            d = os.path.join(self.work, "vol", pod.name, name)
            if name in claims:
                d = os.path.join(self.work, "pvc", "%s-%s" % (name, pod.name))
                os.makedirs(d, exist_ok=True)
            elif name in vols and "configMap" in vols[name]:
                cm = self.by_kind["ConfigMap"][vols[name]["configMap"]["name"]]
                shutil.rmtree(d, ignore_errors=True)
                os.makedirs(d)
                items = vols[name]["configMap"].get("items")
                keys = [(i["key"], i["path"]) for i in items] if items else \
                    [(k, k) for k in cm.get("data", {})]
                for k, path in keys:
                    with open(os.path.join(d, path), "w") as f:
                        f.write(cm["data"][k])
                os.chmod(d, 0o755)
            elif name in vols and "emptyDir" in vols[name]:
                if fresh:
                    shutil.rmtree(d, ignore_errors=True)
                os.makedirs(d, exist_ok=True)
                os.chmod(d, 0o1777)
            else:
                raise RuntimeError("%s: volume %s: unsupported" % (pod.sts, name))
            if gid is not None or uid is not None:
                for root, dirs, files in os.walk(d):
                    for x in [root] + [os.path.join(root, y) for y in dirs + files]:
                        os.chown(x, uid if uid is not None else -1, gid if gid is not None else -1)
            self.net.mountpoint(dst)
            out.append((d, dst))
        return out

    # ---- pods ----------------------------------------------------------------------------

    def start(self, sts, ordinal, new_host=True):
        """Starts pod STS-ORDINAL: on a new host (a fresh address, as a rescheduled pod gets)
        unless new_host is False and it has one."""
        name = "%s-%d" % (sts, ordinal)
        pod = self.pods.get(name) or Pod(name, sts, ordinal)
        self.pods[name] = pod
        if pod.host is None or new_host:
            if pod.host is not None:
                self.net.remove_host(pod.host)
            svc = self.service(sts)
            pod.host = self.net.add_host(names=[
                "%s.%s.%s.svc.cluster.local" % (name, svc, self.namespace),
                "%s.%s.%s.svc" % (name, svc, self.namespace),
                "%s.%s.%s" % (name, svc, self.namespace),
                "%s.%s" % (name, svc)])
        c = self.container(sts)
        argv = list(c.get("command", [])) + list(c.get("args", []))
        if not argv:
            raise RuntimeError("%s: no command" % sts)
        uid, _, ro = self.uid(sts)
        pod.starts += 1
        pod.log = os.path.join(self.work, "logs", "%s.%d.log" % (name, pod.starts))
        os.makedirs(os.path.dirname(pod.log), exist_ok=True)
        pod.proc = self.net.spawn(pod.host, argv, self.env(pod), name,
                                  mounts=self.mounts(pod, new_host), uid=uid, ro_root=ro,
                                  log=pod.log)
        return pod

    def exec_in(self, pod, argv, timeout):
        """Runs argv in the pod's context (a preStop hook, kubectl exec): same host, mounts,
        user and env. Returns (exit status, output)."""
        uid, _, ro = self.uid(pod.sts)
        log = pod.log + ".exec"
        p = self.net.spawn(pod.host, argv, self.env(pod), pod.name,
                           mounts=self.mounts(pod, False), uid=uid, ro_root=ro, log=log)
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            rc = p.wait()
        with open(log, errors="replace") as f:
            return rc, f.read()

    def ready(self, pod):
        """The readiness probe answers 200."""
        with urllib.request.urlopen(self.probe_url(pod), timeout=2) as r:
            return r.status == 200

    def wait_ready(self, pods, timeout):
        return netsim.wait_until(lambda: all(self.ready(p) for p in pods), timeout, 0.2)

    def kill(self, pod, sig=signal.SIGKILL):
        """The pod's process dies (kill -9: a node lost); its host stays until restarted."""
        return netsim.stop(pod.proc, sig, 30)

    def delete(self, pod):
        """kubectl delete pod / scale down: the preStop hook, then SIGTERM, at most the
        grace period; then the pod and its address are gone (the PVC stays)."""
        spec = self.spec(pod.sts)
        grace = int(spec.get("terminationGracePeriodSeconds", 30))
        t0 = time.monotonic()
        hook = self.container(pod.sts).get("lifecycle", {}).get("preStop", {}).get("exec")
        hook_out = None
        if hook:
            hook_out = self.exec_in(pod, hook["command"], grace)
        left = max(1.0, grace - (time.monotonic() - t0))
        rc = netsim.stop(pod.proc, signal.SIGTERM, left)
        self.net.remove_host(pod.host)
        pod.host = None
        del self.pods[pod.name]
        return rc, hook_out

    def stop_all(self):
        for p in list(self.pods.values()):
            if p.proc is not None and p.proc.poll() is None:
                netsim.stop(p.proc, signal.SIGTERM, 20)

    def dump_logs(self, out, lines=15):
        for p in self.pods.values():
            if p.log and os.path.exists(p.log):
                with open(p.log, errors="replace") as f:
                    tail = f.read().splitlines()[-lines:]
                for ln in tail:
                    out.write("# %s: %s\n" % (p.name, ln))


def json_of(argv, timeout=30):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, check=False)
    if r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv), (r.stderr or r.stdout).strip()))
    return json.loads(r.stdout)
