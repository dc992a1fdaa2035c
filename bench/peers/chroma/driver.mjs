// driver.mjs - the JS side of bench/peers/chroma/run: loads a TEXMEX set into Chroma through
// Chroma's own JS client (chromadb), and measures searches through Chroma's JS client or
// through Qdrant's JS client (@qdrant/js-client-rest: `query`, POST .../points/query, with
// params.hnsw_ef; 1.19 has no `search` any more) against dvec's REST API, with the same
// shape for both: C async workers in this one node process, each with its own client object,
// each sending one query and awaiting its answer before taking the next (query i = a shared
// counter), top-k by L2, recall@k against gt.ivecs. Output: one JSON object per line on stdout.
//
//   node driver.mjs chroma-load  --url URL --coll NAME --data DIR [--m 16] [--efc 200]
//                                [--ef 100] [--batch 1000]
//   node driver.mjs chroma-search --url URL --coll NAME --data DIR --ef LIST --clients LIST
//                                [--queries N] [--k 10] [--warmup N]
//   node driver.mjs qdrant-search --url URL --coll NAME --data DIR --ef LIST --clients LIST
//                                [--queries N] [--k 10] [--warmup N]
//   node driver.mjs chroma-set-ef --url URL --coll NAME --ef N     (applied at the next start)
//   node driver.mjs chroma-count  --url URL --coll NAME            (prints the count, or -1)
//   node driver.mjs report --results FILE.jsonl --targets 0.97,0.99
import fs from 'node:fs';
import path from 'node:path';

function readVecs(file, limit) {
  const buf = fs.readFileSync(file);
  const dim = buf.readInt32LE(0);
  const row = 4 + 4 * dim;
  let n = buf.length / row;
  if (!Number.isInteger(n)) throw new Error(`${file}: size is not a multiple of ${row}`);
  if (limit && limit < n) n = limit;
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    const off = i * row;
    if (buf.readInt32LE(off) !== dim) throw new Error(`${file}: row ${i} has another dimension`);
    const v = new Array(dim);
    for (let j = 0; j < dim; j++) v[j] = buf.readFloatLE(off + 4 + 4 * j);
    out[i] = v; // plain number[]: what both clients take
  }
  return { dim, n, rows: out };
}

function readIvecs(file, limit) {
  const buf = fs.readFileSync(file);
  const k = buf.readInt32LE(0);
  const row = 4 + 4 * k;
  let n = buf.length / row;
  if (limit && limit < n) n = limit;
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    const a = new Int32Array(k);
    for (let j = 0; j < k; j++) a[j] = buf.readInt32LE(i * row + 4 + 4 * j);
    out[i] = a;
  }
  return out;
}

function args(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    if (!argv[i].startsWith('--')) throw new Error(`unexpected argument ${argv[i]}`);
    o[argv[i].slice(2)] = argv[i + 1];
    i++;
  }
  return o;
}

const list = (s) => String(s).split(',').map((x) => parseInt(x, 10));
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const now = () => Number(process.hrtime.bigint()) / 1e6; // ms
const log = (s) => process.stderr.write(s + '\n');

function hostPort(url) {
  const u = new URL(url);
  return { host: u.hostname, port: parseInt(u.port, 10) };
}

async function chromaClient(url) {
  const { ChromaClient } = await import('chromadb');
  return new ChromaClient(hostPort(url));
}

// The client asks for an embedding function when none is given and warns; embeddings are
// always passed in, so a stub that refuses to embed is enough.
const noEmbed = {
  name: 'none',
  generate: async () => {
    throw new Error('no embedding function: embeddings are passed in');
  },
};

