#!/usr/bin/python3
"""hybrid.py - hybrid search (a dense and a sparse vector fused with RRF) through a
coordinator's REST API: QPS and recall against brute force, next to the dense and the sparse
search alone in the same run.

The data set is generated (seeded): documents are mixtures of topics; a document's dense
vector is its topic mixture's embedding plus noise, its sparse vector the term counts of words
drawn from its topics' Zipf vocabularies (weighted by log(1 + tf)), so both representations
are correlated without being the same. Queries are generated the same way.

Recall:
  dense   |returned ∩ exact top-k by cosine| / k
  sparse  |returned ∩ exact top-k by dot product with BM25 idf (over the whole collection)| / k
  hybrid  |returned ∩ top-k of RRF (k=2) over the exact top-P dense and top-P sparse lists| / k
so the hybrid recall measures dvec's query API (prefetch + fusion over partitions) against the
same computation done exactly.

Usage (a running cluster; deploy/local/cluster prints its REST URL):
  /usr/bin/python3 bench/hybrid.py --url http://127.0.0.1:31002 [--n 20000] [--dim 64]
      [--vocab 20000] [--topics 50] [--queries 200] [--prefetch 50] [--k 10] [--shards 3]
      [--threads 4] [--ef 64] [--json]
Needs Debian's python3-numpy. Creates and drops the collection `bench_hybrid`.
"""

import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse

import numpy as np

COLL = "bench_hybrid"


class Client:
    """One keep-alive HTTP connection."""

    def __init__(self, url):
        u = urllib.parse.urlparse(url)
        self.host, self.port = u.hostname, u.port
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        self.conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        r = self.conn.getresponse()
        out = json.loads(r.read() or b"{}")
        if r.status != 200:
            raise RuntimeError(f"{method} {path}: {r.status} {out}")
        return out["result"]


def generate(a, rng):
    """Topic model: per topic an embedding and a Zipf vocabulary slice."""
    emb = rng.standard_normal((a.topics, a.dim)).astype(np.float32)
    ranks = np.arange(1, a.vocab + 1, dtype=np.float64)
    zipf = 1.0 / ranks ** 1.1
    perm = np.stack([rng.permutation(a.vocab) for _ in range(a.topics)])  # topic's word order

    def one(n_words):
        k = 1 + rng.integers(0, 3)
        ts = rng.choice(a.topics, size=k, replace=False)
        w = rng.dirichlet(np.ones(k))
        dense = (w[:, None] * emb[ts]).sum(0) + 0.6 * rng.standard_normal(a.dim)
        counts = {}
        for t, wt in zip(ts, w):
            m = max(1, int(round(n_words * wt)))
            words = perm[t][rng.choice(a.vocab, size=m, p=zipf / zipf.sum())]
            for x in words:
                counts[int(x)] = counts.get(int(x), 0) + 1
        idx = sorted(counts)
        return dense.astype(np.float32), idx, [float(np.log1p(counts[i])) for i in idx]

    return one


def exact_sparse(docs_idx, docs_val, n, vocab):
    """A term -> (doc ids, values) inverted index and document frequencies."""
    post = [[] for _ in range(vocab)]
    for d in range(n):
        for t, v in zip(docs_idx[d], docs_val[d]):
            post[t].append((d, v))
    df = np.array([len(p) for p in post], dtype=np.float64)
    return post, df


def sparse_scores(q_idx, q_val, post, df, n):
    s = np.zeros(n)
    hit = np.zeros(n, dtype=bool)
    for t, qv in zip(q_idx, q_val):
        if not post[t]:
            continue
        idf = np.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
        ids = np.fromiter((p[0] for p in post[t]), dtype=np.int64)
        vals = np.fromiter((p[1] for p in post[t]), dtype=np.float64)
        s[ids] += qv * idf * vals
        hit[ids] = True
    s[~hit] = -np.inf
    return s


def top(scores, k):
    """Ids of the k best scores (higher first, ties by id), finite scores only."""
    order = np.lexsort((np.arange(len(scores)), -scores))
    return [int(i) for i in order[:k] if np.isfinite(scores[i])]


def rrf(lists, k=2):
    acc = {}
    for l in lists:
        for r, i in enumerate(l):
            acc[i] = acc.get(i, 0.0) + 1.0 / (r + k)
    return [i for i, _ in sorted(acc.items(), key=lambda e: (-e[1], e[0]))]


