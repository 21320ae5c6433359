#!/usr/bin/env python3
"""A stand-in for `quiver serve` that tests the e2e harness itself: Qdrant's REST dialect
served by qdrant-client's local mode (persisted in --data). It is not Quiver and not a
server to use; it exists so that `tests/e2e/run --quiver tests/e2e/reference_server.py`
exercises qdrant-client's remote code path, the server start / SIGTERM / restart handling and
the server-only checks without a quiver build, and so that `--log-requests FILE` shows the
exact requests qdrant-client sends (method, path, query, JSON body) for each scenario step.

It takes the same command line as `quiver serve`:
    reference_server.py serve --data DIR --host 127.0.0.1 --port PORT --api-key K --read-only-api-key R
Documents (server-side embedding) are answered with a 400: local mode has no model.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import signal
import sys
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

warnings.filterwarnings("ignore")

import pydantic  # noqa: E402
from qdrant_client.http import models  # noqa: E402
from qdrant_client.local.qdrant_local import QdrantLocal  # noqa: E402

VERSION = importlib.metadata.version("qdrant-client")  # what the client expects
READ_ONLY_POST = re.compile(
    r"^/collections/[^/]+/points(/count|/scroll|/query|/query/batch|/query/groups|/search|/search/batch"
    r"|/recommend|/recommend/batch|/discover|/discover/batch|/facet)?$|^/collections/[^/]+/facet$"
)
WHITELIST = ("/", "/healthz")
WHITELIST_PREFIX = ("/readyz", "/livez")


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Store:
    """In-memory local mode, written to DATA/state.json on shutdown and read back at start (so a
    SIGTERM restart keeps everything; a kill -9 loses it: this is a test stand-in), plus what
    local mode does not keep: payload indexes."""

    def __init__(self, data: Path):
        data.mkdir(parents=True, exist_ok=True)
        self.state_file = data / "state.json"
        self.local = QdrantLocal(location=":memory:")
        self.indexes: dict[str, dict[str, str]] = {}
        self.lock = threading.Lock()
        self.op = 0
        if self.state_file.exists():
            self.load(json.loads(self.state_file.read_text()))

    def load(self, state: dict) -> None:
        L = self.local
        for name, c in state["collections"].items():
            vectors = c["vectors"]
            if "size" in vectors:
                cfg = models.VectorParams.model_validate(vectors)
            else:
                cfg = {k: models.VectorParams.model_validate(v) for k, v in vectors.items()}
            L.create_collection(name, vectors_config=cfg)
            points = [models.PointStruct.model_validate(p) for p in c["points"]]
            for i in range(0, len(points), 1000):
                L.upsert(name, points[i: i + 1000])
        actions = [models.CreateAliasOperation(create_alias=models.CreateAlias(**a)) for a in state["aliases"]]
        if actions:
            L.update_collection_aliases(actions)
        self.indexes = state["indexes"]
        self.op = state["op"]

    def save(self) -> None:
        L = self.local
        out = {"collections": {}, "indexes": self.indexes, "op": self.op,
               "aliases": [{"alias_name": a.alias_name, "collection_name": a.collection_name}
                           for a in L.get_aliases().aliases]}
        for c in L.get_collections().collections:
            info = L.get_collection(c.name)
            vectors = info.config.params.vectors
            vectors = ({k: v.model_dump(mode="json", exclude_none=True) for k, v in vectors.items()}
                       if isinstance(vectors, dict) else vectors.model_dump(mode="json", exclude_none=True))
            points, offset = [], None
            while True:
                recs, offset = L.scroll(c.name, limit=1000, offset=offset, with_vectors=True)
                points += [{"id": r.id, "vector": r.vector, "payload": r.payload} for r in recs]
                if offset is None:
                    break
            out["collections"][c.name] = {"vectors": vectors, "points": points}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(out))
        tmp.replace(self.state_file)

    def resolve(self, name: str) -> str:
        for a in self.local.get_aliases().aliases:
            if a.alias_name == name:
                return a.collection_name
        if not self.local.collection_exists(name):
            raise HttpError(404, f"Not found: Collection `{name}` doesn't exist!")
        return name

    def updated(self) -> dict:
        self.op += 1
        return {"operation_id": self.op, "status": "completed"}


def dump(obj):
    if isinstance(obj, pydantic.BaseModel):
        return obj.model_dump(mode="json", exclude_none=False)
    if isinstance(obj, list):
        return [dump(x) for x in obj]
    if isinstance(obj, tuple):
        return [dump(x) for x in obj]
    return obj


def parse(model, body):
    try:
        return model.model_validate(body if body is not None else {})
    except pydantic.ValidationError as e:
        raise HttpError(400, f"Format error in JSON body: {e.errors()[0]['msg']}") from None


def check_ids(obj) -> None:
    """Qdrant's point ids are unsigned 64-bit integers or UUIDs."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "id" and isinstance(v, int) and v < 0:
                raise HttpError(400, f"Format error in JSON body: invalid point id {v}")
            if k in ("ids", "points") and isinstance(v, list):
                for x in v:
                    if isinstance(x, int) and x < 0:
                        raise HttpError(400, f"Format error in JSON body: invalid point id {x}")
            check_ids(v)
    elif isinstance(obj, list):
        for v in obj:
            check_ids(v)