async function chromaLoad(o) {
  const c = await chromaClient(o.url);
  const base = readVecs(path.join(o.data, 'base.fvecs'));
  try {
    await c.deleteCollection({ name: o.coll });
  } catch (e) {
    /* not there */
  }
  const hnsw = {
    space: 'l2',
    ef_construction: parseInt(o.efc ?? '200', 10),
    max_neighbors: parseInt(o.m ?? '16', 10),
    ef_search: parseInt(o.ef ?? '100', 10),
  };
  const coll = await c.createCollection({
    name: o.coll,
    configuration: { hnsw },
    embeddingFunction: noEmbed,
  });
  const batch = parseInt(o.batch ?? '1000', 10);
  const t0 = now();
  let last = t0;
  for (let i = 0; i < base.n; i += batch) {
    const end = Math.min(base.n, i + batch);
    const ids = [];
    for (let j = i; j < end; j++) ids.push(String(j));
    await coll.add({ ids, embeddings: base.rows.slice(i, end) });
    if (now() - last > 10000) {
      last = now();
      log(`chroma load: ${end} of ${base.n} in ${((last - t0) / 1000).toFixed(0)} s`);
    }
  }
  const t1 = now();
  const count = await coll.count();
  emit({
    system: 'chroma',
    op: 'load',
    n: base.n,
    dim: base.dim,
    count,
    batch,
    seconds: (t1 - t0) / 1000,
    per_s: base.n / ((t1 - t0) / 1000),
    hnsw,
  });
}

// One search setting: `clients` workers, each with its own client, over queries 0..nq-1.
async function runSetting(makeSearch, queries, gt, k, clients) {
  const searchers = [];
  for (let c = 0; c < clients; c++) searchers.push(await makeSearch());
  const nq = queries.length;
  const lat = new Float64Array(nq);
  let found = 0;
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = now();
  await Promise.all(
    searchers.map(async (search) => {
      for (;;) {
        const i = next++;
        if (i >= nq) return;
        const s = now();
        const ids = await search(queries[i]);
        lat[i] = now() - s;
        const truth = gt[i];
        for (let j = 0; j < Math.min(k, ids.length); j++) {
          for (let t = 0; t < k; t++)
            if (truth[t] === ids[j]) {
              found++;
              break;
            }
        }
      }
    }),
  );
  const secs = (now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0); // this node process: the client's own share
  const sorted = Array.from(lat).sort((a, b) => a - b);
  const pct = (p) => sorted[Math.min(nq - 1, Math.floor(p * nq))];
  return { clients, queries: nq, seconds: secs, qps: nq / secs, p50_ms: pct(0.5), p99_ms: pct(0.99), recall: found / (nq * k), client_cpu_ms: (cpu.user + cpu.system) / 1000 / nq };
}

async function search(system, o) {
  const nq = parseInt(o.queries ?? '2000', 10);
  const k = parseInt(o.k ?? '10', 10);
  const warm = parseInt(o.warmup ?? '200', 10);
  const queries = readVecs(path.join(o.data, 'queries.fvecs'), nq).rows;
  const gt = readIvecs(path.join(o.data, 'gt.ivecs'), nq);
  let setEf, makeSearch;
  if (system === 'chroma') {
    const admin = await chromaClient(o.url);
    const coll = await admin.getCollection({ name: o.coll, embeddingFunction: noEmbed });
    // Chroma 1.0.5 applies a modified ef_search when it loads the index, so run sets it
    // (chroma-set-ef) and restarts the server before this; here it is only checked.
    setEf = async (ef) => {
      const have = coll.configuration?.hnsw?.ef_search;
      if (have !== ef) throw new Error(`the collection's ef_search is ${have}, not ${ef} (run chroma-set-ef and restart the server first)`);
    };
    makeSearch = (ef) => async () => {
      const c = await chromaClient(o.url);
      const col = await c.getCollection({ name: o.coll, embeddingFunction: noEmbed });
      return async (q) => {
        const r = await col.query({ queryEmbeddings: [q], nResults: k, include: [] });
        return r.ids[0].map((x) => parseInt(x, 10));
      };
    };
  } else {
    const { QdrantClient } = await import('@qdrant/js-client-rest');
    setEf = async (ef) => ef;
    makeSearch = (ef) => async () => {
      const c = new QdrantClient({ url: o.url, checkCompatibility: false });
      return async (q) => {
        const r = await c.query(o.coll, { query: q, limit: k, params: { hnsw_ef: ef } });
        return r.points.map((p) => Number(p.id));
      };
    };
  }
  for (const ef of list(o.ef)) {
    await setEf(ef);
    if (warm > 0) await runSetting(makeSearch(ef), queries.slice(0, warm), gt, k, 1);
    for (const clients of list(o.clients)) {
      const r = await runSetting(makeSearch(ef), queries, gt, k, clients);
      emit({ system, path: system === 'chroma' ? 'chromadb JS client' : 'REST, Qdrant JS client', ef, k, ...r });
      log(`${system} ef ${ef} clients ${clients}: recall ${r.recall.toFixed(4)} qps ${r.qps.toFixed(0)} p50 ${r.p50_ms.toFixed(3)} ms`);
    }
  }
}

