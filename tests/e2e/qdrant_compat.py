#!/usr/bin/env python3
"""End-to-end compatibility check: the unmodified Python `qdrant-client` against `quiver serve`.

One scenario (`scenario()`) makes the same public-API calls against any client and returns a
transcript (ids, payloads, counts, rounded scores and vectors). It runs against qdrant-client's
local mode (`QdrantClient(":memory:")`, Qdrant's reference semantics in Python) and, when a
quiver binary is given, against `quiver serve`; the two transcripts must match (ids and
payloads exactly, scores and vectors within 1e-4 relative). Along the way each run is also
checked against an exact numpy model of the collection (exact top-k with the filter evaluated
in Python, counts, scroll order), so the reference itself is checked too.

Against the server only: api keys (401 / 403), documents embedded by the server
(`models.Document`, sent as-is with `cloud_inference=True`), server-side BM25 (`qdrant/bm25`
documents on a sparse vector with the IDF modifier, checked against our own reference:
local mode needs fastembed for them), 4xx for bad input, payload index
schema, and a restart on the same data directory.

Usage (normally through tests/e2e/run):
    qdrant_compat.py --local-only
    qdrant_compat.py --quiver target/release/quiver [--keep] [--server-log FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any, Callable

import httpx
import numpy as np

# Local mode warns that payload indexes are no-ops; the remote client warns that an api key
# travels over plain http (the server listens on loopback only).
warnings.filterwarnings("ignore", category=UserWarning)

from qdrant_client import QdrantClient, models  # noqa: E402
from qdrant_client.common.version_check import is_compatible  # noqa: E402
from qdrant_client.http.exceptions import UnexpectedResponse  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

DIM = 64  # main collection, Cosine
N_INT, N_UUID = 9_500, 500  # 10,000 points: integer ids and UUIDs
BATCH = 500
MULTI_N, TEXT_DIM, IMAGE_DIM = 1_000, 32, 16  # named vectors: text (Dot), image (Euclid)
SEED = 20_240_611
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MAIN, MULTI, SCRATCH, DOCS = "wordnet", "multi", "scratch", "docs"
SPARSE, SPARSE_N, VOCAB = "sparse", 600, 400  # sparse vectors: text (plain), bm (IDF)
RW_KEY, RO_KEY = "e2e-rw-key-0123456789", "e2e-ro-key-9876543210"
EXACT = models.SearchParams(exact=True)
TAGS = ["red", "green", "blue", "cyan"]
SCORE_REL = 1e-4
ABS = 1e-5

# Filters in Qdrant's JSON syntax: sent through models.Filter and evaluated by the numpy model.
FILTERS: dict[str, dict] = {
    "noun_no_example": {
        "must": [{"key": "pos", "match": {"value": "n"}}],
        "must_not": [{"key": "has_example", "match": {"value": True}}],
    },
    "adv_or_synonyms": {
        "should": [
            {"key": "pos", "match": {"value": "r"}},
            {"key": "lemma_count", "range": {"gte": 4}},
        ]
    },
    "adjective": {"must": [{"key": "pos", "match": {"any": ["a", "s"]}}]},
    "not_act_artifact": {
        "must": [{"key": "lexname", "match": {"except": ["noun.act", "noun.artifact"]}}]
    },
    "weight_band_short": {
        "must": [
            {"key": "weight", "range": {"gte": 0.25, "lt": 0.5}},
            {"key": "gloss_words", "range": {"lte": 10}},
        ]
    },
    "person_artifact_example": {
        "must": [
            {"key": "has_example", "match": {"value": True}},
            {
                "should": [
                    {"key": "lexname", "match": {"value": "noun.person"}},
                    {"key": "lexname", "match": {"value": "noun.artifact"}},
                ]
            },
        ]
    },
    "tag_red": {"must": [{"key": "tags", "match": {"value": "red"}}]},
    "tags_empty": {"must": [{"is_empty": {"key": "tags"}}]},
    "no_red_no_blue_verbs": {
        "must": [{"key": "pos", "match": {"value": "v"}}],
        "must_not": [{"key": "tags", "match": {"any": ["red", "blue"]}}],
    },
}


def qfilter(spec: dict | None) -> models.Filter | None:
    return None if spec is None else models.Filter.model_validate(spec)


# ---------------------------------------------------------------------------------------------
# Input data: deterministic, the same for every run.


def read_fvecs(path: Path) -> np.ndarray:
    raw = np.fromfile(path, dtype=np.int32)
    dim = int(raw[0])
    return raw.reshape(-1, dim + 1)[:, 1:].view(np.float32).copy()


def default_sample_dir() -> Path:
    env = os.environ.get("QUIVER_WORDNET_SAMPLE")
    return Path(env) if env else REPO.parent / "shared" / "datasets" / "wordnet" / "sample"


class Data:
    """Points, payloads and query vectors from a seeded RNG; payloads are wordnet sample rows."""

    def __init__(self, sample_dir: Path):
        rows = [json.loads(line) for line in open(sample_dir / "base.jsonl", encoding="utf-8")]
        self.sample_rows = rows
        self.sample_vectors = read_fvecs(sample_dir / "base.fvecs")
        rng = np.random.default_rng(SEED)
        int_ids = [int(x) for x in rng.choice(60_000, N_INT, replace=False)]
        uuid_ids = [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(N_UUID)]
        ids: list[int | str] = int_ids + uuid_ids
        order = rng.permutation(len(ids))
        self.ids = [ids[i] for i in order]  # shuffled: id order is not insertion order
        self.vectors = rng.standard_normal((len(ids), DIM), dtype=np.float32)
        ranks = rng.permutation(len(ids))
        self.payloads: list[dict] = []
        for r in range(len(ids)):
            row = rows[r % len(rows)]
            p = {
                k: row[k]
                for k in (
                    "offset", "text", "pos", "lexname", "lemmas",
                    "lemma_count", "gloss_words", "has_example",
                )
            }
            p["rank"] = int(ranks[r])
            p["weight"] = round(float(rng.random()), 4)
            m = r % 7
            if m == 1:
                p["tags"] = []
            elif m == 2:
                p["tags"] = None
            elif m >= 3:
                n = int(rng.integers(1, 4))
                p["tags"] = sorted(str(t) for t in rng.choice(TAGS, n, replace=False))
            # m == 0: no "tags" key at all
            self.payloads.append(p)
        self.queries = rng.standard_normal((96, DIM), dtype=np.float32)
        self.new_vectors = rng.standard_normal((60, DIM), dtype=np.float32)

        self.multi_ids = list(range(1, MULTI_N + 1))
        self.multi_text = rng.standard_normal((MULTI_N, TEXT_DIM), dtype=np.float32)
        self.multi_image = rng.standard_normal((MULTI_N, IMAGE_DIM), dtype=np.float32)
        # The first half goes in as a Batch, the second as PointStructs. Every point has both
        # vectors: Qdrant lets a point omit a named vector, Quiver does not (docs/server.md:
        # every point carries all of its collection's vectors), and this checks compatibility
        # where Quiver claims it.
        self.multi_has_image = [True] * MULTI_N
        self.multi_payloads = [
            {"group": ["a", "b", "c"][i % 3], "n": i, "odd": bool(i % 2)} for i in range(MULTI_N)
        ]
        self.multi_queries_text = rng.standard_normal((8, TEXT_DIM), dtype=np.float32)
        self.multi_queries_image = rng.standard_normal((8, IMAGE_DIM), dtype=np.float32)
        self.multi_new_image = rng.standard_normal((20, IMAGE_DIM), dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# The numpy model: what the collection should hold, with exact search, filters, scroll order.


def idkey(pid: int | str) -> tuple:
    """Qdrant's point id order: integer ids first, then UUIDs."""
    return (0, pid, "") if isinstance(pid, int) else (1, 0, pid)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b or (
        isinstance(a, (int, float)) and isinstance(b, (int, float))
        and not isinstance(a, bool) and not isinstance(b, bool) and a == b
    )


def _values(payload: dict, key: str) -> list:
    v = payload.get(key)
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def matches(payload: dict, pid: int | str, spec: dict) -> bool:
    if "must" in spec or "should" in spec or "must_not" in spec:
        if not all(matches(payload, pid, c) for c in spec.get("must") or []):
            return False
        if spec.get("should") and not any(matches(payload, pid, c) for c in spec["should"]):
            return False
        return not any(matches(payload, pid, c) for c in spec.get("must_not") or [])
    if "has_id" in spec:
        return pid in spec["has_id"]
    if "is_empty" in spec:
        v = payload.get(spec["is_empty"]["key"])
        return v is None or v == []
    vals = _values(payload, spec["key"])
    if "match" in spec:
        m = spec["match"]
        if "value" in m:
            return any(_same(x, m["value"]) for x in vals)
        if "any" in m:
            return any(_same(x, y) for x in vals for y in m["any"])
        if "except" in m:
            return any(not any(_same(x, y) for y in m["except"]) for x in vals)
    if "range" in spec:
        r = spec["range"]
        nums = [x for x in vals if isinstance(x, (int, float)) and not isinstance(x, bool)]
        return any(
            ("gt" not in r or x > r["gt"]) and ("gte" not in r or x >= r["gte"])
            and ("lt" not in r or x < r["lt"]) and ("lte" not in r or x <= r["lte"])
            for x in nums
        )
    raise ValueError(f"filter condition not modelled: {spec}")


