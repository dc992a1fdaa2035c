// k8s_manifests.mjs - renders deploy/k8s (overlays dev and prod, and prod with the
// servicemonitor component) with `kubectl kustomize`, validates every object against the
// Kubernetes schemas offline, and checks what dvec's container contract and docs/kubernetes.md
// rely on. Then proves the checks can fail: broken copies of the rendered objects must be
// rejected, each for the expected reason. TAP on stdout.
//
//   node k8s_manifests.mjs SOURCE_ROOT     (run by k8s_manifests.sh from the directory where
//                                          the pinned npm packages are installed)
//
// Schemas: kubernetes-models (Kubernetes 1.33) and @kubernetes-models/prometheus-operator
// compile the OpenAPI schemas into ajv validators: types, required fields, enums and formats
// (quantities, ...). The schemas do not forbid unknown fields, so a typo such as
// `livenesProbe` would pass; kubectl's strict field validation would refuse it. So each object
// is handed to the validator behind a Proxy that records every property the validator looks
// at: a validator reads every property its schema declares (present or not) and iterates the
// keys of maps (labels, ConfigMap data). A field of an object whose schema declares properties
// that the validator never looked at is reported as an unknown field.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import YAML from "yaml";

const src = process.argv[2];
if (!src) {
    console.error("usage: node k8s_manifests.mjs SOURCE_ROOT");
    process.exit(2);
}
const k8sDir = path.join(src, "deploy", "k8s");

// ---- TAP ---------------------------------------------------------------------------------

let nTests = 0;
let nFailed = 0;
function ok(cond, desc, detail) {
    nTests++;
    console.log(`${cond ? "ok" : "not ok"} ${nTests} - ${desc}`);
    if (!cond) {
        nFailed++;
        for (const line of String(detail ?? "").split("\n").slice(0, 40)) {
            if (line) console.log(`# ${line}`);
        }
    }
    return cond;
}
function diag(msg) {
    console.log(`# ${msg}`);
}

// ---- rendering ---------------------------------------------------------------------------

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dvec-k8s-manifests-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

function kustomize(dir) {
    return execFileSync("kubectl", ["kustomize", dir], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
        maxBuffer: 64 << 20,
    });
}

function parseDocs(text) {
    const docs = YAML.parseAllDocuments(text);
    const out = [];
    for (const d of docs) {
        if (d.errors.length) throw new Error(`YAML: ${d.errors[0].message}`);
        const o = d.toJS();
        if (o !== null && o !== undefined) out.push(o);
    }
    return out;
}

// A kustomization in a temporary directory on top of prod (kustomize takes relative paths
// only).
function overlayOnProd(name, extra) {
    const dir = path.join(tmp, name);
    fs.mkdirSync(dir);
    const rel = path.relative(dir, k8sDir);
    fs.writeFileSync(
        path.join(dir, "kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n" +
            `resources:\n  - ${rel}/overlays/prod\n` +
            extra.replaceAll("@K8S@", rel),
    );
    return dir;
}

// ---- schema validation -------------------------------------------------------------------

const modelCache = new Map();
async function modelFor(apiVersion, kind) {
    const key = `${apiVersion} ${kind}`;
    if (modelCache.has(key)) return modelCache.get(key);
    let cls = null;
    if (/^[A-Z][A-Za-z0-9]*$/.test(kind) && /^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion)) {
        const spec =
            apiVersion === "monitoring.coreos.com/v1"
                ? `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`
                : `kubernetes-models/${apiVersion}/${kind}`;
        try {
            const mod = await import(spec);
            const c = mod[kind];
            if (c && c.apiVersion === apiVersion && c.kind === kind) cls = c;
        } catch {
            cls = null;
        }
    }
    modelCache.set(key, cls);
    return cls;
}

const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

// Records, for every object and array the validator reaches, which properties it read and
// whether it listed the keys.
class ReadTracker {
    constructor() {
        this.reads = new Map(); // target -> Set of property names read
        this.listed = new Set(); // targets whose keys were listed (maps)
        this.proxies = new Map();
    }
    wrap(o) {
        if (o === null || typeof o !== "object") return o;
        if (this.proxies.has(o)) return this.proxies.get(o);
        const reads = new Set();
        this.reads.set(o, reads);
        const self = this;
        const p = new Proxy(o, {
            get(t, k, r) {
                if (typeof k !== "string") return Reflect.get(t, k, r);
                reads.add(k);
                const v = Reflect.get(t, k, r);
                return Object.prototype.hasOwnProperty.call(t, k) ? self.wrap(v) : v;
            },
            has(t, k) {
                if (typeof k === "string") reads.add(k);
                return Reflect.has(t, k);
            },
            getOwnPropertyDescriptor(t, k) {
                if (typeof k === "string") reads.add(k);
                return Reflect.getOwnPropertyDescriptor(t, k);
            },
            ownKeys(t) {
                self.listed.add(t);
                return Reflect.ownKeys(t);
            },
        });
        this.proxies.set(o, p);
        return p;
    }
    // Paths of fields no schema declares, under `o` (at JSON pointer `at`).
    unknown(o, at = "") {
        const out = [];
        if (Array.isArray(o)) {
            o.forEach((v, i) => out.push(...this.unknown(v, `${at}/${i}`)));
            return out;
        }
        if (!isObj(o) || !this.reads.has(o)) return out;
        const reads = this.reads.get(o);
        if (this.listed.has(o)) {
            for (const [k, v] of Object.entries(o)) out.push(...this.unknown(v, `${at}/${k}`));
            return out;
        }
        if (reads.size === 0) return out; // a free-form object: its schema names no field
        for (const [k, v] of Object.entries(o)) {
            if (!reads.has(k)) out.push(`${at}/${k}: unknown field`);
            else out.push(...this.unknown(v, `${at}/${k}`));
        }
        return out;
    }
}

// The schema errors of one object, each "POINTER message"; [] when it is valid.
async function schemaErrors(obj) {
    if (!isObj(obj)) return ["the document is not a mapping"];
    const cls = await modelFor(String(obj.apiVersion), String(obj.kind));
    if (!cls) return [`no schema for apiVersion ${obj.apiVersion} kind ${obj.kind}`];
    const tracker = new ReadTracker();
    const errs = [];
    try {
        cls.prototype.validate.call(tracker.wrap(obj));
    } catch (e) {
        if (!Array.isArray(e.errors)) throw e;
        for (const er of e.errors) errs.push(`${er.instancePath || "/"} ${er.message}`);
    }
    errs.push(...tracker.unknown(obj));
    return [...new Set(errs)];
}

