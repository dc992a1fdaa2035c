// rest_client.mjs - Qdrant's official JavaScript client (@qdrant/js-client-rest), unchanged,
// against a dvec coordinator: every call the REST API serves, through the client's own methods.
// Usage: node rest_client.mjs URL [URL2]   (TAP output; NODE_PATH-free: run from the directory
// holding node_modules)
import { QdrantClient } from '@qdrant/js-client-rest';

const url = process.argv[2];
const url2 = process.argv[3] || url;
let n = 0;
let failed = 0;
const ok = (desc) => console.log(`ok ${++n} - ${desc}`);
const notOk = (desc, why) => {
  failed++;
  console.log(`not ok ${++n} - ${desc}`);
  for (const line of String(why).split('\n').slice(0, 8)) console.log(`# ${line}`);
};

async function check(desc, fn) {
  try {
    const why = await fn();
    if (why === true || why === undefined) ok(desc);
    else notOk(desc, why);
  } catch (e) {
    notOk(desc, e && e.stack ? e.stack : e);
  }
}

async function status(fn) {
  try {
    await fn();
    return 200;
  } catch (e) {
    return e.status ?? (e.response ? e.response.status : `threw ${e}`);
  }
}

// Map changes reach the other coordinators with raft's next heartbeat: reads there retry.
async function eventually(fn) {
  let why;
  for (let i = 0; i < 40; i++) {
    why = await fn();
    if (why === true) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return why;
}

const eq = (a, b) => JSON.stringify(a) === JSON.stringify(b) || `${JSON.stringify(a)} != ${JSON.stringify(b)}`;

// The client's compatibility check compares versions (dvec has its own): not asked for.
const c = new QdrantClient({ url, checkCompatibility: false });
const c2 = new QdrantClient({ url: url2, checkCompatibility: false });
const name = 'jsdemo';
const U = '5c56c793-69f3-4fbf-87e6-c4bf54c28c26';

await check('versionInfo (GET /)', async () => {
  const v = await c.versionInfo();
  return v.title.startsWith('dvec') || `title ${v.title}`;
});
await check('collectionExists is false before create', async () => eq(await c.collectionExists(name), { exists: false }));
await check('createCollection (Dot, 4 dims, 3 shards, rf 2, hnsw, int8 quantization)', async () =>
  eq(await c.createCollection(name, {
    vectors: { size: 4, distance: 'Dot' }, shard_number: 3, replication_factor: 2,
    hnsw_config: { m: 8, ef_construct: 64 }, quantization_config: { scalar: { type: 'int8', always_ram: true } },
  }), true));
await check('createCollection of an existing name throws 409', async () =>
  eq(await status(() => c.createCollection(name, { vectors: { size: 4, distance: 'Dot' } })), 409));
await check('getCollections (another coordinator)', async () => eventually(async () => {
  const r = await c2.getCollections();
  return r.collections.some((x) => x.name === name) || JSON.stringify(r);
}));
await check('getCollection', async () => {
  const r = await c.getCollection(name);
  const p = r.config.params;
  return (r.status === 'green' && p.shard_number === 3 && p.replication_factor === 2 &&
    p.vectors.size === 4 && p.vectors.distance === 'Dot' && r.config.hnsw_config.m === 8 &&
    r.config.quantization_config.scalar.type === 'int8') || JSON.stringify(r);
});
await check('getAliases / getCollectionAliases: none yet', async () =>
  eq([await c.getAliases(), await c.getCollectionAliases(name)], [{ aliases: [] }, { aliases: [] }]));
await check('updateCollectionAliases (create_alias x2), getAliases, getCollectionAliases', async () => {
  const r = await c2.updateCollectionAliases({
    actions: [{ create_alias: { collection_name: name, alias_name: 'js_live' } },
      { create_alias: { collection_name: name, alias_name: 'js_tmp' } }],
  });
  const want = { aliases: [{ alias_name: 'js_live', collection_name: name }, { alias_name: 'js_tmp', collection_name: name }] };
  return r === true ? eq([await c2.getAliases(), await c.getCollectionAliases(name)], [want, want]) : JSON.stringify(r);
});
await check('updateCollectionAliases: an unknown collection throws 404, nothing applied', async () => {
  const st = await status(() => c.updateCollectionAliases({
    actions: [{ delete_alias: { alias_name: 'js_tmp' } }, { create_alias: { collection_name: 'nope', alias_name: 'js_x' } }],
  }));
  return st === 404 ? eq((await c.getAliases()).aliases.map((a) => a.alias_name), ['js_live', 'js_tmp']) : `status ${st}`;
});
await check('updateCollectionAliases: rename_alias and delete_alias', async () => {
  await c.updateCollectionAliases({ actions: [{ rename_alias: { old_alias_name: 'js_tmp', new_alias_name: 'js_old' } }] });
  await c.updateCollectionAliases({ actions: [{ delete_alias: { alias_name: 'js_old' } }] });
  return eq(await c.getAliases(), { aliases: [{ alias_name: 'js_live', collection_name: name }] });
});
await check('getCollection through the alias', async () => {
  const r = await c.getCollection('js_live');
  return (r.config.params.shard_number === 3 && r.config.hnsw_config.m === 8) || JSON.stringify(r);
});

const pts = [
  { id: 1, vector: [0.05, 0.61, 0.76, 0.74], payload: { city: 'Berlin', pop: 3.6 } },
  { id: 2, vector: [0.19, 0.81, 0.75, 0.11], payload: { city: 'London', pop: 8.9 } },
  { id: 3, vector: [0.36, 0.55, 0.47, 0.94], payload: { city: 'Moscow', pop: 12.5 } },
  { id: U, vector: [0.18, 0.01, 0.85, 0.8], payload: { city: 'Paris', pop: 2.1 } },
];
const dot = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0);
await check('upsert (points)', async () => eq((await c.upsert(name, { wait: true, points: pts })).status, 'completed'));
await check('upsert (batch)', async () =>
  eq((await c.upsert(name, { wait: true, batch: { ids: [4, 5], vectors: [[0.24, 0.18, 0.22, 0.44], [0.35, 0.08, 0.11, 0.44]], payloads: [{ city: 'Rome' }, {}] } })).status, 'completed'));
await check('upsert with a wrong dimension throws 400', async () =>
  eq(await status(() => c.upsert(name, { wait: true, points: [{ id: 9, vector: [1, 2, 3] }] })), 400));
await check('count', async () => eq(await c.count(name, { exact: true }), { count: 6 }));