def has_document(obj) -> bool:
    if isinstance(obj, dict):
        return ("text" in obj and "model" in obj) or any(has_document(v) for v in obj.values())
    if isinstance(obj, list):
        return any(has_document(v) for v in obj)
    return False


def point_dict(p) -> dict:
    d = dump(p)
    for k in ("shard_key", "order_value"):
        if d.get(k) is None:
            d.pop(k, None)
    return d


class App:
    def __init__(self, store: Store, rw: str | None, ro: str | None, log_requests: Path | None):
        self.s = store
        self.rw, self.ro = rw, ro
        self.log = open(log_requests, "a") if log_requests else None

    def auth(self, method: str, path: str, headers) -> None:
        if not self.rw or path in WHITELIST or path.startswith(WHITELIST_PREFIX):
            return
        key = headers.get("api-key")
        bearer = headers.get("authorization", "")
        if not key and bearer.lower().startswith("bearer "):
            key = bearer[7:].strip()
        if not key:
            raise HttpError(401, "Must provide an API key or an Authorization bearer token")
        if key == self.rw:
            return
        if key == self.ro:
            if method == "GET" or (method == "POST" and READ_ONLY_POST.match(path)):
                return
            raise HttpError(403, "Forbidden: Write access denied")
        raise HttpError(401, "Invalid API key or JWT")

    def handle(self, method: str, path: str, query: dict, body):
        L, s = self.s.local, self.s
        parts = [p for p in path.split("/") if p]
        if method == "GET" and path == "/":
            return {"title": "qdrant - vector search engine (e2e reference stand-in)", "version": VERSION}, True
        if method == "GET" and path in ("/healthz", "/livez", "/readyz"):
            return "ok", True
        if path == "/aliases" and method == "GET":
            return dump(L.get_aliases()), False
        if path == "/collections" and method == "GET":
            return dump(L.get_collections()), False
        if path == "/collections/aliases" and method == "POST":
            req = parse(models.ChangeAliasesOperation, body)
            return L.update_collection_aliases(req.actions), False
        if len(parts) < 2 or parts[0] != "collections":
            raise HttpError(404, f"no route {method} {path}")
        name, rest = parts[1], "/".join(parts[2:])
        if rest == "" and method == "PUT":
            req = parse(models.CreateCollection, body)
            if L.collection_exists(name):
                raise HttpError(409, f"Wrong input: Collection `{name}` already exists!")
            return L.create_collection(name, vectors_config=req.vectors), False
        if rest == "" and method == "DELETE":
            s.indexes.pop(name, None)
            return L.delete_collection(name), False
        if rest == "exists" and method == "GET":
            return {"exists": L.collection_exists(name)}, False
        if rest == "aliases" and method == "GET":
            return dump(L.get_collection_aliases(name)), False
        cname = s.resolve(name)
        if rest == "" and method == "GET":
            info = dump(L.get_collection(cname))
            info["payload_schema"] = {
                k: {"data_type": t, "params": None, "points": 0} for k, t in sorted(s.indexes.get(cname, {}).items())
            }
            return info, False
        check_ids(body)
        if has_document(body):
            raise HttpError(400, "Wrong input: the e2e reference stand-in has no embedding model (available: none)")
        wait = query.get("wait", ["false"])[0] == "true"  # noqa: F841 (everything is synchronous)
        if rest == "points" and method == "PUT":
            req = parse(models.PointsList, body) if "points" in (body or {}) else parse(models.PointsBatch, body)
            points = req.points if isinstance(req, models.PointsList) else req.batch
            L.upsert(cname, points)
            return s.updated(), False
        if rest == "points" and method == "POST":
            req = parse(models.PointRequest, body)
            return [point_dict(r) for r in L.retrieve(cname, req.ids, with_payload=req.with_payload if req.with_payload is not None else True,
                                                      with_vectors=req.with_vector or False)], False
        if rest == "points/count" and method == "POST":
            req = parse(models.CountRequest, body)
            return dump(L.count(cname, count_filter=req.filter, exact=req.exact)), False
        if rest == "points/query" and method == "POST":
            req = parse(models.QueryRequest, body)
            return {"points": [point_dict(p) for p in self.query(cname, req)]}, False
        if rest == "points/query/batch" and method == "POST":
            req = parse(models.QueryRequestBatch, body)
            return [{"points": [point_dict(p) for p in self.query(cname, r)]} for r in req.searches], False
        if rest == "points/scroll" and method == "POST":
            req = parse(models.ScrollRequest, body)
            if req.order_by is not None:
                key = req.order_by if isinstance(req.order_by, str) else req.order_by.key
                if key not in s.indexes.get(cname, {}):
                    raise HttpError(400, f"Bad request: No range index for `order_by` key: `{key}`. Please create one to use `order_by`.")
            recs, nxt = L.scroll(cname, scroll_filter=req.filter, limit=req.limit or 10, offset=req.offset,
                                 order_by=req.order_by,
                                 with_payload=req.with_payload if req.with_payload is not None else True,
                                 with_vectors=req.with_vector or False)
            return {"points": [point_dict(r) for r in recs], "next_page_offset": nxt}, False
        if rest == "index" and method == "PUT":
            req = parse(models.CreateFieldIndex, body)
            schema = req.field_schema
            s.indexes.setdefault(cname, {})[req.field_name] = getattr(schema, "value", None) or getattr(schema, "type").value
            return s.updated(), False
        if len(parts) == 4 and parts[2] == "index" and method == "DELETE":
            s.indexes.get(cname, {}).pop(parts[3], None)
            return s.updated(), False
        if rest == "points/payload" and method in ("POST", "PUT"):
            req = parse(models.SetPayload, body)
            sel = self.selector(req.points, req.filter)
            if method == "POST":
                L.set_payload(cname, payload=req.payload, points=sel, key=req.key)
            else:
                L.overwrite_payload(cname, payload=req.payload, points=sel)
            return s.updated(), False
        if rest == "points/payload/delete" and method == "POST":
            req = parse(models.DeletePayload, body)
            L.delete_payload(cname, keys=req.keys, points=self.selector(req.points, req.filter))
            return s.updated(), False
        if rest == "points/payload/clear" and method == "POST":
            L.clear_payload(cname, points_selector=self.points_selector(body))
            return s.updated(), False
        if rest == "points/delete" and method == "POST":
            L.delete(cname, points_selector=self.points_selector(body))
            return s.updated(), False
        if rest == "points/vectors" and method == "PUT":
            req = parse(models.UpdateVectors, body)
            L.update_vectors(cname, points=req.points)
            return s.updated(), False
        raise HttpError(404, f"no route {method} {path}")

    def query(self, cname: str, req: models.QueryRequest):
        return self.s.local.query_points(
            cname, query=req.query, using=req.using, query_filter=req.filter, search_params=req.params,
            limit=req.limit or 10, offset=req.offset, with_payload=req.with_payload if req.with_payload is not None else False,
            with_vectors=req.with_vector or False, score_threshold=req.score_threshold).points

    @staticmethod
    def selector(points, flt):
        if points is not None:
            return models.PointIdsList(points=points)
        return models.FilterSelector(filter=flt)

    @staticmethod
    def points_selector(body):
        if isinstance(body, dict) and "points" in body:
            return parse(models.PointIdsList, body)
        return parse(models.FilterSelector, body)


