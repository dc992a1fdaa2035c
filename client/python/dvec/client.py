"""The dvec client over the coordinators' REST API (Qdrant-compatible paths and bodies)."""

from __future__ import annotations

import http.client
import json
import math
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

PointId = Union[int, str]
Vector = Sequence[float]
Filter = Dict[str, Any]

_METRICS = {"euclid": "Euclid", "l2": "Euclid", "cosine": "Cosine", "dot": "Dot",
            "manhattan": "Manhattan", "l1": "Manhattan"}


class DvecError(Exception):
    """The server refused a request. `status` is the HTTP status, `message` its reason."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message if not status else f"{message} (HTTP {status})")
        self.message = message
        self.status = status


class DvecConnectionError(DvecError):
    """No coordinator of the list could be reached (or none answered in time)."""


@dataclass
class Record:
    """A point as get and scroll return it."""
    id: PointId
    payload: Optional[Dict[str, Any]] = None
    vector: Optional[List[float]] = None


@dataclass
class ScoredPoint(Record):
    """A search result: the point and its score (see docs/api.md for each metric's score)."""
    score: float = 0.0


@dataclass
class _Target:
    host: str
    port: int
    prefix: str
    url: str


def _as_rows(vectors: Any) -> List[List[float]]:
    """Vectors as lists of floats: a list/tuple of sequences, or a 2-D numpy array."""
    if hasattr(vectors, "tolist") and hasattr(vectors, "ndim"):
        if vectors.ndim != 2:
            raise ValueError(f"vectors: expected a 2-D array, got {vectors.ndim} dimensions")
        vectors = vectors.tolist()
    rows = [_as_vector(v, i) for i, v in enumerate(vectors)]
    return rows


def _as_vector(v: Any, index: Optional[int] = None) -> List[float]:
    if hasattr(v, "tolist") and hasattr(v, "ndim"):
        if v.ndim != 1:
            raise ValueError(f"vector: expected a 1-D array, got {v.ndim} dimensions")
        v = v.tolist()
    out = [float(x) for x in v]
    for j, x in enumerate(out):
        if not math.isfinite(x):
            where = f"vector {index}" if index is not None else "vector"
            raise ValueError(f"{where}[{j}] is not a finite number ({x})")
    return out


def _hit(p: Dict[str, Any]) -> ScoredPoint:
    return ScoredPoint(id=p["id"], score=p.get("score", 0.0), payload=p.get("payload"),
                       vector=p.get("vector"))


def _record(p: Dict[str, Any]) -> Record:
    return Record(id=p["id"], payload=p.get("payload"), vector=p.get("vector"))


class Client:
    """A connection to a dvec cluster through one or more coordinators' REST URLs.

    url: "http://host:port" or a list of them (every coordinator serves the whole API).
    timeout: seconds per request.
    read_consistency: Qdrant's read `consistency` of get, count, scroll and search: a number of
    replicas (1 to 8), "majority", "quorum" or "all" (None: one in-sync replica).
    """

    def __init__(self, url: Union[str, Sequence[str]] = "http://127.0.0.1:7302",
                 timeout: float = 30.0, read_consistency: Union[int, str, None] = None):
        urls = [url] if isinstance(url, str) else list(url)
        if not urls:
            raise ValueError("at least one coordinator URL is needed")
        if read_consistency is None:
            self._rc = ""
        elif isinstance(read_consistency, str) and read_consistency in ("majority", "quorum",
                                                                           "all"):
            self._rc = read_consistency
        elif isinstance(read_consistency, int) and not isinstance(read_consistency, bool) and \
                1 <= read_consistency <= 8:
            self._rc = str(read_consistency)
        else:
            raise ValueError(f"read_consistency {read_consistency!r}: a number of replicas "
                             "(1 to 8), 'majority', 'quorum' or 'all'")
        self._targets = [self._parse(u) for u in urls]
        self._timeout = timeout
        self._current = 0
        self._lock = threading.Lock()
        self._local = threading.local()
        self._all: List[http.client.HTTPConnection] = []  # every thread's, for close()

    @staticmethod
    def _parse(url: str) -> _Target:
        u = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
        if u.scheme != "http" or not u.hostname:
            raise ValueError(f"{url!r}: expected http://host:port")
        return _Target(u.hostname, u.port or 80, u.path.rstrip("/"), url)

    # ---- transport ----------------------------------------------------------------------

    def _conn(self, i: int) -> http.client.HTTPConnection:
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        c = conns.get(i)
        if c is None:
            t = self._targets[i]
            c = conns[i] = http.client.HTTPConnection(t.host, t.port, timeout=self._timeout)
            with self._lock:
                self._all.append(c)
        return c

    def _drop(self, i: int) -> None:
        c = getattr(self._local, "conns", {}).pop(i, None)
        if c is not None:
            c.close()
            with self._lock:
                if c in self._all:
                    self._all.remove(c)

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None
        headers = {"Accept": "application/json"}
        if body is not None:
            try:
                data = json.dumps(body, allow_nan=False).encode()
            except ValueError as e:
                raise ValueError(f"request body: {e} (NaN and infinity are not allowed)") from None
            headers["Content-Type"] = "application/json"
        with self._lock:
            first = self._current
        n = len(self._targets)
        errors = []
        for k in range(n):
            i = (first + k) % n
            t = self._targets[i]
            for attempt in range(2):  # a kept-alive connection the server closed: once more
                c = self._conn(i)
                try:
                    c.request(method, t.prefix + path, body=data, headers=headers)
                    r = c.getresponse()
                    raw = r.read()
                except (ConnectionError, socket.timeout, OSError,
                        http.client.HTTPException) as e:
                    self._drop(i)
                    if attempt == 0 and isinstance(e, (http.client.RemoteDisconnected,
                                                       BrokenPipeError, ConnectionResetError)):
                        continue
                    errors.append(f"{t.url}: {e or type(e).__name__}")
                    break
                if k > 0:
                    with self._lock:
                        self._current = i
                return self._answer(r.status, raw, method, path)
        raise DvecConnectionError("no coordinator answered: " + "; ".join(errors))

    @staticmethod
    def _answer(status: int, raw: bytes, method: str, path: str) -> Any:
        try:
            doc = json.loads(raw) if raw else {}
        except ValueError:
            raise DvecError(f"{method} {path}: the answer is not JSON: {raw[:200]!r}", status)
        if 200 <= status < 300 and isinstance(doc, dict) and doc.get("status") == "ok":
            return doc.get("result")
        msg = None
        if isinstance(doc, dict):
            st = doc.get("status")
            if isinstance(st, dict):
                msg = st.get("error")
            elif isinstance(st, str) and st != "ok":
                msg = st
        raise DvecError(msg or f"{method} {path} failed", status)

    @staticmethod
    def _name(collection: str) -> str:
        if not collection:
            raise ValueError("a collection name is needed")
        return urllib.parse.quote(collection, safe="")

    # ---- collections --------------------------------------------------------------------

    def create_collection(self, name: str, dim: int, metric: str = "euclid", *,
                          partitions: Optional[int] = None, replication: Optional[int] = None,
                          m: Optional[int] = None, ef_construction: Optional[int] = None,
                          write_consistency_factor: Optional[int] = None) -> None:
        """Creates a collection of `dim`-dimensional vectors.

        metric: "euclid" (l2), "cosine", "dot" or "manhattan". partitions: fixed for the
        collection's life (default: one per node); replication: copies of each
        partition (default 1); write_consistency_factor: in-sync replicas a write needs
        (default 1, at most `replication`).
        """
        dist = _METRICS.get(metric.lower())
        if dist is None:
            raise ValueError(f"unknown metric {metric!r} (euclid, cosine, dot, manhattan)")
        body: Dict[str, Any] = {"vectors": {"size": int(dim), "distance": dist}}
        if partitions is not None:
            body["shard_number"] = int(partitions)
        if replication is not None:
            body["replication_factor"] = int(replication)
        if write_consistency_factor is not None:
            body["write_consistency_factor"] = int(write_consistency_factor)
        hnsw = {}
        if m is not None:
            hnsw["m"] = int(m)
        if ef_construction is not None:
            hnsw["ef_construct"] = int(ef_construction)
        if hnsw:
            body["hnsw_config"] = hnsw
        self._request("PUT", f"/collections/{self._name(name)}", body)

    def list_collections(self) -> List[str]:
        """Names of the collections."""
        r = self._request("GET", "/collections")
        return [c["name"] for c in r.get("collections", [])]

    def collection_exists(self, name: str) -> bool:
        r = self._request("GET", f"/collections/{self._name(name)}/exists")
        return bool(r.get("exists"))

    def collection_info(self, name: str) -> Dict[str, Any]:
        """The collection's configuration and point count (Qdrant's collection info shape)."""
        return self._request("GET", f"/collections/{self._name(name)}")

    def drop_collection(self, name: str) -> None:
        self._request("DELETE", f"/collections/{self._name(name)}")

    def create_payload_index(self, name: str, field_name: str, schema: str = "keyword") -> None:
        """Indexes payload key `field_name` ("keyword" or "integer") for faster filters."""
        self._request("PUT", f"/collections/{self._name(name)}/index",
                      {"field_name": field_name, "field_schema": schema})

    # ---- points -------------------------------------------------------------------------

    def upsert(self, name: str, ids: Sequence[PointId], vectors: Any,
               payloads: Optional[Sequence[Optional[Dict[str, Any]]]] = None, *,
               wait: bool = True, batch_size: int = 1000) -> None:
        """Inserts or replaces points; vectors is a list of sequences or a 2-D numpy array.

        Sent in batches of batch_size points; returns when every batch is acknowledged (a
        retried batch is harmless: writes are idempotent by id).
        """
        rows = _as_rows(vectors)
        ids = list(ids.tolist() if hasattr(ids, "tolist") else ids)
        if len(ids) != len(rows):
            raise ValueError(f"{len(ids)} ids but {len(rows)} vectors")
        if payloads is not None and len(payloads) != len(rows):
            raise ValueError(f"{len(payloads)} payloads but {len(rows)} vectors")
        path = f"/collections/{self._name(name)}/points?wait={'true' if wait else 'false'}"
        for s in range(0, len(rows), max(1, batch_size)):
            e = s + max(1, batch_size)
            batch: Dict[str, Any] = {"ids": ids[s:e], "vectors": rows[s:e]}
            if payloads is not None:
                batch["payloads"] = [p if p is not None else {} for p in payloads[s:e]]
            self._request("PUT", path, {"batch": batch})

    def upsert_points(self, name: str, points: Iterable[Dict[str, Any]], *,
                      wait: bool = True) -> None:
        """Upserts points given as dicts {"id", "vector", "payload"} (one request)."""
        pts = []
        for i, p in enumerate(points):
            q = {"id": p["id"], "vector": _as_vector(p["vector"], i)}
            if p.get("payload") is not None:
                q["payload"] = p["payload"]
            pts.append(q)
        self._request("PUT", f"/collections/{self._name(name)}/points?wait="
                      f"{'true' if wait else 'false'}", {"points": pts})

    def _read(self, path: str) -> str:
        """A read's path with the client's read consistency."""
        return f"{path}?consistency={self._rc}" if self._rc else path

    def get(self, name: str, ids: Sequence[PointId], *, with_payload: bool = True,
            with_vector: bool = False) -> List[Record]:
        """The points of `ids` that exist."""
        r = self._request("POST", self._read(f"/collections/{self._name(name)}/points"),
                          {"ids": list(ids), "with_payload": with_payload,
                           "with_vector": with_vector})
        return [_record(p) for p in r]

    def delete(self, name: str, ids: Optional[Sequence[PointId]] = None, *,
               filter: Optional[Filter] = None) -> None:
        """Deletes points by id, or every point matching `filter`."""
        self._request("POST", f"/collections/{self._name(name)}/points/delete?wait=true",
                      self._selector(ids, filter))

    @staticmethod
    def _selector(ids: Optional[Sequence[PointId]], filter: Optional[Filter]) -> Dict[str, Any]:
        if (ids is None) == (filter is None):
            raise ValueError("give either ids or filter")
        return {"points": list(ids)} if ids is not None else {"filter": filter}

    def set_payload(self, name: str, payload: Dict[str, Any],
                    ids: Optional[Sequence[PointId]] = None, *,
                    filter: Optional[Filter] = None) -> None:
        """Merges the keys of `payload` into the points' payloads."""
        body = self._selector(ids, filter)
        body["payload"] = payload
        self._request("POST", f"/collections/{self._name(name)}/points/payload?wait=true", body)

    def overwrite_payload(self, name: str, payload: Dict[str, Any],
                          ids: Optional[Sequence[PointId]] = None, *,
                          filter: Optional[Filter] = None) -> None:
        """Replaces the points' payloads by `payload`."""
        body = self._selector(ids, filter)
        body["payload"] = payload
        self._request("PUT", f"/collections/{self._name(name)}/points/payload?wait=true", body)

    def delete_payload(self, name: str, keys: Sequence[str],
                       ids: Optional[Sequence[PointId]] = None, *,
                       filter: Optional[Filter] = None) -> None:
        """Removes `keys` from the points' payloads."""
        body = self._selector(ids, filter)
        body["keys"] = list(keys)
        self._request("POST", f"/collections/{self._name(name)}/points/payload/delete?wait=true",
                      body)

    def clear_payload(self, name: str, ids: Optional[Sequence[PointId]] = None, *,
                      filter: Optional[Filter] = None) -> None:
        """Removes every payload key of the points."""
        self._request("POST", f"/collections/{self._name(name)}/points/payload/clear?wait=true",
                      self._selector(ids, filter))

    def count(self, name: str, filter: Optional[Filter] = None) -> int:
        """Points matching `filter` (all without one); exact."""
        body: Dict[str, Any] = {"exact": True}
        if filter is not None:
            body["filter"] = filter
        r = self._request("POST", self._read(f"/collections/{self._name(name)}/points/count"),
                          body)
        return int(r["count"])

    def scroll(self, name: str, limit: int = 100, offset: Optional[PointId] = None, *,
               filter: Optional[Filter] = None, with_payload: bool = True,
               with_vector: bool = False) -> Tuple[List[Record], Optional[PointId]]:
        """One page of points in id order from `offset`; returns (points, next offset or None)."""
        body: Dict[str, Any] = {"limit": int(limit), "with_payload": with_payload,
                                "with_vector": with_vector}
        if offset is not None:
            body["offset"] = offset
        if filter is not None:
            body["filter"] = filter
        r = self._request("POST", self._read(f"/collections/{self._name(name)}/points/scroll"),
                          body)
        return [_record(p) for p in r["points"]], r.get("next_page_offset")

    def scroll_all(self, name: str, page: int = 1000, *, filter: Optional[Filter] = None,
                   with_payload: bool = True, with_vector: bool = False) -> Iterator[Record]:
        """Every point (matching `filter`), page by page."""
        offset: Optional[PointId] = None
        while True:
            pts, offset = self.scroll(name, page, offset, filter=filter,
                                      with_payload=with_payload, with_vector=with_vector)
            yield from pts
            if offset is None:
                return

    # ---- search -------------------------------------------------------------------------

    @staticmethod
    def _search_body(vector: Any, k: int, ef: Optional[int], filter: Optional[Filter],
                     with_payload: bool, with_vector: bool,
                     score_threshold: Optional[float]) -> Dict[str, Any]:
        body: Dict[str, Any] = {"vector": _as_vector(vector), "limit": int(k),
                                "with_payload": with_payload, "with_vector": with_vector}
        if ef is not None:
            body["params"] = {"hnsw_ef": int(ef)}
        if filter is not None:
            body["filter"] = filter
        if score_threshold is not None:
            body["score_threshold"] = float(score_threshold)
        return body

    def search(self, name: str, vector: Any, k: int = 10, *, ef: Optional[int] = None,
               filter: Optional[Filter] = None, with_payload: bool = False,
               with_vector: bool = False,
               score_threshold: Optional[float] = None) -> List[ScoredPoint]:
        """The k nearest points to `vector`, closest first."""
        body = self._search_body(vector, k, ef, filter, with_payload, with_vector,
                                 score_threshold)
        r = self._request("POST", self._read(f"/collections/{self._name(name)}/points/search"),
                          body)
        return [_hit(p) for p in r]

    def search_batch(self, name: str, vectors: Any, k: int = 10, *, ef: Optional[int] = None,
                     filter: Optional[Filter] = None, with_payload: bool = False,
                     with_vector: bool = False,
                     score_threshold: Optional[float] = None) -> List[List[ScoredPoint]]:
        """Several searches with the same parameters in one request."""
        rows = _as_rows(vectors)
        body = {"searches": [self._search_body(v, k, ef, filter, with_payload, with_vector,
                                               score_threshold) for v in rows]}
        r = self._request("POST",
                          self._read(f"/collections/{self._name(name)}/points/search/batch"),
                          body)
        return [[_hit(p) for p in hits] for hits in r]

    # ---- cluster ------------------------------------------------------------------------

    def cluster(self) -> Dict[str, Any]:
        """The cluster's status as GET /cluster gives it."""
        return self._request("GET", "/cluster")

    def close(self) -> None:
        """Closes every connection of every thread (call it when no thread uses the client;
        a later call opens new ones)."""
        with self._lock:
            conns, self._all = self._all, []
        for c in conns:
            c.close()
        getattr(self._local, "conns", {}).clear()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def wait_ready(url: str, timeout: float = 30.0) -> None:
    """Waits until GET /readyz at `url` answers 200 (for scripts that just started a cluster)."""
    end = time.monotonic() + timeout
    last = ""
    while time.monotonic() < end:
        try:
            t = Client._parse(url)
            c = http.client.HTTPConnection(t.host, t.port, timeout=2)
            c.request("GET", t.prefix + "/readyz")
            if c.getresponse().status == 200:
                return
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    raise DvecConnectionError(f"{url} not ready after {timeout} s {last}")


