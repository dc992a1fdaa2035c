"""texmex.py - shared helpers for dvec's benchmark data sets (bench/datasets, bench/peers).

TEXMEX formats (the ones of the SIFT1M / ann-benchmarks data sets):
  .fvecs  each vector is an int32 dimension d (little-endian) followed by d float32 values
  .ivecs  each row is an int32 count k followed by k int32 values (ground-truth neighbour ids)

Also here: exact k-NN by brute force (numpy, chunked over queries, optionally spread over
several processes) for the metrics l2, ip and cosine, a ground-truth checker, and a small
meta.json describing a data set directory (so scripts can skip work that is already done).

Ground-truth order: nearest first. "Distance" means squared L2 for l2, -<q,x> for ip and
-cos(q,x) for cosine, so the best neighbour is always the smallest value; ties are broken
by the smaller id. Computations are in float64: for integer-valued data such as
fashion-mnist pixels every distance is then exact.

Needs Debian's python3-numpy: run with /usr/bin/python3.
"""

import json
import multiprocessing
import os
import sys
import time

import numpy as np

METRICS = ("l2", "ip", "cosine")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- file formats

def _write_rows(path, arr, dtype):
    """Write a 2-D array as TEXMEX rows, atomically (tmp file + rename)."""
    arr = np.ascontiguousarray(arr, dtype=dtype)
    n, d = arr.shape
    rows = np.empty((n, d + 1), dtype="<i4")
    rows[:, 0] = d
    rows[:, 1:] = arr.view("<i4") if dtype != "<i4" else arr
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        rows.tofile(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_fvecs(path, arr):
    _write_rows(path, arr, "<f4")


def write_ivecs(path, arr):
    _write_rows(path, arr, "<i4")


def _read_rows(path, dtype, limit=None):
    raw = np.fromfile(path, dtype="<i4")
    if raw.size == 0:
        raise ValueError(f"{path}: empty file")
    d = int(raw[0])
    if d <= 0 or raw.size % (d + 1) != 0:
        raise ValueError(f"{path}: size is not a whole number of rows of dimension {d}")
    rows = raw.reshape(-1, d + 1)
    if not np.all(rows[:, 0] == d):
        raise ValueError(f"{path}: rows of different dimensions")
    if limit is not None:
        rows = rows[:limit]
    return np.ascontiguousarray(rows[:, 1:]).view(dtype)


def read_fvecs(path, limit=None):
    return _read_rows(path, "<f4", limit)


def read_ivecs(path, limit=None):
    return _read_rows(path, "<i4", limit)


def vecs_shape(path):
    """(rows, dim) of a .fvecs/.ivecs file, or None if missing, empty or malformed."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return None
    if len(head) < 4:
        return None
    d = int(np.frombuffer(head, dtype="<i4")[0])
    if d <= 0 or size % (4 * (d + 1)) != 0:
        return None
    return size // (4 * (d + 1)), d


# ---------------------------------------------------------------- meta.json

def read_meta(dirpath):
    try:
        with open(os.path.join(dirpath, "meta.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_meta(dirpath, meta):
    tmp = os.path.join(dirpath, "meta.json.tmp")
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, os.path.join(dirpath, "meta.json"))


def dataset_complete(dirpath, n, nq, dim, k):
    """True when base/queries/gt exist with exactly the expected shapes."""
    return (vecs_shape(os.path.join(dirpath, "base.fvecs")) == (n, dim)
            and vecs_shape(os.path.join(dirpath, "queries.fvecs")) == (nq, dim)
            and vecs_shape(os.path.join(dirpath, "gt.ivecs")) == (nq, k))


# ---------------------------------------------------------------- exact k-NN

def normalize(x):
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return x / norms


def _prepare(base, metric):
    b = np.asarray(base, dtype=np.float64)
    if metric == "cosine":
        b = normalize(b)
    sq = np.einsum("ij,ij->i", b, b) if metric == "l2" else None
    return b, sq


def _distances(q, b, bsq, metric):
    """Distances (smaller = nearer) of queries q (float64) to all of b."""
    if metric == "cosine":
        q = normalize(q)
    dots = q @ b.T
    if metric == "l2":
        qsq = np.einsum("ij,ij->i", q, q)
        d = bsq[None, :] - 2.0 * dots + qsq[:, None]
        np.maximum(d, 0.0, out=d)
        return d
    return -dots


def _topk(d, k):
    """Indices of the k smallest per row, sorted by (distance, id)."""
    n = d.shape[1]
    if k < n:
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
    else:
        part = np.tile(np.arange(n), (d.shape[0], 1))
    pd = np.take_along_axis(d, part, axis=1)
    out = np.empty_like(part)
    for i in range(d.shape[0]):
        order = np.lexsort((part[i], pd[i]))
        out[i] = part[i][order]
    # argpartition may cut a tie at position k arbitrarily: prefer the smaller ids there.
    kth = np.take_along_axis(d, out[:, -1:], axis=1)
    for i in np.nonzero((d <= kth).sum(axis=1) > k)[0]:
        cand = np.nonzero(d[i] <= kth[i, 0])[0]
        order = np.lexsort((cand, d[i][cand]))
        out[i] = cand[order][:k]
    return out


_G = {}


def _worker(span):
    lo, hi = span
    d = _distances(np.asarray(_G["queries"][lo:hi], dtype=np.float64), _G["b"], _G["bsq"],
                   _G["metric"])
    return lo, _topk(d, _G["k"]).astype(np.int32)


def exact_knn(base, queries, k, metric, jobs=None, chunk=250, progress=True):
    """Exact top-k ids (int32, nq x k) of every query, nearest first."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric}")
    k = min(k, len(base))
    b, bsq = _prepare(base, metric)
    _G.update(b=b, bsq=bsq, queries=queries, metric=metric, k=k)
    nq = len(queries)
    spans = [(lo, min(nq, lo + chunk)) for lo in range(0, nq, chunk)]
    jobs = jobs or min(os.cpu_count() or 1, 2)
    out = np.empty((nq, k), dtype=np.int32)
    t0 = time.time()
    done = 0
    if jobs > 1 and len(spans) > 1:
        # fork: the workers share base/queries copy-on-write through _G.
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(jobs) as pool:
            for lo, ids in pool.imap_unordered(_worker, spans):
                out[lo:lo + len(ids)] = ids
                done += len(ids)
                if progress:
                    log(f"  ground truth: {done}/{nq} queries ({time.time() - t0:.0f} s)")
    else:
        for span in spans:
            lo, ids = _worker(span)
            out[lo:lo + len(ids)] = ids
            done += len(ids)
            if progress and len(spans) > 1:
                log(f"  ground truth: {done}/{nq} queries ({time.time() - t0:.0f} s)")
    _G.clear()
    return out