class Model:
    """One collection: spaces is {vector name: (distance, dim)}, "" for the unnamed vector."""

    def __init__(self, spaces: dict[str, tuple[str, int]], capacity: int):
        self.spaces = spaces
        self.row: dict[int | str, int] = {}
        self.ids: list[int | str] = []
        self.payload: list[dict] = []
        self.alive = np.zeros(capacity, dtype=bool)
        self.vec = {n: np.zeros((capacity, d), dtype=np.float32) for n, (_, d) in spaces.items()}
        self.has = {n: np.zeros(capacity, dtype=bool) for n in spaces}
        self.version = 0
        self._masks: dict[str, tuple[int, np.ndarray]] = {}

    def upsert(self, pid, vectors: dict[str, np.ndarray], payload: dict | None):
        r = self.row.get(pid)
        if r is None:
            r = len(self.ids)
            self.row[pid] = r
            self.ids.append(pid)
            self.payload.append({})
        self.alive[r] = True
        for n in self.spaces:  # an upsert replaces the whole point
            self.has[n][r] = n in vectors
            if n in vectors:
                self.vec[n][r] = vectors[n]
        self.payload[r] = json.loads(json.dumps(payload or {}))
        self.version += 1

    def delete(self, pid):
        r = self.row.get(pid)
        if r is not None:
            self.alive[r] = False
            self.version += 1

    def live_ids(self) -> list:
        return [self.ids[r] for r in np.nonzero(self.alive[: len(self.ids)])[0]]

    def mask(self, spec: dict | None) -> np.ndarray:
        n = len(self.ids)
        m = self.alive[:n].copy()
        if spec is None:
            return m
        key = json.dumps(spec, sort_keys=True)
        hit = self._masks.get(key)
        if hit and hit[0] == self.version:
            return hit[1].copy()
        for r in np.nonzero(m)[0]:
            m[r] = matches(self.payload[r], self.ids[r], spec)
        self._masks[key] = (self.version, m.copy())
        return m

    def select(self, spec: dict | None) -> list:
        return sorted((self.ids[r] for r in np.nonzero(self.mask(spec))[0]), key=idkey)

    def count(self, spec: dict | None = None) -> int:
        return int(self.mask(spec).sum())

    def stored_vector(self, pid, name: str = "") -> list[float]:
        v = self.vec[name][self.row[pid]].astype(np.float64)
        if self.spaces[name][0] == "Cosine":
            v = v / np.linalg.norm(v)
        return v.tolist()

    def search(self, q, name: str = "", spec=None, limit=10, offset=0, threshold=None,
               exclude=None) -> list[tuple[Any, float]]:
        dist = self.spaces[name][0]
        m = self.mask(spec) & self.has[name][: len(self.ids)]
        if exclude is not None:
            m[self.row[exclude]] = False
        rows = np.nonzero(m)[0]
        mat = self.vec[name][rows].astype(np.float64)
        q = np.asarray(q, dtype=np.float64)
        if dist == "Cosine":
            mat = mat / np.linalg.norm(mat, axis=1, keepdims=True)
            scores = mat @ (q / np.linalg.norm(q))
        elif dist == "Dot":
            scores = mat @ q
        else:
            scores = np.sqrt(((mat - q) ** 2).sum(axis=1))
        asc = dist == "Euclid"
        if threshold is not None:
            keep = scores <= threshold if asc else scores >= threshold
            rows, scores = rows[keep], scores[keep]
        order = sorted(range(len(rows)),
                       key=lambda i: ((scores[i] if asc else -scores[i]), idkey(self.ids[rows[i]])))
        return [(self.ids[rows[i]], float(scores[i])) for i in order[offset: offset + limit]]


# ---------------------------------------------------------------------------------------------
# Transcript: one entry per step; values are plain JSON. Failures of the model checks are kept
# beside it.


def rvec(v):
    if v is None:
        return None
    if isinstance(v, dict):
        return {k: rvec(x) for k, x in sorted(v.items())}
    if isinstance(v, models.SparseVector):
        return {"indices": list(v.indices), "values": [round(float(x), 6) for x in v.values]}
    return [round(float(x), 6) for x in v]


def point(p) -> dict:
    """A ScoredPoint or Record as a plain dict (version, shard_key left out)."""
    d: dict[str, Any] = {"id": p.id}
    if getattr(p, "score", None) is not None:
        d["score"] = round(float(p.score), 6)
    d["payload"] = p.payload
    if p.vector is not None:
        d["vector"] = rvec(p.vector)
    if getattr(p, "order_value", None) is not None:
        d["order_value"] = p.order_value
    return d


def short(e: BaseException, n: int = 400) -> str:
    if isinstance(e, UnexpectedResponse):
        body = e.content.decode("utf-8", "replace")
        s = f"UnexpectedResponse {e.status_code}: {body}"
    else:
        s = f"{type(e).__name__}: {e}"
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 3] + "..."


def status_of(result) -> Any:
    s = getattr(result, "status", result)
    return getattr(s, "value", s)


class Run:
    def __init__(self, label: str, log: Callable[[str], None]):
        self.label = label
        self.log = log
        self.transcript: list[dict] = []
        self.failures: list[tuple[str, str]] = []
        self.current = ""

    def step(self, name: str, fn: Callable[[], Any]) -> Any:
        self.current = name
        t0 = time.monotonic()
        try:
            value = fn()
            err = None
        except Exception as e:  # keep going: one report lists everything that is missing
            value = {"error": short(e)}
            err = value["error"]
        self.transcript.append({"step": name, "value": json.loads(json.dumps(value, default=repr))})
        ms = (time.monotonic() - t0) * 1000
        n_fail = sum(1 for s, _ in self.failures if s == name)
        mark = "ERROR" if err else ("FAIL" if n_fail else "ok")
        self.log(f"  [{self.label}] {name:<40} {mark:<5} {ms:7.0f} ms" + (f"  {err}" if err else ""))
        if err:
            self.failures.append((name, f"raised {err}"))
        return value

    def check(self, cond: bool, msg: str) -> bool:
        if not cond:
            self.failures.append((self.current, msg))
        return cond

    def check_ranked(self, what: str, got: list, expected: list[tuple[Any, float]],
                     model: Model | None = None) -> None:
        """Ids must equal the exact answer; a swap is accepted only between equal scores."""
        gids = [p.id for p in got]
        eids = [pid for pid, _ in expected]
        if gids != eids:
            escore = {pid: s for pid, s in expected}
            ok = len(gids) == len(eids) and all(
                pid in escore and abs(escore[pid] - s) <= ABS for pid, (_, s) in zip(gids, expected)
            )
            if not ok:
                self.check(False, f"{what}: ids {gids[:12]} != exact {eids[:12]}")
                return
        for p, (_, s) in zip(got, expected):
            if not close(p.score, s):
                self.check(False, f"{what}: id {p.id} score {p.score} != exact {s}")
                return


def close(a: float, b: float, rel: float = SCORE_REL, abs_tol: float = ABS) -> bool:
    return abs(a - b) <= max(rel * max(abs(a), abs(b)), abs_tol)


def recall(got: list, expected: list) -> float:
    e = {pid for pid, _ in expected}
    return len(e & {p.id for p in got}) / max(1, len(e))


# ---------------------------------------------------------------------------------------------
# The scenario.


