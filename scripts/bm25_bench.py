#!/usr/bin/env python3
"""BM25 on WordNet: Quiver beside bm25s and tantivy, against an exact BM25 reference.

Documents are the glosses (`base.jsonl`, field `text`), queries the example sentences
(`query.jsonl`; `source_id` names the gloss each comes from). For each system: index build
time, index size on disk, queries per second at k = 10 on one thread, agreement of its top 10
with the exact reference's top 10 (mean overlap), and hit@10 (the source gloss in the top 10).

Analysis. Quiver analyses text itself (crates/analyzer: UAX #29 words, lowercase, NLTK
English stop words, Snowball English stems). The peers and the reference get the same
analysis done here in Python (a word regex close to UAX #29, the same stop words, PyStemmer's
Snowball English), pre-tokenized, so all compute BM25 over (nearly) the same terms; remaining
differences (word boundaries in rare cases, tantivy's one-byte length norms, Quiver's 32-bit
term hashes) show up as agreement below 1. BM25 parameters everywhere: k1 = 1.2, b = 0.75,
IDF ln(1 + (N - n + 0.5) / (n + 0.5)), a query term counted once.

Quiver runs as `quiver serve` (one search thread, QUIVER_THREADS=1) and is queried through
the Qdrant API's batch endpoint with `{"text", "model": "qdrant/bm25"}` documents on its bm25
vector: its QPS includes HTTP and JSON, which the in-process peers do not pay.

Run with the peers venv (it has bm25s, PyStemmer, tantivy and numpy):

    PY=/root/.cache/quiver/peers-venv/bin/python
    cargo build --release -p quiver-cli
    $PY scripts/bm25_bench.py --quiver target/release/quiver \\
        --dataset /root/.cache/quiver/datasets/wordnet > bm25-wordnet.jsonl

One JSON object per system on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

K = 10
K1, B = 1.2, 0.75
MAX_WORD_CHARS = 40

# NLTK's English list, the one Quiver's analyzer uses (crates/analyzer/src/stop_words.rs).
STOP_WORDS = set("""
i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself
yourselves he him his himself she she's her hers herself it it's its itself they them their
theirs themselves what which who whom this that that'll these those am is are was were be been
being have has had having do does did doing a an the and but if or because as until while of at
by for with about against between into through during before after above below to from up down
in out on off over under again further then once here there when where why how all any both each
few more most other some such no nor not only own same so than too very s t can will just don
don't should should've now d ll m o re ve y ain aren aren't couldn couldn't didn didn't doesn
doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma mightn mightn't mustn mustn't needn
needn't shan shan't shouldn shouldn't wasn wasn't weren weren't won won't wouldn wouldn't
""".split())

# Letters/digits joined by an inner apostrophe, period or comma between digits: close to
# UAX #29 words for English text.
WORD = re.compile(r"\w+(?:['\u2019.]\w+)*")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def analyzer():
    import Stemmer

    stem = Stemmer.Stemmer("english").stemWord

    def analyze(text: str) -> list[str]:
        out = []
        for w in WORD.findall(text.lower().replace("\u2019", "'")):
            if len(w) > MAX_WORD_CHARS or w in STOP_WORDS:
                continue
            s = stem(w)
            if s:
                out.append(s)
        return out

    return analyze


def read_jsonl(path: Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f]


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class Reference:
    """Exact BM25 over the pre-tokenized corpus: per term, the documents holding it and their
    idf * saturated, length-normalised counts; a query sums its terms' lists into one score
    per document (float64)."""

    def __init__(self, docs: list[list[str]]):
        postings: dict[str, list[tuple[int, int]]] = {}
        for d, terms in enumerate(docs):
            counts: dict[str, int] = {}
            for t in terms:
                counts[t] = counts.get(t, 0) + 1
            for t, c in counts.items():
                postings.setdefault(t, []).append((d, c))
        lengths = np.array([len(t) for t in docs], dtype=np.float64)
        n_docs = int((lengths > 0).sum())
        avgdl = lengths[lengths > 0].mean()
        self.n = len(docs)
        self.lists: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for t, plist in postings.items():
            rows = np.array([d for d, _ in plist])
            tf = np.array([c for _, c in plist], dtype=np.float64)
            df = len(plist)
            idf = np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
            value = tf * (K1 + 1) / (tf + K1 * (1 - B + B * lengths[rows] / avgdl))
            self.lists[t] = (rows, idf * value)

    def top(self, terms: list[str], k: int = K) -> list[int]:
        scores = np.zeros(self.n)
        hit = np.zeros(self.n, dtype=bool)
        for t in set(terms):
            if t in self.lists:
                rows, values = self.lists[t]
                scores[rows] += values
                hit[rows] = True
        candidates = np.flatnonzero(hit)
        order = candidates[np.lexsort((candidates, -scores[candidates]))]
        return order[:k].tolist()


def measure(name: str, search, queries: list, reps: int) -> tuple[float, list]:
    """Best-of-`reps` queries per second of `search` over every query, and its last results."""
    best = 0.0
    results = []
    for _ in range(reps):
        t = time.perf_counter()
        results = [search(q) for q in queries]
        best = max(best, len(queries) / (time.perf_counter() - t))
    log(f"{name}: {best:,.0f} queries/s")
    return best, results


def quality(results: list[list[int]], truth: list[list[int]], sources: list[int]) -> dict:
    # A query no document matches agrees when the system returns nothing too. Score ties at
    # rank 10 may be broken differently by each system (the reference: lower position).
    overlap = [
        len(set(r[:K]) & set(t[:K])) / min(K, len(t)) if t else float(not r)
        for r, t in zip(results, truth)
    ]
    hits = [s in r[:K] for r, s in zip(results, sources)]
    return {"agreement_at_10": float(np.mean(overlap)), "hit_at_10": float(np.mean(hits))}


def run_bm25s(docs, queries, reps, workdir):
    import bm25s

    t = time.perf_counter()
    retriever = bm25s.BM25(k1=K1, b=B, method="lucene")
    retriever.index(docs, show_progress=False)
    build = time.perf_counter() - t
    retriever.save(workdir / "bm25s")
    size = dir_size(workdir / "bm25s")
    vocab = retriever.vocab_dict

    def search(q):
        q = [t for t in dict.fromkeys(q) if t in vocab]
        if not q:
            return []
        ids, scores = retriever.retrieve([q], k=K, show_progress=False, n_threads=1)
        return [int(i) for i, s in zip(ids[0], scores[0]) if s > 0]

    qps, results = measure("bm25s", search, queries, reps)
    return build, size, qps, results


def run_tantivy(docs, queries, reps, workdir):
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("body", stored=False, tokenizer_name="whitespace")
    builder.add_unsigned_field("id", stored=True, fast=True)
    schema = builder.build()
    path = workdir / "tantivy"
    path.mkdir()
    t = time.perf_counter()
    index = tantivy.Index(schema, path=str(path))
    writer = index.writer(num_threads=1)
    for i, terms in enumerate(docs):
        doc = tantivy.Document()
        doc.add_text("body", " ".join(terms))
        doc.add_unsigned("id", i)
        writer.add_document(doc)
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    build = time.perf_counter() - t
    size = dir_size(path)
    searcher = index.searcher()

    def search(q):
        terms = list(dict.fromkeys(q))
        if not terms:
            return []
        query = tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, tantivy.Query.term_query(schema, "body", t)) for t in terms]
        )
        hits = searcher.search(query, K).hits
        return [searcher.doc(addr)["id"][0] for _, addr in hits]

    qps, results = measure("tantivy", search, queries, reps)
    return build, size, qps, results


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def run_quiver(quiver: str, base: Path, texts: list[str], reps: int, workdir: Path, port: int):
    data = workdir / "quiver-data"
    env = dict(os.environ, QUIVER_THREADS="1", RAYON_NUM_THREADS="1")
    subprocess.run(
        [quiver, "--data", str(data), "create", "wn", "--bm25-field", "text"], check=True, env=env
    )
    t = time.perf_counter()
    subprocess.run(
        [quiver, "--data", str(data), "import", "wn", str(base), "--text-field", "text"],
        check=True,
        env=env,
    )
    build = time.perf_counter() - t
    size = dir_size(data)
    server = subprocess.Popen(
        [quiver, "--data", str(data), "serve", "--port", str(port)], env=env
    )
    url = f"http://127.0.0.1:{port}/collections/wn/points/query/batch"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/collections")
                break
            except OSError:
                time.sleep(0.1)
        batch = 100

        def search_all():
            out = []
            for i in range(0, len(texts), batch):
                searches = [
                    {
                        "query": {"text": q, "model": "qdrant/bm25"},
                        "using": "bm25",
                        "limit": K,
                        "with_payload": False,
                    }
                    for q in texts[i : i + batch]
                ]
                res = post(url, {"searches": searches})["result"]
                out.extend([[p["id"] for p in r["points"]] for r in res])
            return out

        best, results = 0.0, []
        for _ in range(reps):
            t = time.perf_counter()
            results = search_all()
            best = max(best, len(texts) / (time.perf_counter() - t))
        log(f"quiver: {best:,.0f} queries/s (HTTP batches of {batch})")
    finally:
        server.terminate()
        server.wait()
    return build, size, best, results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", type=Path, default=Path.home() / ".cache/quiver/datasets/wordnet")
    ap.add_argument("--quiver", default="target/release/quiver")
    ap.add_argument("--systems", default="quiver,bm25s,tantivy")
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--port", type=int, default=6399)
    args = ap.parse_args()

    base = args.dataset / "base.jsonl"
    docs_json = read_jsonl(base)
    # Results are positions in base.jsonl; Quiver's point ids are the `id` fields.
    position = {d["id"]: i for i, d in enumerate(docs_json)}
    query_json = read_jsonl(args.dataset / "query.jsonl")[: args.queries]
    query_texts = [q["text"] for q in query_json]
    sources = [position.get(q["source_id"], -1) for q in query_json]

    analyze = analyzer()
    t = time.perf_counter()
    docs = [analyze(d["text"]) for d in docs_json]
    queries = [analyze(q) for q in query_texts]
    log(f"analysed {len(docs)} documents and {len(queries)} queries in {time.perf_counter() - t:.1f}s")
    reference = Reference(docs)
    truth = [reference.top(q) for q in queries]
    print(json.dumps({"system": "reference", **quality(truth, truth, sources)}), flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for system in args.systems.split(","):
            if system == "bm25s":
                build, size, qps, results = run_bm25s(docs, queries, args.reps, workdir)
            elif system == "tantivy":
                build, size, qps, results = run_tantivy(docs, queries, args.reps, workdir)
            elif system == "quiver":
                if shutil.which(args.quiver) is None and not Path(args.quiver).exists():
                    sys.exit(f"{args.quiver}: not found (cargo build --release -p quiver-cli)")
                build, size, qps, results = run_quiver(
                    args.quiver, base, query_texts, args.reps, workdir, args.port
                )
                results = [[position[i] for i in r] for r in results]
            else:
                sys.exit(f"unknown system `{system}` (quiver, bm25s, tantivy)")
            row = {
                "system": system,
                "k": K,
                "queries": len(queries),
                "build_s": round(build, 3),
                "index_bytes": size,
                "qps": round(qps, 1),
                **quality(results, truth, sources),
            }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