const q = [0.2, 0.1, 0.9, 0.7];
await check('query (nearest vector): Dot scores, best first', async () => {
  const r = await c2.query(name, { query: q, limit: 3, with_payload: true, params: { hnsw_ef: 64 } });
  const want = pts.concat([{ id: 4, vector: [0.24, 0.18, 0.22, 0.44] }, { id: 5, vector: [0.35, 0.08, 0.11, 0.44] }])
    .map((p) => [p.id, dot(p.vector, q)]).sort((a, b) => b[1] - a[1]).slice(0, 3);
  const got = r.points.map((p) => [p.id, p.score]);
  const close = got.every((g, i) => g[0] === want[i][0] && Math.abs(g[1] - want[i][1]) < 1e-4);
  return (close && r.points[0].payload.city !== undefined) || `${JSON.stringify(got)} vs ${JSON.stringify(want)}`;
});
await check('query with a filter and a score threshold', async () => {
  const r = await c.query(name, {
    query: q, limit: 10, score_threshold: 1.0,
    filter: { must: [{ key: 'pop', range: { gte: 3 } }] },
  });
  return (r.points.length > 0 && r.points.every((p) => p.score >= 1.0)) || JSON.stringify(r);
});
await check('query by point id (nearest to point 1, itself excluded)', async () => {
  const r = await c.query(name, { query: 1, limit: 2 });
  return (r.points.length === 2 && r.points.every((p) => p.id !== 1)) || JSON.stringify(r);
});
await check('queryBatch', async () => {
  const r = await c.queryBatch(name, { searches: [{ query: q, limit: 1 }, { query: { nearest: U }, limit: 2, with_vector: true }] });
  return (r.length === 2 && r[0].points.length === 1 && r[1].points[0].vector.length === 4) || JSON.stringify(r);
});
// (client 1.19 has no search method: query is Qdrant's search now)
await check('query through the alias (another coordinator): the collection\'s hits', async () => {
  const direct = (await c.query(name, { query: q, limit: 3 })).points.map((p) => p.id);
  return eventually(async () => eq((await c2.query('js_live', { query: q, limit: 3 })).points.map((p) => p.id), direct));
});
await check('count and retrieve through the alias', async () =>
  eq([await c.count('js_live', { exact: true }), (await c.retrieve('js_live', { ids: [1] })).map((p) => p.id)],
    [{ count: 6 }, [1]]));
await check('query of a missing collection throws 404', async () => eq(await status(() => c.query('nope', { query: q })), 404));
await check('retrieve', async () => {
  const r = await c.retrieve(name, { ids: [1, U, 99], with_vector: true });
  return (r.length === 2 && r[0].id === 1 && r[1].id === U && r[0].payload.city === 'Berlin' && r[1].vector.length === 4) || JSON.stringify(r);
});
await check('scroll through every page', async () => {
  const seen = [];
  let offset;
  for (let i = 0; i < 10; i++) {
    const r = await c.scroll(name, { limit: 2, offset, with_payload: false });
    seen.push(...r.points.map((p) => p.id));
    offset = r.next_page_offset;
    if (offset === null || offset === undefined) break;
  }
  return eq(seen, [1, 2, 3, 4, 5, U]);
});
await check('setPayload / overwritePayload / deletePayload / clearPayload', async () => {
  await c.setPayload(name, { payload: { seen: true }, points: [1, 2], wait: true });
  await c.overwritePayload(name, { payload: { only: 1 }, points: [3], wait: true });
  await c.deletePayload(name, { keys: ['pop'], points: [1], wait: true });
  await c.clearPayload(name, { points: [4], wait: true });
  await c.setPayload(name, { payload: { big: true }, filter: { must: [{ key: 'pop', range: { gt: 8 } }] }, wait: true });
  const r = await c.retrieve(name, { ids: [1, 2, 3, 4] });
  return eq(r.map((p) => p.payload), [{ city: 'Berlin', seen: true }, { city: 'London', pop: 8.9, seen: true, big: true }, { only: 1 }, {}]);
});
await check('createPayloadIndex / payload_schema / deletePayloadIndex', async () => {
  const a = await c.createPayloadIndex(name, { field_name: 'city', field_schema: 'keyword', wait: true });
  const schema = (await c.getCollection(name)).payload_schema;
  const b = await c.deletePayloadIndex(name, 'city', { wait: true });
  const after = (await c.getCollection(name)).payload_schema;
  return eq([a.status, schema.city.data_type, typeof schema.city.points, b.status, after],
    ['completed', 'keyword', 'number', 'completed', {}]);
});
await check('delete by ids and by filter', async () => {
  await c.delete(name, { points: [5], wait: true });
  await c.delete(name, { filter: { must: [{ key: 'big', match: { value: true } }] }, wait: true });
  return eq(await c.count(name), { count: 4 });
});
await check('api().clusterStatus', async () => {
  const r = (await c.api().clusterStatus({})).data.result;
  return (r.status === 'enabled' && Object.keys(r.peers).length >= 3 && r.raft_info.leader > 0) || JSON.stringify(r);
});
await check('collectionClusterInfo', async () => {
  const r = await c.collectionClusterInfo(name);
  return (r.shard_count === 3 && r.remote_shards.length === 6 && r.remote_shards.every((s) => s.state === 'Active')) || JSON.stringify(r);
});
await check('getCollection of a missing collection throws 404', async () => eq(await status(() => c.getCollection('nope')), 404));
await check('telemetry (api)', async () => {
  const r = (await c.api().telemetry({})).data.result;
  return (r.app.name === 'dvec' && r.collections.number_of_collections >= 1) || JSON.stringify(r);
});
await check('deleteCollection', async () => eq(await c.deleteCollection(name), true));
await check('collectionExists is false after delete', async () => eq(await c.collectionExists(name), { exists: false }));
await check('... and its alias is gone', async () => eq(await c.getAliases(), { aliases: [] }));
await check('... and soon on another coordinator', async () =>
  eventually(async () => eq(await c2.collectionExists(name), { exists: false })));

// ---- named, sparse and multi vectors (issue 19), against brute force ----
const hy = 'jshybrid';
const rnd = (() => { let x = 12345; return () => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648); })();
const H = 240;
const dense = [], sparse = [], multi = [];
for (let i = 0; i < H; i++) {
  dense.push([rnd() - 0.5, rnd() - 0.5, rnd() - 0.5, rnd() - 0.5]);
  const terms = [...new Set(Array.from({ length: 1 + Math.floor(rnd() * 6) }, () => 1 + Math.floor(rnd() * 40)))].sort((a, b) => a - b);
  sparse.push({ indices: terms, values: terms.map(() => Math.round((0.1 + rnd()) * 1000) / 1000) });
  multi.push(Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => [rnd() - 0.5, rnd() - 0.5, rnd() - 0.5]));
}
const norm = (v) => { const l = Math.hypot(...v); return v.map((x) => x / l); };
const close = (a, b) => Math.abs(a - b) <= 1e-3 * Math.max(1, Math.abs(b));
await check('createCollection with named dense, multi and sparse (idf) vectors, 3 shards', async () =>
  eq(await c.createCollection(hy, {
    vectors: { text: { size: 4, distance: 'Cosine' }, colbert: { size: 3, distance: 'Cosine', multivector_config: { comparator: 'max_sim' } } },
    sparse_vectors: { bm25: { modifier: 'idf' } },
    shard_number: 3,
  }), true));