def wait_green(client: QdrantClient, name: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        info = client.get_collection(name)
        if status_of(info.status) == "green" or time.monotonic() > deadline:
            return info
        time.sleep(0.2)


def vectors_config(params) -> Any:
    v = params.vectors
    if isinstance(v, dict):
        return {k: {"size": x.size, "distance": status_of(x.distance)} for k, x in sorted(v.items())}
    return {"size": v.size, "distance": status_of(v.distance)}


def collection_info(client: QdrantClient, name: str) -> dict:
    info = wait_green(client, name)
    return {
        "status": status_of(info.status),
        "optimizer_status": status_of(info.optimizer_status),
        "points_count": info.points_count,
        "vectors": vectors_config(info.config.params),
    }


def scenario(client: QdrantClient, data: Data, label: str = "local",
             log: Callable[[str], None] = print) -> Run:
    """The same public-API calls against any client; returns the transcript and the failures
    of the checks against the numpy model."""
    run = Run(label, log)
    main = Model({"": ("Cosine", DIM)}, len(data.ids))
    multi = Model({"text": ("Dot", TEXT_DIM), "image": ("Euclid", IMAGE_DIM)}, MULTI_N)
    qi = iter(range(len(data.queries)))
    # FILTERS plus one on ids (integers and UUIDs), which needs the data.
    filters = dict(FILTERS, has_id_not_noun={
        "must": [{"has_id": data.ids[1000:1600:2]}],
        "must_not": [{"key": "pos", "match": {"value": "n"}}],
    })

    def nextq() -> np.ndarray:
        return data.queries[next(qi)]

    # -- collections ---------------------------------------------------------------------------
    def create():
        out = {"exists_before": client.collection_exists(MAIN)}
        # A low indexing threshold (KB) makes the server seal the points into several segments
        # with HNSW graphs while they arrive, so that queries with default params go through
        # the graphs (and segments merge); local mode ignores it.
        out["create_main"] = client.create_collection(
            MAIN, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE),
            optimizers_config=models.OptimizersConfigDiff(indexing_threshold=1500))
        out["create_multi"] = client.create_collection(MULTI, vectors_config={
            "text": models.VectorParams(size=TEXT_DIM, distance=models.Distance.DOT),
            "image": models.VectorParams(size=IMAGE_DIM, distance=models.Distance.EUCLID),
        })
        out["create_scratch"] = client.create_collection(
            SCRATCH, vectors_config=models.VectorParams(size=8, distance=models.Distance.COSINE))
        out["exists_after"] = client.collection_exists(MAIN)
        out["collections"] = sorted(c.name for c in client.get_collections().collections)
        run.check(out["collections"] == sorted([MAIN, MULTI, SCRATCH]), f"collections {out['collections']}")
        return out

    run.step("create_collection", create)

    # -- upsert --------------------------------------------------------------------------------
    def upsert_main():
        statuses = []
        for b, start in enumerate(range(0, len(data.ids), BATCH)):
            ids = data.ids[start: start + BATCH]
            vecs = data.vectors[start: start + BATCH]
            pls = data.payloads[start: start + BATCH]
            if b % 2 == 0:
                points: Any = [models.PointStruct(id=i, vector=v.tolist(), payload=p)
                               for i, v, p in zip(ids, vecs, pls)]
            else:
                points = models.Batch(ids=ids, vectors=vecs.tolist(), payloads=pls)
            statuses.append(status_of(client.upsert(MAIN, points=points, wait=True)))
            for i, v, p in zip(ids, vecs, pls):
                main.upsert(i, {"": v}, p)
        run.check(set(statuses) == {"completed"}, f"upsert statuses {set(statuses)}")
        return {"batches": len(statuses), "statuses": sorted(set(statuses))}

    run.step("upsert wordnet (PointStruct + Batch)", upsert_main)

    def upsert_multi():
        half = MULTI_N // 2
        r1 = client.upsert(MULTI, points=models.Batch(
            ids=data.multi_ids[:half],
            vectors={"text": data.multi_text[:half].tolist(), "image": data.multi_image[:half].tolist()},
            payloads=data.multi_payloads[:half]))
        pts = []
        for i in range(half, MULTI_N):
            vec = {"text": data.multi_text[i].tolist()}
            if data.multi_has_image[i]:
                vec["image"] = data.multi_image[i].tolist()
            pts.append(models.PointStruct(id=data.multi_ids[i], vector=vec, payload=data.multi_payloads[i]))
        r2 = client.upsert(MULTI, points=pts)
        for i in range(MULTI_N):
            vec = {"text": data.multi_text[i]}
            if data.multi_has_image[i]:
                vec["image"] = data.multi_image[i]
            multi.upsert(data.multi_ids[i], vec, data.multi_payloads[i])
        return [status_of(r1), status_of(r2)]

    run.step("upsert multi (named vectors)", upsert_multi)

    def info_both():
        out = {MAIN: collection_info(client, MAIN), MULTI: collection_info(client, MULTI)}
        run.check(out[MAIN]["points_count"] == main.count(), f"points_count {out[MAIN]['points_count']}")
        run.check(out[MULTI]["points_count"] == multi.count(), f"multi points_count {out[MULTI]['points_count']}")
        return out

    run.step("get_collection", info_both)

    # -- count ---------------------------------------------------------------------------------
    def counts():
        out = {"all": client.count(MAIN, exact=True).count}
        run.check(out["all"] == main.count(), f"count all {out['all']} != {main.count()}")
        for name, spec in filters.items():
            c = client.count(MAIN, count_filter=qfilter(spec), exact=True).count
            run.check(c == main.count(spec), f"count {name}: {c} != {main.count(spec)}")
            out[name] = c
        return out

    run.step("count (exact, filters)", counts)

    # -- query: exact --------------------------------------------------------------------------
    def query_exact():
        out = {}
        for name, spec in [("none", None), *filters.items()]:
            q = nextq()
            res = client.query_points(MAIN, query=q.tolist(), query_filter=qfilter(spec), limit=10,
                                      search_params=EXACT, with_payload=True).points
            run.check_ranked(f"filter {name}", res, main.search(q, spec=spec, limit=10))
            run.check(all(p.payload == main.payload[main.row[p.id]] for p in res), f"{name}: payloads")
            out[name] = [point(p) for p in res]
        return out

    run.step("query_points exact (filters)", query_exact)

    def query_offset_threshold():
        out = {}
        q = nextq()
        res = client.query_points(MAIN, query=q.tolist(), limit=7, offset=5, search_params=EXACT).points
        run.check_ranked("offset", res, main.search(q, limit=7, offset=5))
        out["offset"] = [point(p) for p in res]
        spec = FILTERS["adjective"]
        res = client.query_points(MAIN, query=q.tolist(), query_filter=qfilter(spec), limit=7, offset=5,
                                  search_params=EXACT, with_payload=["pos"]).points
        run.check_ranked("offset+filter", res, main.search(q, spec=spec, limit=7, offset=5))
        out["offset_filter"] = [point(p) for p in res]
        q = nextq()
        top = main.search(q, limit=13)
        thr = (top[11][1] + top[12][1]) / 2  # between the 12th and 13th: 12 results
        res = client.query_points(MAIN, query=q.tolist(), limit=50, score_threshold=thr,
                                  search_params=EXACT, with_payload=False).points
        run.check_ranked("score_threshold", res, main.search(q, limit=50, threshold=thr))
        run.check(len(res) == 12, f"score_threshold: {len(res)} results, want 12")
        out["score_threshold"] = [point(p) for p in res]
        return out

    run.step("query_points offset, score_threshold", query_offset_threshold)

    def query_selectors():
        out = {}
        q = nextq()
        exp = main.search(q, limit=5)
        res = client.query_points(MAIN, query=q.tolist(), limit=5, search_params=EXACT,
                                  with_payload=["pos", "lemma_count", "tags"]).points
        run.check_ranked("include", res, exp)
        for p in res:
            full = main.payload[main.row[p.id]]
            want = {k: full[k] for k in ("pos", "lemma_count", "tags") if k in full}
            run.check(p.payload == want, f"include: {p.id} payload {p.payload} != {want}")
        out["include"] = [point(p) for p in res]
        res = client.query_points(
            MAIN, query=q.tolist(), limit=5, search_params=EXACT,
            with_payload=models.PayloadSelectorExclude(exclude=["text", "lemmas", "offset"])).points
        for p in res:
            full = main.payload[main.row[p.id]]
            want = {k: v for k, v in full.items() if k not in ("text", "lemmas", "offset")}
            run.check(p.payload == want, f"exclude: {p.id} payload {p.payload} != {want}")
        out["exclude"] = [point(p) for p in res]
        res = client.query_points(MAIN, query=q.tolist(), limit=5, search_params=EXACT,
                                  with_payload=False, with_vectors=True).points
        for p in res:
            run.check(p.payload is None or p.payload == {}, f"with_payload=False: {p.payload}")
            want = main.stored_vector(p.id)
            run.check(all(close(a, b) for a, b in zip(p.vector, want)) and len(p.vector) == DIM,
                      f"with_vectors: {p.id} vector differs from the normalised input")
        out["vectors"] = [point(p) for p in res]
        return out

    run.step("query_points with_payload / with_vectors", query_selectors)

    def query_default():
        out = {}
        for name in ("none", "adjective", "noun_no_example", "tag_red"):
            spec = FILTERS.get(name)
            recs = []
            for _ in range(8):
                q = nextq()
                res = client.query_points(MAIN, query=q.tolist(), query_filter=qfilter(spec), limit=10).points
                recs.append(recall(res, main.search(q, spec=spec, limit=10)))
            r = float(np.mean(recs))
            run.check(r >= 0.95, f"default params, filter {name}: recall@10 {r:.3f} < 0.95")
            out[name] = r >= 0.95
            log(f"      recall@10 default params, filter {name}: {r:.3f}")
        return out

    run.step("query_points default params (recall)", query_default)

    def query_by_id():
        out = {}
        pid_int = next(i for i in data.ids if isinstance(i, int))
        pid_uuid = next(i for i in data.ids if isinstance(i, str))
        for tag, pid, spec in [("int", pid_int, None), ("uuid", pid_uuid, None),
                               ("int+filter", pid_int, FILTERS["noun_no_example"])]:
            res = client.query_points(MAIN, query=pid, query_filter=qfilter(spec), limit=8,
                                      search_params=EXACT, with_payload=False).points
            exp = main.search(main.vec[""][main.row[pid]], spec=spec, limit=8, exclude=pid)
            run.check_ranked(f"by id {tag}", res, exp)
            out[tag] = [point(p) for p in res]
        return out

    run.step("query_points by point id", query_by_id)

    def query_batch():
        q1, q2 = nextq(), nextq()
        pid = data.ids[17]
        reqs = [
            models.QueryRequest(query=q1.tolist(), filter=qfilter(FILTERS["adjective"]), limit=5,
                                params=EXACT, with_payload=True),
            models.QueryRequest(query=pid, limit=5, params=EXACT),
            models.QueryRequest(query=q2.tolist(), limit=4, offset=3, params=EXACT,
                                with_payload=["lexname"], with_vector=True),
        ]
        res = client.query_batch_points(MAIN, requests=reqs)
        run.check(len(res) == 3, f"{len(res)} responses")
        run.check_ranked("batch 0", res[0].points, main.search(q1, spec=FILTERS["adjective"], limit=5))
        run.check_ranked("batch 1", res[1].points,
                         main.search(main.vec[""][main.row[pid]], limit=5, exclude=pid))
        run.check_ranked("batch 2", res[2].points, main.search(q2, limit=4, offset=3))
        return [[point(p) for p in r.points] for r in res]

    run.step("query_batch_points", query_batch)

    def query_named():
        out = {}
        qt, qm = data.multi_queries_text[0], data.multi_queries_image[0]
        res = client.query_points(MULTI, query=qt.tolist(), using="text", limit=10, search_params=EXACT).points
        run.check_ranked("using text (Dot)", res, multi.search(qt, "text", limit=10))
        out["text"] = [point(p) for p in res]
        res = client.query_points(MULTI, query=qm.tolist(), using="image", limit=10, search_params=EXACT,
                                  with_vectors=["image"]).points
        run.check_ranked("using image (Euclid)", res, multi.search(qm, "image", limit=10))
        for p in res:
            run.check(isinstance(p.vector, dict) and set(p.vector) == {"image"},
                      f"with_vectors=['image']: got {type(p.vector).__name__} {list(p.vector or [])}")
        out["image"] = [point(p) for p in res]
        spec = {"must": [{"key": "group", "match": {"value": "b"}}, {"key": "n", "range": {"gte": 400}}]}
        res = client.query_points(MULTI, query=qm.tolist(), using="image", query_filter=qfilter(spec),
                                  limit=10, search_params=EXACT, with_payload=True).points
        run.check_ranked("image + filter", res, multi.search(qm, "image", spec=spec, limit=10))
        out["image_filter"] = [point(p) for p in res]
        top = multi.search(qm, "image", limit=9)
        thr = (top[7][1] + top[8][1]) / 2
        res = client.query_points(MULTI, query=qm.tolist(), using="image", score_threshold=thr, limit=100,
                                  search_params=EXACT).points
        run.check_ranked("image score_threshold (distance)", res, multi.search(qm, "image", limit=100, threshold=thr))
        out["image_threshold"] = [point(p) for p in res]
        res = client.query_points(MULTI, query=3, using="image", limit=6, search_params=EXACT).points
        run.check_ranked("image by id", res, multi.search(multi.vec["image"][multi.row[3]], "image", limit=6, exclude=3))
        out["image_by_id"] = [point(p) for p in res]
        q = data.multi_queries_text[1]
        recs = recall(client.query_points(MULTI, query=q.tolist(), using="text", limit=10).points,
                      multi.search(q, "text", limit=10))
        run.check(recs >= 0.9, f"default params using text: recall {recs}")
        out["text_default_recall_ok"] = recs >= 0.9
        return out

    run.step("query_points using= (named vectors)", query_named)

    def legacy_search():
        if not hasattr(client, "search"):
            return {"skipped": "qdrant-client has no search/search_batch (removed)"}
        q = nextq()
        res = client.search(MAIN, query_vector=q.tolist(), limit=5, search_params=EXACT)
        run.check_ranked("search", res, main.search(q, limit=5))
        batch = client.search_batch(MAIN, requests=[models.SearchRequest(vector=q.tolist(), limit=3, params=EXACT)])
        return {"search": [point(p) for p in res], "search_batch": [[point(p) for p in r] for r in batch]}

    run.step("search / search_batch (legacy)", legacy_search)

    # -- scroll --------------------------------------------------------------------------------
    def scroll_all(spec, limit, with_payload) -> tuple[list, list[int]]:
        ids, pages, offset = [], [], None
        while True:
            recs, offset = client.scroll(MAIN, scroll_filter=qfilter(spec), limit=limit, offset=offset,
                                         with_payload=with_payload)
            pages.append(len(recs))
            ids.extend(r.id for r in recs)
            if with_payload:
                for r in recs:
                    full = main.payload[main.row[r.id]]
                    want = full if with_payload is True else {k: full[k] for k in with_payload if k in full}
                    if r.payload != want:
                        run.check(False, f"scroll payload of {r.id}: {r.payload} != {want}")
            if offset is None or len(pages) > 1000:
                return ids, pages

    def scroll_steps():
        out = {}
        ids, pages = scroll_all(None, 1024, False)
        want = main.select(None)
        run.check(ids == want, f"scroll all: {len(ids)} ids, {len(set(ids))} distinct, want {len(want)} in id order"
                  + ("" if set(ids) != set(want) else " (same set, other order)"))
        out["all"] = {"pages": pages, "ids": ids}
        spec = FILTERS["adv_or_synonyms"]
        ids, pages = scroll_all(spec, 256, ["pos", "lemma_count"])
        want = main.select(spec)
        run.check(ids == want, f"scroll filtered: {len(ids)} ids, want {len(want)} in id order")
        out["filtered"] = {"pages": pages, "ids": ids}
        recs, nxt = client.scroll(MAIN, limit=5, offset=data.ids[0], with_vectors=True, with_payload=False)
        out["from_offset"] = {"points": [point(r) for r in recs], "next": nxt}
        allids = main.select(None)
        k = allids.index(data.ids[0])
        run.check([r.id for r in recs] == allids[k: k + 5], "scroll from an offset id")
        run.check(nxt == allids[k + 5], f"next_page_offset {nxt} != {allids[k + 5]}")
        return out

    run.step("scroll (pages, filter, offset)", scroll_steps)

    # -- payload indexes, order_by --------------------------------------------------------------
    def create_indexes():
        out = {}
        for field, schema in [("pos", models.PayloadSchemaType.KEYWORD),
                              ("gloss_words", models.PayloadSchemaType.INTEGER),
                              ("weight", models.PayloadSchemaType.FLOAT),
                              ("has_example", models.PayloadSchemaType.BOOL),
                              ("rank", models.PayloadSchemaType.INTEGER)]:
            out[field] = status_of(client.create_payload_index(MAIN, field_name=field, field_schema=schema, wait=True))
        return out

    run.step("create_payload_index (keyword/int/float/bool)", create_indexes)

    def order_by():
        out = {}
        recs, nxt = client.scroll(MAIN, limit=20, order_by=models.OrderBy(key="rank", direction=models.Direction.DESC),
                                  with_payload=["rank", "pos"])
        want = sorted(main.select(None), key=lambda i: -main.payload[main.row[i]]["rank"])[:20]
        run.check([r.id for r in recs] == want, f"order_by rank desc: {[r.id for r in recs][:8]} != {want[:8]}")
        out["desc"] = {"points": [point(r) for r in recs], "next": nxt}
        spec = FILTERS["adjective"]
        recs, nxt = client.scroll(MAIN, limit=15, scroll_filter=qfilter(spec), with_payload=False,
                                  order_by=models.OrderBy(key="rank", direction=models.Direction.ASC, start_from=5000))
        sel = [i for i in main.select(spec) if main.payload[main.row[i]]["rank"] >= 5000]
        want = sorted(sel, key=lambda i: main.payload[main.row[i]]["rank"])[:15]
        run.check([r.id for r in recs] == want, "order_by rank asc start_from + filter")
        out["asc_from"] = {"points": [point(r) for r in recs], "next": nxt}
        recs, _ = client.scroll(MAIN, limit=10, order_by="gloss_words", with_payload=["gloss_words"])
        vals = [r.payload["gloss_words"] for r in recs]
        want_vals = sorted(main.payload[main.row[i]]["gloss_words"] for i in main.select(None))[:10]
        run.check(vals == want_vals, f"order_by gloss_words (ties): {vals} != {want_vals}")
        out["gloss_words_values"] = vals  # ids of equal values may come in any order
        return out

    run.step("scroll order_by", order_by)

    # -- retrieve ------------------------------------------------------------------------------
    def retrieve():
        some = [data.ids[i] for i in (0, 1, 2, 500, 777, 9999)] + [60_001, "00000000-0000-4000-8000-000000000000"]
        out = {}
        recs = client.retrieve(MAIN, ids=some)
        run.check(sorted((r.id for r in recs), key=idkey) == sorted(some[:6], key=idkey), "retrieve ids")
        for r in recs:
            run.check(r.payload == main.payload[main.row[r.id]] and r.vector is None, f"retrieve {r.id}")
        out["plain"] = sorted((point(r) for r in recs), key=lambda d: idkey(d["id"]))
        recs = client.retrieve(MAIN, ids=some[:4], with_vectors=True, with_payload=["pos"])
        for r in recs:
            want = main.stored_vector(r.id)
            run.check(r.vector is not None and all(close(a, b) for a, b in zip(r.vector, want)),
                      f"retrieve vector {r.id}")
        out["vectors"] = sorted((point(r) for r in recs), key=lambda d: idkey(d["id"]))
        recs = client.retrieve(MULTI, ids=[1, 505, 510, 2000], with_vectors=True)
        for r in recs:
            row = multi.row[r.id]
            want = {n for n in ("text", "image") if multi.has[n][row]}
            run.check(isinstance(r.vector, dict) and set(r.vector) == want, f"multi retrieve {r.id}: {want}")
        out["multi"] = sorted((point(r) for r in recs), key=lambda d: idkey(d["id"]))
        return out

    run.step("retrieve", retrieve)

    # -- payload updates -----------------------------------------------------------------------
    upd_ids = [data.ids[i] for i in range(20, 40)]  # ints and maybe UUIDs

    def payload_ops():
        out = {}
        r = client.set_payload(MAIN, payload={"note": "hello", "weight": 0.75}, points=upd_ids[:10])
        for pid in upd_ids[:10]:
            main.payload[main.row[pid]].update({"note": "hello", "weight": 0.75})
        out["set_ids"] = status_of(r)
        flt = {"must": [{"key": "lexname", "match": {"value": "noun.shape"}}]}
        r = client.set_payload(MAIN, payload={"flag": True, "note": "shape"},
                               points=models.FilterSelector(filter=qfilter(flt)))
        for pid in main.select(flt):
            main.payload[main.row[pid]].update({"flag": True, "note": "shape"})
        out["set_filter"] = status_of(r)
        r = client.overwrite_payload(MAIN, payload={"pos": "x", "only": 1}, points=upd_ids[10:14])
        for pid in upd_ids[10:14]:
            main.payload[main.row[pid]] = {"pos": "x", "only": 1}
        out["overwrite_ids"] = status_of(r)
        r = client.delete_payload(MAIN, keys=["lemmas", "tags"], points=upd_ids[:5])
        for pid in upd_ids[:5]:
            for k in ("lemmas", "tags"):
                main.payload[main.row[pid]].pop(k, None)
        out["delete_keys_ids"] = status_of(r)
        flt2 = {"must": [{"key": "lexname", "match": {"value": "verb.emotion"}}]}
        r = client.delete_payload(MAIN, keys=["text"], points=models.FilterSelector(filter=qfilter(flt2)))
        for pid in main.select(flt2):
            main.payload[main.row[pid]].pop("text", None)
        out["delete_keys_filter"] = status_of(r)
        r = client.clear_payload(MAIN, points_selector=upd_ids[14:17])
        for pid in upd_ids[14:17]:
            main.payload[main.row[pid]] = {}
        out["clear_ids"] = status_of(r)
        flt3 = {"must": [{"key": "lexname", "match": {"value": "adv.all"}}, {"key": "rank", "range": {"lt": 2000}}]}
        cleared = main.select(flt3)
        r = client.clear_payload(MAIN, points_selector=models.FilterSelector(filter=qfilter(flt3)))
        for pid in cleared:
            main.payload[main.row[pid]] = {}
        main.version += 1
        out["clear_filter"] = status_of(r)
        check_ids = upd_ids + main.select(flt)[:3] + main.select(flt2)[:3] + cleared[:3]
        recs = client.retrieve(MAIN, ids=check_ids)
        for rec in recs:
            want = main.payload[main.row[rec.id]]
            run.check(rec.payload == want, f"after updates, {rec.id}: {rec.payload} != {want}")
        run.check(len(recs) == len(set(check_ids)), "retrieve after updates: missing points")
        out["retrieved"] = sorted((point(x) for x in recs), key=lambda d: idkey(d["id"]))
        for name, spec in [
            ("note_hello", {"must": [{"key": "note", "match": {"value": "hello"}}]}),
            ("flag", {"must": [{"key": "flag", "match": {"value": True}}]}),
            ("pos_x", {"must": [{"key": "pos", "match": {"value": "x"}}]}),
            ("no_pos", {"must": [{"is_empty": {"key": "pos"}}]}),
            ("weight_075", {"must": [{"key": "weight", "range": {"gte": 0.75, "lte": 0.75}}]}),
        ]:
            c = client.count(MAIN, count_filter=qfilter(spec), exact=True).count
            run.check(c == main.count(spec), f"count {name}: {c} != {main.count(spec)}")
            out[f"count_{name}"] = c
        q = nextq()
        spec = {"must": [{"key": "note", "match": {"any": ["hello", "shape"]}}]}
        res = client.query_points(MAIN, query=q.tolist(), query_filter=qfilter(spec), limit=10,
                                  search_params=EXACT).points
        run.check_ranked("query on updated payloads", res, main.search(q, spec=spec, limit=10))
        out["query_updated"] = [point(p) for p in res]
        return out

    run.step("set/overwrite/delete/clear payload", payload_ops)

    def delete_index():
        return status_of(client.delete_payload_index(MAIN, field_name="weight", wait=True))

    run.step("delete_payload_index", delete_index)

    # -- update_vectors ------------------------------------------------------------------------
    def update_vectors():
        out = {}
        targets = [data.ids[i] for i in range(100, 160)]
        r = client.update_vectors(MAIN, points=[
            models.PointVectors(id=pid, vector=data.new_vectors[k].tolist()) for k, pid in enumerate(targets)])
        for k, pid in enumerate(targets):
            main.vec[""][main.row[pid]] = data.new_vectors[k]
        out["main"] = status_of(r)
        for k in (0, 7, 59):
            res = client.query_points(MAIN, query=data.new_vectors[k].tolist(), limit=3, search_params=EXACT).points
            run.check(bool(res) and res[0].id == targets[k], f"updated vector {targets[k]} is not its own top-1")
            run.check_ranked(f"after update_vectors {k}", res, main.search(data.new_vectors[k], limit=3))
        recs = client.retrieve(MAIN, ids=targets[:3], with_vectors=True, with_payload=False)
        out["retrieved"] = sorted((point(x) for x in recs), key=lambda d: idkey(d["id"]))
        mids = [500, 505, 510, 1, 2] + list(range(600, 615))  # only "image" changes; "text" stays
        r = client.update_vectors(MULTI, points=[
            models.PointVectors(id=pid, vector={"image": data.multi_new_image[k].tolist()})
            for k, pid in enumerate(mids)])
        for k, pid in enumerate(mids):
            row = multi.row[pid]
            multi.vec["image"][row] = data.multi_new_image[k]
            multi.has["image"][row] = True
        out["multi"] = status_of(r)
        recs = client.retrieve(MULTI, ids=[505, 1], with_vectors=True)
        for rec in recs:
            run.check(isinstance(rec.vector, dict) and set(rec.vector) == {"text", "image"},
                      f"multi {rec.id} after update_vectors: {sorted(rec.vector or {})}")
        out["multi_retrieved"] = sorted((point(x) for x in recs), key=lambda d: idkey(d["id"]))
        qm = data.multi_queries_image[2]
        res = client.query_points(MULTI, query=qm.tolist(), using="image", limit=10, search_params=EXACT).points
        run.check_ranked("multi image after update", res, multi.search(qm, "image", limit=10))
        out["multi_query"] = [point(p) for p in res]
        return out

    run.step("update_vectors", update_vectors)

    # -- delete --------------------------------------------------------------------------------
    def delete_points():
        out = {}
        gone = [data.ids[i] for i in range(200, 260)] + [60_002]  # the last one does not exist
        r = client.delete(MAIN, points_selector=models.PointIdsList(points=gone))
        for pid in gone:
            main.delete(pid)
        out["ids"] = status_of(r)
        out["count_after_ids"] = client.count(MAIN, exact=True).count
        run.check(out["count_after_ids"] == main.count(), f"count after delete by ids {out['count_after_ids']} != {main.count()}")
        spec = FILTERS["person_artifact_example"]
        r = client.delete(MAIN, points_selector=models.FilterSelector(filter=qfilter(spec)))
        for pid in main.select(spec):
            main.delete(pid)
        out["filter"] = status_of(r)
        out["count"] = client.count(MAIN, exact=True).count
        out["count_filter"] = client.count(MAIN, count_filter=qfilter(spec), exact=True).count
        out["count_adjective"] = client.count(MAIN, count_filter=qfilter(FILTERS["adjective"]), exact=True).count
        run.check(out["count"] == main.count(), f"count after deletes {out['count']} != {main.count()}")
        run.check(out["count_filter"] == 0, f"deleted by filter, still {out['count_filter']}")
        run.check(out["count_adjective"] == main.count(FILTERS["adjective"]), "count adjective after deletes")
        recs = client.retrieve(MAIN, ids=gone[:5])
        run.check(recs == [], f"retrieve deleted ids: {[x.id for x in recs]}")
        q = nextq()
        res = client.query_points(MAIN, query=q.tolist(), limit=10, search_params=EXACT).points
        run.check_ranked("query after deletes", res, main.search(q, limit=10))
        out["query"] = [point(p) for p in res]
        q = nextq()
        res = client.query_points(MAIN, query=q.tolist(), limit=10).points
        rc = recall(res, main.search(q, limit=10))
        run.check(rc >= 0.9, f"default query after deletes: recall {rc}")
        out["query_default_recall_ok"] = rc >= 0.9
        ids, _ = scroll_all(None, 2048, False)
        run.check(ids == main.select(None), "scroll after deletes")
        out["scroll_count"] = len(ids)
        return out

    run.step("delete (ids, filter)", delete_points)

    # -- aliases -------------------------------------------------------------------------------
    def aliases():
        out = {}
        out["create"] = client.update_collection_aliases(change_aliases_operations=[
            models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=MAIN, alias_name="wn_live")),
            models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=MULTI, alias_name="multi_live")),
        ])
        out["after_create"] = sorted((a.alias_name, a.collection_name) for a in client.get_aliases().aliases)
        q = nextq()
        res = client.query_points("wn_live", query=q.tolist(), limit=5, search_params=EXACT).points
        run.check_ranked("query through alias", res, main.search(q, limit=5))
        out["query_alias"] = [point(p) for p in res]
        out["count_alias"] = client.count("wn_live", exact=True).count
        out["rename"] = client.update_collection_aliases(change_aliases_operations=[
            models.RenameAliasOperation(rename_alias=models.RenameAlias(old_alias_name="wn_live", new_alias_name="wn_prod"))])
        out["collection_aliases"] = sorted(a.alias_name for a in client.get_collection_aliases(MAIN).aliases)
        res = client.query_points("wn_prod", query=q.tolist(), limit=5, search_params=EXACT).points
        run.check([p.id for p in res] == [p["id"] for p in out["query_alias"]], "query through renamed alias")
        out["delete"] = client.update_collection_aliases(change_aliases_operations=[
            models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name="wn_prod"))])
        out["final"] = sorted((a.alias_name, a.collection_name) for a in client.get_aliases().aliases)
        run.check(out["final"] == [("multi_live", MULTI)], f"aliases at the end {out['final']}")
        return out

    run.step("aliases (create, rename, delete)", aliases)

    # -- sparse vectors ------------------------------------------------------------------------
    def sparse_vectors():
        """A collection with a dense and two sparse vectors (one with the IDF modifier):
        upserts in both forms, retrieve, queries against a brute-force dot product; dropped at
        the end so the later steps see the same collections."""
        rng = np.random.default_rng(SEED + 1)

        def sv(vocab: int) -> tuple[list[int], list[float]]:
            idx = sorted(rng.choice(vocab, size=int(rng.integers(1, 12)), replace=False).tolist())
            return idx, [round(float(x), 4) for x in rng.uniform(0.1, 2.0, len(idx))]

        client.create_collection(
            SPARSE, vectors_config={"dense": models.VectorParams(size=4, distance=models.Distance.DOT)},
            sparse_vectors_config={"text": models.SparseVectorParams(),
                                   "bm": models.SparseVectorParams(modifier=models.Modifier.IDF)})
        text, bm, groups = {}, {}, {}
        for i in range(SPARSE_N):
            bm[i] = sv(60)
            groups[i] = i % 4
            if i % 7:  # every seventh point has no `text` vector
                text[i] = sv(VOCAB)
        dense = rng.uniform(-1, 1, (SPARSE_N, 4)).round(4)
        half = SPARSE_N // 2
        pts = []
        for i in range(half):
            vec = {"dense": dense[i].tolist(), "bm": models.SparseVector(indices=bm[i][0], values=bm[i][1])}
            if i in text:
                vec["text"] = models.SparseVector(indices=text[i][0], values=text[i][1])
            pts.append(models.PointStruct(id=i, vector=vec, payload={"g": groups[i]}))
        out = {"upsert_points": status_of(client.upsert(SPARSE, points=pts))}
        ids = [i for i in range(half, SPARSE_N) if i in text]
        out["upsert_batch"] = status_of(client.upsert(SPARSE, points=models.Batch(
            ids=ids,
            vectors={"dense": [dense[i].tolist() for i in ids],
                     "text": [models.SparseVector(indices=text[i][0], values=text[i][1]) for i in ids],
                     "bm": [models.SparseVector(indices=bm[i][0], values=bm[i][1]) for i in ids]},
            payloads=[{"g": groups[i]} for i in ids])))
        rest = [models.PointStruct(id=i, vector={"dense": dense[i].tolist(),
                                                 "bm": models.SparseVector(indices=bm[i][0], values=bm[i][1])},
                                   payload={"g": groups[i]})
                for i in range(half, SPARSE_N) if i not in text]
        client.upsert(SPARSE, points=rest)
        out["count"] = client.count(SPARSE, exact=True).count
        run.check(out["count"] == SPARSE_N, f"sparse count {out['count']}")
        params = client.get_collection(SPARSE).config.params
        out["sparse_config"] = {k: status_of(v.modifier) if v.modifier else None
                                for k, v in sorted((params.sparse_vectors or {}).items())}
        run.check(out["sparse_config"].get("bm") == "idf", f"sparse_vectors config {out['sparse_config']}")

        recs = client.retrieve(SPARSE, ids=[0, 1, 7, half + 1], with_vectors=True)
        out["retrieve"] = sorted((point(r) for r in recs), key=lambda d: idkey(d["id"]))
        for r in recs:
            got = r.vector.get("text") if isinstance(r.vector, dict) else None
            want = text.get(r.id)
            if want is None:
                run.check(got is None, f"sparse point {r.id} has no text vector but got {got}")
            else:
                run.check(got is not None and list(got.indices) == want[0]
                          and all(close(a, b) for a, b in zip(got.values, want[1])),
                          f"sparse point {r.id}: text {got} != {want}")

        def reference(q, vectors, weights, spec_g=None, limit=10):
            qw = dict(zip(q[0], (w * weights.get(i, 1.0) for i, w in zip(q[0], q[1]))))
            scored = []
            for pid, (idx, vals) in vectors.items():
                if spec_g is not None and groups[pid] != spec_g:
                    continue
                shared = [qw[i] * v for i, v in zip(idx, vals) if i in qw]
                if shared:
                    scored.append((pid, float(sum(shared))))
            scored.sort(key=lambda t: (-t[1], t[0]))
            return scored[:limit]

        res_out = []
        for k in range(4):
            q = sv(VOCAB)
            g = 2 if k % 2 else None
            spec = {"must": [{"key": "g", "match": {"value": g}}]} if g is not None else None
            query = models.SparseVector(indices=q[0], values=q[1])
            res = client.query_points(SPARSE, query=query, using="text", query_filter=qfilter(spec),
                                      limit=10, with_payload=True).points
            run.check_ranked(f"sparse text query {k}", res, reference(q, text, {}, g))
            res_out.append([point(p) for p in res])
        out["query_text"] = res_out
        n = len(bm)
        res_out = []
        for k in range(3):
            q = sv(60)
            idf = {}
            for i in q[0]:
                df = sum(1 for idx, _ in bm.values() if i in idx)
                idf[i] = float(np.log(1.0 + (n - df + 0.5) / (df + 0.5)))
            res = client.query_points(SPARSE, query=models.SparseVector(indices=q[0], values=q[1]),
                                      using="bm", limit=10).points
            run.check_ranked(f"sparse idf query {k}", res, reference(q, bm, idf))
            res_out.append([point(p) for p in res])
        out["query_idf"] = res_out
        res = client.query_points(SPARSE, query=1, using="text", limit=5, with_vectors=["text"]).points
        run.check(all(p.id != 1 for p in res), "sparse query by id returned the point itself")
        run.check_ranked("sparse by id", res,
                         reference(text[1], {k: v for k, v in text.items() if k != 1}, {}, limit=5))
        out["by_id"] = [point(p) for p in res]
        hybrid_data.update(dense=dense, text=text, groups=groups, sv=sv)
        return out

    hybrid_data: dict[str, Any] = {}
    run.step("sparse vectors (create, upsert, retrieve, query, idf)", sparse_vectors)

    def hybrid_queries():
        """Hybrid queries on the sparse collection: dense + sparse prefetch fused by RRF
        (default k and k=10) and DBSF, a filter inside a prefetch and one above it, nested
        prefetch, a re-score on the dense vector; each checked against fusion computed here
        on exact prefetch results. The collection is dropped at the end."""
        dense, text, groups, sv = (hybrid_data[k] for k in ("dense", "text", "groups", "sv"))
        rng = np.random.default_rng(SEED + 2)
        exact = models.SearchParams(exact=True)

        def leaf_dense(q, g=None, limit=10):
            scored = [(i, float(np.dot(dense[i].astype(np.float64), q)))
                      for i in range(SPARSE_N) if g is None or groups[i] in g]
            scored.sort(key=lambda t: (-t[1], t[0]))
            return scored[:limit]

        def leaf_text(q, g=None, limit=10):
            qw = dict(zip(q[0], q[1]))
            scored = []
            for pid, (idx, vals) in text.items():
                if g is not None and groups[pid] not in g:
                    continue
                shared = [qw[i] * v for i, v in zip(idx, vals) if i in qw]
                if shared:
                    scored.append((pid, float(sum(shared))))
            scored.sort(key=lambda t: (-t[1], t[0]))
            return scored[:limit]

        def rrf(lists, k=2, limit=10):
            fused: dict = {}
            for lst in lists:
                for pos, (pid, _) in enumerate(lst):
                    fused[pid] = fused.get(pid, 0.0) + 1.0 / (pos + k)
            return sorted(fused.items(), key=lambda t: -t[1])[:limit]

        def dbsf(lists, limit=10):
            fused: dict = {}
            for lst in lists:
                scores = np.array([s for _, s in lst])
                if len(lst) == 1 or scores.std() == 0:
                    norm = [0.5] * len(lst)
                else:
                    mu, sd = scores.mean(), scores.std(ddof=1)
                    norm = ((scores - (mu - 3 * sd)) / (6 * sd)).tolist()
                for (pid, _), x in zip(lst, norm):
                    fused[pid] = fused.get(pid, 0.0) + x
            return sorted(fused.items(), key=lambda t: -t[1])[:limit]

        def pf_dense(q, g=None, limit=10):
            f = qfilter({"must": [{"key": "g", "match": {"any": g}}]}) if g else None
            return models.Prefetch(query=q.tolist(), using="dense", filter=f, limit=limit, params=exact)

        def pf_text(q, g=None, limit=10):
            f = qfilter({"must": [{"key": "g", "match": {"any": g}}]}) if g else None
            return models.Prefetch(query=models.SparseVector(indices=q[0], values=q[1]),
                                   using="text", filter=f, limit=limit)

        out: dict[str, Any] = {}
        for k in range(3):
            qd, qt = rng.uniform(-1, 1, 4).round(4), sv(VOCAB)
            lists = [leaf_dense(qd, limit=15), leaf_text(qt, limit=12)]
            res = client.query_points(SPARSE, prefetch=[pf_dense(qd, limit=15), pf_text(qt, limit=12)],
                                      query=models.FusionQuery(fusion=models.Fusion.RRF),
                                      limit=8, with_payload=True).points
            run.check_ranked(f"hybrid rrf {k}", res, rrf(lists, limit=8))
            out[f"rrf_{k}"] = [point(p) for p in res]
            res = client.query_points(SPARSE, prefetch=[pf_dense(qd, limit=15), pf_text(qt, limit=12)],
                                      query=models.RrfQuery(rrf=models.Rrf(k=10)), limit=8).points
            run.check_ranked(f"hybrid rrf k=10 {k}", res, rrf(lists, k=10, limit=8))
            out[f"rrf_k10_{k}"] = [point(p) for p in res]
            res = client.query_points(SPARSE, prefetch=[pf_dense(qd, limit=15), pf_text(qt, limit=12)],
                                      query=models.FusionQuery(fusion=models.Fusion.DBSF),
                                      limit=8, offset=2).points
            run.check_ranked(f"hybrid dbsf {k}", res, dbsf(lists, limit=10)[2:])
            out[f"dbsf_{k}"] = [point(p) for p in res]

        # A filter inside one prefetch, another above both (it reaches every prefetch).
        qd, qt = rng.uniform(-1, 1, 4).round(4), sv(VOCAB)
        lists = [leaf_dense(qd, g=[1]), leaf_text(qt, g=[1, 3])]
        res = client.query_points(SPARSE, prefetch=[pf_dense(qd, g=[0, 1]), pf_text(qt)],
                                  query=models.FusionQuery(fusion=models.Fusion.RRF),
                                  query_filter=qfilter({"must": [{"key": "g", "match": {"any": [1, 3]}}]}),
                                  limit=10, with_payload=True).points
        run.check_ranked("hybrid filters", res, rrf(lists))
        run.check(all(p.payload["g"] in (1, 3) for p in res), "hybrid filter above prefetch ignored")
        out["filters"] = [point(p) for p in res]

        # Nested: DBSF of (RRF of dense and sparse) and a second dense query, then re-scored
        # on the dense vector with a third.
        q1, q2, q3 = (rng.uniform(-1, 1, 4).round(4) for _ in range(3))
        qt = sv(VOCAB)
        inner = models.Prefetch(prefetch=[pf_dense(q1, limit=20), pf_text(qt, limit=20)],
                                query=models.FusionQuery(fusion=models.Fusion.RRF), limit=15)
        nested = models.Prefetch(prefetch=[inner, pf_dense(q2, limit=10)],
                                 query=models.FusionQuery(fusion=models.Fusion.DBSF), limit=12)
        fused = dbsf([rrf([leaf_dense(q1, limit=20), leaf_text(qt, limit=20)], limit=15),
                      leaf_dense(q2, limit=10)], limit=12)
        res = client.query_points(SPARSE, prefetch=nested, query=models.FusionQuery(fusion=models.Fusion.RRF),
                                  limit=12).points
        run.check_ranked("hybrid nested", res, rrf([fused], limit=12))
        out["nested"] = [point(p) for p in res]
        candidates = {pid for pid, _ in fused}
        rescored = sorted(((pid, float(np.dot(dense[pid].astype(np.float64), q3))) for pid in candidates),
                          key=lambda t: (-t[1], t[0]))[:5]
        res = client.query_points(SPARSE, prefetch=nested, query=q3.tolist(), using="dense",
                                  limit=5, with_payload=True).points
        run.check_ranked("hybrid re-score on dense", res, rescored)
        out["rescore"] = [point(p) for p in res]

        # Batch form.
        reqs = [models.QueryRequest(prefetch=[pf_dense(q1), pf_text(qt)],
                                    query=models.FusionQuery(fusion=models.Fusion.RRF), limit=4),
                models.QueryRequest(prefetch=[pf_dense(q2), pf_text(qt)],
                                    query=models.FusionQuery(fusion=models.Fusion.DBSF), limit=4)]
        batch = client.query_batch_points(SPARSE, requests=reqs)
        out["batch"] = [[point(p) for p in r.points] for r in batch]
        run.check_ranked("hybrid batch rrf", batch[0].points, rrf([leaf_dense(q1), leaf_text(qt)], limit=4))
        out["delete"] = client.delete_collection(SPARSE)
        return out

    run.step("hybrid queries (prefetch, RRF, DBSF, nested, re-score)", hybrid_queries)

    # -- final state, delete collections --------------------------------------------------------
    run.step("get_collection (final)", info_both)

    def collections_end():
        out = {"delete_scratch": client.delete_collection(SCRATCH)}
        out["delete_missing"] = client.delete_collection("no_such_collection")
        out["exists_scratch"] = client.collection_exists(SCRATCH)
        out["exists_main"] = client.collection_exists(MAIN)
        out["collections"] = sorted(c.name for c in client.get_collections().collections)
        run.check(out["collections"] == sorted([MAIN, MULTI]), f"collections {out['collections']}")
        return out

    run.step("delete_collection, collection_exists", collections_end)
    run.model = {"main": main, "multi": multi}  # type: ignore[attr-defined]
    return run