def make_handler(app: App):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def _go(self, method: str):
            t0 = time.monotonic()
            url = urlparse(self.path)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            status, payload, plain = 200, None, False
            body = None
            try:
                app.auth(method, url.path, self.headers)
                if raw:
                    try:
                        body = json.loads(raw)
                    except json.JSONDecodeError as e:
                        raise HttpError(400, f"Format error in JSON body: {e}") from None
                with app.s.lock:
                    result, plain = app.handle(method, url.path, parse_qs(url.query), body)
                payload = result if plain else {"result": result, "status": "ok", "time": time.monotonic() - t0}
            except HttpError as e:
                status, payload = e.status, {"status": {"error": str(e)}, "time": time.monotonic() - t0}
            except (ValueError, KeyError, TypeError, AssertionError) as e:
                msg = str(e)
                status = 404 if re.search(r"collection .* not found", msg, re.I) else 400
                payload = {"status": {"error": f"Wrong input: {msg}"}, "time": time.monotonic() - t0}
            except Exception as e:  # noqa: BLE001
                status, payload = 500, {"status": {"error": f"{type(e).__name__}: {e}"}, "time": 0}
            if app.log:
                app.log.write(json.dumps({"method": method, "path": url.path, "query": url.query,
                                          "body": body if body is not None else (raw.decode("utf-8", "replace") or None),
                                          "status": status}) + "\n")
                app.log.flush()
            data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
            self.send_response(status)
            self.send_header("content-type", "text/plain" if isinstance(payload, str) else "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self._go("GET")

        def do_POST(self):
            self._go("POST")

        def do_PUT(self):
            self._go("PUT")

        def do_DELETE(self):
            self._go("DELETE")

        def do_PATCH(self):
            self._go("PATCH")

    return Handler


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["serve"])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6333)
    ap.add_argument("--api-key")
    ap.add_argument("--read-only-api-key")
    ap.add_argument("--log-requests", type=Path)
    args = ap.parse_args()
    store = Store(args.data)
    app = App(store, args.api_key, args.read_only_api_key, args.log_requests)
    httpd = ThreadingHTTPServer((args.host, args.port), make_handler(app))

    def stop(_signum, _frame):
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"reference stand-in listening on {args.host}:{args.port}", flush=True)
    httpd.serve_forever()
    with store.lock:
        store.save()
        store.local.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
