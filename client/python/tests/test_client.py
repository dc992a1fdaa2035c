"""The Python SDK against a real local cluster: deploy/local/cluster starts 3 coordinators and
2 nodes on 127.0.0.1 (ports from DVEC_TEST_PORT), the tests drive it through the REST API.

    DVEC_BUILD=build python3 -m unittest client/python/tests/test_client.py

The package is imported from the folder (sys.path) unless DVEC_INSTALLED is set, in which
case the installed one is used (scripts/test installs it into a venv first).
"""

import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
if not os.environ.get("DVEC_INSTALLED"):
    sys.path.insert(0, os.path.join(HERE, ".."))

import dvec  # noqa: E402
from dvec import Client, DvecConnectionError, DvecError  # noqa: E402

DIM = 16


def vec(i, salt=0):
    r = random.Random(i * 7919 + salt)
    return [r.uniform(-1, 1) for _ in range(DIM)]


def l2(a, b):
    return sum((x - y) ** 2 for x, y in zip(a, b))


class Cluster:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="dvec-pytest-")
        # a block of 120 ports below the ephemeral range, moved on when one is taken
        self.port = int(os.environ.get("DVEC_TEST_PORT", 20000 + (os.getpid() % 40) * 120))
        self.bin = os.environ.get("DVEC_BUILD", os.path.join(ROOT, "build"))
        self.script = os.path.join(ROOT, "deploy", "local", "cluster")

    def run(self, *args):
        return subprocess.run([self.script, *args, "--dir", self.dir], check=True,
                              capture_output=True, text=True, timeout=120)

    def start(self):
        for attempt in range(3):
            try:
                self.run("start", "--bin", self.bin, "--port", str(self.port), "--coords", "3",
                         "--nodes", "2")
                break
            except subprocess.CalledProcessError as e:
                if attempt == 2 or "Address in use" not in (e.stdout + e.stderr):
                    raise
                self.run("stop")
                subprocess.run(["rm", "-rf", self.dir])
                os.makedirs(self.dir)
                self.port = 20000 + (self.port - 20000 + 1200) % 4800
        env = dict(line.split("=", 1) for line in
                   self.run("env").stdout.strip().splitlines())
        self.rest = env["COORD_HTTP"].split(",")

    def stop(self):
        try:
            self.run("stop")
        finally:
            subprocess.run(["rm", "-rf", self.dir])


CL = None


def setUpModule():
    global CL
    CL = Cluster()
    CL.start()