# ---------------------------------------------------------------------------------------------
# Comparing transcripts.


APPROX_KEYS = {"score", "vector"}


def diff(a: Any, b: Any, path: str = "", approx: bool = False, out: list | None = None) -> list[str]:
    out = [] if out is None else out
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append(f"{path}.{k}: local={short_json(a.get(k, '<missing>'))} server={short_json(b.get(k, '<missing>'))}")
            else:
                diff(a[k], b[k], f"{path}.{k}", approx or k in APPROX_KEYS, out)
    elif isinstance(a, list) and isinstance(b, list):
        if a and b and all(isinstance(x, dict) and "id" in x for x in a + b):
            ia, ib = [x["id"] for x in a], [x["id"] for x in b]
            if ia != ib:  # points: show the two id lists, not every field of every point
                out.append(f"{path}: ids local={short_json(ia, 300)} server={short_json(ib, 300)}")
                return out
        if len(a) != len(b):
            out.append(f"{path}: length local={len(a)} server={len(b)}: local={short_json(a)} server={short_json(b)}")
        else:
            for i, (x, y) in enumerate(zip(a, b)):
                diff(x, y, f"{path}[{i}]", approx, out)
    elif approx and isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if not close(float(a), float(b)):
            out.append(f"{path}: local={a} server={b}")
    elif type(a) is not type(b) or a != b:
        out.append(f"{path}: local={short_json(a)} server={short_json(b)}")
    return out