await check('getCollection echoes the named vectors', async () => {
  const p = (await c.getCollection(hy)).config.params;
  return eq([p.vectors.text.size, p.vectors.text.distance, p.vectors.colbert.multivector_config.comparator, p.sparse_vectors.bm25.modifier],
    [4, 'Cosine', 'max_sim', 'idf']);
});
await check('upsert points with any subset of their named vectors', async () => {
  const points = [];
  for (let i = 0; i < H; i++) {
    const vector = {};
    if (i % 7 !== 3) vector.text = dense[i];
    if (i % 5 !== 1) vector.bm25 = sparse[i];
    if (i % 3 !== 2) vector.colbert = multi[i];
    points.push({ id: i, vector, payload: { even: i % 2 === 0 } });
  }
  const r = await c.upsert(hy, { points, wait: true });
  return eq(r.status, 'completed');
});
const hasText = (i) => i % 7 !== 3, hasBm25 = (i) => i % 5 !== 1, hasColbert = (i) => i % 3 !== 2;
await check('query using a named dense vector (exact) matches brute force, with a filter', async () => {
  const q = [0.3, -0.2, 0.5, 0.1];
  const r = await c.query(hy, { query: q, using: 'text', limit: 8, filter: { must: [{ key: 'even', match: { value: true } }] }, params: { exact: true } });
  const want = [...Array(H).keys()].filter((i) => hasText(i) && i % 2 === 0)
    .map((i) => [i, dot(norm(q), norm(dense[i]))]).sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, 8);
  return eq(r.points.map((p) => p.id), want.map((w) => w[0]));
});
await check('query on a sparse vector with idf matches brute force over the whole collection', async () => {
  const q = { indices: [3, 7, 11, 20], values: [1, 0.5, 2, 1] };
  const r = await c.query(hy, { query: q, using: 'bm25', limit: 10 });
  const docs = [...Array(H).keys()].filter(hasBm25);
  const df = (t) => docs.filter((i) => sparse[i].indices.includes(t)).length;
  const idf = (t) => Math.log(1 + (docs.length - df(t) + 0.5) / (df(t) + 0.5));
  const want = docs.map((i) => {
    let s = 0, any = false;
    q.indices.forEach((t, k) => { const j = sparse[i].indices.indexOf(t); if (j >= 0) { any = true; s += q.values[k] * idf(t) * sparse[i].values[j]; } });
    return any ? [i, s] : null;
  }).filter(Boolean).sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, 10);
  const got = r.points.map((p) => [p.id, p.score]);
  return (got.length === want.length && got.every((g, k) => close(g[1], want[k][1]))) || `${JSON.stringify(got)} != ${JSON.stringify(want)}`;
});
await check('query on a multivector (MaxSim) matches brute force', async () => {
  const q = [[0.2, 0.1, -0.3], [0.5, -0.4, 0.1]];
  const r = await c.query(hy, { query: q, using: 'colbert', limit: 6 });
  const want = [...Array(H).keys()].filter(hasColbert).map((i) => [i, q.reduce((s, qr) => s + Math.max(...multi[i].map((d) => dot(norm(qr), norm(d)))), 0)])
    .sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, 6);
  const got = r.points.map((p) => [p.id, p.score]);
  return (got.length === want.length && got.every((g, k) => close(g[1], want[k][1]))) || `${JSON.stringify(got)} != ${JSON.stringify(want)}`;
});
// ---- the Query API (issue 19): prefetch, fusion, re-scoring, recommend, discover, against brute force ----
const docsB = [...Array(H).keys()].filter(hasBm25);
const dfB = (t) => docsB.filter((i) => sparse[i].indices.includes(t)).length;
const idfB = (t) => Math.log(1 + (docsB.length - dfB(t) + 0.5) / (dfB(t) + 0.5));
const scoreText = (q, i) => (hasText(i) ? dot(norm(q), norm(dense[i])) : null);
const scoreBm25 = (q, i) => {
  if (!hasBm25(i)) return null;
  let s = 0, any = false;
  q.indices.forEach((t, k) => { const j = sparse[i].indices.indexOf(t); if (j >= 0) { any = true; s += q.values[k] * idfB(t) * sparse[i].values[j]; } });
  return any ? s : null;
};
const scoreColbert = (q, i) => (hasColbert(i) ? q.reduce((s, qr) => s + Math.max(...multi[i].map((d) => dot(norm(qr), norm(d)))), 0) : null);
// the top `k` ids of `among` by a scoring function (null: no such vector), best first, ties by id
const top = (fn, k, among = [...Array(H).keys()]) => among.map((i) => [i, fn(i)]).filter((e) => e[1] !== null)
  .sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, k);
const sameScores = (got, want) => (got.length === want.length && got.every((g, k) => g[0] === want[k][0] && close(g[1], want[k][1])))
  || `${JSON.stringify(got)} != ${JSON.stringify(want)}`;