def run(a, clients, bodies, truth, k):
    """All bodies over len(clients) threads; QPS and mean recall."""
    got = [None] * len(bodies)
    nxt = [0]
    lock = threading.Lock()

    def worker(c):
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= len(bodies):
                return
            res = c.call("POST", f"/collections/{COLL}/points/query", bodies[i])
            got[i] = [p["id"] for p in res["points"]]

    best = None
    for _ in range(a.rounds):
        nxt[0] = 0
        ts = [threading.Thread(target=worker, args=(c,)) for c in clients]
        t0 = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    rec = np.mean([len(set(g[:k]) & set(t[:k])) / max(1, min(k, len(t))) for g, t in zip(got, truth)])
    return len(bodies) / best, float(rec)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--vocab", type=int, default=20000)
    ap.add_argument("--topics", type=int, default=50)
    ap.add_argument("--words", type=int, default=40, help="words per document")
    ap.add_argument("--qwords", type=int, default=6, help="words per query")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--prefetch", type=int, default=50)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--shards", type=int, default=3)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--ef", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="keep the collection")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    rng = np.random.default_rng(a.seed)
    gen = generate(a, rng)
    print(f"generating {a.n} documents and {a.queries} queries", file=sys.stderr)
    docs = [gen(a.words) for _ in range(a.n)]
    qs = [gen(a.qwords) for _ in range(a.queries)]
    dense = np.stack([d[0] for d in docs]).astype(np.float64)
    dn = dense / np.linalg.norm(dense, axis=1, keepdims=True)
    post, df = exact_sparse([d[1] for d in docs], [d[2] for d in docs], a.n, a.vocab)

    c = Client(a.url)
    try:
        c.call("DELETE", f"/collections/{COLL}")
    except RuntimeError:
        pass
    c.call("PUT", f"/collections/{COLL}", {
        "vectors": {"dense": {"size": a.dim, "distance": "Cosine"}},
        "sparse_vectors": {"bm25": {"modifier": "idf"}},
        "shard_number": a.shards,
    })
    t0 = time.perf_counter()
    for s in range(0, a.n, 500):
        pts = [{"id": i, "vector": {"dense": docs[i][0].tolist(),
                                    "bm25": {"indices": docs[i][1], "values": docs[i][2]}}}
               for i in range(s, min(a.n, s + 500))]
        c.call("PUT", f"/collections/{COLL}/points?wait=true", {"points": pts})
    load_s = time.perf_counter() - t0
    print(f"loaded in {load_s:.1f} s; computing ground truth", file=sys.stderr)

    P, k = a.prefetch, a.k
    t_dense, t_sparse, t_hybrid = [], [], []
    b_dense, b_sparse, b_hybrid = [], [], []
    for qd, qi, qv in qs:
        qn = qd.astype(np.float64) / np.linalg.norm(qd)
        ds = dn @ qn
        ss = sparse_scores(qi, qv, post, df, a.n)
        td, tsp = top(ds, P), top(ss, P)
        t_dense.append(td[:k])
        t_sparse.append(tsp[:k])
        t_hybrid.append(rrf([td, tsp])[:k])
        dq = {"query": qd.tolist(), "using": "dense", "limit": k, "params": {"hnsw_ef": a.ef}}
        sq = {"query": {"indices": qi, "values": qv}, "using": "bm25", "limit": k}
        b_dense.append(dq)
        b_sparse.append(sq)
        b_hybrid.append({"prefetch": [dict(dq, limit=P), dict(sq, limit=P)],
                         "query": {"fusion": "rrf"}, "limit": k})

    clients = [Client(a.url) for _ in range(a.threads)]
    rows = []
    for name, bodies, truth in (("dense (HNSW)", b_dense, t_dense),
                                ("sparse (exact, idf)", b_sparse, t_sparse),
                                ("hybrid: dense + sparse, RRF", b_hybrid, t_hybrid)):
        qps, rec = run(a, clients, bodies, truth, k)
        rows.append({"query": name, "qps": round(qps, 1), "recall": round(rec, 4)})
        print(f"{name}: {qps:.0f} QPS, recall@{k} {rec:.4f}", file=sys.stderr)
    if not a.keep:
        c.call("DELETE", f"/collections/{COLL}")
    out = {"n": a.n, "dim": a.dim, "vocab": a.vocab, "queries": a.queries, "prefetch": P,
           "k": k, "shards": a.shards, "threads": a.threads, "ef": a.ef, "load_s": round(load_s, 1),
           "postings": int(df.sum()), "runs": rows}
    if a.json:
        print(json.dumps(out))
        return
    print(f"{a.n} points, {a.dim}-d dense + sparse ({int(df.sum())} postings), {a.shards} "
          f"shards; {a.queries} queries on {a.threads} connections, best of {a.rounds}")
    print(f"| query | QPS | recall@{k} |")
    print("| --- | --- | --- |")
    for r in rows:
        print(f"| {r['query']} | {r['qps']:,.0f} | {r['recall']:.4f} |")


if __name__ == "__main__":
    main()