def short_json(v: Any, n: int = 160) -> str:
    s = json.dumps(v, sort_keys=True)
    return s if len(s) <= n else s[: n - 3] + "..."


def compare(local: Run, server: Run, log) -> int:
    problems = 0
    by_step = {e["step"]: e["value"] for e in server.transcript}
    for e in local.transcript:
        name = e["step"]
        if name not in by_step:
            log(f"  MISMATCH {name}: missing from the server transcript")
            problems += 1
            continue
        d = diff(e["value"], by_step[name], "")
        if d:
            problems += 1
            log(f"  MISMATCH {name}: {len(d)} difference(s)")
            for line in d[:8]:
                log(f"      {line}")
            if len(d) > 8:
                log(f"      ... {len(d) - 8} more")
    return problems


# ---------------------------------------------------------------------------------------------
# The server: start, stop, and the checks that only make sense against it.


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary: str, data_dir: Path, log_path: Path, extra: list[str] | None = None):
        self.binary, self.data_dir, self.log_path = binary, data_dir, log_path
        self.extra = extra or []
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        self.port = free_port()
        cmd = [self.binary, "serve", "--data", str(self.data_dir), "--host", "127.0.0.1",
                "--port", str(self.port), "--api-key", RW_KEY, "--read-only-api-key", RO_KEY, *self.extra]
        logf = open(self.log_path, "ab")
        logf.write(f"\n=== {' '.join(cmd)}\n".encode())
        logf.flush()
        self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        logf.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"quiver serve exited with {self.proc.returncode} before it was ready")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"GET /readyz did not answer 200 within {timeout:.0f} s")
            time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then wait; SIGKILL only if it does not stop. Returns the exit code, None if killed."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
        finally:
            self.proc = None

    def log_tail(self, n: int = 30) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    | " + line for line in lines[-n:])