const qd = [0.3, -0.2, 0.5, 0.1], qs = { indices: [3, 7, 11, 20, 25], values: [1, 0.5, 2, 1, 1] };
const qc = [[0.2, 0.1, -0.3], [0.5, -0.4, 0.1]];
const fuseRrf = (lists, k = 2, w = null) => {
  const m = new Map();
  lists.forEach((l, li) => l.forEach(([id], r) => m.set(id, (m.get(id) || 0) + (1 / ((r + 1) / (w ? w[li] : 1) + k - 1)))));
  return [...m.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0]);
};
await check('query: prefetch dense + sparse fused with rrf matches brute force', async () => {
  const r = await c.query(hy, { prefetch: [{ query: qd, using: 'text', limit: 20, params: { exact: true } }, { query: qs, using: 'bm25', limit: 20 }], query: { fusion: 'rrf' }, limit: 10 });
  const want = fuseRrf([top((i) => scoreText(qd, i), 20), top((i) => scoreBm25(qs, i), 20)]).slice(0, 10);
  return sameScores(r.points.map((p) => [p.id, p.score]), want);
});
await check('query: rrf with k and weights, and a filter that holds for the prefetches too', async () => {
  const even = { must: [{ key: 'even', match: { value: true } }] };
  const r = await c.query(hy, { prefetch: [{ query: qd, using: 'text', limit: 15, params: { exact: true } }, { query: qs, using: 'bm25', limit: 15 }], query: { rrf: { k: 60, weights: [1, 3] } }, filter: even, limit: 8 });
  const evens = [...Array(H).keys()].filter((i) => i % 2 === 0);
  const want = fuseRrf([top((i) => scoreText(qd, i), 15, evens), top((i) => scoreBm25(qs, i), 15, evens)], 60, [1, 3]).slice(0, 8);
  return sameScores(r.points.map((p) => [p.id, p.score]), want);
});
await check('query: dbsf fusion matches brute force', async () => {
  const r = await c.query(hy, { prefetch: [{ query: qd, using: 'text', limit: 12, params: { exact: true } }, { query: qs, using: 'bm25', limit: 12 }], query: { fusion: 'dbsf' }, limit: 6 });
  const m = new Map();
  for (const l of [top((i) => scoreText(qd, i), 12), top((i) => scoreBm25(qs, i), 12)]) {
    const mean = l.reduce((s, e) => s + e[1], 0) / l.length;
    const sd = Math.sqrt(l.reduce((s, e) => s + (e[1] - mean) ** 2, 0) / l.length);
    l.forEach(([id, sc]) => m.set(id, (m.get(id) || 0) + Math.min(1, Math.max(0, (sc - (mean - 3 * sd)) / (6 * sd)))));
  }
  const want = [...m.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, 6);
  return sameScores(r.points.map((p) => [p.id, p.score]), want);
});
await check('query: a sparse prefetch re-scored by a dense vector, and nested prefetches re-scored by MaxSim', async () => {
  const r1 = await c.query(hy, { prefetch: { query: qs, using: 'bm25', limit: 30 }, query: qd, using: 'text', limit: 5 });
  const cand = top((i) => scoreBm25(qs, i), 30).map((e) => e[0]);
  const w1 = top((i) => scoreText(qd, i), 5, cand);
  const r2 = await c.query(hy, { prefetch: { prefetch: { query: qs, using: 'bm25', limit: 50 }, query: qd, using: 'text', limit: 20 }, query: qc, using: 'colbert', limit: 4, with_payload: true });
  const c2 = top((i) => scoreText(qd, i), 20, top((i) => scoreBm25(qs, i), 50).map((e) => e[0])).map((e) => e[0]);
  const w2 = top((i) => scoreColbert(qc, i), 4, c2);
  const e1 = sameScores(r1.points.map((p) => [p.id, p.score]), w1);
  const e2 = sameScores(r2.points.map((p) => [p.id, p.score]), w2);
  return e1 !== true ? e1 : e2 !== true ? e2 : eq(r2.points.map((p) => p.payload.even), w2.map((w) => w[0] % 2 === 0));
});
const sig = (x) => x / (1 + Math.abs(x)), ssig = (x) => 0.5 * (sig(x) + 1);
const cosIJ = (i, j) => dot(norm(dense[i]), norm(dense[j]));
const notEx = (ex) => [...Array(H).keys()].filter((i) => hasText(i) && !ex.includes(i));
await check('query: recommend average_vector, best_score and sum_scores match brute force', async () => {
  const pos = [8, 11, 16], neg = [12];
  const avg = [0, 1, 2, 3].map((d) => 2 * pos.reduce((s, i) => s + norm(dense[i])[d], 0) / pos.length - norm(dense[12])[d]);
  const ra = await c.query(hy, { query: { recommend: { positive: pos, negative: neg } }, using: 'text', limit: 5, params: { exact: true } });
  const wa = top((i) => dot(norm(avg), norm(dense[i])), 5, notEx([...pos, ...neg]));
  const rb = await c.query(hy, { query: { recommend: { positive: pos, negative: neg, strategy: 'best_score' } }, using: 'text', limit: 5 });
  const wb = top((i) => { const p = Math.max(...pos.map((j) => cosIJ(i, j))), n = cosIJ(i, 12); return p > n ? ssig(p) : -ssig(n); }, 5, notEx([...pos, ...neg]));
  const rs = await c.query(hy, { query: { recommend: { positive: pos, negative: neg, strategy: 'sum_scores' } }, using: 'text', limit: 5 });
  const ws = top((i) => pos.reduce((s, j) => s + cosIJ(i, j), 0) - cosIJ(i, 12), 5, notEx([...pos, ...neg]));
  const e = [sameScores(ra.points.map((p) => [p.id, p.score]), wa), sameScores(rb.points.map((p) => [p.id, p.score]), wb),
    sameScores(rs.points.map((p) => [p.id, p.score]), ws)].map((x, k) => (x === true ? x : `${['average_vector', 'best_score', 'sum_scores'][k]}: ${x}`))
    .filter((x) => x !== true);
  return e.length === 0 || e.join('; ');
});
await check('query: discover and context match brute force', async () => {
  const rd = await c.query(hy, { query: { discover: { target: 20, context: [{ positive: 21, negative: 22 }] } }, using: 'text', limit: 5 });
  const wd = top((i) => (cosIJ(i, 21) > cosIJ(i, 22) ? 1 : -1) + ssig(cosIJ(i, 20)), 5, notEx([20, 21, 22]));
  const rc = await c.query(hy, { query: { context: [{ positive: 21, negative: 22 }, { positive: 30, negative: 32 }] }, using: 'text', limit: 5 });
  const ctx = (i) => [[21, 22], [30, 32]].reduce((s, [p, n]) => s + sig(Math.min(cosIJ(i, p) - cosIJ(i, n) - 1.1920929e-7, 0)), 0);
  const wc = top(ctx, 5, notEx([21, 22, 30, 32]));
  // context: ties at 0 (inside every pair's zone) are many; each score is its point's, and the best ones
  const ec = rc.points.every((p) => close(p.score, ctx(p.id))) && rc.points.every((p, k) => close(p.score, wc[k][1]))
    || `${JSON.stringify(rc.points.map((p) => [p.id, p.score]))} vs ${JSON.stringify(wc)}`;
  const ed = sameScores(rd.points.map((p) => [p.id, p.score]), wd);
  return ed !== true ? ed : ec;
});
await check('query: fusion without prefetches, a bad strategy, an example without the vector are refused with 400', async () =>
  eq([await status(() => c.query(hy, { query: { fusion: 'rrf' } })),
    await status(() => c.query(hy, { query: { recommend: { positive: [1], strategy: 'nope' } }, using: 'text' })),
    await status(() => c.query(hy, { query: { recommend: { positive: [17] } }, using: 'text' }))], [400, 400, 400]));
