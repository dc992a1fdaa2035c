"""dvec: the Python client of dvec, a distributed vector database.

It talks to the coordinators' REST API (Qdrant-compatible, docs/api.md) with the standard
library only; numpy arrays are accepted wherever vectors are, when numpy is installed.

    >>> from dvec import Client
    >>> c = Client(["http://127.0.0.1:7302", "http://127.0.0.1:7312"])
    >>> c.create_collection("docs", dim=4, metric="cosine")
    >>> c.upsert("docs", ids=[1, 2], vectors=[[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]],
    ...          payloads=[{"color": "red"}, {"color": "blue"}])
    >>> c.search("docs", [0.1, 0.2, 0.3, 0.4], k=1)[0].id
    1

A Client may be shared by threads: each thread keeps its own HTTP connection per
coordinator. When a coordinator cannot be reached the call goes to the next URL, which then
becomes the current one. Errors the server answers raise DvecError with its message and
HTTP status; a cluster that cannot be reached raises DvecConnectionError.
"""

from .client import Client, DvecConnectionError, DvecError, Record, ScoredPoint

__all__ = ["Client", "DvecError", "DvecConnectionError", "Record", "ScoredPoint"]
__version__ = "0.1.0"
