#!/usr/bin/env python3
"""Sentences per second of sentence-transformers (PyTorch, CPU) on the `text` field of a
JSON Lines file: the torch side of the comparison with `quiver embed` (docs/embedding.md).

    python embed_torch_bench.py FILE.jsonl [--n 10000] [--threads 1] [--batch-size 32]
                                [--repeats 3] [--model-dir DIR]

Embeds the first N texts REPEATS times after one warm-up batch, with
torch.set_num_threads(THREADS) and model.encode(batch_size=BATCH_SIZE) (which sorts the
texts by length, pads each batch to its longest text, truncates at the model's 256
tokens and L2-normalises), and prints, per run, the wall time and the CPU time of the
process (time.process_time(): all its threads), and the best rates. The model is read from
the same local directory as Quiver's (default ${QUIVER_CACHE:-~/.cache/quiver}/models/
all-MiniLM-L6-v2; see scripts/fetch-model). Needs sentence-transformers and torch, e.g. in
a venv: python3 -m venv ~/.cache/quiver/torch-venv && ~/.cache/quiver/torch-venv/bin/pip
install torch sentence-transformers
"""
import argparse
import json
import os
import time


def main():
    cache = os.environ.get("QUIVER_CACHE") or os.path.expanduser("~/.cache/quiver")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model-dir", default=os.path.join(cache, "models", "all-MiniLM-L6-v2"))
    ap.add_argument("--save", help="write the vectors of the last run to this .npy file")
    a = ap.parse_args()

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(a.threads)
    texts = []
    with open(a.file, encoding="utf-8") as f:
        for line in f:
            if len(texts) == a.n:
                break
            texts.append(json.loads(line)["text"])
    model = SentenceTransformer(a.model_dir, device="cpu")
    model.encode(texts[: a.batch_size], batch_size=a.batch_size)
    best = best_cpu = float("inf")
    n = len(texts)
    for run in range(a.repeats):
        t, cpu = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            emb = model.encode(texts, batch_size=a.batch_size, convert_to_numpy=True)
        secs, cpu = time.perf_counter() - t, time.process_time() - cpu
        best, best_cpu = min(best, secs), min(best_cpu, cpu)
        print(f"run {run}: {secs:.3f} s, {n / secs:.1f} sentences/s; "
              f"{cpu:.2f} CPU s, {n / cpu:.1f} sentences per CPU s", flush=True)
    if a.save:
        np.save(a.save, emb.astype(np.float32))
    print(f"{a.file}: {len(texts)} texts, torch {torch.__version__}, threads {a.threads}, "
          f"batch {a.batch_size}, max_seq_length {model.max_seq_length}: best {best:.3f} s, "
          f"{n / best:.1f} sentences/s; {n / best_cpu:.1f} sentences per CPU s")


if __name__ == "__main__":
    main()