await check('queryGroups and search/groups (group_by, group_size, with_lookup) match brute force', async () => {
  for (let g = 0; g < 5; g++)
    await c.setPayload(hy, { payload: { grp: g, tags: [`t${g}`, `t${(g + 1) % 5}`] }, points: [...Array(H).keys()].filter((i) => i % 5 === g), wait: true });
  await c.createCollection('jslookup', { vectors: { size: 2, distance: 'Dot' } });
  await c.upsert('jslookup', { points: [0, 1, 2, 3, 4].map((i) => ({ id: i, vector: [1, i], payload: { title: `group ${i}` } })), wait: true });
  const ranked = top((i) => scoreText(qd, i), H);
  const groupsOf = (keyOf, size, limit) => {
    const gs = new Map();
    for (const [id, sc] of ranked)
      for (const k of keyOf(id)) {
        if (!gs.has(k)) gs.set(k, []);
        if (gs.get(k).length < size) gs.get(k).push([id, sc]);
      }
    return [...gs.entries()].slice(0, limit);
  };
  const r1 = await c.queryGroups(hy, { query: qd, using: 'text', group_by: 'grp', group_size: 3, limit: 4, params: { exact: true }, with_lookup: { collection: 'jslookup', with_payload: true } });
  const w1 = groupsOf((i) => [i % 5], 3, 4);
  const e1 = eq(r1.groups.map((g) => [g.id, g.hits.map((h) => h.id), g.lookup.payload.title]), w1.map(([k, hs]) => [k, hs.map((h) => h[0]), `group ${k}`]));
  // an array value puts a point in several groups
  const got2 = (await (await fetch(`${url}/collections/${hy}/points/search/groups`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ vector: { name: 'text', vector: qd }, group_by: 'tags', group_size: 2, limit: 3, params: { exact: true } }) })).json()).result.groups;
  const w2 = groupsOf((i) => [`t${i % 5}`, `t${(i % 5 + 1) % 5}`], 2, 3);
  const e2 = eq(got2.map((g) => [g.id, g.hits.map((h) => h.id)]), w2.map(([k, hs]) => [k, hs.map((h) => h[0])]));
  await c.deleteCollection('jslookup');
  await c.deletePayload(hy, { keys: ['grp', 'tags'], points: [...Array(H).keys()], wait: true });
  return e1 !== true ? e1 : e2;
});
await check('retrieve with_vector by name', async () => {
  const r = await c.retrieve(hy, { ids: [0, 3], with_vector: ['bm25'] });
  return eq(r.map((p) => Object.keys(p.vector).sort()), [['bm25'], ['bm25']]);
});
await check('updateVectors and deleteVectors', async () => {
  await c.updateVectors(hy, { points: [{ id: 3, vector: { text: [1, 0, 0, 0] } }], wait: true });
  await c.deleteVectors(hy, { points: [0], vector: ['colbert', 'bm25'], wait: true });
  const r = await c.retrieve(hy, { ids: [0, 3], with_vector: true });
  return eq(r.map((p) => Object.keys(p.vector).sort()), [['text'], ['bm25', 'colbert', 'text']]);
});
await check('count with has_vector', async () =>
  eq(await c.count(hy, { filter: { must: [{ has_vector: 'colbert' }] } }), { count: [...Array(H).keys()].filter(hasColbert).length - 1 }));
await check('an unknown vector name is refused with 400', async () =>
  eq(await status(() => c.query(hy, { query: [1, 0, 0, 0], using: 'nope' })), 400));
await check('setPayload with a key (a nested path)', async () => {
  await c.setPayload(hy, { payload: { lang: 'de' }, key: 'meta.src', points: [0], wait: true });
  await c.setPayload(hy, { payload: { n: 2 }, key: 'meta.src', points: [0], wait: true });
  const r = await c.retrieve(hy, { ids: [0] });
  return eq(r[0].payload, { even: true, meta: { src: { lang: 'de', n: 2 } } });
});
await check('deleteCollection (named vectors)', async () => eq(await c.deleteCollection(hy), true));