async function chromaSetEf(o) {
  const c = await chromaClient(o.url);
  const coll = await c.getCollection({ name: o.coll, embeddingFunction: noEmbed });
  await coll.modify({ configuration: { hnsw: { ef_search: parseInt(o.ef, 10) } } });
}

async function chromaCount(o) {
  const c = await chromaClient(o.url);
  let n = -1;
  try {
    const coll = await c.getCollection({ name: o.coll, embeddingFunction: noEmbed });
    n = await coll.count();
  } catch (e) {
    /* no such collection */
  }
  process.stdout.write(`${n}\n`);
}

// The table of every row and, per target recall, each system's cheapest ef reaching it.
// Rows: {system, path, ef, clients, recall, qps, p50_ms, ...}; dvecctl bench --json objects
// ({ef, results: [...]}, tagged with system/path by run) are flattened.
function report(o) {
  const rows = [];
  const cpu = new Map(); // server CPU ms per query: the lowest over the rounds
  for (const line of fs.readFileSync(o.results, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line);
    if (r.op === 'server_cpu') {
      const id = `${r.system}|${r.path}|${r.ef}`;
      if (!cpu.has(id) || r.ms_per_query < cpu.get(id)) cpu.set(id, r.ms_per_query);
      continue;
    }
    if (r.op) continue;
    if (Array.isArray(r.results))
      for (const x of r.results) rows.push({ system: r.system, path: r.path, ef: r.ef, ...x });
    else rows.push(r);
  }
  // Several rounds: each setting keeps its fastest pass (the highest QPS, with that pass's
  // latencies), as bench/peers/run does with --repeat.
  const best = new Map();
  for (const r of rows) {
    const id = `${r.system}|${r.path}|${r.ef}|${r.clients}`;
    const b = best.get(id);
    if (b) b.passes++;
    if (!b || r.qps > b.qps) best.set(id, { ...r, passes: b ? b.passes : 1 });
  }
  rows.length = 0;
  rows.push(...best.values());
  const key = (r) => `${r.system}|${r.path}`;
  const paths = [...new Set(rows.map(key))];
  const clientsList = [...new Set(rows.map((r) => r.clients))].sort((a, b) => a - b);
  const fmt = (x, d) => x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
  const out = [];
  const passes = Math.max(...rows.map((r) => r.passes));
  out.push(`Every setting: the fastest of ${passes} pass${passes > 1 ? 'es' : ''} (highest QPS; p50, p99 and client CPU of that pass).`);
  out.push('');
  out.push('| system | path | clients | ef | recall@10 | QPS | p50 ms | p99 ms | client CPU ms/query |');
  out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const p of paths)
    for (const r of rows.filter((x) => key(x) === p).sort((a, b) => a.ef - b.ef || a.clients - b.clients))
      out.push(`| ${r.system} | ${r.path} | ${r.clients} | ${r.ef} | ${r.recall.toFixed(4)} | ${fmt(r.qps, 0)} | ${r.p50_ms.toFixed(2)} | ${r.p99_ms.toFixed(2)} | ${r.client_cpu_ms === undefined ? '-' : r.client_cpu_ms.toFixed(2)} |`);
  out.push('');
  // The recall of an ef is the lowest over its client counts (the same queries each time).
  const pick = (p, target) => {
    const efs = [...new Set(rows.filter((x) => key(x) === p).map((x) => x.ef))].sort((a, b) => a - b);
    for (const ef of efs) {
      const at = rows.filter((x) => key(x) === p && x.ef === ef);
      const rec = Math.min(...at.map((x) => x.recall));
      if (rec >= target) return { ef, recall: rec, at };
    }
    return null;
  };
  const chromaPath = paths.find((p) => p.startsWith('chroma|'));
  out.push('At matched recall: for each system and path, the cheapest ef whose recall@10 reaches the target');
  out.push('(its lowest over the client counts); ratios dvec / Chroma of QPS and Chroma / dvec of p50.');
  out.push('');
  out.push('| target | system | path | ef | recall@10 | ' + clientsList.map((c) => `QPS ${c}c | p50 ms ${c}c`).join(' | ') + ' | ' + clientsList.map((c) => `QPS ratio ${c}c | p50 ratio ${c}c`).join(' | ') + ' |');
  out.push('|---:|---|---|---:|---:|' + clientsList.map(() => '---:|---:|').join('') + clientsList.map(() => '---:|---:|').join(''));
  for (const t of list2(o.targets ?? '0.97,0.99')) {
    const base = chromaPath ? pick(chromaPath, t) : null;
    for (const p of paths) {
      const m = pick(p, t);
      const [sys, pth] = p.split('|');
      if (!m) {
        out.push(`| ${t} | ${sys} | ${pth} | - | not reached | ` + clientsList.map(() => '- | -').join(' | ') + ' | ' + clientsList.map(() => '- | -').join(' | ') + ' |');
        continue;
      }
      const cell = (c) => m.at.find((x) => x.clients === c);
      const cells = clientsList.map((c) => (cell(c) ? `${fmt(cell(c).qps, 0)} | ${cell(c).p50_ms.toFixed(2)}` : '- | -'));
      const ratios = clientsList.map((c) => {
        const b = base && base.at.find((x) => x.clients === c);
        if (!b || !cell(c) || p === chromaPath) return '- | -';
        return `${(cell(c).qps / b.qps).toFixed(2)} | ${(b.p50_ms / cell(c).p50_ms).toFixed(2)}`;
      });
      out.push(`| ${t} | ${sys} | ${pth} | ${m.ef} | ${m.recall.toFixed(4)} | ${cells.join(' | ')} | ${ratios.join(' | ')} |`);
    }
  }
  if (cpu.size) {
    // What the servers spend, without the JS client (which shares the 2 cores with them).
    out.push('');
    out.push('Server CPU per query (every server process: dvec\'s coordinators and nodes, Chroma\'s server;');
    out.push('user + system time over a pass, warm-up and every client count, the lowest of the rounds):');
    out.push('');
    const efs = [...new Set([...cpu.keys()].map((k) => Number(k.split('|')[2])))].sort((a, b) => a - b);
    out.push('| system | path | ' + efs.map((e) => `ef ${e}`).join(' | ') + ' |');
    out.push('|---|---|' + efs.map(() => '---:|').join(''));
    for (const p of paths) {
      const [sys, pth] = p.split('|');
      out.push(`| ${sys} | ${pth} | ` + efs.map((e) => (cpu.has(`${p}|${e}`) ? `${cpu.get(`${p}|${e}`).toFixed(3)} ms` : '-')).join(' | ') + ' |');
    }
  }
  process.stdout.write(out.join('\n') + '\n');
}
const list2 = (s) => String(s).split(',').map(Number);

const [cmd, ...rest] = process.argv.slice(2);
const o = args(rest);
try {
  if (cmd === 'chroma-load') await chromaLoad(o);
  else if (cmd === 'chroma-search') await search('chroma', o);
  else if (cmd === 'qdrant-search') await search('dvec', o);
  else if (cmd === 'chroma-set-ef') await chromaSetEf(o);
  else if (cmd === 'chroma-count') await chromaCount(o);
  else if (cmd === 'report') report(o);
  else throw new Error(`unknown command ${cmd} (see the top of driver.mjs)`);
} catch (e) {
  log(`driver: ${e.stack || e}`);
  process.exit(1);
}