def mmh3_32(text: str, seed: int = 0) -> int:
    """MurmurHash3 x86 32-bit as a signed int (Python's `mmh3.hash`), for fastembed's ids."""
    data = text.encode()
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
    h = seed
    rotl = lambda x, r: ((x << r) | (x >> (32 - r))) & mask  # noqa: E731
    tail = len(data) - len(data) % 4
    for i in range(0, tail, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = rotl((k * c1) & mask, 15) * c2 & mask
        h = (rotl(h ^ k, 13) * 5 + 0xE6546B64) & mask
    if len(data) > tail:
        k = int.from_bytes(data[tail:], "little")
        h ^= rotl((k * c1) & mask, 15) * c2 & mask
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return h - (1 << 32) if h & 0x80000000 else h


def remote(url: str, **kw) -> QdrantClient:
    return QdrantClient(url=url, timeout=60, **kw)


def expect_status(run: Run, fn: Callable[[], Any], want: int | tuple, what: str) -> Any:
    wants = want if isinstance(want, tuple) else (want,)
    try:
        fn()
    except UnexpectedResponse as e:
        run.check(e.status_code in wants, f"{what}: HTTP {e.status_code}, want {want}: {short(e, 200)}")
        return e.status_code
    except Exception as e:
        run.check(False, f"{what}: raised {short(e, 200)}, want HTTP {want}")
        return repr(type(e).__name__)
    run.check(False, f"{what}: succeeded, want HTTP {want}")
    return 200


def server_checks(url: str, data: Data, run: Run, documents: bool = True) -> None:
    """Steps that local mode cannot answer: keys, documents, bad input, payload schema."""
    rw = remote(url, api_key=RW_KEY)

    def service():
        out = {}
        r = httpx.get(f"{url}/", timeout=10)
        run.check(r.status_code == 200, f"GET / without a key: {r.status_code}")
        version = r.json().get("version", "") if r.status_code == 200 else ""
        out["version"] = version
        run.check(bool(r.status_code == 200 and r.json().get("title")), "GET /: no title")
        try:
            run.check(is_compatible(_client_version(), version),
                      f"server version {version!r} is not compatible with qdrant-client {_client_version()}")
        except Exception as e:
            run.check(False, f"server version {version!r}: {e}")
        for path in ("/healthz", "/livez", "/readyz"):
            code = httpx.get(f"{url}{path}", timeout=10).status_code
            run.check(code == 200, f"GET {path} without a key: {code}")
        info = rw.info()
        out["info_version"] = info.version
        return out

    run.step("service: GET / /healthz /livez /readyz", service)

    def keys():
        out = {}
        none = remote(url)
        out["no_key_get_collections"] = expect_status(run, none.get_collections, 401, "no key: get_collections")
        out["no_key_query"] = expect_status(
            run, lambda: none.query_points(MAIN, query=data.queries[0].tolist(), limit=1), 401, "no key: query_points")
        out["no_key_upsert"] = expect_status(
            run, lambda: none.upsert(MAIN, points=[models.PointStruct(id=1, vector=[0.1] * DIM)]), 401, "no key: upsert")
        wrong = remote(url, api_key="not-the-key")
        out["wrong_key"] = expect_status(run, wrong.get_collections, (401, 403), "wrong key: get_collections")
        bearer = QdrantClient(url=url, timeout=60, auth_token_provider=lambda: RW_KEY)
        out["bearer_collections"] = sorted(c.name for c in bearer.get_collections().collections)
        ro = remote(url, api_key=RO_KEY)
        out["ro_collections"] = sorted(c.name for c in ro.get_collections().collections)
        out["ro_query"] = [p.id for p in ro.query_points(MAIN, query=data.queries[1].tolist(), limit=3,
                                                          search_params=EXACT).points]
        out["ro_query_batch"] = len(ro.query_batch_points(MAIN, requests=[models.QueryRequest(query=data.queries[2].tolist(), limit=2)]))
        out["ro_count"] = ro.count(MAIN, exact=True).count
        out["ro_scroll"] = len(ro.scroll(MAIN, limit=3)[0])
        out["ro_retrieve"] = len(ro.retrieve(MAIN, ids=[data.ids[0]]))
        out["ro_get_collection"] = ro.get_collection(MAIN).points_count
        out["ro_aliases"] = len(ro.get_aliases().aliases)
        out["ro_exists"] = ro.collection_exists(MAIN)
        for what, fn in [
            ("upsert", lambda: ro.upsert(MAIN, points=[models.PointStruct(id=1, vector=[0.1] * DIM)])),
            ("delete", lambda: ro.delete(MAIN, points_selector=[data.ids[0]])),
            ("set_payload", lambda: ro.set_payload(MAIN, payload={"a": 1}, points=[data.ids[0]])),
            ("update_vectors", lambda: ro.update_vectors(MAIN, points=[models.PointVectors(id=data.ids[0], vector=[0.1] * DIM)])),
            ("create_payload_index", lambda: ro.create_payload_index(MAIN, "lexname", models.PayloadSchemaType.KEYWORD)),
            ("create_collection", lambda: ro.create_collection("ro_made", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))),
            ("delete_collection", lambda: ro.delete_collection(MAIN)),
            ("update_aliases", lambda: ro.update_collection_aliases(change_aliases_operations=[
                models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=MAIN, alias_name="ro_alias"))])),
        ]:
            out[f"ro_{what}"] = expect_status(run, fn, 403, f"read-only key: {what}")
        after = rw.count(MAIN, exact=True).count
        run.check(after == out["ro_count"], f"read-only writes changed the count: {out['ro_count']} -> {after}")
        run.check(not rw.collection_exists("ro_made"), "read-only key created a collection")
        return out

    run.step("api keys (401 / 403, read-only, bearer)", keys)

    def payload_schema():
        info = rw.get_collection(MAIN)
        schema = {k: status_of(v.data_type) for k, v in sorted(info.payload_schema.items())}
        want = {"gloss_words": "integer", "has_example": "bool", "pos": "keyword", "rank": "integer"}
        run.check(schema == want, f"payload_schema {schema} != {want}")
        # The low indexing threshold sealed the points into segments with graphs, so the
        # default-params queries above went through HNSW.
        run.check(info.segments_count >= 3, f"only {info.segments_count} segments: nothing was sealed")
        run.check((info.indexed_vectors_count or 0) > 0, "no indexed vectors")
        return schema

    run.step("get_collection payload_schema", payload_schema)

    def documents_step():
        out = {}
        docs = remote(url, api_key=RW_KEY, cloud_inference=True)
        out["create"] = docs.create_collection(DOCS, vectors_config=models.VectorParams(size=384, distance=models.Distance.COSINE))
        texts, seen = [], set()
        for r, row in enumerate(data.sample_rows):
            if row["text"] not in seen:
                seen.add(row["text"])
                texts.append((r, row))
            if len(texts) == 48:
                break
        r1 = docs.upsert(DOCS, points=[
            models.PointStruct(id=k, vector=models.Document(text=row["text"], model=MODEL),
                               payload={"text": row["text"], "pos": row["pos"]})
            for k, (_, row) in enumerate(texts)])
        out["upsert"] = status_of(r1)
        hits = []
        for k in (0, 5, 11, 23, 47):
            res = docs.query_points(DOCS, query=models.Document(text=texts[k][1]["text"], model=MODEL), limit=3).points
            hits.append(res[0].id if res else None)
            run.check(bool(res) and res[0].id == k and res[0].score > 0.99,
                      f"document {k}: closest to its own text is {res[0].id if res else None}")
        out["self_top1"] = hits
        recs = docs.retrieve(DOCS, ids=[0, 1, 2, 3], with_vectors=True)
        worst = 1.0
        for rec in recs:
            want = data.sample_vectors[texts[rec.id][0]].astype(np.float64)
            got = np.asarray(rec.vector, dtype=np.float64)
            cos = float(got @ want / (np.linalg.norm(got) * np.linalg.norm(want)))
            worst = min(worst, cos)
        run.check(len(recs) == 4 and worst > 0.999,
                  f"server embeddings vs the dataset's all-MiniLM-L6-v2 vectors: min cosine {worst:.5f}")
        out["embedding_matches_dataset"] = worst > 0.999
        res = docs.query_points(DOCS, query=models.Document(text="a socially awkward or tactless act", model=MODEL),
                                query_filter=qfilter({"must": [{"key": "pos", "match": {"value": "n"}}]}), limit=3).points
        out["filtered_text_query"] = [p.id for p in res]
        try:
            docs.query_points(DOCS, query=models.Document(text="anything", model="no-such/model"), limit=1)
            run.check(False, "unknown model: query succeeded, want HTTP 400")
        except UnexpectedResponse as e:
            body = e.content.decode("utf-8", "replace")
            run.check(e.status_code == 400, f"unknown model: HTTP {e.status_code}, want 400")
            run.check(MODEL in body or "all-MiniLM-L6-v2" in body, f"unknown model: error does not name {MODEL}: {body[:300]}")
            out["unknown_model"] = e.status_code
        out["count"] = docs.count(DOCS, exact=True).count
        return out

    if documents:
        run.step("documents (server-side embedding)", documents_step)

    def bm25_step():
        """Qdrant's server-side BM25: a sparse vector with the IDF modifier, upserts and queries
        as `models.Document(text, model="qdrant/bm25")` (no model file needed). Local mode would
        need fastembed, so the reference is our own: fastembed's ids (|mmh3(stem)|) and
        values (tf·(k+1)/(tf + k·(1 − b + b·dl/256))) checked on a known gloss, and every
        query's ranking recomputed from the stored vectors with Qdrant's IDF."""
        out = {}
        bm = remote(url, api_key=RW_KEY, cloud_inference=True)
        name = "bm25docs"
        bm.create_collection(name, vectors_config={},
                             sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)})
        rows = data.sample_rows[:300]
        r = bm.upsert(name, points=[
            models.PointStruct(id=k, vector={"bm25": models.Document(text=row["text"], model="qdrant/bm25")},
                               payload={"pos": row["pos"]})
            for k, row in enumerate(rows)])
        out["upsert"] = status_of(r)
        stored = {rec.id: rec.vector["bm25"] for rec in bm.retrieve(name, ids=list(range(len(rows))), with_vectors=True)}
        # "howler: a glaring blunder": stems howler, glare, blunder; tf 1, dl 3.
        k_howler = next((k for k, row in enumerate(rows) if row["text"] == "howler: a glaring blunder"), None)
        if k_howler is not None:
            v = stored[k_howler]
            want_ids = sorted(abs(mmh3_32(w)) for w in ("howler", "glare", "blunder"))
            want_value = 2.2 / (1 + 1.2 * (0.25 + 0.75 * 3 / 256))
            run.check(sorted(v.indices) == want_ids, f"bm25 ids {sorted(v.indices)} != fastembed's {want_ids}")
            run.check(all(close(x, want_value) for x in v.values), f"bm25 values {v.values} != {want_value}")
            out["fastembed_ids"] = sorted(v.indices) == want_ids
        n = len(stored)
        df: dict[int, int] = {}
        for v in stored.values():
            for i in v.indices:
                df[i] = df.get(i, 0) + 1

        def reference(terms: list[int], keep=lambda k: True) -> list[tuple[Any, float]]:
            scored = []
            for k, v in stored.items():
                if not keep(k):
                    continue
                shared = [(i, x) for i, x in zip(v.indices, v.values) if i in terms]
                if shared:
                    score = sum(math.log(1 + (n - df[i] + 0.5) / (df[i] + 0.5)) * x for i, x in shared)
                    scored.append((k, score))
            scored.sort(key=lambda t: (-t[1], idkey(t[0])))
            return scored

        tops = []
        for k in (0, 17, 42, 99, 250):
            # A gloss's own text as the query: its terms are the stored vector's indices.
            res = bm.query_points(name, query=models.Document(text=rows[k]["text"], model="qdrant/bm25"),
                                  using="bm25", limit=5).points
            run.check_ranked(f"bm25 query {k}", res, reference(set(stored[k].indices))[:5])
            tops.append(res[0].id if res else None)
        out["self_queries_top1"] = tops
        nouns = {k for k, row in enumerate(rows) if row["pos"] == "n"}
        res = bm.query_points(name, query=models.Document(text=rows[42]["text"], model="qdrant/bm25"), using="bm25",
                              query_filter=qfilter({"must": [{"key": "pos", "match": {"value": "n"}}]}), limit=5).points
        run.check_ranked("bm25 filtered query", res, reference(set(stored[42].indices), lambda k: k in nouns)[:5])
        out["filtered"] = [p.id for p in res]
        try:
            bm.upsert(name, points=[models.PointStruct(id=1000, vector=models.Document(text="x", model="qdrant/bm25"))])
            run.check(False, "a qdrant/bm25 document for the unnamed (absent) vector was accepted")
        except UnexpectedResponse as e:
            run.check(e.status_code == 400, f"bm25 document on a dense/absent vector: HTTP {e.status_code}, want 400")
        out["count"] = bm.count(name, exact=True).count
        run.check(out["count"] == len(rows), f"bm25 count {out['count']}")
        return out

    run.step("qdrant/bm25 documents (server-side BM25)", bm25_step)

    def bad_input():
        out = {}
        before = rw.count(MAIN, exact=True).count
        out["upsert_wrong_dim"] = expect_status(
            run, lambda: rw.upsert(MAIN, points=[models.PointStruct(id=1, vector=[0.5] * (DIM - 1))]), 400, "upsert wrong dimension")
        out["query_wrong_dim"] = expect_status(
            run, lambda: rw.query_points(MAIN, query=[0.5] * (DIM + 1), limit=1), 400, "query wrong dimension")
        out["using_unknown_vector"] = expect_status(
            run, lambda: rw.query_points(MULTI, query=[0.5] * TEXT_DIM, using="nope", limit=1), 400, "query unknown vector name")
        out["get_missing"] = expect_status(run, lambda: rw.get_collection("no_such_collection"), 404, "get_collection unknown")
        out["query_missing"] = expect_status(
            run, lambda: rw.query_points("no_such_collection", query=[0.5] * DIM, limit=1), 404, "query unknown collection")
        out["upsert_missing"] = expect_status(
            run, lambda: rw.upsert("no_such_collection", points=[models.PointStruct(id=1, vector=[0.5] * DIM)]), 404, "upsert unknown collection")
        out["create_existing"] = expect_status(
            run, lambda: rw.create_collection(MAIN, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)),
            (400, 409), "create an existing collection")
        h = {"api-key": RW_KEY, "content-type": "application/json"}
        raw = [
            ("wrong type", "PUT", f"/collections/{MAIN}/points?wait=true", json.dumps({"points": [{"id": 1, "vector": "abc"}]})),
            ("NaN literal", "PUT", f"/collections/{MAIN}/points?wait=true", '{"points": [{"id": 1, "vector": [NaN' + ", 0.1" * (DIM - 1) + "]}]}"),
            ("malformed JSON", "POST", f"/collections/{MAIN}/points/query", '{"query": [0.1, 0.2'),
            ("bad id", "PUT", f"/collections/{MAIN}/points?wait=true", json.dumps({"points": [{"id": "not-a-uuid", "vector": [0.1] * DIM}]})),
            ("negative id", "PUT", f"/collections/{MAIN}/points?wait=true", json.dumps({"points": [{"id": -5, "vector": [0.1] * DIM}]})),
            ("limit wrong type", "POST", f"/collections/{MAIN}/points/scroll", json.dumps({"limit": "ten"})),
            ("unknown filter field", "POST", f"/collections/{MAIN}/points/count", json.dumps({"filter": {"must": [{"kee": "pos"}]}})),
        ]
        for what, method, path, body in raw:
            r = httpx.request(method, url + path, content=body.encode(), headers=h, timeout=30)
            run.check(r.status_code == 400, f"{what}: HTTP {r.status_code}, want 400: {r.text[:200]}")
            try:
                err = r.json()["status"]["error"]
                run.check(isinstance(err, str) and err != "", f"{what}: status.error is empty")
            except Exception:
                run.check(False, f"{what}: body is not Qdrant's error shape {{\"status\": {{\"error\": ...}}}}: {r.text[:200]}")
            out[what] = r.status_code
        after = rw.count(MAIN, exact=True).count
        run.check(after == before, f"bad input changed the count: {before} -> {after}")
        return out

    run.step("bad input (4xx, not 5xx)", bad_input)