// ---- every filter condition, without and with payload indexes, against brute force (issue 19) ----
{
  const fc = 'jsfilters';
  const F = 300;
  const r2 = (() => { let x = 777; return () => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648); })();
  const words = ['red', 'green', 'blue', 'cheap', 'good', 'fast', 'very', 'old'];
  const docs = [];
  for (let i = 0; i < F; i++) {
    const d = {
      n: Math.floor(r2() * 100), x: Math.round(r2() * 1000) / 10, ok: r2() < 0.3,
      tag: words[Math.floor(r2() * 4)], tags: words.filter(() => r2() < 0.25),
      at: new Date(Date.UTC(2024, 0, 1) + Math.floor(r2() * 365 * 86400) * 1000).toISOString().replace('.000Z', 'Z'),
      loc: { lon: Math.round((r2() * 20 - 10) * 1e4) / 1e4, lat: Math.round((r2() * 20 + 40) * 1e4) / 1e4 },
      text: Array.from({ length: 2 + Math.floor(r2() * 4) }, () => words[Math.floor(r2() * words.length)]).join(' '),
      items: Array.from({ length: Math.floor(r2() * 3) }, () => ({ kind: words[Math.floor(r2() * 3)], qty: Math.floor(r2() * 10) })),
      u: `00000000-0000-4000-8000-${String(Math.floor(r2() * 5)).padStart(12, '0')}`,
    };
    if (i % 10 === 3) d.maybe = null; else if (i % 10 === 4) d.maybe = []; else if (i % 10 !== 5) d.maybe = i;
    docs.push(d);
  }
  const rad = (v) => (v * Math.PI) / 180;
  const hav = (a, b) => {
    const dl = rad(b.lat - a.lat), dn = rad(b.lon - a.lon);
    const h = Math.sin(dl / 2) ** 2 + Math.cos(rad(a.lat)) * Math.cos(rad(b.lat)) * Math.sin(dn / 2) ** 2;
    return 2 * 6371008.8 * Math.asin(Math.min(1, Math.sqrt(h)));
  };
  const inRing = (p, ring) => {
    let c = false;
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const a = ring[i], b = ring[j];
      if ((a.lat > p.lat) !== (b.lat > p.lat) && p.lon < ((b.lon - a.lon) * (p.lat - a.lat)) / (b.lat - a.lat) + a.lon) c = !c;
    }
    return c;
  };
  const toks = (t) => t.toLowerCase().split(/[^a-z0-9]+/).filter(Boolean);
  const ring = [{ lon: -5, lat: 45 }, { lon: 5, lat: 45 }, { lon: 5, lat: 55 }, { lon: -5, lat: 55 }, { lon: -5, lat: 45 }];
  const hole = [{ lon: -1, lat: 49 }, { lon: 1, lat: 49 }, { lon: 1, lat: 51 }, { lon: -1, lat: 51 }, { lon: -1, lat: 49 }];
  const t0 = Date.parse('2024-03-01T00:00:00Z'), t1 = Date.parse('2024-06-01T00:00:00+02:00');
  // [name, filter, holds(doc, id), text index semantics?]
  const cases = [
    ['match value (keyword)', { must: [{ key: 'tag', match: { value: 'red' } }] }, (d) => d.tag === 'red'],
    ['match any over an array', { must: [{ key: 'tags', match: { any: ['cheap', 'fast'] } }] }, (d) => d.tags.some((t) => t === 'cheap' || t === 'fast')],
    ['match except', { must: [{ key: 'tag', match: { except: ['red', 'green'] } }] }, (d) => !['red', 'green'].includes(d.tag)],
    ['range integer', { must: [{ key: 'n', range: { gte: 20, lt: 35 } }] }, (d) => d.n >= 20 && d.n < 35],
    ['range float', { must: [{ key: 'x', range: { gt: 10.5, lte: 30 } }] }, (d) => d.x > 10.5 && d.x <= 30],
    ['match bool', { must: [{ key: 'ok', match: { value: true } }] }, (d) => d.ok],
    ['datetime range (offsets)', { must: [{ key: 'at', range: { gte: '2024-03-01T00:00:00Z', lt: '2024-06-01T00:00:00+02:00' } }] }, (d) => Date.parse(d.at) >= t0 && Date.parse(d.at) < t1],
    ['geo radius', { must: [{ key: 'loc', geo_radius: { center: { lon: 0, lat: 50 }, radius: 300000 } }] }, (d) => hav(d.loc, { lon: 0, lat: 50 }) <= 300000],
    ['geo bounding box', { must: [{ key: 'loc', geo_bounding_box: { top_left: { lon: -3, lat: 55 }, bottom_right: { lon: 4, lat: 47 } } }] }, (d) => d.loc.lon >= -3 && d.loc.lon <= 4 && d.loc.lat >= 47 && d.loc.lat <= 55],
    ['geo polygon with a hole', { must: [{ key: 'loc', geo_polygon: { exterior: { points: ring }, interiors: [{ points: hole }] } }] }, (d) => inRing(d.loc, ring) && !inRing(d.loc, hole)],
    ['values_count', { must: [{ key: 'tags', values_count: { gte: 2 } }] }, (d) => d.tags.length >= 2],
    ['is_empty', { must: [{ is_empty: { key: 'maybe' } }] }, (d) => d.maybe === undefined || d.maybe === null || (Array.isArray(d.maybe) && d.maybe.length === 0)],
    ['is_null', { must: [{ is_null: { key: 'maybe' } }] }, (d) => d.maybe === null],
    ['has_id and must_not', { must: [{ has_id: [1, 2, 3, 50, 51, 52, 299] }], must_not: [{ key: 'ok', match: { value: true } }] }, (d, i) => [1, 2, 3, 50, 51, 52, 299].includes(i) && !d.ok],
    ['nested: both conditions on the same element', { must: [{ nested: { key: 'items', filter: { must: [{ key: 'kind', match: { value: 'red' } }, { key: 'qty', range: { gte: 5 } }] } } }] },
      (d) => d.items.some((e) => e.kind === 'red' && e.qty >= 5)],
    ['min_should', { min_should: { conditions: [{ key: 'tag', match: { value: 'red' } }, { key: 'ok', match: { value: true } }, { key: 'n', range: { lt: 50 } }], min_count: 2 } },
      (d) => [d.tag === 'red', d.ok, d.n < 50].filter(Boolean).length >= 2],
    ['should', { should: [{ key: 'tag', match: { value: 'blue' } }, { key: 'n', range: { gte: 95 } }] }, (d) => d.tag === 'blue' || d.n >= 95],
    ['match uuid', { must: [{ key: 'u', match: { any: ['00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000003'] } }] }, (d) => ['1', '3'].includes(d.u.slice(-1))],
    ['match text (all tokens)', { must: [{ key: 'text', match: { text: 'good cheap' } }] }, null, (d) => ['good', 'cheap'].every((w) => toks(d.text).includes(w)), (d) => d.text.includes('good cheap')],
    ['match phrase', { must: [{ key: 'text', match: { phrase: 'very old' } }] }, null, (d) => { const t = toks(d.text); return t.some((w, k) => w === 'very' && t[k + 1] === 'old'); }, (d) => d.text.includes('very old')],
  ];
  const ids = async (filter) => {
    const r = await c.scroll(fc, { filter, limit: 1000, with_payload: false });
    return r.points.map((p) => p.id).sort((a, b) => a - b);
  };
  await check('filters: a collection with every kind of payload (2 shards)', async () => {
    await c.createCollection(fc, { vectors: { size: 2, distance: 'Dot' }, shard_number: 2 });
    const r = await c.upsert(fc, { points: docs.map((d, i) => ({ id: i, vector: [1, i], payload: d })), wait: true });
    return eq(r.status, 'completed');
  });
  for (const withIndex of [false, true]) {
    if (withIndex)
      await check('filters: payload indexes of every kind', async () => {
        for (const [field_name, field_schema] of [['tag', 'keyword'], ['tags', 'keyword'], ['n', 'integer'], ['x', 'float'], ['ok', 'bool'], ['at', 'datetime'],
          ['loc', 'geo'], ['u', 'uuid'], ['text', { type: 'text', tokenizer: 'word', lowercase: true }]])
          await c.createPayloadIndex(fc, { field_name, field_schema, wait: true });
        const schema = (await c.getCollection(fc)).payload_schema;
        return eq(Object.keys(schema).sort(), ['at', 'loc', 'n', 'ok', 'tag', 'tags', 'text', 'u', 'x']);
      });
    for (const [name, filter, holds, tokHolds, subHolds] of cases) {
      await check(`filter ${name} ${withIndex ? 'with' : 'without'} an index matches brute force`, async () => {
        const fn = holds || (withIndex ? tokHolds : subHolds);
        const want = docs.map((d, i) => [d, i]).filter(([d, i]) => fn(d, i)).map(([, i]) => i);
        const got = await ids(filter);
        const cnt = (await c.count(fc, { filter, exact: true })).count;
        const q = await c.query(fc, { query: [1, 0.001], filter, limit: 1000 });
        const e = eq(got, want);
        return e !== true ? `${name}: ${e}` : cnt !== want.length ? `count ${cnt} != ${want.length}`
          : eq(q.points.map((p) => p.id).sort((a, b) => a - b), want);
      });
    }
  }
  await check('query sample random: distinct matching points, another sample each call', async () => {
    const filter = { must: [{ key: 'tag', match: { any: ['red', 'blue'] } }] };
    const a = (await c.query(fc, { query: { sample: 'random' }, filter, limit: 12, with_payload: true })).points;
    const b = (await c.query(fc, { query: { sample: 'random' }, filter, limit: 12 })).points;
    const matching = docs.filter((d) => ['red', 'blue'].includes(d.tag)).length;
    const ok = a.length === 12 && new Set(a.map((p) => p.id)).size === 12 && a.every((p) => ['red', 'blue'].includes(p.payload.tag))
      && b.length === 12 && JSON.stringify(a.map((p) => p.id)) !== JSON.stringify(b.map((p) => p.id));
    const all = (await c.query(fc, { query: { sample: 'random' }, filter, limit: 1000 })).points;
    return (ok && all.length === matching) || `${JSON.stringify(a)} / ${JSON.stringify(b)} / ${all.length} of ${matching}`;
  });
  await check('search matrix pairs and offsets: each sampled point\'s nearest among the sample (brute force)', async () => {
    const filter = { must: [{ key: 'n', range: { gte: 10 } }], must_not: [{ has_id: [0] }] };
    const pr = await c.searchMatrixPairs(fc, { sample: 9, limit: 3, filter });
    const sample = [...new Set(pr.pairs.map((p) => p.a))].sort((x, y) => x - y);
    const want = [];
    for (const a of sample)
      sample.filter((b) => b !== a).map((b) => [b, 1 + a * b]).sort((x, y) => y[1] - x[1]).slice(0, 3)
        .forEach(([b, sc]) => want.push({ a, b, score: sc }));
    const e1 = sample.length === 9 && sample.every((i) => docs[i].n >= 10 && i !== 0);
    const e2 = eq(pr.pairs.map((p) => [p.a, p.b, p.score]), want.map((p) => [p.a, p.b, p.score]));
    const off = await c.searchMatrixOffsets(fc, { sample: 5, limit: 2, filter });
    const e3 = off.ids.length === 5 && off.offsets_row.length === 10 && off.offsets_row.every((r, k) => {
      const a = off.ids[r], b = off.ids[off.offsets_col[k]];
      return close(off.scores[k], 1 + a * b) && a !== b;
    });
    return (e1 && e2 === true && e3) || `${e1} ${e2} ${e3} ${JSON.stringify(off)}`;
  });
  await check('filters: a bad condition is refused with 400 naming it', async () =>
    eq(await status(() => c.scroll(fc, { filter: { must: [{ key: 'loc', geo_radius: { center: { lon: 0, lat: 99 }, radius: 1 } }] } })), 400));
  await check('filters: deleteCollection', async () => eq(await c.deleteCollection(fc), true));
}
// ---- points/batch (UpdateOperations), count exact/approximate, PATCH hnsw_config.ef ----------
const bn = 'jsbatch';
await check('batch: createCollection', async () =>
  eq(await c.createCollection(bn, { vectors: { size: 4, distance: 'Euclid' }, shard_number: 3 }), true));
{
  // A model of the collection: every operation applied to it in order, as the server must.
  const model = new Map();
  const ops = [];
  const vec = (i) => [i % 7, (i * 3) % 5, (i * 5) % 11, 1];
  ops.push({ upsert: { points: [...Array(30).keys()].map((i) => ({ id: i, vector: vec(i), payload: { g: i % 3, i } })) } });
  ops.push({ set_payload: { payload: { tag: 'x' }, points: [1, 2, 3] } });
  ops.push({ delete: { points: [2, 4] } });
  ops.push({ overwrite_payload: { payload: { only: 1 }, points: [3] } });
  ops.push({ update_vectors: { points: [{ id: 1, vector: [9, 9, 9, 9] }] } });
  ops.push({ delete_payload: { keys: ['g'], points: [5, 6] } });
  ops.push({ upsert: { batch: { ids: [2, 40], vectors: [[2, 2, 2, 2], [4, 0, 0, 4]], payloads: [{ back: true }, { g: 2 }] } } });
  ops.push({ clear_payload: { points: [7] } });
  ops.push({ delete: { filter: { must: [{ key: 'g', match: { value: 2 } }] } } });
  ops.push({ set_payload: { payload: { late: true }, filter: { must: [{ key: 'g', match: { value: 1 } }] } } });
  const apply = (op) => {
    const [kind, a] = Object.entries(op)[0];
    const sel = (f) => (a.points ? a.points.filter((id) => model.has(id)) : [...model.keys()].filter((id) => f(model.get(id).payload)));
    const match = (p) => a.filter && p[a.filter.must[0].key] === a.filter.must[0].match.value;
    if (kind === 'upsert') {
      if (a.points) for (const p of a.points) model.set(p.id, { vector: p.vector, payload: p.payload || {} });
      else a.batch.ids.forEach((id, k) => model.set(id, { vector: a.batch.vectors[k], payload: a.batch.payloads[k] || {} }));
    } else if (kind === 'delete') for (const id of sel(match)) model.delete(id);
    else if (kind === 'set_payload') for (const id of sel(match)) Object.assign(model.get(id).payload, a.payload);
    else if (kind === 'overwrite_payload') for (const id of sel(match)) model.get(id).payload = { ...a.payload };
    else if (kind === 'delete_payload') for (const id of sel(match)) for (const k of a.keys) delete model.get(id).payload[k];
    else if (kind === 'clear_payload') for (const id of sel(match)) model.get(id).payload = {};
    else if (kind === 'update_vectors') for (const p of a.points) model.get(p.id).vector = p.vector;
  };
  await check('batchUpdate: mixed operations, one UpdateResult each, applied in order', async () => {
    const r = await c.batchUpdate(bn, { operations: ops, wait: true });
    ops.forEach(apply);
    const ids = [...Array(45).keys()];
    const got = await c.retrieve(bn, { ids, with_payload: true, with_vector: true });
    const want = ids.filter((id) => model.has(id)).map((id) => ({ id, payload: model.get(id).payload, vector: model.get(id).vector }));
    const e = eq(r.map((u) => u.status), ops.map(() => 'completed'));
    return e !== true ? e : eq(got.map((p) => ({ id: p.id, payload: p.payload, vector: p.vector })), want);
  });
  const countOf = (f) => [...model.values()].filter((p) => f(p.payload)).length;
  await check('count exact: true and false, with and without a filter, equal brute force', async () => {
    const f = { must: [{ key: 'late', match: { value: true } }] };
    return eq([await c.count(bn, { exact: true }), await c.count(bn, { exact: false }),
      await c.count(bn, { filter: f, exact: true }), await c.count(bn, { filter: f, exact: false })],
    [{ count: model.size }, { count: model.size }, { count: countOf((p) => p.late === true) }, { count: countOf((p) => p.late === true) }]);
  });
  await check('batchUpdate: a malformed operation (index 2) is refused with 400 naming it; nothing applied', async () => {
    const before = await c.count(bn);
    const bad = { operations: [{ upsert: { points: [{ id: 100, vector: [1, 1, 1, 1] }] } }, { delete: { points: [0] } }, { set_payload: { points: [1] } }] };
    const res = await fetch(`${url}/collections/${bn}/points/batch?wait=true`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(bad) });
    const body = await res.json();
    const st = await status(() => c.batchUpdate(bn, { ...bad, wait: true }));
    const e = eq([res.status, st, /operations\[2\]\.set_payload/.test(body.status.error)], [400, 400, true]);
    return e !== true ? `${e}: ${body.status.error}` : eq(await c.count(bn), before);
  });
  await check('batchUpdate: a point missing at apply time (index 1): 404, the operation before it stays applied', async () => {
    const st = await status(() => c.batchUpdate(bn, { operations: [{ upsert: { points: [{ id: 101, vector: [1, 2, 3, 4] }] } }, { set_payload: { payload: { a: 1 }, points: [999] } }, { delete: { points: [101] } }], wait: true }));
    const r = await c.retrieve(bn, { ids: [101] });
    return eq([st, r.map((p) => p.id)], [404, [101]]);
  });
}
await check('updateCollection hnsw_config.ef: getCollection echoes it, searches answer as brute force', async () => {
  const r = await c.updateCollection(bn, { hnsw_config: { ef: 128 } });
  const g = await c.getCollection(bn);
  const q = [1, 2, 3, 1];
  const hits = (await c.query(bn, { query: q, limit: 3 })).points;
  const pts = await c.scroll(bn, { limit: 100, with_vector: true });
  const d = (v) => Math.sqrt(v.reduce((s, x, k) => s + (x - q[k]) ** 2, 0));
  const want = pts.points.map((p) => [p.id, d(p.vector)]).sort((a, b) => a[1] - b[1] || 0).slice(0, 3).map((x) => x[0]);
  return eq([r, g.config.hnsw_config.ef, hits.map((h) => h.id)], [true, 128, want]);
});
await check('updateCollection: m, optimizers_config and quantization are refused with 400, ef unchanged', async () =>
  eq([await status(() => c.updateCollection(bn, { hnsw_config: { m: 32 } })),
    await status(() => c.updateCollection(bn, { optimizers_config: { indexing_threshold: 1000 } })),
    await status(() => c.updateCollection(bn, { quantization_config: { scalar: { type: 'int8' } } })),
    (await c.getCollection(bn)).config.hnsw_config.ef], [400, 400, 400, 128]));