def gt_distances(base, queries, gt, metric):
    """Distances (smaller = nearer) from each query to its ground-truth neighbours."""
    q = np.asarray(queries, dtype=np.float64)
    nb = np.asarray(base, dtype=np.float64)[gt]          # nq x k x dim
    if metric == "l2":
        diff = nb - q[:, None, :]
        return np.einsum("ijk,ijk->ij", diff, diff)
    if metric == "cosine":
        q = normalize(q)
        nb = nb / np.maximum(np.linalg.norm(nb, axis=2, keepdims=True), 1e-300)
    return -np.einsum("ijk,ik->ij", nb, q)


def verify_gt(base, queries, gt, metric, spot=20, chunk=500):
    """Check that every gt row is sorted nearest first and, for `spot` queries, that it
    equals an independent brute-force answer. Raises ValueError on a failure."""
    nq, k = gt.shape
    if gt.min() < 0 or gt.max() >= len(base):
        raise ValueError("gt holds ids outside the base set")
    for lo in range(0, nq, chunk):
        d = gt_distances(base, queries[lo:lo + chunk], gt[lo:lo + chunk], metric)
        tol = 1e-9 * np.maximum(1.0, np.abs(d[:, 1:]))
        bad = np.nonzero(np.any(d[:, :-1] > d[:, 1:] + tol, axis=1))[0]
        if len(bad):
            raise ValueError(f"gt row {lo + bad[0]} is not sorted by distance")
    rng = np.random.default_rng(1)
    b, bsq = _prepare(base, metric)
    for i in rng.choice(nq, size=min(spot, nq), replace=False):
        d = _distances(np.asarray(queries[i:i + 1], dtype=np.float64), b, bsq, metric)[0]
        best = np.sort(d)[:k]
        mine = gt_distances(base, queries[i:i + 1], gt[i:i + 1], metric)[0]
        if not np.allclose(mine, best, rtol=1e-6, atol=1e-6):
            raise ValueError(f"gt row {i} differs from brute force")
    return True
