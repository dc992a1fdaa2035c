#!/usr/bin/python3
"""faiss_bench.py - the faiss (IndexHNSWFlat) peer of dvec-bench: same flags, same JSON.

  bench/peers/faiss_bench.py index --base B.fvecs --queries Q.fvecs --gt G.ivecs
        --metric l2|ip|cosine --m 16 --ef-construction 200 --ef 10,20,40,80 --k 10
        --threads 1 [--build-threads 2] [--latency-sample 1000] [--json]

Uses Debian's python3-faiss (1.7.3, CPU, OpenMP) and python3-numpy.
  build_s    wall clock of index.add(base) with faiss.omp_set_num_threads(build threads)
             (faiss inserts in parallel with OpenMP; level assignment uses faiss's fixed
             default seed).
  mem_bytes  VmRSS after the build minus VmRSS just before the index is created (base and
             queries are already loaded as float32 numpy arrays).
  per ef     hnsw.efSearch = ef;
             qps_1t  one batch search of all queries with 1 OpenMP thread,
             qps     one batch search of all queries with --threads OpenMP threads,
             p50/p99 per-query latency from single-query search calls on 1 thread over the
                     first --latency-sample queries (default 1000; 0 = all); includes the
                     Python call overhead (a few microseconds),
             recall  |returned ids ∩ gt[:k]| / k averaged (from the 1-thread batch),
             dist_per_query  faiss's own count of distance computations per query
                     (faiss.cvar.hnsw_stats: 1.7.3 keeps it in n3, later versions in
                     ndis); it covers the level-0 search only, not the greedy descent
                     through the upper levels, so it is a little lower than hnswlib's.
For cosine the vectors are normalised and METRIC_INNER_PRODUCT is used.
Output: a human table on stdout, or with --json exactly one JSON object. Progress: stderr.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "datasets"))
import texmex  # noqa: E402

try:
    import faiss
except ImportError:
    sys.exit("faiss_bench: python3-faiss is not installed (scripts/install-deps installs it)")


def vm_rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return -1


def log(msg):
    print("faiss_bench: " + msg, file=sys.stderr, flush=True)


def main():
    if len(sys.argv) < 2 or sys.argv[1] != "index":
        sys.exit("usage: faiss_bench.py index --base B --queries Q --gt G [options] [--json]")
    ap = argparse.ArgumentParser(prog="faiss_bench.py index")
    ap.add_argument("--base", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--gt", required=True)
    ap.add_argument("--metric", choices=("l2", "ip", "cosine"), default="l2")
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--ef", default="10,20,40,80")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--build-threads", type=int, default=1)
    ap.add_argument("--latency-sample", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=1,
                    help="timed passes per ef; the fastest is kept")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--sq8", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(sys.argv[2:])
    if args.sq8:
        sys.exit("faiss_bench: --sq8 is a dvec option; not supported here")
    efs = [int(x) for x in args.ef.split(",") if x]
    k = args.k

    base = np.ascontiguousarray(texmex.read_fvecs(args.base), dtype=np.float32)
    queries = np.ascontiguousarray(texmex.read_fvecs(args.queries), dtype=np.float32)
    gt = texmex.read_ivecs(args.gt)
    if base.shape[1] != queries.shape[1] or len(gt) != len(queries) or gt.shape[1] < k:
        sys.exit("faiss_bench: base/queries/gt shapes do not match")
    if args.metric == "cosine":
        faiss.normalize_L2(base)
        faiss.normalize_L2(queries)
    n, dim = base.shape
    nq = len(queries)
    log(f"{n} base, {nq} queries, dim {dim}, metric {args.metric}")

    metric = faiss.METRIC_L2 if args.metric == "l2" else faiss.METRIC_INNER_PRODUCT
    rss0 = vm_rss_bytes()
    t0 = time.perf_counter()
    index = faiss.IndexHNSWFlat(dim, args.m, metric)
    index.hnsw.efConstruction = args.ef_construction
    faiss.omp_set_num_threads(args.build_threads)
    index.add(base)
    build_s = time.perf_counter() - t0
    mem_bytes = vm_rss_bytes() - rss0
    log(f"built in {build_s:.2f} s ({args.build_threads} build threads), "
        f"+{mem_bytes / 1048576:.1f} MiB RSS")

    gtk = gt[:, :k]
    runs = []
    nlat = nq if args.latency_sample <= 0 else min(nq, args.latency_sample)
    for ef in efs:
        index.hnsw.efSearch = ef
        faiss.omp_set_num_threads(1)
        faiss.cvar.hnsw_stats.reset()
        qps_1t = 0.0
        for _ in range(max(1, args.repeat)):
            t0 = time.perf_counter()
            _, ids = index.search(queries, k)
            qps_1t = max(qps_1t, nq / (time.perf_counter() - t0))
        st = faiss.cvar.hnsw_stats
        ndis = st.ndis or st.n3  # faiss 1.7.3 counts level-0 distances in n3, not ndis
        hits = sum(len(np.intersect1d(ids[i], gtk[i])) for i in range(nq))
        recall = hits / (nq * k)
        lat = np.empty(nlat)
        for i in range(nlat):
            q = queries[i:i + 1]
            s = time.perf_counter()
            index.search(q, k)
            lat[i] = (time.perf_counter() - s) * 1e6
        lat.sort()
        pct = lambda p: float(lat[max(0, int(np.ceil(p * nlat)) - 1)])  # noqa: E731
        if args.threads > 1:
            faiss.omp_set_num_threads(args.threads)
            qps = 0.0
            for _ in range(max(1, args.repeat)):
                t0 = time.perf_counter()
                index.search(queries, k)
                qps = max(qps, nq / (time.perf_counter() - t0))
        else:
            qps = qps_1t
        r = {"ef": ef, "recall": round(recall, 6), "qps": round(qps, 2),
             "qps_1t": round(qps_1t, 2), "p50_us": round(pct(0.50), 2),
             "p99_us": round(pct(0.99), 2), "dist_per_query": round(ndis / nq, 2)}
        runs.append(r)
        log(f"ef {ef} recall {recall:.4f} qps {qps:.0f} qps_1t {qps_1t:.0f} "
            f"p50 {r['p50_us']:.0f} us")

    if args.json:
        print(json.dumps({
            "system": "faiss", "n": n, "nq": nq, "dim": dim, "metric": args.metric,
            "m": args.m, "ef_construction": args.ef_construction, "k": k,
            "threads": args.threads, "build_threads": args.build_threads,
            "build_s": round(build_s, 6), "mem_bytes": mem_bytes, "runs": runs}))
    else:
        print(f"faiss IndexHNSWFlat {args.metric}: n={n} nq={nq} dim={dim} M={args.m} "
              f"efC={args.ef_construction} k={k} threads={args.threads} "
              f"build_threads={args.build_threads}")
        print(f"build {build_s:.2f} s, memory {mem_bytes / 1048576:.1f} MiB")
        print(f"{'ef':>6} {'recall':>8} {'qps':>10} {'qps_1t':>10} {'p50_us':>9} "
              f"{'p99_us':>9} {'dist/q':>10}")
        for r in runs:
            print(f"{r['ef']:>6} {r['recall']:>8.4f} {r['qps']:>10.0f} {r['qps_1t']:>10.0f} "
                  f"{r['p50_us']:>9.1f} {r['p99_us']:>9.1f} {r['dist_per_query']:>10.1f}")


if __name__ == "__main__":
    main()