await check('batch: deleteCollection', async () => eq(await c.deleteCollection(bn), true));
// order_by and facet over random payloads in 3 shards, against brute force.
const od = 'jsorder';
const O = 200;
const colors = ['red', 'green', 'blue', 'Black', 'white'];
const opts = [];
const oT0 = Date.UTC(2024, 2, 1); // 2024-03-01T00:00:00Z
for (let i = 0; i < O; i++) {
  const p = { grp: i % 3, flag: rnd() < 0.5 };
  const a = Math.floor(rnd() * 40), b = Math.floor(rnd() * 40);
  if (i % 9 !== 0) p.price = rnd() < 0.3 && a !== b ? [a, b] : a;
  if (i % 7 !== 0) p.weight = Math.round(rnd() * 1000) / 100;
  if (i % 5 !== 0) p.added = new Date(oT0 + Math.floor(rnd() * 3600) * 1000).toISOString();
  const c1 = colors[Math.floor(rnd() * 5)], c2 = colors[Math.floor(rnd() * 5)];
  if (i % 6 !== 0) p.color = rnd() < 0.3 && c1 !== c2 ? [c1, c2] : c1;
  opts.push({ id: i, vector: [rnd() - 0.5, rnd() - 0.5, rnd() - 0.5], payload: p });
}
const vals = (p, k) => (p[k] === undefined ? [] : Array.isArray(p[k]) ? p[k] : [p[k]]);
const usOf = (s) => Date.parse(s) * 1000;
// The entries (id, value) of the points passing `keep`, by value (desc: descending), then id.
const ordered = (k, desc, keep, start, limit, conv = (v) => v) => {
  const e = [];
  for (const pt of opts)
    if (keep(pt))
      for (const v of vals(pt.payload, k).map(conv))
        if (start === undefined || (desc ? v <= start : v >= start)) e.push([pt.id, v]);
  e.sort((x, y) => (desc ? y[1] - x[1] : x[1] - y[1]) || x[0] - y[0]);
  return e.slice(0, limit);
};
const facetOf = (k, keep, limit) => {
  const m = new Map();
  for (const pt of opts) if (keep(pt)) for (const v of vals(pt.payload, k)) m.set(v, (m.get(v) || 0) + 1);
  const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
  return [...m].map(([value, count]) => ({ value, count }))
    .sort((a, b) => b.count - a.count || cmp(a.value, b.value)).slice(0, limit);
};
await check('order_by and facet: a collection of 3 shards with range and facet indexes', async () => {
  await c.createCollection(od, { vectors: { size: 3, distance: 'Dot' }, shard_number: 3 });
  await c.upsert(od, { points: opts, wait: true });
  for (const [field_name, field_schema] of [['price', 'integer'], ['weight', 'float'], ['added', 'datetime'],
    ['color', 'keyword'], ['flag', 'bool'], ['grp', 'integer']])
    await c.createPayloadIndex(od, { field_name, field_schema, wait: true });
  return eq(await c.count(od, { exact: true }), { count: O });
});
await check('scroll with order_by (an integer key, arrays once per value) matches brute force', async () => {
  const r = await c.scroll(od, { order_by: 'price', limit: 25, with_payload: false });
  return eq([r.points.map((p) => [p.id, p.order_value]), r.next_page_offset],
    [ordered('price', false, () => true, undefined, 25), null]);
});
await check('scroll with order_by desc from start_from, with a filter (a float key)', async () => {
  const r = await c.scroll(od, { order_by: { key: 'weight', direction: 'desc', start_from: 5.5 }, limit: 20,
    filter: { must: [{ key: 'grp', match: { value: 1 } }] } });
  return eq(r.points.map((p) => [p.id, p.order_value, p.payload.grp]),
    ordered('weight', true, (pt) => pt.payload.grp === 1, 5.5, 20).map((e) => [...e, 1]));
});
await check('scroll with order_by a datetime key from a datetime start_from (values in microseconds)', async () => {
  const r = await c.scroll(od, { order_by: { key: 'added', start_from: '2024-03-01T00:30:00Z' }, limit: 15 });
  return eq(r.points.map((p) => [p.id, p.order_value]),
    ordered('added', false, () => true, usOf('2024-03-01T00:30:00Z'), 15, usOf));
});
await check('facet on a keyword key (arrays count once per value) matches brute force', async () =>
  eq((await c.facet(od, { key: 'color' })).hits, facetOf('color', () => true, 10)));
