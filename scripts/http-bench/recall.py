"""recall@10 of `points/query` over HTTP on the first 1,000 wordnet queries."""
import sys

import numpy as np
from qdrant_client import QdrantClient, models

url, data, ef = sys.argv[1], sys.argv[2], int(sys.argv[3])
raw = np.fromfile(f"{data}/query.fvecs", dtype=np.int32)
queries = raw.reshape(-1, raw[0] + 1)[:, 1:].view(np.float32)[:1000]
gt = np.fromfile(f"{data}/groundtruth.ivecs", dtype=np.int32)
gt = gt.reshape(-1, gt[0] + 1)[:, 1:][:1000, :10]
client = QdrantClient(url=url, timeout=60)
hits = 0
for q, truth in zip(queries, gt):
    r = client.query_points("wn", query=q.tolist(), limit=10, search_params=models.SearchParams(hnsw_ef=ef))
    hits += len({p.id for p in r.points} & set(truth.tolist()))
print(f"recall@10 over HTTP at ef={ef}: {hits / (10 * len(queries)):.4f}")