def _client_version() -> str:
    import importlib.metadata
    return importlib.metadata.version("qdrant-client")


def snapshot(client: QdrantClient, data: Data) -> dict:
    """What must survive a restart."""
    keep = [data.ids[i] for i in (0, 3, 20, 30, 101, 5000, 9998)]
    return {
        "collections": sorted(c.name for c in client.get_collections().collections),
        "aliases": sorted((a.alias_name, a.collection_name) for a in client.get_aliases().aliases),
        "count_main": client.count(MAIN, exact=True).count,
        "count_multi": client.count(MULTI, exact=True).count,
        "count_docs": client.count(DOCS, exact=True).count if client.collection_exists(DOCS) else None,
        "count_filter": client.count(MAIN, count_filter=qfilter(FILTERS["adv_or_synonyms"]), exact=True).count,
        "retrieve": sorted((point(r) for r in client.retrieve(MAIN, ids=keep, with_vectors=True)),
                           key=lambda d: idkey(d["id"])),
        "query": [point(p) for p in client.query_points(MAIN, query=data.queries[-1].tolist(), limit=10,
                                                         query_filter=qfilter(FILTERS["adjective"]),
                                                         search_params=EXACT).points],
        "query_multi": [point(p) for p in client.query_points(MULTI, query=data.multi_queries_image[3].tolist(),
                                                               using="image", limit=5, search_params=EXACT).points],
        "payload_schema": sorted(client.get_collection(MAIN).payload_schema),
    }