def tearDownModule():
    if CL:
        CL.stop()


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.c = Client(CL.rest, timeout=20)
        self.addCleanup(self.c.close)
        self.name = "py_" + uuid.uuid4().hex[:8]

    def tearDown(self):
        try:
            self.c.drop_collection(self.name)
        except DvecError:
            pass
        self.c.close()

    def load(self, n=2000):
        self.c.create_collection(self.name, dim=DIM, metric="euclid", partitions=4)
        ids = list(range(n))
        self.c.upsert(self.name, ids, [vec(i) for i in ids],
                      [{"n": i, "color": ["red", "green", "blue"][i % 3]} for i in ids],
                      batch_size=500)
        return ids

    def test_collections(self):
        self.c.create_collection(self.name, dim=DIM, metric="cosine", replication=1, m=8,
                                 ef_construction=64)
        self.assertIn(self.name, self.c.list_collections())
        self.assertTrue(self.c.collection_exists(self.name))
        self.assertFalse(self.c.collection_exists(self.name + "x"))
        info = self.c.collection_info(self.name)
        self.assertEqual(info["config"]["params"]["vectors"]["size"], DIM)
        self.assertEqual(info["config"]["params"]["vectors"]["distance"], "Cosine")
        with self.assertRaises(DvecError) as e:
            self.c.create_collection(self.name, dim=DIM)
        self.assertEqual(e.exception.status, 409)
        self.c.drop_collection(self.name)
        self.assertNotIn(self.name, self.c.list_collections())
        with self.assertRaises(DvecError) as e:
            self.c.collection_info(self.name)
        self.assertEqual(e.exception.status, 404)
        self.assertIn(self.name, e.exception.message)

    def test_search_recall_and_filters(self):
        ids = self.load()
        self.assertEqual(self.c.count(self.name), len(ids))
        good = 0
        for q in range(30):
            qv = vec(100000 + q, 1)
            want = sorted(ids, key=lambda i: l2(vec(i), qv))[:10]
            got = [h.id for h in self.c.search(self.name, qv, k=10, ef=64)]
            good += len(set(want) & set(got))
        recall = good / 300
        print(f"# python sdk: recall@10 {recall:.3f} over 30 queries", file=sys.stderr)
        self.assertGreaterEqual(recall, 0.95)
        red = {"must": [{"key": "color", "match": {"value": "red"}}]}
        hits = self.c.search(self.name, vec(5), k=20, filter=red, with_payload=True)
        self.assertEqual(len(hits), 20)
        self.assertTrue(all(h.payload["color"] == "red" for h in hits))
        self.assertEqual(self.c.count(self.name, red), len([i for i in ids if i % 3 == 0]))
        # closest first; the point itself comes first with score 0
        hits = self.c.search(self.name, vec(7), k=5, with_vector=True)
        self.assertEqual(hits[0].id, 7)
        self.assertAlmostEqual(hits[0].score, 0.0, places=4)
        self.assertEqual(len(hits[0].vector), DIM)
        self.assertEqual(sorted(h.score for h in hits), [h.score for h in hits])
        # score threshold
        cut = hits[2].score
        self.assertEqual([h.id for h in self.c.search(self.name, vec(7), k=5,
                                                       score_threshold=cut)],
                         [h.id for h in hits if h.score <= cut])
        # batch == singles
        qs = [vec(200000 + i, 2) for i in range(5)]
        batch = self.c.search_batch(self.name, qs, k=7)
        for q, hs in zip(qs, batch):
            self.assertEqual([h.id for h in hs], [h.id for h in self.c.search(self.name, q, 7)])

    def test_points(self):
        self.c.create_collection(self.name, dim=DIM, partitions=4)
        u = str(uuid.uuid4())
        self.c.upsert_points(self.name, [{"id": 1, "vector": vec(1), "payload": {"a": 1}},
                                         {"id": u, "vector": vec(2), "payload": {"a": 2}},
                                         {"id": 3, "vector": vec(3)}])
        got = self.c.get(self.name, [3, u, 1, 99], with_vector=True)
        self.assertEqual([r.id for r in got], [3, u, 1])
        self.assertEqual(got[1].payload, {"a": 2})
        self.assertAlmostEqual(got[2].vector[0], vec(1)[0], places=5)
        self.c.set_payload(self.name, {"b": "x"}, [1])
        self.assertEqual(self.c.get(self.name, [1])[0].payload, {"a": 1, "b": "x"})
        self.c.overwrite_payload(self.name, {"c": True}, [1])
        self.assertEqual(self.c.get(self.name, [1])[0].payload, {"c": True})
        self.c.delete_payload(self.name, ["c"], [1])
        self.assertEqual(self.c.get(self.name, [1])[0].payload or {}, {})
        self.c.set_payload(self.name, {"k": 5}, [3, u])
        self.c.clear_payload(self.name, [u])
        self.assertEqual(self.c.get(self.name, [u])[0].payload or {}, {})
        self.assertEqual(self.c.count(self.name, {"must": [{"key": "k", "match": {"value": 5}}]}), 1)
        self.c.delete(self.name, [3])
        self.assertEqual(self.c.count(self.name), 2)
        self.c.set_payload(self.name, {"z": 1}, [u])
        self.c.delete(self.name, filter={"must": [{"key": "z", "match": {"value": 1}}]})
        self.assertEqual([r.id for r in self.c.get(self.name, [1, u])], [1])

    def test_scroll_and_numpy(self):
        try:
            import numpy as np
        except ImportError:
            self.skipTest("numpy not installed")
        self.c.create_collection(self.name, dim=DIM, partitions=4)
        arr = np.array([vec(i) for i in range(1234)], dtype=np.float32)
        self.c.upsert(self.name, np.arange(1234), arr, batch_size=300)
        seen = [r.id for r in self.c.scroll_all(self.name, page=100)]
        self.assertEqual(seen, list(range(1234)))
        page, nxt = self.c.scroll(self.name, 10, 500)
        self.assertEqual([r.id for r in page], list(range(500, 510)))
        self.assertEqual(nxt, 510)
        self.assertEqual(self.c.search(self.name, arr[42], k=1)[0].id, 42)

    def test_consistency(self):
        self.c.create_collection(self.name, dim=DIM, partitions=4, replication=2,
                                 write_consistency_factor=2)
        info = self.c.collection_info(self.name)
        self.assertEqual(info["config"]["params"]["replication_factor"], 2)
        self.c.upsert(self.name, list(range(100)), [vec(i) for i in range(100)])
        for level in (2, "majority", "quorum", "all"):
            c = Client(self.c._targets[0].url, read_consistency=level)
            self.addCleanup(c.close)
            self.assertEqual(c.count(self.name), 100)
            self.assertEqual([r.id for r in c.get(self.name, [5, 500, 7])], [5, 7])
            self.assertEqual(c.search(self.name, vec(42), k=1)[0].id, 42)
            page, _ = c.scroll(self.name, 10)
            self.assertEqual([r.id for r in page], list(range(10)))
        c = Client(self.c._targets[0].url, read_consistency=3)
        self.addCleanup(c.close)
        with self.assertRaises(DvecError) as e:
            c.count(self.name)
        self.assertEqual(e.exception.status, 503)
        self.assertIn("read consistency 3", e.exception.message)
        with self.assertRaises(ValueError):
            Client(self.c._targets[0].url, read_consistency="most")

    def test_errors(self):
        with self.assertRaises(DvecError) as e:
            self.c.search("no_such_" + self.name, vec(1))
        self.assertEqual(e.exception.status, 404)
        self.c.create_collection(self.name, dim=DIM)
        with self.assertRaises(DvecError) as e:
            self.c.upsert(self.name, [1], [[0.5] * (DIM + 1)])
        self.assertEqual(e.exception.status, 400)
        self.assertIn("dimension", e.exception.message)
        with self.assertRaises(ValueError):
            self.c.upsert(self.name, [1], [[math.nan] * DIM])
        with self.assertRaises(ValueError):
            self.c.upsert(self.name, [1, 2], [vec(1)])
        with self.assertRaises(DvecError):
            self.c.search(self.name, vec(1), filter={"must": [{"key": "n", "range": {"lt": "x"}}]})
        self.assertEqual(self.c.count(self.name), 0)  # nothing was written
        dead = Client("http://127.0.0.1:9", timeout=2)
        self.addCleanup(dead.close)
        with self.assertRaises(DvecConnectionError):
            dead.list_collections()

    def test_failover_and_threads(self):
        ids = self.load(600)
        # the first URL is dead: every call goes to the next and stays there
        c = Client(["http://127.0.0.1:9"] + CL.rest, timeout=10)
        self.addCleanup(c.close)
        self.assertEqual(c.count(self.name), len(ids))
        errors = []

        def work(t):
            try:
                for i in range(20):
                    hs = c.search(self.name, vec(t * 100 + i), k=3)
                    assert hs[0].id == t * 100 + i, (hs[0].id, t * 100 + i)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        th = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for t in th:
            t.start()
        for t in th:
            t.join()
        self.assertEqual(errors, [])

    def test_cluster(self):
        st = self.c.cluster()
        self.assertIsInstance(st, dict)
        self.assertIn("status", st)

    def test_version(self):
        self.assertEqual(dvec.__version__, "0.1.0")


if __name__ == "__main__":
    unittest.main()