await check('facet on an integer key with a filter and a limit, exact', async () =>
  eq((await c.facet(od, { key: 'price', limit: 6, exact: true, filter: { must_not: [{ key: 'grp', match: { value: 0 } }] } })).hits,
    facetOf('price', (pt) => pt.payload.grp !== 0, 6)));
await check('facet on a bool key', async () => eq((await c.facet(od, { key: 'flag' })).hits, facetOf('flag', () => true, 10)));
await check('query with order_by: the ordered points with the filter, scored by their value', async () => {
  const r = await c.query(od, { query: { order_by: { key: 'price', direction: 'desc' } }, limit: 12,
    filter: { must: [{ key: 'flag', match: { value: true } }] } });
  return eq(r.points.map((p) => [p.id, p.score, p.order_value]),
    ordered('price', true, (pt) => pt.payload.flag, undefined, 12).map(([id, v]) => [id, v, v]));
});
await check('query with order_by over a prefetch orders the prefetch\'s points', async () => {
  const q = [0.4, -0.3, 0.2];
  const r = await c.query(od, { prefetch: { query: q, limit: 30, params: { exact: true } }, query: { order_by: 'weight' }, limit: 10 });
  const near = new Set(opts.map((pt) => [pt.id, dot(q, pt.vector)]).sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .slice(0, 30).map((e) => e[0]));
  const want = ordered('weight', false, (pt) => near.has(pt.id), undefined, 10);
  return eq(r.points.map((p) => [p.id, Math.round(p.score * 100) / 100]), want);
});
await check('order_by without a range index, a bad direction, facet without a facet index: 400', async () =>
  eq([await status(() => c.scroll(od, { order_by: 'color' })),
    await status(() => c.scroll(od, { order_by: { key: 'price', direction: 'sideways' } })),
    await status(() => c.query(od, { query: { order_by: 'nope' } })),
    await status(() => c.facet(od, { key: 'weight' }))], [400, 400, 400, 400]));
await check('deleteCollection (order_by and facet)', async () => eq(await c.deleteCollection(od), true));

console.log(`1..${n}`);
process.exit(failed ? 1 : 0);