# ---------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quiver", help="path to the quiver binary; without it only local mode runs")
    ap.add_argument("--local-only", action="store_true", help="run the scenario against local mode only")
    ap.add_argument("--sample", type=Path, default=default_sample_dir(), help="wordnet sample folder")
    ap.add_argument("--keep", action="store_true", help="keep the server's data dir and log")
    ap.add_argument("--transcripts", type=Path, help="write the transcripts as JSON into this folder")
    ap.add_argument("--no-documents", action="store_true",
                    help="skip the server-side embedding step (for a server without the model)")
    ap.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                    help="extra argument for `quiver serve` (repeatable), e.g. --server-arg=--verbose")
    args = ap.parse_args()

    t_start = time.monotonic()

    def log(msg: str) -> None:
        print(f"{time.monotonic() - t_start:6.1f}s {msg}", flush=True)

    if not (args.sample / "base.jsonl").exists():
        print(f"e2e: wordnet sample not found at {args.sample} (set QUIVER_WORDNET_SAMPLE or --sample)", file=sys.stderr)
        return 2
    data = Data(args.sample)
    log(f"qdrant-client {_client_version()}, {len(data.ids)} points x {DIM} dims, sample {args.sample}")

    def run_local() -> Run:
        log("scenario against local mode (QdrantClient(':memory:'))")
        run = scenario(QdrantClient(":memory:"), data, "local", log)
        for step, msg in run.failures:
            log(f"  FAIL [local] {step}: {msg}")
        return run

    if args.local_only or not args.quiver:
        if not args.local_only:
            log("no --quiver binary given: local mode only")
        local = run_local()
        write_transcripts(args.transcripts, local=local)
        return finish(log, len(local.failures), 0)

    binary = str(Path(args.quiver).resolve())
    workdir = Path(tempfile.mkdtemp(prefix="quiver-e2e-"))
    server = Server(binary, workdir / "data", workdir / "server.log", args.server_arg)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    failed = mismatches = 0
    interrupted = False
    try:
        # The server first, so that a binary that cannot start fails fast.
        log(f"starting {binary} serve (data {server.data_dir})")
        server.start()
        log(f"quiver serve ready at {server.url}")
        local = run_local()
        failed += len(local.failures)
        remote_run = scenario(remote(server.url, api_key=RW_KEY), data, "server", log)
        log("server-only checks")
        server_checks(server.url, data, remote_run, documents=not args.no_documents)

        def restart():
            before = snapshot(remote(server.url, api_key=RW_KEY), data)
            code = server.stop()
            remote_run.check(code is not None, "quiver serve did not stop within 30 s of SIGTERM (killed)")
            log(f"      stopped with SIGTERM: exit code {code}")
            server.start()
            after = snapshot(remote(server.url, api_key=RW_KEY), data)
            d = diff(before, after)
            for line in d[:10]:
                remote_run.check(False, f"after restart {line.replace('local=', 'before=').replace('server=', 'after=')}")
            return {"same": not d, "exit_code": code}

        remote_run.step("restart on the same data dir", restart)
        for step, msg in remote_run.failures:
            log(f"  FAIL [server] {step}: {msg}")
        failed += len(remote_run.failures)
        log("comparing transcripts (local vs server)")
        mismatches = compare(local, remote_run, log)
        write_transcripts(args.transcripts, local=local, server=remote_run)
    except KeyboardInterrupt as e:
        interrupted = True
        log(f"interrupted ({e})")
    except Exception as e:
        failed += 1
        log(f"FAIL: {short(e, 2000)}")
    finally:
        server.stop()
        if failed or mismatches or interrupted:
            tail = server.log_tail(40)
            if tail:
                log(f"server log ({server.log_path}):\n{tail}")
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if interrupted:
        return 130
    return finish(log, failed, mismatches)


def write_transcripts(folder: Path | None, **runs: Run) -> None:
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for name, run in runs.items():
        (folder / f"{name}.json").write_text(json.dumps(run.transcript, indent=1))


def finish(log, failed: int, mismatches: int) -> int:
    if failed or mismatches:
        log(f"e2e: FAILED ({failed} check failure(s), {mismatches} transcript mismatch(es))")
        return 1
    log("e2e: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
