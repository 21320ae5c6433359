"""Writes one `points/query` JSON body per line for every query vector of an .fvecs file."""
import json
import sys

import numpy as np

path, ef, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
raw = np.fromfile(path, dtype=np.int32)
dim = raw[0]
vectors = raw.reshape(-1, dim + 1)[:, 1:].view(np.float32)
with open(out, "w") as f:
    for v in vectors:
        body = {"query": [round(float(x), 7) for x in v], "limit": 10, "params": {"hnsw_ef": ef}}
        f.write(json.dumps(body, separators=(",", ":")) + "\n")