const objName = (o) => `${o.kind}/${o.metadata?.name}`;

// ---- what the manifests must hold --------------------------------------------------------

function find(objs, kind, name) {
    return objs.find((o) => o.kind === kind && o.metadata?.name === name);
}

function selects(sel, labels) {
    if (!isObj(sel)) return false;
    const ml = sel.matchLabels ?? {};
    const me = sel.matchExpressions ?? [];
    if (Object.keys(ml).length === 0 && me.length === 0) return true;
    for (const [k, v] of Object.entries(ml)) if (labels[k] !== v) return false;
    for (const e of me) {
        const has = Object.prototype.hasOwnProperty.call(labels, e.key);
        const v = labels[e.key];
        if (e.operator === "In" && !(has && e.values.includes(v))) return false;
        if (e.operator === "NotIn" && has && e.values.includes(v)) return false;
        if (e.operator === "Exists" && !has) return false;
        if (e.operator === "DoesNotExist" && has) return false;
    }
    return true;
}
// A Service's selector (a plain map).
function svcSelects(svc, labels) {
    const s = svc.spec?.selector;
    return isObj(s) && Object.keys(s).length > 0 && selects({ matchLabels: s }, labels);
}

function duration(s) {
    const m = String(s).match(/^(\d+(?:\.\d+)?(?:ns|us|ms|s|m|h))+$/);
    if (!m) return NaN;
    const unit = { ns: 1e-9, us: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
    let t = 0;
    for (const [, n, u] of String(s).matchAll(/(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)/g)) t += n * unit[u];
    return t;
}
function quantityBytes(q) {
    const m = String(q).match(/^(\d+(?:\.\d+)?)([KMGTPE]i?)?$/);
    if (!m) return NaN;
    const pow = { K: 1, M: 2, G: 3, T: 4, P: 5, E: 6 };
    const base = m[2]?.endsWith("i") ? 1024 : 1000;
    return Number(m[1]) * (m[2] ? base ** pow[m[2][0]] : 1);
}

// The keys of each program's config file, from the tables of docs/configuration.md.
function documentedKeys(section) {
    const doc = fs.readFileSync(path.join(src, "docs", "configuration.md"), "utf8");
    const start = doc.indexOf(`\n## ${section}\n`);
    if (start < 0) throw new Error(`docs/configuration.md has no section ${section}`);
    const end = doc.indexOf("\n## ", start + 1);
    const keys = new Set();
    for (const m of doc.slice(start, end < 0 ? undefined : end).matchAll(/^\| `([a-z0-9_.]+)` \|/gm)) {
        keys.add(m[1]);
    }
    return keys;
}
function flatKeys(o, prefix = "") {
    const out = [];
    for (const [k, v] of Object.entries(o ?? {})) {
        if (isObj(v)) out.push(...flatKeys(v, `${prefix}${k}.`));
        else out.push(`${prefix}${k}`);
    }
    return out;
}

const ROLES = {
    coord: {
        sts: "dvec-coord",
        component: "coordinator",
        config: "coord.yaml",
        docSection: "dvec-coord",
        command: ["dvec-entrypoint", "coord"],
        ports: { native: 7300, raft: 7310, http: 7380 },
        serviceEnv: "DVEC_COORD_SERVICE",
    },
    node: {
        sts: "dvec-node",
        component: "node",
        config: "shard.yaml",
        docSection: "dvec-shard",
        command: ["dvec-entrypoint", "shard"],
        ports: { native: 7400, search: 7401, http: 7480 },
        serviceEnv: "DVEC_NODE_SERVICE",
    },
};
// Set by dvec-entrypoint as flags: never in the files.
const ENTRYPOINT_KEYS = [
    "listen", "advertise", "http", "http_advertise", "search_listen", "data_dir", "node_id",
    "node_id_from_hostname", "coordinators", "id", "id_from_hostname", "group", "join",
    "raft.listen", "raft.advertise",
];

const sts = (objs, role) => find(objs, "StatefulSet", ROLES[role].sts);
const podSpec = (s) => s?.spec?.template?.spec ?? {};
const containers = (s) => [...(podSpec(s).initContainers ?? []), ...(podSpec(s).containers ?? [])];
const main = (s) => podSpec(s).containers?.[0] ?? {};
const envOf = (c, name) => (c.env ?? []).find((e) => e.name === name);
const podLabels = (s) => s?.spec?.template?.metadata?.labels ?? {};
function containerPort(c, port) {
    if (typeof port === "number") return port;
    return (c.ports ?? []).find((p) => p.name === port)?.containerPort;
}

// Each check returns the problems it found ([] = fine). `ctx`: what the overlay must have.
const CHECKS = {
    "the objects dvec needs are there"(objs) {
        const p = [];
        for (const [k, n] of [
            ["StatefulSet", "dvec-coord"], ["StatefulSet", "dvec-node"],
            ["Service", "dvec-coord"], ["Service", "dvec-node"], ["Service", "dvec"],
            ["PodDisruptionBudget", "dvec-coord"], ["PodDisruptionBudget", "dvec-node"],
            ["ServiceAccount", "dvec"],
        ]) {
            if (!find(objs, k, n)) p.push(`no ${k} ${n}`);
        }
        if (!objs.some((o) => o.kind === "NetworkPolicy")) p.push("no NetworkPolicy");
        const names = objs.map(objName);
        for (const n of names) if (names.indexOf(n) !== names.lastIndexOf(n)) p.push(`${n} twice`);
        for (const o of objs) {
            if (o.metadata?.labels?.["app.kubernetes.io/name"] !== "dvec") {
                p.push(`${objName(o)}: no label app.kubernetes.io/name=dvec`);
            }
        }
        return p;
    },

    "the entrypoint's contract: names, env, replicas == DVEC_COORD_REPLICAS"(objs, ctx) {
        const p = [];
        const coord = sts(objs, "coord");
        const node = sts(objs, "node");
        if (!coord || !node) return ["StatefulSets missing"];
        const nCoord = coord.spec.replicas;
        const nNode = node.spec.replicas;
        if (nCoord !== ctx.coords) p.push(`dvec-coord has ${nCoord} replicas, expected ${ctx.coords}`);
        if (nNode !== ctx.nodes) p.push(`dvec-node has ${nNode} replicas, expected ${ctx.nodes}`);
        if (![1, 3, 5].includes(nCoord)) p.push(`dvec-coord: ${nCoord} coordinators (1, 3 or 5)`);
        for (const role of ["coord", "node"]) {
            const s = sts(objs, role);
            const r = ROLES[role];
            const c = main(s);
            const where = `${r.sts}/${c.name}`;
            if ((podSpec(s).containers ?? []).length !== 1) p.push(`${r.sts}: one container expected`);
            if (s.spec.podManagementPolicy !== "Parallel") p.push(`${r.sts}: podManagementPolicy is not Parallel`);
            if (JSON.stringify(c.command) !== JSON.stringify(r.command)) {
                p.push(`${where}: command ${JSON.stringify(c.command)}, expected ${JSON.stringify(r.command)}`);
            }
            if (c.args?.length) p.push(`${where}: args given`);
            if (c.envFrom?.length) p.push(`${where}: envFrom (the contract is env)`);
            const ns = envOf(c, "POD_NAMESPACE");
            if (ns?.valueFrom?.fieldRef?.fieldPath !== "metadata.namespace") {
                p.push(`${where}: POD_NAMESPACE not from metadata.namespace`);
            }
            if (envOf(c, "DVEC_CLUSTER_DOMAIN")?.value !== "cluster.local") {
                p.push(`${where}: DVEC_CLUSTER_DOMAIN is not cluster.local`);
            }
            if (envOf(c, "DVEC_COORD_SERVICE")?.value !== coord.spec.serviceName) {
                p.push(`${where}: DVEC_COORD_SERVICE is not dvec-coord's serviceName ${coord.spec.serviceName}`);
            }
            const rep = envOf(c, "DVEC_COORD_REPLICAS")?.value;
            if (rep !== String(nCoord)) {
                p.push(`${where}: DVEC_COORD_REPLICAS ${JSON.stringify(rep)} but dvec-coord has ${nCoord} replicas`);
            }
            if (role === "node" && envOf(c, "DVEC_NODE_SERVICE")?.value !== node.spec.serviceName) {
                p.push(`${where}: DVEC_NODE_SERVICE is not dvec-node's serviceName ${node.spec.serviceName}`);
            }
            const names = (c.env ?? []).map((e) => e.name);
            for (const n of names) if (names.indexOf(n) !== names.lastIndexOf(n)) p.push(`${where}: env ${n} twice`);
            for (const [name, port] of Object.entries(r.ports)) {
                if (containerPort(c, name) !== port) p.push(`${where}: no container port ${name}=${port}`);
            }
            const image = ctx.image ?? "dvec:0.1.0";
            if (c.image !== image) p.push(`${where}: image ${c.image}, expected ${image}`);
        }
        const pre = main(node).lifecycle?.preStop?.exec?.command;
        if (JSON.stringify(pre) !== JSON.stringify(["dvec-entrypoint", "prestop"])) {
            p.push(`dvec-node: preStop ${JSON.stringify(pre)}, expected ["dvec-entrypoint","prestop"]`);
        }
        if (main(coord).lifecycle?.preStop) p.push("dvec-coord: a preStop hook (nodes only)");
        return p;
    },

    "grace periods cover preStop and shutdown_timeout"(objs) {
        const p = [];
        for (const role of ["coord", "node"]) {
            const s = sts(objs, role);
            const cfg = configOf(objs, role);
            const shutdown = duration(cfg?.shutdown_timeout ?? "30s");
            const c = main(s);
            const wait = role === "node" ? Number(envOf(c, "DVEC_PRESTOP_WAIT")?.value ?? 600) : 0;
            const grace = podSpec(s).terminationGracePeriodSeconds ?? 30;
            if (!(grace > wait + shutdown)) {
                p.push(`${ROLES[role].sts}: terminationGracePeriodSeconds ${grace} <= preStop wait ${wait} + shutdown_timeout ${shutdown}`);
            }
        }
        return p;
    },

    "headless Services: clusterIP None, publishNotReadyAddresses, ports, selectors"(objs) {
        const p = [];
        for (const role of ["coord", "node"]) {
            const s = sts(objs, role);
            const svc = find(objs, "Service", s?.spec?.serviceName);
            if (!svc) {
                p.push(`${ROLES[role].sts}: no Service named as its serviceName ${s?.spec?.serviceName}`);
                continue;
            }
            const n = objName(svc);
            if (svc.spec.clusterIP !== "None") p.push(`${n}: clusterIP is not None`);
            if (svc.spec.publishNotReadyAddresses !== true) p.push(`${n}: publishNotReadyAddresses is not true`);
            if (!svcSelects(svc, podLabels(s))) p.push(`${n}: does not select ${ROLES[role].sts}'s pods`);
            const other = sts(objs, role === "coord" ? "node" : "coord");
            if (svcSelects(svc, podLabels(other))) p.push(`${n}: also selects ${other.metadata.name}'s pods`);
            const want = Object.values(ROLES[role].ports).sort();
            const have = (svc.spec.ports ?? []).map((x) => x.port).sort();
            if (JSON.stringify(want) !== JSON.stringify(have)) p.push(`${n}: ports ${have}, expected ${want}`);
            for (const x of svc.spec.ports ?? []) {
                if (containerPort(main(s), x.targetPort ?? x.port) !== x.port) {
                    p.push(`${n}: port ${x.port} targets ${x.targetPort}, not container port ${x.port}`);
                }
            }
        }
        return p;
    },

    "client Service dvec: REST on 7380 (http) and 6333, native 7300, coordinators only"(objs) {
        const p = [];
        const svc = find(objs, "Service", "dvec");
        if (!svc) return ["no Service dvec"];
        const coord = sts(objs, "coord");
        if ((svc.spec.type ?? "ClusterIP") !== "ClusterIP") p.push(`type ${svc.spec.type}`);
        if (svc.spec.clusterIP === "None") p.push("headless");
        if (!svcSelects(svc, podLabels(coord))) p.push("does not select the coordinators");
        if (svcSelects(svc, podLabels(sts(objs, "node")))) p.push("selects the nodes");
        const byPort = Object.fromEntries((svc.spec.ports ?? []).map((x) => [x.port, x]));
        for (const [port, target, name] of [[7380, 7380, "http"], [6333, 7380, null], [7300, 7300, null]]) {
            const x = byPort[port];
            if (!x) {
                p.push(`no port ${port}`);
                continue;
            }
            if (containerPort(main(coord), x.targetPort ?? x.port) !== target) p.push(`port ${port} does not reach ${target}`);
            if (name && x.name !== name) p.push(`port ${port} is named ${x.name}, expected ${name}`);
        }
        return p;
    },

    "probes: startup and liveness /healthz, readiness /readyz, on the HTTP port"(objs) {
        const p = [];
        for (const role of ["coord", "node"]) {
            const s = sts(objs, role);
            for (const c of containers(s)) {
                const where = `${ROLES[role].sts}/${c.name}`;
                for (const [kind, want] of [["startupProbe", "/healthz"], ["livenessProbe", "/healthz"], ["readinessProbe", "/readyz"]]) {
                    const g = c[kind]?.httpGet;
                    if (!g) {
                        p.push(`${where}: no ${kind} (httpGet)`);
                        continue;
                    }
                    if (g.path !== want) p.push(`${where}: ${kind} path ${g.path}, expected ${want}`);
                    if (containerPort(c, g.port) !== ROLES[role].ports.http) p.push(`${where}: ${kind} port ${g.port} is not the HTTP port`);
                }
                const sp = c.startupProbe ?? {};
                const budget = (sp.periodSeconds ?? 10) * (sp.failureThreshold ?? 3);
                if (role === "node" && budget < 300) p.push(`${where}: startup probe gives ${budget} s for the WAL replay (< 300)`);
            }
        }
        return p;
    },

    "security: non-root 10001, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp, no token"(objs) {
        const p = [];
        const sa = find(objs, "ServiceAccount", "dvec");
        if (sa?.automountServiceAccountToken !== false) p.push("ServiceAccount dvec mounts its token");
        for (const role of ["coord", "node"]) {
            const s = sts(objs, role);
            const ps = podSpec(s);
            const n = ROLES[role].sts;
            const psc = ps.securityContext ?? {};
            if (psc.runAsNonRoot !== true) p.push(`${n}: pod runAsNonRoot is not true`);
            if (psc.runAsUser !== 10001) p.push(`${n}: pod runAsUser ${psc.runAsUser}`);
            if (psc.fsGroup !== 10001) p.push(`${n}: pod fsGroup ${psc.fsGroup}`);
            if (psc.seccompProfile?.type !== "RuntimeDefault") p.push(`${n}: pod seccompProfile is not RuntimeDefault`);
            if (ps.serviceAccountName !== "dvec" || !sa) p.push(`${n}: serviceAccountName ${ps.serviceAccountName}`);
            if (ps.automountServiceAccountToken !== false) p.push(`${n}: automountServiceAccountToken is not false`);
            if (ps.hostNetwork || ps.hostPID || ps.hostIPC) p.push(`${n}: host namespaces`);
            for (const c of containers(s)) {
                const sc = c.securityContext ?? {};
                const where = `${n}/${c.name}`;
                if (sc.runAsNonRoot !== true) p.push(`${where}: runAsNonRoot is not true`);
                if ((sc.runAsUser ?? psc.runAsUser) !== 10001) p.push(`${where}: runs as ${sc.runAsUser ?? psc.runAsUser}`);
                if (sc.readOnlyRootFilesystem !== true) p.push(`${where}: readOnlyRootFilesystem is not true`);
                if (sc.allowPrivilegeEscalation !== false) p.push(`${where}: allowPrivilegeEscalation is not false`);
                if (sc.privileged) p.push(`${where}: privileged`);
                if (!(sc.capabilities?.drop ?? []).includes("ALL")) p.push(`${where}: capabilities not dropped (ALL)`);
                if (sc.capabilities?.add?.length) p.push(`${where}: capabilities added`);
            }
        }
        return p;
    },

    "volumes: ConfigMap at /etc/dvec (read-only), a PVC at /var/lib/dvec, an emptyDir at /tmp"(objs, ctx) {
        const p = [];
        for (const role of ["coord", "node"]) {
            const s = sts(objs, role);
            const c = main(s);
            const n = ROLES[role].sts;
            const vols = Object.fromEntries((podSpec(s).volumes ?? []).map((v) => [v.name, v]));
            const claims = Object.fromEntries((s.spec.volumeClaimTemplates ?? []).map((v) => [v.metadata?.name, v]));
            const mount = (dir) => (c.volumeMounts ?? []).find((m) => m.mountPath === dir);
            const cfg = mount("/etc/dvec");
            const cm = cfg && find(objs, "ConfigMap", vols[cfg.name]?.configMap?.name);
            if (!cfg || !cm) p.push(`${n}: /etc/dvec is not a ConfigMap of this manifest`);
            else {
                if (cfg.readOnly !== true) p.push(`${n}: /etc/dvec is not read-only`);
                if (cfg.subPath) p.push(`${n}: /etc/dvec by subPath (not updated in place)`);
                if (typeof cm.data?.[ROLES[role].config] !== "string") p.push(`${n}: ${cm.metadata.name} has no ${ROLES[role].config}`);
            }
            const data = mount("/var/lib/dvec");
            const claim = data && claims[data.name];
            if (!claim) p.push(`${n}: /var/lib/dvec is not a volumeClaimTemplate`);
            else {
                const size = claim.spec?.resources?.requests?.storage;
                if (ctx.storage?.[role] && size !== ctx.storage[role]) p.push(`${n}: PVC of ${size}, expected ${ctx.storage[role]}`);
                if (!(claim.spec?.accessModes ?? []).includes("ReadWriteOnce")) p.push(`${n}: PVC not ReadWriteOnce`);
            }
            const t = mount("/tmp");
            if (!t || !vols[t.name]?.emptyDir) p.push(`${n}: /tmp is not an emptyDir`);
            const ret = s.spec.persistentVolumeClaimRetentionPolicy ?? {};
            if ((ret.whenScaled ?? "Retain") !== "Retain" || (ret.whenDeleted ?? "Retain") !== "Retain") {
                p.push(`${n}: PVCs are not retained`);
            }
        }
        return p;
    },

    "config files: documented keys only, none the entrypoint sets"(objs) {
        const p = [];
        for (const role of ["coord", "node"]) {
            const known = documentedKeys(ROLES[role].docSection);
            let cfg;
            try {
                cfg = configOf(objs, role);
            } catch (e) {
                p.push(`${ROLES[role].config}: ${e.message}`);
                continue;
            }
            if (!cfg) {
                p.push(`no ${ROLES[role].config}`);
                continue;
            }
            for (const k of flatKeys(cfg)) {
                if (!known.has(k)) p.push(`${ROLES[role].config}: key ${k} is not in docs/configuration.md (${ROLES[role].docSection})`);
                if (ENTRYPOINT_KEYS.includes(k)) p.push(`${ROLES[role].config}: key ${k} is set by dvec-entrypoint`);
            }
            for (const [k, v] of Object.entries(flatten(cfg))) {
                if (/timeout|after|interval/.test(k) && Number.isNaN(duration(v))) p.push(`${ROLES[role].config}: ${k}: ${v} is not a duration`);
            }
        }
        return p;
    },

    "PodDisruptionBudgets: maxUnavailable 1, each selects the pods of one StatefulSet"(objs) {
        const p = [];
        const all = objs.filter((o) => o.kind === "StatefulSet");
        for (const role of ["coord", "node"]) {
            const pdb = find(objs, "PodDisruptionBudget", ROLES[role].sts);
            if (!pdb) {
                p.push(`no PodDisruptionBudget ${ROLES[role].sts}`);
                continue;
            }
            if (pdb.spec.maxUnavailable !== 1) p.push(`${objName(pdb)}: maxUnavailable ${pdb.spec.maxUnavailable}`);
            const sel = all.filter((s) => selects(pdb.spec.selector, podLabels(s))).map((s) => s.metadata.name);
            if (JSON.stringify(sel) !== JSON.stringify([ROLES[role].sts])) {
                p.push(`${objName(pdb)}: selects the pods of [${sel}], expected [${ROLES[role].sts}]`);
            }
        }
        return p;
    },

    "NetworkPolicy: 7310 from coordinators, 7400 from coordinators and nodes, 7480 in the namespace, 7300/7380/7401 open"(objs, ctx) {
        const p = [];
        const coordL = podLabels(sts(objs, "coord"));
        const nodeL = podLabels(sts(objs, "node"));
        const src = {
            coordinator: { labels: coordL, ns: "same" },
            node: { labels: nodeL, ns: "same" },
            "another pod of the namespace": { labels: { app: "client" }, ns: "same" },
            "a pod of another namespace": { labels: {}, ns: "other" },
        };
        const want = [
            ["coord", 7300, ["coordinator", "node", "another pod of the namespace", "a pod of another namespace"]],
            ["coord", 7380, ["coordinator", "node", "another pod of the namespace", "a pod of another namespace"]],
            ["coord", 7310, ["coordinator"]],
            ["node", 7400, ["coordinator", "node"]],
            ["node", 7401, ["coordinator", "node", "another pod of the namespace", "a pod of another namespace"]],
            ["node", 7480, ["coordinator", "node", "another pod of the namespace", ...(ctx.monitoring ? ["a pod of another namespace"] : [])]],
        ];
        for (const [role, port, allowedFrom] of want) {
            const target = sts(objs, role);
            for (const [who, s] of Object.entries(src)) {
                const got = npAllows(objs, target, port, s);
                if (got !== allowedFrom.includes(who)) {
                    p.push(`${ROLES[role].sts} port ${port}: ${who} is ${got ? "let in" : "kept out"}`);
                }
            }
        }
        return p;
    },

    "resources: requests (and memory limits in prod) on every container"(objs, ctx) {
        const p = [];
        for (const role of ["coord", "node"]) {
            for (const c of containers(sts(objs, role))) {
                const r = c.resources ?? {};
                const where = `${ROLES[role].sts}/${c.name}`;
                if (!r.requests?.cpu || !r.requests?.memory) p.push(`${where}: no cpu and memory requests`);
                if (ctx.limits && !r.limits?.memory) p.push(`${where}: no memory limit`);
                if (ctx.requests?.[role]) {
                    const [cpu, mem] = ctx.requests[role];
                    if (String(r.requests?.cpu) !== cpu || r.requests?.memory !== mem) {
                        p.push(`${where}: requests ${r.requests?.cpu}/${r.requests?.memory}, expected ${cpu}/${mem}`);
                    }
                }
            }
        }
        return p;
    },

    "spread: one pod of a kind per Kubernetes node (prod)"(objs, ctx) {
        if (!ctx.spread) return [];
        const p = [];
        for (const role of ["coord", "node"]) {
            const s = sts(objs, role);
            const ps = podSpec(s);
            const anti = ps.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [];
            const tsc = ps.topologySpreadConstraints ?? [];
            const own = podLabels(s);
            const byAnti = anti.some((t) => t.topologyKey === "kubernetes.io/hostname" && selects(t.labelSelector, own));
            const byTsc = tsc.some((t) => t.topologyKey === "kubernetes.io/hostname" && t.whenUnsatisfiable === "DoNotSchedule" && selects(t.labelSelector, own));
            if (!byAnti && !byTsc) p.push(`${ROLES[role].sts}: nothing keeps two of its pods off one Kubernetes node`);
        }
        return p;
    },

    "ServiceMonitor: only with the component, scrapes /metrics of both headless Services"(objs, ctx) {
        const p = [];
        const sms = objs.filter((o) => o.kind === "ServiceMonitor");
        if (!ctx.monitoring) return sms.length ? [`${sms.length} ServiceMonitor(s) without the component`] : [];
        if (sms.length !== 1) return [`${sms.length} ServiceMonitors, expected 1`];
        const sm = sms[0];
        if (sm.apiVersion !== "monitoring.coreos.com/v1") p.push(`apiVersion ${sm.apiVersion}`);
        if (sm.spec?.namespaceSelector) p.push("a namespaceSelector (the Services are in its namespace)");
        const svcs = objs.filter((o) => o.kind === "Service" && selects(sm.spec?.selector, o.metadata?.labels ?? {}));
        const names = svcs.map((s) => s.metadata.name).sort();
        if (JSON.stringify(names) !== JSON.stringify(["dvec-coord", "dvec-node"])) p.push(`selects Services [${names}], expected [dvec-coord,dvec-node]`);
        const eps = sm.spec?.endpoints ?? [];
        if (eps.length === 0) p.push("no endpoints");
        for (const svc of svcs) {
            const role = svc.metadata.name === "dvec-coord" ? "coord" : "node";
            const scraped = eps.filter((e) => (svc.spec.ports ?? []).some((x) => x.name === e.port));
            if (scraped.length !== 1) p.push(`${svc.metadata.name}: ${scraped.length} endpoints match its ports, expected 1`);
            for (const e of scraped) {
                const x = svc.spec.ports.find((q) => q.name === e.port);
                if (x.port !== ROLES[role].ports.http) p.push(`${svc.metadata.name}: scrapes port ${x.port}, not ${ROLES[role].ports.http}`);
                if ((e.path ?? "/metrics") !== "/metrics") p.push(`${svc.metadata.name}: path ${e.path}`);
            }
        }
        return p;
    },
};

function flatten(o, prefix = "", out = {}) {
    for (const [k, v] of Object.entries(o ?? {})) {
        if (isObj(v)) flatten(v, `${prefix}${k}.`, out);
        else out[`${prefix}${k}`] = v;
    }
    return out;
}

// The parsed config file a role's pods mount.
function configOf(objs, role) {
    const s = sts(objs, role);
    const c = main(s);
    const m = (c.volumeMounts ?? []).find((v) => v.mountPath === "/etc/dvec");
    const vol = (podSpec(s).volumes ?? []).find((v) => v.name === m?.name);
    const cm = find(objs, "ConfigMap", vol?.configMap?.name);
    const text = cm?.data?.[ROLES[role].config];
    if (typeof text !== "string") return null;
    const cfg = YAML.parse(text) ?? {};
    if (!isObj(cfg)) throw new Error("not a mapping");
    return cfg;
}

// Does the union of NetworkPolicies let `source` reach `port` of the StatefulSet's pods?
function npAllows(objs, target, port, source) {
    const labels = podLabels(target);
    const pols = objs.filter(
        (o) => o.kind === "NetworkPolicy" && selects(o.spec?.podSelector ?? {}, labels) &&
            (o.spec?.policyTypes ?? ["Ingress"]).includes("Ingress"),
    );
    if (pols.length === 0) return true;
    const c = main(target);
    for (const pol of pols) {
        for (const rule of pol.spec.ingress ?? []) {
            const ports = rule.ports ?? [];
            const portOk = ports.length === 0 || ports.some((x) =>
                (x.protocol ?? "TCP") === "TCP" &&
                (x.port === undefined || (x.endPort ? containerPort(c, x.port) <= port && port <= x.endPort : containerPort(c, x.port) === port)));
            if (!portOk) continue;
            const from = rule.from ?? [];
            const fromOk = from.length === 0 || from.some((peer) => {
                if (peer.ipBlock) return false;
                const nsOk = peer.namespaceSelector ? selects(peer.namespaceSelector, source.ns === "same" ? { same: "1" } : { other: "1" }) : source.ns === "same";
                const podOk = peer.podSelector ? selects(peer.podSelector, source.labels) : true;
                return nsOk && podOk;
            });
            if (fromOk) return true;
        }
    }
    return false;
}

// ---- the renders -------------------------------------------------------------------------

const RENDERS = [
    {
        name: "dev",
        dir: path.join(k8sDir, "overlays", "dev"),
        ctx: {
            coords: 1, nodes: 1, storage: { coord: "1Gi", node: "1Gi" },
            requests: { coord: ["100m", "256Mi"], node: ["100m", "256Mi"] },
        },
    },
    {
        name: "prod",
        dir: path.join(k8sDir, "overlays", "prod"),
        ctx: { coords: 3, nodes: 3, limits: true, spread: true },
    },
    {
        name: "prod+servicemonitor",
        dir: () => overlayOnProd("servicemonitor", "components:\n  - @K8S@/components/servicemonitor\n"),
        ctx: { coords: 3, nodes: 3, limits: true, spread: true, monitoring: true },
    },
    {
        name: "prod+images",
        dir: () => overlayOnProd("images", "images:\n  - name: dvec\n    newName: registry.example/dvec\n    newTag: 9.9.9\n"),
        ctx: { coords: 3, nodes: 3, limits: true, spread: true, image: "registry.example/dvec:9.9.9" },
    },
];

const rendered = {};
for (const r of RENDERS) {
    let objs = null;
    let detail = "";
    try {
        const dir = typeof r.dir === "function" ? r.dir() : r.dir;
        objs = parseDocs(kustomize(dir));
    } catch (e) {
        detail = (e.stderr || e.message || String(e)).toString();
    }
    if (!ok(objs !== null && objs.length > 0, `${r.name}: kubectl kustomize renders it`, detail)) continue;
    rendered[r.name] = objs;
    diag(`${r.name}: ${objs.map(objName).join(", ")}`);

    for (const o of objs) {
        const errs = await schemaErrors(o);
        ok(errs.length === 0, `${r.name}: ${objName(o)} matches its schema (${o.apiVersion})`, errs.join("\n"));
    }
    for (const [desc, fn] of Object.entries(CHECKS)) {
        let probs;
        try {
            probs = fn(objs, r.ctx);
        } catch (e) {
            probs = [`exception: ${e.stack}`];
        }
        ok(probs.length === 0, `${r.name}: ${desc}`, probs.join("\n"));
    }
}

// dev and prod differ where they should and nowhere else that matters.
if (rendered.dev && rendered.prod) {
    const size = (objs, role) => quantityBytes(sts(objs, role)?.spec?.volumeClaimTemplates?.[0]?.spec?.resources?.requests?.storage);
    ok(size(rendered.prod, "node") > size(rendered.dev, "node") && size(rendered.prod, "coord") > size(rendered.dev, "coord"),
        "prod's volumes are bigger than dev's",
        `node ${size(rendered.dev, "node")} -> ${size(rendered.prod, "node")}, coord ${size(rendered.dev, "coord")} -> ${size(rendered.prod, "coord")}`);
}

// The unknown-field check reaches every level: a field added to any mapping of any rendered
// object is refused, except in the maps whose keys are free (labels, Service selectors,
// matchLabels, ConfigMap data, resource requests and limits).
{
    const objs = rendered["prod+servicemonitor"] ?? rendered.prod ?? [];
    const isMap = (o, p) => /\/(labels|annotations|matchLabels|requests|limits)$/.test(p) ||
        (o.kind === "ConfigMap" && p === "/data") || (o.kind === "Service" && p === "/spec/selector");
    const missed = [];
    let levels = 0;
    const walk = async (o, node, p) => {
        if (Array.isArray(node)) {
            for (let i = 0; i < node.length; i++) await walk(o, node[i], `${p}/${i}`);
            return;
        }
        if (!isObj(node)) return;
        levels++;
        node.zzUnknownField = true;
        const errs = await schemaErrors(o);
        delete node.zzUnknownField;
        const refused = errs.includes(`${p}/zzUnknownField: unknown field`) ||
            errs.includes(`${p}/zzUnknownField must be string`);
        if (!refused && !isMap(o, p)) missed.push(`${objName(o)} ${p || "/"}: ${JSON.stringify(errs)}`);
        for (const [k, v] of Object.entries(node)) await walk(o, v, `${p}/${k}`);
    };
    for (const o of objs) await walk(o, o, "");
    ok(levels > 100 && missed.length === 0,
        `an unknown field is refused at each of the ${levels} mappings of the rendered objects (maps aside)`,
        missed.join("\n"));
}

// ---- negative cases: each broken copy must be refused, for its own reason ------------------

const clone = (o) => structuredClone(o);
const base = rendered.prod ?? [];
function mutated(fn) {
    const objs = clone(base);
    fn(objs);
    // Through YAML and back, as a file would come.
    return parseDocs(objs.map((o) => YAML.stringify(o)).join("---\n"));
}

if (base.length) {
    const schemaCases = [
        {
            desc: 'StatefulSet with replicas: "three"',
            edit: (objs) => { sts(objs, "coord").spec.replicas = "three"; },
            pick: (objs) => sts(objs, "coord"),
            want: ["/spec/replicas must be integer"],
        },
        {
            desc: "a container with an unknown field (livenesProbe)",
            edit: (objs) => {
                const c = main(sts(objs, "node"));
                c.livenesProbe = c.livenessProbe;
            },
            pick: (objs) => sts(objs, "node"),
            want: ["/spec/template/spec/containers/0/livenesProbe: unknown field"],
        },
        {
            desc: "a Service with an unknown spec field (publishNotReadyAddress)",
            edit: (objs) => { find(objs, "Service", "dvec-coord").spec.publishNotReadyAddress = true; },
            pick: (objs) => find(objs, "Service", "dvec-coord"),
            want: ["/spec/publishNotReadyAddress: unknown field"],
        },
        {
            desc: "an unknown top-level field (specs)",
            edit: (objs) => { find(objs, "PodDisruptionBudget", "dvec-node").specs = {}; },
            pick: (objs) => find(objs, "PodDisruptionBudget", "dvec-node"),
            want: ["/specs: unknown field"],
        },
        {
            desc: "a container without a name",
            edit: (objs) => { delete main(sts(objs, "coord")).name; },
            pick: (objs) => sts(objs, "coord"),
            want: ["/spec/template/spec/containers/0 must have required property name"],
        },
        {
            desc: "a memory limit that is no quantity (8GB)",
            edit: (objs) => { main(sts(objs, "node")).resources.limits.memory = "8GB"; },
            pick: (objs) => sts(objs, "node"),
            wantPrefix: "/spec/template/spec/containers/0/resources/limits/memory ",
        },
        {
            desc: "a NetworkPolicy port with an unknown protocol (TPC)",
            edit: (objs) => { find(objs, "NetworkPolicy", "dvec-coord").spec.ingress[0].ports[0].protocol = "TPC"; },
            pick: (objs) => find(objs, "NetworkPolicy", "dvec-coord"),
            wantPrefix: "/spec/ingress/0/ports/0/protocol ",
        },
        {
            desc: "a kind that does not exist (StatefulSett)",
            edit: (objs) => { sts(objs, "coord").kind = "StatefulSett"; },
            pick: (objs) => objs.find((o) => o.kind === "StatefulSett"),
            want: ["no schema for apiVersion apps/v1 kind StatefulSett"],
        },
    ];
    if (rendered["prod+servicemonitor"]) {
        const sm = rendered["prod+servicemonitor"].find((o) => o.kind === "ServiceMonitor");
        schemaCases.push({
            desc: "a ServiceMonitor endpoint with an unknown field (intervall)",
            edit: (objs) => {
                const s = clone(sm);
                s.spec.endpoints[0].intervall = s.spec.endpoints[0].interval;
                objs.push(s);
            },
            pick: (objs) => objs.find((o) => o.kind === "ServiceMonitor"),
            want: ["/spec/endpoints/0/intervall: unknown field"],
        });
        schemaCases.push({
            desc: "a ServiceMonitor endpoint whose port is a list",
            edit: (objs) => {
                const s = clone(sm);
                s.spec.endpoints[0].port = ["http"];
                objs.push(s);
            },
            pick: (objs) => objs.find((o) => o.kind === "ServiceMonitor"),
            wantPrefix: "/spec/endpoints/0/port ",
        });
    }
    for (const t of schemaCases) {
        let errs;
        try {
            errs = await schemaErrors(t.pick(mutated(t.edit)));
        } catch (e) {
            errs = [`exception: ${e.stack}`];
        }
        const right = t.want
            ? JSON.stringify(errs) === JSON.stringify(t.want)
            : errs.length > 0 && errs.every((e) => e.startsWith(t.wantPrefix));
        if (ok(right, `schema refuses ${t.desc}`,
            `errors: ${JSON.stringify(errs)}\nexpected: ${JSON.stringify(t.want ?? `errors under ${t.wantPrefix}`)}`)) {
            diag(`refused: ${errs.join("; ")}`);
        }
    }

    // The property checks fail too, each on its own case and with the reason it names.
    const prodCtx = RENDERS[1].ctx;
    const setEnv = (c, name, value) => { envOf(c, name).value = value; };
    const checkCases = [
        {
            desc: "DVEC_COORD_REPLICAS of the nodes different from the coordinators' replicas",
            check: "the entrypoint's contract: names, env, replicas == DVEC_COORD_REPLICAS",
            edit: (objs) => setEnv(main(sts(objs, "node")), "DVEC_COORD_REPLICAS", "1"),
            want: /dvec-node\/shard: DVEC_COORD_REPLICAS "1" but dvec-coord has 3 replicas/,
        },
        {
            desc: "coordinators scaled without DVEC_COORD_REPLICAS",
            check: "the entrypoint's contract: names, env, replicas == DVEC_COORD_REPLICAS",
            edit: (objs) => { sts(objs, "coord").spec.replicas = 5; },
            want: /dvec-coord\/coord: DVEC_COORD_REPLICAS "3" but dvec-coord has 5 replicas/,
        },
        {
            desc: "podManagementPolicy OrderedReady",
            check: "the entrypoint's contract: names, env, replicas == DVEC_COORD_REPLICAS",
            edit: (objs) => { sts(objs, "coord").spec.podManagementPolicy = "OrderedReady"; },
            want: /dvec-coord: podManagementPolicy is not Parallel/,
        },
        {
            desc: "a headless Service without publishNotReadyAddresses",
            check: "headless Services: clusterIP None, publishNotReadyAddresses, ports, selectors",
            edit: (objs) => { delete find(objs, "Service", "dvec-coord").spec.publishNotReadyAddresses; },
            want: /Service\/dvec-coord: publishNotReadyAddresses is not true/,
        },
        {
            desc: "a PodDisruptionBudget selecting no pods",
            check: "PodDisruptionBudgets: maxUnavailable 1, each selects the pods of one StatefulSet",
            edit: (objs) => { find(objs, "PodDisruptionBudget", "dvec-node").spec.selector.matchLabels["app.kubernetes.io/component"] = "nodes"; },
            want: /PodDisruptionBudget\/dvec-node: selects the pods of \[\], expected \[dvec-node\]/,
        },
        {
            desc: "a container without a startup probe",
            check: "probes: startup and liveness /healthz, readiness /readyz, on the HTTP port",
            edit: (objs) => { delete main(sts(objs, "node")).startupProbe; },
            want: /dvec-node\/shard: no startupProbe/,
        },
        {
            desc: "a writable root filesystem",
            check: "security: non-root 10001, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp, no token",
            edit: (objs) => { main(sts(objs, "coord")).securityContext.readOnlyRootFilesystem = false; },
            want: /dvec-coord\/coord: readOnlyRootFilesystem is not true/,
        },
        {
            desc: "raft (7310) open to every pod",
            check: "NetworkPolicy: 7310 from coordinators, 7400 from coordinators and nodes, 7480 in the namespace, 7300/7380/7401 open",
            edit: (objs) => {
                const np = find(objs, "NetworkPolicy", "dvec-coord");
                np.spec.ingress[0].ports.push({ port: 7310, protocol: "TCP" });
            },
            want: /dvec-coord port 7310: node is let in/,
        },
        {
            desc: "no NetworkPolicy at all",
            check: "the objects dvec needs are there",
            edit: (objs) => { objs.splice(0, objs.length, ...objs.filter((o) => o.kind !== "NetworkPolicy")); },
            want: /^no NetworkPolicy$/,
        },
        {
            desc: "a config file with a key the entrypoint sets (listen)",
            check: "config files: documented keys only, none the entrypoint sets",
            edit: (objs) => {
                const cm = objs.find((o) => o.kind === "ConfigMap" && o.data?.["shard.yaml"]);
                cm.data["shard.yaml"] += "listen: tcp://0.0.0.0:7400\n";
            },
            want: /shard\.yaml: key listen is set by dvec-entrypoint/,
        },
        {
            desc: "a config file with an unknown key (log_levl)",
            check: "config files: documented keys only, none the entrypoint sets",
            edit: (objs) => {
                const cm = objs.find((o) => o.kind === "ConfigMap" && o.data?.["coord.yaml"]);
                cm.data["coord.yaml"] += "log_levl: debug\n";
            },
            want: /coord\.yaml: key log_levl is not in docs\/configuration\.md/,
        },
        {
            desc: "a node grace period shorter than the preStop wait",
            check: "grace periods cover preStop and shutdown_timeout",
            edit: (objs) => { podSpec(sts(objs, "node")).terminationGracePeriodSeconds = 60; },
            want: /dvec-node: terminationGracePeriodSeconds 60 <= preStop wait 600/,
        },
        {
            desc: "a node without a memory limit",
            check: "resources: requests (and memory limits in prod) on every container",
            edit: (objs) => { delete main(sts(objs, "node")).resources.limits; },
            want: /dvec-node\/shard: no memory limit/,
        },
        {
            desc: "a ServiceMonitor in an overlay without the component",
            check: "ServiceMonitor: only with the component, scrapes /metrics of both headless Services",
            edit: (objs) => { objs.push({ apiVersion: "monitoring.coreos.com/v1", kind: "ServiceMonitor", metadata: { name: "x" }, spec: {} }); },
            want: /1 ServiceMonitor\(s\) without the component/,
        },
    ];
    for (const t of checkCases) {
        let probs;
        try {
            probs = CHECKS[t.check](mutated(t.edit), prodCtx);
        } catch (e) {
            probs = [`exception: ${e.stack}`];
        }
        if (ok(probs.length > 0 && probs.some((x) => t.want.test(x)),
            `check "${t.check.split(":")[0]}" refuses ${t.desc}`,
            `problems: ${JSON.stringify(probs)}\nexpected one matching ${t.want}`)) {
            diag(`refused: ${probs.join("; ")}`);
        }
    }
}

console.log(`1..${nTests}`);
process.exit(nFailed ? 1 : 0);
