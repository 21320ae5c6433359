"""Upserts batches of 100 new random unit vectors, 10 batches a second, for N seconds."""
import sys
import time

import numpy as np
from qdrant_client import QdrantClient, models

url, seconds = sys.argv[1], float(sys.argv[2])
client = QdrantClient(url=url, timeout=60)
rng = np.random.default_rng(7)
next_id, sent, latencies = 1_000_000, 0, []
start = time.monotonic()
while time.monotonic() - start < seconds:
    due = start + sent / 10
    if time.monotonic() < due:
        time.sleep(due - time.monotonic())
    v = rng.standard_normal((100, 384)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    t = time.monotonic()
    client.upsert("wn", points=models.Batch(ids=list(range(next_id, next_id + 100)), vectors=v.tolist()), wait=True)
    latencies.append(time.monotonic() - t)
    next_id += 100
    sent += 1
lat = np.array(latencies) * 1000
print(f"upserts: {sent} batches of 100 ({sent * 100 / seconds:.0f} points/s), latency p50 {np.percentile(lat, 50):.1f} ms, p99 {np.percentile(lat, 99):.1f} ms")
